//! The shipped NATS permissions (deploy/nats/auth.conf, docs/PERMISSIONS.md) on a real
//! nats-server running that file, with the passwords in its environment as in production.
//!
//! [`ROWS`] is the permission table: docs/PERMISSIONS.md holds it rendered, and
//! `the_doc_table_is_the_tested_table` fails when the two differ (its message has the block to
//! paste). `every_row_of_the_table_holds` tries each row as its user: a publish or a
//! subscription, then reads the server's errors up to a marker publish nobody may make, so a
//! denied row is seen refused (`-ERR 'Permissions Violation ...'`, an `Event::ServerError` in
//! async-nats) and an allowed one is seen not refused, without waiting for anything to not
//! happen. `crm_serve_works_under_the_shipped_permissions` runs a real `crm serve` as the `crm`
//! user and checks the rows end to end: commands, queries, the log API, the event stream,
//! the projectors' consumers, rebuilds, and inboxes nobody else can read.

use std::collections::BTreeMap;
use std::process::Command as Process;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy};
use crm_testkit::{
    is_refusal, nats_server_binary, ChildProcess, NatsServer, NatsServerOptions, Op, TempDataDir,
    WatchedClient,
};
use futures::StreamExt;
use serde_json::{json, Value};
use uuid::Uuid;

mod support;
use support::send_until_answered;

const AUTH_CONF: &str = include_str!("../../../deploy/nats/auth.conf");
const SERVER_CONF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/nats/nats-server.conf"
);
const ENV_EXAMPLE: &str = include_str!("../../../deploy/nats/.env.example");
const PERMISSIONS_DOC: &str = include_str!("../../../docs/PERMISSIONS.md");

/// The users of auth.conf and the environment variable each one's password comes from.
const USERS: [(&str, &str); 6] = [
    ("crm", "CRM_NATS_PASSWORD_CRM"),
    ("crm-projector", "CRM_NATS_PASSWORD_CRM_PROJECTOR"),
    ("sales-app", "CRM_NATS_PASSWORD_SALES_APP"),
    ("support-desk", "CRM_NATS_PASSWORD_SUPPORT_DESK"),
    ("analyst", "CRM_NATS_PASSWORD_ANALYST"),
    ("operator", "CRM_NATS_PASSWORD_OPERATOR"),
];

/// Guards against a hang only (the marker's refusal always comes): never a measured wait.
const HANG_GUARD: Duration = Duration::from_secs(60);
/// How long a refused request is given before it is taken as unanswered. Only shortens the
/// test: the refusal itself is the server's error, checked after.
const REFUSED_REQUEST_WAIT: Duration = Duration::from_secs(1);
/// In a row's subject, stands for each read model's name (crm_read_models::names()).
const EACH_READ_MODEL: &str = "<name>";
const DOC_BEGIN: &str = "<!-- rows: generated from crates/crm-cli/tests/permissions.rs (ROWS) -->";
const DOC_END: &str = "<!-- end of rows -->";

/// One row of the permission table: `user` may (or may not) publish to / subscribe to
/// `subject`, and why.
#[derive(Debug)]
struct Row {
    user: &'static str,
    op: Op,
    subject: &'static str,
    allowed: bool,
    why: &'static str,
}

const fn allow(user: &'static str, op: Op, subject: &'static str, why: &'static str) -> Row {
    Row {
        user,
        op,
        subject,
        allowed: true,
        why,
    }
}

const fn deny(user: &'static str, op: Op, subject: &'static str, why: &'static str) -> Row {
    Row {
        user,
        op,
        subject,
        allowed: false,
        why,
    }
}

use Op::{Pub, Sub};

