//! `/v1/agreements`: distributor × manager × strategy, their terms, and platform fees
//! (`/v1/tenants/{id}/platform-fee`).
//!
//! Isolation (tested by `api/tests/http/agreements.rs`): an agreement is visible to its
//! distributor, its manager and the platform; to anyone else its id answers 404 exactly like a
//! missing one. The handler first loads it through [`market_store::agreement_for`] (visibility
//! in the query), then checks the role: only a manager decides (a distributor accepting its
//! own proposal gets 403), only a distributor proposes terms. A platform fee is visible to the
//! platform and to the distributor itself; a tenant that is not a distributor answers 404.
//!
//! Terms never change in place: new terms are a new version, decided by the manager with the
//! same accept and decline routes. Every change runs in one write transaction with its audit
//! record.

use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tenants::{Action, TenantKind, TenantsError};
use utoipa::ToSchema;
use uuid::Uuid;
use wraps::market::agreement::{
    Agreement, AgreementStatus, TermsInput, TermsVersion, terms_in_effect,
};
use wraps::market::store::{self as market_store, AgreementFilter, NewPlatformFee, PlatformFee};

use crate::audit::{self, Change};
use crate::auth::Caller;
use crate::extract::{Query, path_uuid};
use crate::problem::Problem;
use crate::routes::strategies::business_today;
use crate::routes::tenants::Page;
use crate::server::AppState;

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = super::resource;
    cfg.service(
        resource("/v1/agreements")
            .get(list_agreements)
            .post(propose_agreement),
    )
    .service(resource("/v1/agreements/{id}").get(get_agreement))
    .service(resource("/v1/agreements/{id}/accept").post(accept_agreement))
    .service(resource("/v1/agreements/{id}/decline").post(decline_agreement))
    .service(
        resource("/v1/agreements/{id}/terms")
            .get(list_terms)
            .post(propose_terms),
    )
    .service(
        resource("/v1/tenants/{id}/platform-fee")
            .get(get_platform_fee)
            .put(set_platform_fee),
    );
}

/// What a distributor proposes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposeAgreement {
    /// The manager that owns the strategy.
    pub manager_tenant_id: Uuid,
    /// An active strategy of that manager.
    pub strategy_id: Uuid,
    /// The first terms.
    pub terms: TermsInput,
}

/// An agreement with the terms in effect today and those awaiting a decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgreementView {
    #[serde(flatten)]
    pub agreement: Agreement,
    /// The accepted terms in effect today (Tokyo business date), if any.
    pub current_terms: Option<TermsVersion>,
    /// Terms awaiting the manager's decision, if any.
    pub proposed_terms: Option<TermsVersion>,
}

/// Every terms version, and the one in effect on the date asked.
#[derive(Debug, Serialize, ToSchema)]
pub struct TermsList {
    /// Oldest first.
    pub items: Vec<TermsVersion>,
    /// The date `in_effect` is for.
    pub on: NaiveDate,
    /// The newest accepted version effective on or before `on`.
    pub in_effect: Option<TermsVersion>,
}

async fn view(
    db: &impl sea_orm::ConnectionTrait,
    agreement: Agreement,
) -> Result<AgreementView, Problem> {
    let versions = market_store::list_terms(db, &agreement).await?;
    let current_terms = terms_in_effect(&versions, business_today()).cloned();
    let proposed_terms = versions
        .into_iter()
        .find(|v| v.status == wraps::market::TermsStatus::Proposed);
    Ok(AgreementView {
        agreement,
        current_terms,
        proposed_terms,
    })
}

/// Validation errors of nested terms name their path in the body.
fn in_terms(e: TenantsError) -> Problem {
    match e {
        TenantsError::Validation { field, message } => {
            Problem::invalid_field(&format!("terms.{field}"), message)
        }
        other => other.into(),
    }
}

