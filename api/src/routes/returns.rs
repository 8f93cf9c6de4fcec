//! `GET /v1/wraps/{id}/returns`: a wrap's time-weighted returns over a range of dates and
//! its money-weighted return (XIRR), from what end of day stored ([`wraps::eod::returns`]).
//!
//! Isolation: as `GET /v1/wraps/{id}`: the distributor that opened the wrap, the manager whose
//! strategy it follows and the platform see it; anyone else gets 404, exactly as for a wrap
//! that does not exist (`api/tests/http/eod_returns.rs::returns_are_isolated`).

use actix_web::{HttpRequest, HttpResponse, web};
use tenants::Action;

use crate::auth::Caller;
use crate::extract::{Query, path_uuid};
use crate::problem::Problem;
use crate::server::AppState;
use wraps::eod::returns::{self, MAX_RANGE_DAYS, ReturnsView};

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/v1/wraps/{id}/returns").get(wrap_returns));
}

/// A wrap's returns between `from` and `to` (both optional, inclusive; default: the wrap's
/// whole history). Time-weighted: daily, cumulative over the range and, when the range covers
/// at least 365 days, annualised. Money-weighted: the XIRR of the range's flows. Flows are
/// taken at the end of their day (they trade at the day's price, after the day's move).
#[utoipa::path(
    get, path = "/v1/wraps/{id}/returns", tag = "wraps",
    params(
        ("id" = Uuid, Path),
        ("from" = Option<chrono::NaiveDate>, Query, description = "First date, YYYY-MM-DD"),
        ("to" = Option<chrono::NaiveDate>, Query, description = "Last date, YYYY-MM-DD"),
    ),
    responses(
        (status = 200, body = ReturnsView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn wrap_returns(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    let q = Query::parse(&req, &["from", "to"])?;
    let (from, to) = (q.date("from")?, q.date("to")?);
    caller.principal.authorize(Action::ReadOwnData)?;
    if let (Some(f), Some(t)) = (from, to) {
        if t < f {
            return Err(Problem::bad_parameter(
                "to",
                format!("{t} is before from {f}"),
            ));
        }
        if (t - f).num_days() >= MAX_RANGE_DAYS {
            return Err(Problem::bad_parameter(
                "to",
                format!("a range covers at most {MAX_RANGE_DAYS} days"),
            ));
        }
    }
    let wrap = crate::routes::wraps::find_wrap(&state.db, &caller, id, false).await?;
    let view = returns::range(
        &state.db,
        wrap.tenant_id,
        wrap.id,
        &wrap.currency,
        wrap.currency_scale,
        from,
        to,
    )
    .await?;
    if view.days > MAX_RANGE_DAYS {
        return Err(Problem::bad_parameter(
            if from.is_none() { "from" } else { "to" },
            format!(
                "the wrap's returns cover more than {MAX_RANGE_DAYS} days: give a shorter range"
            ),
        ));
    }
    Ok(HttpResponse::Ok().json(view))
}
