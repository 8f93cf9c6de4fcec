//! # The wrap business
//!
//! Everything the platform does with wraps on top of the books ([`ledger`]) and the
//! identities of who is on the platform ([`tenants`]):
//! * [`market`]: managers' strategies and model versions, agreements and their fee terms, the
//!   lineup a distributor may sell;
//! * [`customers`]: customers, their wraps (virtual sub-accounts), plans, pending movements,
//!   and the codes of their ledger accounts;
//! * [`chart`]: the accounts a distributor's book opens;
//! * [`movements`]: deposit, withdrawal, contribution, payout request, close (one function
//!   each, called by the API and by end of day);
//! * [`clock`]: the business date;
//! * [`value`]: a wrap's value now;
//! * [`eod`]: end of day (plans, rebalance, netting, execution, allocation, valuation,
//!   accrual, billing, returns, goals, checks);
//! * [`projections`]: fee impact and goal probability;
//! * [`reports`]: AUM, the fee split, invoices, statements, read from what end of day stored;
//! * [`zengin`]: the bank's files: customers' accounts for direct debit, the debit request
//!   (口座振替) of a collection date and its result read back.
//!
//! This crate never names actix, a URL, an HTTP status or the API's `Problem`: it returns its
//! own typed errors ([`eod::EodError`], [`movements::MoveError`], [`reports::ReportError`]),
//! which the `api` crate maps to responses. The crates depend one way: `api` → `wraps` →
//! (`tenants`, `ledger`).

pub mod chart;
pub mod clock;
pub mod customers;
pub mod eod;
pub mod events;
pub mod funds;
pub mod market;
pub mod movements;
pub mod projections;
pub mod reports;
pub mod value;
pub mod zengin;
