//! The users of a single-account auth.conf: what the accounts are made from. Only what the
//! renderer carries over is read; anything in `authorization` or in a user that it would have
//! to drop (deny lists, nkeys, default permissions, ...) is refused rather than lost.

use std::collections::BTreeMap;

use crate::conf::{self, Entry, Node, Value};
use crate::{AccountsError, Direction};

/// Longest source file read: auth.conf is about 9 KiB.
pub const INPUT_BYTES_MAX: usize = 1024 * 1024;
/// Longest user name: it becomes part of other user names, inboxes and variable names.
pub const USER_NAME_BYTES_MAX: usize = 64;

/// One user of the source, as written there (subjects verbatim, in file order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    name: String,
    password: String,
    publish: Vec<String>,
    subscribe: Vec<String>,
    allow_responses: bool,
    line: usize,
}

impl User {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// As written: `$NAME` for a variable reference (auth.conf uses nothing else).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// What it may publish to. Empty only for a responder that may publish nothing but its
    /// replies (nats-server's reading of allow_responses without a publish list).
    pub fn publish(&self) -> &[String] {
        &self.publish
    }

    /// What it may subscribe to; a subject may be followed by a space and a queue group.
    pub fn subscribe(&self) -> &[String] {
        &self.subscribe
    }

    /// Whether it answers requests (`allow_responses`): the responders (`crm`,
    /// `crm-projector`) serve every tenant from the CRM account; the others are callers.
    pub fn allow_responses(&self) -> bool {
        self.allow_responses
    }

    /// Where its entry starts in the source.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The list of `direction`.
    pub fn subjects(&self, direction: Direction) -> &[String] {
        match direction {
            Direction::Publish => &self.publish,
            Direction::Subscribe => &self.subscribe,
        }
    }
}

/// The parsed source: its users, in file order, with unique, checked names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConf {
    users: Vec<User>,
}

impl AuthConf {
    /// Reads the users of `authorization { users = [...] }`. Refuses texts over
    /// [`INPUT_BYTES_MAX`], syntax errors, `include`, `accounts`, and any user or permission
    /// the accounts could not carry over faithfully.
    pub fn parse(text: &str) -> Result<AuthConf, AccountsError> {
        if text.len() > INPUT_BYTES_MAX {
            return Err(AccountsError::TooLarge {
                bytes: text.len(),
                max: INPUT_BYTES_MAX,
            });
        }
        let top = conf::parse_document(text)?;
        let mut authorization = None;
        for entry in &top {
            match entry.key.to_ascii_lowercase().as_str() {
                "authorization" => {
                    if authorization.is_some() {
                        return Err(duplicate(entry, "the file"));
                    }
                    authorization = Some(entry);
                }
                "accounts" => return Err(AccountsError::AlreadyAccounts { line: entry.line }),
                // Server settings (port, jetstream, variables, ...): not the accounts' business.
                _ => {}
            }
        }
        let authorization = authorization.ok_or(AccountsError::NoAuthorization)?;
        let entries = map(authorization, "the file")?;
        let mut users = None;
        for entry in entries {
            if entry.key.eq_ignore_ascii_case("users") {
                if users.is_some() {
                    return Err(duplicate(entry, "authorization"));
                }
                users = Some(entry);
            } else {
                return Err(unsupported(entry, "authorization"));
            }
        }
        let users = users.ok_or(AccountsError::NoUsers {
            line: authorization.line,
        })?;
        let Value::Array(nodes) = &users.value.value else {
            return Err(wrong_type(users, "authorization", "an array of users"));
        };
        if nodes.is_empty() {
            return Err(AccountsError::NoUsers { line: users.line });
        }
        let mut parsed: Vec<User> = Vec::with_capacity(nodes.len());
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for node in nodes {
            let user = user(node)?;
            if let Some(first) = seen.insert(user.name.clone(), user.line) {
                return Err(AccountsError::DuplicateUser {
                    line: user.line,
                    first,
                    name: user.name,
                });
            }
            parsed.push(user);
        }
        Ok(AuthConf { users: parsed })
    }

    /// The users, in file order.
    pub fn users(&self) -> &[User] {
        &self.users
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }
}

fn duplicate(entry: &Entry, within: &str) -> AccountsError {
    AccountsError::DuplicateKey {
        line: entry.line,
        key: entry.key.clone(),
        within: within.to_owned(),
    }
}

