//! Webhook endpoints, their deliveries and every attempt: the rows behind `/v1/webhooks` and
//! the delivery worker (`api/src/webhooks.rs`, which does the HTTP and the signing). This
//! module owns `webhook_endpoints`, `webhook_deliveries` and `webhook_attempts`.
//!
//! Invariants, and the tests (`api/tests/http/webhooks.rs`) that try them:
//! * **at least once, with the event id**: a delivery row is written with its event, in the
//!   same transaction ([`fan_out`]), and stays `pending` until an attempt succeeds or its
//!   retry window closes; a worker that dies mid-attempt loses only its lease. Tried by
//!   `a_restarted_worker_resumes`;
//! * **never twice at once**: an attempt is made only by the worker whose conditional UPDATE
//!   claimed the row ([`claim`]: pending, lease expired); its result is recorded only while it
//!   still holds the claim. Tried by `two_workers_deliver_each_event_once`;
//! * **in order per object**: a delivery is due only when no earlier delivery of the same
//!   object to the same endpoint is still pending ([`due`]). Tried by
//!   `deliveries_are_signed_retried_and_in_order` and `two_workers_deliver_each_event_once`;
//! * **an endpoint that keeps failing is disabled**, and its tenant told by a
//!   `webhook.endpoint.disabled` event. Tried by `a_failing_endpoint_is_disabled`;
//! * **tenant-scoped**: every statement but the worker's due scan names one tenant; an
//!   endpoint only ever receives its own tenant's events. Tried by
//!   `deliveries_are_signed_retried_and_in_order`.

use chrono::{DateTime, NaiveDate, Utc};
use ledger::sql::{Params, exec, from_micros, get, micros, query};
use rand::Rng;
use sea_orm::{ConnectionTrait, DbErr};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{NewEvent, types};

/// A registered endpoint, as the API shows it (never its secret after creation).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    /// The subscribed types; `["*"]` for all.
    pub event_types: Vec<String>,
    /// `enabled` or `disabled` (after repeated failures).
    pub status: String,
    pub consecutive_failures: i32,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
}

const ENDPOINT_COLS: &str = "id, url, event_types, status, consecutive_failures, created_at, \
     disabled_at, disabled_reason";

fn endpoint_from_row(r: &sea_orm::QueryResult) -> Result<Endpoint, DbErr> {
    let types: String = get(r, 2)?;
    let created: i64 = get(r, 5)?;
    let disabled: Option<i64> = get(r, 6)?;
    Ok(Endpoint {
        id: get(r, 0)?,
        url: get(r, 1)?,
        event_types: types.split(',').map(str::to_owned).collect(),
        status: get(r, 3)?,
        consecutive_failures: get(r, 4)?,
        created_at: from_micros(created).unwrap_or_default(),
        disabled_at: disabled.and_then(from_micros),
        disabled_reason: get(r, 7)?,
    })
}

/// Why a subscription was refused, naming the field.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

/// Checks a subscription: an `http(s)` URL, known event types (or `*`). Returns the types as
/// stored (comma-separated, sorted, no duplicates).
pub fn check_subscription(url: &str, event_types: &[String]) -> Result<String, Invalid> {
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    if !scheme_ok || url.len() > 2000 || url.chars().any(char::is_whitespace) {
        return Err(Invalid {
            field: "url",
            message: "an http:// or https:// URL of at most 2000 characters".to_owned(),
        });
    }
    if event_types.is_empty() {
        return Err(Invalid {
            field: "event_types",
            message: "at least one event type, or \"*\" for all".to_owned(),
        });
    }
    let mut kept: Vec<&str> = Vec::new();
    for (i, t) in event_types.iter().enumerate() {
        if t != "*" && !types::ALL.contains(&t.as_str()) {
            return Err(Invalid {
                field: "event_types",
                message: format!(
                    "event_types[{i}]: unknown type {t:?}; known: {}",
                    types::ALL.join(", ")
                ),
            });
        }
        kept.push(t);
    }
    if kept.contains(&"*") {
        return Ok("*".to_owned());
    }
    kept.sort_unstable();
    kept.dedup();
    Ok(kept.join(","))
}

