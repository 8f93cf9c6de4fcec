//! Step `goals` (after `returns`, before `checks`): the probability of reaching its goal for
//! every wrap with a goal, stored per date (`wrap_goal_results`); and the inputs of a goal
//! simulation, built the same way for end of day and for `GET /v1/wraps/{id}/goal`
//! ([`goal_input`]).
//!
//! **Inputs.** As the on-request answer builds them, with the date of end of day in place of
//! today: the value is the day's valuation NAV (`wrap_snapshots`, net of fees owed) rather
//! than a live read; the wrap's active plans become monthly flows counted from the month after
//! the date ([`plan_flow`]); μ and σ are the strategy's; the fee is the blended annual rate of
//! the agreement's terms in effect on the date at that value, with consumption tax
//! ([`fee_rate`]); the horizon is the calendar months from the date to the target date
//! ([`months_between`]). [`goal::MIN_PATHS`] paths, no fan chart; the probability, its
//! standard error and the median value at the target date are kept.
//!
//! **When.** Every date by default; with `[goals] recompute = "month_end"` only on the last
//! date of each month (the model steps monthly; the other dates skip the step with that
//! reason, and the latest figure stands). Tried by `goals_can_wait_for_the_month_end`.
//!
//! **Which wraps.** Those with a goal and a snapshot of the date (valuation snapshots every
//! wrap that is not closed). Skipped, and counted by reason in the step's detail: a wrap
//! being closed (`closing`), a target date not after the date's month
//! (`target_date_passed`), and inputs the simulation refuses (`invalid_{field}`, e.g. a
//! target more than 60 years out or a negative NAV).
//!
//! **Shared draws, the seed rule.** The default seed is one per strategy
//! ([`goal::strategy_seed`]), for end of day and on request alike, so the wraps of a strategy
//! run over one matrix of growth factors ([`goal::Growth`]), drawn once per strategy for its
//! longest horizon: the cost of the random numbers and the `exp` is paid per strategy, not per
//! wrap, and a wrap's figure is bit-for-bit what `GET /v1/wraps/{id}/goal` answers with the
//! same inputs. The wraps then run over [`threads`] threads (`std::thread::scope`, inside
//! `spawn_blocking` so the runtime's workers stay free), each taking the next
//! [`goal::BATCH`] wraps from a shared counter and running them together over the matrix
//! ([`goal::estimate_batch`]: the matrix is streamed from memory once per batch, not once
//! per wrap; the figures are the same bit for bit).
//!
//! Set-based: one read each of the wraps with a goal, the date's snapshots, the active plans,
//! the strategies and the accepted terms (matched in memory, never a query per wrap);
//! multi-row INSERTs of [`INSERT_ROWS`] rows. The step first deletes its rows of the date, so
//! redoing it (after a late price made valuation run again) replaces them.
//!
//! **Drops.** A wrap whose probability fell, since the figure of the last date computed
//! before, by at least [`DROP_POINTS`] or from at least [`FLOOR`] to below it ([`dropped`])
//! gets a `goal.probability.dropped` event for its distributor (never for the manager: it
//! names the wrap), in the step's transaction. A redo of the date (after a late price)
//! compares its new figures again and may report the drop again, with the same payload shape.
//!
//! Invariants, and the tests that try them (`api/tests/http/goals.rs`):
//! * every wrap with a goal gets a figure, no wrap without one does, and a wrap whose target
//!   date has passed is skipped with its reason: `end_of_day_stores_each_goal`;
//! * the stored figure equals the on-request answer with the default parameters for the same
//!   date and inputs: `end_of_day_stores_each_goal`;
//! * re-running a finished date changes nothing: `end_of_day_stores_each_goal` (and the
//!   crash-and-resume test of `api/tests/http/eod.rs`, which aborts inside this step too);
//! * a wrap's history is seen as its goal is (404 otherwise) and bad dates answer
//!   problem+json naming the parameter: `goal_history_is_scoped`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::customers::{Frequency, Goal, Plan, PlanKind, PlanStatus};
use crate::events::NewEvent;
use crate::market::agreement::Terms;
use crate::projections::fee_impact::InvalidProjection;
use crate::projections::goal::{self, Estimate, FlowKind, GoalInput, Growth, PlannedFlow};
use chrono::{Datelike, NaiveDate};
use ledger::asset::decimal_of;
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::EodError;
use ledger::sql::{INSERT_ROWS, Params, exec, get, query};

// ---------------------------------------------------------------------------------------
// The inputs (shared with the on-request answer)

