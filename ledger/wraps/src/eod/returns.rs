//! Step `returns` (after valuation and the fee steps, before `checks`): the daily
//! time-weighted return of every wrap that has a snapshot of the date, chain-linked into a
//! cumulative index (`wrap_returns`); and, on request, the returns over a range of dates with
//! the money-weighted return (XIRR) ([`range`], served at `GET /v1/wraps/{id}/returns`).
//!
//! **Cash-flow timing: flows at the end of the day.** A contribution or withdrawal booked on
//! day t is taken to arrive or leave after the day's market move, so
//!
//! ```text
//! r_t = (NAV_t - contributions_t + withdrawals_t) / NAV_{t-1} - 1
//! ```
//!
//! with NAV and flows from the day's snapshot (`wrap_snapshots`, step `valuation`). Why: the
//! day's move is from the last price to the day's price, and every flow of the day trades at
//! the day's price: a contribution buys its units at that price (or waits as cash), so it
//! takes no part of the move; a withdrawal sells at that price, so the units it sold took the
//! whole move before leaving. Only the money there at the end of the day before was exposed.
//! Example: a wrap worth 100,000 on a +20 % day that switches 30,000 out (25,000 units sold at
//! the new price) ends at 90,000: (90,000 + 30,000) ÷ 100,000 − 1 = +20 %, the market's move;
//! taking the flow at the start of the day would say 90,000 ÷ 70,000 − 1 = +28.6 %. Likewise
//! ¥1,000,000 arriving in a ¥1,000 wrap on a +1 % day ends at 1,001,010: (1,001,010 −
//! 1,000,000) ÷ 1,000 − 1 = +1 %. Tried by `api/tests/http/eod_trading.rs::
//! a_switch_moves_the_proceeds_into_the_other_wrap`. When NAV_{t-1} is not positive (an
//! empty wrap) nothing was at risk and the day's return is 0.
//!
//! **A wrap's first snapshot** has no value before it to measure from: its return is 0 and
//! its index starts at 1. Money arriving that day is invested and valued at the same day's
//! price, so its first-day return is nil anyway; and money already in a wrap before its first
//! snapshot (books that existed before end of day first ran) would otherwise be read as a
//! gain from nothing.
//!
//! **Chain-linking.** `cumulative_index_t = cumulative_index_{t-1} × (1 + r_t)`, from 1 before
//! a wrap's first snapshot (also when the date before has a snapshot but no return row: a
//! database that had no `returns` step then). The cumulative return between two dates is the
//! ratio of indexes minus 1. **Annualised** = (1 + cumulative)^(365 / days) − 1, given only
//! when the range covers at least 365 days; below that, only the cumulative return is given
//! (annualising a few days' return would multiply noise into a figure that looks like a
//! forecast). The real power is computed exactly in `Decimal` without floats: the daily factor
//! g = (1 + cumulative)^(1/days) by bisection on integer powers, then g^365 − 1.
//!
//! **Precision.** Daily returns and indexes are exact `Decimal` quotients rounded half-even
//! to [`STORED_DP`] places, stored as TEXT (never a float); figures answered over HTTP are
//! rounded to [`SHOWN_DP`] places.
//!
//! **Money-weighted return (XIRR)** over `from..=to`: the annual rate x at which the flows'
//! present value is zero, from the investor's side: the NAV at the end of the day before
//! `from` (0 for a wrap's first day) and each contribution paid in (negative), each withdrawal
//! received and the NAV at the end of `to` (positive). Flows are dated at the end of their
//! day, as above, so with no flows inside the range XIRR equals the annualised TWR. Solved by
//! bisection on the daily factor g = (1 + x)^(1/365) between annual rates of −99 % and
//! +1,000 % ([`XIRR_MIN`], [`XIRR_MAX`]): the present value Σ CF_i · g^(D − t_i) is a
//! polynomial in g, evaluated with integer powers in `Decimal`. Tolerance: the bracket on g
//! is narrowed to 10⁻²⁰, so the annual rate is exact to well below the 10 places shown. No
//! sign change inside the bracket (no rate exists there, or the flows do not change sign)
//! gives no figure and says why.
//!
//! Set-based, per tenant: one read each of the date's snapshots, yesterday's snapshots and
//! yesterday's return rows (range scans on the `(business_date, tenant_id)` indexes, matched
//! by wrap in memory); multi-row INSERTs of [`INSERT_ROWS`] rows. The step first deletes its
//! rows of the date, so redoing it (after a late price made valuation run again) replaces
//! them.
//!
//! Invariants, and the tests that try to break them (`api/tests/http/eod_returns.rs`):
//! * the daily return follows the end-of-day convention, with flows in and out, and the
//!   index chains them: `returns_with_flows_match_the_hand_computation`;
//! * XIRR is the rate that zeroes the flows' present value, and equals the annualised TWR
//!   without flows: `returns_with_flows_match_the_hand_computation` and the unit tests below;
//! * a wrap's returns are seen by its distributor, the manager of its strategy and the
//!   platform only (404 otherwise): `returns_are_isolated`; bad dates answer problem+json
//!   naming the parameter: `bad_ranges_are_refused`.

