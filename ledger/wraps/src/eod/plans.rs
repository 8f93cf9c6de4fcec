//! Step `plans`: due contribution and withdrawal plans.
//!
//! A plan is due on `date` when it is active, `start_date <= date <= end_date` (no end:
//! open-ended), the date's day of month is its `day_of_month` (1–28, so it exists in every
//! month), and its frequency takes the month: monthly every month; quarterly in January,
//! April, July and October (calendar quarters, aligned with quarterly billing); yearly in
//! the month of the plan's start date (its anniversary). Plans run on every calendar day,
//! holidays included: moving cash between a customer's account and a wrap is a book entry
//! that needs no market, and the money is invested at the next trading cycle anyway.
//!
//! * A **contribution** moves the amount from the customer's cash to the wrap's cash as one
//!   ledger entry (kind `contribution`, idempotency key `plan:{plan_id}:{date}`), posted in
//!   batches of at most [`ledger::MAX_BATCH`]. It is skipped, with the reason, when the wrap
//!   no longer accepts money (closing, closed), its agreement is no longer active (checked
//!   on the day, as a contribution through the API is), or the customer's available cash (holds
//!   counted, earlier plans of the same day deducted) is short. An `open` wrap becomes
//!   `active`, as with a contribution through the API.
//! * A **withdrawal** records a pending `wrap_movements` withdrawal, which the trading steps
//!   fulfil by selling units: the fixed amount, or the percentage × the wrap's NAV at the
//!   last prices on or before `date` (net of the fees it owes, DOMAIN.md section 4), rounded
//!   down to the currency's minor unit. Skipped when the wrap is not active, is worth
//!   nothing, is worth less than the fixed amount, or the percentage rounds to zero.
//!
//! Every plan due gets exactly one `plan_runs` row for the date (`executed` or `skipped`);
//! a skipped plan writes nothing else. Tried by `api/tests/http/eod.rs::plans_execute_skip_and_withdraw`.

use std::collections::HashMap;

use crate::customers::{Movement, MovementKind, MovementStatus, WrapStatus};
use chrono::{Datelike, NaiveDate, Utc};
use ledger::asset::decimal_of;
use ledger::{Ledger, MAX_BATCH, NewEntry, NewPosting};
use rust_decimal::{Decimal, RoundingStrategy};
use sea_orm::{ConnectionTrait, DatabaseTransaction, Value};
use serde_json::json;
use uuid::Uuid;

use super::EodError;
use crate::events::{NewEvent, types};
use crate::movements::{ContributionFacts, ContributionRefusal, check_contribution};
use ledger::sql::{IN_CHUNK, INSERT_ROWS, Params, exec, get, micros, query};

struct DuePlan {
    tenant_id: Uuid,
    id: Uuid,
    wrap_id: Uuid,
    kind: String,
    amount: Option<i64>,
    percentage: Option<String>,
    customer_id: Uuid,
    currency: String,
    scale: u32,
    wrap_status: String,
    /// The wrap's agreement: a contribution needs it `active`, as through the API.
    agreement_status: String,
    /// The strategy's minimum first investment (minor units): a wrap still `open` takes no
    /// less, as through the API.
    min_initial_investment: i64,
}

/// What happened to one plan.
struct PlanRun {
    tenant_id: Uuid,
    plan_id: Uuid,
    reason: Option<String>,
    amount: Option<i64>,
    entry_id: Option<Uuid>,
    movement_id: Option<Uuid>,
}

/// Whether a plan of `frequency` starting `start` takes the month of `date` (the day of the
/// month is matched in SQL).
pub fn month_is_due(frequency: &str, start: NaiveDate, date: NaiveDate) -> bool {
    match frequency {
        "monthly" => true,
        "quarterly" => matches!(date.month(), 1 | 4 | 7 | 10),
        "yearly" => date.month() == start.month(),
        _ => false,
    }
}

/// The SQL condition on `wrap_plans p` of the plans due on `date`, but for the month, which
/// [`month_is_due`] decides on each row: the one statement of the due rule, shared with the
/// direct-debit request (`crate::zengin`), which lists the contribution plans due on its
/// collection date. Its values are pushed onto `pa` in the order they appear.
pub fn due_condition(pa: &mut Params, date: NaiveDate) -> String {
    let day = i32::try_from(date.day()).unwrap_or(0);
    format!(
        "p.status = 'active' AND p.day_of_month = {} AND p.start_date <= {} \
         AND (p.end_date IS NULL OR p.end_date >= {})",
        pa.push(day),
        pa.push(date),
        pa.push(date)
    )
}

