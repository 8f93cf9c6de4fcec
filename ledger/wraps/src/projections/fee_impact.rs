//! Fee impact projection: what a fee schedule costs a saver over the years, in exact decimals.
//!
//! The model, month by month for `years × 12` months, the same for the value with fees and the
//! value without:
//!
//! 1. at the start of every month the monthly contribution arrives (the initial amount is
//!    there at month 0, so the first contribution adds to it);
//! 2. the value grows by the gross annual return ÷ 12 (a nominal annual rate compounded
//!    monthly: exact in decimals, where a 12th root is not);
//! 3. the fee of the month is the schedule's blended annual fee on the grown value ÷ 12, plus
//!    consumption tax on the fee (DOMAIN.md section 4: fees are charged on value and taxed),
//!    and leaves the value (never below zero).
//!
//! Every figure is a [`Decimal`] carried at full precision (28 significant digits) from month
//! to month; only what is reported is rounded, to the currency's minor unit, half to even.
//! The total expense ratio is the fees of the whole projection ÷ the average monthly value
//! (after growth, before the fee) ÷ the years: the yearly cost as a share of the money
//! invested, which is how customers compare products.
//!
//! Invariants, tried by the tests below (worked examples by hand) and by
//! `api/tests/http/projections.rs`:
//! * without fees the value is exactly what the same growth gives; with a zero rate both
//!   values are equal and the cost is zero;
//! * `cumulative_cost = final_value_without_fees − final_value_with_fees`, exactly, in the
//!   reported (rounded) figures;
//! * a tiered schedule charges each slice of the value its own rate (blended), as billing
//!   does ([`FeeSchedule::blended_annual_fee`]).

use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use utoipa::ToSchema;

use crate::market::agreement::FeeSchedule;

/// Longest projection, in years.
pub const MAX_YEARS: u32 = 60;
/// Most fee scenarios in one projection.
pub const MAX_SCENARIOS: usize = 10;
/// Largest amount accepted (initial or monthly), and largest return: 60 years of the largest
/// amounts at the largest return stay within a [`Decimal`] (about 10^27; tried below).
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;
/// Largest gross annual return accepted (50 %).
pub const MAX_RETURN: Decimal = Decimal::from_parts(5, 0, 0, false, 1);

/// What to project.
#[derive(Debug, Clone)]
pub struct FeeImpactInput {
    pub initial_amount: Decimal,
    pub monthly_contribution: Decimal,
    pub years: u32,
    /// Before fees, e.g. 0.05.
    pub gross_annual_return: Decimal,
    /// Consumption tax on the fee, e.g. 0.10.
    pub tax_rate: Decimal,
    /// One projection per schedule.
    pub schedules: Vec<FeeSchedule>,
    /// The funds' own annual costs (信託報酬) borne inside their prices: the model's weighted
    /// expense ratio ([`crate::funds::weighted_expense_ratio`]); 0 to leave them out.
    pub fund_expense_ratio: Decimal,
    /// The currency's minor-unit scale (0 for JPY).
    pub scale: u32,
}

/// A bad input, naming the field as the request names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidProjection {
    pub field: String,
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> InvalidProjection {
    InvalidProjection {
        field: field.into(),
        message: message.into(),
    }
}

impl FeeImpactInput {
    /// Checks every field; the first problem is named.
    pub fn validate(&self) -> Result<(), InvalidProjection> {
        let max = Decimal::from(MAX_AMOUNT);
        for (field, v) in [
            ("initial_amount", self.initial_amount),
            ("monthly_contribution", self.monthly_contribution),
        ] {
            if v < Decimal::ZERO || v > max {
                return Err(invalid(field, format!("must be between 0 and {max}")));
            }
            if v.normalize().scale() > self.scale {
                return Err(invalid(
                    field,
                    format!("has more decimals than the currency's {}", self.scale),
                ));
            }
        }
        if self.initial_amount.is_zero() && self.monthly_contribution.is_zero() {
            return Err(invalid(
                "initial_amount",
                "initial_amount or monthly_contribution must be positive",
            ));
        }
        if !(1..=MAX_YEARS).contains(&self.years) {
            return Err(invalid("years", format!("must be 1 to {MAX_YEARS}")));
        }
        if self.gross_annual_return <= -Decimal::ONE || self.gross_annual_return > MAX_RETURN {
            return Err(invalid(
                "gross_annual_return",
                format!("must be above -1 and at most {MAX_RETURN} (a fraction: 0.05 is 5 %)"),
            ));
        }
        if self.tax_rate < Decimal::ZERO || self.tax_rate > Decimal::ONE {
            return Err(invalid("tax_rate", "must be between 0 and 1"));
        }
        if self.fund_expense_ratio < Decimal::ZERO || self.fund_expense_ratio >= Decimal::ONE {
            return Err(invalid(
                "fund_expense_ratio",
                "must be from 0 to below 1 (a fraction: 0.004 is 0.4 %)",
            ));
        }
        if self.schedules.is_empty() || self.schedules.len() > MAX_SCENARIOS {
            return Err(invalid(
                "fee_rates",
                format!("give 1 to {MAX_SCENARIOS} fee rates, or an agreement"),
            ));
        }
        Ok(())
    }
}

