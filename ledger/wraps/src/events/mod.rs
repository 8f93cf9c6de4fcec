//! The transactional outbox: what happened to a tenant's objects, written in the same
//! transaction as the change it describes, read by partners at `/v1/events`, delivered by
//! webhooks ([`webhooks`]) and optionally relayed to a broker. This module owns `events` and
//! `event_cursors`; it never sends anything itself.
//!
//! Invariants, and the tests that try to break them:
//! * **no event without its change, no change without its event**: [`record`] takes the
//!   caller's transaction and writes nothing else; a rolled-back change leaves no event.
//!   Tried by `api/tests/http/events.rs::the_external_execution_flow_needs_no_polling` (a
//!   refused proposal);
//! * **one cursor per tenant, in commit order**: each event gets the tenant's next `seq`
//!   (1, 2, 3, …) from its `event_cursors` row, which the writer then holds until it commits,
//!   so a reader resuming after cursor N never misses an event committed later with a lower
//!   number. Tried by the same test (numbers 1…n with no gap, every cursor resumed) and
//!   `api/tests/http/webhooks.rs::two_workers_deliver_each_event_once`;
//! * **a tenant reads only its own events**, and a manager's events never name a customer
//!   (the agreement and strategy events are the only ones a manager gets, and they name
//!   agreements, strategies and distributors). Tried by
//!   `api/tests/http/events.rs::the_external_execution_flow_needs_no_polling` (another bank,
//!   the manager) and `api/tests/http/webhooks.rs::deliveries_are_signed_retried_and_in_order`.
//!
//! **Locks** (the platform's one order, `ledger/src/store/work.rs`): a tenant's
//! `event_cursors` row is the *last* lock a transaction takes: after its books and business
//! rows, and, when one transaction records events of several tenants (end of day), in
//! `tenant_id` order ([`record`] sorts them). So every caller records its events at the end
//! of its work, after its last lock.

pub mod webhooks;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use ledger::sql::{INSERT_ROWS, Params, exec, from_micros, get, micros, query};
use sea_orm::{ConnectionTrait, DbErr, Value};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// The event types the platform emits, each named once here.
pub mod types {
    pub const EOD_DATE_FINISHED: &str = "eod.date.finished";
    pub const EOD_DATE_FAILED: &str = "eod.date.failed";
    pub const INSTRUCTION_CREATED: &str = "instruction.created";
    pub const INSTRUCTION_COMPLETED: &str = "instruction.completed";
    pub const PLAN_EXECUTED: &str = "plan.executed";
    pub const PLAN_SKIPPED: &str = "plan.skipped";
    pub const MOVEMENT_PAID: &str = "movement.paid";
    pub const WRAP_CLOSED: &str = "wrap.closed";
    pub const FEE_COLLECTED: &str = "fee.collected";
    pub const FEE_UNCOLLECTED: &str = "fee.uncollected";
    pub const AGREEMENT_PROPOSED: &str = "agreement.proposed";
    pub const AGREEMENT_ACCEPTED: &str = "agreement.accepted";
    pub const STRATEGY_VERSION_PUBLISHED: &str = "strategy.version.published";
    pub const WEBHOOK_ENDPOINT_DISABLED: &str = "webhook.endpoint.disabled";
    /// A wrap's goal probability fell sharply or below one half
    /// (`crate::eod::goals::dropped`).
    pub const GOAL_PROBABILITY_DROPPED: &str = "goal.probability.dropped";
    /// A custodian or bank statement that does not match the omnibus holdings of the books
    /// (the platform's event, at upload).
    pub const RECONCILIATION_BREAK: &str = "reconciliation.break";