/// Registers an endpoint of `tenant_id` (the subscription checked by [`check_subscription`]).
pub async fn create<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    url: &str,
    event_types: &str,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<Endpoint, DbErr> {
    let id = Uuid::now_v7();
    let mut pa = Params::new(db.get_database_backend());
    let row = pa.row(vec![
        tenant_id.into(),
        id.into(),
        url.into(),
        event_types.into(),
        secret.into(),
        "enabled".into(),
        micros(now).into(),
    ]);
    let q = format!(
        "INSERT INTO webhook_endpoints (tenant_id, id, url, event_types, secret, status, \
         created_at) VALUES {row}"
    );
    exec(db, q, pa.values).await?;
    get_one(db, tenant_id, id)
        .await?
        .ok_or_else(|| DbErr::Custom(format!("endpoint {id} vanished")))
}

/// The tenant's endpoint `id` (not deleted).
pub async fn get_one<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<Endpoint>, DbErr> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE tenant_id = {} AND id = {} \
         AND status <> 'deleted'",
        pa.push(tenant_id),
        pa.push(id)
    );
    query(db, q, pa.values)
        .await?
        .first()
        .map(endpoint_from_row)
        .transpose()
}

/// The tenant's endpoints (not deleted), oldest first.
pub async fn list<C: ConnectionTrait>(db: &C, tenant_id: Uuid) -> Result<Vec<Endpoint>, DbErr> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE tenant_id = {} \
         AND status <> 'deleted' ORDER BY id LIMIT 1000",
        pa.push(tenant_id)
    );
    query(db, q, pa.values)
        .await?
        .iter()
        .map(endpoint_from_row)
        .collect()
}

/// Deletes the tenant's endpoint `id`: it receives nothing more; its delivery log stays.
/// False when there is no such endpoint.
pub async fn delete<C: ConnectionTrait>(db: &C, tenant_id: Uuid, id: Uuid) -> Result<bool, DbErr> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "UPDATE webhook_endpoints SET status = 'deleted' WHERE tenant_id = {} AND id = {} \
         AND status <> 'deleted'",
        pa.push(tenant_id),
        pa.push(id)
    );
    Ok(exec(db, q, pa.values).await? == 1)
}

/// Enables the tenant's disabled endpoint `id` again, its failure count cleared: its pending
/// deliveries are sent again (events recorded while it was disabled were not queued for it;
/// `GET /v1/events` has them). False when there is no such disabled endpoint.
pub async fn enable<C: ConnectionTrait>(db: &C, tenant_id: Uuid, id: Uuid) -> Result<bool, DbErr> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "UPDATE webhook_endpoints SET status = 'enabled', consecutive_failures = 0, \
         disabled_at = NULL, disabled_reason = NULL \
         WHERE tenant_id = {} AND id = {} AND status = 'disabled'",
        pa.push(tenant_id),
        pa.push(id)
    );
    Ok(exec(db, q, pa.values).await? == 1)
}

/// One delivery per (enabled endpoint subscribed to it, event) for the tenant's events
/// `first..=last`, in the events' transaction (called by [`super::record`]).
pub(super) async fn fan_out<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    first: i64,
    last: i64,
) -> Result<(), DbErr> {
    let mut pa = Params::new(db.get_database_backend());
    // Types are checked against `types::ALL` (letters and dots), so LIKE sees no wildcard.
    let q = format!(
        "INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_seq, event_id, object_id, \
         status, attempts, next_attempt_at, claimed_until) \
         SELECT e.tenant_id, w.id, e.seq, e.id, e.object_id, 'pending', 0, e.occurred_at, 0 \
         FROM events e JOIN webhook_endpoints w ON w.tenant_id = e.tenant_id \
         WHERE e.tenant_id = {} AND e.seq >= {} AND e.seq <= {} AND w.status = 'enabled' \
         AND (w.event_types = '*' OR (',' || w.event_types || ',') LIKE ('%,' || e.type || ',%'))",
        pa.push(tenant_id),
        pa.push(first),
        pa.push(last)
    );
    exec(db, q, pa.values).await?;
    Ok(())
}

/// Identifies a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeliveryKey {
    pub tenant_id: Uuid,
    pub endpoint_id: Uuid,
    pub event_seq: i64,
}

