//! `crm-bench fill`: writes a big, realistic mixed log into a data directory that `crm serve`
//! (or any other reader) can then open, so figures at 1M or 10M events can be reproduced.
//!
//! The history is a stream of customers' lives spread over `--years` of business time, each
//! appended as one multi-stream append (what the log writes fastest). Per customer, about 11
//! events: a lead that is won (it registers the customer), a second lead that is lost,
//! disqualified or left open in turns, a survey answer (NPS and CSAT in turns), an order
//! (refunded for one customer in four, cancelled for one in ten), and for every other customer
//! a ticket opened, answered, resolved and closed. One pipeline besides `default` is defined at
//! the start and a campaign with its spend every 10,000 customers. At 10M events that is about
//! 1.8M leads, 0.9M customers, 0.9M orders and 0.45M tickets. Events are the ones the domain's
//! commands produce, in an order the domain accepts; `tests` check that the read models fold a
//! filled log to the expected counts.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use uuid::Uuid;

use crm_domain::codec::encode_event;
use crm_domain::event::*;
use crm_domain::time::{MICROS_PER_DAY, MICROS_PER_MINUTE};
use crm_domain::types::*;
use crm_domain::{Currency, Event, Money, Timestamp};
use crm_eventlog::{AppendRequest, EventLog, ExpectedVersion, LogConfig, NewEvent, StreamAppend};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Events to write, about: whole customers' lives, `events / 11.25` of them.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// The data directory (the log goes to `<dir>/log`, as `crm serve --data-dir` expects). It
    /// must not hold a log yet.
    #[arg(long)]
    data_dir: PathBuf,
    /// Years of business time the history spans, ending on 2026-12-01.
    #[arg(long, default_value_t = 10)]
    years: u32,
    /// Appends in flight (the writer groups them into batches).
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let log_dir = args.data_dir.join("log");
    if log_dir.exists() {
        anyhow::bail!(
            "{} already holds a log; fill writes a new one",
            log_dir.display()
        );
    }
    let runtime = crate::runtime()?;
    runtime.block_on(async {
        let log = EventLog::open(&log_dir, LogConfig::default())
            .with_context(|| format!("creating the log in {}", log_dir.display()))?;
        let started = Instant::now();
        fill(&log, args.events, args.years, args.in_flight).await?;
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "filled {} with {} events in {seconds:.1} s ({:.0} events/s)",
            log_dir.display(),
            log.head(),
            log.head() as f64 / seconds
        );
        log.shutdown().await;
        anyhow::Ok(())
    })
}

/// Events per customer's life, on average (see the module docs).
const EVENTS_PER_CUSTOMER: f64 = 11.25;
/// The last day of the history: 2026-12-01T00:00:00Z.
const HISTORY_END_MICROS: i64 = 1_764_547_200_000_000;

fn eur(amount_minor: i64) -> Money {
    Money::new(
        amount_minor,
        Currency::new("EUR").unwrap_or_else(|| unreachable!()),
    )
}

/// Appends `events / 11.25` customers' lives (about `events` events), and the setup and
/// campaigns.
pub async fn fill(log: &EventLog, events: u64, years: u32, in_flight: usize) -> anyhow::Result<()> {
    let customers = ((events as f64 / EVENTS_PER_CUSTOMER).ceil() as u64).max(1);
    let span = i64::from(years.max(1)) * 365 * MICROS_PER_DAY;
    let start = HISTORY_END_MICROS - span;
    let spacing = (span / customers as i64).max(1);
    append(log, vec![setup_events()], Timestamp::from_micros(start)).await?;
    append_units(
        log,
        customers,
        in_flight,
        move |n| Timestamp::from_micros(start + n as i64 * spacing),
        |n| {
            let mut streams = life(n);
            if n % 10_000 == 9_999 {
                streams.push(campaign_events(n));
            }
            streams
        },
    )
    .await
}

/// Appends units `0..units`, `in_flight` at a time (the writer groups them into batches):
/// unit `n` is the streams `streams(n)` in one command at business time `at(n)`.
pub(crate) async fn append_units(
    log: &EventLog,
    units: u64,
    in_flight: usize,
    at: impl Fn(u64) -> Timestamp + Clone + Send + 'static,
    streams: impl Fn(u64) -> Vec<(String, Vec<Event>)> + Clone + Send + 'static,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight.max(1) {
        let (log, next, at, streams) = (log.clone(), next.clone(), at.clone(), streams.clone());
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= units {
                    return anyhow::Ok(());
                }
                append(&log, streams(n), at(n)).await?;
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok(())
}

