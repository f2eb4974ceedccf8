//! The nats-server fixture against a real nats-server: ports, clients, JetStream, restarts, teardown.

use std::error::Error;
use std::time::Duration;

use async_nats::jetstream;
use crm_testkit::{wait_until_connected, NatsServer, NatsServerOptions, TestkitError};
use futures::StreamExt;

type TestResult = Result<(), Box<dyn Error + Send + Sync>>;

fn process_exists(pid: u32) -> bool {
    let raw = i32::try_from(pid).expect("pid fits in i32");
    let pid = rustix::process::Pid::from_raw(raw).expect("pid is positive");
    rustix::process::test_kill_process(pid).is_ok()
}

async fn create_events_stream(
    js: &jetstream::Context,
) -> Result<jetstream::stream::Stream, Box<dyn Error + Send + Sync>> {
    let config = jetstream::stream::Config {
        name: "EVENTS".to_owned(),
        subjects: vec!["evt.>".to_owned()],
        ..Default::default()
    };
    Ok(js.create_stream(config).await?)
}

#[test]
fn two_servers_start_in_parallel_on_different_ports() -> TestResult {
    let first = std::thread::spawn(NatsServer::start);
    let second = std::thread::spawn(NatsServer::start);
    let first = first.join().expect("thread")?;
    let second = second.join().expect("thread")?;
    assert_ne!(first.port(), second.port());
    assert_ne!(first.store_dir(), second.store_dir());
    for server in [&first, &second] {
        std::net::TcpStream::connect(("127.0.0.1", server.port()))?;
        assert_eq!(server.url(), format!("nats://127.0.0.1:{}", server.port()));
    }
    Ok(())
}

#[tokio::test]
async fn request_reply_round_trips_through_the_server() -> TestResult {
    let server = NatsServer::start()?;
    let client = server.connect().await;
    let mut requests = client.subscribe("svc.echo").await?;
    let responder = client.clone();
    tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            if let Some(reply) = request.reply {
                let _ = responder.publish(reply, request.payload).await;
            }
        }
    });
    let reply = client.request("svc.echo", "ping".into()).await?;
    assert_eq!(reply.payload.as_ref(), b"ping");
    Ok(())
}

#[tokio::test]
async fn jetstream_stream_stores_and_returns_messages() -> TestResult {
    let server = NatsServer::start()?;
    let js = jetstream::new(server.connect().await);
    let stream = create_events_stream(&js).await?;
    let ack = js
        .publish("evt.lead.LeadCreated", "first".into())
        .await?
        .await?;
    assert_eq!(ack.sequence, 1);
    let message = stream.get_raw_message(1).await?;
    assert_eq!(message.subject.as_str(), "evt.lead.LeadCreated");
    assert_eq!(message.payload.as_ref(), b"first");
    assert!(server.store_dir().join("jetstream").is_dir());
    Ok(())
}

// Multi-threaded so the client notices the outage while the test thread blocks in stop/restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_on_same_port_keeps_jetstream_messages() -> TestResult {
    let mut server = NatsServer::start()?;
    let client = server.connect().await;
    let js = jetstream::new(client.clone());
    create_events_stream(&js).await?;
    for payload in ["one", "two", "three"] {
        js.publish("evt.order.OrderPlaced", payload.into())
            .await?
            .await?;
    }
    let (port, pid_before) = (server.port(), server.pid());

    server.stop()?;
    assert_eq!(server.pid(), None);
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.restart()?;

    assert_eq!(server.port(), port);
    assert!(server.pid().is_some() && server.pid() != pid_before);
    wait_until_connected(&client, Duration::from_secs(5)).await?;
    let mut stream = js.get_stream("EVENTS").await?;
    assert_eq!(stream.info().await?.state.messages, 3);
    assert_eq!(stream.get_raw_message(3).await?.payload.as_ref(), b"three");
    Ok(())
}

#[test]
fn stop_leaves_no_process() -> TestResult {
    let mut server = NatsServer::start()?;
    let pid = server.pid().expect("running");
    assert!(process_exists(pid));
    server.stop()?;
    assert!(!process_exists(pid));
    assert!(!server.is_running());
    server.stop()?; // stopping twice is harmless
    Ok(())
}

#[test]
fn kill_and_drop_leave_no_process() -> TestResult {
    let mut server = NatsServer::start()?;
    let killed = server.pid().expect("running");
    server.kill()?;
    assert!(!process_exists(killed));

    server.restart()?;
    let dropped = server.pid().expect("running again");
    drop(server);
    assert!(!process_exists(dropped));
    Ok(())
}

#[tokio::test]
async fn config_text_sets_user_permissions() -> TestResult {
    let config = r#"
        authorization {
            users = [
                { user: "writer", password: "w", permissions: { publish: ">", subscribe: ">" } }
                { user: "reader", password: "r", permissions: { publish: { deny: "crm.cmd.>" }, subscribe: ">" } }
            ]
        }
    "#;
    let server = NatsServer::start_with(NatsServerOptions::with_config(config))?;
    let anonymous = server.connect_with(async_nats::ConnectOptions::new()).await;
    assert!(matches!(anonymous, Err(TestkitError::Connect { .. })));

    let options = |user: &str, password: &str| {
        async_nats::ConnectOptions::with_user_and_password(user.to_owned(), password.to_owned())
    };
    let writer = server.connect_with(options("writer", "w")).await?;
    let reader = server.connect_with(options("reader", "r")).await?;
    let mut seen = writer.subscribe("crm.>").await?;
    writer.flush().await?;
    tokio::time::sleep(Duration::from_millis(50)).await; // let the server register the subscription

    // One connection's messages are processed in order: if the first were let through, it would arrive first.
    reader
        .publish("crm.cmd.lead.CreateLead", "denied".into())
        .await?;
    reader
        .publish("crm.query.kpi.get", "allowed".into())
        .await?;
    let received = tokio::time::timeout(Duration::from_secs(2), seen.next()).await?;
    assert_eq!(
        received.expect("message").subject.as_str(),
        "crm.query.kpi.get"
    );
    Ok(())
}

#[test]
fn startup_failure_reports_server_output() {
    let options = NatsServerOptions::with_config("this is { not valid");
    match NatsServer::start_with(options) {
        Err(error @ TestkitError::NatsServerExited { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains("nats-server.out"),
                "expected the server's output: {message}"
            );
        }
        other => panic!("expected NatsServerExited, got {other:?}"),
    }
}
