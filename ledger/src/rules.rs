//! The posting rules, as plain functions over plain types (no database here).
//!
//! Invariants enforced here, each tried by the tests named:
//! * every entry balances per asset: debits equal credits for each asset in it
//!   ([`check_balanced`]; `tests::unbalanced_entry_names_asset_and_difference`);
//! * every posting names an account of the entry's tenant, of the posting's asset, open, with an
//!   amount > 0 at no more decimals than the asset's scale ([`validate_postings`]; `tests::each_posting_rule_is_enforced`);
//! * a no-negative account's available balance (posted less pending outflows) stays >= 0
//!   after the entry ([`apply_changes`]; `tests::no_negative_counts_holds`).
//!
//! The store calls these on the balances it has locked, so the checks see the latest state.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use crate::account::{Balance, Side};
use crate::asset::decimal_of;
use crate::entry::{MAX_POSTINGS, NewPosting};
use crate::error::LedgerError;

/// An account as the rules need to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountView {
    /// The account.
    pub id: Uuid,
    /// Its tenant.
    pub tenant_id: Uuid,
    /// Its code (for error messages).
    pub code: String,
    /// Its asset.
    pub asset: String,
    /// The scale of its asset.
    pub scale: u32,
    /// Its normal side.
    pub normal_side: Side,
    /// Whether its available balance must stay >= 0.
    pub no_negative: bool,
    /// Whether it is closed.
    pub closed: bool,
    /// Its balance now.
    pub balance: Balance,
}

/// A validated posting in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The account.
    pub account_id: Uuid,
    /// The asset.
    pub asset: String,
    /// The asset's scale.
    pub scale: u32,
    /// Debit or credit.
    pub side: Side,
    /// Minor units, > 0.
    pub amount: i64,
}

/// One change to a balance counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Add to the posted counter of a side.
    Post(Uuid, Side, i64),
    /// Add to the pending counter of a side (a hold reserving).
    Reserve(Uuid, Side, i64),
    /// Take back from the pending counter of a side (a hold released).
    Release(Uuid, Side, i64),
}

/// Checks each posting against its account and converts amounts to minor units.
/// `account` answers `None` for an id that does not exist *or belongs to another tenant*.
pub fn validate_postings<'a>(
    tenant_id: Uuid,
    postings: &[NewPosting],
    account: impl Fn(Uuid) -> Option<&'a AccountView>,
) -> Result<Vec<Line>, LedgerError> {
    if postings.len() < 2 {
        return Err(LedgerError::InvalidEntry(format!(
            "an entry needs at least two postings, got {}",
            postings.len()
        )));
    }
    if postings.len() > MAX_POSTINGS {
        return Err(LedgerError::InvalidEntry(format!(
            "an entry holds at most {MAX_POSTINGS} postings, got {}",
            postings.len()
        )));
    }
    let mut lines = Vec::with_capacity(postings.len());
    for (index, p) in postings.iter().enumerate() {
        let acc = account(p.account_id)
            .filter(|a| a.tenant_id == tenant_id)
            .ok_or(LedgerError::AccountNotFound(p.account_id))?;
        if acc.asset != p.asset {
            return Err(LedgerError::AssetMismatch {
                index,
                account_id: acc.id,
                account_asset: acc.asset.clone(),
                posting_asset: p.asset.clone(),
            });
        }
        if p.amount.is_sign_negative() || p.amount.is_zero() {
            return Err(LedgerError::NonPositiveAmount { index });
        }
        let amount = crate::asset::Amount::try_new(p.amount, acc.scale).map_err(|reason| {
            LedgerError::InvalidAmount {
                asset: p.asset.clone(),
                value: p.amount.to_string(),
                reason,
            }
        })?;
        if acc.closed {
            return Err(LedgerError::AccountClosed(acc.id));
        }
        lines.push(Line {
            account_id: acc.id,
            asset: acc.asset.clone(),
            scale: acc.scale,
            side: p.side,
            amount: amount.minor(),
        });
    }
    check_balanced(&lines)?;
    Ok(lines)
}

/// Debits equal credits for every asset; otherwise names the first unbalanced asset (by code)
/// with both totals and the difference.
pub fn check_balanced(lines: &[Line]) -> Result<(), LedgerError> {
    let mut totals: BTreeMap<&str, (i128, i128, u32)> = BTreeMap::new();
    for l in lines {
        let t = totals.entry(&l.asset).or_insert((0, 0, l.scale));
        match l.side {
            Side::Debit => t.0 += i128::from(l.amount),
            Side::Credit => t.1 += i128::from(l.amount),
        }
    }
    match totals.into_iter().find(|(_, (d, c, _))| d != c) {
        None => Ok(()),
        Some((asset, (d, c, scale))) => Err(LedgerError::Unbalanced {
            asset: asset.to_owned(),
            debits: decimal_of(d, scale).to_string(),
            credits: decimal_of(c, scale).to_string(),
            difference: decimal_of(d - c, scale).to_string(),
        }),
    }
}

