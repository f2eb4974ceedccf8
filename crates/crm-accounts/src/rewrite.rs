//! How one subject of the source becomes the subjects of a user of the accounts. Pure
//! functions of strings; the table-driven tests below are the specification.

use std::collections::BTreeSet;

use crm_wire::{Tenant, DEFAULT_PREFIX, EVENTS_STREAM, TENANT_TOKEN};

pub(crate) const FULL_WILDCARD: &str = ">";
pub(crate) const TOKEN_WILDCARD: &str = "*";
/// The projectors' durable consumers are `crm-proj-<model>` (crm_wire::query::projector_consumer).
pub(crate) const CONSUMER_PREFIX: &str = "crm-proj-";

/// Why a subject of a caller is not carried into its tenant's account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// `$JS...`: the event streams live in the CRM account; a tenant's analysts read events
    /// through `crm.log.read`.
    JetStream,
    /// `$SRV...`: service discovery is the platform operator's, in the CRM account.
    Discovery,
}

impl DropReason {
    pub fn explanation(self) -> &'static str {
        match self {
            DropReason::JetStream => {
                "the event streams live in the CRM account; events are read through crm.log.read"
            }
            DropReason::Discovery => "service discovery is the platform operator's",
        }
    }
}

/// What becomes of a caller's subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Carried {
    Keep(String),
    Drop(DropReason),
}

/// The reply inbox prefix of a user: `_INBOX_<user>`.
pub(crate) fn inbox(user: &str) -> String {
    format!("_INBOX_{user}")
}

/// A subscription may name a queue group after a space.
fn split_queue(entry: &str) -> (&str, Option<&str>) {
    match entry.split_once(' ') {
        Some((subject, queue)) => (subject, Some(queue)),
        None => (entry, None),
    }
}

fn with_queue(subject: String, queue: Option<&str>) -> String {
    match queue {
        Some(queue) => format!("{subject} {queue}"),
        None => subject,
    }
}

/// The first token and what follows its dot.
fn split_first(subject: &str) -> (&str, Option<&str>) {
    match subject.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (subject, None),
    }
}

fn join(first: &str, rest: Option<&str>) -> String {
    match rest {
        Some(rest) => format!("{first}.{rest}"),
        None => first.to_owned(),
    }
}

fn is_wildcard(token: &str) -> bool {
    token == FULL_WILDCARD || token == TOKEN_WILDCARD
}

/// `$JS.API...`/`$JS.ACK...` with its stream token `CRM_EVENTS` replaced by `stream`. The
/// tokens before it must be literal: a wildcard there could reach another tenant's stream.
fn stream_subject(subject: &str, stream: &str) -> Result<String, &'static str> {
    let tokens: Vec<&str> = subject.split('.').collect();
    if !matches!(tokens.get(1), Some(&"API" | &"ACK")) {
        return Err("only $JS.API and $JS.ACK subjects of the stream CRM_EVENTS are carried over");
    }
    let Some(at) = tokens.iter().position(|t| *t == EVENTS_STREAM) else {
        return Err(
            "a JetStream subject that does not name the stream CRM_EVENTS would reach every \
             tenant's streams in the CRM account",
        );
    };
    if tokens.iter().take(at).any(|t| is_wildcard(t)) {
        return Err("a wildcard before the stream's name could reach another tenant's stream");
    }
    Ok(tokens
        .iter()
        .enumerate()
        .map(|(i, t)| if i == at { stream } else { t })
        .collect::<Vec<&str>>()
        .join("."))
}

/// A responder's subject for tenant `tenant`, in the CRM account: `crm.` becomes
/// `crm.t.<tenant>.`, the stream `CRM_EVENTS` becomes `CRM_EVENTS_<tenant>`, the inbox
/// `_INBOX_<user>` becomes `_INBOX_<user>-<tenant>`, `$SRV` stays. Anything else would be
/// shared by every tenant in the CRM account, and is refused.
pub(crate) fn responder(user: &str, tenant: &Tenant, entry: &str) -> Result<String, &'static str> {
    let (subject, queue) = split_queue(entry);
    let (first, rest) = split_first(subject);
    let rewritten = if first == inbox(user) {
        join(&inbox(&format!("{user}-{tenant}")), rest)
    } else if first.starts_with("_INBOX") {
        return Err(
            "an inbox other than the user's own would reach every tenant's replies in the CRM \
             account",
        );
    } else if first == DEFAULT_PREFIX && rest.is_some() {
        join(&tenant.subject_prefix(), rest)
    } else if first == "$JS" {
        stream_subject(subject, &tenant.stream_name())?
    } else if first == "$SRV" {
        subject.to_owned()
    } else {
        return Err(
            "only crm.*, the user's own inbox, JetStream on CRM_EVENTS and $SRV are carried \
             over; anything else would be shared by every tenant in the CRM account",
        );
    };
    Ok(with_queue(rewritten, queue))
}

