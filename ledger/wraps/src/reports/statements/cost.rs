//! Average cost per instrument, and valuing holdings as valuation does: the pure arithmetic of
//! a statement's gains (no database).
//!
//! A buy adds its units and its cost (the cash paid); a sell releases cost × units sold ÷
//! units held, rounded half to even to the minor unit (all of it when the last unit goes), so
//! the cost carried is always a whole amount and never leaks. Tried by this module's tests.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use ledger::asset::decimal_of;
use rust_decimal::{Decimal, RoundingStrategy};

/// One instrument's position: units (minor units of the unit scale) and the cost carried
/// (minor units of the currency).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    pub units: i64,
    pub cost: i128,
}

/// `n ÷ d` rounded half to even (d > 0, n ≥ 0).
pub(super) fn div_half_even(n: i128, d: i128) -> i128 {
    let (q, r) = (n / d, n % d);
    match (2 * r).cmp(&d) {
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal if q % 2 != 0 => q + 1,
        _ => q,
    }
}

impl Position {
    pub fn buy(&mut self, units: i64, amount: i64) {
        self.units += units;
        self.cost += i128::from(amount);
    }

    /// Sells `units` for `proceeds`; returns the realised gain (proceeds − the average cost
    /// of the units sold). The cost released is rounded half to even to the minor unit, and
    /// is the whole cost when no unit is left, so the cost carried stays whole and exact.
    pub fn sell(&mut self, units: i64, proceeds: i64) -> i128 {
        let released = if units >= self.units || self.units <= 0 {
            self.cost
        } else {
            div_half_even(self.cost * i128::from(units), i128::from(self.units))
        };
        self.units -= units;
        self.cost -= released;
        i128::from(proceeds) - released
    }
}

/// A filled allocation of one of the wrap's orders.
#[derive(Debug, Clone)]
pub struct Trade {
    pub date: NaiveDate,
    pub instrument: String,
    pub sell: bool,
    pub units: i64,
    pub amount: i64,
}

/// Replays `trades` (in booking order): the positions at the end of the day before `from`,
/// at the end of the last trade, and the gain realised by the sells dated `from` or later.
pub fn replay(
    trades: &[Trade],
    from: NaiveDate,
) -> (BTreeMap<String, Position>, BTreeMap<String, Position>, i128) {
    let mut book: BTreeMap<String, Position> = BTreeMap::new();
    let mut opening = None;
    let mut realised = 0_i128;
    for t in trades {
        if t.date >= from && opening.is_none() {
            opening = Some(book.clone());
        }
        let p = book.entry(t.instrument.clone()).or_default();
        if t.sell {
            let gain = p.sell(t.units, t.amount);
            if t.date >= from {
                realised += gain;
            }
        } else {
            p.buy(t.units, t.amount);
        }
    }
    let opening = opening.unwrap_or_else(|| book.clone());
    (opening, book, realised)
}

/// How to value an instrument at a date.
#[derive(Debug, Clone)]
pub struct Quote {
    pub unit_scale: u32,
    pub quote_unit: i64,
    pub price: Option<(NaiveDate, Decimal)>,
}

/// The exact value of `units` (minor units) at `q`, as valuation computes it (0 if never
/// priced).
pub(super) fn exact_value(units: i64, q: &Quote) -> Decimal {
    let Some((_, price)) = q.price else {
        return Decimal::ZERO;
    };
    decimal_of(i128::from(units), q.unit_scale)
        .checked_mul(price)
        .and_then(|v| v.checked_div(Decimal::from(q.quote_unit.max(1))))
        .unwrap_or(Decimal::ZERO)
}

/// The positions' exact market value, and rounded down to the currency's minor unit (as
/// valuation rounds once per wrap), and the cost carried, in minor units.
pub(super) fn valued(
    book: &BTreeMap<String, Position>,
    quotes: &HashMap<String, Quote>,
    scale: u32,
) -> (Decimal, i128, i128) {
    let mut exact = Decimal::ZERO;
    let mut cost = 0_i128;
    for (code, p) in book {
        cost += p.cost;
        if p.units == 0 {
            continue;
        }
        if let Some(q) = quotes.get(code) {
            exact += exact_value(p.units, q);
        }
    }
    let mut floor = exact.round_dp_with_strategy(scale, RoundingStrategy::ToZero);
    floor.rescale(scale);
    (exact, floor.mantissa(), cost)
}

/// An exact figure as shown: trailing zeros dropped, but never fewer places than the
/// currency's `scale`.
pub(super) fn shown(v: Decimal, scale: u32) -> Decimal {
    let mut v = v.normalize();
    if v.scale() < scale {
        v.rescale(scale);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn trade(date: &str, sell: bool, units: i64, amount: i64) -> Trade {
        Trade {
            date: d(date),
            instrument: "F".to_owned(),
            sell,
            units,
            amount,
        }
    }

    #[test]
    fn average_cost_releases_whole_amounts_and_never_leaks() {
        // Buy 3 units for 100, 3 more for 200: 6 units cost 300 (average 50).
        // Sell 1 for 70: releases 300 × 1 ÷ 6 = 50, realised 20, carried 250 on 5 units.
        // Sell 2 for 90: releases 250 × 2 ÷ 5 = 100, realised −10, carried 150 on 3 units.
        // Sell 3 for 151: the last units release all 150, realised 1.
        let trades = [
            trade("2026-01-05", false, 3, 100),
            trade("2026-01-06", false, 3, 200),
            trade("2026-01-07", true, 1, 70),
            trade("2026-01-08", true, 2, 90),
            trade("2026-01-09", true, 3, 151),
        ];
        let (opening, closing, realised) = replay(&trades, d("2026-01-07"));
        assert_eq!(
            opening["F"],
            Position {
                units: 6,
                cost: 300
            }
        );
        assert_eq!(closing["F"], Position { units: 0, cost: 0 });
        assert_eq!(realised, 20 - 10 + 1);
        // Sells before `from` realise nothing in the period.
        let (_, _, realised) = replay(&trades, d("2026-01-09"));
        assert_eq!(realised, 1);
    }

    #[test]
    fn released_cost_rounds_half_to_even() {
        // 7 units cost 10: one sold releases 10 ÷ 7 = 1.43 → 1; two release 2.86 → 3.
        let mut p = Position { units: 7, cost: 10 };
        assert_eq!(p.sell(1, 1), 0);
        assert_eq!(p, Position { units: 6, cost: 9 });
        // 6 units cost 9: three sold release 4.5 → 4 (even), 3 remain at 5.
        assert_eq!(p.sell(3, 4), 0);
        assert_eq!(p, Position { units: 3, cost: 5 });
        assert_eq!(div_half_even(5, 2), 2);
        assert_eq!(div_half_even(7, 2), 4);
        assert_eq!(div_half_even(11, 4), 3);
    }

    #[test]
    fn holdings_are_valued_as_valuation_values_them() {
        // 12,345 units at 10,123 per 10,000: 12,496.8435 exact, 12,496 rounded down.
        let book = BTreeMap::from([(
            "F".to_owned(),
            Position {
                units: 12_345,
                cost: 12_000,
            },
        )]);
        let quotes = HashMap::from([(
            "F".to_owned(),
            Quote {
                unit_scale: 0,
                quote_unit: 10_000,
                price: Some((d("2026-01-05"), Decimal::from(10_123))),
            },
        )]);
        let (exact, floor, cost) = valued(&book, &quotes, 0);
        assert_eq!(exact, "12496.8435".parse::<Decimal>().unwrap());
        assert_eq!((floor, cost), (12_496, 12_000));
    }
}