    /// Every type a webhook may subscribe to.
    pub const ALL: &[&str] = &[
        EOD_DATE_FINISHED,
        EOD_DATE_FAILED,
        INSTRUCTION_CREATED,
        INSTRUCTION_COMPLETED,
        PLAN_EXECUTED,
        PLAN_SKIPPED,
        MOVEMENT_PAID,
        WRAP_CLOSED,
        FEE_COLLECTED,
        FEE_UNCOLLECTED,
        AGREEMENT_PROPOSED,
        AGREEMENT_ACCEPTED,
        STRATEGY_VERSION_PUBLISHED,
        WEBHOOK_ENDPOINT_DISABLED,
        GOAL_PROBABILITY_DROPPED,
        RECONCILIATION_BREAK,
    ];
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub tenant_id: Uuid,
    /// One of [`types`].
    pub kind: &'static str,
    /// The object whose events are delivered in order (`instruction:<id>`, `wrap:<id>`).
    pub object_id: String,
    /// The business date the change belongs to, when it has one.
    pub business_date: Option<NaiveDate>,
    /// Names objects by id; amounts as decimal strings.
    pub payload: serde_json::Value,
}

impl NewEvent {
    pub fn new(
        tenant_id: Uuid,
        kind: &'static str,
        object_id: String,
        business_date: Option<NaiveDate>,
        payload: serde_json::Value,
    ) -> Self {
        debug_assert!(types::ALL.contains(&kind), "unknown event type {kind}");
        Self {
            tenant_id,
            kind,
            object_id,
            business_date,
            payload,
        }
    }
}

/// A recorded event, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Event {
    /// Unique; the `webhook-id` of its deliveries, for de-duplication.
    pub id: Uuid,
    /// The tenant's cursor: resume with `?after=` this.
    #[schema(value_type = String, example = "42")]
    #[serde(with = "seq_text")]
    pub seq: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub object_id: String,
    pub occurred_at: DateTime<Utc>,
    pub business_date: Option<NaiveDate>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

/// The cursor travels as text (a 64-bit integer is not safe in every client's JSON).
mod seq_text {
    use serde::Serializer;

    pub fn serialize<S: Serializer>(seq: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&seq.to_string())
    }
}

/// Records `events` in `db` (the caller's transaction, holding its change). Call it after the
/// transaction's last lock (module docs). Also fans each event out to the tenant's enabled
/// webhook endpoints that subscribe to it ([`webhooks::fan_out`]).
pub async fn record<C: ConnectionTrait>(
    db: &C,
    events: Vec<NewEvent>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    // BTreeMap: tenants in id order, the lock order of their cursors.
    let mut by_tenant: BTreeMap<Uuid, Vec<NewEvent>> = BTreeMap::new();
    for event in events {
        by_tenant.entry(event.tenant_id).or_default().push(event);
    }
    for (tenant_id, events) in by_tenant {
        record_tenant(db, tenant_id, events, now).await?;
    }
    Ok(())
}

async fn record_tenant<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    events: Vec<NewEvent>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let count = i64::try_from(events.len()).map_err(|_| DbErr::Custom("too many events".into()))?;
    if count == 0 {
        return Ok(());
    }
    let b = db.get_database_backend();
    let mut pa = Params::new(b);
    let q = format!(
        "INSERT INTO event_cursors (tenant_id, last_seq) VALUES ({}, {}) \
         ON CONFLICT (tenant_id) DO UPDATE SET last_seq = event_cursors.last_seq + excluded.last_seq \
         RETURNING last_seq",
        pa.push(tenant_id),
        pa.push(count)
    );
    let rows = query(db, q, pa.values).await?;
    let last: i64 = match rows.first() {
        Some(r) => get(r, 0)?,
        None => return Err(DbErr::Custom("event cursor: no row returned".into())),
    };
    let first = last - count + 1;
    let at = micros(now);
    let mut seq = first;
    for chunk in events.chunks(INSERT_ROWS) {
        let mut pa = Params::new(b);
        let mut rows = Vec::with_capacity(chunk.len());
        for e in chunk {
            rows.push(pa.row(vec![
                tenant_id.into(),
                seq.into(),
                Uuid::now_v7().into(),
                e.kind.into(),
                e.object_id.clone().into(),
                at.into(),
                Value::from(e.business_date),
                e.payload.to_string().into(),
            ]));
            seq += 1;
        }
        let q = format!(
            "INSERT INTO events (tenant_id, seq, id, type, object_id, occurred_at, business_date, \
             payload) VALUES {}",
            rows.join(", ")
        );
        exec(db, q, pa.values).await?;
    }
    debug_assert_eq!(seq, last + 1, "every event took one seq");
    webhooks::fan_out(db, tenant_id, first, last).await
}

