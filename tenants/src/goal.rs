//! Goal probability: how likely a wrap is to reach its target amount by its target date.
//!
//! Monte Carlo in monthly steps. Each month of each path:
//!
//! 1. the value grows by `exp(m + s·Z)`, Z standard normal, where `s = σ / √12` and
//!    `m = (ln(1 + μ) − σ² / 2) / 12` from the strategy's expected annual return μ and
//!    volatility σ: lognormal returns whose yearly mean growth is exactly 1 + μ;
//! 2. the fee leaves: the value × (annual fee rate with tax) ÷ 12;
//! 3. the month's planned flows apply: contributions are added, fixed withdrawals taken (at
//!    most the value), percentage withdrawals take their share; the value never goes below 0.
//!
//! The probability is the share of paths at or above the target at the last month. The same
//! inputs and seed give the same answer: the generator is ChaCha8 seeded with `seed`, drawn in
//! a fixed order (month by month, path by path). Where there are no flows the closed form is
//! `P = Φ((ln(V₀/K) + n·(m + ln(1 − f/12))) / (s·√n))` over n months, and both are reported.
//!
//! The simulation runs in `f64`: it is a statistical estimate, never a balance, and nothing it
//! produces is posted; its money outputs (percentile values, the contribution needed) are
//! rounded to the currency's minor unit as decimals.
//!
//! Invariants, tried by the tests below:
//! * the same inputs and seed give the same result, a different seed a (slightly) different
//!   one: `the_same_seed_gives_the_same_answer`;
//! * without flows the Monte Carlo estimate agrees with the closed form within four standard
//!   errors: `monte_carlo_agrees_with_the_closed_form`;
//! * the contribution found lifts the probability to at least the level asked, and one
//!   minor unit less does not reach it (bisection over common random numbers, so the
//!   probability is monotone in the contribution): `the_needed_contribution_reaches_the_level`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use utoipa::ToSchema;

use crate::fee_impact::InvalidProjection;

/// Fewest paths (the floor) and most.
pub const MIN_PATHS: u32 = 10_000;
pub const MAX_PATHS: u32 = 100_000;
/// Longest horizon, in months (60 years).
pub const MAX_MONTHS: u32 = 720;

/// A recurring flow of a plan, in months counted from the next month (1).
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedFlow {
    /// First month it happens (1 = next month).
    pub first_month: u32,
    /// Every 1, 3 or 12 months.
    pub every_months: u32,
    /// Last month it happens, if it ends.
    pub last_month: Option<u32>,
    pub kind: FlowKind,
}

/// What a flow does.
#[derive(Debug, Clone, PartialEq)]
pub enum FlowKind {
    Contribution(Decimal),
    Withdrawal(Decimal),
    /// A fraction of the value, e.g. 0.04.
    WithdrawalFraction(Decimal),
}

impl PlannedFlow {
    fn happens(&self, month: u32) -> bool {
        month >= self.first_month
            && self.last_month.is_none_or(|l| month <= l)
            && (month - self.first_month).is_multiple_of(self.every_months.max(1))
    }
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct GoalInput {
    pub current_value: Decimal,
    pub target_amount: Decimal,
    /// Months from now to the target date (at least 1).
    pub months: u32,
    pub expected_return_annual: Decimal,
    pub volatility_annual: Decimal,
    /// The annual management fee rate with tax, as a fraction of value.
    pub fee_rate_annual: Decimal,
    pub flows: Vec<PlannedFlow>,
    pub paths: u32,
    pub seed: u64,
    /// The currency's minor-unit scale.
    pub scale: u32,
}

impl GoalInput {
    /// Checks every field; the first problem is named.
    pub fn validate(&self) -> Result<(), InvalidProjection> {
        let bad = |field: &str, message: String| InvalidProjection {
            field: field.to_owned(),
            message,
        };
        if self.current_value < Decimal::ZERO {
            return Err(bad("current_value", "must not be negative".into()));
        }
        if self.target_amount <= Decimal::ZERO {
            return Err(bad("target_amount", "must be positive".into()));
        }
        if !(1..=MAX_MONTHS).contains(&self.months) {
            return Err(bad(
                "target_date",
                format!("must be 1 to {MAX_MONTHS} months ahead"),
            ));
        }
        if !(MIN_PATHS..=MAX_PATHS).contains(&self.paths) {
            return Err(bad("paths", format!("must be {MIN_PATHS} to {MAX_PATHS}")));
        }
        if self.expected_return_annual <= -Decimal::ONE {
            return Err(bad("expected_return_annual", "must be above -1".into()));
        }
        if self.fee_rate_annual < Decimal::ZERO || self.fee_rate_annual >= Decimal::ONE {
            return Err(bad("fee_rate_annual", "must be from 0 to below 1".into()));
        }
        Ok(())
    }
}

/// One month of the fan chart: the value below which the given share of paths lies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FanPoint {
    pub month: u32,
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub p10: Decimal,
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub p25: Decimal,
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub p50: Decimal,
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub p75: Decimal,
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub p90: Decimal,
}