/// One year's end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct YearPoint {
    pub year: u32,
    /// Initial amount plus every contribution so far.
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub contributed: Decimal,
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub value_without_fees: Decimal,
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub value_with_fees: Decimal,
    /// Fees and their tax paid so far.
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub fees_paid: Decimal,
}

/// The projection under one fee schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FeeScenario {
    pub management_fee: FeeSchedule,
    pub years: Vec<YearPoint>,
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub final_value_without_fees: Decimal,
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub final_value_with_fees: Decimal,
    /// What the fees cost by the end: the value without fees less the value with them
    /// (the fees and the growth they would have earned).
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub cumulative_cost: Decimal,
    /// Fees and tax paid over the whole projection.
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub fees_paid: Decimal,
    /// The funds' weighted annual expense ratio the projection charged (0: none).
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub fund_expense_ratio: Decimal,
    /// The expected total cost a year (総コスト) at the initial amount: the fee's blended rate
    /// with tax plus the funds' expense ratio ([`crate::funds::expected_total_cost`]).
    #[schema(value_type = String, example = "0.014950")]
    #[serde(with = "rust_decimal::serde::str")]
    pub expected_total_cost: Decimal,
    /// What the funds' expense ratios took over the whole projection.
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub fund_costs_paid: Decimal,
    /// Yearly fees, tax and fund costs (総コスト) as a fraction of the average value (6
    /// decimals).
    #[schema(value_type = String, example = "0.012100")]
    #[serde(with = "rust_decimal::serde::str")]
    pub total_expense_ratio: Decimal,
}

fn money(v: Decimal, scale: u32) -> Decimal {
    let mut r = v.round_dp_with_strategy(scale, RoundingStrategy::MidpointNearestEven);
    r.rescale(scale);
    r
}

/// Projects every schedule of `input` (validated first).
pub fn project(input: &FeeImpactInput) -> Result<Vec<FeeScenario>, InvalidProjection> {
    input.validate()?;
    Ok(input
        .schedules
        .iter()
        .map(|s| project_one(input, s))
        .collect())
}

fn project_one(input: &FeeImpactInput, schedule: &FeeSchedule) -> FeeScenario {
    let twelve = Decimal::from(12);
    let growth = input.gross_annual_return / twelve;
    let scale = input.scale;
    let (mut without, mut with) = (input.initial_amount, input.initial_amount);
    let mut contributed = input.initial_amount;
    let (mut fees, mut value_sum) = (Decimal::ZERO, Decimal::ZERO);
    let mut fund_costs = Decimal::ZERO;
    let mut years = Vec::with_capacity(input.years as usize);
    for month in 1..=input.years * 12 {
        without += input.monthly_contribution;
        with += input.monthly_contribution;
        contributed += input.monthly_contribution;
        without += without * growth;
        with += with * growth;
        value_sum += with;
        let fee = schedule.blended_annual_fee(with) / twelve * (Decimal::ONE + input.tax_rate);
        let fee = fee.min(with.max(Decimal::ZERO));
        with -= fee;
        fees += fee;
        // The funds' own costs, taken inside their prices month by month on the same value.
        if !input.fund_expense_ratio.is_zero() {
            let fund_cost = (value_before_fee(with, fee) * input.fund_expense_ratio / twelve)
                .min(with.max(Decimal::ZERO));
            with -= fund_cost;
            fund_costs += fund_cost;
        }
        if month.is_multiple_of(12) {
            years.push(YearPoint {
                year: month / 12,
                contributed: money(contributed, scale),
                value_without_fees: money(without, scale),
                value_with_fees: money(with, scale),
                fees_paid: money(fees, scale),
            });
        }
    }
    let ter = if value_sum.is_zero() {
        Decimal::ZERO
    } else {
        // costs per year ÷ average value = (costs ÷ years) ÷ (value_sum ÷ months).
        (fees + fund_costs) * twelve / value_sum
    };
    let final_without = money(without, scale);
    let final_with = money(with, scale);
    let mut ter = ter.round_dp_with_strategy(6, RoundingStrategy::MidpointNearestEven);
    ter.rescale(6);
    FeeScenario {
        management_fee: schedule.clone(),
        years,
        final_value_without_fees: final_without,
        final_value_with_fees: final_with,
        cumulative_cost: final_without - final_with,
        fees_paid: money(fees, scale),
        fund_expense_ratio: input.fund_expense_ratio,
        expected_total_cost: crate::funds::expected_total_cost(
            schedule,
            input.initial_amount,
            input.tax_rate,
            input.fund_expense_ratio,
        ),
        fund_costs_paid: money(fund_costs, scale),
        total_expense_ratio: ter,
    }
}

