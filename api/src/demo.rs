//! `wrapd demo`: a year of the platform on the configured database (the embedded SQLite file
//! by default), then what its users would look at.
//!
//! 1. **Seeds** ([`crate::book`], the builder `wrapd bench eod` uses): a platform; two
//!    distributors, a regional bank (tiered fees, all five strategies, a monthly platform
//!    fee) and an independent advisor (a flat fee with a performance fee, three
//!    strategies); two managers; five strategies from a bond fund to global equity over
//!    twelve funds whose prices move every day (seeded, so the same every run); customers
//!    with one to four wraps each (most one, 1.55 on average), half of the wraps with a
//!    monthly contribution plan, one in three with a goal. Wraps open with cash, invested by
//!    the first end of day.
//! 2. **API clients**: an admin client for the platform and each partner; their secrets are
//!    printed once (only argon2 hashes are stored), so `wrapd serve` on the same database
//!    answers them.
//! 3. **A year of end of day**, 2025-01-01 to 2025-12-31, with the same run and progress bar
//!    as `wrapd eod`; goal probabilities are recomputed at month ends
//!    (`[goals] recompute = "month_end"`), the rest every day.
//! 4. **Prints**, fetched through the API's own handlers in process with the clients' tokens
//!    (so each is what the same GET returns from `wrapd serve`): AUM by distributor and by
//!    strategy, the year's fee-split report with its ledger reconciliation, one customer's
//!    statement and its wraps' goals; then the commands that fetch them again.
//!
//! The demo refuses a database that already has tenants: it never mixes with real data.

use std::time::Instant;

use actix_web::test as service;
use actix_web::{App, web};
use chrono::{NaiveDate, Utc};
use ledger::Ledger;
use serde_json::{Value as Json, json};
use tenants::{ApiClient, NewClient, Role};
use uuid::Uuid;

use crate::book::{Book, InstrumentSpec, Partner, Shape, StrategySpec};
use crate::cli::DemoArgs;
use crate::error::Error;
use crate::settings::Settings;
use ledger::sql::{get, query};
use wraps::eod::{Actor, RunGuard, RunLock};

/// The demo's year.
pub const FIRST: NaiveDate = ymd(2025, 1, 1);
pub const LAST: NaiveDate = ymd(2025, 12, 31);
/// Most wraps the demo makes.
pub const MAX_WRAPS: u64 = 100_000;

const fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(y, m, d) {
        Some(d) => d,
        None => NaiveDate::MIN,
    }
}

fn other(e: impl std::fmt::Display) -> Error {
    Error::Other(format!("demo: {e}"))
}