/// Months from `today` to `date`, counting calendar months (a date later this month is 0).
pub fn months_between(today: NaiveDate, date: NaiveDate) -> i64 {
    i64::from(date.year() - today.year()) * 12 + i64::from(date.month()) - i64::from(today.month())
}

/// A plan as monthly flows from next month (1) on; `None` when it no longer runs.
pub fn plan_flow(plan: &Plan, today: NaiveDate) -> Option<PlannedFlow> {
    if plan.status != PlanStatus::Active {
        return None;
    }
    let kind = match (plan.kind, plan.amount, plan.percentage) {
        (PlanKind::Contribution, Some(a), _) => FlowKind::Contribution(a),
        (PlanKind::Withdrawal, Some(a), _) => FlowKind::Withdrawal(a),
        (PlanKind::Withdrawal, None, Some(p)) => FlowKind::WithdrawalFraction(p),
        _ => return None,
    };
    let start = months_between(today, plan.start_date).max(1);
    let last = plan.end_date.map(|e| months_between(today, e));
    if last.is_some_and(|l| l < start) {
        return None;
    }
    let month_of = |k: i64| (i64::from(today.month0()) + k).rem_euclid(12) + 1;
    let (every, first) = match plan.frequency {
        Frequency::Monthly => (1, start),
        Frequency::Quarterly => (
            3,
            (start..start + 3).find(|k| matches!(month_of(*k), 1 | 4 | 7 | 10))?,
        ),
        Frequency::Yearly => (
            12,
            (start..start + 12).find(|k| month_of(*k) == i64::from(plan.start_date.month()))?,
        ),
    };
    Some(PlannedFlow {
        first_month: u32::try_from(first).ok()?,
        every_months: every,
        last_month: last.and_then(|l| u32::try_from(l).ok()),
        kind,
    })
}

/// The annual fee rate with tax of `terms` at `value` (tiers blended at that value, at least
/// one unit of it); 0 without terms. Rounded to 8 places: a rate, not an amount.
pub fn fee_rate(terms: Option<&Terms>, value: Decimal) -> Decimal {
    match terms {
        Some(t) => {
            let base = value.max(Decimal::ONE);
            (t.blended_annual_fee(base) / base * (Decimal::ONE + t.consumption_tax_rate))
                .round_dp(8)
                .normalize()
        }
        None => Decimal::ZERO,
    }
}

/// What a wrap's goal simulation is built from.
#[derive(Debug, Clone)]
pub struct GoalFacts<'a> {
    pub goal: &'a Goal,
    /// The wrap's value on `today`.
    pub value: Decimal,
    pub plans: &'a [Plan],
    pub expected_return_annual: Decimal,
    pub volatility_annual: Decimal,
    /// The agreement's terms in effect on `today`.
    pub terms: Option<&'a Terms>,
    /// The date the simulation starts from.
    pub today: NaiveDate,
    pub scale: u32,
}

/// Why a wrap's goal is not simulated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotSimulated {
    /// The target date is not after `today`'s month.
    TargetDatePassed(NaiveDate),
}

/// The simulation's inputs from `facts`, and the number of plans counted as flows.
pub fn goal_input(
    facts: &GoalFacts<'_>,
    paths: u32,
    seed: u64,
) -> Result<(GoalInput, usize), NotSimulated> {
    let months = months_between(facts.today, facts.goal.target_date);
    if months < 1 {
        return Err(NotSimulated::TargetDatePassed(facts.goal.target_date));
    }
    let flows: Vec<PlannedFlow> = facts
        .plans
        .iter()
        .filter_map(|p| plan_flow(p, facts.today))
        .collect();
    let plans_counted = flows.len();
    Ok((
        GoalInput {
            current_value: facts.value,
            target_amount: facts.goal.target_amount,
            months: u32::try_from(months).unwrap_or(u32::MAX),
            expected_return_annual: facts.expected_return_annual,
            volatility_annual: facts.volatility_annual,
            fee_rate_annual: fee_rate(facts.terms, facts.value),
            flows,
            paths,
            seed,
            scale: facts.scale,
        },
        plans_counted,
    ))
}

// ---------------------------------------------------------------------------------------
// The step

/// Threads the simulation runs on: the machine's cores (at least 1).
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// A wrap with a goal and a snapshot of the date.
struct Candidate {
    tenant_id: Uuid,
    wrap_id: Uuid,
    agreement_id: Uuid,
    strategy: (Uuid, Uuid),
    scale: u32,
    closing: bool,
    goal: Goal,
    nav: i64,
}

