//! `/v1/wraps` and `/v1/customers/{id}/wraps`: wraps (virtual sub-accounts) and the money
//! that moves in and out of them.
//!
//! Isolation: a wrap belongs to the distributor that opened it, and is visible to the
//! manager whose strategy it follows (without the customer's identity) and to the platform;
//! to anyone else it answers 404 exactly like a missing wrap
//! (`api/tests/http/wraps.rs::wraps_are_isolated`). Only the distributor changes it.
//!
//! Rules (each tried by a test in `api/tests/http/wraps.rs`):
//! * a wrap opens only through one of the distributor's ACTIVE agreements, on a strategy no
//!   riskier than the customer's tolerance, and a customer has at most
//!   `wraps.max_open_per_customer` wraps that are not closed (here: the customer row is locked
//!   before its wraps are counted);
//! * contributions, withdrawals, switches and closes are decided and booked by
//!   [`wraps::movements`] (one function each, with its lock order), which these handlers call
//!   inside the request's transaction after parsing, authorising and the idempotency check;
//! * money-moving POSTs require an `Idempotency-Key` ([`crate::idempotency`]).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use ledger::{Account, NewAccount, Side};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tenants::{Action, TenantKind};
use utoipa::ToSchema;
use uuid::Uuid;
use wraps::customers::store::{self as store, WrapFilter, WrapScope};
use wraps::customers::{
    Frequency, Goal, Movement, MovementKind, NewPlan, Plan, PlanKind, Wrap, WrapStatus,
    suitability, wrap_cash_code,
};

use crate::audit::{self, Change};
use crate::auth::Caller;
use crate::extract::{Query, path_uuid};
use crate::idempotency::Idempotency;
use crate::money;
use crate::problem::Problem;
use crate::routes::customers::find_customer;
use crate::server::AppState;
use wraps::movements;

/// Routes of this module (`/v1/customers/{id}/wraps` is mounted by `customers`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = super::resource;
    cfg.service(resource("/v1/wraps").get(list_wraps))
        .service(resource("/v1/wraps/{id}").get(get_wrap))
        .service(resource("/v1/wraps/{id}/contributions").post(contribute))
        .service(resource("/v1/wraps/{id}/withdrawals").post(withdraw))
        .service(resource("/v1/wraps/{id}/switches").post(switch))
        .service(resource("/v1/wraps/{id}/close").post(close))
        .service(resource("/v1/wraps/{id}/movements").get(list_movements))
        .service(
            resource("/v1/wraps/{id}/plans")
                .get(list_plans)
                .post(create_plan),
        )
        .service(resource("/v1/wraps/{id}/plans/{plan}/cancel").post(cancel_plan))
        .service(resource("/v1/wraps/{id}/plans/{plan}/runs").get(list_plan_runs));
}

/// An amount of one currency.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Money {
    pub currency: String,
    #[schema(value_type = String)]
    pub amount: Decimal,
}

/// Who may see which wraps.
fn scope(caller: &Caller) -> WrapScope {
    match caller.principal.tenant_kind {
        TenantKind::Distributor => WrapScope::Distributor(caller.principal.tenant_id),
        TenantKind::Manager => WrapScope::Manager(caller.principal.tenant_id),
        TenantKind::Platform => WrapScope::All,
    }
}

fn not_found(id: Uuid) -> Problem {
    Problem::not_found(format!("no wrap {id}"))
}

/// Wrap `id` as the caller may see it, or 404.
pub(crate) async fn find_wrap<C: sea_orm::ConnectionTrait>(
    db: &C,
    caller: &Caller,
    id: Uuid,
    for_update: bool,
) -> Result<Wrap, Problem> {
    store::wrap(db, scope(caller), id, for_update)
        .await?
        .ok_or_else(|| not_found(id))
}

/// Wrap `id` of the calling distributor, for a change: 404 unless the caller may see it,
/// then 403 unless it is the distributor's own and the role writes.
async fn own_wrap_for_change(state: &AppState, caller: &Caller, id: Uuid) -> Result<Wrap, Problem> {
    let wrap = find_wrap(&state.db, caller, id, false).await?;
    caller.principal.authorize(Action::ManageCustomers)?;
    Ok(wrap)
}

