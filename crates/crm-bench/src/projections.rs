//! Read models: rebuild throughput of each read model from a log of `--events` events next to
//! a raw scan + decode of the same log (read_all pages, CRC check, payload decode) in the same
//! run; and command -> read-model visibility latency at a fixed offered rate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::HeaderMap;
use tokio::sync::watch;
use uuid::Uuid;

use crm_domain::codec::decode_event;
use crm_domain::event::*;
use crm_domain::types::*;
use crm_domain::{Currency, Event, Money, Timestamp};
use crm_eventlog::{EventLog, LogConfig};
use crm_proj_customers::CustomersProjection;
use crm_proj_funnel::FunnelProjection;
use crm_proj_kpis::KpiProjection;
use crm_proj_tickets::TicketsProjection;
use crm_projector::{
    serve_queries, LogSource, Projection, ProjectorConfig, QueryTarget, ReadModelKind,
};
use crm_service::{
    serve_commands, serve_log_api, CommandHandler, HandlerConfig, ServiceConfig, Tailer,
    TailerConfig,
};
use crm_testkit::NatsServer;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Events in the log the rebuilds read.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Records per page when reading the log.
    #[arg(long, default_value_t = 4096)]
    page_events: usize,
    /// Offered rate for the visibility run, commands per second.
    #[arg(long, default_value_t = 1000)]
    rate_per_second: u64,
    /// Length of the visibility run, in seconds.
    #[arg(long, default_value_t = 10)]
    rate_seconds: u64,
    /// Skip the rebuild part.
    #[arg(long)]
    no_rebuild: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = crate::runtime()?;
    runtime.block_on(async {
        if !args.no_rebuild {
            rebuilds(&args).await?;
        }
        visibility(&args).await
    })
}

fn eur(amount_minor: i64) -> Money {
    Money::new(
        amount_minor,
        Currency::new("EUR").unwrap_or_else(|| unreachable!()),
    )
}

/// One customer's life: 13 events over 5 streams, appended as one command.
fn unit_events(n: u64) -> Vec<(String, Vec<Event>)> {
    let u = |k: u64| Uuid::from_u64_pair(n, k);
    let (customer, lead, order_a, order_b, ticket) = (u(1), u(2), u(3), u(4), u(5));
    let source = LeadSource::ALL[(n % 7) as usize];
    vec![
        (
            Aggregate::Customer.stream_for(customer),
            vec![
                Event::CustomerRegistered(CustomerRegistered {
                    customer_id: customer,
                    name: format!("Customer {n}"),
                    email: Some(format!("c{n}@example.com")),
                    phone: None,
                    segment: Some(Segment::Smb),
                    industry: Some("retail".into()),
                    region: None,
                    owner: Some(format!("owner-{}", n % 17)),
                    department: None,
                    source: Some(source),
                    from_lead: None,
                }),
                Event::SurveyResponseRecorded(SurveyResponseRecorded {
                    customer_id: customer,
                    response_id: u(6),
                    kind: SurveyKind::Nps,
                    score: (n % 11) as u8,
                    comment: None,
                }),
                Event::InteractionLogged(InteractionLogged {
                    customer_id: customer,
                    interaction_id: u(7),
                    kind: InteractionKind::Call,
                    channel: None,
                }),
            ],
        ),
        (
            Aggregate::Lead.stream_for(lead),
            vec![
                Event::LeadCreated(LeadCreated {
                    lead_id: lead,
                    name: format!("Lead {n}"),
                    email: None,
                    phone: None,
                    company: None,
                    source,
                    campaign_id: None,
                    customer_id: Some(customer),
                    owner: None,
                    estimated_value: Some(eur(50_000)),
                    pipeline: "default".into(),
                    stage: "awareness".into(),
                }),
                Event::FunnelStageAdvanced(FunnelStageAdvanced {
                    lead_id: lead,
                    pipeline: "default".into(),
                    from_stage: "awareness".into(),
                    to_stage: "interest".into(),
                }),
                Event::FunnelStageAdvanced(FunnelStageAdvanced {
                    lead_id: lead,
                    pipeline: "default".into(),
                    from_stage: "interest".into(),
                    to_stage: "decision".into(),
                }),
                Event::LeadWon(LeadWon {
                    lead_id: lead,
                    deal_value: eur(60_000),
                    customer_id: customer,
                    new_customer: false,
                }),
            ],
        ),
        (
            Aggregate::Order.stream_for(order_a),
            vec![Event::OrderPlaced(OrderPlaced {
                order_id: order_a,
                customer_id: customer,
                amount: eur(40_000 + (n % 1000) as i64),
                cost: Some(eur(10_000)),
                channel: OrderChannel::Online,
                lead_id: Some(lead),
            })],
        ),
        (
            Aggregate::Order.stream_for(order_b),
            vec![
                Event::OrderPlaced(OrderPlaced {
                    order_id: order_b,
                    customer_id: customer,
                    amount: eur(20_000),
                    cost: None,
                    channel: OrderChannel::Store,
                    lead_id: None,
                }),
                Event::OrderRefunded(OrderRefunded {
                    order_id: order_b,
                    customer_id: customer,
                    amount: eur(5_000),
                    reason: "damaged".into(),
                }),
            ],
        ),
        (
            Aggregate::Ticket.stream_for(ticket),
            vec![
                Event::TicketOpened(TicketOpened {
                    ticket_id: ticket,
                    customer_id: customer,
                    subject: "Help".into(),
                    category: TicketCategory::Question,
                    priority: TicketPriority::Normal,
                    channel: TicketChannel::Email,
                }),
                Event::TicketResponded(TicketResponded {
                    ticket_id: ticket,
                    responder: "agent".into(),
                    public: true,
                    first_public_response: true,
                }),
                Event::TicketResolved(TicketResolved {
                    ticket_id: ticket,
                    resolution: "answered".into(),
                }),
            ],
        ),
    ]
}

