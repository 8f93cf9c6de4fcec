//! Strategies (a manager's model portfolios) and their model versions, as pure types and rules.
//!
//! Invariants (each tried by the test named):
//! * a strategy's code, name, risk level, expected return, volatility, drift band and
//!   cooldown are within their ranges before it reaches the store
//!   ([`NewStrategy::validate`]; `tests::strategy_ranges`);
//! * a model version's weights are each in (0, 1] with at most [`MAX_WEIGHT_DECIMALS`]
//!   decimals, name each instrument once, and with the cash weight sum to exactly 1: no
//!   tolerance, so 0.9999999999 and 1.0000000001 are refused ([`NewVersion::validate`];
//!   `tests::weights_sum_exactly_to_one`, `tests::weight_rules`; over HTTP
//!   `api/tests/http/strategies.rs` `versions_are_checked`);
//! * the version in effect on a date is the one with the latest effective date on or before it
//!   ([`version_in_effect`]; `tests::version_in_effect_picks_latest_not_after`).
//!
//! Weights, rates and money are `rust_decimal::Decimal`, on the wire as decimal strings; the
//! store keeps weights and rates as exact TEXT and money as integer minor units.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use tenants::TenantsError;

/// Most decimals a weight (or the cash weight) may have.
pub const MAX_WEIGHT_DECIMALS: u32 = 10;
/// Most instruments in one model version.
pub const MAX_INSTRUMENTS: usize = 200;
/// Longest strategy description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 4000;

/// How the drift band is measured: in weight points (`absolute`: 0.05 means ±5 points) or as
/// a fraction of the target weight (`relative`: 0.2 means ±20 % of the target).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DriftBandKind {
    Absolute,
    Relative,
}

/// Calendar rebalancing, besides drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RebalanceCalendar {
    #[default]
    None,
    Monthly,
    Quarterly,
}

/// Whether new wraps may follow the strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StrategyStatus {
    Active,
    Retired,
}

macro_rules! str_enum {
    ($t:ty { $($v:ident = $s:literal),* $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)* _ => None }
            }
        }
    };
}
pub(crate) use str_enum;

str_enum!(DriftBandKind { Absolute = "absolute", Relative = "relative" });
str_enum!(RebalanceCalendar { None = "none", Monthly = "monthly", Quarterly = "quarterly" });
str_enum!(StrategyStatus { Active = "active", Retired = "retired" });

/// A manager's strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Strategy {
    pub id: Uuid,
    /// The manager that owns it.
    pub manager_tenant_id: Uuid,
    pub code: String,
    pub name: String,
    pub description: String,
    /// The currency asset the strategy is valued in; its instruments are priced in it.
    pub base_currency: String,
    /// 1 (lowest) to 5; a customer's tolerance must be at least this.
    pub risk_level: u8,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String, example = "0.045")]
    pub expected_return_annual: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String, example = "0.12")]
    pub volatility_annual: Decimal,
    pub drift_band_kind: DriftBandKind,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String, example = "0.05")]
    pub drift_band: Decimal,
    pub rebalance_calendar: RebalanceCalendar,
    /// Days after a rebalance before drift may trigger another.
    pub cooldown_days: u16,
    /// In the base currency, exact to its scale.
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String, example = "100000")]
    pub min_initial_investment: Decimal,
    pub status: StrategyStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What it takes to publish a strategy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStrategy {
    /// 1 to 64 of `A-Z a-z 0-9 _ - .`, unique per manager.
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub base_currency: String,
    pub risk_level: u8,
    /// Expected annual return, -1 to 1 (used by goal projections).
    #[serde(deserialize_with = "ledger::amount::de_strict")]
    #[schema(value_type = String, example = "0.045")]
    pub expected_return_annual: Decimal,
    /// Annual volatility, 0 to 2.
    #[serde(deserialize_with = "ledger::amount::de_strict")]
    #[schema(value_type = String, example = "0.12")]
    pub volatility_annual: Decimal,
    pub drift_band_kind: DriftBandKind,
    /// Strictly between 0 and 1.
    #[serde(deserialize_with = "ledger::amount::de_strict")]
    #[schema(value_type = String, example = "0.05")]
    pub drift_band: Decimal,
    #[serde(default)]
    pub rebalance_calendar: RebalanceCalendar,
    /// 0 to 365.
    #[serde(default)]
    pub cooldown_days: u16,
    /// At least 0, exact to the base currency's scale; default 0.
    #[serde(default, deserialize_with = "ledger::amount::de_strict")]
    #[schema(value_type = String, example = "100000")]
    pub min_initial_investment: Decimal,
}

