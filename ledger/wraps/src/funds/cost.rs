//! Individual cost (個別元本) and realised gains, as pure functions (DOMAIN.md section 8).
//!
//! Per customer and fund (all the customer's wraps share one cost per fund, as a Japanese
//! specified account keeps one 個別元本 per investor and fund): the units the cost covers
//! and the moving-average acquisition cost per quote unit (10,000 units for Japanese
//! investment trusts), a whole number of minor units of the currency.
//!
//! * **A buy** of `u` units for `a` (what the wrap paid; the platform charges no purchase fee,
//!   and the wrap fee is not a cost of acquisition) moves the cost to
//!   `ceil((U × C + a × Q) ÷ (U + u))` per quote unit, where U units held at C, Q the quote
//!   unit, units counted in whole units (minor ÷ 10^unit_scale). Rounded **up to the yen**
//!   per 10,000 units (端数切り上げ), the practice of Japanese distributors' cost reports:
//!   the cost is never understated, so the taxable gain is never overstated.
//! * **A sale** of `u` units keeps C and releases `floor(u × C ÷ Q)` of cost (rounded down to
//!   the yen); the realised gain is `proceeds − released cost`, the proceeds being what the
//!   wrap received (net of the redemption levy). Units sold beyond those the cost covers
//!   (units that reached a wrap by no trade of the platform's) release no cost.
//! * **A return of capital** (元本払戻金, distributions: not built yet) lowers C to the
//!   ex-distribution price: [`after_return_of_capital`] is the hook.

use rust_decimal::Decimal;

/// What one customer's cost of one fund is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Basis {
    /// Units the cost covers, minor units of the unit scale.
    pub units: i64,
    /// Moving-average cost per quote unit, minor units of the currency.
    pub cost_per_quote: i64,
}

/// The fund's terms the arithmetic needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    /// Units a price (and a cost) is quoted for: 10,000 for Japanese investment trusts.
    pub quote_unit: i64,
    /// Decimal places of the units.
    pub unit_scale: u32,
}

impl Scale {
    /// `Q × 10^unit_scale`: minor units of the fund per quote unit.
    fn minor_per_quote(self) -> i128 {
        i128::from(self.quote_unit.max(1)) * 10_i128.pow(self.unit_scale)
    }
}

/// One sale's cost and gain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Realised {
    /// Cost of the units sold, minor units of the currency.
    pub cost: i64,
    /// `proceeds − cost` (negative for a loss).
    pub gain: i64,
    /// The cost per quote unit the sale used.
    pub cost_per_quote: i64,
}

fn clamp64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// The cost after buying `units` (minor) for `paid` (minor units of the currency).
pub fn after_buy(basis: Basis, scale: Scale, units: i64, paid: i64) -> Basis {
    if units <= 0 {
        return basis;
    }
    let held = i128::from(basis.units.max(0));
    let total_units = held + i128::from(units);
    // Total cost in (minor currency × minor units per quote) so the division is the last step.
    let numerator =
        held * i128::from(basis.cost_per_quote) + i128::from(paid.max(0)) * scale.minor_per_quote();
    let cost_per_quote = (numerator + total_units - 1) / total_units;
    let after = Basis {
        units: clamp64(total_units),
        cost_per_quote: clamp64(cost_per_quote),
    };
    debug_assert!(
        i128::from(after.cost_per_quote) * total_units >= numerator,
        "rounded up: the cost carried is never below what was paid"
    );
    after
}

/// The cost released and the gain realised by selling `units` (minor) for `proceeds`
/// (minor units of the currency, net of the levy), and the cost left.
pub fn sale(basis: Basis, scale: Scale, units: i64, proceeds: i64) -> (Basis, Realised) {
    let covered = units.clamp(0, basis.units.max(0));
    let cost =
        clamp64(i128::from(covered) * i128::from(basis.cost_per_quote) / scale.minor_per_quote());
    let left = Basis {
        units: basis.units - covered,
        cost_per_quote: if basis.units - covered > 0 {
            basis.cost_per_quote
        } else {
            // Nothing held: the next buy starts afresh (a later buy must not average with
            // the cost of units no longer held).
            0
        },
    };
    let realised = Realised {
        cost,
        gain: proceeds - cost,
        cost_per_quote: basis.cost_per_quote,
    };
    debug_assert_eq!(realised.gain + realised.cost, proceeds);
    (left, realised)
}

