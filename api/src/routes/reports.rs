//! Reports: `GET /v1/reports/aum` (assets under management as of a date, grouped),
//! `GET /v1/reports/aum/history` (the same over a range of dates), `GET /v1/reports/fee-split`
//! (fees collected over a period, split, and reconciled with the ledger) and
//! `GET /v1/reports/invoices` (the platform's monthly fees to distributors).
//!
//! The fee split reads `fee_collections` (written by end of day's billing in the same
//! transaction as its ledger entries) and checks its totals against the credits of the
//! `fee_billing` entries to the `payable:` accounts over the same dates: equal to the minor
//! unit, or the report says `reconciled: false` and names the part.
//!
//! AUM is struck by end of day: it is the sum of the wraps' NAVs in that date's snapshots
//! (`wrap_snapshots`, written by end of day's valuation step), so a date counts only once its
//! end of day has finished, and the figures never move afterwards. Closed wraps have no
//! snapshot and count for nothing. Amounts are summed in SQL as exact integers (minor units)
//! and shown as decimal strings of the currency.
//!
//! Isolation (tested by `api/tests/http/reports.rs`): a distributor sees the wraps of its own
//! book, a manager the wraps on its strategies (whichever distributor sells them), the
//! platform every wrap. The scope is a condition of the one query, never a filter after it.

use std::collections::{BTreeMap, HashMap};

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use sea_orm::ConnectionTrait;
use serde::Serialize;
use tenants::{Action, TenantKind};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::Query;
use crate::problem::{Problem, method_not_allowed};
use crate::routes::format;
use crate::server::AppState;
use ledger::sql::{Params, get, query};

/// Most dates in one history.
pub const MAX_HISTORY_DAYS: i64 = 366;

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = |path: &str| web::resource(path).default_service(web::to(method_not_allowed));
    cfg.service(resource("/v1/reports/aum").get(aum))
        .service(resource("/v1/reports/aum/history").get(aum_history))
        .service(resource("/v1/reports/fee-split").get(fee_split_report))
        .service(resource("/v1/reports/invoices").get(invoices));
}

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

/// (group id, currency) → (wraps, AUM in minor units), of one date.
type Groups = BTreeMap<(Uuid, String), (i64, i128)>;

const GROUPS: [&str; 4] = ["distributor", "manager", "strategy", "agreement"];

/// The grouping column of `wraps w` / `wrap_snapshots s`.
fn group_column(group_by: &str) -> &'static str {
    match group_by {
        "manager" => "w.manager_tenant_id",
        "strategy" => "w.strategy_id",
        "agreement" => "w.agreement_id",
        _ => "s.tenant_id",
    }
}

/// The caller's scope as a condition on `wraps w` / `wrap_snapshots s`.
fn scope(caller: &Caller, pa: &mut Params) -> String {
    match caller.principal.tenant_kind {
        TenantKind::Distributor => format!("s.tenant_id = {}", pa.push(caller.principal.tenant_id)),
        TenantKind::Manager => format!(
            "w.manager_tenant_id = {}",
            pa.push(caller.principal.tenant_id)
        ),
        TenantKind::Platform => "1 = 1".to_owned(),
    }
}

/// An exact sum taken in SQL as text (PostgreSQL widens SUM(bigint) to numeric; NULL when no
/// row matched).
pub(crate) fn sum_at(row: &sea_orm::QueryResult, idx: usize) -> Result<i128, Problem> {
    let s: Option<String> = get(row, idx)?;
    let s = s.unwrap_or_else(|| "0".to_owned());
    s.parse::<i128>()
        .map_err(|_| Problem::internal(&format!("sum {s}")))
}

/// The minor-unit scale of `currency`, remembered in `seen` (one lookup per currency).
async fn scale_of(
    state: &AppState,
    seen: &mut HashMap<String, u32>,
    currency: &str,
) -> Result<u32, Problem> {
    if let Some(s) = seen.get(currency) {
        return Ok(*s);
    }
    let s = state.ledger.asset(currency).await?.scale;
    seen.insert(currency.to_owned(), s);
    Ok(s)
}

