//! The rendered accounts on a real nats-server (crm-testkit), tenants acme, globex and
//! initech, passwords in the server's environment as in production: nats-server accepts the
//! file; a tenant's request reaches its own tenant's responder under the tenant subject and the
//! reply comes back; another tenant's never does; the permissions of auth.conf still hold, and
//! nothing crosses a tenant. Refusals are read with crm-testkit's `WatchedClient`: after
//! each attempt a publish nobody may make, then the server's errors up to its refusal.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy};
use crm_accounts::{Accounts, AuthConf, RenderOptions};
use crm_testkit::{nats_server_binary, NatsServer, NatsServerOptions, Op, WatchedClient};
use crm_wire::Tenant;
use futures::StreamExt;
use uuid::Uuid;

/// Guards against a hang only (the awaited thing always comes): never a measured wait.
const HANG_GUARD: Duration = Duration::from_secs(30);
/// How long a request nobody may answer is given before it counts as unanswered.
const UNANSWERED_WAIT: Duration = Duration::from_secs(1);

/// The rendered configuration and fresh test passwords for every variable it needs.
struct Rendered {
    text: String,
    passwords: BTreeMap<String, String>,
}

impl Rendered {
    fn new(read_replicas: u32) -> Rendered {
        let tenants: Vec<Tenant> = ["acme", "globex", "initech"]
            .iter()
            .map(|n| Tenant::parse(n).unwrap())
            .collect();
        let source = AuthConf::shipped().unwrap();
        let options = RenderOptions::default().with_read_replicas(read_replicas);
        let accounts = Accounts::plan(&source, &tenants, &options).unwrap();
        let passwords = accounts
            .required_env()
            .into_iter()
            .map(|var| (var, format!("test{}", Uuid::now_v7().simple())))
            .collect();
        Rendered {
            text: accounts.render(),
            passwords,
        }
    }

    fn password(&self, user: &str) -> &str {
        let var = format!(
            "CRM_NATS_PASSWORD_{}",
            user.to_ascii_uppercase().replace('-', "_")
        );
        self.passwords
            .get(&var)
            .unwrap_or_else(|| panic!("no password variable {var}"))
    }

    fn server(&self) -> NatsServer {
        let mut options = NatsServerOptions::with_config(self.text.clone());
        for (var, password) in &self.passwords {
            options = options.with_env(var, password);
        }
        NatsServer::start_with(options).expect("nats-server with the rendered accounts")
    }
}

