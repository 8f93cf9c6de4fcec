//! A wrap's figures in minor units, and how they add up (pure; no database).

use ledger::asset::decimal_of;

use super::{Fees, StatementCheck};

/// A wrap's figures in minor units of its currency.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Figures {
    pub(super) opening: i128,
    pub(super) closing: i128,
    pub(super) contributions: i128,
    pub(super) withdrawals: i128,
    pub(super) management: i128,
    pub(super) performance: i128,
    pub(super) tax: i128,
    pub(super) collected_management: i128,
    pub(super) collected_performance: i128,
    pub(super) collected_tax: i128,
    pub(super) realised: i128,
    pub(super) unrealised_opening: i128,
    pub(super) unrealised_closing: i128,
}

impl Figures {
    pub(super) fn fees(&self) -> i128 {
        self.management + self.performance + self.tax
    }

    pub(super) fn unrealised_change(&self) -> i128 {
        self.unrealised_closing - self.unrealised_opening
    }

    /// What the figures leave unexplained of the value change (0 when they add up).
    pub(super) fn unexplained(&self) -> i128 {
        (self.closing - self.opening)
            - (self.contributions - self.withdrawals - self.fees()
                + self.realised
                + self.unrealised_change())
    }

    pub(super) fn investment_gain(&self) -> i128 {
        self.realised + self.unrealised_change() + self.unexplained()
    }

    pub(super) fn add(&mut self, o: &Figures) {
        self.opening += o.opening;
        self.closing += o.closing;
        self.contributions += o.contributions;
        self.withdrawals += o.withdrawals;
        self.management += o.management;
        self.performance += o.performance;
        self.tax += o.tax;
        self.collected_management += o.collected_management;
        self.collected_performance += o.collected_performance;
        self.collected_tax += o.collected_tax;
        self.realised += o.realised;
        self.unrealised_opening += o.unrealised_opening;
        self.unrealised_closing += o.unrealised_closing;
    }

    pub(super) fn fees_view(&self, scale: u32) -> Fees {
        let d = |v| decimal_of(v, scale);
        Fees {
            management_fee: d(self.management),
            performance_fee: d(self.performance),
            tax: d(self.tax),
            total: d(self.fees()),
        }
    }

    pub(super) fn collected_view(&self, scale: u32) -> Fees {
        let d = |v| decimal_of(v, scale);
        Fees {
            management_fee: d(self.collected_management),
            performance_fee: d(self.collected_performance),
            tax: d(self.collected_tax),
            total: d(self.collected_management + self.collected_performance + self.collected_tax),
        }
    }

    pub(super) fn check(&self, scale: u32) -> StatementCheck {
        let d = |v| decimal_of(v, scale);
        let unexplained = self.unexplained();
        StatementCheck {
            value_change: d(self.closing - self.opening),
            flows_fees_and_gain: d(
                self.contributions - self.withdrawals - self.fees() + self.investment_gain()
            ),
            unexplained: d(unexplained),
            balanced: unexplained == 0,
        }
    }
}
