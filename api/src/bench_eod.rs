//! `wrapd bench eod --wraps N`: end of day over a synthetic book of N wraps, on SQLite or
//! PostgreSQL, timed per day.
//!
//! **The book** (built before anything is timed, on a scratch database unless
//! `--database-url` names one; see [`crate::bench`] for the backend handling): a platform,
//! [`DISTRIBUTORS`] distributors and [`MANAGERS`] managers; [`INSTRUMENTS`] JPY investment
//! trusts (10,000-unit quote); [`STRATEGIES`] strategies of 4–8 instruments each (2 % cash,
//! the rest in whole-percent weights), every one offered to every distributor through an
//! accepted agreement (1.1 % a year, monthly billing, 10 % tax, a 40/40/20 split); customers
//! with 1–4 wraps each, N wraps in all, every wrap holding cash and units of each instrument
//! of its strategy; a monthly contribution plan on half the wraps (day of month spread over
//! 1–28); a goal on every second wrap (a multiple of its opening cash, 3–25 years out);
//! a price for every instrument on the opening date and each day run, moving up to ±2 % a
//! day.
//!
//! The book is built by [`crate::book`] (the same builder as `wrapd demo`) with [`shape`],
//! before anything is timed. PostgreSQL is then `ANALYZE`d (see
//! docs/BENCHMARKS.md, "Statistics").
//!
//! **The days**, run with the same [`wraps::eod::run`] as `wrapd eod`, so whatever steps
//! [`wraps::eod::STEPS`] holds are timed: the ordinary day is [`ORDINARY`] (a Tuesday whose
//! day of month 28 has plans due), the month-end day [`MONTH_END`] (a Thursday, also a
//! quarter end); the day between them is run too (dates run with no gaps) and reported as
//! ordinary. Each day prints one JSON line on stdout: `{"wraps","backend","day_kind","date",
//! "seconds","peak_rss_mib","steps_ms"}`. `peak_rss_mib` is the process's high-water mark
//! during that day: the mark is reset before each day (Linux `clear_refs`), so the book's
//! setup does not count; where the reset is refused it is the mark since the process started.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::NaiveDate;
use ledger::Ledger;
use migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};
use serde_json::json;
use uuid::Uuid;

use crate::bench::{Target, peak_rss_kib};
use crate::book::{InstrumentSpec, Partner, Shape, StrategySpec};
use crate::cli::{DayKind, EodBenchArgs};
use crate::error::Error;
use crate::logging::redact_url;
use wraps::eod::{Actor, Quiet, RunGuard, RunLock};

/// Distributors in the book.
pub const DISTRIBUTORS: usize = 5;
/// Managers in the book.
pub const MANAGERS: usize = 4;
/// Strategies, spread over the managers.
pub const STRATEGIES: usize = 20;
/// Instruments the strategies choose from.
pub const INSTRUMENTS: usize = 40;
/// Most wraps a run may ask for.
pub const MAX_WRAPS: u64 = 10_000_000;

/// The opening balances' date: the day before the first day run.
pub const OPENING: NaiveDate = date(2027, 9, 27);
/// The ordinary day: a Tuesday, day of month 28 (plans due).
pub const ORDINARY: NaiveDate = date(2027, 9, 28);
/// The month-end day: a Thursday, end of September and of the quarter.
pub const MONTH_END: NaiveDate = date(2027, 9, 30);

const fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(y, m, d) {
        Some(d) => d,
        None => NaiveDate::MIN,
    }
}

/// One printed result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EodBenchResult {
    pub wraps: u64,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// `ordinary` or `month_end`.
    pub day_kind: &'static str,
    pub date: NaiveDate,
    /// Wall time of the day's end of day.
    pub seconds: f64,
    /// Peak resident set size during the day, MiB (`None` off Linux).
    pub peak_rss_mib: Option<f64>,
    /// Each step's own time, ms.
    pub steps_ms: BTreeMap<String, i64>,
}

