//! `wrapd bench goals`: the goal simulation of end of day alone, without a database: what
//! one wrap costs, and what drawing a strategy's matrix costs.
//!
//! One matrix of growth factors for [`goal::MIN_PATHS`] paths and `--months` months
//! (μ 5 %, σ 15 %), drawn on one thread and then on `--threads`; then `--wraps` wraps run over
//! it with [`goal::estimate`] (end of day's call), first on one thread, then shared among
//! `--threads` as the `goals` step shares them ([`wraps::eod::goals::estimate_all`]). Every
//! other wrap has a monthly contribution plan; values and targets vary. Prints one JSON line:
//! `{"paths","months","wraps","threads","draw_ms_1_thread","draw_ms","simulate_ms_1_thread",
//! "ms_per_wrap_1_thread","simulate_ms","ms_per_wrap","mean_probability"}`.

use std::time::Instant;

use rust_decimal::Decimal;
use serde_json::json;
use wraps::projections::goal::{self, FlowKind, GoalInput, Growth, PlannedFlow};

use crate::cli::GoalsBenchArgs;
use crate::error::Error;

/// Most wraps one run may ask for.
pub const MAX_WRAPS: u64 = 1_000_000;

/// Timings, not money: floats are fine here.
#[allow(clippy::float_arithmetic)]
fn ms(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

/// The `i`-th synthetic wrap.
fn input(i: u64, months: u32) -> GoalInput {
    let flows = if i.is_multiple_of(2) {
        vec![PlannedFlow {
            first_month: 1,
            every_months: 1,
            last_month: None,
            kind: FlowKind::Contribution(Decimal::from(30_000)),
        }]
    } else {
        Vec::new()
    };
    GoalInput {
        current_value: Decimal::from(200_000 + (i * 7_919 % 100) * 10_000),
        target_amount: Decimal::from(1_000_000 + (i * 104_729 % 20) * 1_000_000),
        months,
        expected_return_annual: Decimal::new(5, 2),
        volatility_annual: Decimal::new(15, 2),
        fee_rate_annual: Decimal::new(121, 4),
        flows,
        paths: goal::MIN_PATHS,
        seed: 1,
        scale: 0,
    }
}

/// `wrapd bench goals`. Timings and a checksum of probabilities, not money: floats are fine.
#[allow(clippy::float_arithmetic)]
pub fn run(args: &GoalsBenchArgs) -> Result<(), Error> {
    if args.wraps == 0 || args.wraps > MAX_WRAPS {
        return Err(Error::Usage(format!(
            "--wraps must be from 1 to {MAX_WRAPS}"
        )));
    }
    if !(1..=goal::MAX_MONTHS).contains(&args.months) {
        return Err(Error::Usage(format!(
            "--months must be from 1 to {}",
            goal::MAX_MONTHS
        )));
    }
    let threads = args
        .threads
        .unwrap_or_else(wraps::eod::goals::threads)
        .clamp(1, 256);
    let inputs: Vec<GoalInput> = (0..args.wraps).map(|i| input(i, args.months)).collect();
    let first = &inputs[0];
    let draw = |threads: usize| {
        Growth::new_parallel(
            first.expected_return_annual,
            first.volatility_annual,
            first.seed,
            first.paths,
            args.months,
            threads,
        )
    };
    let t = Instant::now();
    drop(draw(1));
    let draw_ms_1 = ms(t);
    let t = Instant::now();
    let growth = draw(threads);
    let draw_ms = ms(t);

    let t = Instant::now();
    let mut sum = 0.0_f64;
    for i in &inputs {
        let e = goal::estimate(i, &growth).map_err(|e| Error::Other(e.message))?;
        sum += f64::try_from(e.probability).unwrap_or(0.0);
    }
    let simulate_ms_1 = ms(t);
    let refs: Vec<&GoalInput> = inputs.iter().collect();
    let t = Instant::now();
    let results = wraps::eod::goals::estimate_all(&refs, &growth, threads);
    let simulate_ms = ms(t);
    let mut sum_n = 0.0_f64;
    for r in results {
        let e = r.map_err(|e| Error::Other(e.message))?;
        sum_n += f64::try_from(e.probability).unwrap_or(0.0);
    }
    if sum_n.to_bits() != sum.to_bits() {
        return Err(Error::Other(
            "bench goals: the threaded run gave other figures".into(),
        ));
    }
    let n = args.wraps as f64;
    println!(
        "{}",
        json!({
            "paths": goal::MIN_PATHS,
            "months": args.months,
            "wraps": args.wraps,
            "threads": threads,
            "draw_ms_1_thread": draw_ms_1,
            "draw_ms": draw_ms,
            "simulate_ms_1_thread": simulate_ms_1,
            "ms_per_wrap_1_thread": (simulate_ms_1 / n * 1e3).round() / 1e3,
            "simulate_ms": simulate_ms,
            "ms_per_wrap": (simulate_ms / n * 1e3).round() / 1e3,
            "mean_probability": (sum / n * 1e4).round() / 1e4,
        })
    );
    Ok(())
}