/// Runs the due plans of `date` inside `txn`; returns the counts.
pub async fn run(
    txn: &DatabaseTransaction,
    ledger: &Ledger,
    date: NaiveDate,
) -> Result<serde_json::Value, EodError> {
    let due = due_plans(txn, date).await?;
    let mut runs: Vec<PlanRun> = Vec::with_capacity(due.len());
    let mut by_tenant: HashMap<Uuid, Vec<&DuePlan>> = HashMap::new();
    for plan in &due {
        by_tenant.entry(plan.tenant_id).or_default().push(plan);
    }
    let mut tenants: Vec<Uuid> = by_tenant.keys().copied().collect();
    tenants.sort();
    for tenant_id in tenants {
        let plans = by_tenant.remove(&tenant_id).unwrap_or_default();
        let (contributions, withdrawals): (Vec<&DuePlan>, Vec<&DuePlan>) =
            plans.into_iter().partition(|p| p.kind == "contribution");
        contribute(txn, ledger, tenant_id, date, &contributions, &mut runs).await?;
        withdraw(txn, tenant_id, date, &withdrawals, &mut runs).await?;
    }
    insert_runs(txn, date, &runs).await?;
    let executed = runs.iter().filter(|r| r.reason.is_none()).count();
    Ok(json!({
        "due": runs.len(),
        "executed": executed,
        "skipped": runs.len() - executed,
    }))
}

async fn due_plans(txn: &DatabaseTransaction, date: NaiveDate) -> Result<Vec<DuePlan>, EodError> {
    let mut pa = Params::new(txn.get_database_backend());
    let due = due_condition(&mut pa, date);
    let q = format!(
        "SELECT p.tenant_id, p.id, p.wrap_id, p.kind, p.amount, p.percentage, p.frequency, \
         p.start_date, w.customer_id, w.currency, w.currency_scale, w.status, a.status, \
         s.min_initial_investment \
         FROM wrap_plans p JOIN wraps w ON w.tenant_id = p.tenant_id AND w.id = p.wrap_id \
         JOIN agreements a ON a.tenant_id = w.tenant_id AND a.id = w.agreement_id \
         JOIN strategies s ON s.tenant_id = w.manager_tenant_id AND s.id = w.strategy_id \
         WHERE {due} \
         AND NOT EXISTS (SELECT 1 FROM plan_runs r WHERE r.tenant_id = p.tenant_id \
             AND r.plan_id = p.id AND r.run_date = {}) \
         ORDER BY p.tenant_id, p.id",
        pa.push(date)
    );
    let mut out = Vec::new();
    for r in query(txn, q, pa.values).await? {
        let frequency: String = get(&r, 6)?;
        let start: NaiveDate = get(&r, 7)?;
        if !month_is_due(&frequency, start, date) {
            continue;
        }
        out.push(DuePlan {
            tenant_id: get(&r, 0)?,
            id: get(&r, 1)?,
            wrap_id: get(&r, 2)?,
            kind: get(&r, 3)?,
            amount: get(&r, 4)?,
            percentage: get(&r, 5)?,
            customer_id: get(&r, 8)?,
            currency: get(&r, 9)?,
            scale: u32::try_from(get::<i32>(&r, 10)?).unwrap_or(0),
            wrap_status: get(&r, 11)?,
            agreement_status: get(&r, 12)?,
            min_initial_investment: get(&r, 13)?,
        });
    }
    Ok(out)
}

/// (account id, available balance in minor units) of the tenant's accounts with `codes`.
async fn accounts_by_code(
    txn: &DatabaseTransaction,
    tenant_id: Uuid,
    codes: &[String],
) -> Result<HashMap<String, (Uuid, i64)>, EodError> {
    let mut out = HashMap::new();
    for chunk in codes.chunks(IN_CHUNK) {
        let mut pa = Params::new(txn.get_database_backend());
        let t = pa.push(tenant_id);
        let list = pa.list(chunk);
        // Available = posted on the normal side less what holds reserve against it.
        let q = format!(
            "SELECT code, id, CASE WHEN normal_side = 'credit' \
                 THEN credits_posted - debits_posted - debits_pending \
                 ELSE debits_posted - credits_posted - credits_pending END \
             FROM ledger_accounts WHERE tenant_id = {t} AND code IN {list}"
        );
        for r in query(txn, q, pa.values).await? {
            out.insert(get::<String>(&r, 0)?, (get(&r, 1)?, get(&r, 2)?));
        }
    }
    Ok(out)
}