fn unsupported(entry: &Entry, within: &str) -> AccountsError {
    AccountsError::Unsupported {
        line: entry.line,
        key: entry.key.clone(),
        within: within.to_owned(),
    }
}

fn wrong_type(entry: &Entry, within: &str, expected: &'static str) -> AccountsError {
    AccountsError::WrongType {
        line: entry.value.line,
        key: entry.key.clone(),
        within: within.to_owned(),
        expected,
        found: entry.value.value.kind(),
    }
}

fn map<'a>(entry: &'a Entry, within: &str) -> Result<&'a [Entry], AccountsError> {
    match &entry.value.value {
        Value::Map(entries) => Ok(entries),
        _ => Err(wrong_type(entry, within, "a map")),
    }
}

/// The entries of a map, by canonical key (nats-server's aliases, any case); a key given twice
/// (also through an alias) is refused, since nats-server would silently keep the last.
fn by_key<'a>(
    entries: &'a [Entry],
    within: &str,
    canonical: impl Fn(&str) -> Option<&'static str>,
) -> Result<BTreeMap<&'static str, &'a Entry>, AccountsError> {
    let mut keyed = BTreeMap::new();
    for entry in entries {
        let Some(key) = canonical(&entry.key.to_ascii_lowercase()) else {
            return Err(unsupported(entry, within));
        };
        if keyed.insert(key, entry).is_some() {
            return Err(duplicate(entry, within));
        }
    }
    Ok(keyed)
}

fn user(node: &Node) -> Result<User, AccountsError> {
    let line = node.line;
    let Value::Map(entries) = &node.value else {
        return Err(AccountsError::WrongType {
            line,
            key: "users".into(),
            within: "authorization".into(),
            expected: "an array of maps",
            found: node.value.kind(),
        });
    };
    let within = "a user";
    let fields = by_key(entries, within, |key| match key {
        "user" | "username" => Some("user"),
        "pass" | "password" => Some("password"),
        "permission" | "permissions" | "authorization" => Some("permissions"),
        _ => None,
    })?;
    let name = match fields.get("user") {
        None => return Err(AccountsError::MissingUser { line }),
        Some(entry) => match &entry.value.value {
            Value::Str(name) => name.clone(),
            _ => return Err(wrong_type(entry, within, "a string")),
        },
    };
    check_user_name(&name, line)?;
    let within = format!("user `{name}`");
    let password = match fields.get("password") {
        None => return Err(AccountsError::MissingPassword { line, user: name }),
        Some(entry) => match &entry.value.value {
            Value::Str(text) if !text.is_empty() => text.clone(),
            Value::Var(variable) => format!("${variable}"),
            Value::Str(_) => return Err(AccountsError::MissingPassword { line, user: name }),
            _ => return Err(wrong_type(entry, &within, "a string or a $VARIABLE")),
        },
    };
    let Some(permissions) = fields.get("permissions") else {
        return Err(AccountsError::Unrestricted {
            line,
            user: name,
            direction: Direction::Publish,
        });
    };
    let entries = map(permissions, &within)?;
    let within = format!("the permissions of `{name}`");
    let keyed = by_key(entries, &within, |key| match key {
        "pub" | "publish" | "import" => Some("publish"),
        "sub" | "subscribe" | "export" => Some("subscribe"),
        "allow_responses" | "publish_allow_responses" => Some("allow_responses"),
        _ => None,
    })?;
    let allow_responses = match keyed.get("allow_responses") {
        None => false,
        Some(entry) => match &entry.value.value {
            Value::Bool(allowed) => *allowed,
            // `{ max: .., expires: .. }` would be rendered as `true`, losing its limits.
            _ => return Err(wrong_type(entry, &within, "a boolean")),
        },
    };
    let publish = match keyed.get("publish") {
        Some(entry) => allow_list(entry, &name, Direction::Publish, &within)?,
        // nats-server: allow_responses without a publish list allows only the replies.
        None if allow_responses => Vec::new(),
        None => {
            return Err(AccountsError::Unrestricted {
                line,
                user: name,
                direction: Direction::Publish,
            })
        }
    };
    let subscribe = match keyed.get("subscribe") {
        Some(entry) => allow_list(entry, &name, Direction::Subscribe, &within)?,
        None => {
            return Err(AccountsError::Unrestricted {
                line,
                user: name,
                direction: Direction::Subscribe,
            })
        }
    };
    Ok(User {
        name,
        password,
        publish,
        subscribe,
        allow_responses,
        line,
    })
}