/// `wrapd bench eod`.
pub async fn run(args: &EodBenchArgs, database_url: Option<&str>) -> Result<(), Error> {
    if args.wraps == 0 || args.wraps > MAX_WRAPS {
        return Err(Error::Usage(format!(
            "--wraps must be from 1 to {MAX_WRAPS}"
        )));
    }
    if args.days.is_empty() {
        return Err(Error::Usage("--days names no day".to_owned()));
    }
    let target = Target::resolve(args.backend, database_url).await?;
    let url = target.url.clone();
    target.run(run_on(args, &url)).await
}

/// The dates to run, in order, with the kind each is reported as.
fn dates(kinds: &[DayKind]) -> Vec<(NaiveDate, &'static str)> {
    let ordinary = kinds.contains(&DayKind::Ordinary);
    let month_end = kinds.contains(&DayKind::MonthEnd);
    let first = if ordinary { ORDINARY } else { MONTH_END };
    let last = if month_end { MONTH_END } else { ORDINARY };
    first
        .iter_days()
        .take_while(|d| *d <= last)
        .map(|d| {
            (
                d,
                if d == MONTH_END {
                    "month_end"
                } else {
                    "ordinary"
                },
            )
        })
        .collect()
}

async fn run_on(args: &EodBenchArgs, url: &str) -> Result<(), Error> {
    tracing::info!(database = %redact_url(url), wraps = args.wraps, "bench eod: preparing");
    let db = crate::db::connect(url).await?;
    Migrator::up(&db, None).await?;
    let ledger = Ledger::new(db.clone());
    let started = Instant::now();
    let days = dates(&args.days);
    let platform = build_book(&db, &ledger, args.wraps, args.seed, &days).await?;
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute_unprepared("ANALYZE").await?;
    }
    tracing::info!(
        wraps = args.wraps,
        seconds = started.elapsed().as_secs(),
        "bench eod: book ready"
    );
    let actor = Actor {
        tenant_id: platform,
        client_id: "wrapd-bench".to_owned(),
        request_id: format!("bench:{}", Uuid::now_v7()),
    };
    let lock = RunLock::new();
    // A benchmark simulates its days (some after today): a simulated clock from the first.
    lock.set_clock(wraps::clock::Clock::Simulated {
        start: days.first().map_or(ORDINARY, |(d, _)| *d),
    });
    let guard = RunGuard::acquire(&lock, &db)
        .await
        .map_err(|e| Error::Other(e.to_string()))?;
    for (day, kind) in days {
        reset_peak_rss();
        let clock = Instant::now();
        let outcomes = wraps::eod::run(&db, &ledger, day, day, &actor, &guard, &Quiet)
            .await
            .map_err(|e| Error::Other(format!("end of day {day}: {e}")))?;
        let result = EodBenchResult::new(
            args,
            kind,
            day,
            clock.elapsed().as_secs_f64(),
            outcomes
                .iter()
                .flat_map(|o| o.steps.iter())
                .map(|s| (s.step.clone(), s.elapsed_ms))
                .collect(),
        );
        println!(
            "{}",
            serde_json::to_string(&result).map_err(|e| Error::Other(e.to_string()))?
        );
    }
    guard.release().await;
    drop(ledger);
    let _ = db.close().await;
    Ok(())
}

impl EodBenchResult {
    /// Statistics, not money: floats are fine here.
    #[allow(clippy::float_arithmetic)]
    fn new(
        args: &EodBenchArgs,
        day_kind: &'static str,
        date: NaiveDate,
        seconds: f64,
        steps_ms: BTreeMap<String, i64>,
    ) -> Self {
        Self {
            wraps: args.wraps,
            backend: args.backend.as_str(),
            day_kind,
            date,
            seconds: (seconds * 1_000.0).round() / 1_000.0,
            peak_rss_mib: peak_rss_kib().map(|kib| (kib as f64 / 1_024.0 * 10.0).round() / 10.0),
            steps_ms,
        }
    }
}

/// Resets this process's peak RSS to its current RSS (Linux: writing 5 to `clear_refs`), so
/// the next reading covers what follows only. Best effort.
fn reset_peak_rss() {
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "5") {
        tracing::debug!(error = %e, "bench eod: peak RSS not reset");
    }
}

