//! Field checks shared by the command rules. Each failure is `validation_failed` naming the field.

use crate::money::{Money, AMOUNT_MINOR_MAX};
use crate::rejection::Rejection;

/// Names of people, companies, campaigns, contacts.
pub const NAME_CHARS_MAX: usize = 200;
/// Free text: reasons, subjects, resolutions, comments.
pub const TEXT_CHARS_MAX: usize = 2000;
/// Short labels: owner, department, industry, region, role, channel, responder.
pub const LABEL_CHARS_MAX: usize = 200;
pub const EMAIL_CHARS_MAX: usize = 254;
pub const PHONE_CHARS_MAX: usize = 32;
/// Pipeline and stage names: `[a-z0-9_-]`.
pub const SLUG_CHARS_MAX: usize = 64;
pub const PIPELINE_STAGES_MIN: usize = 2;
pub const PIPELINE_STAGES_MAX: usize = 12;
/// The furthest in the future a business time may lie (docs/DESIGN.md rule 13).
pub const OCCURRED_AT_FUTURE_MICROS_MAX: i64 = 5 * crate::time::MICROS_PER_MINUTE;

type Check = Result<(), Rejection>;

fn bounded_text(field: &'static str, value: &str, chars_max: usize) -> Check {
    if value.trim().is_empty() {
        return Err(Rejection::validation(field, "must not be empty"));
    }
    if value.chars().count() > chars_max {
        return Err(Rejection::validation(
            field,
            format!("must be at most {chars_max} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Rejection::validation(
            field,
            "must not hold control characters",
        ));
    }
    Ok(())
}

pub fn name(field: &'static str, value: &str) -> Check {
    bounded_text(field, value, NAME_CHARS_MAX)
}

pub fn text(field: &'static str, value: &str) -> Check {
    bounded_text(field, value, TEXT_CHARS_MAX)
}

pub fn label(field: &'static str, value: &str) -> Check {
    bounded_text(field, value, LABEL_CHARS_MAX)
}

pub fn optional_label(field: &'static str, value: Option<&String>) -> Check {
    value.map_or(Ok(()), |v| label(field, v))
}

pub fn optional_name(field: &'static str, value: Option<&String>) -> Check {
    value.map_or(Ok(()), |v| name(field, v))
}

pub fn optional_text(field: &'static str, value: Option<&String>) -> Check {
    value.map_or(Ok(()), |v| text(field, v))
}

/// A pragmatic address check: `local@domain.tld`, no spaces, bounded length.
pub fn email(field: &'static str, value: Option<&String>) -> Check {
    let Some(value) = value else { return Ok(()) };
    let invalid =
        || Rejection::validation(field, format!("`{value}` is not a valid email address"));
    if value.len() > EMAIL_CHARS_MAX || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let (local, domain) = value.split_once('@').ok_or_else(invalid)?;
    let domain_ok = !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..");
    if local.is_empty() || local.len() > 64 || !domain_ok {
        return Err(invalid());
    }
    Ok(())
}

/// Digits with the usual separators and an optional leading `+`.
pub fn phone(field: &'static str, value: Option<&String>) -> Check {
    let Some(value) = value else { return Ok(()) };
    let digits = value.chars().filter(char::is_ascii_digit).count();
    let allowed = value
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_digit() || " -().".contains(c) || (c == '+' && i == 0));
    if value.chars().count() > PHONE_CHARS_MAX || !allowed || digits < 3 {
        return Err(Rejection::validation(
            field,
            format!("`{value}` is not a valid phone number"),
        ));
    }
    Ok(())
}

pub fn slug(field: &'static str, value: &str) -> Check {
    let ok = !value.is_empty()
        && value.len() <= SLUG_CHARS_MAX
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Rejection::validation(
            field,
            format!("`{value}` must be 1 to {SLUG_CHARS_MAX} characters of a-z, 0-9, `_` or `-`"),
        ))
    }
}

/// A known currency and `0..=`[`AMOUNT_MINOR_MAX`] minor units.
pub fn money_non_negative(field: &'static str, money: &Money) -> Check {
    known_currency(field, money)?;
    if money.amount_minor < 0 {
        return Err(Rejection::validation(field, "must not be negative"));
    }
    at_most_the_bound(field, money)
}

/// A known currency and `1..=`[`AMOUNT_MINOR_MAX`] minor units.
pub fn money_positive(field: &'static str, money: &Money) -> Check {
    known_currency(field, money)?;
    if money.amount_minor <= 0 {
        return Err(Rejection::validation(field, "must be greater than zero"));
    }
    at_most_the_bound(field, money)
}

/// Every money field of every command: at most [`AMOUNT_MINOR_MAX`] minor units, so that
/// one amount is exact as a JSON number anywhere and the read models' sums stay exact.
fn at_most_the_bound(field: &'static str, money: &Money) -> Check {
    if money.amount_minor > AMOUNT_MINOR_MAX {
        return Err(Rejection::validation(
            field,
            format!(
                "amount_minor must be at most {AMOUNT_MINOR_MAX} (10^15 minor units), not {}",
                money.amount_minor
            ),
        ));
    }
    Ok(())
}

fn known_currency(field: &'static str, money: &Money) -> Check {
    if money.currency.is_known() {
        Ok(())
    } else {
        Err(Rejection::validation(
            field,
            format!("`{}` is not a known ISO 4217 currency", money.currency),
        ))
    }
}

pub fn same_currency(field: &'static str, money: &Money, expected: &Money) -> Check {
    if money.currency == expected.currency {
        Ok(())
    } else {
        Err(Rejection::validation(
            field,
            format!(
                "currency {} differs from the order's {}",
                money.currency, expected.currency
            ),
        ))
    }
}
