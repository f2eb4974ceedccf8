//! Business and recording time as microseconds since the Unix epoch (UTC).
//! RFC 3339 in human-readable formats (JSON), a plain `i64` in bincode.

use std::fmt;

use chrono::{DateTime, Datelike, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, UTC, microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

pub const MICROS_PER_SECOND: i64 = 1_000_000;
pub const MICROS_PER_MINUTE: i64 = 60 * MICROS_PER_SECOND;
pub const MICROS_PER_DAY: i64 = 24 * 60 * MICROS_PER_MINUTE;

/// Earliest and latest accepted times: keeps every timestamp printable as RFC 3339.
const MICROS_MIN: i64 = -62_135_596_800 * MICROS_PER_SECOND; // 0001-01-01T00:00:00Z
const MICROS_MAX: i64 = 253_402_300_799 * MICROS_PER_SECOND; // 9999-12-31T23:59:59Z

/// Why a text is not a [`Timestamp`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseTimeError {
    #[error("`{text}` is not an RFC 3339 time: {source}")]
    NotRfc3339 {
        text: String,
        #[source]
        source: chrono::ParseError,
    },
    #[error("`{text}` is outside the supported range")]
    OutOfRange { text: String },
}

impl Timestamp {
    pub const fn from_micros(micros: i64) -> Timestamp {
        Timestamp(micros)
    }

    pub const fn as_micros(self) -> i64 {
        self.0
    }

    pub fn parse_rfc3339(text: &str) -> Result<Timestamp, ParseTimeError> {
        let parsed =
            DateTime::parse_from_rfc3339(text).map_err(|source| ParseTimeError::NotRfc3339 {
                text: text.to_owned(),
                source,
            })?;
        Timestamp::from_datetime(parsed.with_timezone(&Utc)).ok_or_else(|| {
            ParseTimeError::OutOfRange {
                text: text.to_owned(),
            }
        })
    }

    pub fn from_datetime(time: DateTime<Utc>) -> Option<Timestamp> {
        let micros = time.timestamp_micros();
        (MICROS_MIN..=MICROS_MAX)
            .contains(&micros)
            .then_some(Timestamp(micros))
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        let clamped = self.0.clamp(MICROS_MIN, MICROS_MAX);
        Utc.timestamp_micros(clamped)
            .single()
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    }

    /// The calendar month (UTC) this time falls in.
    pub fn month(self) -> Month {
        let time = self.to_datetime();
        Month {
            year: time.year(),
            month: time.month() as u8,
        }
    }

    pub fn saturating_add_micros(self, micros: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(micros))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            &self
                .to_datetime()
                .to_rfc3339_opts(SecondsFormat::AutoSi, true),
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            serializer.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        if deserializer.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            Timestamp::parse_rfc3339(&text).map_err(serde::de::Error::custom)
        } else {
            let micros = i64::deserialize(deserializer)?;
            if (MICROS_MIN..=MICROS_MAX).contains(&micros) {
                Ok(Timestamp(micros))
            } else {
                Err(serde::de::Error::custom("timestamp out of range"))
            }
        }
    }
}

/// Matches the human-readable `Deserialize` above (JSON); bincode carries the `i64`.
#[cfg(feature = "schema")]
impl schemars::JsonSchema for Timestamp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        "crm_domain::time::Timestamp".into()
    }

    fn json_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "date-time",
            "description": "An RFC 3339 time with an offset, from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z; kept to the microsecond and written back in UTC.",
        })
    }
}

/// A calendar month in UTC, the period of the KPI counters. Orders by time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i32,
    pub month: u8,
}

impl Month {
    /// Parses `YYYY-MM`.
    pub fn parse(text: &str) -> Option<Month> {
        let (year, month) = text.split_once('-')?;
        if year.len() != 4 || month.len() != 2 {
            return None;
        }
        let year: i32 = year.parse().ok()?;
        let month: u8 = month.parse().ok()?;
        (1..=12).contains(&month).then_some(Month { year, month })
    }

    pub fn previous(self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl Serialize for Month {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Month {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Month, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Month::parse(&text).ok_or_else(|| serde::de::Error::custom("expected a month as YYYY-MM"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_times_get_typed_errors_with_the_old_messages() {
        let bad = Timestamp::parse_rfc3339("yesterday").unwrap_err();
        assert!(matches!(bad, ParseTimeError::NotRfc3339 { ref text, .. } if text == "yesterday"));
        assert!(bad
            .to_string()
            .starts_with("`yesterday` is not an RFC 3339 time: "));
        let far = Timestamp::parse_rfc3339("+10000-01-01T00:00:00Z");
        assert!(far.is_err());
        let past = Timestamp::parse_rfc3339("0000-12-31T23:59:59Z").unwrap_err();
        assert_eq!(
            past,
            ParseTimeError::OutOfRange {
                text: "0000-12-31T23:59:59Z".to_owned()
            }
        );
        assert_eq!(
            past.to_string(),
            "`0000-12-31T23:59:59Z` is outside the supported range"
        );
    }

    #[test]
    fn rfc3339_round_trips_through_json() {
        let time = Timestamp::parse_rfc3339("2026-11-03T10:15:30.250+01:00").unwrap();
        let json = serde_json::to_string(&time).unwrap();
        assert_eq!(json, "\"2026-11-03T09:15:30.250Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), time);
        assert_eq!(time.month().to_string(), "2026-11");
    }

    #[test]
    fn month_parsing_is_strict() {
        assert_eq!(Month::parse("2026-11").unwrap().to_string(), "2026-11");
        assert!(Month::parse("2026-13").is_none());
        assert!(Month::parse("2026-1").is_none());
        assert_eq!(
            Month::parse("2026-01").unwrap().previous().to_string(),
            "2025-12"
        );
    }
}
