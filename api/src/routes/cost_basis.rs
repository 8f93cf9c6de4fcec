//! Individual cost (個別元本) and realised gains over HTTP: `GET /v1/wraps/{id}/cost-basis`
//! and `GET /v1/customers/{id}/cost-basis`.
//!
//! Adapters only: the wrap or customer is found as the caller may see it (a wrap: its
//! distributor, the manager of its strategy, the platform; a customer: only its distributor;
//! anyone else 404 exactly as for a missing id), then [`wraps::funds::store::cost_basis`]
//! reads what end of day's allocation recorded. Tried by `api/tests/http/fund_terms.rs`.

use actix_web::{HttpRequest, HttpResponse, web};
use tenants::Action;
use wraps::funds::store::{CostBasis, Holder, cost_basis};

use crate::auth::Caller;
use crate::extract::{Query, path_uuid};
use crate::problem::Problem;
use crate::server::AppState;

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = super::resource;
    cfg.service(resource("/v1/wraps/{id}/cost-basis").get(wrap_cost_basis))
        .service(resource("/v1/customers/{id}/cost-basis").get(customer_cost_basis));
}

/// A wrap's holdings at its customer's individual cost per fund, the realised gain of
/// its sales per fund, and its sales (newest first, at most 1,000).
#[utoipa::path(
    get, path = "/v1/wraps/{id}/cost-basis", tag = "wraps",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = CostBasis),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn wrap_cost_basis(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    // Visibility first, so a foreign id answers 404 whatever else is wrong.
    let wrap = crate::routes::wraps::find_wrap(&state.db, &caller, id, false).await?;
    caller.principal.authorize(Action::ReadOwnData)?;
    Query::parse(&req, &[])?;
    let basis = cost_basis(
        &state.db,
        wrap.tenant_id,
        Holder::Wrap {
            wrap_id: wrap.id,
            customer_id: wrap.customer_id,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(basis))
}

/// A customer's individual cost per fund (units it covers, cost per quote unit, cost), the
/// realised gain per fund and every sale of its wraps (newest first, at most 1,000).
#[utoipa::path(
    get, path = "/v1/customers/{id}/cost-basis", tag = "customers",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = CostBasis),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn customer_cost_basis(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    let customer = crate::routes::customers::find_customer(&state.db, &caller, id).await?;
    caller.principal.authorize(Action::ReadOwnData)?;
    Query::parse(&req, &[])?;
    let basis = cost_basis(&state.db, customer.tenant_id, Holder::Customer(customer.id)).await?;
    Ok(HttpResponse::Ok().json(basis))
}
