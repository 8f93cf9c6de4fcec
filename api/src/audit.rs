//! The audit log: who changed what, when, under which request.
//!
//! Invariants:
//! * every change made through the API is recorded in the same transaction as the change
//!   itself, so there is no change without its record and no record of a change that was
//!   rolled back (handlers call [`record`] with their transaction);
//! * the log is append-only: the table's triggers refuse UPDATE and DELETE (migration
//!   `m20261121_000003_audit`);
//! * only the platform reads it (`GET /v1/audit`, [`tenants::Action::ReadAudit`]).
//!
//! Tested by `api/tests/tenants.rs` (records per change, nothing recorded for a refused
//! change) and `ledger/tests/migrations.rs`-style trigger checks in `api/tests/tenants.rs`.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use ledger::store::param;
use sea_orm::{ConnectionTrait, DbErr, Statement, Value};
use serde::Serialize;
use tenants::Action;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::Query;
use crate::problem::{Problem, method_not_allowed};
use crate::server::AppState;

pub use tenants::audit::{Change, record_raw};

/// Appends `change` made by `actor` at `at`, inside the caller's transaction `db`.
pub async fn record<C: ConnectionTrait>(
    db: &C,
    actor: &Caller,
    change: &Change,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    record_raw(
        db,
        actor.principal.tenant_id,
        &actor.principal.client_id,
        &actor.request_id,
        change,
        at,
    )
    .await
}

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AuditEvent {
    /// Position in the log (also the paging cursor).
    pub seq: i64,
    pub id: Uuid,
    pub actor_tenant_id: Uuid,
    pub actor_client_id: String,
    pub request_id: String,
    pub action: String,
    pub target_tenant_id: Option<Uuid>,
    pub target_type: String,
    pub target_id: String,
    pub detail: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEvent>,
    /// Pass as `cursor` for the next page; absent at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Events in log order after `after`, touching `tenant` (as actor or target) when given.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    tenant: Option<Uuid>,
    after: i64,
    limit: u64,
) -> Result<(Vec<AuditEvent>, Option<i64>), Problem> {
    let b = db.get_database_backend();
    let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
    let cols = "seq, id, actor_tenant_id, actor_client_id, request_id, action, \
                target_tenant_id, target_type, target_id, detail, at";
    let (sql, values): (String, Vec<Value>) = match tenant {
        Some(t) => (
            format!(
                "SELECT {cols} FROM audit_log WHERE seq > {} AND \
                 (actor_tenant_id = {} OR target_tenant_id = {}) ORDER BY seq LIMIT {}",
                param(b, 1),
                param(b, 2),
                param(b, 3),
                param(b, 4)
            ),
            vec![after.into(), t.into(), t.into(), fetch.into()],
        ),
        None => (
            format!(
                "SELECT {cols} FROM audit_log WHERE seq > {} ORDER BY seq LIMIT {}",
                param(b, 1),
                param(b, 2)
            ),
            vec![after.into(), fetch.into()],
        ),
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(b, sql, values))
        .await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        let detail: String = row.try_get_by_index(9)?;
        let at: i64 = row.try_get_by_index(10)?;
        items.push(AuditEvent {
            seq: row.try_get_by_index(0)?,
            id: row.try_get_by_index(1)?,
            actor_tenant_id: row.try_get_by_index(2)?,
            actor_client_id: row.try_get_by_index(3)?,
            request_id: row.try_get_by_index(4)?,
            action: row.try_get_by_index(5)?,
            target_tenant_id: row.try_get_by_index(6)?,
            target_type: row.try_get_by_index(7)?,
            target_id: row.try_get_by_index(8)?,
            detail: serde_json::from_str(&detail).map_err(|e| Problem::internal(&e))?,
            at: DateTime::from_timestamp_micros(at)
                .ok_or_else(|| Problem::internal(&format!("audit time {at} out of range")))?,
        });
    }
    let next = if items.len() as u64 > limit {
        items.truncate(limit as usize);
        items.last().map(|e| e.seq)
    } else {
        None
    };
    Ok((items, next))
}

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/audit")
            .get(list_audit)
            .default_service(web::to(method_not_allowed)),
    );
}

/// The audit log, oldest first (platform only).
#[utoipa::path(
    get, path = "/v1/audit", tag = "platform",
    params(
        ("tenant_id" = Option<Uuid>, Query, description = "Only changes by or to this tenant"),
        ("limit" = Option<u64>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, body = AuditPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_audit(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReadAudit)?;
    let q = Query::parse(&req, &["tenant_id", "limit", "cursor"])?;
    let limit = q.limit(100, 1000)?;
    let after = q.seq_cursor()?.unwrap_or(0);
    let (items, next) = list(&state.db, q.uuid("tenant_id")?, after, limit).await?;
    Ok(HttpResponse::Ok().json(AuditPage {
        items,
        next_cursor: next.map(|n| n.to_string()),
    }))
}
