//! Step `billing`: at each period end, collect the fees accrued (whole minor units, fee plus
//! consumption tax) from the wrap's cash and divide them into payables; performance fees at
//! crystallisation; the platform's monthly fee invoiced to each distributor.
//!
//! **Period end** (the terms in effect on the date): monthly, the last calendar day of the
//! month; quarterly, the last day of March, June, September and December. Holidays included
//! (billing is a book entry; it needs no market). On its period end everything the wrap owes
//! (its fee state's `*_owed`, including that day's accrual, all posted to `accrued:wrap:{id}`
//! by that date's accrual step: [`super::fees`]) becomes due.
//!
//! **Collection.** What is due is collected from `wrap:{id}:cash` as far as its available
//! balance (holds counted, sale proceeds not settled yet left out) allows, in this order: management-fee tax, management fee,
//! performance-fee tax, performance fee (tax first: it is owed to the tax authority whatever
//! becomes of the fee). What cash does not cover stays owed and due, still deducted from the
//! NAV, and is collected on the following days as cash appears: billing looks at every wrap
//! with something due every day, not only on period ends. Billing itself moves no units: the
//! cash is raised by the rebalance step ([`super::rebalance`], the one place that decides
//! orders), which reads what is due (`wrap_fee_state`: `fee_due + tax_due + perf_due +
//! perf_tax_due`) and, on the next business day, sells units for it (trigger `fees`, by the
//! holdings' values, as for a withdrawal) whenever the wrap's cash, proceeds on their way
//! included, is less, whether or not anything else triggers a rebalance; a rebalance that does
//! trigger keeps it on top of its cash target. Those proceeds are collected here once they
//! settle. The step's detail reports `collected` and `uncollected`: the sum over every wrap of
//! what was due that day and not collected, on any day, not only on period ends (so
//! `collected + uncollected` is what was due). Every collection is a `fee_collections` row per
//! wrap, date and kind: what was due, what was collected, its split, and what is still
//! uncollected; on a period end the row is written even when nothing could be collected, on
//! other days only when something was (a wrap waiting for its sale to settle, or whose units
//! cannot be sold, would otherwise add a row every day: the step's `uncollected` says it).
//!
//! Shape: load the tenant's fee states with something to bill, then [`assess`] (no I/O: what
//! each wrap pays, asserting collected + uncollected = due and parts = fee), then write (the
//! entries, `fee_collections`, `performance_fees`, the states).
//!
//! **Entries** (kind `fee_billing`, key `billing:{tenant}:{date}:{chunk}`), per book and
//! currency, for a chunk of wraps: Dr `wrap:{id}:cash` and Cr `accrued:wrap:{id}` the amount
//! collected from each wrap; Dr `accrued:fees:{CCY}` / `accrued:tax:{CCY}` (clearing the
//! accrual) and Cr `payable:tax:{CCY}`, `payable:channel:{tenant}:{CCY}`,
//! `payable:manager:{manager}:{CCY}`, `payable:platform:{CCY}`. The `wrap:` debits equal the
//! `payable:` credits, so the reconciliation is unchanged (both are on its virtual side); the
//! `accrued:` postings balance among themselves outside it. The fee-split report reconciles
//! with these entries and with `fee_collections` (`channel + manager + platform =
//! fee_collected`, a CHECK).
//!
//! **Split.** Each collected fee is divided by the agreement's shares (the performance fee's
//! own split for it): each part the floor of its exact share, the units left over one each to
//! the largest fractional remainders (ties: channel, manager, platform), so the parts sum
//! exactly to the fee ([`super::fees::split_amount`]).
//!
//! **Performance fee** (terms with `performance_fee`, crystallisation `yearly`): crystallised
//! on 31 December, the period end that closes the calendar year for both billing periods.
//! NAV for it: the day's snapshot NAV less that day's accrual (so net of every management fee
//! of the year). The high-water mark is adjusted for flows: `gain = NAV − (hwm + hwm_flows)`,
//! where `hwm_flows` is the contributions less withdrawals since the mark was set (a
//! contribution is not a gain; a withdrawal is not a loss). Fee = rate × gain, rounded down to
//! the minor unit (a one-off amount: the customer keeps the fraction), only when the gain is
//! positive; tax = fee × tax rate, rounded down. After a fee the mark moves to the NAV net of
//! that fee and its tax, and the flows restart at zero; without one the mark and flows stay, so
//! no fee is charged until earlier losses are recovered. Every evaluation is a
//! `performance_fees` row. The fee is posted as owed (Dr `accrued:wrap` / Cr `accrued:fees`,
//! `accrued:tax`, key `perf:{tenant}:{date}:{chunk}`) and due at once. A wrap liquidated
//! (closed, or everything withdrawn or switched out) crystallises when its money is paid
//! out, with either crystallisation ([`crystallise_at_liquidation`]); `at_close` only then.
//! A wrap that crystallised so on 31 December is not evaluated again that day.
//!
//! **Platform fee.** On each month end every distributor with a monthly fee in effect
//! (`platform_fees`) gets a `platform_invoices` row for the month (primary key (tenant,
//! month end): a re-run finds it). An invoice, not a ledger entry: the fee is owed by the
//! distributor itself, not out of its customers' money, so nothing in its book changes.
//!
//! Invariants and the tests (`api/tests/http/eod_fees.rs`) that try them: collected at a month
//! end = floor of the month's exact fee, the carry kept (`a_month_of_accrual_is_exact`); parts
//! sum to the fee (`uneven_split_and_tiers`); a short wrap pays what its cash allows and the
//! rest later (`cash_short_at_billing`); with no rebalance triggered, the fees due are raised
//! by selling units and collected once the sale settles
//! (`fees_due_sell_units_without_a_rebalance`); what cannot be collected is reported every
//! day (`billing_reports_what_it_could_not_collect`); no performance fee until losses are recovered
//! (`high_water_mark_through_a_loss_and_a_recovery`); the books reconcile every day (the
//! `checks` step, run by every test).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::events::{NewEvent, types};
use crate::market::agreement::{BillingPeriod, Crystallisation, Split};
use chrono::{Datelike, Days, NaiveDate, Utc};
use ledger::asset::decimal_of;
use ledger::{Ledger, NewEntry, NewPosting};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DatabaseTransaction, Value};
use serde_json::json;
use uuid::Uuid;

