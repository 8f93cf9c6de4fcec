//! Market data: instruments (the funds, ETFs and stocks wraps hold) and their prices, as plain
//! types with the rules that make a value acceptable. Persistence is in `store::market`.
//!
//! ## Invariants, and the tests that try to break them
//! | invariant | enforced in | tried by |
//! |---|---|---|
//! | an instrument's code, name, scales, quote unit, settlement days are in range; every bad field is named | [`NewInstrument::validate`] | `market::tests::every_bad_field_is_named`, `api/tests/http/instruments.rs::bad_instruments_are_refused_by_field` |
//! | a price is positive, has no more decimals than the instrument's `price_scale`, and is stored exactly as an integer | [`parse_price`] | `market::tests::prices_are_exact_and_positive`, `api/tests/http/instruments.rs::bad_rows_are_each_named` |
//! | an amount of money (minimum order) is never negative nor more precise than its currency | [`parse_money`] | `market::tests::money_is_exact`, `api/tests/http/instruments.rs::bad_instruments_are_refused_by_field` |
//! | creating an instrument creates its ledger asset in the same transaction; its scale, quote unit and currency never change | `store::market::create_instrument`, [`InstrumentPatch`] has no such fields | `api/tests/http/instruments.rs::instrument_flow`, `patch_refuses_immutable_fields` |

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::asset::{Amount, Asset};
use crate::error::LedgerError;

/// Largest `unit_scale` and `price_scale`: a BIGINT of minor units keeps at least 8 digits of
/// whole units at this scale.
pub const MAX_MARKET_SCALE: u32 = 10;
/// Largest settlement lag, in business days.
pub const MAX_SETTLEMENT_DAYS: u32 = 10;

/// What an instrument is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstrumentKind {
    /// A Japanese investment trust (投資信託): units with no decimals, priced per 10,000 units.
    InvestmentTrust,
    /// An exchange-traded fund.
    Etf,
    /// A listed share.
    Stock,
}

impl InstrumentKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvestmentTrust => "investment_trust",
            Self::Etf => "etf",
            Self::Stock => "stock",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "investment_trust" => Some(Self::InvestmentTrust),
            "etf" => Some(Self::Etf),
            "stock" => Some(Self::Stock),
            _ => None,
        }
    }

    /// Every kind's name, for filters and messages.
    pub const NAMES: [&'static str; 3] = ["investment_trust", "etf", "stock"];
}

/// Whether an instrument may be traded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstrumentStatus {
    /// Traded normally.
    Active,
    /// Temporarily not traded (holdings stay, valued at the last price).
    Suspended,
    /// No longer traded.
    Delisted,
}

impl InstrumentStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Delisted => "delisted",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            "delisted" => Some(Self::Delisted),
            _ => None,
        }
    }

    /// Every status's name, for filters and messages.
    pub const NAMES: [&'static str; 3] = ["active", "suspended", "delisted"];
}

/// An instrument as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Instrument {
    /// Its code, also the code of its ledger asset (ISIN or a local code).
    pub code: String,
    /// Name shown to people.
    pub name: String,
    pub kind: InstrumentKind,
    /// The currency its price is quoted in.
    pub currency: String,
    /// Decimal places of its units (Japanese investment trusts: 0).
    pub unit_scale: u32,
    /// How many units the price is for (Japanese investment trusts: 10,000).
    pub quote_unit: i64,
    /// Decimal places a price may have.
    pub price_scale: u32,
    /// Smallest trade, in the currency: end of day skips smaller trades.
    #[schema(value_type = String, example = "1000")]
    pub min_order_amount: Decimal,
    /// Trades settle this many business days after the trade date (T+n).
    pub settlement_days: u32,
    pub status: InstrumentStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Instrument {
    /// Its ledger asset.
    pub fn asset(&self) -> Asset {
        Asset::instrument(&self.code, self.unit_scale, &self.currency, self.quote_unit)
    }

    /// `price` (minor units at `price_scale`) as a decimal.
    pub fn price_decimal(&self, price: i64) -> Decimal {
        Decimal::from_i128_with_scale(i128::from(price), self.price_scale)
    }
}