/// The grown value of the month before its management fee left.
fn value_before_fee(after_fee: Decimal, fee: Decimal) -> Decimal {
    after_fee + fee
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::agreement::Tier;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn flat(rate: &str) -> FeeSchedule {
        FeeSchedule::Flat {
            rate_annual: d(rate),
        }
    }

    fn input(schedules: Vec<FeeSchedule>) -> FeeImpactInput {
        FeeImpactInput {
            initial_amount: d("1000000"),
            monthly_contribution: Decimal::ZERO,
            years: 1,
            gross_annual_return: d("0.12"),
            tax_rate: d("0.10"),
            schedules,
            fund_expense_ratio: Decimal::ZERO,
            scale: 0,
        }
    }

    #[test]
    fn fund_costs_add_to_the_total() {
        // ¥1,200,000, no growth, no management fee, a fund ratio of 1.2 % a year: each month
        // the funds take 1.2 % ÷ 12 = 0.1 % of the value: 1,200 in month 1, then 1,198.8, …
        // The yearly cost over the average value is exactly 1.2 %.
        let mut i = input(vec![flat("0")]);
        i.initial_amount = d("1200000");
        i.gross_annual_return = Decimal::ZERO;
        i.fund_expense_ratio = d("0.012");
        let s = &project(&i).unwrap()[0];
        assert_eq!(s.fees_paid, Decimal::ZERO);
        // 1,200,000 × (1 − 0.999^12) = 14,321.06… → 14,321; left 1,185,678.94 → 1,185,679.
        assert_eq!(s.fund_costs_paid, d("14321"));
        assert_eq!(s.final_value_with_fees, d("1185679"));
        assert_eq!(s.cumulative_cost, d("14321"));
        assert_eq!(s.total_expense_ratio, d("0.012000"));
        // Without fund costs the projection is as before.
        let s0 = &project(&input(vec![flat("0.011")])).unwrap()[0];
        assert_eq!(s0.fund_costs_paid, Decimal::ZERO);
    }

    #[test]
    fn one_year_flat_fee_by_hand() {
        // Growth 1 % a month; fee 1.2 % a year = 0.1 % a month, plus 10 % tax = 0.11 %.
        // Without fees: 1,000,000 × 1.01^12 = 1,126,825.03… → 1,126,825.
        // With fees: each month × 1.01, then × (1 − 0.0011): 1,000,000 × (1.01 × 0.9989)^12
        // = 1,112,040.5988… → 1,112,041; the fees, 0.0011 of each month's grown value,
        // sum to 14,003.499… → 14,003 (worked to 40 digits outside the code).
        let s = &project(&input(vec![flat("0.012")])).unwrap()[0];
        assert_eq!(s.final_value_without_fees, d("1126825"));
        assert_eq!(s.final_value_with_fees, d("1112041"));
        assert_eq!(s.fees_paid, d("14003"));
        assert_eq!(
            s.cumulative_cost,
            s.final_value_without_fees - s.final_value_with_fees
        );
        // TER: fees ÷ average value, a year: 0.0011 × 12 = 0.0132 exactly, as every month
        // charges 0.11 % of the value it averages over.
        assert_eq!(s.total_expense_ratio, d("0.013200"));
        assert_eq!(s.years.len(), 1);
        assert_eq!(s.years[0].contributed, d("1000000"));
    }

    #[test]
    fn a_zero_rate_costs_nothing() {
        let s = &project(&input(vec![flat("0")])).unwrap()[0];
        assert_eq!(s.final_value_with_fees, s.final_value_without_fees);
        assert_eq!(s.cumulative_cost, Decimal::ZERO);
        assert_eq!(s.total_expense_ratio, d("0.000000"));
    }

    #[test]
    fn contributions_arrive_at_the_start_of_each_month() {
        // No growth, no fee: 12 × 10,000 on top of 0.
        let mut i = input(vec![flat("0")]);
        i.initial_amount = Decimal::ZERO;
        i.monthly_contribution = d("10000");
        i.gross_annual_return = Decimal::ZERO;
        i.years = 2;
        let s = &project(&i).unwrap()[0];
        assert_eq!(s.years[0].contributed, d("120000"));
        assert_eq!(s.years[1].value_without_fees, d("240000"));
        // With 1 % a month growth, month 1: 10,000 × 1.01 = 10,100; month 2: (10,100 +
        // 10,000) × 1.01 = 20,301.
        i.gross_annual_return = d("0.12");
        i.years = 1;
        let s = &project(&i).unwrap()[0];
        let mut v = Decimal::ZERO;
        for _ in 0..12 {
            v = (v + d("10000")) * d("1.01");
        }
        assert_eq!(s.final_value_without_fees, money(v, 0));
        assert_eq!(money(v, 0), d("128093")); // 10,000 × 1.01 × (1.01^12 − 1) ÷ 0.01
    }

    #[test]
    fn tiers_charge_each_slice_its_own_rate() {
        // 1.2 % on the first 500,000, 0.6 % above; no growth, no tax, one month:
        // fee = (500,000 × 0.012 + 500,000 × 0.006) ÷ 12 = 9,000 ÷ 12 = 750.
        let tiered = FeeSchedule::Tiered {
            tiers: vec![
                Tier {
                    up_to: Some(d("500000")),
                    rate_annual: d("0.012"),
                },
                Tier {
                    up_to: None,
                    rate_annual: d("0.006"),
                },
            ],
        };
        let mut i = input(vec![tiered, flat("0.012")]);
        i.gross_annual_return = Decimal::ZERO;
        i.tax_rate = Decimal::ZERO;
        let s = project(&i).unwrap();
        // First month 750, then slightly less each month as the value falls.
        assert!(s[0].fees_paid < d("9000") && s[0].fees_paid > d("8950"));
        assert!(s[0].final_value_with_fees > s[1].final_value_with_fees);
        // Flat 1.2 %: 1,000,000 × (1 − 0.001)^12 = 988,065.99… → 988,066.
        assert_eq!(s[1].final_value_with_fees, d("988066"));
    }

    #[test]
    fn bad_inputs_are_named() {
        let mut i = input(vec![flat("0.01")]);
        i.years = 0;
        assert_eq!(i.validate().unwrap_err().field, "years");
        let mut i = input(vec![]);
        i.years = 1;
        assert_eq!(i.validate().unwrap_err().field, "fee_rates");
        let mut i = input(vec![flat("0.01")]);
        i.initial_amount = d("100.5");
        assert_eq!(i.validate().unwrap_err().field, "initial_amount");
        let mut i = input(vec![flat("0.01")]);
        i.gross_annual_return = d("0.51");
        assert_eq!(i.validate().unwrap_err().field, "gross_annual_return");
        i.gross_annual_return = d("-1");
        assert_eq!(i.validate().unwrap_err().field, "gross_annual_return");
        let mut i = input(vec![flat("0.01")]);
        i.initial_amount = Decimal::ZERO;
        assert_eq!(i.validate().unwrap_err().field, "initial_amount");
    }

    #[test]
    fn sixty_years_of_the_largest_amounts_stay_exact() {
        let mut i = input(vec![flat("0.02")]);
        i.initial_amount = Decimal::from(MAX_AMOUNT);
        i.monthly_contribution = Decimal::from(MAX_AMOUNT);
        i.years = MAX_YEARS;
        i.gross_annual_return = MAX_RETURN;
        let s = &project(&i).unwrap()[0];
        assert!(s.final_value_without_fees > s.final_value_with_fees);
    }
}
