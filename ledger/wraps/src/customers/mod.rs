//! The virtual account layer: customers, their one real account, and the wraps (virtual
//! sub-accounts) inside it. Pure types and rules; persistence is [`store`].
//!
//! Money never lives in these types: every balance is a ledger account, named by the codes
//! below, so the books stay the one source of truth and every movement is a balanced entry.
//!
//! | ledger account | normal side | what it holds |
//! |---|---|---|
//! | `customer:{customer}:cash:{CCY}` | credit | the customer's free cash in the account (owed to them) |
//! | `wrap:{wrap}:cash` | credit | a wrap's cash |
//! | `wrap:{wrap}:units:{INSTRUMENT}` | credit | a wrap's units of one instrument |
//! | `omnibus:{ASSET}` | debit | what the platform really holds at the bank or custodian for the distributor's customers |
//!
//! All live in the distributor's book. Invariant 5 (the virtual layer reconciles) follows
//! from this chart: every entry that touches a `customer:` or `wrap:` account either moves
//! value between two of them (a contribution, a switch) or pairs it with the same amount on
//! the omnibus (a deposit, a withdrawal), so per asset Σ customer + Σ wrap = omnibus.
//! Tried by the property test `api/tests/http/wraps.rs::money_movements_keep_the_books_reconciled`.
//!
//! Rules owned here, each with its test below:
//! * a customer's risk tolerance and a strategy's risk level are 1–5, and a wrap on a
//!   strategy riskier than the customer's tolerance is refused ([`suitability`]);
//! * a goal has a positive target exact to the currency and a target date after today;
//! * a plan's amount is positive, a percentage is in (0, 1], its day of month 1–28 (so it
//!   exists in every month), and it ends no earlier than it starts;
//! * a customer's adviser is an active adviser of the customer's branch ([`check_assignment`]),
//!   and an adviser sees the customers of their own branch only ([`Scope::of_user`]; tried by
//!   `api/tests/http/branches.rs`).

pub mod store;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use ledger::amount::AmountBound;

/// A value the caller gave that breaks a rule, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    /// The field, as named in the request (`risk_tolerance`, `goal/target_amount`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl Invalid {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// Code of a customer's cash account in `currency`.
pub fn customer_cash_code(customer_id: Uuid, currency: &str) -> String {
    format!("customer:{customer_id}:cash:{currency}")
}

/// Code of a wrap's cash account.
pub fn wrap_cash_code(wrap_id: Uuid) -> String {
    format!("wrap:{wrap_id}:cash")
}

/// Code of a wrap's account of units of `instrument`.
pub fn wrap_units_code(wrap_id: Uuid, instrument: &str) -> String {
    format!("wrap:{wrap_id}:units:{instrument}")
}

/// The wrap and what an account holds, from its code: `wrap:{id}:cash` gives `None`,
/// `wrap:{id}:units:{INSTRUMENT}` the instrument; any other code gives nothing.
pub fn parse_wrap_code(code: &str) -> Option<(Uuid, Option<&str>)> {
    let rest = code.strip_prefix("wrap:")?;
    let (id, what) = rest.split_once(':')?;
    let id = Uuid::parse_str(id).ok()?;
    if what == "cash" {
        Some((id, None))
    } else {
        what.strip_prefix("units:").map(|i| (id, Some(i)))
    }
}

/// Code of the distributor's omnibus account of `asset`.
pub fn omnibus_code(asset: &str) -> String {
    format!("omnibus:{asset}")
}

/// Whether a customer may hold an account with us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CustomerStatus {
    Active,
    Closed,
}

impl CustomerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

/// A distributor's customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Customer {
    pub id: Uuid,
    /// The distributor.
    pub tenant_id: Uuid,
    /// The distributor's own reference, unique within the distributor.
    pub external_ref: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<NaiveDate>,
    /// 1 (cautious) to 5 (adventurous).
    pub risk_tolerance: i32,
    pub status: CustomerStatus,
    pub created_at: DateTime<Utc>,
    /// The distributor's branch the customer belongs to, once assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_id: Option<Uuid>,
    /// The console user (an adviser of that branch) who looks after the customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adviser_id: Option<Uuid>,
}

/// Which of a distributor's customers someone may see: all of them (its API clients, head
/// office) or one branch's (an adviser).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    Branch(Uuid),
}

