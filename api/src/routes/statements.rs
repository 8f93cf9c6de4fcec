//! Account statements over HTTP: `GET /v1/wraps/{id}/statement` and
//! `GET /v1/customers/{id}/statement` over a period `[from, to]`, as JSON or CSV
//! (`?format=csv` or `Accept: text/csv`, the same negotiation as the fee-split report:
//! [`crate::routes::format`]).
//!
//! Adapters only: a handler finds the wrap or the customer as the caller may see it (a wrap
//! as `GET /v1/wraps/{id}`: its distributor, the manager of its strategy, the platform; a
//! customer only its distributor; anyone else 404 exactly as for a missing id), authorises,
//! parses the period and the format, and asks [`wraps::reports::statements`], which reads what
//! end of day stored, computes the statement, states its conventions (values, flows, fees,
//! average cost, the check, the time-weighted return) and refuses a `to` whose end of day has
//! not finished (409 here). Tried by `api/tests/http/statements.rs`:
//! `statement_matches_the_hand_computation` (every figure, the CSV parsed back, the customer's
//! sums), `statements_are_isolated`, `bad_statement_requests_are_refused`.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::NaiveDate;
use tenants::Action;
use wraps::reports::statements::{CustomerStatement, StatementTotals, WrapStatement};
use wraps::reports::{Period, Reports, Viewer};

use crate::auth::Caller;
use crate::extract::{Query, path_uuid};
use crate::problem::Problem;
use crate::routes::format;
use crate::routes::reports::period;
use crate::server::AppState;

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = super::resource;
    cfg.service(resource("/v1/wraps/{id}/statement").get(wrap_statement))
        .service(resource("/v1/customers/{id}/statement").get(customer_statement));
}

/// The period and format of a statement request, checked before anything is read: `from`
/// and `to` required dates, `to` not before `from`, at most 366 days (400 naming the
/// parameter); `format` json or csv (400).
fn request(req: &HttpRequest) -> Result<(Period, bool), Problem> {
    let q = Query::parse(req, &["from", "to", "format"])?;
    let period = period(&q)?;
    let csv = format::wants_csv(req, &q)?;
    Ok((period, csv))
}

// ---------------------------------------------------------------------------------------
// CSV

const CSV_HEADER: [&str; 22] = [
    "line",
    "wrap_id",
    "name",
    "currency",
    "from",
    "to",
    "opening_value",
    "contributions",
    "withdrawals",
    "management_fee",
    "performance_fee",
    "tax",
    "fees",
    "realised_gain",
    "unrealised_gain_change",
    "unexplained",
    "investment_gain",
    "closing_value",
    "unrealised_gain_closing",
    "fees_collected",
    "time_weighted_return",
    "balanced",
];

fn csv_wrap_line(out: &mut String, s: &WrapStatement) {
    format::row(
        out,
        &[
            "wrap".to_owned(),
            s.wrap_id.to_string(),
            format::field(&s.name).into_owned(),
            format::field(&s.currency).into_owned(),
            s.from.to_string(),
            s.to.to_string(),
            s.opening_value.to_string(),
            s.contributions.to_string(),
            s.withdrawals.to_string(),
            s.fees.management_fee.to_string(),
            s.fees.performance_fee.to_string(),
            s.fees.tax.to_string(),
            s.fees.total.to_string(),
            s.realised_gain.to_string(),
            s.unrealised_gain_change.to_string(),
            s.check.unexplained.to_string(),
            s.investment_gain.to_string(),
            s.closing_value.to_string(),
            s.unrealised_gain_closing.to_string(),
            s.fees_collected.total.to_string(),
            s.time_weighted_return
                .map(|r| r.to_string())
                .unwrap_or_default(),
            s.check.balanced.to_string(),
        ],
    );
}