// ---------------------------------------------------------------------------------------
// The book

fn instrument_code(i: usize) -> String {
    format!("JP90BENCH{i:03}")
}

/// The bench's book (see the module doc), for the days in `days`.
pub fn shape(days: &[(NaiveDate, &'static str)]) -> Shape {
    let terms = json!({
        "effective_date": "2020-01-01",
        "management_fee": { "kind": "flat", "rate_annual": "0.011" },
        "consumption_tax_rate": "0.10",
        "split": { "channel": "0.4", "manager": "0.4", "platform": "0.2" },
        "billing_period": "monthly",
    });
    let partner = |name: String, terms: Option<serde_json::Value>| Partner {
        display_name: name.clone(),
        name,
        terms,
        offers: Vec::new(),
        platform_fee: None,
    };
    Shape {
        label: "bench",
        platform_name: "bench-platform".to_owned(),
        distributors: (0..DISTRIBUTORS)
            .map(|i| partner(format!("bench-distributor-{i}"), Some(terms.clone())))
            .collect(),
        managers: (0..MANAGERS)
            .map(|i| partner(format!("bench-manager-{i}"), None))
            .collect(),
        strategies: (0..STRATEGIES)
            .map(|s| StrategySpec {
                code: format!("BENCH{s:02}"),
                name: format!("Bench strategy {s}"),
                manager: s % MANAGERS,
                risk_level: 1 + (s % 5) as u8,
                expected_return_annual: "0.04",
                volatility_annual: "0.10",
                instruments: (0..4 + s % 5)
                    .map(|j| (s * 7 + j * 3) % INSTRUMENTS)
                    .collect(),
                cash_percent: 2,
            })
            .collect(),
        instruments: (0..INSTRUMENTS)
            .map(|i| InstrumentSpec {
                code: instrument_code(i),
                name: format!("Bench fund {i}"),
                price: 8_000 + 250 * i as i64,
                max_move_bp: 200,
                drift_bp: 0,
            })
            .collect(),
        opening: OPENING,
        price_days: days.iter().map(|(d, _)| *d).collect(),
        wraps_hold_units: true,
        wrap_cash_thousands: (1, 100),
        customer_cash_thousands: (50, 450),
        goal_every: 2,
    }
}

/// Builds the whole book; returns the platform tenant.
async fn build_book(
    db: &DatabaseConnection,
    ledger: &Ledger,
    wraps: u64,
    seed: u64,
    days: &[(NaiveDate, &'static str)],
) -> Result<Uuid, Error> {
    let clock = Instant::now();
    let book = crate::book::build(db, ledger, &shape(days), wraps, seed, |done| {
        if done % 100_000 < 5_000 {
            tracing::info!(
                wraps = done,
                ms = clock.elapsed().as_millis() as u64,
                "bench eod: wraps written"
            );
        }
    })
    .await?;
    Ok(book.platform)
}

#[cfg(test)]
mod tests {
    use chrono::Datelike;

    use super::*;

    #[test]
    fn the_days_are_a_tuesday_with_plans_and_a_month_end() {
        assert_eq!(ORDINARY.weekday(), chrono::Weekday::Tue);
        assert!(ORDINARY.day() <= 28);
        assert_eq!(MONTH_END.weekday(), chrono::Weekday::Thu);
        assert_eq!(MONTH_END.succ_opt().unwrap().day(), 1);
        assert_eq!(OPENING.succ_opt(), Some(ORDINARY));
        let both = dates(&[DayKind::Ordinary, DayKind::MonthEnd]);
        assert_eq!(
            both,
            vec![
                (ORDINARY, "ordinary"),
                (date(2027, 9, 29), "ordinary"),
                (MONTH_END, "month_end")
            ]
        );
        assert_eq!(dates(&[DayKind::MonthEnd]), vec![(MONTH_END, "month_end")]);
        assert_eq!(dates(&[DayKind::Ordinary]), vec![(ORDINARY, "ordinary")]);
    }
}
