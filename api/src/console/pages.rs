//! The console's screens. Each one: the signed-in user ([`ConsoleUser`]), the roles that may
//! open it, then the same domain function the API calls with the user's principal, then a
//! template. No SQL and no business rule here.

use actix_web::http::StatusCode;
use actix_web::http::header::SET_COOKIE;
use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{NaiveDate, Utc};
use serde_json::json;
use tenants::Action;
use tenants::sessions;
use tenants::users::{self, UserRole, UserStatus};
use uuid::Uuid;
use wraps::eod::RunLock;
use wraps::reports::aum::GroupBy;
use wraps::reports::{Reports, Viewer};

use super::format::{date, grouped, moment, money, percent};
use super::{
    ConsoleError, ConsoleUser, Frame, Lang, SESSION_COOKIE, SIGN_IN_CSRF_COOKIE, check_csrf, field,
    form, html, render, see_other, set_cookie,
};
use crate::audit::{Change, record_raw};
use crate::problem::Problem;
use crate::server::AppState;

/// The first value of query parameter `name`.
fn query_param(req: &HttpRequest, name: &str) -> Option<String> {
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
}

fn problem(user: &ConsoleUser) -> impl Fn(Problem) -> ConsoleError + '_ {
    move |p| ConsoleError::from_problem(user.lang, p)
}

/// `/console`: home when signed in, else the sign-in page.
pub async fn root(req: HttpRequest) -> HttpResponse {
    if super::cookie(&req, SESSION_COOKIE).is_some() {
        see_other("/console/home")
    } else {
        see_other("/console/sign-in")
    }
}

// ---------------------------------------------------------------------------------------
// Sign-in and sign-out

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    frame: Frame,
    csrf: String,
    tenant: String,
    email: String,
    failed: bool,
}

/// A sign-in page, with a fresh double-submit CSRF token in its cookie and its form.
fn sign_in_page(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    lang_asked: bool,
    status: StatusCode,
    tenant: &str,
    email: &str,
) -> Result<HttpResponse, ConsoleError> {
    let csrf = tenants::client::generate_secret().expose().to_owned();
    let page = SignInPage {
        frame: Frame::anonymous(req, lang, lang.texts().sign_in_title),
        csrf: csrf.clone(),
        tenant: tenant.to_owned(),
        email: email.to_owned(),
        failed: status != StatusCode::OK,
    };
    let mut res = html(state, status, render(&page, lang)?, lang, lang_asked);
    let cookie = set_cookie(state, SIGN_IN_CSRF_COOKIE, &csrf, 3600);
    if let Ok(value) = cookie.parse() {
        res.headers_mut().append(SET_COOKIE, value);
    }
    Ok(res)
}

/// `GET /console/sign-in`.
pub async fn sign_in_form(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let (lang, asked) = Lang::of(&req);
    sign_in_page(&state, &req, lang, asked, StatusCode::OK, "", "")
}

