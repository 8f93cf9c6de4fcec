//! Persistence of strategies, model versions, agreements, their terms and platform fees
//! (sea-orm, raw SQL; SQLite and PostgreSQL).
//!
//! Invariants this module enforces (each tried over HTTP by the test named, in
//! `api/tests/http/strategies.rs` and `agreements.rs`):
//! * visibility (invariant 6): a manager sees only its own strategies; a distributor sees a
//!   strategy only while it has an ACTIVE agreement for it; the platform sees all. An agreement
//!   is visible to its distributor, its manager and the platform. Anything else is
//!   [`TenantsError::NotFound`], exactly like a missing id, because the visibility rule is part
//!   of the query's `WHERE` clause ([`strategy_for`], [`agreement_for`];
//!   `strategies::distributor_sees_only_agreed_strategies`, `agreements::foreign_ids_look_missing`);
//! * model versions are append-only and in date order: a new version's effective date is later
//!   than every existing one's, and its number is the next; there is no update or delete path
//!   (and triggers refuse one) ([`add_version`]; `strategies::versions_are_checked`);
//! * each instrument of a version is a registered, active instrument (a ledger asset of kind
//!   instrument with an `instruments` row whose status is active) priced in the
//!   strategy's base currency (`strategies::versions_are_checked`);
//! * one live (proposed or active) agreement per (distributor, strategy); only a proposed
//!   agreement or a proposed terms version can be decided, once (conditional updates, so a
//!   concurrent decision loses with a conflict) ([`decide`]; `agreements::propose_accept_decline`);
//! * terms never change in place: a new version is proposed from a date later than every
//!   accepted version's, at most one awaits a decision ([`propose_terms`];
//!   `agreements::terms_versions`);
//! * money is stored as integer minor units of its currency; weights, rates and terms as exact
//!   decimal text (never a bound `Decimal`, which SQLite would store as a float).

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, SqlErr, Statement, Value};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::events::{NewEvent, types};
use crate::market::agreement::{
    Agreement, AgreementStatus, Decision, Terms, TermsInput, TermsStatus, TermsVersion,
};
use crate::market::strategy::{
    DriftBandKind, ModelWeight, NewStrategy, NewVersion, RebalanceCalendar, Strategy,
    StrategyPatch, StrategyStatus, StrategyVersion, check_money,
};
use tenants::Principal;
use tenants::TenantKind;
use tenants::TenantsError;
use tenants::store::{MAX_PAGE, Page};

// ---------------------------------------------------------------------------------------
// SQL helpers

/// A statement being built: each bound value gets the backend's placeholder.
struct Sql {
    backend: DbBackend,
    values: Vec<Value>,
}

impl Sql {
    fn new<C: ConnectionTrait>(db: &C) -> Self {
        Self {
            backend: db.get_database_backend(),
            values: Vec::new(),
        }
    }

    /// Binds `v` and returns its placeholder. Numbered on both backends (`$n`, `?n`), so a
    /// value may be bound before the text that uses it is placed (conditions built first).
    fn bind(&mut self, v: impl Into<Value>) -> String {
        self.values.push(v.into());
        match self.backend {
            DbBackend::Postgres => format!("${}", self.values.len()),
            _ => format!("?{}", self.values.len()),
        }
    }

    async fn query<C: ConnectionTrait>(
        self,
        db: &C,
        sql: String,
    ) -> Result<Vec<QueryResult>, TenantsError> {
        Ok(db
            .query_all_raw(Statement::from_sql_and_values(
                self.backend,
                sql,
                self.values,
            ))
            .await?)
    }

    async fn exec<C: ConnectionTrait>(self, db: &C, sql: String) -> Result<u64, TenantsError> {
        Ok(db
            .execute_raw(Statement::from_sql_and_values(
                self.backend,
                sql,
                self.values,
            ))
            .await?
            .rows_affected())
    }
}

fn get<T: sea_orm::TryGetable>(row: &QueryResult, idx: usize) -> Result<T, TenantsError> {
    Ok(row.try_get_by_index::<T>(idx)?)
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn time(row: &QueryResult, idx: usize) -> Result<DateTime<Utc>, TenantsError> {
    let us: i64 = get(row, idx)?;
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| TenantsError::Corrupt(format!("time {us} out of range")))
}

fn opt_time(row: &QueryResult, idx: usize) -> Result<Option<DateTime<Utc>>, TenantsError> {
    let us: Option<i64> = get(row, idx)?;
    us.map(|us| {
        DateTime::from_timestamp_micros(us)
            .ok_or_else(|| TenantsError::Corrupt(format!("time {us} out of range")))
    })
    .transpose()
}

/// An exact decimal stored as TEXT.
fn dec(row: &QueryResult, idx: usize) -> Result<Decimal, TenantsError> {
    let s: String = get(row, idx)?;
    Decimal::from_str(&s).map_err(|_| TenantsError::Corrupt(format!("decimal {s:?}")))
}

/// How a decimal is stored: without trailing zeros, so equal values are equal text.
fn dec_text(d: Decimal) -> String {
    d.normalize().to_string()
}

/// `value` (already checked by [`check_money`]) in minor units of a currency of `scale`.
fn to_minor(field: &'static str, value: Decimal, scale: u32) -> Result<i64, TenantsError> {
    let mut v = value;
    v.rescale(scale);
    if v != value {
        return Err(TenantsError::invalid(field, "too many decimals"));
    }
    i64::try_from(v.mantissa()).map_err(|_| TenantsError::invalid(field, "too large"))
}

fn from_minor(minor: i64, scale: u32) -> Decimal {
    Decimal::from_i128_with_scale(i128::from(minor), scale)
}

fn is_unique_violation(e: &TenantsError) -> bool {
    matches!(e, TenantsError::Db(db) if matches!(db.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))))
}

fn conflict_on_unique(message: &'static str) -> impl Fn(TenantsError) -> TenantsError {
    move |e| {
        if is_unique_violation(&e) {
            TenantsError::Conflict(message.into())
        } else {
            e
        }
    }
}

fn check_limit(limit: u64) -> Result<i64, TenantsError> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(TenantsError::invalid(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        ));
    }
    // One more row than asked tells whether there is a next page.
    Ok(limit as i64 + 1)
}

