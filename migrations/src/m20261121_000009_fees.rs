//! End of day, steps `accrual` and `billing`: the fee state of every wrap, the daily accrual
//! history, collections, performance-fee crystallisations and the platform's monthly invoices
//! (ledger/wraps/src/eod/fees.rs and billing.rs own the arithmetic); and the fees deducted from a
//! snapshot's NAV.
//!
//! Rules written into the schema:
//! * money is BIGINT minor units; the sub-unit parts of accruals are exact decimal TEXT, kept
//!   multiplied by 365 (`*_x365`: a daily rate ÷ 365 is a repeating decimal, its numerator is
//!   not), each in [0, 365);
//! * every row points at its wrap through the composite key `(tenant_id, wrap_id)`;
//! * one accrual row per wrap and date, one collection row per wrap, date and kind, one
//!   crystallisation row per wrap and date, one invoice per distributor and month:
//!   primary keys, so a re-run finds its rows instead of adding more;
//! * a collection's parts sum exactly to the fee collected, and what was due is either
//!   collected or still uncollected (CHECKs);
//! * a snapshot's `nav = cash + units_value − fees_unpaid` (replacing the check of
//!   `m20261121_000007_eod`: on SQLite, by rebuilding the table, which nothing references).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    // One row per wrap that has accrued a fee. `owed_*`: posted to `accrued:wrap:{id}`, not
    // collected (since `m20261206_000017_fee_unposted`, also accrued and not posted yet);
    // `due_*`: the part of it billed at a period end (collected as cash allows).
    // `owed_at_start` is the owed total before the first change on `as_of`, so valuation
    // redone on that date deducts what it deducted the first time.
    "CREATE TABLE wrap_fee_state (
        tenant_id {uuid} NOT NULL,
        wrap_id {uuid} NOT NULL,
        account_id {uuid} NOT NULL,
        currency TEXT NOT NULL REFERENCES ledger_assets (code),
        fee_carry_x365 TEXT NOT NULL,
        tax_carry_x365 TEXT NOT NULL,
        fee_owed BIGINT NOT NULL CHECK (fee_owed >= 0),
        tax_owed BIGINT NOT NULL CHECK (tax_owed >= 0),
        perf_owed BIGINT NOT NULL CHECK (perf_owed >= 0),
        perf_tax_owed BIGINT NOT NULL CHECK (perf_tax_owed >= 0),
        fee_due BIGINT NOT NULL CHECK (fee_due >= 0 AND fee_due <= fee_owed),
        tax_due BIGINT NOT NULL CHECK (tax_due >= 0 AND tax_due <= tax_owed),
        perf_due BIGINT NOT NULL CHECK (perf_due >= 0 AND perf_due <= perf_owed),
        perf_tax_due BIGINT NOT NULL CHECK (perf_tax_due >= 0 AND perf_tax_due <= perf_tax_owed),
        owed_at_start BIGINT NOT NULL CHECK (owed_at_start >= 0),
        as_of DATE NOT NULL,
        hwm BIGINT NOT NULL,
        hwm_flows BIGINT NOT NULL,
        hwm_date DATE NOT NULL,
        PRIMARY KEY (tenant_id, wrap_id),
        FOREIGN KEY (tenant_id, wrap_id) REFERENCES wraps (tenant_id, id),
        FOREIGN KEY (tenant_id, account_id) REFERENCES ledger_accounts (tenant_id, id)
    )",
    // The day's accrual of one wrap: `annual_fee` is the blended annual fee on `nav` (exact,
    // minor units), so the day's exact fee is annual_fee ÷ 365 and its tax tax_x365 ÷ 365.
    "CREATE TABLE fee_accruals (
        tenant_id {uuid} NOT NULL,
        wrap_id {uuid} NOT NULL,
        business_date DATE NOT NULL,
        nav BIGINT NOT NULL,
        annual_fee TEXT NOT NULL,
        tax_x365 TEXT NOT NULL,
        fee_posted BIGINT NOT NULL CHECK (fee_posted >= 0),
        tax_posted BIGINT NOT NULL CHECK (tax_posted >= 0),
        fee_carry_x365 TEXT NOT NULL,
        tax_carry_x365 TEXT NOT NULL,
        PRIMARY KEY (tenant_id, wrap_id, business_date),
        FOREIGN KEY (tenant_id, wrap_id) REFERENCES wraps (tenant_id, id)
    )",
    "CREATE INDEX fee_accruals_by_date ON fee_accruals (business_date, tenant_id)",
    // What billing collected on a date (`kind`: management or performance fee).
    "CREATE TABLE fee_collections (
        tenant_id {uuid} NOT NULL,
        wrap_id {uuid} NOT NULL,
        business_date DATE NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('management', 'performance')),
        period_end BOOLEAN NOT NULL,
        manager_tenant_id {uuid} NOT NULL,
        currency TEXT NOT NULL REFERENCES ledger_assets (code),
        fee_due BIGINT NOT NULL CHECK (fee_due >= 0),
        tax_due BIGINT NOT NULL CHECK (tax_due >= 0),
        fee_collected BIGINT NOT NULL CHECK (fee_collected >= 0 AND fee_collected <= fee_due),
        tax_collected BIGINT NOT NULL CHECK (tax_collected >= 0 AND tax_collected <= tax_due),
        channel BIGINT NOT NULL CHECK (channel >= 0),
        manager BIGINT NOT NULL CHECK (manager >= 0),
        platform BIGINT NOT NULL CHECK (platform >= 0),
        uncollected BIGINT NOT NULL,
        entry_id {uuid} NULL,
        PRIMARY KEY (tenant_id, wrap_id, business_date, kind),
        FOREIGN KEY (tenant_id, wrap_id) REFERENCES wraps (tenant_id, id),
        FOREIGN KEY (tenant_id, entry_id) REFERENCES ledger_entries (tenant_id, id),
        CHECK (channel + manager + platform = fee_collected),
        CHECK (uncollected = fee_due + tax_due - fee_collected - tax_collected)
    )",
    "CREATE INDEX fee_collections_by_date ON fee_collections (business_date, tenant_id)",
    // Every evaluation of a performance fee at crystallisation, charged or not.
    "CREATE TABLE performance_fees (
        tenant_id {uuid} NOT NULL,
        wrap_id {uuid} NOT NULL,
        business_date DATE NOT NULL,
        nav BIGINT NOT NULL,
        hwm BIGINT NOT NULL,
        hwm_flows BIGINT NOT NULL,
        gain BIGINT NOT NULL,
        rate TEXT NOT NULL,
        fee BIGINT NOT NULL CHECK (fee >= 0),
        tax BIGINT NOT NULL CHECK (tax >= 0),
        new_hwm BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, wrap_id, business_date),
        FOREIGN KEY (tenant_id, wrap_id) REFERENCES wraps (tenant_id, id),
        CHECK (gain = nav - hwm - hwm_flows),
        CHECK (gain > 0 OR fee = 0)
    )",
    // The platform's monthly fee, charged to a distributor at each month end.
    "CREATE TABLE platform_invoices (
        tenant_id {uuid} NOT NULL REFERENCES tenants (id),
        period_end DATE NOT NULL,
        amount BIGINT NOT NULL CHECK (amount > 0),
        currency TEXT NOT NULL REFERENCES ledger_assets (code),
        fee_effective_date DATE NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, period_end)
    )",
];