use std::collections::HashMap;

use chrono::{Days, NaiveDate};
use rust_decimal::{Decimal, RoundingStrategy};
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::EodError;
use ledger::sql::{INSERT_ROWS, Params, exec, get, query};

/// Decimal places kept in `wrap_returns`.
pub const STORED_DP: u32 = 18;
/// Decimal places of the figures answered over HTTP.
pub const SHOWN_DP: u32 = 10;
/// Days a range must cover before its return is annualised.
pub const ANNUALISE_FROM_DAYS: i64 = 365;
/// The lowest annual XIRR searched for (−99 %).
pub const XIRR_MIN: Decimal = Decimal::from_parts(99, 0, 0, true, 2);
/// The highest annual XIRR searched for (+1,000 %).
pub const XIRR_MAX: Decimal = Decimal::TEN;
/// Most days a range may cover (ten years): bounds the powers in the XIRR polynomial.
pub const MAX_RANGE_DAYS: i64 = 3_660;

// ---------------------------------------------------------------------------------------
// The arithmetic (pure)

fn round(v: Decimal, dp: u32) -> Decimal {
    v.round_dp_with_strategy(dp, RoundingStrategy::MidpointNearestEven)
        .normalize()
}

/// The day's time-weighted return with flows at the end of the day (see the module doc),
/// rounded to [`STORED_DP`] places; 0 on a wrap's first snapshot (`prev_nav` `None`).
/// Amounts in minor units.
pub fn daily_return(
    prev_nav: Option<i64>,
    nav: i64,
    contributions: i64,
    withdrawals: i64,
) -> Decimal {
    let Some(prev_nav) = prev_nav else {
        return Decimal::ZERO;
    };
    if prev_nav <= 0 {
        return Decimal::ZERO;
    }
    let grown = i128::from(nav) - i128::from(contributions) + i128::from(withdrawals);
    Decimal::from_i128_with_scale(grown, 0)
        .checked_div(Decimal::from(prev_nav))
        .map_or(Decimal::ZERO, |q| round(q - Decimal::ONE, STORED_DP))
}

/// The next cumulative index: `prev × (1 + daily)`, rounded to [`STORED_DP`] places.
pub fn next_index(prev: Decimal, daily: Decimal) -> Decimal {
    prev.checked_mul(Decimal::ONE + daily)
        .map_or(prev, |v| round(v, STORED_DP))
}

/// `g^n` by squaring; `None` on overflow.
fn pow(g: Decimal, mut n: u64) -> Option<Decimal> {
    let mut out = Decimal::ONE;
    let mut base = g;
    while n > 0 {
        if n & 1 == 1 {
            out = out.checked_mul(base)?;
        }
        n >>= 1;
        if n > 0 {
            base = base.checked_mul(base)?;
        }
    }
    Some(out)
}