/// The permission table. Subjects are what a client sends (a literal, or the wildcard of a
/// subscription); `<name>` is each read model in turn.
#[rustfmt::skip]
const ROWS: &[Row] = &[
    // crm.
    allow("crm", Pub, "crm.evt.lead.LeadCreated", "the tailer publishes each committed event to CRM_EVENTS"),
    allow("crm", Pub, "$JS.API.STREAM.INFO.CRM_EVENTS", "the tailer finds the stream's tip; projectors look the stream up"),
    allow("crm", Pub, "$JS.API.STREAM.CREATE.CRM_EVENTS", "the tailer creates the stream when it is missing"),
    allow("crm", Pub, "$JS.API.STREAM.UPDATE.CRM_EVENTS", "the tailer sets the stream's replicas to `--events-replicas`"),
    allow("crm", Pub, "$JS.API.STREAM.MSG.GET.CRM_EVENTS", "the tailer reads the stream's last message to resume after it"),
    allow("crm", Pub, "$JS.API.CONSUMER.INFO.CRM_EVENTS.crm-proj-<name>", "a projector looks its durable consumer up"),
    allow("crm", Pub, "$JS.API.CONSUMER.CREATE.CRM_EVENTS.crm-proj-<name>", "a projector creates its durable consumer"),
    allow("crm", Pub, "$JS.API.CONSUMER.MSG.NEXT.CRM_EVENTS.crm-proj-<name>", "a projector pulls events from its consumer"),
    allow("crm", Pub, "$JS.ACK.CRM_EVENTS.crm-proj-<name>.1.7.7.1700000000000000000.0", "a projector acknowledges what it applied"),
    allow("crm", Sub, "crm.cmd.>", "the command service answers every command"),
    allow("crm", Sub, "crm.query.>", "the query responders of the read models it runs"),
    allow("crm", Sub, "crm.log.head", "the log API"),
    allow("crm", Sub, "crm.log.read", "the log API"),
    allow("crm", Sub, "crm.projector.<name>.status", "its projectors answer status requests"),
    allow("crm", Sub, "crm.projector.<name>.rebuild", "its projectors take rebuild requests"),
    allow("crm", Sub, "crm.projector.<name>.status.0a1b2c", "its projectors answer status requests for this instance only"),
    allow("crm", Sub, "crm.projector.<name>.rebuild.0a1b2c", "its projectors take rebuild requests for this instance only"),
    allow("crm", Sub, "crm.status.0a1b2c", "the instance answers its own status"),
    allow("crm", Sub, "$SRV.PING", "discovery: every instance answers"),
    allow("crm", Sub, "$SRV.STATS.crm", "discovery: stats of the service `crm`"),
    allow("crm", Sub, "$SRV.INFO.crm.0a1b2c", "discovery: this instance"),
    allow("crm", Sub, "_INBOX_crm.>", "its own replies: JetStream API answers, publish acks, pulled events"),
    deny("crm", Pub, "crm.cmd.lead.CreateLead", "the service answers commands, it never sends one"),
    deny("crm", Pub, "_INBOX_sales-app.x", "replies go only to requests it received (allow_responses), not into any inbox"),
    deny("crm", Pub, "$JS.API.STREAM.PURGE.CRM_EVENTS", "nothing of crm purges the stream"),
    deny("crm", Pub, "$JS.API.STREAM.DELETE.CRM_EVENTS", "nothing of crm deletes the stream"),
    deny("crm", Pub, "$JS.API.CONSUMER.DELETE.CRM_EVENTS.crm-proj-kpis", "projectors keep their consumers"),
    deny("crm", Pub, "$JS.API.CONSUMER.CREATE.CRM_EVENTS.analyst", "only the projectors' consumers are crm's"),
    deny("crm", Sub, "_INBOX.>", "nobody reads the default inbox space"),
    deny("crm", Sub, "$SRV.STATS.other", "another service's discovery requests"),
    deny("crm", Sub, "_INBOX_sales-app.>", "another user's replies"),
    // crm-projector.
    allow("crm-projector", Pub, "crm.log.head", "catching up from the log of `crm serve`"),
    allow("crm-projector", Pub, "crm.log.read", "catching up and filling gaps from the log"),
    allow("crm-projector", Pub, "$JS.API.STREAM.INFO.CRM_EVENTS", "looks the stream up"),
    allow("crm-projector", Pub, "$JS.API.CONSUMER.INFO.CRM_EVENTS.crm-proj-<name>", "looks its durable consumer up"),
    allow("crm-projector", Pub, "$JS.API.CONSUMER.CREATE.CRM_EVENTS.crm-proj-<name>", "creates its durable consumer"),
    allow("crm-projector", Pub, "$JS.API.CONSUMER.MSG.NEXT.CRM_EVENTS.crm-proj-<name>", "pulls events"),
    allow("crm-projector", Pub, "$JS.ACK.CRM_EVENTS.crm-proj-<name>.1.7.7.1700000000000000000.0", "acknowledges what it applied"),
    allow("crm-projector", Sub, "crm.query.>", "answers its read model's queries"),
    allow("crm-projector", Sub, "crm.projector.<name>.status", "answers status requests"),
    allow("crm-projector", Sub, "crm.projector.<name>.rebuild", "takes rebuild requests"),
    allow("crm-projector", Sub, "crm.projector.<name>.status.0a1b2c", "answers status requests for this instance only"),
    allow("crm-projector", Sub, "crm.projector.<name>.rebuild.0a1b2c", "takes rebuild requests for this instance only"),
    allow("crm-projector", Sub, "crm.status.0a1b2c", "the instance answers its own status"),
    allow("crm-projector", Sub, "$SRV.PING.crm", "discovery: every instance answers"),
    allow("crm-projector", Sub, "$SRV.STATS.crm.0a1b2c", "discovery: this instance"),
    allow("crm-projector", Sub, "_INBOX_crm-projector.>", "its own replies"),
    deny("crm-projector", Pub, "crm.evt.lead.LeadCreated", "only the tailer of `crm serve` writes events"),
    deny("crm-projector", Pub, "$JS.API.STREAM.CREATE.CRM_EVENTS", "the stream is `crm serve`'s"),
    deny("crm-projector", Pub, "crm.cmd.lead.CreateLead", "a read model sends no commands"),
    deny("crm-projector", Sub, "crm.cmd.>", "commands are for `crm serve` only"),
    deny("crm-projector", Sub, "crm.log.read", "the log API is `crm serve`'s"),
    deny("crm-projector", Sub, "_INBOX_crm.>", "another user's replies"),
    // sales-app.
    allow("sales-app", Pub, "crm.cmd.lead.CreateLead", "lead commands"),
    allow("sales-app", Pub, "crm.cmd.customer.RegisterCustomer", "customer commands"),
    allow("sales-app", Pub, "crm.cmd.order.PlaceOrder", "order commands"),
    allow("sales-app", Pub, "crm.cmd.campaign.LaunchCampaign", "campaign commands"),
    allow("sales-app", Pub, "crm.cmd.pipeline.DefinePipeline", "pipeline commands"),
    allow("sales-app", Pub, "crm.query.customer.get", "every query"),
    allow("sales-app", Pub, "crm.query.kpi.get", "every query"),
    allow("sales-app", Sub, "_INBOX_sales-app.>", "its own replies"),
    deny("sales-app", Pub, "crm.cmd.ticket.OpenTicket", "tickets are the support desk's"),
    deny("sales-app", Pub, "crm.evt.lead.LeadCreated", "events come from the log only"),
    deny("sales-app", Pub, "crm.log.read", "the log is for analysts and projectors"),
    deny("sales-app", Pub, "crm.projector.kpis.rebuild", "rebuilds are for operators"),
    deny("sales-app", Pub, "$JS.API.STREAM.INFO.CRM_EVENTS", "no JetStream at all"),
    deny("sales-app", Sub, "crm.cmd.>", "would take commands meant for the service"),
    deny("sales-app", Sub, "crm.evt.>", "events are for analysts, through JetStream"),
    deny("sales-app", Sub, "_INBOX.>", "clients must use their own inbox prefix"),
    deny("sales-app", Sub, "_INBOX_support-desk.>", "another user's replies"),
    deny("sales-app", Sub, "$SRV.PING", "would pose as an instance of the service"),
    deny("sales-app", Pub, "crm.status.0a1b2c", "status is for operators"),
    // support-desk.
    allow("support-desk", Pub, "crm.cmd.ticket.OpenTicket", "ticket commands"),
    allow("support-desk", Pub, "crm.cmd.customer.LogInteraction", "customer commands (interactions, surveys, contacts)"),
    allow("support-desk", Pub, "crm.query.customer.get", "customer queries"),
    allow("support-desk", Pub, "crm.query.customer.list", "customer queries"),
    allow("support-desk", Sub, "_INBOX_support-desk.>", "its own replies"),
    deny("support-desk", Pub, "crm.cmd.lead.CreateLead", "leads are the sales app's"),
    deny("support-desk", Pub, "crm.cmd.order.RefundOrder", "orders are the sales app's"),
    deny("support-desk", Pub, "crm.query.kpi.get", "only customer queries"),
    deny("support-desk", Pub, "crm.query.funnel.get", "only customer queries"),
    deny("support-desk", Sub, "_INBOX.>", "clients must use their own inbox prefix"),
    deny("support-desk", Sub, "_INBOX_sales-app.>", "another user's replies"),
    // analyst.
    allow("analyst", Pub, "crm.log.head", "the log API"),
    allow("analyst", Pub, "crm.log.read", "the log API"),
    allow("analyst", Pub, "crm.query.kpi.get", "every query"),
    allow("analyst", Pub, "crm.query.customer.list", "every query"),
    allow("analyst", Pub, "$JS.API.STREAM.INFO.CRM_EVENTS", "the stream's state"),
    allow("analyst", Pub, "$JS.API.STREAM.MSG.GET.CRM_EVENTS", "an event by stream sequence"),
    allow("analyst", Pub, "$JS.API.CONSUMER.CREATE.CRM_EVENTS.analyst", "its own consumer `analyst` (pull; durable or ephemeral)"),
    allow("analyst", Pub, "$JS.API.CONSUMER.CREATE.CRM_EVENTS.analyst.crm.evt.lead.>", "its own consumer, filtered"),
    allow("analyst", Pub, "$JS.API.CONSUMER.DURABLE.CREATE.CRM_EVENTS.analyst", "its own consumer (older clients)"),
    allow("analyst", Pub, "$JS.API.CONSUMER.INFO.CRM_EVENTS.analyst", "its own consumer"),
    allow("analyst", Pub, "$JS.API.CONSUMER.MSG.NEXT.CRM_EVENTS.analyst", "pulls from its own consumer"),
    allow("analyst", Pub, "$JS.API.CONSUMER.DELETE.CRM_EVENTS.analyst", "its own consumer"),
    allow("analyst", Pub, "$JS.ACK.CRM_EVENTS.analyst.1.7.7.1700000000000000000.0", "acknowledges on its own consumer"),
    allow("analyst", Sub, "_INBOX_analyst.>", "its own replies and pulled events"),
    deny("analyst", Pub, "crm.cmd.lead.CreateLead", "analysts never write"),
    deny("analyst", Pub, "crm.evt.lead.LeadCreated", "analysts never write"),
    deny("analyst", Pub, "crm.projector.kpis.rebuild", "rebuilds are for operators"),
    deny("analyst", Pub, "crm.projector.kpis.status", "status is for operators"),
    deny("analyst", Pub, "crm.projector.kpis.rebuild.0a1b2c", "rebuilds are for operators, on any instance"),
    deny("analyst", Pub, "crm.status.0a1b2c", "status is for operators"),
    deny("analyst", Sub, "$SRV.STATS.crm", "would pose as an instance of the service"),
    deny("analyst", Pub, "$JS.API.STREAM.PURGE.CRM_EVENTS", "never purges the stream"),
    deny("analyst", Pub, "$JS.API.STREAM.DELETE.CRM_EVENTS", "never deletes the stream"),
    deny("analyst", Pub, "$JS.API.STREAM.UPDATE.CRM_EVENTS", "never changes the stream"),
    deny("analyst", Pub, "$JS.API.STREAM.MSG.DELETE.CRM_EVENTS", "never deletes events"),
    deny("analyst", Pub, "$JS.API.CONSUMER.CREATE.CRM_EVENTS", "a server-named consumer: its name would be in the body, where permissions cannot see it"),
    deny("analyst", Pub, "$JS.API.CONSUMER.CREATE.CRM_EVENTS.crm-proj-<name>", "a projector's consumer"),
    deny("analyst", Pub, "$JS.API.CONSUMER.DURABLE.CREATE.CRM_EVENTS.crm-proj-<name>", "a projector's consumer"),
    deny("analyst", Pub, "$JS.API.CONSUMER.INFO.CRM_EVENTS.crm-proj-<name>", "a projector's consumer"),
    deny("analyst", Pub, "$JS.API.CONSUMER.MSG.NEXT.CRM_EVENTS.crm-proj-<name>", "pulling would take events from a projector"),
    deny("analyst", Pub, "$JS.API.CONSUMER.DELETE.CRM_EVENTS.crm-proj-<name>", "a projector's consumer"),
    deny("analyst", Pub, "$JS.ACK.CRM_EVENTS.crm-proj-<name>.1.7.7.1700000000000000000.0", "acknowledging for a projector"),
    deny("analyst", Sub, "crm.evt.>", "events through its own consumer, not a tap"),
    deny("analyst", Sub, "_INBOX.>", "clients must use their own inbox prefix"),
    deny("analyst", Sub, "_INBOX_sales-app.>", "another user's replies"),
    deny("analyst", Sub, "_INBOX_crm.>", "the service's replies (publish acks, projectors' events)"),
    // operator.
    allow("operator", Pub, "crm.projector.<name>.status", "projector status"),
    allow("operator", Pub, "crm.projector.<name>.rebuild", "starts a rebuild"),
    allow("operator", Pub, "crm.projector.<name>.status.0a1b2c", "one instance's projector status"),
    allow("operator", Pub, "crm.projector.<name>.rebuild.0a1b2c", "a rebuild on one instance"),
    allow("operator", Pub, "crm.status.0a1b2c", "one instance's status (`crm status`, `crm health`)"),
    allow("operator", Pub, "crm.log.head", "the log's head, to compare with the projectors'"),
    allow("operator", Pub, "$SRV.PING", "service discovery"),
    allow("operator", Pub, "$SRV.INFO.crm", "service discovery"),
    allow("operator", Pub, "$SRV.STATS", "service stats"),
    allow("operator", Sub, "_INBOX_operator.>", "its own replies"),
    deny("operator", Pub, "crm.cmd.lead.CreateLead", "operators send no commands"),
    deny("operator", Pub, "crm.cmd.ticket.CloseTicket", "operators send no commands"),
    deny("operator", Pub, "crm.log.read", "the log head only"),
    deny("operator", Pub, "crm.query.customer.get", "no customer data"),
    deny("operator", Pub, "$JS.API.STREAM.PURGE.CRM_EVENTS", "no JetStream changes"),
    deny("operator", Pub, "$JS.API.CONSUMER.DELETE.CRM_EVENTS.crm-proj-kpis", "no JetStream changes"),
    deny("operator", Sub, "_INBOX.>", "clients must use their own inbox prefix"),
    deny("operator", Sub, "_INBOX_analyst.>", "another user's replies"),
    deny("operator", Sub, "$SRV.PING", "would pose as an instance of the service"),
];

