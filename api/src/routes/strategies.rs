//! `/v1/strategies`: managers' strategies and their model versions.
//!
//! Isolation (tested by `api/tests/http/strategies.rs`): a manager sees and changes only its
//! own strategies; a distributor sees (read only) the strategies it has an ACTIVE agreement
//! for; the platform sees all. Any other id answers 404 exactly like a missing one, because
//! the handler first loads the strategy through [`market_store::strategy_for`] (visibility in
//! the query), then checks the role (403), then reads the body (400/422).
//!
//! Model versions are immutable: there is no route that changes or removes one.
//! Every change runs in one write transaction with its audit record.

use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{NaiveDate, Utc};
use serde::Serialize;
use serde_json::json;
use tenants::Action;
use utoipa::ToSchema;
use uuid::Uuid;
use wraps::market::store as market_store;
use wraps::market::strategy::{NewStrategy, NewVersion, Strategy, StrategyPatch, StrategyVersion};

use crate::audit::{self, Change};
use crate::auth::Caller;
use crate::extract::{Query, path_uuid};
use crate::problem::Problem;
use crate::routes::tenants::Page;
use crate::server::AppState;

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = super::resource;
    cfg.service(
        resource("/v1/strategies")
            .get(list_strategies)
            .post(create_strategy),
    )
    .service(
        resource("/v1/strategies/{id}")
            .get(get_strategy)
            .patch(update_strategy),
    )
    .service(
        resource("/v1/strategies/{id}/versions")
            .get(list_versions)
            .post(create_version),
    )
    .service(resource("/v1/strategies/{id}/versions/current").get(current_version));
}

/// Today's business date: Asia/Tokyo (UTC+9 all year, no daylight saving), never the
/// machine's local clock.
pub(crate) fn business_today() -> NaiveDate {
    (Utc::now() + chrono::Duration::hours(9)).date_naive()
}

/// A page of model versions; `next_cursor` is the last version number.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionPage {
    pub items: Vec<StrategyVersion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Publish a strategy (manager writers).
#[utoipa::path(
    post, path = "/v1/strategies", tag = "strategies",
    request_body = NewStrategy,
    responses(
        (status = 201, body = Strategy),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Code taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_strategy(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ManageStrategies)?;
    Query::parse(&req, &[])?;
    let body: NewStrategy = crate::extract::json(&req, payload).await?;
    body.validate()?;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    let strategy =
        market_store::create_strategy(&txn, caller.principal.tenant_id, &body, now).await?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "strategy.create",
            target_tenant_id: Some(strategy.manager_tenant_id),
            target_type: "strategy",
            target_id: strategy.id.to_string(),
            detail: json!({ "code": strategy.code, "name": strategy.name }),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, format!("/v1/strategies/{}", strategy.id)))
        .json(strategy))
}