/// The JSON of a wrap for `caller`: a manager never sees which customer holds it.
fn wrap_json(caller: &Caller, wrap: &Wrap) -> serde_json::Value {
    let mut v = json!(wrap);
    if caller.principal.tenant_kind == TenantKind::Manager
        && let Some(m) = v.as_object_mut()
    {
        m.remove("customer_id");
    }
    v
}

// ---------------------------------------------------------------------------------------
// Valuation

pub use wraps::value::{Holding, Valuation};

// ---------------------------------------------------------------------------------------
// Opening

/// What it takes to open a wrap.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenWrap {
    /// One of the distributor's active agreements: it fixes the strategy and the fees.
    pub agreement_id: Uuid,
    /// Shown to the customer; defaults to the strategy's name.
    pub name: Option<String>,
    pub goal: Option<Goal>,
}

/// Open a wrap for a customer (distributor writers).
#[utoipa::path(
    post, path = "/v1/customers/{id}/wraps", tag = "wraps",
    params(("id" = Uuid, Path, description = "The customer")),
    request_body(content = OpenWrap, example = json!({
        "agreement_id": "01a1ffc1-a030-7c3e-9d1b-5f2a8e4c6d70",
        "name": "Retirement",
        "goal": {"name": "Retire at 65", "target_amount": "20000000", "target_date": "2045-04-01"}
    })),
    responses(
        (status = 201, body = Wrap),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Customer closed, or at the limit of open wraps", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No such active agreement, unsuitable strategy, bad goal", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn open_wrap(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let customer_id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    find_customer(&state.db, &caller, customer_id).await?;
    caller.principal.authorize(Action::ManageCustomers)?;
    let body: OpenWrap = crate::extract::json(&req, payload).await?;
    let tenant_id = caller.principal.tenant_id;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    // Booked on the open business date (DOMAIN.md section 7): after today's end of day,
    // tomorrow.
    let today = wraps::clock::open_date(&txn, &state.clock).await?;
    let customer = store::customer_for_update(&txn, tenant_id, customer_id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no customer {customer_id}")))?;
    if customer.status != wraps::customers::CustomerStatus::Active {
        return Err(Problem::conflict(format!(
            "customer {customer_id} is closed"
        )));
    }
    let offer = offer(&txn, tenant_id, body.agreement_id, today).await?;
    if !offer.strategy_active {
        return Err(Problem::invalid_field(
            "agreement_id",
            format!(
                "the agreement's strategy {} is retired: it takes no new wraps",
                offer.strategy_id
            ),
        ));
    }
    suitability(offer.strategy_risk_level, customer.risk_tolerance)
        .map_err(|why| Problem::invalid_field("agreement_id", why))?;
    let asset = money::currency(&txn, &state.ledger, "agreement_id", &offer.currency).await?;
    if let Some(goal) = &body.goal {
        goal.validate(&state.amount_limits.bound(&asset), today)?;
    }
    let name = body.name.unwrap_or_else(|| offer.strategy_name.clone());
    wraps::customers::check_name("name", &name)?;
    let live = store::count_live_wraps(&txn, tenant_id, customer_id).await?;
    if live >= state.max_open_wraps {
        return Err(Problem::conflict(format!(
            "customer {customer_id} already has {live} wraps that are not closed, the most \
             allowed (wraps.max_open_per_customer = {}); close one first",
            state.max_open_wraps
        )));
    }
    let id = Uuid::now_v7();
    let cash_account_id = state
        .ledger
        .create_account_in(
            &txn,
            &NewAccount {
                tenant_id,
                code: wrap_cash_code(id),
                asset: asset.code.clone(),
                normal_side: Side::Credit,
                no_negative: true,
                metadata: json!({ "wrap_id": id, "customer_id": customer_id, "purpose": "wrap cash" }),
            },
        )
        .await?;
    let wrap = Wrap {
        id,
        tenant_id,
        customer_id,
        agreement_id: body.agreement_id,
        manager_tenant_id: offer.manager_tenant_id,
        strategy_id: offer.strategy_id,
        currency: asset.code.clone(),
        name,
        status: WrapStatus::Open,
        goal: body.goal,
        cash_account_id,
        opened_at: DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now),
        closed_at: None,
        currency_scale: asset.scale,
    };
    store::insert_wrap(&txn, &wrap).await?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "wrap.open",
            target_tenant_id: Some(tenant_id),
            target_type: "wrap",
            target_id: id.to_string(),
            detail: json!({ "customer_id": customer_id, "agreement_id": wrap.agreement_id, "strategy_id": wrap.strategy_id }),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::LOCATION, format!("/v1/wraps/{id}")))
        .json(wrap_json(&caller, &wrap)))
}

