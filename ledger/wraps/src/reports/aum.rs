//! Assets under management: as of one date ([`Reports::aum`]) and over a range of dates
//! ([`Reports::aum_history`]), grouped by distributor, manager, strategy or agreement, with
//! totals per currency.
//!
//! AUM is struck by end of day: it is the sum of the wraps' NAVs in that date's snapshots
//! (`wrap_snapshots`, written by end of day's valuation step), so a date counts only once its
//! end of day has finished, and the figures never move afterwards. Closed wraps have no
//! snapshot and count for nothing. Amounts are summed in SQL as exact integers (minor units)
//! and shown as decimal strings of the currency.
//!
//! Isolation: the [`Viewer`]'s scope is a condition of the one query, never a filter after it.
//! Tried by `api/tests/http/reports.rs`.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use ledger::sql::{Params, get, query};
use rust_decimal::Decimal;
use sea_orm::ConnectionTrait;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Period, ReportError, Reports, Scales, Viewer, finished_between, sum_at};
use crate::eod::date_of;

/// One group's AUM in one currency.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AumGroup {
    /// The distributor, manager, strategy or agreement.
    pub id: Uuid,
    /// The tenant's or strategy's name; for an agreement, its strategy's name.
    pub name: String,
    pub currency: String,
    /// Wraps with a snapshot that date.
    pub wraps: i64,
    #[schema(value_type = String, example = "1234567")]
    pub aum: Decimal,
}

/// A currency's total.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AumTotal {
    pub currency: String,
    pub wraps: i64,
    #[schema(value_type = String)]
    pub aum: Decimal,
}

/// AUM as of one date.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Aum {
    pub as_of: NaiveDate,
    /// `distributor`, `manager`, `strategy` or `agreement`.
    pub group_by: String,
    pub groups: Vec<AumGroup>,
    pub totals: Vec<AumTotal>,
}

/// AUM over a range of dates.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AumHistory {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub group_by: String,
    /// One point per date whose end of day has finished, in date order.
    pub points: Vec<Aum>,
}

/// What the wraps are grouped by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GroupBy {
    /// The distributor whose book holds the wrap (the default).
    #[default]
    Distributor,
    /// The manager of the wrap's strategy.
    Manager,
    Strategy,
    Agreement,
}

impl GroupBy {
    /// The names the reports take, in [`GroupBy::parse`]'s spelling.
    pub const NAMES: [&'static str; 4] = ["distributor", "manager", "strategy", "agreement"];

    /// The grouping named `name` (one of [`GroupBy::NAMES`]).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "distributor" => Some(Self::Distributor),
            "manager" => Some(Self::Manager),
            "strategy" => Some(Self::Strategy),
            "agreement" => Some(Self::Agreement),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Distributor => "distributor",
            Self::Manager => "manager",
            Self::Strategy => "strategy",
            Self::Agreement => "agreement",
        }
    }

    /// The grouping column of `wraps w` / `wrap_snapshots s`.
    fn column(self) -> &'static str {
        match self {
            Self::Manager => "w.manager_tenant_id",
            Self::Strategy => "w.strategy_id",
            Self::Agreement => "w.agreement_id",
            Self::Distributor => "s.tenant_id",
        }
    }
}

/// (group id, currency) → (wraps, AUM in minor units), of one date.
type Groups = BTreeMap<(Uuid, String), (i64, i128)>;

