//! The tailer's resume rules against a real JetStream: a stream behind the log is filled up;
//! a stream ahead of the log is an alarm that stops the tailer.

use std::time::Duration;

use async_nats::HeaderMap;
use crm_eventlog::{AppendRequest, EventLog, ExpectedVersion, LogConfig, NewEvent, StreamAppend};
use crm_service::{ServiceError, Tailer, TailerConfig};
use crm_testkit::{NatsServer, TempDataDir};
use tokio::sync::watch;
use uuid::Uuid;

async fn append_leads(log: &EventLog, count: u128) {
    for n in 0..count {
        let lead = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | n);
        let event =
            crm_domain::Event::LeadQualified(crm_domain::event::LeadQualified { lead_id: lead });
        log.append(AppendRequest {
            command_id: Uuid::now_v7(),
            request_hash: [0; 32],
            actor: None,
            correlation_id: None,
            causation_id: None,
            streams: vec![StreamAppend {
                stream: format!("lead-{lead}"),
                expected: ExpectedVersion::Any,
                events: vec![NewEvent {
                    event_type: event.event_type().to_owned(),
                    schema_version: event.schema_version(),
                    payload: crm_domain::codec::encode_event(
                        crm_domain::Timestamp::from_micros(0),
                        &event,
                    )
                    .unwrap(),
                }],
            }],
        })
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tailer_restarted_on_a_stream_behind_the_log_publishes_the_rest_once() {
    let nats = NatsServer::start().unwrap();
    let dir = TempDataDir::new().unwrap();
    let log = EventLog::open(&dir.join("log"), LogConfig::default()).unwrap();
    let client = nats.connect().await;
    append_leads(&log, 30).await;
    let (stop, stop_rx) = watch::channel(false);
    let first = tokio::spawn(
        Tailer::new(log.clone(), client.clone(), TailerConfig::default()).run(stop_rx),
    );
    let js = async_nats::jetstream::new(client.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(stream) = js.get_stream("CRM_EVENTS").await {
            if stream.get_info().await.unwrap().state.messages == 30 {
                break;
            }
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(true);
    first.await.unwrap().unwrap();

    // More events while no tailer runs; a new tailer resumes from the stream's last position.
    append_leads(&log, 20).await;
    let (_stop, stop_rx) = watch::channel(false);
    tokio::spawn(Tailer::new(log.clone(), client.clone(), TailerConfig::default()).run(stop_rx));
    let stream = js.get_stream("CRM_EVENTS").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while stream.get_info().await.unwrap().state.messages < 50 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        stream.get_info().await.unwrap().state.messages,
        50,
        "no duplicates"
    );
    for sequence in 1..=50u64 {
        let message = stream.get_raw_message(sequence).await.unwrap();
        assert_eq!(
            message.headers.get("Crm-Position").unwrap().as_str(),
            sequence.to_string()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ahead_of_the_log_stops_the_tailer_with_an_alarm() {
    let nats = NatsServer::start().unwrap();
    let dir = TempDataDir::new().unwrap();
    let log = EventLog::open(&dir.join("log"), LogConfig::default()).unwrap();
    append_leads(&log, 2).await;
    let client = nats.connect().await;
    let js = async_nats::jetstream::new(client.clone());
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "CRM_EVENTS".into(),
        subjects: vec!["crm.evt.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    // The stream claims position 9: it belongs to another (or a lost) log.
    let mut headers = HeaderMap::new();
    headers.insert("Crm-Position", "9");
    js.publish_with_headers("crm.evt.lead.LeadQualified", headers, "x".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let tailer = Tailer::new(log.clone(), client.clone(), TailerConfig::default());
    let status = tailer.status();
    let (_stop, stop_rx) = watch::channel(false);
    let result = tokio::time::timeout(Duration::from_secs(20), tailer.run(stop_rx))
        .await
        .unwrap();
    assert!(
        matches!(
            result,
            Err(ServiceError::StreamAheadOfLog {
                stream_position: 9,
                log_head: 2,
                ..
            })
        ),
        "{result:?}"
    );
    assert!(status.borrow().failed.is_some());
    let stream = js.get_stream("CRM_EVENTS").await.unwrap();
    assert_eq!(
        stream.get_info().await.unwrap().state.messages,
        1,
        "nothing published over it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purged_stream_is_an_alarm_not_a_reason_to_republish_everything() {
    let nats = NatsServer::start().unwrap();
    let dir = TempDataDir::new().unwrap();
    let log = EventLog::open(&dir.join("log"), LogConfig::default()).unwrap();
    append_leads(&log, 3).await;
    let client = nats.connect().await;
    let js = async_nats::jetstream::new(client.clone());
    let mut stream = js
        .create_stream(async_nats::jetstream::stream::Config {
            name: "CRM_EVENTS".into(),
            subjects: vec!["crm.evt.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("Crm-Position", "1");
    js.publish_with_headers("crm.evt.lead.LeadQualified", headers, "x".into())
        .await
        .unwrap()
        .await
        .unwrap();
    stream.purge().await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 0);
    let (_stop, stop_rx) = watch::channel(false);
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        Tailer::new(log.clone(), client.clone(), TailerConfig::default()).run(stop_rx),
    )
    .await
    .unwrap();
    assert!(
        matches!(
            result,
            Err(ServiceError::StreamEmptied {
                last_sequence: 1,
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(
        js.get_stream("CRM_EVENTS")
            .await
            .unwrap()
            .get_info()
            .await
            .unwrap()
            .state
            .messages,
        0
    );
}
