//! Step `accrual`: the day's management fee of every wrap, kept exactly, posted in whole
//! minor units. Also the fee state and arithmetic that step `billing` ([`super::billing`])
//! shares.
//!
//! **Which NAV.** The fee of date D is `blended_annual_fee(NAV_D) ÷ 365`, plus consumption
//! tax at the terms' rate, where NAV_D is the day's valuation snapshot (`wrap_snapshots`):
//! after the day's plans and trades (a contribution counts from the day it reaches the wrap,
//! invested or still cash: it is under management from then), and already net of the fees
//! accrued and not paid before D (valuation deducts them, DOMAIN.md section 4). Net, because
//! a fee is not charged on the fee itself: the customer owes what has accrued, so charging on
//! the gross value would charge a fee on money that is no longer theirs. Before the day's own
//! accrual, because that accrual is what is being computed. Weekends and holidays included:
//! end of day runs every calendar date in order, so each run accrues its own date once; a
//! holiday's NAV is the last prices' value. The terms are the agreement's version in effect on
//! D; tiers are blended by the wrap's NAV ([`crate::market::agreement::FeeSchedule::blended_annual_fee`]).
//!
//! **Exact, nothing dropped.** A daily rate ÷ 365 is a repeating decimal, so the sub-unit
//! part is kept multiplied by 365 (`fee_carry_x365`, exact decimal TEXT in [0, 365) minor
//! units, likewise the tax): each day `x = carry + annual_fee` (minor units), the ledger gets
//! `floor(x ÷ 365)` whole units and `x − 365 × floor(x ÷ 365)` is carried. The postings of any
//! run of days therefore sum to `floor((carry₀ + Σ annual_fee) ÷ 365)`: the exact fee of those
//! days to within less than one minor unit, the rest still carried. Decimal products are exact
//! while they fit 28 significant digits (rates with a few decimals on any realistic wrap);
//! beyond that `rust_decimal` rounds at the 28th digit. Tried by
//! `api/tests/http/eod_fees.rs::a_month_of_accrual_is_exact` and the unit tests below.
//!
//! **Books.** Per wrap `accrued:wrap:{id}` (debit-normal, no-negative: what the wrap owes),
//! per book and currency `accrued:fees:{CCY}` and `accrued:tax:{CCY}` (credit-normal): all
//! outside the reconciliation prefixes, so accruing moves nothing there; billing moves the
//! collected part into `wrap:` and `payable:` accounts, which reconcile against each other.
//!
//! **Owed daily, posted monthly.** Each day's whole units are owed at once: they go into the
//! wrap's fee state (`fee_owed`, `tax_owed`), which valuation deducts from the next day's NAV,
//! and into `fee_accruals`. They reach the ledger later (`fee_unposted`, `tax_unposted` until
//! then): every wrap's on each month end (every billing period ends on one), and a wrap's on
//! any date it has something due (arrears, or a close or a withdrawal of everything, which
//! make all it owes due). Only billing credits `accrued:wrap:{id}`, and only what is due, so
//! what it collects is always in the ledger first and the account never goes below zero. Why
//! not daily: a posting a day to every wrap's own account rewrote one page per wrap and date
//! of the postings' by-account index, a fifth of end of day at 3,000 wraps
//! (docs/BENCHMARKS.md, "The demo"). So between postings `accrued:wrap:{id}` shows what was
//! posted, and the fee state what is owed. Tried by
//! `api/tests/http/eod_fees.rs::a_month_of_accrual_is_exact` (owed mid-month, not posted; one
//! entry at the month end) and `a_close_pays_its_fees_before_the_customer` (posted on the
//! close's date, then collected). One entry (kind `fee_accrual`) per book, currency and chunk
//! of at most [`WRAPS_PER_ENTRY`] wraps (one posting each, plus the two credits), idempotency
//! key `accrual:{tenant}:{date}:{chunk}`, chunks numbered in (currency, wrap id) order.
//!
//! **Which wraps.** Those with a snapshot on D whose agreement is active and has accepted terms
//! in effect on D. A wrap's fee state (and its `accrued:wrap` account) starts on its first day
//! with a positive NAV; that day also starts its high-water mark at the value before the day's
//! flows, so only gains made under the fee count ([`super::billing`]).
//!
//! Set-based: per tenant one query of the day's snapshots, one of the fee states, accounts
//! opened with multi-row INSERTs, entries through `post_batch_in`, rows written with
//! multi-row INSERT / upsert; never a query per wrap.

use std::collections::HashMap;

use crate::market::agreement::{Split, Terms};
use chrono::{Datelike, NaiveDate};
use ledger::asset::decimal_of;
use ledger::{Ledger, MAX_BATCH, NewAccount, NewEntry, NewPosting, Side};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DatabaseTransaction, Value};
use serde_json::json;
use uuid::Uuid;

use super::{EodError, corrupt};
use ledger::sql::{IN_CHUNK, Params, exec, get, query};

/// Days a year's fee is spread over (DOMAIN.md: rate ÷ 365, every calendar day).
pub const DAYS_PER_YEAR: i64 = 365;

