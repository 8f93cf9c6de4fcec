//! Step `checks` (always last): the books must be right before a date finishes.
//!
//! * the trial balance nets to zero in every asset (Σ debits = Σ credits over all accounts);
//! * the virtual layer reconciles exactly: per distributor and asset, Σ customer + Σ wrap
//!   accounts = the omnibus ([`ledger::store::reconciliation::reconcile`]);
//! * no no-negative account has a negative posted balance.
//!
//! Any failure returns [`EodError::ChecksFailed`] with every reason found; the driver
//! records the step `failed` and the date stays unfinished. Tried by
//! `api/tests/http/eod.rs::failing_checks_stop_the_day`.

use chrono::NaiveDate;
use ledger::Ledger;
use rust_decimal::Decimal;
use sea_orm::DatabaseTransaction;
use serde_json::json;

use super::EodError;
use ledger::sql::{get, query};

/// Runs the checks; `Ok` with what was checked, or [`EodError::ChecksFailed`].
pub async fn run(
    txn: &DatabaseTransaction,
    ledger: &Ledger,
    date: NaiveDate,
) -> Result<serde_json::Value, EodError> {
    let mut reasons: Vec<String> = Vec::new();
    // In the step's transaction (this step writes nothing before it), never through a second
    // connection of the pool, which requests waiting for the books' locks may all hold.
    let tb = ledger.trial_balance_in(txn, None).await?;
    for line in &tb {
        if line.difference != Decimal::ZERO {
            reasons.push(format!(
                "the trial balance is off by {} in {}",
                line.difference, line.asset
            ));
        }
    }
    let rec = ledger::store::reconciliation::reconcile(txn, None, None).await?;
    for t in rec.distributors.iter().flatten() {
        for line in t.assets.iter().filter(|l| !l.reconciled) {
            reasons.push(format!(
                "tenant {} does not reconcile in {}: customers and wraps {} against omnibus {} (difference {})",
                t.tenant_id, line.asset, line.virtual_total, line.omnibus, line.difference
            ));
        }
    }
    if !rec.reconciled && reasons.iter().all(|r| !r.contains("reconcile")) {
        reasons.push("the books do not reconcile".to_owned());
    }
    let negative = query(
        txn,
        "SELECT code FROM ledger_accounts WHERE no_negative = TRUE AND \
         ((normal_side = 'credit' AND credits_posted < debits_posted) OR \
          (normal_side = 'debit' AND debits_posted < credits_posted)) ORDER BY code LIMIT 10"
            .to_owned(),
        vec![],
    )
    .await?;
    for r in &negative {
        let code: String = get(r, 0)?;
        reasons.push(format!("no-negative account {code} is below zero"));
    }
    if !reasons.is_empty() {
        return Err(EodError::ChecksFailed {
            date,
            reason: reasons.join("; "),
        });
    }
    Ok(json!({
        "assets_balanced": tb.len(),
        "reconciled": true,
        "negative_accounts": 0,
    }))
}