fn page<T>(mut items: Vec<T>, limit: u64, id: impl Fn(&T) -> Uuid) -> Page<T> {
    let next_cursor = if items.len() as u64 > limit {
        items.truncate(limit as usize);
        items.last().map(id)
    } else {
        None
    };
    Page { items, next_cursor }
}

/// A ledger asset as this module needs it.
struct AssetInfo {
    code: String,
    is_currency: bool,
    scale: u32,
    price_currency: Option<String>,
    /// `instruments.status` (`active`, `suspended`, `delisted`) for a registered instrument.
    instrument_status: Option<String>,
}

async fn assets<C: ConnectionTrait>(
    db: &C,
    codes: &[&str],
) -> Result<BTreeMap<String, AssetInfo>, TenantsError> {
    if codes.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut q = Sql::new(db);
    let list: Vec<String> = codes.iter().map(|c| q.bind(c.to_string())).collect();
    let rows = q
        .query(
            db,
            format!(
                "SELECT a.code, a.kind, a.scale, a.price_currency, i.status FROM ledger_assets a \
                 LEFT JOIN instruments i ON i.code = a.code WHERE a.code IN ({})",
                list.join(", ")
            ),
        )
        .await?;
    let mut out = BTreeMap::new();
    for row in &rows {
        let kind: String = get(row, 1)?;
        let scale: i32 = get(row, 2)?;
        let info = AssetInfo {
            code: get(row, 0)?,
            is_currency: kind == "currency",
            scale: u32::try_from(scale)
                .map_err(|_| TenantsError::Corrupt(format!("scale {scale}")))?,
            price_currency: get(row, 3)?,
            instrument_status: get(row, 4)?,
        };
        out.insert(info.code.clone(), info);
    }
    Ok(out)
}

/// The scale of currency `code`, or a validation error naming `field`.
async fn currency_scale<C: ConnectionTrait>(
    db: &C,
    field: &'static str,
    code: &str,
) -> Result<u32, TenantsError> {
    match assets(db, &[code]).await?.remove(code) {
        Some(a) if a.is_currency => Ok(a.scale),
        Some(_) => Err(TenantsError::invalid(
            field,
            format!("{code} is an instrument, not a currency"),
        )),
        None => Err(TenantsError::invalid(
            field,
            format!("{code} is not a currency known to the platform"),
        )),
    }
}

// ---------------------------------------------------------------------------------------
// Strategies

const STRATEGY_COLS: &str = "s.tenant_id, s.id, s.code, s.name, s.description, s.base_currency, \
     s.risk_level, s.expected_return_annual, s.volatility_annual, s.drift_band_kind, s.drift_band, \
     s.rebalance_calendar, s.cooldown_days, s.min_initial_investment, s.status, s.created_at, \
     s.updated_at, a.scale";
const STRATEGY_FROM: &str = "strategies s JOIN ledger_assets a ON a.code = s.base_currency";

fn strategy_from_row(row: &QueryResult) -> Result<Strategy, TenantsError> {
    let corrupt = |what: &str, v: &str| TenantsError::Corrupt(format!("strategy {what} {v:?}"));
    let risk: i32 = get(row, 6)?;
    let drift_kind: String = get(row, 9)?;
    let calendar: String = get(row, 11)?;
    let cooldown: i32 = get(row, 12)?;
    let status: String = get(row, 14)?;
    let scale: i32 = get(row, 17)?;
    Ok(Strategy {
        manager_tenant_id: get(row, 0)?,
        id: get(row, 1)?,
        code: get(row, 2)?,
        name: get(row, 3)?,
        description: get(row, 4)?,
        base_currency: get(row, 5)?,
        risk_level: u8::try_from(risk).map_err(|_| corrupt("risk", &risk.to_string()))?,
        expected_return_annual: dec(row, 7)?,
        volatility_annual: dec(row, 8)?,
        drift_band_kind: DriftBandKind::parse(&drift_kind)
            .ok_or_else(|| corrupt("drift band kind", &drift_kind))?,
        drift_band: dec(row, 10)?,
        rebalance_calendar: RebalanceCalendar::parse(&calendar)
            .ok_or_else(|| corrupt("calendar", &calendar))?,
        cooldown_days: u16::try_from(cooldown)
            .map_err(|_| corrupt("cooldown", &cooldown.to_string()))?,
        min_initial_investment: from_minor(
            get(row, 13)?,
            u32::try_from(scale).map_err(|_| corrupt("scale", &scale.to_string()))?,
        ),
        status: StrategyStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        created_at: time(row, 15)?,
        updated_at: time(row, 16)?,
    })
}

/// Publishes a strategy of manager `manager_id` (active). A duplicate code is a conflict; the
/// base currency must be a currency asset and the minimum investment exact to its scale.
pub async fn create_strategy<C: ConnectionTrait>(
    db: &C,
    manager_id: Uuid,
    new: &NewStrategy,
    now: DateTime<Utc>,
) -> Result<Strategy, TenantsError> {
    new.validate()?;
    let scale = currency_scale(db, "base_currency", &new.base_currency).await?;
    check_money("min_initial_investment", new.min_initial_investment, scale)?;
    let minor = to_minor("min_initial_investment", new.min_initial_investment, scale)?;
    let now = tenants::to_micros_precision(now);
    let strategy = Strategy {
        id: Uuid::now_v7(),
        manager_tenant_id: manager_id,
        code: new.code.clone(),
        name: new.name.clone(),
        description: new.description.clone(),
        base_currency: new.base_currency.clone(),
        risk_level: new.risk_level,
        expected_return_annual: new.expected_return_annual.normalize(),
        volatility_annual: new.volatility_annual.normalize(),
        drift_band_kind: new.drift_band_kind,
        drift_band: new.drift_band.normalize(),
        rebalance_calendar: new.rebalance_calendar,
        cooldown_days: new.cooldown_days,
        min_initial_investment: from_minor(minor, scale),
        status: StrategyStatus::Active,
        created_at: now,
        updated_at: now,
    };
    let mut q = Sql::new(db);
    let cols = [
        q.bind(strategy.manager_tenant_id),
        q.bind(strategy.id),
        q.bind(strategy.code.clone()),
        q.bind(strategy.name.clone()),
        q.bind(strategy.description.clone()),
        q.bind(strategy.base_currency.clone()),
        q.bind(i32::from(strategy.risk_level)),
        q.bind(dec_text(strategy.expected_return_annual)),
        q.bind(dec_text(strategy.volatility_annual)),
        q.bind(strategy.drift_band_kind.as_str()),
        q.bind(dec_text(strategy.drift_band)),
        q.bind(strategy.rebalance_calendar.as_str()),
        q.bind(i32::from(strategy.cooldown_days)),
        q.bind(minor),
        q.bind(strategy.status.as_str()),
        q.bind(micros(now)),
        q.bind(micros(now)),
    ];
    q.exec(
        db,
        format!(
            "INSERT INTO strategies (tenant_id, id, code, name, description, base_currency, \
             risk_level, expected_return_annual, volatility_annual, drift_band_kind, drift_band, \
             rebalance_calendar, cooldown_days, min_initial_investment, status, created_at, \
             updated_at) VALUES ({})",
            cols.join(", ")
        ),
    )
    .await
    .map_err(conflict_on_unique(
        "this manager already has a strategy with this code",
    ))?;
    Ok(strategy)
}