/// Width below which a bisection bracket on a daily factor stops.
fn epsilon() -> Decimal {
    Decimal::new(1, 20)
}

/// `target^(1/n)` for `target > 0`, `n ≥ 1`, by bisection on integer powers.
pub fn nth_root(target: Decimal, n: u64) -> Option<Decimal> {
    if target <= Decimal::ZERO || n == 0 {
        return None;
    }
    // Bernoulli: (1 + x)^n ≥ 1 + n·x, so the root of a target above 1 is at most
    // 1 + (target − 1)/n; below 1 the root lies between the target and 1.
    let (mut lo, mut hi) = if target >= Decimal::ONE {
        (
            Decimal::ONE,
            Decimal::ONE + (target - Decimal::ONE) / Decimal::from(n),
        )
    } else {
        (target, Decimal::ONE)
    };
    for _ in 0..200 {
        if hi - lo <= epsilon() {
            break;
        }
        let mid = (lo + hi) / Decimal::TWO;
        match pow(mid, n) {
            Some(v) if v <= target => lo = mid,
            _ => hi = mid,
        }
    }
    Some((lo + hi) / Decimal::TWO)
}

/// (1 + cumulative)^(365/days) − 1, rounded to [`SHOWN_DP`] places; `None` below
/// [`ANNUALISE_FROM_DAYS`] days or for a total loss.
pub fn annualise(cumulative: Decimal, days: i64) -> Option<Decimal> {
    if days < ANNUALISE_FROM_DAYS {
        return None;
    }
    let g = nth_root(Decimal::ONE + cumulative, u64::try_from(days).ok()?)?;
    Some(round(pow(g, 365)? - Decimal::ONE, SHOWN_DP))
}

/// A cash flow of the XIRR, from the investor's side: negative paid in, positive received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// Days after the time origin (the end of the day before the range).
    pub day: u64,
    /// Minor units.
    pub amount: i64,
}

/// Σ amount · g^(end − day): the flows' value at the last flow's date at daily factor g.
fn future_value(flows: &[Flow], g: Decimal, end: u64) -> Option<Decimal> {
    let mut sum = Decimal::ZERO;
    for f in flows {
        let term = Decimal::from(f.amount).checked_mul(pow(g, end - f.day.min(end))?)?;
        sum = sum.checked_add(term)?;
    }
    Some(sum)
}

/// The annual money-weighted return of `flows`, rounded to [`SHOWN_DP`] places, or why there
/// is none (see the module doc for the bracket and the tolerance).
pub fn xirr(flows: &[Flow]) -> Result<Decimal, &'static str> {
    let end = flows.iter().map(|f| f.day).max().unwrap_or(0);
    if end == 0 || !flows.iter().any(|f| f.amount < 0) || !flows.iter().any(|f| f.amount > 0) {
        return Err("the flows need money paid in and money received, on different days");
    }
    let bound = |annual: Decimal| nth_root(Decimal::ONE + annual, 365);
    let (Some(mut lo), Some(mut hi)) = (bound(XIRR_MIN), bound(XIRR_MAX)) else {
        return Err("no rate could be computed");
    };
    let sign = |g: Decimal| future_value(flows, g, end).map(|v| v.cmp(&Decimal::ZERO));
    let (Some(s_lo), Some(s_hi)) = (sign(lo), sign(hi)) else {
        return Err("the flows are too large to value");
    };
    if s_lo == std::cmp::Ordering::Equal {
        return Ok(round(XIRR_MIN, SHOWN_DP));
    }
    if s_lo == s_hi {
        return Err("no rate between -99 % and +1,000 % a year sets the flows' value to zero");
    }
    for _ in 0..200 {
        if hi - lo <= epsilon() {
            break;
        }
        let mid = (lo + hi) / Decimal::TWO;
        match sign(mid) {
            Some(std::cmp::Ordering::Equal) => {
                lo = mid;
                hi = mid;
            }
            Some(s) if s == s_lo => lo = mid,
            Some(_) => hi = mid,
            None => return Err("the flows are too large to value"),
        }
    }
    let g = (lo + hi) / Decimal::TWO;
    pow(g, 365)
        .map(|v| round(v - Decimal::ONE, SHOWN_DP))
        .ok_or("no rate could be computed")
}