/// A wrap ready to simulate.
struct Job {
    tenant_id: Uuid,
    wrap_id: Uuid,
    target_date: NaiveDate,
    nav: i64,
    plans_counted: usize,
    input: GoalInput,
}

/// A fall of at least this much (ten percentage points) is a drop.
pub const DROP_POINTS: Decimal = Decimal::from_parts(10, 0, 0, false, 2);
/// Falling from at least this probability to below it is a drop, however small.
pub const FLOOR: Decimal = Decimal::from_parts(50, 0, 0, false, 2);

/// Whether a goal probability going from `before` to `now` is a drop partners are told of.
pub fn dropped(before: Decimal, now: Decimal) -> bool {
    before - now >= DROP_POINTS || (before >= FLOOR && now < FLOOR)
}

/// Each wrap's probability on the last date computed before `date` (and that date).
async fn previous_figures(
    txn: &DatabaseTransaction,
    date: NaiveDate,
) -> Result<(Option<NaiveDate>, HashMap<(Uuid, Uuid), Decimal>), EodError> {
    let b = txn.get_database_backend();
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT MAX(business_date) FROM wrap_goal_results WHERE business_date < {}",
        pa.push(date)
    );
    let last: Option<NaiveDate> = match query(txn, q, pa.values).await?.first() {
        Some(r) => get(r, 0)?,
        None => None,
    };
    let mut figures = HashMap::new();
    if let Some(last) = last {
        let mut pa = Params::new(b);
        let q = format!(
            "SELECT tenant_id, wrap_id, probability FROM wrap_goal_results \
             WHERE business_date = {}",
            pa.push(last)
        );
        for r in query(txn, q, pa.values).await? {
            let text: String = get(&r, 2)?;
            let p = Decimal::from_str_exact(&text)
                .map_err(|e| corrupt(format!("goal probability {text:?}: {e}")))?;
            figures.insert((get(&r, 0)?, get(&r, 1)?), p);
        }
    }
    Ok((last, figures))
}

/// A wrap of the follow-up queue: its goal probability dropped ([`dropped`]) between the
/// tenant's last two computed dates.
#[derive(Debug, Clone)]
pub struct GoalDrop {
    pub customer_id: Uuid,
    pub customer_name: String,
    pub external_ref: String,
    pub wrap_id: Uuid,
    pub wrap_name: String,
    pub previous_date: NaiveDate,
    pub previous: Decimal,
    pub date: NaiveDate,
    pub probability: Decimal,
}

/// The distributor's wraps in `scope` whose goal probability dropped between its last two
/// computed dates, largest fall first: head office's and an adviser's follow-up queue (the
/// same rule as the `goal.probability.dropped` event).
pub async fn drops<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    scope: crate::customers::Scope,
) -> Result<Vec<GoalDrop>, EodError> {
    let b = db.get_database_backend();
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT DISTINCT business_date FROM wrap_goal_results WHERE tenant_id = {} \
         ORDER BY business_date DESC LIMIT 2",
        pa.push(tenant_id)
    );
    let dates: Vec<NaiveDate> = query(db, q, pa.values)
        .await?
        .iter()
        .map(|r| get(r, 0))
        .collect::<Result<_, _>>()?;
    let [date, previous_date] = dates[..] else {
        return Ok(Vec::new());
    };
    let mut pa = Params::new(b);
    let mut q = format!(
        "SELECT r.wrap_id, r.business_date, r.probability, w.name, c.id, c.name, \
         c.external_ref FROM wrap_goal_results r \
         JOIN wraps w ON w.tenant_id = r.tenant_id AND w.id = r.wrap_id \
         JOIN customers c ON c.tenant_id = w.tenant_id AND c.id = w.customer_id \
         WHERE r.tenant_id = {} AND r.business_date IN ({}, {})",
        pa.push(tenant_id),
        pa.push(date),
        pa.push(previous_date)
    );
    if let crate::customers::Scope::Branch(branch) = scope {
        q.push_str(&format!(" AND c.branch_id = {}", pa.push(branch)));
    }
    let mut before: HashMap<Uuid, Decimal> = HashMap::new();
    let mut latest = Vec::new();
    for r in query(db, q, pa.values).await? {
        let text: String = get(&r, 2)?;
        let p = Decimal::from_str_exact(&text)
            .map_err(|e| corrupt(format!("goal probability {text:?}: {e}")))?;
        let (wrap_id, on): (Uuid, NaiveDate) = (get(&r, 0)?, get(&r, 1)?);
        if on == previous_date {
            before.insert(wrap_id, p);
        } else {
            latest.push(GoalDrop {
                customer_id: get(&r, 4)?,
                customer_name: get(&r, 5)?,
                external_ref: get(&r, 6)?,
                wrap_id,
                wrap_name: get(&r, 3)?,
                previous_date,
                previous: Decimal::ZERO,
                date,
                probability: p,
            });
        }
    }
    let mut found: Vec<GoalDrop> = latest
        .into_iter()
        .filter_map(|mut d| {
            d.previous = *before.get(&d.wrap_id)?;
            dropped(d.previous, d.probability).then_some(d)
        })
        .collect();
    found.sort_by(|a, b| {
        (b.previous - b.probability)
            .cmp(&(a.previous - a.probability))
            .then(a.wrap_id.cmp(&b.wrap_id))
    });
    Ok(found)
}