/// The visibility rule of strategies as a condition on `s` (see the module docs).
fn strategy_visible(q: &mut Sql, principal: &Principal) -> String {
    match principal.tenant_kind {
        TenantKind::Platform => "1 = 1".to_owned(),
        TenantKind::Manager => format!("s.tenant_id = {}", q.bind(principal.tenant_id)),
        TenantKind::Distributor => format!(
            "EXISTS (SELECT 1 FROM agreements g WHERE g.tenant_id = {} \
             AND g.manager_tenant_id = s.tenant_id AND g.strategy_id = s.id \
             AND g.status = 'active')",
            q.bind(principal.tenant_id)
        ),
    }
}

/// The strategy `id` if `principal` may see it, else [`TenantsError::NotFound`].
pub async fn strategy_for<C: ConnectionTrait>(
    db: &C,
    principal: &Principal,
    id: Uuid,
) -> Result<Strategy, TenantsError> {
    let mut q = Sql::new(db);
    let id_p = q.bind(id);
    let visible = strategy_visible(&mut q, principal);
    let rows = q
        .query(
            db,
            format!(
                "SELECT {STRATEGY_COLS} FROM {STRATEGY_FROM} WHERE s.id = {id_p} AND {visible}"
            ),
        )
        .await?;
    rows.first()
        .map(strategy_from_row)
        .transpose()?
        .ok_or(TenantsError::NotFound)
}

/// The strategy `id` of manager `manager_id` (no visibility: for rules that already know).
pub async fn strategy_of<C: ConnectionTrait>(
    db: &C,
    manager_id: Uuid,
    id: Uuid,
) -> Result<Option<Strategy>, TenantsError> {
    let mut q = Sql::new(db);
    let sql = format!(
        "SELECT {STRATEGY_COLS} FROM {STRATEGY_FROM} WHERE s.tenant_id = {} AND s.id = {}",
        q.bind(manager_id),
        q.bind(id)
    );
    q.query(db, sql)
        .await?
        .first()
        .map(strategy_from_row)
        .transpose()
}

/// The strategies `principal` may see, ordered by id, `limit` after `after`.
pub async fn list_strategies<C: ConnectionTrait>(
    db: &C,
    principal: &Principal,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Page<Strategy>, TenantsError> {
    let fetch = check_limit(limit)?;
    let mut q = Sql::new(db);
    let mut cond = strategy_visible(&mut q, principal);
    if let Some(after) = after {
        cond = format!("{cond} AND s.id > {}", q.bind(after));
    }
    let lim = q.bind(fetch);
    let rows = q
        .query(
            db,
            format!(
                "SELECT {STRATEGY_COLS} FROM {STRATEGY_FROM} WHERE {cond} ORDER BY s.id LIMIT {lim}"
            ),
        )
        .await?;
    let items = rows
        .iter()
        .map(strategy_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page(items, limit, |s| s.id))
}

/// Applies `patch` to `strategy` (its owner's: the caller checked). Returns the new state.
pub async fn update_strategy<C: ConnectionTrait>(
    db: &C,
    strategy: &Strategy,
    patch: &StrategyPatch,
    now: DateTime<Utc>,
) -> Result<Strategy, TenantsError> {
    patch.validate()?;
    let updated = patch.apply(strategy, tenants::to_micros_precision(now));
    let mut q = Sql::new(db);
    let sql = format!(
        "UPDATE strategies SET name = {}, description = {}, risk_level = {}, status = {}, \
         updated_at = {} WHERE tenant_id = {} AND id = {}",
        q.bind(updated.name.clone()),
        q.bind(updated.description.clone()),
        q.bind(i32::from(updated.risk_level)),
        q.bind(updated.status.as_str()),
        q.bind(micros(updated.updated_at)),
        q.bind(strategy.manager_tenant_id),
        q.bind(strategy.id),
    );
    if q.exec(db, sql).await? != 1 {
        return Err(TenantsError::NotFound);
    }
    Ok(updated)
}

// ---------------------------------------------------------------------------------------
// Model versions

const VERSION_COLS: &str = "strategy_id, version, effective_date, cash_weight, created_at";

/// Versions of `strategy_id` (of manager `tenant_id`) matching `cond` on the version table,
/// with their weights, ordered by version.
async fn load_versions<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    strategy_id: Uuid,
    cond: &str,
    mut q: Sql,
    limit: i64,
) -> Result<Vec<StrategyVersion>, TenantsError> {
    let t = q.bind(tenant_id);
    let s = q.bind(strategy_id);
    let lim = q.bind(limit);
    let rows = q
        .query(
            db,
            format!(
                "SELECT {VERSION_COLS} FROM strategy_versions WHERE tenant_id = {t} \
                 AND strategy_id = {s} AND {cond} ORDER BY version LIMIT {lim}"
            ),
        )
        .await?;
    let mut versions = Vec::with_capacity(rows.len());
    for row in &rows {
        let n: i32 = get(row, 1)?;
        versions.push(StrategyVersion {
            strategy_id: get(row, 0)?,
            version: u32::try_from(n).map_err(|_| TenantsError::Corrupt(format!("version {n}")))?,
            effective_date: get(row, 2)?,
            cash_weight: dec(row, 3)?,
            weights: Vec::new(),
            created_at: time(row, 4)?,
        });
    }
    let (Some(first), Some(last)) = (versions.first(), versions.last()) else {
        return Ok(versions);
    };
    let (lo, hi) = (first.version as i32, last.version as i32);
    let mut q = Sql::new(db);
    let sql = format!(
        "SELECT version, instrument_code, weight FROM strategy_weights WHERE tenant_id = {} \
         AND strategy_id = {} AND version BETWEEN {} AND {} ORDER BY version, instrument_code",
        q.bind(tenant_id),
        q.bind(strategy_id),
        q.bind(lo),
        q.bind(hi),
    );
    let mut by_version: BTreeMap<u32, Vec<ModelWeight>> = BTreeMap::new();
    for row in q.query(db, sql).await? {
        let n: i32 = get(&row, 0)?;
        by_version.entry(n as u32).or_default().push(ModelWeight {
            instrument: get(&row, 1)?,
            weight: dec(&row, 2)?,
        });
    }
    for v in &mut versions {
        v.weights = by_version.remove(&v.version).unwrap_or_default();
    }
    Ok(versions)
}

