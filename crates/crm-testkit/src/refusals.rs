//! Seeing what a NATS server refuses a client: its permission violations arrive as
//! asynchronous errors on the connection, not as results of the publish or subscribe that
//! caused them. [`WatchedClient`] collects them; after each probe it publishes to
//! [`REFUSAL_MARKER`], which no test configuration allows, and reads the errors up to the
//! marker's own refusal. The server answers one connection's messages in order, so the list
//! is complete and belongs to that probe.

use std::time::Duration;

use tokio::sync::mpsc;

/// A subject no test configuration allows anyone to publish to.
pub const REFUSAL_MARKER: &str = "crm-testkit.refusal-marker";
/// How long a probe waits for the marker's refusal before it fails the test.
const MARKER_WAIT_MAX: Duration = Duration::from_secs(60);

/// What a client tries on a subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Pub,
    Sub,
}

/// A client connected as one user, with the server's errors on its connection, in order.
pub struct WatchedClient {
    pub user: String,
    pub client: async_nats::Client,
    errors: mpsc::UnboundedReceiver<String>,
}

impl WatchedClient {
    /// Connects `options` (credentials, inbox prefix, ...) to `servers` as `user` (the name
    /// only labels failures); panics with the reason if the connection fails.
    pub async fn connect(
        user: &str,
        options: async_nats::ConnectOptions,
        servers: impl async_nats::ToServerAddrs,
    ) -> WatchedClient {
        let (tx, errors) = mpsc::unbounded_channel();
        let client = options
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    if let async_nats::Event::ServerError(error) = event {
                        let _ = tx.send(error.to_string());
                    }
                }
            })
            .connect(servers)
            .await
            .unwrap_or_else(|e| panic!("{user} cannot connect: {e}"));
        WatchedClient {
            user: user.to_owned(),
            client,
            errors,
        }
    }

    /// The errors the server sent about what this client sent since the last call.
    pub async fn errors(&mut self) -> Vec<String> {
        self.client
            .publish(REFUSAL_MARKER, "".into())
            .await
            .unwrap_or_else(|e| panic!("{}: publishing the marker: {e}", self.user));
        self.client
            .flush()
            .await
            .unwrap_or_else(|e| panic!("{}: flushing: {e}", self.user));
        let marker = format!("\"{REFUSAL_MARKER}\"");
        let mut errors = Vec::new();
        loop {
            let error = tokio::time::timeout(MARKER_WAIT_MAX, self.errors.recv())
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| {
                    panic!(
                        "{}: the marker publish was never refused (errors so far: {errors:?})",
                        self.user
                    )
                });
            if error.contains(&marker) {
                return errors;
            }
            errors.push(error);
        }
    }

    /// Publishes to (or subscribes to, then drops) `subject`; the server's errors about it.
    pub async fn probe(&mut self, op: Op, subject: &str) -> Vec<String> {
        match op {
            Op::Pub => {
                self.client
                    .publish(subject.to_owned(), "".into())
                    .await
                    .unwrap_or_else(|e| panic!("{}: publish {subject}: {e}", self.user));
                self.errors().await
            }
            Op::Sub => {
                let subscription = self
                    .client
                    .subscribe(subject.to_owned())
                    .await
                    .unwrap_or_else(|e| panic!("{}: subscribe {subject}: {e}", self.user));
                let errors = self.errors().await;
                drop(subscription);
                errors
            }
        }
    }

    /// Panics unless the server refuses `op` on `subject`, and nothing else.
    pub async fn assert_refused(&mut self, op: Op, subject: &str) {
        let errors = self.probe(op, subject).await;
        assert!(
            is_refusal(op, subject, &errors),
            "{}: {op:?} {subject}: expected a permissions violation, got {errors:?}",
            self.user
        );
    }

    /// Panics if the server refuses `op` on `subject`.
    pub async fn assert_allowed(&mut self, op: Op, subject: &str) {
        let errors = self.probe(op, subject).await;
        assert!(
            errors.is_empty(),
            "{}: {op:?} {subject} should be allowed, got {errors:?}",
            self.user
        );
    }
}

/// Whether `errors` is exactly the server's refusal of `op` on `subject`.
pub fn is_refusal(op: Op, subject: &str, errors: &[String]) -> bool {
    let what = match op {
        Op::Pub => "Permissions Violation for Publish to",
        Op::Sub => "Permissions Violation for Subscription to",
    };
    matches!(errors, [one] if one.contains(what) && one.contains(&format!("\"{subject}\"")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_one_error_naming_the_subject() {
        let refusal = |what: &str| vec![format!("nats: permissions violation: '{what} \"a.b\"'")];
        assert!(is_refusal(
            Op::Pub,
            "a.b",
            &refusal("Permissions Violation for Publish to")
        ));
        assert!(!is_refusal(
            Op::Sub,
            "a.b",
            &refusal("Permissions Violation for Publish to")
        ));
        assert!(!is_refusal(
            Op::Pub,
            "a.c",
            &refusal("Permissions Violation for Publish to")
        ));
        assert!(!is_refusal(Op::Pub, "a.b", &[]));
    }
}