/// A change to a strategy's descriptive fields (its owner only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StrategyPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub risk_level: Option<u8>,
    pub status: Option<StrategyStatus>,
}

/// A strategy code: 1 to 64 of `A-Z a-z 0-9 _ - .`.
pub fn validate_code(field: &'static str, code: &str) -> Result<(), TenantsError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if code.is_empty() || code.len() > 64 || !code.chars().all(ok_char) {
        return Err(TenantsError::invalid(
            field,
            "must be 1 to 64 characters of A-Z a-z 0-9 _ - .",
        ));
    }
    Ok(())
}

fn validate_description(s: &str) -> Result<(), TenantsError> {
    if s.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(TenantsError::invalid(
            "description",
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(())
}

fn validate_risk(level: u8) -> Result<(), TenantsError> {
    if !(1..=5).contains(&level) {
        return Err(TenantsError::invalid(
            "risk_level",
            "must be an integer from 1 to 5",
        ));
    }
    Ok(())
}

/// Decimals of `d` once trailing zeros are dropped (`0.50` has one).
pub fn decimals(d: Decimal) -> u32 {
    d.normalize().scale()
}

/// `value` as money of a currency of `scale`: at least 0 and with no more decimals than the
/// currency has (never rounded).
pub fn check_money(field: &'static str, value: Decimal, scale: u32) -> Result<(), TenantsError> {
    if value < Decimal::ZERO {
        return Err(TenantsError::invalid(field, "must not be negative"));
    }
    if decimals(value) > scale {
        return Err(TenantsError::invalid(
            field,
            format!("has more decimals than the currency's {scale}"),
        ));
    }
    Ok(())
}

impl NewStrategy {
    /// Every rule that needs no database (the base currency's existence and scale are
    /// checked by the store, then [`check_money`] on the minimum investment).
    pub fn validate(&self) -> Result<(), TenantsError> {
        validate_code("code", &self.code)?;
        tenants::tenant::validate_name("name", &self.name)?;
        validate_description(&self.description)?;
        validate_code("base_currency", &self.base_currency)?;
        validate_risk(self.risk_level)?;
        let one = Decimal::ONE;
        if self.expected_return_annual < -one || self.expected_return_annual > one {
            return Err(TenantsError::invalid(
                "expected_return_annual",
                "must be between -1 and 1 (a fraction a year: 0.045 is 4.5 %)",
            ));
        }
        if self.volatility_annual < Decimal::ZERO || self.volatility_annual > Decimal::TWO {
            return Err(TenantsError::invalid(
                "volatility_annual",
                "must be between 0 and 2 (a fraction a year: 0.12 is 12 %)",
            ));
        }
        if self.drift_band <= Decimal::ZERO || self.drift_band >= one {
            return Err(TenantsError::invalid(
                "drift_band",
                "must be strictly between 0 and 1",
            ));
        }
        for (field, d) in [
            ("expected_return_annual", self.expected_return_annual),
            ("volatility_annual", self.volatility_annual),
            ("drift_band", self.drift_band),
        ] {
            if decimals(d) > MAX_WEIGHT_DECIMALS {
                return Err(TenantsError::invalid(
                    field,
                    format!("must have at most {MAX_WEIGHT_DECIMALS} decimals"),
                ));
            }
        }
        if self.cooldown_days > 365 {
            return Err(TenantsError::invalid(
                "cooldown_days",
                "must be from 0 to 365",
            ));
        }
        if self.min_initial_investment < Decimal::ZERO {
            return Err(TenantsError::invalid(
                "min_initial_investment",
                "must not be negative",
            ));
        }
        Ok(())
    }
}

impl StrategyPatch {
    pub fn validate(&self) -> Result<(), TenantsError> {
        if self.name.is_none()
            && self.description.is_none()
            && self.risk_level.is_none()
            && self.status.is_none()
        {
            return Err(TenantsError::invalid(
                "body",
                "give at least one of name, description, risk_level, status",
            ));
        }
        if let Some(name) = &self.name {
            tenants::tenant::validate_name("name", name)?;
        }
        if let Some(d) = &self.description {
            validate_description(d)?;
        }
        if let Some(r) = self.risk_level {
            validate_risk(r)?;
        }
        Ok(())
    }

    /// `strategy` with this change applied.
    pub fn apply(&self, strategy: &Strategy, now: DateTime<Utc>) -> Strategy {
        let mut s = strategy.clone();
        if let Some(name) = &self.name {
            s.name = name.clone();
        }
        if let Some(d) = &self.description {
            s.description = d.clone();
        }
        if let Some(r) = self.risk_level {
            s.risk_level = r;
        }
        if let Some(st) = self.status {
            s.status = st;
        }
        s.updated_at = now;
        s
    }
}

// ---------------------------------------------------------------------------------------
// Model versions

/// One instrument's target weight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelWeight {
    /// The instrument's asset code.
    pub instrument: String,
    /// In (0, 1], at most 10 decimals.
    #[serde(
        serialize_with = "rust_decimal::serde::str::serialize",
        deserialize_with = "ledger::amount::de_strict"
    )]
    #[schema(value_type = String, example = "0.35")]
    pub weight: Decimal,
}

