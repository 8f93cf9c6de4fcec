//! Reconciliation reads: the virtual layer (customer and wrap accounts) against the omnibus
//! (what the platform really holds for a distributor's customers), and custodian statements
//! against the omnibus.
//!
//! Account code conventions (fixed; the customers and wraps work creates the accounts):
//! `customer:{id}:cash:{CCY}` and `wrap:{id}:cash`, `wrap:{id}:units:{INSTRUMENT}` are
//! credit-normal (what the platform owes the customer); `payable:…` (fees collected from wraps
//! and owed to the distributor, the manager, the platform or the tax authority) and
//! `residual:…` (allocation residue, the platform's own) are credit-normal too: money or units
//! the omnibus still holds, owed to a partner rather than a customer; `omnibus:{ASSET}` is
//! debit-normal (what it holds at the bank or custodian). Every other account (fee accruals,
//! for one) is outside the reconciliation: it never moves what the omnibus holds. Invariant 5:
//! for each asset of each distributor's book, Σ virtual (credits − debits) = Σ omnibus
//! (debits − credits), virtual being customers + wraps + partners. Reported per book and asset,
//! and for the platform's total only when every book agrees (two books' errors must not cancel
//! out): tried by `api/tests/http/reconciliation.rs::reconciliation_is_scoped` (a deliberate
//! break in one book, holds shown apart, a past date). A custodian statement is compared with
//! the omnibus of every book as of its date, an asset missing on one side counting as 0:
//! tried by `reconciliation.rs::break_report_finds_breaks`.
//!
//! Sums are taken in SQL as text, each in two halves that cannot overflow on SQLite
//! (`sql::split_sum`), and combined in i128, as the trial balance does: exact whatever the
//! count.
//! Prefixes are matched with `substr`, not `LIKE` (case-insensitive on SQLite, and `_` is a
//! wildcard).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DatabaseTransaction, QueryResult, Value};
use serde::Serialize;
use uuid::Uuid;

use super::market::page_cursor;
use super::sql::Params;
use super::sql::{self, get};
use crate::asset::{Asset, decimal_of};
use crate::error::LedgerError;

/// Which side of the reconciliation an account is on, from its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    /// `customer:…`: a customer's free cash (virtual).
    Customer,
    /// `wrap:…`: a wrap's cash or units (virtual).
    Wrap,
    /// `payable:…` and `residual:…`: owed to a partner or the platform (virtual).
    Partner,
    /// `omnibus:…`: the real holding.
    Omnibus,
}

/// Summed counters of one group of accounts of one tenant in one asset (minor units).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldingSums {
    pub tenant_id: Uuid,
    pub asset: String,
    pub group: Group,
    pub debits_posted: i128,
    pub credits_posted: i128,
    pub debits_pending: i128,
    pub credits_pending: i128,
}

impl HoldingSums {
    /// Posted balance on the group's normal side (virtual credit-normal, omnibus debit-normal).
    pub fn posted(&self) -> i128 {
        match self.group {
            Group::Omnibus => self.debits_posted - self.credits_posted,
            Group::Customer | Group::Wrap | Group::Partner => {
                self.credits_posted - self.debits_posted
            }
        }
    }

    /// Net pending (holds) on the group's normal side.
    pub fn pending(&self) -> i128 {
        match self.group {
            Group::Omnibus => self.debits_pending - self.credits_pending,
            Group::Customer | Group::Wrap | Group::Partner => {
                self.credits_pending - self.debits_pending
            }
        }
    }
}

const GROUP_CASE: &str = "CASE WHEN substr(a.code, 1, 9) = 'customer:' THEN 'customer' \
     WHEN substr(a.code, 1, 5) = 'wrap:' THEN 'wrap' \
     WHEN substr(a.code, 1, 8) = 'payable:' OR substr(a.code, 1, 9) = 'residual:' THEN 'partner' \
     ELSE 'omnibus' END";
const GROUP_FILTER: &str = "(substr(a.code, 1, 9) = 'customer:' OR substr(a.code, 1, 5) = 'wrap:' \
     OR substr(a.code, 1, 8) = 'payable:' OR substr(a.code, 1, 9) = 'residual:' \
     OR substr(a.code, 1, 8) = 'omnibus:')";