/// Records one event of `kind` for every active tenant: the platform's with
/// `platform_payload`, every other with `partner_payload` (end of day is the platform's, and
/// its figures span tenants, so partners are only told the date and the step).
pub async fn record_for_every_tenant<C: ConnectionTrait>(
    db: &C,
    kind: &'static str,
    object_id: String,
    business_date: Option<NaiveDate>,
    platform_payload: serde_json::Value,
    partner_payload: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let rows = query(
        db,
        "SELECT id, kind FROM tenants WHERE status = 'active'".to_owned(),
        Vec::new(),
    )
    .await?;
    let mut events = Vec::with_capacity(rows.len());
    for r in &rows {
        let tenant_id: Uuid = get(r, 0)?;
        let tenant_kind: String = get(r, 1)?;
        let payload = if tenant_kind == "platform" {
            platform_payload.clone()
        } else {
            partner_payload.clone()
        };
        events.push(NewEvent::new(
            tenant_id,
            kind,
            object_id.clone(),
            business_date,
            payload,
        ));
    }
    record(db, events, now).await
}

/// Most events one read answers.
pub const MAX_PAGE: u64 = 1_000;

/// The tenant's events after cursor `after`, oldest first, at most `limit`.
pub async fn after<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    after: i64,
    limit: u64,
) -> Result<Vec<Event>, DbErr> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "SELECT id, seq, type, object_id, occurred_at, business_date, payload FROM events \
         WHERE tenant_id = {} AND seq > {} ORDER BY seq LIMIT {}",
        pa.push(tenant_id),
        pa.push(after),
        pa.push(i64::try_from(limit.min(MAX_PAGE)).unwrap_or(100))
    );
    query(db, q, pa.values)
        .await?
        .iter()
        .map(event_from_row)
        .collect()
}

/// One event of the tenant by its cursor.
pub async fn by_seq<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    seq: i64,
) -> Result<Option<Event>, DbErr> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "SELECT id, seq, type, object_id, occurred_at, business_date, payload FROM events \
         WHERE tenant_id = {} AND seq = {}",
        pa.push(tenant_id),
        pa.push(seq)
    );
    query(db, q, pa.values)
        .await?
        .first()
        .map(event_from_row)
        .transpose()
}

/// Per tenant with events: (tenant, last seq written, last seq the broker relay published).
pub async fn relay_positions<C: ConnectionTrait>(db: &C) -> Result<Vec<(Uuid, i64, i64)>, DbErr> {
    let rows = query(
        db,
        "SELECT c.tenant_id, c.last_seq, COALESCE(r.last_seq, 0) FROM event_cursors c \
         LEFT JOIN event_relay_cursors r ON r.tenant_id = c.tenant_id ORDER BY c.tenant_id"
            .to_owned(),
        Vec::new(),
    )
    .await?;
    rows.iter()
        .map(|r| Ok((get(r, 0)?, get(r, 1)?, get(r, 2)?)))
        .collect()
}

/// Records that the broker relay published the tenant's events up to `seq` (never moves
/// back: two relays racing both leave the higher).
pub async fn relay_published<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    seq: i64,
) -> Result<(), DbErr> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "INSERT INTO event_relay_cursors (tenant_id, last_seq) VALUES ({}, {}) \
         ON CONFLICT (tenant_id) DO UPDATE SET last_seq = excluded.last_seq \
         WHERE event_relay_cursors.last_seq < excluded.last_seq",
        pa.push(tenant_id),
        pa.push(seq)
    );
    exec(db, q, pa.values).await?;
    Ok(())
}

fn event_from_row(r: &sea_orm::QueryResult) -> Result<Event, DbErr> {
    let at: i64 = get(r, 4)?;
    let payload: String = get(r, 6)?;
    Ok(Event {
        id: get(r, 0)?,
        seq: get(r, 1)?,
        kind: get(r, 2)?,
        object_id: get(r, 3)?,
        occurred_at: from_micros(at).ok_or_else(|| DbErr::Custom(format!("event time {at}")))?,
        business_date: get(r, 5)?,
        payload: serde_json::from_str(&payload)
            .map_err(|e| DbErr::Custom(format!("event payload: {e}")))?,
    })
}
