//! The parser and the renderer on arbitrary input: they refuse or render, never panic, and
//! whatever renders is well-formed configuration (it parses again, as accounts).

use crm_accounts::{render, AccountsError, AuthConf, RenderOptions, SOURCE_AUTH_CONF};
use crm_wire::Tenant;
use proptest::prelude::*;

fn tenants() -> Vec<Tenant> {
    ["acme", "globex"]
        .iter()
        .map(|n| Tenant::parse(n).unwrap())
        .collect()
}

/// Parses `text`; when that succeeds, renders it and checks the output reads back as a
/// configuration that already has accounts (so it is syntactically sound).
fn parse_and_render(text: &str, read_replicas: u32) {
    let Ok(source) = AuthConf::parse(text) else {
        return;
    };
    let options = RenderOptions::default().with_read_replicas(read_replicas);
    if let Ok(rendered) = render(&source, &tenants(), &options) {
        assert!(
            matches!(
                AuthConf::parse(&rendered),
                Err(AccountsError::AlreadyAccounts { .. })
            ),
            "the rendering of {text:?} does not read back:\n{rendered}"
        );
    }
}

/// One edit of a text, as characters.
#[derive(Debug, Clone)]
enum Edit {
    Delete { at: usize, len: usize },
    Insert { at: usize, text: String },
    Replace { at: usize, with: char },
    DuplicateLine { line: usize },
    Truncate { at: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    let snippet = prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just(",".to_owned()),
        Just(";".to_owned()),
        Just("\n".to_owned()),
        Just("#".to_owned()),
        Just("//".to_owned()),
        Just("\\".to_owned()),
        Just("\\x".to_owned()),
        Just("$".to_owned()),
        Just("deny: \">\"".to_owned()),
        Just("allow_responses: { max: 2 }".to_owned()),
        Just("include x".to_owned()),
        Just("accounts {}".to_owned()),
        Just("\"crm.>\", ".to_owned()),
        Just("\">\", ".to_owned()),
        Just("\"_INBOX.>\", ".to_owned()),
        Just("\"crm.*.x\", ".to_owned()),
        Just("(".to_owned()),
        ".{0,8}",
    ];
    prop_oneof![
        (any::<usize>(), 0_usize..40).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), snippet).prop_map(|(at, text)| Edit::Insert { at, text }),
        (any::<usize>(), any::<char>()).prop_map(|(at, with)| Edit::Replace { at, with }),
        any::<usize>().prop_map(|line| Edit::DuplicateLine { line }),
        any::<usize>().prop_map(|at| Edit::Truncate { at }),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for edit in edits {
        let len = chars.len().max(1);
        match edit {
            Edit::Delete { at, len: n } => {
                let at = at % len;
                let end = (at + n).min(chars.len());
                if at < end {
                    chars.drain(at..end);
                }
            }
            Edit::Insert { at, text } => {
                let at = at % (chars.len() + 1);
                chars.splice(at..at, text.chars());
            }
            Edit::Replace { at, with } => {
                if !chars.is_empty() {
                    let at = at % chars.len();
                    chars[at] = *with;
                }
            }
            Edit::DuplicateLine { line } => {
                let text: String = chars.iter().collect();
                let mut lines: Vec<&str> = text.split('\n').collect();
                let at = line % lines.len();
                let copy = lines[at];
                lines.insert(at, copy);
                chars = lines.join("\n").chars().collect();
            }
            Edit::Truncate { at } => {
                chars.truncate(at % len);
            }
        }
    }
    chars.into_iter().collect()
}

/// Text made mostly of the format's own punctuation, to reach deep into the parser.
fn config_like() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("{"),
            Just("}"),
            Just("["),
            Just("]"),
            Just(":"),
            Just("="),
            Just(","),
            Just(";"),
            Just("\n"),
            Just(" "),
            Just("\""),
            Just("'"),
            Just("#"),
            Just("/"),
            Just("\\"),
            Just("$"),
            Just("authorization"),
            Just("users"),
            Just("user"),
            Just("password"),
            Just("permissions"),
            Just("publish"),
            Just("subscribe"),
            Just("allow"),
            Just("allow_responses"),
            Just("true"),
            Just("crm.cmd.>"),
            Just("_INBOX_a.>"),
            Just("a"),
            Just("1"),
        ],
        0..200,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        parse_and_render(&text, 1);
    }

    #[test]
    fn config_like_text_never_panics(text in config_like()) {
        parse_and_render(&text, 2);
    }

    #[test]
    fn edited_auth_conf_never_panics(
        edits in proptest::collection::vec(edit(), 1..6),
        read_replicas in 1_u32..4,
    ) {
        parse_and_render(&apply(SOURCE_AUTH_CONF, &edits), read_replicas);
    }

    #[test]
    fn arbitrary_subjects_never_panic(
        publish in proptest::collection::vec("[a-zA-Z0-9_$*>. -]{0,24}", 0..4),
        subscribe in proptest::collection::vec("[a-zA-Z0-9_$*>. -]{0,24}", 0..4),
        responder in any::<bool>(),
    ) {
        let list = |subjects: &[String]| {
            subjects.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")
        };
        let text = format!(
            "authorization {{ users = [\n\
             {{ user: crm, password: $P, permissions: {{ publish: \"crm.evt.>\", subscribe: \"crm.cmd.>\", allow_responses: true }} }}\n\
             {{ user: u, password: $U, permissions: {{ publish: [{}], subscribe: [{}], allow_responses: {responder} }} }}\n\
             ] }}",
            list(&publish),
            list(&subscribe),
        );
        parse_and_render(&text, 2);
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    for open in ["[", "{a:", "{a "] {
        let text = format!("authorization: {}", open.repeat(100_000));
        assert!(AuthConf::parse(&text).is_err());
    }
}

#[test]
fn the_shipped_file_renders_and_reads_back() {
    parse_and_render(SOURCE_AUTH_CONF, 3);
    assert!(AuthConf::parse(SOURCE_AUTH_CONF).is_ok());
}

/// Near the size limit, with thousands of users, subjects and service families: planned in
/// time linear in the input (a pairwise comparison would not finish).
#[test]
fn a_source_near_the_size_limit_is_handled() {
    let mut text = String::from(
        "authorization { users = [\n{ user: crm, password: $P, permissions: { publish: \"crm.evt.>\", subscribe: \"crm.>\", allow_responses: true } }\n",
    );
    let mut n = 0;
    while text.len() < crm_accounts::INPUT_BYTES_MAX - 4096 {
        let subjects: Vec<String> = (0..20).map(|i| format!("\"crm.f{n}x{i}.op\"")).collect();
        text.push_str(&format!(
            "{{ user: u{n}, password: $P, permissions: {{ publish: [{}], subscribe: \"_INBOX_u{n}.>\" }} }}\n",
            subjects.join(", ")
        ));
        n += 1;
    }
    text.push_str("] }\n");
    let source = AuthConf::parse(&text).unwrap();
    assert_eq!(source.users().len(), n + 1);
    let accounts =
        crm_accounts::Accounts::plan(&source, &tenants(), &RenderOptions::default()).unwrap();
    assert_eq!(accounts.exports().len(), 20 * n);
    assert!(!accounts.render().is_empty());
}