/// Wraps per accrual entry: one posting each plus the fee and tax credits stay within
/// [`ledger::entry::MAX_POSTINGS`].
pub const WRAPS_PER_ENTRY: usize = 998;

/// Rows per fee-state upsert (21 values each).
const STATE_ROWS: usize = 500;

/// `accrued:wrap:{id}`: what the wrap owes in fees and tax, posted (at month ends, or when
/// due) and not collected; the fee state also holds what is owed and not posted yet.
pub fn accrued_wrap_code(wrap_id: Uuid) -> String {
    format!("accrued:wrap:{wrap_id}")
}

/// `accrued:fees:{CCY}`: the book's fees accrued and not collected.
pub fn accrued_fees_code(currency: &str) -> String {
    format!("accrued:fees:{currency}")
}

/// `accrued:tax:{CCY}`: the consumption tax on them.
pub fn accrued_tax_code(currency: &str) -> String {
    format!("accrued:tax:{currency}")
}

/// `x` (≥ 0) split into `floor(x ÷ 365)` and the exact remainder `x − 365 × floor(x ÷ 365)`.
/// Integer division of the mantissa, so the floor is exact however many decimals `x` has.
pub fn whole_and_carry(x: Decimal) -> Option<(i64, Decimal)> {
    if x.is_sign_negative() && !x.is_zero() {
        return None;
    }
    let denom = i128::from(DAYS_PER_YEAR).checked_mul(10_i128.checked_pow(x.scale())?)?;
    let whole = x.mantissa().checked_div(denom)?;
    let carry = x.checked_sub(Decimal::from_i128_with_scale(
        whole.checked_mul(i128::from(DAYS_PER_YEAR))?,
        0,
    ))?;
    Some((i64::try_from(whole).ok()?, carry.normalize()))
}

/// One day's accrual of one wrap, in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayAccrual {
    /// The blended annual fee on the day's NAV (the day's exact fee × 365).
    pub annual_fee: Decimal,
    /// Its consumption tax × 365.
    pub tax_x365: Decimal,
    pub fee_posted: i64,
    pub tax_posted: i64,
    pub fee_carry_x365: Decimal,
    pub tax_carry_x365: Decimal,
}

/// The day's accrual on `nav` (minor units at `scale`) under `terms`, given the carries.
pub fn accrue_day(
    terms: &Terms,
    nav: i64,
    scale: u32,
    fee_carry_x365: Decimal,
    tax_carry_x365: Decimal,
) -> Option<DayAccrual> {
    let value = decimal_of(i128::from(nav), scale);
    let annual = terms.blended_annual_fee(value);
    // Back to minor units: a shift of the decimal point, exact.
    let annual_fee = annual.checked_mul(decimal_of(10_i128.checked_pow(scale)?, 0))?;
    let tax_x365 = annual_fee.checked_mul(terms.consumption_tax_rate)?;
    let (fee_posted, fee_carry) = whole_and_carry(fee_carry_x365.checked_add(annual_fee)?)?;
    let (tax_posted, tax_carry) = whole_and_carry(tax_carry_x365.checked_add(tax_x365)?)?;
    Some(DayAccrual {
        annual_fee: annual_fee.normalize(),
        tax_x365: tax_x365.normalize(),
        fee_posted,
        tax_posted,
        fee_carry_x365: fee_carry,
        tax_carry_x365: tax_carry,
    })
}

/// `amount` divided by `split`'s shares (channel, manager, platform), each part the floor of
/// its exact share, the units left over given one each to the largest fractional remainders
/// (ties: channel, then manager, then platform). The parts sum exactly to `amount`.
pub fn split_amount(amount: i64, split: &Split) -> [i64; 3] {
    let shares = [split.channel, split.manager, split.platform];
    let total = Decimal::from(amount);
    let mut parts = [0_i64; 3];
    let mut rests = [Decimal::ZERO; 3];
    for (i, share) in shares.iter().enumerate() {
        let exact = total * share;
        let floor = exact.floor();
        parts[i] = i64::try_from(floor.mantissa() / 10_i128.pow(floor.scale())).unwrap_or(0);
        rests[i] = exact - floor;
    }
    let mut left = amount - parts.iter().sum::<i64>();
    let mut order = [0_usize, 1, 2];
    // Stable sort: equal remainders keep channel, manager, platform order.
    order.sort_by(|a, b| rests[*b].cmp(&rests[*a]));
    for i in order.iter().cycle() {
        if left <= 0 {
            break;
        }
        parts[*i] += 1;
        left -= 1;
    }
    debug_assert_eq!(parts.iter().sum::<i64>(), amount);
    parts
}

// ---------------------------------------------------------------------------------------
// Terms

/// An agreement's status and its accepted terms versions (effective date, terms), oldest
/// first.
#[derive(Debug)]
pub struct AgreementTerms {
    pub active: bool,
    versions: Vec<(NaiveDate, Terms)>,
}

impl AgreementTerms {
    /// The newest accepted version effective on or before `date`.
    pub fn on(&self, date: NaiveDate) -> Option<&Terms> {
        self.versions
            .iter()
            .rev()
            .find(|(d, _)| *d <= date)
            .map(|(_, t)| t)
    }
}

