//! The shipped NATS permissions (deploy/nats/auth.conf) on a real nats-server: a support
//! desk may send ticket commands and nothing else (docs/DESIGN.md rule 16).

use std::time::Duration;

use async_nats::HeaderMap;
use crm_eventlog::{EventLog, LogConfig};
use crm_testkit::{NatsServer, NatsServerOptions, TempDataDir};
use serde_json::json;
use uuid::Uuid;

const AUTH: &str = include_str!("../../../deploy/nats/auth.conf");

async fn request(
    client: &async_nats::Client,
    subject: &str,
    body: serde_json::Value,
) -> Option<serde_json::Value> {
    let mut headers = HeaderMap::new();
    headers.insert("Crm-Command-Id", Uuid::now_v7().to_string().as_str());
    let sent = client.request_with_headers(
        subject.to_owned(),
        headers,
        serde_json::to_vec(&body).unwrap().into(),
    );
    match tokio::time::timeout(Duration::from_secs(2), sent).await {
        Ok(Ok(reply)) => Some(serde_json::from_slice(&reply.payload).unwrap()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_support_desk_may_send_ticket_commands_only() {
    let nats = NatsServer::start_with(NatsServerOptions::with_config(AUTH)).unwrap();
    let dir = TempDataDir::new().unwrap();
    let log = EventLog::open(&dir.join("log"), LogConfig::default()).unwrap();
    let as_user = |user: &'static str, password: &'static str| {
        let url = nats.url();
        async move {
            async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
                .connect(url)
                .await
                .unwrap()
        }
    };
    let service = as_user("crm-service", "crm-service-dev").await;
    let handler = crm_service::CommandHandler::new(log.clone(), Default::default());
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(crm_service::serve_commands(
        service.clone(),
        handler,
        Default::default(),
        stop_rx,
    ));
    service.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let desk = as_user("support-desk", "support-desk-dev").await;
    let ticket = json!({"ticket_id": Uuid::now_v7(), "customer_id": Uuid::now_v7(), "subject": "Help", "category": "question", "priority": "low", "channel": "email"});
    let reply = request(&desk, "crm.cmd.ticket.OpenTicket", ticket)
        .await
        .expect("ticket command answered");
    assert_eq!(reply["status"], "accepted", "{reply}");
    let head = log.head();

    let lead = json!({"lead_id": Uuid::now_v7(), "name": "Mallory", "source": "web"});
    assert!(
        request(&desk, "crm.cmd.lead.CreateLead", lead.clone())
            .await
            .is_none(),
        "the server refuses the publish"
    );
    assert_eq!(log.head(), head, "nothing appended");

    let sales = as_user("sales-app", "sales-app-dev").await;
    let reply = request(&sales, "crm.cmd.lead.CreateLead", lead)
        .await
        .expect("sales may create leads");
    assert_eq!(reply["status"], "accepted", "{reply}");
    assert!(
        async_nats::ConnectOptions::with_user_and_password("support-desk".into(), "wrong".into())
            .connect(nats.url())
            .await
            .is_err(),
        "a wrong password is refused"
    );
}
