//! The command service on a real nats-server and a real sled log: every command's happy
//! path, typed refusals, idempotency, concurrency, and the tailer's JetStream stream.

mod support;

use std::time::Duration;

use async_nats::HeaderMap;
use serde_json::json;
use support::{eur, id, Harness};
use uuid::Uuid;

const AT: &str = "2026-11-02T10:00:00Z";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_is_accepted_on_its_happy_path_as_json() {
    let h = Harness::start().await;
    let (l1, l2, l3, c1, c2) = (id(1), id(2), id(3), id(4), id(5));
    let (o1, o2, t1, k1, contact, interaction, survey) =
        (id(6), id(7), id(8), id(9), id(10), id(11), id(12));
    let script: Vec<(&str, serde_json::Value)> = vec![
        (
            "lead.CreateLead",
            json!({"lead_id": l1, "name": "Ada", "email": "ada@example.com", "company": "Analytical", "source": "web", "estimated_value": eur(100_000), "occurred_at": AT}),
        ),
        (
            "lead.UpdateLeadDetails",
            json!({"lead_id": l1, "phone": "+44 20 7946 0000"}),
        ),
        (
            "lead.ScoreLead",
            json!({"lead_id": l1, "score": 80, "reason": "budget confirmed"}),
        ),
        ("lead.AssignLead", json!({"lead_id": l1, "owner": "grace"})),
        (
            "lead.AdvanceFunnelStage",
            json!({"lead_id": l1, "to_stage": "interest"}),
        ),
        (
            "lead.RevertFunnelStage",
            json!({"lead_id": l1, "to_stage": "awareness", "reason": "re-qualify"}),
        ),
        ("lead.QualifyLead", json!({"lead_id": l1})),
        (
            "lead.WinLead",
            json!({"lead_id": l1, "deal_value": eur(120_000), "customer_id": c1}),
        ),
        (
            "lead.CreateLead",
            json!({"lead_id": l2, "name": "Bob", "source": "referral"}),
        ),
        (
            "lead.DisqualifyLead",
            json!({"lead_id": l2, "reason": "no budget"}),
        ),
        (
            "lead.CreateLead",
            json!({"lead_id": l3, "name": "Cy", "source": "event"}),
        ),
        (
            "lead.LoseLead",
            json!({"lead_id": l3, "reason": "went elsewhere"}),
        ),
        (
            "customer.RegisterCustomer",
            json!({"customer_id": c2, "name": "Dora Ltd", "segment": "smb"}),
        ),
        (
            "customer.UpdateCustomerProfile",
            json!({"customer_id": c2, "industry": "retail", "region": "EU"}),
        ),
        (
            "customer.AssignCustomerOwner",
            json!({"customer_id": c2, "owner": "grace", "department": "sales"}),
        ),
        (
            "customer.AddContact",
            json!({"customer_id": c2, "contact_id": contact, "name": "Dora", "role": "CEO"}),
        ),
        (
            "customer.RemoveContact",
            json!({"customer_id": c2, "contact_id": contact}),
        ),
        (
            "customer.LogInteraction",
            json!({"customer_id": c2, "interaction_id": interaction, "kind": "call", "occurred_at": AT}),
        ),
        (
            "customer.RecordSurveyResponse",
            json!({"customer_id": c2, "response_id": survey, "kind": "nps", "score": 9}),
        ),
        (
            "customer.MarkCustomerChurned",
            json!({"customer_id": c2, "reason": "price"}),
        ),
        ("customer.ReactivateCustomer", json!({"customer_id": c2})),
        (
            "order.PlaceOrder",
            json!({"order_id": o1, "customer_id": c1, "amount": eur(40_000), "cost": eur(10_000), "channel": "online"}),
        ),
        (
            "order.RefundOrder",
            json!({"order_id": o1, "amount": eur(5_000), "reason": "damaged"}),
        ),
        (
            "order.PlaceOrder",
            json!({"order_id": o2, "customer_id": c1, "amount": eur(1_000), "channel": "store"}),
        ),
        (
            "order.CancelOrder",
            json!({"order_id": o2, "reason": "duplicate"}),
        ),
        (
            "ticket.OpenTicket",
            json!({"ticket_id": t1, "customer_id": c1, "subject": "Login fails", "category": "incident", "priority": "normal", "channel": "email"}),
        ),
        (
            "ticket.AssignTicket",
            json!({"ticket_id": t1, "assignee": "linus"}),
        ),
        (
            "ticket.RespondToTicket",
            json!({"ticket_id": t1, "responder": "linus", "public": true}),
        ),
        (
            "ticket.EscalateTicket",
            json!({"ticket_id": t1, "priority": "high"}),
        ),
        (
            "ticket.ResolveTicket",
            json!({"ticket_id": t1, "resolution": "reset password"}),
        ),
        (
            "ticket.ReopenTicket",
            json!({"ticket_id": t1, "reason": "fails again"}),
        ),
        ("ticket.CloseTicket", json!({"ticket_id": t1})),
        (
            "campaign.LaunchCampaign",
            json!({"campaign_id": k1, "name": "Winter", "channel": "email", "budget": eur(500_000)}),
        ),
        (
            "campaign.RecordCampaignSpend",
            json!({"campaign_id": k1, "amount": eur(20_000)}),
        ),
        (
            "campaign.RecordCampaignReach",
            json!({"campaign_id": k1, "sent": 1000}),
        ),
        (
            "campaign.RecordCampaignResponse",
            json!({"campaign_id": k1, "responses": 37}),
        ),
        ("campaign.EndCampaign", json!({"campaign_id": k1})),
        (
            "pipeline.DefinePipeline",
            json!({"pipeline": "enterprise", "stages": ["intro", "demo", "proposal"]}),
        ),
    ];
    let mut names = std::collections::BTreeSet::new();
    let mut last = 0;
    for (subject, body) in script {
        let reply = h.send(subject, Uuid::now_v7(), body).await;
        reply.assert_accepted();
        assert!(
            reply.last_position() > last,
            "positions grow: {}",
            reply.body
        );
        last = reply.last_position();
        names.insert(subject.to_owned());
    }
    // Derived from the contract: a new command fails here until the script accepts it.
    let expected: std::collections::BTreeSet<String> = crm_domain::Command::NAMES
        .iter()
        .map(|(aggregate, name)| format!("{aggregate}.{name}"))
        .collect();
    let missing: Vec<_> = expected.difference(&names).collect();
    let unknown: Vec<_> = names.difference(&expected).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "commands without a happy path here: {missing:?}; subjects that are no command: {unknown:?}"
    );
    // WinLead registered customer c1 atomically with the lead's LeadWon.
    assert_eq!(h.log.stream_version(&format!("customer-{c1}")).unwrap(), 1);
    assert_eq!(h.log.head(), last);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_come_back_typed_with_service_headers_and_append_nothing() {
    let h = Harness::start().await;
    let lead = id(20);
    h.send(
        "lead.CreateLead",
        id(100),
        json!({"lead_id": lead, "name": "Ada", "source": "web"}),
    )
    .await
    .assert_accepted();
    let head = h.log.head();
    let cases: Vec<(&str, serde_json::Value, &str, &str)> = vec![
        (
            "lead.CreateLead",
            json!({"lead_id": lead, "name": "Ada", "source": "web"}),
            "already_exists",
            "409",
        ),
        (
            "lead.ScoreLead",
            json!({"lead_id": lead, "score": 101}),
            "validation_failed",
            "400",
        ),
        (
            "lead.AdvanceFunnelStage",
            json!({"lead_id": lead, "to_stage": "decision"}),
            "invalid_transition",
            "400",
        ),
        (
            "lead.QualifyLead",
            json!({"lead_id": id(21)}),
            "not_found",
            "404",
        ),
        (
            "customer.RegisterCustomer",
            json!({"customer_id": id(22), "name": "X", "email": "not-an-email"}),
            "validation_failed",
            "400",
        ),
        (
            "lead.UpdateLeadDetails",
            json!({"lead_id": lead, "name": "Ada"}),
            "no_change",
            "400",
        ),
        (
            "order.PlaceOrder",
            json!({"order_id": id(23), "customer_id": id(22), "amount": {"amount_minor": 100, "currency": "XYZ"}, "channel": "online"}),
            "validation_failed",
            "400",
        ),
    ];
    for (subject, body, code, status) in cases {
        let reply = h.send(subject, Uuid::now_v7(), body).await;
        reply.assert_rejected(code);
        assert_eq!(
            reply.header("Nats-Service-Error-Code").as_deref(),
            Some(status),
            "{subject}"
        );
        assert!(reply.header("Nats-Service-Error").is_some());
    }
    // Wrong expected version carries the current version.
    let reply = h
        .send_expecting(
            "lead.ScoreLead",
            Uuid::now_v7(),
            "7",
            json!({"lead_id": lead, "score": 5}),
        )
        .await;
    reply.assert_rejected("wrong_expected_version");
    assert_eq!(reply.body["current_version"], 1);
    assert_eq!(h.log.head(), head, "no rejected command appended anything");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_command_id_returns_the_original_reply_and_appends_nothing() {
    let h = Harness::start().await;
    let command = Uuid::now_v7();
    let body = json!({"lead_id": id(30), "name": "Ada", "source": "web"});
    let first = h.send("lead.CreateLead", command, body.clone()).await;
    first.assert_accepted();
    let head = h.log.head();
    // The same body with its keys in another order is the same command.
    let reordered = json!({"source": "web", "name": "Ada", "lead_id": id(30)});
    let retry = h.send("lead.CreateLead", command, reordered).await;
    retry.assert_accepted();
    assert_eq!(retry.body["duplicate"], true);
    for field in [
        "stream",
        "version",
        "first_position",
        "last_position",
        "command_id",
    ] {
        assert_eq!(retry.body[field], first.body[field], "{field}");
    }
    assert_eq!(h.log.head(), head);
    let other = h
        .send(
            "lead.CreateLead",
            command,
            json!({"lead_id": id(30), "name": "Eve", "source": "web"}),
        )
        .await;
    other.assert_rejected("idempotency_key_reused");
    assert_eq!(h.log.head(), head);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_advances_with_one_expected_version_accept_exactly_one() {
    let h = std::sync::Arc::new(Harness::start().await);
    let lead = id(40);
    h.send(
        "lead.CreateLead",
        Uuid::now_v7(),
        json!({"lead_id": lead, "name": "Ada", "source": "web"}),
    )
    .await
    .assert_accepted();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            h.send_expecting(
                "lead.AdvanceFunnelStage",
                Uuid::now_v7(),
                "1",
                json!({"lead_id": lead, "to_stage": "interest"}),
            )
            .await
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        let reply = task.await.unwrap();
        match reply.status() {
            "accepted" => accepted += 1,
            _ => {
                reply.assert_rejected("wrong_expected_version");
                assert_eq!(reply.body["current_version"], 2);
            }
        }
    }
    assert_eq!(accepted, 1);
    assert_eq!(h.log.stream_version(&format!("lead-{lead}")).unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_typed_appends_nothing_and_leaves_the_service_working() {
    let h = Harness::start().await;
    let head = h.log.head();
    let with_id = || {
        let mut headers = HeaderMap::new();
        headers.insert("Crm-Command-Id", Uuid::now_v7().to_string().as_str());
        headers
    };
    let oversized = json!({"lead_id": id(50), "name": "x".repeat(70 * 1024), "source": "web"});
    let reply = h
        .send_raw(
            "lead.CreateLead",
            with_id(),
            serde_json::to_vec(&oversized).unwrap(),
        )
        .await;
    reply.assert_rejected("payload_too_large");
    assert_eq!(
        reply.header("Nats-Service-Error-Code").as_deref(),
        Some("413")
    );
    h.send_raw("lead.CreateLead", with_id(), b"{\"lead_id\": ".to_vec())
        .await
        .assert_rejected("malformed");
    h.send_raw("lead.CreateLead", with_id(), br#"{"lead_id":"0190f1b2-0000-7000-8000-000000000001","name":"A","source":"web","extra":1}"#.to_vec()).await.assert_rejected("malformed");
    h.send_raw("lead.FlyToTheMoon", with_id(), b"{}".to_vec())
        .await
        .assert_rejected("unknown_command");
    h.send_raw("spaceship.CreateLead", with_id(), b"{}".to_vec())
        .await
        .assert_rejected("unknown_command");
    h.send_raw(
        "lead.CreateLead",
        HeaderMap::new(),
        br#"{"lead_id":"0190f1b2-0000-7000-8000-000000000001","name":"A","source":"web"}"#.to_vec(),
    )
    .await
    .assert_rejected("missing_command_id");
    let mut bad_id = HeaderMap::new();
    bad_id.insert("Crm-Command-Id", "not-a-uuid");
    h.send_raw("lead.CreateLead", bad_id, b"{}".to_vec())
        .await
        .assert_rejected("malformed");
    assert_eq!(h.log.head(), head, "nothing appended");
    h.send(
        "lead.CreateLead",
        Uuid::now_v7(),
        json!({"lead_id": id(51), "name": "Ada", "source": "web"}),
    )
    .await
    .assert_accepted();
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bincode_commands_get_bincode_replies() {
    let h = Harness::start().await;
    let command: crm_domain::Command = serde_json::from_value(
        json!({"type": "CreateLead", "data": {"lead_id": id(60), "name": "Ada", "source": "web"}}),
    )
    .unwrap();
    let body = crm_wire::encode_command(&command, crm_wire::ContentType::Bincode);
    let mut headers = HeaderMap::new();
    headers.insert("Crm-Command-Id", Uuid::now_v7().to_string().as_str());
    headers.insert("Content-Type", "application/x-bincode");
    let message = h
        .client
        .request_with_headers("crm.cmd.lead.CreateLead", headers, body.into())
        .await
        .unwrap();
    let reply = crm_wire::decode_reply(&message.payload, crm_wire::ContentType::Bincode).unwrap();
    assert!(
        matches!(reply, crm_wire::CommandReply::Accepted(ref a) if a.version == 1),
        "{reply:?}"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_holds_every_event_in_position_order_after_ten_thousand_mixed_commands() {
    let h = std::sync::Arc::new(Harness::start().await);
    let total = 10_000u128;
    let in_flight = 64;
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(in_flight));
    let mut tasks = Vec::new();
    for i in 0..total {
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            // A mix: leads created then advanced, customers registered, tickets opened.
            let n = i / 4;
            let (subject, body) = match i % 4 {
                0 => ("lead.CreateLead", json!({"lead_id": id(1_000_000 + n), "name": "L", "source": "web"})),
                1 => ("customer.RegisterCustomer", json!({"customer_id": id(2_000_000 + n), "name": "C"})),
                2 => ("ticket.OpenTicket", json!({"ticket_id": id(3_000_000 + n), "customer_id": id(2_000_000 + n), "subject": "s", "category": "question", "priority": "low", "channel": "web"})),
                _ => ("lead.ScoreLead", json!({"lead_id": id(1_000_000 + n), "score": 50})),
            };
            let reply = h.send(subject, Uuid::now_v7(), body).await;
            drop(permit);
            reply
        }));
    }
    let mut accepted = 0u64;
    for task in tasks {
        let reply = task.await.unwrap();
        if reply.status() == "accepted" {
            accepted += 1;
        } else {
            // A score may race ahead of its lead's creation: typed not_found, nothing else.
            reply.assert_rejected("not_found");
        }
    }
    let head = h.log.head();
    assert_eq!(head, accepted, "one event per accepted command");
    assert!(accepted >= 7_500);

    let js = async_nats::jetstream::new(h.client.clone());
    let stream = js.get_stream("CRM_EVENTS").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let info = stream.get_info().await.unwrap();
        if info.state.messages >= head || tokio::time::Instant::now() > deadline {
            assert_eq!(
                info.state.messages, head,
                "every event published, none twice"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for expected in 1..=head {
        // Stream sequences are the positions: the stream began empty with this log.
        let message = stream.get_raw_message(expected).await.unwrap();
        let headers = &message.headers;
        let position: u64 = headers
            .get("Crm-Position")
            .unwrap()
            .as_str()
            .parse()
            .unwrap();
        assert_eq!(position, expected, "position order, no gaps");
        assert_eq!(
            headers
                .get(async_nats::header::NATS_MESSAGE_ID)
                .map(|v| v.as_str().to_owned()),
            Some(format!("crm-pos-{expected}")),
            "{headers:?}"
        );
        let record = crm_eventlog::Record::decode(
            &message.payload,
            &crm_eventlog::LogConfig::default().record_limits(),
        )
        .unwrap();
        assert_eq!(record.position, expected);
        assert_eq!(
            headers.get("Crm-Event-Type").unwrap().as_str(),
            record.event_type
        );
        assert!(message.subject.as_str().starts_with("crm.evt."));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_page_above_the_nats_payload_limit_is_cut_and_the_service_stays_connected() {
    let h = Harness::start().await;
    let subject = "s".repeat(2000);
    for n in 0..700u128 {
        h.send(
            "ticket.OpenTicket",
            Uuid::now_v7(),
            json!({"ticket_id": id(900_000 + n), "customer_id": id(1), "subject": subject, "category": "question", "priority": "low", "channel": "web"}),
        )
        .await
        .assert_accepted();
    }
    for format in ["bincode", "json"] {
        let request = json!({"from": 1, "max": 1000, "format": format});
        let reply = tokio::time::timeout(
            Duration::from_secs(10),
            h.client
                .request("crm.log.read", serde_json::to_vec(&request).unwrap().into()),
        )
        .await
        .expect("a reply, not a dropped connection")
        .unwrap();
        assert!(
            reply.payload.len() <= h.client.server_info().max_payload,
            "{format}"
        );
        let count = if format == "json" {
            let page: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
            page["events"].as_array().unwrap().len()
        } else {
            crm_wire::LogReadReply::decode(&reply.payload)
                .unwrap()
                .records
                .len()
        };
        assert!(
            count > 0 && count < 700,
            "{format}: a page cut by bytes, got {count}"
        );
    }
    // The connection survived: commands still work.
    h.send(
        "lead.CreateLead",
        Uuid::now_v7(),
        json!({"lead_id": id(77), "name": "Ada", "source": "web"}),
    )
    .await
    .assert_accepted();
    h.shutdown().await;
}