impl Reports<'_> {
    /// AUM as of `as_of` (default: the last date whose end of day has finished), which must
    /// have a finished end of day.
    pub async fn aum(
        &self,
        viewer: Viewer,
        group_by: GroupBy,
        as_of: Option<NaiveDate>,
    ) -> Result<Aum, ReportError> {
        let date = match as_of {
            Some(d) => d,
            None => last_finished(self.db)
                .await?
                .ok_or(ReportError::NoEndOfDayFinished)?,
        };
        let period = Period {
            from: date,
            to: date,
        };
        let mut points = self.aum_on(viewer, group_by, period).await?;
        points.pop().ok_or(ReportError::AumNotStruck { date })
    }

    /// AUM for every finished date of `period`.
    pub async fn aum_history(
        &self,
        viewer: Viewer,
        group_by: GroupBy,
        period: Period,
    ) -> Result<AumHistory, ReportError> {
        let points = self.aum_on(viewer, group_by, period).await?;
        Ok(AumHistory {
            from: period.from,
            to: period.to,
            group_by: group_by.name().to_owned(),
            points,
        })
    }

    /// AUM per finished date of `period`, grouped.
    async fn aum_on(
        &self,
        viewer: Viewer,
        group_by: GroupBy,
        Period { from, to }: Period,
    ) -> Result<Vec<Aum>, ReportError> {
        let db = self.db;
        let dates = finished_between(db, from, to).await?;
        if dates.is_empty() {
            return Ok(Vec::new());
        }
        let mut pa = Params::new(db.get_database_backend());
        let col = group_by.column();
        let q = format!(
            "SELECT s.business_date, {col}, s.currency, COUNT(*), CAST(SUM(s.nav) AS TEXT) \
             FROM wrap_snapshots s JOIN wraps w ON w.tenant_id = s.tenant_id AND w.id = s.wrap_id \
             WHERE s.business_date >= {} AND s.business_date <= {} AND {} \
             GROUP BY s.business_date, {col}, s.currency",
            pa.push(from),
            pa.push(to),
            viewer.wraps_condition(&mut pa),
        );
        let rows = query(db, q, pa.values).await?;
        let mut per_date: BTreeMap<NaiveDate, Groups> =
            dates.iter().map(|d| (*d, BTreeMap::new())).collect();
        for r in &rows {
            let date: NaiveDate = get(r, 0)?;
            let Some(groups) = per_date.get_mut(&date) else {
                continue;
            };
            groups.insert((get(r, 1)?, get(r, 2)?), (get(r, 3)?, sum_at(r, 4)?));
        }
        let ids: Vec<Uuid> = {
            let mut v: Vec<Uuid> = per_date
                .values()
                .flat_map(|g| g.keys().map(|(id, _)| *id))
                .collect();
            v.sort();
            v.dedup();
            v
        };
        let names = names(db, group_by, &ids).await?;
        let mut scales = Scales::default();
        let mut out = Vec::with_capacity(per_date.len());
        for (date, groups) in per_date {
            let mut totals: BTreeMap<String, (i64, i128)> = BTreeMap::new();
            let mut list = Vec::with_capacity(groups.len());
            for ((id, currency), (wraps, minor)) in groups {
                let scale = scales.of(self, &currency).await?;
                let t = totals.entry(currency.clone()).or_default();
                t.0 += wraps;
                t.1 += minor;
                list.push(AumGroup {
                    id,
                    name: names.get(&id).cloned().unwrap_or_default(),
                    currency,
                    wraps,
                    aum: ledger::asset::decimal_of(minor, scale),
                });
            }
            out.push(Aum {
                as_of: date,
                group_by: group_by.name().to_owned(),
                groups: list,
                totals: totals
                    .into_iter()
                    .map(|(currency, (wraps, minor))| AumTotal {
                        aum: ledger::asset::decimal_of(minor, scales.known(&currency)),
                        currency,
                        wraps,
                    })
                    .collect(),
            });
        }
        Ok(out)
    }
}

/// The last finished end-of-day date, if any.
async fn last_finished<C: ConnectionTrait>(db: &C) -> Result<Option<NaiveDate>, ReportError> {
    Ok(date_of(
        db,
        "SELECT MAX(business_date) FROM eod_runs WHERE status = 'finished'",
    )
    .await?)
}

/// Names of tenants and strategies by id (agreements are named by their strategy).
async fn names<C: ConnectionTrait>(
    db: &C,
    group_by: GroupBy,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, String>, ReportError> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(ledger::sql::IN_CHUNK) {
        let mut pa = Params::new(db.get_database_backend());
        let list: Vec<String> = chunk.iter().map(|id| pa.push(*id)).collect();
        let list = list.join(", ");
        let q = match group_by {
            GroupBy::Strategy => format!("SELECT id, name FROM strategies WHERE id IN ({list})"),
            GroupBy::Agreement => format!(
                "SELECT a.id, s.name FROM agreements a JOIN strategies s \
                 ON s.tenant_id = a.manager_tenant_id AND s.id = a.strategy_id \
                 WHERE a.id IN ({list})"
            ),
            GroupBy::Distributor | GroupBy::Manager => {
                format!("SELECT id, name FROM tenants WHERE id IN ({list})")
            }
        };
        for r in query(db, q, pa.values).await? {
            out.insert(get::<Uuid>(&r, 0)?, get::<String>(&r, 1)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back() {
        for name in GroupBy::NAMES {
            assert_eq!(GroupBy::parse(name).map(GroupBy::name), Some(name));
        }
        assert_eq!(GroupBy::parse("wrap"), None);
        assert_eq!(GroupBy::default(), GroupBy::Distributor);
    }
}
