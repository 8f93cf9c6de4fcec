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
//! a fixed order (month by month, path by path; Box–Muller, two normals per pair of uniforms).
//! Where there are no flows the closed form is
//! `P = Φ((ln(V₀/K) + n·(m + ln(1 − f/12))) / (s·√n))` over n months, and both are reported.
//!
//! **Common random numbers.** The monthly growth factors depend only on (μ, σ, seed, paths),
//! not on the wrap: [`Growth`] draws them once, month-major, and any number of wraps (or the
//! bisection of [`needed_contribution`]) then run over the same matrix. Row k of a matrix
//! built for N months is the same whatever N is (the draws are read in month order), so one
//! matrix built for the longest horizon of a group serves every shorter one, and a wrap's
//! answer from a shared matrix is bit-for-bit the answer [`project`] gives it alone. The
//! default seed is one per strategy ([`strategy_seed`]), so every wrap of a strategy shares
//! its draws: end of day builds one matrix per strategy (ledger/wraps/src/eod/goals.rs).
//!
//! The simulation runs in `f64`: it is a statistical estimate, never a balance, and nothing it
//! produces is posted; its money outputs (percentile values, the contribution needed) are
//! rounded to the currency's minor unit as decimals.
//!
//! Invariants, tried by the tests below:
//! * the same inputs and seed give the same result, a different seed a (slightly) different
//!   one: `the_same_seed_gives_the_same_answer`;
//! * a shared matrix built for a longer horizon gives exactly the answer of the wrap's own
//!   simulation: `a_shared_matrix_gives_the_same_answer`; so do wraps run together in a
//!   batch over it ([`estimate_batch`]): `a_batch_gives_each_wrap_its_own_answer`;
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
use uuid::Uuid;

use crate::projections::fee_impact::InvalidProjection;

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
    /// The generator seed, as a decimal string: a seed uses all 64 bits (the default is one
    /// per strategy), above OpenAPI's int64 and the integers JSON readers hold exactly.
    #[schema(value_type = String, pattern = "^[0-9]{1,20}$", example = "14323723483916523391")]
    #[serde(serialize_with = "seed_as_string")]
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

/// Monthly drift `m` and volatility `s` of a strategy's annual μ and σ.
fn drift_and_volatility(expected_return_annual: Decimal, volatility_annual: Decimal) -> (f64, f64) {
    let mu = f(expected_return_annual);
    let sigma = f(volatility_annual);
    let m = ((1.0 + mu).ln() - sigma * sigma / 2.0) / 12.0;
    let s = sigma / 12f64.sqrt();
    (m, s)
}

/// Monthly drift `m`, volatility `s` and fee factor of the model.
fn monthly(input: &GoalInput) -> (f64, f64, f64) {
    let (m, s) = drift_and_volatility(input.expected_return_annual, input.volatility_annual);
    let keep = 1.0 - f(input.fee_rate_annual) / 12.0;
    (m, s, keep)
}

/// Serializes a seed as its decimal digits: a `u64` may exceed int64 and the 2^53 that JSON
/// readers such as JavaScript's hold exactly, so the API never sends it as a number.
pub fn seed_as_string<S: serde::Serializer>(seed: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(seed)
}

/// The default seed of the wraps of a strategy: the two halves of its id folded together, so
/// every wrap of the strategy draws the same numbers (module doc) and two strategies almost
/// surely do not.
pub fn strategy_seed(strategy_id: Uuid) -> u64 {
    let (hi, lo) = strategy_id.as_u64_pair();
    hi ^ lo
}

/// The monthly growth factors `exp(m + s·Z)` of one (μ, σ, seed, paths), month-major: the
/// common random numbers every wrap of a strategy runs over (module doc).
#[derive(Debug, Clone)]
pub struct Growth {
    drift: f64,
    volatility: f64,
    seed: u64,
    paths: usize,
    months: u32,
    /// `months × paths` factors; month k (1-based) is `[(k − 1)·paths, k·paths)`.
    factors: Vec<f64>,
}

