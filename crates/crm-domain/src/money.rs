//! Money as integer minor units plus an ISO 4217 currency code. Never a float.
//!
//! Two promises hold every figure exact (docs/DOMAIN.md, "Money"):
//! * every amount a command carries is at most [`AMOUNT_MINOR_MAX`] minor units (`validate`
//!   refuses more with `validation_failed`), so one amount is always exact in an IEEE double
//!   (a JavaScript number);
//! * every sum the read models keep is an `i128` ([`MinorSum`]), which no event log can
//!   overflow (see [`MinorSum`] for the headroom), and goes out on JSON as a number only while
//!   the number is exact in every parser, and always as decimal digits ([`ExactMinor`]).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An ISO 4217 alphabetic code: three ASCII upper-case letters. Whether the code is a
/// *known* currency is a validation rule (`validation_failed`), checked by [`Currency::is_known`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn new(code: &str) -> Option<Currency> {
        let bytes: [u8; 3] = code.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(u8::is_ascii_uppercase)
            .then_some(Currency(bytes))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII upper-case letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    pub fn is_known(&self) -> bool {
        ISO_4217_CODES.binary_search(&self.as_str()).is_ok()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Currency, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Currency::new(&text).ok_or_else(|| {
            serde::de::Error::custom("a currency is three upper-case letters (ISO 4217)")
        })
    }
}

/// Matches the `Deserialize` above: any three upper-case letters decode; whether the code is
/// a known currency is a rule of `decide`.
#[cfg(feature = "schema")]
impl schemars::JsonSchema for Currency {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Currency".into()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        "crm_domain::money::Currency".into()
    }

    fn json_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[A-Z]{3}$",
            "description": "An ISO 4217 alphabetic code: three upper-case ASCII letters. An unknown code decodes but is refused with validation_failed.",
        })
    }
}

/// The largest amount, in minor units, of any money field of any command: 10^15, that is
/// 10 trillion in a currency of two decimals (EUR, USD), 1 trillion in one of three (KWD,
/// BHD), a quadrillion yen. Far above any real order, budget or deal, and below 2^53
/// (9,007,199,254,740,992), so a single amount is exact as a JSON number in every parser,
/// JavaScript's `JSON.parse` included. More is refused with `validation_failed`.
pub const AMOUNT_MINOR_MAX: i64 = 1_000_000_000_000_000;

/// An amount of money in the currency's minor unit (cents for EUR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Money {
    /// Integer minor units (cents for EUR). Commands bound it to 0..=10^15 (1..=10^15 where
    /// the amount must be positive); outside that range a command is refused with
    /// `validation_failed`.
    pub amount_minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount_minor: i64, currency: Currency) -> Money {
        Money {
            amount_minor,
            currency,
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount_minor, self.currency)
    }
}

/// A sum of money amounts in minor units, as the read models keep it: exact, never saturating.
///
/// Headroom: every sum is a signed sum of event amounts, each an `i64` (|a| <= 2^63), with at
/// most two terms per event (an order's amount and its cost; a refund), plus one record's
/// terms taken out and put back while a record changes. A log holds fewer than 2^62 events
/// (at tens of bytes per event, 2^62 events would be over 100 exbibytes), so
/// |sum| < (2 x 2^62 + 4) x 2^63 < 2^127 - 1 = `i128::MAX`: `+` and `-` on a `MinorSum`
/// cannot overflow. Within the validated bound (amounts <= 10^15 < 2^50) the margin is far
/// wider: 2^64 events at the maximum amount sum to about 1.8 x 10^34, against `i128::MAX`
/// of about 1.7 x 10^38.
pub type MinorSum = i128;

/// The largest magnitude a JSON number may have and still be an exact integer in every
/// parser: 2^53 - 1 (JavaScript's `Number.MAX_SAFE_INTEGER`; RFC 7493, I-JSON).
pub const JSON_SAFE_INTEGER_MAX: i128 = (1 << 53) - 1;

/// `sum` as a JSON-safe integer: `Some` while |sum| <= [`JSON_SAFE_INTEGER_MAX`], else `None`
/// (the read models then write `null` in the number field; the `_exact` field, an
/// [`ExactMinor`], always has the digits).
pub fn json_safe(sum: MinorSum) -> Option<i64> {
    if (-JSON_SAFE_INTEGER_MAX..=JSON_SAFE_INTEGER_MAX).contains(&sum) {
        i64::try_from(sum).ok()
    } else {
        None
    }
}