/// The platform operator's subjects, in the CRM account: `crm.` becomes `crm.t.*.` (every
/// tenant), a JetStream subject of `CRM_EVENTS` becomes one per tenant's stream, anything else
/// (its inbox, `$SRV`) stays.
pub(crate) fn operator(entry: &str, tenants: &[Tenant]) -> Vec<String> {
    let (subject, queue) = split_queue(entry);
    let (first, rest) = split_first(subject);
    if first == DEFAULT_PREFIX && rest.is_some() {
        return vec![with_queue(
            join(
                &format!("{DEFAULT_PREFIX}.{TENANT_TOKEN}.{TOKEN_WILDCARD}"),
                rest,
            ),
            queue,
        )];
    }
    if first == "$JS" && subject.split('.').any(|t| t == EVENTS_STREAM) {
        let per_tenant: Result<Vec<String>, _> = tenants
            .iter()
            .map(|tenant| {
                stream_subject(subject, &tenant.stream_name()).map(|s| with_queue(s, queue))
            })
            .collect();
        if let Ok(per_tenant) = per_tenant {
            return per_tenant;
        }
    }
    vec![entry.to_owned()]
}

/// A caller's subject in its tenant's account: unchanged (the account's imports put its
/// tenant's services under today's names), except its inbox `_INBOX_<tenant>-<user>`;
/// JetStream and discovery are dropped. Another user's inbox is refused: its name changes.
pub(crate) fn caller(
    user: &str,
    tenant: &Tenant,
    entry: &str,
    users: &BTreeSet<&str>,
) -> Result<Carried, &'static str> {
    let (subject, queue) = split_queue(entry);
    let (first, rest) = split_first(subject);
    if first == inbox(user) {
        let inbox = join(&inbox(&format!("{tenant}-{user}")), rest);
        return Ok(Carried::Keep(with_queue(inbox, queue)));
    }
    if let Some(other) = first.strip_prefix("_INBOX_") {
        if users.contains(&other) {
            return Err("another user's inbox is renamed per tenant, so it cannot be carried over");
        }
    }
    Ok(match first {
        "$JS" => Carried::Drop(DropReason::JetStream),
        "$SRV" => Carried::Drop(DropReason::Discovery),
        _ => Carried::Keep(entry.to_owned()),
    })
}

/// The model of a projector consumer token `crm-proj-<model>`; `None` for anything else,
/// including a replica's own consumer `crm-proj-<model>-r<N>`.
fn consumer_model(token: &str) -> Option<&str> {
    let model = token.strip_prefix(CONSUMER_PREFIX)?;
    if model.is_empty() || is_wildcard(model) {
        return None;
    }
    if let Some((base, number)) = model.rsplit_once("-r") {
        if !base.is_empty() && !number.is_empty() && number.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
    }
    Some(model)
}

/// `entry`, then, when it names a projector consumer `crm-proj-<model>`, the same subject for
/// read replicas 2..=`replicas` (`crm-proj-<model>-r2`, ...: crm_wire::query::replica_consumer).
pub(crate) fn with_replicas(entry: &str, replicas: u32) -> Vec<String> {
    let (subject, queue) = split_queue(entry);
    let tokens: Vec<&str> = subject.split('.').collect();
    let mut all = vec![entry.to_owned()];
    if !tokens.iter().any(|t| consumer_model(t).is_some()) {
        return all;
    }
    for replica in 2..=replicas {
        let replaced: Vec<String> = tokens
            .iter()
            .map(|t| match consumer_model(t) {
                Some(model) => crm_wire::query::replica_consumer(model, replica),
                None => (*t).to_owned(),
            })
            .collect();
        all.push(with_queue(replaced.join("."), queue));
    }
    all
}

