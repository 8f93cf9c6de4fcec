//! Amounts on the wire: the one decimal parser, its serde adapters, and the configured bound
//! on any single amount.
//!
//! Owns one rule: a decimal given to the platform as text is read exactly or refused, never
//! rounded, never through a float. Every parser of decimal text in the workspace calls
//! [`parse_decimal`]; every `Decimal` field of a request body deserializes through
//! [`de_strict`] (or its `Option`/`Vec` forms), so a JSON number (which serde_json reads as an
//! `f64`: `9007199254740993` would arrive as `…992`) is refused with the field's path.
//!
//! And a bound: [`AmountLimits`] says the largest single amount (a deposit, a withdrawal, a
//! contribution, a plan's amount, a fill) the platform takes, per asset, in minor units. The
//! books count in `i64`; without a bound one request could fill an account's counter and make
//! every later sum overflow. [`check_money`] is the one function that applies it.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::asset::{Amount, Asset};

/// Most significant digits a decimal may have: `Decimal` holds every 28-digit number exactly
/// (its 96-bit mantissa reaches 7.9 × 10^28), so 29 digits could only be rounded.
pub const MAX_SIGNIFICANT_DIGITS: usize = 28;

/// Longest decimal text read. Room for 28 digits, a sign, a point, leading zeros of a small
/// fraction and some trailing zeros; anything longer is refused before it is looked at.
pub const MAX_TEXT_LEN: usize = 64;

/// What [`parse_decimal`] says about text it refuses.
const EXPECTED: &str = "a decimal string such as \"1000\" or \"12.34\"";

/// Reads plain decimal text exactly: an optional leading `-`, digits, and at most one `.` with
/// digits on both sides. No `+`, exponent, `_`, spaces or other characters; at most
/// [`MAX_TEXT_LEN`] characters and [`MAX_SIGNIFICANT_DIGITS`] significant digits (leading
/// zeros, and trailing zeros after the point, are not significant). Trailing zeros are kept
/// in the result's scale (`"1.50"` has scale 2), as `Decimal::from_str` keeps them.
pub fn parse_decimal(text: &str) -> Result<Decimal, String> {
    let refuse = |why: &str| format!("{text:?} is not {EXPECTED}: {why}");
    if text.is_empty() {
        return Err(refuse("it is empty"));
    }
    if text.len() > MAX_TEXT_LEN {
        return Err(format!(
            "a decimal string may have at most {MAX_TEXT_LEN} characters, got {}",
            text.len()
        ));
    }
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || fraction.is_some_and(|f| !digits(f)) {
        return Err(refuse(
            "only digits, one optional leading '-' and at most one '.' with digits on both sides",
        ));
    }
    // Leading zeros of the whole part and trailing zeros of the fraction carry no digits;
    // in a value below one, neither do the fraction's leading zeros.
    let fraction = fraction.unwrap_or("").trim_end_matches('0');
    let significant = match whole.trim_start_matches('0') {
        "" => fraction.trim_start_matches('0').len(),
        w => w.len() + fraction.len(),
    };
    if significant > MAX_SIGNIFICANT_DIGITS || fraction.len() > MAX_SIGNIFICANT_DIGITS {
        return Err(format!(
            "{text:?} has more than {MAX_SIGNIFICANT_DIGITS} significant digits; it cannot be held exactly"
        ));
    }
    // Within 28 significant digits and 28 decimals, `Decimal` parses exactly.
    let value = Decimal::from_str(text).map_err(|e| refuse(&e.to_string()))?;
    debug_assert_eq!(
        value.normalize().to_string().trim_start_matches('-'),
        plain_normalized(whole, fraction),
        "parse_decimal rounded {text:?}"
    );
    Ok(value)
}

/// `whole.fraction` without leading zeros of `whole` or trailing zeros of `fraction` (which
/// the caller has trimmed), as `Decimal::normalize` prints it; for the debug assertion.
fn plain_normalized(whole: &str, fraction: &str) -> String {
    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    if fraction.is_empty() {
        whole.to_owned()
    } else {
        format!("{whole}.{fraction}")
    }
}

/// A `Decimal` that deserializes only from a JSON string read by [`parse_decimal`].
struct Strict(Decimal);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl StrictVisitor {
    fn number<E: de::Error>(shown: impl fmt::Display) -> E {
        E::custom(format!(
            "amounts are decimal strings such as \"1000\", not JSON numbers (which pass through \
             binary floating point); got the number {shown}"
        ))
    }
}

