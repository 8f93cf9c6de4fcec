//! Japanese investment trusts' own terms and what each holder paid for them (issue 25).
//!
//! Owns `fund_terms` (a fund's prospectus terms with effective dates: the redemption levy
//! 信託財産留保額 and the annual expense ratio 信託報酬), `individual_costs` (個別元本: per
//! customer and fund, the moving-average cost per quote unit) and `realised_gains` (one row
//! per sale), all written by [`store`]. The rules are plain functions here and in [`cost`];
//! end of day's allocation step ([`crate::eod::trading`]) calls them for every sale and buy,
//! in its own transaction. Never names HTTP.
//!
//! **The redemption levy** (DOMAIN.md section 8): [`redemption_levy`] is the rule's one
//! home: `levy = floor(value redeemed × rate)` in minor units of the currency, per sale (one
//! wrap's share of the day's sales of one fund), and the wrap receives `value − levy`. The
//! value redeemed is the sale's value at the day's price, rounded down as every sale is
//! (`trading::Pricing::value_of`). Rounding down favours the redeeming holder by less than a
//! yen and never charges more than the stated rate. The levy stays in the fund: the omnibus
//! receives proceeds net of it (allocation's entry posts the wraps' net proceeds against the
//! omnibus), so Σ customers + Σ wraps = omnibus still holds to the yen.

pub mod cost;
pub mod store;

use chrono::NaiveDate;
use ledger::LedgerError;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::customers::Invalid;

/// Most decimal places a fund term's rate may have (0.003 = 0.3 %; 0.0110 = 1.1 %).
pub const RATE_MAX_DECIMALS: u32 = 6;

/// What can go wrong in this module.
#[derive(Debug, thiserror::Error)]
pub enum FundsError {
    /// No such instrument, wrap or customer as the caller may see it (404).
    #[error("{0}")]
    NotFound(String),
    /// A value of the request breaks a rule, naming the field (422).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Tenants(#[from] tenants::TenantsError),
}

impl From<sea_orm::DbErr> for FundsError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Ledger(LedgerError::from(e))
    }
}

/// A fund's term that has a rate and an effective date.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FundTerm {
    /// 信託財産留保額: a rate on the value redeemed, kept by the fund.
    RedemptionLevy,
    /// 信託報酬: the fund's annual expense ratio, borne inside its price.
    ExpenseRatio,
}

impl FundTerm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RedemptionLevy => "redemption_levy",
            Self::ExpenseRatio => "expense_ratio",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "redemption_levy" => Some(Self::RedemptionLevy),
            "expense_ratio" => Some(Self::ExpenseRatio),
            _ => None,
        }
    }

    /// The highest rate the term may have: 5 % of the value redeemed for a levy (funds
    /// charge 0.1–0.5 %), 5 % a year for an expense ratio (Japanese funds: 0.1–2.5 %).
    pub fn max_rate(self) -> Decimal {
        Decimal::new(5, 2)
    }
}

/// One version of a fund term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FundTermRate {
    pub instrument: String,
    pub term: FundTerm,
    pub effective_date: NaiveDate,
    /// Exact decimal string (`"0.003"` = 0.3 %).
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub rate: Decimal,
    pub set_by: String,
}

/// Reads a rate as written in a request: a decimal string, 0 ≤ rate ≤ the term's maximum,
/// at most [`RATE_MAX_DECIMALS`] places. The error names `field`.
pub fn parse_rate(term: FundTerm, text: &str, field: &str) -> Result<Decimal, Invalid> {
    let rate = ledger::amount::parse_decimal(text).map_err(|m| Invalid::new(field, m))?;
    if rate.is_sign_negative() && !rate.is_zero() {
        return Err(Invalid::new(field, "must not be negative"));
    }
    if rate > term.max_rate() {
        return Err(Invalid::new(
            field,
            format!(
                "a {} is at most {} (a fraction: 0.003 is 0.3 %)",
                term.as_str(),
                term.max_rate()
            ),
        ));
    }
    if rate.normalize().scale() > RATE_MAX_DECIMALS {
        return Err(Invalid::new(
            field,
            format!("at most {RATE_MAX_DECIMALS} decimal places"),
        ));
    }
    Ok(rate.normalize())
}

/// The redemption levy on a sale worth `value` minor units of the currency at the day's
/// price: `floor(value × rate)`, never negative, never more than the value. The one home of
/// the rule (DOMAIN.md section 8): every sale's proceeds are `value − redemption_levy(value,
/// rate)`.
pub fn redemption_levy(value: i64, rate: Decimal) -> i64 {
    if value <= 0 || rate <= Decimal::ZERO {
        return 0;
    }
    let levy = (Decimal::from(value) * rate).floor();
    let levy = i64::try_from(levy.mantissa() / 10_i128.pow(levy.scale())).unwrap_or(value);
    debug_assert!((0..=value).contains(&levy), "a levy is within the value");
    levy.clamp(0, value)
}