/// What an agreement offers a new wrap, read from the tenants crate.
struct Offer {
    manager_tenant_id: Uuid,
    strategy_id: Uuid,
    strategy_name: String,
    strategy_risk_level: i32,
    currency: String,
    min_contribution: Decimal,
    /// A retired strategy takes no new wraps; existing ones go on.
    strategy_active: bool,
}

/// The distributor's active agreement `agreement_id` on `on`, or 422 naming it (another
/// distributor's agreement answers the same as a missing one).
async fn offer<C: sea_orm::ConnectionTrait>(
    db: &C,
    distributor_id: Uuid,
    agreement_id: Uuid,
    on: NaiveDate,
) -> Result<Offer, Problem> {
    match wraps::market::store::offer(db, distributor_id, agreement_id, on).await {
        Ok(o) => Ok(Offer {
            manager_tenant_id: o.manager_tenant_id,
            strategy_id: o.strategy.id,
            strategy_name: o.strategy.name.clone(),
            strategy_risk_level: i32::from(o.strategy.risk_level),
            currency: o.strategy.base_currency.clone(),
            min_contribution: o.terms.min_contribution,
            strategy_active: o.strategy.status == wraps::market::strategy::StrategyStatus::Active,
        }),
        Err(tenants::TenantsError::NotFound) => Err(Problem::invalid_field(
            "agreement_id",
            format!("no active agreement {agreement_id} of yours with terms in effect on {on}"),
        )),
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------
// Reads

/// A page of wraps.
#[derive(Debug, Serialize, ToSchema)]
pub struct WrapPage {
    /// Wraps (without `customer_id` for a manager).
    #[schema(value_type = Vec<Wrap>)]
    pub items: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

async fn wrap_page(
    req: &HttpRequest,
    caller: &Caller,
    state: &AppState,
    customer_id: Option<Uuid>,
) -> Result<HttpResponse, Problem> {
    let known: &[&str] = if customer_id.is_some() {
        &["status", "strategy_id", "limit", "cursor"]
    } else {
        &["status", "strategy_id", "customer_id", "limit", "cursor"]
    };
    let q = Query::parse(req, known)?;
    let filter = WrapFilter {
        customer_id: customer_id.or(q.uuid("customer_id")?),
        status: q
            .one_of("status", &WrapStatus::ALL)?
            .and_then(WrapStatus::parse),
        strategy_id: q.uuid("strategy_id")?,
    };
    let (items, next) = store::wraps(
        &state.db,
        scope(caller),
        &filter,
        q.id_cursor()?,
        q.limit(100, store::MAX_PAGE)?,
    )
    .await?;
    Ok(HttpResponse::Ok().json(WrapPage {
        items: items.iter().map(|w| wrap_json(caller, w)).collect(),
        next_cursor: next.map(|c| c.to_string()),
    }))
}

/// Wraps the caller may see: a distributor its own, a manager those on its strategies
/// (without the customer), the platform all.
#[utoipa::path(
    get, path = "/v1/wraps", tag = "wraps",
    params(
        ("status" = Option<String>, Query, description = "open, active, closing or closed"),
        ("strategy_id" = Option<Uuid>, Query),
        ("customer_id" = Option<Uuid>, Query),
        ("limit" = Option<u64>, Query, description = "1 to 500, default 100"),
        ("cursor" = Option<String>, Query),
    ),
    responses((status = 200, body = WrapPage)),
    security(("bearer" = []))
)]
pub async fn list_wraps(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReadOwnData)?;
    wrap_page(&req, &caller, &state, None).await
}