use super::fees::{
    self, AgreementTerms, FeeState, STATE_COLUMN_COUNT, STATE_COLUMNS, accrued_fees_code,
    accrued_tax_code, amount, book_accounts, post_all, read_state, save_states, split_amount,
};
use super::{EodError, corrupt};
use ledger::sql::{INSERT_ROWS, Params, exec, get, micros, query};

/// Postings one billing entry may carry ([`ledger::entry::MAX_POSTINGS`]).
const MAX_POSTINGS: usize = ledger::entry::MAX_POSTINGS;

/// Whether `date` ends a billing period.
pub fn is_period_end(period: BillingPeriod, date: NaiveDate) -> bool {
    let month_end = date
        .checked_add_days(Days::new(1))
        .is_none_or(|next| next.month() != date.month());
    month_end
        && match period {
            BillingPeriod::Monthly => true,
            BillingPeriod::Quarterly => matches!(date.month(), 3 | 6 | 9 | 12),
        }
}

/// Whether `date` is the yearly crystallisation date (31 December).
pub fn is_year_end(date: NaiveDate) -> bool {
    date.month() == 12 && date.day() == 31
}

fn is_month_end(date: NaiveDate) -> bool {
    is_period_end(BillingPeriod::Monthly, date)
}

/// `rate × gain` and its tax, each rounded down to the minor unit; (0, 0) unless gain > 0.
pub fn performance_fee(gain: i64, rate: Decimal, tax_rate: Decimal) -> (i64, i64) {
    if gain <= 0 {
        return (0, 0);
    }
    let fee = (Decimal::from(gain) * rate).floor();
    let tax = (fee * tax_rate).floor();
    (whole(fee), whole(tax))
}

/// A whole (already floored) decimal as an integer of minor units.
fn whole(d: Decimal) -> i64 {
    i64::try_from(d.mantissa() / 10_i128.pow(d.scale())).unwrap_or(0)
}

/// One wrap as billing reads it.
struct Wrap {
    state: FeeState,
    agreement_id: Uuid,
    manager: Uuid,
    scale: u32,
    cash_account: Uuid,
    cash_available: i64,
    /// The day's snapshot NAV less the day's accrual (for the performance fee).
    nav_after_accrual: Option<i64>,
}

/// What one wrap pays today, by kind.
#[derive(Default, Clone, Copy)]
struct Take {
    fee: i64,
    tax: i64,
    perf: i64,
    perf_tax: i64,
    parts: [i64; 3],
    perf_parts: [i64; 3],
}

impl Take {
    fn total(&self) -> i64 {
        self.fee + self.tax + self.perf + self.perf_tax
    }

    /// The sums a take must keep before it is booked: each fee split into channel, manager
    /// and platform parts that add up to it exactly (DOMAIN.md section 4, "Fee split"), no
    /// part negative.
    fn check(&self) -> Result<(), String> {
        for (what, whole, parts) in [
            ("management fee", self.fee, self.parts),
            ("performance fee", self.perf, self.perf_parts),
        ] {
            if parts.iter().sum::<i64>() != whole || parts.iter().any(|p| *p < 0) {
                return Err(format!("{what} {whole} split into {parts:?}"));
            }
        }
        Ok(())
    }
}

/// Runs billing for `date`; returns the counts.
pub async fn run(
    txn: &DatabaseTransaction,
    ledger: &Ledger,
    date: NaiveDate,
    calendar: &ledger::calendar::Calendar,
) -> Result<serde_json::Value, EodError> {
    let terms = fees::all_terms(txn).await?;
    let rows = query(
        txn,
        "SELECT DISTINCT tenant_id FROM wrap_fee_state".to_owned(),
        vec![],
    )
    .await?;
    let mut tenant_ids: Vec<Uuid> = rows
        .iter()
        .map(|r| get::<Uuid>(r, 0))
        .collect::<Result<_, _>>()?;
    tenant_ids.sort();
    let mut counts = Counts::default();
    for tenant_id in tenant_ids {
        bill_tenant(txn, ledger, tenant_id, date, calendar, &terms, &mut counts).await?;
    }
    let invoices = if is_month_end(date) {
        invoice_platform_fees(txn, date).await?
    } else {
        0
    };
    Ok(json!({
        "wraps_billed": counts.wraps,
        "collected": counts.collected,
        "uncollected": counts.uncollected,
        "performance_fees": counts.performance,
        "entries": counts.entries,
        "platform_invoices": invoices,
    }))
}

