//! Opening many accounts in one go, for workflows that need one account per wrap (end of
//! day's fee accrual opens `accrued:wrap:{id}` for every wrap on its first fee; a day's buys
//! may open tens of thousands of `wrap:{id}:units:{INSTRUMENT}` accounts).
//!
//! [`ensure_accounts`] is idempotent: an account whose code its tenant already has is left
//! as it is and its id returned, so a re-run (or two workflows wanting the same account)
//! never fails or duplicates. It reads the codes first and inserts only the missing ones:
//! on an ordinary day nearly every account asked for exists, and a read is cheaper than an
//! INSERT that conflicts. It writes in the caller's transaction, with multi-row INSERTs
//! (`ON CONFLICT DO NOTHING`, so an account opened meanwhile is not an error), never a
//! statement per account. The same rules hold as for one account: each [`NewAccount`] is
//! validated, the asset must exist (foreign key), codes are unique per tenant. Like
//! `Ledger::create_account_in` it takes no book lock: opening an account changes no balance
//! and no hash chain.

use std::collections::{BTreeMap, HashMap};

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
    if let Some(a) = accounts.iter().find(|a| a.tenant_id != tenant_id) {
        return Err(LedgerError::InvalidAccount(format!(
            "account {} is not of tenant {tenant_id}",
            a.code
        )));
    }
    Ok(ensure_accounts(txn, accounts)
        .await?
        .into_iter()
        .map(|((_, code), id)| (code, id))
        .collect())
}

/// Opens every account of `accounts` whose (tenant, code) does not exist yet, and returns
/// the id of every one of them (existing or new) by (tenant, code). The tenants' books must
/// exist.
pub async fn ensure_accounts(
    txn: &DatabaseTransaction,
    accounts: &[NewAccount],
) -> Result<HashMap<(Uuid, String), Uuid>, LedgerError> {
    for a in accounts {
        a.validate()?;
    }
    let mut wanted: BTreeMap<(Uuid, &str), &NewAccount> = BTreeMap::new();
    for a in accounts {
        wanted.entry((a.tenant_id, a.code.as_str())).or_insert(a);
    }
    let mut out = ids_of(txn, wanted.keys().copied()).await?;
    let missing: Vec<&NewAccount> = wanted
        .into_iter()
        .filter(|(k, _)| !out.contains_key(&(k.0, k.1.to_owned())))
        .map(|(_, a)| a)
        .collect();
    if missing.is_empty() {
        return Ok(out);
    }
    let backend = txn.get_database_backend();
    let now = sql::micros(Utc::now());
    for chunk in missing.chunks(ROWS) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 13);
        for a in chunk {
            values.extend([
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
    out.extend(ids_of(txn, missing.iter().map(|a| (a.tenant_id, a.code.as_str()))).await?);
    Ok(out)
}

/// The ids of those (tenant, code) that exist.
async fn ids_of<'a>(
    txn: &DatabaseTransaction,
    keys: impl Iterator<Item = (Uuid, &'a str)>,
) -> Result<HashMap<(Uuid, String), Uuid>, LedgerError> {
    let backend = txn.get_database_backend();
    let mut by_tenant: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
    for (tenant, code) in keys {
        by_tenant.entry(tenant).or_default().push(code.to_owned());
    }
    let mut out = HashMap::new();
    for (tenant_id, codes) in by_tenant {
        for chunk in codes.chunks(CODES) {
            let mut pa = sql::Params::new(backend);
            let t = pa.push(tenant_id);
            let list = pa.list(chunk);
            let q = format!(
                "SELECT code, id FROM ledger_accounts WHERE tenant_id = {t} AND code IN {list}"
            );
            for r in sql::query(txn, q, pa.values).await? {
                out.insert(
                    (tenant_id, sql::get::<String>(&r, 0)?),
                    sql::get::<Uuid>(&r, 1)?,
                );
            }
        }
    }
    Ok(out)
}
