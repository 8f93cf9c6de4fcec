//! Step `valuation`: a daily snapshot of every wrap that is not closed (`wrap_snapshots`).
//!
//! NAV = cash + Σ units × price ÷ quote unit − fees accrued but not paid (DOMAIN.md section
//! 4), from the balances as of `date` (what was posted effective after it is taken back out:
//! [`booked_after`]; tried by `api/tests/http/business_date.rs::a_date_is_valued_without_money_booked_after_it`), each holding valued at its instrument's price of `date`, or when there is none that
//! day the last price before it (the snapshot's `stale_prices` is then true; a holding never
//! priced is valued at zero and flagged stale too). The holdings' exact sum is rounded down to
//! the currency's minor unit once per wrap (`units_value`), so `nav = cash + units_value −
//! fees_unpaid` exactly (a CHECK says so). `fees_unpaid` is what the wrap owes in whole minor
//! units when the date begins: management fee and its consumption tax (and a crystallised
//! performance fee and its tax) accrued by earlier dates (in its fee state, posted to
//! `accrued:wrap:{id}` or not yet) and not yet collected by billing ([`super::fees`]); tax
//! included, because the customer owes it
//! with the fee. The sub-unit carry is not deducted (it is not owed yet). The date's own
//! accrual runs after valuation and is deducted from the next date on; a valuation redone on
//! the same date (a late price) deducts the same amount (`wrap_fee_state.owed_at_start`).
//! Instruments are priced in the wrap's currency (the marketplace admits no others).
//!
//! The day's flows: `contributions` = Σ credits to the wrap's cash account by entries of kind
//! `contribution` (through the API or a plan) or `switch` (money switched in from another
//! wrap) effective on `date`; `withdrawals` = Σ debits of it by entries of kind `withdrawal`,
//! `wrap_close` or `switch` (switched out) effective on `date`. A switch is a flow for each
//! wrap: its money enters or leaves that wrap from outside it, so neither wrap's return nor
//! high-water mark may read it as a gain or a loss (tried by
//! `api/tests/http/eod_trading.rs::a_switch_moves_the_proceeds_into_the_other_wrap`).
//!
//! Set-based: per tenant, one keyset-paged scan of its `wrap:` accounts (by code, on the
//! `(tenant_id, code)` unique index), one query of the day's flows, prices for every
//! instrument at once, and multi-row INSERTs of [`INSERT_ROWS`] snapshots; never a query
//! per wrap. Tried by `api/tests/http/eod.rs::snapshots_value_wraps_at_the_days_prices`.

use std::collections::HashMap;

use crate::customers::{parse_wrap_code, wrap_cash_code};
use chrono::NaiveDate;
use ledger::asset::decimal_of;
use ledger::market::PriceQuote;
use rust_decimal::{Decimal, RoundingStrategy};
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use serde_json::json;
use uuid::Uuid;

use super::EodError;
use ledger::sql::{IN_CHUNK, INSERT_ROWS, Params, exec, get, query};

/// Accounts read per page of the scan.
const PAGE: i64 = 20_000;

/// A wrap's value at a date, in minor units of its currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WrapValue {
    pub cash: i64,
    pub units_value: i64,
    pub nav: i64,
    pub stale_prices: bool,
}

/// What valuing needs of an instrument: its price quote and how to read units.
struct Pricing {
    unit_scale: u32,
    quote_unit: i64,
    quote: Option<PriceQuote>,
}

/// Every instrument with its last price on or before `date`.
async fn pricing<C: ConnectionTrait>(
    db: &C,
    date: NaiveDate,
) -> Result<HashMap<String, Pricing>, EodError> {
    let rows = query(
        db,
        "SELECT code, unit_scale, quote_unit FROM instruments".to_owned(),
        vec![],
    )
    .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in &rows {
        out.insert(
            get::<String>(r, 0)?,
            Pricing {
                unit_scale: u32::try_from(get::<i32>(r, 1)?).unwrap_or(0),
                quote_unit: get(r, 2)?,
                quote: None,
            },
        );
    }
    let codes: Vec<String> = out.keys().cloned().collect();
    let prices = ledger::store::market::latest_prices(db, &codes, date).await?;
    for (code, q) in prices {
        if let Some(p) = out.get_mut(&code) {
            p.quote = Some(q);
        }
    }
    Ok(out)
}