/// The service family a caller's `crm.` subject needs exported, as the part after `crm.`:
/// `cmd.>` for `crm.cmd.lead.>`, `log.head` for itself, `status.*` for itself, `projector.>`
/// for `crm.projector.*.status`. `None` for a subject outside `crm.`.
pub(crate) fn service_family(subject: &str) -> Result<Option<String>, &'static str> {
    let Some(rest) = subject.strip_prefix(&format!("{DEFAULT_PREFIX}.")) else {
        return Ok(None);
    };
    let tokens: Vec<&str> = rest.split('.').collect();
    Ok(Some(match tokens.as_slice() {
        [] | [""] | ["", ..] => return Err("it has an empty token"),
        [first, ..] if *first == TOKEN_WILDCARD => {
            return Err("a wildcard right after `crm.` names no one service to export")
        }
        [first, ..] if *first == FULL_WILDCARD => FULL_WILDCARD.to_owned(),
        [family] => (*family).to_owned(),
        [family, one] if *one != FULL_WILDCARD => format!("{family}.{one}"),
        [family, ..] => format!("{family}.{FULL_WILDCARD}"),
    }))
}

/// Whether another of `families` (all made by [`service_family`]: `>`, `f`, `f.x`, `f.*`,
/// `f.>`) covers `family`: looked up, not compared pairwise, as there may be thousands.
pub(crate) fn family_covered(family: &str, families: &BTreeSet<String>) -> bool {
    if family != FULL_WILDCARD && families.contains(FULL_WILDCARD) {
        return true;
    }
    match family.split_once('.') {
        Some((first, rest)) if rest != FULL_WILDCARD => {
            families.contains(&format!("{first}.{FULL_WILDCARD}"))
                || (rest != TOKEN_WILDCARD
                    && families.contains(&format!("{first}.{TOKEN_WILDCARD}")))
        }
        _ => false,
    }
}

