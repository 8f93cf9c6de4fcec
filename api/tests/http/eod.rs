//! End of day through the HTTP API and the `wrapd eod` command, on both databases: the date
//! rules, checkpoints, plans, snapshots worked out by hand, and the checks that stop a day.

use std::process::Command;
use std::time::Duration;

use chrono::{Datelike, Days, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, Statement, Value as SqlValue};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{Res, TestServer};
use crate::customers::{deposit, make_customer};
use crate::on_each_backend;
use crate::wraps::{Market, market, open_wrap};

pub(crate) const FUND: &str = "JP90C000AAA1";

/// Tables end of day writes (or must leave alone), to compare before and after.
const TABLES: &[&str] = &[
    "ledger_entries",
    "ledger_postings",
    "eod_runs",
    "eod_steps",
    "plan_runs",
    "wrap_snapshots",
    "wrap_returns",
    "wrap_goal_results",
    "wrap_movements",
    "rebalance_decisions",
    "trade_orders",
    "trade_netting",
    "block_orders",
    "trade_fills",
    "trade_allocations",
    "wrap_trading",
    "fee_accruals",
    "wrap_fee_state",
    "fee_collections",
    "individual_costs",
    "realised_gains",
    "audit_log",
];

async fn counts(server: &TestServer) -> Vec<i64> {
    let mut out = Vec::new();
    for t in TABLES {
        out.push(server.count_rows(t).await);
    }
    out
}

/// The first date from today (Tokyo) whose day of month is at most 28: plans may only start
/// today or later, and run on days 1–28.
pub(crate) fn first_day() -> NaiveDate {
    let mut d = api::money::today(Utc::now());
    while d.day() > 28 {
        d = d + Days::new(1);
    }
    d
}

pub(crate) fn plus(d: NaiveDate, n: u64) -> NaiveDate {
    d + Days::new(n)
}

/// Whether a month ends from `from` to `to` (billing collects fees then, changing cash).
fn month_end_within(from: NaiveDate, to: NaiveDate) -> bool {
    from.iter_days()
        .take_while(|d| *d <= to)
        .any(|d| plus(d, 1).month() != d.month())
}

pub(crate) async fn start(server: &TestServer, token: &str, body: Value) -> Res {
    server.post(token, "/v1/operations/eod", Some(body)).await
}