/// The holdings' value in whole minor units: their exact sum (units × price ÷ quote unit,
/// summed exactly), rounded down once at the currency's `scale`.
pub fn units_value_minor(exact: Decimal, scale: u32) -> i64 {
    let mut floor = exact.round_dp_with_strategy(scale, RoundingStrategy::ToZero);
    floor.rescale(scale);
    i64::try_from(floor.mantissa()).unwrap_or(i64::MAX)
}

/// NAV of a wrap (DOMAIN.md section 4), in minor units: cash + the holdings' value
/// ([`units_value_minor`]) − fees owed and not yet paid. The one rule for a wrap's value: end
/// of day's snapshots and the API's value of a wrap now (`GET /v1/wraps/{id}`, a customer's
/// total, what may be withdrawn) both use it.
pub fn nav_minor(cash: i64, units_value: i64, fees_owed: i64) -> i64 {
    cash.saturating_add(units_value).saturating_sub(fees_owed)
}

/// Running total of one wrap while its accounts are read.
#[derive(Default)]
struct Acc {
    cash: i64,
    units_value: Decimal,
    stale: bool,
}

impl Acc {
    fn add_units(&mut self, code: &str, units_minor: i64, pricing: &HashMap<String, Pricing>) {
        if units_minor == 0 {
            return;
        }
        let Some(p) = pricing.get(code) else {
            self.stale = true;
            return;
        };
        let Some(q) = &p.quote else {
            self.stale = true;
            return;
        };
        let units = decimal_of(i128::from(units_minor), p.unit_scale);
        let value = units
            .checked_mul(q.price)
            .and_then(|v| v.checked_div(Decimal::from(p.quote_unit.max(1))));
        match value {
            Some(v) => self.units_value += v,
            None => self.stale = true,
        }
    }

    /// The value before fees owed (the snapshot deducts them: [`nav_minor`]).
    fn finish(self, scale: u32) -> WrapValue {
        let units_value = units_value_minor(self.units_value, scale);
        WrapValue {
            cash: self.cash,
            units_value,
            nav: nav_minor(self.cash, units_value, 0),
            stale_prices: self.stale,
        }
    }
}

fn add_account(
    accs: &mut HashMap<Uuid, Acc>,
    code: &str,
    balance: i64,
    pricing: &HashMap<String, Pricing>,
    date: NaiveDate,
) {
    let Some((wrap, what)) = parse_wrap_code(code) else {
        return;
    };
    let acc = accs.entry(wrap).or_default();
    match what {
        None => acc.cash = acc.cash.saturating_add(balance),
        Some(instrument) => {
            acc.add_units(instrument, balance, pricing);
            if balance != 0 {
                let stale = pricing
                    .get(instrument)
                    .and_then(|p| p.quote.as_ref())
                    .is_none_or(|q| q.date < date);
                acc.stale |= stale;
            }
        }
    }
}

