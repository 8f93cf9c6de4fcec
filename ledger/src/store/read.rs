//! Queries: accounts and balances (now and as of the past), an account's entries, the trial
//! balance, chain verification. Reads are always scoped by the caller's tenant.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, Value};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::sql::{self, get, param};
use super::{AssetCache, to_entry};
use crate::account::{Account, Balance, Side};
use crate::asset::{Asset, AssetKind, decimal_of};
use crate::chain::{self, ChainBreak, ChainReport};
use crate::entry::Entry;
use crate::error::LedgerError;

/// Which balance to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AsOf {
    /// The current balance, with holds.
    #[schema(title = "AsOfNow")]
    Now,
    /// Posted entries whose business date is on or before this date.
    #[schema(title = "AsOfEffectiveDate")]
    EffectiveDate(NaiveDate),
    /// Posted entries booked at or before this instant.
    #[schema(title = "AsOfBookedAt")]
    BookedAt(DateTime<Utc>),
}

/// An account's balance, signed by its normal side, in exact decimals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BalanceReport {
    /// The account.
    pub account_id: Uuid,
    /// Its asset.
    pub asset: String,
    /// Its normal side.
    pub normal_side: Side,
    /// Which balance this is.
    pub as_of: AsOf,
    /// Posted balance.
    pub posted: Decimal,
    /// Net amount reserved by holds (zero for past balances: holds are not history).
    pub pending: Decimal,
    /// Posted less what holds may take out.
    pub available: Decimal,
    /// Sum of posted debits.
    pub debits: Decimal,
    /// Sum of posted credits.
    pub credits: Decimal,
}

/// A page of entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryPage {
    /// Entries in booking order.
    pub entries: Vec<Entry>,
    /// Pass as `cursor` to get the next page; `None` at the end.
    pub next_cursor: Option<i64>,
}

/// One asset's line of the trial balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrialBalanceLine {
    /// The asset.
    pub asset: String,
    /// Sum of posted debits over all accounts.
    pub debits: Decimal,
    /// Sum of posted credits over all accounts.
    pub credits: Decimal,
    /// Debits minus credits: zero when the books balance.
    pub difference: Decimal,
    /// Number of accounts in the asset.
    pub accounts: i64,
}

pub const ACCOUNT_COLS: &str = "id, tenant_id, code, asset_code, normal_side, no_negative, closed, metadata, created_at, \
     debits_posted, credits_posted, debits_pending, credits_pending";

pub fn account_from_row(row: &sea_orm::QueryResult) -> Result<Account, LedgerError> {
    let side_name: String = get(row, 4)?;
    let metadata: String = get(row, 7)?;
    Ok(Account {
        id: get(row, 0)?,
        tenant_id: get(row, 1)?,
        code: get(row, 2)?,
        asset: get(row, 3)?,
        normal_side: sql::side(&side_name)?,
        no_negative: get(row, 5)?,
        closed: get(row, 6)?,
        metadata: serde_json::from_str(&metadata)
            .map_err(|e| LedgerError::Corrupt(e.to_string()))?,
        created_at: sql::from_micros(get(row, 8)?)?,
        balance: Balance {
            debits_posted: get(row, 9)?,
            credits_posted: get(row, 10)?,
            debits_pending: get(row, 11)?,
            credits_pending: get(row, 12)?,
        },
    })
}

pub(crate) async fn account<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Account, LedgerError> {
    let backend = db.get_database_backend();
    let q = format!(
        "SELECT {ACCOUNT_COLS} FROM ledger_accounts WHERE tenant_id = {} AND id = {}",
        param(backend, 1),
        param(backend, 2)
    );
    let rows = sql::query(db, q, vec![tenant_id.into(), id.into()]).await?;
    rows.first()
        .map(account_from_row)
        .transpose()?
        .ok_or(LedgerError::AccountNotFound(id))
}

