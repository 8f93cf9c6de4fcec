//! `/v1/instruments` and `/v1/prices`: the platform's market data.
//!
//! Instruments and prices are reference data: every authenticated caller reads them, only
//! platform writers (`Action::ManageMarketData`) change them. No tenant owns them, so there is
//! no "another tenant's id" here; what must hold instead:
//!
//! * a refused request writes nothing: validation runs before the write transaction, and the
//!   upload is one transaction (all rows or none) with its audit record
//!   (`api/tests/http/instruments.rs::bad_rows_are_each_named`, `bad_instruments_are_refused_by_field`);
//! * an upload names every bad row with the reason, in JSON (`prices/3/price`) or CSV
//!   (`row 4: price`, counting the header as row 1) (`csv_upload_names_each_bad_row`);
//! * a date's prices can be replaced until its end of day has finished, then 409 naming the
//!   date (`prices_replace_until_end_of_day`);
//! * an instrument's ledger asset (scale, quote unit, currency) never changes: PATCH naming
//!   one of them is 422 (`patch_refuses_immutable_fields`).

use std::collections::{HashMap, HashSet};

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{NaiveDate, Utc};
use ledger::market::{
    self, FieldError, Instrument, InstrumentKind, InstrumentPatch, InstrumentStatus, NewInstrument,
};
use ledger::store::market as store;
use ledger::store::market::{PriceRow, StoredPrice, UploadCounts};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tenants::Action;
use utoipa::ToSchema;
use wraps::funds::{FundTerm, FundTermRate};

use crate::audit::{self, Change};
use crate::auth::Caller;
use crate::extract::Query;
use crate::problem::Problem;
use crate::routes::tenants::Page;
use crate::server::AppState;

/// Most rows one upload may hold (prices or custodian positions).
pub const MAX_UPLOAD_ROWS: usize = 100_000;
/// Most bad rows one problem lists; the detail gives the total.
pub const MAX_LISTED_ERRORS: usize = 1_000;

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = super::resource;
    cfg.service(
        resource("/v1/instruments")
            .get(list_instruments)
            .post(create_instrument),
    )
    .service(
        resource("/v1/instruments/{code}")
            .get(get_instrument)
            .route(web::patch().to(update_instrument)),
    )
    .service(
        resource("/v1/instruments/{code}/fund-terms")
            .get(list_fund_terms)
            .post(set_fund_term),
    )
    .service(resource("/v1/prices").get(list_prices).post(upload_prices));
}

// ---------------------------------------------------------------------------------------
// Instruments

/// What it takes to register an instrument.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInstrument {
    /// 1-64 characters of A-Z, a-z, 0-9, '_', '-', '.'; also its ledger asset's code.
    pub code: String,
    pub name: String,
    pub kind: InstrumentKind,
    /// A registered currency (`JPY`).
    pub currency: String,
    /// Decimal places of its units, 0 to 10 (Japanese investment trusts: 0).
    pub unit_scale: u32,
    /// How many units a price is for (Japanese investment trusts: 10000).
    pub quote_unit: i64,
    /// Decimal places a price may have, 0 to 10; default the currency's scale.
    pub price_scale: Option<u32>,
    /// Smallest trade in the currency, a decimal string; default "0".
    pub min_order_amount: Option<String>,
    /// T+n business days, 0 to 10; default 1.
    pub settlement_days: Option<u32>,
    /// Default `active`.
    pub status: Option<InstrumentStatus>,
}

/// A change to an instrument. Its ledger asset's `unit_scale`, `quote_unit`, `currency` (and
/// `price_scale`, `kind`, `code`) cannot change: naming one is 422.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateInstrument {
    pub name: Option<String>,
    pub status: Option<InstrumentStatus>,
    /// A decimal string in the currency.
    pub min_order_amount: Option<String>,
    pub settlement_days: Option<u32>,
}

const IMMUTABLE: [&str; 6] = [
    "code",
    "kind",
    "currency",
    "unit_scale",
    "quote_unit",
    "price_scale",
];

fn market_data_writer(caller: &Caller) -> Result<(), Problem> {
    caller.principal.authorize(Action::ManageMarketData)?;
    Ok(())
}