/// The result.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct GoalProjection {
    /// Share of paths reaching the target (4 decimals).
    #[schema(value_type = String, example = "0.6123")]
    #[serde(with = "rust_decimal::serde::str")]
    pub probability: Decimal,
    /// Standard error of the estimate: √(p(1−p)/paths) (4 decimals).
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub standard_error: Decimal,
    /// The closed-form lognormal probability, where the wrap has no planned flows.
    #[schema(value_type = Option<String>)]
    #[serde(
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub closed_form_probability: Option<Decimal>,
    pub paths: u32,
    pub seed: u64,
    pub months: u32,
    /// Percentile paths, one point per month (month 0 is today).
    pub fan: Vec<FanPoint>,
}

/// Φ, the standard normal distribution function (W. J. Cody's erfc rational approximation as
/// given in Numerical Recipes' `erfcc`: relative error below 1.2e-7, far below the Monte Carlo
/// error it is compared with).
pub fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    if x >= 0.0 {
        1.0 - 0.5 * erfc
    } else {
        0.5 * erfc
    }
}

/// A decimal input as the simulation's `f64`: statistics, never a balance (module doc).
fn f(v: Decimal) -> f64 {
    v.to_f64().unwrap_or(0.0)
}

fn to_money(v: f64, scale: u32) -> Decimal {
    let mut d = Decimal::from_f64(v.max(0.0))
        .unwrap_or(Decimal::MAX)
        .round_dp_with_strategy(scale, RoundingStrategy::MidpointNearestEven);
    d.rescale(scale);
    d
}

fn to_share(p: f64) -> Decimal {
    let mut d = Decimal::from_f64(p.clamp(0.0, 1.0))
        .unwrap_or(Decimal::ZERO)
        .round_dp_with_strategy(4, RoundingStrategy::MidpointNearestEven);
    d.rescale(4);
    d
}

/// Monthly drift `m`, volatility `s` and fee factor of the model.
fn monthly(input: &GoalInput) -> (f64, f64, f64) {
    let mu = f(input.expected_return_annual);
    let sigma = f(input.volatility_annual);
    let m = ((1.0 + mu).ln() - sigma * sigma / 2.0) / 12.0;
    let s = sigma / 12f64.sqrt();
    let keep = 1.0 - f(input.fee_rate_annual) / 12.0;
    (m, s, keep)
}

/// The closed-form probability without flows.
pub fn closed_form(input: &GoalInput) -> f64 {
    let (m, s, keep) = monthly(input);
    let n = f64::from(input.months);
    let v0 = f(input.current_value);
    let k = f(input.target_amount);
    if v0 <= 0.0 {
        return 0.0;
    }
    let mean = (v0 / k).ln() + n * (m + keep.ln());
    if s == 0.0 {
        return if mean >= 0.0 { 1.0 } else { 0.0 };
    }
    normal_cdf(mean / (s * n.sqrt()))
}