const SNAPSHOTS_UP_POSTGRES: &[&str] = &[
    "ALTER TABLE wrap_snapshots ADD COLUMN fees_unpaid BIGINT NOT NULL DEFAULT 0 \
        CHECK (fees_unpaid >= 0)",
    "ALTER TABLE wrap_snapshots DROP CONSTRAINT wrap_snapshots_check",
    "ALTER TABLE wrap_snapshots ADD CONSTRAINT wrap_snapshots_nav \
        CHECK (nav = cash + units_value - fees_unpaid)",
];

const SNAPSHOTS_DOWN_POSTGRES: &[&str] = &[
    "ALTER TABLE wrap_snapshots DROP CONSTRAINT wrap_snapshots_nav",
    "ALTER TABLE wrap_snapshots DROP COLUMN fees_unpaid",
    "ALTER TABLE wrap_snapshots ADD CONSTRAINT wrap_snapshots_check \
        CHECK (nav = cash + units_value)",
];

/// SQLite cannot change a CHECK in place: the table is rebuilt.
fn snapshots_sqlite(with_fees: bool) -> Vec<String> {
    let (fees_col, nav_check) = if with_fees {
        (
            "fees_unpaid BIGINT NOT NULL DEFAULT 0 CHECK (fees_unpaid >= 0),",
            "CHECK (nav = cash + units_value - fees_unpaid)",
        )
    } else {
        ("", "CHECK (nav = cash + units_value)")
    };
    let cols = "tenant_id, wrap_id, business_date, currency, cash, units_value, nav, \
                contributions, withdrawals, stale_prices";
    vec![
        format!(
            "CREATE TABLE wrap_snapshots_new (
                tenant_id BLOB NOT NULL,
                wrap_id BLOB NOT NULL,
                business_date DATE NOT NULL,
                currency TEXT NOT NULL REFERENCES ledger_assets (code),
                cash BIGINT NOT NULL,
                units_value BIGINT NOT NULL CHECK (units_value >= 0),
                nav BIGINT NOT NULL,
                contributions BIGINT NOT NULL CHECK (contributions >= 0),
                withdrawals BIGINT NOT NULL CHECK (withdrawals >= 0),
                stale_prices BOOLEAN NOT NULL,
                {fees_col}
                PRIMARY KEY (tenant_id, wrap_id, business_date),
                FOREIGN KEY (tenant_id, wrap_id) REFERENCES wraps (tenant_id, id),
                {nav_check}
            )"
        ),
        // Going down, snapshots that deducted fees no longer satisfy the old check: their NAV
        // is restored to cash + units (the fees column is dropped with them).
        format!(
            "INSERT INTO wrap_snapshots_new ({cols}) SELECT tenant_id, wrap_id, \
             business_date, currency, cash, units_value, {}, contributions, withdrawals, \
             stale_prices FROM wrap_snapshots",
            if with_fees {
                "nav"
            } else {
                "cash + units_value"
            }
        ),
        "DROP TABLE wrap_snapshots".to_owned(),
        "ALTER TABLE wrap_snapshots_new RENAME TO wrap_snapshots".to_owned(),
    ]
}

