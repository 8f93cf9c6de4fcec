//! The rules money must pass to move into a wrap, one function each, called by the API
//! (`POST /v1/wraps/{id}/contributions`, `api/src/routes/wraps.rs`) and by end of day's plans
//! step (`eod/plans.rs`) alike, so a contribution by a plan and one by a request are held to
//! the same rule. Each caller words the refusal for its reader (a 409/422 problem, a plan
//! run's reason); the decision is made here.
//!
//! Before, the plans step had its own checks, and a plan could make the first contribution to
//! an `open` wrap below the strategy's minimum initial investment, which the API refuses.
//! Tried by `movements::tests` and
//! `api/tests/http/eod_plans.rs::a_plan_cannot_open_a_wrap_below_the_initial_minimum`.

use ledger::wraps::WrapStatus;
use rust_decimal::Decimal;

/// What a contribution is checked against, in the wrap's currency.
#[derive(Debug, Clone, Copy)]
pub struct ContributionFacts<'a> {
    /// The wrap's status (`open`, `active`, `closing`, `closed`).
    pub wrap_status: WrapStatus,
    /// The status of the wrap's agreement (`active` or another).
    pub agreement_status: &'a str,
    pub amount: Decimal,
    /// The agreement's minimum per contribution, when this contribution must meet it (a
    /// plan's amount was checked when the plan was set up).
    pub min_contribution: Option<Decimal>,
    /// The strategy's minimum first investment (a wrap still `open` has had none).
    pub min_initial_investment: Decimal,
    /// What the customer's cash account has available (holds counted).
    pub available: Decimal,
}

/// Why a contribution is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContributionRefusal {
    /// The wrap is closing or closed.
    WrapTakesNoMoney(WrapStatus),
    /// The agreement is no longer active.
    AgreementNotActive(String),
    /// Below the agreement's minimum contribution.
    BelowMinimum { minimum: Decimal },
    /// A first contribution below the strategy's minimum initial investment.
    BelowInitialMinimum { minimum: Decimal },
    /// More than the customer's available cash.
    InsufficientCash { available: Decimal },
}

/// The contribution rule, checked in this order: the wrap takes money, its agreement is
/// active, the amount meets the minimum per contribution and, for a wrap's first money, the
/// minimum initial investment, and the customer's cash covers it.
pub fn check_contribution(f: &ContributionFacts<'_>) -> Result<(), ContributionRefusal> {
    if !f.wrap_status.accepts_money() {
        return Err(ContributionRefusal::WrapTakesNoMoney(f.wrap_status));
    }
    if f.agreement_status != "active" {
        return Err(ContributionRefusal::AgreementNotActive(
            f.agreement_status.to_owned(),
        ));
    }
    if let Some(minimum) = f.min_contribution
        && f.amount < minimum
    {
        return Err(ContributionRefusal::BelowMinimum { minimum });
    }
    if f.wrap_status == WrapStatus::Open && f.amount < f.min_initial_investment {
        return Err(ContributionRefusal::BelowInitialMinimum {
            minimum: f.min_initial_investment,
        });
    }
    if f.amount > f.available {
        return Err(ContributionRefusal::InsufficientCash {
            available: f.available,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(status: WrapStatus, amount: i64, available: i64) -> ContributionFacts<'static> {
        ContributionFacts {
            wrap_status: status,
            agreement_status: "active",
            amount: Decimal::from(amount),
            min_contribution: Some(Decimal::from(1_000)),
            min_initial_investment: Decimal::from(100_000),
            available: Decimal::from(available),
        }
    }

    #[test]
    fn each_rule_refuses_in_order() {
        assert_eq!(
            check_contribution(&facts(WrapStatus::Active, 5_000, 9_000)),
            Ok(())
        );
        assert_eq!(
            check_contribution(&facts(WrapStatus::Closing, 5_000, 9_000)),
            Err(ContributionRefusal::WrapTakesNoMoney(WrapStatus::Closing))
        );
        let mut ended = facts(WrapStatus::Active, 5_000, 9_000);
        ended.agreement_status = "terminated";
        assert_eq!(
            check_contribution(&ended),
            Err(ContributionRefusal::AgreementNotActive("terminated".into()))
        );
        assert_eq!(
            check_contribution(&facts(WrapStatus::Active, 999, 9_000)),
            Err(ContributionRefusal::BelowMinimum {
                minimum: Decimal::from(1_000)
            })
        );
        // A first contribution must meet the initial minimum; later ones need not.
        assert_eq!(
            check_contribution(&facts(WrapStatus::Open, 50_000, 900_000)),
            Err(ContributionRefusal::BelowInitialMinimum {
                minimum: Decimal::from(100_000)
            })
        );
        assert_eq!(
            check_contribution(&facts(WrapStatus::Active, 50_000, 40_000)),
            Err(ContributionRefusal::InsufficientCash {
                available: Decimal::from(40_000)
            })
        );
    }
}