/// One field refused, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The field's name (JSON name, or a row and column for uploads).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// The field and the reason.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What market-data operations can refuse.
#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    /// Fields break rules (every one named).
    #[error("invalid: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// No such instrument or statement.
    #[error("{0} not found")]
    NotFound(String),
    /// The state forbids it (code taken, end of day finished).
    #[error("conflict: {detail}")]
    Conflict {
        /// What conflicts.
        detail: String,
        /// The fields or values at fault (the dates whose end of day has finished).
        errors: Vec<FieldError>,
    },
    /// The ledger or the database failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl From<sea_orm::DbErr> for MarketError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Ledger(LedgerError::Storage(e))
    }
}

impl MarketError {
    /// One invalid field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }
}

/// What it takes to register an instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInstrument {
    pub code: String,
    pub name: String,
    pub kind: InstrumentKind,
    pub currency: String,
    pub unit_scale: u32,
    pub quote_unit: i64,
    /// `None`: the currency's scale.
    pub price_scale: Option<u32>,
    /// In the currency, exact to its scale (checked by the store, which knows the scale).
    pub min_order_amount: Decimal,
    /// `None`: 1 (T+1).
    pub settlement_days: Option<u32>,
    pub status: InstrumentStatus,
}

/// Checks an asset code: 1-64 characters of A-Z, a-z, 0-9, '_', '-', '.' (the ledger's rule).
pub fn check_code(code: &str) -> Result<(), String> {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err("must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '-', '.'".to_owned())
    }
}

/// Checks a display name: 1 to 200 characters, not blank.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() || name.chars().count() > 200 {
        Err("must be 1 to 200 characters, not blank".to_owned())
    } else {
        Ok(())
    }
}

/// Checks a settlement lag.
pub fn check_settlement_days(days: u32) -> Result<(), String> {
    if days > MAX_SETTLEMENT_DAYS {
        Err(format!("must be 0 to {MAX_SETTLEMENT_DAYS} business days"))
    } else {
        Ok(())
    }
}

impl NewInstrument {
    /// Checks every field that needs no database, naming each bad one.
    pub fn validate(&self) -> Result<(), MarketError> {
        let mut errors = Vec::new();
        let mut check = |field: &str, r: Result<(), String>| {
            if let Err(m) = r {
                errors.push(FieldError::new(field, m));
            }
        };
        check("code", check_code(&self.code));
        check("name", check_name(&self.name));
        check(
            "currency",
            check_code(&self.currency).and_then(|()| {
                if self.currency == self.code {
                    Err("must differ from the instrument's own code".to_owned())
                } else {
                    Ok(())
                }
            }),
        );
        check("unit_scale", scale_in_range(self.unit_scale));
        if let Some(s) = self.price_scale {
            check("price_scale", scale_in_range(s));
        }
        check(
            "quote_unit",
            if self.quote_unit > 0 {
                Ok(())
            } else {
                Err("must be a positive whole number of units".to_owned())
            },
        );
        check(
            "min_order_amount",
            if self.min_order_amount.is_sign_negative() && !self.min_order_amount.is_zero() {
                Err("must not be negative".to_owned())
            } else {
                Ok(())
            },
        );
        if let Some(d) = self.settlement_days {
            check("settlement_days", check_settlement_days(d));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(MarketError::Invalid(errors))
        }
    }
}

fn scale_in_range(scale: u32) -> Result<(), String> {
    if scale > MAX_MARKET_SCALE {
        Err(format!("must be 0 to {MAX_MARKET_SCALE} decimal places"))
    } else {
        Ok(())
    }
}

/// A change to an instrument: only what may change after it is registered (its asset's scale,
/// quote unit and currency may not).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstrumentPatch {
    pub name: Option<String>,
    pub status: Option<InstrumentStatus>,
    /// In the currency, exact to its scale.
    pub min_order_amount: Option<Decimal>,
    pub settlement_days: Option<u32>,
}

/// A price text as an exact count of `10^-price_scale` units: a positive decimal with no more
/// decimals than `price_scale` (trailing zeros are not extra precision), small enough for BIGINT.
pub fn parse_price(text: &str, price_scale: u32) -> Result<i64, String> {
    let value = parse_decimal(text)?;
    if value <= Decimal::ZERO {
        return Err(format!("{text:?} must be greater than zero"));
    }
    Amount::try_new(value, price_scale)
        .map(Amount::minor)
        .map_err(|reason| {
            format!(
                "{text:?} {}",
                reason.replace("the asset", "the instrument's price_scale")
            )
        })
}

