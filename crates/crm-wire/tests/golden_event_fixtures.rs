//! Golden fixtures (docs/DESIGN.md rule 6): the bytes of one stored envelope per event type and schema
//! version, committed under `tests/fixtures/events/`. They must decode forever, to the values
//! below. A schema change adds an upcaster and a new fixture; it never edits an old one.
//!
//! `CRM_WRITE_MISSING_FIXTURES=1 cargo test -p crm-wire --test golden_event_fixtures` writes
//! fixtures that do not exist yet; existing files are never overwritten.

use std::path::PathBuf;

use crm_domain::codec::{decode_event, encode_event};
use crm_domain::event::*;
use crm_domain::types::*;
use crm_domain::{Currency, Event, Money, Timestamp};
use crm_eventlog::{Record, RecordLimits};
use uuid::Uuid;

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/events")
}

fn uuid(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | n)
}

fn eur(amount_minor: i64) -> Money {
    Money::new(
        amount_minor,
        Currency::new("EUR").unwrap_or_else(|| unreachable!()),
    )
}

fn some(text: &str) -> Option<String> {
    Some(text.to_owned())
}

/// One sample of every event type, with every optional field set where it has one.
fn samples() -> Vec<Event> {
    let (lead, customer, order, ticket, campaign, contact) =
        (uuid(1), uuid(2), uuid(3), uuid(4), uuid(5), uuid(6));
    vec![
        Event::LeadCreated(LeadCreated {
            lead_id: lead,
            name: "Ada Lovelace".into(),
            email: some("ada@example.com"),
            phone: some("+44 20 7946 0000"),
            company: some("Analytical Engines"),
            source: LeadSource::Referral,
            campaign_id: Some(campaign),
            customer_id: Some(customer),
            owner: some("grace"),
            estimated_value: Some(eur(100_000)),
            pipeline: "default".into(),
            stage: "awareness".into(),
        }),
        Event::LeadDetailsUpdated(LeadDetailsUpdated {
            lead_id: lead,
            name: some("Ada King"),
            email: some("ada@king.example"),
            phone: some("+44 1"),
            company: some("AE Ltd"),
            estimated_value: Some(eur(120_000)),
        }),
        Event::LeadScored(LeadScored {
            lead_id: lead,
            score: 87,
            reason: some("budget confirmed"),
        }),
        Event::LeadAssigned(LeadAssigned {
            lead_id: lead,
            previous_owner: some("grace"),
            owner: "linus".into(),
        }),
        Event::FunnelStageAdvanced(FunnelStageAdvanced {
            lead_id: lead,
            pipeline: "default".into(),
            from_stage: "awareness".into(),
            to_stage: "interest".into(),
        }),
        Event::FunnelStageReverted(FunnelStageReverted {
            lead_id: lead,
            pipeline: "default".into(),
            from_stage: "interest".into(),
            to_stage: "awareness".into(),
            reason: "re-qualify".into(),
        }),
        Event::LeadQualified(LeadQualified { lead_id: lead }),
        Event::LeadDisqualified(LeadDisqualified {
            lead_id: lead,
            reason: "no budget".into(),
        }),
        Event::LeadWon(LeadWon {
            lead_id: lead,
            deal_value: eur(300_000),
            customer_id: customer,
            new_customer: true,
        }),
        Event::LeadLost(LeadLost {
            lead_id: lead,
            reason: "competitor".into(),
        }),
        Event::CustomerRegistered(CustomerRegistered {
            customer_id: customer,
            name: "Analytical Engines".into(),
            email: some("ops@ae.example"),
            phone: some("+44 2"),
            segment: Some(Segment::MidMarket),
            industry: some("machinery"),
            region: some("EU"),
            owner: some("grace"),
            department: some("sales"),
            source: Some(LeadSource::Web),
            from_lead: Some(lead),
        }),
        Event::CustomerProfileUpdated(CustomerProfileUpdated {
            customer_id: customer,
            name: some("AE"),
            email: some("a@ae.example"),
            phone: some("+44 3"),
            segment: Some(Segment::Enterprise),
            industry: some("software"),
            region: some("UK"),
        }),
        Event::CustomerOwnerAssigned(CustomerOwnerAssigned {
            customer_id: customer,
            previous_owner: some("grace"),
            previous_department: some("sales"),
            owner: some("linus"),
            department: None,
        }),
        Event::ContactAdded(ContactAdded {
            customer_id: customer,
            contact_id: contact,
            name: "Charles".into(),
            role: some("CTO"),
            email: some("c@ae.example"),
            phone: some("+44 4"),
        }),
        Event::ContactRemoved(ContactRemoved {
            customer_id: customer,
            contact_id: contact,
        }),
        Event::InteractionLogged(InteractionLogged {
            customer_id: customer,
            interaction_id: uuid(7),
            kind: InteractionKind::Meeting,
            channel: some("zoom"),
        }),
        Event::SurveyResponseRecorded(SurveyResponseRecorded {
            customer_id: customer,
            response_id: uuid(8),
            kind: SurveyKind::Nps,
            score: 9,
            comment: some("great"),
        }),
        Event::CustomerChurned(CustomerChurned {
            customer_id: customer,
            reason: "price".into(),
        }),
        Event::CustomerReactivated(CustomerReactivated {
            customer_id: customer,
        }),
        Event::OrderPlaced(OrderPlaced {
            order_id: order,
            customer_id: customer,
            amount: eur(60_000),
            cost: Some(eur(20_000)),
            channel: OrderChannel::Online,
            lead_id: Some(lead),
        }),
        Event::OrderRefunded(OrderRefunded {
            order_id: order,
            customer_id: customer,
            amount: eur(10_000),
            reason: "damaged".into(),
        }),
        Event::OrderCancelled(OrderCancelled {
            order_id: order,
            customer_id: customer,
            reason: "duplicate".into(),
        }),
        Event::TicketOpened(TicketOpened {
            ticket_id: ticket,
            customer_id: customer,
            subject: "Login fails".into(),
            category: TicketCategory::Complaint,
            priority: TicketPriority::Normal,
            channel: TicketChannel::InPerson,
        }),
        Event::TicketAssigned(TicketAssigned {
            ticket_id: ticket,
            assignee: "linus".into(),
        }),
        Event::TicketResponded(TicketResponded {
            ticket_id: ticket,
            responder: "linus".into(),
            public: true,
            first_public_response: true,
        }),
        Event::TicketEscalated(TicketEscalated {
            ticket_id: ticket,
            from_priority: TicketPriority::Normal,
            priority: TicketPriority::Urgent,
        }),
        Event::TicketResolved(TicketResolved {
            ticket_id: ticket,
            resolution: "password reset".into(),
        }),
        Event::TicketClosed(TicketClosed { ticket_id: ticket }),
        Event::TicketReopened(TicketReopened {
            ticket_id: ticket,
            reason: "fails again".into(),
        }),
        Event::CampaignLaunched(CampaignLaunched {
            campaign_id: campaign,
            name: "Winter".into(),
            channel: CampaignChannel::Social,
            budget: Some(eur(500_000)),
        }),
        Event::CampaignSpendRecorded(CampaignSpendRecorded {
            campaign_id: campaign,
            amount: eur(25_000),
        }),
        Event::CampaignReachRecorded(CampaignReachRecorded {
            campaign_id: campaign,
            sent: 12_000,
        }),
        Event::CampaignResponseRecorded(CampaignResponseRecorded {
            campaign_id: campaign,
            responses: 340,
        }),
        Event::CampaignEnded(CampaignEnded {
            campaign_id: campaign,
        }),
        Event::PipelineDefined(PipelineDefined {
            pipeline: "enterprise".into(),
            stages: vec!["intro".into(), "demo".into(), "proposal".into()],
        }),
    ]
}

