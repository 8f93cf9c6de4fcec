//! The README's marketplace tour (`deploy/tour/marketplace.sh`) played against a real server,
//! then end of day from the date it booked on: every wrap's statement adds up to the yen and the
//! books balance and reconcile (docs/DOMAIN.md section 7: money is booked on the open business
//! date, and each date is valued with its own balances).

use std::process::Command;

use chrono::{Days, Utc};
use uuid::Uuid;

use crate::common::TestServer;
use crate::eod::{rows, run_days};
use crate::on_each_backend;

/// Whether `tool --version` runs: the tour needs bash, curl and jq (`.ci/run` installs them).
fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

on_each_backend!(
    the_readme_tour_then_end_of_day_gives_balanced_statements,
    the_readme_tour_then_end_of_day_gives_balanced_statements
);
async fn the_readme_tour_then_end_of_day_gives_balanced_statements(backend: &'static str) {
    if !["bash", "curl", "jq"].into_iter().all(have) {
        assert!(
            std::env::var("CI").is_err(),
            "the tour needs bash, curl and jq"
        );
        eprintln!("skipped: the tour needs bash, curl and jq");
        return;
    }
    let server = TestServer::start(backend).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/tour/marketplace.sh");
    let mut tour = Command::new("bash");
    tour.arg(script)
        .args([&server.platform.client_id, &server.platform.secret])
        .env("BASE", &server.base);
    // Blocking: off the runtime that serves the requests.
    let out = tokio::task::spawn_blocking(move || tour.output())
        .await
        .unwrap()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    // The tour's refused contribution is refused; its accepted requests are booked today.
    assert!(log.contains("\n422 "), "{log}");
    let today = api::money::today(Utc::now());
    let last = today + Days::new(2);
    let s = run_days(&server, today, last).await;
    assert_eq!(s["status"], "finished", "{s}");

    let platform = server.token(&server.platform).await;
    let tb = server.get(&platform, "/v1/ledger/trial-balance").await;
    assert_eq!(tb.ok(200)["balanced"], true, "{}", tb.text);
    let rec = server.get(&platform, "/v1/ledger/reconciliation").await;
    assert_eq!(rec.ok(200)["reconciled"], true, "{}", rec.text);
    let wraps = rows(&server, "SELECT id, tenant_id FROM wraps", vec![]).await;
    assert_eq!(wraps.len(), 1, "the tour opens one wrap");
    let wrap: Uuid = wraps[0].try_get_by_index(0).unwrap();
    let bank: Uuid = wraps[0].try_get_by_index(1).unwrap();
    let token = server.token_for_role(bank, "viewer").await;
    let path = format!("/v1/wraps/{wrap}/statement?from={today}&to={last}");
    let st = server.get(&token, &path).await;
    let st = st.ok(200);
    assert_eq!(st["check"]["balanced"], true, "{st}");
    let text = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    assert_eq!(text(&st["check"]["unexplained"]), "0", "{st}");
    // The tour's 600,000 contribution is a flow of its own date, inside the period.
    assert_eq!(text(&st["contributions"]), "600000", "{st}");
    server.stop().await;
}