/// The hook for distributions (issue 25 item 1, not built yet): a return of capital lowers
/// the cost per quote unit to the ex-distribution price when that is below it; the units are
/// unchanged.
pub fn after_return_of_capital(basis: Basis, ex_price_per_quote: Decimal) -> Basis {
    let ex = ex_price_per_quote.ceil();
    let ex = clamp64(ex.mantissa() / 10_i128.pow(ex.scale()));
    Basis {
        units: basis.units,
        cost_per_quote: basis.cost_per_quote.min(ex.max(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FUND: Scale = Scale {
        quote_unit: 10_000,
        unit_scale: 0,
    };

    #[test]
    fn two_buys_and_a_sale_worked_by_hand() {
        // Buy 100,000 units for ¥100,000 (price ¥10,000 per 10,000 units): cost ¥10,000.
        let b = after_buy(Basis::default(), FUND, 100_000, 100_000);
        assert_eq!(
            b,
            Basis {
                units: 100_000,
                cost_per_quote: 10_000
            }
        );
        // Buy 40,502 units for ¥50,000 (price ¥12,345): (100,000 × 10,000 + 50,000 × 10,000)
        // ÷ 140,502 = 1,500,000,000 ÷ 140,502 = 10,676.0046… (140,502 × 10,676 =
        // 1,499,999,352, 648 short) → ¥10,677 (rounded up).
        let b = after_buy(b, FUND, 40_502, 50_000);
        assert_eq!(
            b,
            Basis {
                units: 140_502,
                cost_per_quote: 10_677
            }
        );
        // Sell 23,147 units for ¥30,001 (net of the levy): cost 23,147 × 10,677 ÷ 10,000 =
        // 24,714.0519 → ¥24,714; gain 30,001 − 24,714 = ¥5,287. The cost per 10,000 stays.
        let (left, r) = sale(b, FUND, 23_147, 30_001);
        assert_eq!(
            r,
            Realised {
                cost: 24_714,
                gain: 5_287,
                cost_per_quote: 10_677
            }
        );
        assert_eq!(
            left,
            Basis {
                units: 117_355,
                cost_per_quote: 10_677
            }
        );
        // A buy after the sale averages with what is left: (117,355 × 10,677 + 9,000 ×
        // 10,000) ÷ (117,355 + 10,000) = 1,342,999,335 ÷ 127,355 = 10,545.32… → ¥10,546.
        let b = after_buy(left, FUND, 10_000, 9_000);
        assert_eq!(
            b,
            Basis {
                units: 127_355,
                cost_per_quote: 10_546
            }
        );
    }

    #[test]
    fn a_loss_and_selling_everything() {
        let b = after_buy(Basis::default(), FUND, 50_000, 61_725);
        // 61,725 × 10,000 ÷ 50,000 = ¥12,345.
        assert_eq!(b.cost_per_quote, 12_345);
        // All 50,000 sold for ¥50,000: cost ¥61,725, loss ¥11,725; nothing is left.
        let (left, r) = sale(b, FUND, 50_000, 50_000);
        assert_eq!((r.cost, r.gain), (61_725, -11_725));
        assert_eq!(left, Basis::default());
    }

    #[test]
    fn units_without_a_cost_release_none() {
        let b = Basis {
            units: 100,
            cost_per_quote: 10_000,
        };
        // 300 sold, 100 covered: 100 × 10,000 ÷ 10,000 = ¥100.
        let (left, r) = sale(b, FUND, 300, 400);
        assert_eq!((r.cost, r.gain, left.units), (100, 300, 0));
    }

    #[test]
    fn a_return_of_capital_lowers_the_cost_to_the_ex_price() {
        let b = Basis {
            units: 10_000,
            cost_per_quote: 10_677,
        };
        assert_eq!(
            after_return_of_capital(b, Decimal::new(10_500, 0)).cost_per_quote,
            10_500
        );
        assert_eq!(
            after_return_of_capital(b, Decimal::new(11_000, 0)).cost_per_quote,
            10_677
        );
    }
}