/// Every agreement that has accepted terms (a few rows per distributor and strategy).
pub async fn all_terms(
    txn: &DatabaseTransaction,
) -> Result<HashMap<Uuid, AgreementTerms>, EodError> {
    let rows = query(
        txn,
        "SELECT a.id, a.status, t.effective_date, t.terms FROM agreements a \
         JOIN agreement_terms t ON t.tenant_id = a.tenant_id AND t.agreement_id = a.id \
         WHERE t.status = 'accepted' ORDER BY a.id, t.effective_date, t.version"
            .to_owned(),
        vec![],
    )
    .await?;
    let mut out: HashMap<Uuid, AgreementTerms> = HashMap::new();
    for r in &rows {
        let id: Uuid = get(r, 0)?;
        let status: String = get(r, 1)?;
        let text: String = get(r, 3)?;
        let terms: Terms = serde_json::from_str(&text)
            .map_err(|e| corrupt(format!("terms of agreement {id}: {e}")))?;
        out.entry(id)
            .or_insert_with(|| AgreementTerms {
                active: status == "active",
                versions: Vec::new(),
            })
            .versions
            .push((get(r, 2)?, terms));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Fee state

/// One row of `wrap_fee_state` (see the migration `m20261121_000009_fees`).
#[derive(Debug, Clone)]
pub struct FeeState {
    pub wrap_id: Uuid,
    pub account_id: Uuid,
    pub currency: String,
    pub fee_carry_x365: Decimal,
    pub tax_carry_x365: Decimal,
    pub fee_owed: i64,
    pub tax_owed: i64,
    pub perf_owed: i64,
    pub perf_tax_owed: i64,
    pub fee_due: i64,
    pub tax_due: i64,
    pub perf_due: i64,
    pub perf_tax_due: i64,
    pub owed_at_start: i64,
    pub as_of: NaiveDate,
    pub hwm: i64,
    pub hwm_flows: i64,
    pub hwm_date: NaiveDate,
    /// Accrued management fee (whole units, counted in `fee_owed`) not posted to the ledger
    /// yet: posted at the month end, or the same date once anything is due.
    pub fee_unposted: i64,
    /// Its tax, likewise (counted in `tax_owed`).
    pub tax_unposted: i64,
}

impl FeeState {
    /// Everything the wrap owes and has not paid: posted to its accrual account and not
    /// collected, plus the accrual not posted yet.
    pub fn owed(&self) -> i64 {
        self.fee_owed + self.tax_owed + self.perf_owed + self.perf_tax_owed
    }

    /// Call before any change on `date`: remembers what was owed when the date began, so a
    /// valuation redone on `date` deducts the same amount as the first.
    pub fn touch(&mut self, date: NaiveDate) {
        if self.as_of < date {
            self.owed_at_start = self.owed();
            self.as_of = date;
        }
    }

    /// What valuation of `date` deducts: owed before anything of `date` was posted.
    pub fn unpaid_at_start_of(&self, date: NaiveDate) -> i64 {
        unpaid_at_start(self.as_of, date, self.owed_at_start, self.owed())
    }
}

/// The one rule of what a wrap's NAV of `date` deducts for fees: what it owed when `date`
/// began (`owed_at_start`, remembered on the first change of the state on `as_of`), or all it
/// owes when nothing changed on or after `date`.
pub fn unpaid_at_start(as_of: NaiveDate, date: NaiveDate, owed_at_start: i64, owed: i64) -> i64 {
    if as_of >= date { owed_at_start } else { owed }
}

/// The select list of [`FeeState`], in [`read_state`]'s order, for table alias `s`.
pub const STATE_COLUMNS: &str = "s.wrap_id, s.account_id, s.currency, s.fee_carry_x365, \
     s.tax_carry_x365, s.fee_owed, s.tax_owed, s.perf_owed, s.perf_tax_owed, s.fee_due, \
     s.tax_due, s.perf_due, s.perf_tax_due, s.owed_at_start, s.as_of, s.hwm, s.hwm_flows, \
     s.hwm_date, s.fee_unposted, s.tax_unposted";

/// Number of columns in [`STATE_COLUMNS`].
pub const STATE_COLUMN_COUNT: usize = 20;

fn dec(r: &sea_orm::QueryResult, i: usize) -> Result<Decimal, EodError> {
    let s: String = get(r, i)?;
    s.parse()
        .map_err(|_| corrupt(format!("fee state: {s:?} is not a decimal")))
}

/// A [`FeeState`] from columns `at..at + STATE_COLUMN_COUNT` of `r`.
pub fn read_state(r: &sea_orm::QueryResult, at: usize) -> Result<FeeState, EodError> {
    Ok(FeeState {
        wrap_id: get(r, at)?,
        account_id: get(r, at + 1)?,
        currency: get(r, at + 2)?,
        fee_carry_x365: dec(r, at + 3)?,
        tax_carry_x365: dec(r, at + 4)?,
        fee_owed: get(r, at + 5)?,
        tax_owed: get(r, at + 6)?,
        perf_owed: get(r, at + 7)?,
        perf_tax_owed: get(r, at + 8)?,
        fee_due: get(r, at + 9)?,
        tax_due: get(r, at + 10)?,
        perf_due: get(r, at + 11)?,
        perf_tax_due: get(r, at + 12)?,
        owed_at_start: get(r, at + 13)?,
        as_of: get(r, at + 14)?,
        hwm: get(r, at + 15)?,
        hwm_flows: get(r, at + 16)?,
        hwm_date: get(r, at + 17)?,
        fee_unposted: get(r, at + 18)?,
        tax_unposted: get(r, at + 19)?,
    })
}

/// The fee states of `wrap_ids` (those that have one), by wrap.
pub async fn states_of<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    wrap_ids: &[Uuid],
) -> Result<HashMap<Uuid, FeeState>, EodError> {
    let mut out = HashMap::with_capacity(wrap_ids.len());
    for chunk in wrap_ids.chunks(IN_CHUNK) {
        let mut pa = Params::new(db.get_database_backend());
        let t = pa.push(tenant_id);
        let list = pa.list(chunk);
        let q = format!(
            "SELECT {STATE_COLUMNS} FROM wrap_fee_state s WHERE s.tenant_id = {t} \
             AND s.wrap_id IN {list}"
        );
        for r in &query(db, q, pa.values).await? {
            let s = read_state(r, 0)?;
            out.insert(s.wrap_id, s);
        }
    }
    Ok(out)
}

/// Every fee state of `tenant_id`, by wrap.
pub async fn tenant_states<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
) -> Result<HashMap<Uuid, FeeState>, EodError> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "SELECT {STATE_COLUMNS} FROM wrap_fee_state s WHERE s.tenant_id = {}",
        pa.push(tenant_id)
    );
    let rows = query(db, q, pa.values).await?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in &rows {
        let s = read_state(r, 0)?;
        out.insert(s.wrap_id, s);
    }
    Ok(out)
}