/// A delivery due now, with what the worker sends.
#[derive(Debug, Clone)]
pub struct Due {
    pub key: DeliveryKey,
    pub url: String,
    pub secret: String,
    pub event: super::Event,
}

/// Up to `limit` deliveries due at `now` across tenants (a read: the worker then claims each
/// with [`claim`], which names its tenant), each the oldest pending one of its object for its
/// endpoint.
pub async fn due<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Due>, DbErr> {
    let mut pa = Params::new(db.get_database_backend());
    let at = micros(now);
    let q = format!(
        "SELECT d.tenant_id, d.endpoint_id, d.event_seq, w.url, w.secret, \
         e.id, e.seq, e.type, e.object_id, e.occurred_at, e.business_date, e.payload \
         FROM webhook_deliveries d \
         JOIN webhook_endpoints w ON w.tenant_id = d.tenant_id AND w.id = d.endpoint_id \
         JOIN events e ON e.tenant_id = d.tenant_id AND e.seq = d.event_seq \
         WHERE d.status = 'pending' AND d.next_attempt_at <= {} AND d.claimed_until <= {} \
         AND w.status = 'enabled' \
         AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.tenant_id = d.tenant_id \
             AND p.endpoint_id = d.endpoint_id AND p.object_id = d.object_id \
             AND p.status = 'pending' AND p.event_seq < d.event_seq) \
         ORDER BY d.next_attempt_at, d.tenant_id, d.event_seq LIMIT {}",
        pa.push(at),
        pa.push(at),
        pa.push(i64::try_from(limit).unwrap_or(100))
    );
    let rows = query(db, q, pa.values).await?;
    rows.iter()
        .map(|r| {
            let occurred: i64 = get(r, 9)?;
            let payload: String = get(r, 11)?;
            let business_date: Option<NaiveDate> = get(r, 10)?;
            Ok(Due {
                key: DeliveryKey {
                    tenant_id: get(r, 0)?,
                    endpoint_id: get(r, 1)?,
                    event_seq: get(r, 2)?,
                },
                url: get(r, 3)?,
                secret: get(r, 4)?,
                event: super::Event {
                    id: get(r, 5)?,
                    seq: get(r, 6)?,
                    kind: get(r, 7)?,
                    object_id: get(r, 8)?,
                    occurred_at: from_micros(occurred).unwrap_or_default(),
                    business_date,
                    payload: serde_json::from_str(&payload)
                        .map_err(|e| DbErr::Custom(format!("event payload: {e}")))?,
                },
            })
        })
        .collect()
}

/// Claims delivery `key` for `worker` until `until`: true when this worker won it (it was
/// pending and nobody held it). One conditional UPDATE of one row of one tenant: of two
/// workers racing, the second re-reads the row the first committed and matches nothing.
pub async fn claim<C: ConnectionTrait>(
    db: &C,
    key: DeliveryKey,
    worker: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "UPDATE webhook_deliveries SET claimed_until = {}, claimed_by = {} \
         WHERE tenant_id = {} AND endpoint_id = {} AND event_seq = {} AND status = 'pending' \
         AND claimed_until <= {}",
        pa.push(micros(until)),
        pa.push(worker.to_owned()),
        pa.push(key.tenant_id),
        pa.push(key.endpoint_id),
        pa.push(key.event_seq),
        pa.push(micros(now))
    );
    Ok(exec(db, q, pa.values).await? == 1)
}

/// How deliveries are retried, and when an endpoint is disabled.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// The first retry's delay; each next one doubles, up to `max_delay_ms`.
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    /// After this long since the first attempt, a delivery that still fails is given up.
    pub give_up_after_ms: u64,
    /// This many failed attempts in a row (any delivery) disable the endpoint.
    pub disable_after_failures: u32,
}

impl RetryPolicy {
    /// The delay before attempt `attempts + 1`, after `attempts` failed ones: exponential,
    /// capped, with full jitter over its upper half (so retries of many deliveries spread
    /// out instead of arriving together).
    pub fn delay_ms(&self, attempts: u32, rng: &mut impl Rng) -> u64 {
        let exponent = attempts.saturating_sub(1).min(30);
        let ceiling = self
            .base_delay_ms
            .saturating_mul(1_u64 << exponent)
            .min(self.max_delay_ms);
        let half = ceiling / 2;
        half + rng.gen_range(0..=ceiling - half)
    }
}

