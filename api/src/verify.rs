//! `wrapd verify`: checks every tenant's books and fails on any break, for an operator, a
//! schedule or a restored backup. It owns no rule of its own: each check is the ledger's.
//!
//! Per tenant (every row of `tenants`, and any tenant that has ledger accounts without one):
//! * the hash chain of its journal ([`ledger::Ledger::verify_chain`]): the first entry whose
//!   content, order or link does not match, or entries missing at the end;
//! * its trial balance ([`ledger::Ledger::trial_balance`]): Σ debits = Σ credits per asset;
//! * the reconciliation of its virtual layer with its omnibus
//!   ([`ledger::store::reconciliation::reconcile`]), for the books that have one.
//!
//! It only reads, and never migrates: a schema behind the binary is refused. It reads live
//! data, so each check is one consistent read; an entry booked between reading a chain and
//! reading its book's head looks for an instant like entries missing at the end, so that one
//! finding is read again ([`TAIL_RECHECKS`]) before it is reported; a real break stays.
//! Tried by `api/tests/http/operations_cli.rs`.

use std::collections::BTreeMap;

use ledger::chain::ChainBreak;
use ledger::store::TrialBalanceLine;
use ledger::store::reconciliation::ReconciliationLine;
use rust_decimal::Decimal;
use serde::Serialize;
use uuid::Uuid;

use crate::cli::VerifyArgs;
use crate::error::Error;
use crate::logging::redact_url;
use crate::settings::DatabaseSettings;

/// How many times a chain whose only finding is a book head ahead of its last entry is read
/// again before that finding is reported (see the module doc).
pub const TAIL_RECHECKS: usize = 3;

/// What was checked in one tenant's books.
#[derive(Debug, Serialize)]
pub struct TenantReport {
    pub tenant_id: Uuid,
    /// The tenant's name (absent for ledger accounts without a tenant row).
    pub name: Option<String>,
    /// `platform`, `distributor` or `manager`.
    pub kind: Option<String>,
    /// Every check held.
    pub ok: bool,
    /// Journal entries whose links were checked.
    pub entries_checked: u64,
    /// The first broken link of the hash chain.
    pub chain_break: Option<ChainBreak>,
    /// The trial balance, per asset.
    pub trial_balance: Vec<TrialBalanceLine>,
    /// The reconciliation with the omnibus, per asset (empty for a book without one).
    pub reconciliation: Vec<ReconciliationLine>,
    /// What broke, one sentence each.
    pub problems: Vec<String>,
}

/// The whole check.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Every tenant's books hold.
    pub ok: bool,
    pub tenants: Vec<TenantReport>,
}

impl Report {
    /// The tenants whose books broke.
    pub fn broken(&self) -> impl Iterator<Item = &TenantReport> {
        self.tenants.iter().filter(|t| !t.ok)
    }
}

/// Runs the command: the report on stdout, then an error naming every broken book.
pub async fn run(settings: &DatabaseSettings, args: &VerifyArgs) -> Result<(), Error> {
    let db = crate::db::connect(&settings.url).await?;
    let result = check_database(&db, &settings.url).await;
    let _ = db.close().await;
    let report = result?;
    if args.json {
        let text = serde_json::to_string(&report)
            .map_err(|e| Error::Other(format!("verify: cannot write the report: {e}")))?;
        println!("{text}");
    } else {
        for t in &report.tenants {
            println!("{}", line(t));
        }
    }
    let broken: Vec<String> = report
        .broken()
        .map(|t| format!("{}: {}", who(t), t.problems.join("; ")))
        .collect();
    if broken.is_empty() {
        if !args.json {
            println!(
                "verified the books of {} tenant(s): every hash chain, trial balance and \
                 reconciliation holds",
                report.tenants.len()
            );
        }
        return Ok(());
    }
    Err(Error::Other(format!(
        "the books of {} of {} tenant(s) are broken: {}",
        broken.len(),
        report.tenants.len(),
        broken.join(" | ")
    )))
}

/// Checks every tenant's books on `db` (migrated to this binary's schema).
pub async fn check_database(db: &sea_orm::DatabaseConnection, url: &str) -> Result<Report, Error> {
    let pending = crate::db::pending_names(db).await?;
    if !pending.is_empty() {
        return Err(Error::Usage(format!(
            "{} migration(s) pending on {} ({}): verify reads only; run `wrapd migrate up` first",
            pending.len(),
            redact_url(url),
            pending.join(", ")
        )));
    }
    let books = ledger::Ledger::new(db.clone());
    let reconciliation = ledger::store::reconciliation::reconcile(db, None, None).await?;
    let mut reconciled: BTreeMap<Uuid, Vec<ReconciliationLine>> = reconciliation
        .distributors
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.tenant_id, t.assets))
        .collect();
    let mut tenants = Vec::new();
    for (tenant_id, (name, kind)) in tenants_with_books(db).await? {
        let (entries_checked, chain_break) = chain(&books, tenant_id).await?;
        let trial_balance = books.trial_balance(Some(tenant_id)).await?;
        let reconciliation = reconciled.remove(&tenant_id).unwrap_or_default();
        let problems = problems(chain_break.as_ref(), &trial_balance, &reconciliation);
        tenants.push(TenantReport {
            tenant_id,
            name,
            kind,
            ok: problems.is_empty(),
            entries_checked,
            chain_break,
            trial_balance,
            reconciliation,
            problems,
        });
    }
    Ok(Report {
        ok: tenants.iter().all(|t| t.ok),
        tenants,
    })
}