async fn contribute(
    txn: &DatabaseTransaction,
    ledger: &Ledger,
    tenant_id: Uuid,
    date: NaiveDate,
    plans: &[&DuePlan],
    runs: &mut Vec<PlanRun>,
) -> Result<(), EodError> {
    if plans.is_empty() {
        return Ok(());
    }
    let mut codes: Vec<String> = Vec::with_capacity(plans.len() * 2);
    for p in plans {
        codes.push(crate::customers::customer_cash_code(
            p.customer_id,
            &p.currency,
        ));
        codes.push(crate::customers::wrap_cash_code(p.wrap_id));
    }
    codes.sort();
    codes.dedup();
    let mut accounts = accounts_by_code(txn, tenant_id, &codes).await?;
    let mut entries: Vec<(usize, NewEntry)> = Vec::new();
    let mut activated: Vec<Uuid> = Vec::new();
    for p in plans {
        let amount = p.amount.unwrap_or(0);
        let skip = |reason: String| PlanRun {
            tenant_id,
            plan_id: p.id,
            reason: Some(reason),
            amount: None,
            entry_id: None,
            movement_id: None,
        };
        let cust_code = crate::customers::customer_cash_code(p.customer_id, &p.currency);
        let wrap_code = crate::customers::wrap_cash_code(p.wrap_id);
        let available = accounts.get(&cust_code).map_or(0, |a| a.1);
        let of = |minor: i64| decimal_of(i128::from(minor), p.scale);
        // The one contribution rule, shared with the API (crate::movements). A plan's amount
        // met the minimum per contribution when the plan was set up.
        let facts = ContributionFacts {
            // A status it cannot read takes no money.
            wrap_status: WrapStatus::parse(&p.wrap_status).unwrap_or(WrapStatus::Closed),
            agreement_status: &p.agreement_status,
            amount: of(amount),
            min_contribution: None,
            min_initial_investment: of(p.min_initial_investment),
            available: of(available),
        };
        if let Err(refusal) = check_contribution(&facts) {
            let ccy = &p.currency;
            runs.push(skip(match refusal {
                ContributionRefusal::WrapTakesNoMoney(_) => {
                    format!("the wrap is {}: it takes no contributions", p.wrap_status)
                }
                ContributionRefusal::AgreementNotActive(status) => {
                    format!("the wrap's agreement is {status}: it takes no contributions")
                }
                ContributionRefusal::BelowMinimum { minimum } => format!(
                    "the plan's {} {ccy} is below the agreement's minimum contribution of \
                     {minimum} {ccy}",
                    of(amount)
                ),
                ContributionRefusal::BelowInitialMinimum { minimum } => format!(
                    "the plan's {} {ccy} is below the strategy's minimum initial investment of \
                     {minimum} {ccy}, which the wrap's first money must meet",
                    of(amount)
                ),
                ContributionRefusal::InsufficientCash { available } => format!(
                    "the customer's available cash of {available} {ccy} is less than the \
                     plan's {} {ccy}",
                    of(amount)
                ),
            }));
            continue;
        }
        let Some((wrap_account, _)) = accounts.get(&wrap_code).copied() else {
            return Err(EodError::Ledger(ledger::LedgerError::Corrupt(format!(
                "wrap {} has no cash account",
                p.wrap_id
            ))));
        };
        let Some(cust) = accounts.get_mut(&cust_code) else {
            continue;
        };
        // Later plans of the same customer today see what this one took.
        cust.1 -= amount;
        let value = decimal_of(i128::from(amount), p.scale);
        entries.push((
            runs.len(),
            NewEntry {
                tenant_id,
                idempotency_key: format!("plan:{}:{date}", p.id),
                kind: "contribution".to_owned(),
                effective_date: date,
                description: format!("contribution plan {}", p.id),
                metadata: json!({
                    "plan_id": p.id,
                    "wrap_id": p.wrap_id,
                    "customer_id": p.customer_id,
                    "eod_date": date,
                }),
                postings: vec![
                    NewPosting::debit(cust.0, &p.currency, value),
                    NewPosting::credit(wrap_account, &p.currency, value),
                ],
                hold: None,
            },
        ));
        if facts.wrap_status == WrapStatus::Open {
            activated.push(p.wrap_id);
        }
        runs.push(PlanRun {
            tenant_id,
            plan_id: p.id,
            reason: None,
            amount: Some(amount),
            entry_id: None,
            movement_id: None,
        });
    }
    let mut rest = entries;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(MAX_BATCH));
        let (slots, batch): (Vec<usize>, Vec<NewEntry>) = rest.into_iter().unzip();
        let posted = ledger.post_batch_in(txn, batch).await?;
        for (slot, p) in slots.into_iter().zip(posted) {
            if let Some(run) = runs.get_mut(slot) {
                run.entry_id = Some(p.entry.id);
            }
        }
        rest = tail;
    }
    activated.sort();
    activated.dedup();
    crate::customers::store::advance_wraps(
        txn,
        tenant_id,
        &activated,
        WrapStatus::Open,
        WrapStatus::Active,
        Utc::now(),
    )
    .await?;
    Ok(())
}