/// Computes and stores the goal probability of `date` for every wrap with a goal.
pub async fn run(
    txn: &DatabaseTransaction,
    date: NaiveDate,
    cadence: super::GoalCadence,
) -> Result<serde_json::Value, EodError> {
    let month_end = date
        .succ_opt()
        .is_none_or(|next| next.month() != date.month());
    if cadence == super::GoalCadence::MonthEnd && !month_end {
        return Ok(json!({
            "computed": 0,
            "reason": "recomputed at month ends only ([goals] recompute = \"month_end\")",
        }));
    }
    let b = txn.get_database_backend();
    // A redo (valuation ran again) replaces the date's rows.
    let mut pa = Params::new(b);
    let q = format!(
        "DELETE FROM wrap_goal_results WHERE business_date = {}",
        pa.push(date)
    );
    exec(txn, q, pa.values).await?;

    let candidates = candidates(txn, date).await?;
    let with_goal = candidates.len();
    let mut plans = active_plans(txn, &candidates).await?;
    let strategies = strategies(txn).await?;
    let terms = super::fees::all_terms(txn).await?;

    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    // Grouped by strategy, in a fixed order: one matrix of draws per group.
    let mut groups: BTreeMap<(Uuid, Uuid), Vec<Job>> = BTreeMap::new();
    for c in candidates {
        if c.closing {
            *skipped.entry("closing".into()).or_default() += 1;
            continue;
        }
        let Some(&(mu, sigma)) = strategies.get(&c.strategy) else {
            return Err(corrupt(format!(
                "wrap {} follows strategy {}, which is missing",
                c.wrap_id, c.strategy.1
            )));
        };
        let wrap_plans = plans.remove(&(c.tenant_id, c.wrap_id)).unwrap_or_default();
        let facts = GoalFacts {
            goal: &c.goal,
            value: decimal_of(i128::from(c.nav), c.scale),
            plans: &wrap_plans,
            expected_return_annual: mu,
            volatility_annual: sigma,
            terms: terms.get(&c.agreement_id).and_then(|t| t.on(date)),
            today: date,
            scale: c.scale,
        };
        let seed = goal::strategy_seed(c.strategy.1);
        match goal_input(&facts, goal::MIN_PATHS, seed) {
            Err(NotSimulated::TargetDatePassed(_)) => {
                *skipped.entry("target_date_passed".into()).or_default() += 1;
            }
            Ok((input, plans_counted)) => match input.validate() {
                Err(e) => *skipped.entry(format!("invalid_{}", e.field)).or_default() += 1,
                Ok(()) => groups.entry(c.strategy).or_default().push(Job {
                    tenant_id: c.tenant_id,
                    wrap_id: c.wrap_id,
                    target_date: c.goal.target_date,
                    nav: c.nav,
                    plans_counted,
                    input,
                }),
            },
        }
    }

    let threads = threads();
    let clock = Instant::now();
    let strategies_run = groups.len();
    let jobs: Vec<Vec<Job>> = groups.into_values().collect();
    let results = tokio::task::spawn_blocking(move || simulate_groups(jobs, threads))
        .await
        .map_err(|e| corrupt(format!("the goal simulation stopped: {e}")))?;
    let simulation_ms = i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX);

    let mut computed = 0_u64;
    let mut rows: Vec<(Job, Estimate)> = Vec::with_capacity(results.len());
    for (job, result) in results {
        match result {
            Ok(e) => {
                computed += 1;
                rows.push((job, e));
            }
            Err(e) => *skipped.entry(format!("invalid_{}", e.field)).or_default() += 1,
        }
    }
    // Stored in key order, so a re-run writes the same rows the same way.
    rows.sort_by_key(|(j, _)| (j.tenant_id, j.wrap_id));
    let (last, before) = previous_figures(txn, date).await?;
    let drops: Vec<NewEvent> = rows
        .iter()
        .filter_map(|(j, e)| {
            let was = *before.get(&(j.tenant_id, j.wrap_id))?;
            dropped(was, e.probability).then(|| {
                NewEvent::new(
                    j.tenant_id,
                    crate::events::types::GOAL_PROBABILITY_DROPPED,
                    format!("wrap:{}", j.wrap_id),
                    Some(date),
                    json!({
                        "wrap_id": j.wrap_id,
                        "probability": e.probability.to_string(),
                        "previous_probability": was.to_string(),
                        "previous_date": last,
                        "target_date": j.target_date,
                    }),
                )
            })
        })
        .collect();
    for chunk in rows.chunks(INSERT_ROWS) {
        let mut pa = Params::new(b);
        let values: Vec<String> = chunk
            .iter()
            .map(|(j, e)| {
                pa.row(vec![
                    j.tenant_id.into(),
                    j.wrap_id.into(),
                    date.into(),
                    e.probability.to_string().into(),
                    e.standard_error.to_string().into(),
                    minor(e.median_value, j.input.scale).into(),
                    j.nav.into(),
                    minor(j.input.target_amount, j.input.scale).into(),
                    j.target_date.into(),
                    j.input.fee_rate_annual.to_string().into(),
                    i32::try_from(j.plans_counted).unwrap_or(i32::MAX).into(),
                    i32::try_from(j.input.months).unwrap_or(i32::MAX).into(),
                    i32::try_from(j.input.paths).unwrap_or(i32::MAX).into(),
                    j.input.seed.to_string().into(),
                ])
            })
            .collect();
        let q = format!(
            "INSERT INTO wrap_goal_results (tenant_id, wrap_id, business_date, probability, \
             standard_error, median_value, nav, target_amount, target_date, fee_rate_annual, \
             plans_counted, months, paths, seed) VALUES {}",
            values.join(", ")
        );
        exec(txn, q, pa.values).await?;
    }
    let dropped_count = drops.len();
    // Last: the tenants' event cursors follow every other lock (events/mod.rs).
    crate::events::record(txn, drops, chrono::Utc::now()).await?;
    Ok(json!({
        "wraps_with_goal": with_goal,
        "computed": computed,
        "dropped": dropped_count,
        "skipped": skipped,
        "strategies": strategies_run,
        "paths": goal::MIN_PATHS,
        "threads": threads,
        "simulation_ms": simulation_ms,
    }))
}