const OCCURRED_AT_US: i64 = 1_793_786_400_000_000; // 2026-11-04T09:20:00Z
const RECORDED_AT_US: i64 = 1_793_786_412_345_678;

fn envelope(position: u64, event: &Event) -> Record {
    Record {
        format_version: crm_eventlog::record::FORMAT_VERSION,
        position,
        stream: format!("{}-{}", event.aggregate(), uuid(100 + position as u128)),
        stream_version: position,
        event_type: event.event_type().to_owned(),
        schema_version: event.schema_version(),
        command_id: uuid(1000 + position as u128),
        recorded_at_us: RECORDED_AT_US,
        actor: some("svc-desk"),
        correlation_id: some("corr-42"),
        causation_id: None,
        payload: encode_event(Timestamp::from_micros(OCCURRED_AT_US), event).unwrap(),
    }
}

fn fixture_path(event: &Event) -> PathBuf {
    fixtures_dir().join(format!(
        "{}.v{}.bin",
        event.event_type(),
        event.schema_version()
    ))
}

#[test]
fn every_event_type_has_a_sample() {
    let samples = samples();
    assert_eq!(samples.len(), Event::TYPES.len());
    for (_, name, _) in Event::TYPES {
        assert!(
            samples.iter().any(|e| e.event_type() == *name),
            "no sample for {name}"
        );
    }
}

#[test]
fn golden_fixtures_decode_to_their_events_forever() {
    let write_missing = std::env::var_os("CRM_WRITE_MISSING_FIXTURES").is_some();
    for (i, event) in samples().iter().enumerate() {
        let expected = envelope(i as u64 + 1, event);
        let path = fixture_path(event);
        if !path.exists() && write_missing {
            std::fs::write(&path, expected.encode().unwrap()).unwrap();
        }
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("missing fixture {}: {e}", path.display()));
        let record = Record::decode(&bytes, &RecordLimits::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(record, expected, "{}", path.display());
        let stamped = decode_event(&record.event_type, record.schema_version, &record.payload)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(&stamped.event, event);
        assert_eq!(stamped.occurred_at.as_micros(), OCCURRED_AT_US);
        // Today's build writes exactly the committed bytes for the current schema version.
        assert_eq!(
            expected.encode().unwrap(),
            bytes,
            "{} changed",
            path.display()
        );
    }
}

#[test]
fn a_damaged_fixture_is_refused_not_misread() {
    let event = &samples()[0];
    let mut bytes = std::fs::read(fixture_path(event)).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    assert!(Record::decode(&bytes, &RecordLimits::default()).is_err());
}