/// Fills `out` with the factors `exp(m + s·Z)` of normals `first..first + out.len()` of the
/// stream of `seed` (`first` even: the first normal of a pair).
fn draw_factors(out: &mut [f64], first: usize, seed: u64, m: f64, s: f64) {
    debug_assert!(first.is_multiple_of(2));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Pair k reads 32-bit words 4k..4k + 4.
    rng.set_word_pos(first as u128 * 2);
    let mut pairs = out.chunks_mut(2);
    for pair in &mut pairs {
        // Box–Muller: two uniforms give two independent normals, used in turn.
        let u1: f64 = 1.0 - rng.r#gen::<f64>();
        let u2: f64 = rng.r#gen::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let a = std::f64::consts::TAU * u2;
        pair[0] = (m + s * (r * a.cos())).exp();
        if let Some(second) = pair.get_mut(1) {
            *second = (m + s * (r * a.sin())).exp();
        }
    }
}

impl Growth {
    /// Draws the factors of `months` months (at most [`MAX_MONTHS`]) of `paths` paths, in
    /// the generator's fixed order: month by month, path by path.
    pub fn new(
        expected_return_annual: Decimal,
        volatility_annual: Decimal,
        seed: u64,
        paths: u32,
        months: u32,
    ) -> Self {
        Self::new_parallel(
            expected_return_annual,
            volatility_annual,
            seed,
            paths,
            months,
            1,
        )
    }

    /// As [`Growth::new`], the matrix cut into `threads` slices drawn at once. Each slice
    /// starts at a pair of normals and moves the generator to that pair's place in the
    /// stream (ChaCha is seekable: a pair reads two 64-bit words, four 32-bit ones), so the
    /// factors are exactly those of one thread: `a_matrix_drawn_in_slices_is_the_same`.
    pub fn new_parallel(
        expected_return_annual: Decimal,
        volatility_annual: Decimal,
        seed: u64,
        paths: u32,
        months: u32,
        threads: usize,
    ) -> Self {
        let (m, s) = drift_and_volatility(expected_return_annual, volatility_annual);
        let paths = paths as usize;
        let months = months.min(MAX_MONTHS);
        let count = paths * months as usize;
        let mut factors = vec![0.0; count];
        // Even slice lengths: every slice starts at the first normal of a pair.
        let slice = count.div_ceil(threads.max(1)).next_multiple_of(2).max(2);
        std::thread::scope(|scope| {
            for (k, part) in factors.chunks_mut(slice).enumerate() {
                scope.spawn(move || draw_factors(part, k * slice, seed, m, s));
            }
        });
        Self {
            drift: m,
            volatility: s,
            seed,
            paths,
            months,
            factors,
        }
    }

    /// The matrix `input` needs on its own.
    pub fn for_input(input: &GoalInput) -> Self {
        Self::new(
            input.expected_return_annual,
            input.volatility_annual,
            input.seed,
            input.paths,
            input.months,
        )
    }

    /// Months drawn.
    pub fn months(&self) -> u32 {
        self.months
    }

    /// Whether `input` may run over this matrix: the same model, seed and paths, and no
    /// more months than were drawn.
    pub fn fits(&self, input: &GoalInput) -> bool {
        let (m, s) = drift_and_volatility(input.expected_return_annual, input.volatility_annual);
        m.to_bits() == self.drift.to_bits()
            && s.to_bits() == self.volatility.to_bits()
            && input.seed == self.seed
            && input.paths as usize == self.paths
            && input.months <= self.months
    }

    /// The factors of `month` (1-based), one per path.
    fn row(&self, month: u32) -> &[f64] {
        let start = (month as usize - 1) * self.paths;
        &self.factors[start..start + self.paths]
    }
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

/// A flow with its amount (or fraction) as the simulation's `f64`.
type Flow<'a> = (&'a PlannedFlow, f64);

