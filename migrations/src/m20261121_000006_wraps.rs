//! Customers, wraps, the movements that wait for end of day, plans, and the store of
//! idempotent answers.
//!
//! Money itself lives in the ledger (`ledger_accounts`, one cash account per customer and
//! currency, one cash account and one unit account per instrument per wrap); these tables
//! hold who and what, never a balance.
//!
//! Rules written into the schema:
//! * every row belongs to a distributor (`tenant_id`), and wraps, movements and plans point
//!   at their customer and wrap through composite keys `(tenant_id, …)`, so no row can
//!   reference another distributor's customer;
//! * an external reference is unique within its distributor;
//! * amounts are BIGINT minor units (> 0), percentages exact decimal text;
//! * an idempotency key is unique per tenant and keeps the first answer.

use sea_orm_migration::prelude::*;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "CREATE TABLE customers (
        tenant_id {uuid} NOT NULL,
        id {uuid} NOT NULL,
        external_ref TEXT NOT NULL CHECK (length(external_ref) BETWEEN 1 AND 100),
        name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
        date_of_birth DATE NULL,
        risk_tolerance INTEGER NOT NULL CHECK (risk_tolerance BETWEEN 1 AND 5),
        status TEXT NOT NULL CHECK (status IN ('active', 'closed')),
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, external_ref)
    )",
    "CREATE TABLE wraps (
        tenant_id {uuid} NOT NULL,
        id {uuid} NOT NULL,
        customer_id {uuid} NOT NULL,
        agreement_id {uuid} NOT NULL,
        manager_tenant_id {uuid} NOT NULL,
        strategy_id {uuid} NOT NULL,
        currency TEXT NOT NULL REFERENCES ledger_assets (code),
        -- The currency's scale (assets are immutable), so amounts read back without a lookup.
        currency_scale INTEGER NOT NULL CHECK (currency_scale BETWEEN 0 AND 18),
        name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
        status TEXT NOT NULL CHECK (status IN ('open', 'active', 'closing', 'closed')),
        goal_name TEXT NULL CHECK (length(goal_name) BETWEEN 1 AND 200),
        goal_target_amount BIGINT NULL CHECK (goal_target_amount > 0),
        goal_target_date DATE NULL,
        cash_account_id {uuid} NOT NULL,
        opened_at BIGINT NOT NULL,
        closed_at BIGINT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id),
        FOREIGN KEY (tenant_id, cash_account_id) REFERENCES ledger_accounts (tenant_id, id),
        CHECK ((goal_name IS NULL) = (goal_target_amount IS NULL)
            AND (goal_name IS NULL) = (goal_target_date IS NULL)),
        CHECK ((status = 'closed') = (closed_at IS NOT NULL))
    )",
    "CREATE INDEX wraps_by_customer ON wraps (tenant_id, customer_id, id)",
    "CREATE INDEX wraps_by_strategy ON wraps (manager_tenant_id, strategy_id, id)",
    // A withdrawal, switch or close asks end of day to sell units; until then it waits here.
    "CREATE TABLE wrap_movements (
        tenant_id {uuid} NOT NULL,
        id {uuid} NOT NULL,
        wrap_id {uuid} NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('withdrawal', 'switch', 'close')),
        amount BIGINT NULL CHECK (amount > 0),
        destination_wrap_id {uuid} NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'fulfilled', 'cancelled')),
        requested_at BIGINT NOT NULL,
        resolved_at BIGINT NULL,
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, wrap_id) REFERENCES wraps (tenant_id, id),
        FOREIGN KEY (tenant_id, destination_wrap_id) REFERENCES wraps (tenant_id, id),
        CHECK ((kind = 'switch') = (destination_wrap_id IS NOT NULL)),
        CHECK (kind <> 'close' OR amount IS NULL)
    )",
    "CREATE INDEX wrap_movements_by_wrap ON wrap_movements (tenant_id, wrap_id, status)",
    "CREATE TABLE wrap_plans (
        tenant_id {uuid} NOT NULL,
        id {uuid} NOT NULL,
        wrap_id {uuid} NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('contribution', 'withdrawal')),
        amount BIGINT NULL CHECK (amount > 0),
        percentage TEXT NULL,
        frequency TEXT NOT NULL CHECK (frequency IN ('monthly', 'quarterly', 'yearly')),
        day_of_month INTEGER NOT NULL CHECK (day_of_month BETWEEN 1 AND 28),
        start_date DATE NOT NULL,
        end_date DATE NULL,
        status TEXT NOT NULL CHECK (status IN ('active', 'cancelled')),
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, wrap_id) REFERENCES wraps (tenant_id, id),
        CHECK ((amount IS NULL) <> (percentage IS NULL)),
        CHECK (kind = 'withdrawal' OR percentage IS NULL),
        CHECK (end_date IS NULL OR end_date >= start_date)
    )",
    "CREATE INDEX wrap_plans_by_wrap ON wrap_plans (tenant_id, wrap_id)",
    // The first answer to each Idempotency-Key, replayed for a retry of the same request.
    "CREATE TABLE idempotency_keys (
        tenant_id {uuid} NOT NULL,
        key TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
        request_hash TEXT NOT NULL,
        status_code INTEGER NOT NULL,
        response TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, key)
    )",
];

const DOWN: &[&str] = &[
    "DROP TABLE idempotency_keys",
    "DROP TABLE wrap_plans",
    "DROP TABLE wrap_movements",
    "DROP TABLE wraps",
    "DROP TABLE customers",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run(manager.get_connection(), UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run(manager.get_connection(), DOWN).await
    }
}