/// A user name becomes part of user names, reply inboxes (one subject token) and password
/// variables (upper-cased, `-` as `_`): the tenant name rules keep all three unambiguous.
fn check_user_name(name: &str, line: usize) -> Result<(), AccountsError> {
    let reason = if name.is_empty() || name.len() > USER_NAME_BYTES_MAX {
        Some("a user name is 1 to 64 characters")
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("a user name starts with a letter a-z")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        Some("a user name holds only a-z, 0-9 and '-' (it is part of inboxes and variable names)")
    } else if name.ends_with('-') {
        Some("a user name does not end with '-'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(AccountsError::BadUserName {
            line,
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// `publish:`/`subscribe:` as a subject, an array of subjects, or `{ allow: ... }`.
fn allow_list(
    entry: &Entry,
    user: &str,
    direction: Direction,
    within: &str,
) -> Result<Vec<String>, AccountsError> {
    let node = match &entry.value.value {
        Value::Map(entries) => {
            let keyed = by_key(entries, within, |key| match key {
                "allow" => Some("allow"),
                "deny" => Some("deny"),
                _ => None,
            })?;
            if let Some(deny) = keyed.get("deny") {
                return Err(AccountsError::DenyList {
                    line: deny.line,
                    user: user.to_owned(),
                    direction,
                });
            }
            match keyed.get("allow") {
                Some(allow) => &allow.value,
                None => {
                    return Err(AccountsError::Unrestricted {
                        line: entry.line,
                        user: user.to_owned(),
                        direction,
                    })
                }
            }
        }
        _ => &entry.value,
    };
    let nodes = match &node.value {
        Value::Array(nodes) => nodes.as_slice(),
        _ => std::slice::from_ref(node),
    };
    if nodes.is_empty() {
        return Err(AccountsError::EmptyAllow {
            line: node.line,
            user: user.to_owned(),
            direction,
        });
    }
    let mut subjects = Vec::with_capacity(nodes.len());
    for node in nodes {
        let subject = match &node.value {
            Value::Str(subject) => subject,
            // nats-server would resolve it; a subject starting with `$` must be quoted.
            other => {
                return Err(AccountsError::WrongType {
                    line: node.line,
                    key: direction.to_string(),
                    within: within.to_owned(),
                    expected: "a subject string (quote subjects starting with `$`)",
                    found: other.kind(),
                })
            }
        };
        check_subject(subject, direction).map_err(|reason| AccountsError::BadSubject {
            line: node.line,
            user: user.to_owned(),
            direction,
            subject: subject.clone(),
            reason,
        })?;
        subjects.push(subject.clone());
    }
    Ok(subjects)
}

/// Subjects are written back quoted, one per line, and rewritten token by token: refuse what
/// would not survive that (or what nats-server would refuse anyway).
fn check_subject(entry: &str, direction: Direction) -> Result<(), &'static str> {
    if entry
        .chars()
        .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return Err("holds a control character, a quote or a backslash");
    }
    let (subject, queue) = match entry.split_once(' ') {
        Some((subject, queue)) => (subject, Some(queue)),
        None => (entry, None),
    };
    if let Some(queue) = queue {
        if direction == Direction::Publish {
            return Err("holds a space");
        }
        if queue.is_empty() || queue.chars().any(char::is_whitespace) {
            return Err("is not a subject, optionally followed by one space and a queue group");
        }
    }
    if subject.chars().any(char::is_whitespace) {
        return Err("holds whitespace");
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    if tokens.iter().any(|t| t.is_empty()) {
        return Err("has an empty token");
    }
    if tokens
        .iter()
        .rev()
        .skip(1)
        .any(|t| *t == crate::rewrite::FULL_WILDCARD)
    {
        return Err("has `>` before its last token");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SOURCE_AUTH_CONF;

    fn strings(subjects: &[&str]) -> Vec<String> {
        subjects.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_shipped_auth_conf_has_six_users() {
        let source = AuthConf::parse(SOURCE_AUTH_CONF).unwrap();
        let names: Vec<&str> = source.users().iter().map(User::name).collect();
        assert_eq!(
            names,
            [
                "crm",
                "crm-projector",
                "sales-app",
                "support-desk",
                "analyst",
                "operator"
            ]
        );
        let responders: Vec<&str> = source
            .users()
            .iter()
            .filter(|u| u.allow_responses())
            .map(User::name)
            .collect();
        assert_eq!(responders, ["crm", "crm-projector"]);

        let crm = source.user("crm").unwrap();
        assert_eq!(crm.password(), "$CRM_NATS_PASSWORD_CRM");
        assert_eq!(crm.publish().first().map(String::as_str), Some("crm.evt.>"));
        for subject in [
            "$JS.API.STREAM.CREATE.CRM_EVENTS",
            "$JS.API.CONSUMER.MSG.NEXT.CRM_EVENTS.crm-proj-kpis",
        ] {
            assert!(crm.publish().contains(&subject.to_owned()), "{subject}");
        }
        assert_eq!(
            crm.publish().last().map(String::as_str),
            Some("$JS.ACK.CRM_EVENTS.crm-proj-tickets.>")
        );
        assert_eq!(
            crm.subscribe(),
            strings(&[
                "crm.cmd.>",
                "crm.query.>",
                "crm.log.head",
                "crm.log.read",
                "crm.projector.*.status",
                "crm.projector.*.rebuild",
                "crm.projector.*.status.*",
                "crm.projector.*.rebuild.*",
                "crm.status.*",
                "$SRV.*",
                "$SRV.*.crm",
                "$SRV.*.crm.*",
                "_INBOX_crm.>",
            ])
        );

        let sales = source.user("sales-app").unwrap();
        assert!(!sales.allow_responses());
        assert_eq!(sales.password(), "$CRM_NATS_PASSWORD_SALES_APP");
        assert_eq!(
            sales.publish(),
            strings(&[
                "crm.cmd.lead.>",
                "crm.cmd.customer.>",
                "crm.cmd.order.>",
                "crm.cmd.campaign.>",
                "crm.cmd.pipeline.>",
                "crm.query.>",
            ])
        );
        assert_eq!(sales.subscribe(), strings(&["_INBOX_sales-app.>"]));

        let support = source.user("support-desk").unwrap();
        assert_eq!(
            support.publish(),
            strings(&[
                "crm.cmd.ticket.>",
                "crm.cmd.customer.>",
                "crm.query.customer.>"
            ])
        );

        let analyst = source.user("analyst").unwrap();
        assert_eq!(analyst.publish().len(), 12);
        assert!(analyst
            .publish()
            .contains(&"$JS.API.CONSUMER.CREATE.CRM_EVENTS.analyst.>".to_owned()));

        let operator = source.user("operator").unwrap();
        assert_eq!(
            operator.publish().last().map(String::as_str),
            Some("$SRV.>")
        );
        assert_eq!(operator.subscribe(), strings(&["_INBOX_operator.>"]));
    }

    #[test]
    fn other_spellings_nats_server_accepts_are_read() {
        let source = AuthConf::parse(
            "port: 4222\nAuthorization {\n  Users: [\n    { username = a, pass = 'secret'; \
             permission { pub = crm.cmd.>, sub: [\"_INBOX_a.>\", \"crm.x q\"] } }\n    \
             { user b, password $B; permissions { subscribe { allow crm.q.> }, \
             publish_allow_responses: true } }\n  ]\n}\n",
        )
        .unwrap();
        let [a, b] = source.users() else {
            panic!("{source:?}")
        };
        assert_eq!(a.name(), "a");
        assert_eq!(a.password(), "secret");
        assert_eq!(a.publish(), strings(&["crm.cmd.>"]));
        assert_eq!(a.subscribe(), strings(&["_INBOX_a.>", "crm.x q"]));
        assert!(!a.allow_responses());
        assert_eq!(b.password(), "$B");
        assert!(b.allow_responses());
        assert!(b.publish().is_empty(), "only its replies");
        assert_eq!(b.line(), 5);
    }

    fn refused(text: &str) -> AccountsError {
        match AuthConf::parse(text) {
            Ok(source) => panic!("{text:?} was accepted: {source:?}"),
            Err(error) => error,
        }
    }

    fn with_user(body: &str) -> String {
        format!("authorization {{\n  users = [\n    {{ {body} }}\n  ]\n}}\n")
    }

    #[test]
    fn what_cannot_be_carried_over_is_refused() {
        let ok_perms = "permissions { publish: \"crm.cmd.>\", subscribe: \"_INBOX_a.>\" }";
        let user = |rest: &str| with_user(&format!("user: a, password: $A, {rest}"));
        assert_eq!(
            refused(&user(
                "permissions { publish { allow: \"crm.>\", deny: \"crm.evt.>\" }, subscribe: x }"
            )),
            AccountsError::DenyList {
                line: 3,
                user: "a".into(),
                direction: Direction::Publish
            }
        );
        assert_eq!(
            refused(&user("permissions { subscribe: \"_INBOX_a.>\" }")),
            AccountsError::Unrestricted {
                line: 3,
                user: "a".into(),
                direction: Direction::Publish
            }
        );
        assert_eq!(
            refused(&user("permissions { publish: x, subscribe: {} }")),
            AccountsError::Unrestricted {
                line: 3,
                user: "a".into(),
                direction: Direction::Subscribe
            }
        );
        assert_eq!(
            refused(&user("permissions { publish: [], subscribe: x }")),
            AccountsError::EmptyAllow {
                line: 3,
                user: "a".into(),
                direction: Direction::Publish
            }
        );
        assert_eq!(
            refused(&user(&format!("nkey: UABC, {ok_perms}"))),
            AccountsError::Unsupported {
                line: 3,
                key: "nkey".into(),
                within: "a user".into()
            }
        );
        assert!(matches!(
            refused(&user("permissions { publish: x, subscribe: y, responses: true }")),
            AccountsError::Unsupported { key, .. } if key == "responses"
        ));
        assert!(matches!(
            refused(&user("permissions { publish: [$X], subscribe: y }")),
            AccountsError::WrongType {
                found: "a variable reference",
                ..
            }
        ));
        assert!(matches!(
            refused(&user("permissions { publish: \"a b\", subscribe: y }")),
            AccountsError::BadSubject {
                reason: "holds a space",
                ..
            }
        ));
        assert!(matches!(
            refused(&user("permissions { publish: \"a.>.b\", subscribe: y }")),
            AccountsError::BadSubject { .. }
        ));
        assert!(matches!(
            refused(&user("permissions { publish: \"a..b\", subscribe: y }")),
            AccountsError::BadSubject { .. }
        ));
        assert!(matches!(
            refused(&user(&format!("{ok_perms}, permission: {{}}"))),
            AccountsError::DuplicateKey { key, .. } if key == "permission"
        ));
        assert_eq!(
            refused(&with_user(&format!(
                "user: Sales, password: $A, {ok_perms}"
            ))),
            AccountsError::BadUserName {
                line: 3,
                name: "Sales".into(),
                reason: "a user name starts with a letter a-z"
            }
        );
        assert!(matches!(
            refused(&with_user(&format!(
                "user: sales_app, password: $A, {ok_perms}"
            ))),
            AccountsError::BadUserName { .. }
        ));
        assert_eq!(
            refused(&with_user(&format!("password: $A, {ok_perms}"))),
            AccountsError::MissingUser { line: 3 }
        );
        assert_eq!(
            refused(&with_user(&format!("user: a, {ok_perms}"))),
            AccountsError::MissingPassword {
                line: 3,
                user: "a".into()
            }
        );
        assert!(matches!(
            refused(&with_user("user: true, password: $A")),
            AccountsError::WrongType {
                found: "a boolean",
                ..
            }
        ));
    }

    #[test]
    fn the_file_level_is_checked() {
        assert_eq!(refused("port: 4222\n"), AccountsError::NoAuthorization);
        assert_eq!(
            refused("authorization { users: [] }"),
            AccountsError::NoUsers { line: 1 }
        );
        assert_eq!(
            refused("authorization {\n timeout: 2\n}"),
            AccountsError::Unsupported {
                line: 2,
                key: "timeout".into(),
                within: "authorization".into()
            }
        );
        assert_eq!(
            refused("\naccounts { A { } }"),
            AccountsError::AlreadyAccounts { line: 2 }
        );
        assert_eq!(
            refused("include ./auth.conf\n"),
            AccountsError::Include { line: 1 }
        );
        assert!(matches!(
            refused("authorization { users: [] }\nauthorization { users: [] }"),
            AccountsError::DuplicateKey { line: 2, .. }
        ));
        let one = "{ user: a, password: $A, permissions { publish: x, subscribe: y } }";
        assert_eq!(
            refused(&format!("authorization {{ users: [\n{one}\n{one}\n] }}")),
            AccountsError::DuplicateUser {
                line: 3,
                first: 2,
                name: "a".into()
            }
        );
        let huge = format!("# {}\n", "x".repeat(INPUT_BYTES_MAX));
        assert_eq!(
            refused(&huge),
            AccountsError::TooLarge {
                bytes: huge.len(),
                max: INPUT_BYTES_MAX
            }
        );
    }
}