/// Register an instrument and its ledger asset (platform writers).
#[utoipa::path(
    post, path = "/v1/instruments", tag = "market data",
    request_body = CreateInstrument,
    responses(
        (status = 201, body = Instrument),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Code taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_instrument(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    market_data_writer(&caller)?;
    Query::parse(&req, &[])?;
    let body: CreateInstrument = crate::extract::json(&req, payload).await?;
    let min_order_amount = match body.min_order_amount.as_deref() {
        None => rust_decimal::Decimal::ZERO,
        Some(t) => {
            market::parse_decimal(t).map_err(|m| Problem::invalid_field("min_order_amount", m))?
        }
    };
    let new = NewInstrument {
        code: body.code,
        name: body.name,
        kind: body.kind,
        currency: body.currency,
        unit_scale: body.unit_scale,
        quote_unit: body.quote_unit,
        price_scale: body.price_scale,
        min_order_amount,
        settlement_days: body.settlement_days,
        status: body.status.unwrap_or(InstrumentStatus::Active),
    };
    new.validate()?;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    let instrument = store::create_instrument(&txn, &new, now).await?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "instrument.create",
            target_tenant_id: None,
            target_type: "instrument",
            target_id: instrument.code.clone(),
            detail: json!(instrument),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, format!("/v1/instruments/{}", instrument.code)))
        .json(instrument))
}

/// List instruments in code order (any authenticated caller).
#[utoipa::path(
    get, path = "/v1/instruments", tag = "market data",
    params(
        ("status" = Option<InstrumentStatus>, Query),
        ("kind" = Option<InstrumentKind>, Query),
        ("limit" = Option<u64>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, body = Page<Instrument>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_instruments(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReadOwnData)?;
    let q = Query::parse(&req, &["status", "kind", "limit", "cursor"])?;
    let status = q
        .one_of("status", &InstrumentStatus::NAMES)?
        .and_then(InstrumentStatus::parse);
    let kind = q
        .one_of("kind", &InstrumentKind::NAMES)?
        .and_then(InstrumentKind::parse);
    let cursor = q.get("cursor");
    if let Some(c) = cursor {
        market::check_code(c)
            .map_err(|_| Problem::bad_parameter("cursor", "not a cursor this API gave"))?;
    }
    let limit = q.limit(100, 1000)?;
    let (items, next_cursor) =
        store::list_instruments(&state.db, status, kind, cursor, limit).await?;
    Ok(HttpResponse::Ok().json(Page { items, next_cursor }))
}

/// The instrument with this code, or 404.
async fn find(state: &AppState, code: &str) -> Result<Instrument, Problem> {
    if market::check_code(code).is_err() {
        return Err(Problem::not_found("no such object"));
    }
    store::instrument(&state.db, code)
        .await
        .map_err(|e| match e {
            ledger::LedgerError::UnknownAsset(_) => Problem::not_found("no such object"),
            other => Problem::from(other),
        })
}

fn path_code(req: &HttpRequest) -> String {
    req.match_info().get("code").unwrap_or_default().to_owned()
}

/// One instrument (any authenticated caller).
#[utoipa::path(
    get, path = "/v1/instruments/{code}", tag = "market data",
    params(("code" = String, Path)),
    responses(
        (status = 200, body = Instrument),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_instrument(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReadOwnData)?;
    Query::parse(&req, &[])?;
    let instrument = find(&state, &path_code(&req)).await?;
    Ok(HttpResponse::Ok().json(instrument))
}

/// Change an instrument's name, status, minimum order or settlement lag (platform writers).
#[utoipa::path(
    patch, path = "/v1/instruments/{code}", tag = "market data",
    params(("code" = String, Path)),
    request_body = UpdateInstrument,
    responses(
        (status = 200, body = Instrument),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad value, or a field that cannot change", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn update_instrument(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    // Reference data: everyone may see it, so existence is checked first, then the role.
    let code = path_code(&req);
    find(&state, &code).await?;
    market_data_writer(&caller)?;
    Query::parse(&req, &[])?;
    let raw: Value = crate::extract::json(&req, payload).await?;
    if let Some(obj) = raw.as_object() {
        let mut fixed = IMMUTABLE
            .iter()
            .filter(|f| obj.contains_key(**f))
            .peekable();
        if fixed.peek().is_some() {
            let p = fixed.fold(
                Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation",
                    "Validation Failed",
                )
                .with_detail(
                    "an instrument's code, kind, currency, unit_scale, quote_unit and \
                     price_scale cannot change: register a new instrument instead",
                ),
                |p, f| {
                    p.with_field_error(*f, "cannot be changed after the instrument is registered")
                },
            );
            return Err(p);
        }
        if obj.is_empty() {
            return Err(Problem::invalid_field("body", "names nothing to change"));
        }
    }
    let body: UpdateInstrument = serde_path_to_error::deserialize(raw).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        Problem::invalid_field(&field, e.into_inner().to_string())
    })?;
    let min_order_amount = body
        .min_order_amount
        .as_deref()
        .map(market::parse_decimal)
        .transpose()
        .map_err(|m| Problem::invalid_field("min_order_amount", m))?;
    let patch = InstrumentPatch {
        name: body.name,
        status: body.status,
        min_order_amount,
        settlement_days: body.settlement_days,
    };
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    let (before, after) = store::update_instrument(&txn, &code, &patch, now).await?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "instrument.update",
            target_tenant_id: None,
            target_type: "instrument",
            target_id: code.clone(),
            detail: json!({ "before": before, "after": after }),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(after))
}