/// A customer's wraps (the customer's distributor).
#[utoipa::path(
    get, path = "/v1/customers/{id}/wraps", tag = "wraps",
    params(
        ("id" = Uuid, Path),
        ("status" = Option<String>, Query, description = "open, active, closing or closed"),
        ("strategy_id" = Option<Uuid>, Query),
        ("limit" = Option<u64>, Query, description = "1 to 500, default 100"),
        ("cursor" = Option<String>, Query),
    ),
    responses(
        (status = 200, body = WrapPage),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_customer_wraps(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let customer_id = path_uuid(&req, "id")?;
    caller.principal.authorize(Action::ReadOwnData)?;
    find_customer(&state.db, &caller, customer_id).await?;
    wrap_page(&req, &caller, &state, Some(customer_id)).await
}

/// A wrap with its holdings, cash, value, pending movements, plans and goal.
#[derive(Debug, Serialize, ToSchema)]
pub struct WrapView {
    #[schema(value_type = Wrap)]
    pub wrap: serde_json::Value,
    pub valuation: Valuation,
    /// Withdrawals, switches and closes waiting for end of day.
    pub pending: Vec<Movement>,
    /// What may still be withdrawn: value less pending movements (zero once everything is
    /// asked for).
    #[schema(value_type = String)]
    pub available_to_withdraw: Decimal,
    pub plans: Vec<Plan>,
}

/// One wrap (its distributor, the manager of its strategy, or the platform).
#[utoipa::path(
    get, path = "/v1/wraps/{id}", tag = "wraps",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = WrapView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_wrap(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    caller.principal.authorize(Action::ReadOwnData)?;
    let wrap = find_wrap(&state.db, &caller, id, false).await?;
    let valuation =
        wraps::value::value_now(&state.db, &state.ledger, &wrap, money::today(Utc::now())).await?;
    let pending =
        store::movements(&state.db, wrap.tenant_id, id, true, wrap.currency_scale).await?;
    let available = movements::available_to_withdraw(valuation.value, &pending);
    let plans = store::plans(&state.db, wrap.tenant_id, id, wrap.currency_scale).await?;
    Ok(HttpResponse::Ok().json(WrapView {
        wrap: wrap_json(&caller, &wrap),
        valuation,
        pending,
        available_to_withdraw: available,
        plans,
    }))
}

// ---------------------------------------------------------------------------------------
// Contributions

/// An amount of the wrap's currency.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contribution {
    /// A positive decimal string, exact to the currency's minor unit.
    #[schema(value_type = String, example = "100000")]
    #[serde(deserialize_with = "ledger::amount::de_strict")]
    pub amount: Decimal,
}

/// The result of a contribution.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContributionResult {
    pub entry_id: Uuid,
    pub wrap_id: Uuid,
    #[schema(value_type = String)]
    pub amount: Decimal,
    pub wrap_status: WrapStatus,
    /// The wrap's cash after it (invested at the next end of day).
    #[schema(value_type = String)]
    pub wrap_cash: Decimal,
    /// The customer's available cash after it.
    #[schema(value_type = String)]
    pub customer_cash_available: Decimal,
}

