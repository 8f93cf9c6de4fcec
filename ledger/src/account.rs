//! Accounts and their balances.
//!
//! Balances are kept TigerBeetle-style as four non-negative counters (debits and credits,
//! posted and pending); the signed balance comes from the account's normal side. Invariant
//! owned here: a no-negative account's *available* balance (posted minus pending outflows)
//! never goes below zero ([`Balance::check_available`]); tested by
//! `rules::tests::no_negative_counts_holds` and the store's property and concurrency tests.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::LedgerError;

/// Debit or credit.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Left side: increases assets and expenses.
    Debit,
    /// Right side: increases liabilities, equity and income.
    Credit,
}

impl Side {
    /// The other side.
    pub fn opposite(self) -> Self {
        match self {
            Side::Debit => Side::Credit,
            Side::Credit => Side::Debit,
        }
    }

    /// The name stored in the database and used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Debit => "debit",
            Side::Credit => "credit",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "debit" => Some(Side::Debit),
            "credit" => Some(Side::Credit),
            _ => None,
        }
    }
}

/// What to create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAccount {
    /// The owning tenant.
    pub tenant_id: Uuid,
    /// Unique within the tenant, hierarchical text such as `wrap:<id>:cash`.
    pub code: String,
    /// The asset the account holds.
    pub asset: String,
    /// The side that increases its balance.
    pub normal_side: Side,
    /// Refuse any entry that would take the available balance below zero.
    pub no_negative: bool,
    /// Free-form JSON object.
    pub metadata: serde_json::Value,
}

impl NewAccount {
    /// Checks the fields that need no database.
    pub fn validate(&self) -> Result<(), LedgerError> {
        let code_ok = !self.code.is_empty()
            && self.code.len() <= 200
            && self
                .code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-' | '.' | '/'));
        if !code_ok {
            return Err(LedgerError::InvalidAccount(format!(
                "account code {:?} must be 1-200 characters of A-Z, a-z, 0-9, ':', '_', '-', '.', '/'",
                self.code
            )));
        }
        if !self.metadata.is_object() {
            return Err(LedgerError::InvalidAccount(
                "account metadata must be a JSON object".to_owned(),
            ));
        }
        Ok(())
    }
}

/// An account with its current balance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// UUID v7.
    pub id: Uuid,
    /// The owning tenant.
    pub tenant_id: Uuid,
    /// Unique within the tenant.
    pub code: String,
    /// The asset it holds.
    pub asset: String,
    /// The side that increases its balance.
    pub normal_side: Side,
    /// No entry may take its available balance below zero.
    pub no_negative: bool,
    /// Closed accounts accept no postings.
    pub closed: bool,
    /// Free-form JSON object.
    pub metadata: serde_json::Value,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Its balance counters.
    pub balance: Balance,
}

/// The four counters of an account, in minor units, each only ever growing by postings and
/// shrinking only when a hold is released.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// Sum of posted debits.
    pub debits_posted: i64,
    /// Sum of posted credits.
    pub credits_posted: i64,
    /// Sum of debits reserved by unresolved holds.
    pub debits_pending: i64,
    /// Sum of credits reserved by unresolved holds.
    pub credits_pending: i64,
}

/// A counter of a [`Balance`] would leave the `i64` range (or a release exceed what is
/// pending); the caller turns it into [`LedgerError::Overflow`] naming the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterOverflow;

impl Balance {
    /// Posted balance, positive on the normal side.
    pub fn posted(&self, normal: Side) -> i128 {
        let (d, c) = (
            i128::from(self.debits_posted),
            i128::from(self.credits_posted),
        );
        match normal {
            Side::Debit => d - c,
            Side::Credit => c - d,
        }
    }

    /// Net pending amount, positive on the normal side.
    pub fn pending(&self, normal: Side) -> i128 {
        let (d, c) = (
            i128::from(self.debits_pending),
            i128::from(self.credits_pending),
        );
        match normal {
            Side::Debit => d - c,
            Side::Credit => c - d,
        }
    }

    /// Posted balance less what holds may still take out (pending inflows are not counted
    /// until they are posted: a hold that might be voided must not fund a spend).
    pub fn available(&self, normal: Side) -> i128 {
        let outflow = match normal {
            Side::Debit => self.credits_pending,
            Side::Credit => self.debits_pending,
        };
        self.posted(normal) - i128::from(outflow)
    }

    /// Adds `amount` to one counter, refusing an overflow of the `i64` counters (the caller
    /// names the account: [`crate::rules::apply_changes`]).
    pub fn add(&mut self, side: Side, pending: bool, amount: i64) -> Result<(), CounterOverflow> {
        let counter = self.counter(side, pending);
        *counter = counter.checked_add(amount).ok_or(CounterOverflow)?;
        Ok(())
    }

    /// Releases `amount` from a pending counter (a hold being committed, voided or expiring).
    pub fn release(&mut self, side: Side, amount: i64) -> Result<(), CounterOverflow> {
        let counter = self.counter(side, true);
        let left = counter.checked_sub(amount).filter(|v| *v >= 0);
        debug_assert!(left.is_some(), "released more than was pending");
        *counter = left.ok_or(CounterOverflow)?;
        Ok(())
    }

    fn counter(&mut self, side: Side, pending: bool) -> &mut i64 {
        match (side, pending) {
            (Side::Debit, false) => &mut self.debits_posted,
            (Side::Credit, false) => &mut self.credits_posted,
            (Side::Debit, true) => &mut self.debits_pending,
            (Side::Credit, true) => &mut self.credits_pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_balances_follow_the_normal_side() {
        let b = Balance {
            debits_posted: 100,
            credits_posted: 30,
            debits_pending: 5,
            credits_pending: 20,
        };
        assert_eq!(b.posted(Side::Debit), 70);
        assert_eq!(b.posted(Side::Credit), -70);
        assert_eq!(b.pending(Side::Debit), -15);
        assert_eq!(b.available(Side::Debit), 50);
        assert_eq!(b.available(Side::Credit), -75);
    }

    #[test]
    fn counters_refuse_overflow() {
        let mut b = Balance {
            debits_posted: i64::MAX,
            ..Balance::default()
        };
        assert_eq!(b.add(Side::Debit, false, 1), Err(CounterOverflow));
        assert_eq!(b.debits_posted, i64::MAX);
    }

    #[test]
    fn account_codes_and_metadata_are_checked() {
        let mut a = NewAccount {
            tenant_id: Uuid::nil(),
            code: "wrap:0191:cash".into(),
            asset: "JPY".into(),
            normal_side: Side::Debit,
            no_negative: true,
            metadata: serde_json::json!({}),
        };
        assert!(a.validate().is_ok());
        a.code = "has space".into();
        assert!(a.validate().is_err());
        a.code = "ok".into();
        a.metadata = serde_json::json!([1]);
        assert!(a.validate().is_err());
    }
}
