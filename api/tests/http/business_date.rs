//! The business date (`ledger/wraps/src/clock.rs`, docs/DOMAIN.md section 7): money moved
//! through the API is booked on the open business date, and end of day never runs a date that
//! has not happened on a real clock.

use std::process::Command;

use chrono::{Days, NaiveDate, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::common::TestServer;
use crate::customers::{deposit, make_customer};
use crate::eod::{FUND, rows, run_days, snapshot, wrapd_dying_in};
use crate::on_each_backend;
use crate::wraps::{market, open_wrap};

/// The effective date of ledger entry `id`.
async fn booked_on(server: &TestServer, id: &str) -> NaiveDate {
    let id: Uuid = id.parse().unwrap();
    rows(
        server,
        "SELECT effective_date FROM ledger_entries WHERE id = ?",
        vec![id.into()],
    )
    .await[0]
        .try_get_by_index::<NaiveDate>(0)
        .unwrap()
}

/// Contributes `amount` to wrap `w` through the API; the entry's id.
async fn contribute(server: &TestServer, bank: &str, w: Uuid, amount: &str) -> String {
    let r = server
        .post_idem(
            bank,
            &format!("/v1/wraps/{w}/contributions"),
            &Uuid::now_v7().to_string(),
            json!({ "amount": amount }),
        )
        .await;
    r.ok(201)["entry_id"].as_str().unwrap().to_owned()
}

on_each_backend!(
    a_contribution_after_the_days_run_is_the_next_days,
    a_contribution_after_the_days_run_is_the_next_days
);
async fn a_contribution_after_the_days_run_is_the_next_days(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let c = make_customer(&server, &m.bank, "C-1", 3).await;
    deposit(&server, &m.bank, c, "100000").await;
    let w = open_wrap(&server, &m, c).await;
    let today = api::money::today(Utc::now());
    // Before today's end of day: booked today.
    let first = contribute(&server, &m.bank, w, "30000").await;
    assert_eq!(booked_on(&server, &first).await, today);
    let s = run_days(&server, today, today).await;
    assert_eq!(s["status"], "finished", "{s}");
    // After it: tomorrow's, never a flow of the closed day.
    let second = contribute(&server, &m.bank, w, "20000").await;
    let tomorrow = today + Days::new(1);
    assert_eq!(booked_on(&server, &second).await, tomorrow);
    let s = run_days(&server, tomorrow, tomorrow).await;
    assert_eq!(s["status"], "finished", "{s}");
    // Each day's snapshot counts its own contribution: 30,000 today, 20,000 tomorrow.
    let sql = "SELECT contributions FROM wrap_snapshots WHERE wrap_id = ? AND business_date = ?";
    for (date, expected) in [(today, 30_000_i64), (tomorrow, 20_000)] {
        let r = rows(&server, sql, vec![w.into(), date.into()]).await;
        assert_eq!(r[0].try_get_by_index::<i64>(0).unwrap(), expected, "{date}");
    }
    assert_eq!(snapshot(&server, w, tomorrow).await.0, 50_000);
    // A deposit to the customer's account follows the same date.
    let r = server
        .post_idem(
            &m.bank,
            &format!("/v1/customers/{c}/deposits"),
            &Uuid::now_v7().to_string(),
            json!({ "amount": "1000" }),
        )
        .await;
    let entry = r.ok(201)["entry_id"].as_str().unwrap().to_owned();
    assert_eq!(booked_on(&server, &entry).await, tomorrow + Days::new(1));
    server.stop().await;
}

on_each_backend!(
    a_date_is_valued_without_money_booked_after_it,
    a_date_is_valued_without_money_booked_after_it
);
/// Valuation of D uses the balances as of D: a date valued again (here for a late price) after
/// money was booked on the next date does not count that money on D, where it is no flow.
async fn a_date_is_valued_without_money_booked_after_it(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let c = make_customer(&server, &m.bank, "C-1", 3).await;
    deposit(&server, &m.bank, c, "100000").await;
    let w = open_wrap(&server, &m, c).await;
    let today = api::money::today(Utc::now());
    let tomorrow = today + Days::new(1);
    let first = contribute(&server, &m.bank, w, "30000").await;
    assert_eq!(booked_on(&server, &first).await, today);
    // Today's run dies in its last step, after valuation: the date is still open to a price.
    let out = wrapd_dying_in(&server.url, today, "checks");
    assert!(!out.status.success());
    assert_eq!(snapshot(&server, w, today).await.0, 30_000);
    // Money moved now is tomorrow's.
    let second = contribute(&server, &m.bank, w, "20000").await;
    assert_eq!(booked_on(&server, &second).await, tomorrow);
    // A late price of today redoes today's valuation, which still sees today's balances only.
    let platform = server.token(&server.platform).await;
    server
        .post(
            &platform,
            "/v1/prices",
            Some(json!({ "prices": [{ "instrument": FUND, "date": today, "price": "15000" }] })),
        )
        .await
        .ok(200);
    let s = run_days(&server, today, today).await;
    assert_eq!(s["status"], "finished", "{s}");
    let (cash, units_value, nav, contributions, withdrawals, _) = snapshot(&server, w, today).await;
    assert_eq!(
        (cash, units_value, nav, contributions, withdrawals),
        (30_000, 0, 30_000, 30_000, 0)
    );
    // Tomorrow counts the 20,000 as its own flow, once.
    let s = run_days(&server, tomorrow, tomorrow).await;
    assert_eq!(s["status"], "finished", "{s}");
    let snap = snapshot(&server, w, tomorrow).await;
    assert_eq!((snap.2, snap.3), (50_000, 20_000));
    server.stop().await;
}

on_each_backend!(
    end_of_day_refuses_a_date_not_yet_happened,
    end_of_day_refuses_a_date_not_yet_happened
);
async fn end_of_day_refuses_a_date_not_yet_happened(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let tomorrow = api::money::today(Utc::now()) + Days::new(1);
    // On the real clock (the default), tomorrow is refused, naming the date, and nothing runs.
    let out = Command::new(env!("CARGO_BIN_EXE_wrapd"))
        .args(["eod", "--date", &tomorrow.to_string()])
        .args(["--database-url", &server.url])
        .env("WRAP__DATABASE__AUTO_MIGRATE", "true")
        .env("WRAP__LOG__LEVEL", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("has not happened yet") && err.contains(&tomorrow.to_string()),
        "{err}"
    );
    assert_eq!(server.count_rows("eod_runs").await, 0);
    // A simulated clock (demos, tests) runs it, and says so on its log.
    let out = Command::new(env!("CARGO_BIN_EXE_wrapd"))
        .args(["eod", "--date", &tomorrow.to_string()])
        .args(["--simulated-start", &tomorrow.to_string()])
        .args(["--database-url", &server.url])
        .env("WRAP__DATABASE__AUTO_MIGRATE", "true")
        .env("WRAP__LOG__LEVEL", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SIMULATED CLOCK"),
        "{out:?}"
    );
    assert_eq!(server.count_rows("eod_runs").await, 1);
    // Never in production.
    let out = Command::new(env!("CARGO_BIN_EXE_wrapd"))
        .args(["eod", "--date", &tomorrow.to_string()])
        .args(["--simulated-start", &tomorrow.to_string()])
        .args(["--database-url", &server.url])
        .env("WRAP_ENV", "production")
        .env(
            "WRAP_CONFIG_DIR",
            env!("CARGO_MANIFEST_DIR").to_owned() + "/../deploy/config",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused when WRAP_ENV=production"),
        "{out:?}"
    );
    server.stop().await;
}