#[derive(Default)]
struct Counts {
    wraps: u64,
    collected: i64,
    uncollected: i64,
    performance: u64,
    entries: u64,
}

async fn load_wraps(
    txn: &DatabaseTransaction,
    tenant_id: Uuid,
    date: NaiveDate,
) -> Result<Vec<Wrap>, EodError> {
    // On a month end any wrap may reach its period end (and on 31 December crystallise):
    // read every state; otherwise only those with something due (arrears).
    let filter = if is_month_end(date) {
        ""
    } else {
        " AND s.fee_due + s.tax_due + s.perf_due + s.perf_tax_due > 0"
    };
    let mut pa = Params::new(txn.get_database_backend());
    // SQLite binds `?` in order of appearance: one value per placeholder, in that order.
    let d1 = pa.push(date);
    let d2 = pa.push(date);
    let t = pa.push(tenant_id);
    let q = format!(
        "SELECT {STATE_COLUMNS}, w.agreement_id, w.manager_tenant_id, w.currency_scale, \
         a.id, a.credits_posted - a.debits_posted - a.debits_pending, sn.nav, \
         fa.fee_posted + fa.tax_posted \
         FROM wrap_fee_state s \
         JOIN wraps w ON w.tenant_id = s.tenant_id AND w.id = s.wrap_id \
         JOIN ledger_accounts a ON a.tenant_id = w.tenant_id AND a.id = w.cash_account_id \
         LEFT JOIN wrap_snapshots sn ON sn.tenant_id = s.tenant_id AND sn.wrap_id = s.wrap_id \
             AND sn.business_date = {d1} \
         LEFT JOIN fee_accruals fa ON fa.tenant_id = s.tenant_id AND fa.wrap_id = s.wrap_id \
             AND fa.business_date = {d2} \
         WHERE s.tenant_id = {t}{filter} ORDER BY s.wrap_id"
    );
    let n = STATE_COLUMN_COUNT;
    let mut out = Vec::new();
    for r in query(txn, q, pa.values).await? {
        let nav: Option<i64> = get(&r, n + 5)?;
        let accrued: Option<i64> = get(&r, n + 6)?;
        out.push(Wrap {
            state: read_state(&r, 0)?,
            agreement_id: get(&r, n)?,
            manager: get(&r, n + 1)?,
            scale: u32::try_from(get::<i32>(&r, n + 2)?).unwrap_or(0),
            cash_account: get(&r, n + 3)?,
            cash_available: get::<i64>(&r, n + 4)?.max(0),
            nav_after_accrual: nav.map(|v| v - accrued.unwrap_or(0)),
        });
    }
    Ok(out)
}

/// A performance-fee evaluation, for `performance_fees`.
struct Crystallised {
    wrap_id: Uuid,
    nav: i64,
    hwm: i64,
    flows: i64,
    rate: Decimal,
    fee: i64,
    tax: i64,
    new_hwm: i64,
}

/// A collection, for `fee_collections`.
struct Collection {
    wrap_id: Uuid,
    kind: &'static str,
    period_end: bool,
    manager: Uuid,
    currency: String,
    fee_due: i64,
    tax_due: i64,
    fee: i64,
    tax: i64,
    parts: [i64; 3],
    chunk: Option<usize>,
}

