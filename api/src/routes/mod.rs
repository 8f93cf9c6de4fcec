//! The `/v1` resources. Each module exposes `configure`, mounted by
//! [`crate::server::routes`], and documents its isolation rule at its top.

pub mod ledger;
pub mod tenants;