/// `POST /console/sign-in`: tenant (its name), email and password. One answer (401, the form
/// again) for an unknown tenant or email, a wrong password, a suspended or locked user and a
/// suspended tenant; an unknown email costs the same argon2 work as a wrong password.
pub async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ConsoleError> {
    let (lang, _) = Lang::of(&req);
    let fields = form(&req, &mut payload, lang).await?;
    let presented = field(&fields, "csrf").unwrap_or_default();
    let expected = super::cookie(&req, SIGN_IN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !sessions::constant_time_eq(expected.as_bytes(), presented.as_bytes())
    {
        tracing::warn!("console sign-in refused: CSRF token missing or wrong");
        return Err(ConsoleError::page(StatusCode::FORBIDDEN, lang));
    }
    // Before any hashing: a flood from one address stops here, as at the token endpoint.
    state
        .rate_limits
        .token_address(&req)
        .map_err(|p| ConsoleError::from_problem(lang, p))?;
    let tenant_name = field(&fields, "tenant")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let email = field(&fields, "email")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let password = field(&fields, "password").unwrap_or_default().to_owned();
    let err = |p: Problem| ConsoleError::from_problem(lang, p);
    let tenant = tenants::store::find_tenant_by_name(&state.db, &tenant_name)
        .await
        .map_err(|e| err(e.into()))?;
    let found = match &tenant {
        Some(t) => users::find_for_sign_in(&state.db, t.id, &email)
            .await
            .map_err(|e| err(e.into()))?,
        None => None,
    };
    let hash = found.as_ref().map(|(_, h)| h.clone());
    let right = state
        .hash(move || users::check_password(hash.as_deref(), &password))
        .await
        .map_err(err)?;
    let (Some(tenant), Some((user, _))) = (tenant, found) else {
        tracing::info!(tenant = %tenant_name, "console sign-in refused: unknown tenant or email");
        return sign_in_page(
            &state,
            &req,
            lang,
            false,
            StatusCode::UNAUTHORIZED,
            &tenant_name,
            &email,
        );
    };
    let now = Utc::now();
    let request_id = req
        .extensions()
        .get::<crate::middleware::RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let txn = ledger::begin_write(&state.db)
        .await
        .map_err(|e| err(e.into()))?;
    let change = |action: &'static str, detail: serde_json::Value| Change {
        action,
        target_tenant_id: Some(tenant.id),
        target_type: "user",
        target_id: user.id.to_string(),
        detail,
    };
    if right && user.status == UserStatus::Active && tenant.is_active() {
        users::record_success(&txn, tenant.id, user.id, now)
            .await
            .map_err(|e| err(e.into()))?;
        let cookie = sessions::create(&txn, &user, state.console.policy(), now)
            .await
            .map_err(|e| err(e.into()))?;
        record_raw(
            &txn,
            tenant.id,
            &user.actor(),
            &request_id,
            &change("console.sign_in", json!({ "name": user.name })),
            now,
        )
        .await
        .map_err(|e| err(e.into()))?;
        txn.commit().await.map_err(|e| err(e.into()))?;
        let max_age = u64::try_from(state.console.policy().absolute.num_seconds()).unwrap_or(0);
        let mut res = see_other("/console/home");
        for value in [
            set_cookie(&state, SESSION_COOKIE, cookie.expose(), max_age),
            set_cookie(&state, SIGN_IN_CSRF_COOKIE, "", 0),
        ] {
            if let Ok(v) = value.parse() {
                res.headers_mut().append(SET_COOKIE, v);
            }
        }
        return Ok(res);
    }
    let reason = if !right {
        let after = users::record_failure(
            &txn,
            tenant.id,
            user.id,
            state.console.max_failed_sign_ins,
            now,
        )
        .await
        .map_err(|e| err(e.into()))?;
        if user.status == UserStatus::Active && after.status == UserStatus::Locked {
            record_raw(
                &txn,
                tenant.id,
                &user.actor(),
                &request_id,
                &change(
                    "user.lock",
                    json!({ "failed_sign_ins": after.failed_sign_ins }),
                ),
                now,
            )
            .await
            .map_err(|e| err(e.into()))?;
        }
        "wrong password"
    } else if !tenant.is_active() {
        "tenant suspended"
    } else {
        user.status.as_str()
    };
    record_raw(
        &txn,
        tenant.id,
        &user.actor(),
        &request_id,
        &change("console.sign_in_refused", json!({ "reason": reason })),
        now,
    )
    .await
    .map_err(|e| err(e.into()))?;
    txn.commit().await.map_err(|e| err(e.into()))?;
    tracing::info!(user = %user.actor(), reason, "console sign-in refused");
    sign_in_page(
        &state,
        &req,
        lang,
        false,
        StatusCode::UNAUTHORIZED,
        &tenant_name,
        &email,
    )
}

/// `POST /console/sign-out` (with the CSRF token): ends the session and clears the cookie.
pub async fn sign_out(
    req: HttpRequest,
    user: ConsoleUser,
    state: web::Data<AppState>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ConsoleError> {
    let fields = form(&req, &mut payload, user.lang).await?;
    check_csrf(&user, &fields)?;
    let now = Utc::now();
    let err = problem(&user);
    let txn = ledger::begin_write(&state.db)
        .await
        .map_err(|e| err(e.into()))?;
    sessions::end(&txn, &user.cookie)
        .await
        .map_err(|e| err(e.into()))?;
    let u = &user.signed_in.user;
    record_raw(
        &txn,
        u.tenant_id,
        &user.actor(),
        &user.request_id,
        &Change {
            action: "console.sign_out",
            target_tenant_id: Some(u.tenant_id),
            target_type: "user",
            target_id: u.id.to_string(),
            detail: json!({ "name": u.name }),
        },
        now,
    )
    .await
    .map_err(|e| err(e.into()))?;
    txn.commit().await.map_err(|e| err(e.into()))?;
    let mut res = see_other("/console/sign-in");
    if let Ok(v) = set_cookie(&state, SESSION_COOKIE, "", 0).parse() {
        res.headers_mut().append(SET_COOKIE, v);
    }
    Ok(res)
}

// ---------------------------------------------------------------------------------------
// Home

#[derive(Template)]
#[template(path = "console/home.html")]
struct HomePage {
    frame: Frame,
    intro: &'static str,
}

/// `GET /console/home`: the user's screens, by role.
pub async fn home(
    req: HttpRequest,
    user: ConsoleUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let t = user.lang.texts();
    let intro = match user.signed_in.user.role {
        UserRole::Operator => t.home_operator,
        UserRole::HeadOffice => t.home_head_office,
        UserRole::Adviser => t.home_adviser,
        UserRole::Manager => t.home_manager,
    };
    let page = HomePage {
        frame: user.frame(&req, t.home),
        intro,
    };
    user.page(&state, &page)
}

// ---------------------------------------------------------------------------------------
// Platform operator: end of day and the audit log

struct StepRow {
    step: String,
    status: String,
    started: String,
    finished: String,
    elapsed_ms: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "console/eod.html")]