/// Publishes a model version of `strategy` (its owner's: the caller checked). The rules of
/// [`NewVersion::validate`], then: each instrument a ledger instrument priced in the base
/// currency (`weights` names the first that is not), and the effective date later than the
/// latest version's (`effective_date`).
pub async fn add_version<C: ConnectionTrait>(
    db: &C,
    strategy: &Strategy,
    new: &NewVersion,
    now: DateTime<Utc>,
) -> Result<StrategyVersion, TenantsError> {
    new.validate()?;
    let codes: Vec<&str> = new.weights.iter().map(|w| w.instrument.as_str()).collect();
    let known = assets(db, &codes).await?;
    for code in &codes {
        match known.get(*code) {
            None => {
                return Err(TenantsError::invalid(
                    "weights",
                    format!("{code} is not an instrument known to the platform"),
                ));
            }
            Some(a) if a.is_currency => {
                return Err(TenantsError::invalid(
                    "weights",
                    format!("{code} is a currency, not an instrument (use cash_weight)"),
                ));
            }
            Some(a) if a.price_currency.as_deref() != Some(strategy.base_currency.as_str()) => {
                return Err(TenantsError::invalid(
                    "weights",
                    format!(
                        "{code} is priced in {}, not in the strategy's base currency {}",
                        a.price_currency.as_deref().unwrap_or("?"),
                        strategy.base_currency
                    ),
                ));
            }
            Some(a) if a.instrument_status.as_deref() != Some("active") => {
                return Err(TenantsError::invalid(
                    "weights",
                    format!(
                        "{code} is {}: a model holds only active instruments",
                        a.instrument_status
                            .as_deref()
                            .unwrap_or("not a registered instrument")
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    let mut q = Sql::new(db);
    let sql = format!(
        "SELECT version, effective_date FROM strategy_versions WHERE tenant_id = {} \
         AND strategy_id = {} ORDER BY version DESC LIMIT 1",
        q.bind(strategy.manager_tenant_id),
        q.bind(strategy.id)
    );
    let latest = q.query(db, sql).await?;
    let number = match latest.first() {
        None => 1,
        Some(row) => {
            let n: i32 = get(row, 0)?;
            let date: NaiveDate = get(row, 1)?;
            if new.effective_date <= date {
                return Err(TenantsError::invalid(
                    "effective_date",
                    format!("must be later than the latest version's effective date {date}"),
                ));
            }
            n + 1
        }
    };
    let now = tenants::to_micros_precision(now);
    let mut q = Sql::new(db);
    let sql = format!(
        "INSERT INTO strategy_versions (tenant_id, strategy_id, version, effective_date, \
         cash_weight, created_at) VALUES ({}, {}, {}, {}, {}, {})",
        q.bind(strategy.manager_tenant_id),
        q.bind(strategy.id),
        q.bind(number),
        q.bind(new.effective_date),
        q.bind(dec_text(new.cash_weight)),
        q.bind(micros(now)),
    );
    q.exec(db, sql).await.map_err(conflict_on_unique(
        "another version was published at the same time",
    ))?;
    let mut weights: Vec<ModelWeight> = new
        .weights
        .iter()
        .map(|w| ModelWeight {
            instrument: w.instrument.clone(),
            weight: w.weight.normalize(),
        })
        .collect();
    weights.sort_by(|a, b| a.instrument.cmp(&b.instrument));
    let mut q = Sql::new(db);
    let mut rows = Vec::with_capacity(weights.len());
    for w in &weights {
        rows.push(format!(
            "({}, {}, {}, {}, {})",
            q.bind(strategy.manager_tenant_id),
            q.bind(strategy.id),
            q.bind(number),
            q.bind(w.instrument.clone()),
            q.bind(dec_text(w.weight)),
        ));
    }
    q.exec(
        db,
        format!(
            "INSERT INTO strategy_weights (tenant_id, strategy_id, version, instrument_code, weight) \
             VALUES {}",
            rows.join(", ")
        ),
    )
    .await?;
    version_events(db, strategy, number, new.effective_date, now).await?;
    Ok(StrategyVersion {
        strategy_id: strategy.id,
        version: number as u32,
        effective_date: new.effective_date,
        cash_weight: new.cash_weight.normalize(),
        weights,
        created_at: now,
    })
}

/// Versions of `strategy` with their weights, in order, `limit` after version `after`.
/// Returns the page and the cursor of the next (the last version number).
pub async fn list_versions<C: ConnectionTrait>(
    db: &C,
    strategy: &Strategy,
    after: Option<u32>,
    limit: u64,
) -> Result<(Vec<StrategyVersion>, Option<u32>), TenantsError> {
    let fetch = check_limit(limit)?;
    let mut q = Sql::new(db);
    let cond = format!("version > {}", q.bind(after.map_or(0, |a| a as i32)));
    let mut items =
        load_versions(db, strategy.manager_tenant_id, strategy.id, &cond, q, fetch).await?;
    let next = if items.len() as u64 > limit {
        items.truncate(limit as usize);
        items.last().map(|v| v.version)
    } else {
        None
    };
    Ok((items, next))
}

/// The model version of strategy `strategy_id` (of manager `tenant_id`) in effect on `on`:
/// the latest effective on or before it.
pub async fn version_in_effect<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    strategy_id: Uuid,
    on: NaiveDate,
) -> Result<Option<StrategyVersion>, TenantsError> {
    let mut q = Sql::new(db);
    let sql = format!(
        "SELECT version FROM strategy_versions WHERE tenant_id = {} AND strategy_id = {} \
         AND effective_date <= {} ORDER BY effective_date DESC LIMIT 1",
        q.bind(tenant_id),
        q.bind(strategy_id),
        q.bind(on),
    );
    let Some(row) = q.query(db, sql).await?.into_iter().next() else {
        return Ok(None);
    };
    let n: i32 = get(&row, 0)?;
    let mut q = Sql::new(db);
    let cond = format!("version = {}", q.bind(n));
    Ok(load_versions(db, tenant_id, strategy_id, &cond, q, 1)
        .await?
        .into_iter()
        .next())
}

// ---------------------------------------------------------------------------------------
// Agreements and terms

const AGREEMENT_COLS: &str =
    "tenant_id, id, manager_tenant_id, strategy_id, status, proposed_at, decided_at, decided_by";

fn agreement_from_row(row: &QueryResult) -> Result<Agreement, TenantsError> {
    let status: String = get(row, 4)?;
    Ok(Agreement {
        distributor_tenant_id: get(row, 0)?,
        id: get(row, 1)?,
        manager_tenant_id: get(row, 2)?,
        strategy_id: get(row, 3)?,
        status: AgreementStatus::parse(&status)
            .ok_or_else(|| TenantsError::Corrupt(format!("agreement status {status:?}")))?,
        proposed_at: time(row, 5)?,
        decided_at: opt_time(row, 6)?,
        decided_by: get(row, 7)?,
    })
}

const TERMS_COLS: &str =
    "agreement_id, version, effective_date, status, terms, created_at, decided_at, decided_by";

fn terms_from_row(row: &QueryResult) -> Result<TermsVersion, TenantsError> {
    let n: i32 = get(row, 1)?;
    let status: String = get(row, 3)?;
    let text: String = get(row, 4)?;
    Ok(TermsVersion {
        agreement_id: get(row, 0)?,
        version: u32::try_from(n).map_err(|_| TenantsError::Corrupt(format!("version {n}")))?,
        effective_date: get(row, 2)?,
        status: TermsStatus::parse(&status)
            .ok_or_else(|| TenantsError::Corrupt(format!("terms status {status:?}")))?,
        terms: serde_json::from_str(&text)
            .map_err(|e| TenantsError::Corrupt(format!("terms: {e}")))?,
        created_at: time(row, 5)?,
        decided_at: opt_time(row, 6)?,
        decided_by: get(row, 7)?,
    })
}

/// Canonical text of terms: the JSON of [`Terms`] (fixed field order, decimals as exact strings).
fn terms_text(terms: &Terms) -> Result<String, TenantsError> {
    serde_json::to_string(terms).map_err(|e| TenantsError::Corrupt(format!("terms: {e}")))
}

async fn insert_terms<C: ConnectionTrait>(
    db: &C,
    distributor_id: Uuid,
    v: &TermsVersion,
) -> Result<(), TenantsError> {
    let mut q = Sql::new(db);
    let sql = format!(
        "INSERT INTO agreement_terms (tenant_id, agreement_id, version, effective_date, status, \
         terms, created_at) VALUES ({}, {}, {}, {}, {}, {}, {})",
        q.bind(distributor_id),
        q.bind(v.agreement_id),
        q.bind(v.version as i32),
        q.bind(v.effective_date),
        q.bind(v.status.as_str()),
        q.bind(terms_text(&v.terms)?),
        q.bind(micros(v.created_at)),
    );
    q.exec(db, sql).await.map_err(conflict_on_unique(
        "new terms already await the manager's decision",
    ))?;
    Ok(())
}

/// Distributor `distributor_id` proposes an agreement for strategy `strategy_id` of manager
/// `manager_id` with its first terms. The strategy must be that manager's (else `strategy_id`
/// is invalid: the distributor cannot see it yet, so 404 would hide a typo) and active; one
/// live agreement per (distributor, strategy) (a conflict otherwise).
pub async fn propose_agreement<C: ConnectionTrait>(
    db: &C,
    distributor_id: Uuid,
    manager_id: Uuid,
    strategy_id: Uuid,
    input: TermsInput,
    by: &str,
    now: DateTime<Utc>,
) -> Result<(Agreement, TermsVersion), TenantsError> {
    let strategy = strategy_of(db, manager_id, strategy_id)
        .await?
        .ok_or_else(|| TenantsError::invalid("strategy_id", "no such strategy of this manager"))?;
    if strategy.status != StrategyStatus::Active {
        return Err(TenantsError::invalid(
            "strategy_id",
            "the strategy is retired and takes no new agreements",
        ));
    }
    let scale = currency_scale(db, "strategy_id", &strategy.base_currency).await?;
    let (effective_date, terms) = input.into_terms(&strategy.base_currency, scale)?;
    let mut q = Sql::new(db);
    let sql = format!(
        "SELECT 1 FROM agreements WHERE tenant_id = {} AND strategy_id = {} \
         AND status IN ('proposed', 'active')",
        q.bind(distributor_id),
        q.bind(strategy_id)
    );
    if !q.query(db, sql).await?.is_empty() {
        return Err(TenantsError::Conflict(
            "a proposed or active agreement for this strategy already exists".into(),
        ));
    }
    let now = tenants::to_micros_precision(now);
    let agreement = Agreement {
        id: Uuid::now_v7(),
        distributor_tenant_id: distributor_id,
        manager_tenant_id: manager_id,
        strategy_id,
        status: AgreementStatus::Proposed,
        proposed_at: now,
        decided_at: None,
        decided_by: None,
    };
    let mut q = Sql::new(db);
    let sql = format!(
        "INSERT INTO agreements (tenant_id, id, manager_tenant_id, strategy_id, status, \
         proposed_at, proposed_by) VALUES ({}, {}, {}, {}, {}, {}, {})",
        q.bind(distributor_id),
        q.bind(agreement.id),
        q.bind(manager_id),
        q.bind(strategy_id),
        q.bind(agreement.status.as_str()),
        q.bind(micros(now)),
        q.bind(by.to_owned()),
    );
    q.exec(db, sql).await.map_err(conflict_on_unique(
        "a proposed or active agreement for this strategy already exists",
    ))?;
    let terms = TermsVersion {
        agreement_id: agreement.id,
        version: 1,
        effective_date,
        status: TermsStatus::Proposed,
        terms,
        created_at: now,
        decided_at: None,
        decided_by: None,
    };
    insert_terms(db, distributor_id, &terms).await?;
    // Last (the events' cursor locks come after every other lock: crate::events).
    crate::events::record(
        db,
        agreement_events(&agreement, types::AGREEMENT_PROPOSED),
        now,
    )
    .await?;
    Ok((agreement, terms))
}

/// `strategy.version.published` for the manager and every distributor with a live agreement
/// on the strategy (their wraps will follow the new model). Recorded last (crate::events).
async fn version_events<C: ConnectionTrait>(
    db: &C,
    strategy: &Strategy,
    number: i32,
    effective_date: NaiveDate,
    now: DateTime<Utc>,
) -> Result<(), TenantsError> {
    let mut q = Sql::new(db);
    let sql = format!(
        "SELECT DISTINCT tenant_id FROM agreements WHERE manager_tenant_id = {} \
         AND strategy_id = {} AND status IN ('proposed', 'active')",
        q.bind(strategy.manager_tenant_id),
        q.bind(strategy.id)
    );
    let mut tenants = vec![strategy.manager_tenant_id];
    for r in q.query(db, sql).await? {
        tenants.push(r.try_get_by_index::<Uuid>(0)?);
    }
    let payload = serde_json::json!({
        "strategy_id": strategy.id,
        "version": number,
        "effective_date": effective_date,
    });
    let events = tenants
        .into_iter()
        .map(|tenant_id| {
            NewEvent::new(
                tenant_id,
                types::STRATEGY_VERSION_PUBLISHED,
                format!("strategy:{}", strategy.id),
                Some(effective_date),
                payload.clone(),
            )
        })
        .collect();
    crate::events::record(db, events, now).await?;
    Ok(())
}

/// The same event for the agreement's two parties: it names the agreement, the strategy and
/// the two tenants, never a customer.
fn agreement_events(agreement: &Agreement, kind: &'static str) -> Vec<NewEvent> {
    let payload = serde_json::json!({
        "agreement_id": agreement.id,
        "strategy_id": agreement.strategy_id,
        "distributor_tenant_id": agreement.distributor_tenant_id,
        "manager_tenant_id": agreement.manager_tenant_id,
        "status": agreement.status.as_str(),
    });
    [agreement.distributor_tenant_id, agreement.manager_tenant_id]
        .into_iter()
        .map(|tenant_id| {
            NewEvent::new(
                tenant_id,
                kind,
                format!("agreement:{}", agreement.id),
                None,
                payload.clone(),
            )
        })
        .collect()
}

/// The visibility rule of agreements (see the module docs).
fn agreement_visible(q: &mut Sql, principal: &Principal) -> String {
    match principal.tenant_kind {
        TenantKind::Platform => "1 = 1".to_owned(),
        TenantKind::Distributor => format!("tenant_id = {}", q.bind(principal.tenant_id)),
        TenantKind::Manager => format!("manager_tenant_id = {}", q.bind(principal.tenant_id)),
    }
}

/// The agreement `id` if `principal` may see it (its distributor, its manager, the
/// platform), else [`TenantsError::NotFound`].
pub async fn agreement_for<C: ConnectionTrait>(
    db: &C,
    principal: &Principal,
    id: Uuid,
) -> Result<Agreement, TenantsError> {
    let mut q = Sql::new(db);
    let id_p = q.bind(id);
    let visible = agreement_visible(&mut q, principal);
    let rows = q
        .query(
            db,
            format!("SELECT {AGREEMENT_COLS} FROM agreements WHERE id = {id_p} AND {visible}"),
        )
        .await?;
    rows.first()
        .map(agreement_from_row)
        .transpose()?
        .ok_or(TenantsError::NotFound)
}

/// Filters of [`list_agreements`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AgreementFilter {
    pub status: Option<AgreementStatus>,
    pub strategy_id: Option<Uuid>,
}

/// The agreements `principal` may see, ordered by id, `limit` after `after`.
pub async fn list_agreements<C: ConnectionTrait>(
    db: &C,
    principal: &Principal,
    filter: AgreementFilter,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Page<Agreement>, TenantsError> {
    let fetch = check_limit(limit)?;
    let mut q = Sql::new(db);
    let mut cond = agreement_visible(&mut q, principal);
    if let Some(status) = filter.status {
        cond = format!("{cond} AND status = {}", q.bind(status.as_str()));
    }
    if let Some(s) = filter.strategy_id {
        cond = format!("{cond} AND strategy_id = {}", q.bind(s));
    }
    if let Some(after) = after {
        cond = format!("{cond} AND id > {}", q.bind(after));
    }
    let lim = q.bind(fetch);
    let rows = q
        .query(
            db,
            format!("SELECT {AGREEMENT_COLS} FROM agreements WHERE {cond} ORDER BY id LIMIT {lim}"),
        )
        .await?;
    let items = rows
        .iter()
        .map(agreement_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page(items, limit, |a| a.id))
}

/// Every terms version of `agreement`, oldest first.
pub async fn list_terms<C: ConnectionTrait>(
    db: &C,
    agreement: &Agreement,
) -> Result<Vec<TermsVersion>, TenantsError> {
    let mut q = Sql::new(db);
    let sql = format!(
        "SELECT {TERMS_COLS} FROM agreement_terms WHERE tenant_id = {} AND agreement_id = {} \
         ORDER BY version",
        q.bind(agreement.distributor_tenant_id),
        q.bind(agreement.id)
    );
    q.query(db, sql).await?.iter().map(terms_from_row).collect()
}

/// The manager accepts (`accept`) or declines what awaits its decision on `agreement`: a
/// proposed agreement with its first terms, or a new terms version of an active one. Anything
/// else, or a concurrent decision, is a conflict. Returns the agreement and the decided terms.
pub async fn decide<C: ConnectionTrait>(
    db: &C,
    agreement: &Agreement,
    accept: bool,
    by: &str,
    now: DateTime<Utc>,
) -> Result<(Agreement, TermsVersion), TenantsError> {
    let versions = list_terms(db, agreement).await?;
    let pending = versions
        .iter()
        .find(|v| v.status == TermsStatus::Proposed)
        .cloned();
    let decision = Decision::for_accept(agreement.status, pending.is_some())?;
    let Some(mut terms) = pending else {
        return Err(TenantsError::Conflict("nothing awaits a decision".into()));
    };
    let now = tenants::to_micros_precision(now);
    let lost = || TenantsError::Conflict("the agreement was decided at the same time".into());
    terms.status = if accept {
        TermsStatus::Accepted
    } else {
        TermsStatus::Declined
    };
    terms.decided_at = Some(now);
    terms.decided_by = Some(by.to_owned());
    let mut q = Sql::new(db);
    let sql = format!(
        "UPDATE agreement_terms SET status = {}, decided_at = {}, decided_by = {} \
         WHERE tenant_id = {} AND agreement_id = {} AND version = {} AND status = 'proposed'",
        q.bind(terms.status.as_str()),
        q.bind(micros(now)),
        q.bind(by.to_owned()),
        q.bind(agreement.distributor_tenant_id),
        q.bind(agreement.id),
        q.bind(terms.version as i32),
    );
    if q.exec(db, sql).await? != 1 {
        return Err(lost());
    }
    let mut updated = agreement.clone();
    if decision == Decision::Agreement {
        updated.status = if accept {
            AgreementStatus::Active
        } else {
            AgreementStatus::Declined
        };
        updated.decided_at = Some(now);
        updated.decided_by = Some(by.to_owned());
        let mut q = Sql::new(db);
        let sql = format!(
            "UPDATE agreements SET status = {}, decided_at = {}, decided_by = {} \
             WHERE tenant_id = {} AND id = {} AND status = 'proposed'",
            q.bind(updated.status.as_str()),
            q.bind(micros(now)),
            q.bind(by.to_owned()),
            q.bind(agreement.distributor_tenant_id),
            q.bind(agreement.id),
        );
        if q.exec(db, sql).await? != 1 {
            return Err(lost());
        }
        if accept {
            crate::events::record(
                db,
                agreement_events(&updated, types::AGREEMENT_ACCEPTED),
                now,
            )
            .await?;
        }
    }
    Ok((updated, terms))
}

/// The distributor proposes a new terms version of an active `agreement`, from a date later
/// than every accepted version's; at most one version awaits a decision.
pub async fn propose_terms<C: ConnectionTrait>(
    db: &C,
    agreement: &Agreement,
    input: TermsInput,
    now: DateTime<Utc>,
) -> Result<TermsVersion, TenantsError> {
    if agreement.status != AgreementStatus::Active {
        return Err(TenantsError::Conflict(format!(
            "the agreement is {}: only an active agreement takes new terms",
            agreement.status.as_str()
        )));
    }
    let strategy = strategy_of(db, agreement.manager_tenant_id, agreement.strategy_id)
        .await?
        .ok_or(TenantsError::NotFound)?;
    let scale = currency_scale(db, "strategy_id", &strategy.base_currency).await?;
    let (effective_date, terms) = input.into_terms(&strategy.base_currency, scale)?;
    let versions = list_terms(db, agreement).await?;
    if versions.iter().any(|v| v.status == TermsStatus::Proposed) {
        return Err(TenantsError::Conflict(
            "new terms already await the manager's decision".into(),
        ));
    }
    if let Some(latest) = versions
        .iter()
        .filter(|v| v.status == TermsStatus::Accepted)
        .map(|v| v.effective_date)
        .max()
        && effective_date <= latest
    {
        return Err(TenantsError::invalid(
            "effective_date",
            format!("must be later than the accepted terms' effective date {latest}"),
        ));
    }
    let version = TermsVersion {
        agreement_id: agreement.id,
        version: versions.iter().map(|v| v.version).max().unwrap_or(0) + 1,
        effective_date,
        status: TermsStatus::Proposed,
        terms,
        created_at: tenants::to_micros_precision(now),
        decided_at: None,
        decided_by: None,
    };
    insert_terms(db, agreement.distributor_tenant_id, &version).await?;
    Ok(version)
}

/// The terms of agreement `agreement_id` (of distributor `distributor_id`) in effect on `on`:
/// the newest accepted version effective on or before it.
pub async fn terms_in_effect<C: ConnectionTrait>(
    db: &C,
    distributor_id: Uuid,
    agreement_id: Uuid,
    on: NaiveDate,
) -> Result<Option<TermsVersion>, TenantsError> {
    let mut q = Sql::new(db);
    let sql = format!(
        "SELECT {TERMS_COLS} FROM agreement_terms WHERE tenant_id = {} AND agreement_id = {} \
         AND status = 'accepted' AND effective_date <= {} \
         ORDER BY effective_date DESC, version DESC LIMIT 1",
        q.bind(distributor_id),
        q.bind(agreement_id),
        q.bind(on),
    );
    q.query(db, sql)
        .await?
        .first()
        .map(terms_from_row)
        .transpose()
}

/// What a distributor may sell under an agreement on a date: the strategy and the terms then
/// in effect. Wraps are opened against this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Offer {
    pub agreement_id: Uuid,
    pub distributor_tenant_id: Uuid,
    pub manager_tenant_id: Uuid,
    /// The strategy as it is now (its `status` says whether it still takes new wraps).
    pub strategy: Strategy,
    /// The accepted terms in effect on the date asked.
    pub terms: Terms,
    pub terms_version: u32,
    pub terms_effective_date: NaiveDate,
}

/// The offer of agreement `agreement_id` to distributor `distributor_id` on `on`.
/// [`TenantsError::NotFound`] unless the agreement is the distributor's, ACTIVE, and has
/// accepted terms in effect on that date.
pub async fn offer<C: ConnectionTrait>(
    db: &C,
    distributor_id: Uuid,
    agreement_id: Uuid,
    on: NaiveDate,
) -> Result<Offer, TenantsError> {
    let mut q = Sql::new(db);
    let sql = format!(
        "SELECT {AGREEMENT_COLS} FROM agreements WHERE tenant_id = {} AND id = {} \
         AND status = 'active'",
        q.bind(distributor_id),
        q.bind(agreement_id)
    );
    let agreement = q
        .query(db, sql)
        .await?
        .first()
        .map(agreement_from_row)
        .transpose()?
        .ok_or(TenantsError::NotFound)?;
    let terms = terms_in_effect(db, distributor_id, agreement_id, on)
        .await?
        .ok_or(TenantsError::NotFound)?;
    let strategy = strategy_of(db, agreement.manager_tenant_id, agreement.strategy_id)
        .await?
        .ok_or(TenantsError::NotFound)?;
    Ok(Offer {
        agreement_id,
        distributor_tenant_id: distributor_id,
        manager_tenant_id: agreement.manager_tenant_id,
        strategy,
        terms: terms.terms,
        terms_version: terms.version,
        terms_effective_date: terms.effective_date,
    })
}

// ---------------------------------------------------------------------------------------
// Platform fees

/// The platform's monthly fee to a distributor, from a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PlatformFee {
    pub distributor_tenant_id: Uuid,
    pub effective_date: NaiveDate,
    /// A month's fee, in `currency`.
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String, example = "50000")]
    pub amount: Decimal,
    pub currency: String,
    pub set_at: DateTime<Utc>,
    /// The client id of who set it.
    pub set_by: String,
}

/// What it takes to set a platform fee.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlatformFee {
    /// At least 0, exact to the currency's scale.
    #[serde(deserialize_with = "ledger::amount::de_strict")]
    #[schema(value_type = String, example = "50000")]
    pub amount: Decimal,
    pub currency: String,
    pub effective_date: NaiveDate,
}

