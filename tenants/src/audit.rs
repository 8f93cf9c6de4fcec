//! The audit writer: who changed what, when, under which request.
//!
//! Invariants (the log's reader and its tests are in `api/src/audit.rs`):
//! * a change is recorded in the same transaction as the change itself (every writer takes
//!   the caller's connection or transaction), so there is no change without its record and
//!   no record of a change that was rolled back;
//! * the log is append-only: the table's triggers refuse UPDATE and DELETE (migration
//!   `m20261121_000003_audit`).
//!
//! It lives here, with identity, so that the wrap business (end of day) and the HTTP adapters
//! write the same rows through one function.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, Statement, Value};
use uuid::Uuid;

use crate::store::p as param;

/// A change to record.
#[derive(Debug, Clone)]
pub struct Change {
    /// What was done, `noun.verb` (`tenant.create`, `client.rotate`).
    pub action: &'static str,
    /// The tenant the changed object belongs to.
    pub target_tenant_id: Option<Uuid>,
    /// The kind of object (`tenant`, `client`).
    pub target_type: &'static str,
    /// Its id.
    pub target_id: String,
    /// What changed, as JSON (never a secret).
    pub detail: serde_json::Value,
}

/// Appends a change made by `actor_client_id` of `actor_tenant_id` outside a request (the
/// command line passes a request id of its own).
pub async fn record_raw<C: ConnectionTrait>(
    db: &C,
    actor_tenant_id: Uuid,
    actor_client_id: &str,
    request_id: &str,
    change: &Change,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let b = db.get_database_backend();
    let placeholders: Vec<String> = (1..=10).map(|n| param(b, n)).collect();
    let sql = format!(
        "INSERT INTO audit_log (id, actor_tenant_id, actor_client_id, request_id, action, \
         target_tenant_id, target_type, target_id, detail, at) VALUES ({})",
        placeholders.join(", ")
    );
    let values: Vec<Value> = vec![
        Uuid::now_v7().into(),
        actor_tenant_id.into(),
        actor_client_id.to_owned().into(),
        request_id.to_owned().into(),
        change.action.into(),
        change.target_tenant_id.into(),
        change.target_type.into(),
        change.target_id.clone().into(),
        change.detail.to_string().into(),
        at.timestamp_micros().into(),
    ];
    db.execute_raw(Statement::from_sql_and_values(b, sql, values))
        .await?;
    Ok(())
}