pub(crate) async fn fill_log(log: &EventLog, events: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    // Business time spread over 2026, a day per 300 customers.
    let at = |n: u64| {
        Timestamp::from_micros(
            1_767_225_600_000_000
                + (n as i64 / 300) * crm_domain::time::MICROS_PER_DAY
                + (n as i64 % 300) * 1_000_000,
        )
    };
    crate::fill::append_units(log, events.div_ceil(13), 256, at, unit_events).await?;
    eprintln!(
        "filled the log with {} events in {:.1} s",
        log.head(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Reads and decodes every event, as a rebuild must, without applying them anywhere.
fn raw_scan_decode(log: &EventLog, page_events: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    let (mut next, mut events) = (1u64, 0u64);
    loop {
        let records = log.read_all(next, page_events)?;
        let Some(last) = records.last() else { break };
        next = last.position + 1;
        for record in &records {
            let stamped = decode_event(&record.event_type, record.schema_version, &record.payload)?;
            std::hint::black_box(stamped);
        }
        events += records.len() as u64;
    }
    Ok(events as f64 / started.elapsed().as_secs_f64())
}

/// Scan, decode and fold into the model in memory, then encode its changes once: what a
/// rebuild costs before any store write.
fn fold_rate<P: Projection>(
    mut projection: P,
    log: &EventLog,
    page_events: usize,
) -> anyhow::Result<(f64, f64)> {
    let started = Instant::now();
    let (mut next, mut events) = (1u64, 0u64);
    loop {
        let records = log.read_all(next, page_events)?;
        let Some(last) = records.last() else { break };
        next = last.position + 1;
        for record in &records {
            projection.apply(&crm_projector::envelope_of(record)?);
        }
        events += records.len() as u64;
    }
    let folded = started.elapsed();
    let changes = projection.drain_changes();
    std::hint::black_box(changes);
    Ok((
        events as f64 / folded.as_secs_f64(),
        events as f64 / started.elapsed().as_secs_f64(),
    ))
}

async fn rebuild_rate(
    kind: &dyn ReadModelKind,
    log: &EventLog,
    page_events: usize,
) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let report = kind
        .rebuild_into(
            &dir.path().join("store"),
            LogSource::Local(log.clone()),
            ProjectorConfig {
                catch_up_page_events_max: page_events,
                ..ProjectorConfig::default()
            },
            &mut |_, _| {},
        )
        .await?;
    Ok(report.events_per_second)
}

async fn rebuilds(args: &Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let log = EventLog::open(&dir.path().join("log"), LogConfig::default())?;
    fill_log(&log, args.events).await?;
    println!("| read model | rebuild events/s | raw scan + decode events/s | rebuild / raw | fold only events/s | fold + encode events/s |");
    println!("|---|---:|---:|---:|---:|---:|");
    for kind in crm_read_models::ALL {
        let name = kind.name();
        // Raw just before each rebuild, so both see the same cache state and machine load.
        let raw = raw_scan_decode(&log, args.page_events)?;
        let rate = rebuild_rate(*kind, &log, args.page_events).await?;
        let (fold, encode) = match name {
            "customers" => fold_rate(CustomersProjection::new(), &log, args.page_events)?,
            "funnel" => fold_rate(FunnelProjection::new(), &log, args.page_events)?,
            "kpis" => fold_rate(KpiProjection::new(), &log, args.page_events)?,
            "tickets" => fold_rate(TicketsProjection::default(), &log, args.page_events)?,
            other => anyhow::bail!("no fold benchmark for read model `{other}`"),
        };
        println!(
            "| {name} | {rate:.0} | {raw:.0} | {:.0}% | {fold:.0} | {encode:.0} |",
            100.0 * rate / raw
        );
    }
    println!("(log of {} events)", log.head());
    Ok(())
}

async fn visibility(args: &Args) -> anyhow::Result<()> {
    let nats = NatsServer::start().context("starting nats-server")?;
    let dir = tempfile::tempdir()?;
    let log = EventLog::open(&dir.path().join("log"), LogConfig::default())?;
    let client = nats.connect().await;
    let (stop, stop_rx) = watch::channel(false);
    let handler = CommandHandler::new(log.clone(), HandlerConfig::default());
    tokio::spawn(serve_commands(
        client.clone(),
        handler,
        ServiceConfig::default(),
        stop_rx.clone(),
    ));
    tokio::spawn(
        Tailer::new(log.clone(), client.clone(), TailerConfig::default()).run(stop_rx.clone()),
    );
    tokio::spawn(serve_log_api(
        client.clone(),
        log.clone(),
        crm_wire::Subjects::default(),
        crm_ops::Instance::new(),
        stop_rx.clone(),
    ));
    let mut targets: Vec<Arc<dyn QueryTarget>> = Vec::new();
    for kind in crm_read_models::ALL {
        let (target, _task) = kind.start(
            &dir.path().join(kind.name()),
            client.clone(),
            LogSource::Local(log.clone()),
            ProjectorConfig::default(),
            stop_rx.clone(),
        )?;
        targets.push(target);
    }
    tokio::spawn(serve_queries(
        client.clone(),
        crm_wire::Subjects::default(),
        targets,
        crm_ops::Instance::new(),
        stop_rx.clone(),
    ));
    client.flush().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let interval = Duration::from_nanos(1_000_000_000 / args.rate_per_second.max(1));
    let total = (args.rate_per_second * args.rate_seconds) as usize;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        ticker.tick().await;
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let customer = Uuid::now_v7();
            let mut headers = HeaderMap::new();
            headers.insert("Crm-Command-Id", Uuid::now_v7().to_string().as_str());
            let body = serde_json::json!({"customer_id": customer, "name": format!("C{i}"), "email": "c@example.com"});
            let reply = client.request_with_headers("crm.cmd.customer.RegisterCustomer", headers, serde_json::to_vec(&body)?.into()).await?;
            let reply: serde_json::Value = serde_json::from_slice(&reply.payload)?;
            let position = reply["last_position"].as_u64().context("accepted reply")?;
            // Visible when the customer view (and, in turn, the KPIs) answers at that position.
            let query = serde_json::json!({"customer_id": customer, "min_position": position, "timeout_ms": 5000});
            let seen = client.request("crm.query.customer.get", serde_json::to_vec(&query)?.into()).await?;
            let seen: serde_json::Value = serde_json::from_slice(&seen.payload)?;
            anyhow::ensure!(seen["customer"]["customer_id"].is_string(), "not visible: {seen}");
            anyhow::Ok(sent.elapsed().as_micros() as u64)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for task in tasks {
        latencies.push(task.await??);
    }
    let latencies = crate::latency::Latencies::new(latencies);
    println!();
    println!(
        "visibility: {} RegisterCustomer commands at {}/s; command sent -> customer view answers at its position: p50 {} us, p99 {} us, max {} us",
        total,
        args.rate_per_second,
        latencies.at(0.5),
        latencies.at(0.99),
        latencies.max()
    );
    let _ = stop.send(true);
    Ok(())
}
