//! The fee split ([`Reports::fee_split`]): fees collected over a period per agreement and
//! currency, split into the channel's, the manager's and the platform's shares, with tax, the
//! wraps and the average AUM.
//!
//! **It reconciles with the books to the minor unit** (to the yen): the report reads
//! `fee_collections` (written by end of day's billing in the same transaction as its ledger
//! entries, `eod/billing.rs`) and checks its totals against the credits of the `fee_billing`
//! entries to the `payable:` accounts over the same dates ([`FeeLedgerCheck`]): equal to the
//! minor unit, or the report says `reconciled: false` and names the part. A distributor's
//! check covers every part of its own book, a manager's its own `payable:manager:{id}:` share
//! in every book, the platform's every book and part. Tried over a simulated year on both
//! databases by `api/tests/http/eod_year.rs::a_simulated_year_reconciles_every_day` (with the
//! CSV parsed back).
//!
//! Isolation: the [`Viewer`]'s scope is a condition of each query. Tried by
//! `api/tests/http/eod_year.rs` (a manager's lines and check) and `api/tests/http/isolation.rs`.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use ledger::sql::{Params, get, query};
use rust_decimal::Decimal;
use sea_orm::ConnectionTrait;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Period, ReportError, Reports, Scales, Viewer, finished_between, sum_at};

/// One agreement's fees over the period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeeSplitLine {
    pub agreement_id: Uuid,
    pub strategy_id: Uuid,
    pub strategy: String,
    pub distributor_tenant_id: Uuid,
    pub manager_tenant_id: Uuid,
    pub currency: String,
    /// Wraps with a snapshot on a date of the period.
    pub wraps: i64,
    /// Σ NAV over the period's finished dates ÷ their number, rounded half to even.
    #[schema(value_type = String)]
    pub average_aum: Decimal,
    /// Management fees collected (before tax).
    #[schema(value_type = String)]
    pub management_fee: Decimal,
    /// Performance fees collected (before tax).
    #[schema(value_type = String)]
    pub performance_fee: Decimal,
    /// Consumption tax collected on both.
    #[schema(value_type = String)]
    pub tax: Decimal,
    /// The distributor's share.
    #[schema(value_type = String)]
    pub channel: Decimal,
    #[schema(value_type = String)]
    pub manager: Decimal,
    #[schema(value_type = String)]
    pub platform: Decimal,
}

/// The report's figures against the ledger's postings to the `payable:` accounts by billing
/// entries effective in the period, for the books and parts the caller may see.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeeLedgerCheck {
    pub currency: String,
    /// `channel`, `manager`, `platform` or `tax`.
    pub part: String,
    #[schema(value_type = String)]
    pub report: Decimal,
    #[schema(value_type = String)]
    pub ledger: Decimal,
    pub reconciled: bool,
}

/// The fee-split report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeeSplit {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub lines: Vec<FeeSplitLine>,
    /// Per currency: the lines summed (ids nil, strategy "total").
    pub totals: Vec<FeeSplitLine>,
    pub ledger_check: Vec<FeeLedgerCheck>,
    /// Every check agrees.
    pub reconciled: bool,
}

/// Per (agreement, currency): collected amounts in minor units.
#[derive(Debug, Default, Clone, Copy)]
struct Collected {
    management: i128,
    performance: i128,
    tax: i128,
    channel: i128,
    manager: i128,
    platform: i128,
}

impl Collected {
    fn add(&mut self, c: &Collected) {
        self.management += c.management;
        self.performance += c.performance;
        self.tax += c.tax;
        self.channel += c.channel;
        self.manager += c.manager;
        self.platform += c.platform;
    }
}

/// Who a line is about: agreement, strategy id, strategy name, distributor, manager.
type Parties = (Uuid, Uuid, String, Uuid, Uuid);