/// What one attempt found.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub started_at: DateTime<Utc>,
    pub latency_ms: u64,
    /// The response's status, when there was one.
    pub response_code: Option<u16>,
    /// Why it failed without a response (timeout, refused connection), or the status.
    pub error: Option<String>,
}

impl Attempt {
    pub fn delivered(&self) -> bool {
        self.response_code.is_some_and(|c| (200..300).contains(&c))
    }
}

/// What became of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Retried later.
    Retry,
    /// Its retry window closed.
    GaveUp,
    /// The worker's claim had lapsed and another worker holds it: nothing recorded.
    LostClaim,
}

/// Records `attempt` of delivery `key` by `worker` (which must still hold its claim) in `db`
/// (a transaction): the attempt row, the delivery's next state, the endpoint's failure count,
/// and, when that reaches the policy's limit, the endpoint disabled and its tenant told by a
/// `webhook.endpoint.disabled` event (recorded last: the lock order of the events module).
pub async fn finish<C: ConnectionTrait>(
    db: &C,
    key: DeliveryKey,
    worker: &str,
    attempt: &Attempt,
    policy: &RetryPolicy,
    now: DateTime<Utc>,
) -> Result<Outcome, DbErr> {
    let b = db.get_database_backend();
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT attempts, first_attempt_at FROM webhook_deliveries WHERE tenant_id = {} \
         AND endpoint_id = {} AND event_seq = {} AND status = 'pending' AND claimed_by = {}",
        pa.push(key.tenant_id),
        pa.push(key.endpoint_id),
        pa.push(key.event_seq),
        pa.push(worker.to_owned())
    );
    let Some(row) = query(db, q, pa.values).await?.into_iter().next() else {
        return Ok(Outcome::LostClaim);
    };
    let attempts: i32 = get(&row, 0)?;
    let first: Option<i64> = get(&row, 1)?;
    let number = attempts + 1;
    let first = first.unwrap_or_else(|| micros(attempt.started_at));
    let outcome = if attempt.delivered() {
        Outcome::Delivered
    } else {
        let elapsed_ms = (micros(now) - first) / 1000;
        if elapsed_ms >= i64::try_from(policy.give_up_after_ms).unwrap_or(i64::MAX) {
            Outcome::GaveUp
        } else {
            Outcome::Retry
        }
    };
    let (status, next) = match outcome {
        Outcome::Delivered => ("delivered", micros(now)),
        Outcome::GaveUp => ("failed", micros(now)),
        _ => {
            let delay = policy.delay_ms(
                u32::try_from(number).unwrap_or(u32::MAX),
                &mut rand::thread_rng(),
            );
            let delay_us = i64::try_from(delay.saturating_mul(1000)).unwrap_or(i64::MAX);
            ("pending", micros(now).saturating_add(delay_us))
        }
    };
    // The claim is released with the result, so a retry is due at `next` for any worker.
    let mut pa = Params::new(b);
    let q = format!(
        "UPDATE webhook_deliveries SET attempts = {}, first_attempt_at = {}, status = {}, \
         next_attempt_at = {}, claimed_until = 0, claimed_by = NULL, last_response_code = {} \
         WHERE tenant_id = {} AND endpoint_id = {} AND event_seq = {} AND claimed_by = {}",
        pa.push(number),
        pa.push(first),
        pa.push(status),
        pa.push(next),
        pa.push(attempt.response_code.map(i32::from)),
        pa.push(key.tenant_id),
        pa.push(key.endpoint_id),
        pa.push(key.event_seq),
        pa.push(worker.to_owned())
    );
    if exec(db, q, pa.values).await? != 1 {
        return Ok(Outcome::LostClaim);
    }
    let mut pa = Params::new(b);
    let row = pa.row(vec![
        key.tenant_id.into(),
        key.endpoint_id.into(),
        key.event_seq.into(),
        number.into(),
        micros(attempt.started_at).into(),
        i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX).into(),
        if attempt.delivered() {
            "delivered"
        } else {
            "failed"
        }
        .into(),
        attempt.response_code.map(i32::from).into(),
        attempt.error.clone().into(),
        worker.to_owned().into(),
    ]);
    let q = format!(
        "INSERT INTO webhook_attempts (tenant_id, endpoint_id, event_seq, attempt, started_at, \
         latency_ms, outcome, response_code, error, worker) VALUES {row}"
    );
    exec(db, q, pa.values).await?;
    count_failure(db, key, attempt.delivered(), policy, now).await?;
    Ok(outcome)
}