/// The finished end-of-day dates in `from..=to`.
pub(crate) async fn finished_between<C: ConnectionTrait>(
    db: &C,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<NaiveDate>, Problem> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "SELECT business_date FROM eod_runs WHERE status = 'finished' \
         AND business_date >= {} AND business_date <= {} ORDER BY business_date",
        pa.push(from),
        pa.push(to)
    );
    query(db, q, pa.values)
        .await?
        .iter()
        .map(|r| get::<NaiveDate>(r, 0).map_err(Problem::from))
        .collect()
}

/// The last finished end-of-day date, if any.
async fn last_finished<C: ConnectionTrait>(db: &C) -> Result<Option<NaiveDate>, Problem> {
    let rows = query(
        db,
        "SELECT MAX(business_date) FROM eod_runs WHERE status = 'finished'".to_owned(),
        vec![],
    )
    .await?;
    Ok(rows
        .first()
        .map(|r| get::<Option<NaiveDate>>(r, 0))
        .transpose()?
        .flatten())
}

/// Names of tenants and strategies by id (agreements are named by their strategy).
async fn names<C: ConnectionTrait>(
    db: &C,
    group_by: &str,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, String>, Problem> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(ledger::sql::IN_CHUNK) {
        let mut pa = Params::new(db.get_database_backend());
        let list: Vec<String> = chunk.iter().map(|id| pa.push(*id)).collect();
        let list = list.join(", ");
        let q = match group_by {
            "strategy" => format!("SELECT id, name FROM strategies WHERE id IN ({list})"),
            "agreement" => format!(
                "SELECT a.id, s.name FROM agreements a JOIN strategies s \
                 ON s.tenant_id = a.manager_tenant_id AND s.id = a.strategy_id \
                 WHERE a.id IN ({list})"
            ),
            _ => format!("SELECT id, name FROM tenants WHERE id IN ({list})"),
        };
        for r in query(db, q, pa.values).await? {
            out.insert(get::<Uuid>(&r, 0)?, get::<String>(&r, 1)?);
        }
    }
    Ok(out)
}