impl Reports<'_> {
    /// The period's fee lines the viewer may see, with the ledger check.
    pub async fn fee_split(&self, viewer: Viewer, period: Period) -> Result<FeeSplit, ReportError> {
        let Period { from, to } = period;
        let db = self.db;
        let b = db.get_database_backend();
        // Collections, per agreement and currency.
        let mut pa = Params::new(b);
        let q = format!(
            "SELECT w.agreement_id, s.currency, s.kind, \
             CAST(SUM(s.fee_collected) AS TEXT), CAST(SUM(s.tax_collected) AS TEXT), \
             CAST(SUM(s.channel) AS TEXT), CAST(SUM(s.manager) AS TEXT), CAST(SUM(s.platform) AS TEXT) \
             FROM fee_collections s JOIN wraps w ON w.tenant_id = s.tenant_id AND w.id = s.wrap_id \
             WHERE s.business_date >= {} AND s.business_date <= {} AND {} \
             GROUP BY w.agreement_id, s.currency, s.kind",
            pa.push(from),
            pa.push(to),
            viewer.wraps_condition(&mut pa),
        );
        let mut collected: BTreeMap<(Uuid, String), Collected> = BTreeMap::new();
        for r in query(db, q, pa.values).await? {
            let c = collected.entry((get(&r, 0)?, get(&r, 1)?)).or_default();
            let kind: String = get(&r, 2)?;
            let fee = sum_at(&r, 3)?;
            if kind == "performance" {
                c.performance += fee;
            } else {
                c.management += fee;
            }
            c.tax += sum_at(&r, 4)?;
            c.channel += sum_at(&r, 5)?;
            c.manager += sum_at(&r, 6)?;
            c.platform += sum_at(&r, 7)?;
        }
        // AUM over the period's finished dates, per agreement and currency.
        let dates = finished_between(db, from, to).await?.len();
        let mut pa = Params::new(b);
        let q = format!(
            "SELECT w.agreement_id, s.currency, COUNT(DISTINCT s.wrap_id), CAST(SUM(s.nav) AS TEXT) \
             FROM wrap_snapshots s JOIN wraps w ON w.tenant_id = s.tenant_id AND w.id = s.wrap_id \
             JOIN eod_runs e ON e.business_date = s.business_date AND e.status = 'finished' \
             WHERE s.business_date >= {} AND s.business_date <= {} AND {} \
             GROUP BY w.agreement_id, s.currency",
            pa.push(from),
            pa.push(to),
            viewer.wraps_condition(&mut pa),
        );
        let mut aum: BTreeMap<(Uuid, String), (i64, i128)> = BTreeMap::new();
        for r in query(db, q, pa.values).await? {
            aum.insert((get(&r, 0)?, get(&r, 1)?), (get(&r, 2)?, sum_at(&r, 3)?));
        }
        // The agreements named, with their parties and strategy.
        let mut keys: Vec<(Uuid, String)> = collected.keys().chain(aum.keys()).cloned().collect();
        keys.sort();
        keys.dedup();
        let ids: Vec<Uuid> = {
            let mut v: Vec<Uuid> = keys.iter().map(|(id, _)| *id).collect();
            v.dedup();
            v
        };
        let parties = parties(db, &ids).await?;
        let mut scales = Scales::default();
        let mut lines = Vec::with_capacity(keys.len());
        let mut totals: BTreeMap<String, (Collected, i64, i128)> = BTreeMap::new();
        for (agreement, currency) in keys {
            let scale = scales.of(self, &currency).await?;
            let c = collected
                .get(&(agreement, currency.clone()))
                .copied()
                .unwrap_or_default();
            let (wraps, nav_sum) = aum
                .get(&(agreement, currency.clone()))
                .copied()
                .unwrap_or_default();
            let t = totals.entry(currency.clone()).or_default();
            t.0.add(&c);
            t.1 += wraps;
            t.2 += nav_sum;
            let (distributor, manager, strategy_id, strategy) =
                parties.get(&agreement).cloned().unwrap_or_default();
            lines.push(line(
                (agreement, strategy_id, strategy, distributor, manager),
                currency,
                scale,
                &c,
                wraps,
                nav_sum,
                dates,
            ));
        }
        let totals: Vec<FeeSplitLine> = totals
            .into_iter()
            .map(|(currency, (c, wraps, nav_sum))| {
                let scale = scales.known(&currency);
                let total = (
                    Uuid::nil(),
                    Uuid::nil(),
                    "total".to_owned(),
                    Uuid::nil(),
                    Uuid::nil(),
                );
                line(total, currency, scale, &c, wraps, nav_sum, dates)
            })
            .collect();
        let ledger_check = self.ledger_check(viewer, period, &totals).await?;
        Ok(FeeSplit {
            from,
            to,
            reconciled: ledger_check.iter().all(|c| c.reconciled),
            lines,
            totals,
            ledger_check,
        })
    }

    /// Sums the credits of billing entries to the viewer's visible `payable:` accounts and
    /// compares them with the report's totals. A distributor's check covers its own book
    /// (every part), a manager's its own share in every book, the platform's every book and
    /// part.
    async fn ledger_check(
        &self,
        viewer: Viewer,
        Period { from, to }: Period,
        totals: &[FeeSplitLine],
    ) -> Result<Vec<FeeLedgerCheck>, ReportError> {
        let db = self.db;
        let mut pa = Params::new(db.get_database_backend());
        let part = "CASE WHEN substr(a.code, 1, 16) = 'payable:channel:' THEN 'channel' \
             WHEN substr(a.code, 1, 16) = 'payable:manager:' THEN 'manager' \
             WHEN substr(a.code, 1, 17) = 'payable:platform:' THEN 'platform' \
             WHEN substr(a.code, 1, 12) = 'payable:tax:' THEN 'tax' ELSE 'other' END";
        // Placeholders are positional on SQLite: push in the order they appear in the text.
        let pending = pa.push(false);
        let (from_p, to_p) = (pa.push(from), pa.push(to));
        let scope = match viewer {
            Viewer::Distributor(me) => format!("p.tenant_id = {}", pa.push(me)),
            Viewer::Manager(me) => {
                let prefix = format!("payable:manager:{me}:");
                format!("substr(a.code, 1, {}) = {}", prefix.len(), pa.push(prefix))
            }
            Viewer::Platform => "1 = 1".to_owned(),
        };
        let q = format!(
            "SELECT a.asset_code, {part}, CAST(SUM(p.amount) AS TEXT) \
             FROM ledger_postings p \
             JOIN ledger_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id \
             JOIN ledger_accounts a ON a.tenant_id = p.tenant_id AND a.id = p.account_id \
             WHERE e.kind = 'fee_billing' AND p.side = 'credit' AND p.pending = {pending} \
             AND p.effective_date >= {from_p} AND p.effective_date <= {to_p} \
             AND substr(a.code, 1, 8) = 'payable:' AND {scope} \
             GROUP BY a.asset_code, {part}"
        );
        let mut ledger_sums: HashMap<(String, String), i128> = HashMap::new();
        for r in query(db, q, pa.values).await? {
            ledger_sums.insert((get(&r, 0)?, get(&r, 1)?), sum_at(&r, 2)?);
        }
        let parts: &[&str] = match viewer {
            Viewer::Manager(_) => &["manager"],
            _ => &["channel", "manager", "platform", "tax"],
        };
        let mut currencies: Vec<String> = totals.iter().map(|t| t.currency.clone()).collect();
        currencies.extend(ledger_sums.keys().map(|(c, _)| c.clone()));
        currencies.sort();
        currencies.dedup();
        let mut out = Vec::new();
        for currency in currencies {
            let scale = self.scale(&currency).await?;
            let total = totals.iter().find(|t| t.currency == currency);
            for part in parts {
                let report = total
                    .map(|t| match *part {
                        "channel" => t.channel,
                        "manager" => t.manager,
                        "platform" => t.platform,
                        _ => t.tax,
                    })
                    .unwrap_or(Decimal::ZERO);
                let ledger = ledger::asset::decimal_of(
                    ledger_sums
                        .get(&(currency.clone(), (*part).to_owned()))
                        .copied()
                        .unwrap_or(0),
                    scale,
                );
                out.push(FeeLedgerCheck {
                    currency: currency.clone(),
                    part: (*part).to_owned(),
                    reconciled: report == ledger,
                    report,
                    ledger,
                });
            }
        }
        Ok(out)
    }
}