/// A tenant's chain: entries checked and the first break, a missing tail read again
/// (module doc).
async fn chain(
    books: &ledger::Ledger,
    tenant_id: Uuid,
) -> Result<(u64, Option<ChainBreak>), Error> {
    let mut report = books.verify_chain(tenant_id).await?;
    for _ in 0..TAIL_RECHECKS {
        match &report.first_break {
            Some(b) if b.entry_id.is_none() => {
                report = books.verify_chain(tenant_id).await?;
            }
            _ => break,
        }
    }
    Ok((report.entries_checked, report.first_break))
}

/// What broke, in words an operator acts on.
fn problems(
    chain_break: Option<&ChainBreak>,
    trial_balance: &[TrialBalanceLine],
    reconciliation: &[ReconciliationLine],
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(b) = chain_break {
        let entry = b.entry_id.map(|id| format!(" ({id})")).unwrap_or_default();
        out.push(format!(
            "hash chain broken at entry {}{entry}: {}",
            b.seq, b.reason
        ));
    }
    for line in trial_balance
        .iter()
        .filter(|l| l.difference != Decimal::ZERO)
    {
        out.push(format!(
            "trial balance off by {} in {} (debits {}, credits {})",
            line.difference, line.asset, line.debits, line.credits
        ));
    }
    for line in reconciliation.iter().filter(|l| !l.reconciled) {
        out.push(format!(
            "does not reconcile in {}: customers, wraps and partners {} against omnibus {} \
             (difference {})",
            line.asset, line.virtual_total, line.omnibus, line.difference
        ));
    }
    out
}

/// Every tenant with its name and kind, and any tenant id that has ledger accounts but no
/// tenant row (the books are checked all the same), in id order.
async fn tenants_with_books(
    db: &sea_orm::DatabaseConnection,
) -> Result<BTreeMap<Uuid, (Option<String>, Option<String>)>, Error> {
    use ledger::sql::{get, query};
    let mut out = BTreeMap::new();
    for row in query(db, "SELECT id, name, kind FROM tenants".to_owned(), vec![]).await? {
        out.insert(
            get::<Uuid>(&row, 0)?,
            (Some(get::<String>(&row, 1)?), Some(get::<String>(&row, 2)?)),
        );
    }
    let sql = "SELECT DISTINCT tenant_id FROM ledger_accounts".to_owned();
    for row in query(db, sql, vec![]).await? {
        out.entry(get::<Uuid>(&row, 0)?).or_insert((None, None));
    }
    Ok(out)
}

/// `name (kind, id)`, or the id alone.
fn who(t: &TenantReport) -> String {
    match (&t.name, &t.kind) {
        (Some(name), Some(kind)) => format!("tenant {name} ({kind}, {})", t.tenant_id),
        _ => format!("tenant {}", t.tenant_id),
    }
}

/// One line of the text report.
fn line(t: &TenantReport) -> String {
    if !t.ok {
        return format!("BROKEN {}: {}", who(t), t.problems.join("; "));
    }
    let assets: Vec<&str> = t.trial_balance.iter().map(|l| l.asset.as_str()).collect();
    let reconciled = if t.reconciliation.is_empty() {
        String::new()
    } else {
        format!(
            ", reconciled in {}",
            t.reconciliation
                .iter()
                .map(|l| l.asset.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    format!(
        "ok     {}: chain of {} entries, balanced in {}{reconciled}",
        who(t),
        t.entries_checked,
        if assets.is_empty() {
            "no asset".to_owned()
        } else {
            assets.join(", ")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tb(asset: &str, debits: i64, credits: i64) -> TrialBalanceLine {
        TrialBalanceLine {
            asset: asset.to_owned(),
            debits: Decimal::from(debits),
            credits: Decimal::from(credits),
            difference: Decimal::from(debits - credits),
            accounts: 2,
        }
    }

    #[test]
    fn every_kind_of_break_is_named() {
        let brk = ChainBreak {
            seq: 3,
            entry_id: None,
            reason: "entries missing at the end".to_owned(),
        };
        let found = problems(Some(&brk), &[tb("JPY", 10, 10), tb("USD", 11, 10)], &[]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with("hash chain broken at entry 3:"),
            "{found:?}"
        );
        assert!(
            found[1].contains("trial balance off by 1 in USD"),
            "{found:?}"
        );
        assert!(problems(None, &[tb("JPY", 5, 5)], &[]).is_empty());
    }
}