/// The strategies the caller may see, by id: a manager its own, a distributor those it has
/// an active agreement for, the platform all.
#[utoipa::path(
    get, path = "/v1/strategies", tag = "strategies",
    params(
        ("limit" = Option<u64>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses((status = 200, body = Page<Strategy>)),
    security(("bearer" = []))
)]
pub async fn list_strategies(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReadOwnData)?;
    let q = Query::parse(&req, &["limit", "cursor"])?;
    let page = market_store::list_strategies(
        &state.db,
        &caller.principal,
        q.id_cursor()?,
        q.limit(100, 1000)?,
    )
    .await?;
    Ok(HttpResponse::Ok().json(Page {
        items: page.items,
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

/// One strategy the caller may see.
#[utoipa::path(
    get, path = "/v1/strategies/{id}", tag = "strategies",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Strategy),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_strategy(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    let strategy = market_store::strategy_for(&state.db, &caller.principal, id).await?;
    Ok(HttpResponse::Ok().json(strategy))
}

/// 404 unless the caller sees strategy `id`, then 403 unless it may change it (only its
/// manager can: a manager sees no other manager's strategies).
async fn owned_strategy(
    db: &impl sea_orm::ConnectionTrait,
    caller: &Caller,
    id: Uuid,
) -> Result<Strategy, Problem> {
    let strategy = market_store::strategy_for(db, &caller.principal, id).await?;
    caller.principal.authorize(Action::ManageStrategies)?;
    Ok(strategy)
}

/// Change a strategy's name, description, risk level or status (its manager).
#[utoipa::path(
    patch, path = "/v1/strategies/{id}", tag = "strategies",
    params(("id" = Uuid, Path)),
    request_body = StrategyPatch,
    responses(
        (status = 200, body = Strategy),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn update_strategy(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    owned_strategy(&state.db, &caller, id).await?;
    Query::parse(&req, &[])?;
    let patch: StrategyPatch = crate::extract::json(&req, payload).await?;
    patch.validate()?;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    let before = owned_strategy(&txn, &caller, id).await?;
    let after = market_store::update_strategy(&txn, &before, &patch, now).await?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "strategy.update",
            target_tenant_id: Some(after.manager_tenant_id),
            target_type: "strategy",
            target_id: id.to_string(),
            detail: json!({
                "from": { "name": before.name, "description": before.description,
                          "risk_level": before.risk_level, "status": before.status },
                "to": { "name": after.name, "description": after.description,
                        "risk_level": after.risk_level, "status": after.status },
            }),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(after))
}

/// Publish a model version (its manager). Weights and cash sum to exactly 1; each instrument
/// is priced in the base currency; the effective date is later than every earlier version's.
#[utoipa::path(
    post, path = "/v1/strategies/{id}/versions", tag = "strategies",
    params(("id" = Uuid, Path)),
    request_body = NewVersion,
    responses(
        (status = 201, body = StrategyVersion),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_version(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    owned_strategy(&state.db, &caller, id).await?;
    Query::parse(&req, &[])?;
    let body: NewVersion = crate::extract::json(&req, payload).await?;
    body.validate()?;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    let strategy = owned_strategy(&txn, &caller, id).await?;
    let version = market_store::add_version(&txn, &strategy, &body, now).await?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "strategy.version.create",
            target_tenant_id: Some(strategy.manager_tenant_id),
            target_type: "strategy",
            target_id: id.to_string(),
            detail: json!({ "version": version.version, "effective_date": version.effective_date }),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, format!("/v1/strategies/{id}/versions")))
        .json(version))
}

/// A strategy's model versions with their weights, oldest first.
#[utoipa::path(
    get, path = "/v1/strategies/{id}/versions", tag = "strategies",
    params(
        ("id" = Uuid, Path),
        ("limit" = Option<u64>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, body = VersionPage),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_versions(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    let strategy = market_store::strategy_for(&state.db, &caller.principal, id).await?;
    let q = Query::parse(&req, &["limit", "cursor"])?;
    let after = q
        .get("cursor")
        .map(|c| {
            c.parse::<u32>()
                .map_err(|_| Problem::bad_parameter("cursor", "not a cursor this API gave"))
        })
        .transpose()?;
    let (items, next) =
        market_store::list_versions(&state.db, &strategy, after, q.limit(100, 1000)?).await?;
    Ok(HttpResponse::Ok().json(VersionPage {
        items,
        next_cursor: next.map(|n| n.to_string()),
    }))
}

/// A model version with what its funds cost.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct CurrentVersion {
    #[serde(flatten)]
    pub model: StrategyVersion,
    /// The model's weighted expense ratio (信託報酬) on that date: Σ weight × each fund's
    /// annual expense ratio in effect (`POST /v1/instruments/{code}/fund-terms`), exact.
    #[schema(value_type = String, example = "0.00285")]
    #[serde(with = "rust_decimal::serde::str")]
    pub expense_ratio: rust_decimal::Decimal,
}

/// The model version in effect on `on` (default: today's business date in Tokyo), with its
/// weighted expense ratio on that date; 404 when none is yet.
#[utoipa::path(
    get, path = "/v1/strategies/{id}/versions/current", tag = "strategies",
    params(
        ("id" = Uuid, Path),
        ("on" = Option<NaiveDate>, Query, description = "A date, YYYY-MM-DD; default today"),
    ),
    responses(
        (status = 200, body = CurrentVersion),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn current_version(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    let strategy = market_store::strategy_for(&state.db, &caller.principal, id).await?;
    let q = Query::parse(&req, &["on"])?;
    let on = q.date("on")?.unwrap_or_else(business_today);
    let version = market_store::version_in_effect(&state.db, strategy.manager_tenant_id, id, on)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no model version in effect on {on}")))?;
    let ratios =
        wraps::funds::store::rates_on(&state.db, wraps::funds::FundTerm::ExpenseRatio, on).await?;
    let weights: Vec<(String, rust_decimal::Decimal)> = version
        .weights
        .iter()
        .map(|w| (w.instrument.clone(), w.weight))
        .collect();
    let expense_ratio = wraps::funds::weighted_expense_ratio(&weights, &ratios);
    Ok(HttpResponse::Ok().json(CurrentVersion {
        model: version,
        expense_ratio,
    }))
}
