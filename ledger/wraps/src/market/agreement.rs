//! Agreements between a distributor and a manager's strategy, and their versioned terms, as
//! pure types and rules.
//!
//! Invariants (each tried by the test named):
//! * terms are valid before they reach the store: rates in range with at most
//!   [`MAX_RATE_DECIMALS`] decimals, tiers ascending with only the last open-ended, each split
//!   of shares ≥ 0 summing to exactly 1, the minimum contribution exact to the currency
//!   ([`Terms::validate`]; `tests::terms_rules`, `tests::split_sums_exactly_to_one`; over HTTP
//!   `api/tests/http/agreements.rs` `terms_are_checked`);
//! * the tiered fee is blended: each tier's rate applies only to the slice of value inside it
//!   ([`FeeSchedule::blended_annual_fee`]; `tests::blended_fee_worked_example`);
//! * the terms in effect on a date are the newest *accepted* version effective on or before
//!   it; proposed and declined versions never apply ([`terms_in_effect`];
//!   `tests::terms_in_effect_ignores_unaccepted`);
//! * an agreement moves only proposed → active | declined, and a terms version only
//!   proposed → accepted | declined ([`Decision::for_accept`]; `tests::decisions`).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::market::strategy::{check_money, decimals, str_enum};
use tenants::TenantsError;

/// Most decimals of a rate or share.
pub const MAX_RATE_DECIMALS: u32 = 10;
/// Most tiers of a fee schedule.
pub const MAX_TIERS: usize = 20;

/// The management fee: one annual rate, or rates by slices of wrap value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FeeSchedule {
    /// `{"kind":"flat","rate_annual":"0.011"}`
    #[schema(title = "FlatFee")]
    Flat {
        #[serde(
            serialize_with = "rust_decimal::serde::str::serialize",
            deserialize_with = "ledger::amount::de_strict"
        )]
        #[schema(value_type = String, example = "0.011")]
        rate_annual: Decimal,
    },
    /// `{"kind":"tiered","tiers":[{"up_to":"30000000","rate_annual":"0.011"},{"up_to":null,"rate_annual":"0.009"}]}`
    #[schema(title = "TieredFee")]
    Tiered { tiers: Vec<Tier> },
}

/// One slice of a tiered schedule: its rate applies to the value between the previous tier's
/// `up_to` (or 0) and this one's (`null`: no upper bound, the last tier only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    #[serde(with = "opt_decimal_str")]
    #[schema(value_type = Option<String>, example = "30000000")]
    pub up_to: Option<Decimal>,
    #[serde(
        serialize_with = "rust_decimal::serde::str::serialize",
        deserialize_with = "ledger::amount::de_strict"
    )]
    #[schema(value_type = String, example = "0.011")]
    pub rate_annual: Decimal,
}

/// How a fee is divided; the shares sum to exactly 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Split {
    /// The distributor's share.
    #[serde(
        serialize_with = "rust_decimal::serde::str::serialize",
        deserialize_with = "ledger::amount::de_strict"
    )]
    #[schema(value_type = String, example = "0.5")]
    pub channel: Decimal,
    #[serde(
        serialize_with = "rust_decimal::serde::str::serialize",
        deserialize_with = "ledger::amount::de_strict"
    )]
    #[schema(value_type = String, example = "0.4")]
    pub manager: Decimal,
    #[serde(
        serialize_with = "rust_decimal::serde::str::serialize",
        deserialize_with = "ledger::amount::de_strict"
    )]
    #[schema(value_type = String, example = "0.1")]
    pub platform: Decimal,
}

/// When a performance fee is crystallised. Either way a wrap that is liquidated (closed,
/// or everything withdrawn or switched out) crystallises when its money is paid out, so the
/// gain leaving the wrap is not left uncharged (end of day, `ledger/wraps/src/eod/trading.rs`).
/// `yearly`: also on 31 December, at most once a calendar year for a wrap that stays
/// invested. `at_close`: only at liquidation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Crystallisation {
    Yearly,
    AtClose,
}