/// Propose an agreement for a manager's strategy (distributor writers).
#[utoipa::path(
    post, path = "/v1/agreements", tag = "agreements",
    request_body = ProposeAgreement,
    responses(
        (status = 201, body = AgreementView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A live agreement for this strategy exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn propose_agreement(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ProposeAgreements)?;
    Query::parse(&req, &[])?;
    let body: ProposeAgreement = crate::extract::json(&req, payload).await?;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    let (agreement, terms) = market_store::propose_agreement(
        &txn,
        caller.principal.tenant_id,
        body.manager_tenant_id,
        body.strategy_id,
        body.terms,
        &caller.principal.client_id,
        now,
    )
    .await
    .map_err(|e| match e {
        TenantsError::Validation {
            field: "strategy_id",
            ..
        } => e.into(),
        other => in_terms(other),
    })?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "agreement.propose",
            target_tenant_id: Some(agreement.distributor_tenant_id),
            target_type: "agreement",
            target_id: agreement.id.to_string(),
            detail: json!({
                "manager_tenant_id": agreement.manager_tenant_id,
                "strategy_id": agreement.strategy_id,
                "effective_date": terms.effective_date,
            }),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    let location = format!("/v1/agreements/{}", agreement.id);
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, location))
        .json(AgreementView {
            agreement,
            current_terms: None,
            proposed_terms: Some(terms),
        }))
}

/// The agreements the caller may see, by id: a distributor its own, a manager those
/// proposed to it, the platform all.
#[utoipa::path(
    get, path = "/v1/agreements", tag = "agreements",
    params(
        ("status" = Option<String>, Query, description = "proposed, active, declined or terminated"),
        ("strategy_id" = Option<Uuid>, Query),
        ("limit" = Option<u64>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses((status = 200, body = Page<Agreement>)),
    security(("bearer" = []))
)]
pub async fn list_agreements(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReadOwnData)?;
    let q = Query::parse(&req, &["status", "strategy_id", "limit", "cursor"])?;
    let filter = AgreementFilter {
        status: q
            .one_of("status", &["proposed", "active", "declined", "terminated"])?
            .and_then(AgreementStatus::parse),
        strategy_id: q.uuid("strategy_id")?,
    };
    let page = market_store::list_agreements(
        &state.db,
        &caller.principal,
        filter,
        q.id_cursor()?,
        q.limit(100, 1000)?,
    )
    .await?;
    Ok(HttpResponse::Ok().json(Page {
        items: page.items,
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

/// One agreement, with its current and proposed terms.
#[utoipa::path(
    get, path = "/v1/agreements/{id}", tag = "agreements",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = AgreementView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_agreement(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    let agreement = market_store::agreement_for(&state.db, &caller.principal, id).await?;
    Ok(HttpResponse::Ok().json(view(&state.db, agreement).await?))
}

/// Accept what awaits the manager's decision: a proposed agreement (it becomes active) or
/// new terms of an active one (the manager's writers).
#[utoipa::path(
    post, path = "/v1/agreements/{id}/accept", tag = "agreements",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = AgreementView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Nothing awaits a decision", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn accept_agreement(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    decide(req, caller, state, true).await
}

/// Decline what awaits the manager's decision: a proposed agreement (it becomes declined) or
/// new terms of an active one (the agreement stays on its accepted terms).
#[utoipa::path(
    post, path = "/v1/agreements/{id}/decline", tag = "agreements",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = AgreementView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Nothing awaits a decision", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn decline_agreement(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    decide(req, caller, state, false).await
}

async fn decide(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    accept: bool,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    market_store::agreement_for(&state.db, &caller.principal, id).await?;
    caller.principal.authorize(Action::DecideAgreements)?;
    Query::parse(&req, &[])?;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    let agreement = market_store::agreement_for(&txn, &caller.principal, id).await?;
    let was = agreement.status;
    let (agreement, terms) =
        market_store::decide(&txn, &agreement, accept, &caller.principal.client_id, now).await?;
    let action = match (was, accept) {
        (AgreementStatus::Proposed, true) => "agreement.accept",
        (AgreementStatus::Proposed, false) => "agreement.decline",
        (_, true) => "agreement.terms.accept",
        (_, false) => "agreement.terms.decline",
    };
    audit::record(
        &txn,
        &caller,
        &Change {
            action,
            target_tenant_id: Some(agreement.distributor_tenant_id),
            target_type: "agreement",
            target_id: id.to_string(),
            detail: json!({ "terms_version": terms.version, "status": agreement.status }),
        },
        now,
    )
    .await?;
    let view = view(&txn, agreement).await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Propose new terms of an active agreement, from a date later than the accepted terms'
/// (its distributor's writers). The manager accepts or declines them.
#[utoipa::path(
    post, path = "/v1/agreements/{id}/terms", tag = "agreements",
    params(("id" = Uuid, Path)),
    request_body = TermsInput,
    responses(
        (status = 201, body = TermsVersion),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not active, or terms already await a decision", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn propose_terms(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    market_store::agreement_for(&state.db, &caller.principal, id).await?;
    caller.principal.authorize(Action::ProposeAgreements)?;
    Query::parse(&req, &[])?;
    let body: TermsInput = crate::extract::json(&req, payload).await?;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    let agreement = market_store::agreement_for(&txn, &caller.principal, id).await?;
    let terms = market_store::propose_terms(&txn, &agreement, body, now).await?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "agreement.terms.propose",
            target_tenant_id: Some(agreement.distributor_tenant_id),
            target_type: "agreement",
            target_id: id.to_string(),
            detail: json!({ "terms_version": terms.version, "effective_date": terms.effective_date }),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, format!("/v1/agreements/{id}/terms")))
        .json(terms))
}

