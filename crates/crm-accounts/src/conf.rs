//! The part of the NATS configuration format that auth.conf uses, and a little more so that an
//! operator's edited copy still reads: `#` and `//` comments; maps whose entries are
//! `key: value`, `key = value` or `key value`, separated by newlines, `,` or `;`; arrays
//! separated by `,` or newlines; double-quoted strings (escapes `\t \n \r \" \\ \xHH`),
//! single-quoted raw strings, bare tokens (a `$NAME` is a variable reference, kept as such),
//! booleans (true/false/yes/no/on/off, any case) and numbers (kept as written). `include` and
//! `( ... )` blocks are refused: nothing here reads files, and blocks are not needed.
//!
//! A hand-written recursive descent over the characters, with a nesting bound so that no input
//! can exhaust the stack; it never panics (property tests in tests/never_panics.rs).

use crate::{AccountsError, SyntaxError};

/// Deepest nesting of maps and arrays read (auth.conf needs 6).
pub(crate) const NESTING_MAX: usize = 32;

/// A value and the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub line: usize,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// A quoted string or a bare token.
    Str(String),
    /// A bare `$NAME`: the name, without the `$`.
    Var(String),
    Bool(bool),
    /// A bare token starting with a digit or `-`, as written.
    Number(String),
    /// Entries in file order; a key may repeat (the reader decides what that means).
    Map(Vec<Entry>),
    Array(Vec<Node>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    pub line: usize,
    pub value: Node,
}

impl Value {
    /// What the value is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Var(_) => "a variable reference",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::Map(_) => "a map",
            Value::Array(_) => "an array",
        }
    }
}