/// The demo's book: two distributors, two managers, five strategies over twelve funds.
pub fn shape() -> Shape {
    // (code, name, price, daily move ± bp, drift bp a day)
    let funds: [(&str, &str, i64, i64, i64); 12] = [
        ("JP90DEMOJGB1", "Japan Government Bond Index", 10_000, 15, 0),
        ("JP90DEMOJCB1", "Japan Corporate Bond", 10_000, 20, 1),
        ("JP90DEMOGBH1", "Global Bond (yen hedged)", 9_800, 30, 0),
        ("JP90DEMOTPX1", "TOPIX Index", 21_000, 150, 3),
        ("JP90DEMON225", "Nikkei 225 Index", 35_000, 170, 3),
        ("JP90DEMOUSE1", "US Equity Index", 28_000, 160, 4),
        ("JP90DEMOEUE1", "European Equity Index", 15_000, 150, 2),
        ("JP90DEMOEME1", "Emerging Markets Equity", 12_000, 200, 2),
        ("JP90DEMOREI1", "J-REIT Index", 18_000, 120, 1),
        ("JP90DEMOGRE1", "Global REIT", 11_000, 140, 1),
        ("JP90DEMOGLD1", "Gold (yen)", 16_000, 110, 2),
        ("JP90DEMOACW1", "All Country World Equity", 24_000, 140, 3),
    ];
    let instruments = funds
        .iter()
        .map(|(code, name, price, mv, drift)| InstrumentSpec {
            code: (*code).to_owned(),
            name: (*name).to_owned(),
            price: *price,
            max_move_bp: *mv,
            drift_bp: *drift,
        })
        .collect();
    let strategy =
        |code: &str, name: &str, manager, risk, mu, sigma, instruments: &[usize]| StrategySpec {
            code: code.to_owned(),
            name: name.to_owned(),
            manager,
            risk_level: risk,
            expected_return_annual: mu,
            volatility_annual: sigma,
            instruments: instruments.to_vec(),
            cash_percent: 3,
        };
    let strategies = vec![
        strategy("STABLE", "Stable Income", 0, 1, "0.015", "0.03", &[0, 1, 2]),
        strategy(
            "BALANCED",
            "Balanced",
            0,
            3,
            "0.04",
            "0.09",
            &[0, 2, 3, 5, 8],
        ),
        strategy("GROWTH", "Growth", 0, 4, "0.06", "0.15", &[3, 4, 5, 6, 7]),
        strategy(
            "GLOBALEQ",
            "Global Equity",
            1,
            5,
            "0.07",
            "0.18",
            &[5, 6, 7, 11],
        ),
        strategy(
            "REALASSET",
            "Real Assets",
            1,
            4,
            "0.05",
            "0.14",
            &[8, 9, 10, 2],
        ),
    ];
    let partner = |name: &str, display: &str| Partner {
        name: name.to_owned(),
        display_name: display.to_owned(),
        terms: None,
        offers: Vec::new(),
        platform_fee: None,
    };
    let bank = Partner {
        terms: Some(json!({
            "effective_date": "2024-01-01",
            "management_fee": { "kind": "tiered", "tiers": [
                { "up_to": "10000000", "rate_annual": "0.011" },
                { "up_to": "30000000", "rate_annual": "0.009" },
                { "up_to": null, "rate_annual": "0.007" }
            ] },
            "consumption_tax_rate": "0.10",
            "split": { "channel": "0.5", "manager": "0.35", "platform": "0.15" },
            "billing_period": "monthly",
        })),
        platform_fee: Some(300_000),
        ..partner("seto-bank", "Seto Regional Bank")
    };
    let advisor = Partner {
        terms: Some(json!({
            "effective_date": "2024-01-01",
            "management_fee": { "kind": "flat", "rate_annual": "0.0095" },
            "consumption_tax_rate": "0.10",
            "split": { "channel": "0.45", "manager": "0.4", "platform": "0.15" },
            "performance_fee": {
                "rate": "0.1", "high_water_mark": true, "crystallisation": "yearly",
                "split": { "channel": "0.3", "manager": "0.6", "platform": "0.1" }
            },
            "billing_period": "quarterly",
        })),
        offers: vec![1, 2, 3],
        platform_fee: Some(120_000),
        ..partner("aoba-advisors", "Aoba Independent Advisors")
    };
    Shape {
        label: "demo",
        platform_name: "demo-platform".to_owned(),
        distributors: vec![bank, advisor],
        managers: vec![
            partner("kanto-am", "Kanto Asset Management"),
            partner("hikari-quant", "Hikari Quant Partners"),
        ],
        strategies,
        instruments,
        opening: FIRST.pred_opt().unwrap_or(FIRST),
        price_days: FIRST.iter_days().take_while(|d| *d <= LAST).collect(),
        wraps_hold_units: false,
        wrap_cash_thousands: (300, 3_000),
        customer_cash_thousands: (500, 2_000),
        goal_every: 3,
    }
}

/// A client made for the demo.
struct Client {
    who: String,
    tenant_id: Uuid,
    client_id: String,
    secret: String,
}