/// An optional performance fee: `rate` × the gain above the high-water mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PerformanceFee {
    #[serde(
        serialize_with = "rust_decimal::serde::str::serialize",
        deserialize_with = "ledger::amount::de_strict"
    )]
    #[schema(value_type = String, example = "0.1")]
    pub rate: Decimal,
    /// Always `true`: no fee until earlier losses are recovered.
    pub high_water_mark: bool,
    pub crystallisation: Crystallisation,
    pub split: Split,
}

/// How often fees are collected (in arrears).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BillingPeriod {
    Monthly,
    Quarterly,
}

/// The terms of an agreement: what a wrap on the strategy pays, and how it is divided.
/// Stored as canonical JSON of exact decimal strings (the field order of this type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Terms {
    pub management_fee: FeeSchedule,
    /// Consumption tax on fees (0.10 in Japan).
    #[serde(
        serialize_with = "rust_decimal::serde::str::serialize",
        deserialize_with = "ledger::amount::de_strict"
    )]
    #[schema(value_type = String, example = "0.10")]
    pub consumption_tax_rate: Decimal,
    /// Division of the management fee.
    pub split: Split,
    pub performance_fee: Option<PerformanceFee>,
    pub billing_period: BillingPeriod,
    /// Smallest contribution, in the strategy's base currency.
    #[serde(
        serialize_with = "rust_decimal::serde::str::serialize",
        deserialize_with = "ledger::amount::de_strict"
    )]
    #[schema(value_type = String, example = "1000")]
    pub min_contribution: Decimal,
}

/// Terms as a distributor proposes them; tax and minimum contribution default for JPY
/// (0.10 and ¥1,000).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TermsInput {
    pub effective_date: NaiveDate,
    pub management_fee: FeeSchedule,
    #[serde(default, deserialize_with = "ledger::amount::de_strict_opt")]
    #[schema(value_type = Option<String>, example = "0.10")]
    pub consumption_tax_rate: Option<Decimal>,
    pub split: Split,
    #[serde(default)]
    pub performance_fee: Option<PerformanceFee>,
    pub billing_period: BillingPeriod,
    #[serde(default, deserialize_with = "ledger::amount::de_strict_opt")]
    #[schema(value_type = Option<String>, example = "1000")]
    pub min_contribution: Option<Decimal>,
}

fn rate_check(
    field: &'static str,
    rate: Decimal,
    allow_zero: bool,
    max: Decimal,
) -> Result<(), TenantsError> {
    let low_ok = if allow_zero {
        rate >= Decimal::ZERO
    } else {
        rate > Decimal::ZERO
    };
    if !low_ok || rate > max {
        let low = if allow_zero { "[0" } else { "(0" };
        return Err(TenantsError::invalid(
            field,
            format!("{rate} is not in {low}, {max}]"),
        ));
    }
    if decimals(rate) > MAX_RATE_DECIMALS {
        return Err(TenantsError::invalid(
            field,
            format!("{rate} has more than {MAX_RATE_DECIMALS} decimals"),
        ));
    }
    Ok(())
}

impl Split {
    /// Each share in [0, 1] with at most 10 decimals; the three sum to exactly 1.
    pub fn validate(&self, field: &'static str) -> Result<(), TenantsError> {
        for share in [self.channel, self.manager, self.platform] {
            rate_check(field, share, true, Decimal::ONE)?;
        }
        let sum = self.channel + self.manager + self.platform;
        if sum != Decimal::ONE {
            return Err(TenantsError::invalid(
                field,
                format!(
                    "channel, manager and platform sum to {}, not exactly 1",
                    sum.normalize()
                ),
            ));
        }
        Ok(())
    }
}