/// The fee in effect on `on`: the latest effective on or before it.
pub fn platform_fee_in_effect(fees: &[PlatformFee], on: NaiveDate) -> Option<&PlatformFee> {
    fees.iter()
        .filter(|f| f.effective_date <= on)
        .max_by_key(|f| f.effective_date)
}

/// Sets distributor `distributor_id`'s fee from `new.effective_date` (the caller checked the
/// tenant is a distributor). Another date adds a row (history); the same date replaces that
/// date's fee. Returns the replaced fee, if any, and the new one.
pub async fn set_platform_fee<C: ConnectionTrait>(
    db: &C,
    distributor_id: Uuid,
    new: &NewPlatformFee,
    by: &str,
    now: DateTime<Utc>,
) -> Result<(Option<PlatformFee>, PlatformFee), TenantsError> {
    crate::market::strategy::validate_code("currency", &new.currency)?;
    let scale = currency_scale(db, "currency", &new.currency).await?;
    check_money("amount", new.amount, scale)?;
    let minor = to_minor("amount", new.amount, scale)?;
    let before = platform_fees(db, distributor_id)
        .await?
        .into_iter()
        .find(|f| f.effective_date == new.effective_date);
    let fee = PlatformFee {
        distributor_tenant_id: distributor_id,
        effective_date: new.effective_date,
        amount: from_minor(minor, scale),
        currency: new.currency.clone(),
        set_at: tenants::to_micros_precision(now),
        set_by: by.to_owned(),
    };
    let mut q = Sql::new(db);
    let sql = if before.is_some() {
        format!(
            "UPDATE platform_fees SET amount = {}, currency = {}, set_at = {}, set_by = {} \
             WHERE tenant_id = {} AND effective_date = {}",
            q.bind(minor),
            q.bind(fee.currency.clone()),
            q.bind(micros(fee.set_at)),
            q.bind(by.to_owned()),
            q.bind(distributor_id),
            q.bind(fee.effective_date),
        )
    } else {
        format!(
            "INSERT INTO platform_fees (tenant_id, effective_date, amount, currency, set_at, \
             set_by) VALUES ({}, {}, {}, {}, {}, {})",
            q.bind(distributor_id),
            q.bind(fee.effective_date),
            q.bind(minor),
            q.bind(fee.currency.clone()),
            q.bind(micros(fee.set_at)),
            q.bind(by.to_owned()),
        )
    };
    q.exec(db, sql).await.map_err(conflict_on_unique(
        "the fee for this date was set at the same time",
    ))?;
    Ok((before, fee))
}

/// Every platform fee of distributor `distributor_id`, newest effective date first.
pub async fn platform_fees<C: ConnectionTrait>(
    db: &C,
    distributor_id: Uuid,
) -> Result<Vec<PlatformFee>, TenantsError> {
    let mut q = Sql::new(db);
    let sql = format!(
        "SELECT f.tenant_id, f.effective_date, f.amount, f.currency, f.set_at, f.set_by, a.scale \
         FROM platform_fees f JOIN ledger_assets a ON a.code = f.currency \
         WHERE f.tenant_id = {} ORDER BY f.effective_date DESC",
        q.bind(distributor_id)
    );
    let mut out = Vec::new();
    for row in q.query(db, sql).await? {
        let scale: i32 = get(&row, 6)?;
        out.push(PlatformFee {
            distributor_tenant_id: get(&row, 0)?,
            effective_date: get(&row, 1)?,
            amount: from_minor(get(&row, 2)?, scale as u32),
            currency: get(&row, 3)?,
            set_at: time(&row, 4)?,
            set_by: get(&row, 5)?,
        });
    }
    Ok(out)
}