/// Appends the streams' events as one command; the i-th event of the command occurs `i`
/// minutes after `at`.
pub(crate) async fn append(
    log: &EventLog,
    streams: Vec<(String, Vec<Event>)>,
    at: Timestamp,
) -> anyhow::Result<()> {
    let mut minute = 0i64;
    let streams = streams
        .into_iter()
        .map(|(stream, events)| {
            let events = events
                .iter()
                .map(|event| {
                    let occurred = at.saturating_add_micros(minute * MICROS_PER_MINUTE);
                    minute += 1;
                    Ok(NewEvent {
                        event_type: event.event_type().to_owned(),
                        schema_version: event.schema_version(),
                        payload: encode_event(occurred, event)?,
                    })
                })
                .collect::<anyhow::Result<_>>()?;
            Ok(StreamAppend {
                stream,
                expected: ExpectedVersion::Any,
                events,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    log.append(AppendRequest {
        command_id: Uuid::now_v7(),
        request_hash: [0; 32],
        actor: Some("crm-bench fill".into()),
        correlation_id: None,
        causation_id: None,
        streams,
    })
    .await?;
    Ok(())
}

fn setup_events() -> (String, Vec<Event>) {
    (
        pipeline_stream("enterprise"),
        vec![Event::PipelineDefined(PipelineDefined {
            pipeline: "enterprise".into(),
            stages: ["prospect", "demo", "proposal", "negotiation"]
                .map(String::from)
                .to_vec(),
        })],
    )
}

fn campaign_events(n: u64) -> (String, Vec<Event>) {
    let campaign = Uuid::from_u64_pair(u64::MAX, n);
    (
        Aggregate::Campaign.stream_for(campaign),
        vec![
            Event::CampaignLaunched(CampaignLaunched {
                campaign_id: campaign,
                name: format!("Campaign {n}"),
                channel: CampaignChannel::ALL[(n / 10_000) as usize % CampaignChannel::ALL.len()],
                budget: Some(eur(1_000_000)),
            }),
            Event::CampaignSpendRecorded(CampaignSpendRecorded {
                campaign_id: campaign,
                amount: eur(250_000),
            }),
        ],
    )
}

/// Customer `n`'s life, by stream.
fn life(n: u64) -> Vec<(String, Vec<Event>)> {
    let id = |k: u64| Uuid::from_u64_pair(n, k);
    let (customer, won, other, order, ticket) = (id(1), id(2), id(3), id(4), id(5));
    let source = LeadSource::ALL[(n % LeadSource::ALL.len() as u64) as usize];
    let pipeline = if n.is_multiple_of(5) {
        "enterprise"
    } else {
        "default"
    };
    let (first, second) = if n.is_multiple_of(5) {
        ("prospect", "demo")
    } else {
        ("awareness", "interest")
    };
    let lead = |lead_id: Uuid, customer_id: Option<Uuid>| {
        Event::LeadCreated(LeadCreated {
            lead_id,
            name: format!("Lead {n}"),
            email: Some(format!("lead{n}@example.com")),
            phone: None,
            company: Some(format!("Company {}", n % 50_000)),
            source,
            campaign_id: None,
            customer_id,
            owner: Some(format!("rep-{}", n % 40)),
            estimated_value: Some(eur(100_000 + (n % 900) as i64 * 1_000)),
            pipeline: pipeline.into(),
            stage: first.into(),
        })
    };
    let mut other_events = vec![
        lead(other, None),
        Event::LeadScored(LeadScored {
            lead_id: other,
            score: (n % 101) as u8,
            reason: None,
        }),
    ];
    other_events.push(match n % 3 {
        0 => Event::LeadLost(LeadLost {
            lead_id: other,
            reason: "competitor".into(),
        }),
        1 => Event::LeadDisqualified(LeadDisqualified {
            lead_id: other,
            reason: "no budget".into(),
        }),
        _ => Event::FunnelStageAdvanced(FunnelStageAdvanced {
            lead_id: other,
            pipeline: pipeline.into(),
            from_stage: first.into(),
            to_stage: second.into(),
        }),
    });
    let survey = if n.is_multiple_of(2) {
        (SurveyKind::Nps, (n % 11) as u8)
    } else {
        (SurveyKind::Csat, 1 + (n % 5) as u8)
    };
    let amount = 20_000 + (n % 5_000) as i64 * 10;
    let mut order_events = vec![Event::OrderPlaced(OrderPlaced {
        order_id: order,
        customer_id: customer,
        amount: eur(amount),
        cost: Some(eur(amount / 2)),
        channel: OrderChannel::ALL[(n % OrderChannel::ALL.len() as u64) as usize],
        lead_id: Some(won),
    })];
    if n.is_multiple_of(4) {
        order_events.push(Event::OrderRefunded(OrderRefunded {
            order_id: order,
            customer_id: customer,
            amount: eur(amount / 4),
            reason: "damaged".into(),
        }));
    } else if n % 10 == 1 {
        order_events.push(Event::OrderCancelled(OrderCancelled {
            order_id: order,
            customer_id: customer,
            reason: "changed mind".into(),
        }));
    }
    let mut streams = vec![
        (
            Aggregate::Lead.stream_for(won),
            vec![
                lead(won, None),
                Event::FunnelStageAdvanced(FunnelStageAdvanced {
                    lead_id: won,
                    pipeline: pipeline.into(),
                    from_stage: first.into(),
                    to_stage: second.into(),
                }),
                Event::LeadWon(LeadWon {
                    lead_id: won,
                    deal_value: eur(120_000 + (n % 700) as i64 * 1_000),
                    customer_id: customer,
                    new_customer: true,
                }),
            ],
        ),
        (
            Aggregate::Customer.stream_for(customer),
            vec![
                Event::CustomerRegistered(CustomerRegistered {
                    customer_id: customer,
                    name: format!("Customer {n}"),
                    email: Some(format!("customer{n}@example.com")),
                    phone: None,
                    segment: Some(Segment::ALL[(n % Segment::ALL.len() as u64) as usize]),
                    industry: Some("retail".into()),
                    region: Some(format!("region-{}", n % 12)),
                    owner: Some(format!("rep-{}", n % 40)),
                    department: None,
                    source: Some(source),
                    from_lead: Some(won),
                }),
                Event::SurveyResponseRecorded(SurveyResponseRecorded {
                    customer_id: customer,
                    response_id: id(6),
                    kind: survey.0,
                    score: survey.1,
                    comment: None,
                }),
            ],
        ),
        (Aggregate::Lead.stream_for(other), other_events),
        (Aggregate::Order.stream_for(order), order_events),
    ];
    if n.is_multiple_of(2) {
        streams.push((
            Aggregate::Ticket.stream_for(ticket),
            vec![
                Event::TicketOpened(TicketOpened {
                    ticket_id: ticket,
                    customer_id: customer,
                    subject: "Where is my order?".into(),
                    category: TicketCategory::ALL[(n / 2 % 4) as usize],
                    priority: TicketPriority::ALL[(n / 2 % 4) as usize],
                    channel: TicketChannel::ALL[(n % TicketChannel::ALL.len() as u64) as usize],
                }),
                Event::TicketResponded(TicketResponded {
                    ticket_id: ticket,
                    responder: format!("agent-{}", n % 25),
                    public: true,
                    first_public_response: true,
                }),
                Event::TicketResolved(TicketResolved {
                    ticket_id: ticket,
                    resolution: "answered".into(),
                }),
                Event::TicketClosed(TicketClosed { ticket_id: ticket }),
            ],
        ));
    }
    streams
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_projector::Projection;
    use serde_json::json;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_filled_log_folds_into_every_read_model_with_the_expected_counts() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(&dir.path().join("log"), LogConfig::default()).unwrap();
        fill(&log, 2_000, 2, 8).await.unwrap();
        let head = log.head();
        assert!((1_900..2_100).contains(&head), "{head}");
        let customers = (2_000f64 / EVENTS_PER_CUSTOMER).ceil() as u64;

        let mut kpis = crm_proj_kpis::KpiProjection::new();
        let mut tickets = crm_proj_tickets::TicketsProjection::default();
        let mut next = 1;
        while next <= head {
            let records = log.read_all(next, 1000).unwrap();
            for record in &records {
                let envelope = crm_projector::envelope_of(record).unwrap();
                kpis.apply(&envelope);
                tickets.apply(&envelope);
                next = record.position + 1;
            }
        }
        let counters = kpis.query("kpi.get", &json!({})).unwrap()["kpis"]["counters"].clone();
        let written = |name: &str| counters[name].as_u64().unwrap_or_default();
        let lives = written("customers_registered");
        assert_eq!(lives, customers, "{counters}");
        assert_eq!(written("leads_created"), 2 * lives, "{counters}");
        assert_eq!(written("leads_won"), lives, "{counters}");
        let stats = tickets.query("tickets.stats", &json!({})).unwrap();
        assert_eq!(
            stats["reopens"]["tickets_opened"].as_u64(),
            Some(lives.div_ceil(2)),
            "{stats}"
        );
        assert_eq!(stats["backlog"]["total"], 0, "every ticket is closed");
    }
}
