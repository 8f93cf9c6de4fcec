//! `wrap_fee_state.fee_unposted` and `tax_unposted`: the whole minor units of management fee
//! and its tax a wrap has accrued (counted in `fee_owed` / `tax_owed`, deducted from its NAV)
//! but that are not posted to its `accrued:wrap:{id}` account yet. Accrual posts them at each
//! month end, and the same date whenever the wrap has anything due (ledger/wraps/src/eod/fees.rs).
//!
//! Why: posted every day, the accrual put one posting a day into every wrap's own account, and
//! the postings' by-account index then rewrote one page per wrap and date: a fifth of the demo's
//! year at 3,000 wraps (docs/BENCHMARKS.md, "The demo"). Both start at 0: every amount accrued
//! before this migration was posted.
//!
//! `down` refuses while anything is unposted (the ledger would then lack what the fee state
//! says is owed): run end of day to a month end first.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, Statement};

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "ALTER TABLE wrap_fee_state ADD COLUMN fee_unposted BIGINT NOT NULL DEFAULT 0 \
     CHECK (fee_unposted >= 0)",
    "ALTER TABLE wrap_fee_state ADD COLUMN tax_unposted BIGINT NOT NULL DEFAULT 0 \
     CHECK (tax_unposted >= 0)",
];

const DOWN: &[&str] = &[
    "ALTER TABLE wrap_fee_state DROP COLUMN fee_unposted",
    "ALTER TABLE wrap_fee_state DROP COLUMN tax_unposted",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run(manager.get_connection(), UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let unposted = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT COUNT(*) FROM wrap_fee_state WHERE fee_unposted > 0 OR tax_unposted > 0",
            ))
            .await?
            .map(|r| r.try_get_by_index::<i64>(0))
            .transpose()?
            .unwrap_or(0);
        if unposted > 0 {
            return Err(DbErr::Migration(format!(
                "{unposted} wraps have accrued fees not posted to the ledger yet; run end of \
                 day to a month end (which posts them) before rolling this migration back"
            )));
        }
        sql::run(db, DOWN).await
    }
}