/// Sums per (tenant, asset, group) of the customer, wrap and omnibus accounts: of `tenant`
/// only, or of every tenant; the current balances with holds (`as_of` None) or the posted
/// entries whose business date is on or before `as_of` (holds are not history: pending 0).
pub async fn holdings<C: ConnectionTrait>(
    db: &C,
    tenant: Option<Uuid>,
    as_of: Option<NaiveDate>,
) -> Result<Vec<HoldingSums>, LedgerError> {
    let mut p = Params::new(db.get_database_backend());
    let q = match as_of {
        None => {
            let scope = match tenant {
                Some(t) => format!("AND a.tenant_id = {}", p.push(t)),
                None => String::new(),
            };
            format!(
                "SELECT a.tenant_id, a.asset_code, {GROUP_CASE}, \
                 {}, {}, {}, {} \
                 FROM ledger_accounts a WHERE {GROUP_FILTER} {scope} \
                 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
                sql::split_sum("a.debits_posted"),
                sql::split_sum("a.credits_posted"),
                sql::split_sum("a.debits_pending"),
                sql::split_sum("a.credits_pending"),
            )
        }
        Some(day) => {
            let pending = p.push(false);
            let date = p.push(day);
            let scope = match tenant {
                Some(t) => format!("AND a.tenant_id = {}", p.push(t)),
                None => String::new(),
            };
            format!(
                "SELECT a.tenant_id, a.asset_code, {GROUP_CASE}, \
                 {}, {} \
                 FROM ledger_accounts a JOIN ledger_postings p \
                   ON p.tenant_id = a.tenant_id AND p.account_id = a.id \
                 WHERE p.pending = {pending} AND p.effective_date <= {date} AND {GROUP_FILTER} {scope} \
                 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
                sql::split_sum("CASE WHEN p.side = 'debit' THEN p.amount ELSE 0 END"),
                sql::split_sum("CASE WHEN p.side = 'credit' THEN p.amount ELSE 0 END"),
            )
        }
    };
    let with_pending = as_of.is_none();
    sql::query(db, q, p.values)
        .await?
        .iter()
        .map(|row| {
            let group: String = get(row, 2)?;
            Ok(HoldingSums {
                tenant_id: get(row, 0)?,
                asset: get(row, 1)?,
                group: match group.as_str() {
                    "customer" => Group::Customer,
                    "wrap" => Group::Wrap,
                    "partner" => Group::Partner,
                    _ => Group::Omnibus,
                },
                debits_posted: sql::split_sum_value(row, 3)?,
                credits_posted: sql::split_sum_value(row, 5)?,
                debits_pending: if with_pending {
                    sql::split_sum_value(row, 7)?
                } else {
                    0
                },
                credits_pending: if with_pending {
                    sql::split_sum_value(row, 9)?
                } else {
                    0
                },
            })
        })
        .collect()
}

/// The scale of each asset named.
async fn scales<C: ConnectionTrait>(
    db: &C,
    codes: impl IntoIterator<Item = String>,
) -> Result<HashMap<String, u32>, LedgerError> {
    let codes: Vec<String> = codes
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok(super::read::load_assets(db, &codes)
        .await?
        .into_iter()
        .map(|a| (a.code, a.scale))
        .collect())
}

/// The assets among `codes` that exist, by code (one query per 30,000 codes).
pub async fn assets_by_code<C: ConnectionTrait>(
    db: &C,
    codes: &[String],
) -> Result<HashMap<String, Asset>, LedgerError> {
    Ok(super::read::load_assets(db, codes)
        .await?
        .into_iter()
        .map(|a| (a.code.clone(), a))
        .collect())
}

/// Pending (holds) amounts of a line, on each side's normal side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PendingAmounts {
    pub customers: Decimal,
    pub wraps: Decimal,
    pub partners: Decimal,
    pub virtual_total: Decimal,
    pub omnibus: Decimal,
}