// ---------------------------------------------------------------------------------------
// The step

/// Computes and stores the returns of `date` for every wrap with a snapshot of it.
pub async fn run(
    txn: &DatabaseTransaction,
    date: NaiveDate,
) -> Result<serde_json::Value, EodError> {
    let b = txn.get_database_backend();
    let Some(yesterday) = date.checked_sub_days(Days::new(1)) else {
        return Ok(json!({ "wraps": 0 }));
    };
    // A redo (valuation ran again) replaces the date's rows.
    let mut pa = Params::new(b);
    let q = format!(
        "DELETE FROM wrap_returns WHERE business_date = {}",
        pa.push(date)
    );
    exec(txn, q, pa.values).await?;
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT DISTINCT tenant_id FROM wrap_snapshots WHERE business_date = {}",
        pa.push(date)
    );
    let mut tenants: Vec<Uuid> = query(txn, q, pa.values)
        .await?
        .iter()
        .map(|r| get::<Uuid>(r, 0))
        .collect::<Result<_, _>>()?;
    tenants.sort();
    let (mut wraps, mut first_days) = (0_u64, 0_u64);
    for tenant_id in tenants {
        let (n, first) = run_tenant(txn, tenant_id, date, yesterday).await?;
        wraps += n;
        first_days += first;
    }
    Ok(json!({ "wraps": wraps, "first_days": first_days }))
}

async fn run_tenant(
    txn: &DatabaseTransaction,
    tenant_id: Uuid,
    date: NaiveDate,
    yesterday: NaiveDate,
) -> Result<(u64, u64), EodError> {
    let b = txn.get_database_backend();
    // Three range scans on the date indexes, joined here rather than in SQL: a planner with
    // stale statistics (PostgreSQL with autovacuum off, right after a day's rows were
    // written) joined them as a nested loop over whole days, quadratic in wraps per tenant.
    let day_rows = |table: &str, cols: &str, day: NaiveDate| {
        let mut pa = Params::new(b);
        let q = format!(
            "SELECT wrap_id, {cols} FROM {table} WHERE business_date = {} AND tenant_id = {}",
            pa.push(day),
            pa.push(tenant_id)
        );
        (q, pa.values)
    };
    let (q, v) = day_rows("wrap_snapshots", "nav", yesterday);
    let mut prev_navs: HashMap<Uuid, i64> = HashMap::new();
    for r in query(txn, q, v).await? {
        prev_navs.insert(get(&r, 0)?, get(&r, 1)?);
    }
    let (q, v) = day_rows("wrap_returns", "cumulative_index", yesterday);
    let mut prev_indexes: HashMap<Uuid, String> = HashMap::with_capacity(prev_navs.len());
    for r in query(txn, q, v).await? {
        prev_indexes.insert(get(&r, 0)?, get(&r, 1)?);
    }
    let (q, v) = day_rows("wrap_snapshots", "nav, contributions, withdrawals", date);
    let rows = query(txn, q, v).await?;
    let mut out: Vec<(Uuid, Decimal, Decimal)> = Vec::with_capacity(rows.len());
    let mut first_days = 0_u64;
    for r in &rows {
        let wrap: Uuid = get(r, 0)?;
        let prev_nav = prev_navs.get(&wrap).copied();
        if prev_nav.is_none() {
            first_days += 1;
        }
        let daily = daily_return(prev_nav, get(r, 1)?, get(r, 2)?, get(r, 3)?);
        let prev_index = match prev_indexes.get(&wrap) {
            Some(s) => s.parse::<Decimal>().map_err(|e| {
                EodError::Db(sea_orm::DbErr::Custom(format!(
                    "wrap_returns of {wrap}: bad cumulative_index {s}: {e}"
                )))
            })?,
            None => Decimal::ONE,
        };
        out.push((wrap, daily, next_index(prev_index, daily)));
    }
    for chunk in out.chunks(INSERT_ROWS) {
        let mut pa = Params::new(b);
        let rows: Vec<String> = chunk
            .iter()
            .map(|(wrap, daily, index)| {
                pa.row(vec![
                    tenant_id.into(),
                    (*wrap).into(),
                    date.into(),
                    daily.to_string().into(),
                    index.to_string().into(),
                ])
            })
            .collect();
        let q = format!(
            "INSERT INTO wrap_returns (tenant_id, wrap_id, business_date, daily, cumulative_index) \
             VALUES {}",
            rows.join(", ")
        );
        exec(txn, q, pa.values).await?;
    }
    Ok((out.len() as u64, first_days))
}