/// Every terms version of an agreement, and the one in effect on `on` (default today).
#[utoipa::path(
    get, path = "/v1/agreements/{id}/terms", tag = "agreements",
    params(
        ("id" = Uuid, Path),
        ("on" = Option<NaiveDate>, Query, description = "A date, YYYY-MM-DD; default today"),
    ),
    responses(
        (status = 200, body = TermsList),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_terms(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    let agreement = market_store::agreement_for(&state.db, &caller.principal, id).await?;
    let q = Query::parse(&req, &["on"])?;
    let on = q.date("on")?.unwrap_or_else(business_today);
    let items = market_store::list_terms(&state.db, &agreement).await?;
    let in_effect = terms_in_effect(&items, on).cloned();
    Ok(HttpResponse::Ok().json(TermsList {
        items,
        on,
        in_effect,
    }))
}

// ---------------------------------------------------------------------------------------
// Platform fees

/// A distributor's platform fee: the one in effect and every one set.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlatformFees {
    /// The date `current` is for.
    pub on: NaiveDate,
    /// The fee in effect on `on`.
    pub current: Option<PlatformFee>,
    /// Newest effective date first.
    pub history: Vec<PlatformFee>,
}

/// 404 unless `id` is a distributor the caller may see (the platform, or itself).
pub(crate) async fn distributor(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<(), Problem> {
    if !caller.principal.can_see_tenant(id) {
        return Err(Problem::not_found("no such object"));
    }
    let tenant = tenants::store::get_tenant(&state.db, id).await?;
    if tenant.kind != TenantKind::Distributor {
        return Err(Problem::not_found("no such object"));
    }
    Ok(())
}

/// Set a distributor's monthly platform fee from a date (platform admins). Another date adds
/// to the history; the same date replaces that date's fee.
#[utoipa::path(
    put, path = "/v1/tenants/{id}/platform-fee", tag = "platform",
    params(("id" = Uuid, Path)),
    request_body = NewPlatformFee,
    responses(
        (status = 200, body = PlatformFees),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn set_platform_fee(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    distributor(&state, &caller, id).await?;
    caller.principal.authorize(Action::SetPlatformFees)?;
    Query::parse(&req, &[])?;
    let body: NewPlatformFee = crate::extract::json(&req, payload).await?;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    let (before, fee) =
        market_store::set_platform_fee(&txn, id, &body, &caller.principal.client_id, now).await?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "platform_fee.set",
            target_tenant_id: Some(id),
            target_type: "tenant",
            target_id: id.to_string(),
            detail: json!({
                "effective_date": fee.effective_date,
                "amount": fee.amount.to_string(),
                "currency": fee.currency,
                "replaced": before.map(|b| json!({ "amount": b.amount.to_string(), "currency": b.currency })),
            }),
        },
        now,
    )
    .await?;
    let history = market_store::platform_fees(&txn, id).await?;
    txn.commit().await?;
    let on = business_today();
    Ok(HttpResponse::Ok().json(PlatformFees {
        on,
        current: market_store::platform_fee_in_effect(&history, on).cloned(),
        history,
    }))
}

/// A distributor's platform fee in effect on `on` (default today) and its history (the
/// platform, or the distributor itself).
#[utoipa::path(
    get, path = "/v1/tenants/{id}/platform-fee", tag = "tenants",
    params(
        ("id" = Uuid, Path),
        ("on" = Option<NaiveDate>, Query, description = "A date, YYYY-MM-DD; default today"),
    ),
    responses(
        (status = 200, body = PlatformFees),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_platform_fee(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    distributor(&state, &caller, id).await?;
    let q = Query::parse(&req, &["on"])?;
    let on = q.date("on")?.unwrap_or_else(business_today);
    let history = market_store::platform_fees(&state.db, id).await?;
    Ok(HttpResponse::Ok().json(PlatformFees {
        on,
        current: market_store::platform_fee_in_effect(&history, on).cloned(),
        history,
    }))
}