async fn make_client(
    db: &sea_orm::DatabaseConnection,
    who: &str,
    tenant_id: Uuid,
) -> Result<Client, Error> {
    let (client, secret) = ApiClient::create(
        tenant_id,
        &NewClient {
            name: format!("demo {who} admin"),
            role: Role::Admin,
        },
        Utc::now(),
    )
    .map_err(other)?;
    tenants::store::insert_client(db, &client)
        .await
        .map_err(other)?;
    Ok(Client {
        who: who.to_owned(),
        tenant_id,
        client_id: client.client_id,
        secret: secret.expose().to_owned(),
    })
}

/// A console user made for the demo: how to sign in (its password is printed once).
struct Login {
    tenant: String,
    email: String,
    role: tenants::users::UserRole,
    password: String,
}

/// The bank's first customers put in the demo branch under its adviser, with the demo
/// customer.
const BRANCH_CUSTOMERS: u64 = 20;

/// Console users for each role, so `wrapd serve` after the demo shows a populated console: the
/// platform's operator; the bank's head office and an adviser of its branch 001, where the
/// demo customer and the bank's first customers are put; the first manager's staff.
async fn make_console_users(
    db: &sea_orm::DatabaseConnection,
    book: &Book,
) -> Result<Vec<Login>, Error> {
    use tenants::users::{self, Access, NewUser, Password, UserRole};
    let now = Utc::now();
    let bank = tenants::store::get_tenant(db, book.distributors[0])
        .await
        .map_err(other)?;
    let branch = tenants::branches::prepare(&bank, "001", "本店営業部", now).map_err(other)?;
    tenants::branches::insert_branch(db, &branch)
        .await
        .map_err(other)?;
    let people = [
        (
            book.platform,
            "ops@platform.demo",
            "運用 太郎",
            UserRole::Operator,
            None,
        ),
        (
            bank.id,
            "head@bank.demo",
            "本部 一郎",
            UserRole::HeadOffice,
            None,
        ),
        (
            bank.id,
            "adviser@bank.demo",
            "支店 花子",
            UserRole::Adviser,
            Some(branch.id),
        ),
        (
            book.managers[0],
            "pm@manager.demo",
            "運用 次郎",
            UserRole::Manager,
            None,
        ),
    ];
    let mut logins = Vec::new();
    let mut adviser = None;
    for (tenant_id, email, name, role, branch_id) in people {
        let tenant = tenants::store::get_tenant(db, tenant_id)
            .await
            .map_err(other)?;
        let password = tenants::client::generate_secret().expose().to_owned();
        let new = NewUser {
            name: name.to_owned(),
            email: email.to_owned(),
            role,
            access: Access::Write,
            password: Password::new(password.clone()),
            branch_id,
        };
        let (user, hash) = users::prepare(&tenant, &new, now).map_err(other)?;
        users::insert_user(db, &user, &hash).await.map_err(other)?;
        if role == UserRole::Adviser {
            adviser = Some(user);
        }
        logins.push(Login {
            tenant: tenant.name,
            email: email.to_owned(),
            role,
            password,
        });
    }
    // The branch's customers, by the one assignment rule.
    use wraps::customers::{Scope, check_assignment, store};
    let shown = demo_customer(db, bank.id).await?;
    let (first, _) = store::customers(db, bank.id, Scope::All, None, None, BRANCH_CUSTOMERS)
        .await
        .map_err(other)?;
    let mut ids = vec![shown];
    ids.extend(first.iter().map(|c| c.id).filter(|id| *id != shown));
    check_assignment(&branch, adviser.as_ref()).map_err(other)?;
    for id in ids {
        store::set_assignment(
            db,
            bank.id,
            id,
            branch.id,
            adviser.as_ref().map(|a| a.id),
            now,
        )
        .await
        .map_err(other)?;
    }
    Ok(logins)
}

/// GETs `uri` with `token` from the in-process service; the JSON body, or why not.
macro_rules! api_get {
    ($app:expr, $token:expr, $uri:expr) => {{
        let uri: String = $uri;
        let req = service::TestRequest::get()
            .uri(&uri)
            .insert_header(("Authorization", format!("Bearer {}", $token)))
            .to_request();
        let resp = service::call_service($app, req).await;
        let status = resp.status();
        let body = service::read_body(resp).await;
        if status.is_success() {
            serde_json::from_slice::<Json>(&body).map_err(other)
        } else {
            Err(other(format!(
                "GET {uri} answered {status}: {}",
                String::from_utf8_lossy(&body)
            )))
        }
    }};
}