impl Scope {
    /// A console user's: an adviser sees their branch (none at all without one, which
    /// [`tenants::users::prepare`] never allows); everyone else the whole book.
    pub fn of_user(user: &tenants::users::User) -> Self {
        match user.role {
            tenants::users::UserRole::Adviser => Self::Branch(user.branch_id.unwrap_or_default()),
            _ => Self::All,
        }
    }

    /// Whether `customer` is in this scope.
    pub fn sees(self, customer: &Customer) -> bool {
        match self {
            Self::All => true,
            Self::Branch(branch) => customer.branch_id == Some(branch),
        }
    }
}

/// Whether `adviser` may look after a customer of `branch`: an active adviser working there.
pub fn check_assignment(
    branch: &tenants::branches::Branch,
    adviser: Option<&tenants::users::User>,
) -> Result<(), Invalid> {
    use tenants::users::{UserRole, UserStatus};
    let Some(adviser) = adviser else {
        return Ok(());
    };
    if adviser.role != UserRole::Adviser {
        return Err(Invalid::new(
            "adviser_id",
            format!("user {} is not an adviser", adviser.id),
        ));
    }
    if adviser.branch_id != Some(branch.id) {
        return Err(Invalid::new(
            "adviser_id",
            format!(
                "adviser {} does not work at branch {}",
                adviser.id, branch.code
            ),
        ));
    }
    if adviser.status != UserStatus::Active {
        return Err(Invalid::new(
            "adviser_id",
            format!("adviser {} is {}", adviser.id, adviser.status.as_str()),
        ));
    }
    Ok(())
}

/// What it takes to open a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCustomer {
    pub external_ref: String,
    pub name: String,
    pub date_of_birth: Option<NaiveDate>,
    pub risk_tolerance: i32,
}

impl NewCustomer {
    /// Checks every field; `today` is the business date.
    pub fn validate(&self, today: NaiveDate) -> Result<(), Invalid> {
        let r = self.external_ref.as_str();
        if r.is_empty() || r.len() > 100 || r.chars().any(char::is_control) {
            return Err(Invalid::new(
                "external_ref",
                "must be 1 to 100 characters, none of them control characters",
            ));
        }
        check_name("name", &self.name)?;
        if let Some(dob) = self.date_of_birth {
            if dob > today {
                return Err(Invalid::new("date_of_birth", "is in the future"));
            }
            if dob < NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN) {
                return Err(Invalid::new("date_of_birth", "is before 1900-01-01"));
            }
        }
        check_risk("risk_tolerance", self.risk_tolerance)
    }
}

/// A display name: 1 to 200 characters, not blank, no control characters.
pub fn check_name(field: &str, name: &str) -> Result<(), Invalid> {
    if name.trim().is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(Invalid::new(
            field,
            "must be 1 to 200 characters, not blank, no control characters",
        ));
    }
    Ok(())
}

/// A risk tolerance or level: 1 to 5.
pub fn check_risk(field: &str, level: i32) -> Result<(), Invalid> {
    if (1..=5).contains(&level) {
        Ok(())
    } else {
        Err(Invalid::new(field, "must be an integer from 1 to 5"))
    }
}

/// Suitability (DOMAIN.md section 3): a strategy whose risk level is above the customer's
/// tolerance is refused, with the reason.
pub fn suitability(strategy_risk_level: i32, customer_risk_tolerance: i32) -> Result<(), String> {
    if strategy_risk_level > customer_risk_tolerance {
        Err(format!(
            "unsuitable: the strategy's risk level is {strategy_risk_level}, above the \
             customer's risk tolerance of {customer_risk_tolerance}"
        ))
    } else {
        Ok(())
    }
}

/// Where a wrap is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WrapStatus {
    /// Opened, never funded.
    Open,
    /// Funded: follows its strategy.
    Active,
    /// Closing: end of day sells everything, collects the final fees and pays the cash back.
    Closing,
    /// Closed: holds nothing, accepts nothing.
    Closed,
}

impl WrapStatus {
    pub const ALL: [&'static str; 4] = ["open", "active", "closing", "closed"];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Active => "active",
            Self::Closing => "closing",
            Self::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "active" => Some(Self::Active),
            "closing" => Some(Self::Closing),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }

    /// Whether it counts towards the customer's limit of open wraps.
    pub fn is_live(self) -> bool {
        self != Self::Closed
    }

    /// Whether money may still come in (contributions, switches in, plans).
    pub fn accepts_money(self) -> bool {
        matches!(self, Self::Open | Self::Active)
    }
}

