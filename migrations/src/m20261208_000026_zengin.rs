//! Zengin files to and from the bank (issue 25, item 8), written by `wraps::zengin::store`:
//!
//! * `customer_bank_accounts`: per distributor and customer, the account direct debits are
//!   drawn from: bank code (4 digits), branch code (3), account type (預金種目 1, 2, 3 or 9),
//!   account number (7 digits) and the holder's name in half-width katakana as the files write
//!   it (at most 30 characters, each one Shift_JIS byte).
//! * `debit_requests`: one direct-debit request (口座振替依頼) per distributor and collection
//!   date, with the collector's header fields as they were written, so the file can be written
//!   again byte for byte.
//! * `debit_items`: its data records, each one instalment of a contribution plan: the line's
//!   sequence (the 顧客番号 the bank echoes back), the plan, the amount in yen, the payer's
//!   account as written, and once the result file is read, the result code and, for a
//!   collected one, the deposit's ledger entry. An instalment of a plan is asked for once per
//!   collection date (UNIQUE (tenant_id, plan_id, collection_date)).
//!
//! Every table is distributed by tenant on Citus: `tenant_id` leads every key and foreign key.

use sea_orm_migration::prelude::*;

use crate::{citus, sql};

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "CREATE TABLE customer_bank_accounts (
        tenant_id {uuid} NOT NULL,
        customer_id {uuid} NOT NULL,
        bank_code TEXT NOT NULL CHECK (length(bank_code) = 4),
        branch_code TEXT NOT NULL CHECK (length(branch_code) = 3),
        account_type INTEGER NOT NULL CHECK (account_type IN (1, 2, 3, 9)),
        account_number TEXT NOT NULL CHECK (length(account_number) = 7),
        holder_name TEXT NOT NULL CHECK (length(holder_name) BETWEEN 1 AND 30),
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, customer_id),
        FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
    )",
    "CREATE TABLE debit_requests (
        tenant_id {uuid} NOT NULL,
        id {uuid} NOT NULL,
        collection_date DATE NOT NULL,
        collector_code TEXT NOT NULL CHECK (length(collector_code) = 10),
        collector_name TEXT NOT NULL CHECK (length(collector_name) BETWEEN 1 AND 40),
        bank_code TEXT NOT NULL CHECK (length(bank_code) = 4),
        bank_name TEXT NOT NULL CHECK (length(bank_name) <= 15),
        branch_code TEXT NOT NULL CHECK (length(branch_code) = 3),
        branch_name TEXT NOT NULL CHECK (length(branch_name) <= 15),
        account_type INTEGER NOT NULL CHECK (account_type IN (1, 2, 9)),
        account_number TEXT NOT NULL CHECK (length(account_number) = 7),
        records INTEGER NOT NULL CHECK (records > 0),
        total_amount BIGINT NOT NULL CHECK (total_amount > 0),
        created_by TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        resulted_at BIGINT NULL,
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, collection_date)
    )",
    "CREATE TABLE debit_items (
        tenant_id {uuid} NOT NULL,
        request_id {uuid} NOT NULL,
        seq INTEGER NOT NULL CHECK (seq > 0),
        collection_date DATE NOT NULL,
        plan_id {uuid} NOT NULL,
        wrap_id {uuid} NOT NULL,
        customer_id {uuid} NOT NULL,
        amount BIGINT NOT NULL CHECK (amount > 0),
        bank_code TEXT NOT NULL CHECK (length(bank_code) = 4),
        branch_code TEXT NOT NULL CHECK (length(branch_code) = 3),
        account_type INTEGER NOT NULL CHECK (account_type IN (1, 2, 3, 9)),
        account_number TEXT NOT NULL CHECK (length(account_number) = 7),
        holder_name TEXT NOT NULL CHECK (length(holder_name) BETWEEN 1 AND 30),
        new_code INTEGER NOT NULL CHECK (new_code IN (0, 1, 2)),
        result TEXT NULL CHECK (result IN ('collected', 'insufficient_funds', 'no_account',
            'stopped_by_payer', 'no_authorisation', 'stopped_by_collector', 'other')),
        entry_id {uuid} NULL,
        settled_date DATE NULL,
        resulted_at BIGINT NULL,
        PRIMARY KEY (tenant_id, request_id, seq),
        UNIQUE (tenant_id, plan_id, collection_date),
        FOREIGN KEY (tenant_id, request_id) REFERENCES debit_requests (tenant_id, id),
        FOREIGN KEY (tenant_id, plan_id) REFERENCES wrap_plans (tenant_id, id),
        FOREIGN KEY (tenant_id, wrap_id) REFERENCES wraps (tenant_id, id),
        FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id),
        FOREIGN KEY (tenant_id, entry_id) REFERENCES ledger_entries (tenant_id, id),
        CHECK (entry_id IS NULL OR result = 'collected'),
        CHECK (result IS NULL OR result <> 'collected' OR entry_id IS NOT NULL),
        CHECK ((result IS NULL) = (resulted_at IS NULL))
    )",
    "CREATE INDEX debit_items_by_plan ON debit_items (tenant_id, plan_id, collection_date)",
];

const DOWN: &[&str] = &[
    "DROP TABLE debit_items",
    "DROP TABLE debit_requests",
    "DROP TABLE customer_bank_accounts",
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
