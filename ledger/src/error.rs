//! Everything the ledger can refuse, each variant naming precisely what was wrong.

use uuid::Uuid;

/// A refused or failed ledger operation. Every refusal writes nothing.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The asset definition is malformed.
    #[error("invalid asset: {0}")]
    InvalidAsset(String),
    /// An asset with that code exists with different fields.
    #[error("asset {0} already exists with different fields")]
    AssetConflict(String),
    /// No asset with that code.
    #[error("unknown asset {0}")]
    UnknownAsset(String),
    /// The account definition is malformed.
    #[error("invalid account: {0}")]
    InvalidAccount(String),
    /// The tenant already has an account with that code.
    #[error("account code {0} is already used in this tenant")]
    AccountCodeTaken(String),
    /// The account cannot be closed while it holds a balance or a hold.
    #[error("account {account_id} cannot be closed: {reason}")]
    CannotClose {
        /// The account.
        account_id: Uuid,
        /// Why not.
        reason: String,
    },
    /// The entry request is malformed (key, kind, metadata, number of postings).
    #[error("invalid entry: {0}")]
    InvalidEntry(String),
    /// A posting amount is zero or negative.
    #[error("posting {index}: amount must be greater than zero")]
    NonPositiveAmount {
        /// Position of the posting in the request.
        index: usize,
    },
    /// An amount has more decimals than its asset allows, or is too large.
    #[error("amount {value} of {asset} {reason}")]
    InvalidAmount {
        /// The asset.
        asset: String,
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Debits and credits of one asset differ.
    #[error(
        "entry does not balance in {asset}: debits {debits}, credits {credits} (difference {difference})"
    )]
    Unbalanced {
        /// The asset.
        asset: String,
        /// Total debits.
        debits: String,
        /// Total credits.
        credits: String,
        /// Debits minus credits.
        difference: String,
    },
    /// The account does not exist in the caller's tenant (another tenant's account answers the same).
    #[error("account {0} not found")]
    AccountNotFound(Uuid),
    /// The posting's asset is not the account's asset.
    #[error("posting {index}: account {account_id} holds {account_asset}, not {posting_asset}")]
    AssetMismatch {
        /// Position of the posting.
        index: usize,
        /// The account.
        account_id: Uuid,
        /// What the account holds.
        account_asset: String,
        /// What the posting moves.
        posting_asset: String,
    },
    /// The account is closed.
    #[error("account {0} is closed")]
    AccountClosed(Uuid),
    /// The entry would take a no-negative account's available balance below zero.
    #[error(
        "account {account_id} ({code}) would go negative: available {available} {asset}, after this entry {after}"
    )]
    WouldGoNegative {
        /// The account.
        account_id: Uuid,
        /// Its code.
        code: String,
        /// Its asset.
        asset: String,
        /// Available balance before.
        available: String,
        /// Available balance the entry would leave.
        after: String,
    },
    /// The idempotency key was used before for a different request.
    #[error("idempotency key {key:?} was already used for a different request (entry {entry_id})")]
    IdempotencyConflict {
        /// The key.
        key: String,
        /// The entry it belongs to.
        entry_id: Uuid,
    },
    /// No such entry in the caller's tenant.
    #[error("entry {0} not found")]
    EntryNotFound(Uuid),
    /// The entry has been reversed already.
    #[error("entry {entry_id} was already reversed by entry {reversal_id}")]
    AlreadyReversed {
        /// The entry.
        entry_id: Uuid,
        /// Its reversal.
        reversal_id: Uuid,
    },
    /// Only posted entries can be reversed; a hold is voided instead.
    #[error("entry {0} is a hold; void it instead of reversing it")]
    CannotReverseHold(Uuid),
    /// The hold is not pending any more (or the entry is not a hold).
    #[error("entry {hold_id} is not a pending hold (it is {state})")]
    HoldNotPending {
        /// The entry.
        hold_id: Uuid,
        /// Its state.
        state: String,
    },
    /// The hold's expiry time has passed.
    #[error("hold {0} has expired")]
    HoldExpired(Uuid),
    /// A commit asks for more than the hold reserved, or for an account or side not in it.
    #[error("posting {index}: {reason}")]
    HoldExceeded {
        /// Position of the posting in the commit.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A batch has too many entries.
    #[error("a batch holds at most {max} entries, got {got}")]
    BatchTooLarge {
        /// The limit.
        max: usize,
        /// The size given.
        got: usize,
    },
    /// One entry of an atomic batch was refused, so the batch wrote nothing.
    #[error("batch entry {index} refused: {source}")]
    BatchRejected {
        /// Position of the refused entry.
        index: usize,
        /// Why it was refused.
        #[source]
        source: Box<LedgerError>,
    },
    /// A balance counter of the account would exceed the 64-bit range (posted counters only
    /// grow, so the books refuse the entry rather than wrap around or fail every later sum).
    #[error(
        "account {account_id} ({code}) would exceed the range of the books: its {asset} counters hold at most {max} minor units"
    )]
    Overflow {
        /// The account.
        account_id: Uuid,
        /// Its code.
        code: String,
        /// Its asset.
        asset: String,
        /// The largest count a counter holds (`i64::MAX`).
        max: i64,
    },
    /// The database failed; the operation may be retried with the same idempotency key.
    #[error("storage error: {0}")]
    Storage(#[from] sea_orm::DbErr),
    /// Stored data did not read back as expected.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The ledger's writer task is gone (the process is shutting down).
    #[error("the ledger writer has stopped")]
    WriterStopped,
}

impl LedgerError {
    /// True when the request itself is at fault (bad input, refused by a rule), as opposed to
    /// a storage or internal failure.
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self,
            LedgerError::Storage(_) | LedgerError::Corrupt(_) | LedgerError::WriterStopped
        )
    }
}