/// The endpoint's run of failed attempts: reset by a success, and at the policy's limit the
/// endpoint is disabled and its tenant told.
async fn count_failure<C: ConnectionTrait>(
    db: &C,
    key: DeliveryKey,
    delivered: bool,
    policy: &RetryPolicy,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let b = db.get_database_backend();
    let mut pa = Params::new(b);
    let set = if delivered {
        "consecutive_failures = 0"
    } else {
        "consecutive_failures = consecutive_failures + 1"
    };
    let q = format!(
        "UPDATE webhook_endpoints SET {set} WHERE tenant_id = {} AND id = {} \
         RETURNING consecutive_failures, status",
        pa.push(key.tenant_id),
        pa.push(key.endpoint_id)
    );
    let Some(row) = query(db, q, pa.values).await?.into_iter().next() else {
        return Ok(());
    };
    let failures: i32 = get(&row, 0)?;
    let status: String = get(&row, 1)?;
    let limit = i32::try_from(policy.disable_after_failures).unwrap_or(i32::MAX);
    if delivered || status != "enabled" || failures < limit {
        return Ok(());
    }
    let reason = format!("{failures} delivery attempts in a row failed");
    let mut pa = Params::new(b);
    let q = format!(
        "UPDATE webhook_endpoints SET status = 'disabled', disabled_at = {}, disabled_reason = {} \
         WHERE tenant_id = {} AND id = {} AND status = 'enabled'",
        pa.push(micros(now)),
        pa.push(reason.clone()),
        pa.push(key.tenant_id),
        pa.push(key.endpoint_id)
    );
    exec(db, q, pa.values).await?;
    tracing::warn!(tenant_id = %key.tenant_id, endpoint_id = %key.endpoint_id, %reason, "webhook endpoint disabled");
    let event = NewEvent::new(
        key.tenant_id,
        types::WEBHOOK_ENDPOINT_DISABLED,
        format!("webhook:{}", key.endpoint_id),
        None,
        serde_json::json!({ "webhook_id": key.endpoint_id, "reason": reason }),
    );
    super::record(db, vec![event], now).await
}

/// One attempt, as the delivery log shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttemptView {
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub latency_ms: i64,
    /// `delivered` or `failed`.
    pub outcome: String,
    pub response_code: Option<i32>,
    pub error: Option<String>,
}

/// A delivery and its attempts, as the delivery log shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryView {
    pub event_id: Uuid,
    /// The event's cursor.
    #[schema(value_type = String)]
    pub event_seq: String,
    pub object_id: String,
    /// `pending`, `delivered` or `failed` (its retry window closed).
    pub status: String,
    pub attempts: Vec<AttemptView>,
}