/// Move cash from the customer's account into the wrap (distributor writers;
/// `Idempotency-Key` required). It is invested at the next end of day.
#[utoipa::path(
    post, path = "/v1/wraps/{id}/contributions", tag = "wraps",
    params(("id" = Uuid, Path), ("Idempotency-Key" = String, Header, description = "Same key and body on a retry", example = "con-2026-11-24-0001")),
    request_body(content = Contribution, example = json!({"amount": "600000"})),
    responses(
        (status = 201, body = ContributionResult),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Wrap closing or closed, agreement no longer active, key reused", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Below the minimum, more than the customer's cash", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn contribute(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    own_wrap_for_change(&state, &caller, id).await?;
    let body: Contribution = crate::extract::json(&req, payload).await?;
    let tenant_id = caller.principal.tenant_id;
    let idem = Idempotency::of(&req, tenant_id, &body)?;
    let txn = ledger::begin_write(&state.db).await?;
    // Booked on the open business date (DOMAIN.md section 7): after today's end of day,
    // tomorrow.
    let today = wraps::clock::open_date(&txn, &state.clock).await?;
    if let Some(replay) = idem.replay(&txn).await? {
        return Ok(replay);
    }
    let done = movements::contribute(
        &txn,
        &state.ledger,
        money::who(&caller),
        &movements::Contribution {
            tenant_id,
            wrap_id: id,
            amount: body.amount,
            limits: &state.amount_limits,
            date: today,
        },
        Utc::now(),
    )
    .await?;
    let of = |a: &Account, available: bool| {
        let minor = if available {
            a.balance.available(a.normal_side)
        } else {
            a.balance.posted(a.normal_side)
        };
        ledger::asset::decimal_of(minor, done.scale)
    };
    let result = ContributionResult {
        entry_id: done.entry.id,
        wrap_id: id,
        amount: done.amount,
        wrap_status: done.status,
        wrap_cash: of(&done.wrap_cash, false),
        customer_cash_available: of(&done.customer_cash, true),
    };
    let response = idem.answer(&txn, StatusCode::CREATED, &result).await?;
    txn.commit().await?;
    Ok(response)
}

// ---------------------------------------------------------------------------------------
// Withdrawals, switches and closes: pending until end of day sells units

/// How much to take out of a wrap: an amount, or everything.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WrapWithdrawal {
    /// A positive decimal string; give this or `all`.
    #[schema(value_type = Option<String>, example = "50000")]
    #[serde(default, deserialize_with = "ledger::amount::de_strict_opt")]
    pub amount: Option<Decimal>,
    /// `true` to take everything (the wrap stays open, empty).
    pub all: Option<bool>,
}

/// A switch into another wrap of the same customer.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WrapSwitch {
    pub to_wrap_id: Uuid,
    #[schema(value_type = Option<String>, example = "50000")]
    #[serde(default, deserialize_with = "ledger::amount::de_strict_opt")]
    pub amount: Option<Decimal>,
    pub all: Option<bool>,
}

/// Withdraw from a wrap: recorded now as a pending movement that end of day fulfils by
/// selling units; the cash reaches the customer's account when the sale settles
/// (distributor writers; `Idempotency-Key` required).
#[utoipa::path(
    post, path = "/v1/wraps/{id}/withdrawals", tag = "wraps", operation_id = "withdraw_from_wrap",
    params(("id" = Uuid, Path), ("Idempotency-Key" = String, Header, description = "Same key and body on a retry", example = "wd-2026-11-24-0001")),
    request_body(content = WrapWithdrawal, examples(
        ("amount" = (summary = "An amount", value = json!({"amount": "100000"}))),
        ("all" = (summary = "Everything (the wrap stays open, empty)", value = json!({"all": true}))),
    )),
    responses(
        (status = 202, description = "Recorded; end of day fulfils it", body = Movement),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "More than is available", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn withdraw(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    movement_request(req, caller, state, payload, |b: WrapWithdrawal| Asked {
        kind: MovementKind::Withdrawal,
        amount: b.amount,
        all: b.all,
        destination: None,
    })
    .await
}

/// Switch from one wrap into another wrap of the same customer: pending until end of day
/// sells units, then contributed to the destination (distributor writers;
/// `Idempotency-Key` required).
#[utoipa::path(
    post, path = "/v1/wraps/{id}/switches", tag = "wraps",
    params(("id" = Uuid, Path), ("Idempotency-Key" = String, Header, description = "Same key and body on a retry", example = "sw-2026-11-24-0001")),
    request_body(content = WrapSwitch, examples(
        ("amount" = (summary = "An amount", value = json!({"to_wrap_id": "01a1ffc1-b2c4-7d01-8e6f-3a9b0c1d2e3f", "amount": "50000"}))),
        ("all" = (summary = "Everything", value = json!({"to_wrap_id": "01a1ffc1-b2c4-7d01-8e6f-3a9b0c1d2e3f", "all": true}))),
    )),
    responses(
        (status = 202, description = "Recorded; end of day fulfils it", body = Movement),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad destination, more than is available", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn switch(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    movement_request(req, caller, state, payload, |b: WrapSwitch| Asked {
        kind: MovementKind::Switch,
        amount: b.amount,
        all: b.all,
        destination: Some(b.to_wrap_id),
    })
    .await
}