/// `amount` in minor units of `scale` (saturating: a median beyond i64 is not a balance).
fn minor(amount: Decimal, scale: u32) -> i64 {
    let mut a = amount;
    a.rescale(scale);
    i64::try_from(a.mantissa()).unwrap_or(i64::MAX)
}

fn corrupt(message: String) -> EodError {
    EodError::Db(sea_orm::DbErr::Custom(format!("goals: {message}")))
}

/// Simulates every group over its own matrix of draws (drawn for the group's longest
/// horizon, on `threads` threads), the wraps of a group shared among `threads` threads.
fn simulate_groups(
    groups: Vec<Vec<Job>>,
    threads: usize,
) -> Vec<(Job, Result<Estimate, InvalidProjection>)> {
    let mut out = Vec::with_capacity(groups.iter().map(Vec::len).sum());
    for jobs in groups {
        let Some(first) = jobs.first() else { continue };
        let months = jobs.iter().map(|j| j.input.months).max().unwrap_or(1);
        let growth = Growth::new_parallel(
            first.input.expected_return_annual,
            first.input.volatility_annual,
            first.input.seed,
            first.input.paths,
            months,
            threads,
        );
        let inputs: Vec<&GoalInput> = jobs.iter().map(|j| &j.input).collect();
        let results = estimate_all(&inputs, &growth, threads);
        out.extend(jobs.into_iter().zip(results));
    }
    out
}