/// The values at `date` of the tenant's wraps `wrap_ids` (one account query per wrap: used
/// for the few wraps of withdrawal plans).
pub async fn values_of(
    txn: &DatabaseTransaction,
    tenant_id: Uuid,
    wrap_ids: &[Uuid],
    date: NaiveDate,
) -> Result<HashMap<Uuid, WrapValue>, EodError> {
    let pricing = pricing(txn, date).await?;
    // One query for the tenant's wrap accounts (it finds nothing on an ordinary run).
    let mut later = booked_after(txn, tenant_id, date).await?;
    let mut out = HashMap::with_capacity(wrap_ids.len());
    for id in wrap_ids {
        let Some(wrap) = crate::customers::store::wrap(
            txn,
            crate::customers::store::WrapScope::Distributor(tenant_id),
            *id,
            false,
        )
        .await?
        else {
            continue;
        };
        let mut accs = HashMap::new();
        for a in crate::customers::store::wrap_accounts(txn, tenant_id, *id).await? {
            let now = i64::try_from(a.balance.posted(a.normal_side)).unwrap_or(i64::MAX);
            // `later` is credits − debits: it raised a credit-normal balance, lowered a debit one.
            let later = later.remove(&a.code).unwrap_or(0);
            let balance = match a.normal_side {
                ledger::Side::Credit => now.saturating_sub(later),
                ledger::Side::Debit => now.saturating_add(later),
            };
            add_account(&mut accs, &a.code, balance, &pricing, date);
        }
        let value = accs
            .remove(id)
            .unwrap_or_default()
            .finish(wrap.currency_scale);
        out.insert(*id, value);
    }
    Ok(out)
}

/// Net credits (credits − debits) posted to the tenant's wrap accounts with an effective date
/// after `date`, by account code (all its `wrap:` accounts): what their
/// balances hold now that they did not hold on `date`. Valuation of D subtracts them, so that a
/// date is valued with its balances as of D (docs/DOMAIN.md section 7) even when money was
/// booked on a later date first: a movement committed while D's end of day runs is booked on
/// D + 1, and a date redone for a late price runs after D + 1's bookings. One query on the
/// `(tenant_id, effective_date)` index, which finds nothing on an ordinary run.
async fn booked_after<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    date: NaiveDate,
) -> Result<HashMap<String, i64>, EodError> {
    let mut pa = Params::new(db.get_database_backend());
    let t = pa.push(tenant_id);
    let d = pa.push(date);
    let pending = pa.push(false);
    let q = format!(
        "SELECT a.code, p.side, CAST(SUM(p.amount) AS BIGINT) FROM ledger_postings p \
         JOIN ledger_accounts a ON a.tenant_id = p.tenant_id AND a.id = p.account_id \
         WHERE p.tenant_id = {t} AND p.effective_date > {d} AND p.pending = {pending} \
         AND a.code > 'wrap:' AND a.code < 'wrap;' GROUP BY a.code, p.side"
    );
    let mut out: HashMap<String, i64> = HashMap::new();
    for r in query(db, q, pa.values).await? {
        let code: String = get(&r, 0)?;
        let side: String = get(&r, 1)?;
        let sum: i64 = get(&r, 2)?;
        let net = out.entry(code).or_default();
        *net = if side == "credit" {
            net.saturating_add(sum)
        } else {
            net.saturating_sub(sum)
        };
    }
    Ok(out)
}

/// Snapshots every wrap that is not closed at `date`; returns the counts.
pub async fn run(
    txn: &DatabaseTransaction,
    date: NaiveDate,
) -> Result<serde_json::Value, EodError> {
    // Which uploads of the date's prices this valuation sees: read before the prices (on
    // PostgreSQL this waits for an upload in flight that has counted itself), compared by the
    // finishing transaction with the count then (`super::run_date`).
    let mut pa = Params::new(txn.get_database_backend());
    let q = format!(
        "UPDATE eod_runs SET valued_revision = price_revision WHERE business_date = {}",
        pa.push(date)
    );
    exec(txn, q, pa.values).await?;
    let pricing = pricing(txn, date).await?;
    let tenants = query(
        txn,
        "SELECT DISTINCT tenant_id FROM wraps WHERE status <> 'closed'".to_owned(),
        vec![],
    )
    .await?;
    let mut tenant_ids: Vec<Uuid> = tenants
        .iter()
        .map(|r| get::<Uuid>(r, 0))
        .collect::<Result<_, _>>()?;
    tenant_ids.sort();
    let (mut wraps_total, mut stale_total) = (0_u64, 0_u64);
    for tenant_id in tenant_ids {
        let (n, stale) = snapshot_tenant(txn, tenant_id, date, &pricing).await?;
        wraps_total += n;
        stale_total += stale;
    }
    Ok(json!({ "wraps": wraps_total, "stale_prices": stale_total }))
}