/// What a withdrawal or switch request asks for.
struct Asked {
    kind: MovementKind,
    amount: Option<Decimal>,
    all: Option<bool>,
    destination: Option<Uuid>,
}

/// Reads a withdrawal or switch request (`B`) in the order every change does (404, 403,
/// body, key), then records its pending movement.
async fn movement_request<B>(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
    asked: impl FnOnce(B) -> Asked,
) -> Result<HttpResponse, Problem>
where
    B: serde::de::DeserializeOwned + Serialize,
{
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    own_wrap_for_change(&state, &caller, id).await?;
    let body: B = crate::extract::json(&req, payload).await?;
    let idem = Idempotency::of(&req, caller.principal.tenant_id, &body)?;
    pending_movement(&caller, &state, idem, id, asked(body)).await
}

async fn pending_movement(
    caller: &Caller,
    state: &AppState,
    idem: Idempotency,
    id: Uuid,
    asked: Asked,
) -> Result<HttpResponse, Problem> {
    let txn = ledger::begin_write(&state.db).await?;
    if let Some(replay) = idem.replay(&txn).await? {
        return Ok(replay);
    }
    let movement = movements::request_payout(
        &txn,
        &state.ledger,
        &movements::Payout {
            tenant_id: caller.principal.tenant_id,
            wrap_id: id,
            kind: asked.kind,
            amount: asked.amount,
            all: asked.all,
            destination: asked.destination,
            limits: &state.amount_limits,
            today: money::today(Utc::now()),
        },
        Utc::now(),
    )
    .await?;
    let response = idem.answer(&txn, StatusCode::ACCEPTED, &movement).await?;
    txn.commit().await?;
    Ok(response)
}

/// The result of a close.
#[derive(Debug, Serialize, ToSchema)]
pub struct CloseResult {
    pub wrap_id: Uuid,
    /// `closed` at once when the wrap held only cash and owed no fees; otherwise `closing`
    /// until end of day has sold everything, collected the fees owed and paid the rest back.
    pub status: WrapStatus,
    /// The cash paid back to the customer's account now (closed at once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub paid_back: Option<Decimal>,
    /// The pending close movement (closing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub movement: Option<Movement>,
}

/// Close a wrap (distributor writers; `Idempotency-Key` required). A wrap that holds only
/// cash and owes no fees closes at once, its cash paid back to the customer's account;
/// otherwise it becomes `closing`, takes no more money, its plans are cancelled, and end of
/// day sells everything, collects the fees accrued and not yet paid, and pays the rest back.
#[utoipa::path(
    post, path = "/v1/wraps/{id}/close", tag = "wraps",
    params(("id" = Uuid, Path), ("Idempotency-Key" = String, Header, description = "Same key on a retry (the request has no body, or `{}`)", example = "close-2026-11-24-0001")),
    responses(
        (status = 200, body = CloseResult),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already closing or closed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn close(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    own_wrap_for_change(&state, &caller, id).await?;
    let body: Option<serde_json::Value> = crate::extract::optional_json(&req, payload).await?;
    if body
        .as_ref()
        .is_some_and(|b| b.as_object().is_none_or(|o| !o.is_empty()))
    {
        return Err(Problem::invalid_field("", "close takes no body (or {})"));
    }
    let tenant_id = caller.principal.tenant_id;
    let idem = Idempotency::of(&req, tenant_id, &json!({}))?;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    if let Some(replay) = idem.replay(&txn).await? {
        return Ok(replay);
    }
    let date = wraps::clock::open_date(&txn, &state.clock).await?;
    let closed = movements::close(
        &txn,
        &state.ledger,
        money::who(&caller),
        tenant_id,
        id,
        date,
        now,
    )
    .await?;
    let result = match closed {
        movements::Closed::Now { entry, amount } => CloseResult {
            wrap_id: id,
            status: WrapStatus::Closed,
            entry_id: entry.map(|e| e.id),
            paid_back: Some(amount),
            movement: None,
        },
        movements::Closed::Pending(movement) => CloseResult {
            wrap_id: id,
            status: WrapStatus::Closing,
            entry_id: None,
            paid_back: None,
            movement: Some(movement),
        },
    };
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "wrap.close",
            target_tenant_id: Some(tenant_id),
            target_type: "wrap",
            target_id: id.to_string(),
            detail: json!({ "status": result.status }),
        },
        now,
    )
    .await?;
    let response = idem.answer(&txn, StatusCode::OK, &result).await?;
    txn.commit().await?;
    Ok(response)
}