/// `nats-server -t -c <text>` with `env` (and none of the password variables otherwise):
/// whether it is valid, and what the server said.
fn check_config(
    dir: &Path,
    text: &str,
    env: &BTreeMap<String, String>,
    unset: &[&String],
) -> (bool, String) {
    let path = dir.join("accounts.conf");
    std::fs::write(&path, text).unwrap();
    let mut command = Command::new(nats_server_binary().expect("nats-server"));
    command.arg("-t").arg("-c").arg(&path);
    for var in unset {
        command.env_remove(var);
    }
    command.envs(env);
    let output = command.output().expect("run nats-server -t");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

#[test]
fn nats_server_accepts_the_rendered_accounts_with_every_password_set() {
    let rendered = Rendered::new(1);
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<&String> = rendered.passwords.keys().collect();
    let (valid, said) = check_config(dir.path(), &rendered.text, &rendered.passwords, &all);
    assert!(
        valid,
        "the rendered accounts are not valid: {said}\n{}",
        rendered.text
    );

    let missing = "CRM_NATS_PASSWORD_GLOBEX_SALES_APP".to_owned();
    let mut without = rendered.passwords.clone();
    assert!(without.remove(&missing).is_some());
    let (valid, said) = check_config(dir.path(), &rendered.text, &without, &all);
    assert!(!valid, "nats-server took the accounts without {missing}");
    assert!(said.contains(&missing), "the error names {missing}: {said}");
}

#[test]
fn no_other_account_may_import_a_tenants_services() {
    let rendered = Rendered::new(1);
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<&String> = rendered.passwords.keys().collect();
    let end = rendered
        .text
        .trim_end()
        .rfind('}')
        .expect("the closing brace of accounts");
    let mallory = "  mallory {\n    imports = [\n      \
                   { service: { account: CRM, subject: \"crm.t.acme.cmd.>\" }, to: \"crm.cmd.>\" }\n    \
                   ]\n  }\n";
    let text = format!(
        "{}{mallory}{}",
        &rendered.text[..end],
        &rendered.text[end..]
    );
    let (valid, said) = check_config(dir.path(), &text, &rendered.passwords, &all);
    assert!(!valid, "mallory imported acme's commands:\n{text}");
    assert!(said.contains("not authorized"), "{said}");
}

/// A client connected as one user, with its own inbox prefix, and the server's errors on its
/// connection in order.
struct Client(WatchedClient);

impl std::ops::Deref for Client {
    type Target = WatchedClient;

    fn deref(&self) -> &WatchedClient {
        &self.0
    }
}

impl std::ops::DerefMut for Client {
    fn deref_mut(&mut self) -> &mut WatchedClient {
        &mut self.0
    }
}

impl Client {
    async fn connect(nats: &NatsServer, rendered: &Rendered, user: &str) -> Client {
        let options = async_nats::ConnectOptions::with_user_and_password(
            user.to_owned(),
            rendered.password(user).to_owned(),
        )
        .custom_inbox_prefix(format!("_INBOX_{user}"))
        .request_timeout(Some(HANG_GUARD));
        Client(WatchedClient::connect(user, options, nats.url()).await)
    }

    async fn request(&self, subject: &str) -> String {
        let reply = self
            .client
            .request(subject.to_owned(), "hello".into())
            .await
            .unwrap_or_else(|e| panic!("{}: {subject} not answered: {e}", self.user));
        String::from_utf8(reply.payload.to_vec()).unwrap()
    }

    /// A request that gets no reply (nobody may or can answer it).
    async fn request_unanswered(&self, subject: &str) {
        let reply = tokio::time::timeout(
            UNANSWERED_WAIT,
            self.client.request(subject.to_owned(), "hello".into()),
        )
        .await;
        assert!(
            !matches!(reply, Ok(Ok(_))),
            "{}: {subject} was answered: {reply:?}",
            self.user
        );
    }
}

/// Answers every request on `subjects` as `user` with `<user>:<subject it arrived on>`, and
/// records those subjects.
async fn responder(
    nats: &NatsServer,
    rendered: &Rendered,
    user: &str,
    subjects: &[&str],
) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let client = Client::connect(nats, rendered, user).await;
    let mut subscriptions = Vec::new();
    for subject in subjects {
        subscriptions.push(
            client
                .client
                .queue_subscribe(subject.to_string(), "crm-command-service".into())
                .await
                .unwrap(),
        );
    }
    let mut merged = futures::stream::select_all(subscriptions);
    let mut client = client;
    // The subscriptions are in place (and allowed) before any request is sent.
    assert!(client.errors().await.is_empty(), "{user} may not subscribe");
    let (name, record) = (user.to_owned(), seen.clone());
    tokio::spawn(async move {
        while let Some(message) = merged.next().await {
            record.lock().unwrap().push(message.subject.to_string());
            if let Some(reply) = message.reply {
                let body = format!("{name}:{}", message.subject);
                client.client.publish(reply, body.into()).await.unwrap();
            }
        }
    });
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_reaches_its_own_services_only() {
    let rendered = Rendered::new(1);
    let nats = rendered.server();
    let acme_seen = responder(
        &nats,
        &rendered,
        "crm-acme",
        &[
            "crm.t.acme.cmd.>",
            "crm.t.acme.query.>",
            "crm.t.acme.projector.*.status",
            "crm.t.acme.status.*",
        ],
    )
    .await;
    let globex_seen = responder(&nats, &rendered, "crm-globex", &["crm.t.globex.cmd.>"]).await;

    // (b) acme's sales app keeps today's subject; acme's responder gets it under acme's prefix.
    let mut acme_sales = Client::connect(&nats, &rendered, "acme-sales-app").await;
    assert_eq!(
        acme_sales.request("crm.cmd.lead.CreateLead").await,
        "crm-acme:crm.t.acme.cmd.lead.CreateLead"
    );
    assert_eq!(
        acme_sales.request("crm.query.customer.get").await,
        "crm-acme:crm.t.acme.query.customer.get"
    );

    // (c) The same subject from globex goes to globex; from initech (no responder) nowhere.
    let globex_sales = Client::connect(&nats, &rendered, "globex-sales-app").await;
    assert_eq!(
        globex_sales.request("crm.cmd.lead.CreateLead").await,
        "crm-globex:crm.t.globex.cmd.lead.CreateLead"
    );
    let initech_sales = Client::connect(&nats, &rendered, "initech-sales-app").await;
    initech_sales
        .request_unanswered("crm.cmd.lead.CreateLead")
        .await;
    // A last round trip of acme's, so anything misrouted before it has arrived by now.
    assert_eq!(
        acme_sales.request("crm.cmd.order.PlaceOrder").await,
        "crm-acme:crm.t.acme.cmd.order.PlaceOrder"
    );
    assert_eq!(
        *acme_seen.lock().unwrap(),
        [
            "crm.t.acme.cmd.lead.CreateLead",
            "crm.t.acme.query.customer.get",
            "crm.t.acme.cmd.order.PlaceOrder"
        ]
    );
    assert_eq!(
        *globex_seen.lock().unwrap(),
        ["crm.t.globex.cmd.lead.CreateLead"]
    );

    // (d) acme's caller cannot reach globex's subjects or replies, nor take commands.
    acme_sales.assert_refused(Op::Sub, "crm.t.globex.>").await;
    acme_sales
        .assert_refused(Op::Sub, "_INBOX_globex-sales-app.>")
        .await;
    acme_sales
        .assert_refused(Op::Pub, "crm.t.globex.cmd.lead.CreateLead")
        .await;
    acme_sales.assert_refused(Op::Sub, "crm.cmd.>").await;
    acme_sales
        .assert_refused(Op::Pub, "crm.evt.lead.LeadCreated")
        .await;
    acme_sales
        .assert_refused(Op::Pub, "$JS.API.STREAM.INFO.CRM_EVENTS_acme")
        .await;
    acme_sales
        .assert_allowed(Op::Sub, "_INBOX_acme-sales-app.>")
        .await;

    // (f) The support desk's permissions carry over: tickets yes, leads no.
    let mut support = Client::connect(&nats, &rendered, "acme-support-desk").await;
    assert_eq!(
        support.request("crm.cmd.ticket.OpenTicket").await,
        "crm-acme:crm.t.acme.cmd.ticket.OpenTicket"
    );
    support.request_unanswered("crm.cmd.lead.CreateLead").await;
    let errors = support.errors().await;
    assert!(
        matches!(errors.as_slice(), [one] if one.contains("Permissions Violation for Publish to \"crm.cmd.lead.CreateLead\"")),
        "{errors:?}"
    );
    support.assert_refused(Op::Pub, "crm.query.kpi.get").await;

    // The tenants' responders share the CRM account but not each other's subjects.
    let mut crm_acme = Client::connect(&nats, &rendered, "crm-acme").await;
    crm_acme.assert_refused(Op::Sub, "crm.t.globex.cmd.>").await;
    crm_acme
        .assert_refused(Op::Pub, "crm.t.globex.evt.lead.LeadCreated")
        .await;
    crm_acme
        .assert_refused(Op::Pub, "$JS.API.STREAM.INFO.CRM_EVENTS_globex")
        .await;
    crm_acme
        .assert_refused(Op::Sub, "_INBOX_crm-globex.>")
        .await;
    crm_acme.assert_refused(Op::Sub, "_INBOX.>").await;
    crm_acme
        .assert_allowed(Op::Pub, "crm.t.acme.evt.lead.LeadCreated")
        .await;

    // acme's own operator: acme's status and projectors only, no commands.
    let mut acme_operator = Client::connect(&nats, &rendered, "acme-operator").await;
    assert_eq!(
        acme_operator.request("crm.projector.kpis.status").await,
        "crm-acme:crm.t.acme.projector.kpis.status"
    );
    assert_eq!(
        acme_operator.request("crm.status.0a1b2c").await,
        "crm-acme:crm.t.acme.status.0a1b2c"
    );
    acme_operator
        .assert_refused(Op::Pub, "crm.cmd.lead.CreateLead")
        .await;
    acme_operator.assert_refused(Op::Pub, "$SRV.PING").await;
    acme_operator
        .assert_refused(Op::Pub, "crm.t.globex.status.0a1b2c")
        .await;

    // The platform operator: status and rebuilds of every tenant, no commands.
    let mut operator = Client::connect(&nats, &rendered, "operator").await;
    operator
        .assert_allowed(Op::Pub, "crm.t.acme.status.0a1b2c")
        .await;
    operator
        .assert_allowed(Op::Pub, "crm.t.initech.projector.kpis.rebuild")
        .await;
    operator.assert_allowed(Op::Pub, "$SRV.PING").await;
    operator
        .assert_refused(Op::Pub, "crm.t.acme.cmd.lead.CreateLead")
        .await;
    operator
        .assert_refused(Op::Pub, "crm.t.acme.log.read")
        .await;

    // Everything acme's responder ever got was acme's.
    assert!(acme_seen
        .lock()
        .unwrap()
        .iter()
        .all(|s| s.starts_with("crm.t.acme.")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_has_its_stream_and_its_replicas_consumers() {
    let rendered = Rendered::new(2);
    let nats = rendered.server();

    // `crm serve` of acme: creates its stream and publishes an event.
    let crm_acme = Client::connect(&nats, &rendered, "crm-acme").await;
    let js = jetstream::new(crm_acme.client.clone());
    js.create_stream(jetstream::stream::Config {
        name: "CRM_EVENTS_acme".into(),
        subjects: vec!["crm.t.acme.evt.>".into()],
        ..Default::default()
    })
    .await
    .expect("crm-acme creates CRM_EVENTS_acme");
    js.publish("crm.t.acme.evt.lead.LeadCreated", "event".into())
        .await
        .unwrap()
        .await
        .expect("the event is stored");

    // `crm project kpis --replica 2` of acme: its own durable consumer, pulled and acked.
    let projector = Client::connect(&nats, &rendered, "crm-projector-acme").await;
    let js = jetstream::new(projector.client.clone());
    let stream = js.get_stream("CRM_EVENTS_acme").await.unwrap();
    for durable in ["crm-proj-kpis", "crm-proj-kpis-r2"] {
        let consumer: jetstream::consumer::Consumer<pull::Config> = stream
            .get_or_create_consumer(
                durable,
                pull::Config {
                    durable_name: Some(durable.into()),
                    ack_policy: AckPolicy::Explicit,
                    ..Default::default()
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{durable}: {e}"));
        let mut messages = consumer
            .fetch()
            .max_messages(1)
            .expires(HANG_GUARD)
            .messages()
            .await
            .unwrap();
        let message = messages.next().await.expect("one event").unwrap();
        assert_eq!(message.subject.as_str(), "crm.t.acme.evt.lead.LeadCreated");
        message.double_ack().await.unwrap();
    }

    let mut projector = projector;
    projector
        .assert_refused(
            Op::Pub,
            "$JS.API.CONSUMER.CREATE.CRM_EVENTS_acme.crm-proj-kpis-r3",
        )
        .await;
    let mut globex_projector = Client::connect(&nats, &rendered, "crm-projector-globex").await;
    globex_projector
        .assert_refused(Op::Pub, "$JS.API.STREAM.INFO.CRM_EVENTS_acme")
        .await;
    globex_projector
        .assert_refused(
            Op::Pub,
            "$JS.API.CONSUMER.MSG.NEXT.CRM_EVENTS_acme.crm-proj-kpis-r2",
        )
        .await;
    globex_projector
        .assert_allowed(
            Op::Pub,
            "$JS.API.CONSUMER.INFO.CRM_EVENTS_globex.crm-proj-kpis-r2",
        )
        .await;
}