// ---------------------------------------------------------------------------------------
// Fund terms (issue 25): the redemption levy and the expense ratio, with effective dates

/// A fund term's rate from a date.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetFundTerm {
    /// `redemption_levy` (信託財産留保額, a fraction of the value redeemed) or
    /// `expense_ratio` (信託報酬, a fraction a year).
    pub term: FundTerm,
    /// From this date (later than every date whose end of day has started).
    pub effective_date: NaiveDate,
    /// Decimal string, 0 to 0.05, at most 6 places: `"0.003"` is 0.3 %.
    pub rate: String,
}

/// Every version of an instrument's fund terms.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct FundTerms {
    pub instrument: String,
    pub terms: Vec<FundTermRate>,
}

/// Set a fund term of an instrument from a date (platform writers). The same term and date
/// again replaces the rate (the audit log keeps the one replaced); a date whose end of day
/// has started is refused (422 naming `effective_date`): no trade already done changes.
#[utoipa::path(
    post, path = "/v1/instruments/{code}/fund-terms", tag = "market data",
    params(("code" = String, Path)),
    request_body = SetFundTerm,
    responses(
        (status = 201, body = FundTermRate),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad term, date or rate, named", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn set_fund_term(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let code = path_code(&req);
    find(&state, &code).await?;
    market_data_writer(&caller)?;
    Query::parse(&req, &[])?;
    let body: SetFundTerm = crate::extract::json(&req, payload).await?;
    let rate = wraps::funds::parse_rate(body.term, &body.rate, "rate")?;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    let (row, replaced) = wraps::funds::store::set_term(
        &txn,
        &code,
        body.term,
        body.effective_date,
        rate,
        &caller.principal.client_id,
        now,
    )
    .await?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "instrument.fund_term",
            target_tenant_id: None,
            target_type: "instrument",
            target_id: code.clone(),
            detail: json!({ "term": row.term, "effective_date": row.effective_date,
                "rate": row.rate.to_string(), "replaced": replaced.map(|r| r.to_string()) }),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Created().json(row))
}

/// An instrument's fund terms, every version (any authenticated caller).
#[utoipa::path(
    get, path = "/v1/instruments/{code}/fund-terms", tag = "market data",
    params(("code" = String, Path)),
    responses(
        (status = 200, body = FundTerms),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_fund_terms(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReadOwnData)?;
    Query::parse(&req, &[])?;
    let code = path_code(&req);
    find(&state, &code).await?;
    let terms = wraps::funds::store::terms(&state.db, &code).await?;
    Ok(HttpResponse::Ok().json(FundTerms {
        instrument: code,
        terms,
    }))
}

// ---------------------------------------------------------------------------------------
// Uploads (shared with custodian statements)

