//! # The wrap business
//!
//! Everything the platform does with wraps on top of the books ([`ledger`]) and the
//! marketplace's identities and terms ([`tenants`]): the chart of the accounts a distributor's
//! book opens ([`chart`]), end of day ([`eod`]: plans, rebalance, netting, execution,
//! allocation, valuation, accrual, billing, returns, goals, checks) and the reports read from
//! what it stored ([`reports`]: AUM, the fee split, invoices, statements).
//!
//! This crate never names actix, a URL, an HTTP status or the API's `Problem`: it returns its
//! own typed errors ([`eod::EodError`], [`movements::MoveError`], [`reports::ReportError`]),
//! which the `api` crate maps to responses. The crates depend one way: `api` → `wraps` →
//! (`tenants`, `ledger`).

pub mod chart;
pub mod clock;
pub mod eod;
pub mod movements;
pub mod reports;
pub mod value;