/// A savings goal of a wrap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Goal {
    pub name: String,
    /// In the wrap's currency.
    #[schema(value_type = String, example = "10000000")]
    #[serde(deserialize_with = "ledger::amount::de_strict")]
    pub target_amount: Decimal,
    pub target_date: NaiveDate,
}

impl Goal {
    /// Checks the goal; `bound` is the currency's, `today` the business date.
    pub fn validate(&self, bound: &AmountBound, today: NaiveDate) -> Result<(), Invalid> {
        check_name("goal/name", &self.name)?;
        check_money("goal/target_amount", self.target_amount, bound)?;
        if self.target_date <= today {
            return Err(Invalid::new(
                "goal/target_date",
                format!("must be after today ({today})"),
            ));
        }
        Ok(())
    }
}

/// A positive amount with no more decimals than the asset's scale, at most its configured
/// bound ([`ledger::amount::check_money`], the one check of a single amount), refused naming
/// `field`. Returns the amount in minor units.
pub fn check_money(field: &str, amount: Decimal, bound: &AmountBound) -> Result<i64, Invalid> {
    ledger::amount::check_money(amount, bound).map_err(|refused| Invalid::new(field, refused.0))
}

/// A wrap: one virtual sub-account following one strategy under one agreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Wrap {
    pub id: Uuid,
    /// The distributor.
    pub tenant_id: Uuid,
    pub customer_id: Uuid,
    pub agreement_id: Uuid,
    pub manager_tenant_id: Uuid,
    pub strategy_id: Uuid,
    pub currency: String,
    pub name: String,
    pub status: WrapStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goal: Option<Goal>,
    /// The wrap's cash account in the ledger.
    pub cash_account_id: Uuid,
    pub opened_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    /// Decimal places of the currency (JPY 0).
    #[serde(skip)]
    pub currency_scale: u32,
}

/// What a pending movement asks end of day to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    /// Sell enough to pay `amount` (or everything) back to the customer's account.
    Withdrawal,
    /// Sell enough to move `amount` (or everything) into another wrap of the same customer.
    Switch,
    /// Sell everything, collect the final fees, pay the cash back, close the wrap.
    Close,
}

impl MovementKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Withdrawal => "withdrawal",
            Self::Switch => "switch",
            Self::Close => "close",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "withdrawal" => Some(Self::Withdrawal),
            "switch" => Some(Self::Switch),
            "close" => Some(Self::Close),
            _ => None,
        }
    }
}

/// Where a movement stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MovementStatus {
    Pending,
    Fulfilled,
    Cancelled,
}

impl MovementStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Fulfilled => "fulfilled",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "fulfilled" => Some(Self::Fulfilled),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// A withdrawal, switch or close waiting for end of day to sell units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Movement {
    pub id: Uuid,
    pub wrap_id: Uuid,
    pub kind: MovementKind,
    /// The amount asked for; absent means everything.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub amount: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_wrap_id: Option<Uuid>,
    pub status: MovementStatus,
    pub requested_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// Once fulfilled: what end of day paid out (to the customer, or into the destination
    /// wrap). Less than `amount` when the sales raised less than asked (prices fell, or a
    /// sale was skipped below an instrument's minimum) or fees owed were kept back; for
    /// everything, the value paid out net of fees (a performance fee crystallised then
    /// included).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub paid: Option<Decimal>,
    /// Once fulfilled: the business date end of day paid it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_on: Option<NaiveDate>,
}

/// Contribution (積立) or withdrawal (取り崩し) plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanKind {
    Contribution,
    Withdrawal,
}

impl PlanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contribution => "contribution",
            Self::Withdrawal => "withdrawal",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "contribution" => Some(Self::Contribution),
            "withdrawal" => Some(Self::Withdrawal),
            _ => None,
        }
    }
}

/// How often a plan runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    Monthly,
    Quarterly,
    Yearly,
}

impl Frequency {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Monthly => "monthly",
            Self::Quarterly => "quarterly",
            Self::Yearly => "yearly",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "monthly" => Some(Self::Monthly),
            "quarterly" => Some(Self::Quarterly),
            "yearly" => Some(Self::Yearly),
            _ => None,
        }
    }
}

/// Whether a plan still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    Active,
    Cancelled,
}