impl FeeSchedule {
    /// Rates in [0, 1) … at most 1, tiers ascending, only the last open-ended.
    pub fn validate(&self) -> Result<(), TenantsError> {
        const F: &str = "management_fee";
        match self {
            FeeSchedule::Flat { rate_annual } => rate_check(F, *rate_annual, true, Decimal::ONE),
            FeeSchedule::Tiered { tiers } => {
                if tiers.is_empty() || tiers.len() > MAX_TIERS {
                    return Err(TenantsError::invalid(
                        F,
                        format!("tiers: give 1 to {MAX_TIERS} tiers"),
                    ));
                }
                let mut previous = Decimal::ZERO;
                for (i, tier) in tiers.iter().enumerate() {
                    rate_check(F, tier.rate_annual, true, Decimal::ONE)?;
                    let last = i + 1 == tiers.len();
                    match (tier.up_to, last) {
                        (None, true) => {}
                        (None, false) => {
                            return Err(TenantsError::invalid(
                                F,
                                format!(
                                    "tiers[{i}]: only the last tier is open-ended (up_to null)"
                                ),
                            ));
                        }
                        (Some(_), true) => {
                            return Err(TenantsError::invalid(
                                F,
                                "tiers: the last tier must be open-ended (up_to null)",
                            ));
                        }
                        (Some(up_to), false) => {
                            if up_to <= previous {
                                return Err(TenantsError::invalid(
                                    F,
                                    format!(
                                        "tiers[{i}]: up_to {up_to} must be above the previous bound {previous} (tiers ascending)"
                                    ),
                                ));
                            }
                            if decimals(up_to) > MAX_RATE_DECIMALS {
                                return Err(TenantsError::invalid(
                                    F,
                                    format!("tiers[{i}]: up_to has too many decimals"),
                                ));
                            }
                            previous = up_to;
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// The fee for a year on a wrap worth `value` (before tax, unrounded): flat, `rate ×
    /// value`; tiered, Σ over tiers of `rate_i × (min(value, up_to_i) − lower_i)` for the
    /// slices below `value`, where `lower_i` is the previous tier's `up_to` (0 for the first).
    /// A negative value pays nothing.
    pub fn blended_annual_fee(&self, value: Decimal) -> Decimal {
        if value <= Decimal::ZERO {
            return Decimal::ZERO;
        }
        match self {
            FeeSchedule::Flat { rate_annual } => rate_annual * value,
            FeeSchedule::Tiered { tiers } => {
                let mut fee = Decimal::ZERO;
                let mut lower = Decimal::ZERO;
                for tier in tiers {
                    let upper = tier.up_to.map_or(value, |u| u.min(value));
                    if upper > lower {
                        fee += tier.rate_annual * (upper - lower);
                    }
                    match tier.up_to {
                        Some(u) if u < value => lower = u,
                        _ => break,
                    }
                }
                fee
            }
        }
    }
}

impl Terms {
    /// Every rule of the terms, for a strategy whose base currency has `currency_scale`.
    pub fn validate(&self, currency_scale: u32) -> Result<(), TenantsError> {
        self.management_fee.validate()?;
        rate_check(
            "consumption_tax_rate",
            self.consumption_tax_rate,
            true,
            Decimal::ONE,
        )?;
        self.split.validate("split")?;
        if let Some(p) = &self.performance_fee {
            rate_check("performance_fee.rate", p.rate, false, Decimal::ONE)?;
            if !p.high_water_mark {
                return Err(TenantsError::invalid(
                    "performance_fee.high_water_mark",
                    "must be true: no performance fee is charged until earlier losses are recovered",
                ));
            }
            p.split.validate("performance_fee.split")?;
        }
        check_money("min_contribution", self.min_contribution, currency_scale)?;
        Ok(())
    }

    /// See [`FeeSchedule::blended_annual_fee`].
    pub fn blended_annual_fee(&self, value: Decimal) -> Decimal {
        self.management_fee.blended_annual_fee(value)
    }
}

impl TermsInput {
    /// The effective date and the validated terms, with JPY defaults filled in; other
    /// currencies must state the tax rate and the minimum contribution.
    pub fn into_terms(
        self,
        currency: &str,
        currency_scale: u32,
    ) -> Result<(NaiveDate, Terms), TenantsError> {
        let jpy = currency == "JPY";
        let consumption_tax_rate = match (self.consumption_tax_rate, jpy) {
            (Some(r), _) => r,
            (None, true) => Decimal::new(10, 2),
            (None, false) => {
                return Err(TenantsError::invalid(
                    "consumption_tax_rate",
                    format!("required for a strategy in {currency}"),
                ));
            }
        };
        let min_contribution = match (self.min_contribution, jpy) {
            (Some(m), _) => m,
            (None, true) => Decimal::from(1000),
            (None, false) => {
                return Err(TenantsError::invalid(
                    "min_contribution",
                    format!("required for a strategy in {currency}"),
                ));
            }
        };
        let terms = Terms {
            management_fee: self.management_fee,
            consumption_tax_rate,
            split: self.split,
            performance_fee: self.performance_fee,
            billing_period: self.billing_period,
            min_contribution,
        };
        terms.validate(currency_scale)?;
        Ok((self.effective_date, terms))
    }
}

/// An optional decimal as a string or `null`, read by the one strict parser.
/// (`rust_decimal::serde::str_option` refuses the `null` inside an internally tagged enum,
/// where serde buffers it as a unit.)
mod opt_decimal_str {
    use rust_decimal::Decimal;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        rust_decimal::serde::str_option::serialize(v, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        ledger::amount::de_strict_opt(d)
    }
}

// ---------------------------------------------------------------------------------------
// Agreements and terms versions

/// Where an agreement stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgreementStatus {
    Proposed,
    Active,
    Declined,
    Terminated,
}

/// Where a terms version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TermsStatus {
    Proposed,
    Accepted,
    Declined,
}

str_enum!(AgreementStatus {
    Proposed = "proposed",
    Active = "active",
    Declined = "declined",
    Terminated = "terminated",
});
str_enum!(TermsStatus { Proposed = "proposed", Accepted = "accepted", Declined = "declined" });
str_enum!(BillingPeriod { Monthly = "monthly", Quarterly = "quarterly" });

/// An agreement: distributor × manager × strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Agreement {
    pub id: Uuid,
    /// The distributor that proposed it (its owner).
    pub distributor_tenant_id: Uuid,
    pub manager_tenant_id: Uuid,
    pub strategy_id: Uuid,
    pub status: AgreementStatus,
    pub proposed_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    /// The client id of who accepted or declined it.
    pub decided_by: Option<String>,
}

/// One version of an agreement's terms: immutable apart from its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TermsVersion {
    pub agreement_id: Uuid,
    /// 1 for the terms proposed with the agreement, then 2, 3, …
    pub version: u32,
    pub effective_date: NaiveDate,
    pub status: TermsStatus,
    pub terms: Terms,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
}

/// The terms in effect on `on`: the newest accepted version effective on or before it.
pub fn terms_in_effect(versions: &[TermsVersion], on: NaiveDate) -> Option<&TermsVersion> {
    versions
        .iter()
        .filter(|v| v.status == TermsStatus::Accepted && v.effective_date <= on)
        .max_by_key(|v| (v.effective_date, v.version))
}

/// What accepting or declining an agreement changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A proposed agreement and its first terms: to active/accepted or declined/declined.
    Agreement,
    /// A proposed new terms version of an active agreement (the agreement stays active).
    TermsOnly,
}

impl Decision {
    /// Whether the manager may decide now, given the agreement's status and whether a terms
    /// version awaits a decision; 409 (conflict) otherwise.
    pub fn for_accept(
        status: AgreementStatus,
        has_proposed_terms: bool,
    ) -> Result<Self, TenantsError> {
        match (status, has_proposed_terms) {
            (AgreementStatus::Proposed, true) => Ok(Decision::Agreement),
            (AgreementStatus::Active, true) => Ok(Decision::TermsOnly),
            (AgreementStatus::Active, false) => Err(TenantsError::Conflict(
                "the agreement is active and no new terms await a decision".into(),
            )),
            (s, _) => Err(TenantsError::Conflict(format!(
                "the agreement is {} and can no longer be decided",
                s.as_str()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn tiered() -> FeeSchedule {
        FeeSchedule::Tiered {
            tiers: vec![
                Tier {
                    up_to: Some(d("30000000")),
                    rate_annual: d("0.011"),
                },
                Tier {
                    up_to: None,
                    rate_annual: d("0.009"),
                },
            ],
        }
    }

    fn terms() -> Terms {
        Terms {
            management_fee: tiered(),
            consumption_tax_rate: d("0.10"),
            split: Split {
                channel: d("0.5"),
                manager: d("0.4"),
                platform: d("0.1"),
            },
            performance_fee: None,
            billing_period: BillingPeriod::Quarterly,
            min_contribution: d("1000"),
        }
    }

    #[test]
    fn blended_fee_worked_example() {
        let t = terms();
        // ¥50 M: 1.1 % of the first ¥30 M (330,000) + 0.9 % of the other ¥20 M (180,000).
        assert_eq!(t.blended_annual_fee(d("50000000")), d("510000"));
        // Inside the first tier only.
        assert_eq!(t.blended_annual_fee(d("10000000")), d("110000"));
        // Exactly at the bound: nothing from the second tier.
        assert_eq!(t.blended_annual_fee(d("30000000")), d("330000"));
        assert_eq!(t.blended_annual_fee(d("0")), d("0"));
        assert_eq!(t.blended_annual_fee(d("-5")), d("0"));
        let flat = FeeSchedule::Flat {
            rate_annual: d("0.011"),
        };
        assert_eq!(flat.blended_annual_fee(d("50000000")), d("550000"));
        // Three tiers, value in the middle one.
        let three = FeeSchedule::Tiered {
            tiers: vec![
                Tier {
                    up_to: Some(d("100")),
                    rate_annual: d("0.03"),
                },
                Tier {
                    up_to: Some(d("200")),
                    rate_annual: d("0.02"),
                },
                Tier {
                    up_to: None,
                    rate_annual: d("0.01"),
                },
            ],
        };
        assert_eq!(three.blended_annual_fee(d("150")), d("4"));
        assert_eq!(three.blended_annual_fee(d("300")), d("6"));
    }

    fn field(e: TenantsError) -> &'static str {
        match e {
            TenantsError::Validation { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn split_sums_exactly_to_one() {
        terms().validate(0).unwrap();
        for (c, m, p) in [
            ("0.5", "0.4", "0.0999999999"),
            ("0.5", "0.4", "0.1000000001"),
            ("1.1", "-0.1", "0"),
        ] {
            let mut t = terms();
            t.split = Split {
                channel: d(c),
                manager: d(m),
                platform: d(p),
            };
            assert_eq!(field(t.validate(0).unwrap_err()), "split");
        }
    }

    #[test]
    fn terms_rules() {
        let mut t = terms();
        t.management_fee = FeeSchedule::Tiered {
            tiers: vec![
                Tier {
                    up_to: Some(d("30000000")),
                    rate_annual: d("0.011"),
                },
                Tier {
                    up_to: Some(d("10000000")),
                    rate_annual: d("0.01"),
                },
                Tier {
                    up_to: None,
                    rate_annual: d("0.009"),
                },
            ],
        };
        assert_eq!(field(t.validate(0).unwrap_err()), "management_fee");
        t.management_fee = FeeSchedule::Tiered {
            tiers: vec![Tier {
                up_to: Some(d("1")),
                rate_annual: d("0.01"),
            }],
        };
        assert_eq!(field(t.validate(0).unwrap_err()), "management_fee");
        t.management_fee = FeeSchedule::Tiered {
            tiers: vec![
                Tier {
                    up_to: None,
                    rate_annual: d("0.01"),
                },
                Tier {
                    up_to: None,
                    rate_annual: d("0.01"),
                },
            ],
        };
        assert_eq!(field(t.validate(0).unwrap_err()), "management_fee");
        t.management_fee = FeeSchedule::Flat {
            rate_annual: d("-0.01"),
        };
        assert_eq!(field(t.validate(0).unwrap_err()), "management_fee");
        t.management_fee = FeeSchedule::Flat {
            rate_annual: d("0.00000000001"),
        };
        assert_eq!(field(t.validate(0).unwrap_err()), "management_fee");
        let mut t = terms();
        t.min_contribution = d("1000.5");
        assert_eq!(field(t.validate(0).unwrap_err()), "min_contribution");
        let mut t = terms();
        t.consumption_tax_rate = d("1.5");
        assert_eq!(field(t.validate(0).unwrap_err()), "consumption_tax_rate");
        let mut t = terms();
        t.performance_fee = Some(PerformanceFee {
            rate: d("0.1"),
            high_water_mark: true,
            crystallisation: Crystallisation::Yearly,
            split: Split {
                channel: d("0.5"),
                manager: d("0.5"),
                platform: d("0.1"),
            },
        });
        assert_eq!(field(t.validate(0).unwrap_err()), "performance_fee.split");
        // Both crystallisations are accepted (end of day builds both).
        if let Some(p) = t.performance_fee.as_mut() {
            p.split.platform = d("0");
        }
        assert!(t.validate(0).is_ok());
        if let Some(p) = t.performance_fee.as_mut() {
            p.crystallisation = Crystallisation::AtClose;
        }
        assert!(t.validate(0).is_ok());
        // JSON round trip keeps exact strings.
        let json = serde_json::to_string(&terms()).unwrap();
        assert!(json.contains(r#""up_to":"30000000""#), "{json}");
        assert_eq!(serde_json::from_str::<Terms>(&json).unwrap(), terms());
    }

    #[test]
    fn terms_in_effect_ignores_unaccepted() {
        let v = |n: u32, day: u32, status| TermsVersion {
            agreement_id: Uuid::nil(),
            version: n,
            effective_date: NaiveDate::from_ymd_opt(2026, 12, day).unwrap(),
            status,
            terms: terms(),
            created_at: DateTime::UNIX_EPOCH,
            decided_at: None,
            decided_by: None,
        };
        let versions = [
            v(1, 1, TermsStatus::Accepted),
            v(2, 10, TermsStatus::Declined),
            v(3, 15, TermsStatus::Accepted),
            v(4, 20, TermsStatus::Proposed),
        ];
        let on = |day| NaiveDate::from_ymd_opt(2026, 12, day).unwrap();
        assert_eq!(terms_in_effect(&versions, on(12)).unwrap().version, 1);
        assert_eq!(terms_in_effect(&versions, on(15)).unwrap().version, 3);
        assert_eq!(terms_in_effect(&versions, on(25)).unwrap().version, 3);
        assert!(
            terms_in_effect(&versions, NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()).is_none()
        );
    }

    #[test]
    fn decisions() {
        use AgreementStatus as S;
        assert_eq!(
            Decision::for_accept(S::Proposed, true).unwrap(),
            Decision::Agreement
        );
        assert_eq!(
            Decision::for_accept(S::Active, true).unwrap(),
            Decision::TermsOnly
        );
        for (s, p) in [
            (S::Active, false),
            (S::Declined, false),
            (S::Terminated, false),
            (S::Proposed, false),
        ] {
            assert!(matches!(
                Decision::for_accept(s, p),
                Err(TenantsError::Conflict(_))
            ));
        }
    }
}