// ---------------------------------------------------------------------------------------
// A range, on request

/// One day of a wrap's returns.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DayReturn {
    pub date: NaiveDate,
    /// The day's time-weighted return, a fraction (`0.05` = +5 %).
    #[schema(value_type = String)]
    pub daily: Decimal,
    /// Product of (1 + daily) since the wrap's first snapshot.
    #[schema(value_type = String)]
    pub cumulative_index: Decimal,
    /// NAV at the end of the day, in the wrap's currency.
    #[schema(value_type = String)]
    pub nav: Decimal,
    #[schema(value_type = String)]
    pub contributions: Decimal,
    #[schema(value_type = String)]
    pub withdrawals: Decimal,
}

/// Time-weighted return over a range.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimeWeighted {
    /// Π (1 + daily) − 1 over the range.
    #[schema(value_type = String)]
    pub cumulative: Decimal,
    /// (1 + cumulative)^(365/days) − 1; absent below 365 days.
    #[schema(value_type = Option<String>)]
    pub annualised: Option<Decimal>,
}

/// Money-weighted return over a range.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MoneyWeighted {
    /// The annual XIRR; absent when no rate exists (see `reason`).
    #[schema(value_type = Option<String>)]
    pub xirr: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A wrap's returns between two dates.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReturnsView {
    pub wrap_id: Uuid,
    pub currency: String,
    /// The first and last dates with returns in the range (absent when there are none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<NaiveDate>,
    /// Days with a return in the range.
    pub days: i64,
    /// Flows are taken at the end of their day (see the docs).
    pub cash_flow_timing: &'static str,
    pub time_weighted: TimeWeighted,
    pub money_weighted: MoneyWeighted,
    pub daily: Vec<DayReturn>,
}