/// What each of `wrap_ids` owes in fees and tax (its fee state: accrued, posted to
/// `accrued:wrap:{id}` or not yet, and not collected); wraps that owe nothing are left out.
pub async fn owed_by<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    wrap_ids: &[Uuid],
) -> Result<HashMap<Uuid, i64>, EodError> {
    let mut out = HashMap::new();
    for chunk in wrap_ids.chunks(IN_CHUNK) {
        let mut pa = Params::new(db.get_database_backend());
        let t = pa.push(tenant_id);
        let list = pa.list(chunk);
        let q = format!(
            "SELECT wrap_id, fee_owed + tax_owed + perf_owed + perf_tax_owed \
             FROM wrap_fee_state WHERE tenant_id = {t} AND wrap_id IN {list}"
        );
        for r in query(db, q, pa.values).await? {
            let owed: i64 = get(&r, 1)?;
            if owed > 0 {
                out.insert(get::<Uuid>(&r, 0)?, owed);
            }
        }
    }
    Ok(out)
}

/// What each wrap of `tenant_id` has due now and not collected (fee, tax and the
/// performance fee and its tax: billing found too little settled cash for them); wraps with
/// nothing due are left out. The rebalance step sells units for it.
pub async fn due_by<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
) -> Result<HashMap<Uuid, i64>, EodError> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "SELECT wrap_id, fee_due + tax_due + perf_due + perf_tax_due FROM wrap_fee_state \
         WHERE tenant_id = {} AND fee_due + tax_due + perf_due + perf_tax_due > 0",
        pa.push(tenant_id)
    );
    let mut out = HashMap::new();
    for r in query(db, q, pa.values).await? {
        out.insert(get::<Uuid>(&r, 0)?, get::<i64>(&r, 1)?);
    }
    Ok(out)
}

/// Writes `states` of `tenant_id` (insert or replace), a few hundred rows per statement.
pub async fn save_states(
    txn: &DatabaseTransaction,
    tenant_id: Uuid,
    states: &[&FeeState],
) -> Result<(), EodError> {
    const COLS: &str = "tenant_id, wrap_id, account_id, currency, fee_carry_x365, \
        tax_carry_x365, fee_owed, tax_owed, perf_owed, perf_tax_owed, fee_due, tax_due, \
        perf_due, perf_tax_due, owed_at_start, as_of, hwm, hwm_flows, hwm_date, fee_unposted, \
        tax_unposted";
    let updates: Vec<String> = COLS
        .split(", ")
        .skip(3)
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    for chunk in states.chunks(STATE_ROWS) {
        let mut pa = Params::new(txn.get_database_backend());
        let rows: Vec<String> = chunk
            .iter()
            .map(|s| {
                pa.row(vec![
                    tenant_id.into(),
                    s.wrap_id.into(),
                    s.account_id.into(),
                    s.currency.clone().into(),
                    s.fee_carry_x365.normalize().to_string().into(),
                    s.tax_carry_x365.normalize().to_string().into(),
                    s.fee_owed.into(),
                    s.tax_owed.into(),
                    s.perf_owed.into(),
                    s.perf_tax_owed.into(),
                    s.fee_due.into(),
                    s.tax_due.into(),
                    s.perf_due.into(),
                    s.perf_tax_due.into(),
                    s.owed_at_start.into(),
                    s.as_of.into(),
                    s.hwm.into(),
                    s.hwm_flows.into(),
                    s.hwm_date.into(),
                    s.fee_unposted.into(),
                    s.tax_unposted.into(),
                ])
            })
            .collect();
        let q = format!(
            "INSERT INTO wrap_fee_state ({COLS}) VALUES {} \
             ON CONFLICT (tenant_id, wrap_id) DO UPDATE SET {}",
            rows.join(", "),
            updates.join(", ")
        );
        exec(txn, q, pa.values).await?;
    }
    Ok(())
}