async fn withdraw(
    txn: &DatabaseTransaction,
    tenant_id: Uuid,
    date: NaiveDate,
    plans: &[&DuePlan],
    runs: &mut Vec<PlanRun>,
) -> Result<(), EodError> {
    if plans.is_empty() {
        return Ok(());
    }
    let mut wrap_ids: Vec<Uuid> = plans.iter().map(|p| p.wrap_id).collect();
    wrap_ids.sort();
    wrap_ids.dedup();
    let values = super::valuation::values_of(txn, tenant_id, &wrap_ids, date).await?;
    // The value a percentage applies to is the NAV (DOMAIN.md section 4): net of the fees the
    // wrap owes, which are not the customer's to withdraw.
    let owed = super::fees::owed_by(txn, tenant_id, &wrap_ids).await?;
    for p in plans {
        let skip = |reason: String| PlanRun {
            tenant_id,
            plan_id: p.id,
            reason: Some(reason),
            amount: None,
            entry_id: None,
            movement_id: None,
        };
        if p.wrap_status != "active" {
            runs.push(skip(format!(
                "the wrap is {}: a withdrawal plan runs on an active wrap",
                p.wrap_status
            )));
            continue;
        }
        let nav = values.get(&p.wrap_id).map_or(0, |v| v.nav)
            - owed.get(&p.wrap_id).copied().unwrap_or(0);
        if nav <= 0 {
            runs.push(skip("the wrap holds nothing".to_owned()));
            continue;
        }
        let amount = match (p.amount, &p.percentage) {
            (Some(a), _) => a,
            (None, Some(pct)) => {
                let pct: Decimal = pct.parse().map_err(|_| {
                    ledger::LedgerError::Corrupt(format!("plan {} percentage {pct:?}", p.id))
                })?;
                let value = decimal_of(i128::from(nav), p.scale) * pct;
                let mut floor = value.round_dp_with_strategy(p.scale, RoundingStrategy::ToZero);
                floor.rescale(p.scale);
                i64::try_from(floor.mantissa()).unwrap_or(0)
            }
            (None, None) => 0,
        };
        if amount <= 0 {
            runs.push(skip(
                "the percentage of the wrap's value rounds to zero".to_owned(),
            ));
            continue;
        }
        if amount > nav {
            runs.push(skip(format!(
                "the wrap's value of {} {} is less than the plan's {} {}",
                decimal_of(i128::from(nav), p.scale),
                p.currency,
                decimal_of(i128::from(amount), p.scale),
                p.currency
            )));
            continue;
        }
        let movement = Movement {
            id: Uuid::now_v7(),
            wrap_id: p.wrap_id,
            kind: MovementKind::Withdrawal,
            amount: Some(decimal_of(i128::from(amount), p.scale)),
            destination_wrap_id: None,
            status: MovementStatus::Pending,
            requested_at: Utc::now(),
            resolved_at: None,
            paid: None,
            paid_on: None,
        };
        crate::customers::store::insert_movement(txn, tenant_id, &movement, p.scale).await?;
        runs.push(PlanRun {
            tenant_id,
            plan_id: p.id,
            reason: None,
            amount: Some(amount),
            entry_id: None,
            movement_id: Some(movement.id),
        });
    }
    Ok(())
}

