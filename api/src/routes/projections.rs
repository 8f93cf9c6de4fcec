//! Projections: `POST /v1/projections/fee-impact` (what fees cost over the years),
//! `GET /v1/wraps/{id}/goal` (the probability of reaching a wrap's goal, now, with the latest
//! end-of-day figure) and `GET /v1/wraps/{id}/goal/history` (the figures end of day stored).
//!
//! The arithmetic lives in `wraps::projections::fee_impact` and `wraps::projections::goal`; the goal's inputs are
//! built by `wraps::eod::goals::goal_input`, the same function end of day uses; this module
//! gathers them (an agreement's schedule, a wrap's value, plans, strategy and fees) and
//! answers.
//!
//! Isolation (tested by `api/tests/http/projections.rs` and `api/tests/http/goals.rs`): the
//! fee impact of an agreement's schedule needs an agreement the caller may see (its
//! distributor, its manager, the platform; anyone else gets 404 as for a missing one); a
//! wrap's goal and its history are visible exactly as `GET /v1/wraps/{id}` is. All only read:
//! nothing is written.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tenants::Action;
use utoipa::ToSchema;
use uuid::Uuid;
use wraps::customers::Wrap;
use wraps::market::FeeSchedule;
use wraps::market::store as market_store;
use wraps::projections::fee_impact::{self, FeeImpactInput, FeeScenario, InvalidProjection};
use wraps::projections::goal::{self, GoalInput, GoalProjection};

use crate::auth::Caller;
use crate::extract::{Query, path_uuid};
use crate::problem::Problem;
use crate::routes::wraps::find_wrap;
use crate::server::AppState;
use wraps::eod::goals::{self as eod_goals, GoalDay, GoalFacts, GoalFigure, NotSimulated};

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = super::resource;
    cfg.service(resource("/v1/projections/fee-impact").post(fee_impact))
        .service(resource("/v1/wraps/{id}/goal").get(wrap_goal))
        .service(resource("/v1/wraps/{id}/goal/history").get(goal_history));
}

impl From<InvalidProjection> for Problem {
    fn from(e: InvalidProjection) -> Self {
        Problem::invalid_field(&e.field, e.message)
    }
}

// ---------------------------------------------------------------------------------------
// Fee impact

/// What to project: give `fee_rates` (flat annual rates to compare) or `agreement_id` (the
/// schedule in effect today, tiers included), not both.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeeImpactRequest {
    #[schema(value_type = String, example = "1000000")]
    #[serde(deserialize_with = "ledger::amount::de_strict")]
    pub initial_amount: Decimal,
    #[serde(default, deserialize_with = "ledger::amount::de_strict_opt")]
    #[schema(value_type = Option<String>, example = "30000")]
    pub monthly_contribution: Option<Decimal>,
    /// 1 to 60.
    #[schema(example = 20)]
    pub years: u32,
    /// Before fees, as a fraction (0.05 is 5 %), compounded monthly.
    #[schema(value_type = String, example = "0.05")]
    #[serde(deserialize_with = "ledger::amount::de_strict")]
    pub gross_annual_return: Decimal,
    /// Annual fee rates to compare, as fractions.
    #[serde(default, deserialize_with = "ledger::amount::de_strict_vec_opt")]
    #[schema(value_type = Option<Vec<String>>, example = json!(["0.011", "0.0055"]))]
    pub fee_rates: Option<Vec<Decimal>>,
    /// An agreement the caller may see: its schedule in effect today.
    #[serde(default)]
    pub agreement_id: Option<Uuid>,
    /// Consumption tax on the fee; defaults to the agreement's, or 0.10.
    #[serde(default, deserialize_with = "ledger::amount::de_strict_opt")]
    #[schema(value_type = Option<String>, example = "0.10")]
    pub tax_rate: Option<Decimal>,
    /// Defaults to JPY.
    #[serde(default)]
    pub currency: Option<String>,
    /// The funds' annual costs (信託報酬) as a fraction, charged on the value besides the
    /// fee; defaults to the agreement's model's weighted expense ratio (in effect today), or 0.
    #[serde(default, deserialize_with = "ledger::amount::de_strict_opt")]
    #[schema(value_type = Option<String>, example = "0.00285")]
    pub fund_expense_ratio: Option<Decimal>,
}

/// The projection, one scenario per fee rate (or the agreement's schedule).
#[derive(Debug, Serialize, ToSchema)]
pub struct FeeImpact {
    pub currency: String,
    pub years: u32,
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub tax_rate: Decimal,
    pub scenarios: Vec<FeeScenario>,
}