/// Applies `changes` to the current balances (read through `current`) and returns the new
/// balance of every touched account, or the first refusal: a counter overflow, or a
/// no-negative account whose available balance would fall below zero.
pub fn apply_changes<'a>(
    changes: &[Change],
    current: impl Fn(Uuid) -> Option<&'a AccountView>,
    balance_of: impl Fn(&AccountView) -> Balance,
) -> Result<HashMap<Uuid, Balance>, LedgerError> {
    let mut next: HashMap<Uuid, Balance> = HashMap::with_capacity(changes.len());
    for change in changes {
        let (id, side, amount) = match *change {
            Change::Post(id, s, a) | Change::Reserve(id, s, a) | Change::Release(id, s, a) => {
                (id, s, a)
            }
        };
        let view = current(id).ok_or(LedgerError::AccountNotFound(id))?;
        let bal = next.entry(id).or_insert_with(|| balance_of(view));
        let changed = match change {
            Change::Post(..) => bal.add(side, false, amount),
            Change::Reserve(..) => bal.add(side, true, amount),
            Change::Release(..) => bal.release(side, amount),
        };
        changed.map_err(|_| LedgerError::Overflow {
            account_id: view.id,
            code: view.code.clone(),
            asset: view.asset.clone(),
            max: i64::MAX,
        })?;
    }
    // Checked after all changes, so that an entry moving money through an account is judged
    // by where it leaves the account, not by the order of its postings.
    let mut touched: Vec<&Uuid> = next.keys().collect();
    touched.sort();
    for id in touched {
        let Some(view) = current(*id) else { continue };
        if !view.no_negative {
            continue;
        }
        let after = next
            .get(id)
            .map(|b| b.available(view.normal_side))
            .unwrap_or(0);
        if after < 0 {
            let before = balance_of(view).available(view.normal_side);
            return Err(LedgerError::WouldGoNegative {
                account_id: view.id,
                code: view.code.clone(),
                asset: view.asset.clone(),
                available: decimal_of(before, view.scale).to_string(),
                after: decimal_of(after, view.scale).to_string(),
            });
        }
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn view(tenant: Uuid, asset: &str, scale: u32, no_negative: bool) -> AccountView {
        AccountView {
            id: Uuid::now_v7(),
            tenant_id: tenant,
            code: format!("acc:{asset}"),
            asset: asset.into(),
            scale,
            normal_side: Side::Debit,
            no_negative,
            closed: false,
            balance: Balance::default(),
        }
    }

    fn lookup<'a>(views: &'a [AccountView]) -> impl Fn(Uuid) -> Option<&'a AccountView> {
        move |id| views.iter().find(|v| v.id == id)
    }

    #[test]
    fn unbalanced_entry_names_asset_and_difference() {
        let t = Uuid::now_v7();
        let v = [view(t, "USD", 2, false), view(t, "USD", 2, false)];
        let ps = [
            NewPosting::debit(v[0].id, "USD", Decimal::new(1000, 2)),
            NewPosting::credit(v[1].id, "USD", Decimal::new(999, 2)),
        ];
        let err = validate_postings(t, &ps, lookup(&v))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("entry does not balance in USD: debits 10.00, credits 9.99 (difference 0.01)")
        );
    }

    #[test]
    fn counter_overflow_names_the_account() {
        let t = Uuid::now_v7();
        let mut full = view(t, "JPY", 0, false);
        full.balance.debits_posted = i64::MAX - 1;
        let views = [full];
        let id = views[0].id;
        let ok = apply_changes(&[Change::Post(id, Side::Debit, 1)], lookup(&views), |v| {
            v.balance
        });
        assert!(ok.is_ok());
        let err = apply_changes(&[Change::Post(id, Side::Debit, 2)], lookup(&views), |v| {
            v.balance
        });
        match err {
            Err(LedgerError::Overflow {
                account_id, code, ..
            }) => {
                assert_eq!(account_id, id);
                assert_eq!(code, "acc:JPY");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn balance_is_checked_per_asset() {
        let t = Uuid::now_v7();
        let v = [
            view(t, "JPY", 0, false),
            view(t, "F1", 0, false),
            view(t, "JPY", 0, false),
            view(t, "F1", 0, false),
        ];
        // Balanced in total amount, but not per asset.
        let ps = [
            NewPosting::debit(v[0].id, "JPY", Decimal::from(100)),
            NewPosting::credit(v[1].id, "F1", Decimal::from(100)),
        ];
        assert!(matches!(
            validate_postings(t, &ps, lookup(&v)),
            Err(LedgerError::Unbalanced { asset, .. }) if asset == "F1"
        ));
        let ps = [
            NewPosting::debit(v[0].id, "JPY", Decimal::from(100)),
            NewPosting::credit(v[2].id, "JPY", Decimal::from(100)),
            NewPosting::debit(v[1].id, "F1", Decimal::from(7)),
            NewPosting::credit(v[3].id, "F1", Decimal::from(7)),
        ];
        assert_eq!(
            validate_postings(t, &ps, lookup(&v)).map(|l| l.len()).ok(),
            Some(4)
        );
    }

    #[test]
    fn each_posting_rule_is_enforced() {
        let t = Uuid::now_v7();
        let other = Uuid::now_v7();
        let mut v = vec![
            view(t, "JPY", 0, false),
            view(t, "JPY", 0, false),
            view(other, "JPY", 0, false),
            view(t, "USD", 2, false),
        ];
        let (a, b, foreign, usd) = (v[0].id, v[1].id, v[2].id, v[3].id);
        let pair = |x: Uuid, y: Uuid, amt: Decimal| {
            vec![
                NewPosting::debit(x, "JPY", amt),
                NewPosting::credit(y, "JPY", amt),
            ]
        };
        let one = Decimal::ONE;
        // Too few postings.
        assert!(matches!(
            validate_postings(t, &pair(a, b, one)[..1], lookup(&v)),
            Err(LedgerError::InvalidEntry(_))
        ));
        // Unknown and foreign accounts answer alike.
        let ghost = Uuid::now_v7();
        assert!(
            matches!(validate_postings(t, &pair(a, ghost, one), lookup(&v)), Err(LedgerError::AccountNotFound(id)) if id == ghost)
        );
        assert!(
            matches!(validate_postings(t, &pair(a, foreign, one), lookup(&v)), Err(LedgerError::AccountNotFound(id)) if id == foreign)
        );
        // Asset mismatch.
        assert!(matches!(
            validate_postings(t, &pair(a, usd, one), lookup(&v)),
            Err(LedgerError::AssetMismatch { index: 1, .. })
        ));
        // Zero and negative amounts.
        assert!(matches!(
            validate_postings(t, &pair(a, b, Decimal::ZERO), lookup(&v)),
            Err(LedgerError::NonPositiveAmount { index: 0 })
        ));
        assert!(matches!(
            validate_postings(t, &pair(a, b, -one), lookup(&v)),
            Err(LedgerError::NonPositiveAmount { index: 0 })
        ));
        // More decimals than the scale.
        assert!(matches!(
            validate_postings(t, &pair(a, b, Decimal::new(15, 1)), lookup(&v)),
            Err(LedgerError::InvalidAmount { .. })
        ));
        // Closed account.
        v[1].closed = true;
        assert!(
            matches!(validate_postings(t, &pair(a, b, one), lookup(&v)), Err(LedgerError::AccountClosed(id)) if id == b)
        );
    }

    #[test]
    fn no_negative_counts_holds() {
        let t = Uuid::now_v7();
        let mut cash = view(t, "JPY", 0, true);
        cash.balance = Balance {
            debits_posted: 1_000,
            credits_posted: 0,
            debits_pending: 0,
            credits_pending: 600, // a hold reserves 600 of it
        };
        let v = [cash];
        let id = v[0].id;
        let bal = |a: &AccountView| a.balance;
        // 400 is available: spending 400 is fine, 401 is not.
        assert!(apply_changes(&[Change::Post(id, Side::Credit, 400)], lookup(&v), bal).is_ok());
        let err = apply_changes(&[Change::Post(id, Side::Credit, 401)], lookup(&v), bal)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("would go negative: available 400 JPY, after this entry -1"),
            "{err}"
        );
        // A new hold is counted the same way.
        assert!(apply_changes(&[Change::Reserve(id, Side::Credit, 401)], lookup(&v), bal).is_err());
        // Releasing the hold frees its amount again.
        let next = apply_changes(
            &[
                Change::Release(id, Side::Credit, 600),
                Change::Post(id, Side::Credit, 1_000),
            ],
            lookup(&v),
            bal,
        );
        assert_eq!(
            next.ok()
                .and_then(|m| m.get(&id).map(|b| b.available(Side::Debit))),
            Some(0)
        );
    }

    #[test]
    fn ordinary_accounts_may_go_negative() {
        let t = Uuid::now_v7();
        let v = [view(t, "JPY", 0, false)];
        let next = apply_changes(&[Change::Post(v[0].id, Side::Credit, 5)], lookup(&v), |a| {
            a.balance
        });
        assert_eq!(
            next.ok()
                .and_then(|m| m.get(&v[0].id).map(|b| b.posted(Side::Debit))),
            Some(-5)
        );
    }
}
