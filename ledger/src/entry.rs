//! Journal entries: what a caller asks to post, and what the books record.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::account::Side;
use crate::error::LedgerError;

/// Most postings one entry may carry (a bound on every loop over an entry).
pub const MAX_POSTINGS: usize = 1_000;
/// Most entries one atomic batch may carry.
pub const MAX_BATCH: usize = 10_000;

/// One line of a requested entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NewPosting {
    /// The account, which must belong to the entry's tenant, hold `asset` and be open.
    pub account_id: Uuid,
    /// The asset moved; must be the account's asset.
    pub asset: String,
    /// Debit or credit.
    pub side: Side,
    /// Greater than zero, with no more decimals than the asset's scale.
    pub amount: Decimal,
}

impl NewPosting {
    /// A debit of `amount` of `asset` to `account_id`.
    pub fn debit(account_id: Uuid, asset: &str, amount: Decimal) -> Self {
        Self {
            account_id,
            asset: asset.to_owned(),
            side: Side::Debit,
            amount,
        }
    }

    /// A credit of `amount` of `asset` to `account_id`.
    pub fn credit(account_id: Uuid, asset: &str, amount: Decimal) -> Self {
        Self {
            account_id,
            asset: asset.to_owned(),
            side: Side::Credit,
            amount,
        }
    }
}

/// A request to post an entry (or, with `hold`, to place a pending one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEntry {
    /// The tenant whose books it goes into.
    pub tenant_id: Uuid,
    /// Unique per tenant: the same key with the same content returns the first entry.
    pub idempotency_key: String,
    /// What kind of movement it is, such as `deposit` or `fee_accrual`.
    pub kind: String,
    /// The business date it belongs to.
    pub effective_date: NaiveDate,
    /// Human-readable text.
    pub description: String,
    /// Free-form JSON object.
    pub metadata: serde_json::Value,
    /// Two or more postings, balanced per asset.
    pub postings: Vec<NewPosting>,
    /// When set, the entry is a hold: it reserves its amounts until committed, voided or expired.
    pub hold: Option<HoldTerms>,
}

/// Terms of a hold (a pending, two-phase entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldTerms {
    /// After this instant the hold can no longer be committed, and the expiry sweep releases it.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A request to reverse a posted entry with its mirror image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reversal {
    /// The tenant whose entry it is.
    pub tenant_id: Uuid,
    /// The entry to reverse.
    pub entry_id: Uuid,
    /// Idempotency key of the reversing entry.
    pub idempotency_key: String,
    /// Business date of the reversing entry.
    pub effective_date: NaiveDate,
    /// Why it is reversed.
    pub description: String,
}

/// A request to post a hold, in full (`postings: None`) or in part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldCommit {
    /// The tenant whose hold it is.
    pub tenant_id: Uuid,
    /// The pending entry.
    pub hold_id: Uuid,
    /// Idempotency key of the posted entry.
    pub idempotency_key: String,
    /// Business date of the posted entry.
    pub effective_date: NaiveDate,
    /// `None` posts every amount of the hold; otherwise the postings to make, each on an
    /// (account, side) of the hold for no more than the hold reserved there, balanced per
    /// asset. Whatever is not posted is released.
    pub postings: Option<Vec<NewPosting>>,
}

/// One write the ledger can perform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Operation {
    /// Post an entry, or place a hold.
    Post(NewEntry),
    /// Reverse a posted entry.
    Reverse(Reversal),
    /// Post a hold.
    CommitHold(HoldCommit),
    /// Release a hold without posting it.
    VoidHold {
        /// The tenant whose hold it is.
        tenant_id: Uuid,
        /// The pending entry.
        hold_id: Uuid,
    },
    /// Release a hold whose expiry time has passed (used by the expiry sweep).
    ExpireHold {
        /// The tenant whose hold it is.
        tenant_id: Uuid,
        /// The pending entry.
        hold_id: Uuid,
        /// The sweep's clock.
        now: DateTime<Utc>,
    },
}

