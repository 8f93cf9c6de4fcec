//! Events and webhooks (issue 26, items 1–3): the transactional outbox and what delivers it.
//!
//! * `events`: one row per thing that happened to a tenant's objects, written by
//!   `wraps::events` in the transaction of the change it describes. `seq` is the tenant's
//!   cursor (1, 2, 3, … per tenant, in commit order: see `event_cursors`); `id` a UUID v7 for
//!   de-duplication; `object_id` the object whose events are delivered in order; `payload`
//!   JSON text naming objects by id, never amounts as floats.
//! * `event_cursors`: per tenant, the last `seq` handed out. Taking the next one updates this
//!   row, which a writer then holds until it commits: so `seq` grows in commit order and a
//!   reader that resumes after cursor N can never miss an event that commits later with a
//!   lower number.
//! * `event_relay_cursors`: per tenant, the last `seq` the optional broker relay published.
//! * `webhook_endpoints`, `webhook_deliveries`, `webhook_attempts`: the endpoints a tenant
//!   registered, one delivery per (endpoint, event) fanned out with the event, and every
//!   attempt of it. Written by `wraps::events::webhooks`.
//!
//! Every table is distributed by tenant on Citus and carries `tenant_id` in every key and
//! foreign key (deploy/SCALING.md).

use sea_orm_migration::prelude::*;

use crate::{citus, sql};

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "CREATE TABLE event_cursors (
        tenant_id {uuid} NOT NULL PRIMARY KEY,
        last_seq BIGINT NOT NULL CHECK (last_seq >= 0)
    )",
    "CREATE TABLE event_relay_cursors (
        tenant_id {uuid} NOT NULL PRIMARY KEY,
        last_seq BIGINT NOT NULL CHECK (last_seq >= 0)
    )",
    "CREATE TABLE events (
        tenant_id {uuid} NOT NULL,
        seq BIGINT NOT NULL CHECK (seq > 0),
        id {uuid} NOT NULL,
        type TEXT NOT NULL CHECK (length(type) BETWEEN 1 AND 64),
        object_id TEXT NOT NULL CHECK (length(object_id) BETWEEN 1 AND 200),
        occurred_at BIGINT NOT NULL,
        business_date DATE,
        payload TEXT NOT NULL,
        PRIMARY KEY (tenant_id, seq),
        UNIQUE (tenant_id, id)
    )",
    "CREATE TABLE webhook_endpoints (
        tenant_id {uuid} NOT NULL,
        id {uuid} NOT NULL,
        url TEXT NOT NULL CHECK (length(url) BETWEEN 1 AND 2000),
        event_types TEXT NOT NULL CHECK (length(event_types) BETWEEN 1 AND 4000),
        secret TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('enabled', 'disabled', 'deleted')),
        consecutive_failures INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
        created_at BIGINT NOT NULL,
        disabled_at BIGINT,
        disabled_reason TEXT,
        PRIMARY KEY (tenant_id, id)
    )",
    "CREATE TABLE webhook_deliveries (
        tenant_id {uuid} NOT NULL,
        endpoint_id {uuid} NOT NULL,
        event_seq BIGINT NOT NULL,
        event_id {uuid} NOT NULL,
        object_id TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        next_attempt_at BIGINT NOT NULL,
        first_attempt_at BIGINT,
        claimed_until BIGINT NOT NULL DEFAULT 0,
        claimed_by TEXT,
        last_response_code INTEGER,
        PRIMARY KEY (tenant_id, endpoint_id, event_seq),
        FOREIGN KEY (tenant_id, endpoint_id) REFERENCES webhook_endpoints (tenant_id, id),
        FOREIGN KEY (tenant_id, event_seq) REFERENCES events (tenant_id, seq)
    )",
    "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at)",
    "CREATE INDEX webhook_deliveries_by_object ON webhook_deliveries \
        (tenant_id, endpoint_id, object_id, event_seq)",
    "CREATE TABLE webhook_attempts (
        tenant_id {uuid} NOT NULL,
        endpoint_id {uuid} NOT NULL,
        event_seq BIGINT NOT NULL,
        attempt INTEGER NOT NULL CHECK (attempt > 0),
        started_at BIGINT NOT NULL,
        latency_ms BIGINT NOT NULL CHECK (latency_ms >= 0),
        outcome TEXT NOT NULL CHECK (outcome IN ('delivered', 'failed')),
        response_code INTEGER,
        error TEXT,
        worker TEXT NOT NULL,
        PRIMARY KEY (tenant_id, endpoint_id, event_seq, attempt),
        FOREIGN KEY (tenant_id, endpoint_id, event_seq)
            REFERENCES webhook_deliveries (tenant_id, endpoint_id, event_seq)
    )",
];

const DOWN: &[&str] = &[
    "DROP TABLE webhook_attempts",
    "DROP TABLE webhook_deliveries",
    "DROP TABLE webhook_endpoints",
    "DROP TABLE events",
    "DROP TABLE event_relay_cursors",
    "DROP TABLE event_cursors",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        sql::run(db, UP).await?;
        // Tables created after the Citus migration place themselves (migration 000022).
        if citus::is_citus(db).await? {
            citus::distribute(db).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run(manager.get_connection(), DOWN).await
    }
}
