//! The `/v1` resources. Each module exposes `configure`, mounted by
//! [`crate::server::routes`], and documents its isolation rule at its top.

pub mod agreements;
pub mod customers;
pub mod format;
pub mod instructions;
pub mod instruments;
pub mod ledger;
pub mod operations;
pub mod projections;
pub mod reconciliation;
pub mod reports;
pub mod returns;
pub mod statements;
pub mod strategies;
pub mod tenants;
pub mod wraps;