/// Runs the demo.
pub async fn run(settings: &Settings, args: &DemoArgs) -> Result<(), Error> {
    if args.wraps == 0 || args.wraps > MAX_WRAPS {
        return Err(Error::Usage(format!(
            "--wraps must be from 1 to {MAX_WRAPS}"
        )));
    }
    let clock = Instant::now();
    let db = crate::db::connect(&settings.database.url).await?;
    crate::db::prepare(&db, &settings.database).await?;
    let existing = query(&db, "SELECT COUNT(*) FROM tenants".to_owned(), vec![]).await?;
    if existing
        .first()
        .map(|r| get::<i64>(r, 0))
        .transpose()?
        .unwrap_or(0)
        > 0
    {
        return Err(Error::Usage(format!(
            "the database {} already has tenants; the demo needs an empty one (remove the \
             file, or pass --database-url sqlite://demo.db?mode=rwc)",
            crate::logging::redact_url(&settings.database.url)
        )));
    }
    let ledger = Ledger::new(db.clone());
    let shape = shape();
    eprintln!("Seeding {} wraps ...", args.wraps);
    let book = crate::book::build(&db, &ledger, &shape, args.wraps, args.seed, |_| {}).await?;
    let mut clients = vec![make_client(&db, "platform", book.platform).await?];
    for (p, id) in shape.distributors.iter().zip(&book.distributors) {
        clients.push(make_client(&db, &p.display_name, *id).await?);
    }
    for (p, id) in shape.managers.iter().zip(&book.managers) {
        clients.push(make_client(&db, &p.display_name, *id).await?);
    }
    let logins = make_console_users(&db, &book).await?;
    eprintln!(
        "Seeded {} customers and {} wraps in {:.1} s. Running end of day {FIRST} to {LAST} \
         (goals recomputed at month ends) ...",
        book.customers,
        book.wraps,
        clock.elapsed().as_secs_f64()
    );
    let year = Instant::now();
    let actor = Actor {
        tenant_id: book.platform,
        client_id: "wrapd-demo".to_owned(),
        request_id: format!("demo:{}", Uuid::now_v7()),
    };
    let lock = RunLock::with(
        settings.calendar.calendar()?,
        std::sync::Arc::new(wraps::eod::trading::SimulatedVenue),
    );
    // Goals at month ends: a daily recomputation of every goal costs more than the rest of
    // the day (docs/BENCHMARKS.md, "Goals at end of day"); 31 December is a month end, so
    // the year's last figures are there to show.
    lock.set_goal_cadence(wraps::eod::GoalCadence::MonthEnd);
    lock.set_database_url(&settings.database.url);
    let guard = RunGuard::acquire(&lock, &db).await.map_err(other)?;
    let year_run = crate::eod_cli::run_dates(&db, &ledger, FIRST, LAST, &actor, &guard).await;
    guard.release().await;
    year_run.map_err(other)?;
    let eod_seconds = year.elapsed().as_secs_f64();
    eprintln!("A year of end of day took {eod_seconds:.1} s.");
    show(settings, &db, &book, &clients, &logins).await?;
    println!(
        "\nDone in {:.1} s ({} customers, {} wraps; end of day {eod_seconds:.1} s).",
        clock.elapsed().as_secs_f64(),
        book.customers,
        book.wraps
    );
    Ok(())
}