/// The ids of the book-level accounts `codes` (credit-normal, no-negative, in `currency`),
/// opened when missing.
pub async fn book_accounts(
    txn: &DatabaseTransaction,
    tenant_id: Uuid,
    currency: &str,
    codes: &[String],
) -> Result<HashMap<String, Uuid>, EodError> {
    let new: Vec<NewAccount> = codes
        .iter()
        .map(|code| NewAccount {
            tenant_id,
            code: code.clone(),
            asset: currency.to_owned(),
            normal_side: Side::Credit,
            no_negative: true,
            metadata: json!({}),
        })
        .collect();
    Ok(ledger::store::accounts_bulk::ensure_accounts_in(txn, tenant_id, &new).await?)
}

/// Posts `entries` in batches of at most [`MAX_BATCH`]; returns the entry ids in order.
pub async fn post_all(
    txn: &DatabaseTransaction,
    ledger: &Ledger,
    entries: Vec<NewEntry>,
) -> Result<Vec<Uuid>, EodError> {
    let mut ids = Vec::with_capacity(entries.len());
    let mut rest = entries;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(MAX_BATCH));
        for p in ledger.post_batch_in(txn, rest).await? {
            ids.push(p.entry.id);
        }
        rest = tail;
    }
    Ok(ids)
}

/// `minor` units at `scale` as the exact decimal a posting takes.
pub fn amount(minor: i64, scale: u32) -> Decimal {
    decimal_of(i128::from(minor), scale)
}

// ---------------------------------------------------------------------------------------
// The step

/// One wrap's accrual of the day, before it is written.
struct Row {
    wrap_id: Uuid,
    nav: i64,
    day: DayAccrual,
}

/// Accrues the day's fee of every wrap with an active agreement; returns the counts.
pub async fn run(
    txn: &DatabaseTransaction,
    ledger: &Ledger,
    date: NaiveDate,
) -> Result<serde_json::Value, EodError> {
    let terms = all_terms(txn).await?;
    let mut pa = Params::new(txn.get_database_backend());
    // The books with wraps valued today, and those still holding accrual not posted (a book
    // whose last wrap closed today has no snapshot, and its accrual must reach the ledger).
    let q = format!(
        "SELECT tenant_id FROM wrap_snapshots WHERE business_date = {} UNION \
         SELECT tenant_id FROM wrap_fee_state WHERE fee_unposted > 0 OR tax_unposted > 0",
        pa.push(date)
    );
    let mut tenant_ids: Vec<Uuid> = query(txn, q, pa.values)
        .await?
        .iter()
        .map(|r| get::<Uuid>(r, 0))
        .collect::<Result<_, _>>()?;
    tenant_ids.sort();
    let mut all = Accrued::default();
    for tenant_id in tenant_ids {
        all += accrue_tenant(txn, ledger, tenant_id, date, &terms).await?;
    }
    Ok(json!({
        "wraps": all.wraps,
        "fee_accrued": all.fee,
        "tax_accrued": all.tax,
        "entries": all.entries,
        "fee_posted": all.fee_posted,
        "tax_posted": all.tax_posted,
    }))
}