// ---------------------------------------------------------------------------------------
// Plans

/// A recurring contribution or withdrawal.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePlan {
    /// `contribution` (積立) or `withdrawal` (取り崩し).
    pub kind: PlanKind,
    /// Per run; contributions at least the agreement's minimum.
    #[schema(value_type = Option<String>, example = "30000")]
    #[serde(default, deserialize_with = "ledger::amount::de_strict_opt")]
    pub amount: Option<Decimal>,
    /// Withdrawal plans only, instead of `amount`: the share of the wrap's value per run,
    /// in (0, 1].
    #[schema(value_type = Option<String>, example = "0.01")]
    #[serde(default, deserialize_with = "ledger::amount::de_strict_opt")]
    pub percentage: Option<Decimal>,
    /// Default monthly (contribution plans are always monthly).
    pub frequency: Option<Frequency>,
    /// 1 to 28.
    pub day_of_month: i32,
    /// Default today.
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
}

/// Set up a plan on a wrap; end of day runs it (distributor writers).
#[utoipa::path(
    post, path = "/v1/wraps/{id}/plans", tag = "wraps",
    params(("id" = Uuid, Path)),
    request_body(content = CreatePlan, examples(
        ("contribution" = (summary = "A monthly contribution (積立)", value = json!({"kind": "contribution", "amount": "30000", "day_of_month": 27}))),
        ("withdrawal" = (summary = "A quarterly withdrawal of 1 % of the value (取り崩し)", value = json!({"kind": "withdrawal", "percentage": "0.01", "frequency": "quarterly", "day_of_month": 15, "start_date": "2027-01-15"}))),
    )),
    responses(
        (status = 201, body = Plan),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Wrap closing or closed", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_plan(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    own_wrap_for_change(&state, &caller, id).await?;
    let body: CreatePlan = crate::extract::json(&req, payload).await?;
    let tenant_id = caller.principal.tenant_id;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    // Plans start on or after the open business date (DOMAIN.md section 7): after today's end
    // of day, a plan due today would never run today.
    let today = wraps::clock::open_date(&txn, &state.clock).await?;
    let wrap = find_wrap(&txn, &caller, id, true).await?;
    if !wrap.status.accepts_money() {
        return Err(Problem::conflict(format!(
            "wrap {id} is {}: it takes no new plans",
            wrap.status.as_str()
        )));
    }
    let offer = offer(&txn, tenant_id, wrap.agreement_id, today).await?;
    let new = NewPlan {
        kind: body.kind,
        amount: body.amount,
        percentage: body.percentage,
        frequency: body.frequency.unwrap_or(Frequency::Monthly),
        day_of_month: body.day_of_month,
        start_date: body.start_date.unwrap_or(today),
        end_date: body.end_date,
    };
    let bound = state
        .amount_limits
        .bound_of(&wrap.currency, wrap.currency_scale);
    new.validate(&bound, offer.min_contribution, today)?;
    let plan = store::insert_plan(&txn, tenant_id, id, &new, wrap.currency_scale, now).await?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "plan.create",
            target_tenant_id: Some(tenant_id),
            target_type: "plan",
            target_id: plan.id.to_string(),
            detail: json!({ "wrap_id": id, "kind": plan.kind }),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Created()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/v1/wraps/{id}/plans"),
        ))
        .json(plan))
}