/// The flows of `date` through the wraps' cash accounts (module doc), per wrap:
/// (contributions, withdrawals) by the entries posted so far. All the tenant's wraps, or
/// only `only`'s.
pub async fn day_flows<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    date: NaiveDate,
    only: Option<&[Uuid]>,
) -> Result<HashMap<Uuid, (i64, i64)>, EodError> {
    let codes: Vec<Vec<String>> = match only {
        None => vec![Vec::new()],
        Some(ids) => ids
            .chunks(IN_CHUNK)
            .map(|c| c.iter().map(|id| wrap_cash_code(*id)).collect())
            .collect(),
    };
    let mut flows: HashMap<Uuid, (i64, i64)> = HashMap::new();
    for chunk in codes {
        let mut pa = Params::new(db.get_database_backend());
        let t = pa.push(tenant_id);
        let d = pa.push(date);
        let pending = pa.push(false);
        let which = if only.is_some() {
            format!("a.code IN {}", pa.list(&chunk))
        } else {
            "a.code > 'wrap:' AND a.code < 'wrap;'".to_owned()
        };
        let q = format!(
            "SELECT a.code, e.kind, p.side, CAST(SUM(p.amount) AS BIGINT) FROM ledger_postings p \
             JOIN ledger_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id \
             JOIN ledger_accounts a ON a.tenant_id = p.tenant_id AND a.id = p.account_id \
             WHERE p.tenant_id = {t} AND p.effective_date = {d} AND p.pending = {pending} \
             AND e.kind IN ('contribution', 'withdrawal', 'wrap_close', 'switch') AND {which} \
             GROUP BY a.code, e.kind, p.side"
        );
        for r in query(db, q, pa.values).await? {
            let code: String = get(&r, 0)?;
            let kind: String = get(&r, 1)?;
            let side: String = get(&r, 2)?;
            // SUM of BIGINT is NUMERIC on PostgreSQL: cast back to BIGINT in SQL (exact).
            let sum: i64 = get(&r, 3)?;
            let Some((wrap, None)) = parse_wrap_code(&code) else {
                continue;
            };
            let f = flows.entry(wrap).or_default();
            match (kind.as_str(), side.as_str()) {
                ("contribution" | "switch", "credit") => f.0 += sum,
                ("withdrawal" | "wrap_close" | "switch", "debit") => f.1 += sum,
                _ => {}
            }
        }
    }
    Ok(flows)
}

