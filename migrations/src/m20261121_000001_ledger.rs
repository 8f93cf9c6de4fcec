//! The books: assets, one book (hash-chain head) per tenant, accounts with their balances,
//! entries, postings and hold resolutions.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[&str] = &[
    "CREATE TABLE ledger_assets (
        code TEXT NOT NULL PRIMARY KEY CHECK (length(code) BETWEEN 1 AND 64),
        kind TEXT NOT NULL CHECK (kind IN ('currency', 'instrument')),
        scale INTEGER NOT NULL CHECK (scale BETWEEN 0 AND 18),
        price_currency TEXT NULL REFERENCES ledger_assets (code),
        quote_unit BIGINT NULL CHECK (quote_unit > 0),
        created_at BIGINT NOT NULL,
        CHECK ((kind = 'currency' AND price_currency IS NULL AND quote_unit IS NULL)
            OR (kind = 'instrument' AND price_currency IS NOT NULL AND quote_unit IS NOT NULL))
    )",
    // One book per tenant: the head of its hash chain. Entries take their `seq` from here.
    "CREATE TABLE ledger_books (
        tenant_id {uuid} NOT NULL PRIMARY KEY,
        seq BIGINT NOT NULL CHECK (seq >= 0),
        hash TEXT NOT NULL,
        created_at BIGINT NOT NULL
    ){hot_updates}",
    "CREATE TABLE ledger_accounts (
        tenant_id {uuid} NOT NULL REFERENCES ledger_books (tenant_id),
        id {uuid} NOT NULL,
        code TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 200),
        asset_code TEXT NOT NULL REFERENCES ledger_assets (code),
        normal_side TEXT NOT NULL CHECK (normal_side IN ('debit', 'credit')),
        no_negative BOOLEAN NOT NULL,
        closed BOOLEAN NOT NULL,
        metadata TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        debits_posted BIGINT NOT NULL CHECK (debits_posted >= 0),
        credits_posted BIGINT NOT NULL CHECK (credits_posted >= 0),
        debits_pending BIGINT NOT NULL CHECK (debits_pending >= 0),
        credits_pending BIGINT NOT NULL CHECK (credits_pending >= 0),
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, code),
        CHECK (NOT no_negative
            OR (normal_side = 'debit' AND debits_posted - credits_posted - credits_pending >= 0)
            OR (normal_side = 'credit' AND credits_posted - debits_posted - debits_pending >= 0))
    ){hot_updates}",
    "CREATE TABLE ledger_entries (
        tenant_id {uuid} NOT NULL REFERENCES ledger_books (tenant_id),
        id {uuid} NOT NULL,
        seq BIGINT NOT NULL CHECK (seq >= 1),
        idempotency_key TEXT NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
        request_hash TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
        status TEXT NOT NULL CHECK (status IN ('posted', 'pending')),
        effective_date DATE NOT NULL,
        booked_at BIGINT NOT NULL,
        description TEXT NOT NULL,
        metadata TEXT NOT NULL,
        reverses_entry_id {uuid} NULL,
        hold_entry_id {uuid} NULL,
        expires_at BIGINT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, seq),
        UNIQUE (tenant_id, idempotency_key),
        FOREIGN KEY (tenant_id, reverses_entry_id) REFERENCES ledger_entries (tenant_id, id),
        FOREIGN KEY (tenant_id, hold_entry_id) REFERENCES ledger_entries (tenant_id, id),
        CHECK (expires_at IS NULL OR status = 'pending')
    )",
    // An entry is reversed at most once; a hold is committed at most once.
    "CREATE UNIQUE INDEX ledger_entries_reversed_once ON ledger_entries (tenant_id, reverses_entry_id)
        WHERE reverses_entry_id IS NOT NULL",
    "CREATE UNIQUE INDEX ledger_entries_hold_committed_once ON ledger_entries (tenant_id, hold_entry_id)
        WHERE hold_entry_id IS NOT NULL",
    "CREATE INDEX ledger_entries_pending_expiry ON ledger_entries (expires_at)
        WHERE expires_at IS NOT NULL",
    "CREATE TABLE ledger_postings (
        tenant_id {uuid} NOT NULL,
        entry_id {uuid} NOT NULL,
        idx INTEGER NOT NULL CHECK (idx >= 0),
        account_id {uuid} NOT NULL,
        seq BIGINT NOT NULL,
        asset_code TEXT NOT NULL,
        side TEXT NOT NULL CHECK (side IN ('debit', 'credit')),
        amount BIGINT NOT NULL CHECK (amount > 0),
        pending BOOLEAN NOT NULL,
        effective_date DATE NOT NULL,
        booked_at BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, entry_id, idx),
        FOREIGN KEY (tenant_id, entry_id) REFERENCES ledger_entries (tenant_id, id),
        FOREIGN KEY (tenant_id, account_id) REFERENCES ledger_accounts (tenant_id, id)
    )",
    "CREATE INDEX ledger_postings_by_account ON ledger_postings (tenant_id, account_id, seq)",
    "CREATE TABLE ledger_hold_resolutions (
        tenant_id {uuid} NOT NULL,
        hold_entry_id {uuid} NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('committed', 'voided', 'expired')),
        commit_entry_id {uuid} NULL,
        resolved_at BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, hold_entry_id),
        FOREIGN KEY (tenant_id, hold_entry_id) REFERENCES ledger_entries (tenant_id, id),
        FOREIGN KEY (tenant_id, commit_entry_id) REFERENCES ledger_entries (tenant_id, id),
        CHECK ((status = 'committed') = (commit_entry_id IS NOT NULL))
    )",
];

/// Invariant 2 in the schema: journal rows are never updated or deleted.
const IMMUTABLE_SQLITE: &[&str] = &[
    "CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
        BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END",
    "CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
        BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END",
    "CREATE TRIGGER ledger_postings_no_update BEFORE UPDATE ON ledger_postings
        BEGIN SELECT RAISE(ABORT, 'ledger postings are immutable'); END",
    "CREATE TRIGGER ledger_postings_no_delete BEFORE DELETE ON ledger_postings
        BEGIN SELECT RAISE(ABORT, 'ledger postings are immutable'); END",
];

const IMMUTABLE_POSTGRES: &[&str] = &[
    "CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '% is immutable', TG_TABLE_NAME; END $$",
    "CREATE TRIGGER ledger_entries_immutable BEFORE UPDATE OR DELETE ON ledger_entries
        FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()",
    "CREATE TRIGGER ledger_postings_immutable BEFORE UPDATE OR DELETE ON ledger_postings
        FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()",
];

const DOWN: &[&str] = &[
    "DROP TABLE ledger_hold_resolutions",
    "DROP TABLE ledger_postings",
    "DROP TABLE ledger_entries",
    "DROP TABLE ledger_accounts",
    "DROP TABLE ledger_books",
    "DROP TABLE ledger_assets",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        sql::run(db, TABLES).await?;
        match db.get_database_backend() {
            DbBackend::Postgres => sql::run(db, IMMUTABLE_POSTGRES).await,
            _ => sql::run(db, IMMUTABLE_SQLITE).await,
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        sql::run(db, DOWN).await?;
        if db.get_database_backend() == DbBackend::Postgres {
            sql::run(db, &["DROP FUNCTION ledger_refuse_change()"]).await?;
        }
        Ok(())
    }
}