/// Project values with and without fees, the cumulative cost and the total expense ratio
/// (any authenticated caller).
#[utoipa::path(
    post, path = "/v1/projections/fee-impact", tag = "projections",
    request_body = FeeImpactRequest,
    responses(
        (status = 200, body = FeeImpact),
        (status = 404, description = "No such agreement (or not visible to the caller)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field out of range, both or neither of fee_rates and agreement_id", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn fee_impact(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReadOwnData)?;
    Query::parse(&req, &[])?;
    let body: FeeImpactRequest = crate::extract::json(&req, payload).await?;
    let currency = body.currency.clone().unwrap_or_else(|| "JPY".to_owned());
    let asset = match state.ledger.asset(&currency).await {
        Ok(a) if a.kind == ledger::AssetKind::Currency => a,
        _ => {
            return Err(Problem::invalid_field(
                "currency",
                format!("{currency} is not a currency of the platform"),
            ));
        }
    };
    let today = crate::money::today(Utc::now());
    let mut model_ratio = None;
    let (schedules, agreement_tax) = match (&body.fee_rates, body.agreement_id) {
        (Some(rates), None) => {
            for (i, r) in rates.iter().enumerate() {
                if *r < Decimal::ZERO || *r >= Decimal::ONE {
                    return Err(Problem::invalid_field(
                        &format!("fee_rates/{i}"),
                        "must be from 0 to below 1 (a fraction: 0.011 is 1.1 %)",
                    ));
                }
            }
            let schedules = rates
                .iter()
                .map(|r| FeeSchedule::Flat { rate_annual: *r })
                .collect();
            (schedules, None)
        }
        (None, Some(id)) => {
            let agreement = market_store::agreement_for(&state.db, &caller.principal, id).await?;
            model_ratio = wraps::funds::store::model_expense_ratio(
                &state.db,
                agreement.manager_tenant_id,
                agreement.strategy_id,
                today,
            )
            .await?;
            let terms = market_store::terms_in_effect(
                &state.db,
                agreement.distributor_tenant_id,
                id,
                today,
            )
            .await?
            .ok_or_else(|| {
                Problem::invalid_field("agreement_id", "the agreement has no terms in effect today")
            })?;
            (
                vec![terms.terms.management_fee.clone()],
                Some(terms.terms.consumption_tax_rate),
            )
        }
        _ => {
            return Err(Problem::invalid_field(
                "fee_rates",
                "give either fee_rates or agreement_id",
            ));
        }
    };
    let tax_rate = body
        .tax_rate
        .or(agreement_tax)
        .unwrap_or(Decimal::new(10, 2));
    let input = FeeImpactInput {
        initial_amount: body.initial_amount,
        monthly_contribution: body.monthly_contribution.unwrap_or_default(),
        years: body.years,
        gross_annual_return: body.gross_annual_return,
        tax_rate,
        schedules,
        fund_expense_ratio: body
            .fund_expense_ratio
            .or(model_ratio)
            .unwrap_or(Decimal::ZERO),
        scale: asset.scale,
    };
    input.validate()?;
    let scenarios = web::block(move || fee_impact::project(&input))
        .await
        .map_err(|e| Problem::internal(&e))??;
    Ok(HttpResponse::Ok().json(FeeImpact {
        currency,
        years: body.years,
        tax_rate,
        scenarios,
    }))
}

// ---------------------------------------------------------------------------------------
// Goal probability

/// The goal of a wrap, the inputs used, and the simulation.
#[derive(Debug, Serialize, ToSchema)]
pub struct WrapGoal {
    pub wrap_id: Uuid,
    pub goal: wraps::customers::Goal,
    pub as_of: NaiveDate,
    /// The wrap's value now (cash and units at their last prices).
    #[schema(value_type = String)]
    pub current_value: Decimal,
    /// The strategy's assumptions.
    #[schema(value_type = String)]
    pub expected_return_annual: Decimal,
    #[schema(value_type = String)]
    pub volatility_annual: Decimal,
    /// The agreement's blended fee at the current value, tax included.
    #[schema(value_type = String)]
    pub fee_rate_annual: Decimal,
    /// The active plans counted as monthly flows.
    pub plans_counted: usize,
    #[serde(flatten)]
    pub projection: GoalProjection,
    /// Asked with `target_probability`: the extra monthly contribution that reaches it
    /// (`null` when even the whole target a month would not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needed_monthly_contribution: Option<NeededContribution>,
    /// The latest figure end of day stored (from that day's valuation NAV, default seed and
    /// 10,000 paths); `null` before end of day first computed one.
    pub end_of_day: Option<GoalFigure>,
}

/// The contribution that lifts the probability to a level.
#[derive(Debug, Serialize, ToSchema)]
pub struct NeededContribution {
    #[schema(value_type = String)]
    pub target_probability: Decimal,
    #[schema(value_type = Option<String>)]
    pub amount: Option<Decimal>,
}

/// The probability of reaching the wrap's goal, with a fan chart and the latest end-of-day
/// figure (distributors for their wraps, managers for wraps on their strategies, the
/// platform).
#[utoipa::path(
    get, path = "/v1/wraps/{id}/goal", tag = "projections",
    params(
        ("id" = Uuid, Path),
        ("paths" = Option<u32>, Query, description = "Monte Carlo paths, 10,000 (default) to 100,000"),
        ("seed" = Option<String>, Query, pattern = "^[0-9]{1,20}$", example = "7", description = "Generator seed, a whole number 0 to 18446744073709551615 (the answer's `seed`, a decimal string: above int64); defaults to one fixed per strategy, shared by all its wraps and by end of day, so the default answer matches the end-of-day figure for the same inputs"),
        ("target_probability" = Option<String>, Query, description = "Also find the extra monthly contribution reaching this probability, e.g. 0.8"),
    ),
    responses(
        (status = 200, body = WrapGoal),
        (status = 400, description = "A bad query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The wrap has no goal, or its date has passed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn wrap_goal(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    let q = Query::parse(&req, &["paths", "seed", "target_probability"])?;
    let paths = match q.get("paths") {
        None => goal::MIN_PATHS,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|p| (goal::MIN_PATHS..=goal::MAX_PATHS).contains(p))
            .ok_or_else(|| {
                Problem::bad_parameter(
                    "paths",
                    format!("must be {} to {}", goal::MIN_PATHS, goal::MAX_PATHS),
                )
            })?,
    };
    let seed = match q.get("seed") {
        None => None,
        Some(s) => Some(
            s.parse::<u64>()
                .map_err(|_| Problem::bad_parameter("seed", "must be a whole number"))?,
        ),
    };
    let level = match q.get("target_probability") {
        None => None,
        Some(s) => Some(
            ledger::amount::parse_decimal(s)
                .ok()
                .filter(|p| *p > Decimal::ZERO && *p < Decimal::ONE)
                .ok_or_else(|| {
                    Problem::bad_parameter("target_probability", "must be above 0 and below 1")
                })?,
        ),
    };
    caller.principal.authorize(Action::ReadOwnData)?;
    let wrap = find_wrap(&state.db, &caller, id, false).await?;
    let seed = seed.unwrap_or_else(|| goal::strategy_seed(wrap.strategy_id));
    let input = goal_input(&state, &wrap, paths, seed).await?;
    let (goal_def, today, value, plans_counted) = input.1;
    let input = input.0;
    let fee_rate = input.fee_rate_annual;
    let (mu, sigma) = (input.expected_return_annual, input.volatility_annual);
    let end_of_day = eod_goals::latest(&state.db, wrap.tenant_id, wrap.id).await?;
    let (projection, needed) = web::block(move || {
        let p = goal::project(&input)?;
        let n = match level {
            Some(l) => Some((l, goal::needed_contribution(&input, l)?)),
            None => None,
        };
        Ok::<_, InvalidProjection>((p, n))
    })
    .await
    .map_err(|e| Problem::internal(&e))??;
    Ok(HttpResponse::Ok().json(WrapGoal {
        wrap_id: wrap.id,
        goal: goal_def,
        as_of: today,
        current_value: value,
        expected_return_annual: mu,
        volatility_annual: sigma,
        fee_rate_annual: fee_rate,
        plans_counted,
        projection,
        needed_monthly_contribution: needed.map(|(l, a)| NeededContribution {
            target_probability: l,
            amount: a,
        }),
        end_of_day,
    }))
}

type GoalContext = (wraps::customers::Goal, NaiveDate, Decimal, usize);

/// The simulation's inputs for `wrap`: its value now, plans, strategy and fee, built by
/// [`eod_goals::goal_input`] as end of day builds them.
async fn goal_input(
    state: &AppState,
    wrap: &Wrap,
    paths: u32,
    seed: u64,
) -> Result<(GoalInput, GoalContext), Problem> {
    let Some(goal_def) = wrap.goal.clone() else {
        return Err(Problem::conflict(format!("wrap {} has no goal", wrap.id)));
    };
    let today = crate::money::today(Utc::now());
    // The NAV of today as end of day's goals step starts from it (its snapshot deducts what
    // was owed when the day began, `FeeState::unpaid_at_start_of`), so the answer on request
    // is the stored figure when nothing moved since.
    let now = wraps::value::value_now(&state.db, &state.ledger, wrap, today).await?;
    let owed_at_start = wraps::eod::fees::states_of(&state.db, wrap.tenant_id, &[wrap.id])
        .await?
        .get(&wrap.id)
        .map_or(0, |s| s.unpaid_at_start_of(today));
    let value = now.cash + now.units_value
        - ledger::asset::decimal_of(i128::from(owed_at_start), wrap.currency_scale);
    let plans =
        wraps::customers::store::plans(&state.db, wrap.tenant_id, wrap.id, wrap.currency_scale)
            .await?;
    let strategy = market_store::strategy_of(&state.db, wrap.manager_tenant_id, wrap.strategy_id)
        .await?
        .ok_or_else(|| Problem::internal(&"the wrap's strategy is missing"))?;
    let terms =
        market_store::terms_in_effect(&state.db, wrap.tenant_id, wrap.agreement_id, today).await?;
    let facts = GoalFacts {
        goal: &goal_def,
        value,
        plans: &plans,
        expected_return_annual: strategy.expected_return_annual,
        volatility_annual: strategy.volatility_annual,
        terms: terms.as_ref().map(|t| &t.terms),
        today,
        scale: wrap.currency_scale,
    };
    let (input, plans_counted) = match eod_goals::goal_input(&facts, paths, seed) {
        Ok(x) => x,
        Err(NotSimulated::TargetDatePassed(d)) => {
            return Err(Problem::conflict(format!(
                "the goal's target date {d} is not after this month"
            )));
        }
    };
    Ok((input, (goal_def, today, value, plans_counted)))
}

/// A wrap's goal figures as end of day stored them.
#[derive(Debug, Serialize, ToSchema)]
pub struct GoalHistory {
    pub wrap_id: Uuid,
    pub currency: String,
    /// Oldest first.
    pub days: Vec<GoalDay>,
}

/// The goal probability end of day computed for the wrap, one figure per date between `from`
/// and `to` (both optional, inclusive; at most ten years of dates), with the inputs each was
/// computed from. Visible as `GET /v1/wraps/{id}/goal` is.
#[utoipa::path(
    get, path = "/v1/wraps/{id}/goal/history", tag = "projections",
    params(
        ("id" = Uuid, Path),
        ("from" = Option<chrono::NaiveDate>, Query, description = "First date, YYYY-MM-DD"),
        ("to" = Option<chrono::NaiveDate>, Query, description = "Last date, YYYY-MM-DD"),
    ),
    responses(
        (status = 200, body = GoalHistory),
        (status = 400, description = "A bad date or range", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn goal_history(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    let q = Query::parse(&req, &["from", "to"])?;
    let (from, to) = (q.date("from")?, q.date("to")?);
    let max = eod_goals::MAX_HISTORY_DAYS;
    if let (Some(f), Some(t)) = (from, to) {
        if t < f {
            return Err(Problem::bad_parameter(
                "to",
                format!("{t} is before from {f}"),
            ));
        }
        if u64::try_from((t - f).num_days()).unwrap_or(u64::MAX) >= max {
            return Err(Problem::bad_parameter(
                "to",
                format!("a range covers at most {max} days"),
            ));
        }
    }
    caller.principal.authorize(Action::ReadOwnData)?;
    let wrap = find_wrap(&state.db, &caller, id, false).await?;
    let days = eod_goals::history(
        &state.db,
        wrap.tenant_id,
        wrap.id,
        wrap.currency_scale,
        from,
        to,
    )
    .await?;
    if days.len() as u64 > max {
        return Err(Problem::bad_parameter(
            if from.is_none() { "from" } else { "to" },
            format!("the wrap has more than {max} figures in the range: give a shorter one"),
        ));
    }
    Ok(HttpResponse::Ok().json(GoalHistory {
        wrap_id: wrap.id,
        currency: wrap.currency.clone(),
        days,
    }))
}