async fn accrue_tenant(
    txn: &DatabaseTransaction,
    ledger: &Ledger,
    tenant_id: Uuid,
    date: NaiveDate,
    terms: &HashMap<Uuid, AgreementTerms>,
) -> Result<Accrued, EodError> {
    let b = txn.get_database_backend();
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT s.wrap_id, s.nav, s.contributions, s.withdrawals, w.agreement_id, w.currency, \
         w.currency_scale FROM wrap_snapshots s \
         JOIN wraps w ON w.tenant_id = s.tenant_id AND w.id = s.wrap_id \
         WHERE s.tenant_id = {} AND s.business_date = {}",
        pa.push(tenant_id),
        pa.push(date)
    );
    let snaps = query(txn, q, pa.values).await?;
    let mut states = tenant_states(txn, tenant_id).await?;
    let mut accrued: Vec<Row> = Vec::with_capacity(snaps.len());
    let mut new_wraps: Vec<(Uuid, String)> = Vec::new();
    for r in &snaps {
        let wrap_id: Uuid = get(r, 0)?;
        let nav: i64 = get(r, 1)?;
        let flows = get::<i64>(r, 2)? - get::<i64>(r, 3)?;
        let agreement: Uuid = get(r, 4)?;
        let currency: String = get(r, 5)?;
        let scale = u32::try_from(get::<i32>(r, 6)?).unwrap_or(0);
        let Some(t) = terms
            .get(&agreement)
            .filter(|a| a.active)
            .and_then(|a| a.on(date))
        else {
            continue;
        };
        let state = match states.get_mut(&wrap_id) {
            Some(s) => {
                s.touch(date);
                s.hwm_flows += flows;
                s
            }
            None if nav > 0 => {
                new_wraps.push((wrap_id, currency.clone()));
                states.entry(wrap_id).or_insert(FeeState {
                    wrap_id,
                    account_id: Uuid::nil(),
                    currency: currency.clone(),
                    fee_carry_x365: Decimal::ZERO,
                    tax_carry_x365: Decimal::ZERO,
                    fee_owed: 0,
                    tax_owed: 0,
                    perf_owed: 0,
                    perf_tax_owed: 0,
                    fee_due: 0,
                    tax_due: 0,
                    perf_due: 0,
                    perf_tax_due: 0,
                    owed_at_start: 0,
                    as_of: date,
                    // The mark starts at the value before today's flows: gains made before
                    // fees were tracked are not charged.
                    hwm: nav - flows,
                    hwm_flows: flows,
                    hwm_date: date,
                    fee_unposted: 0,
                    tax_unposted: 0,
                })
            }
            None => continue,
        };
        let day = accrue_day(t, nav, scale, state.fee_carry_x365, state.tax_carry_x365)
            .ok_or_else(|| corrupt(format!("the fee of wrap {wrap_id} on {date} overflows")))?;
        state.fee_carry_x365 = day.fee_carry_x365;
        state.tax_carry_x365 = day.tax_carry_x365;
        state.fee_owed += day.fee_posted;
        state.tax_owed += day.tax_posted;
        state.fee_unposted += day.fee_posted;
        state.tax_unposted += day.tax_posted;
        accrued.push(Row { wrap_id, nav, day });
    }
    // The rows are decoded: free them before the writes (a tenant may have a million).
    drop(snaps);
    // Accrual accounts for wraps on their first fee.
    if !new_wraps.is_empty() {
        let new: Vec<NewAccount> = new_wraps
            .iter()
            .map(|(id, ccy)| NewAccount {
                tenant_id,
                code: accrued_wrap_code(*id),
                asset: ccy.clone(),
                normal_side: Side::Debit,
                no_negative: true,
                metadata: json!({ "wrap_id": id }),
            })
            .collect();
        let ids = ledger::store::accounts_bulk::ensure_accounts_in(txn, tenant_id, &new).await?;
        for (id, _) in &new_wraps {
            let account = ids
                .get(&accrued_wrap_code(*id))
                .copied()
                .ok_or_else(|| corrupt(format!("no accrual account for wrap {id}")))?;
            if let Some(s) = states.get_mut(id) {
                s.account_id = account;
            }
        }
    }
    let (posting, posted) = post_unposted(txn, ledger, tenant_id, date, &mut states).await?;
    accrued.sort_by_key(|r| r.wrap_id);
    insert_accruals(txn, tenant_id, date, &accrued).await?;
    let mut changed: Vec<Uuid> = accrued.iter().map(|r| r.wrap_id).collect();
    changed.extend(posted);
    changed.sort();
    changed.dedup();
    let changed: Vec<&FeeState> = changed.iter().filter_map(|id| states.get(id)).collect();
    save_states(txn, tenant_id, &changed).await?;
    Ok(Accrued {
        wraps: accrued.len() as u64,
        fee: accrued.iter().map(|r| r.day.fee_posted).sum(),
        tax: accrued.iter().map(|r| r.day.tax_posted).sum(),
        ..posting
    })
}

/// What [`accrue_tenant`] did: the wraps accrued and their whole units, the entries posted and
/// what they carried to the ledger.
#[derive(Debug, Default)]
struct Accrued {
    wraps: u64,
    fee: i64,
    tax: i64,
    entries: u64,
    fee_posted: i64,
    tax_posted: i64,
}

impl std::ops::AddAssign for Accrued {
    fn add_assign(&mut self, o: Self) {
        self.wraps += o.wraps;
        self.fee += o.fee;
        self.tax += o.tax;
        self.entries += o.entries;
        self.fee_posted += o.fee_posted;
        self.tax_posted += o.tax_posted;
    }
}

/// Whether `date` is the last calendar day of its month (every billing period ends on one).
fn month_end(date: NaiveDate) -> bool {
    date.succ_opt()
        .is_none_or(|next| next.month() != date.month())
}