/// The returns of the tenant's wrap `wrap_id` (the caller checked it may see the wrap) over
/// `from..=to` (either end open).
pub async fn range<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    wrap_id: Uuid,
    currency: &str,
    scale: u32,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<ReturnsView, EodError> {
    let b = db.get_database_backend();
    let mut pa = Params::new(b);
    // Driven by the dates end of day ran: the daily rows are keyed date first (migration
    // 000015), so each date's row is one lookup by its whole key; a range of the wrap's dates
    // would read every wrap's rows in it. CROSS JOIN keeps that order on SQLite.
    let mut q = format!(
        "SELECT r.business_date, r.daily, r.cumulative_index, s.nav, s.contributions, s.withdrawals \
         FROM eod_runs d CROSS JOIN wrap_returns r CROSS JOIN wrap_snapshots s \
         WHERE r.tenant_id = {} AND r.business_date = d.business_date AND r.wrap_id = {} \
         AND s.tenant_id = r.tenant_id AND s.business_date = d.business_date \
         AND s.wrap_id = r.wrap_id",
        pa.push(tenant_id),
        pa.push(wrap_id)
    );
    if let Some(f) = from {
        q.push_str(&format!(" AND d.business_date >= {}", pa.push(f)));
    }
    if let Some(t) = to {
        q.push_str(&format!(" AND d.business_date <= {}", pa.push(t)));
    }
    q.push_str(" ORDER BY d.business_date");
    let bad = |what: &str, e: String| {
        EodError::Db(sea_orm::DbErr::Custom(format!(
            "wrap_returns of {wrap_id}: bad {what}: {e}"
        )))
    };
    let mut rows = Vec::new();
    for r in query(db, q, pa.values).await? {
        let daily: String = get(&r, 1)?;
        let index: String = get(&r, 2)?;
        rows.push((
            get::<NaiveDate>(&r, 0)?,
            daily
                .parse::<Decimal>()
                .map_err(|e| bad("daily", e.to_string()))?,
            index
                .parse::<Decimal>()
                .map_err(|e| bad("cumulative_index", e.to_string()))?,
            get::<i64>(&r, 3)?,
            get::<i64>(&r, 4)?,
            get::<i64>(&r, 5)?,
        ));
    }
    let money = |minor: i64| ledger::asset::decimal_of(i128::from(minor), scale);
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok(ReturnsView {
            wrap_id,
            currency: currency.to_owned(),
            from: None,
            to: None,
            days: 0,
            cash_flow_timing: "end_of_day",
            time_weighted: TimeWeighted {
                cumulative: Decimal::ZERO,
                annualised: None,
            },
            money_weighted: MoneyWeighted {
                xirr: None,
                reason: Some("no returns in the range".to_owned()),
            },
            daily: Vec::new(),
        });
    };
    let (start, end) = (first.0, last.0);
    let days = (end - start).num_days() + 1;
    // The NAV the range starts from: the snapshot of the day before its first day.
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT nav FROM wrap_snapshots WHERE tenant_id = {} AND wrap_id = {} AND business_date = {}",
        pa.push(tenant_id),
        pa.push(wrap_id),
        pa.push(start.pred_opt().unwrap_or(start))
    );
    let start_nav: i64 = match query(db, q, pa.values).await?.first() {
        Some(r) => get(r, 0)?,
        None => 0,
    };
    let mut growth = Decimal::ONE;
    let mut flows = vec![Flow {
        day: 0,
        amount: -start_nav,
    }];
    for (date, daily, _, _, contributions, withdrawals) in &rows {
        growth = growth
            .checked_mul(Decimal::ONE + daily)
            .unwrap_or(Decimal::MAX);
        // At the end of its day: day 1 is the end of `from`, as the closing NAV is at `days`.
        let day = u64::try_from((*date - start).num_days() + 1).unwrap_or(0);
        flows.push(Flow {
            day,
            amount: -contributions,
        });
        flows.push(Flow {
            day,
            amount: *withdrawals,
        });
    }
    flows.push(Flow {
        day: u64::try_from(days).unwrap_or(0),
        amount: last.3,
    });
    flows.retain(|f| f.amount != 0);
    let cumulative = growth - Decimal::ONE;
    let (xirr, reason) = match xirr(&flows) {
        Ok(x) => (Some(x), None),
        Err(why) => (None, Some(why.to_owned())),
    };
    Ok(ReturnsView {
        wrap_id,
        currency: currency.to_owned(),
        from: Some(start),
        to: Some(end),
        days,
        cash_flow_timing: "end_of_day",
        time_weighted: TimeWeighted {
            cumulative: round(cumulative, SHOWN_DP),
            annualised: annualise(cumulative, days),
        },
        money_weighted: MoneyWeighted { xirr, reason },
        daily: rows
            .iter()
            .map(|(date, daily, index, nav, c, w)| DayReturn {
                date: *date,
                daily: round(*daily, SHOWN_DP),
                cumulative_index: round(*index, SHOWN_DP),
                nav: money(*nav),
                contributions: money(*c),
                withdrawals: money(*w),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn daily_returns_take_flows_at_the_end_of_the_day() {
        // 105,000 / 100,000 − 1 = 0.05
        assert_eq!(daily_return(Some(100_000), 105_000, 0, 0), d("0.05"));
        // A contribution of 45,000 arrives after the move of the 105,000 that was there:
        // (144,500 − 45,000) / 105,000 − 1 = −0.052380952…, rounded half-even at 18 places.
        assert_eq!(
            daily_return(Some(105_000), 144_500, 45_000, 0),
            d("-0.052380952380952381")
        );
        // A withdrawal of 20,000 took the day's move before leaving: (127,000 + 20,000) /
        // 144,500 − 1.
        assert_eq!(
            daily_return(Some(144_500), 127_000, 0, 20_000),
            d("0.017301038062283737")
        );
        // Everything withdrawn at the day's price: the sale is the day's value.
        assert_eq!(daily_return(Some(5_000), 0, 0, 5_100), d("0.02"));
        // A first snapshot starts the index: 0, whatever was in the wrap before.
        assert_eq!(daily_return(None, 300_000, 5_000, 0), Decimal::ZERO);
        // Nothing at risk: 0, not a division by zero.
        assert_eq!(daily_return(Some(0), 0, 0, 0), Decimal::ZERO);
        assert_eq!(daily_return(Some(0), 5_000, 5_000, 0), Decimal::ZERO);
    }

    #[test]
    fn indexes_chain_the_daily_returns() {
        let i = next_index(Decimal::ONE, d("0.05"));
        assert_eq!(i, d("1.05"));
        // 1.05 × (1 − 0.036666666666666667) = 1.01149999999999999965 → 18 places.
        assert_eq!(next_index(i, d("-0.036666666666666667")), d("1.0115"));
    }

    #[test]
    fn roots_and_annualising_are_exact_without_floats() {
        // 1.21^(1/2) = 1.1
        let r = nth_root(d("1.21"), 2).unwrap();
        assert!((r - d("1.1")).abs() < d("0.000000000000000001"), "{r}");
        // Two years that grew 21 %: 10 % a year.
        assert_eq!(annualise(d("0.21"), 730), Some(d("0.1")));
        // Exactly a year: the cumulative itself.
        assert_eq!(annualise(d("0.0734"), 365), Some(d("0.0734")));
        // Below a year: not annualised.
        assert_eq!(annualise(d("0.05"), 364), None);
        // Half lost over two years: 0.5^(1/2) − 1 = −0.2928932188…
        assert_eq!(annualise(d("-0.5"), 730), Some(d("-0.2928932188")));
    }

    #[test]
    fn xirr_without_flows_is_the_annualised_return() {
        // 100,000 → 110,000 over 365 days: 10 %.
        let flows = [
            Flow {
                day: 0,
                amount: -100_000,
            },
            Flow {
                day: 365,
                amount: 110_000,
            },
        ];
        assert_eq!(xirr(&flows), Ok(d("0.1")));
        // Over 730 days, 121,000: 10 % a year too.
        let flows = [
            Flow {
                day: 0,
                amount: -100_000,
            },
            Flow {
                day: 730,
                amount: 121_000,
            },
        ];
        assert_eq!(xirr(&flows), Ok(d("0.1")));
    }

    #[test]
    fn xirr_zeroes_the_present_value_of_flows() {
        // Pay 1,000 now and 1,000 in half a year (182.5 days is not a day count: use 365
        // days apart), receive 2,310 after two years: 1,000·1.1² + 1,000·1.1 = 1,210 + 1,100
        // = 2,310, so 10 %.
        let flows = [
            Flow {
                day: 0,
                amount: -1_000,
            },
            Flow {
                day: 365,
                amount: -1_000,
            },
            Flow {
                day: 730,
                amount: 2_310,
            },
        ];
        assert_eq!(xirr(&flows), Ok(d("0.1")));
    }

    #[test]
    fn xirr_says_why_there_is_no_rate() {
        assert!(xirr(&[]).is_err());
        // Only money paid in.
        assert!(xirr(&[Flow { day: 0, amount: -5 }]).is_err());
        // Lost 99.99 % in a year: below the bracket.
        let flows = [
            Flow {
                day: 0,
                amount: -100_000,
            },
            Flow {
                day: 365,
                amount: 10,
            },
        ];
        assert!(xirr(&flows).is_err());
    }
}