const DOWN: &[&str] = &[
    "DROP TABLE platform_invoices",
    "DROP TABLE performance_fees",
    "DROP TABLE fee_collections",
    "DROP TABLE fee_accruals",
    "DROP TABLE wrap_fee_state",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// In one transaction on SQLite too (sea-orm runs SQLite migrations without one by
    /// default, statement by statement on pooled connections): the snapshot table's rebuild
    /// (create, copy, drop, rename) must be seen whole, on one connection, or not at all.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        sql::run(db, UP).await?;
        match db.get_database_backend() {
            DbBackend::Postgres => sql::run(db, SNAPSHOTS_UP_POSTGRES).await,
            _ => {
                let s = snapshots_sqlite(true);
                sql::run(db, &s).await
            }
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match db.get_database_backend() {
            DbBackend::Postgres => {
                // Snapshots that deducted fees would break the old check: restore their NAV.
                db.execute_unprepared(
                    "UPDATE wrap_snapshots SET nav = cash + units_value WHERE fees_unpaid <> 0",
                )
                .await?;
                sql::run(db, SNAPSHOTS_DOWN_POSTGRES).await?;
            }
            _ => {
                let s = snapshots_sqlite(false);
                sql::run(db, &s).await?;
            }
        }
        sql::run(db, DOWN).await
    }
}