impl PlanStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// A recurring contribution or withdrawal, executed by end of day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Plan {
    pub id: Uuid,
    pub wrap_id: Uuid,
    pub kind: PlanKind,
    /// A fixed amount per run (contribution plans always; withdrawal plans either this or
    /// `percentage`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub amount: Option<Decimal>,
    /// A withdrawal plan's share of the wrap's value per run, in (0, 1].
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub percentage: Option<Decimal>,
    pub frequency: Frequency,
    /// 1 to 28.
    pub day_of_month: i32,
    pub start_date: NaiveDate,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_date: Option<NaiveDate>,
    pub status: PlanStatus,
    pub created_at: DateTime<Utc>,
}

/// What it takes to set up a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPlan {
    pub kind: PlanKind,
    pub amount: Option<Decimal>,
    pub percentage: Option<Decimal>,
    pub frequency: Frequency,
    pub day_of_month: i32,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
}

impl NewPlan {
    /// Checks the plan's own fields; `bound` is the wrap currency's, `min_contribution` the
    /// agreement's minimum, `today` the business date.
    pub fn validate(
        &self,
        bound: &AmountBound,
        min_contribution: Decimal,
        today: NaiveDate,
    ) -> Result<(), Invalid> {
        match (self.kind, self.amount, self.percentage) {
            (PlanKind::Contribution, Some(amount), None) => {
                check_money("amount", amount, bound)?;
                if amount < min_contribution {
                    return Err(Invalid::new(
                        "amount",
                        format!(
                            "is below the agreement's minimum contribution of {min_contribution}"
                        ),
                    ));
                }
                if self.frequency != Frequency::Monthly {
                    return Err(Invalid::new(
                        "frequency",
                        "a contribution plan runs monthly",
                    ));
                }
            }
            (PlanKind::Contribution, _, Some(_)) => {
                return Err(Invalid::new(
                    "percentage",
                    "a contribution plan takes an amount, not a percentage",
                ));
            }
            (PlanKind::Withdrawal, Some(amount), None) => {
                check_money("amount", amount, bound)?;
            }
            (PlanKind::Withdrawal, None, Some(pct)) => {
                if pct <= Decimal::ZERO || pct > Decimal::ONE {
                    return Err(Invalid::new(
                        "percentage",
                        "must be greater than 0 and at most 1 (0.04 is 4 %)",
                    ));
                }
                if pct.normalize().scale() > 6 {
                    return Err(Invalid::new("percentage", "has more than 6 decimal places"));
                }
            }
            (PlanKind::Withdrawal, Some(_), Some(_)) => {
                return Err(Invalid::new(
                    "percentage",
                    "give either amount or percentage, not both",
                ));
            }
            (_, None, None) => return Err(Invalid::new("amount", "is required")),
        }
        if !(1..=28).contains(&self.day_of_month) {
            return Err(Invalid::new(
                "day_of_month",
                "must be 1 to 28, so that it exists in every month",
            ));
        }
        if self.start_date < today {
            return Err(Invalid::new(
                "start_date",
                format!("is before today ({today})"),
            ));
        }
        if let Some(end) = self.end_date
            && end < self.start_date
        {
            return Err(Invalid::new("end_date", "is before start_date"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpy() -> AmountBound {
        AmountBound::default_for("JPY", 0)
    }

    #[test]
    fn wrap_codes_name_the_wrap_and_the_holding() {
        let id = Uuid::now_v7();
        assert_eq!(parse_wrap_code(&wrap_cash_code(id)), Some((id, None)));
        assert_eq!(
            parse_wrap_code(&wrap_units_code(id, "JP90C000AAA1")),
            Some((id, Some("JP90C000AAA1")))
        );
        assert_eq!(parse_wrap_code(&format!("wrap:{id}:other")), None);
        assert_eq!(parse_wrap_code("omnibus:JPY"), None);
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_riskier_strategy_is_unsuitable() {
        assert!(suitability(3, 3).is_ok());
        assert!(suitability(2, 5).is_ok());
        let why = suitability(4, 3).unwrap_err();
        assert!(
            why.contains("risk level is 4") && why.contains("tolerance of 3"),
            "{why}"
        );
    }

    #[test]
    fn customer_fields_are_checked() {
        let ok = NewCustomer {
            external_ref: "C-0001".into(),
            name: "Hanako Yamada".into(),
            date_of_birth: Some(day("1980-04-01")),
            risk_tolerance: 3,
        };
        let today = day("2026-11-21");
        assert!(ok.validate(today).is_ok());
        let field = |c: NewCustomer| c.validate(today).unwrap_err().field;
        assert_eq!(
            field(NewCustomer {
                risk_tolerance: 0,
                ..ok.clone()
            }),
            "risk_tolerance"
        );
        assert_eq!(
            field(NewCustomer {
                risk_tolerance: 6,
                ..ok.clone()
            }),
            "risk_tolerance"
        );
        assert_eq!(
            field(NewCustomer {
                name: "  ".into(),
                ..ok.clone()
            }),
            "name"
        );
        assert_eq!(
            field(NewCustomer {
                external_ref: String::new(),
                ..ok.clone()
            }),
            "external_ref"
        );
        assert_eq!(
            field(NewCustomer {
                date_of_birth: Some(day("2026-11-22")),
                ..ok.clone()
            }),
            "date_of_birth"
        );
    }

    #[test]
    fn money_is_positive_and_exact_to_the_scale() {
        assert!(check_money("amount", dec("1000"), &jpy()).is_ok());
        assert!(
            check_money("amount", dec("1000.00"), &jpy()).is_ok(),
            "trailing zeros are exact"
        );
        assert_eq!(
            check_money("amount", dec("0"), &jpy()).unwrap_err().field,
            "amount"
        );
        assert!(check_money("amount", dec("-5"), &jpy()).is_err());
        assert!(
            check_money("amount", dec("10.5"), &jpy())
                .unwrap_err()
                .message
                .contains("decimal")
        );
        assert!(check_money("amount", dec("10.55"), &AmountBound::default_for("USD", 2)).is_ok());
    }

    #[test]
    fn goals_need_a_future_date_and_a_positive_target() {
        let today = day("2026-11-21");
        let goal = Goal {
            name: "Retirement".into(),
            target_amount: dec("20000000"),
            target_date: day("2046-04-01"),
        };
        assert!(goal.validate(&jpy(), today).is_ok());
        let past = Goal {
            target_date: today,
            ..goal.clone()
        };
        assert_eq!(
            past.validate(&jpy(), today).unwrap_err().field,
            "goal/target_date"
        );
        let zero = Goal {
            target_amount: dec("0"),
            ..goal
        };
        assert_eq!(
            zero.validate(&jpy(), today).unwrap_err().field,
            "goal/target_amount"
        );
    }

    #[test]
    fn plans_are_checked() {
        let today = day("2026-11-21");
        let plan = NewPlan {
            kind: PlanKind::Contribution,
            amount: Some(dec("30000")),
            percentage: None,
            frequency: Frequency::Monthly,
            day_of_month: 27,
            start_date: day("2026-12-01"),
            end_date: None,
        };
        assert!(plan.validate(&jpy(), dec("1000"), today).is_ok());
        let f = |p: NewPlan| p.validate(&jpy(), dec("1000"), today).unwrap_err().field;
        assert_eq!(
            f(NewPlan {
                amount: Some(dec("999")),
                ..plan.clone()
            }),
            "amount"
        );
        assert_eq!(
            f(NewPlan {
                day_of_month: 31,
                ..plan.clone()
            }),
            "day_of_month"
        );
        assert_eq!(
            f(NewPlan {
                start_date: day("2026-11-20"),
                ..plan.clone()
            }),
            "start_date"
        );
        assert_eq!(
            f(NewPlan {
                end_date: Some(day("2026-11-30")),
                ..plan.clone()
            }),
            "end_date"
        );
        assert_eq!(
            f(NewPlan {
                frequency: Frequency::Yearly,
                ..plan.clone()
            }),
            "frequency"
        );
        let withdraw = NewPlan {
            kind: PlanKind::Withdrawal,
            amount: None,
            percentage: Some(dec("0.04")),
            frequency: Frequency::Yearly,
            ..plan.clone()
        };
        assert!(withdraw.validate(&jpy(), dec("1000"), today).is_ok());
        assert_eq!(
            f(NewPlan {
                percentage: Some(dec("1.5")),
                ..withdraw.clone()
            }),
            "percentage"
        );
        assert_eq!(
            f(NewPlan {
                amount: Some(dec("1")),
                ..withdraw.clone()
            }),
            "percentage",
            "both amount and percentage"
        );
        assert_eq!(
            f(NewPlan {
                percentage: None,
                ..withdraw
            }),
            "amount"
        );
    }
}
