//! Synthetic books: the seeded partners, strategies, customers and wraps that
//! `wrapd bench eod` times and `wrapd demo` shows. One builder, two [`Shape`]s, so the demo
//! runs on exactly the kind of book the benchmark measures.
//!
//! Small reference data goes through the domain's own store functions (so it is exactly what
//! the API would write): tenants, instruments and prices, strategies and their model,
//! agreements (proposed and accepted), platform fees, omnibus accounts. The N-sized rows
//! (customers, wraps, their ledger accounts, plans) are bulk-inserted with multi-row INSERTs,
//! a chunk of wraps per transaction. The opening balances are real ledger entries through
//! [`ledger::Ledger::post_batch`]: per chunk and asset, entries of up to 999 credits to
//! customer and wrap accounts and one debit of their sum to the distributor's
//! `omnibus:{asset}`, so the hash chain, the balances and the reconciliation (customers +
//! wraps = omnibus, per asset) hold exactly as for any other entry, with a thousandth of the
//! entries one per account would need. Where wraps open with cash only (the demo), their cash
//! arrives the same way but as kind `contribution` on the first day, so statements and returns
//! see it as money paid in (an opening balance before the first end of day would be value with
//! no flow behind it).
//!
//! Everything random comes from one seeded [`XorShift`]: the same shape, size and seed give
//! the same book (ids aside, which are UUIDv7).

use std::collections::BTreeMap;

use chrono::{Datelike, Months, NaiveDate, Utc};
use ledger::market::{InstrumentKind, InstrumentStatus, NewInstrument};
use ledger::store::market::PriceRow;
use ledger::{Ledger, NewEntry, NewPosting};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DatabaseConnection, Value};
use serde_json::json;
use uuid::Uuid;

use crate::bench::XorShift;
use crate::error::Error;
use ledger::sql::{INSERT_ROWS, Params, exec};

/// Wraps written per transaction.
const CHUNK_WRAPS: usize = 5_000;
/// Entries per `post_batch` call for the opening balances (each up to 1,000 postings).
const OPENING_ENTRIES_PER_BATCH: usize = 50;
/// Credits per opening entry: with the omnibus debit, the ledger's 1,000 postings.
const CREDITS_PER_ENTRY: usize = 999;
/// The book's one currency.
pub const CURRENCY: &str = crate::onboarding::BASE_CURRENCY;

/// A distributor or manager to create.
#[derive(Debug, Clone)]
pub struct Partner {
    /// The tenant's name (unique).
    pub name: String,
    pub display_name: String,
    /// Distributors: the terms of every agreement it proposes (JSON as the API takes it).
    pub terms: Option<serde_json::Value>,
    /// Distributors: the strategies (indexes into [`Shape::strategies`]) it offers; empty
    /// offers all.
    pub offers: Vec<usize>,
    /// Distributors: the platform's monthly fee, yen.
    pub platform_fee: Option<i64>,
}

/// A strategy to create.
#[derive(Debug, Clone)]
pub struct StrategySpec {
    pub code: String,
    pub name: String,
    /// Index into [`Shape::managers`].
    pub manager: usize,
    pub risk_level: u8,
    pub expected_return_annual: &'static str,
    pub volatility_annual: &'static str,
    /// Indexes into [`Shape::instruments`]; the model holds them in near-equal whole
    /// percents after `cash_percent`.
    pub instruments: Vec<usize>,
    pub cash_percent: usize,
}

/// An instrument to create, and how its price moves.
#[derive(Debug, Clone)]
pub struct InstrumentSpec {
    pub code: String,
    pub name: String,
    /// Price on the opening date, yen per 10,000 units.
    pub price: i64,
    /// Each day the price moves by a uniform whole number of basis points in
    /// `drift_bp ± max_move_bp`, rounded to whole yen.
    pub max_move_bp: i64,
    pub drift_bp: i64,
}

