//! `/v1/webhooks`: a tenant's webhook endpoints (URL, event types, a secret shown once),
//! their delivery log and replays. The rows and their rules are in
//! [`wraps::events::webhooks`]; deliveries are sent by [`crate::webhooks`].
//!
//! Isolation (tested by
//! `api/tests/http/webhooks.rs::deliveries_are_signed_retried_and_in_order`): every
//! statement names the caller's tenant, so another tenant's endpoint answers 404 exactly
//! like a missing one. Reading needs `ReadOwnData`, changing `WriteOwnData` (a viewer gets
//! 403). Every change is audited in its transaction.

use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use chrono::Utc;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tenants::Action;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::{self, Change};
use crate::auth::Caller;
use crate::extract::{Query, path_uuid};
use crate::problem::Problem;
use crate::server::AppState;
use wraps::events::webhooks::{self as store, DeliveryView, Endpoint};

/// Most endpoints per tenant.
const MAX_ENDPOINTS: usize = 20;

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = super::resource;
    cfg.service(
        resource("/v1/webhooks")
            .get(list_webhooks)
            .post(create_webhook),
    )
    .service(
        resource("/v1/webhooks/{id}")
            .get(get_webhook)
            .delete(delete_webhook),
    )
    .service(resource("/v1/webhooks/{id}/enable").post(enable_webhook))
    .service(resource("/v1/webhooks/{id}/deliveries").get(list_deliveries))
    .service(resource("/v1/webhooks/{id}/deliveries/{seq}/replay").post(replay_delivery));
}

/// Records the change in the audit log and commits it with its audit record.
async fn audited(
    txn: sea_orm::DatabaseTransaction,
    caller: &Caller,
    action: &'static str,
    webhook_id: String,
    detail: serde_json::Value,
    now: chrono::DateTime<Utc>,
) -> Result<(), Problem> {
    let change = Change {
        action,
        target_tenant_id: Some(caller.principal.tenant_id),
        target_type: "webhook",
        target_id: webhook_id,
        detail,
    };
    audit::record(&txn, caller, &change, now).await?;
    txn.commit().await?;
    Ok(())
}

fn not_found(id: Uuid) -> Problem {
    Problem::not_found(format!("no webhook {id}"))
}

/// A new endpoint.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where deliveries are POSTed (`http://` or `https://`).
    #[schema(example = "https://oms.bank.example/wrap-events")]
    pub url: String,
    /// The event types to receive, or `["*"]` for all.
    #[schema(example = json!(["instruction.created", "eod.date.finished"]))]
    pub event_types: Vec<String>,
}

/// An endpoint just created, with its signing secret: shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// `whsec_` and the base64 of the HMAC-SHA256 key (the Standard Webhooks form).
    pub secret: String,
}

/// A new secret: 32 random bytes.
fn new_secret() -> String {
    let mut key = [0_u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// Register an endpoint. Deliveries of later events are signed with the secret in the
/// answer (`webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`).
#[utoipa::path(
    post, path = "/v1/webhooks", tag = "webhooks",
    request_body(content = NewWebhook, example = json!({"url": "https://oms.bank.example/wrap-events", "event_types": ["instruction.created", "instruction.completed", "eod.date.finished"]})),
    responses(
        (status = 201, description = "Created; the secret is shown this once", body = CreatedWebhook),
        (status = 403, description = "A viewer", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The tenant has the most endpoints allowed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad URL or event type", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_webhook(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::WriteOwnData)?;
    Query::parse(&req, &[])?;
    let body: NewWebhook = crate::extract::json(&req, payload).await?;
    let types = store::check_subscription(&body.url, &body.event_types)
        .map_err(|e| Problem::invalid_field(e.field, e.message))?;
    let tenant_id = caller.principal.tenant_id;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    if store::list(&txn, tenant_id).await?.len() >= MAX_ENDPOINTS {
        return Err(Problem::conflict(format!(
            "a tenant has at most {MAX_ENDPOINTS} webhook endpoints: delete one first"
        )));
    }
    let secret = new_secret();
    let endpoint = store::create(&txn, tenant_id, &body.url, &types, &secret, now).await?;
    audited(
        txn,
        &caller,
        "webhook.create",
        endpoint.id.to_string(),
        json!({ "url": body.url, "event_types": endpoint.event_types }),
        now,
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, format!("/v1/webhooks/{}", endpoint.id)))
        .json(CreatedWebhook { endpoint, secret }))
}

/// A tenant's endpoints (at most 20: one page).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub items: Vec<Endpoint>,
}