/// One asset: the virtual total against the omnibus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReconciliationLine {
    pub asset: String,
    /// Σ posted balances of `customer:` accounts (credits − debits).
    pub customers: Decimal,
    /// Σ posted balances of `wrap:` accounts (credits − debits).
    pub wraps: Decimal,
    /// Σ posted balances of `payable:` and `residual:` accounts (credits − debits): collected
    /// fees owed to partners and tax, allocation residue.
    pub partners: Decimal,
    /// customers + wraps + partners.
    pub virtual_total: Decimal,
    /// Σ posted balances of `omnibus:` accounts (debits − credits).
    pub omnibus: Decimal,
    /// virtual_total − omnibus: zero when reconciled.
    pub difference: Decimal,
    /// The difference is zero (for the platform's total line: in every distributor's book).
    pub reconciled: bool,
    /// What holds reserve (not yet posted), shown apart; zero for a past date.
    pub pending: PendingAmounts,
}

/// One distributor's book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TenantReconciliation {
    pub tenant_id: Uuid,
    pub reconciled: bool,
    pub assets: Vec<ReconciliationLine>,
}

/// The reconciliation report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Reconciliation {
    /// The business date, or absent for the current balances.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<NaiveDate>,
    /// Every asset is reconciled (in every book).
    pub reconciled: bool,
    /// Per asset, over every book the caller sees.
    pub assets: Vec<ReconciliationLine>,
    /// Per distributor (the platform's report only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distributors: Option<Vec<TenantReconciliation>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Acc {
    customers: i128,
    wraps: i128,
    partners: i128,
    omnibus: i128,
    p_customers: i128,
    p_wraps: i128,
    p_partners: i128,
    p_omnibus: i128,
}

impl Acc {
    fn add(&mut self, h: &HoldingSums) {
        match h.group {
            Group::Customer => {
                self.customers += h.posted();
                self.p_customers += h.pending();
            }
            Group::Wrap => {
                self.wraps += h.posted();
                self.p_wraps += h.pending();
            }
            Group::Partner => {
                self.partners += h.posted();
                self.p_partners += h.pending();
            }
            Group::Omnibus => {
                self.omnibus += h.posted();
                self.p_omnibus += h.pending();
            }
        }
    }

    fn difference(&self) -> i128 {
        self.customers + self.wraps + self.partners - self.omnibus
    }

    fn line(&self, asset: &str, scale: u32, reconciled: bool) -> ReconciliationLine {
        let d = |v: i128| decimal_of(v, scale);
        ReconciliationLine {
            asset: asset.to_owned(),
            customers: d(self.customers),
            wraps: d(self.wraps),
            partners: d(self.partners),
            virtual_total: d(self.customers + self.wraps + self.partners),
            omnibus: d(self.omnibus),
            difference: d(self.difference()),
            reconciled,
            pending: PendingAmounts {
                customers: d(self.p_customers),
                wraps: d(self.p_wraps),
                partners: d(self.p_partners),
                virtual_total: d(self.p_customers + self.p_wraps + self.p_partners),
                omnibus: d(self.p_omnibus),
            },
        }
    }
}

/// The reconciliation of `tenant`'s book, or of every book with a per-tenant breakdown.
pub async fn reconcile<C: ConnectionTrait>(
    db: &C,
    tenant: Option<Uuid>,
    as_of: Option<NaiveDate>,
) -> Result<Reconciliation, LedgerError> {
    let sums = holdings(db, tenant, as_of).await?;
    let scale = scales(db, sums.iter().map(|h| h.asset.clone())).await?;
    let scale_of = |a: &str| scale.get(a).copied().unwrap_or(0);
    let mut per_tenant: BTreeMap<Uuid, BTreeMap<String, Acc>> = BTreeMap::new();
    for h in &sums {
        per_tenant
            .entry(h.tenant_id)
            .or_default()
            .entry(h.asset.clone())
            .or_default()
            .add(h);
    }
    let mut totals: BTreeMap<String, (Acc, bool)> = BTreeMap::new();
    let mut distributors = Vec::new();
    for (tenant_id, assets) in &per_tenant {
        let mut lines = Vec::new();
        for (asset, acc) in assets {
            let ok = acc.difference() == 0;
            lines.push(acc.line(asset, scale_of(asset), ok));
            let t = totals
                .entry(asset.clone())
                .or_insert((Acc::default(), true));
            t.0.customers += acc.customers;
            t.0.wraps += acc.wraps;
            t.0.partners += acc.partners;
            t.0.omnibus += acc.omnibus;
            t.0.p_customers += acc.p_customers;
            t.0.p_wraps += acc.p_wraps;
            t.0.p_partners += acc.p_partners;
            t.0.p_omnibus += acc.p_omnibus;
            t.1 &= ok;
        }
        distributors.push(TenantReconciliation {
            tenant_id: *tenant_id,
            reconciled: lines.iter().all(|l| l.reconciled),
            assets: lines,
        });
    }
    let assets: Vec<ReconciliationLine> = totals
        .iter()
        .map(|(asset, (acc, ok))| acc.line(asset, scale_of(asset), *ok && acc.difference() == 0))
        .collect();
    Ok(Reconciliation {
        as_of,
        reconciled: assets.iter().all(|l| l.reconciled),
        assets,
        distributors: tenant.is_none().then_some(distributors),
    })
}