/// The tenant's accounts ordered by id (creation order), up to `limit` (clamped to
/// [`MAX_PAGE`]) after `after`, and the cursor of the next page.
pub(crate) async fn accounts<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    after: Option<Uuid>,
    limit: u32,
) -> Result<(Vec<Account>, Option<Uuid>), LedgerError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let backend = db.get_database_backend();
    let (q, values): (String, Vec<Value>) = match after {
        Some(cursor) => (
            format!(
                "SELECT {ACCOUNT_COLS} FROM ledger_accounts WHERE tenant_id = {} AND id > {} ORDER BY id LIMIT {}",
                param(backend, 1),
                param(backend, 2),
                param(backend, 3)
            ),
            vec![tenant_id.into(), cursor.into(), i64::from(limit + 1).into()],
        ),
        None => (
            format!(
                "SELECT {ACCOUNT_COLS} FROM ledger_accounts WHERE tenant_id = {} ORDER BY id LIMIT {}",
                param(backend, 1),
                param(backend, 2)
            ),
            vec![tenant_id.into(), i64::from(limit + 1).into()],
        ),
    };
    let rows = sql::query(db, q, values).await?;
    let mut items = rows
        .iter()
        .map(account_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let next = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|a| a.id)
    } else {
        None
    };
    Ok((items, next))
}

/// Takes the tenant's book lock (see store/work.rs); a tenant without a book has no accounts.
pub(crate) async fn lock_book<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
) -> Result<(), LedgerError> {
    let backend = db.get_database_backend();
    let q = format!(
        "SELECT seq FROM ledger_books WHERE tenant_id = {}{}",
        param(backend, 1),
        sql::for_update(backend)
    );
    sql::query(db, q, vec![tenant_id.into()]).await?;
    Ok(())
}

pub async fn account_by_code<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    code: &str,
) -> Result<Option<Account>, LedgerError> {
    let backend = db.get_database_backend();
    let q = format!(
        "SELECT {ACCOUNT_COLS} FROM ledger_accounts WHERE tenant_id = {} AND code = {}",
        param(backend, 1),
        param(backend, 2)
    );
    let rows = sql::query(db, q, vec![tenant_id.into(), code.into()]).await?;
    rows.first().map(account_from_row).transpose()
}

pub(crate) async fn load_assets<C: ConnectionTrait>(
    db: &C,
    codes: &[String],
) -> Result<Vec<Asset>, LedgerError> {
    let backend = db.get_database_backend();
    let mut out = Vec::new();
    for chunk in codes.chunks(sql::MAX_PARAMS) {
        let (member, values) = sql::member_of(backend, chunk, 1);
        let q = format!(
            "SELECT code, kind, scale, price_currency, quote_unit FROM ledger_assets WHERE code {member}"
        );
        for row in sql::query(db, q, values).await? {
            let kind: String = get(&row, 1)?;
            let scale: i32 = get(&row, 2)?;
            let kind = match kind.as_str() {
                "currency" => AssetKind::Currency,
                "instrument" => AssetKind::Instrument {
                    price_currency: get::<Option<String>>(&row, 3)?.unwrap_or_default(),
                    quote_unit: get::<Option<i64>>(&row, 4)?.unwrap_or_default(),
                },
                other => {
                    return Err(LedgerError::Corrupt(format!(
                        "unknown asset kind {other:?}"
                    )));
                }
            };
            out.push(Asset {
                code: get(&row, 0)?,
                kind,
                scale: u32::try_from(scale)
                    .map_err(|_| LedgerError::Corrupt(format!("asset scale {scale}")))?,
            });
        }
    }
    Ok(out)
}

pub(crate) async fn balance<C: ConnectionTrait>(
    db: &C,
    assets: &AssetCache,
    tenant_id: Uuid,
    account_id: Uuid,
    as_of: AsOf,
) -> Result<(Account, BalanceReport), LedgerError> {
    let acc = account(db, tenant_id, account_id).await?;
    let scale = assets
        .resolve(db, [acc.asset.clone()])
        .await?
        .get(&acc.asset)
        .map(|a| a.scale)
        .ok_or_else(|| LedgerError::UnknownAsset(acc.asset.clone()))?;
    let b = match as_of {
        AsOf::Now => acc.balance,
        AsOf::EffectiveDate(d) => {
            posted_up_to(db, tenant_id, account_id, "effective_date", d.into()).await?
        }
        AsOf::BookedAt(t) => {
            posted_up_to(
                db,
                tenant_id,
                account_id,
                "booked_at",
                sql::micros(t).into(),
            )
            .await?
        }
    };
    let n = acc.normal_side;
    let report = BalanceReport {
        account_id,
        asset: acc.asset.clone(),
        normal_side: n,
        as_of,
        posted: decimal_of(b.posted(n), scale),
        pending: decimal_of(b.pending(n), scale),
        available: decimal_of(b.available(n), scale),
        debits: decimal_of(i128::from(b.debits_posted), scale),
        credits: decimal_of(i128::from(b.credits_posted), scale),
    };
    Ok((acc, report))
}