/// [`goal::estimate`] of each input over the shared `growth`, on `threads` threads that each
/// take the next [`goal::BATCH`] inputs from a shared counter (wraps differ in horizon and
/// plans, so fixed slices would leave a thread idle) and run them together
/// ([`goal::estimate_batch`]: the matrix is read once per batch); in the order given.
pub fn estimate_all(
    inputs: &[&GoalInput],
    growth: &Growth,
    threads: usize,
) -> Vec<Result<Estimate, InvalidProjection>> {
    let next = AtomicUsize::new(0);
    let done: Vec<Vec<(usize, Result<Estimate, InvalidProjection>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.clamp(1, inputs.len().max(1)))
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let first = next.fetch_add(goal::BATCH, Ordering::Relaxed);
                        if first >= inputs.len() {
                            break;
                        }
                        let batch = &inputs[first..(first + goal::BATCH).min(inputs.len())];
                        let estimates = goal::estimate_batch(batch, growth);
                        mine.extend((first..).zip(estimates));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut results: Vec<Option<Result<Estimate, InvalidProjection>>> =
        (0..inputs.len()).map(|_| None).collect();
    for (i, r) in done.into_iter().flatten() {
        results[i] = Some(r);
    }
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(InvalidProjection {
                    field: "simulation".into(),
                    message: "a simulation thread stopped".into(),
                })
            })
        })
        .collect()
}

/// Wraps with a goal and a snapshot of `date`: two reads matched in memory (as the returns
/// step does, so no planner can turn the match into a nested loop over a day's rows).
async fn candidates(
    txn: &DatabaseTransaction,
    date: NaiveDate,
) -> Result<Vec<Candidate>, EodError> {
    let b = txn.get_database_backend();
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT tenant_id, wrap_id, nav FROM wrap_snapshots WHERE business_date = {}",
        pa.push(date)
    );
    let mut navs: HashMap<(Uuid, Uuid), i64> = HashMap::new();
    for r in query(txn, q, pa.values).await? {
        navs.insert((get(&r, 0)?, get(&r, 1)?), get(&r, 2)?);
    }
    let rows = query(
        txn,
        "SELECT tenant_id, id, agreement_id, manager_tenant_id, strategy_id, currency_scale, \
         status, goal_name, goal_target_amount, goal_target_date FROM wraps \
         WHERE goal_target_date IS NOT NULL"
            .to_owned(),
        vec![],
    )
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        let key: (Uuid, Uuid) = (get(r, 0)?, get(r, 1)?);
        let Some(&nav) = navs.get(&key) else { continue };
        let scale = u32::try_from(get::<i32>(r, 5)?).unwrap_or(0);
        let status: String = get(r, 6)?;
        out.push(Candidate {
            tenant_id: key.0,
            wrap_id: key.1,
            agreement_id: get(r, 2)?,
            strategy: (get(r, 3)?, get(r, 4)?),
            scale,
            closing: status == "closing",
            goal: Goal {
                name: get(r, 7)?,
                target_amount: decimal_of(i128::from(get::<i64>(r, 8)?), scale),
                target_date: get(r, 9)?,
            },
            nav,
        });
    }
    Ok(out)
}

/// The active plans of the candidates, by (tenant, wrap).
async fn active_plans(
    txn: &DatabaseTransaction,
    candidates: &[Candidate],
) -> Result<HashMap<(Uuid, Uuid), Vec<Plan>>, EodError> {
    let scales: HashMap<(Uuid, Uuid), u32> = candidates
        .iter()
        .map(|c| ((c.tenant_id, c.wrap_id), c.scale))
        .collect();
    let q = format!(
        "SELECT {}, tenant_id FROM wrap_plans WHERE status = 'active' ORDER BY tenant_id, id",
        crate::customers::store::PLAN_COLS
    );
    let mut out: HashMap<(Uuid, Uuid), Vec<Plan>> = HashMap::new();
    for r in query(txn, q, vec![]).await? {
        let key: (Uuid, Uuid) = (get(&r, 11)?, get(&r, 1)?);
        let Some(&scale) = scales.get(&key) else {
            continue;
        };
        let plan = crate::customers::store::plan_from_row(&r, scale)
            .map_err(|e| corrupt(format!("plan: {e}")))?;
        out.entry(key).or_default().push(plan);
    }
    Ok(out)
}