fn csv_total_line(out: &mut String, t: &StatementTotals, from: NaiveDate, to: NaiveDate) {
    format::row(
        out,
        &[
            "total".to_owned(),
            String::new(),
            String::new(),
            format::field(&t.currency).into_owned(),
            from.to_string(),
            to.to_string(),
            t.opening_value.to_string(),
            t.contributions.to_string(),
            t.withdrawals.to_string(),
            t.fees.management_fee.to_string(),
            t.fees.performance_fee.to_string(),
            t.fees.tax.to_string(),
            t.fees.total.to_string(),
            t.realised_gain.to_string(),
            t.unrealised_gain_change.to_string(),
            t.check.unexplained.to_string(),
            t.investment_gain.to_string(),
            t.closing_value.to_string(),
            String::new(),
            t.fees_collected.total.to_string(),
            String::new(),
            t.check.balanced.to_string(),
        ],
    );
}

fn header() -> String {
    let mut out = String::new();
    format::row(&mut out, &CSV_HEADER);
    out
}

// ---------------------------------------------------------------------------------------
// Handlers

/// A wrap's statement over `[from, to]`: opening and closing values, contributions,
/// withdrawals, fees by kind, realised and unrealised gains (average cost), the period's
/// time-weighted return, holdings at the close, and the check that it adds up. JSON, or CSV
/// (one line) with `?format=csv` or `Accept: text/csv`.
#[utoipa::path(
    get, path = "/v1/wraps/{id}/statement", tag = "wraps",
    params(
        ("id" = Uuid, Path),
        ("from" = NaiveDate, Query, description = "First date, YYYY-MM-DD"),
        ("to" = NaiveDate, Query, description = "Last date, YYYY-MM-DD; its end of day must have finished"),
        ("format" = Option<String>, Query, description = "json (default) or csv"),
    ),
    responses(
        (status = 200, description = "JSON; with format=csv or Accept: text/csv, cSV: a header and one line", content((WrapStatement = "application/json"), (String = "text/csv"))),
        (status = 400, description = "A bad or missing query parameter, or a period too long", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "End of day has not finished for `to`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn wrap_statement(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    // Visibility first, so a foreign id answers 404 whatever else is wrong.
    let wrap = crate::routes::wraps::find_wrap(&state.db, &caller, id, false).await?;
    caller.principal.authorize(Action::ReadOwnData)?;
    let (period, csv) = request(&req)?;
    let statement = Reports::new(&state.db, &state.ledger)
        .wrap_statement(Viewer::from(&caller.principal), &wrap, period)
        .await?;
    if csv {
        let mut out = header();
        csv_wrap_line(&mut out, &statement);
        return Ok(format::csv_response(out));
    }
    Ok(HttpResponse::Ok().json(statement))
}

/// A customer's statement over `[from, to]`: the statement of each of its wraps that had a
/// snapshot in the period or the day before it, and totals per currency (sums; no total
/// return). JSON, or CSV (one line per wrap, then one total line per currency).
#[utoipa::path(
    get, path = "/v1/customers/{id}/statement", tag = "customers",
    params(
        ("id" = Uuid, Path),
        ("from" = NaiveDate, Query, description = "First date, YYYY-MM-DD"),
        ("to" = NaiveDate, Query, description = "Last date, YYYY-MM-DD; its end of day must have finished"),
        ("format" = Option<String>, Query, description = "json (default) or csv"),
    ),
    responses(
        (status = 200, description = "JSON; with format=csv or Accept: text/csv, cSV: a header, a line per wrap, a total line per currency", content((CustomerStatement = "application/json"), (String = "text/csv"))),
        (status = 400, description = "A bad or missing query parameter, or a period too long", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "End of day has not finished for `to`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn customer_statement(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    let customer = crate::routes::customers::find_customer(&state.db, &caller, id).await?;
    caller.principal.authorize(Action::ReadOwnData)?;
    let (period, csv) = request(&req)?;
    let statement = Reports::new(&state.db, &state.ledger)
        .customer_statement(caller.principal.tenant_id, customer.id, period)
        .await?;
    if csv {
        let mut out = header();
        for s in &statement.wraps {
            csv_wrap_line(&mut out, s);
        }
        for t in &statement.totals {
            csv_total_line(&mut out, t, statement.from, statement.to);
        }
        return Ok(format::csv_response(out));
    }
    Ok(HttpResponse::Ok().json(statement))
}