/// What it takes to publish a model version.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVersion {
    /// Later than every existing version's (any date for the first).
    pub effective_date: NaiveDate,
    /// At least 0; with the weights, sums to exactly 1.
    #[serde(deserialize_with = "ledger::amount::de_strict")]
    #[schema(value_type = String, example = "0.02")]
    pub cash_weight: Decimal,
    pub weights: Vec<ModelWeight>,
}

/// A published model version: immutable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StrategyVersion {
    pub strategy_id: Uuid,
    /// 1, 2, … in order of effective date.
    pub version: u32,
    pub effective_date: NaiveDate,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String, example = "0.02")]
    pub cash_weight: Decimal,
    /// Ordered by instrument code.
    pub weights: Vec<ModelWeight>,
    pub created_at: DateTime<Utc>,
}

fn weight_error(message: impl Into<String>) -> TenantsError {
    TenantsError::invalid("weights", message)
}

impl NewVersion {
    /// Every rule that needs no database: weights in (0, 1] with at most 10 decimals, no
    /// instrument twice, at least one, cash ≥ 0, and the sum exactly 1. Instruments' existence
    /// and currency are checked by the store.
    pub fn validate(&self) -> Result<(), TenantsError> {
        if self.weights.is_empty() {
            return Err(weight_error("must name at least one instrument"));
        }
        if self.weights.len() > MAX_INSTRUMENTS {
            return Err(weight_error(format!(
                "must name at most {MAX_INSTRUMENTS} instruments"
            )));
        }
        if self.cash_weight < Decimal::ZERO || self.cash_weight > Decimal::ONE {
            return Err(TenantsError::invalid(
                "cash_weight",
                "must be between 0 and 1",
            ));
        }
        if decimals(self.cash_weight) > MAX_WEIGHT_DECIMALS {
            return Err(TenantsError::invalid(
                "cash_weight",
                format!("must have at most {MAX_WEIGHT_DECIMALS} decimals"),
            ));
        }
        let mut seen = BTreeSet::new();
        let mut sum = self.cash_weight;
        for w in &self.weights {
            validate_code("weights", &w.instrument).map_err(|_| {
                weight_error(format!("{:?} is not an instrument code", w.instrument))
            })?;
            if !seen.insert(w.instrument.as_str()) {
                return Err(weight_error(format!(
                    "{} is named more than once",
                    w.instrument
                )));
            }
            if w.weight <= Decimal::ZERO || w.weight > Decimal::ONE {
                return Err(weight_error(format!(
                    "{}: {} is not in (0, 1]",
                    w.instrument, w.weight
                )));
            }
            if decimals(w.weight) > MAX_WEIGHT_DECIMALS {
                return Err(weight_error(format!(
                    "{}: {} has more than {MAX_WEIGHT_DECIMALS} decimals",
                    w.instrument, w.weight
                )));
            }
            // At most 201 terms of at most 1 each: no overflow possible.
            sum += w.weight;
        }
        if sum != Decimal::ONE {
            return Err(weight_error(format!(
                "the weights and cash_weight sum to {}, not exactly 1",
                sum.normalize()
            )));
        }
        Ok(())
    }
}