struct EodPage {
    frame: Frame,
    date_iso: String,
    date_label: String,
    status: String,
    started: String,
    finished: String,
    next_date: String,
    steps: Vec<StepRow>,
}

/// `GET /console/eod?date=`: end of day of a date (default: the last one started), by step,
/// from [`wraps::eod::status`] as `GET /v1/operations/eod/{date}` answers it.
pub async fn eod(
    req: HttpRequest,
    user: ConsoleUser,
    state: web::Data<AppState>,
    lock: web::Data<RunLock>,
) -> Result<HttpResponse, ConsoleError> {
    user.require(&[UserRole::Operator])?;
    let err = problem(&user);
    user.principal
        .authorize(Action::ReadTrialBalance)
        .map_err(|e| err(e.into()))?;
    let asked = query_param(&req, "date").filter(|d| !d.is_empty());
    let day: NaiveDate = match asked {
        Some(d) => d
            .parse()
            .map_err(|_| ConsoleError::page(StatusCode::BAD_REQUEST, user.lang))?,
        None => match wraps::clock::last_started(&state.db)
            .await
            .map_err(|e| err(e.into()))?
        {
            Some(d) => d,
            None => state.clock.today(),
        },
    };
    let status = wraps::eod::status(&state.db, &lock, day)
        .await
        .map_err(|e| err(e.into()))?;
    let lang = user.lang;
    let when = |t: Option<chrono::DateTime<Utc>>| t.map(|t| moment(lang, t)).unwrap_or_default();
    let steps = status
        .steps
        .iter()
        .map(|s| StepRow {
            step: s.step.clone(),
            status: s.status.clone(),
            started: when(s.started_at),
            finished: when(s.finished_at),
            elapsed_ms: s
                .elapsed_ms
                .map(|ms| grouped(ms.into()))
                .unwrap_or_default(),
            detail: s.detail.as_ref().map(|d| d.to_string()).unwrap_or_default(),
        })
        .collect();
    let t = lang.texts();
    let page = EodPage {
        frame: user.frame(&req, t.eod),
        date_iso: day.to_string(),
        date_label: date(lang, day),
        status: status.status.clone(),
        started: when(status.started_at),
        finished: when(status.finished_at),
        next_date: status.next_date.map(|d| date(lang, d)).unwrap_or_default(),
        steps,
    };
    user.page(&state, &page)
}

struct AuditRow {
    at: String,
    actor: String,
    action: String,
    target: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    frame: Frame,
    rows: Vec<AuditRow>,
    next: String,
}

/// `GET /console/audit?cursor=`: the audit log, as `GET /v1/audit` reads it (platform only).
pub async fn audit(
    req: HttpRequest,
    user: ConsoleUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    user.require(&[UserRole::Operator])?;
    let err = problem(&user);
    user.principal
        .authorize(Action::ReadAudit)
        .map_err(|e| err(e.into()))?;
    let after = match query_param(&req, "cursor").filter(|c| !c.is_empty()) {
        Some(c) => c
            .parse::<i64>()
            .map_err(|_| ConsoleError::page(StatusCode::BAD_REQUEST, user.lang))?,
        None => 0,
    };
    let (items, next) = crate::audit::list(&state.db, None, after, 50)
        .await
        .map_err(&err)?;
    let lang = user.lang;
    let rows = items
        .into_iter()
        .map(|e| AuditRow {
            at: moment(lang, e.at),
            actor: e.actor_client_id,
            action: e.action,
            target: format!("{} {}", e.target_type, e.target_id),
            detail: e.detail.to_string(),
        })
        .collect();
    let page = AuditPage {
        frame: user.frame(&req, lang.texts().audit),
        rows,
        next: next.map(|n| n.to_string()).unwrap_or_default(),
    };
    user.page(&state, &page)
}