async fn snapshot_tenant(
    txn: &DatabaseTransaction,
    tenant_id: Uuid,
    date: NaiveDate,
    pricing: &HashMap<String, Pricing>,
) -> Result<(u64, u64), EodError> {
    let b = txn.get_database_backend();
    // The wraps to snapshot, with their currency.
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT id, currency, currency_scale FROM wraps WHERE tenant_id = {} AND status <> 'closed'",
        pa.push(tenant_id)
    );
    let mut wraps: Vec<(Uuid, String, u32)> = Vec::new();
    for r in query(txn, q, pa.values).await? {
        wraps.push((
            get(&r, 0)?,
            get(&r, 1)?,
            u32::try_from(get::<i32>(&r, 2)?).unwrap_or(0),
        ));
    }
    if wraps.is_empty() {
        return Ok((0, 0));
    }
    // Every wrap account of the tenant, in code order, a page at a time, less what was booked
    // after the date (balances as of `date`).
    let mut later = booked_after(txn, tenant_id, date).await?;
    let mut accs: HashMap<Uuid, Acc> = HashMap::with_capacity(wraps.len());
    let mut after = "wrap:".to_owned();
    loop {
        let mut pa = Params::new(b);
        let q = format!(
            "SELECT code, credits_posted - debits_posted FROM ledger_accounts \
             WHERE tenant_id = {} AND code > {} AND code < {} ORDER BY code LIMIT {}",
            pa.push(tenant_id),
            pa.push(after.clone()),
            pa.push("wrap;".to_owned()),
            pa.push(PAGE)
        );
        let rows = query(txn, q, pa.values).await?;
        let n = rows.len();
        for r in &rows {
            let code: String = get(r, 0)?;
            let now: i64 = get(r, 1)?;
            let balance = now.saturating_sub(later.remove(&code).unwrap_or(0));
            add_account(&mut accs, &code, balance, pricing, date);
            after = code;
        }
        if i64::try_from(n).unwrap_or(0) < PAGE {
            break;
        }
    }
    // Fees owed when the date began (see the module doc).
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT wrap_id, as_of, owed_at_start, fee_owed + tax_owed + perf_owed + perf_tax_owed \
         FROM wrap_fee_state WHERE tenant_id = {}",
        pa.push(tenant_id)
    );
    let mut unpaid: HashMap<Uuid, i64> = HashMap::new();
    for r in query(txn, q, pa.values).await? {
        let owed = super::fees::unpaid_at_start(get(&r, 1)?, date, get(&r, 2)?, get(&r, 3)?);
        unpaid.insert(get(&r, 0)?, owed);
    }
    let flows = day_flows(txn, tenant_id, date, None).await?;
    let mut stale_count = 0_u64;
    for chunk in wraps.chunks(INSERT_ROWS) {
        let mut pa = Params::new(b);
        let rows: Vec<String> = chunk
            .iter()
            .map(|(id, currency, scale)| {
                let mut v = accs.remove(id).unwrap_or_default().finish(*scale);
                let fees_unpaid = unpaid.get(id).copied().unwrap_or(0);
                v.nav = nav_minor(v.cash, v.units_value, fees_unpaid);
                let (contributions, withdrawals) = flows.get(id).copied().unwrap_or_default();
                if v.stale_prices {
                    stale_count += 1;
                }
                pa.row(vec![
                    tenant_id.into(),
                    (*id).into(),
                    date.into(),
                    currency.clone().into(),
                    v.cash.into(),
                    v.units_value.into(),
                    v.nav.into(),
                    contributions.into(),
                    withdrawals.into(),
                    v.stale_prices.into(),
                    fees_unpaid.into(),
                ])
            })
            .collect();
        let q = format!(
            "INSERT INTO wrap_snapshots (tenant_id, wrap_id, business_date, currency, cash, \
             units_value, nav, contributions, withdrawals, stale_prices, fees_unpaid) VALUES {}",
            rows.join(", ")
        );
        exec(txn, q, pa.values).await?;
    }
    Ok((wraps.len() as u64, stale_count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdings_are_summed_exactly_then_rounded_down_once() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let mut pricing = HashMap::new();
        // 1 unit = price / 10,000; units have 0 decimals here.
        for (code, price, date) in [("A", "15000", "2026-11-20"), ("B", "5000", "2026-11-19")] {
            pricing.insert(
                code.to_owned(),
                Pricing {
                    unit_scale: 0,
                    quote_unit: 10_000,
                    quote: Some(PriceQuote {
                        date: d(date),
                        price: price.parse().unwrap(),
                    }),
                },
            );
        }
        let id = Uuid::now_v7();
        let mut accs = HashMap::new();
        let day = d("2026-11-20");
        add_account(&mut accs, &format!("wrap:{id}:cash"), 500, &pricing, day);
        // 3 × 1.5 = 4.5 and 1 × 0.5 = 0.5: 5 exactly together, while rounding each down
        // first would give 4 + 0 = 4.
        add_account(&mut accs, &format!("wrap:{id}:units:A"), 3, &pricing, day);
        add_account(&mut accs, &format!("wrap:{id}:units:B"), 1, &pricing, day);
        let v = accs.remove(&id).unwrap().finish(0);
        assert_eq!(v.units_value, 5);
        assert_eq!(v.nav, 505);
        assert!(v.stale_prices, "B's price is from the day before");
    }
}