/// Where a row of an upload came from, to name its fields in errors.
#[derive(Debug, Clone)]
pub(crate) enum RowLabel {
    /// Index in the JSON array `key` (0-based, as in a JSON pointer).
    Json { key: &'static str, index: usize },
    /// Line of the CSV file, the header being row 1.
    Csv(u64),
}

impl RowLabel {
    /// The name of column `col` of this row: `prices/3/price` or `row 4: price`.
    pub(crate) fn field(&self, col: &str) -> String {
        match self {
            Self::Json { key, index } => format!("{key}/{index}/{col}"),
            Self::Csv(line) => format!("row {line}: {col}"),
        }
    }

    /// The row itself, for messages ("duplicates prices/1").
    pub(crate) fn name(&self) -> String {
        match self {
            Self::Json { key, index } => format!("{key}/{index}"),
            Self::Csv(line) => format!("row {line}"),
        }
    }
}

/// A row of an upload: its cells in the order of the columns asked for.
#[derive(Debug, Clone)]
pub(crate) struct UploadRow {
    pub label: RowLabel,
    pub cells: Vec<String>,
}

/// An upload read from JSON or CSV, before its values are checked.
#[derive(Debug, Default)]
pub(crate) struct Upload {
    /// Top-level members of a JSON body other than the rows (empty for CSV).
    pub top: Map<String, Value>,
    /// The well-formed rows.
    pub rows: Vec<UploadRow>,
    /// Rows that are malformed (wrong shape, wrong number of cells), each named.
    pub errors: Vec<FieldError>,
    /// Whether the body was CSV.
    pub csv: bool,
}

fn too_many_rows() -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too-many-rows",
        "Too Many Rows",
    )
    .with_detail(format!(
        "an upload holds at most {MAX_UPLOAD_ROWS} rows: split it"
    ))
}

/// Reads an upload: JSON `{"<key>": [{col: "text", …}, …], …}` or CSV with a header row
/// naming exactly `columns` (in any order). Malformed rows are collected, not fatal, so every
/// bad row is named; a body that is not JSON/CSV at all is 400, not JSON or CSV 415, more than
/// [`MAX_UPLOAD_ROWS`] rows 413.
pub(crate) async fn read_upload(
    req: &HttpRequest,
    mut payload: web::Payload,
    key: &'static str,
    columns: &[&'static str],
) -> Result<Upload, Problem> {
    let given = req
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("(not text)").to_owned());
    let essence = given
        .as_deref()
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let csv = match essence.as_deref() {
        Some("application/json") => false,
        Some("text/csv") => true,
        _ => {
            return Err(Problem::unsupported_media_type(
                "application/json or text/csv",
                given.as_deref(),
            ));
        }
    };
    let bytes = crate::extract::read_body(req, &mut payload).await?;
    if bytes.is_empty() {
        return Err(Problem::bad_request("the request body is empty"));
    }
    let mut upload = if csv {
        read_csv(&bytes, columns)
    } else {
        read_json(&bytes, key, columns)
    }?;
    bound_cells(&mut upload, columns);
    Ok(upload)
}

/// Longest cell of an upload, in characters: codes, dates and decimals are far shorter, and
/// a longer cell is neither read further nor echoed in the answer.
pub const MAX_CELL_CHARS: usize = 200;

