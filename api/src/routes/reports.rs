//! Reports: `GET /v1/reports/aum` (assets under management as of a date, grouped) and
//! `GET /v1/reports/aum/history` (the same over a range of dates).
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
use crate::eod::sql::{Params, get, query};
use crate::extract::Query;
use crate::problem::{Problem, method_not_allowed};
use crate::server::AppState;

/// Most dates in one history.
pub const MAX_HISTORY_DAYS: i64 = 366;

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = |path: &str| web::resource(path).default_service(web::to(method_not_allowed));
    cfg.service(resource("/v1/reports/aum").get(aum))
        .service(resource("/v1/reports/aum/history").get(aum_history));
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

/// The finished end-of-day dates in `from..=to`.
async fn finished_between<C: ConnectionTrait>(
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
    for chunk in ids.chunks(crate::eod::sql::IN_CHUNK) {
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
        let sum: String = get(r, 4)?;
        let sum: i128 = sum
            .parse()
            .map_err(|_| Problem::internal(&format!("AUM sum {sum}")))?;
        groups.insert((get(r, 1)?, get(r, 2)?), (get(r, 3)?, sum));
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
            let scale = match scales.get(&currency) {
                Some(s) => *s,
                None => {
                    let s = state.ledger.asset(&currency).await?.scale;
                    scales.insert(currency.clone(), s);
                    s
                }
            };
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
            format!("at most {MAX_HISTORY_DAYS} dates per history"),
        ));
    }
    caller.principal.authorize(Action::ReadOwnData)?;
    let points = aum_on(&state, &caller, group_by, from, to).await?;
    Ok(HttpResponse::Ok().json(AumHistory {
        from,
        to,
        group_by: group_by.to_owned(),
        points,
    }))
}