/// A sum in minor units on the wire as a JSON string of decimal digits (an optional `-` and
/// digits, no leading zeros, no exponent): `"9223372036854775808"`. Exact for any `i128`,
/// whatever the parser: JavaScript `BigInt(s)`, Python `int(s)`, Go `big.Int.SetString(s, 10)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ExactMinor(pub MinorSum);

impl fmt::Display for ExactMinor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for ExactMinor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ExactMinor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ExactMinor, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let digits = text.strip_prefix('-').unwrap_or(&text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(serde::de::Error::custom(
                "an exact amount is a string of decimal digits with an optional leading `-`",
            ));
        }
        text.parse()
            .map(ExactMinor)
            .map_err(|_| serde::de::Error::custom("an exact amount beyond the i128 range"))
    }
}

/// `numerator / denominator` rounded to the nearest integer, halves away from zero, exactly;
/// `None` unless the denominator is positive.
pub fn div_round(numerator: MinorSum, denominator: i128) -> Option<MinorSum> {
    if denominator <= 0 {
        return None;
    }
    let quotient = numerator / denominator;
    // |remainder| < denominator, so neither the absolute value nor the doubling overflows
    // when compared as `remainder >= denominator - remainder`.
    let remainder = (numerator % denominator).unsigned_abs();
    let denominator = denominator.unsigned_abs();
    if remainder >= denominator - remainder {
        quotient.checked_add(numerator.signum())
    } else {
        Some(quotient)
    }
}

/// The product of `numerators` divided by the product of `denominators`, rounded to the
/// nearest integer with halves rounded up, computed exactly in wide unsigned arithmetic
/// (no intermediate overflows: the products may have hundreds of bits). `None` when a
/// denominator is zero or the result exceeds `u128`.
pub fn product_ratio_round(numerators: &[u128], denominators: &[u128]) -> Option<u128> {
    let numerator = wide::Wide::product(numerators);
    let denominator = wide::Wide::product(denominators);
    if denominator.is_zero() {
        return None;
    }
    let (quotient, remainder) = numerator.div_rem(&denominator);
    // Round half up: 2 x remainder >= denominator.
    let round_up = remainder.shl1() >= denominator;
    let quotient = quotient.to_u128()?;
    if round_up {
        quotient.checked_add(1)
    } else {
        Some(quotient)
    }
}

/// Just enough unsigned big-integer arithmetic for [`product_ratio_round`]: products of
/// `u128`s, comparison, subtraction and long division by shifting, on little-endian `u64`
/// limbs. Slow per bit, but rates are computed only when a view is read.
mod wide {
    use std::cmp::Ordering;

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Wide(Vec<u64>);

    impl Wide {
        fn zero() -> Wide {
            Wide(Vec::new())
        }

        fn trimmed(mut self) -> Wide {
            while self.0.last() == Some(&0) {
                self.0.pop();
            }
            self
        }

        pub fn is_zero(&self) -> bool {
            self.0.iter().all(|limb| *limb == 0)
        }

        pub fn product(factors: &[u128]) -> Wide {
            let mut product = Wide(vec![1]);
            for factor in factors {
                product = product
                    .mul_u64(*factor as u64)
                    .add(&product.mul_u64((*factor >> 64) as u64).shifted_limbs(1));
            }
            product.trimmed()
        }

        fn mul_u64(&self, factor: u64) -> Wide {
            let mut limbs = Vec::with_capacity(self.0.len() + 1);
            let mut carry = 0u128;
            for limb in &self.0 {
                let value = u128::from(*limb) * u128::from(factor) + carry;
                limbs.push(value as u64);
                carry = value >> 64;
            }
            limbs.push(carry as u64);
            Wide(limbs).trimmed()
        }

        fn shifted_limbs(mut self, limbs: usize) -> Wide {
            if !self.is_zero() {
                self.0.splice(0..0, std::iter::repeat_n(0, limbs));
            }
            self
        }

        fn add(&self, other: &Wide) -> Wide {
            let len = self.0.len().max(other.0.len());
            let mut limbs = Vec::with_capacity(len + 1);
            let mut carry = 0u128;
            for i in 0..len {
                let value = u128::from(self.0.get(i).copied().unwrap_or(0))
                    + u128::from(other.0.get(i).copied().unwrap_or(0))
                    + carry;
                limbs.push(value as u64);
                carry = value >> 64;
            }
            limbs.push(carry as u64);
            Wide(limbs).trimmed()
        }