/// Moves every row with a cell over [`MAX_CELL_CHARS`] to the upload's errors, naming it.
fn bound_cells(upload: &mut Upload, columns: &[&'static str]) {
    let (rows, errors) = (&mut upload.rows, &mut upload.errors);
    rows.retain(|row| {
        let long = row
            .cells
            .iter()
            .zip(columns)
            .find(|(cell, _)| cell.chars().count() > MAX_CELL_CHARS);
        match long {
            Some((_, col)) => {
                errors.push(FieldError::new(
                    row.label.field(col),
                    format!("must be at most {MAX_CELL_CHARS} characters"),
                ));
                false
            }
            None => true,
        }
    });
}

fn read_json(bytes: &[u8], key: &'static str, columns: &[&'static str]) -> Result<Upload, Problem> {
    crate::extract::check_depth(bytes)?;
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Problem::bad_request(format!("malformed JSON: {e}")))?;
    let Value::Object(mut top) = value else {
        return Err(Problem::invalid_field(
            "body",
            format!("must be an object with `{key}`"),
        ));
    };
    let Some(Value::Array(items)) = top.remove(key) else {
        return Err(Problem::invalid_field(key, "must be an array of rows"));
    };
    if items.len() > MAX_UPLOAD_ROWS {
        return Err(too_many_rows());
    }
    let mut upload = Upload {
        top,
        ..Upload::default()
    };
    for (index, item) in items.into_iter().enumerate() {
        let label = RowLabel::Json { key, index };
        let Value::Object(mut obj) = item else {
            upload.errors.push(FieldError::new(
                label.name(),
                format!("must be an object with {}", columns.join(", ")),
            ));
            continue;
        };
        let mut cells = Vec::with_capacity(columns.len());
        let mut ok = true;
        for col in columns {
            match obj.remove(*col) {
                Some(Value::String(s)) => cells.push(s),
                Some(Value::Number(_)) => {
                    ok = false;
                    upload.errors.push(FieldError::new(
                        label.field(col),
                        "must be a string (decimals travel as strings, e.g. \"10234\")",
                    ));
                }
                Some(_) => {
                    ok = false;
                    upload
                        .errors
                        .push(FieldError::new(label.field(col), "must be a string"));
                }
                None => {
                    ok = false;
                    upload
                        .errors
                        .push(FieldError::new(label.field(col), "is missing"));
                }
            }
        }
        for extra in obj.keys() {
            ok = false;
            upload.errors.push(FieldError::new(
                label.field(extra),
                format!("unknown field; expected {}", columns.join(", ")),
            ));
        }
        if ok {
            upload.rows.push(UploadRow { label, cells });
        }
    }
    if upload.rows.is_empty() && upload.errors.is_empty() {
        return Err(Problem::invalid_field(key, "holds no rows"));
    }
    Ok(upload)
}

fn read_csv(bytes: &[u8], columns: &[&'static str]) -> Result<Upload, Problem> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header = reader
        .headers()
        .map_err(|e| Problem::invalid_field("row 1", format!("not a CSV header: {e}")))?
        .clone();
    let names: Vec<&str> = header.iter().collect();
    let mut index = Vec::with_capacity(columns.len());
    for col in columns {
        match names.iter().position(|n| n.eq_ignore_ascii_case(col)) {
            Some(i) => index.push(i),
            None => {
                return Err(Problem::invalid_field(
                    "row 1",
                    format!(
                        "the header must name the columns {} (got {})",
                        columns.join(","),
                        names.join(",")
                    ),
                ));
            }
        }
    }
    if names.len() != columns.len() {
        return Err(Problem::invalid_field(
            "row 1",
            format!(
                "the header must name exactly the columns {} (got {})",
                columns.join(","),
                names.join(",")
            ),
        ));
    }
    let mut upload = Upload {
        csv: true,
        ..Upload::default()
    };
    let mut record = csv::StringRecord::new();
    let mut count = 0_usize;
    loop {
        let line_before = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                count += 1;
                if count > MAX_UPLOAD_ROWS {
                    return Err(too_many_rows());
                }
                let line = record.position().map_or(line_before, |p| p.line());
                let label = RowLabel::Csv(line);
                if record.len() != columns.len() {
                    upload.errors.push(FieldError::new(
                        label.name(),
                        format!(
                            "has {} cells; the header names {}",
                            record.len(),
                            columns.len()
                        ),
                    ));
                    continue;
                }
                let cells = index
                    .iter()
                    .map(|i| record.get(*i).unwrap_or_default().to_owned())
                    .collect();
                upload.rows.push(UploadRow { label, cells });
            }
            Err(e) => {
                let line = e.position().map_or(line_before, |p| p.line());
                count += 1;
                upload.errors.push(FieldError::new(
                    RowLabel::Csv(line).name(),
                    format!("is not valid CSV text: {e}"),
                ));
                if count > MAX_UPLOAD_ROWS {
                    return Err(too_many_rows());
                }
                // A broken record cannot be skipped reliably: stop reading here.
                if !matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                    break;
                }
            }
        }
    }
    if upload.rows.is_empty() && upload.errors.is_empty() {
        return Err(Problem::invalid_field("row 2", "the file holds no rows"));
    }
    Ok(upload)
}

