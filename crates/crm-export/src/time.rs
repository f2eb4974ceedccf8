//! RFC 3339 by hand: the export formats two times per event, and chrono's general formatter
//! was a measurable share of the line. The text is exactly `crm_domain::Timestamp`'s
//! `Display` (UTC, `Z`, no fraction, or 3 or 6 digits, as chrono's `SecondsFormat::AutoSi`
//! gives for microseconds), checked against it in the tests.

use serde::{Serialize, Serializer};

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;
/// The range `Timestamp` clamps to when it prints: 0001-01-01T00:00:00Z ..= 9999-12-31T23:59:59Z.
const MICROS_MIN: i64 = -62_135_596_800 * MICROS_PER_SECOND;
const MICROS_MAX: i64 = 253_402_300_799 * MICROS_PER_SECOND;

/// A time as RFC 3339 text, on the stack. `YYYY-MM-DDTHH:MM:SS.ffffffZ` is 27 bytes.
#[derive(Clone, Copy)]
pub struct Rfc3339 {
    bytes: [u8; 27],
    len: u8,
}

impl Rfc3339 {
    /// `micros` since the Unix epoch, clamped to the printable range as `Timestamp` does.
    pub fn from_micros(micros: i64) -> Rfc3339 {
        let micros = micros.clamp(MICROS_MIN, MICROS_MAX);
        let seconds = micros.div_euclid(MICROS_PER_SECOND);
        let fraction = micros.rem_euclid(MICROS_PER_SECOND) as u32;
        let days = seconds.div_euclid(SECONDS_PER_DAY);
        let of_day = seconds.rem_euclid(SECONDS_PER_DAY) as u32;
        let (year, month, day) = civil_from_days(days);
        let mut bytes = [0u8; 27];
        // The clamp keeps the year within 1..=9999: four digits.
        let year = year.clamp(0, 9999) as u32;
        digits(&mut bytes[0..4], year);
        bytes[4] = b'-';
        digits(&mut bytes[5..7], month);
        bytes[7] = b'-';
        digits(&mut bytes[8..10], day);
        bytes[10] = b'T';
        digits(&mut bytes[11..13], of_day / 3600);
        bytes[13] = b':';
        digits(&mut bytes[14..16], of_day / 60 % 60);
        bytes[16] = b':';
        digits(&mut bytes[17..19], of_day % 60);
        let mut len = 19;
        if fraction != 0 {
            bytes[19] = b'.';
            if fraction.is_multiple_of(1000) {
                digits(&mut bytes[20..23], fraction / 1000);
                len = 23;
            } else {
                digits(&mut bytes[20..26], fraction);
                len = 26;
            }
        }
        bytes[len] = b'Z';
        Rfc3339 {
            bytes,
            len: len as u8 + 1,
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// `value` in decimal, zero-padded to fill `out`.
fn digits(out: &mut [u8], mut value: u32) {
    for byte in out.iter_mut().rev() {
        *byte = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// (year, month, day) of the proleptic Gregorian calendar for days since 1970-01-01
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_domain::Timestamp;

    fn check(micros: i64) {
        assert_eq!(
            Rfc3339::from_micros(micros).as_str(),
            Timestamp::from_micros(micros).to_string(),
            "{micros}"
        );
    }

    #[test]
    fn matches_timestamp_display_at_the_edges() {
        for micros in [
            0,
            1,
            -1,
            999,
            1000,
            -1000,
            1_000_000,
            -1_000_000,
            1_767_225_600_000_000,
            1_764_649_367_218_282,
            951_782_400_000_000,   // 2000-02-29
            4_107_542_400_000_000, // 2100-03-01
            MICROS_MIN,
            MICROS_MIN + 1,
            MICROS_MAX,
            MICROS_MAX - 1,
            MICROS_MAX + 999_999,
            i64::MIN,
            i64::MAX,
        ] {
            check(micros);
        }
    }

    #[test]
    fn matches_timestamp_display_across_the_range() {
        // A deterministic spread over the whole range, with every fraction shape.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..200_000u64 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let span = (MICROS_MAX - MICROS_MIN) as u64;
            let mut micros = MICROS_MIN + (state % span) as i64;
            match i % 4 {
                0 => micros -= micros.rem_euclid(MICROS_PER_SECOND),
                1 => micros -= micros.rem_euclid(1000),
                _ => {}
            }
            check(micros);
        }
    }

    #[test]
    fn serializes_as_a_json_string() {
        let time = Rfc3339::from_micros(1_767_225_600_250_000);
        assert_eq!(
            serde_json::to_string(&time).unwrap(),
            "\"2026-01-01T00:00:00.250Z\""
        );
    }
}