/// Prints what the partners would look at, fetched through the API in process.
async fn show(
    settings: &Settings,
    db: &sea_orm::DatabaseConnection,
    book: &Book,
    clients: &[Client],
    logins: &[Login],
) -> Result<(), Error> {
    // The in-process service signs its own tokens. On SQLite without a configured key it uses
    // the development key kept beside the database (as `wrapd serve` will); elsewhere, with
    // none configured, a key of this run only (`wrapd serve` there needs a configured key).
    let mut settings = settings.clone();
    if !settings.database.url.starts_with("sqlite:")
        && settings.auth.key_pem.is_empty()
        && settings.auth.key_file.is_empty()
    {
        settings.auth.key_pem = tenants::jwt::generate_dev_key().map_err(other)?;
    }
    let settings = &settings;
    let (state, eod_lock) = crate::server::app_data(settings, db.clone())?;
    let app = service::init_service(
        App::new()
            .app_data(state)
            .app_data(eod_lock)
            .app_data(web::PayloadConfig::new(settings.server.body_limit_bytes))
            .configure(crate::server::routes),
    )
    .await;
    let mut tokens = Vec::new();
    for c in clients {
        let req = service::TestRequest::post()
            .uri("/oauth/token")
            .set_form([
                ("grant_type", "client_credentials"),
                ("client_id", c.client_id.as_str()),
                ("client_secret", c.secret.as_str()),
            ])
            .to_request();
        let body: Json = service::call_and_read_body_json(&app, req).await;
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| other(format!("no token for {}: {body}", c.who)))?
            .to_owned();
        tokens.push(token);
    }
    let platform = &tokens[0];
    let bank = &tokens[1];
    // Tenant id → display name, for the report lines that carry ids.
    let names: Vec<(Uuid, String)> = clients
        .iter()
        .map(|c| (c.tenant_id, c.who.clone()))
        .collect();

    println!("\n== Assets under management on {LAST} (platform view) ==");
    for group in ["distributor", "strategy"] {
        let aum = api_get!(
            &app,
            platform,
            format!("/v1/reports/aum?as_of={LAST}&group_by={group}")
        )?;
        println!("\nBy {group}:");
        for g in aum["groups"].as_array().into_iter().flatten() {
            println!(
                "  {:<32} {:>6} wraps  {:>18} {}",
                g["name"].as_str().unwrap_or("?"),
                g["wraps"],
                yen(&g["aum"]),
                g["currency"].as_str().unwrap_or("")
            );
        }
        for t in aum["totals"].as_array().into_iter().flatten() {
            println!(
                "  {:<32} {:>6} wraps  {:>18} {}",
                "Total",
                t["wraps"],
                yen(&t["aum"]),
                t["currency"].as_str().unwrap_or("")
            );
        }
    }

    println!("\n== Fee split {FIRST} to {LAST} (platform view) ==");
    let split = api_get!(
        &app,
        platform,
        format!("/v1/reports/fee-split?from={FIRST}&to={LAST}")
    )?;
    println!(
        "  {:<26} {:<14} {:>6} {:>14} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "distributor",
        "strategy",
        "wraps",
        "average AUM",
        "management",
        "performance",
        "channel",
        "manager",
        "platform"
    );
    let lines = split["lines"].as_array().cloned().unwrap_or_default();
    let totals = split["totals"].as_array().cloned().unwrap_or_default();
    for (i, l) in lines.iter().chain(totals.iter()).enumerate() {
        let (distributor, strategy) = if i < lines.len() {
            let id = l["distributor_tenant_id"].as_str().unwrap_or_default();
            (
                names
                    .iter()
                    .find(|(t, _)| t.to_string() == id)
                    .map_or("?", |(_, n)| n.as_str()),
                l["strategy"].as_str().unwrap_or("?"),
            )
        } else {
            ("Total", "")
        };
        println!(
            "  {:<26} {:<14} {:>6} {:>14} {:>12} {:>12} {:>12} {:>12} {:>12}",
            distributor,
            strategy,
            l["wraps"],
            yen(&l["average_aum"]),
            yen(&l["management_fee"]),
            yen(&l["performance_fee"]),
            yen(&l["channel"]),
            yen(&l["manager"]),
            yen(&l["platform"]),
        );
    }
    println!(
        "  Reconciled with the ledger's fee postings: {}",
        split["reconciled"]
    );
    let invoices = api_get!(
        &app,
        platform,
        format!("/v1/reports/invoices?from={FIRST}&to={LAST}")
    )?;
    let n_invoices = invoices.as_array().map_or(0, Vec::len);
    println!("  Platform invoices to distributors: {n_invoices}");

    // One of the bank's customers with a goal on a wrap.
    let customer = demo_customer(db, book.distributors[0]).await?;
    println!("\n== Customer {customer} of Seto Regional Bank ==");
    let statement = api_get!(
        &app,
        bank,
        format!("/v1/customers/{customer}/statement?from={FIRST}&to={LAST}")
    )?;
    println!("\nStatement {FIRST} to {LAST}:");
    println!(
        "  {:<14} {:>12} {:>12} {:>10} {:>9} {:>10} {:>11} {:>12} {:>9}",
        "wrap",
        "opening",
        "contributed",
        "withdrawn",
        "fees",
        "realised",
        "unrealised",
        "closing",
        "TWR"
    );
    let rows = statement["wraps"].as_array().cloned().unwrap_or_default();
    let totals = statement["totals"].as_array().cloned().unwrap_or_default();
    for (i, w) in rows.iter().chain(totals.iter()).enumerate() {
        let name = if i < rows.len() {
            w["name"].as_str().unwrap_or("?").to_owned()
        } else {
            "Total".to_owned()
        };
        println!(
            "  {:<14} {:>12} {:>12} {:>10} {:>9} {:>10} {:>11} {:>12} {:>9}",
            name,
            yen(&w["opening_value"]),
            yen(&w["contributions"]),
            yen(&w["withdrawals"]),
            yen(&w["fees"]["total"]),
            yen(&w["realised_gain"]),
            yen(&w["unrealised_gain_change"]),
            yen(&w["closing_value"]),
            pct(&w["time_weighted_return"]),
        );
    }
    println!(
        "  Adds up (closing - opening = flows - fees + gain): {}",
        totals.iter().all(|t| t["check"]["balanced"] == true)
    );
    println!("\nWraps now and their goals:");
    let page = api_get!(&app, bank, format!("/v1/customers/{customer}/wraps"))?;
    for w in page["items"].as_array().into_iter().flatten() {
        let id = w["id"].as_str().unwrap_or_default().to_owned();
        let view = api_get!(&app, bank, format!("/v1/wraps/{id}"))?;
        let returns = api_get!(
            &app,
            bank,
            format!("/v1/wraps/{id}/returns?from={FIRST}&to={LAST}")
        )?;
        println!(
            "  {:<14} value now {:>12}  time-weighted return {FIRST} to {LAST} {:>8}",
            w["name"].as_str().unwrap_or("?"),
            yen(&view["valuation"]["value"]),
            pct(&returns["time_weighted"]["cumulative"]),
        );
        if w["goal"].is_object() {
            let goal = api_get!(&app, bank, format!("/v1/wraps/{id}/goal"))?;
            let last = goal["fan"]
                .as_array()
                .and_then(|f| f.last())
                .cloned()
                .unwrap_or_default();
            println!(
                "    goal {:?}: {} by {}; probability {} (end of day {}: {}); at the target date \
                 median {}, 10th to 90th percentile {} to {}",
                w["goal"]["name"].as_str().unwrap_or("?"),
                yen(&w["goal"]["target_amount"]),
                w["goal"]["target_date"].as_str().unwrap_or("?"),
                goal["probability"].as_str().unwrap_or("?"),
                goal["end_of_day"]["date"].as_str().unwrap_or("-"),
                goal["end_of_day"]["probability"].as_str().unwrap_or("-"),
                yen(&last["p50"]),
                yen(&last["p10"]),
                yen(&last["p90"]),
            );
        }
    }

    println!("\n== Fetch it again ==");
    println!("  wrapd serve        # same database; then, e.g. for the platform:");
    let p = &clients[0];
    println!(
        "  TOKEN=$(curl -s -d grant_type=client_credentials -d client_id={} -d client_secret={} \\\n      http://127.0.0.1:8080/oauth/token | jq -r .access_token)",
        p.client_id, p.secret
    );
    println!(
        "  curl -H \"Authorization: Bearer $TOKEN\" 'http://127.0.0.1:8080/v1/reports/aum?as_of={LAST}&group_by=distributor'"
    );
    println!(
        "  curl -H \"Authorization: Bearer $TOKEN\" 'http://127.0.0.1:8080/v1/reports/fee-split?from={FIRST}&to={LAST}&format=csv'"
    );
    println!(
        "  # the statement above, with the bank's credentials:\n  curl -H \"Authorization: Bearer $BANK_TOKEN\" 'http://127.0.0.1:8080/v1/customers/{customer}/statement?from={FIRST}&to={LAST}'"
    );
    println!("\n  API clients (secrets shown only now):");
    for c in clients {
        println!(
            "    {:<28} tenant {}  client_id {}  client_secret {}",
            c.who, c.tenant_id, c.client_id, c.secret
        );
    }
    println!(
        "\n  Console users (http://127.0.0.1:8080/console; passwords shown only now; the adviser \
         sees the customers of branch 001):"
    );
    for l in logins {
        println!(
            "    {:<12} tenant {:<28} email {:<20} password {}",
            l.role.as_str(),
            l.tenant,
            l.email,
            l.password
        );
    }
    Ok(())
}