/// Every strategy's μ and σ, by (manager, strategy).
async fn strategies(
    txn: &DatabaseTransaction,
) -> Result<HashMap<(Uuid, Uuid), (Decimal, Decimal)>, EodError> {
    let rows = query(
        txn,
        "SELECT tenant_id, id, expected_return_annual, volatility_annual FROM strategies"
            .to_owned(),
        vec![],
    )
    .await?;
    let dec = |s: String| {
        s.parse::<Decimal>()
            .map_err(|e| corrupt(format!("strategy assumption {s:?}: {e}")))
    };
    let mut out = HashMap::with_capacity(rows.len());
    for r in &rows {
        out.insert(
            (get(r, 0)?, get(r, 1)?),
            (dec(get(r, 2)?)?, dec(get(r, 3)?)?),
        );
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Reads, on request

/// A wrap's figure of one end of day.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GoalFigure {
    pub date: NaiveDate,
    /// Share of the paths reaching the target (4 decimals).
    #[schema(value_type = String, example = "0.6123")]
    #[serde(with = "rust_decimal::serde::str")]
    pub probability: Decimal,
    #[schema(value_type = String, example = "0.0049")]
    #[serde(with = "rust_decimal::serde::str")]
    pub standard_error: Decimal,
}

/// One day of a wrap's goal history: the figure and what it was computed from.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GoalDay {
    #[serde(flatten)]
    pub figure: GoalFigure,
    /// The median value at the target date, in the wrap's currency.
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub median_value: Decimal,
    /// The day's valuation NAV the simulation started from.
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub current_value: Decimal,
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub target_amount: Decimal,
    /// The goal's target date then.
    pub target_date: NaiveDate,
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub fee_rate_annual: Decimal,
    pub plans_counted: u32,
    pub months: u32,
    pub paths: u32,
    /// The generator seed, as a decimal string (`GoalProjection`'s `seed`).
    #[schema(value_type = String, pattern = "^[0-9]{1,20}$", example = "14323723483916523391")]
    #[serde(serialize_with = "goal::seed_as_string")]
    pub seed: u64,
}

/// Most days one history answer holds (ten years): a longer range is refused.
pub const MAX_HISTORY_DAYS: u64 = 3_660;

/// The stored figures of the tenant's wrap `wrap_id` (the caller checked it may see the
/// wrap) over `from..=to` (either end open), oldest first; at most [`MAX_HISTORY_DAYS`] + 1
/// rows, so a caller can tell that the range holds more.
pub async fn history<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    wrap_id: Uuid,
    scale: u32,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<Vec<GoalDay>, EodError> {
    let mut pa = Params::new(db.get_database_backend());
    let mut q = format!(
        "SELECT business_date, probability, standard_error, median_value, nav, target_amount, \
         target_date, fee_rate_annual, plans_counted, months, paths, seed \
         FROM wrap_goal_results WHERE tenant_id = {} AND wrap_id = {}",
        pa.push(tenant_id),
        pa.push(wrap_id)
    );
    if let Some(f) = from {
        q.push_str(&format!(" AND business_date >= {}", pa.push(f)));
    }
    if let Some(t) = to {
        q.push_str(&format!(" AND business_date <= {}", pa.push(t)));
    }
    q.push_str(&format!(
        " ORDER BY business_date LIMIT {}",
        MAX_HISTORY_DAYS + 1
    ));
    let text = |r: &sea_orm::QueryResult, i: usize, what: &str| -> Result<Decimal, EodError> {
        let s: String = get(r, i)?;
        s.parse::<Decimal>().map_err(|e| {
            corrupt(format!(
                "wrap_goal_results of {wrap_id}: bad {what} {s}: {e}"
            ))
        })
    };
    let money = |minor: i64| decimal_of(i128::from(minor), scale);
    let count = |r: &sea_orm::QueryResult, i: usize| -> Result<u32, EodError> {
        Ok(u32::try_from(get::<i32>(r, i)?).unwrap_or(0))
    };
    let mut out = Vec::new();
    for r in query(db, q, pa.values).await? {
        let seed: String = get(&r, 11)?;
        out.push(GoalDay {
            figure: GoalFigure {
                date: get(&r, 0)?,
                probability: text(&r, 1, "probability")?,
                standard_error: text(&r, 2, "standard_error")?,
            },
            median_value: money(get(&r, 3)?),
            current_value: money(get(&r, 4)?),
            target_amount: money(get(&r, 5)?),
            target_date: get(&r, 6)?,
            fee_rate_annual: text(&r, 7, "fee_rate_annual")?,
            plans_counted: count(&r, 8)?,
            months: count(&r, 9)?,
            paths: count(&r, 10)?,
            seed: seed
                .parse()
                .map_err(|e| corrupt(format!("wrap_goal_results of {wrap_id}: bad seed: {e}")))?,
        });
    }
    Ok(out)
}