async fn bill_tenant(
    txn: &DatabaseTransaction,
    ledger: &Ledger,
    tenant_id: Uuid,
    date: NaiveDate,
    calendar: &ledger::calendar::Calendar,
    terms: &HashMap<Uuid, AgreementTerms>,
    counts: &mut Counts,
) -> Result<(), EodError> {
    let mut wraps = load_wraps(txn, tenant_id, date).await?;
    if wraps.is_empty() {
        return Ok(());
    }
    // Sale proceeds not settled yet are not there to collect from.
    let unsettled = super::trading::unsettled(txn, tenant_id, date, calendar).await?;
    for w in &mut wraps {
        if let Some(u) = unsettled.get(&w.state.wrap_id) {
            w.cash_available = (w.cash_available - u.cash).max(0);
        }
    }
    // Wraps liquidated today have crystallised already (`crystallise_at_liquidation`).
    let mut done_today: HashSet<Uuid> = HashSet::new();
    if is_year_end(date) {
        let mut pa = Params::new(txn.get_database_backend());
        let q = format!(
            "SELECT wrap_id FROM performance_fees WHERE tenant_id = {} AND business_date = {}",
            pa.push(tenant_id),
            pa.push(date)
        );
        for r in query(txn, q, pa.values).await? {
            done_today.insert(get(&r, 0)?);
        }
    }
    let Assessment {
        crystallised,
        takes,
        mut collections,
        billed,
        collected,
        uncollected,
    } = assess(&mut wraps, terms, date, &done_today);
    for (i, k, _) in &takes {
        k.check().map_err(|e| {
            corrupt(format!(
                "billing of {date}, wrap {}: {e}",
                wraps[*i].state.wrap_id
            ))
        })?;
    }
    counts.wraps += billed;
    counts.collected += collected;
    counts.uncollected += uncollected;
    counts.performance += crystallised.iter().filter(|c| c.fee > 0).count() as u64;

    // Performance fees first become owed (posted to the accrual accounts), then are collected
    // with the rest.
    let at: HashMap<Uuid, usize> = wraps
        .iter()
        .enumerate()
        .map(|(i, w)| (w.state.wrap_id, i))
        .collect();
    let owed_now: Vec<(&FeeState, u32, i64, i64)> = crystallised
        .iter()
        .filter(|c| c.fee > 0)
        .filter_map(|c| {
            let w = &wraps[*at.get(&c.wrap_id)?];
            Some((&w.state, w.scale, c.fee, c.tax))
        })
        .collect();
    post_performance_fees(txn, ledger, tenant_id, date, "perf", &owed_now).await?;

    // Collections, per currency, in chunks that fit an entry.
    let mut by_ccy: BTreeMap<String, Vec<(usize, Take)>> = BTreeMap::new();
    for (i, k, _) in &takes {
        if k.total() > 0 {
            by_ccy
                .entry(wraps[*i].state.currency.clone())
                .or_default()
                .push((*i, *k));
        }
    }
    let mut entries: Vec<NewEntry> = Vec::new();
    let mut chunk_of: HashMap<Uuid, usize> = HashMap::new();
    let mut chunk_no = 0_usize;
    for (ccy, rows) in &by_ccy {
        let mut codes = vec![
            accrued_fees_code(ccy),
            accrued_tax_code(ccy),
            format!("payable:tax:{ccy}"),
            format!("payable:channel:{tenant_id}:{ccy}"),
            format!("payable:platform:{ccy}"),
        ];
        let mut managers: Vec<Uuid> = rows.iter().map(|(i, _)| wraps[*i].manager).collect();
        managers.sort();
        managers.dedup();
        codes.extend(
            managers
                .iter()
                .map(|m| format!("payable:manager:{m}:{ccy}")),
        );
        let acc = book_accounts(txn, tenant_id, ccy, &codes).await?;
        let mut start = 0;
        while start < rows.len() {
            // Grow the chunk while its postings (two per wrap, five book accounts, one per
            // manager) fit one entry.
            let mut end = start;
            let mut mgrs: Vec<Uuid> = Vec::new();
            while end < rows.len() {
                let m = wraps[rows[end].0].manager;
                let extra = usize::from(!mgrs.contains(&m));
                if 2 * (end - start + 1) + 5 + mgrs.len() + extra > MAX_POSTINGS {
                    break;
                }
                if extra == 1 {
                    mgrs.push(m);
                }
                end += 1;
            }
            let chunk = &rows[start..end];
            let scale = wraps[chunk[0].0].scale;
            let mut postings = Vec::with_capacity(2 * chunk.len() + 5 + mgrs.len());
            let (mut fee, mut tax, mut channel, mut platform) = (0, 0, 0, 0);
            let mut by_manager: BTreeMap<Uuid, i64> = BTreeMap::new();
            for (i, k) in chunk {
                let w = &wraps[*i];
                postings.push(NewPosting::debit(
                    w.cash_account,
                    ccy,
                    amount(k.total(), scale),
                ));
                postings.push(NewPosting::credit(
                    w.state.account_id,
                    ccy,
                    amount(k.total(), scale),
                ));
                fee += k.fee + k.perf;
                tax += k.tax + k.perf_tax;
                channel += k.parts[0] + k.perf_parts[0];
                *by_manager.entry(w.manager).or_default() += k.parts[1] + k.perf_parts[1];
                platform += k.parts[2] + k.perf_parts[2];
                chunk_of.insert(w.state.wrap_id, chunk_no);
            }
            let mut push = |side_debit: bool, code: String, x: i64| {
                if x > 0 {
                    let id = acc[&code];
                    postings.push(if side_debit {
                        NewPosting::debit(id, ccy, amount(x, scale))
                    } else {
                        NewPosting::credit(id, ccy, amount(x, scale))
                    });
                }
            };
            push(true, accrued_fees_code(ccy), fee);
            push(true, accrued_tax_code(ccy), tax);
            push(false, format!("payable:tax:{ccy}"), tax);
            push(false, format!("payable:channel:{tenant_id}:{ccy}"), channel);
            for (m, x) in by_manager {
                push(false, format!("payable:manager:{m}:{ccy}"), x);
            }
            push(false, format!("payable:platform:{ccy}"), platform);
            entries.push(NewEntry {
                tenant_id,
                idempotency_key: format!("billing:{tenant_id}:{date}:{chunk_no}"),
                kind: "fee_billing".to_owned(),
                effective_date: date,
                description: format!("fees collected on {date}"),
                metadata: json!({ "eod_date": date, "chunk": chunk_no, "wraps": chunk.len() }),
                postings,
                hold: None,
            });
            chunk_no += 1;
            start = end;
        }
    }
    counts.entries += entries.len() as u64;
    let entry_ids = post_all(txn, ledger, entries).await?;
    for c in &mut collections {
        c.chunk = chunk_of.get(&c.wrap_id).copied();
    }
    insert_collections(txn, tenant_id, date, &collections, &entry_ids).await?;
    insert_crystallisations(txn, tenant_id, date, &crystallised).await?;
    let changed: Vec<&FeeState> = wraps
        .iter()
        .filter(|w| w.state.as_of == date)
        .map(|w| &w.state)
        .collect();
    save_states(txn, tenant_id, &changed).await?;
    let scales: HashMap<Uuid, u32> = wraps.iter().map(|w| (w.state.wrap_id, w.scale)).collect();
    // Last (the events' cursor locks come after every other lock: crate::events).
    crate::events::record(
        txn,
        fee_events(tenant_id, date, &collections, &scales),
        Utc::now(),
    )
    .await?;
    Ok(())
}