/// A wrap's withdrawals, switches and closes, newest first: pending, fulfilled (with what end
/// of day paid and on which business date) and cancelled.
#[utoipa::path(
    get, path = "/v1/wraps/{id}/movements", tag = "wraps",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Vec<Movement>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_movements(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    caller.principal.authorize(Action::ReadOwnData)?;
    let wrap = find_wrap(&state.db, &caller, id, false).await?;
    let movements =
        store::movements(&state.db, wrap.tenant_id, id, false, wrap.currency_scale).await?;
    Ok(HttpResponse::Ok().json(movements))
}

/// A wrap's plans, active and cancelled.
#[utoipa::path(
    get, path = "/v1/wraps/{id}/plans", tag = "wraps",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Vec<Plan>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_plans(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    caller.principal.authorize(Action::ReadOwnData)?;
    let wrap = find_wrap(&state.db, &caller, id, false).await?;
    let plans = store::plans(&state.db, wrap.tenant_id, id, wrap.currency_scale).await?;
    Ok(HttpResponse::Ok().json(plans))
}

/// A page of a plan's runs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanRunPage {
    pub items: Vec<wraps::eod::plans::PlanRunView>,
    /// Pass as `cursor` for older runs; absent at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<NaiveDate>,
}

/// What end of day did with a plan on each date it was due: executed (with the entry or the
/// pending withdrawal) or skipped with the reason, newest first.
#[utoipa::path(
    get, path = "/v1/wraps/{id}/plans/{plan}/runs", tag = "wraps",
    params(
        ("id" = Uuid, Path),
        ("plan" = Uuid, Path),
        ("limit" = Option<u64>, Query, description = "At most this many runs (default 100, at most 500)"),
        ("cursor" = Option<NaiveDate>, Query, description = "Runs before this date (the previous page's `next_cursor`)"),
    ),
    responses(
        (status = 200, body = PlanRunPage),
        (status = 400, description = "A bad limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such wrap, or no such plan on it", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_plan_runs(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    let plan_id = path_uuid(&req, "plan")?;
    let query = Query::parse(&req, &["limit", "cursor"])?;
    let limit = query.limit(100, wraps::eod::plans::MAX_RUNS_PAGE)?;
    let before = query.date("cursor")?;
    caller.principal.authorize(Action::ReadOwnData)?;
    let wrap = find_wrap(&state.db, &caller, id, false).await?;
    let plans = store::plans(&state.db, wrap.tenant_id, id, wrap.currency_scale).await?;
    if !plans.iter().any(|p| p.id == plan_id) {
        return Err(Problem::not_found(format!(
            "no plan {plan_id} on wrap {id}"
        )));
    }
    let items = wraps::eod::plans::runs(
        &state.db,
        wrap.tenant_id,
        plan_id,
        before,
        limit,
        wrap.currency_scale,
    )
    .await?;
    let next_cursor = if items.len() as u64 == limit {
        items.last().map(|r| r.run_date)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(PlanRunPage { items, next_cursor }))
}

/// Cancel an active plan (distributor writers).
#[utoipa::path(
    post, path = "/v1/wraps/{id}/plans/{plan}/cancel", tag = "wraps",
    params(("id" = Uuid, Path), ("plan" = Uuid, Path)),
    responses(
        (status = 200, body = Plan),
        (status = 404, description = "No such active plan", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn cancel_plan(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    let plan_id = path_uuid(&req, "plan")?;
    Query::parse(&req, &[])?;
    let wrap = own_wrap_for_change(&state, &caller, id).await?;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    if !store::cancel_plan(&txn, wrap.tenant_id, id, plan_id, now).await? {
        return Err(Problem::not_found(format!(
            "no active plan {plan_id} on wrap {id}"
        )));
    }
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "plan.cancel",
            target_tenant_id: Some(wrap.tenant_id),
            target_type: "plan",
            target_id: plan_id.to_string(),
            detail: json!({ "wrap_id": id }),
        },
        now,
    )
    .await?;
    let plans = store::plans(&txn, wrap.tenant_id, id, wrap.currency_scale).await?;
    txn.commit().await?;
    let plan = plans
        .into_iter()
        .find(|p| p.id == plan_id)
        .ok_or_else(|| Problem::internal(&"cancelled plan vanished"))?;
    Ok(HttpResponse::Ok().json(plan))
}