        /// `self - other`, for `self >= other`.
        fn sub(&self, other: &Wide) -> Wide {
            let mut limbs = Vec::with_capacity(self.0.len());
            let mut borrow = false;
            for (i, limb) in self.0.iter().enumerate() {
                let (value, b1) = limb.overflowing_sub(other.0.get(i).copied().unwrap_or(0));
                let (value, b2) = value.overflowing_sub(u64::from(borrow));
                limbs.push(value);
                borrow = b1 || b2;
            }
            Wide(limbs).trimmed()
        }

        pub fn shl1(&self) -> Wide {
            let mut limbs = Vec::with_capacity(self.0.len() + 1);
            let mut carry = 0u64;
            for limb in &self.0 {
                limbs.push((limb << 1) | carry);
                carry = limb >> 63;
            }
            limbs.push(carry);
            Wide(limbs).trimmed()
        }

        fn bits(&self) -> usize {
            self.0
                .last()
                .map_or(0, |top| self.0.len() * 64 - top.leading_zeros() as usize)
        }

        fn bit(&self, index: usize) -> bool {
            self.0
                .get(index / 64)
                .is_some_and(|limb| limb >> (index % 64) & 1 == 1)
        }

        fn set_bit(&mut self, index: usize) {
            if self.0.len() <= index / 64 {
                self.0.resize(index / 64 + 1, 0);
            }
            self.0[index / 64] |= 1 << (index % 64);
        }

        /// Quotient and remainder, by binary long division; `other` must not be zero.
        pub fn div_rem(&self, other: &Wide) -> (Wide, Wide) {
            let mut quotient = Wide::zero();
            let mut remainder = Wide::zero();
            for index in (0..self.bits()).rev() {
                remainder = remainder.shl1();
                if self.bit(index) {
                    remainder = remainder.add(&Wide(vec![1]));
                }
                if remainder >= *other {
                    remainder = remainder.sub(other);
                    quotient.set_bit(index);
                }
            }
            (quotient.trimmed(), remainder)
        }

        pub fn to_u128(&self) -> Option<u128> {
            match self.0.as_slice() {
                [] => Some(0),
                [low] => Some(u128::from(*low)),
                [low, high] => Some(u128::from(*low) | u128::from(*high) << 64),
                _ => None,
            }
        }
    }

    impl PartialOrd for Wide {
        fn partial_cmp(&self, other: &Wide) -> Option<Ordering> {
            Some(self.cmp(other))
        }
    }

    /// By value: trimmed limbs compare by length, then from the top limb down.
    impl Ord for Wide {
        fn cmp(&self, other: &Wide) -> Ordering {
            let (a, b) = (self.clone().trimmed(), other.clone().trimmed());
            a.0.len()
                .cmp(&b.0.len())
                .then_with(|| a.0.iter().rev().cmp(b.0.iter().rev()))
        }
    }
}

