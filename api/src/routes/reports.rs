//! Reports over HTTP: `GET /v1/reports/aum` (assets under management as of a date, grouped),
//! `GET /v1/reports/aum/history` (the same over a range of dates), `GET /v1/reports/fee-split`
//! (fees collected over a period, split, and reconciled with the ledger; JSON or CSV) and
//! `GET /v1/reports/invoices` (the platform's monthly fees to distributors).
//!
//! Adapters only: each handler parses the query, authorises, asks [`wraps::reports`] (which
//! loads and computes the reports, states their guarantees and tries them) and answers; a
//! [`wraps::reports::ReportError`] becomes a problem in `crate::problem`. The caller's
//! [`Viewer`] decides what a report covers: a distributor its own book, a manager the wraps on
//! its strategies, the platform every wrap (tried by `api/tests/http/reports.rs`).

use actix_web::{HttpRequest, HttpResponse, web};
use tenants::Action;
use wraps::reports::aum::{Aum, AumHistory, GroupBy};
use wraps::reports::fee_split::FeeSplit;
use wraps::reports::invoices::Invoice;
use wraps::reports::{Period, Reports, Viewer};

use crate::auth::Caller;
use crate::extract::Query;
use crate::problem::Problem;
use crate::routes::format;
use crate::server::AppState;

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = super::resource;
    cfg.service(resource("/v1/reports/aum").get(aum))
        .service(resource("/v1/reports/aum/history").get(aum_history))
        .service(resource("/v1/reports/fee-split").get(fee_split_report))
        .service(resource("/v1/reports/invoices").get(invoices));
}

/// `group_by`, one of [`GroupBy::NAMES`] (default `distributor`; 400 naming it otherwise).
fn group_by(q: &Query) -> Result<GroupBy, Problem> {
    Ok(q.one_of("group_by", &GroupBy::NAMES)?
        .and_then(GroupBy::parse)
        .unwrap_or_default())
}

/// The period from `from` and `to` (required dates, `to` not before `from`, at most
/// [`wraps::reports::MAX_PERIOD_DAYS`]; 400 naming the parameter).
pub(crate) fn period(q: &Query) -> Result<Period, Problem> {
    let from = q
        .date("from")?
        .ok_or_else(|| Problem::bad_parameter("from", "is required"))?;
    let to = q
        .date("to")?
        .ok_or_else(|| Problem::bad_parameter("to", "is required"))?;
    Ok(Period::try_new(from, to)?)
}

/// AUM as of a date whose end of day has finished (default: the last one), grouped by
/// `distributor` (default), `manager`, `strategy` or `agreement`, with totals per currency.
#[utoipa::path(
    get, path = "/v1/reports/aum", tag = "reports",
    params(
        ("as_of" = Option<NaiveDate>, Query, description = "Default: the last date whose end of day has finished"),
        ("group_by" = Option<String>, Query, description = "distributor (default), manager, strategy or agreement"),
    ),
    responses(
        (status = 200, body = Aum),
        (status = 400, description = "A bad query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "End of day has not finished for the date (or never ran)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn aum(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let q = Query::parse(&req, &["as_of", "group_by"])?;
    let group_by = group_by(&q)?;
    let as_of = q.date("as_of")?;
    caller.principal.authorize(Action::ReadOwnData)?;
    let report = Reports::new(&state.db, &state.ledger)
        .aum(Viewer::from(&caller.principal), group_by, as_of)
        .await?;
    Ok(HttpResponse::Ok().json(report))
}

/// AUM for every finished date of a range (at most 366 days), grouped as `/v1/reports/aum`.
#[utoipa::path(
    get, path = "/v1/reports/aum/history", tag = "reports",
    params(
        ("from" = NaiveDate, Query),
        ("to" = NaiveDate, Query),
        ("group_by" = Option<String>, Query, description = "distributor (default), manager, strategy or agreement"),
    ),
    responses(
        (status = 200, body = AumHistory),
        (status = 400, description = "A bad or missing query parameter, or a range too long", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn aum_history(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let q = Query::parse(&req, &["from", "to", "group_by"])?;
    let group_by = group_by(&q)?;
    let period = period(&q)?;
    caller.principal.authorize(Action::ReadOwnData)?;
    let report = Reports::new(&state.db, &state.ledger)
        .aum_history(Viewer::from(&caller.principal), group_by, period)
        .await?;
    Ok(HttpResponse::Ok().json(report))
}

/// Fees collected over a period per agreement and strategy, split into channel, manager and
/// platform shares, with tax, wraps and average AUM, and reconciled with the ledger's billing
/// postings. JSON, or CSV with `?format=csv` or `Accept: text/csv`.
#[utoipa::path(
    get, path = "/v1/reports/fee-split", tag = "reports",
    params(
        ("from" = NaiveDate, Query),
        ("to" = NaiveDate, Query),
        ("format" = Option<String>, Query, description = "json (default) or csv"),
    ),
    responses(
        (status = 200, description = "JSON; with format=csv or Accept: text/csv, cSV, one row per line", content((FeeSplit = "application/json"), (String = "text/csv"))),
        (status = 400, description = "A bad or missing query parameter, or a period too long", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn fee_split_report(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let q = Query::parse(&req, &["from", "to", "format"])?;
    let period = period(&q)?;
    let csv = format::wants_csv(&req, &q)?;
    caller.principal.authorize(Action::ReadOwnData)?;
    let report = Reports::new(&state.db, &state.ledger)
        .fee_split(Viewer::from(&caller.principal), period)
        .await?;
    if csv {
        return Ok(format::csv_response(fee_split_csv(&report)));
    }
    Ok(HttpResponse::Ok().json(report))
}

/// The CSV of the lines: a header row, then one row per line; amounts as exact decimal
/// strings (UTF-8, RFC 4180 quoting where a name needs it; see [`format`]).
fn fee_split_csv(report: &FeeSplit) -> String {
    let mut out = String::new();
    format::row(
        &mut out,
        &[
            "agreement_id",
            "strategy_id",
            "strategy",
            "distributor_tenant_id",
            "manager_tenant_id",
            "currency",
            "wraps",
            "average_aum",
            "management_fee",
            "performance_fee",
            "tax",
            "channel",
            "manager",
            "platform",
        ],
    );
    for l in &report.lines {
        format::row(
            &mut out,
            &[
                l.agreement_id.to_string(),
                l.strategy_id.to_string(),
                format::field(&l.strategy).into_owned(),
                l.distributor_tenant_id.to_string(),
                l.manager_tenant_id.to_string(),
                format::field(&l.currency).into_owned(),
                l.wraps.to_string(),
                l.average_aum.to_string(),
                l.management_fee.to_string(),
                l.performance_fee.to_string(),
                l.tax.to_string(),
                l.channel.to_string(),
                l.manager.to_string(),
                l.platform.to_string(),
            ],
        );
    }
    out
}

/// The platform's monthly invoices whose month ends in the period: every distributor's for
/// the platform, its own for a distributor (a manager has none).
#[utoipa::path(
    get, path = "/v1/reports/invoices", tag = "reports",
    params(("from" = NaiveDate, Query), ("to" = NaiveDate, Query)),
    responses(
        (status = 200, body = Vec<Invoice>),
        (status = 400, description = "A bad or missing query parameter", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn invoices(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let q = Query::parse(&req, &["from", "to"])?;
    let period = period(&q)?;
    caller.principal.authorize(Action::ReadOwnData)?;
    let list = Reports::new(&state.db, &state.ledger)
        .invoices(Viewer::from(&caller.principal), period)
        .await?;
    Ok(HttpResponse::Ok().json(list))
}
