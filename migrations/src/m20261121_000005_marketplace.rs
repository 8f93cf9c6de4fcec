//! The marketplace: managers' strategies and their model versions, agreements between a
//! distributor and a manager's strategy with their versioned terms, and the platform's monthly
//! fee per distributor (owned by the wrap business: `wraps::market`).
//!
//! Rules written into the schema (the tenants crate checks them first, with clearer errors):
//! * every table is keyed by `tenant_id` (the manager for strategies and versions, the
//!   distributor for agreements, terms and platform fees); an agreement points at its strategy
//!   through the composite key `(manager_tenant_id, strategy_id)`, so it cannot name a strategy
//!   of another manager than the one it records;
//! * weights, rates and shares are exact decimal TEXT (parsed into `rust_decimal::Decimal`,
//!   never a float); money is a BIGINT count of the currency's minor unit;
//! * a strategy code is unique per manager; a model version's effective date is unique per
//!   strategy; model versions and their weights are never updated or deleted (triggers);
//! * at most one live (proposed or active) agreement per (distributor, strategy), and at most
//!   one proposed terms version per agreement (partial unique indexes); a terms version's
//!   content and effective date never change, only its status (trigger);
//! * a platform fee is one row per (distributor, effective date).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[&str] = &[
    "CREATE TABLE strategies (
        tenant_id {uuid} NOT NULL REFERENCES tenants (id),
        id {uuid} NOT NULL,
        code TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 64),
        name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
        description TEXT NOT NULL CHECK (length(description) <= 4000),
        base_currency TEXT NOT NULL REFERENCES ledger_assets (code),
        risk_level INTEGER NOT NULL CHECK (risk_level BETWEEN 1 AND 5),
        expected_return_annual TEXT NOT NULL,
        volatility_annual TEXT NOT NULL,
        drift_band_kind TEXT NOT NULL CHECK (drift_band_kind IN ('absolute', 'relative')),
        drift_band TEXT NOT NULL,
        rebalance_calendar TEXT NOT NULL
            CHECK (rebalance_calendar IN ('none', 'monthly', 'quarterly')),
        cooldown_days INTEGER NOT NULL CHECK (cooldown_days BETWEEN 0 AND 365),
        min_initial_investment BIGINT NOT NULL CHECK (min_initial_investment >= 0),
        status TEXT NOT NULL CHECK (status IN ('active', 'retired')),
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, code)
    )",
    // The platform and distributors look a strategy up by id alone (visibility is decided
    // by the query's other conditions).
    "CREATE INDEX strategies_by_id ON strategies (id)",
    "CREATE TABLE strategy_versions (
        tenant_id {uuid} NOT NULL,
        strategy_id {uuid} NOT NULL,
        version INTEGER NOT NULL CHECK (version >= 1),
        effective_date DATE NOT NULL,
        cash_weight TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, strategy_id, version),
        UNIQUE (tenant_id, strategy_id, effective_date),
        FOREIGN KEY (tenant_id, strategy_id) REFERENCES strategies (tenant_id, id)
    )",
    "CREATE TABLE strategy_weights (
        tenant_id {uuid} NOT NULL,
        strategy_id {uuid} NOT NULL,
        version INTEGER NOT NULL,
        instrument_code TEXT NOT NULL REFERENCES ledger_assets (code),
        weight TEXT NOT NULL,
        PRIMARY KEY (tenant_id, strategy_id, version, instrument_code),
        FOREIGN KEY (tenant_id, strategy_id, version)
            REFERENCES strategy_versions (tenant_id, strategy_id, version)
    )",
    "CREATE TABLE agreements (
        tenant_id {uuid} NOT NULL REFERENCES tenants (id),
        id {uuid} NOT NULL,
        manager_tenant_id {uuid} NOT NULL,
        strategy_id {uuid} NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('proposed', 'active', 'declined', 'terminated')),
        proposed_at BIGINT NOT NULL,
        proposed_by TEXT NOT NULL,
        decided_at BIGINT NULL,
        decided_by TEXT NULL,
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (manager_tenant_id, strategy_id) REFERENCES strategies (tenant_id, id),
        CHECK ((status = 'proposed') = (decided_at IS NULL)),
        CHECK ((decided_at IS NULL) = (decided_by IS NULL))
    )",
    "CREATE INDEX agreements_by_manager ON agreements (manager_tenant_id, id)",
    "CREATE INDEX agreements_by_id ON agreements (id)",
    "CREATE UNIQUE INDEX agreements_one_live ON agreements (tenant_id, strategy_id)
        WHERE status IN ('proposed', 'active')",
    // `terms` is canonical JSON of exact decimal strings (see wraps::market::agreement::Terms).
    "CREATE TABLE agreement_terms (
        tenant_id {uuid} NOT NULL,
        agreement_id {uuid} NOT NULL,
        version INTEGER NOT NULL CHECK (version >= 1),
        effective_date DATE NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('proposed', 'accepted', 'declined')),
        terms TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        decided_at BIGINT NULL,
        decided_by TEXT NULL,
        PRIMARY KEY (tenant_id, agreement_id, version),
        FOREIGN KEY (tenant_id, agreement_id) REFERENCES agreements (tenant_id, id),
        CHECK ((status = 'proposed') = (decided_at IS NULL)),
        CHECK ((decided_at IS NULL) = (decided_by IS NULL))
    )",
    "CREATE UNIQUE INDEX agreement_terms_one_proposed ON agreement_terms (tenant_id, agreement_id)
        WHERE status = 'proposed'",
    "CREATE TABLE platform_fees (
        tenant_id {uuid} NOT NULL REFERENCES tenants (id),
        effective_date DATE NOT NULL,
        amount BIGINT NOT NULL CHECK (amount >= 0),
        currency TEXT NOT NULL REFERENCES ledger_assets (code),
        set_at BIGINT NOT NULL,
        set_by TEXT NOT NULL,
        PRIMARY KEY (tenant_id, effective_date)
    )",
];

