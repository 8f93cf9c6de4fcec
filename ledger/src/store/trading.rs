//! Ledger-side helpers of end of day's trading steps: opening many accounts at once.
//!
//! A day's buys may open tens of thousands of `wrap:{id}:units:{INSTRUMENT}` accounts; one
//! INSERT per account (as [`crate::Ledger::create_account_in`] does) would dominate the day.
//! [`ensure_accounts_in`] opens them with multi-row INSERTs that skip codes already taken,
//! then reads every id back in a few queries. The same rules hold as for one account: each
//! [`NewAccount`] is validated, the asset must exist (foreign key), codes are unique per
//! tenant.

use std::collections::HashMap;

use chrono::Utc;
use sea_orm::{DatabaseTransaction, Value};
use uuid::Uuid;

use super::sql::{self, Params, exec, get, query};
use crate::account::NewAccount;
use crate::error::LedgerError;

/// Rows per INSERT (13 columns: far below both backends' parameter limits).
const ROWS: usize = 500;

/// Opens, inside `txn`, every account of `accounts` whose (tenant, code) does not exist yet,
/// and returns the id of every one of them (existing or new) by (tenant, code). The tenants'
/// books must exist (they do once a tenant has any account).
pub async fn ensure_accounts_in(
    txn: &DatabaseTransaction,
    accounts: &[NewAccount],
) -> Result<HashMap<(Uuid, String), Uuid>, LedgerError> {
    for a in accounts {
        a.validate()?;
    }
    let backend = sea_orm::ConnectionTrait::get_database_backend(txn);
    let now = sql::micros(Utc::now());
    for chunk in accounts.chunks(ROWS) {
        let mut pa = Params::new(backend);
        let rows: Vec<String> = chunk
            .iter()
            .map(|a| {
                pa.row(vec![
                    a.tenant_id.into(),
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
                    Value::from(0_i64),
                ])
            })
            .collect();
        let q = format!(
            "INSERT INTO ledger_accounts (tenant_id, id, code, asset_code, normal_side, no_negative, \
             closed, metadata, created_at, debits_posted, credits_posted, debits_pending, \
             credits_pending) VALUES {} ON CONFLICT (tenant_id, code) DO NOTHING",
            rows.join(", ")
        );
        exec(txn, q, pa.values).await?;
    }
    let mut by_tenant: HashMap<Uuid, Vec<String>> = HashMap::new();
    for a in accounts {
        by_tenant
            .entry(a.tenant_id)
            .or_default()
            .push(a.code.clone());
    }
    let mut out = HashMap::with_capacity(accounts.len());
    for (tenant_id, codes) in by_tenant {
        for chunk in codes.chunks(ROWS) {
            let mut pa = Params::new(backend);
            let t = pa.push(tenant_id);
            let list = pa.list(chunk);
            let q = format!(
                "SELECT code, id FROM ledger_accounts WHERE tenant_id = {t} AND code IN {list}"
            );
            for r in query(txn, q, pa.values).await? {
                out.insert((tenant_id, get::<String>(&r, 0)?), get::<Uuid>(&r, 1)?);
            }
        }
    }
    Ok(out)
}