// ---------------------------------------------------------------------------------------
// Custodian statements

/// One position of a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StatementPosition {
    pub asset: String,
    #[schema(value_type = String, example = "123456")]
    pub quantity: Decimal,
}

/// A custodian (or bank) statement: what it says the platform holds, summed over every
/// distributor, on a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CustodianStatement {
    pub id: Uuid,
    pub as_of: NaiveDate,
    /// Who issued it (a custodian's or bank's name, a file name).
    pub source: String,
    pub uploaded_at: DateTime<Utc>,
    /// The API client that uploaded it.
    pub uploaded_by: String,
    /// Number of positions.
    pub position_count: i64,
    /// Its positions in asset order (absent in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub positions: Option<Vec<StatementPosition>>,
}

/// Stores a statement with its positions (`(asset, quantity in minor units)`, distinct,
/// checked by the caller) inside `txn`.
pub async fn create_statement(
    txn: &DatabaseTransaction,
    as_of: NaiveDate,
    source: &str,
    positions: &[(String, i64)],
    uploaded_by: &str,
    now: DateTime<Utc>,
) -> Result<Uuid, LedgerError> {
    let backend = txn.get_database_backend();
    let id = Uuid::now_v7();
    let mut p = Params::new(backend);
    let values = [
        p.push(id),
        p.push(as_of),
        p.push(source.to_owned()),
        p.push(sql::micros(now)),
        p.push(uploaded_by.to_owned()),
    ];
    let q = format!(
        "INSERT INTO custodian_statements (id, as_of, source, uploaded_at, uploaded_by) VALUES ({})",
        values.join(", ")
    );
    sql::exec(txn, q, p.values).await?;
    for chunk in positions.chunks(sql::MAX_PARAMS / 3) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 3);
        for (asset, quantity) in chunk {
            values.push(id.into());
            values.push(asset.clone().into());
            values.push((*quantity).into());
        }
        let q = format!(
            "INSERT INTO custodian_positions (statement_id, asset_code, quantity) VALUES {}",
            sql::value_rows(backend, chunk.len(), 3, 1)
        );
        sql::exec(txn, q, values).await?;
    }
    Ok(id)
}

const STATEMENT_COLS: &str = "s.id, s.as_of, s.source, s.uploaded_at, s.uploaded_by, \
     (SELECT COUNT(*) FROM custodian_positions c WHERE c.statement_id = s.id)";

fn statement_from_row(row: &QueryResult) -> Result<CustodianStatement, LedgerError> {
    Ok(CustodianStatement {
        id: get(row, 0)?,
        as_of: get(row, 1)?,
        source: get(row, 2)?,
        uploaded_at: sql::from_micros(get(row, 3)?)?,
        uploaded_by: get(row, 4)?,
        position_count: get(row, 5)?,
        positions: None,
    })
}

/// The statement `id` with its positions, if it exists.
pub async fn statement<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
) -> Result<Option<CustodianStatement>, LedgerError> {
    let mut p = Params::new(db.get_database_backend());
    let q = format!(
        "SELECT {STATEMENT_COLS} FROM custodian_statements s WHERE s.id = {}",
        p.push(id)
    );
    let Some(mut s) = sql::query(db, q, p.values)
        .await?
        .first()
        .map(statement_from_row)
        .transpose()?
    else {
        return Ok(None);
    };
    let mut p = Params::new(db.get_database_backend());
    let q = format!(
        "SELECT asset_code, quantity FROM custodian_positions WHERE statement_id = {} ORDER BY asset_code",
        p.push(id)
    );
    let rows = sql::query(db, q, p.values).await?;
    let codes: Vec<String> = rows
        .iter()
        .map(|r| get::<String>(r, 0))
        .collect::<Result<_, _>>()?;
    let scale = scales(db, codes).await?;
    let positions = rows
        .iter()
        .map(|r| {
            let asset: String = get(r, 0)?;
            let q: i64 = get(r, 1)?;
            let quantity = decimal_of(i128::from(q), scale.get(&asset).copied().unwrap_or(0));
            Ok(StatementPosition { asset, quantity })
        })
        .collect::<Result<Vec<_>, LedgerError>>()?;
    s.positions = Some(positions);
    Ok(Some(s))
}