/// The posted counters of an account summed over its postings with `column <= bound`
/// (`effective_date` or `booked_at`, both kept on every posting for this query).
async fn posted_up_to<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    account_id: Uuid,
    column: &str,
    bound: Value,
) -> Result<Balance, LedgerError> {
    let backend = db.get_database_backend();
    let q = format!(
        "SELECT side, CAST(SUM(amount) AS TEXT) FROM ledger_postings \
         WHERE tenant_id = {} AND account_id = {} AND pending = {} AND {column} <= {} GROUP BY side",
        param(backend, 1),
        param(backend, 2),
        param(backend, 3),
        param(backend, 4)
    );
    let values = vec![tenant_id.into(), account_id.into(), false.into(), bound];
    let mut b = Balance::default();
    for row in sql::query(db, q, values).await? {
        let side_name: String = get(&row, 0)?;
        let sum: String = get(&row, 1)?;
        // At most the account's counter, which is an i64: anything else is not our data.
        let sum: i64 = sum.parse().map_err(|_| {
            LedgerError::Corrupt(format!("posted sum {sum} of account {account_id}"))
        })?;
        match sql::side(&side_name)? {
            Side::Debit => b.debits_posted = sum,
            Side::Credit => b.credits_posted = sum,
        }
    }
    Ok(b)
}

/// Most entries one page may hold.
pub const MAX_PAGE: u32 = 500;

pub(crate) async fn account_entries<C: ConnectionTrait>(
    db: &C,
    assets: &AssetCache,
    tenant_id: Uuid,
    account_id: Uuid,
    cursor: Option<i64>,
    limit: u32,
) -> Result<EntryPage, LedgerError> {
    // The account must be the caller's: another tenant's id answers "not found", not an empty page.
    account(db, tenant_id, account_id).await?;
    let limit = limit.clamp(1, MAX_PAGE);
    let backend = db.get_database_backend();
    let q = format!(
        "SELECT DISTINCT entry_id, seq FROM ledger_postings WHERE tenant_id = {} AND account_id = {} AND seq > {} \
         ORDER BY seq LIMIT {}",
        param(backend, 1),
        param(backend, 2),
        param(backend, 3),
        param(backend, 4)
    );
    let rows = sql::query(
        db,
        q,
        vec![
            tenant_id.into(),
            account_id.into(),
            cursor.unwrap_or(0).into(),
            i64::from(limit + 1).into(),
        ],
    )
    .await?;
    let mut ids: Vec<(i64, Uuid)> = rows
        .iter()
        .map(|r| Ok((get(r, 1)?, get(r, 0)?)))
        .collect::<Result<_, LedgerError>>()?;
    let more = ids.len() > limit as usize;
    ids.truncate(limit as usize);
    let id_list: Vec<Uuid> = ids.iter().map(|(_, id)| *id).collect();
    let mut records = sql::load_entries(db, tenant_id, &id_list).await?;
    records.sort_by_key(|r| r.seq);
    let scales = assets
        .resolve(
            db,
            records
                .iter()
                .flat_map(|r| r.postings.iter().map(|p| p.asset.clone())),
        )
        .await?;
    let entries = records
        .iter()
        .map(|r| to_entry(r, &scales))
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if more {
        ids.last().map(|(seq, _)| *seq)
    } else {
        None
    };
    Ok(EntryPage {
        entries,
        next_cursor,
    })
}

