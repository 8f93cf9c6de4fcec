//! Opening many accounts in one go, for workflows that need one account per wrap (end of
//! day's fee accrual opens `accrued:wrap:{id}` for every wrap on its first fee).
//!
//! [`ensure_accounts_in`] is idempotent: an account whose code the tenant already has is
//! left as it is and its id returned, so a re-run (or two workflows wanting the same
//! account) never fails or duplicates. It writes in the caller's transaction, with
//! multi-row INSERTs, never a statement per account. Like `Ledger::create_account_in` it
//! takes no book lock: opening an account changes no balance and no hash chain.

use std::collections::HashMap;

use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseTransaction, Value};
use uuid::Uuid;

use super::sql;
use crate::account::NewAccount;
use crate::error::LedgerError;

/// Rows per INSERT (13 values each, far below both backends' parameter limits).
const ROWS: usize = 1_000;
/// Codes per `IN` list.
const CODES: usize = 500;

/// Opens those of `accounts` (all of `tenant_id`) whose code the tenant does not have yet,
/// and returns the id of every one of them by code. The tenant's book must exist (it does
/// once the tenant has any account).
pub async fn ensure_accounts_in(
    txn: &DatabaseTransaction,
    tenant_id: Uuid,
    accounts: &[NewAccount],
) -> Result<HashMap<String, Uuid>, LedgerError> {
    for a in accounts {
        a.validate()?;
        if a.tenant_id != tenant_id {
            return Err(LedgerError::InvalidAccount(format!(
                "account {} is not of tenant {tenant_id}",
                a.code
            )));
        }
    }
    let backend = txn.get_database_backend();
    let now = sql::micros(Utc::now());
    for chunk in accounts.chunks(ROWS) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 13);
        for a in chunk {
            values.extend([
                tenant_id.into(),
                Uuid::now_v7().into(),
                a.code.clone().into(),
                a.asset.clone().into(),
                a.normal_side.as_str().into(),
                a.no_negative.into(),
                false.into(),
                sql::canonical_json(&a.metadata).into(),
                now.into(),
                0_i64.into(),
                0_i64.into(),
                0_i64.into(),
                0_i64.into(),
            ]);
        }
        let q = format!(
            "INSERT INTO ledger_accounts (tenant_id, id, code, asset_code, normal_side, no_negative, \
             closed, metadata, created_at, debits_posted, credits_posted, debits_pending, \
             credits_pending) VALUES {} ON CONFLICT (tenant_id, code) DO NOTHING",
            sql::value_rows(backend, chunk.len(), 13, 1)
        );
        sql::exec(txn, q, values).await?;
    }
    let mut out = HashMap::with_capacity(accounts.len());
    let codes: Vec<String> = accounts.iter().map(|a| a.code.clone()).collect();
    for chunk in codes.chunks(CODES) {
        let mut pa = sql::Params::new(backend);
        let t = pa.push(tenant_id);
        let list = pa.list(chunk);
        let q = format!(
            "SELECT code, id FROM ledger_accounts WHERE tenant_id = {t} AND code IN {list}"
        );
        for r in sql::query(txn, q, pa.values).await? {
            out.insert(sql::get::<String>(&r, 0)?, sql::get::<Uuid>(&r, 1)?);
        }
    }
    Ok(out)
}