/// The version in effect on `on`: the latest effective on or before it (`None` before the
/// first). `versions` may be in any order.
pub fn version_in_effect(versions: &[StrategyVersion], on: NaiveDate) -> Option<&StrategyVersion> {
    versions
        .iter()
        .filter(|v| v.effective_date <= on)
        .max_by_key(|v| v.effective_date)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn strategy() -> NewStrategy {
        NewStrategy {
            code: "GLOBAL-60.40".into(),
            name: "Global 60/40".into(),
            description: String::new(),
            base_currency: "JPY".into(),
            risk_level: 3,
            expected_return_annual: d("0.045"),
            volatility_annual: d("0.12"),
            drift_band_kind: DriftBandKind::Absolute,
            drift_band: d("0.05"),
            rebalance_calendar: RebalanceCalendar::Quarterly,
            cooldown_days: 30,
            min_initial_investment: d("100000"),
        }
    }

    fn field(e: TenantsError) -> &'static str {
        match e {
            TenantsError::Validation { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn strategy_ranges() {
        strategy().validate().unwrap();
        type Change = Box<dyn Fn(&mut NewStrategy)>;
        let cases: Vec<(&str, Change)> = vec![
            ("code", Box::new(|s| s.code = "bad code".into())),
            ("code", Box::new(|s| s.code = "x".repeat(65))),
            ("code", Box::new(|s| s.code = String::new())),
            ("name", Box::new(|s| s.name = " ".into())),
            ("risk_level", Box::new(|s| s.risk_level = 0)),
            ("risk_level", Box::new(|s| s.risk_level = 6)),
            (
                "expected_return_annual",
                Box::new(|s| s.expected_return_annual = d("1.01")),
            ),
            (
                "expected_return_annual",
                Box::new(|s| s.expected_return_annual = d("-1.5")),
            ),
            (
                "volatility_annual",
                Box::new(|s| s.volatility_annual = d("-0.01")),
            ),
            (
                "volatility_annual",
                Box::new(|s| s.volatility_annual = d("2.1")),
            ),
            ("drift_band", Box::new(|s| s.drift_band = d("0"))),
            ("drift_band", Box::new(|s| s.drift_band = d("1"))),
            ("cooldown_days", Box::new(|s| s.cooldown_days = 366)),
            (
                "min_initial_investment",
                Box::new(|s| s.min_initial_investment = d("-1")),
            ),
        ];
        for (expected, change) in cases {
            let mut s = strategy();
            change(&mut s);
            assert_eq!(field(s.validate().unwrap_err()), expected);
        }
        assert!(check_money("m", d("1000.5"), 0).is_err());
        assert!(check_money("m", d("1000.50"), 1).is_ok());
        assert!(check_money("m", d("1000.00"), 0).is_ok());
    }

    fn version(cash: &str, weights: &[(&str, &str)]) -> NewVersion {
        NewVersion {
            effective_date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            cash_weight: d(cash),
            weights: weights
                .iter()
                .map(|(i, w)| ModelWeight {
                    instrument: (*i).into(),
                    weight: d(w),
                })
                .collect(),
        }
    }

    #[test]
    fn weights_sum_exactly_to_one() {
        version("0.02", &[("A", "0.5"), ("B", "0.48")])
            .validate()
            .unwrap();
        version("0", &[("A", "1")]).validate().unwrap();
        version("0", &[("A", "0.3333333333"), ("B", "0.6666666667")])
            .validate()
            .unwrap();
        for (a, b) in [
            ("0.3333333333", "0.6666666666"),
            ("0.3333333334", "0.6666666667"),
        ] {
            let e = version("0", &[("A", a), ("B", b)]).validate().unwrap_err();
            assert_eq!(field(e), "weights");
        }
    }

    #[test]
    fn weight_rules() {
        let bad = [
            version("0", &[]),
            version("0", &[("A", "0.5"), ("A", "0.5")]),
            version("0", &[("A", "0"), ("B", "1")]),
            version("0", &[("A", "1.5"), ("B", "-0.5")]),
            version("0", &[("A", "0.12345678901"), ("B", "0.87654321099")]),
            version("0", &[("bad code", "1")]),
        ];
        for v in bad {
            assert_eq!(field(v.validate().unwrap_err()), "weights", "{v:?}");
        }
        assert_eq!(
            field(version("-0.1", &[("A", "1.1")]).validate().unwrap_err()),
            "cash_weight"
        );
        // Trailing zeros are not decimals.
        version("0.00000000000", &[("A", "1.000000000000")])
            .validate()
            .unwrap();
    }

    #[test]
    fn version_in_effect_picks_latest_not_after() {
        let v = |n: u32, day: u32| StrategyVersion {
            strategy_id: Uuid::nil(),
            version: n,
            effective_date: NaiveDate::from_ymd_opt(2026, 12, day).unwrap(),
            cash_weight: Decimal::ZERO,
            weights: vec![],
            created_at: DateTime::UNIX_EPOCH,
        };
        let versions = [v(1, 1), v(3, 20), v(2, 10)];
        let on = |day| NaiveDate::from_ymd_opt(2026, 12, day).unwrap();
        assert_eq!(
            version_in_effect(&versions, NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()),
            None
        );
        assert_eq!(version_in_effect(&versions, on(1)).unwrap().version, 1);
        assert_eq!(version_in_effect(&versions, on(9)).unwrap().version, 1);
        assert_eq!(version_in_effect(&versions, on(10)).unwrap().version, 2);
        assert_eq!(version_in_effect(&versions, on(31)).unwrap().version, 3);
    }
}