/// Posts the accrual not posted yet (`fee_unposted`, `tax_unposted`) of every wrap in `states`
/// that must have it in the ledger on `date`: every wrap on a month end, otherwise a wrap with
/// anything due (billing collects what is due by crediting `accrued:wrap:{id}`, so what is due
/// is always posted first). One entry (kind `fee_accrual`) per currency and chunk of at most
/// [`WRAPS_PER_ENTRY`] wraps: Dr each `accrued:wrap:{id}` its fee and tax, Cr
/// `accrued:fees:{CCY}` and `accrued:tax:{CCY}` the sums; chunks numbered in (currency, wrap
/// id) order. Zeroes what it posted; returns the entries and what they carried (the posting
/// fields of [`Accrued`]) and the wraps posted.
async fn post_unposted(
    txn: &DatabaseTransaction,
    ledger: &Ledger,
    tenant_id: Uuid,
    date: NaiveDate,
    states: &mut HashMap<Uuid, FeeState>,
) -> Result<(Accrued, Vec<Uuid>), EodError> {
    let all = month_end(date);
    let mut due: Vec<&FeeState> = states
        .values()
        .filter(|s| s.fee_unposted + s.tax_unposted > 0)
        .filter(|s| all || s.fee_due + s.tax_due + s.perf_due + s.perf_tax_due > 0)
        .collect();
    due.sort_by(|a, b| (&a.currency, a.wrap_id).cmp(&(&b.currency, b.wrap_id)));
    let mut entries: Vec<NewEntry> = Vec::new();
    let (mut fee_total, mut tax_total) = (0_i64, 0_i64);
    let mut chunk_no = 0_usize;
    for by_ccy in due.chunk_by(|a, b| a.currency == b.currency) {
        let ccy = &by_ccy[0].currency;
        let scale = ledger.asset_in(txn, ccy).await?.scale;
        let accounts = book_accounts(
            txn,
            tenant_id,
            ccy,
            &[accrued_fees_code(ccy), accrued_tax_code(ccy)],
        )
        .await?;
        let (Some(fees_acc), Some(tax_acc)) = (
            accounts.get(&accrued_fees_code(ccy)).copied(),
            accounts.get(&accrued_tax_code(ccy)).copied(),
        ) else {
            return Err(corrupt(format!("accrual accounts of {tenant_id} {ccy}")));
        };
        for chunk in by_ccy.chunks(WRAPS_PER_ENTRY) {
            let (mut fee, mut tax) = (0_i64, 0_i64);
            let mut postings = Vec::with_capacity(chunk.len() + 2);
            for s in chunk {
                if s.account_id.is_nil() {
                    return Err(corrupt(format!(
                        "no accrual account for wrap {}",
                        s.wrap_id
                    )));
                }
                fee += s.fee_unposted;
                tax += s.tax_unposted;
                postings.push(NewPosting::debit(
                    s.account_id,
                    ccy,
                    amount(s.fee_unposted + s.tax_unposted, scale),
                ));
            }
            if fee > 0 {
                postings.push(NewPosting::credit(fees_acc, ccy, amount(fee, scale)));
            }
            if tax > 0 {
                postings.push(NewPosting::credit(tax_acc, ccy, amount(tax, scale)));
            }
            entries.push(NewEntry {
                tenant_id,
                idempotency_key: format!("accrual:{tenant_id}:{date}:{chunk_no}"),
                kind: "fee_accrual".to_owned(),
                effective_date: date,
                description: format!("management fee accrued to {date}"),
                metadata: json!({ "eod_date": date, "chunk": chunk_no, "wraps": chunk.len() }),
                postings,
                hold: None,
            });
            chunk_no += 1;
            fee_total += fee;
            tax_total += tax;
        }
    }
    let posted: Vec<Uuid> = due.iter().map(|s| s.wrap_id).collect();
    let count = entries.len() as u64;
    post_all(txn, ledger, entries).await?;
    for id in &posted {
        if let Some(s) = states.get_mut(id) {
            s.fee_unposted = 0;
            s.tax_unposted = 0;
        }
    }
    Ok((
        Accrued {
            entries: count,
            fee_posted: fee_total,
            tax_posted: tax_total,
            ..Accrued::default()
        },
        posted,
    ))
}

async fn insert_accruals(
    txn: &DatabaseTransaction,
    tenant_id: Uuid,
    date: NaiveDate,
    rows: &[Row],
) -> Result<(), EodError> {
    for chunk in rows.chunks(ledger::sql::INSERT_ROWS) {
        let mut pa = Params::new(txn.get_database_backend());
        let values: Vec<String> = chunk
            .iter()
            .map(|r| {
                pa.row(vec![
                    tenant_id.into(),
                    r.wrap_id.into(),
                    date.into(),
                    r.nav.into(),
                    r.day.annual_fee.to_string().into(),
                    r.day.tax_x365.to_string().into(),
                    r.day.fee_posted.into(),
                    r.day.tax_posted.into(),
                    r.day.fee_carry_x365.to_string().into(),
                    Value::from(r.day.tax_carry_x365.to_string()),
                ])
            })
            .collect();
        let q = format!(
            "INSERT INTO fee_accruals (tenant_id, wrap_id, business_date, nav, annual_fee, \
             tax_x365, fee_posted, tax_posted, fee_carry_x365, tax_carry_x365) VALUES {}",
            values.join(", ")
        );
        exec(txn, q, pa.values).await?;
    }
    Ok(())
}