// ---------------------------------------------------------------------------------------
// Distributor head office: the book and the customers

struct AumRow {
    name: String,
    wraps: String,
    aum: String,
}

#[derive(Template)]
#[template(path = "console/book.html")]
struct BookPage {
    frame: Frame,
    /// Empty when no end of day has finished yet.
    as_of: String,
    rows: Vec<AumRow>,
    totals: Vec<AumRow>,
}

/// `GET /console/book`: AUM by strategy at the last finished end of day, from
/// [`wraps::reports::Reports::aum`] as `GET /v1/reports/aum?group_by=strategy` answers it.
pub async fn book(
    req: HttpRequest,
    user: ConsoleUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    user.require(&[UserRole::HeadOffice])?;
    let err = problem(&user);
    user.principal
        .authorize(Action::ReadOwnData)
        .map_err(|e| err(e.into()))?;
    let lang = user.lang;
    let report = Reports::new(&state.db, &state.ledger)
        .aum(Viewer::from(&user.principal), GroupBy::Strategy, None)
        .await;
    let (as_of, rows, totals) = match report {
        Ok(aum) => (
            date(lang, aum.as_of),
            aum.groups
                .iter()
                .map(|g| AumRow {
                    name: g.name.clone(),
                    wraps: grouped(g.wraps.into()),
                    aum: money(&g.currency, g.aum),
                })
                .collect(),
            aum.totals
                .iter()
                .map(|g| AumRow {
                    name: g.currency.clone(),
                    wraps: grouped(g.wraps.into()),
                    aum: money(&g.currency, g.aum),
                })
                .collect(),
        ),
        Err(wraps::reports::ReportError::NoEndOfDayFinished) => {
            (String::new(), Vec::new(), Vec::new())
        }
        Err(e) => return Err(err(e.into())),
    };
    let page = BookPage {
        frame: user.frame(&req, lang.texts().book),
        as_of,
        rows,
        totals,
    };
    user.page(&state, &page)
}

struct CustomerRow {
    id: String,
    name: String,
    reference: String,
    risk: String,
    status: String,
}

#[derive(Template)]
#[template(path = "console/customers.html")]
struct CustomersPage {
    frame: Frame,
    q: String,
    rows: Vec<CustomerRow>,
}

/// Customers shown on one page of the list or search.
const CUSTOMERS_PER_PAGE: u64 = 50;

/// `GET /console/customers?q=`: the distributor's customers, or those whose name or
/// reference contains `q`; an adviser's branch's only ([`wraps::customers::Scope::of_user`]).
pub async fn customers(
    req: HttpRequest,
    user: ConsoleUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    user.require(&[UserRole::HeadOffice, UserRole::Adviser])?;
    let scope = wraps::customers::Scope::of_user(&user.signed_in.user);
    let err = problem(&user);
    user.principal
        .authorize(Action::ReadOwnData)
        .map_err(|e| err(e.into()))?;
    let q = query_param(&req, "q").unwrap_or_default().trim().to_owned();
    let tenant_id = user.principal.tenant_id;
    let found = if q.is_empty() {
        wraps::customers::store::customers(
            &state.db,
            tenant_id,
            scope,
            None,
            None,
            CUSTOMERS_PER_PAGE,
        )
        .await
        .map(|(items, _)| items)
    } else {
        wraps::customers::store::customers_matching(
            &state.db,
            tenant_id,
            scope,
            &q,
            CUSTOMERS_PER_PAGE,
        )
        .await
    }
    .map_err(|e| err(e.into()))?;
    let rows = found
        .into_iter()
        .map(|c| CustomerRow {
            id: c.id.to_string(),
            name: c.name,
            reference: c.external_ref,
            risk: c.risk_tolerance.to_string(),
            status: c.status.as_str().to_owned(),
        })
        .collect();
    let lang = user.lang;
    let page = CustomersPage {
        frame: user.frame(&req, lang.texts().customers),
        q,
        rows,
    };
    user.page(&state, &page)
}

