//! # Who is on the platform and what they agreed
//!
//! This crate will own tenants (platform, distributors, managers), their API clients and
//! secrets, JWT issue and verification, roles and scopes, strategies (managers' model
//! portfolios and their versions), agreements (fee schedules and splits) and lineups.
//!
//! It is a member of the workspace from the start so that the layout is fixed; its rules
//! arrive with the "tenants and v1 API" issue. It must never depend on HTTP.