fn flows_of(input: &GoalInput) -> Vec<Flow<'_>> {
    input
        .flows
        .iter()
        .map(|fl| {
            let v = match &fl.kind {
                FlowKind::Contribution(a) | FlowKind::Withdrawal(a) => f(*a),
                FlowKind::WithdrawalFraction(x) => f(*x),
            };
            (fl, v)
        })
        .collect()
}

/// One month of `values` (paths, or a slice of them) over `row`, the month's growth factors
/// of the same paths: growth, fee, the extra contribution, the flows `due`, floored at 0.
/// The only place the arithmetic is written, so every way of running the paths (alone, in
/// slices, in batches of wraps) gives the same values bit for bit.
fn step(values: &mut [f64], row: &[f64], keep: f64, extra_monthly: f64, due: &[&Flow<'_>]) {
    if due.is_empty() {
        // Most months of most wraps: one pass.
        for (v, g) in values.iter_mut().zip(row) {
            let mut x = *v * g * keep;
            x += extra_monthly;
            *v = x.max(0.0);
        }
        return;
    }
    // The same operations per path in the same order, one pass per operation: every pass is
    // a loop the compiler can vectorise (a loop over the flows inside the loop over the
    // paths is not), and the slice stays in cache between passes.
    for (v, g) in values.iter_mut().zip(row) {
        let mut x = *v * g * keep;
        x += extra_monthly;
        *v = x;
    }
    for (fl, amount) in due {
        match fl.kind {
            FlowKind::Contribution(_) => values.iter_mut().for_each(|x| *x += amount),
            FlowKind::Withdrawal(_) => values.iter_mut().for_each(|x| *x -= amount.min(*x)),
            FlowKind::WithdrawalFraction(_) => {
                let share = amount.clamp(0.0, 1.0);
                values.iter_mut().for_each(|x| *x -= *x * share);
            }
        }
    }
    for v in values.iter_mut() {
        *v = v.max(0.0);
    }
}

/// Runs the simulation over `growth` (which [`Growth::fits`] `input`): the final values and,
/// when `fan` is asked, the percentile points.
fn simulate(
    input: &GoalInput,
    growth: &Growth,
    extra_monthly: f64,
    fan: bool,
) -> (Vec<f64>, Vec<FanPoint>) {
    debug_assert!(growth.fits(input), "the matrix was drawn for other inputs");
    let (_, _, keep) = monthly(input);
    let paths = input.paths as usize;
    let mut values = vec![f(input.current_value); paths];
    let mut points = Vec::new();
    let mut scratch = Vec::new();
    if fan {
        points.push(fan_point(0, &values, &mut scratch, input.scale));
    }
    let flows = flows_of(input);
    for month in 1..=input.months {
        let due: Vec<&Flow<'_>> = flows.iter().filter(|(fl, _)| fl.happens(month)).collect();
        step(&mut values, growth.row(month), keep, extra_monthly, &due);
        if fan {
            points.push(fan_point(month, &values, &mut scratch, input.scale));
        }
    }
    (values, points)
}

/// Paths per slice in [`simulate_batch`]: a slice of a month's factors (8 KiB) stays in the
/// first-level cache while every wrap of the batch takes its step over it.
const SLICE_PATHS: usize = 1024;

/// The final values of several inputs over one `growth` (each of which it [`Growth::fits`]),
/// as [`simulate`] gives them one by one, bit for bit (the same [`step`] on the same paths in
/// the same month order; only the order in which wraps and slices of paths take their turn
/// differs). Why: a matrix for 10,000 paths and a long horizon is tens of MiB, so a wrap
/// alone streams it from memory and waits on it; here the paths go in slices, month by
/// month, and every wrap of the batch steps over the slice while it is in cache, so the
/// matrix is read once per batch instead of once per wrap.
fn simulate_batch(inputs: &[&GoalInput], growth: &Growth) -> Vec<Vec<f64>> {
    let prepared: Vec<(f64, u32, Vec<Flow<'_>>)> = inputs
        .iter()
        .map(|i| {
            debug_assert!(growth.fits(i), "the matrix was drawn for other inputs");
            (monthly(i).2, i.months, flows_of(i))
        })
        .collect();
    let mut values: Vec<Vec<f64>> = inputs
        .iter()
        .map(|i| vec![f(i.current_value); growth.paths])
        .collect();
    let longest = inputs.iter().map(|i| i.months).max().unwrap_or(0);
    let mut first = 0;
    while first < growth.paths {
        let end = (first + SLICE_PATHS).min(growth.paths);
        for month in 1..=longest {
            let row = &growth.row(month)[first..end];
            for ((keep, months, flows), v) in prepared.iter().zip(values.iter_mut()) {
                if month > *months {
                    continue;
                }
                let due: Vec<&Flow<'_>> =
                    flows.iter().filter(|(fl, _)| fl.happens(month)).collect();
                step(&mut v[first..end], row, *keep, 0.0, &due);
            }
        }
        first = end;
    }
    values
}

fn fan_point(month: u32, values: &[f64], scratch: &mut Vec<f64>, scale: u32) -> FanPoint {
    scratch.clear();
    scratch.extend_from_slice(values);
    FanPoint {
        month,
        p10: percentile(scratch, 10, scale),
        p25: percentile(scratch, 25, scale),
        p50: percentile(scratch, 50, scale),
        p75: percentile(scratch, 75, scale),
        p90: percentile(scratch, 90, scale),
    }
}

fn share_at_target(finals: &[f64], target: f64) -> f64 {
    let hits = finals.iter().filter(|v| **v >= target).count();
    hits as f64 / finals.len().max(1) as f64
}

/// The value below which `q` % of `values` lie (the fan chart's rule), as money.
fn percentile(values: &mut [f64], q: usize, scale: u32) -> Decimal {
    let n = values.len();
    if n == 0 {
        return to_money(0.0, scale);
    }
    let k = ((n - 1) * q) / 100;
    let (_, v, _) = values.select_nth_unstable_by(k, f64::total_cmp);
    to_money(*v, scale)
}

/// End of day's figures of one wrap: no fan chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Estimate {
    /// Share of paths reaching the target (4 decimals).
    pub probability: Decimal,
    /// √(p(1−p)/paths) (4 decimals).
    pub standard_error: Decimal,
    /// The median value at the target date, in the currency (its minor unit).
    pub median_value: Decimal,
}

/// The probability, its standard error and the median final value of `input` over the shared
/// matrix `growth` (validated first; the matrix must [`Growth::fits`] the input).
pub fn estimate(input: &GoalInput, growth: &Growth) -> Result<Estimate, InvalidProjection> {
    estimate_batch(&[input], growth)
        .pop()
        .unwrap_or_else(|| Err(mismatch()))
}

fn mismatch() -> InvalidProjection {
    InvalidProjection {
        field: "seed".into(),
        message: "the shared draws were made for another model, seed, paths or horizon".into(),
    }
}

/// [`estimate`] of each of `inputs` over the one matrix `growth`, in their order: the same
/// figures, computed together ([`simulate_batch`]) so that the matrix is read once for all.
/// Batches of about [`BATCH`] inputs make the most of it.
pub fn estimate_batch(
    inputs: &[&GoalInput],
    growth: &Growth,
) -> Vec<Result<Estimate, InvalidProjection>> {
    let checked: Vec<Result<(), InvalidProjection>> = inputs
        .iter()
        .map(|i| {
            i.validate()?;
            if growth.fits(i) {
                Ok(())
            } else {
                Err(mismatch())
            }
        })
        .collect();
    let valid: Vec<&GoalInput> = inputs
        .iter()
        .zip(&checked)
        .filter(|(_, c)| c.is_ok())
        .map(|(i, _)| *i)
        .collect();
    let mut finals = simulate_batch(&valid, growth).into_iter();
    inputs
        .iter()
        .zip(checked)
        .map(|(input, c)| {
            c?;
            let mut finals = finals.next().unwrap_or_default();
            let p = share_at_target(&finals, f(input.target_amount));
            let se = (p * (1.0 - p) / f64::from(input.paths)).sqrt();
            Ok(Estimate {
                probability: to_share(p),
                standard_error: to_share(se),
                median_value: percentile(&mut finals, 50, input.scale),
            })
        })
        .collect()
}

/// Inputs per [`estimate_batch`] call worth giving: their value slices (16 × 8 KiB) and the
/// matrix's slice fit the second-level cache together.
pub const BATCH: usize = 16;

/// Simulates `input` (validated first).
pub fn project(input: &GoalInput) -> Result<GoalProjection, InvalidProjection> {
    input.validate()?;
    let growth = Growth::for_input(input);
    let (finals, fan) = simulate(input, &growth, 0.0, true);
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
    // One matrix for the whole bisection: every trial runs over the same draws.
    let growth = Growth::for_input(input);
    let reaches = |c: f64| share_at_target(&simulate(input, &growth, c, false).0, target) >= want;
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

    /// The generator as `simulate` read it before the matrix: draws inline, month by month,
    /// path by path, with the second normal of each pair carried to the next path.
    fn inline_reference(input: &GoalInput, extra_monthly: f64) -> Vec<f64> {
        let (m, s, keep) = monthly(input);
        let mut rng = ChaCha8Rng::seed_from_u64(input.seed);
        let mut values = vec![f(input.current_value); input.paths as usize];
        let mut spare: Option<f64> = None;
        for month in 1..=input.months {
            for v in &mut values {
                let z = match spare.take() {
                    Some(z) => z,
                    None => {
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
                for fl in input.flows.iter().filter(|fl| fl.happens(month)) {
                    match &fl.kind {
                        FlowKind::Contribution(a) => x += f(*a),
                        FlowKind::Withdrawal(a) => x -= f(*a).min(x),
                        FlowKind::WithdrawalFraction(q) => x -= x * f(*q).clamp(0.0, 1.0),
                    }
                }
                *v = x.max(0.0);
            }
        }
        values
    }

    #[test]
    fn the_matrix_matches_the_inline_draws() {
        // An odd number of paths, so a pair of normals straddles two months, and flows of
        // every kind: the values are bit-for-bit those of the inline generator.
        let mut i = input();
        i.paths = 10_001;
        i.months = 37;
        i.flows = vec![
            PlannedFlow {
                first_month: 1,
                every_months: 1,
                last_month: Some(30),
                kind: FlowKind::Contribution(d("20000")),
            },
            PlannedFlow {
                first_month: 3,
                every_months: 3,
                last_month: None,
                kind: FlowKind::WithdrawalFraction(d("0.02")),
            },
            PlannedFlow {
                first_month: 12,
                every_months: 12,
                last_month: None,
                kind: FlowKind::Withdrawal(d("150000")),
            },
        ];
        let growth = Growth::for_input(&i);
        for extra in [0.0, 1234.0] {
            let new = simulate(&i, &growth, extra, false).0;
            let old = inline_reference(&i, extra);
            assert!(
                new.iter()
                    .zip(&old)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "extra {extra}"
            );
        }
    }

    #[test]
    fn a_shared_matrix_gives_the_same_answer() {
        // A matrix drawn for 240 months serves a 60-month goal exactly as its own would.
        let i = input();
        let shared = Growth::new(
            i.expected_return_annual,
            i.volatility_annual,
            i.seed,
            i.paths,
            240,
        );
        assert!(shared.fits(&i));
        let e = estimate(&i, &shared).unwrap();
        let p = project(&i).unwrap();
        assert_eq!(e.probability, p.probability);
        assert_eq!(e.standard_error, p.standard_error);
        assert_eq!(e.median_value, p.fan.last().unwrap().p50);
        // Another model, seed, path count or a longer horizon does not fit.
        let mut other = i.clone();
        other.volatility_annual = d("0.16");
        assert!(!shared.fits(&other));
        assert_eq!(estimate(&other, &shared).unwrap_err().field, "seed");
        let mut longer = i.clone();
        longer.months = 241;
        assert!(!shared.fits(&longer));
        let mut seeded = i.clone();
        seeded.seed = 43;
        assert!(!shared.fits(&seeded));
    }

    #[test]
    fn a_batch_gives_each_wrap_its_own_answer() {
        // Wraps of one strategy with different horizons, values, fees and flows, run
        // together over one matrix, get exactly what each gets alone; a wrap the simulation
        // refuses, or that the matrix does not fit, gets its error and takes nothing from
        // the others.
        let base = input();
        let shared = Growth::new(
            base.expected_return_annual,
            base.volatility_annual,
            base.seed,
            base.paths,
            300,
        );
        let mut inputs = Vec::new();
        for (k, months) in [60_u32, 1, 300, 17, 120, 240].into_iter().enumerate() {
            let mut i = base.clone();
            i.months = months;
            i.current_value = Decimal::from(500_000 + 100_000 * k as i64);
            i.fee_rate_annual = Decimal::new(i64::try_from(k).unwrap() * 30, 4);
            if k % 2 == 1 {
                i.flows.push(PlannedFlow {
                    first_month: 2,
                    every_months: 1,
                    last_month: Some(40),
                    kind: FlowKind::Contribution(d("30000")),
                });
                i.flows.push(PlannedFlow {
                    first_month: 3,
                    every_months: 3,
                    last_month: None,
                    kind: FlowKind::WithdrawalFraction(d("0.01")),
                });
            }
            if k == 4 {
                i.flows.push(PlannedFlow {
                    first_month: 12,
                    every_months: 12,
                    last_month: None,
                    kind: FlowKind::Withdrawal(d("200000")),
                });
            }
            inputs.push(i);
        }
        let mut refused = base.clone();
        refused.current_value = d("-1");
        let mut too_long = base.clone();
        too_long.months = 301;
        inputs.insert(2, refused);
        inputs.push(too_long);
        let refs: Vec<&GoalInput> = inputs.iter().collect();
        let batch = estimate_batch(&refs, &shared);
        assert_eq!(batch.len(), inputs.len());
        for (i, got) in inputs.iter().zip(&batch) {
            match project(i) {
                Ok(alone) if shared.fits(i) => {
                    let got = got.as_ref().unwrap();
                    assert_eq!(got.probability, alone.probability, "{} months", i.months);
                    assert_eq!(got.standard_error, alone.standard_error);
                    assert_eq!(got.median_value, alone.fan.last().unwrap().p50);
                }
                Ok(_) => assert_eq!(got.as_ref().unwrap_err().field, "seed"),
                Err(e) => assert_eq!(got.as_ref().unwrap_err(), &e),
            }
        }
        // The answers differ between wraps, so the comparison above compares something.
        let probabilities: std::collections::BTreeSet<_> =
            batch.iter().flatten().map(|e| e.probability).collect();
        assert!(probabilities.len() >= 4, "{probabilities:?}");
    }

    #[test]
    fn a_matrix_drawn_in_slices_is_the_same() {
        let (mu, sigma) = (d("0.05"), d("0.15"));
        let one = Growth::new(mu, sigma, 9, 10_001, 13);
        for threads in [2, 3, 7] {
            let many = Growth::new_parallel(mu, sigma, 9, 10_001, 13, threads);
            assert!(
                one.factors
                    .iter()
                    .zip(&many.factors)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{threads} threads"
            );
            assert_eq!(one.factors.len(), many.factors.len());
        }
    }

    #[test]
    fn a_strategy_seeds_from_both_halves_of_its_id() {
        let id = Uuid::from_u64_pair(0x0123_4567_89ab_cdef, 0x0000_0000_0000_00ff);
        assert_eq!(strategy_seed(id), 0x0123_4567_89ab_cd10);
        assert_ne!(
            strategy_seed(Uuid::from_u64_pair(1, 2)),
            strategy_seed(Uuid::from_u64_pair(1, 3))
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