/// Parses a whole configuration file: its top-level entries.
pub(crate) fn parse_document(text: &str) -> Result<Vec<Entry>, AccountsError> {
    let mut parser = Parser {
        chars: text.chars().collect(),
        pos: 0,
        line: 1,
    };
    parser.skip_trivia(true);
    // nats-server accepts the whole file wrapped in braces.
    if parser.peek() == Some('{') {
        let line = parser.line;
        parser.bump();
        let entries = parser.entries(Some(line), 1)?;
        parser.skip_trivia(true);
        match parser.peek() {
            None => Ok(entries),
            Some(c) => Err(parser.error(SyntaxError::Unexpected(c))),
        }
    } else {
        parser.entries(None, 0)
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    line: usize,
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_newline(c: char) -> bool {
    c == '\n' || c == '\r'
}

/// Where a bare value ends.
fn ends_bare_value(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | ';' | ']' | '}')
}

/// Where a bare key ends (nats-server: whitespace, `:` or `=`; also `{` and `[`, leniently).
fn ends_bare_key(c: char) -> bool {
    c.is_whitespace() || matches!(c, ':' | '=' | '{' | '[')
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos.saturating_add(offset)).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn error(&self, kind: SyntaxError) -> AccountsError {
        AccountsError::Syntax {
            line: self.line,
            kind,
        }
    }

    fn at_comment(&self) -> bool {
        match self.peek() {
            Some('#') => true,
            Some('/') => self.peek_at(1) == Some('/'),
            _ => false,
        }
    }

    fn skip_comment(&mut self) {
        while let Some(c) = self.peek() {
            if is_newline(c) {
                break;
            }
            self.bump();
        }
    }

    /// Skips whitespace, newlines and comments; with `separators`, also `,` and `;` (between
    /// entries and array elements, where nats-server takes them as terminators).
    fn skip_trivia(&mut self, separators: bool) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() || (separators && matches!(c, ',' | ';')) {
                self.bump();
            } else if self.at_comment() {
                self.skip_comment();
            } else {
                break;
            }
        }
    }

    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(is_blank) {
            self.bump();
        }
    }

    /// After a value: blanks, then a newline, separator, comment, the closing `close` or the
    /// end of the input (only where `close` is `None`).
    fn value_end(&mut self, close: Option<char>) -> Result<(), AccountsError> {
        self.skip_blanks();
        match self.peek() {
            None => Ok(()),
            Some(c) if is_newline(c) || matches!(c, ',' | ';') => Ok(()),
            Some(c) if Some(c) == close => Ok(()),
            Some(_) if self.at_comment() => Ok(()),
            Some(c) => Err(self.error(SyntaxError::Unexpected(c))),
        }
    }

    /// Map entries up to the closing `}` (`open` is the line of the `{`), or to the end of
    /// the input for the top level (`open` is `None`).
    fn entries(&mut self, open: Option<usize>, depth: usize) -> Result<Vec<Entry>, AccountsError> {
        let mut entries = Vec::new();
        loop {
            self.skip_trivia(true);
            match self.peek() {
                None => {
                    return match open {
                        Some(line) => Err(AccountsError::Syntax {
                            line,
                            kind: SyntaxError::Unclosed('{'),
                        }),
                        None => Ok(entries),
                    };
                }
                Some('}') if open.is_some() => {
                    self.bump();
                    return Ok(entries);
                }
                Some(c @ ('}' | ']' | ':' | '=')) => {
                    return Err(self.error(SyntaxError::Unexpected(c)));
                }
                Some(_) => {
                    let entry = self.entry(depth)?;
                    entries.push(entry);
                    self.value_end(if open.is_some() { Some('}') } else { None })?;
                }
            }
        }
    }

    fn entry(&mut self, depth: usize) -> Result<Entry, AccountsError> {
        let line = self.line;
        let (key, quoted) = self.key()?;
        if !quoted
            && key.eq_ignore_ascii_case("include")
            && self.peek().is_some_and(char::is_whitespace)
        {
            return Err(AccountsError::Include { line });
        }
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
        if matches!(self.peek(), Some(':' | '=')) {
            self.bump();
            while self.peek().is_some_and(char::is_whitespace) {
                self.bump();
            }
        }
        let value = self.value(depth)?;
        Ok(Entry { key, line, value })
    }

    /// A key, and whether it was quoted.
    fn key(&mut self) -> Result<(String, bool), AccountsError> {
        match self.peek() {
            Some(quote @ ('"' | '\'')) => {
                let line = self.line;
                self.bump();
                let mut key = String::new();
                loop {
                    match self.bump() {
                        None => {
                            return Err(AccountsError::Syntax {
                                line,
                                kind: SyntaxError::UnterminatedString,
                            })
                        }
                        Some(c) if c == quote => break,
                        Some(c) => key.push(c),
                    }
                }
                if key.is_empty() {
                    return Err(self.error(SyntaxError::EmptyKey));
                }
                Ok((key, true))
            }
            _ => {
                let mut key = String::new();
                while let Some(c) = self.peek() {
                    if ends_bare_key(c) {
                        break;
                    }
                    key.push(c);
                    self.bump();
                }
                if key.is_empty() {
                    return Err(self.error(SyntaxError::EmptyKey));
                }
                Ok((key, false))
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, AccountsError> {
        let line = self.line;
        let value = match self.peek() {
            None => return Err(self.error(SyntaxError::UnexpectedEnd)),
            Some('{') => {
                self.nest(depth)?;
                self.bump();
                Value::Map(self.entries(Some(line), depth + 1)?)
            }
            Some('[') => {
                self.nest(depth)?;
                self.bump();
                Value::Array(self.array(line, depth + 1)?)
            }
            Some('"') => Value::Str(self.double_quoted()?),
            Some('\'') => Value::Str(self.single_quoted()?),
            Some('(') => return Err(self.error(SyntaxError::Block)),
            Some(c) if ends_bare_value(c) => return Err(self.error(SyntaxError::Unexpected(c))),
            Some(_) => self.bare()?,
        };
        Ok(Node { line, value })
    }

    fn nest(&self, depth: usize) -> Result<(), AccountsError> {
        if depth >= NESTING_MAX {
            return Err(self.error(SyntaxError::TooDeep { max: NESTING_MAX }));
        }
        Ok(())
    }

    /// Array elements after the `[` (on line `open`), through the `]`.
    fn array(&mut self, open: usize, depth: usize) -> Result<Vec<Node>, AccountsError> {
        let mut elements = Vec::new();
        loop {
            self.skip_trivia(true);
            match self.peek() {
                None => {
                    return Err(AccountsError::Syntax {
                        line: open,
                        kind: SyntaxError::Unclosed('['),
                    })
                }
                Some(']') => {
                    self.bump();
                    return Ok(elements);
                }
                Some(_) => {
                    elements.push(self.value(depth)?);
                    self.value_end(Some(']'))?;
                }
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, AccountsError> {
        let line = self.line;
        self.bump();
        let mut bytes = Vec::new();
        loop {
            match self.bump() {
                None => {
                    return Err(AccountsError::Syntax {
                        line,
                        kind: SyntaxError::UnterminatedString,
                    })
                }
                Some('"') => break,
                Some('\\') => self.escape(&mut bytes)?,
                Some(c) => push_char(&mut bytes, c),
            }
        }
        String::from_utf8(bytes).map_err(|_| self.error(SyntaxError::InvalidUtf8))
    }

    fn single_quoted(&mut self) -> Result<String, AccountsError> {
        let line = self.line;
        self.bump();
        let mut text = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(AccountsError::Syntax {
                        line,
                        kind: SyntaxError::UnterminatedString,
                    })
                }
                Some('\'') => return Ok(text),
                Some(c) => text.push(c),
            }
        }
    }

    /// One escape after a `\`, into `bytes` (`\xHH` may be half of a UTF-8 sequence).
    fn escape(&mut self, bytes: &mut Vec<u8>) -> Result<(), AccountsError> {
        match self.bump() {
            Some('t') => bytes.push(b'\t'),
            Some('n') => bytes.push(b'\n'),
            Some('r') => bytes.push(b'\r'),
            Some('"') => bytes.push(b'"'),
            Some('\\') => bytes.push(b'\\'),
            Some('x') => {
                let high = self.bump().and_then(|c| c.to_digit(16));
                let low = self.bump().and_then(|c| c.to_digit(16));
                match (high, low) {
                    (Some(high), Some(low)) => {
                        let byte = u8::try_from(high * 16 + low)
                            .map_err(|_| self.error(SyntaxError::BadHexEscape))?;
                        bytes.push(byte);
                    }
                    _ => return Err(self.error(SyntaxError::BadHexEscape)),
                }
            }
            Some(c) => return Err(self.error(SyntaxError::BadEscape(c))),
            None => return Err(self.error(SyntaxError::UnexpectedEnd)),
        }
        Ok(())
    }

    /// A bare token: a string, a variable reference, a boolean or a number.
    fn bare(&mut self) -> Result<Value, AccountsError> {
        let mut bytes = Vec::new();
        let mut escaped = false;
        while let Some(c) = self.peek() {
            if ends_bare_value(c) {
                break;
            }
            self.bump();
            if c == '\\' {
                self.escape(&mut bytes)?;
                escaped = true;
            } else {
                push_char(&mut bytes, c);
            }
        }
        let text = String::from_utf8(bytes).map_err(|_| self.error(SyntaxError::InvalidUtf8))?;
        if escaped {
            return Ok(Value::Str(text));
        }
        let lower = text.to_ascii_lowercase();
        Ok(match lower.as_str() {
            "true" | "yes" | "on" => Value::Bool(true),
            "false" | "no" | "off" => Value::Bool(false),
            _ => match text.strip_prefix('$') {
                Some("") => return Err(self.error(SyntaxError::EmptyVariable)),
                Some(name) => Value::Var(name.to_owned()),
                None if text.starts_with(|c: char| c.is_ascii_digit() || c == '-') => {
                    Value::Number(text)
                }
                None => Value::Str(text),
            },
        })
    }
}

fn push_char(bytes: &mut Vec<u8>, c: char) {
    let mut buffer = [0_u8; 4];
    bytes.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Entry> {
        parse_document(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn s(text: &str) -> Value {
        Value::Str(text.to_owned())
    }

    fn values(text: &str) -> Vec<(String, Value)> {
        parse(text)
            .into_iter()
            .map(|e| (e.key, e.value.value))
            .collect()
    }

    #[test]
    fn key_separators_and_entry_separators() {
        assert_eq!(
            values("a: 1\nb = two; c three, d: 'x y'\n\"e f\": on // comment\n# c\ng no"),
            vec![
                ("a".into(), Value::Number("1".into())),
                ("b".into(), s("two")),
                ("c".into(), s("three")),
                ("d".into(), s("x y")),
                ("e f".into(), Value::Bool(true)),
                ("g".into(), Value::Bool(false)),
            ]
        );
    }

    #[test]
    fn maps_arrays_strings_and_variables() {
        let entries = parse(
            "authorization {\n  users = [\n    { user: crm, password: $PW }, {user: 'b'}\n    \"c\\t\\x41\"\n    crm.>\n  ]\n}\n",
        );
        let [Entry {
            key,
            line: 1,
            value,
        }] = entries.as_slice()
        else {
            panic!("{entries:?}");
        };
        assert_eq!(key, "authorization");
        let Value::Map(inner) = &value.value else {
            panic!("{value:?}")
        };
        let Some(Entry { value: users, .. }) = inner.first() else {
            panic!("{inner:?}")
        };
        let Value::Array(users) = &users.value else {
            panic!("{users:?}")
        };
        assert_eq!(users.len(), 4);
        assert_eq!(users[0].line, 3);
        assert_eq!(
            users[0].value,
            Value::Map(vec![
                Entry {
                    key: "user".into(),
                    line: 3,
                    value: Node {
                        line: 3,
                        value: s("crm")
                    }
                },
                Entry {
                    key: "password".into(),
                    line: 3,
                    value: Node {
                        line: 3,
                        value: Value::Var("PW".into())
                    }
                },
            ])
        );
        assert_eq!(users[2].value, s("c\tA"));
        assert_eq!(users[3].value, s("crm.>"));
    }

    #[test]
    fn the_whole_file_may_be_in_braces() {
        assert_eq!(
            values("{ a: 1 }\n"),
            vec![("a".into(), Value::Number("1".into()))]
        );
    }

    #[test]
    fn syntax_errors_carry_their_line() {
        for (text, line, kind) in [
            ("a: \"open\n\n", 1, SyntaxError::UnterminatedString),
            ("a {\n b: 1\n", 1, SyntaxError::Unclosed('{')),
            ("a: [1,\n 2\n", 1, SyntaxError::Unclosed('[')),
            ("a: 1 b: 2", 1, SyntaxError::Unexpected('b')),
            ("\n\na: \"\\q\"", 3, SyntaxError::BadEscape('q')),
            ("a: \"\\xZZ\"", 1, SyntaxError::BadHexEscape),
            ("a: \"\\xff\"", 1, SyntaxError::InvalidUtf8),
            ("a: (\n x\n)\n", 1, SyntaxError::Block),
            ("a: $\n", 1, SyntaxError::EmptyVariable),
            ("a:", 1, SyntaxError::UnexpectedEnd),
            ("\n}", 2, SyntaxError::Unexpected('}')),
            ("a: ]", 1, SyntaxError::Unexpected(']')),
        ] {
            assert_eq!(
                parse_document(text),
                Err(AccountsError::Syntax { line, kind }),
                "{text:?}"
            );
        }
        assert_eq!(
            parse_document("x: 1\ninclude ./auth.conf\n"),
            Err(AccountsError::Include { line: 2 })
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "a: ".to_owned() + &"[".repeat(NESTING_MAX + 1);
        assert!(matches!(
            parse_document(&deep),
            Err(AccountsError::Syntax {
                kind: SyntaxError::TooDeep { .. },
                ..
            })
        ));
        let fine = "a: ".to_owned() + &"[".repeat(NESTING_MAX) + &"]".repeat(NESTING_MAX);
        assert!(parse_document(&fine).is_ok());
    }
}