/// One run of a plan: what end of day did with it on a date.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct PlanRunView {
    pub run_date: NaiveDate,
    /// `executed` or `skipped`.
    pub status: String,
    /// Why it was skipped (`the customer's available cash of … is less than the plan's …`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What was moved or asked: the contribution, or the withdrawal's amount.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub amount: Option<Decimal>,
    /// The contribution's ledger entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_id: Option<Uuid>,
    /// The withdrawal's pending movement (`GET /v1/wraps/{id}/movements`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub movement_id: Option<Uuid>,
}

/// Most runs one read returns.
pub const MAX_RUNS_PAGE: u64 = 500;

/// The runs of `plan_id` of the book `tenant_id`, newest first, before `before` when given,
/// at most `limit` ([`MAX_RUNS_PAGE`]); amounts at the currency's `scale`. The caller has
/// checked that the plan is its own.
pub async fn runs<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    plan_id: Uuid,
    before: Option<NaiveDate>,
    limit: u64,
    scale: u32,
) -> Result<Vec<PlanRunView>, EodError> {
    let mut pa = Params::new(db.get_database_backend());
    let mut q = format!(
        "SELECT run_date, status, reason, amount, entry_id, movement_id FROM plan_runs \
         WHERE tenant_id = {} AND plan_id = {}",
        pa.push(tenant_id),
        pa.push(plan_id)
    );
    if let Some(before) = before {
        q.push_str(&format!(" AND run_date < {}", pa.push(before)));
    }
    q.push_str(&format!(
        " ORDER BY run_date DESC LIMIT {}",
        limit.clamp(1, MAX_RUNS_PAGE)
    ));
    let mut out = Vec::new();
    for r in query(db, q, pa.values).await? {
        out.push(PlanRunView {
            run_date: get(&r, 0)?,
            status: get(&r, 1)?,
            reason: get(&r, 2)?,
            amount: get::<Option<i64>>(&r, 3)?.map(|a| decimal_of(i128::from(a), scale)),
            entry_id: get(&r, 4)?,
            movement_id: get(&r, 5)?,
        });
    }
    Ok(out)
}

async fn insert_runs(
    txn: &DatabaseTransaction,
    date: NaiveDate,
    runs: &[PlanRun],
) -> Result<(), EodError> {
    let now = micros(Utc::now());
    for chunk in runs.chunks(INSERT_ROWS) {
        let mut pa = Params::new(txn.get_database_backend());
        let rows: Vec<String> = chunk
            .iter()
            .map(|r| {
                pa.row(vec![
                    r.tenant_id.into(),
                    r.plan_id.into(),
                    date.into(),
                    if r.reason.is_some() {
                        "skipped"
                    } else {
                        "executed"
                    }
                    .into(),
                    r.reason.clone().into(),
                    r.amount.into(),
                    Value::from(r.entry_id),
                    Value::from(r.movement_id),
                    now.into(),
                ])
            })
            .collect();
        let q = format!(
            "INSERT INTO plan_runs (tenant_id, plan_id, run_date, status, reason, amount, \
             entry_id, movement_id, created_at) VALUES {}",
            rows.join(", ")
        );
        exec(txn, q, pa.values).await?;
    }
    // Last (the events' cursor locks come after every other lock: crate::events).
    let events = runs
        .iter()
        .map(|r| {
            let (kind, payload) = match &r.reason {
                Some(reason) => (
                    types::PLAN_SKIPPED,
                    json!({ "plan_id": r.plan_id, "reason": reason }),
                ),
                None => (
                    types::PLAN_EXECUTED,
                    json!({
                        "plan_id": r.plan_id,
                        "entry_id": r.entry_id,
                        "movement_id": r.movement_id,
                    }),
                ),
            };
            NewEvent::new(
                r.tenant_id,
                kind,
                format!("plan:{}", r.plan_id),
                Some(date),
                payload,
            )
        })
        .collect();
    crate::events::record(txn, events, Utc::now()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequencies_take_their_months() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let start = d("2026-05-10");
        assert!(month_is_due("monthly", start, d("2026-11-10")));
        assert!(month_is_due("quarterly", start, d("2026-10-10")));
        assert!(!month_is_due("quarterly", start, d("2026-11-10")));
        assert!(month_is_due("yearly", start, d("2027-05-10")));
        assert!(!month_is_due("yearly", start, d("2027-06-10")));
        assert!(!month_is_due("weekly", start, d("2027-05-10")));
    }
}