/// `fee.collected` for what a collection took, `fee.uncollected` for what it could not (the
/// distributor's events: they name the wrap; the manager is named by its tenant id only).
fn fee_events(
    tenant_id: Uuid,
    date: NaiveDate,
    collections: &[Collection],
    scales: &HashMap<Uuid, u32>,
) -> Vec<NewEvent> {
    let mut events = Vec::new();
    for c in collections {
        let scale = scales.get(&c.wrap_id).copied().unwrap_or(0);
        let money = |minor: i64| decimal_of(i128::from(minor), scale).to_string();
        let collected = c.fee + c.tax;
        let uncollected = c.fee_due + c.tax_due - collected;
        let object = format!("wrap:{}", c.wrap_id);
        if collected > 0 {
            events.push(NewEvent::new(
                tenant_id,
                types::FEE_COLLECTED,
                object.clone(),
                Some(date),
                json!({
                    "wrap_id": c.wrap_id, "kind": c.kind, "currency": c.currency,
                    "fee": money(c.fee), "tax": money(c.tax),
                    "channel": money(c.parts[0]), "manager": money(c.parts[1]),
                    "platform": money(c.parts[2]), "manager_tenant_id": c.manager,
                }),
            ));
        }
        if uncollected > 0 {
            events.push(NewEvent::new(
                tenant_id,
                types::FEE_UNCOLLECTED,
                object,
                Some(date),
                json!({
                    "wrap_id": c.wrap_id, "kind": c.kind, "currency": c.currency,
                    "uncollected": money(uncollected), "period_end": c.period_end,
                }),
            ));
        }
    }
    events
}

/// What billing does to a tenant's wraps on `date`, decided before anything is written.
struct Assessment {
    crystallised: Vec<Crystallised>,
    /// (index into the wraps, what it pays, whether it is a period end).
    takes: Vec<(usize, Take, bool)>,
    collections: Vec<Collection>,
    /// Wraps with a collection recorded.
    billed: u64,
    collected: i64,
    /// Due today and not collected, over every wrap with something due.
    uncollected: i64,
}

/// The pure part of billing a tenant on `date`: period ends make what is owed due, 31
/// December crystallises the performance fee, and what is due is taken from the available
/// cash (tax first). Updates each wrap's fee state in place (`as_of` = `date` when it
/// changed). No I/O.
fn assess(
    wraps: &mut [Wrap],
    terms: &HashMap<Uuid, AgreementTerms>,
    date: NaiveDate,
    done_today: &HashSet<Uuid>,
) -> Assessment {
    let mut crystallised: Vec<Crystallised> = Vec::new();
    let mut takes: Vec<(usize, Take, bool)> = Vec::new();
    let mut collections: Vec<Collection> = Vec::new();
    let (mut billed, mut collected, mut uncollected) = (0_u64, 0_i64, 0_i64);
    for (i, w) in wraps.iter_mut().enumerate() {
        let Some(t) = terms.get(&w.agreement_id).and_then(|a| a.on(date)) else {
            // No terms in effect: nothing is collected, and what is due stays so.
            let s = &w.state;
            uncollected += s.fee_due + s.tax_due + s.perf_due + s.perf_tax_due;
            continue;
        };
        let s = &mut w.state;
        let period_end = is_period_end(t.billing_period, date);
        if period_end {
            s.touch(date);
            s.fee_due = s.fee_owed;
            s.tax_due = s.tax_owed;
            s.perf_due = s.perf_owed;
            s.perf_tax_due = s.perf_tax_owed;
        }
        if is_year_end(date)
            && let Some(p) = &t.performance_fee
            && p.crystallisation == Crystallisation::Yearly
            && let Some(nav) = w.nav_after_accrual
            && !done_today.contains(&s.wrap_id)
        {
            let gain = nav - s.hwm - s.hwm_flows;
            let (fee, tax) = performance_fee(gain, p.rate, t.consumption_tax_rate);
            let before = (s.hwm, s.hwm_flows);
            if fee > 0 {
                s.touch(date);
                s.perf_owed += fee;
                s.perf_tax_owed += tax;
                s.perf_due += fee;
                s.perf_tax_due += tax;
                s.hwm = nav - fee - tax;
                s.hwm_flows = 0;
                s.hwm_date = date;
            }
            crystallised.push(Crystallised {
                wrap_id: s.wrap_id,
                nav,
                hwm: before.0,
                flows: before.1,
                rate: p.rate,
                fee,
                tax,
                new_hwm: s.hwm + s.hwm_flows,
            });
        }
        let due = s.fee_due + s.tax_due + s.perf_due + s.perf_tax_due;
        if due == 0 {
            continue;
        }
        s.touch(date);
        let mut cash = w.cash_available;
        let mut take_of = |due: i64| {
            let x = due.min(cash);
            cash -= x;
            x
        };
        let mut k = Take {
            tax: take_of(s.tax_due),
            ..Take::default()
        };
        k.fee = take_of(s.fee_due);
        k.perf_tax = take_of(s.perf_tax_due);
        k.perf = take_of(s.perf_due);
        debug_assert!(
            k.total() <= due && k.total() <= w.cash_available,
            "collected more than due or than the cash"
        );
        // Reported every day something is due and not all collected.
        uncollected += due - k.total();
        if !period_end && k.total() == 0 {
            // Arrears and still no cash: no row until some arrives (a closed wrap's arrears
            // would otherwise add a row every day); the step's `uncollected` counts them.
            continue;
        }
        k.parts = split_amount(k.fee, &t.split);
        let perf_split: Split = t.performance_fee.as_ref().map_or(t.split, |p| p.split);
        k.perf_parts = split_amount(k.perf, &perf_split);
        for (kind, fee_due, tax_due, fee, tax, parts) in [
            ("management", s.fee_due, s.tax_due, k.fee, k.tax, k.parts),
            (
                "performance",
                s.perf_due,
                s.perf_tax_due,
                k.perf,
                k.perf_tax,
                k.perf_parts,
            ),
        ] {
            if fee_due + tax_due > 0 {
                collections.push(Collection {
                    wrap_id: s.wrap_id,
                    kind,
                    period_end,
                    manager: w.manager,
                    currency: s.currency.clone(),
                    fee_due,
                    tax_due,
                    fee,
                    tax,
                    parts,
                    chunk: None,
                });
            }
        }
        s.fee_owed -= k.fee;
        s.fee_due -= k.fee;
        s.tax_owed -= k.tax;
        s.tax_due -= k.tax;
        s.perf_owed -= k.perf;
        s.perf_due -= k.perf;
        s.perf_tax_owed -= k.perf_tax;
        s.perf_tax_due -= k.perf_tax;
        debug_assert_eq!(
            s.fee_due + s.tax_due + s.perf_due + s.perf_tax_due,
            due - k.total(),
            "collected + uncollected = due"
        );
        debug_assert_eq!(k.parts.iter().sum::<i64>(), k.fee, "parts = fee");
        debug_assert_eq!(k.perf_parts.iter().sum::<i64>(), k.perf, "parts = fee");
        billed += 1;
        collected += k.total();
        takes.push((i, k, period_end));
    }
    Assessment {
        crystallised,
        takes,
        collections,
        billed,
        collected,
        uncollected,
    }
}

