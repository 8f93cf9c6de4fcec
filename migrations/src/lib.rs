//! Every schema change of the platform, forward and backward (sea-orm-migration).
//!
//! This crate owns the tables; it depends on no domain crate, so a schema can be
//! created, inspected or rolled back without linking the rules that use it.
//! The same migrations run on SQLite (embedded default) and PostgreSQL (production):
//! the few type names that differ are substituted by [`sql::render`], the rest is
//! plain SQL so that every CHECK, key and foreign key is visible in one place.
//!
//! Rules written into the schema (defence in depth; the ledger checks them first):
//! * every money or unit amount is a BIGINT count of the asset's smallest unit (exact on both
//!   backends; see docs/ARCHITECTURE.md "Exact storage");
//! * every table that holds tenant data has `tenant_id` in its keys, and postings point at
//!   accounts and entries through composite foreign keys `(tenant_id, ...)`, so a row can never
//!   reference another tenant's row;
//! * posting amounts are > 0, balances columns are >= 0, a no-negative account's available
//!   balance is >= 0, an idempotency key is unique per tenant, an entry is reversed at most once,
//!   a hold is resolved at most once.

pub use sea_orm_migration::prelude::*;

pub mod citus;
mod m20261121_000001_ledger;
mod m20261121_000002_tenants;
mod m20261121_000003_audit;
mod m20261121_000004_market;
mod m20261121_000005_marketplace;
mod m20261121_000006_wraps;
mod m20261121_000007_eod;
mod m20261121_000008_trading;
mod m20261121_000009_fees;
mod m20261121_000010_returns;
mod m20261121_000011_eod_indexes;
mod m20261121_000012_instructions;
mod m20261121_000013_goal_results;
mod m20261122_000014_movement_payouts;
mod m20261206_000015_date_major_daily_rows;
mod m20261206_000016_trade_orders_by_tenant_date;
mod m20261206_000017_fee_unposted;
mod m20261207_000018_eod_lease;
mod m20261207_000019_price_revisions;
mod m20261207_000020_fees_trigger;
mod m20261207_000021_plan_runs_key;
mod m20261207_000022_citus;
mod m20261208_000023_console;
mod m20261208_000024_fund_terms;
mod m20261208_000025_events;
mod m20261208_000026_zengin;
mod m20261208_000027_branches;
pub mod sql;

/// All migrations, oldest first.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_ledger::Migration),
            Box::new(m20261121_000002_tenants::Migration),
            Box::new(m20261121_000003_audit::Migration),
            Box::new(m20261121_000004_market::Migration),
            Box::new(m20261121_000005_marketplace::Migration),
            Box::new(m20261121_000006_wraps::Migration),
            Box::new(m20261121_000007_eod::Migration),
            Box::new(m20261121_000008_trading::Migration),
            Box::new(m20261121_000009_fees::Migration),
            Box::new(m20261121_000010_returns::Migration),
            Box::new(m20261121_000011_eod_indexes::Migration),
            Box::new(m20261121_000012_instructions::Migration),
            Box::new(m20261121_000013_goal_results::Migration),
            Box::new(m20261122_000014_movement_payouts::Migration),
            Box::new(m20261206_000015_date_major_daily_rows::Migration),
            Box::new(m20261206_000016_trade_orders_by_tenant_date::Migration),
            Box::new(m20261206_000017_fee_unposted::Migration),
            Box::new(m20261207_000018_eod_lease::Migration),
            Box::new(m20261207_000019_price_revisions::Migration),
            Box::new(m20261207_000020_fees_trigger::Migration),
            Box::new(m20261207_000021_plan_runs_key::Migration),
            Box::new(m20261207_000022_citus::Migration),
            Box::new(m20261208_000023_console::Migration),
            Box::new(m20261208_000024_fund_terms::Migration),
            Box::new(m20261208_000025_events::Migration),
            Box::new(m20261208_000026_zengin::Migration),
            Box::new(m20261208_000027_branches::Migration),
        ]
    }
}