/// The newest stored figure of the tenant's wrap `wrap_id`, if end of day computed one.
pub async fn latest<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    wrap_id: Uuid,
) -> Result<Option<GoalFigure>, EodError> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "SELECT business_date, probability, standard_error FROM wrap_goal_results \
         WHERE tenant_id = {} AND wrap_id = {} ORDER BY business_date DESC LIMIT 1",
        pa.push(tenant_id),
        pa.push(wrap_id)
    );
    let Some(r) = query(db, q, pa.values).await?.into_iter().next() else {
        return Ok(None);
    };
    let text = |i: usize| -> Result<Decimal, EodError> {
        let s: String = get(&r, i)?;
        s.parse::<Decimal>().map_err(|e| {
            corrupt(format!(
                "wrap_goal_results of {wrap_id}: bad figure {s}: {e}"
            ))
        })
    };
    Ok(Some(GoalFigure {
        date: get(&r, 0)?,
        probability: text(1)?,
        standard_error: text(2)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn plan(frequency: Frequency, start: &str, end: Option<&str>) -> Plan {
        Plan {
            id: Uuid::nil(),
            wrap_id: Uuid::nil(),
            kind: PlanKind::Contribution,
            amount: Some(Decimal::from(10_000)),
            percentage: None,
            frequency,
            day_of_month: 10,
            start_date: d(start),
            end_date: end.map(d),
            status: PlanStatus::Active,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn plans_become_monthly_flows_from_next_month() {
        let today = d("2026-11-21");
        // Monthly, started long ago: from month 1 (December).
        let f = plan_flow(&plan(Frequency::Monthly, "2026-01-10", None), today).unwrap();
        assert_eq!((f.first_month, f.every_months, f.last_month), (1, 1, None));
        // Quarterly: January is month 2, then every 3.
        let f = plan_flow(&plan(Frequency::Quarterly, "2026-01-10", None), today).unwrap();
        assert_eq!((f.first_month, f.every_months), (2, 3));
        // Yearly on the start month (March): month 4.
        let f = plan_flow(&plan(Frequency::Yearly, "2025-03-10", None), today).unwrap();
        assert_eq!((f.first_month, f.every_months), (4, 12));
        // Ending in June 2027: month 7 is the last.
        let f = plan_flow(
            &plan(Frequency::Monthly, "2026-01-10", Some("2027-06-30")),
            today,
        )
        .unwrap();
        assert_eq!(f.last_month, Some(7));
        // Ended already: not counted.
        assert!(
            plan_flow(
                &plan(Frequency::Monthly, "2026-01-10", Some("2026-10-31")),
                today
            )
            .is_none()
        );
    }

    #[test]
    fn the_fee_rate_blends_tiers_and_adds_tax() {
        let terms: Terms = serde_json::from_value(json!({
            "management_fee": { "kind": "tiered", "tiers": [
                { "up_to": "1000000", "rate_annual": "0.012" },
                { "up_to": null, "rate_annual": "0.008" },
            ]},
            "consumption_tax_rate": "0.10",
            "split": { "channel": "0.5", "manager": "0.4", "platform": "0.1" },
            "performance_fee": null,
            "billing_period": "monthly",
            "min_contribution": "1000",
        }))
        .unwrap();
        // 2,000,000: 12,000 + 8,000 = 20,000 a year = 1 %, × 1.1 = 0.011.
        assert_eq!(
            fee_rate(Some(&terms), Decimal::from(2_000_000)),
            "0.011".parse::<Decimal>().unwrap()
        );
        assert_eq!(fee_rate(None, Decimal::from(5)), Decimal::ZERO);
    }

    #[test]
    fn drops_are_ten_points_or_a_fall_below_one_half() {
        let p = |s: &str| Decimal::from_str_exact(s).unwrap();
        assert!(dropped(p("0.80"), p("0.70")));
        assert!(!dropped(p("0.80"), p("0.7001")));
        assert!(dropped(p("0.52"), p("0.49")));
        assert!(dropped(p("0.50"), p("0.4999")));
        assert!(!dropped(p("0.49"), p("0.45")));
        assert!(!dropped(p("0.40"), p("0.60")));
    }

    #[test]
    fn a_passed_target_is_not_simulated() {
        let goal = Goal {
            name: "House".into(),
            target_amount: Decimal::from(1_000_000),
            target_date: d("2026-11-30"),
        };
        let facts = GoalFacts {
            goal: &goal,
            value: Decimal::from(500_000),
            plans: &[],
            expected_return_annual: "0.04".parse().unwrap(),
            volatility_annual: "0.10".parse().unwrap(),
            terms: None,
            today: d("2026-11-21"),
            scale: 0,
        };
        assert_eq!(
            goal_input(&facts, goal::MIN_PATHS, 1).unwrap_err(),
            NotSimulated::TargetDatePassed(d("2026-11-30"))
        );
        let facts = GoalFacts {
            today: d("2026-10-31"),
            ..facts
        };
        let (input, plans) = goal_input(&facts, goal::MIN_PATHS, 1).unwrap();
        assert_eq!((input.months, plans), (1, 0));
    }
}