impl Operation {
    /// The tenant the operation writes to.
    pub fn tenant_id(&self) -> Uuid {
        match self {
            Operation::Post(e) => e.tenant_id,
            Operation::Reverse(r) => r.tenant_id,
            Operation::CommitHold(c) => c.tenant_id,
            Operation::VoidHold { tenant_id, .. } | Operation::ExpireHold { tenant_id, .. } => {
                *tenant_id
            }
        }
    }
}

/// Whether an entry is posted or is a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryStatus {
    /// Moves balances.
    Posted,
    /// A hold: reserves amounts in the pending counters.
    Pending,
}

impl EntryStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryStatus::Posted => "posted",
            EntryStatus::Pending => "pending",
        }
    }
}

/// How a hold ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldState {
    /// Not resolved yet.
    Pending,
    /// Posted (fully or in part) by a commit entry.
    Committed,
    /// Released by a void.
    Voided,
    /// Released by the expiry sweep.
    Expired,
}

impl HoldState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldState::Pending => "pending",
            HoldState::Committed => "committed",
            HoldState::Voided => "voided",
            HoldState::Expired => "expired",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(HoldState::Pending),
            "committed" => Some(HoldState::Committed),
            "voided" => Some(HoldState::Voided),
            "expired" => Some(HoldState::Expired),
            _ => None,
        }
    }
}

/// A recorded posting, amounts in exact decimals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Posting {
    /// The account.
    pub account_id: Uuid,
    /// The asset.
    pub asset: String,
    /// Debit or credit.
    pub side: Side,
    /// Exact amount, > 0.
    pub amount: Decimal,
}

/// A recorded entry. Never changes once written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Entry {
    /// UUID v7.
    pub id: Uuid,
    /// The tenant.
    pub tenant_id: Uuid,
    /// Position in the tenant's hash chain, from 1.
    pub seq: i64,
    /// The caller's idempotency key.
    pub idempotency_key: String,
    /// What kind of movement.
    pub kind: String,
    /// Posted, or a hold.
    pub status: EntryStatus,
    /// Business date.
    pub effective_date: NaiveDate,
    /// When the books recorded it.
    pub booked_at: DateTime<Utc>,
    /// Human-readable text.
    pub description: String,
    /// Free-form JSON object.
    pub metadata: serde_json::Value,
    /// The entry this one reverses.
    pub reverses_entry_id: Option<Uuid>,
    /// For a commit, the hold it posts.
    pub hold_entry_id: Option<Uuid>,
    /// For a hold, when it expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Hash of the tenant's previous entry (hex SHA-256).
    pub prev_hash: String,
    /// This entry's hash (hex SHA-256).
    pub hash: String,
    /// Its postings, in order.
    pub postings: Vec<Posting>,
}

/// The result of a write: the entry, and whether it was a replay of an earlier request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Posted {
    /// The entry written now, or found by its idempotency key.
    pub entry: Entry,
    /// True when nothing was written because the same request had been posted before.
    pub replayed: bool,
}

/// What a write operation produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// An entry (post, reversal, commit). Boxed: an entry is large, a release is small.
    Entry(Box<Posted>),
    /// A hold released without an entry (void or expiry); `already` when it had been before.
    Released {
        /// The hold.
        hold_id: Uuid,
        /// Voided or expired.
        state: HoldState,
        /// True when it had already been released the same way (a replayed void).
        already: bool,
    },
}

pub(crate) fn check_key(key: &str) -> Result<(), LedgerError> {
    if key.is_empty() || key.len() > 200 || key.chars().any(char::is_control) {
        return Err(LedgerError::InvalidEntry(
            "idempotency key must be 1-200 characters with no control characters".to_owned(),
        ));
    }
    Ok(())
}

pub(crate) fn check_kind(kind: &str) -> Result<(), LedgerError> {
    let ok = !kind.is_empty()
        && kind.len() <= 64
        && kind.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | ':' | '-')
        });
    if ok {
        Ok(())
    } else {
        Err(LedgerError::InvalidEntry(format!(
            "entry kind {kind:?} must be 1-64 characters of a-z, 0-9, '_', '.', ':', '-'"
        )))
    }
}