/// What to build.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Prefix of customer references and opening-entry keys (`bench`, `demo`).
    pub label: &'static str,
    pub platform_name: String,
    pub distributors: Vec<Partner>,
    pub managers: Vec<Partner>,
    pub strategies: Vec<StrategySpec>,
    pub instruments: Vec<InstrumentSpec>,
    /// The opening balances' date; prices start here.
    pub opening: NaiveDate,
    /// Every later date with a price (the days end of day will run).
    pub price_days: Vec<NaiveDate>,
    /// True: each wrap opens holding units of every instrument of its strategy (random
    /// amounts, so the first day has drift to trade). False: cash only, invested by the
    /// first end of day along the model.
    pub wraps_hold_units: bool,
    /// Opening cash of a wrap: `min + uniform(span)` yen, in thousands.
    pub wrap_cash_thousands: (i64, i64),
    /// Opening cash of a customer (outside its wraps), the same way.
    pub customer_cash_thousands: (i64, i64),
    /// Every how many wraps one gets a goal (0: none).
    pub goal_every: u64,
}

/// A strategy as built.
#[derive(Debug, Clone)]
pub struct Strat {
    pub manager: Uuid,
    pub id: Uuid,
    pub code: String,
    pub instruments: Vec<String>,
}

/// What was built.
#[derive(Debug, Clone)]
pub struct Book {
    pub platform: Uuid,
    pub distributors: Vec<Uuid>,
    pub managers: Vec<Uuid>,
    pub strategies: Vec<Strat>,
    /// agreements[distributor]: (strategy index, agreement id) of each offer.
    pub agreements: Vec<Vec<(usize, Uuid)>>,
    pub wraps: u64,
    pub customers: u64,
}

fn tenants_err(e: tenants::TenantsError) -> Error {
    Error::Other(format!("book setup: {e}"))
}

fn market_err(e: ledger::MarketError) -> Error {
    Error::Other(format!("book setup: {e}"))
}

fn json_err(e: serde_json::Error) -> Error {
    Error::Other(format!("book setup: {e}"))
}

/// Builds the whole book of `wraps` wraps on `db` (migrated, empty); `progress` is told the
/// wraps written so far after each chunk.
pub async fn build(
    db: &DatabaseConnection,
    ledger: &Ledger,
    shape: &Shape,
    wraps: u64,
    seed: u64,
    mut progress: impl FnMut(u64),
) -> Result<Book, Error> {
    let mut rng = XorShift::from_seed(seed);
    let mut book = reference_data(db, ledger, shape, &mut rng).await?;
    // Wraps per distributor: an even share, the remainder to the first ones.
    let n_dist = shape.distributors.len() as u64;
    let per = wraps / n_dist;
    let extra = wraps % n_dist;
    let mut customer_no = 0_u64;
    for d in 0..shape.distributors.len() {
        let mut left = per + u64::from((d as u64) < extra);
        while left > 0 {
            let n = left.min(CHUNK_WRAPS as u64) as usize;
            write_chunk(db, ledger, shape, &book, d, n, &mut customer_no, &mut rng).await?;
            left -= n as u64;
            book.wraps += n as u64;
            progress(book.wraps);
        }
    }
    book.customers = customer_no;
    Ok(book)
}