/// Posts crystallised performance fees as owed: per currency and chunk of at most
/// [`fees::WRAPS_PER_ENTRY`] wraps, Dr `accrued:wrap:{id}` fee + tax, Cr `accrued:fees:{CCY}`
/// and `accrued:tax:{CCY}`; key `{prefix}:{tenant}:{date}:{chunk}`. `rows`: the wrap's state
/// (account, currency), its currency scale, fee, tax.
async fn post_performance_fees(
    txn: &DatabaseTransaction,
    ledger: &Ledger,
    tenant_id: Uuid,
    date: NaiveDate,
    prefix: &str,
    rows: &[(&FeeState, u32, i64, i64)],
) -> Result<(), EodError> {
    let mut by_ccy: BTreeMap<&str, Vec<&(&FeeState, u32, i64, i64)>> = BTreeMap::new();
    for r in rows {
        by_ccy.entry(r.0.currency.as_str()).or_default().push(r);
    }
    let mut entries: Vec<NewEntry> = Vec::new();
    let mut chunk_no = 0_usize;
    for (ccy, rows) in &by_ccy {
        let acc = book_accounts(
            txn,
            tenant_id,
            ccy,
            &[accrued_fees_code(ccy), accrued_tax_code(ccy)],
        )
        .await?;
        for chunk in rows.chunks(fees::WRAPS_PER_ENTRY) {
            let scale = chunk[0].1;
            let mut postings = Vec::with_capacity(chunk.len() + 2);
            let (mut fee, mut tax) = (0, 0);
            for (state, _, f, t) in chunk {
                postings.push(NewPosting::debit(
                    state.account_id,
                    ccy,
                    amount(f + t, scale),
                ));
                fee += f;
                tax += t;
            }
            postings.push(NewPosting::credit(
                acc[&accrued_fees_code(ccy)],
                ccy,
                amount(fee, scale),
            ));
            if tax > 0 {
                postings.push(NewPosting::credit(
                    acc[&accrued_tax_code(ccy)],
                    ccy,
                    amount(tax, scale),
                ));
            }
            entries.push(NewEntry {
                tenant_id,
                idempotency_key: format!("{prefix}:{tenant_id}:{date}:{chunk_no}"),
                kind: "performance_fee".to_owned(),
                effective_date: date,
                description: format!("performance fee crystallised on {date}"),
                metadata: json!({ "eod_date": date, "chunk": chunk_no }),
                postings,
                hold: None,
            });
            chunk_no += 1;
        }
    }
    post_all(txn, ledger, entries).await?;
    Ok(())
}

/// A wrap whose money is all paid out today (a close, or everything withdrawn or switched
/// out), as the allocation step pays it.
#[derive(Debug)]
pub struct Liquidation {
    pub wrap_id: Uuid,
    pub agreement_id: Uuid,
    pub scale: u32,
    /// What is paid out before any performance fee: cash less the fees already owed.
    pub value: i64,
    /// Paid out of the wrap earlier today by the same step, not posted yet (a flow).
    pub paid_before: i64,
}