/// Whether every subject matched by `specific` is matched by `general`: what the tests check
/// the rules against.
#[cfg(test)]
pub(crate) fn covers(general: &str, specific: &str) -> bool {
    let mut general = general.split('.');
    let mut specific = specific.split('.');
    loop {
        match (general.next(), specific.next()) {
            (None, None) => return true,
            (Some(FULL_WILDCARD), Some(_)) => return true,
            (Some(TOKEN_WILDCARD), Some(s)) if s != FULL_WILDCARD => {}
            (Some(g), Some(s)) if g == s => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> Tenant {
        Tenant::parse(name).unwrap()
    }

    #[test]
    fn responder_subjects_are_confined_to_their_tenant() {
        let acme = tenant("acme-eu");
        for (user, from, to) in [
            ("crm", "crm.evt.>", "crm.t.acme-eu.evt.>"),
            ("crm", "crm.cmd.>", "crm.t.acme-eu.cmd.>"),
            ("crm", "crm.log.head", "crm.t.acme-eu.log.head"),
            (
                "crm",
                "crm.projector.*.status.*",
                "crm.t.acme-eu.projector.*.status.*",
            ),
            (
                "crm",
                "crm.cmd.> crm-command-service",
                "crm.t.acme-eu.cmd.> crm-command-service",
            ),
            (
                "crm",
                "$JS.API.STREAM.INFO.CRM_EVENTS",
                "$JS.API.STREAM.INFO.CRM_EVENTS_acme-eu",
            ),
            (
                "crm",
                "$JS.API.STREAM.MSG.GET.CRM_EVENTS",
                "$JS.API.STREAM.MSG.GET.CRM_EVENTS_acme-eu",
            ),
            (
                "crm-projector",
                "$JS.API.CONSUMER.MSG.NEXT.CRM_EVENTS.crm-proj-kpis",
                "$JS.API.CONSUMER.MSG.NEXT.CRM_EVENTS_acme-eu.crm-proj-kpis",
            ),
            (
                "crm-projector",
                "$JS.ACK.CRM_EVENTS.crm-proj-kpis.>",
                "$JS.ACK.CRM_EVENTS_acme-eu.crm-proj-kpis.>",
            ),
            ("crm", "$SRV.*", "$SRV.*"),
            ("crm", "$SRV.*.crm.*", "$SRV.*.crm.*"),
            ("crm", "_INBOX_crm.>", "_INBOX_crm-acme-eu.>"),
            (
                "crm-projector",
                "_INBOX_crm-projector.>",
                "_INBOX_crm-projector-acme-eu.>",
            ),
        ] {
            assert_eq!(
                responder(user, &acme, from),
                Ok(to.to_owned()),
                "{user} {from}"
            );
        }
        for (user, refused) in [
            ("crm", ">"),
            ("crm", "*.cmd.>"),
            ("crm", "crm"),
            ("crm", "other.subject"),
            ("crm", "_INBOX.>"),
            ("crm", "_INBOX_sales-app.>"),
            ("crm-projector", "_INBOX_crm.>"),
            ("crm", "$JS.API.>"),
            ("crm", "$JS.API.INFO"),
            ("crm", "$JS.API.STREAM.INFO.*"),
            ("crm", "$JS.API.STREAM.INFO.OTHER"),
            ("crm", "$JS.API.*.*.*.CRM_EVENTS"),
            ("crm", "$JS.EVENT.ADVISORY.CRM_EVENTS"),
            ("crm", "$KV.config.>"),
        ] {
            assert!(responder(user, &acme, refused).is_err(), "{user} {refused}");
        }
    }

    #[test]
    fn the_operator_sees_every_tenant() {
        let tenants = [tenant("acme"), tenant("globex")];
        for (from, to) in [
            ("crm.status.*", vec!["crm.t.*.status.*"]),
            (
                "crm.projector.*.rebuild",
                vec!["crm.t.*.projector.*.rebuild"],
            ),
            ("crm.log.head", vec!["crm.t.*.log.head"]),
            ("$SRV.>", vec!["$SRV.>"]),
            ("_INBOX_operator.>", vec!["_INBOX_operator.>"]),
            (
                "$JS.API.STREAM.INFO.CRM_EVENTS",
                vec![
                    "$JS.API.STREAM.INFO.CRM_EVENTS_acme",
                    "$JS.API.STREAM.INFO.CRM_EVENTS_globex",
                ],
            ),
        ] {
            assert_eq!(operator(from, &tenants), to, "{from}");
        }
    }

    #[test]
    fn callers_keep_their_subjects_but_not_jetstream_or_discovery() {
        let acme = tenant("acme");
        let users = BTreeSet::from(["sales-app", "analyst"]);
        for (user, from, to) in [
            (
                "sales-app",
                "crm.cmd.lead.>",
                Carried::Keep("crm.cmd.lead.>".into()),
            ),
            (
                "sales-app",
                "crm.query.>",
                Carried::Keep("crm.query.>".into()),
            ),
            (
                "sales-app",
                "_INBOX_sales-app.>",
                Carried::Keep("_INBOX_acme-sales-app.>".into()),
            ),
            ("sales-app", "_INBOX.>", Carried::Keep("_INBOX.>".into())),
            (
                "sales-app",
                "other.thing",
                Carried::Keep("other.thing".into()),
            ),
            (
                "analyst",
                "$JS.API.STREAM.INFO.CRM_EVENTS",
                Carried::Drop(DropReason::JetStream),
            ),
            (
                "analyst",
                "$JS.ACK.CRM_EVENTS.analyst.>",
                Carried::Drop(DropReason::JetStream),
            ),
            ("analyst", "$SRV.>", Carried::Drop(DropReason::Discovery)),
        ] {
            assert_eq!(caller(user, &acme, from, &users), Ok(to), "{user} {from}");
        }
        assert!(caller("analyst", &acme, "_INBOX_sales-app.>", &users).is_err());
    }

    #[test]
    fn read_replicas_get_their_own_consumers() {
        assert_eq!(
            with_replicas("$JS.API.CONSUMER.INFO.CRM_EVENTS_acme.crm-proj-kpis", 3),
            [
                "$JS.API.CONSUMER.INFO.CRM_EVENTS_acme.crm-proj-kpis",
                "$JS.API.CONSUMER.INFO.CRM_EVENTS_acme.crm-proj-kpis-r2",
                "$JS.API.CONSUMER.INFO.CRM_EVENTS_acme.crm-proj-kpis-r3",
            ]
        );
        assert_eq!(
            with_replicas("$JS.ACK.CRM_EVENTS_acme.crm-proj-kpis.>", 2),
            [
                "$JS.ACK.CRM_EVENTS_acme.crm-proj-kpis.>",
                "$JS.ACK.CRM_EVENTS_acme.crm-proj-kpis-r2.>",
            ]
        );
        for untouched in [
            "crm.t.acme.query.>",
            "$JS.ACK.CRM_EVENTS_acme.crm-proj-kpis-r2.>",
            "$JS.ACK.CRM_EVENTS_acme.crm-proj-*.>",
            "$JS.ACK.CRM_EVENTS_acme.analyst.>",
        ] {
            assert_eq!(with_replicas(untouched, 3), [untouched], "{untouched}");
        }
        assert_eq!(
            with_replicas("$JS.ACK.CRM_EVENTS.crm-proj-kpis.>", 1).len(),
            1
        );
        // The names the projector runtime gives its replicas' consumers.
        assert_eq!(
            format!("{CONSUMER_PREFIX}kpis"),
            crm_wire::query::projector_consumer("kpis")
        );
        assert_eq!(
            crm_wire::query::replica_consumer("kpis", 2),
            "crm-proj-kpis-r2"
        );
    }

    #[test]
    fn service_families() {
        for (subject, family) in [
            ("crm.cmd.lead.>", Some("cmd.>")),
            ("crm.cmd.>", Some("cmd.>")),
            ("crm.query.>", Some("query.>")),
            ("crm.query.customer.>", Some("query.>")),
            ("crm.log.head", Some("log.head")),
            ("crm.log.read", Some("log.read")),
            ("crm.projector.*.status", Some("projector.>")),
            ("crm.projector.*.rebuild.*", Some("projector.>")),
            ("crm.status.*", Some("status.*")),
            ("crm.ping", Some("ping")),
            ("crm.>", Some(">")),
            ("other.subject", None),
            ("_INBOX_acme-sales-app.>", None),
        ] {
            assert_eq!(
                service_family(subject),
                Ok(family.map(str::to_owned)),
                "{subject}"
            );
        }
        assert!(service_family("crm.*.lead").is_err());
    }

    #[test]
    fn families_covered_by_others_are_left_out() {
        let set = |families: &[&str]| -> BTreeSet<String> {
            families.iter().map(|f| (*f).to_owned()).collect()
        };
        let all = set(&[
            "cmd.>",
            "log.head",
            "status.*",
            "status.x",
            "projector.>",
            "projector.*",
        ]);
        for (family, covered) in [
            ("cmd.>", false),
            ("log.head", false),
            ("status.*", false),
            ("status.x", true),
            ("projector.*", true),
            ("projector.>", false),
        ] {
            assert_eq!(family_covered(family, &all), covered, "{family}");
            let others: Vec<&String> = all.iter().filter(|o| *o != family).collect();
            assert_eq!(
                others.iter().any(|o| covers(o, family)),
                covered,
                "{family}: agrees with covers"
            );
        }
        let with_all = set(&[">", "cmd.>", "log"]);
        assert!(!family_covered(">", &with_all));
        assert!(family_covered("cmd.>", &with_all));
        assert!(family_covered("log", &with_all));
    }

    #[test]
    fn subject_coverage() {
        for (general, specific, covered) in [
            ("cmd.>", "cmd.lead.>", true),
            ("cmd.>", "cmd.x", true),
            ("cmd.>", "cmd", false),
            ("status.*", "status.abc", true),
            ("status.*", "status.>", false),
            ("status.*", "status.a.b", false),
            (">", "log.head", true),
            ("log.head", "log.read", false),
            ("log.head", "log.head", true),
            ("log.*", "log.head", true),
        ] {
            assert_eq!(covers(general, specific), covered, "{general} {specific}");
        }
    }

    #[test]
    fn the_export_prefix_puts_the_tenant_at_its_token_position() {
        let prefix = format!("{DEFAULT_PREFIX}.{TENANT_TOKEN}.{TOKEN_WILDCARD}");
        assert_eq!(
            prefix.split('.').nth(crm_wire::TENANT_TOKEN_POSITION - 1),
            Some(TOKEN_WILDCARD)
        );
        assert_eq!(
            tenant("acme")
                .subject_prefix()
                .split('.')
                .nth(crm_wire::TENANT_TOKEN_POSITION - 1),
            Some("acme")
        );
    }
}