/// Model versions and terms are immutable: versions and weights never change or disappear;
/// a terms version only changes status.
const IMMUTABLE_SQLITE: &[&str] = &[
    "CREATE TRIGGER strategy_versions_no_update BEFORE UPDATE ON strategy_versions
        BEGIN SELECT RAISE(ABORT, 'strategy versions are immutable'); END",
    "CREATE TRIGGER strategy_versions_no_delete BEFORE DELETE ON strategy_versions
        BEGIN SELECT RAISE(ABORT, 'strategy versions are immutable'); END",
    "CREATE TRIGGER strategy_weights_no_update BEFORE UPDATE ON strategy_weights
        BEGIN SELECT RAISE(ABORT, 'strategy weights are immutable'); END",
    "CREATE TRIGGER strategy_weights_no_delete BEFORE DELETE ON strategy_weights
        BEGIN SELECT RAISE(ABORT, 'strategy weights are immutable'); END",
    "CREATE TRIGGER agreement_terms_no_edit
        BEFORE UPDATE OF tenant_id, agreement_id, version, effective_date, terms, created_at
        ON agreement_terms
        BEGIN SELECT RAISE(ABORT, 'agreement terms are immutable'); END",
    "CREATE TRIGGER agreement_terms_no_delete BEFORE DELETE ON agreement_terms
        BEGIN SELECT RAISE(ABORT, 'agreement terms are immutable'); END",
];

/// `ledger_refuse_change()` is created by the ledger migration.
const IMMUTABLE_POSTGRES: &[&str] = &[
    "CREATE TRIGGER strategy_versions_immutable BEFORE UPDATE OR DELETE ON strategy_versions
        FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()",
    "CREATE TRIGGER strategy_weights_immutable BEFORE UPDATE OR DELETE ON strategy_weights
        FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()",
    "CREATE FUNCTION agreement_terms_refuse_edit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE'
                OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id
                OR NEW.agreement_id IS DISTINCT FROM OLD.agreement_id
                OR NEW.version IS DISTINCT FROM OLD.version
                OR NEW.effective_date IS DISTINCT FROM OLD.effective_date
                OR NEW.terms IS DISTINCT FROM OLD.terms
                OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
                RAISE EXCEPTION 'agreement terms are immutable';
            END IF;
            RETURN NEW;
        END $$",
    "CREATE TRIGGER agreement_terms_immutable BEFORE UPDATE OR DELETE ON agreement_terms
        FOR EACH ROW EXECUTE FUNCTION agreement_terms_refuse_edit()",
];

const DOWN: &[&str] = &[
    "DROP TABLE platform_fees",
    "DROP TABLE agreement_terms",
    "DROP TABLE agreements",
    "DROP TABLE strategy_weights",
    "DROP TABLE strategy_versions",
    "DROP TABLE strategies",
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
        // Dropping a table drops its indexes and triggers on both backends.
        sql::run(db, DOWN).await?;
        if db.get_database_backend() == DbBackend::Postgres {
            sql::run(db, &["DROP FUNCTION agreement_terms_refuse_edit()"]).await?;
        }
        Ok(())
    }
}
