//! Assets (currencies and instruments) and the exact amount type.
//!
//! Invariant owned here: an [`Amount`] is a whole number of the asset's smallest unit.
//! A value with more decimal places than the asset's scale is refused, never rounded
//! ([`Asset::amount`]); tested by `asset::tests::refuses_more_decimals_than_scale`.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::LedgerError;

/// The largest scale an asset may have. An amount is an `i64` count of minor units, so a
/// larger scale would leave too little room for whole units.
pub const MAX_SCALE: u32 = 18;

/// What an asset is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AssetKind {
    /// Money, such as JPY (scale 0) or USD (scale 2).
    Currency,
    /// Units of a fund, ETF or stock, priced in `price_currency` per `quote_unit` units
    /// (Japanese investment trusts quote per 10,000 units).
    Instrument {
        /// The currency its price is quoted in.
        price_currency: String,
        /// How many units the quoted price is for.
        quote_unit: i64,
    },
}

/// A currency or an instrument held in the books. Immutable once created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    /// Unique code: ISO 4217 for currencies, ISIN or a local code for instruments.
    pub code: String,
    /// Currency or instrument.
    #[serde(flatten)]
    pub kind: AssetKind,
    /// Decimal places of the smallest unit (JPY 0, USD 2, a fund's units 0).
    pub scale: u32,
}

impl Asset {
    /// A currency of the given scale.
    pub fn currency(code: &str, scale: u32) -> Self {
        Self {
            code: code.to_owned(),
            kind: AssetKind::Currency,
            scale,
        }
    }

    /// An instrument of the given unit scale, priced in `price_currency` per `quote_unit` units.
    pub fn instrument(code: &str, scale: u32, price_currency: &str, quote_unit: i64) -> Self {
        Self {
            code: code.to_owned(),
            kind: AssetKind::Instrument {
                price_currency: price_currency.to_owned(),
                quote_unit,
            },
            scale,
        }
    }

    /// Checks the asset's own fields.
    pub fn validate(&self) -> Result<(), LedgerError> {
        let code_ok = !self.code.is_empty()
            && self.code.len() <= 64
            && self
                .code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !code_ok {
            return Err(LedgerError::InvalidAsset(format!(
                "asset code {:?} must be 1-64 characters of A-Z, a-z, 0-9, '_', '-', '.'",
                self.code
            )));
        }
        if self.scale > MAX_SCALE {
            return Err(LedgerError::InvalidAsset(format!(
                "asset {} has scale {}, above the maximum {MAX_SCALE}",
                self.code, self.scale
            )));
        }
        if let AssetKind::Instrument {
            price_currency,
            quote_unit,
        } = &self.kind
        {
            if *quote_unit <= 0 {
                return Err(LedgerError::InvalidAsset(format!(
                    "instrument {} has quote unit {quote_unit}; it must be positive",
                    self.code
                )));
            }
            if price_currency.is_empty() || price_currency == &self.code {
                return Err(LedgerError::InvalidAsset(format!(
                    "instrument {} needs a price currency other than itself",
                    self.code
                )));
            }
        }
        Ok(())
    }

    /// Converts a decimal value into an exact amount of this asset, refusing a value with
    /// more decimal places than the asset's scale or too large to count in minor units.
    pub fn amount(&self, value: Decimal) -> Result<Amount, LedgerError> {
        Amount::try_new(value, self.scale).map_err(|reason| LedgerError::InvalidAmount {
            asset: self.code.clone(),
            value: value.to_string(),
            reason,
        })
    }
}

/// An exact quantity of some asset: a whole number of its smallest unit (`minor`) and the
/// asset's scale. Sign is allowed (balances may be negative); posting amounts are checked > 0
/// where postings are validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Amount {
    minor: i64,
    scale: u32,
}

impl Amount {
    /// The amount of `minor` smallest units at `scale`.
    pub fn from_minor(minor: i64, scale: u32) -> Self {
        Self { minor, scale }
    }

    /// Exactly `value`, or a reason why it cannot be held at `scale`.
    pub fn try_new(value: Decimal, scale: u32) -> Result<Self, String> {
        let value = value.normalize();
        if value.scale() > scale {
            return Err(format!(
                "has {} decimal places; the asset allows {scale}",
                value.scale()
            ));
        }
        let factor = Decimal::from_i128_with_scale(10_i128.pow(scale), 0);
        let minor = value
            .checked_mul(factor)
            .and_then(|m| i64::try_from(m.mantissa() / 10_i128.pow(m.scale())).ok())
            .ok_or_else(|| "is too large to hold exactly".to_owned())?;
        Ok(Self { minor, scale })
    }

    /// The count of smallest units.
    pub fn minor(self) -> i64 {
        self.minor
    }

    /// The asset scale this amount is expressed at.
    pub fn scale(self) -> u32 {
        self.scale
    }

    /// The exact decimal value.
    pub fn to_decimal(self) -> Decimal {
        Decimal::from_i128_with_scale(i128::from(self.minor), self.scale)
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.to_decimal())
    }
}

/// The exact decimal value of `minor` units at `scale`, for sums that exceed `i64`.
pub fn decimal_of(minor: i128, scale: u32) -> Decimal {
    Decimal::from_i128_with_scale(minor, scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn converts_exactly_at_scale() {
        let jpy = Asset::currency("JPY", 0);
        assert_eq!(
            jpy.amount(d("999999999999999")).map(Amount::minor).ok(),
            Some(999_999_999_999_999)
        );
        let usd = Asset::currency("USD", 2);
        assert_eq!(usd.amount(d("12.30")).map(Amount::minor).ok(), Some(1230));
        let fine = Asset::instrument("X", 8, "JPY", 1);
        assert_eq!(
            fine.amount(d("0.00000001")).map(Amount::minor).ok(),
            Some(1)
        );
        assert_eq!(Amount::from_minor(1, 8).to_decimal(), d("0.00000001"));
        assert_eq!(Amount::from_minor(-1230, 2).to_string(), "-12.30");
    }

    #[test]
    fn refuses_more_decimals_than_scale() {
        let jpy = Asset::currency("JPY", 0);
        let err = jpy
            .amount(d("1.5"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("1 decimal places; the asset allows 0"),
            "{err}"
        );
        // Trailing zeros are not extra precision.
        assert_eq!(jpy.amount(d("100.000")).map(Amount::minor).ok(), Some(100));
        let usd = Asset::currency("USD", 2);
        assert!(usd.amount(d("0.001")).is_err());
    }

    #[test]
    fn refuses_values_too_large_for_minor_units() {
        let fine = Asset::instrument("X", 8, "JPY", 1);
        assert!(fine.amount(d("100000000000")).is_err()); // 1e11 * 1e8 > i64::MAX
        assert!(fine.amount(d("92233720368")).is_ok());
    }

    #[test]
    fn validates_asset_fields() {
        assert!(Asset::currency("JPY", 0).validate().is_ok());
        assert!(Asset::currency("", 0).validate().is_err());
        assert!(Asset::currency("J P Y", 0).validate().is_err());
        assert!(Asset::currency("JPY", 19).validate().is_err());
        assert!(Asset::instrument("F1", 0, "JPY", 0).validate().is_err());
        assert!(Asset::instrument("F1", 0, "F1", 10_000).validate().is_err());
        assert!(Asset::instrument("F1", 0, "JPY", 10_000).validate().is_ok());
    }
}