/// Polls the status of `date` until it is finished, failed or awaiting fills (with
/// instructions open: a date whose fills are all in is about to go on).
pub async fn wait(server: &TestServer, date: NaiveDate) -> Value {
    let platform = server.token(&server.platform).await;
    // Up to three minutes: the suite runs many servers at once on two cores. A run that
    // stopped on an error leaves the date `running` with no step running: say so at once.
    let mut idle = 0;
    let mut body = Value::Null;
    for _ in 0..3_600 {
        let r = server
            .get(&platform, &format!("/v1/operations/eod/{date}"))
            .await;
        body = r.ok(200).clone();
        if body["status"] == "finished"
            || body["status"] == "failed"
            || (body["status"] == "awaiting_fills" && body["awaiting_fills"] != 0)
        {
            // The background task releases its lock just after the last write.
            tokio::time::sleep(Duration::from_millis(50)).await;
            return body;
        }
        let stepping = body["steps"]
            .as_array()
            .is_some_and(|s| s.iter().any(|x| x["status"] == "running"));
        idle = if body["status"] == "running" && !stepping {
            idle + 1
        } else {
            0
        };
        assert!(idle < 200, "end of day for {date} stopped: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("end of day for {date} did not end: {body}");
}

/// Runs `from..=to` through the API and waits for the last date.
pub async fn run_days(server: &TestServer, from: NaiveDate, to: NaiveDate) -> Value {
    let platform = server.token(&server.platform).await;
    let r = start(server, &platform, json!({ "date": from, "to": to })).await;
    let body = r.ok(202);
    assert_eq!(
        body["status_url"],
        format!("/v1/operations/eod/{from}"),
        "{body}"
    );
    assert_eq!(r.headers["location"], format!("/v1/operations/eod/{from}"));
    wait(server, to).await
}

/// Runs end of day from `from` to `to` through the library with `lock` (a venue or a goal
/// cadence of the test's own), as the platform.
pub async fn run_with(
    server: &TestServer,
    lock: &std::sync::Arc<wraps::eod::RunLock>,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<wraps::eod::DayOutcome> {
    // Tests run dates from today on: the library's runs use a simulated clock, as the test
    // servers do.
    lock.set_clock(wraps::clock::Clock::Simulated { start: first_day() });
    let guard = wraps::eod::RunGuard::acquire(lock, &server.db)
        .await
        .unwrap();
    let books = ledger::Ledger::new(server.db.clone());
    let actor = wraps::eod::Actor {
        tenant_id: server.platform.tenant_id,
        client_id: "test".into(),
        request_id: "test".into(),
    };
    let out = wraps::eod::run(
        &server.db,
        &books,
        from,
        to,
        &actor,
        &guard,
        &wraps::eod::Quiet,
    )
    .await
    .unwrap();
    guard.release().await;
    out
}

pub async fn rows(
    server: &TestServer,
    sql: &str,
    values: Vec<SqlValue>,
) -> Vec<sea_orm::QueryResult> {
    let b = server.db.get_database_backend();
    let sql = match b {
        sea_orm::DbBackend::Postgres => {
            let mut n = 0;
            sql.chars()
                .map(|c| {
                    if c == '?' {
                        n += 1;
                        format!("${n}")
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        }
        _ => sql.to_owned(),
    };
    server
        .db
        .query_all_raw(Statement::from_sql_and_values(b, sql, values))
        .await
        .unwrap()
}

/// The snapshot of `wrap` at `date`: (cash, units_value, nav, contributions, withdrawals, stale).
pub async fn snapshot(
    server: &TestServer,
    wrap: Uuid,
    date: NaiveDate,
) -> (i64, i64, i64, i64, i64, bool) {
    let r = rows(
        server,
        "SELECT cash, units_value, nav, contributions, withdrawals, stale_prices \
         FROM wrap_snapshots WHERE wrap_id = ? AND business_date = ?",
        vec![wrap.into(), date.into()],
    )
    .await;
    assert_eq!(r.len(), 1, "one snapshot of {wrap} at {date}");
    let g = |i| r[0].try_get_by_index::<i64>(i).unwrap();
    (
        g(0),
        g(1),
        g(2),
        g(3),
        g(4),
        r[0].try_get_by_index::<bool>(5).unwrap(),
    )
}

pub(crate) fn wrapd(url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wrapd"))
        .args(args)
        .args(["--database-url", url])
        .env("WRAP__DATABASE__AUTO_MIGRATE", "true")
        .env(
            "WRAP__CLOCK__SIMULATED_START",
            crate::common::simulated_start(),
        )
        .env("WRAP__LOG__LEVEL", "warn")
        .output()
        .unwrap()
}

/// `wrapd eod --date date` on `url`, aborted (as by `kill -9`) inside `step`, just before
/// the step commits (the `WRAP_EOD_ABORT_IN_STEP` fault hook).
pub(crate) fn wrapd_dying_in(url: &str, date: NaiveDate, step: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wrapd"))
        .args(["eod", "--date", &date.to_string(), "--database-url", url])
        .env("WRAP__DATABASE__AUTO_MIGRATE", "true")
        .env(
            "WRAP__CLOCK__SIMULATED_START",
            crate::common::simulated_start(),
        )
        .env("WRAP__LOG__LEVEL", "warn")
        .env("WRAP_EOD_ABORT_IN_STEP", step)
        .output()
        .unwrap()
}

/// The ledger handle of the test database, to post what end of day's later steps will
/// (a buy), or what must never happen (an unreconciled entry).
pub async fn account(
    books: &ledger::Ledger,
    tenant: Uuid,
    code: String,
    side: ledger::Side,
    asset: &str,
) -> ledger::Account {
    if let Some(a) = books.account_by_code(tenant, &code).await.unwrap() {
        return a;
    }
    books
        .create_account(&ledger::NewAccount {
            tenant_id: tenant,
            code,
            asset: asset.to_owned(),
            normal_side: side,
            no_negative: side == ledger::Side::Credit,
            metadata: json!({}),
        })
        .await
        .unwrap()
}

async fn contribute(server: &TestServer, m: &Market, wrap: Uuid, amount: &str) {
    server
        .post_idem(
            &m.bank,
            &format!("/v1/wraps/{wrap}/contributions"),
            &Uuid::now_v7().to_string(),
            json!({ "amount": amount }),
        )
        .await
        .ok(201);
}

// ---------------------------------------------------------------------------------------

on_each_backend!(three_days_and_the_date_rules, three_days_and_the_date_rules);
async fn three_days_and_the_date_rules(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let c = make_customer(&server, &m.bank, "C-001", 3).await;
    deposit(&server, &m.bank, c, "100000").await;
    let w = open_wrap(&server, &m, c).await;
    contribute(&server, &m, w, "60000").await;
    let platform = server.token(&server.platform).await;
    let d1 = first_day();

    // Before the first run: not started, and any date may come first.
    let r = server
        .get(&platform, &format!("/v1/operations/eod/{d1}"))
        .await;
    let s = r.ok(200);
    assert_eq!(s["status"], "not_started");
    assert!(s.get("next_date").is_none(), "{s}");
    let steps: Vec<&str> = s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, wraps::eod::STEPS);
    assert_eq!(
        steps,
        [
            "plans",
            "rebalance",
            "netting",
            "execution",
            "allocation",
            "valuation",
            "accrual",
            "billing",
            "returns",
            "goals",
            "checks"
        ]
    );

    // Day one, then two more in one request.
    let s = run_days(&server, d1, d1).await;
    assert_eq!(s["status"], "finished", "{s}");
    for step in s["steps"].as_array().unwrap() {
        assert_eq!(step["status"], "done", "{step}");
        assert!(step["elapsed_ms"].as_i64().unwrap() >= 0);
        assert!(step["started_at"].is_string() && step["finished_at"].is_string());
    }
    assert_eq!(s["steps"][5]["step"], "valuation", "{s}");
    assert_eq!(s["steps"][5]["detail"]["wraps"], 1, "{s}");
    assert_eq!(s["next_date"], plus(d1, 1).to_string());
    let s = run_days(&server, plus(d1, 1), plus(d1, 2)).await;
    assert_eq!(s["status"], "finished", "{s}");
    // Fees accrue from day one (1.1 % a year, eod_fees.rs works them out): 60,000 × 0.011 =
    // 660 a year, ÷ 365 = ¥1 posted (295/365 carried), tax 66 ÷ 365 < 1; day two owes ¥1:
    // 59,999 × 0.011 = 659.989, + 295 = 954.989 → ¥2 more (224.989 carried). NAV = cash −
    // fees owed.
    if !month_end_within(d1, plus(d1, 1)) {
        for (d, nav) in [(d1, 60000), (plus(d1, 1), 59999), (plus(d1, 2), 59997)] {
            let (cash, units, got, ..) = snapshot(&server, w, d).await;
            assert_eq!((cash, units, got), (60000, 0, nav));
        }
    }
    // The contribution of day one (made through the API today) counts on its date only.
    let today = api::money::today(Utc::now());
    if today == d1 {
        assert_eq!(snapshot(&server, w, d1).await.3, 60000);
        assert_eq!(snapshot(&server, w, plus(d1, 1)).await.3, 0);
    }

    // A gap, an earlier date, and a range starting past the next date are refused, naming
    // the expected date, and write nothing.
    let viewer = server
        .token_for_role(server.platform.tenant_id, "viewer")
        .await;
    let before = counts(&server).await;
    let expected = plus(d1, 3).to_string();
    for body in [
        json!({ "date": plus(d1, 4) }),
        json!({ "date": d1 - Days::new(1) }),
        json!({ "date": plus(d1, 5), "to": plus(d1, 6) }),
    ] {
        let r = start(&server, &platform, body.clone()).await;
        let p = r.problem(409);
        assert_eq!(p["errors"][0]["field"], "date", "{body}");
        assert!(
            p["detail"].as_str().unwrap().contains(&expected),
            "{}",
            r.text
        );
    }
    // Bad bodies: each names its field (or is a syntax error), nothing written.
    let r = start(
        &server,
        &platform,
        json!({ "date": plus(d1, 3), "to": plus(d1, 2) }),
    )
    .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "to");
    let r = start(&server, &platform, json!({ "date": "2026-02-30" })).await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "date");
    let r = start(&server, &platform, json!({ "to": plus(d1, 3) })).await;
    assert!(r.status.is_client_error(), "{}", r.text);
    assert!(r.text.contains("date"), "{}", r.text);
    let r = start(
        &server,
        &platform,
        json!({ "date": plus(d1, 3), "extra": 1 }),
    )
    .await;
    assert!(r.status.is_client_error(), "{}", r.text);
    assert!(r.text.contains("extra"), "{}", r.text);
    let r = start(
        &server,
        &platform,
        json!({ "date": plus(d1, 3), "to": plus(d1, 4000) }),
    )
    .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "to");
    let r = server.get(&platform, "/v1/operations/eod/yesterday").await;
    r.problem(400);
    let r = server
        .get(&platform, &format!("/v1/operations/eod/{d1}?verbose=1"))
        .await;
    r.problem(400);
    // Only platform writers run it; only the platform reads its status.
    start(&server, &viewer, json!({ "date": plus(d1, 3) }))
        .await
        .problem(403);
    start(&server, &m.bank, json!({ "date": plus(d1, 3) }))
        .await
        .problem(403);
    start(&server, &m.manager, json!({ "date": plus(d1, 3) }))
        .await
        .problem(403);
    server
        .get(&m.bank, &format!("/v1/operations/eod/{d1}"))
        .await
        .problem(403);
    server
        .get(&viewer, &format!("/v1/operations/eod/{d1}"))
        .await
        .ok(200);
    assert_eq!(counts(&server).await, before);

    // Re-running finished dates changes nothing: row counts and balances identical.
    let balances = server.get(&platform, "/v1/ledger/trial-balance").await.text;
    let s = run_days(&server, d1, plus(d1, 2)).await;
    assert_eq!(s["status"], "finished");
    assert_eq!(counts(&server).await, before);
    assert_eq!(
        server.get(&platform, "/v1/ledger/trial-balance").await.text,
        balances
    );

    // A finished date's prices are frozen; the next date's are not.
    let r = server
        .post(
            &platform,
            "/v1/prices",
            Some(json!({ "prices": [{ "instrument": FUND, "date": plus(d1, 1), "price": "10000" }] })),
        )
        .await;
    assert_eq!(r.problem(409)["errors"][0]["field"], "date");
    server
        .post(
            &platform,
            "/v1/prices",
            Some(json!({ "prices": [{ "instrument": FUND, "date": plus(d1, 3), "price": "10000" }] })),
        )
        .await
        .ok(200);
    server.stop().await;
}

on_each_backend!(
    plans_execute_skip_and_withdraw,
    plans_execute_skip_and_withdraw
);
async fn plans_execute_skip_and_withdraw(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let d1 = first_day();
    let day = d1.day();
    let plan = |w: Uuid, body: Value| {
        let server = &server;
        let token = m.bank.clone();
        async move {
            let r = server
                .post(&token, &format!("/v1/wraps/{w}/plans"), Some(body))
                .await;
            r.ok(201)["id"].as_str().unwrap().parse::<Uuid>().unwrap()
        }
    };
    // A: cash for the plan. B: not enough cash. C: a funded wrap with a 10 % withdrawal plan.
    // D: a 5,000 fixed withdrawal plan on an empty (open) wrap.
    let a = make_customer(&server, &m.bank, "C-A", 3).await;
    deposit(&server, &m.bank, a, "100000").await;
    let wa = open_wrap(&server, &m, a).await;
    let pa = plan(
        wa,
        json!({ "kind": "contribution", "amount": "30000", "day_of_month": day, "start_date": d1 }),
    )
    .await;
    let b = make_customer(&server, &m.bank, "C-B", 3).await;
    deposit(&server, &m.bank, b, "10000").await;
    let wb = open_wrap(&server, &m, b).await;
    let pb = plan(
        wb,
        json!({ "kind": "contribution", "amount": "50000", "day_of_month": day, "start_date": d1 }),
    )
    .await;
    let c = make_customer(&server, &m.bank, "C-C", 3).await;
    deposit(&server, &m.bank, c, "123457").await;
    let wc = open_wrap(&server, &m, c).await;
    contribute(&server, &m, wc, "123457").await;
    let pc = plan(
        wc,
        json!({ "kind": "withdrawal", "percentage": "0.1", "day_of_month": day, "start_date": d1 }),
    )
    .await;
    let wd = open_wrap(&server, &m, c).await;
    let pd = plan(
        wd,
        json!({ "kind": "withdrawal", "amount": "5000", "day_of_month": day, "start_date": d1 }),
    )
    .await;
    // Not due: another day of the month.
    let other = if day == 1 { 2 } else { day - 1 };
    plan(
        wa,
        json!({ "kind": "contribution", "amount": "1000", "day_of_month": other, "start_date": d1 }),
    )
    .await;

    let s = run_days(&server, d1, d1).await;
    assert_eq!(s["status"], "finished", "{s}");
    assert_eq!(
        s["steps"][0]["detail"],
        json!({ "due": 4, "executed": 2, "skipped": 2 })
    );

    let run = |plan: Uuid| {
        let server = &server;
        async move {
            let r = rows(
                server,
                "SELECT status, reason, amount, entry_id, movement_id FROM plan_runs \
                 WHERE plan_id = ? AND run_date = ?",
                vec![plan.into(), d1.into()],
            )
            .await;
            assert_eq!(r.len(), 1);
            (
                r[0].try_get_by_index::<String>(0).unwrap(),
                r[0].try_get_by_index::<Option<String>>(1).unwrap(),
                r[0].try_get_by_index::<Option<i64>>(2).unwrap(),
                r[0].try_get_by_index::<Option<Uuid>>(3).unwrap(),
                r[0].try_get_by_index::<Option<Uuid>>(4).unwrap(),
            )
        }
    };
    // A: executed, one entry; the customer's cash moved into the wrap, which is now active.
    let (status, reason, amount, entry, movement) = run(pa).await;
    assert_eq!(
        (status.as_str(), reason, amount),
        ("executed", None, Some(30000))
    );
    assert!(entry.is_some() && movement.is_none());
    let r = server.get(&m.bank, &format!("/v1/wraps/{wa}")).await;
    let v = r.ok(200);
    assert_eq!(v["wrap"]["status"], "active", "{v}");
    assert_eq!(v["valuation"]["cash"], "30000");
    let r = server.get(&m.bank, &format!("/v1/customers/{a}")).await;
    assert!(r.text.contains("70000"), "{}", r.text);
    let key = rows(
        &server,
        "SELECT idempotency_key, kind FROM ledger_entries WHERE id = ?",
        vec![entry.unwrap().into()],
    )
    .await;
    assert_eq!(
        key[0].try_get_by_index::<String>(0).unwrap(),
        format!("plan:{pa}:{d1}")
    );
    assert_eq!(
        key[0].try_get_by_index::<String>(1).unwrap(),
        "contribution"
    );
    assert_eq!(snapshot(&server, wa, d1).await.3, 30000);

    // B: skipped for lack of cash, with the reason; nothing moved, the wrap still open.
    let (status, reason, amount, entry, _) = run(pb).await;
    assert_eq!(status, "skipped");
    let reason = reason.unwrap();
    assert!(
        reason.contains("available cash of 10000 JPY is less than the plan's 50000 JPY"),
        "{reason}"
    );
    assert_eq!((amount, entry), (None, None));
    let r = server.get(&m.bank, &format!("/v1/wraps/{wb}")).await;
    assert_eq!(r.ok(200)["wrap"]["status"], "open");
    assert_eq!(snapshot(&server, wb, d1).await.2, 0);

    // C: a pending withdrawal of 10 % of 123,457, rounded down: 12,345.
    let (status, _, amount, _, movement) = run(pc).await;
    assert_eq!((status.as_str(), amount), ("executed", Some(12345)));
    let mv = rows(
        &server,
        "SELECT kind, status, amount FROM wrap_movements WHERE id = ? AND wrap_id = ?",
        vec![movement.unwrap().into(), wc.into()],
    )
    .await;
    assert_eq!(mv[0].try_get_by_index::<String>(0).unwrap(), "withdrawal");
    // On a business day the trading steps pay it out at once (the wrap holds the cash); on
    // other days it waits for the next business day.
    let paid_today = ledger::calendar::Calendar::japan().is_business_day(d1);
    assert_eq!(
        mv[0].try_get_by_index::<String>(1).unwrap(),
        if paid_today { "fulfilled" } else { "pending" }
    );
    assert_eq!(mv[0].try_get_by_index::<i64>(2).unwrap(), 12345);

    // D: the wrap holds nothing (and is not active).
    let (status, reason, ..) = run(pd).await;
    assert_eq!(status, "skipped");
    assert!(reason.unwrap().contains("open"));

    // The next day no plan is due; a month later they are again.
    let s = run_days(&server, plus(d1, 1), plus(d1, 1)).await;
    assert_eq!(
        s["steps"][0]["detail"],
        json!({ "due": 0, "executed": 0, "skipped": 0 })
    );
    assert_eq!(server.count_rows("plan_runs").await, 4);
    server.stop().await;
}

on_each_backend!(
    snapshots_value_wraps_at_the_days_prices,
    snapshots_value_wraps_at_the_days_prices
);
async fn snapshots_value_wraps_at_the_days_prices(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let c = make_customer(&server, &m.bank, "C-001", 3).await;
    deposit(&server, &m.bank, c, "100000").await;
    let w = open_wrap(&server, &m, c).await;
    contribute(&server, &m, w, "100000").await;
    // A closed wrap gets no snapshot: a second wrap, closed at once (it holds nothing).
    let closed = open_wrap(&server, &m, c).await;
    server
        .post_idem(
            &m.bank,
            &format!("/v1/wraps/{closed}/close"),
            &Uuid::now_v7().to_string(),
            json!({}),
        )
        .await;

    // A buy as the trading steps will book it: 50,000 yen for 40,001 units.
    let books = ledger::Ledger::new(server.db.clone());
    let units = account(
        &books,
        m.bank_id,
        format!("wrap:{w}:units:{FUND}"),
        ledger::Side::Credit,
        FUND,
    )
    .await;
    let omnibus_units = account(
        &books,
        m.bank_id,
        format!("omnibus:{FUND}"),
        ledger::Side::Debit,
        FUND,
    )
    .await;
    let cash = account(
        &books,
        m.bank_id,
        format!("wrap:{w}:cash"),
        ledger::Side::Credit,
        "JPY",
    )
    .await;
    let omnibus = account(
        &books,
        m.bank_id,
        "omnibus:JPY".into(),
        ledger::Side::Debit,
        "JPY",
    )
    .await;
    let d = |s: &str| s.parse::<rust_decimal::Decimal>().unwrap();
    let d1 = first_day();
    books
        .post_entry(ledger::NewEntry {
            tenant_id: m.bank_id,
            idempotency_key: format!("buy:{w}"),
            kind: "trade".into(),
            effective_date: d1,
            description: "buy".into(),
            metadata: json!({}),
            postings: vec![
                ledger::NewPosting::debit(cash.id, "JPY", d("50000")),
                ledger::NewPosting::credit(omnibus.id, "JPY", d("50000")),
                ledger::NewPosting::debit(omnibus_units.id, FUND, d("40001")),
                ledger::NewPosting::credit(units.id, FUND, d("40001")),
            ],
            hold: None,
        })
        .await
        .unwrap();

    // Prices: the day before d1 and d1 + 2; none on d1 + 1.
    let platform = server.token(&server.platform).await;
    // The fund is suspended, so the trading steps leave the holdings as they are (their
    // orders are skipped): this test is about valuation.
    server
        .send(
            reqwest::Method::PATCH,
            Some(&platform),
            &format!("/v1/instruments/{FUND}"),
            &[],
            Some((
                "application/json",
                serde_json::to_vec(&json!({ "status": "suspended" })).unwrap(),
            )),
        )
        .await
        .ok(200);
    server
        .post(
            &platform,
            "/v1/prices",
            Some(json!({ "prices": [
                { "instrument": FUND, "date": d1 - Days::new(1), "price": "12500" },
                { "instrument": FUND, "date": plus(d1, 2), "price": "12345" },
            ] })),
        )
        .await
        .ok(200);
    // Day one: no price that day, the last one (12,500) is used and the snapshot says so.
    // 40,001 × 12,500 ÷ 10,000 = 50,001.25 → 50,001; NAV = 50,000 + 50,001 = 100,001.
    run_days(&server, d1, d1).await;
    assert_eq!(
        snapshot(&server, w, d1).await,
        (
            50000,
            50001,
            100001,
            if api::money::today(Utc::now()) == d1 {
                100000
            } else {
                0
            },
            0,
            true
        )
    );
    // A price for d1 + 1 arrives before its end of day: valued at it, not stale.
    server
        .post(
            &platform,
            "/v1/prices",
            Some(json!({ "prices": [{ "instrument": FUND, "date": plus(d1, 1), "price": "12000" }] })),
        )
        .await
        .ok(200);
    run_days(&server, plus(d1, 1), plus(d1, 2)).await;
    // 40,001 × 12,000 ÷ 10,000 = 48,001.2 → 48,001. Less the fee owed from day one:
    // 100,001 × 0.011 = 1,100.011 a year ÷ 365 → ¥3 (5.011 carried; tax 110.0011 ÷ 365 < 1).
    let s = snapshot(&server, w, plus(d1, 1)).await;
    assert_eq!((s.0, s.1, s.5), (50000, 48001, false));
    // 40,001 × 12,345 ÷ 10,000 = 49,381.2345 → 49,381. Day two's fee: 97,998 × 0.011 =
    // 1,077.978 + 5.011 = 1,082.989 → ¥2; owed 5.
    let s2 = snapshot(&server, w, plus(d1, 2)).await;
    assert_eq!((s2.1, s2.5), (49381, false));
    if !month_end_within(d1, plus(d1, 1)) {
        assert_eq!((s.2, s2.0, s2.2), (98001 - 3, 50000, 99381 - 5));
    }
    // The closed wrap has none.
    let n = rows(
        &server,
        "SELECT COUNT(*) FROM wrap_snapshots WHERE wrap_id = ?",
        vec![closed.into()],
    )
    .await;
    assert_eq!(n[0].try_get_by_index::<i64>(0).unwrap(), 0);
    // Finished dates' prices are frozen.
    let r = server
        .post(
            &platform,
            "/v1/prices",
            Some(json!({ "prices": [{ "instrument": FUND, "date": plus(d1, 2), "price": "1" }] })),
        )
        .await;
    r.problem(409);
    server.stop().await;
}

on_each_backend!(failing_checks_stop_the_day, failing_checks_stop_the_day);
async fn failing_checks_stop_the_day(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let c = make_customer(&server, &m.bank, "C-001", 3).await;
    deposit(&server, &m.bank, c, "100000").await;
    let w = open_wrap(&server, &m, c).await;
    let d1 = first_day();
    run_days(&server, d1, d1).await;

    // Money appears in a wrap from a suspense account, not the omnibus: the books still
    // balance, but the virtual layer no longer reconciles.
    let books = ledger::Ledger::new(server.db.clone());
    let suspense = account(
        &books,
        m.bank_id,
        "suspense:JPY".into(),
        ledger::Side::Debit,
        "JPY",
    )
    .await;
    let cash = account(
        &books,
        m.bank_id,
        format!("wrap:{w}:cash"),
        ledger::Side::Credit,
        "JPY",
    )
    .await;
    books
        .post_entry(ledger::NewEntry {
            tenant_id: m.bank_id,
            idempotency_key: "mistake".into(),
            kind: "adjustment".into(),
            effective_date: d1,
            description: "a mistake".into(),
            metadata: json!({}),
            postings: vec![
                ledger::NewPosting::debit(suspense.id, "JPY", "777".parse().unwrap()),
                ledger::NewPosting::credit(cash.id, "JPY", "777".parse().unwrap()),
            ],
            hold: None,
        })
        .await
        .unwrap();

    let d2 = plus(d1, 1);
    let s = run_days(&server, d2, d2).await;
    assert_eq!(s["status"], "failed", "{s}");
    // Every step before the checks (the last) is done; the checks failed.
    let last = wraps::eod::STEPS.len() - 1;
    for i in 0..last {
        assert_eq!(s["steps"][i]["status"], "done", "{s}");
    }
    assert_eq!(s["steps"][last]["step"], "checks");
    assert_eq!(s["steps"][last]["status"], "failed");
    let reason = s["steps"][last]["detail"]["reason"].as_str().unwrap();
    assert!(reason.contains("does not reconcile in JPY"), "{reason}");
    assert!(reason.contains(&m.bank_id.to_string()), "{reason}");
    // Not finished: its prices stay open, the next date is refused, the same date is next.
    assert_eq!(s["next_date"], d2.to_string());
    let platform = server.token(&server.platform).await;
    let r = start(&server, &platform, json!({ "date": plus(d1, 2) })).await;
    assert!(
        r.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains(&d2.to_string()),
        "{}",
        r.text
    );
    server
        .post(
            &platform,
            "/v1/prices",
            Some(json!({ "prices": [{ "instrument": FUND, "date": d2, "price": "10000" }] })),
        )
        .await
        .ok(200);

    // The command line stops loudly too, and the date is still not finished.
    let out = wrapd(&server.url, &["eod", "--date", &d2.to_string()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stopped") && err.contains("reconcile"),
        "{err}"
    );
    let r = server
        .get(&platform, &format!("/v1/operations/eod/{d2}"))
        .await;
    assert_eq!(r.ok(200)["status"], "failed");

    // Corrected by a reversing entry, the same date re-runs its failed step and finishes;
    // the steps done before are not redone (one snapshot per wrap).
    books
        .post_entry(ledger::NewEntry {
            tenant_id: m.bank_id,
            idempotency_key: "mistake-corrected".into(),
            kind: "adjustment".into(),
            effective_date: d2,
            description: "the mistake undone".into(),
            metadata: json!({}),
            postings: vec![
                ledger::NewPosting::debit(cash.id, "JPY", "777".parse().unwrap()),
                ledger::NewPosting::credit(suspense.id, "JPY", "777".parse().unwrap()),
            ],
            hold: None,
        })
        .await
        .unwrap();
    let s = run_days(&server, d2, d2).await;
    assert_eq!(s["status"], "finished", "{s}");
    assert_eq!(server.count_rows("wrap_snapshots").await, 2);
    server.stop().await;
}

on_each_backend!(
    the_command_runs_days_in_order,
    the_command_runs_days_in_order
);
async fn the_command_runs_days_in_order(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let c = make_customer(&server, &m.bank, "C-001", 3).await;
    deposit(&server, &m.bank, c, "100000").await;
    let w = open_wrap(&server, &m, c).await;
    contribute(&server, &m, w, "40000").await;
    let d1 = first_day();
    let (s1, s3) = (d1.to_string(), plus(d1, 2).to_string());

    let out = wrapd(&server.url, &["eod", "--date", &s1, "--to", &s3]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(
        stdout.lines().all(|l| l.contains(": finished: plans")),
        "{stdout}"
    );
    // NAV less fees owed: 40,000 × 0.011 = 440 a year → ¥1 on day one (75/365 carried);
    // 439.989 + 75 = 514.989 → ¥1 on day two.
    if !month_end_within(d1, plus(d1, 1)) {
        for (d, nav) in [(0, 40000), (1, 39999), (2, 39998)] {
            assert_eq!(snapshot(&server, w, plus(d1, d)).await.2, nav);
        }
    }

    // A gap is refused, naming the expected date; nothing is written.
    let before = counts(&server).await;
    let out = wrapd(&server.url, &["eod", "--date", &plus(d1, 4).to_string()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&plus(d1, 3).to_string()), "{err}");
    // A finished date says so and changes nothing.
    let out = wrapd(&server.url, &["eod", "--date", &s1]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("already finished"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = wrapd(&server.url, &["eod", "--date", "2026-13-01"]);
    assert!(!out.status.success());
    assert_eq!(counts(&server).await, before);
    // The HTTP status agrees.
    let platform = server.token(&server.platform).await;
    let r = server
        .get(&platform, &format!("/v1/operations/eod/{s3}"))
        .await;
    assert_eq!(r.ok(200)["status"], "finished");
    server.stop().await;
}

/// A book with plans due on `d1`: two customers, three wraps, a contribution plan that
/// executes, one skipped, a withdrawal plan; units held at a price.
pub(crate) async fn book_with_plans(server: &TestServer, d1: NaiveDate) {
    let m = market(server, "Bank", 3).await;
    let day = d1.day();
    let a = make_customer(server, &m.bank, "C-A", 3).await;
    deposit(server, &m.bank, a, "100000").await;
    let b = make_customer(server, &m.bank, "C-B", 3).await;
    deposit(server, &m.bank, b, "5000").await;
    let mut wraps = Vec::new();
    for (customer, plan) in [
        (
            a,
            json!({ "kind": "contribution", "amount": "30000", "day_of_month": day, "start_date": d1 }),
        ),
        (
            b,
            json!({ "kind": "contribution", "amount": "20000", "day_of_month": day, "start_date": d1 }),
        ),
        (
            a,
            json!({ "kind": "withdrawal", "percentage": "0.25", "day_of_month": day, "start_date": d1 }),
        ),
    ] {
        let w = if wraps.is_empty() {
            // The first wrap has a goal, so the `goals` step has work to redo when killed.
            let r = server
                .post(
                    &m.bank,
                    &format!("/v1/customers/{customer}/wraps"),
                    Some(json!({
                        "agreement_id": m.agreement_id,
                        "goal": { "name": "Car", "target_amount": "900000",
                                  "target_date": d1 + chrono::Months::new(36) },
                    })),
                )
                .await;
            r.ok(201)["id"].as_str().unwrap().parse().unwrap()
        } else {
            open_wrap(server, &m, customer).await
        };
        server
            .post(&m.bank, &format!("/v1/wraps/{w}/plans"), Some(plan))
            .await
            .ok(201);
        wraps.push(w);
    }
    contribute(server, &m, wraps[2], "40000").await;
    let platform = server.token(&server.platform).await;
    server
        .post(
            &platform,
            "/v1/prices",
            Some(json!({ "prices": [{ "instrument": FUND, "date": d1, "price": "10123" }] })),
        )
        .await
        .ok(200);
}

/// The first business day from [`first_day`] whose day of month is at most 28 (the trading
/// steps trade on it, and plans may run on it).
pub(crate) fn first_business_day() -> NaiveDate {
    let cal = ledger::calendar::Calendar::japan();
    let mut d1 = first_day();
    while !cal.is_business_day(d1) || d1.day() > 28 {
        d1 = d1 + Days::new(1);
    }
    d1
}

/// What is left by `wrapd eod` run alone, uninterrupted, from `d1` to `d1 + 2` on
/// [`book_with_plans`], and the number of fills it booked.
pub(crate) async fn uninterrupted(backend: &'static str, d1: NaiveDate) -> (EodState, i64) {
    let (s1, s3) = (d1.to_string(), plus(d1, 2).to_string());
    let calm = TestServer::start(backend).await;
    book_with_plans(&calm, d1).await;
    let out = wrapd(&calm.url, &["eod", "--date", &s1, "--to", &s3]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = state_of(&calm).await;
    // The book traded on d1: a plan's contribution invested, a withdrawal paid out.
    let fills = calm.count_rows("trade_fills").await;
    assert!(fills > 0);
    calm.stop().await;
    (expected, fills)
}

/// What end of day left behind, independent of generated ids.
/// What end of day left behind: row counts, the trial balance, the snapshots, the plan runs.
pub(crate) type EodState = (
    Vec<i64>,
    String,
    Vec<(String, i64, i64, i64, bool)>,
    Vec<(String, String)>,
);

pub(crate) async fn state_of(server: &TestServer) -> EodState {
    let platform = server.token(&server.platform).await;
    let tb = server.get(&platform, "/v1/ledger/trial-balance").await.text;
    let snaps = rows(
        server,
        "SELECT s.business_date, s.cash, s.units_value, s.nav, s.stale_prices FROM wrap_snapshots s \
         ORDER BY s.business_date, s.nav, s.cash",
        vec![],
    )
    .await
    .iter()
    .map(|r| {
        (
            r.try_get_by_index::<NaiveDate>(0).unwrap().to_string(),
            r.try_get_by_index::<i64>(1).unwrap(),
            r.try_get_by_index::<i64>(2).unwrap(),
            r.try_get_by_index::<i64>(3).unwrap(),
            r.try_get_by_index::<bool>(4).unwrap(),
        )
    })
    .collect();
    let runs = rows(
        server,
        "SELECT run_date, status FROM plan_runs ORDER BY run_date, status",
        vec![],
    )
    .await
    .iter()
    .map(|r| {
        (
            r.try_get_by_index::<NaiveDate>(0).unwrap().to_string(),
            r.try_get_by_index::<String>(1).unwrap(),
        )
    })
    .collect();
    // Audit rows differ by design (a resumed run records its start once, its end once).
    let mut c = counts(server).await;
    c.pop();
    (c, tb, snaps, runs)
}

on_each_backend!(
    crash_and_resume_matches_an_uninterrupted_run,
    crash_and_resume_matches_an_uninterrupted_run
);
async fn crash_and_resume_matches_an_uninterrupted_run(backend: &'static str) {
    // A business day, so the trading steps trade (the book has a price on d1).
    let d1 = first_business_day();
    // Uninterrupted.
    let (expected, _) = uninterrupted(backend, d1).await;
    assert_eq!(expected.3.len(), 3, "{:?}", expected.3);

    // Killed inside each step in turn: the trading steps of d1 one after the other (each
    // re-run resumes and dies in the next), valuation, accrual and billing on d1 + 1, returns,
    // goals and checks on d1 + 2; each date is then run to its end.
    let server = TestServer::start(backend).await;
    book_with_plans(&server, d1).await;
    let kills = [
        (0, "plans"),
        (0, "rebalance"),
        (0, "netting"),
        (0, "execution"),
        (0, "allocation"),
        (1, "valuation"),
        (1, "accrual"),
        (1, "billing"),
        (2, "returns"),
        (2, "goals"),
        (2, "checks"),
    ];
    for (k, (day, step)) in kills.iter().enumerate() {
        let d = plus(d1, *day).to_string();
        let killed = Command::new(env!("CARGO_BIN_EXE_wrapd"))
            .args(["eod", "--date", &d, "--database-url", &server.url])
            .env("WRAP__DATABASE__AUTO_MIGRATE", "true")
            .env(
                "WRAP__CLOCK__SIMULATED_START",
                crate::common::simulated_start(),
            )
            .env("WRAP__LOG__LEVEL", "warn")
            .env("WRAP_EOD_ABORT_IN_STEP", step)
            .output()
            .unwrap();
        assert!(!killed.status.success(), "{step}: the run should have died");
        // The killed step is not done, the date not finished; the steps before it are.
        let platform = server.token(&server.platform).await;
        let s = server
            .get(&platform, &format!("/v1/operations/eod/{d}"))
            .await;
        let s = s.ok(200);
        assert_eq!(s["status"], "running", "{s}");
        let at = wraps::eod::STEPS.iter().position(|x| x == step).unwrap();
        assert_eq!(s["steps"][at]["status"], "pending", "{s}");
        for i in 0..at {
            assert_eq!(s["steps"][i]["status"], "done", "{s}");
        }
        if kills.get(k + 1).is_some_and(|(next, _)| next == day) {
            continue;
        }
        let out = wrapd(&server.url, &["eod", "--date", &d]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        if at > 0 {
            assert!(stdout.contains("[done earlier]"), "{stdout}");
        }
    }
    assert_eq!(state_of(&server).await, expected);
    server.stop().await;
}

on_each_backend!(
    a_price_arriving_after_valuation_is_used,
    a_price_arriving_after_valuation_is_used
);
async fn a_price_arriving_after_valuation_is_used(backend: &'static str) {
    price_after_valuation(backend, false).await;
}

on_each_backend!(
    a_price_committed_after_valuation_is_used_whatever_its_clock,
    a_price_committed_after_valuation_is_used_whatever_its_clock
);
async fn a_price_committed_after_valuation_is_used_whatever_its_clock(backend: &'static str) {
    price_after_valuation(backend, true).await;
}

/// A price of the date uploaded after valuation read the prices (the run died in its last
/// step) is used when the date is run again. With `early_clock`, the upload's clock was read
/// an hour before valuation started (as for an upload that waited for a lock): the day must
/// not judge by clocks.
async fn price_after_valuation(backend: &'static str, early_clock: bool) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let c = make_customer(&server, &m.bank, "C-001", 3).await;
    deposit(&server, &m.bank, c, "100000").await;
    let w = open_wrap(&server, &m, c).await;
    contribute(&server, &m, w, "100000").await;
    let books = ledger::Ledger::new(server.db.clone());
    let units = account(
        &books,
        m.bank_id,
        format!("wrap:{w}:units:{FUND}"),
        ledger::Side::Credit,
        FUND,
    )
    .await;
    let omnibus_units = account(
        &books,
        m.bank_id,
        format!("omnibus:{FUND}"),
        ledger::Side::Debit,
        FUND,
    )
    .await;
    let d1 = first_day();
    books
        .post_entry(ledger::NewEntry {
            tenant_id: m.bank_id,
            idempotency_key: "units".into(),
            kind: "transfer_in".into(),
            effective_date: d1,
            description: "units transferred in".into(),
            metadata: json!({}),
            postings: vec![
                ledger::NewPosting::debit(omnibus_units.id, FUND, "20000".parse().unwrap()),
                ledger::NewPosting::credit(units.id, FUND, "20000".parse().unwrap()),
            ],
            hold: None,
        })
        .await
        .unwrap();
    // The run dies in its last step, after valuation found no price of d1.
    let out = wrapd_dying_in(&server.url, d1, "checks");
    assert!(!out.status.success());
    assert_eq!(snapshot(&server, w, d1).await.1, 0);
    // The date is running, so its price is still accepted; the re-run values with it.
    if early_clock {
        let txn = ledger::begin_write(&server.db).await.unwrap();
        let row = ledger::store::market::PriceRow {
            instrument: FUND.into(),
            date: d1,
            price: 15000,
        };
        let an_hour_ago = Utc::now() - chrono::Duration::hours(1);
        wraps::eod::prices::upload(&txn, &[row], "test", an_hour_ago)
            .await
            .unwrap();
        txn.commit().await.unwrap();
    } else {
        let platform = server.token(&server.platform).await;
        server
            .post(
                &platform,
                "/v1/prices",
                Some(json!({ "prices": [{ "instrument": FUND, "date": d1, "price": "15000" }] })),
            )
            .await
            .ok(200);
    }
    let s = run_days(&server, d1, d1).await;
    assert_eq!(s["status"], "finished", "{s}");
    // 20,000 × 15,000 ÷ 10,000 = 30,000.
    let snap = snapshot(&server, w, d1).await;
    assert_eq!(
        (snap.0, snap.1, snap.2, snap.5),
        (100000, 30000, 130000, false)
    );
    server.stop().await;
}

on_each_backend!(
    a_step_that_errors_is_shown_failed,
    a_step_that_errors_is_shown_failed
);
async fn a_step_that_errors_is_shown_failed(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let c = make_customer(&server, &m.bank, "C-001", 3).await;
    deposit(&server, &m.bank, c, "100000").await;
    open_wrap(&server, &m, c).await;
    let d1 = first_day();
    // The returns step cannot write its rows: a database error, not a failed check.
    server
        .db
        .execute_unprepared("DROP TABLE wrap_returns")
        .await
        .unwrap();
    let s = run_days(&server, d1, d1).await;
    // The status says which step failed and why, instead of `running` with `pending` steps.
    assert_eq!(s["status"], "failed", "{s}");
    let at = wraps::eod::STEPS
        .iter()
        .position(|x| *x == "returns")
        .unwrap();
    assert_eq!(s["steps"][at]["status"], "failed", "{s}");
    let reason = s["steps"][at]["detail"]["reason"].as_str().unwrap();
    assert!(reason.contains("wrap_returns"), "{reason}");
    for i in 0..at {
        assert_eq!(s["steps"][i]["status"], "done", "{s}");
    }
    assert_eq!(s["next_date"], d1.to_string(), "{s}");
    server.stop().await;
}

on_each_backend!(
    a_price_the_day_traded_at_cannot_be_replaced,
    a_price_the_day_traded_at_cannot_be_replaced
);
async fn a_price_the_day_traded_at_cannot_be_replaced(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let d1 = first_business_day();
    book_with_plans(&server, d1).await;
    // The run dies in valuation: netting, execution and allocation traded at 10,123.
    let out = wrapd_dying_in(&server.url, d1, "valuation");
    assert!(!out.status.success());
    assert!(server.count_rows("trade_fills").await > 0);
    let platform = server.token(&server.platform).await;
    let upload =
        |price: &str| json!({ "prices": [{ "instrument": FUND, "date": d1, "price": price }] });
    // Another price for the date would leave its trades at a price that is not the day's.
    let r = server
        .post(&platform, "/v1/prices", Some(upload("10500")))
        .await;
    let p = r.problem(409);
    assert!(
        p["detail"].as_str().unwrap().contains("traded at 10123"),
        "{p}"
    );
    assert_eq!(p["errors"][0]["field"], "price", "{p}");
    // The price the trades used may be sent again; the day then finishes on it.
    server
        .post(&platform, "/v1/prices", Some(upload("10123")))
        .await
        .ok(200);
    let s = run_days(&server, d1, d1).await;
    assert_eq!(s["status"], "finished", "{s}");
    let stored = rows(
        &server,
        "SELECT price FROM instrument_prices WHERE instrument_code = ? AND price_date = ?",
        vec![FUND.into(), d1.into()],
    )
    .await;
    assert_eq!(stored[0].try_get_by_index::<i64>(0).unwrap(), 10123);
    server.stop().await;
}
