//! Projections for a customer's decisions, in exact decimals: the fee impact over a horizon
//! ([`fee_impact`], month by month) and the probability of reaching a goal ([`goal`], seeded
//! Monte Carlo, checked against the closed form).

pub mod fee_impact;
pub mod goal;
