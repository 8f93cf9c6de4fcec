//! # The books
//!
//! A double-entry journal over accounts of many tenants, exact to the smallest unit of every
//! asset. This crate owns the rules of the books and their persistence (`store`). It knows
//! nothing of HTTP or tokens.
//!
//! ## Guarantees, and the tests that try to break them
//! | guarantee | enforced in | tried by |
//! |---|---|---|
//! | every entry balances per asset; an unbalanced entry writes nothing | [`rules::check_balanced`] | `rules::tests::unbalanced_entry_names_asset_and_difference`, `tests/store.rs::rejections_write_nothing`, `tests/properties.rs` |
//! | amounts are exact: never more decimals than the asset's scale, stored as integer minor units | [`asset::Amount`], `store::sql` | `asset::tests::*`, `tests/store.rs::extreme_values_round_trip_exactly` |
//! | decimal text is read exactly or refused (no float, exponent, `+`, `_`, more than 28 significant digits); a single amount is at most its asset's configured bound | [`amount::parse_decimal`], [`amount::check_money`] | `amount::tests::*` |
//! | a balance counter never overflows: the entry that would overflow one is refused naming the account; the trial balance sums without overflow | [`rules::apply_changes`], `store::read::trial_balance` | `rules::tests::counter_overflow_names_the_account`, `tests/store.rs::trial_balance_sums_beyond_64_bits` |
//! | postings only touch open accounts of the entry's tenant holding the posting's asset | [`rules::validate_postings`], composite foreign keys | `rules::tests::each_posting_rule_is_enforced`, `tests/store.rs::cross_tenant_postings_are_refused` |
//! | a no-negative account's available balance (holds counted) never goes below zero, under any concurrency | [`rules::apply_changes`] on state read under the tenant's book lock (`store/work.rs`), a CHECK constraint | `rules::tests::no_negative_counts_holds`, `tests/concurrency.rs::concurrent_transfers_never_overdraw`, `tests/properties.rs` |
//! | entries and postings are never updated or deleted | no code path does; triggers refuse it | `tests/store.rs::journal_rows_are_immutable` |
//! | an entry is reversed at most once, by its mirror image | `store::work`, a unique index | `tests/store.rs::reversal_mirrors_and_refuses_a_second` |
//! | the same idempotency key and request returns the first entry and writes nothing; a different request is a conflict | `store::work` | `tests/store.rs::idempotent_replay_and_conflict` |
//! | a batch is all or nothing | `store::work` (per-job scratch) | `tests/store.rs::batch_is_all_or_nothing` |
//! | holds reserve, then post (in full or part), void or expire, once | `store::work`, unique keys | `tests/store.rs::hold_lifecycle` |
//! | every balance equals the sum of its postings | `store::work::flush` writes both in one transaction | `tests/properties.rs` |
//! | tampering with a stored entry is detected at the first broken link | [`chain`] | `tests/store.rs::tampering_is_detected_at_the_first_broken_link` |
//!
//! The rules are plain functions ([`rules`]); the store loads and locks the state they need,
//! runs them, and writes the result in one transaction.

#![deny(clippy::float_arithmetic)]

pub mod account;
pub mod amount;
pub mod asset;
pub mod calendar;
pub mod chain;
pub mod entry;
pub mod error;
pub mod market;
pub mod rules;
pub mod sql;
pub mod store;

pub use account::{Account, Balance, NewAccount, Side};
pub use asset::{Amount, Asset, AssetKind};
pub use entry::{
    Entry, EntryStatus, HoldCommit, HoldState, HoldTerms, MAX_BATCH, MAX_POSTINGS, NewEntry,
    NewPosting, Operation, Outcome, Posted, Posting, Reversal,
};
pub use error::LedgerError;
pub use market::{
    Instrument, InstrumentKind, InstrumentStatus, MarketError, NewInstrument, PriceQuote,
};
pub use store::{
    AsOf, BalanceReport, EntryPage, Ledger, TrialBalanceLine, begin_write, connect, connect_with,
    create_asset_in,
};