/// Crystallises the performance fee of each wrap liquidated today whose terms have one
/// (`yearly` or `at_close`): the gain leaving the wrap is charged when its money leaves,
/// not left behind for a 31 December the money will not see (ESMA's guidelines on
/// performance fees likewise allow crystallisation on redemption besides the yearly date).
/// Same rule as on 31 December: `gain = value − (hwm + hwm_flows + today's flows so far)`,
/// where `value` is the cash being paid out net of the fees already owed; fee = rate × gain
/// rounded down, tax rounded down, only on a gain, and never more than the value paid out
/// (fee + tax ≤ value). The fee is posted as owed
/// (`perf-liquidation:{tenant}:{date}:{chunk}`) and recorded in `performance_fees` (charged
/// or not); the payout keeps it back, and the same date's billing collects it (a
/// liquidation makes everything owed due). It is also deducted from the same date's
/// valuation (added to `owed_at_start`), as the payout is, so the day's NAV and return see
/// it as a fee, not as a value left in an empty wrap. The mark then moves to the value net
/// of the fee (a wrap that stays open starts again from what it pays out), with the day's
/// flows so far offset, since the accrual step adds the whole day's flows later.
/// Returns fee + tax per wrap charged. Tried by
/// `api/tests/http/eod_fees.rs::a_liquidation_crystallises_the_performance_fee`.
pub async fn crystallise_at_liquidation(
    txn: &DatabaseTransaction,
    ledger: &Ledger,
    tenant_id: Uuid,
    date: NaiveDate,
    liquidations: &[Liquidation],
) -> Result<HashMap<Uuid, i64>, EodError> {
    let mut charged = HashMap::new();
    if liquidations.is_empty() {
        return Ok(charged);
    }
    let terms = fees::all_terms(txn).await?;
    let with_fee: Vec<(
        &Liquidation,
        &crate::market::agreement::PerformanceFee,
        Decimal,
    )> = liquidations
        .iter()
        .filter_map(|l| {
            let t = terms.get(&l.agreement_id)?.on(date)?;
            Some((l, t.performance_fee.as_ref()?, t.consumption_tax_rate))
        })
        .collect();
    if with_fee.is_empty() {
        return Ok(charged);
    }
    let ids: Vec<Uuid> = with_fee.iter().map(|(l, _, _)| l.wrap_id).collect();
    let mut states = fees::states_of(txn, tenant_id, &ids).await?;
    let flows = super::valuation::day_flows(txn, tenant_id, date, Some(&ids)).await?;
    let mut crystallised: Vec<Crystallised> = Vec::new();
    // (wrap, currency scale, fee, tax) of those charged, in wrap order.
    let mut owed: Vec<(Uuid, u32, i64, i64)> = Vec::new();
    for (l, p, tax_rate) in &with_fee {
        // A wrap never valued above zero has no mark and nothing to charge.
        let Some(s) = states.get_mut(&l.wrap_id) else {
            continue;
        };
        let (c, w) = flows.get(&l.wrap_id).copied().unwrap_or_default();
        let today = c - w - l.paid_before;
        let flows = s.hwm_flows + today;
        let (mut fee, mut tax) = performance_fee(l.value - s.hwm - flows, p.rate, *tax_rate);
        if fee + tax > l.value {
            // Gains withdrawn before (a mark below zero) can make the fee exceed what is
            // left: never charge more than is paid out.
            fee = whole((Decimal::from(l.value) / (Decimal::ONE + *tax_rate)).floor());
            tax = whole((Decimal::from(fee) * *tax_rate).floor()).min(l.value - fee);
        }
        let before = s.hwm;
        if fee > 0 {
            s.touch(date);
            s.perf_owed += fee;
            s.perf_tax_owed += tax;
            s.perf_due += fee;
            s.perf_tax_due += tax;
            s.owed_at_start += fee + tax;
            s.hwm = l.value - fee - tax;
            s.hwm_flows = -today;
            s.hwm_date = date;
            charged.insert(l.wrap_id, fee + tax);
            owed.push((l.wrap_id, l.scale, fee, tax));
        }
        crystallised.push(Crystallised {
            wrap_id: l.wrap_id,
            nav: l.value,
            hwm: before,
            flows,
            rate: p.rate,
            fee,
            tax,
            new_hwm: if fee > 0 { s.hwm } else { before + flows },
        });
    }
    owed.sort_by_key(|o| o.0);
    let owed_now: Vec<(&FeeState, u32, i64, i64)> = owed
        .iter()
        .filter_map(|(w, scale, fee, tax)| Some((states.get(w)?, *scale, *fee, *tax)))
        .collect();
    post_performance_fees(txn, ledger, tenant_id, date, "perf-liquidation", &owed_now).await?;
    insert_crystallisations(txn, tenant_id, date, &crystallised).await?;
    let changed: Vec<&FeeState> = owed_now.iter().map(|o| o.0).collect();
    save_states(txn, tenant_id, &changed).await?;
    Ok(charged)
}

async fn insert_collections(
    txn: &DatabaseTransaction,
    tenant_id: Uuid,
    date: NaiveDate,
    rows: &[Collection],
    entry_ids: &[Uuid],
) -> Result<(), EodError> {
    for chunk in rows.chunks(INSERT_ROWS / 2) {
        let mut pa = Params::new(txn.get_database_backend());
        let values: Vec<String> = chunk
            .iter()
            .map(|c| {
                let entry = c
                    .chunk
                    .filter(|_| c.fee + c.tax > 0)
                    .and_then(|n| entry_ids.get(n).copied());
                pa.row(vec![
                    tenant_id.into(),
                    c.wrap_id.into(),
                    date.into(),
                    c.kind.into(),
                    c.period_end.into(),
                    c.manager.into(),
                    c.currency.clone().into(),
                    c.fee_due.into(),
                    c.tax_due.into(),
                    c.fee.into(),
                    c.tax.into(),
                    c.parts[0].into(),
                    c.parts[1].into(),
                    c.parts[2].into(),
                    (c.fee_due + c.tax_due - c.fee - c.tax).into(),
                    Value::from(entry),
                ])
            })
            .collect();
        let q = format!(
            "INSERT INTO fee_collections (tenant_id, wrap_id, business_date, kind, period_end, \
             manager_tenant_id, currency, fee_due, tax_due, fee_collected, tax_collected, \
             channel, manager, platform, uncollected, entry_id) VALUES {}",
            values.join(", ")
        );
        exec(txn, q, pa.values).await?;
    }
    Ok(())
}