/// The 422 for an upload's bad rows: each named, at most [`MAX_LISTED_ERRORS`] listed.
pub(crate) fn rows_refused(mut errors: Vec<FieldError>, what: &str) -> Problem {
    // In row order (shape errors are found while reading, value errors after), top-level
    // fields first; a stable sort keeps each row's own order.
    errors.sort_by_key(|e| row_order(&e.field));
    let total = errors.len();
    errors.truncate(MAX_LISTED_ERRORS);
    let listed = if total > MAX_LISTED_ERRORS {
        format!(" (the first {MAX_LISTED_ERRORS} listed)")
    } else {
        String::new()
    };
    errors.into_iter().fold(
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Validation Failed",
        )
        .with_detail(format!(
            "{total} problem(s) in the {what}{listed}; nothing was stored"
        )),
        |p, f| p.with_field_error(f.field, f.message),
    )
}

/// The row a field of an upload names (`prices/3/price` → 3, `row 4: price` → 4); -1 for a
/// top-level field.
fn row_order(field: &str) -> i64 {
    let digits = |t: &str| -> i64 {
        t.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or(-1)
    };
    if let Some(rest) = field.strip_prefix("row ") {
        digits(rest)
    } else if let Some((_, rest)) = field.split_once('/') {
        digits(rest)
    } else {
        -1
    }
}

// ---------------------------------------------------------------------------------------
// Prices

/// One price of an upload.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PriceInput {
    /// Instrument code.
    pub instrument: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Per quote unit in the instrument's currency, a positive decimal string with at most
    /// `price_scale` decimals.
    #[schema(example = "10234")]
    pub price: String,
}

/// A price upload as JSON; as CSV, the header is `instrument,date,price`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PriceUpload {
    pub prices: Vec<PriceInput>,
}

const PRICE_COLUMNS: [&str; 3] = ["instrument", "date", "price"];

/// Checks every row, naming each bad one; the checked rows when all are good.
async fn check_prices(state: &AppState, upload: Upload) -> Result<Vec<PriceRow>, Problem> {
    let mut errors = upload.errors;
    let codes: Vec<String> = {
        let set: HashSet<&str> = upload.rows.iter().map(|r| r.cells[0].as_str()).collect();
        set.into_iter().map(str::to_owned).collect()
    };
    let instruments = store::instruments_by_code(&state.db, &codes).await?;
    let mut seen: HashMap<(String, NaiveDate), String> = HashMap::new();
    let mut rows = Vec::with_capacity(upload.rows.len());
    for row in &upload.rows {
        let (code, date_text, price_text) = (&row.cells[0], &row.cells[1], &row.cells[2]);
        let instrument = instruments.get(code);
        if instrument.is_none() {
            let m = if code.is_empty() {
                "is missing".to_owned()
            } else {
                format!("unknown instrument {code:?}")
            };
            errors.push(FieldError::new(row.label.field("instrument"), m));
        }
        let date = market::parse_date(date_text)
            .map_err(|m| errors.push(FieldError::new(row.label.field("date"), m)))
            .ok();
        let price = match instrument {
            Some(i) => market::parse_price(price_text, i.price_scale),
            // Still say what is wrong with the price itself, whatever the instrument.
            // (no scale to check against: only that it is a positive decimal).
            None => market::parse_decimal(price_text).and_then(|v| {
                if v > rust_decimal::Decimal::ZERO {
                    Ok(0)
                } else {
                    Err(format!("{price_text:?} must be greater than zero"))
                }
            }),
        }
        .map_err(|m| errors.push(FieldError::new(row.label.field("price"), m)))
        .ok();
        if let (Some(_), Some(date)) = (instrument, date) {
            match seen.get(&(code.clone(), date)) {
                Some(first) => errors.push(FieldError::new(
                    row.label.field("date"),
                    format!("duplicates {first}: the same instrument and date twice"),
                )),
                None => {
                    seen.insert((code.clone(), date), row.label.name());
                }
            }
            if let Some(price) = price {
                rows.push(PriceRow {
                    instrument: code.clone(),
                    date,
                    price,
                });
            }
        }
    }
    if !errors.is_empty() {
        return Err(rows_refused(
            errors,
            if upload.csv { "CSV file" } else { "prices" },
        ));
    }
    Ok(rows)
}