/// Active ISO 4217 alphabetic codes, sorted (binary search).
const ISO_4217_CODES: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD",
    "CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUP", "CVE",
    "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL",
    "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR",
    "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD",
    "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK",
    "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO",
    "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON",
    "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD",
    "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD",
    "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES", "VND", "VUV",
    "WST", "XAF", "XAG", "XAU", "XCD", "XCG", "XOF", "XPD", "XPF", "XPT", "YER", "ZAR", "ZMW",
    "ZWG",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_table_is_sorted_and_unique() {
        assert!(ISO_4217_CODES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn known_and_unknown_currencies() {
        assert!(Currency::new("EUR").unwrap().is_known());
        assert!(!Currency::new("ABC").unwrap().is_known());
        assert!(Currency::new("eur").is_none());
        assert!(Currency::new("EURO").is_none());
    }

    #[test]
    fn the_amount_bound_is_a_json_safe_integer() {
        assert_eq!(AMOUNT_MINOR_MAX, 10i64.pow(15));
        assert!(i128::from(AMOUNT_MINOR_MAX) < JSON_SAFE_INTEGER_MAX);
        assert_eq!(JSON_SAFE_INTEGER_MAX, 9_007_199_254_740_991);
        // 2^64 events at the bound still fit an i128 a thousand times over.
        assert!(i128::from(AMOUNT_MINOR_MAX)
            .checked_mul(1 << 64)
            .and_then(|sum| sum.checked_mul(1000))
            .is_some());
    }

    #[test]
    fn json_safe_stops_at_2_pow_53() {
        assert_eq!(json_safe(0), Some(0));
        assert_eq!(
            json_safe(JSON_SAFE_INTEGER_MAX),
            Some(9_007_199_254_740_991)
        );
        assert_eq!(
            json_safe(-JSON_SAFE_INTEGER_MAX),
            Some(-9_007_199_254_740_991)
        );
        assert_eq!(json_safe(JSON_SAFE_INTEGER_MAX + 1), None);
        assert_eq!(json_safe(-JSON_SAFE_INTEGER_MAX - 1), None);
        assert_eq!(json_safe(i128::MAX), None);
    }

    #[test]
    fn exact_minor_is_a_string_of_digits_both_ways() {
        for value in [0, -1, 42, i128::from(i64::MAX) + 1, i128::MAX, i128::MIN] {
            let json = serde_json::to_string(&ExactMinor(value)).unwrap();
            assert_eq!(json, format!("\"{value}\""));
            let back: ExactMinor = serde_json::from_str(&json).unwrap();
            assert_eq!(back, ExactMinor(value));
        }
        for bad in [
            r#""""#, r#""-""#, r#""1e3""#, r#""+1""#, r#"" 1""#, "1", r#""1.0""#,
        ] {
            assert!(serde_json::from_str::<ExactMinor>(bad).is_err(), "{bad}");
        }
        let beyond = format!("\"{}0\"", i128::MAX);
        assert!(serde_json::from_str::<ExactMinor>(&beyond).is_err());
    }

    #[test]
    fn div_round_is_exact_and_rounds_half_away_from_zero() {
        assert_eq!(div_round(5, 2), Some(3));
        assert_eq!(div_round(-5, 2), Some(-3));
        assert_eq!(div_round(190_000, 3), Some(63_333));
        assert_eq!(div_round(200_000, 3), Some(66_667));
        assert_eq!(div_round(1, 0), None);
        assert_eq!(div_round(1, -2), None);
        assert_eq!(div_round(i128::MAX, 2), Some(i128::MAX / 2 + 1));
        assert_eq!(div_round(i128::MIN, 2), Some(i128::MIN / 2));
        assert_eq!(div_round(i128::MIN + 1, i128::MAX), Some(-1));
        assert_eq!(div_round(i128::MAX, i128::MAX), Some(1));
    }

    #[test]
    fn product_ratios_are_exact_beyond_128_bits() {
        assert_eq!(
            product_ratio_round(&[7, 2, 200_000], &[3, 14]),
            Some(66_667)
        );
        assert_eq!(product_ratio_round(&[1], &[2]), Some(1));
        assert_eq!(product_ratio_round(&[1], &[3]), Some(0));
        assert_eq!(product_ratio_round(&[], &[]), Some(1));
        assert_eq!(product_ratio_round(&[5], &[0]), None);
        assert_eq!(product_ratio_round(&[0, u128::MAX], &[1]), Some(0));
        // (2^128 - 1)^2 / (2^128 - 1) = 2^128 - 1: a 256-bit intermediate.
        assert_eq!(
            product_ratio_round(&[u128::MAX, u128::MAX], &[u128::MAX]),
            Some(u128::MAX)
        );
        assert_eq!(product_ratio_round(&[u128::MAX, 2], &[1]), None);
        // (2^100 x 3^40 x 10) / (2^100 x 3^40 x 4) = 2.5, rounded up.
        let big = [1u128 << 100, 3u128.pow(40)];
        assert_eq!(
            product_ratio_round(&[big[0], big[1], 10], &[big[0], big[1], 4]),
            Some(3)
        );
        // Against u128 arithmetic where it fits.
        for (a, b, c) in [
            (123_456_789u128, 987_654_321, 1_000_003),
            (u64::MAX as u128, 3, 7),
        ] {
            let exact = a * b / c + u128::from((a * b % c) * 2 >= c);
            assert_eq!(product_ratio_round(&[a, b], &[c]), Some(exact));
        }
    }

    #[test]
    fn money_json_shape_matches_the_contract() {
        let json = r#"{"amount_minor":123456,"currency":"EUR"}"#;
        let money: Money = serde_json::from_str(json).unwrap();
        assert_eq!(money.amount_minor, 123_456);
        assert_eq!(serde_json::to_string(&money).unwrap(), json);
    }
}