/// Fees owed by `wrap_ids` become due now (their wraps are paying everything out: a close, a
/// liquidation), so billing collects them from the proceeds before the payout. The fee
/// state's one writer outside accrual and billing.
pub(super) async fn make_owed_due(
    txn: &DatabaseTransaction,
    tenant_id: Uuid,
    wrap_ids: &[Uuid],
) -> Result<(), EodError> {
    for chunk in wrap_ids.chunks(ledger::sql::IN_CHUNK) {
        let mut pa = ledger::sql::Params::new(txn.get_database_backend());
        let t = pa.push(tenant_id);
        let list = pa.list(chunk);
        let q = format!(
            "UPDATE wrap_fee_state SET fee_due = fee_owed, tax_due = tax_owed, \
             perf_due = perf_owed, perf_tax_due = perf_tax_owed \
             WHERE tenant_id = {t} AND wrap_id IN {list}"
        );
        ledger::sql::exec(txn, q, pa.values).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::agreement::{BillingPeriod, FeeSchedule, Tier};

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn terms(fee: FeeSchedule) -> Terms {
        Terms {
            management_fee: fee,
            consumption_tax_rate: d("0.10"),
            split: Split {
                channel: d("0.5"),
                manager: d("0.4"),
                platform: d("0.1"),
            },
            performance_fee: None,
            billing_period: BillingPeriod::Monthly,
            min_contribution: d("1000"),
        }
    }

    #[test]
    fn whole_units_and_exact_carry() {
        assert_eq!(whole_and_carry(d("0")), Some((0, d("0"))));
        assert_eq!(whole_and_carry(d("364.999")), Some((0, d("364.999"))));
        assert_eq!(whole_and_carry(d("365")), Some((1, d("0"))));
        // 1,000,000 × 0.011 = 11,000 a year: 30 × 11,000 = 330,000 = 904 × 365 + 40.
        assert_eq!(whole_and_carry(d("330000")), Some((904, d("40"))));
        // Many decimals: the floor is still exact.
        assert_eq!(
            whole_and_carry(d("729.9999999999999999999999")),
            Some((1, d("364.9999999999999999999999")))
        );
        assert_eq!(whole_and_carry(d("-1")), None);
    }

    #[test]
    fn a_day_of_flat_fee_with_tax() {
        let t = terms(FeeSchedule::Flat {
            rate_annual: d("0.011"),
        });
        // ¥1,000,000 × 1.1 % = ¥11,000 a year; ÷ 365 = 30.136… → ¥30 posted, 50/365 carried.
        // Tax 1,100 a year ÷ 365 = 3.013… → ¥3, 5/365 carried.
        let a = accrue_day(&t, 1_000_000, 0, Decimal::ZERO, Decimal::ZERO).unwrap();
        assert_eq!(a.annual_fee, d("11000"));
        assert_eq!((a.fee_posted, a.fee_carry_x365), (30, d("50")));
        assert_eq!((a.tax_posted, a.tax_carry_x365), (3, d("5")));
        // With yesterday's carry of 340/365: 11,340 = 31 × 365 + 25.
        let a = accrue_day(&t, 1_000_000, 0, d("340"), Decimal::ZERO).unwrap();
        assert_eq!((a.fee_posted, a.fee_carry_x365), (31, d("25")));
        // Cents: $1,000.00 = 100,000 minor units; 11 $ a year = 1,100 cents ÷ 365 = 3.01…
        let a = accrue_day(&t, 100_000, 2, Decimal::ZERO, Decimal::ZERO).unwrap();
        assert_eq!((a.fee_posted, a.fee_carry_x365), (3, d("5")));
        // Nothing on an empty or negative value.
        let a = accrue_day(&t, -5, 0, d("3"), Decimal::ZERO).unwrap();
        assert_eq!((a.fee_posted, a.fee_carry_x365), (0, d("3")));
    }

    #[test]
    fn tiers_are_blended() {
        let t = terms(FeeSchedule::Tiered {
            tiers: vec![
                Tier {
                    up_to: Some(d("30000000")),
                    rate_annual: d("0.011"),
                },
                Tier {
                    up_to: None,
                    rate_annual: d("0.009"),
                },
            ],
        });
        // ¥50 M: 330,000 + 180,000 = 510,000 a year = 1,397 × 365 + 95.
        let a = accrue_day(&t, 50_000_000, 0, Decimal::ZERO, Decimal::ZERO).unwrap();
        assert_eq!(a.annual_fee, d("510000"));
        assert_eq!((a.fee_posted, a.fee_carry_x365), (1397, d("95")));
    }

    #[test]
    fn splits_sum_exactly_by_largest_remainder() {
        let third = Split {
            channel: d("0.3333333333"),
            manager: d("0.3333333333"),
            platform: d("0.3333333334"),
        };
        // 100 × shares = 33.33…, 33.33…, 33.33…34: floors 33+33+33 = 99; the one left goes
        // to the largest remainder, the platform's.
        assert_eq!(split_amount(100, &third), [33, 33, 34]);
        let s = Split {
            channel: d("0.5"),
            manager: d("0.4"),
            platform: d("0.1"),
        };
        // 7 × (0.5, 0.4, 0.1) = 3.5, 2.8, 0.7: floors 3 + 2 + 0 = 5; two left: 0.8 (manager),
        // then 0.7 (platform).
        assert_eq!(split_amount(7, &s), [3, 3, 1]);
        assert_eq!(split_amount(0, &s), [0, 0, 0]);
        for n in 0..500 {
            assert_eq!(split_amount(n, &third).iter().sum::<i64>(), n);
            assert_eq!(split_amount(n, &s).iter().sum::<i64>(), n);
        }
    }
}