/// Upload prices, all or nothing (platform writers). JSON `{"prices":[{"instrument","date",
/// "price"}]}` or CSV (`Content-Type: text/csv`, header `instrument,date,price`). A price
/// replaces an earlier one of the same instrument and date unless that date's end of day has
/// finished (409 naming the dates).
#[utoipa::path(
    post, path = "/v1/prices", tag = "market data",
    request_body(content(
        (PriceUpload = "application/json", example = json!({"prices": [
            {"instrument": "JP90C000AAA1", "date": "2026-11-24", "price": "12345"},
            {"instrument": "JP90C000BBB2", "date": "2026-11-24", "price": "9876"}
        ]})),
        (String = "text/csv", example = json!("instrument,date,price\nJP90C000AAA1,2026-11-24,12345\nJP90C000BBB2,2026-11-24,9876\n")),
    )),
    responses(
        (status = 200, body = UploadCounts),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "End of day has finished for a date", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Over 100000 rows or the body limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Every bad row named", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn upload_prices(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    market_data_writer(&caller)?;
    Query::parse(&req, &[])?;
    let upload = read_upload(&req, payload, "prices", &PRICE_COLUMNS).await?;
    if let Some(extra) = upload.top.keys().next() {
        return Err(Problem::invalid_field(
            extra,
            "unknown field; expected prices",
        ));
    }
    let rows = check_prices(&state, upload).await?;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    let counts = wraps::eod::prices::upload(&txn, &rows, &caller.principal.client_id, now)
        .await
        .map_err(Problem::from)?;
    let first = rows.iter().map(|r| r.date).min();
    let last = rows.iter().map(|r| r.date).max();
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "prices.upload",
            target_tenant_id: None,
            target_type: "prices",
            target_id: format!(
                "{}..{}",
                first.map(|d| d.to_string()).unwrap_or_default(),
                last.map(|d| d.to_string()).unwrap_or_default()
            ),
            detail: json!({
                "rows": rows.len(),
                "inserted": counts.inserted,
                "replaced": counts.replaced,
                "first_date": first,
                "last_date": last,
            }),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(counts))
}

/// List prices in (instrument, date) order (any authenticated caller).
#[utoipa::path(
    get, path = "/v1/prices", tag = "market data",
    params(
        ("instrument" = Option<String>, Query, description = "One instrument's prices (404 if unknown)"),
        ("from" = Option<NaiveDate>, Query, description = "On or after this date"),
        ("to" = Option<NaiveDate>, Query, description = "On or before this date"),
        ("limit" = Option<u64>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, body = Page<StoredPrice>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown instrument", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_prices(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReadOwnData)?;
    let q = Query::parse(&req, &["instrument", "from", "to", "limit", "cursor"])?;
    let instrument = q.get("instrument");
    let from = q.date("from")?;
    let to = q.date("to")?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(Problem::bad_parameter("to", "must not be before from"));
    }
    let after = q
        .get("cursor")
        .map(|c| {
            c.rsplit_once('/')
                .and_then(|(code, date)| {
                    let date = market::parse_date(date).ok()?;
                    market::check_code(code).ok()?;
                    Some((code.to_owned(), date))
                })
                .ok_or_else(|| Problem::bad_parameter("cursor", "not a cursor this API gave"))
        })
        .transpose()?;
    let limit = q.limit(100, 1000)?;
    // An unknown instrument is a 404, not an empty list: a misspelt code must not look empty.
    if let Some(code) = instrument {
        find(&state, code).await?;
    }
    let (items, next_cursor) =
        store::list_prices(&state.db, instrument, from, to, after, limit).await?;
    Ok(HttpResponse::Ok().json(Page { items, next_cursor }))
}