struct FollowUpRow {
    customer_id: String,
    customer: String,
    reference: String,
    wrap: String,
    before: String,
    before_date: String,
    now: String,
    now_date: String,
}

#[derive(Template)]
#[template(path = "console/follow_up.html")]
struct FollowUpPage {
    frame: Frame,
    rows: Vec<FollowUpRow>,
}

/// `GET /console/follow-up`: the wraps whose goal probability dropped at the latest end of
/// day ([`wraps::eod::goals::drops`], the rule of the `goal.probability.dropped` event), for
/// head office; an adviser's branch's only.
pub async fn follow_up(
    req: HttpRequest,
    user: ConsoleUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    user.require(&[UserRole::HeadOffice, UserRole::Adviser])?;
    let err = problem(&user);
    user.principal
        .authorize(Action::ReadOwnData)
        .map_err(|e| err(e.into()))?;
    let scope = wraps::customers::Scope::of_user(&user.signed_in.user);
    let drops = wraps::eod::goals::drops(&state.db, user.principal.tenant_id, scope)
        .await
        .map_err(|e| err(e.into()))?;
    let lang = user.lang;
    let rows = drops
        .into_iter()
        .map(|d| FollowUpRow {
            customer_id: d.customer_id.to_string(),
            customer: d.customer_name,
            reference: d.external_ref,
            wrap: d.wrap_name,
            before: percent(d.previous),
            before_date: date(lang, d.previous_date),
            now: percent(d.probability),
            now_date: date(lang, d.date),
        })
        .collect();
    let page = FollowUpPage {
        frame: user.frame(&req, lang.texts().follow_up),
        rows,
    };
    user.page(&state, &page)
}

struct HoldingRow {
    instrument: String,
    units: String,
    price: String,
    value: String,
}

struct WrapRow {
    name: String,
    status: String,
    value: String,
    cash: String,
    holdings: Vec<HoldingRow>,
}

#[derive(Template)]
#[template(path = "console/customer.html")]
struct CustomerPage {
    frame: Frame,
    reference: String,
    risk: String,
    cash: Vec<String>,
    total: Vec<String>,
    wraps: Vec<WrapRow>,
}

/// `GET /console/customers/{id}`: a customer with its wraps, values and holdings, from
/// [`crate::routes::customers::customer_overview`] (what `GET /v1/customers/{id}` answers).
/// Another tenant's customer, no customer, or (for an adviser) another branch's customer is
/// 404.
pub async fn customer(
    req: HttpRequest,
    user: ConsoleUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    user.require(&[UserRole::HeadOffice, UserRole::Adviser])?;
    let not_found = || ConsoleError::page(StatusCode::NOT_FOUND, user.lang);
    let id: Uuid = req
        .match_info()
        .get("id")
        .and_then(|s| s.parse().ok())
        .ok_or_else(not_found)?;
    // Scope before anything is read: another branch's customer looks like no customer.
    let found = crate::routes::customers::find_customer_of(&state.db, &user.principal, id)
        .await
        .map_err(problem(&user))?;
    if !wraps::customers::Scope::of_user(&user.signed_in.user).sees(&found) {
        return Err(not_found());
    }
    let (view, valuations) =
        crate::routes::customers::customer_overview(&state, &user.principal, id)
            .await
            .map_err(problem(&user))?;
    let wraps = view
        .wraps
        .iter()
        .zip(&valuations)
        .map(|(w, v)| WrapRow {
            name: w.name.clone(),
            status: w.status.as_str().to_owned(),
            value: money(&w.currency, w.value),
            cash: money(&v.currency, v.cash),
            holdings: v
                .holdings
                .iter()
                .map(|h| HoldingRow {
                    instrument: h.instrument.clone(),
                    units: grouped(h.units),
                    price: h.price.map(|p| money(&v.currency, p)).unwrap_or_default(),
                    value: money(&v.currency, h.value),
                })
                .collect(),
        })
        .collect();
    let page = CustomerPage {
        frame: user.frame(&req, &view.customer.name),
        reference: view.customer.external_ref.clone(),
        risk: view.customer.risk_tolerance.to_string(),
        cash: view
            .cash
            .iter()
            .map(|c| money(&c.currency, c.balance))
            .collect(),
        total: view
            .total_value
            .iter()
            .map(|m| money(&m.currency, m.amount))
            .collect(),
        wraps,
    };
    user.page(&state, &page)
}
