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
//! 1–28); a goal on half the wraps, drawn independently of the plans ([`GOAL_SHARE_PERCENT`]:
//! ¥1–20 million, its target date 3–30 years after the opening date, on the first of a
//! month; from a generator of its own, so the rest of the book is what it was before goals);
//! a price for every instrument on the opening date and each day run, moving up to ±2 % a
//! day.
//!
//! Small reference data goes through the domain's own store functions (so it is exactly what
//! the API would write). The N-sized rows (customers, wraps, their ledger accounts, plans)
//! are bulk-inserted with multi-row INSERTs, a chunk of wraps per transaction. The opening
//! balances are real ledger entries through [`ledger::Ledger::post_batch`]: per chunk and
//! asset, entries of up to 999 credits to customer and wrap accounts and one debit of their
//! sum to the distributor's `omnibus:{asset}`, so the hash chain, the balances and the
//! reconciliation (customers + wraps = omnibus, per asset) hold exactly as for any other
//! entry, with a thousandth of the entries one per account would need. PostgreSQL is then
//! `ANALYZE`d (see docs/BENCHMARKS.md, "Statistics").
//!
//! **The days**, run with the same [`crate::eod::run`] as `wrapd eod`, so whatever steps
//! [`crate::eod::STEPS`] holds are timed: the ordinary day is [`ORDINARY`] (a Tuesday whose
//! day of month 28 has plans due), the month-end day [`MONTH_END`] (a Thursday, also a
//! quarter end); the day between them is run too (dates run with no gaps) and reported as
//! ordinary. Each day prints one JSON line on stdout: `{"wraps","backend","day_kind","date",
//! "seconds","peak_rss_mib","steps_ms"}`. `peak_rss_mib` is the process's high-water mark
//! during that day: the mark is reset before each day (Linux `clear_refs`), so the book's
//! setup does not count; where the reset is refused it is the mark since the process started.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{Datelike, NaiveDate, Utc};
use ledger::market::{InstrumentKind, InstrumentStatus, NewInstrument};
use ledger::store::market::PriceRow;
use ledger::{Asset, Ledger, NewEntry, NewPosting};
use migrations::{Migrator, MigratorTrait};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Value};
use serde_json::json;
use uuid::Uuid;

use crate::bench::{Target, XorShift, peak_rss_kib};
use crate::cli::{DayKind, EodBenchArgs};
use crate::eod::sql::{INSERT_ROWS, Params, exec};
use crate::eod::{Actor, Quiet, RunGuard, RunLock};
use crate::error::Error;
use crate::logging::redact_url;

