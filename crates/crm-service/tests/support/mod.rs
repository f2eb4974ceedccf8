//! An in-process command service, tailer and log API on a real nats-server and a real sled
//! directory, for the system tests of this crate.
#![allow(dead_code)]

use std::time::Duration;

use async_nats::{Client, HeaderMap};
use crm_eventlog::{EventLog, LogConfig};
use crm_service::{
    serve_commands, serve_log_api, CommandHandler, HandlerConfig, ServiceConfig, Tailer,
    TailerConfig,
};
use crm_testkit::{NatsServer, TempDataDir};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub struct Harness {
    pub nats: NatsServer,
    pub dir: TempDataDir,
    pub log: EventLog,
    pub client: Client,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

pub struct Reply {
    pub body: Value,
    pub headers: Option<HeaderMap>,
}

impl Reply {
    pub fn status(&self) -> &str {
        self.body["status"].as_str().unwrap_or("")
    }

    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_owned())
    }

    #[track_caller]
    pub fn assert_accepted(&self) -> &Self {
        assert_eq!(self.status(), "accepted", "reply: {}", self.body);
        self
    }

    #[track_caller]
    pub fn assert_rejected(&self, code: &str) -> &Self {
        assert_eq!(self.status(), "rejected", "reply: {}", self.body);
        assert_eq!(self.code(), code, "reply: {}", self.body);
        assert!(
            self.header("Nats-Service-Error-Code").is_some(),
            "no service error header"
        );
        self
    }

    pub fn last_position(&self) -> u64 {
        self.body["last_position"].as_u64().unwrap_or(0)
    }
}

impl Harness {
    pub async fn start() -> Harness {
        let nats = NatsServer::start().expect("nats-server");
        let dir = TempDataDir::new().expect("temp dir");
        let log = EventLog::open(&dir.join("log"), LogConfig::default()).expect("log");
        Self::with(nats, dir, log).await
    }

    pub async fn with(nats: NatsServer, dir: TempDataDir, log: EventLog) -> Harness {
        let client = nats.connect().await;
        let handler = CommandHandler::new(log.clone(), HandlerConfig::default());
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let c = client.clone();
        let s = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            serve_commands(c, handler, ServiceConfig::default(), s)
                .await
                .expect("command service");
        }));
        let tailer = Tailer::new(log.clone(), client.clone(), TailerConfig::default());
        let s = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            tailer.run(s).await.expect("tailer");
        }));
        let (c, l, s) = (client.clone(), log.clone(), stop_rx.clone());
        tasks.push(tokio::spawn(async move {
            serve_log_api(
                c,
                l,
                crm_wire::Subjects::default(),
                crm_ops::Instance::new(),
                s,
            )
            .await
            .expect("log api");
        }));
        // The subscriptions are made inside the tasks: wait until the service answers.
        let probe = Harness {
            nats,
            dir,
            log,
            client,
            stop,
            tasks,
        };
        for _ in 0..200 {
            if probe
                .client
                .request("crm.log.head", "".into())
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        probe.client.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(50)).await;
        probe
    }

    pub async fn send(&self, subject: &str, id: Uuid, body: Value) -> Reply {
        let mut headers = HeaderMap::new();
        headers.insert("Crm-Command-Id", id.to_string().as_str());
        self.send_raw(subject, headers, serde_json::to_vec(&body).unwrap())
            .await
    }

    pub async fn send_expecting(
        &self,
        subject: &str,
        id: Uuid,
        expected: &str,
        body: Value,
    ) -> Reply {
        let mut headers = HeaderMap::new();
        headers.insert("Crm-Command-Id", id.to_string().as_str());
        headers.insert("Crm-Expected-Version", expected);
        self.send_raw(subject, headers, serde_json::to_vec(&body).unwrap())
            .await
    }

    pub async fn send_raw(&self, subject: &str, headers: HeaderMap, body: Vec<u8>) -> Reply {
        let message = tokio::time::timeout(
            Duration::from_secs(20),
            self.client
                .request_with_headers(format!("crm.cmd.{subject}"), headers, body.into()),
        )
        .await
        .expect("reply within 20 s")
        .expect("request");
        let body: Value = serde_json::from_slice(&message.payload).expect("JSON reply");
        Reply {
            body,
            headers: message.headers,
        }
    }

    pub async fn shutdown(self) -> (NatsServer, TempDataDir, EventLog) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        (self.nats, self.dir, self.log)
    }
}

pub fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | n)
}

pub fn eur(amount_minor: i64) -> Value {
    serde_json::json!({"amount_minor": amount_minor, "currency": "EUR"})
}
