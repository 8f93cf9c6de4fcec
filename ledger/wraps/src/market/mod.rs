//! The marketplace: managers' strategies and their model versions ([`strategy`]), the
//! agreements that put a strategy in a distributor's lineup with their versioned fee terms
//! ([`agreement`]), and their persistence with the lineup a caller may see ([`store`]).
//!
//! Invariants, each enforced in its module and tried by the tests there:
//! * [`strategy`]: a model version's weights sum to exactly 1;
//! * [`agreement`]: fee splits sum to exactly 1, tiered fees are blended;
//! * [`store`]: a strategy or an agreement another tenant may not see answers not found
//!   ([`store::offer`] is what a distributor may sell).
//!
//! Instruments and prices (the shared catalogue) are the books' market data:
//! [`ledger::market`].

pub mod agreement;
pub mod store;
pub mod strategy;

pub use agreement::{
    Agreement, AgreementStatus, BillingPeriod, FeeSchedule, Split, Terms, TermsInput, TermsStatus,
    TermsVersion, Tier,
};
pub use store::{Offer, offer, strategy_for, version_in_effect};
pub use strategy::{NewStrategy, NewVersion, Strategy, StrategyVersion};
