//! Why a source was refused or accounts could not be rendered. Every refusal names the line (of
//! the source) or the tenant it is about, so an operator can fix the file or the list.

use std::fmt;

/// Publish or subscribe: which list of a user a subject is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    Publish,
    Subscribe,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Publish => "publish",
            Direction::Subscribe => "subscribe",
        })
    }
}

/// What is wrong with the text itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error("unexpected end of the file")]
    UnexpectedEnd,
    #[error("unexpected {0:?}")]
    Unexpected(char),
    #[error("a string that is never closed")]
    UnterminatedString,
    #[error("a {0:?} that is never closed")]
    Unclosed(char),
    #[error("an empty key")]
    EmptyKey,
    #[error("a `$` without a variable name")]
    EmptyVariable,
    #[error("unknown escape \\{0}; only \\t \\n \\r \\\" \\\\ and \\xHH are")]
    BadEscape(char),
    #[error("\\x takes two hexadecimal digits")]
    BadHexEscape,
    #[error("escapes that do not make UTF-8")]
    InvalidUtf8,
    #[error("( ... ) blocks are not read here")]
    Block,
    #[error("maps and arrays nested deeper than {max}")]
    TooDeep { max: usize },
}

/// Why a source was refused, or accounts could not be rendered from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountsError {
    #[error("the configuration is {bytes} bytes; at most {max} are read")]
    TooLarge { bytes: usize, max: usize },
    #[error("line {line}: {kind}")]
    Syntax { line: usize, kind: SyntaxError },
    #[error(
        "line {line}: `include` is not followed here; give the included file (auth.conf) itself"
    )]
    Include { line: usize },
    #[error(
        "line {line}: the configuration already has `accounts`; give the single-account \
         auth.conf the accounts are made from"
    )]
    AlreadyAccounts { line: usize },
    #[error("no `authorization {{ users = [...] }}` block")]
    NoAuthorization,
    #[error("line {line}: `authorization` lists no users")]
    NoUsers { line: usize },
    #[error("line {line}: `{key}` is given twice in {within}")]
    DuplicateKey {
        line: usize,
        key: String,
        within: String,
    },
    #[error("line {line}: `{key}` in {within} must be {expected}, not {found}")]
    WrongType {
        line: usize,
        key: String,
        within: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error(
        "line {line}: `{key}` in {within} is not carried over to the accounts; remove it, or \
         teach crm-accounts to carry it"
    )]
    Unsupported {
        line: usize,
        key: String,
        within: String,
    },
    #[error(
        "line {line}: user `{user}` has a {direction} deny list; deny lists are not carried \
         over to the accounts (list what is allowed instead)"
    )]
    DenyList {
        line: usize,
        user: String,
        direction: Direction,
    },
    #[error(
        "line {line}: user `{user}` has no {direction} allow list, so it may {direction} to \
         anything, which cannot be confined to one tenant; list what it may {direction} to"
    )]
    Unrestricted {
        line: usize,
        user: String,
        direction: Direction,
    },
    #[error(
        "line {line}: user `{user}` has an empty {direction} allow list, which nats-server may \
         read as no restriction at all; list what it may {direction} to"
    )]
    EmptyAllow {
        line: usize,
        user: String,
        direction: Direction,
    },
    #[error("line {line}: a user entry without `user`")]
    MissingUser { line: usize },
    #[error("line {line}: user `{user}` has no password")]
    MissingPassword { line: usize, user: String },
    #[error("line {line}: user name {name:?}: {reason}")]
    BadUserName {
        line: usize,
        name: String,
        reason: &'static str,
    },
    #[error("line {line}: user `{name}` is already defined on line {first}")]
    DuplicateUser {
        line: usize,
        first: usize,
        name: String,
    },
    #[error("line {line}: user `{user}`: {direction} subject {subject:?} {reason}")]
    BadSubject {
        line: usize,
        user: String,
        direction: Direction,
        subject: String,
        reason: &'static str,
    },
    #[error(
        "line {line}: user `{user}`: {direction} subject {subject:?} cannot be confined to one \
         tenant: {reason}"
    )]
    Unconfinable {
        line: usize,
        user: String,
        direction: Direction,
        subject: String,
        reason: &'static str,
    },
    #[error(
        "line {line}: user `{user}` publishes to {subject:?}, from which no service export can \
         be derived: {reason}"
    )]
    NoExport {
        line: usize,
        user: String,
        subject: String,
        reason: &'static str,
    },
    #[error("no tenants: at least one is needed")]
    NoTenants,
    #[error("tenant `{0}` is given twice")]
    DuplicateTenant(String),
    #[error(
        "no responder (a user with allow_responses, like `crm`): nothing would serve the \
         tenants"
    )]
    NoResponder,
    #[error("read replicas must be 1 to {max}; {given} is not")]
    ReadReplicas { given: u32, max: u32 },
    #[error(
        "two users of the accounts would be named `{name}` (from `{first}` and `{second}`); \
         user names must be unique across the server: rename a tenant or a user"
    )]
    NameClash {
        name: String,
        first: String,
        second: String,
    },
}