/// The smallest value whose proceeds after the levy are at least `amount`: what a sale must
/// be worth to raise `amount` in cash (rebalancing sizes withdrawals and fees by it). The
/// inverse of [`redemption_levy`], not a second rule: computed as `ceil(amount ÷ (1 − rate))`
/// and then moved to the exact boundary with the rule itself.
pub fn value_to_raise(amount: i64, rate: Decimal) -> i64 {
    if amount <= 0 || rate <= Decimal::ZERO {
        return amount.max(0);
    }
    let keep = Decimal::ONE - rate;
    if keep <= Decimal::ZERO {
        return i64::MAX;
    }
    let guess = (Decimal::from(amount) / keep).ceil();
    let mut value = i64::try_from(guess.mantissa() / 10_i128.pow(guess.scale())).unwrap_or(amount);
    let net = |v: i64| v - redemption_levy(v, rate);
    while net(value) < amount {
        value += 1;
    }
    while value > amount && net(value - 1) >= amount {
        value -= 1;
    }
    debug_assert!(net(value) >= amount && (value == amount || net(value - 1) < amount));
    value
}

/// A model's weighted expense ratio: `Σ weight × the fund's expense ratio` (cash, and a fund
/// with no ratio recorded, count 0). Exact; the weights are the model version's.
pub fn weighted_expense_ratio(
    weights: &[(String, Decimal)],
    ratios: &std::collections::HashMap<String, Decimal>,
) -> Decimal {
    weights
        .iter()
        .map(|(code, w)| *w * ratios.get(code).copied().unwrap_or(Decimal::ZERO))
        .sum()
}

/// A wrap's expected total cost a year (総コスト) as a fraction of its value: the management
/// fee's blended rate at `value` with consumption tax, plus the model's weighted expense
/// ratio; rounded half to even to 6 places (0.0001 % of the value). For a value of 0 the
/// schedule's first rate is used.
pub fn expected_total_cost(
    schedule: &crate::market::agreement::FeeSchedule,
    value: Decimal,
    tax_rate: Decimal,
    fund_expense_ratio: Decimal,
) -> Decimal {
    let fee_rate = if value > Decimal::ZERO {
        schedule.blended_annual_fee(value) / value
    } else {
        schedule.blended_annual_fee(Decimal::ONE)
    };
    let mut total = (fee_rate * (Decimal::ONE + tax_rate) + fund_expense_ratio)
        .round_dp_with_strategy(6, rust_decimal::RoundingStrategy::MidpointNearestEven);
    total.rescale(6);
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    #[test]
    fn levy_worked_examples() {
        // 0.3 % of ¥30,091 is ¥90.273: ¥90 kept by the fund, ¥30,001 paid.
        assert_eq!(redemption_levy(30_091, d("0.003")), 90);
        // 0.3 % of ¥1,000,000 is exactly ¥3,000.
        assert_eq!(redemption_levy(1_000_000, d("0.003")), 3_000);
        // 0.1 % of ¥999 is ¥0.999: nothing (rounded down).
        assert_eq!(redemption_levy(999, d("0.001")), 0);
        // 0.5 % of ¥12,345 is ¥61.725 → ¥61.
        assert_eq!(redemption_levy(12_345, d("0.005")), 61);
        // No levy, or nothing sold.
        assert_eq!(redemption_levy(50_000, Decimal::ZERO), 0);
        assert_eq!(redemption_levy(0, d("0.003")), 0);
    }

    #[test]
    fn value_to_raise_is_the_exact_inverse() {
        // To pay ¥30,000 after 0.3 %: ¥30,090 (levy ¥90.27 → 90, leaves 30,000); ¥30,089
        // leaves 29,999.
        assert_eq!(value_to_raise(30_000, d("0.003")), 30_090);
        assert_eq!(value_to_raise(30_000, Decimal::ZERO), 30_000);
        for amount in [1_i64, 7, 99, 1_000, 33_333, 1_234_567] {
            for rate in ["0.001", "0.003", "0.005", "0.0025", "0.05"] {
                let r = d(rate);
                let v = value_to_raise(amount, r);
                assert!(v - redemption_levy(v, r) >= amount, "{amount} {rate}");
                assert!(v == amount || (v - 1) - redemption_levy(v - 1, r) < amount);
            }
        }
    }

    #[test]
    fn total_cost_worked_example() {
        use crate::market::agreement::FeeSchedule;
        // A model 60 % fund A (0.2 % a year), 30 % fund B (0.55 %), 10 % cash: 0.12 % +
        // 0.165 % = 0.285 %.
        let weights = vec![("A".to_owned(), d("0.6")), ("B".to_owned(), d("0.3"))];
        let ratios = std::collections::HashMap::from([
            ("A".to_owned(), d("0.002")),
            ("B".to_owned(), d("0.0055")),
        ]);
        let funds = weighted_expense_ratio(&weights, &ratios);
        assert_eq!(funds, d("0.00285"));
        // A flat 1.1 % fee with 10 % tax is 1.21 %; with the funds 1.495 %.
        let flat = FeeSchedule::Flat {
            rate_annual: d("0.011"),
        };
        assert_eq!(
            expected_total_cost(&flat, d("1000000"), d("0.10"), funds),
            d("0.014950")
        );
    }

    #[test]
    fn rates_are_checked_and_named() {
        let levy = FundTerm::RedemptionLevy;
        assert_eq!(parse_rate(levy, "0.003", "rate").ok(), Some(d("0.003")));
        assert_eq!(parse_rate(levy, "0", "rate").ok(), Some(Decimal::ZERO));
        for bad in ["-0.001", "0.06", "1.5", "0.0000001", "abc", "", "3e-3"] {
            let e = parse_rate(levy, bad, "rate").err();
            assert_eq!(e.map(|e| e.field), Some("rate".to_owned()), "{bad}");
        }
    }
}
