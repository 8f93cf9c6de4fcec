//! `Idempotency-Key` on every POST that moves money (DESIGN.md invariant 7).
//!
//! Invariant: the same key with the same request returns the first answer and changes
//! nothing; the same key with a different request answers 409; a retry after a timeout
//! therefore never moves money twice. Tried by `api/tests/http/customers.rs`
//! (`customer_and_cash_flow_works`, and `concurrent_retries_move_money_once`: eight copies at
//! once move the money once) and the property test in `api/tests/http/wraps.rs`.
//!
//! How: the first answer is stored in `idempotency_keys` in the SAME transaction as the
//! change it describes, so either both are committed or neither is. A request is looked up
//! by (tenant, key) before anything else is done in that transaction; on SQLite the write
//! transaction holds the database's write lock from its first statement, on PostgreSQL the
//! primary key makes the second of two concurrent first attempts fail at insert, and that
//! request answers 409 asking for a retry, which then replays the stored answer.
//!
//! Refused requests (4xx) are not stored: nothing changed, so a corrected retry with the
//! same key is a first attempt.

use actix_web::HttpRequest;
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseTransaction, Statement, Value};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::problem::Problem;
use ledger::store::param;

/// The header's name.
pub const HEADER: &str = "idempotency-key";

/// A money-moving request's key and a digest of what it asked.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub tenant_id: Uuid,
    pub key: String,
    request_hash: String,
}

impl Idempotency {
    /// Reads the key of `req` (400 when it is missing or malformed) and digests the method,
    /// path and body, so the same key sent to another wrap or with another amount is a
    /// different request.
    pub fn of(req: &HttpRequest, tenant_id: Uuid, body: &impl Serialize) -> Result<Self, Problem> {
        let key = req
            .headers()
            .get(HEADER)
            .ok_or_else(|| {
                Problem::bad_parameter(
                    "Idempotency-Key",
                    "this request moves money: send an Idempotency-Key header (say a UUID) and \
                     the same key when you retry",
                )
            })?
            .to_str()
            .ok()
            .filter(|k| (1..=200).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                Problem::bad_parameter(
                    "Idempotency-Key",
                    "must be 1 to 200 visible ASCII characters",
                )
            })?
            .to_owned();
        let body = serde_json::to_vec(body).map_err(|e| Problem::internal(&e))?;
        let mut digest = Sha256::new();
        digest.update(req.method().as_str().as_bytes());
        digest.update(b" ");
        digest.update(req.path().as_bytes());
        digest.update(b"\n");
        digest.update(&body);
        Ok(Self {
            tenant_id,
            key,
            request_hash: hex::encode(digest.finalize()),
        })
    }

    /// The stored answer to an earlier request with this key, to be returned as is; 409 if
    /// that request was a different one. Call first thing in the write transaction.
    pub async fn replay(&self, txn: &DatabaseTransaction) -> Result<Option<HttpResponse>, Problem> {
        let backend = txn.get_database_backend();
        let row = txn
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "SELECT request_hash, status_code, response FROM idempotency_keys \
                     WHERE tenant_id = {} AND key = {}",
                    param(backend, 1),
                    param(backend, 2)
                ),
                [Value::from(self.tenant_id), Value::from(self.key.clone())],
            ))
            .await?;
        let Some(row) = row else { return Ok(None) };
        let hash: String = row.try_get_by_index(0)?;
        if hash != self.request_hash {
            return Err(Problem::conflict(format!(
                "Idempotency-Key {:?} was used for a different request; use a new key for a new \
                 request",
                self.key
            )));
        }
        let status: i32 = row.try_get_by_index(1)?;
        let body: String = row.try_get_by_index(2)?;
        let status = u16::try_from(status)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .ok_or_else(|| Problem::internal(&format!("stored status {status}")))?;
        Ok(Some(
            HttpResponse::build(status)
                .insert_header((CONTENT_TYPE, "application/json"))
                .insert_header(("idempotent-replayed", "true"))
                .body(body),
        ))
    }

    /// Stores the answer to this request in the transaction that made the change, and
    /// returns it.
    pub async fn answer<T: Serialize>(
        &self,
        txn: &DatabaseTransaction,
        status: StatusCode,
        body: &T,
    ) -> Result<HttpResponse, Problem> {
        let json = serde_json::to_string(body).map_err(|e| Problem::internal(&e))?;
        let backend = txn.get_database_backend();
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO idempotency_keys \
                 (tenant_id, key, request_hash, status_code, response, created_at) VALUES ({})",
                (1..=6)
                    .map(|n| param(backend, n))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            [
                Value::from(self.tenant_id),
                Value::from(self.key.clone()),
                Value::from(self.request_hash.clone()),
                Value::from(i32::from(status.as_u16())),
                Value::from(json.clone()),
                Value::from(Utc::now().timestamp_micros()),
            ],
        ))
        .await
        .map_err(|e| match e.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => Problem::conflict(format!(
                "a request with Idempotency-Key {:?} is being processed; retry it to get its \
                 answer",
                self.key
            )),
            _ => Problem::from(e),
        })?;
        Ok(HttpResponse::build(status)
            .insert_header((CONTENT_TYPE, "application/json"))
            .body(json))
    }
}