/// AUM per date in `dates` (finished ones), grouped.
async fn aum_on(
    state: &AppState,
    caller: &Caller,
    group_by: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Aum>, Problem> {
    let db = &state.db;
    let dates = finished_between(db, from, to).await?;
    if dates.is_empty() {
        return Ok(Vec::new());
    }
    let mut pa = Params::new(db.get_database_backend());
    let col = group_column(group_by);
    let q = format!(
        "SELECT s.business_date, {col}, s.currency, COUNT(*), CAST(SUM(s.nav) AS TEXT) \
         FROM wrap_snapshots s JOIN wraps w ON w.tenant_id = s.tenant_id AND w.id = s.wrap_id \
         WHERE s.business_date >= {} AND s.business_date <= {} AND {} \
         GROUP BY s.business_date, {col}, s.currency",
        pa.push(from),
        pa.push(to),
        scope(caller, &mut pa),
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
    let mut scales: HashMap<String, u32> = HashMap::new();
    let mut out = Vec::with_capacity(per_date.len());
    for (date, groups) in per_date {
        let mut totals: BTreeMap<String, (i64, i128)> = BTreeMap::new();
        let mut list = Vec::with_capacity(groups.len());
        for ((id, currency), (wraps, minor)) in groups {
            let scale = scale_of(state, &mut scales, &currency).await?;
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
            group_by: group_by.to_owned(),
            groups: list,
            totals: totals
                .into_iter()
                .map(|(currency, (wraps, minor))| AumTotal {
                    aum: ledger::asset::decimal_of(
                        minor,
                        scales.get(&currency).copied().unwrap_or(0),
                    ),
                    currency,
                    wraps,
                })
                .collect(),
        });
    }
    Ok(out)
}

/// AUM as of a date whose end of day has finished (default: the last one), grouped by
/// `distributor` (default), `manager`, `strategy` or `agreement`, with totals per currency.
#[utoipa::path(
    get, path = "/v1/reports/aum", tag = "reports",
    params(
        ("as_of" = Option<NaiveDate>, Query, description = "Default: the last date whose end of day has finished"),
        ("group_by" = Option<String>, Query, description = "distributor (default), manager, strategy or agreement"),
    ),
    responses(
        (status = 200, body = Aum),
        (status = 400, description = "A bad query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "End of day has not finished for the date (or never ran)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn aum(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let q = Query::parse(&req, &["as_of", "group_by"])?;
    let group_by = q.one_of("group_by", &GROUPS)?.unwrap_or("distributor");
    let as_of = q.date("as_of")?;
    caller.principal.authorize(Action::ReadOwnData)?;
    let date = match as_of {
        Some(d) => d,
        None => last_finished(&state.db).await?.ok_or_else(|| {
            Problem::conflict("no end of day has finished yet: AUM is struck at end of day")
        })?,
    };
    let mut points = aum_on(&state, &caller, group_by, date, date).await?;
    match points.pop() {
        Some(p) => Ok(HttpResponse::Ok().json(p)),
        None => Err(Problem::conflict(format!(
            "end of day for {date} has not finished: AUM is struck at end of day"
        ))),
    }
}

/// AUM for every finished date of a range (at most 366 days), grouped as `/v1/reports/aum`.
#[utoipa::path(
    get, path = "/v1/reports/aum/history", tag = "reports",
    params(
        ("from" = NaiveDate, Query),
        ("to" = NaiveDate, Query),
        ("group_by" = Option<String>, Query, description = "distributor (default), manager, strategy or agreement"),
    ),
    responses(
        (status = 200, body = AumHistory),
        (status = 400, description = "A bad or missing query parameter, or a range too long", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn aum_history(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let q = Query::parse(&req, &["from", "to", "group_by"])?;
    let group_by = q.one_of("group_by", &GROUPS)?.unwrap_or("distributor");
    let (from, to) = period(&q)?;
    caller.principal.authorize(Action::ReadOwnData)?;
    let points = aum_on(&state, &caller, group_by, from, to).await?;
    Ok(HttpResponse::Ok().json(AumHistory {
        from,
        to,
        group_by: group_by.to_owned(),
        points,
    }))
}

// ---------------------------------------------------------------------------------------
// Fee split

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

/// The period's fee lines the caller may see, with the ledger check.
async fn fee_split(
    state: &AppState,
    caller: &Caller,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<FeeSplit, Problem> {
    let db = &state.db;
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
        scope(caller, &mut pa),
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
        scope(caller, &mut pa),
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
    let mut parties: HashMap<Uuid, (Uuid, Uuid, Uuid, String)> = HashMap::new();
    for chunk in ids.chunks(ledger::sql::IN_CHUNK) {
        let mut pa = Params::new(b);
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
    let mut scales: HashMap<String, u32> = HashMap::new();
    let mut lines = Vec::with_capacity(keys.len());
    let mut totals: BTreeMap<String, (Collected, i64, i128)> = BTreeMap::new();
    for (agreement, currency) in keys {
        let scale = scale_of(state, &mut scales, &currency).await?;
        let c = collected
            .get(&(agreement, currency.clone()))
            .copied()
            .unwrap_or_default();
        let (wraps, nav_sum) = aum
            .get(&(agreement, currency.clone()))
            .copied()
            .unwrap_or_default();
        let t = totals.entry(currency.clone()).or_default();
        add(&mut t.0, &c);
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
            let scale = scales.get(&currency).copied().unwrap_or(0);
            line(
                (
                    Uuid::nil(),
                    Uuid::nil(),
                    "total".to_owned(),
                    Uuid::nil(),
                    Uuid::nil(),
                ),
                currency,
                scale,
                &c,
                wraps,
                nav_sum,
                dates,
            )
        })
        .collect();
    let ledger_check = ledger_check(state, caller, from, to, &totals).await?;
    Ok(FeeSplit {
        from,
        to,
        reconciled: ledger_check.iter().all(|c| c.reconciled),
        lines,
        totals,
        ledger_check,
    })
}

fn add(t: &mut Collected, c: &Collected) {
    t.management += c.management;
    t.performance += c.performance;
    t.tax += c.tax;
    t.channel += c.channel;
    t.manager += c.manager;
    t.platform += c.platform;
}

fn line(
    who: (Uuid, Uuid, String, Uuid, Uuid),
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

/// Sums the credits of billing entries to the caller's visible `payable:` accounts and
/// compares them with the report's totals. A distributor's check covers its own book (every
/// part), a manager's its own share in every book, the platform's every book and part.
async fn ledger_check(
    state: &AppState,
    caller: &Caller,
    from: NaiveDate,
    to: NaiveDate,
    totals: &[FeeSplitLine],
) -> Result<Vec<FeeLedgerCheck>, Problem> {
    let db = &state.db;
    let me = caller.principal.tenant_id;
    let mut pa = Params::new(db.get_database_backend());
    let part = "CASE WHEN substr(a.code, 1, 16) = 'payable:channel:' THEN 'channel' \
         WHEN substr(a.code, 1, 16) = 'payable:manager:' THEN 'manager' \
         WHEN substr(a.code, 1, 17) = 'payable:platform:' THEN 'platform' \
         WHEN substr(a.code, 1, 12) = 'payable:tax:' THEN 'tax' ELSE 'other' END";
    // Placeholders are positional on SQLite: push in the order they appear in the text.
    let pending = pa.push(false);
    let (from_p, to_p) = (pa.push(from), pa.push(to));
    let scope = match caller.principal.tenant_kind {
        TenantKind::Distributor => format!("p.tenant_id = {}", pa.push(me)),
        TenantKind::Manager => {
            let prefix = format!("payable:manager:{me}:");
            format!("substr(a.code, 1, {}) = {}", prefix.len(), pa.push(prefix))
        }
        TenantKind::Platform => "1 = 1".to_owned(),
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
    let parts: &[&str] = match caller.principal.tenant_kind {
        TenantKind::Manager => &["manager"],
        _ => &["channel", "manager", "platform", "tax"],
    };
    let mut currencies: Vec<String> = totals.iter().map(|t| t.currency.clone()).collect();
    currencies.extend(ledger_sums.keys().map(|(c, _)| c.clone()));
    currencies.sort();
    currencies.dedup();
    let mut out = Vec::new();
    for currency in currencies {
        let scale = state.ledger.asset(&currency).await?.scale;
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

/// The CSV of the lines: a header row, then one row per line; amounts as exact decimal
/// strings (UTF-8, RFC 4180 quoting where a name needs it; see [`format`]).
fn fee_split_csv(report: &FeeSplit) -> String {
    let mut out = String::new();
    format::row(
        &mut out,
        &[
            "agreement_id",
            "strategy_id",
            "strategy",
            "distributor_tenant_id",
            "manager_tenant_id",
            "currency",
            "wraps",
            "average_aum",
            "management_fee",
            "performance_fee",
            "tax",
            "channel",
            "manager",
            "platform",
        ],
    );
    for l in &report.lines {
        format::row(
            &mut out,
            &[
                l.agreement_id.to_string(),
                l.strategy_id.to_string(),
                format::field(&l.strategy).into_owned(),
                l.distributor_tenant_id.to_string(),
                l.manager_tenant_id.to_string(),
                format::field(&l.currency).into_owned(),
                l.wraps.to_string(),
                l.average_aum.to_string(),
                l.management_fee.to_string(),
                l.performance_fee.to_string(),
                l.tax.to_string(),
                l.channel.to_string(),
                l.manager.to_string(),
                l.platform.to_string(),
            ],
        );
    }
    out
}

/// The period from `from` and `to` (required, at most 366 days; 400 naming the parameter).
pub(crate) fn period(q: &Query) -> Result<(NaiveDate, NaiveDate), Problem> {
    let from = q
        .date("from")?
        .ok_or_else(|| Problem::bad_parameter("from", "is required"))?;
    let to = q
        .date("to")?
        .ok_or_else(|| Problem::bad_parameter("to", "is required"))?;
    if to < from {
        return Err(Problem::bad_parameter(
            "to",
            format!("{to} is before from {from}"),
        ));
    }
    if (to - from).num_days() >= MAX_HISTORY_DAYS {
        return Err(Problem::bad_parameter(
            "to",
            format!("at most {MAX_HISTORY_DAYS} dates per report"),
        ));
    }
    Ok((from, to))
}

/// Fees collected over a period per agreement and strategy, split into channel, manager and
/// platform shares, with tax, wraps and average AUM, and reconciled with the ledger's billing
/// postings. JSON, or CSV with `?format=csv` or `Accept: text/csv`.
#[utoipa::path(
    get, path = "/v1/reports/fee-split", tag = "reports",
    params(
        ("from" = NaiveDate, Query),
        ("to" = NaiveDate, Query),
        ("format" = Option<String>, Query, description = "json (default) or csv"),
    ),
    responses(
        (status = 200, body = FeeSplit, content_type = "application/json"),
        (status = 200, description = "CSV, one row per line", body = String, content_type = "text/csv"),
        (status = 400, description = "A bad or missing query parameter, or a period too long", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn fee_split_report(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let q = Query::parse(&req, &["from", "to", "format"])?;
    let (from, to) = period(&q)?;
    let csv = format::wants_csv(&req, &q)?;
    caller.principal.authorize(Action::ReadOwnData)?;
    let report = fee_split(&state, &caller, from, to).await?;
    if csv {
        return Ok(format::csv_response(fee_split_csv(&report)));
    }
    Ok(HttpResponse::Ok().json(report))
}

/// The platform's monthly fee invoiced to a distributor.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Invoice {
    pub distributor_tenant_id: Uuid,
    pub distributor: String,
    /// The month's last day.
    pub period_end: NaiveDate,
    pub currency: String,
    #[schema(value_type = String)]
    pub amount: Decimal,
}

/// The platform's monthly invoices whose month ends in the period: every distributor's for
/// the platform, its own for a distributor (a manager has none).
#[utoipa::path(
    get, path = "/v1/reports/invoices", tag = "reports",
    params(("from" = NaiveDate, Query), ("to" = NaiveDate, Query)),
    responses(
        (status = 200, body = Vec<Invoice>),
        (status = 400, description = "A bad or missing query parameter", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn invoices(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let q = Query::parse(&req, &["from", "to"])?;
    let (from, to) = period(&q)?;
    caller.principal.authorize(Action::ReadOwnData)?;
    let db = &state.db;
    let mut pa = Params::new(db.get_database_backend());
    let scope = match caller.principal.tenant_kind {
        TenantKind::Platform => "1 = 1".to_owned(),
        _ => format!("i.tenant_id = {}", pa.push(caller.principal.tenant_id)),
    };
    let q = format!(
        "SELECT i.tenant_id, t.name, i.period_end, i.currency, i.amount \
         FROM platform_invoices i JOIN tenants t ON t.id = i.tenant_id \
         WHERE i.period_end >= {} AND i.period_end <= {} AND {scope} \
         ORDER BY i.period_end, t.name",
        pa.push(from),
        pa.push(to),
    );
    let mut out = Vec::new();
    for r in query(db, q, pa.values).await? {
        let currency: String = get(&r, 3)?;
        let scale = state.ledger.asset(&currency).await?.scale;
        out.push(Invoice {
            distributor_tenant_id: get(&r, 0)?,
            distributor: get(&r, 1)?,
            period_end: get(&r, 2)?,
            amount: ledger::asset::decimal_of(i128::from(get::<i64>(&r, 4)?), scale),
            currency,
        });
    }
    Ok(HttpResponse::Ok().json(out))
}
