//! The HTTP service end to end: the real server on a free port over its own database
//! (SQLite, and PostgreSQL when WRAP_TEST_POSTGRES_URL is set). One test binary, so the
//! suite links once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod agreements;
mod amounts;
mod auth;
mod auth_cache;
mod bench_eod;
mod branches;
mod business_date;
mod cli;
mod concurrency;
mod console;
mod customers;
mod demo;
mod eod;
mod eod_claim;
mod eod_fees;
mod eod_instructions;
mod eod_plans;
mod eod_returns;
mod eod_trading;
mod eod_year;
mod errors;
mod events;
mod faults;
mod fund_terms;
mod goals;
mod health;
mod instruments;
mod isolation;
mod ledger_reads;
mod limits;
mod observability;
mod operations_cli;
mod projections;
mod rate_limits;
mod reconciliation;
mod reports;
mod statements;
mod strategies;
mod tour;
mod webhooks;
mod wraps;
mod zengin;