impl Visitor<'_> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Strict, E> {
        parse_decimal(v).map(Strict).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Strict, E> {
        Err(Self::number(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Strict, E> {
        Err(Self::number(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Strict, E> {
        Err(Self::number(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Strict, E> {
        Err(Self::number(v))
    }

    // Shown as serde_json read it: already a float, which is the point of refusing it.
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Strict, E> {
        Err(Self::number(v))
    }
}

/// `#[serde(deserialize_with = "ledger::amount::de_strict")]` on a `Decimal` field: a JSON
/// string read by [`parse_decimal`]; a number or anything else is refused.
pub fn de_strict<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    Strict::deserialize(deserializer).map(|s| s.0)
}

/// [`de_strict`] for an `Option<Decimal>` field (`null` is `None`); pair it with
/// `#[serde(default)]` so an absent field is `None` too.
pub fn de_strict_opt<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Decimal>, D::Error> {
    Option::<Strict>::deserialize(deserializer).map(|o| o.map(|s| s.0))
}

/// [`de_strict`] for a `Vec<Decimal>` field.
pub fn de_strict_vec<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Decimal>, D::Error> {
    Vec::<Strict>::deserialize(deserializer).map(|v| v.into_iter().map(|s| s.0).collect())
}

/// [`de_strict`] for an `Option<Vec<Decimal>>` field; pair it with `#[serde(default)]`.
pub fn de_strict_vec_opt<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<Decimal>>, D::Error> {
    Option::<Vec<Strict>>::deserialize(deserializer)
        .map(|o| o.map(|v| v.into_iter().map(|s| s.0).collect()))
}

/// The largest single amount by default, in minor units: 10^15 (a thousand trillion yen,
/// ten trillion dollars). A counter of `i64` takes more than 9,000 such amounts before it
/// could overflow, and the ledger refuses that one by name.
pub const DEFAULT_MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000_000;

/// The largest single amount the platform accepts, per asset, in the asset's minor units
/// (settings `[limits]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmountLimits {
    /// For every asset without an override.
    pub max_amount_minor: i64,
    /// Overrides by asset (e.g. a fund with 8 decimal places). A list rather than a map
    /// keyed by code: the config crate lowercases keys, and asset codes are case-sensitive.
    #[serde(default)]
    pub assets: Vec<AssetLimit>,
}

/// One asset's own bound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetLimit {
    /// The asset code.
    pub asset: String,
    /// Its largest single amount, in its minor units.
    pub max_amount_minor: i64,
}

impl Default for AmountLimits {
    fn default() -> Self {
        Self {
            max_amount_minor: DEFAULT_MAX_AMOUNT_MINOR,
            assets: Vec::new(),
        }
    }
}

impl AmountLimits {
    /// Checks that every bound is positive and each asset has at most one; the error names
    /// the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_amount_minor <= 0 {
            return Err("limits.max_amount_minor must be greater than zero".to_owned());
        }
        for (i, limit) in self.assets.iter().enumerate() {
            if limit.max_amount_minor <= 0 {
                return Err(format!(
                    "limits.assets[{i}].max_amount_minor ({}) must be greater than zero",
                    limit.asset
                ));
            }
            if self.assets[..i].iter().any(|l| l.asset == limit.asset) {
                return Err(format!(
                    "limits.assets[{i}]: {} has a bound already",
                    limit.asset
                ));
            }
        }
        Ok(())
    }

    /// The largest single amount of `asset`, in its minor units.
    pub fn max_minor(&self, asset: &str) -> i64 {
        self.assets
            .iter()
            .find(|l| l.asset == asset)
            .map_or(self.max_amount_minor, |l| l.max_amount_minor)
    }

    /// What an amount of `asset` is checked against.
    pub fn bound(&self, asset: &Asset) -> AmountBound {
        self.bound_of(&asset.code, asset.scale)
    }

    /// What an amount of the asset `code`, of `scale`, is checked against.
    pub fn bound_of(&self, code: &str, scale: u32) -> AmountBound {
        AmountBound {
            asset: code.to_owned(),
            scale,
            max_minor: self.max_minor(code),
        }
    }
}

/// One asset's rule for a single amount: its code, its scale and the largest amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmountBound {
    /// The asset code, for messages.
    pub asset: String,
    /// Decimal places of the asset.
    pub scale: u32,
    /// The largest amount, in minor units.
    pub max_minor: i64,
}

impl AmountBound {
    /// The default bound for a currency `code` of `scale` (tests, and code with no settings).
    pub fn default_for(code: &str, scale: u32) -> Self {
        AmountLimits::default().bound(&Asset::currency(code, scale))
    }
}

/// Why an amount was refused, for the caller to name its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmountRefused(pub String);

/// THE check of a single amount given to the platform (deposit, withdrawal, contribution,
/// plan amount, goal): greater than zero, no more decimals than the asset's scale (never
/// rounded), at most the configured bound. Returns the amount in minor units.
pub fn check_money(amount: Decimal, bound: &AmountBound) -> Result<i64, AmountRefused> {
    if amount <= Decimal::ZERO {
        return Err(AmountRefused("must be greater than zero".to_owned()));
    }
    check_quantity(amount, bound)
}

/// [`check_money`] where zero is a valid figure (a fill reporting no units): not negative,
/// exact to the asset's scale, at most the configured bound. Returns minor units.
pub fn check_quantity(amount: Decimal, bound: &AmountBound) -> Result<i64, AmountRefused> {
    if amount < Decimal::ZERO {
        return Err(AmountRefused("must not be negative".to_owned()));
    }
    let scale = bound.scale;
    if amount.normalize().scale() > scale {
        return Err(AmountRefused(format!(
            "has more than {scale} decimal places"
        )));
    }
    let minor = Amount::try_new(amount, scale)
        .ok()
        .map(Amount::minor)
        .filter(|m| *m <= bound.max_minor)
        .ok_or_else(|| {
            AmountRefused(format!(
                "is above the largest single amount the platform accepts, {} {} (settings [limits])",
                Amount::from_minor(bound.max_minor, scale),
                bound.asset
            ))
        })?;
    debug_assert!((0..=bound.max_minor).contains(&minor));
    Ok(minor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(text: &str) -> Decimal {
        parse_decimal(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn reads_plain_decimals_exactly() {
        assert_eq!(ok("1000"), Decimal::new(1000, 0));
        assert_eq!(ok("12.34"), Decimal::new(1234, 2));
        assert_eq!(ok("-0.5"), Decimal::new(-5, 1));
        assert_eq!(ok("1.50").scale(), 2);
        assert_eq!(ok("007"), Decimal::new(7, 0));
        // Beyond f64's 53 bits: exact.
        assert_eq!(ok("9007199254740993").to_string(), "9007199254740993");
        // 28 significant digits, the most Decimal always holds.
        assert_eq!(
            ok("1.000000000000000000000000001").to_string(),
            "1.000000000000000000000000001"
        );
        assert_eq!(
            ok("9999999999999999999999999999").to_string(),
            "9999999999999999999999999999"
        );
        assert_eq!(
            ok("0.0000000000000000000000000001").to_string(),
            "0.0000000000000000000000000001"
        );
        // Trailing zeros are not significant digits.
        assert_eq!(ok("1.000000000000000000000000000000"), Decimal::ONE);
    }

    #[test]
    fn refuses_anything_but_plain_decimal_text() {
        for text in [
            "",
            "-",
            "1e3",
            "1E3",
            "1_000",
            "+100",
            " 100",
            "100 ",
            "1,000",
            ".5",
            "5.",
            "1.2.3",
            "--1",
            "- 1",
            "0x10",
            "NaN",
            "inf",
            "１００",
            "1\u{0}",
            "¥100",
        ] {
            assert!(parse_decimal(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn refuses_more_digits_than_held_exactly() {
        // 29 significant digits: Decimal would round (or, here, keep it by luck of range);
        // either way the platform never guesses.
        for text in [
            "1.0000000000000000000000000001",
            "79228162514264337593543950335",
            "0.00000000000000000000000000001",
            "12345678901234567890123456789",
        ] {
            let err = parse_decimal(text).err().unwrap_or_default();
            assert!(err.contains("significant digits"), "{text}: {err}");
        }
        let long = format!("1.{}", "0".repeat(MAX_TEXT_LEN));
        assert!(parse_decimal(&long).is_err());
    }

    #[test]
    fn json_numbers_are_refused_with_the_reason() {
        #[derive(Debug, Deserialize)]
        struct Body {
            #[serde(deserialize_with = "de_strict")]
            amount: Decimal,
            #[serde(default, deserialize_with = "de_strict_opt")]
            maybe: Option<Decimal>,
            #[serde(default, deserialize_with = "de_strict_vec_opt")]
            many: Option<Vec<Decimal>>,
        }
        let read = |json: &str| serde_json::from_str::<Body>(json).map_err(|e| e.to_string());
        let body = read(r#"{"amount": "9007199254740993", "many": ["0.1", "2"]}"#);
        let body = body.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(body.amount.to_string(), "9007199254740993");
        assert_eq!(body.maybe, None);
        assert_eq!(body.many, Some(vec![Decimal::new(1, 1), Decimal::TWO]));
        assert_eq!(
            read(r#"{"amount": "1", "maybe": null}"#).map(|b| b.maybe),
            Ok(None)
        );
        for json in [
            r#"{"amount": 1000}"#,
            r#"{"amount": 9007199254740993.0}"#,
            r#"{"amount": -1}"#,
            r#"{"amount": "1", "maybe": 5}"#,
            r#"{"amount": "1", "many": ["1", 2]}"#,
        ] {
            let err = read(json).err().unwrap_or_default();
            assert!(err.contains("amounts are decimal strings"), "{json}: {err}");
        }
        let err = read(r#"{"amount": "1e3"}"#).err().unwrap_or_default();
        assert!(err.contains("is not a decimal string"), "{err}");
        let err = read(r#"{"amount": true}"#).err().unwrap_or_default();
        assert!(err.contains("expected a decimal string"), "{err}");
    }

    #[test]
    fn money_is_positive_exact_and_bounded() {
        let jpy = AmountBound::default_for("JPY", 0);
        assert_eq!(check_money(Decimal::new(1000, 0), &jpy), Ok(1000));
        assert_eq!(check_money(Decimal::new(100000, 2), &jpy), Ok(1000));
        assert!(check_money(Decimal::ZERO, &jpy).is_err());
        assert!(check_money(Decimal::new(-5, 0), &jpy).is_err());
        assert!(check_money(Decimal::new(105, 1), &jpy).is_err());
        assert_eq!(
            check_money(Decimal::from(DEFAULT_MAX_AMOUNT_MINOR), &jpy),
            Ok(DEFAULT_MAX_AMOUNT_MINOR)
        );
        let above = check_money(Decimal::from(DEFAULT_MAX_AMOUNT_MINOR + 1), &jpy);
        let above = above.err().map(|e| e.0).unwrap_or_default();
        assert!(above.contains("1000000000000000 JPY"), "{above}");
        assert!(check_money(Decimal::from(i64::MAX), &jpy).is_err());
        assert!(check_money(Decimal::MAX, &jpy).is_err());
        assert_eq!(check_quantity(Decimal::ZERO, &jpy), Ok(0));
        assert!(check_quantity(Decimal::new(-1, 0), &jpy).is_err());
        assert!(check_quantity(Decimal::from(i64::MAX), &jpy).is_err());
        // The bound is in minor units: USD's default is 10^13 dollars.
        let usd = AmountBound::default_for("USD", 2);
        let err = check_money(Decimal::new(10_000_000_000_001, 0), &usd);
        let err = err.err().map(|e| e.0).unwrap_or_default();
        assert!(err.contains("10000000000000.00 USD"), "{err}");
    }

    #[test]
    fn per_asset_bounds_replace_the_default() {
        let mut limits = AmountLimits::default();
        let own = |asset: &str, max: i64| AssetLimit {
            asset: asset.into(),
            max_amount_minor: max,
        };
        limits.assets.push(own("JPY", 5_000));
        assert!(limits.validate().is_ok());
        let jpy = limits.bound(&Asset::currency("JPY", 0));
        assert_eq!(check_money(Decimal::new(5_000, 0), &jpy), Ok(5_000));
        assert!(check_money(Decimal::new(5_001, 0), &jpy).is_err());
        let usd = limits.bound(&Asset::currency("USD", 2));
        assert_eq!(usd.max_minor, DEFAULT_MAX_AMOUNT_MINOR);
        limits.assets.push(own("USD", 0));
        assert!(limits.validate().is_err());
        limits.assets[1] = own("JPY", 1);
        assert!(limits.validate().is_err());
    }

    /// Any decimal of at most 28 significant digits, at any scale Decimal has.
    fn decimals() -> impl Strategy<Value = Decimal> {
        (any::<bool>(), 0_i128..10_i128.pow(28), 0_u32..=28).prop_map(
            |(negative, mantissa, scale)| {
                let m = if negative { -mantissa } else { mantissa };
                Decimal::from_i128_with_scale(m, scale)
            },
        )
    }

    proptest! {
        #[test]
        fn any_decimal_printed_plainly_reads_back_exactly(d in decimals()) {
            let text = d.to_string();
            let back = parse_decimal(&text);
            prop_assert_eq!(&back, &Ok(d), "{}", text);
            if let Ok(b) = back {
                prop_assert_eq!(b.scale(), d.scale());
            }
        }

        #[test]
        fn arbitrary_text_is_either_refused_or_read_exactly(text in "[-+0-9._e ]{0,40}") {
            if let Ok(d) = parse_decimal(&text) {
                // Accepted text is plain, and its value prints back to the same number.
                prop_assert!(!text.contains(['+', '_', 'e', ' ']));
                let again = parse_decimal(&d.to_string());
                prop_assert_eq!(again, Ok(d));
            }
        }
    }
}