pub(crate) async fn trial_balance<C: ConnectionTrait>(
    db: &C,
    assets: &AssetCache,
    tenant_id: Option<Uuid>,
) -> Result<Vec<TrialBalanceLine>, LedgerError> {
    let backend = db.get_database_backend();
    // Sums as text, split in two halves (`sql::split_sum`): SQLite's SUM of integers fails
    // past i64, and every account's counters of an asset together can pass it. i128 holds
    // the combined sum.
    let (filter, values): (String, Vec<Value>) = match tenant_id {
        Some(t) => (
            format!("WHERE tenant_id = {}", param(backend, 1)),
            vec![t.into()],
        ),
        None => (String::new(), vec![]),
    };
    let q = format!(
        "SELECT asset_code, {}, {}, COUNT(*) \
         FROM ledger_accounts {filter} GROUP BY asset_code ORDER BY asset_code",
        sql::split_sum("debits_posted"),
        sql::split_sum("credits_posted"),
    );
    let rows = sql::query(db, q, values).await?;
    let codes: Vec<String> = rows
        .iter()
        .map(|r| get::<String>(r, 0))
        .collect::<Result<_, _>>()?;
    let scales: HashMap<String, Asset> = assets.resolve(db, codes).await?;
    rows.iter()
        .map(|r| {
            let asset: String = get(r, 0)?;
            let scale = scales.get(&asset).map(|a| a.scale).unwrap_or(0);
            let d = sql::split_sum_value(r, 1)?;
            let c = sql::split_sum_value(r, 3)?;
            Ok(TrialBalanceLine {
                asset,
                debits: decimal_of(d, scale),
                credits: decimal_of(c, scale),
                difference: decimal_of(d - c, scale),
                accounts: get(r, 5)?,
            })
        })
        .collect()
}

/// Holds due to expire: `(tenant, hold)`.
pub(crate) async fn due_holds<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<(Uuid, Uuid)>, LedgerError> {
    let backend = db.get_database_backend();
    let q = format!(
        "SELECT e.tenant_id, e.id FROM ledger_entries e WHERE e.expires_at IS NOT NULL AND e.expires_at <= {} \
         AND NOT EXISTS (SELECT 1 FROM ledger_hold_resolutions r WHERE r.tenant_id = e.tenant_id AND r.hold_entry_id = e.id) \
         ORDER BY e.expires_at LIMIT {}",
        param(backend, 1),
        param(backend, 2)
    );
    let rows = sql::query(db, q, vec![sql::micros(now).into(), (limit as i64).into()]).await?;
    rows.iter().map(|r| Ok((get(r, 0)?, get(r, 1)?))).collect()
}

pub(crate) async fn verify_chain<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
) -> Result<ChainReport, LedgerError> {
    const PAGE: i64 = 1_000;
    let backend = db.get_database_backend();
    let mut position = (0_i64, chain::GENESIS.to_owned());
    let mut checked = 0_u64;
    loop {
        let q = format!(
            "SELECT {} FROM ledger_entries WHERE tenant_id = {} AND seq > {} ORDER BY seq LIMIT {}",
            sql::ENTRY_COLS,
            param(backend, 1),
            param(backend, 2),
            param(backend, 3)
        );
        let rows = sql::query(
            db,
            q,
            vec![tenant_id.into(), position.0.into(), PAGE.into()],
        )
        .await?;
        let mut records = rows
            .iter()
            .map(sql::entry_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        if records.is_empty() {
            break;
        }
        let ids: Vec<Uuid> = records.iter().map(|r| r.id).collect();
        let (member, ids_values) = sql::member_of(backend, &ids, 2);
        let q = format!(
            "SELECT entry_id, account_id, asset_code, side, amount FROM ledger_postings \
             WHERE tenant_id = {} AND entry_id {member} ORDER BY entry_id, idx",
            param(backend, 1)
        );
        let mut values: Vec<Value> = vec![tenant_id.into()];
        values.extend(ids_values);
        sql::attach_postings(&mut records, &sql::query(db, q, values).await?)?;
        match chain::verify(&records, position.clone()) {
            Ok((seq, hash, n)) => {
                position = (seq, hash);
                checked += n;
            }
            Err((b, n)) => {
                return Ok(ChainReport {
                    entries_checked: checked + n,
                    first_break: Some(b),
                });
            }
        }
    }
    // The book's head must name the last entry: entries removed from the end show up here.
    let q = format!(
        "SELECT seq, hash FROM ledger_books WHERE tenant_id = {}",
        param(backend, 1)
    );
    let rows = sql::query(db, q, vec![tenant_id.into()]).await?;
    if let Some(row) = rows.first() {
        let (seq, hash): (i64, String) = (get(row, 0)?, get(row, 1)?);
        if seq != position.0 || hash != position.1 {
            return Ok(ChainReport {
                entries_checked: checked,
                first_break: Some(ChainBreak {
                    seq: position.0 + 1,
                    entry_id: None,
                    reason: format!(
                        "the book's head is entry {seq} but the chain ends at entry {} (entries missing at the end)",
                        position.0
                    ),
                }),
            });
        }
    }
    Ok(ChainReport {
        entries_checked: checked,
        first_break: None,
    })
}