/// The subjects a row stands for: itself, or one per read model when it names `<name>`.
fn subjects_of(row: &Row) -> Vec<String> {
    if row.subject.contains(EACH_READ_MODEL) {
        crm_read_models::names()
            .into_iter()
            .map(|name| row.subject.replace(EACH_READ_MODEL, name))
            .collect()
    } else {
        vec![row.subject.to_owned()]
    }
}

/// The table as docs/PERMISSIONS.md shows it.
fn rendered_rows() -> String {
    let mut lines = vec![
        "| user | action | subject | | why |".to_owned(),
        "| --- | --- | --- | --- | --- |".to_owned(),
    ];
    for row in ROWS {
        lines.push(format!(
            "| `{}` | {} | `{}` | {} | {} |",
            row.user,
            match row.op {
                Pub => "publish",
                Sub => "subscribe",
            },
            row.subject,
            if row.allowed { "allowed" } else { "**denied**" },
            row.why
        ));
    }
    lines.join("\n")
}

fn inbox_prefix(user: &str) -> String {
    format!("_INBOX_{user}")
}

/// Test passwords, fresh for each server (clearly not for production), handed to nats-server
/// through the environment variables auth.conf names.
struct Passwords(BTreeMap<&'static str, String>);

impl Passwords {
    fn new() -> Passwords {
        Passwords(
            USERS
                .iter()
                .map(|(user, _)| (*user, format!("test{}", Uuid::now_v7().simple())))
                .collect(),
        )
    }

    fn of(&self, user: &str) -> &str {
        self.0.get(user).map(String::as_str).unwrap_or("")
    }

    fn env(&self) -> Vec<(String, String)> {
        USERS
            .iter()
            .map(|(user, var)| ((*var).to_owned(), self.of(user).to_owned()))
            .collect()
    }

    fn server(&self) -> NatsServer {
        let mut options = NatsServerOptions::with_config(AUTH_CONF);
        options.env = self.env();
        NatsServer::start_with(options).expect("nats-server with deploy/nats/auth.conf")
    }
}

/// A client connected as one user, with its own inbox prefix, and the server's errors on its
/// connection in order.
struct Caller(WatchedClient);

impl std::ops::Deref for Caller {
    type Target = WatchedClient;

    fn deref(&self) -> &WatchedClient {
        &self.0
    }
}

impl std::ops::DerefMut for Caller {
    fn deref_mut(&mut self) -> &mut WatchedClient {
        &mut self.0
    }
}

impl Caller {
    async fn connect(nats: &NatsServer, passwords: &Passwords, user: &'static str) -> Caller {
        Caller::connect_with_prefix(nats, passwords, user, &inbox_prefix(user)).await
    }

    async fn connect_with_prefix(
        nats: &NatsServer,
        passwords: &Passwords,
        user: &'static str,
        prefix: &str,
    ) -> Caller {
        let options = async_nats::ConnectOptions::with_user_and_password(
            user.to_owned(),
            passwords.of(user).to_owned(),
        )
        .custom_inbox_prefix(prefix)
        .request_timeout(None);
        Caller(WatchedClient::connect(user, options, nats.url()).await)
    }

    /// Panics unless exactly one error came since the last check: the refusal of `op` on
    /// `subject`.
    #[track_caller]
    fn assert_refused(op: Op, subject: &str, errors: &[String]) {
        assert!(
            is_refusal(op, subject, errors),
            "{op:?} {subject}: expected a permissions violation, got {errors:?}"
        );
    }

    async fn request(&self, subject: &str, body: Value) -> Value {
        let reply = tokio::time::timeout(
            HANG_GUARD,
            self.client
                .request(subject.to_owned(), body.to_string().into()),
        )
        .await
        .unwrap_or_else(|_| panic!("{}: {subject} not answered", self.user))
        .unwrap_or_else(|e| panic!("{}: {subject} not answered: {e}", self.user));
        serde_json::from_slice(&reply.payload).unwrap_or_else(|e| {
            panic!(
                "{}: {subject} answered with non-JSON ({e}): {}",
                self.user,
                String::from_utf8_lossy(&reply.payload)
            )
        })
    }
}

impl Caller {
    /// Sends a request the server must refuse: no reply comes, and the refusal does.
    async fn request_refused(&mut self, subject: &str, body: Value) {
        let reply = tokio::time::timeout(
            REFUSED_REQUEST_WAIT,
            self.client
                .request(subject.to_owned(), body.to_string().into()),
        )
        .await;
        assert!(
            !matches!(reply, Ok(Ok(_))),
            "{}: {subject} answered: {reply:?}",
            self.user
        );
        Caller::assert_refused(Pub, subject, &self.errors().await);
    }
}

#[test]
fn the_doc_table_is_the_tested_table() {
    let begin = PERMISSIONS_DOC
        .find(DOC_BEGIN)
        .map(|at| at + DOC_BEGIN.len());
    let end = PERMISSIONS_DOC.find(DOC_END);
    let (Some(begin), Some(end)) = (begin, end) else {
        panic!("docs/PERMISSIONS.md lacks the markers {DOC_BEGIN:?} and {DOC_END:?}");
    };
    let documented = PERMISSIONS_DOC.get(begin..end).unwrap_or("").trim();
    let expected = rendered_rows();
    assert!(
        documented == expected,
        "the table in docs/PERMISSIONS.md is not the one tested; put this between the \
         markers:\n{expected}"
    );
}

#[test]
fn every_user_has_rows_of_both_kinds_and_rows_are_unique() {
    for (user, _) in USERS {
        for allowed in [true, false] {
            assert!(
                ROWS.iter().any(|r| r.user == user && r.allowed == allowed),
                "{user} has no {} row",
                if allowed { "allowed" } else { "denied" }
            );
        }
    }
    for (i, row) in ROWS.iter().enumerate() {
        assert!(
            USERS.iter().any(|(user, _)| *user == row.user),
            "{row:?}: unknown user"
        );
        assert!(
            !ROWS[..i]
                .iter()
                .any(|r| r.user == row.user && r.op == row.op && r.subject == row.subject),
            "{row:?} twice"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_of_the_table_holds() {
    let passwords = Passwords::new();
    let nats = passwords.server();
    let mut callers = BTreeMap::new();
    for (user, _) in USERS {
        callers.insert(user, Caller::connect(&nats, &passwords, user).await);
    }
    let mut failures = Vec::new();
    let mut checked = 0;
    for row in ROWS {
        let caller = callers.get_mut(row.user).expect("a caller per user");
        for subject in subjects_of(row) {
            let errors = caller.probe(row.op, &subject).await;
            checked += 1;
            let holds = if row.allowed {
                errors.is_empty()
            } else {
                is_refusal(row.op, &subject, &errors)
            };
            if !holds {
                failures.push(format!(
                    "{} {:?} {subject}: expected {}, the server said {errors:?}",
                    row.user,
                    row.op,
                    if row.allowed { "allowed" } else { "denied" },
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_and_unknown_users_are_refused() {
    let passwords = Passwords::new();
    let nats = passwords.server();
    for (user, password) in [
        ("sales-app", "wrong"),
        ("sales-app", ""),
        ("nobody", "anything"),
        ("crm", passwords.of("analyst")),
    ] {
        let connected = nats
            .connect_with(async_nats::ConnectOptions::with_user_and_password(
                user.to_owned(),
                password.to_owned(),
            ))
            .await;
        assert!(connected.is_err(), "{user} with {password:?} got in");
    }
}

/// Runs `nats-server -t` on the shipped deploy/nats/nats-server.conf with `env`.
fn check_server_conf(env: &[(String, String)]) -> (bool, String) {
    let binary = nats_server_binary().expect("nats-server");
    let mut command = Process::new(binary);
    command.arg("-t").arg("-c").arg(SERVER_CONF);
    for (_, var) in USERS {
        command.env_remove(var);
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
    let output = command.output().expect("run nats-server -t");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn the_server_config_takes_every_password_from_the_environment() {
    let passwords = Passwords::new();
    let env = passwords.env();
    let (valid, output) = check_server_conf(&env);
    assert!(valid, "deploy/nats/nats-server.conf is not valid: {output}");
    for (_, var) in USERS {
        let without: Vec<_> = env.iter().filter(|(k, _)| k != var).cloned().collect();
        let (valid, output) = check_server_conf(&without);
        assert!(!valid, "nats-server started without {var}");
        assert!(output.contains(var), "the error names {var}: {output}");
        assert!(
            ENV_EXAMPLE.contains(&format!("{var}=")),
            "deploy/nats/.env.example lacks {var}"
        );
    }
    for line in AUTH_CONF.lines().map(str::trim) {
        if let Some(value) = line.strip_prefix("password:") {
            assert!(
                value.trim().starts_with('$'),
                "a literal password in auth.conf: {line}"
            );
        }
    }
}

/// `crm serve` as the `crm` user, with its inbox prefix from the environment; every read
/// model but `kpis`, which runs apart, in [`start_project`].
fn start_serve(nats: &NatsServer, passwords: &Passwords, dir: &TempDataDir) -> ChildProcess {
    let mut command = crm_command(nats, passwords, "crm");
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--projections")
        .arg(
            crm_read_models::names()
                .into_iter()
                .filter(|name| *name != "kpis")
                .collect::<Vec<_>>()
                .join(","),
        )
        .env("CRM_NATS_INBOX_PREFIX", inbox_prefix("crm"));
    spawn_until(command, "crm serve ready")
}

/// `crm project kpis` as the `crm-projector` user, with its inbox prefix as a flag.
fn start_project(nats: &NatsServer, passwords: &Passwords, dir: &TempDataDir) -> ChildProcess {
    let mut command = crm_command(nats, passwords, "crm-projector");
    command
        .arg("project")
        .arg("kpis")
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--nats-inbox-prefix")
        .arg(inbox_prefix("crm-projector"));
    spawn_until(command, "crm project kpis ready")
}

fn crm_command(nats: &NatsServer, passwords: &Passwords, user: &str) -> Process {
    let mut command = Process::new(env!("CARGO_BIN_EXE_crm"));
    command
        .env(
            "CRM_NATS_URL",
            format!(
                "nats://{user}:{}@127.0.0.1:{}",
                passwords.of(user),
                nats.port()
            ),
        )
        .env("RUST_LOG", "info")
        .env_remove("NATS_URL")
        .env_remove("CRM_NATS_INBOX_PREFIX")
        .env_remove("CRM_PROJECTIONS")
        .env_remove("CRM_SUBJECT_PREFIX");
    command
}

fn spawn_until(command: Process, ready: &str) -> ChildProcess {
    let mut child = ChildProcess::spawn(command).expect("spawn crm");
    if let Err(e) = child.wait_for_line(ready, HANG_GUARD) {
        panic!("no {ready:?}: {e}\n{}", child.output_tail());
    }
    child
}

/// Asks for the projector's status until it is running (its consumer made), and returns it.
async fn wait_until_running(operator: &Caller, name: &str) -> Value {
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    loop {
        let status = operator
            .request(&format!("crm.projector.{name}.status"), json!({}))
            .await;
        if status["state"] == "running" {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "projector {name} not running: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn lead() -> Value {
    json!({"lead_id": Uuid::now_v7(), "name": "Ada", "source": "web"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crm_serve_works_under_the_shipped_permissions() {
    let passwords = Passwords::new();
    let nats = passwords.server();
    let dir = TempDataDir::new().expect("data dir");
    let mut serve = start_serve(&nats, &passwords, &dir);
    let project_dir = TempDataDir::new().expect("data dir");
    let mut project = start_project(&nats, &passwords, &project_dir);

    let mut sales = Caller::connect(&nats, &passwords, "sales-app").await;
    let mut desk = Caller::connect(&nats, &passwords, "support-desk").await;
    let mut analyst = Caller::connect(&nats, &passwords, "analyst").await;
    let mut operator = Caller::connect(&nats, &passwords, "operator").await;
    let projector = Caller::connect(&nats, &passwords, "crm-projector").await;

    // The projectors of `crm serve` and of `crm project` made their consumers and use them:
    // the JetStream rows of crm and crm-projector.
    for name in crm_read_models::names() {
        wait_until_running(&operator, name).await;
    }

    // sales-app: a command is answered (and its events reach the stream and the projectors:
    // crm publishes, creates the stream, resumes, consumes, acks); a query is answered.
    let accepted =
        send_until_answered(&sales.client, "lead.CreateLead", Uuid::now_v7(), &lead()).await;
    assert_eq!(accepted["status"], "accepted", "{accepted}");
    let position = accepted["last_position"].as_u64().expect("a position");
    let kpis = sales
        .request(
            "crm.query.kpi.get",
            json!({"min_position": position, "timeout_ms": 30000}),
        )
        .await;
    assert!(kpis["position"].as_u64() >= Some(position), "{kpis}");
    let customers = sales.request("crm.query.customer.list", json!({})).await;
    assert!(customers["customers"].is_array(), "{customers}");
    assert!(sales.errors().await.is_empty());

    // support-desk: tickets yes, leads no (refused by the server, nothing appended, and the
    // request itself just gets no reply).
    let ticket = json!({"ticket_id": Uuid::now_v7(), "customer_id": Uuid::now_v7(),
        "subject": "Help", "category": "question", "priority": "low", "channel": "email"});
    let opened =
        send_until_answered(&desk.client, "ticket.OpenTicket", Uuid::now_v7(), &ticket).await;
    assert_eq!(opened["status"], "accepted", "{opened}");
    let head = analyst.request("crm.log.head", json!({})).await["head"].clone();
    desk.request_refused("crm.cmd.lead.CreateLead", lead())
        .await;
    desk.request_refused("crm.query.kpi.get", json!({})).await;
    assert_eq!(
        analyst.request("crm.log.head", json!({})).await["head"],
        head,
        "nothing appended"
    );

    // Nobody reads another's replies: the analyst's snooping subscriptions are refused, and
    // get nothing while the sales app gets its reply.
    let mut snoops = Vec::new();
    for subject in ["_INBOX_sales-app.>", "_INBOX.>", ">"] {
        snoops.push(analyst.client.subscribe(subject).await.expect("subscribe"));
        Caller::assert_refused(Sub, subject, &analyst.errors().await);
    }
    let reply = sales
        .request("crm.query.customer.list", json!({"limit": 1}))
        .await;
    assert!(reply["customers"].is_array(), "{reply}");
    // Anything the server had routed to the snoopers came before its answer to this flush.
    analyst.client.flush().await.expect("flush");
    for snoop in &mut snoops {
        assert!(
            futures::FutureExt::now_or_never(snoop.next())
                .flatten()
                .is_none(),
            "a snooping subscription got a message"
        );
    }
    // A client without its own prefix cannot receive replies at all.
    let mut default_inbox =
        Caller::connect_with_prefix(&nats, &passwords, "sales-app", "_INBOX").await;
    let no_reply = tokio::time::timeout(
        REFUSED_REQUEST_WAIT,
        default_inbox
            .client
            .request("crm.query.customer.list", "".into()),
    )
    .await;
    assert!(
        !matches!(no_reply, Ok(Ok(_))),
        "a reply reached _INBOX: {no_reply:?}"
    );
    let errors = default_inbox.errors().await;
    assert!(
        errors
            .iter()
            .any(|e| e.contains("Permissions Violation for Subscription to \"_INBOX.")),
        "{errors:?}"
    );

    // analyst: the log API.
    let page = analyst
        .request(
            "crm.log.read",
            json!({"from": 1, "max": 10, "format": "json"}),
        )
        .await;
    let events = page["events"].as_array().cloned().unwrap_or_default();
    assert!(events.len() >= 2, "{page}");
    assert_eq!(events[0]["event_type"], "LeadCreated", "{page}");

    // analyst: the stream, by sequence and through its own consumer.
    let js = jetstream::new(analyst.client.clone());
    let mut stream = js.get_stream("CRM_EVENTS").await.expect("stream info");
    let stored = stream.info().await.expect("stream info").state.messages;
    assert!(stored >= 2, "events in the stream: {stored}");
    let first = stream.get_raw_message(1).await.expect("message 1");
    assert_eq!(
        first.headers.get("Crm-Event-Type").map(|v| v.as_str()),
        Some("LeadCreated")
    );
    for filter in ["", "crm.evt.>"] {
        let consumer = stream
            .create_consumer(pull::Config {
                durable_name: Some("analyst".to_owned()),
                filter_subject: filter.to_owned(),
                ack_policy: AckPolicy::Explicit,
                ..Default::default()
            })
            .await
            .expect("the analyst creates its own consumer");
        let mut batch = consumer
            .fetch()
            .max_messages(2)
            .messages()
            .await
            .expect("pull");
        let mut read = 0;
        while let Some(message) = batch.next().await {
            let message = message.expect("an event");
            assert!(message
                .headers
                .as_ref()
                .and_then(|h| h.get("Crm-Position"))
                .is_some());
            message.ack().await.expect("ack");
            read += 1;
        }
        assert_eq!(read, 2, "events pulled");
        stream
            .delete_consumer("analyst")
            .await
            .expect("delete its own consumer");
    }
    let ephemeral = stream
        .create_consumer(pull::Config {
            name: Some("analyst".to_owned()),
            ..Default::default()
        })
        .await
        .expect("an ephemeral consumer named analyst");
    assert_eq!(ephemeral.cached_info().config.durable_name, None);
    assert!(analyst.errors().await.is_empty());

    // analyst: the projectors' consumers, the stream and rebuilds are out of reach.
    let kpis_consumer = || async {
        let js = jetstream::new(projector.client.clone());
        let info = js
            .get_stream("CRM_EVENTS")
            .await
            .expect("stream")
            .consumer_info("crm-proj-kpis")
            .await
            .expect("crm-proj-kpis exists");
        serde_json::to_value(&info.config).expect("config as JSON")
    };
    let kpis_config = kpis_consumer().await;
    for subject in [
        "$JS.API.CONSUMER.DELETE.CRM_EVENTS.crm-proj-kpis",
        "$JS.API.CONSUMER.CREATE.CRM_EVENTS.crm-proj-kpis",
        "$JS.API.CONSUMER.DURABLE.CREATE.CRM_EVENTS.crm-proj-kpis",
        "$JS.API.CONSUMER.MSG.NEXT.CRM_EVENTS.crm-proj-kpis",
        "$JS.API.CONSUMER.CREATE.CRM_EVENTS",
        "$JS.API.STREAM.PURGE.CRM_EVENTS",
        "$JS.API.STREAM.DELETE.CRM_EVENTS",
        "crm.projector.kpis.rebuild",
    ] {
        // A real request, as a client library would send it.
        let body = json!({"stream_name": "CRM_EVENTS",
            "config": {"durable_name": "crm-proj-kpis", "ack_policy": "none"}, "batch": 1});
        analyst.request_refused(subject, body).await;
    }
    // Its own consumer's subject cannot be turned onto a projector's: JetStream goes by the
    // name in the subject, not the body's.
    for subject in [
        "$JS.API.CONSUMER.CREATE.CRM_EVENTS.analyst",
        "$JS.API.CONSUMER.DURABLE.CREATE.CRM_EVENTS.analyst",
    ] {
        // The projector's own configuration with an updatable field changed: accepted, it
        // would be an update of crm-proj-kpis.
        let mut hijack = kpis_config.clone();
        hijack["description"] = json!("hijacked");
        let mut by_name = hijack.clone();
        if let Some(config) = by_name.as_object_mut() {
            config.remove("durable_name");
            config.insert("name".to_owned(), json!("crm-proj-kpis"));
        }
        for config in [hijack, by_name] {
            let reply = analyst
                .request(
                    subject,
                    json!({"stream_name": "CRM_EVENTS", "config": config}),
                )
                .await;
            // Refused (a durable name unlike the subject's), or made on `analyst` (nats-server
            // 2.9 takes the subject's name over the body's `name`): never crm-proj-kpis.
            assert!(
                reply["error"].is_object() || reply["name"] == "analyst",
                "{subject} {config}: {reply}"
            );
        }
    }
    assert!(analyst.errors().await.is_empty());
    assert_eq!(
        kpis_consumer().await,
        kpis_config,
        "crm-proj-kpis unchanged"
    );
    assert_eq!(
        stream.info().await.expect("stream info").state.messages,
        stored,
        "nothing purged"
    );

    // operator: status, a rebuild, the log head; no commands.
    let status = wait_until_running(&operator, "kpis").await;
    assert_eq!(status["name"], "kpis", "{status}");
    let rebuilds_before = status["rebuilds_completed"].as_u64().unwrap_or(0);
    let rebuild = operator
        .request("crm.projector.kpis.rebuild", json!({}))
        .await;
    assert_eq!(rebuild["status"], "accepted", "{rebuild}");
    let head = operator.request("crm.log.head", json!({})).await;
    assert!(head["head"].as_u64() >= Some(position), "{head}");
    // Service discovery and one instance's own status work under these permissions.
    let ping = operator
        .client
        .request("$SRV.PING.crm", "".into())
        .await
        .expect("an instance answers $SRV.PING");
    let ping: Value = serde_json::from_slice(&ping.payload).unwrap();
    assert_eq!(ping["type"], "io.nats.micro.v1.ping_response", "{ping}");
    let id = ping["id"].as_str().unwrap().to_owned();
    let own = operator
        .request(&format!("crm.status.{id}"), json!({}))
        .await;
    assert_eq!(own["instance"], id.as_str(), "{own}");
    assert!(operator.errors().await.is_empty());
    operator
        .client
        .publish("crm.cmd.lead.CreateLead", lead().to_string().into())
        .await
        .expect("publish");
    Caller::assert_refused(Pub, "crm.cmd.lead.CreateLead", &operator.errors().await);

    // The rebuild completes under these permissions too.
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    loop {
        let status = operator
            .request("crm.projector.kpis.status", json!({}))
            .await;
        if status["rebuilds_completed"].as_u64() > Some(rebuilds_before)
            && status["state"] == "running"
        {
            break;
        }
        assert!(status["last_rebuild_error"].is_null(), "{status}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "no rebuild: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A restarted `crm serve` resumes after the stream's last message (stream info and
    // message get) and goes on publishing.
    assert!(
        serve.is_running(),
        "crm serve died:\n{}",
        serve.output_tail()
    );
    serve
        .terminate(HANG_GUARD)
        .unwrap_or_else(|e| panic!("crm serve did not stop: {e}\n{}", serve.output_tail()));
    assert_never_refused(&serve);
    let mut serve = start_serve(&nats, &passwords, &dir);
    let accepted =
        send_until_answered(&sales.client, "lead.CreateLead", Uuid::now_v7(), &lead()).await;
    assert_eq!(accepted["status"], "accepted", "{accepted}");
    let head = accepted["last_position"].as_u64().expect("a position");
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    loop {
        let published = stream.info().await.expect("stream info").state.messages;
        if published == head {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{published} of {head} events published after the restart:\n{}",
            serve.output_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = serve.terminate(HANG_GUARD);
    assert_never_refused(&serve);
    assert!(
        project.is_running(),
        "crm project died:\n{}",
        project.output_tail()
    );
    let _ = project.terminate(HANG_GUARD);
    assert_never_refused(&project);
}

/// `crm` logs the server's errors (async-nats events): none may be a refusal.
#[track_caller]
fn assert_never_refused(crm: &ChildProcess) {
    let logs = crm.stderr().unwrap_or_default();
    assert!(
        !logs.contains("Permissions Violation"),
        "crm was refused something:\n{logs}"
    );
}
