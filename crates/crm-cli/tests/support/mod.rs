//! What the CLI system tests share: sending a command the way the contract asks callers to
//! (retry with the same command id through timeouts and outages), but never forever; and a
//! read model's live store against a rebuild from the log.

use std::path::Path;
use std::process::Command as Process;
use std::time::Duration;

use async_nats::HeaderMap;
use futures::StreamExt;
use serde_json::Value;
use uuid::Uuid;

/// How long one command is retried before the test fails. A restart of `crm serve` in these
/// tests takes a few seconds; a minute without any reply means the service is stuck or gone.
pub const ANSWER_WAIT_MAX: Duration = Duration::from_secs(60);
/// How long one attempt waits for its reply.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// The pause between attempts, so an outage is not a busy loop.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Sends `body` to `crm.cmd.{subject}` with `command_id` until a reply comes, and returns it
/// as JSON. Panics with the subject, the id, the attempts and the last failure once
/// [`ANSWER_WAIT_MAX`] has passed without a reply.
pub async fn send_until_answered(
    client: &async_nats::Client,
    subject: &str,
    command_id: Uuid,
    body: &Value,
) -> Value {
    send_until_answered_within(client, subject, command_id, body, ANSWER_WAIT_MAX).await
}

/// [`send_until_answered`] with its own deadline.
pub async fn send_until_answered_within(
    client: &async_nats::Client,
    subject: &str,
    command_id: Uuid,
    body: &Value,
    wait_max: Duration,
) -> Value {
    let payload = serde_json::to_vec(body).expect("a JSON value serializes");
    let deadline = tokio::time::Instant::now() + wait_max;
    let mut attempts = 0_u32;
    loop {
        attempts += 1;
        let mut headers = HeaderMap::new();
        headers.insert("Crm-Command-Id", command_id.to_string().as_str());
        let request = client.request_with_headers(
            format!("crm.cmd.{subject}"),
            headers,
            payload.clone().into(),
        );
        let failure = match tokio::time::timeout(ATTEMPT_TIMEOUT, request).await {
            Ok(Ok(reply)) => {
                return serde_json::from_slice(&reply.payload).unwrap_or_else(|e| {
                    panic!(
                        "crm.cmd.{subject} (command {command_id}) answered with non-JSON: {e}: {}",
                        String::from_utf8_lossy(&reply.payload)
                    )
                })
            }
            Ok(Err(e)) => format!("request error: {e}"),
            Err(_) => format!("no reply within {ATTEMPT_TIMEOUT:?}"),
        };
        if tokio::time::Instant::now() + RETRY_PAUSE >= deadline {
            panic!(
                "crm.cmd.{subject} (command {command_id}) got no reply within {wait_max:?} \
                 ({attempts} attempts); last failure: {failure}"
            );
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// The canonical hash of the live store of read model `name` under `data_dir` (stopped).
// Each test crate includes this module; only some compare stores.
#[allow(dead_code)]
pub fn live_hash(data_dir: &Path, name: &str) -> String {
    let root = data_dir.join("projections").join(name);
    let current = crm_projector::versions::current_dir(&root).unwrap();
    let store = crm_projector::ProjectionStore::open(&current).unwrap();
    store
        .canonical_hash()
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `crm rebuild <name>` of the log under `data_dir`: the rebuilt store's hash.
#[allow(dead_code)]
pub fn rebuild_hash(data_dir: &Path, name: &str) -> String {
    let output = Process::new(env!("CARGO_BIN_EXE_crm"))
        .args(["rebuild", name, "--data-dir"])
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    stdout
        .rsplit("store hash ")
        .next()
        .unwrap()
        .trim()
        .to_owned()
}

/// Every reply to one request on `subject` within `wait`.
// Each test crate includes this module; only some gather replies.
#[allow(dead_code)]
pub async fn gather(client: &async_nats::Client, subject: &str, wait: Duration) -> Vec<Value> {
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await.unwrap();
    client
        .publish_with_reply(subject.to_owned(), inbox, "".into())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + wait;
    let mut out = Vec::new();
    while let Ok(Some(message)) = tokio::time::timeout_at(deadline, replies.next()).await {
        out.push(serde_json::from_slice(&message.payload).unwrap());
    }
    out
}