async fn insert_crystallisations(
    txn: &DatabaseTransaction,
    tenant_id: Uuid,
    date: NaiveDate,
    rows: &[Crystallised],
) -> Result<(), EodError> {
    for chunk in rows.chunks(INSERT_ROWS) {
        let mut pa = Params::new(txn.get_database_backend());
        let values: Vec<String> = chunk
            .iter()
            .map(|c| {
                pa.row(vec![
                    tenant_id.into(),
                    c.wrap_id.into(),
                    date.into(),
                    c.nav.into(),
                    c.hwm.into(),
                    c.flows.into(),
                    (c.nav - c.hwm - c.flows).into(),
                    c.rate.normalize().to_string().into(),
                    c.fee.into(),
                    c.tax.into(),
                    c.new_hwm.into(),
                ])
            })
            .collect();
        let q = format!(
            "INSERT INTO performance_fees (tenant_id, wrap_id, business_date, nav, hwm, \
             hwm_flows, gain, rate, fee, tax, new_hwm) VALUES {}",
            values.join(", ")
        );
        exec(txn, q, pa.values).await?;
    }
    Ok(())
}

/// Invoices each distributor its monthly platform fee in effect on `date` (a month end).
async fn invoice_platform_fees(
    txn: &DatabaseTransaction,
    date: NaiveDate,
) -> Result<u64, EodError> {
    let mut pa = Params::new(txn.get_database_backend());
    let q = format!(
        "SELECT tenant_id, effective_date, amount, currency FROM platform_fees \
         WHERE effective_date <= {} ORDER BY tenant_id, effective_date",
        pa.push(date)
    );
    // The newest fee of each distributor on or before the month end.
    let mut latest: BTreeMap<Uuid, (NaiveDate, i64, String)> = BTreeMap::new();
    for r in query(txn, q, pa.values).await? {
        latest.insert(get(&r, 0)?, (get(&r, 1)?, get(&r, 2)?, get(&r, 3)?));
    }
    let now = micros(Utc::now());
    let rows: Vec<(Uuid, (NaiveDate, i64, String))> =
        latest.into_iter().filter(|(_, f)| f.1 > 0).collect();
    let mut n = 0;
    for chunk in rows.chunks(INSERT_ROWS) {
        let mut pa = Params::new(txn.get_database_backend());
        let values: Vec<String> = chunk
            .iter()
            .map(|(t, (eff, amount, ccy))| {
                pa.row(vec![
                    (*t).into(),
                    date.into(),
                    (*amount).into(),
                    ccy.clone().into(),
                    (*eff).into(),
                    now.into(),
                ])
            })
            .collect();
        let q = format!(
            "INSERT INTO platform_invoices (tenant_id, period_end, amount, currency, \
             fee_effective_date, created_at) VALUES {} \
             ON CONFLICT (tenant_id, period_end) DO NOTHING",
            values.join(", ")
        );
        n += exec(txn, q, pa.values).await?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_take_whose_parts_do_not_add_up_is_refused() {
        let mut k = Take {
            fee: 100,
            parts: [50, 40, 10],
            ..Take::default()
        };
        assert_eq!(k.check(), Ok(()));
        k.parts = [50, 40, 9];
        assert_eq!(
            k.check(),
            Err("management fee 100 split into [50, 40, 9]".to_owned())
        );
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn period_ends() {
        use BillingPeriod::{Monthly, Quarterly};
        assert!(is_period_end(Monthly, d("2027-02-28")));
        assert!(
            !is_period_end(Monthly, d("2028-02-28")),
            "2028 is a leap year"
        );
        assert!(is_period_end(Monthly, d("2028-02-29")));
        assert!(!is_period_end(Quarterly, d("2027-02-28")));
        assert!(is_period_end(Quarterly, d("2027-03-31")));
        assert!(is_period_end(Quarterly, d("2026-12-31")));
        assert!(!is_period_end(Monthly, d("2026-12-30")));
        assert!(is_year_end(d("2026-12-31")) && !is_year_end(d("2026-11-30")));
    }

    #[test]
    fn performance_fee_only_on_gains() {
        let (r, t) = ("0.2".parse().unwrap(), "0.1".parse().unwrap());
        assert_eq!(performance_fee(0, r, t), (0, 0));
        assert_eq!(performance_fee(-5_000, r, t), (0, 0));
        // 12,345 × 0.2 = 2,469; tax 246.9 → 246.
        assert_eq!(performance_fee(12_345, r, t), (2_469, 246));
        // 7 × 0.2 = 1.4 → 1; tax 0.1 → 0.
        assert_eq!(performance_fee(7, r, t), (1, 0));
    }
}