/// Distributors in the book.
pub const DISTRIBUTORS: usize = 5;
/// Managers in the book.
pub const MANAGERS: usize = 4;
/// Strategies, spread over the managers.
pub const STRATEGIES: usize = 20;
/// Instruments the strategies choose from.
pub const INSTRUMENTS: usize = 40;
/// Wraps written per transaction during setup.
const CHUNK_WRAPS: usize = 5_000;
/// Entries per `post_batch` call for the opening balances (each up to 1,000 postings).
const OPENING_ENTRIES_PER_BATCH: usize = 50;
/// Credits per opening entry: with the omnibus debit, the ledger's 1,000 postings.
const CREDITS_PER_ENTRY: usize = 999;
/// Share of the wraps with a goal, percent.
pub const GOAL_SHARE_PERCENT: u64 = 50;
/// Most wraps a run may ask for.
pub const MAX_WRAPS: u64 = 10_000_000;
const CURRENCY: &str = "JPY";

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
    let result = run_on(args, &target.url).await;
    target.clean_up().await;
    result
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
    let guard = RunGuard::acquire(&lock).map_err(|e| Error::Other(e.to_string()))?;
    for (day, kind) in days {
        reset_peak_rss();
        let clock = Instant::now();
        let outcomes = crate::eod::run(&db, &ledger, day, day, &actor, &guard, &Quiet)
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
    drop(guard);
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

/// A strategy as the bench uses it.
struct Strat {
    manager: Uuid,
    id: Uuid,
    instruments: Vec<String>,
}

/// What every chunk of wraps needs to know.
struct Reference {
    strategies: Vec<Strat>,
    /// agreements[distributor][strategy]
    agreements: Vec<Vec<Uuid>>,
    distributors: Vec<Uuid>,
}

fn instrument_code(i: usize) -> String {
    format!("JP90BENCH{i:03}")
}

fn tenants_err(e: tenants::TenantsError) -> Error {
    Error::Other(format!("bench eod setup: {e}"))
}

fn market_err(e: ledger::MarketError) -> Error {
    Error::Other(format!("bench eod setup: {e}"))
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
    let mut rng = XorShift::from_seed(seed);
    let (platform, reference) = reference_data(db, ledger, &mut rng, days).await?;
    tracing::info!(
        ms = clock.elapsed().as_millis() as u64,
        "bench eod: reference data"
    );
    // Wraps per distributor: an even share, the remainder to the first ones.
    let per = wraps / DISTRIBUTORS as u64;
    let extra = wraps % DISTRIBUTORS as u64;
    let mut customer_no = 0_u64;
    let mut done = 0_u64;
    for (d, tenant) in reference.distributors.iter().enumerate() {
        let mut left = per + u64::from((d as u64) < extra);
        while left > 0 {
            let n = left.min(CHUNK_WRAPS as u64) as usize;
            write_chunk(
                db,
                ledger,
                &reference,
                d,
                *tenant,
                n,
                &mut customer_no,
                &mut rng,
            )
            .await?;
            left -= n as u64;
            done += n as u64;
            if done % 100_000 < CHUNK_WRAPS as u64 {
                tracing::info!(
                    wraps = done,
                    ms = clock.elapsed().as_millis() as u64,
                    "bench eod: wraps written"
                );
            }
        }
    }
    Ok(platform)
}

/// Tenants, instruments and prices, strategies, agreements and omnibus accounts.
async fn reference_data(
    db: &DatabaseConnection,
    ledger: &Ledger,
    rng: &mut XorShift,
    days: &[(NaiveDate, &'static str)],
) -> Result<(Uuid, Reference), Error> {
    use tenants::{DisplaySettings, NewTenant, TenantKind};
    let now = Utc::now();
    let tenant = |kind: TenantKind, name: String| NewTenant {
        kind,
        name: name.clone(),
        display: DisplaySettings {
            display_name: name,
            contact_email: "bench@wrap.example".to_owned(),
        },
    };
    let platform = tenants::store::create_tenant(
        db,
        &tenant(TenantKind::Platform, "bench-platform".to_owned()),
        now,
    )
    .await
    .map_err(tenants_err)?
    .id;
    let mut distributors = Vec::new();
    for i in 0..DISTRIBUTORS {
        let t = tenant(TenantKind::Distributor, format!("bench-distributor-{i}"));
        distributors.push(
            tenants::store::create_tenant(db, &t, now)
                .await
                .map_err(tenants_err)?
                .id,
        );
    }
    let mut managers = Vec::new();
    for i in 0..MANAGERS {
        let t = tenant(TenantKind::Manager, format!("bench-manager-{i}"));
        managers.push(
            tenants::store::create_tenant(db, &t, now)
                .await
                .map_err(tenants_err)?
                .id,
        );
    }

    // Instruments, and a price for each on the opening date and every day run.
    ledger.create_asset(&Asset::currency(CURRENCY, 0)).await?;
    let txn = ledger::begin_write(db).await?;
    let mut prices = Vec::new();
    for i in 0..INSTRUMENTS {
        let code = instrument_code(i);
        ledger::store::market::create_instrument(
            &txn,
            &NewInstrument {
                code: code.clone(),
                name: format!("Bench fund {i}"),
                kind: InstrumentKind::InvestmentTrust,
                currency: CURRENCY.to_owned(),
                unit_scale: 0,
                quote_unit: 10_000,
                price_scale: None,
                min_order_amount: Decimal::from(100),
                settlement_days: None,
                status: InstrumentStatus::Active,
            },
            now,
        )
        .await
        .map_err(market_err)?;
        let mut price = 8_000 + 250 * i as i64;
        prices.push(PriceRow {
            instrument: code.clone(),
            date: OPENING,
            price,
        });
        for (day, _) in days {
            // Up to ±2 % a day, in whole yen.
            let bp = rng.below(401) as i64 - 200;
            price = (price + price * bp / 10_000).max(1);
            prices.push(PriceRow {
                instrument: code.clone(),
                date: *day,
                price,
            });
        }
    }
    ledger::store::market::upload_prices(&txn, &prices, "bench", now)
        .await
        .map_err(market_err)?;
    txn.commit().await?;

    // Strategies of 4-8 instruments, 2 % cash and whole percents for the rest.
    let mut strategies = Vec::new();
    for s in 0..STRATEGIES {
        let manager = managers[s % MANAGERS];
        let new: tenants::NewStrategy = serde_json::from_value(json!({
            "code": format!("BENCH{s:02}"),
            "name": format!("Bench strategy {s}"),
            "base_currency": CURRENCY,
            "risk_level": 1 + s % 5,
            "expected_return_annual": "0.04",
            "volatility_annual": "0.10",
            "drift_band_kind": "absolute",
            "drift_band": "0.05",
            "min_initial_investment": "1000",
        }))
        .map_err(|e| Error::Other(e.to_string()))?;
        let strategy = tenants::market_store::create_strategy(db, manager, &new, now)
            .await
            .map_err(tenants_err)?;
        let count = 4 + s % 5;
        let instruments: Vec<String> = (0..count)
            .map(|j| instrument_code((s * 7 + j * 3) % INSTRUMENTS))
            .collect();
        let (base, more) = (98 / count, 98 % count);
        let weights: Vec<serde_json::Value> = instruments
            .iter()
            .enumerate()
            .map(|(j, code)| {
                let pct = base + usize::from(j < more);
                json!({ "instrument": code, "weight": format!("0.{pct:02}") })
            })
            .collect();
        let version: tenants::NewVersion = serde_json::from_value(json!({
            "effective_date": "2020-01-01",
            "cash_weight": "0.02",
            "weights": weights,
        }))
        .map_err(|e| Error::Other(e.to_string()))?;
        tenants::market_store::add_version(db, &strategy, &version, now)
            .await
            .map_err(tenants_err)?;
        strategies.push(Strat {
            manager,
            id: strategy.id,
            instruments,
        });
    }

    // Every strategy offered by every distributor.
    let terms = json!({
        "effective_date": "2020-01-01",
        "management_fee": { "kind": "flat", "rate_annual": "0.011" },
        "consumption_tax_rate": "0.10",
        "split": { "channel": "0.4", "manager": "0.4", "platform": "0.2" },
        "billing_period": "monthly",
    });
    let mut agreements = Vec::new();
    for d in &distributors {
        let mut row = Vec::new();
        for s in &strategies {
            let input: tenants::agreement::TermsInput =
                serde_json::from_value(terms.clone()).map_err(|e| Error::Other(e.to_string()))?;
            let (agreement, _) = tenants::market_store::propose_agreement(
                db, *d, s.manager, s.id, input, "bench", now,
            )
            .await
            .map_err(tenants_err)?;
            tenants::market_store::decide(db, &agreement, true, "bench", now)
                .await
                .map_err(tenants_err)?;
            row.push(agreement.id);
        }
        agreements.push(row);
    }

    // The omnibus accounts (the first account of a tenant also opens its book).
    for d in &distributors {
        ledger
            .create_account(&crate::money::omnibus_account(*d, CURRENCY))
            .await?;
        for i in 0..INSTRUMENTS {
            ledger
                .create_account(&crate::money::omnibus_account(*d, &instrument_code(i)))
                .await?;
        }
    }
    Ok((
        platform,
        Reference {
            strategies,
            agreements,
            distributors,
        },
    ))
}

/// One account to insert, with its opening credit.
struct OpenAccount {
    id: Uuid,
    code: String,
    asset: String,
    metadata: String,
    credit: i64,
}

/// `n` wraps of distributor `d` with their customers, accounts, plans and opening balances.
#[allow(clippy::too_many_arguments)]
async fn write_chunk(
    db: &DatabaseConnection,
    ledger: &Ledger,
    reference: &Reference,
    d: usize,
    tenant: Uuid,
    n: usize,
    customer_no: &mut u64,
    rng: &mut XorShift,
) -> Result<(), Error> {
    let now_us = Utc::now().timestamp_micros();
    let mut customers: Vec<Vec<Value>> = Vec::new();
    let mut accounts: Vec<OpenAccount> = Vec::with_capacity(n * 8);
    let mut wraps: Vec<Vec<Value>> = Vec::with_capacity(n);
    let mut plans: Vec<Vec<Value>> = Vec::new();
    // Goals from a generator of their own: the book's other draws stay as they were.
    let mut goal_rng = XorShift::from_seed(0x60A1_5EED ^ *customer_no);
    let mut made = 0;
    while made < n {
        let customer = Uuid::now_v7();
        *customer_no += 1;
        customers.push(vec![
            tenant.into(),
            customer.into(),
            format!("BENCH-{customer_no}").into(),
            format!("Customer {customer_no}").into(),
            date(
                1970 + (*customer_no % 40) as i32,
                1 + (*customer_no % 12) as u32,
                15,
            )
            .into(),
            5_i32.into(),
            "active".into(),
            now_us.into(),
            now_us.into(),
        ]);
        accounts.push(OpenAccount {
            id: Uuid::now_v7(),
            code: ledger::wraps::customer_cash_code(customer, CURRENCY),
            asset: CURRENCY.to_owned(),
            metadata: json!({ "customer_id": customer, "purpose": "customer cash" }).to_string(),
            credit: 50_000 + rng.below(450_000) as i64,
        });
        let count = (1 + rng.below(4) as usize).min(n - made);
        for _ in 0..count {
            let wrap = Uuid::now_v7();
            let s = rng.below(STRATEGIES as u64) as usize;
            let strategy = &reference.strategies[s];
            let cash = Uuid::now_v7();
            accounts.push(OpenAccount {
                id: cash,
                code: ledger::wraps::wrap_cash_code(wrap),
                asset: CURRENCY.to_owned(),
                metadata:
                    json!({ "wrap_id": wrap, "customer_id": customer, "purpose": "wrap cash" })
                        .to_string(),
                credit: 1_000 + rng.below(100_000) as i64,
            });
            for code in &strategy.instruments {
                accounts.push(OpenAccount {
                    id: Uuid::now_v7(),
                    code: ledger::wraps::wrap_units_code(wrap, code),
                    asset: code.clone(),
                    metadata: json!({ "wrap_id": wrap, "purpose": "wrap units" }).to_string(),
                    credit: 1_000 + rng.below(200_000) as i64,
                });
            }
            let goal: [Value; 3] = if goal_rng.below(100) < GOAL_SHARE_PERCENT {
                let years = 3 + goal_rng.below(28) as i32;
                let month = 1 + goal_rng.below(12) as u32;
                [
                    Some("Goal".to_owned()).into(),
                    Some(1_000_000 * (1 + goal_rng.below(20) as i64)).into(),
                    Some(date(OPENING.year() + years, month, 1)).into(),
                ]
            } else {
                [
                    Option::<String>::None.into(),
                    Option::<i64>::None.into(),
                    Option::<NaiveDate>::None.into(),
                ]
            };
            let mut row: Vec<Value> = vec![
                tenant.into(),
                wrap.into(),
                customer.into(),
                reference.agreements[d][s].into(),
                strategy.manager.into(),
                strategy.id.into(),
                CURRENCY.into(),
                0_i32.into(),
                format!("Wrap {}", wraps.len() + 1).into(),
                "active".into(),
                cash.into(),
                now_us.into(),
                now_us.into(),
            ];
            row.extend(goal);
            wraps.push(row);
            if rng.below(2) == 0 {
                plans.push(vec![
                    tenant.into(),
                    Uuid::now_v7().into(),
                    wrap.into(),
                    "contribution".into(),
                    (1_000 * (1 + rng.below(30) as i64)).into(),
                    "monthly".into(),
                    (1 + rng.below(28) as i32).into(),
                    date(2027, 1, 1).into(),
                    "active".into(),
                    now_us.into(),
                    now_us.into(),
                ]);
            }
            made += 1;
        }
    }

    let txn = ledger::begin_write(db).await?;
    insert(
        &txn,
        "customers (tenant_id, id, external_ref, name, date_of_birth, risk_tolerance, status, \
         created_at, updated_at)",
        customers,
    )
    .await?;
    let account_rows: Vec<Vec<Value>> = accounts
        .iter()
        .map(|a| {
            vec![
                tenant.into(),
                a.id.into(),
                a.code.clone().into(),
                a.asset.clone().into(),
                "credit".into(),
                true.into(),
                false.into(),
                a.metadata.clone().into(),
                now_us.into(),
                0_i64.into(),
                0_i64.into(),
                0_i64.into(),
                0_i64.into(),
            ]
        })
        .collect();
    insert(
        &txn,
        "ledger_accounts (tenant_id, id, code, asset_code, normal_side, no_negative, closed, \
         metadata, created_at, debits_posted, credits_posted, debits_pending, credits_pending)",
        account_rows,
    )
    .await?;
    insert(
        &txn,
        "wraps (tenant_id, id, customer_id, agreement_id, manager_tenant_id, strategy_id, \
         currency, currency_scale, name, status, cash_account_id, opened_at, updated_at, \
         goal_name, goal_target_amount, goal_target_date)",
        wraps,
    )
    .await?;
    insert(
        &txn,
        "wrap_plans (tenant_id, id, wrap_id, kind, amount, frequency, day_of_month, \
         start_date, status, created_at, updated_at)",
        plans,
    )
    .await?;
    txn.commit().await?;

    // Opening balances: per asset, entries of up to 999 credits and one omnibus debit.
    let mut by_asset: BTreeMap<&str, Vec<&OpenAccount>> = BTreeMap::new();
    for a in &accounts {
        by_asset.entry(a.asset.as_str()).or_default().push(a);
    }
    let mut entries = Vec::new();
    for (asset, list) in by_asset {
        let omnibus = ledger
            .account_by_code(tenant, &ledger::wraps::omnibus_code(asset))
            .await?
            .ok_or_else(|| Error::Other(format!("bench eod: no omnibus:{asset}")))?
            .id;
        for part in list.chunks(CREDITS_PER_ENTRY) {
            let total: i64 = part.iter().map(|a| a.credit).sum();
            let mut postings = Vec::with_capacity(part.len() + 1);
            postings.push(NewPosting::debit(omnibus, asset, Decimal::from(total)));
            postings.extend(
                part.iter()
                    .map(|a| NewPosting::credit(a.id, asset, Decimal::from(a.credit))),
            );
            entries.push(NewEntry {
                tenant_id: tenant,
                // The first account's id names the part: unique, and the same on a re-run.
                idempotency_key: format!("bench-opening:{asset}:{}", part[0].id),
                kind: "opening".to_owned(),
                effective_date: OPENING,
                description: "opening balances (bench)".to_owned(),
                metadata: json!({}),
                postings,
                hold: None,
            });
        }
    }
    while !entries.is_empty() {
        let rest = entries.split_off(entries.len().min(OPENING_ENTRIES_PER_BATCH));
        ledger
            .post_batch(std::mem::replace(&mut entries, rest))
            .await?;
    }
    Ok(())
}

/// Multi-row INSERTs of `rows` into `table (columns)`, [`INSERT_ROWS`] rows per statement.
async fn insert<C: ConnectionTrait>(
    db: &C,
    table: &str,
    rows: Vec<Vec<Value>>,
) -> Result<(), Error> {
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut pa = Params::new(db.get_database_backend());
        let values: Vec<String> = rows.by_ref().take(INSERT_ROWS).map(|r| pa.row(r)).collect();
        exec(
            db,
            format!("INSERT INTO {table} VALUES {}", values.join(", ")),
            pa.values,
        )
        .await?;
    }
    Ok(())
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