/// A page of statements, newest first (ids are UUID v7, so id order is upload order).
pub async fn list_statements<C: ConnectionTrait>(
    db: &C,
    before: Option<Uuid>,
    limit: u64,
) -> Result<(Vec<CustodianStatement>, Option<String>), LedgerError> {
    let mut p = Params::new(db.get_database_backend());
    let scope = match before {
        Some(b) => format!("WHERE s.id < {}", p.push(b)),
        None => String::new(),
    };
    let take = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
    let q = format!(
        "SELECT {STATEMENT_COLS} FROM custodian_statements s {scope} ORDER BY s.id DESC LIMIT {}",
        p.push(take)
    );
    let mut items = sql::query(db, q, p.values)
        .await?
        .iter()
        .map(statement_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let next = page_cursor(&mut items, limit, |s| s.id.to_string());
    Ok((items, next))
}

/// One asset of a break report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BreakLine {
    pub asset: String,
    /// What the statement says (0 when the statement does not list the asset).
    pub custodian: Decimal,
    /// Σ omnibus holdings over every distributor's book, as of the statement's date.
    pub books: Decimal,
    /// custodian − books.
    pub difference: Decimal,
    /// The two differ.
    pub breaks: bool,
}

/// Counts of a break report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BreakTotals {
    /// Assets on either side.
    pub assets: u64,
    /// Assets that agree.
    pub matching: u64,
    /// Assets that differ.
    pub breaks: u64,
}

/// A statement against the books.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BreakReport {
    pub statement_id: Uuid,
    pub as_of: NaiveDate,
    pub source: String,
    /// No asset differs.
    pub clean: bool,
    pub totals: BreakTotals,
    /// Every asset on either side, in asset order.
    pub assets: Vec<BreakLine>,
    /// Only the assets that differ.
    pub breaks: Vec<BreakLine>,
}

/// The break report of statement `id`, if it exists: its positions against the omnibus
/// holdings of every book as of its date (an asset missing on one side counts as 0 there).
pub async fn break_report<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
) -> Result<Option<BreakReport>, LedgerError> {
    let Some(s) = statement(db, id).await? else {
        return Ok(None);
    };
    let sums = holdings(db, None, Some(s.as_of)).await?;
    let mut books: BTreeMap<String, i128> = BTreeMap::new();
    for h in sums.iter().filter(|h| h.group == Group::Omnibus) {
        *books.entry(h.asset.clone()).or_default() += h.posted();
    }
    let scale = scales(db, books.keys().cloned()).await?;
    let mut lines: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    for p in s.positions.iter().flatten() {
        lines.entry(p.asset.clone()).or_default().0 = p.quantity;
    }
    for (asset, minor) in &books {
        let d = decimal_of(*minor, scale.get(asset).copied().unwrap_or(0));
        lines.entry(asset.clone()).or_default().1 = d;
    }
    let assets: Vec<BreakLine> = lines
        .into_iter()
        .map(|(asset, (custodian, books))| BreakLine {
            asset,
            custodian,
            books,
            difference: custodian - books,
            breaks: custodian != books,
        })
        .collect();
    let breaks: Vec<BreakLine> = assets.iter().filter(|l| l.breaks).cloned().collect();
    let totals = BreakTotals {
        assets: assets.len() as u64,
        matching: (assets.len() - breaks.len()) as u64,
        breaks: breaks.len() as u64,
    };
    Ok(Some(BreakReport {
        statement_id: s.id,
        as_of: s.as_of,
        source: s.source,
        clean: breaks.is_empty(),
        totals,
        assets,
        breaks,
    }))
}