/// An amount of money as minor units of a currency of `scale`: not negative, exact.
pub fn parse_money(text: &str, scale: u32) -> Result<i64, String> {
    let value = parse_decimal(text)?;
    money_minor(value, scale)
}

/// `value` as minor units at `scale`: not negative, exact.
pub fn money_minor(value: Decimal, scale: u32) -> Result<i64, String> {
    if value.is_sign_negative() && !value.is_zero() {
        return Err(format!("{value} must not be negative"));
    }
    Amount::try_new(value, scale)
        .map(Amount::minor)
        .map_err(|reason| format!("{value} {}", reason.replace("the asset", "the currency")))
}

/// A plain decimal (`"10234"`, `"0.0125"`): [`crate::amount::parse_decimal`], the one parser.
pub fn parse_decimal(text: &str) -> Result<Decimal, String> {
    crate::amount::parse_decimal(text)
}

/// An ISO 8601 calendar date (`2026-11-20`).
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|_| text.len() == 10)
        .ok_or_else(|| format!("{text:?} is not a date, YYYY-MM-DD"))
}

/// The last price of an instrument on or before some date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceQuote {
    /// The date of the price.
    pub date: NaiveDate,
    /// The price per quote unit, in the instrument's currency.
    pub price: Decimal,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new() -> NewInstrument {
        NewInstrument {
            code: "JP90C0001".to_owned(),
            name: "Global Equity Fund".to_owned(),
            kind: InstrumentKind::InvestmentTrust,
            currency: "JPY".to_owned(),
            unit_scale: 0,
            quote_unit: 10_000,
            price_scale: None,
            min_order_amount: Decimal::from(1000),
            settlement_days: None,
            status: InstrumentStatus::Active,
        }
    }

    fn fields(r: Result<(), MarketError>) -> Vec<String> {
        match r {
            Err(MarketError::Invalid(errors)) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_bad_field_is_named() {
        assert!(new().validate().is_ok());
        let bad = NewInstrument {
            code: "bad code".to_owned(),
            name: " ".to_owned(),
            currency: String::new(),
            unit_scale: 11,
            quote_unit: 0,
            price_scale: Some(19),
            min_order_amount: Decimal::from(-1),
            settlement_days: Some(11),
            ..new()
        };
        assert_eq!(
            fields(bad.validate()),
            [
                "code",
                "name",
                "currency",
                "unit_scale",
                "price_scale",
                "quote_unit",
                "min_order_amount",
                "settlement_days"
            ]
        );
        let same = NewInstrument {
            currency: "JP90C0001".to_owned(),
            ..new()
        };
        assert_eq!(fields(same.validate()), ["currency"]);
        let negative_quote = NewInstrument {
            quote_unit: -10_000,
            ..new()
        };
        assert_eq!(fields(negative_quote.validate()), ["quote_unit"]);
    }

    #[test]
    fn prices_are_exact_and_positive() {
        assert_eq!(parse_price("10234", 0), Ok(10_234));
        assert_eq!(parse_price("10234.00", 0), Ok(10_234));
        assert_eq!(parse_price("101.25", 2), Ok(10_125));
        assert_eq!(parse_price("0.01", 2), Ok(1));
        for (text, scale, needle) in [
            ("0", 0, "greater than zero"),
            ("-5", 0, "greater than zero"),
            ("1.5", 0, "price_scale allows 0"),
            ("1.001", 2, "price_scale allows 2"),
            ("1e3", 0, "not a decimal"),
            (" 1", 0, "not a decimal"),
            ("", 0, "not a decimal"),
            ("abc", 0, "not a decimal"),
            ("99999999999999999999", 0, "too large"),
        ] {
            let err = parse_price(text, scale).err().unwrap_or_default();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn money_is_exact() {
        assert_eq!(parse_money("0", 0), Ok(0));
        assert_eq!(parse_money("12.30", 2), Ok(1230));
        assert!(parse_money("-1", 0).is_err());
        assert!(parse_money("0.5", 0).is_err());
        assert_eq!(money_minor(Decimal::new(-0, 0), 0), Ok(0));
    }

    #[test]
    fn dates_are_iso() {
        assert_eq!(
            parse_date("2026-11-20"),
            Ok(NaiveDate::from_ymd_opt(2026, 11, 20).unwrap_or_default())
        );
        for bad in ["2026-02-30", "20261120", "2026-1-2", "", "2026-11-20T00:00"] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }
}