/// The delivery log of the tenant's endpoint: deliveries after event `after`, oldest first.
pub async fn deliveries<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    endpoint_id: Uuid,
    after: i64,
    limit: u64,
) -> Result<Vec<DeliveryView>, DbErr> {
    let b = db.get_database_backend();
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT event_seq, event_id, object_id, status FROM webhook_deliveries \
         WHERE tenant_id = {} AND endpoint_id = {} AND event_seq > {} ORDER BY event_seq LIMIT {}",
        pa.push(tenant_id),
        pa.push(endpoint_id),
        pa.push(after),
        pa.push(i64::try_from(limit.min(super::MAX_PAGE)).unwrap_or(100))
    );
    let rows = query(db, q, pa.values).await?;
    let mut out: Vec<(i64, DeliveryView)> = Vec::with_capacity(rows.len());
    for r in &rows {
        let seq: i64 = get(r, 0)?;
        out.push((
            seq,
            DeliveryView {
                event_id: get(r, 1)?,
                event_seq: seq.to_string(),
                object_id: get(r, 2)?,
                status: get(r, 3)?,
                attempts: Vec::new(),
            },
        ));
    }
    if let (Some((low, _)), Some((high, _))) = (out.first(), out.last()) {
        let mut pa = Params::new(b);
        let q = format!(
            "SELECT event_seq, attempt, started_at, latency_ms, outcome, response_code, error \
             FROM webhook_attempts WHERE tenant_id = {} AND endpoint_id = {} \
             AND event_seq >= {} AND event_seq <= {} ORDER BY event_seq, attempt",
            pa.push(tenant_id),
            pa.push(endpoint_id),
            pa.push(*low),
            pa.push(*high)
        );
        for r in query(db, q, pa.values).await? {
            let seq: i64 = get(&r, 0)?;
            let started: i64 = get(&r, 2)?;
            if let Ok(i) = out.binary_search_by_key(&seq, |(s, _)| *s) {
                out[i].1.attempts.push(AttemptView {
                    attempt: get(&r, 1)?,
                    started_at: from_micros(started).unwrap_or_default(),
                    latency_ms: get(&r, 3)?,
                    outcome: get(&r, 4)?,
                    response_code: get(&r, 5)?,
                    error: get(&r, 6)?,
                });
            }
        }
    }
    Ok(out.into_iter().map(|(_, d)| d).collect())
}

/// Sends the tenant's event `seq` to its endpoint again, with a fresh retry window: the
/// delivery back to `pending`, due now (created when the endpoint had none for it). False when
/// there is no such endpoint or event of the tenant.
pub async fn replay<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    endpoint_id: Uuid,
    seq: i64,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    if get_one(db, tenant_id, endpoint_id).await?.is_none() {
        return Ok(false);
    }
    let Some(event) = super::by_seq(db, tenant_id, seq).await? else {
        return Ok(false);
    };
    let b = db.get_database_backend();
    let mut pa = Params::new(b);
    let q = format!(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = {}, \
         first_attempt_at = NULL WHERE tenant_id = {} AND endpoint_id = {} AND event_seq = {}",
        pa.push(micros(now)),
        pa.push(tenant_id),
        pa.push(endpoint_id),
        pa.push(seq)
    );
    if exec(db, q, pa.values).await? == 1 {
        return Ok(true);
    }
    let mut pa = Params::new(b);
    let row = pa.row(vec![
        tenant_id.into(),
        endpoint_id.into(),
        seq.into(),
        event.id.into(),
        event.object_id.into(),
        "pending".into(),
        0_i32.into(),
        micros(now).into(),
        0_i64.into(),
    ]);
    let q = format!(
        "INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_seq, event_id, object_id, \
         status, attempts, next_attempt_at, claimed_until) VALUES {row}"
    );
    exec(db, q, pa.values).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn delays_grow_with_jitter_and_stop_at_the_cap() {
        let policy = RetryPolicy {
            base_delay_ms: 100,
            max_delay_ms: 1_000,
            give_up_after_ms: 10_000,
            disable_after_failures: 5,
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..100 {
            let first = policy.delay_ms(1, &mut rng);
            assert!((50..=100).contains(&first), "{first}");
            let third = policy.delay_ms(3, &mut rng);
            assert!((200..=400).contains(&third), "{third}");
            let late = policy.delay_ms(40, &mut rng);
            assert!((500..=1_000).contains(&late), "{late}");
        }
    }

    #[test]
    fn subscriptions_name_known_types() {
        let t = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            check_subscription("https://x.test/h", &t(&["plan.skipped", "eod.date.failed"]))
                .unwrap(),
            "eod.date.failed,plan.skipped"
        );
        assert_eq!(
            check_subscription("http://x.test", &t(&["*"])).unwrap(),
            "*"
        );
        assert_eq!(
            check_subscription("ftp://x", &t(&["*"])).unwrap_err().field,
            "url"
        );
        assert_eq!(
            check_subscription("https://x", &t(&["plan.%"]))
                .unwrap_err()
                .field,
            "event_types"
        );
    }
}