/// Tenants, instruments and prices, strategies, agreements and omnibus accounts.
async fn reference_data(
    db: &DatabaseConnection,
    ledger: &Ledger,
    shape: &Shape,
    rng: &mut XorShift,
) -> Result<Book, Error> {
    use tenants::{DisplaySettings, NewTenant, TenantKind};
    let now = Utc::now();
    let tenant = |kind: TenantKind, name: &str, display: &str| NewTenant {
        kind,
        name: name.to_owned(),
        display: DisplaySettings {
            display_name: display.to_owned(),
            contact_email: format!("{}@wrap.example", shape.label),
        },
    };
    // Tenants as the API opens them: with their fee income account (and a distributor's
    // yen omnibus account).
    crate::onboarding::ensure_base_currency(ledger)
        .await
        .map_err(|p| Error::Other(format!("book setup: {p}")))?;
    let open = async |kind: TenantKind, name: &str, display: &str| {
        let txn = ledger::begin_write(db).await?;
        let t = crate::onboarding::open_tenant(&txn, ledger, &tenant(kind, name, display), now)
            .await
            .map_err(|p| Error::Other(format!("book setup: {name}: {p}")))?;
        txn.commit().await?;
        Ok::<Uuid, Error>(t.id)
    };
    let platform = open(
        TenantKind::Platform,
        &shape.platform_name,
        &shape.platform_name,
    )
    .await?;
    let mut distributors = Vec::new();
    for p in &shape.distributors {
        distributors.push(open(TenantKind::Distributor, &p.name, &p.display_name).await?);
    }
    let mut managers = Vec::new();
    for p in &shape.managers {
        managers.push(open(TenantKind::Manager, &p.name, &p.display_name).await?);
    }

    // Instruments, and a price for each on the opening date and every day to run.
    let txn = ledger::begin_write(db).await?;
    let mut prices = Vec::new();
    for spec in &shape.instruments {
        ledger::store::market::create_instrument(
            &txn,
            &NewInstrument {
                code: spec.code.clone(),
                name: spec.name.clone(),
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
        let mut price = spec.price;
        prices.push(PriceRow {
            instrument: spec.code.clone(),
            date: shape.opening,
            price,
        });
        for day in &shape.price_days {
            let span = 2 * spec.max_move_bp.max(0) as u64 + 1;
            let bp = rng.below(span) as i64 - spec.max_move_bp + spec.drift_bp;
            price = (price + price * bp / 10_000).max(1);
            prices.push(PriceRow {
                instrument: spec.code.clone(),
                date: *day,
                price,
            });
        }
    }
    wraps::eod::prices::upload(&txn, &prices, shape.label, now)
        .await
        .map_err(market_err)?;
    txn.commit().await?;

    // Strategies: the cash weight, then whole percents for the instruments.
    let mut strategies = Vec::new();
    for spec in &shape.strategies {
        let manager = managers[spec.manager];
        let new: wraps::market::NewStrategy = serde_json::from_value(json!({
            "code": spec.code,
            "name": spec.name,
            "base_currency": CURRENCY,
            "risk_level": spec.risk_level,
            "expected_return_annual": spec.expected_return_annual,
            "volatility_annual": spec.volatility_annual,
            "drift_band_kind": "absolute",
            "drift_band": "0.05",
            "min_initial_investment": "1000",
        }))
        .map_err(json_err)?;
        let strategy = wraps::market::store::create_strategy(db, manager, &new, now)
            .await
            .map_err(tenants_err)?;
        let instruments: Vec<String> = spec
            .instruments
            .iter()
            .map(|i| shape.instruments[*i].code.clone())
            .collect();
        let count = instruments.len();
        let invested = 100 - spec.cash_percent;
        let (base, more) = (invested / count, invested % count);
        let weights: Vec<serde_json::Value> = instruments
            .iter()
            .enumerate()
            .map(|(j, code)| {
                let pct = base + usize::from(j < more);
                json!({ "instrument": code, "weight": format!("0.{pct:02}") })
            })
            .collect();
        let version: wraps::market::NewVersion = serde_json::from_value(json!({
            "effective_date": "2020-01-01",
            "cash_weight": format!("0.{:02}", spec.cash_percent),
            "weights": weights,
        }))
        .map_err(json_err)?;
        wraps::market::store::add_version(db, &strategy, &version, now)
            .await
            .map_err(tenants_err)?;
        strategies.push(Strat {
            manager,
            id: strategy.id,
            code: spec.code.clone(),
            instruments,
        });
    }

    // Each distributor's offers, accepted by the manager; its platform fee.
    let mut agreements = Vec::new();
    for (p, d) in shape.distributors.iter().zip(&distributors) {
        let terms = p
            .terms
            .clone()
            .ok_or_else(|| Error::Other(format!("book setup: {} has no terms", p.name)))?;
        let offers: Vec<usize> = if p.offers.is_empty() {
            (0..strategies.len()).collect()
        } else {
            p.offers.clone()
        };
        let mut row = Vec::new();
        for s in offers {
            let strat = &strategies[s];
            let input: wraps::market::agreement::TermsInput =
                serde_json::from_value(terms.clone()).map_err(json_err)?;
            let (agreement, _) = wraps::market::store::propose_agreement(
                db,
                *d,
                strat.manager,
                strat.id,
                input,
                shape.label,
                now,
            )
            .await
            .map_err(tenants_err)?;
            wraps::market::store::decide(db, &agreement, true, shape.label, now)
                .await
                .map_err(tenants_err)?;
            row.push((s, agreement.id));
        }
        agreements.push(row);
        if let Some(fee) = p.platform_fee {
            let new = wraps::market::store::NewPlatformFee {
                amount: Decimal::from(fee),
                currency: CURRENCY.to_owned(),
                effective_date: shape.opening,
            };
            wraps::market::store::set_platform_fee(db, *d, &new, shape.label, now)
                .await
                .map_err(tenants_err)?;
        }
    }

    // The omnibus accounts of the instruments (yen's came with the tenant).
    for d in &distributors {
        for spec in &shape.instruments {
            ledger
                .create_account(&crate::money::omnibus_account(*d, &spec.code))
                .await?;
        }
    }
    Ok(Book {
        platform,
        distributors,
        managers,
        strategies,
        agreements,
        wraps: 0,
        customers: 0,
    })
}

/// One account to insert, with its opening credit.
struct OpenAccount {
    id: Uuid,
    code: String,
    asset: String,
    metadata: String,
    credit: i64,
    /// Booked as a contribution on the first day rather than an opening balance.
    contribution: bool,
}

const GOALS: [(&str, u32, i64); 4] = [
    ("Retirement", 25, 4),
    ("Children's education", 12, 3),
    ("A home", 8, 2),
    ("Travel", 3, 1),
];

/// How many wraps a new customer holds: one to four, most one (65 %, then 20 %, 10 % and
/// 5 %: 1.55 a customer on average). Most customers of a wrap service open one portfolio and
/// some add goals of their own; the demo's "few thousand customers" are then about 1.5 wraps
/// each.
fn wraps_of_customer(rng: &mut XorShift) -> usize {
    match rng.below(20) {
        0..=12 => 1,
        13..=16 => 2,
        17..=18 => 3,
        _ => 4,
    }
}

/// `n` wraps of distributor `d` with their customers, accounts, plans and opening balances.
#[allow(clippy::too_many_arguments)]
async fn write_chunk(
    db: &DatabaseConnection,
    ledger: &Ledger,
    shape: &Shape,
    book: &Book,
    d: usize,
    n: usize,
    customer_no: &mut u64,
    rng: &mut XorShift,
) -> Result<(), Error> {
    let tenant = book.distributors[d];
    let offers = &book.agreements[d];
    let label = shape.label;
    let now_us = Utc::now().timestamp_micros();
    let thousands = |rng: &mut XorShift, (min, span): (i64, i64)| {
        1_000 * (min + rng.below(span.max(1) as u64) as i64)
    };
    let mut customers: Vec<Vec<Value>> = Vec::new();
    let mut accounts: Vec<OpenAccount> = Vec::with_capacity(n * 8);
    let mut wraps: Vec<Vec<Value>> = Vec::with_capacity(n);
    let mut plans: Vec<Vec<Value>> = Vec::new();
    let mut made = 0;
    while made < n {
        let customer = Uuid::now_v7();
        *customer_no += 1;
        customers.push(vec![
            tenant.into(),
            customer.into(),
            format!("{}-{customer_no}", label.to_uppercase()).into(),
            format!("Customer {customer_no}").into(),
            NaiveDate::from_ymd_opt(
                1960 + (*customer_no % 45) as i32,
                1 + (*customer_no % 12) as u32,
                15,
            )
            .unwrap_or(NaiveDate::MIN)
            .into(),
            (1 + (*customer_no % 5) as i32).into(),
            "active".into(),
            now_us.into(),
            now_us.into(),
        ]);
        accounts.push(OpenAccount {
            id: Uuid::now_v7(),
            code: wraps::customers::customer_cash_code(customer, CURRENCY),
            asset: CURRENCY.to_owned(),
            metadata: json!({ "customer_id": customer, "purpose": "customer cash" }).to_string(),
            credit: thousands(rng, shape.customer_cash_thousands),
            contribution: false,
        });
        let count = wraps_of_customer(rng).min(n - made);
        for _ in 0..count {
            let wrap = Uuid::now_v7();
            let (s, agreement) = offers[rng.below(offers.len() as u64) as usize];
            let strategy = &book.strategies[s];
            let cash = Uuid::now_v7();
            let wrap_cash = thousands(rng, shape.wrap_cash_thousands);
            accounts.push(OpenAccount {
                id: cash,
                code: wraps::customers::wrap_cash_code(wrap),
                asset: CURRENCY.to_owned(),
                metadata:
                    json!({ "wrap_id": wrap, "customer_id": customer, "purpose": "wrap cash" })
                        .to_string(),
                credit: wrap_cash,
                // A wrap opening with cash only was paid in on the first day: its statements
                // and returns count the money as a contribution, not as value from nowhere.
                contribution: !shape.wraps_hold_units,
            });
            if shape.wraps_hold_units {
                for code in &strategy.instruments {
                    accounts.push(OpenAccount {
                        id: Uuid::now_v7(),
                        code: wraps::customers::wrap_units_code(wrap, code),
                        asset: code.clone(),
                        metadata: json!({ "wrap_id": wrap, "purpose": "wrap units" }).to_string(),
                        credit: 1_000 + rng.below(200_000) as i64,
                        contribution: false,
                    });
                }
            }
            let wrap_no = book.wraps + wraps.len() as u64 + 1;
            let (goal_name, goal_amount, goal_date): (Value, Value, Value) =
                if shape.goal_every > 0 && wrap_no.is_multiple_of(shape.goal_every) {
                    let (name, years, times) = GOALS[(wrap_no / shape.goal_every % 4) as usize];
                    let target = shape
                        .opening
                        .checked_add_months(Months::new(12 * years))
                        .and_then(|t| t.with_day(1))
                        .unwrap_or(shape.opening);
                    (
                        name.into(),
                        (wrap_cash * times + thousands(rng, (0, 1_000))).into(),
                        target.into(),
                    )
                } else {
                    (
                        Value::String(None),
                        Value::BigInt(None),
                        Value::ChronoDate(None),
                    )
                };
            wraps.push(vec![
                tenant.into(),
                wrap.into(),
                customer.into(),
                agreement.into(),
                strategy.manager.into(),
                strategy.id.into(),
                CURRENCY.into(),
                0_i32.into(),
                format!("{} {}", strategy.code, wraps.len() + 1).into(),
                "active".into(),
                goal_name,
                goal_amount,
                goal_date,
                cash.into(),
                now_us.into(),
                now_us.into(),
            ]);
            if rng.below(2) == 0 {
                plans.push(vec![
                    tenant.into(),
                    Uuid::now_v7().into(),
                    wrap.into(),
                    "contribution".into(),
                    (1_000 * (1 + rng.below(30) as i64)).into(),
                    "monthly".into(),
                    (1 + rng.below(28) as i32).into(),
                    shape.opening.into(),
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
         currency, currency_scale, name, status, goal_name, goal_target_amount, \
         goal_target_date, cash_account_id, opened_at, updated_at)",
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

    // Opening balances (and first-day contributions): per asset and kind, entries of up to 999
    // credits and one omnibus debit.
    let first_day = shape.price_days.first().copied().unwrap_or(shape.opening);
    let mut by_asset: BTreeMap<(&str, bool), Vec<&OpenAccount>> = BTreeMap::new();
    for a in &accounts {
        by_asset
            .entry((a.asset.as_str(), a.contribution))
            .or_default()
            .push(a);
    }
    let mut entries = Vec::new();
    for ((asset, contribution), list) in by_asset {
        let omnibus = ledger
            .account_by_code(tenant, &wraps::customers::omnibus_code(asset))
            .await?
            .ok_or_else(|| Error::Other(format!("book setup: no omnibus:{asset}")))?
            .id;
        let (kind, date, what) = if contribution {
            ("contribution", first_day, "first contributions")
        } else {
            ("opening", shape.opening, "opening balances")
        };
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
                idempotency_key: format!("{label}-{kind}:{asset}:{}", part[0].id),
                kind: kind.to_owned(),
                effective_date: date,
                description: format!("{what} ({label})"),
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
    use super::*;

    #[test]
    fn most_customers_hold_one_wrap_and_none_more_than_four() {
        let mut rng = XorShift::from_seed(2025);
        let mut seen = [0_u32; 5];
        for _ in 0..20_000 {
            let n = wraps_of_customer(&mut rng);
            assert!((1..=4).contains(&n), "{n} wraps");
            seen[n] += 1;
        }
        // 65 / 20 / 10 / 5 %, within a percentage point at 20,000 draws.
        for (n, share) in [(1, 65.0), (2, 20.0), (3, 10.0), (4, 5.0)] {
            let got = f64::from(seen[n]) / 200.0;
            assert!(
                (got - share).abs() < 1.0,
                "{n} wraps: {got} % against {share} %"
            );
        }
    }
}
