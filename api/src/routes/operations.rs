//! `/v1/operations/eod`: end of day from the API (the platform operates it).
//!
//! * `POST /v1/operations/eod` `{"date", "to"}`: platform writers (`ManageMarketData`; any
//!   other kind or a viewer gets 403). The dates are checked at once (409 naming `date` and
//!   the expected date when out of order, 409 of type `awaiting-fills` when the next date
//!   waits for the fills of external instructions, 422 naming `to` when it is before
//!   `date`), then the run goes on in a background task and the answer is 202 with the
//!   status URL. A run in progress in this process answers 409. A date whose instructions
//!   go out stops in `awaiting_fills` (see its status); once they are complete, POST it again.
//! * `GET /v1/operations/eod/{date}`: the platform only (`ReadTrialBalance`: it spans every
//!   tenant's books); the date's status, its steps with timings and counts.
//!
//! The rules of the run are in [`wraps::eod`]. Tested by `api/tests/http/eod.rs`.

use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use tenants::Action;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::extract::Query;
use crate::problem::Problem;
use crate::server::AppState;
use wraps::eod::{self, Actor, DayStatus, Quiet, RunGuard, RunLock};

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = super::resource;
    cfg.service(resource("/v1/operations/eod").post(start_eod))
        .service(resource("/v1/operations/eod/{date}").get(eod_status));
}

/// Which dates to run.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EodRequest {
    /// The (first) date to run.
    pub date: NaiveDate,
    /// The last date to run (inclusive); default `date`.
    pub to: Option<NaiveDate>,
}

/// A run accepted.
#[derive(Debug, Serialize, ToSchema)]
pub struct EodAccepted {
    pub date: NaiveDate,
    pub to: NaiveDate,
    /// Where to follow it (the first date; each date has its own).
    pub status_url: String,
}

/// Run end of day for a date or a range of dates (platform writers). Answers at once; the
/// run continues in the background.
#[utoipa::path(
    post, path = "/v1/operations/eod", tag = "operations",
    request_body = EodRequest,
    responses(
        (status = 202, description = "Started; follow status_url", body = EodAccepted),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a platform writer", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A run in progress, not the next date to run, or the next date awaiting fills (type `awaiting-fills`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`to` before `date`, or too many dates", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn start_eod(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    lock: web::Data<RunLock>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ManageMarketData)?;
    Query::parse(&req, &[])?;
    let body: EodRequest = crate::extract::json(&req, payload).await?;
    let to = body.to.unwrap_or(body.date);
    // A wrong date is refused as such even while another run holds the claim (the run
    // checks again under it).
    eod::check_range(&state.db, &lock.clock(), body.date, to).await?;
    // A run finishing in this or another process releases its claim just after its last
    // write: a second wait covers that, a run really in progress still answers 409.
    let guard = RunGuard::acquire_within(
        &lock.into_inner(),
        &state.db,
        std::time::Duration::from_secs(1),
    )
    .await?;
    guard.starting(body.date);
    let actor = Actor {
        tenant_id: caller.principal.tenant_id,
        client_id: caller.principal.client_id.clone(),
        request_id: caller.request_id.clone(),
    };
    let (db, ledger, from) = (state.db.clone(), state.ledger.clone(), body.date);
    actix_web::rt::spawn(async move {
        let result = eod::run(&db, &ledger, from, to, &actor, &guard, &Quiet).await;
        guard.release().await;
        match result {
            Ok(days) if days.last().is_some_and(|d| d.awaiting_fills.is_some()) => {
                tracing::info!(%from, %to, dates = days.len(), "eod.run_awaiting_fills");
            }
            Ok(days) => tracing::info!(%from, %to, dates = days.len(), "eod.run_finished"),
            Err(e) => tracing::error!(%from, %to, error = %e, "eod.run_stopped"),
        }
    });
    let url = format!("/v1/operations/eod/{}", body.date);
    Ok(HttpResponse::Accepted()
        .insert_header((LOCATION, url.clone()))
        .json(EodAccepted {
            date: body.date,
            to,
            status_url: url,
        }))
}

/// The end-of-day status of a date: overall, and per step with timings and counts
/// (the platform).
#[utoipa::path(
    get, path = "/v1/operations/eod/{date}", tag = "operations",
    params(("date" = NaiveDate, Path, description = "The business date, YYYY-MM-DD")),
    responses(
        (status = 200, body = DayStatus),
        (status = 400, description = "Not a date", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the platform", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn eod_status(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    lock: web::Data<RunLock>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReadTrialBalance)?;
    Query::parse(&req, &[])?;
    let raw = req.match_info().get("date").unwrap_or_default();
    let date: NaiveDate = raw.parse().map_err(|_| {
        Problem::bad_parameter("date", format!("{raw:?} is not a date (YYYY-MM-DD)"))
    })?;
    let status = eod::status(&state.db, &lock, date).await?;
    Ok(HttpResponse::Ok().json(status))
}