/// The agreements `ids` with their distributor, manager, strategy id and strategy name.
async fn parties<C: ConnectionTrait>(
    db: &C,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, (Uuid, Uuid, Uuid, String)>, ReportError> {
    let mut parties = HashMap::new();
    for chunk in ids.chunks(ledger::sql::IN_CHUNK) {
        let mut pa = Params::new(db.get_database_backend());
        let list: Vec<String> = chunk.iter().map(|id| pa.push(*id)).collect();
        let q = format!(
            "SELECT a.id, a.tenant_id, a.manager_tenant_id, a.strategy_id, s.name \
             FROM agreements a JOIN strategies s \
             ON s.tenant_id = a.manager_tenant_id AND s.id = a.strategy_id \
             WHERE a.id IN ({})",
            list.join(", ")
        );
        for r in query(db, q, pa.values).await? {
            parties.insert(
                get(&r, 0)?,
                (get(&r, 1)?, get(&r, 2)?, get(&r, 3)?, get(&r, 4)?),
            );
        }
    }
    Ok(parties)
}

/// One line of the report from its sums in minor units: the average AUM is Σ NAV ÷ the
/// period's finished dates, rounded half to even to the currency's minor unit.
fn line(
    who: Parties,
    currency: String,
    scale: u32,
    c: &Collected,
    wraps: i64,
    nav_sum: i128,
    dates: usize,
) -> FeeSplitLine {
    let d = |v: i128| ledger::asset::decimal_of(v, scale);
    let average = if dates == 0 {
        Decimal::ZERO
    } else {
        let mut a = (d(nav_sum) / Decimal::from(dates as u64))
            .round_dp_with_strategy(scale, rust_decimal::RoundingStrategy::MidpointNearestEven);
        a.rescale(scale);
        a
    };
    FeeSplitLine {
        agreement_id: who.0,
        strategy_id: who.1,
        strategy: who.2,
        distributor_tenant_id: who.3,
        manager_tenant_id: who.4,
        currency,
        wraps,
        average_aum: average,
        management_fee: d(c.management),
        performance_fee: d(c.performance),
        tax: d(c.tax),
        channel: d(c.channel),
        manager: d(c.manager),
        platform: d(c.platform),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_average_aum_rounds_half_to_even_at_the_currency_scale() {
        let who = (
            Uuid::nil(),
            Uuid::nil(),
            String::new(),
            Uuid::nil(),
            Uuid::nil(),
        );
        let c = Collected::default();
        // 5 ÷ 2 = 2.5 → 2 (even); 7 ÷ 2 = 3.5 → 4; in USD, 1001 cents ÷ 2 = 5.005 → 5.00.
        assert_eq!(
            line(who.clone(), "JPY".into(), 0, &c, 1, 5, 2)
                .average_aum
                .to_string(),
            "2"
        );
        assert_eq!(
            line(who.clone(), "JPY".into(), 0, &c, 1, 7, 2)
                .average_aum
                .to_string(),
            "4"
        );
        assert_eq!(
            line(who.clone(), "USD".into(), 2, &c, 1, 1001, 2)
                .average_aum
                .to_string(),
            "5.00"
        );
        // No finished date: no average.
        assert_eq!(
            line(who, "JPY".into(), 0, &c, 0, 0, 0).average_aum,
            Decimal::ZERO
        );
    }
}
