//! Japanese investment trusts' own terms and each holder's cost (issue 25, items 2, 4 and 6):
//!
//! * `fund_terms` (reference data, no tenant: a fund's prospectus terms are the same for
//!   every distributor): per instrument, term (`redemption_levy`: 信託財産留保額, a rate on
//!   the value redeemed; `expense_ratio`: 信託報酬, an annual rate) and effective date, the
//!   rate as exact decimal TEXT. The rate in effect on a date is the latest effective on or
//!   before it. Written by `wraps::funds::store`.
//! * `trade_allocations.levy`: the redemption levy deducted from a sale's proceeds (its
//!   `amount` is then what the wrap received, net of it).
//! * `individual_costs` (個別元本): per distributor, customer and fund, the units the cost
//!   covers and the moving-average cost per quote unit (10,000 units), in minor units of the
//!   currency. Written by `wraps::funds::store`, in the allocation step's transaction.
//! * `realised_gains`: one row per filled sale (per order): units, proceeds (net of the levy),
//!   the levy, the cost of the units sold, the gain (proceeds − cost, may be negative) and the
//!   cost per quote unit used. Written by `wraps::funds::store`.
//!
//! `fund_terms` is a reference table on Citus (migrations/citus/tables.txt); both tenant
//! tables are distributed by tenant and carry `tenant_id` in
//! every key and foreign key (deploy/SCALING.md).

use sea_orm_migration::prelude::*;

use crate::{citus, sql};

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "CREATE TABLE fund_terms (
        instrument_code TEXT NOT NULL REFERENCES instruments (code),
        term TEXT NOT NULL CHECK (term IN ('redemption_levy', 'expense_ratio')),
        effective_date DATE NOT NULL,
        rate TEXT NOT NULL CHECK (length(rate) BETWEEN 1 AND 40),
        set_by TEXT NOT NULL,
        set_at BIGINT NOT NULL,
        PRIMARY KEY (instrument_code, term, effective_date)
    )",
    "ALTER TABLE trade_allocations ADD COLUMN levy BIGINT NOT NULL DEFAULT 0 CHECK (levy >= 0)",
    "CREATE TABLE individual_costs (
        tenant_id {uuid} NOT NULL,
        customer_id {uuid} NOT NULL,
        instrument TEXT NOT NULL REFERENCES ledger_assets (code),
        units BIGINT NOT NULL CHECK (units >= 0),
        cost_per_quote BIGINT NOT NULL CHECK (cost_per_quote >= 0),
        updated_date DATE NOT NULL,
        PRIMARY KEY (tenant_id, customer_id, instrument),
        FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
    )",
    "CREATE TABLE realised_gains (
        tenant_id {uuid} NOT NULL,
        order_id {uuid} NOT NULL,
        business_date DATE NOT NULL,
        customer_id {uuid} NOT NULL,
        wrap_id {uuid} NOT NULL,
        instrument TEXT NOT NULL REFERENCES ledger_assets (code),
        units BIGINT NOT NULL CHECK (units > 0),
        proceeds BIGINT NOT NULL CHECK (proceeds >= 0),
        levy BIGINT NOT NULL CHECK (levy >= 0),
        cost BIGINT NOT NULL CHECK (cost >= 0),
        gain BIGINT NOT NULL,
        cost_per_quote BIGINT NOT NULL CHECK (cost_per_quote >= 0),
        PRIMARY KEY (tenant_id, order_id),
        FOREIGN KEY (tenant_id, order_id) REFERENCES trade_orders (tenant_id, id),
        FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id),
        FOREIGN KEY (tenant_id, wrap_id) REFERENCES wraps (tenant_id, id),
        CHECK (gain = proceeds - cost)
    )",
    "CREATE INDEX realised_gains_by_customer ON realised_gains (tenant_id, customer_id, business_date)",
    "CREATE INDEX realised_gains_by_wrap ON realised_gains (tenant_id, wrap_id, business_date)",
];

const DOWN: &[&str] = &[
    "DROP TABLE realised_gains",
    "DROP TABLE individual_costs",
    "ALTER TABLE trade_allocations DROP COLUMN levy",
    "DROP TABLE fund_terms",
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