/// Runs the simulation: the final values and, when `fan` is asked, the percentile points.
fn simulate(input: &GoalInput, extra_monthly: f64, fan: bool) -> (Vec<f64>, Vec<FanPoint>) {
    let (m, s, keep) = monthly(input);
    let paths = input.paths as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(input.seed);
    let mut values = vec![f(input.current_value); paths];
    let mut points = Vec::new();
    let mut scratch = Vec::new();
    if fan {
        points.push(fan_point(0, &values, &mut scratch, input.scale));
    }
    let flows: Vec<(&PlannedFlow, f64)> = input
        .flows
        .iter()
        .map(|fl| {
            let v = match &fl.kind {
                FlowKind::Contribution(a) | FlowKind::Withdrawal(a) => f(*a),
                FlowKind::WithdrawalFraction(x) => f(*x),
            };
            (fl, v)
        })
        .collect();
    let mut spare: Option<f64> = None;
    for month in 1..=input.months {
        let due: Vec<&(&PlannedFlow, f64)> =
            flows.iter().filter(|(fl, _)| fl.happens(month)).collect();
        for v in &mut values {
            let z = match spare.take() {
                Some(z) => z,
                None => {
                    // Box–Muller: two uniforms give two independent normals.
                    let u1: f64 = 1.0 - rng.r#gen::<f64>();
                    let u2: f64 = rng.r#gen::<f64>();
                    let r = (-2.0 * u1.ln()).sqrt();
                    let a = std::f64::consts::TAU * u2;
                    spare = Some(r * a.sin());
                    r * a.cos()
                }
            };
            let mut x = *v * (m + s * z).exp() * keep;
            x += extra_monthly;
            for (fl, amount) in &due {
                match fl.kind {
                    FlowKind::Contribution(_) => x += amount,
                    FlowKind::Withdrawal(_) => x -= amount.min(x),
                    FlowKind::WithdrawalFraction(_) => x -= x * amount.clamp(0.0, 1.0),
                }
            }
            *v = x.max(0.0);
        }
        if fan {
            points.push(fan_point(month, &values, &mut scratch, input.scale));
        }
    }
    (values, points)
}

fn fan_point(month: u32, values: &[f64], scratch: &mut Vec<f64>, scale: u32) -> FanPoint {
    scratch.clear();
    scratch.extend_from_slice(values);
    let n = scratch.len();
    let mut at = |q: usize| {
        let k = ((n - 1) * q) / 100;
        let (_, v, _) = scratch.select_nth_unstable_by(k, f64::total_cmp);
        to_money(*v, scale)
    };
    FanPoint {
        month,
        p10: at(10),
        p25: at(25),
        p50: at(50),
        p75: at(75),
        p90: at(90),
    }
}

fn share_at_target(finals: &[f64], target: f64) -> f64 {
    let hits = finals.iter().filter(|v| **v >= target).count();
    hits as f64 / finals.len().max(1) as f64
}

/// Simulates `input` (validated first).
pub fn project(input: &GoalInput) -> Result<GoalProjection, InvalidProjection> {
    input.validate()?;
    let (finals, fan) = simulate(input, 0.0, true);
    let p = share_at_target(&finals, f(input.target_amount));
    let se = (p * (1.0 - p) / f64::from(input.paths)).sqrt();
    Ok(GoalProjection {
        probability: to_share(p),
        standard_error: to_share(se),
        closed_form_probability: input.flows.is_empty().then(|| to_share(closed_form(input))),
        paths: input.paths,
        seed: input.seed,
        months: input.months,
        fan,
    })
}