/// The caller's tenant's endpoints (never their secrets).
#[utoipa::path(
    get, path = "/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = WebhookList)),
    security(("bearer" = []))
)]
pub async fn list_webhooks(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReadOwnData)?;
    Query::parse(&req, &[])?;
    let items = store::list(&state.db, caller.principal.tenant_id).await?;
    Ok(HttpResponse::Ok().json(WebhookList { items }))
}

/// One endpoint of the caller's tenant.
#[utoipa::path(
    get, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Endpoint),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_webhook(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReadOwnData)?;
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    let found = store::get_one(&state.db, caller.principal.tenant_id, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(HttpResponse::Ok().json(found))
}

/// Delete an endpoint: it receives nothing more (its delivery log stays readable to the
/// platform's operators in the database).
#[utoipa::path(
    delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "A viewer", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_webhook(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::WriteOwnData)?;
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    let tenant_id = caller.principal.tenant_id;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    if !store::delete(&txn, tenant_id, id).await? {
        return Err(not_found(id));
    }
    audited(
        txn,
        &caller,
        "webhook.delete",
        id.to_string(),
        json!({}),
        now,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Enable an endpoint that was disabled after failing: its failure count starts again and its
/// pending deliveries are sent (events recorded while it was disabled were not queued for it:
/// `GET /v1/events` has them). Enabling an enabled endpoint changes nothing.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/enable", tag = "webhooks",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Endpoint),
        (status = 403, description = "A viewer", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn enable_webhook(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::WriteOwnData)?;
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    let tenant_id = caller.principal.tenant_id;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    if store::enable(&txn, tenant_id, id).await? {
        let endpoint = store::get_one(&txn, tenant_id, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        audited(
            txn,
            &caller,
            "webhook.enable",
            id.to_string(),
            json!({}),
            now,
        )
        .await?;
        return Ok(HttpResponse::Ok().json(endpoint));
    }
    let endpoint = store::get_one(&txn, tenant_id, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(HttpResponse::Ok().json(endpoint))
}

/// A page of the delivery log.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<DeliveryView>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The delivery log of an endpoint: each delivery (by event) with every attempt (status,
/// latency, response code), oldest first.
#[utoipa::path(
    get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(
        ("id" = Uuid, Path),
        ("after" = Option<String>, Query, description = "Cursor: an event's seq (default 0)"),
        ("limit" = Option<u64>, Query, description = "1 to 1000, default 100"),
    ),
    responses(
        (status = 200, body = DeliveryPage),
        (status = 400, description = "A bad query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_deliveries(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReadOwnData)?;
    let id = path_uuid(&req, "id")?;
    let q = Query::parse(&req, &["after", "limit"])?;
    let after = super::events::cursor(&q, "after")?;
    let limit = q.limit(100, wraps::events::MAX_PAGE)?;
    let tenant_id = caller.principal.tenant_id;
    store::get_one(&state.db, tenant_id, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let items = store::deliveries(&state.db, tenant_id, id, after, limit).await?;
    let next_cursor = (items.len() as u64 == limit)
        .then(|| items.last().map(|d| d.event_seq.clone()))
        .flatten();
    Ok(HttpResponse::Ok().json(DeliveryPage { items, next_cursor }))
}

/// Send an event to an endpoint again (a fresh retry window), whatever became of its earlier
/// delivery; also for events from before the endpoint subscribed.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/deliveries/{seq}/replay", tag = "webhooks",
    params(("id" = Uuid, Path), ("seq" = i64, Path, minimum = 1, description = "The event's seq")),
    responses(
        (status = 202, description = "Queued: the worker sends it"),
        (status = 403, description = "A viewer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint or event of the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn replay_delivery(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::WriteOwnData)?;
    let id = path_uuid(&req, "id")?;
    let seq = req
        .match_info()
        .get("seq")
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| Problem::bad_parameter("seq", "an event's seq (1 or more)"))?;
    Query::parse(&req, &[])?;
    let tenant_id = caller.principal.tenant_id;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    if !store::replay(&txn, tenant_id, id, seq, now).await? {
        return Err(Problem::not_found(format!(
            "no webhook {id} or no event {seq} of your tenant"
        )));
    }
    audited(
        txn,
        &caller,
        "webhook.replay",
        id.to_string(),
        json!({ "event_seq": seq.to_string() }),
        now,
    )
    .await?;
    Ok(HttpResponse::Accepted().finish())
}