/// The bank's customer with the most wraps, one of them with a goal (the first by id).
async fn demo_customer(db: &sea_orm::DatabaseConnection, bank: Uuid) -> Result<Uuid, Error> {
    let mut pa = ledger::sql::Params::new(sea_orm::ConnectionTrait::get_database_backend(db));
    let q = format!(
        "SELECT customer_id FROM wraps WHERE tenant_id = {} GROUP BY customer_id \
         HAVING COUNT(goal_name) > 0 ORDER BY COUNT(*) DESC, customer_id LIMIT 1",
        pa.push(bank)
    );
    let rows = query(db, q, pa.values).await?;
    rows.first()
        .map(|r| get::<Uuid>(r, 0))
        .transpose()?
        .ok_or_else(|| other("no customer of the bank has a goal"))
}

/// `"1234567.89"` → `1,234,567`: whole yen with thousands separators, for the screen.
fn yen(v: &Json) -> String {
    let s = match v {
        Json::String(s) => s.clone(),
        Json::Number(n) => n.to_string(),
        _ => return "-".to_owned(),
    };
    let int = s.split_once('.').map_or(s.as_str(), |(int, _)| int);
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    // Whole yen on screen (truncated); the API gives the exact figure.
    format!("{sign}{out}")
}

/// A decimal share as a percentage with two decimals, `-` when absent.
fn pct(v: &Json) -> String {
    v.as_str()
        .and_then(|s| s.parse::<rust_decimal::Decimal>().ok())
        .map_or_else(
            || "-".to_owned(),
            |d| format!("{:.2}%", d * rust_decimal::Decimal::ONE_HUNDRED),
        )
}

#[cfg(test)]
mod tests {
    use chrono::Datelike;

    use super::{FIRST, Json, LAST, json, shape, yen, ymd};

    #[test]
    fn yen_groups_thousands() {
        assert_eq!(yen(&json!("1234567")), "1,234,567");
        assert_eq!(yen(&json!("-1000.50")), "-1,000");
        assert_eq!(yen(&json!("999")), "999");
        assert_eq!(yen(&json!(12)), "12");
        assert_eq!(yen(&Json::Null), "-");
    }

    #[test]
    fn the_shape_is_two_distributors_two_managers_five_strategies() {
        let s = shape();
        assert_eq!(s.distributors.len(), 2);
        assert_eq!(s.managers.len(), 2);
        assert_eq!(s.strategies.len(), 5);
        assert_eq!(s.price_days.len(), 365);
        assert_eq!(s.opening, ymd(2024, 12, 31));
        assert_eq!(FIRST.year(), LAST.year());
    }
}