/// The smallest extra monthly contribution (in minor units of the currency, added every
/// month on top of the plans) that lifts the probability to `level`, found by bisection on
/// the same random draws; `None` when even a contribution of the whole target every month
/// does not reach it.
pub fn needed_contribution(
    input: &GoalInput,
    level: Decimal,
) -> Result<Option<Decimal>, InvalidProjection> {
    input.validate()?;
    if level <= Decimal::ZERO || level >= Decimal::ONE {
        return Err(InvalidProjection {
            field: "target_probability".into(),
            message: "must be above 0 and below 1".into(),
        });
    }
    let target = f(input.target_amount);
    let want = f(level);
    let reaches = |c: f64| share_at_target(&simulate(input, c, false).0, target) >= want;
    let unit = 10f64.powi(-i32::try_from(input.scale).unwrap_or(0));
    if reaches(0.0) {
        return Ok(Some(to_money(0.0, input.scale)));
    }
    let (mut lo, mut hi) = (0.0_f64, target);
    if !reaches(hi) {
        return Ok(None);
    }
    // Invariant: lo does not reach, hi does; stop at one minor unit apart.
    while hi - lo > unit {
        let mid = ((lo + hi) / 2.0 / unit).floor() * unit;
        if mid <= lo {
            break;
        }
        if reaches(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(Some(to_money(hi, input.scale)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn input() -> GoalInput {
        GoalInput {
            current_value: d("1000000"),
            target_amount: d("1300000"),
            months: 60,
            expected_return_annual: d("0.05"),
            volatility_annual: d("0.15"),
            fee_rate_annual: d("0.0121"),
            flows: vec![],
            paths: MIN_PATHS,
            seed: 42,
            scale: 0,
        }
    }

    #[test]
    fn the_normal_distribution_function_matches_its_table() {
        for (x, want) in [
            (0.0, 0.5),
            (1.0, 0.841_344_7),
            (-1.96, 0.024_997_9),
            (2.5, 0.993_790_3),
        ] {
            assert!((normal_cdf(x) - want).abs() < 1e-6, "Φ({x})");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_answer() {
        let a = project(&input()).unwrap();
        let b = project(&input()).unwrap();
        assert_eq!(a, b);
        let mut other = input();
        other.seed = 43;
        let c = project(&other).unwrap();
        assert_ne!(a.fan, c.fan);
        assert_eq!(a.fan.len(), 61);
        assert_eq!(a.fan[0].p50, d("1000000"));
        let last = a.fan.last().unwrap();
        assert!(last.p10 < last.p25 && last.p25 < last.p50 && last.p50 < last.p75);
        assert!(last.p75 < last.p90);
    }

    #[test]
    fn monte_carlo_agrees_with_the_closed_form() {
        for (target, months, sigma) in [
            ("1300000", 60, "0.15"),
            ("1000000", 12, "0.05"),
            ("2000000", 240, "0.20"),
        ] {
            let mut i = input();
            i.target_amount = d(target);
            i.months = months;
            i.volatility_annual = d(sigma);
            i.paths = 40_000;
            let r = project(&i).unwrap();
            let cf = closed_form(&i);
            let mc = f(r.probability);
            let se = (cf * (1.0 - cf) / 40_000.0).sqrt();
            assert!(
                (mc - cf).abs() <= 4.0 * se + 1e-4,
                "target {target}, {months} months: MC {mc} vs closed form {cf} (se {se})"
            );
            assert_eq!(r.closed_form_probability, Some(to_share(cf)));
        }
    }

    #[test]
    fn without_risk_the_answer_is_certain_arithmetic() {
        // σ = 0, μ = 0, no fee: the value is exactly 1,000,000 + 12 × 10,000 after a year.
        let mut i = input();
        i.volatility_annual = Decimal::ZERO;
        i.expected_return_annual = Decimal::ZERO;
        i.fee_rate_annual = Decimal::ZERO;
        i.months = 12;
        i.flows = vec![PlannedFlow {
            first_month: 1,
            every_months: 1,
            last_month: None,
            kind: FlowKind::Contribution(d("10000")),
        }];
        i.target_amount = d("1120000");
        let r = project(&i).unwrap();
        assert_eq!(r.fan[12].p50, d("1120000"));
        assert_eq!(r.probability, d("1.0000"));
        i.target_amount = d("1120001");
        assert_eq!(project(&i).unwrap().probability, d("0.0000"));
        // A quarterly 4 % withdrawal from month 3: 1,000,000 × 0.96^4 = 849,346.56.
        i.flows = vec![PlannedFlow {
            first_month: 3,
            every_months: 3,
            last_month: None,
            kind: FlowKind::WithdrawalFraction(d("0.04")),
        }];
        assert_eq!(project(&i).unwrap().fan[12].p50, d("849347"));
    }

    #[test]
    fn the_needed_contribution_reaches_the_level() {
        let i = input();
        let base = project(&i).unwrap().probability;
        let level = d("0.75");
        assert!(base < level);
        let c = needed_contribution(&i, level).unwrap().unwrap();
        assert!(c > Decimal::ZERO);
        let with = |amount: Decimal| {
            let mut j = i.clone();
            j.flows.push(PlannedFlow {
                first_month: 1,
                every_months: 1,
                last_month: None,
                kind: FlowKind::Contribution(amount),
            });
            f(project(&j).unwrap().probability)
        };
        assert!(with(c) >= 0.75, "{c} reaches");
        assert!(with(c - Decimal::ONE) < 0.75, "{c} − 1 does not");
        // Already likely enough: nothing is needed.
        assert_eq!(
            needed_contribution(&i, d("0.01")).unwrap(),
            Some(Decimal::ZERO)
        );
    }

    #[test]
    fn bad_inputs_are_named() {
        let mut i = input();
        i.paths = 9_999;
        assert_eq!(project(&i).unwrap_err().field, "paths");
        let mut i = input();
        i.months = 0;
        assert_eq!(project(&i).unwrap_err().field, "target_date");
        assert_eq!(
            needed_contribution(&input(), d("1")).unwrap_err().field,
            "target_probability"
        );
    }
}
