//! `/v1/ledger`: reads of the caller's own books. Amounts are decimal strings.
//!
//! Isolation: every read passes the caller's tenant id to the ledger, whose queries are
//! scoped by it, so another tenant's account or entry answers 404 like a missing one
//! (`api/tests/isolation.rs`). The trial balance spans tenants and is the platform's alone.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use ledger::{AsOf, BalanceReport, Entry, Side, TrialBalanceLine};
use serde::Serialize;
use tenants::Action;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::{Query, path_uuid};
use crate::problem::Problem;
use crate::server::AppState;

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = super::resource;
    cfg.service(resource("/v1/ledger/accounts").get(list_accounts))
        .service(resource("/v1/ledger/accounts/{id}").get(get_account))
        .service(resource("/v1/ledger/entries").get(list_entries))
        .service(resource("/v1/ledger/entries/{id}").get(get_entry))
        .service(resource("/v1/ledger/trial-balance").get(trial_balance));
}

/// An account and its balance.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// Unique within the tenant, e.g. `wrap:<id>:cash`.
    pub code: String,
    pub asset: String,
    pub normal_side: Side,
    /// Entries may not take its available balance below zero.
    pub no_negative: bool,
    pub closed: bool,
    pub metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub balance: BalanceReport,
}

/// An account without its balance (read one account for that).
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountSummary {
    pub id: Uuid,
    pub code: String,
    pub asset: String,
    pub normal_side: Side,
    pub no_negative: bool,
    pub closed: bool,
    pub created_at: DateTime<Utc>,
}

/// A page of accounts, in creation order.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountList {
    pub items: Vec<AccountSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A page of entries, in booking order.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryList {
    pub items: Vec<Entry>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The trial balance: per asset, debits and credits over every account.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrialBalance {
    /// The tenant it covers; absent for the whole platform.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
    /// True when every asset's debits equal its credits.
    pub balanced: bool,
    pub lines: Vec<TrialBalanceLine>,
}

fn as_of(q: &Query) -> Result<AsOf, Problem> {
    let Some(raw) = q.get("as_of") else {
        return Ok(AsOf::Now);
    };
    if let Ok(date) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(AsOf::EffectiveDate(date));
    }
    DateTime::parse_from_rfc3339(raw)
        .map(|t| AsOf::BookedAt(t.with_timezone(&Utc)))
        .map_err(|_| {
            Problem::bad_parameter(
                "as_of",
                "must be a business date (2026-11-20) or an RFC 3339 time \
                 (2026-11-20T09:00:00Z)",
            )
        })
}

/// The caller's accounts, in creation order.
#[utoipa::path(
    get, path = "/v1/ledger/accounts", tag = "ledger",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 500, default 100"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, body = AccountList),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_accounts(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReadLedger)?;
    let q = Query::parse(&req, &["limit", "cursor"])?;
    let limit = q.limit(100, u64::from(ledger::store::MAX_PAGE))?;
    let after = q.id_cursor()?;
    let (accounts, next) = state
        .ledger
        .accounts(
            caller.principal.tenant_id,
            after,
            u32::try_from(limit).unwrap_or(ledger::store::MAX_PAGE),
        )
        .await?;
    Ok(HttpResponse::Ok().json(AccountList {
        items: accounts
            .into_iter()
            .map(|a| AccountSummary {
                id: a.id,
                code: a.code,
                asset: a.asset,
                normal_side: a.normal_side,
                no_negative: a.no_negative,
                closed: a.closed,
                created_at: a.created_at,
            })
            .collect(),
        next_cursor: next.map(|c| c.to_string()),
    }))
}

/// An account of the caller's tenant with its balance: now (with holds), as of the end of a
/// business date (`as_of=2026-11-20`), or as booked at an instant (`as_of=<RFC 3339>`).
#[utoipa::path(
    get, path = "/v1/ledger/accounts/{id}", tag = "ledger",
    params(
        ("id" = Uuid, Path),
        ("as_of" = Option<String>, Query, description = "A date (effective date) or an RFC 3339 time (booking time); default now"),
    ),
    responses(
        (status = 200, body = AccountView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_account(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReadLedger)?;
    let id = path_uuid(&req, "id")?;
    let q = Query::parse(&req, &["as_of"])?;
    let (account, balance) = state
        .ledger
        .account_balance(caller.principal.tenant_id, id, as_of(&q)?)
        .await?;
    Ok(HttpResponse::Ok().json(AccountView {
        id: account.id,
        tenant_id: account.tenant_id,
        code: account.code,
        asset: account.asset,
        normal_side: account.normal_side,
        no_negative: account.no_negative,
        closed: account.closed,
        metadata: account.metadata,
        created_at: account.created_at,
        balance,
    }))
}

/// The entries touching one of the caller's accounts, in booking order.
#[utoipa::path(
    get, path = "/v1/ledger/entries", tag = "ledger",
    params(
        ("account_id" = Uuid, Query, description = "The account (required)"),
        ("limit" = Option<u32>, Query, description = "1 to 500, default 100"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, body = EntryList),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_entries(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReadLedger)?;
    let q = Query::parse(&req, &["account_id", "limit", "cursor"])?;
    let account_id = q
        .uuid("account_id")?
        .ok_or_else(|| Problem::bad_parameter("account_id", "is required"))?;
    let limit = q.limit(100, u64::from(ledger::store::MAX_PAGE))?;
    let cursor = q.seq_cursor()?;
    let page = state
        .ledger
        .account_entries(
            caller.principal.tenant_id,
            account_id,
            cursor,
            u32::try_from(limit).unwrap_or(ledger::store::MAX_PAGE),
        )
        .await?;
    Ok(HttpResponse::Ok().json(EntryList {
        items: page.entries,
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

/// One entry of the caller's books, with its postings.
#[utoipa::path(
    get, path = "/v1/ledger/entries/{id}", tag = "ledger",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Entry),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_entry(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReadLedger)?;
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    let entry = state.ledger.entry(caller.principal.tenant_id, id).await?;
    Ok(HttpResponse::Ok().json(entry))
}

/// Debits and credits per asset over every account of the platform, or of one tenant
/// (platform only).
#[utoipa::path(
    get, path = "/v1/ledger/trial-balance", tag = "platform",
    params(("tenant_id" = Option<Uuid>, Query, description = "One tenant's books; default all")),
    responses(
        (status = 200, body = TrialBalance),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn trial_balance(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReadTrialBalance)?;
    let q = Query::parse(&req, &["tenant_id"])?;
    let tenant_id = q.uuid("tenant_id")?;
    let lines = state.ledger.trial_balance(tenant_id).await?;
    Ok(HttpResponse::Ok().json(TrialBalance {
        tenant_id,
        balanced: lines.iter().all(|l| l.difference.is_zero()),
        lines,
    }))
}
