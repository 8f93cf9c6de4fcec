//! `wrapd demo` as a user runs it: the binary on an empty database of its own (a small book,
//! so the year runs in seconds), then the same database served, where what the demo printed
//! is fetched again with the credentials it printed.

use std::process::Command;

use api::Settings;

// The demo is for the embedded default, SQLite (a year of end of day on PostgreSQL in a debug
// build takes minutes; end of day itself is tried on both databases by eod_year.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_a_year_and_serves_what_it_printed_on_sqlite() {
    the_demo_runs_a_year_and_serves_what_it_printed("sqlite").await;
}

fn wrapd(url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wrapd"))
        .args(args)
        .args(["--database-url", url])
        .env("WRAP__DATABASE__AUTO_MIGRATE", "true")
        .env("WRAP__LOG__LEVEL", "warn")
        .output()
        .unwrap()
}

/// The printed line's words after `label`.
fn after<'a>(line: &'a str, label: &str) -> &'a str {
    line.split(label)
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {label} in {line:?}"))
}

async fn the_demo_runs_a_year_and_serves_what_it_printed(backend: &'static str) {
    let database = testing::EmptyDb::create(backend).await;
    let url = database.url.clone();
    let out = wrapd(&url, &["demo", "--wraps", "40", "--seed", "7"]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "Assets under management on 2025-12-31",
        "Seto Regional Bank",
        "Aoba Independent Advisors",
        "Balanced",
        "Global Equity",
        "Reconciled with the ledger's fee postings: true",
        // Two distributors, twelve months.
        "Platform invoices to distributors: 24",
        "time-weighted return",
        "goal \"",
        "; probability ",
        "(end of day 2025-12-31: ",
        "Adds up (closing - opening = flows - fees + gain): true",
    ] {
        assert!(stdout.contains(want), "{want:?} missing from:\n{stdout}");
    }

    // The printed total AUM by distributor, and the platform's credentials.
    let lines: Vec<&str> = stdout.lines().collect();
    let by_distributor = lines
        .iter()
        .position(|l| l.starts_with("By distributor:"))
        .unwrap();
    let total_line = lines[by_distributor..]
        .iter()
        .find(|l| l.trim_start().starts_with("Total"))
        .unwrap();
    let printed_total: String = total_line
        .split("wraps")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .replace(',', "");
    let creds = lines
        .iter()
        .find(|l| l.trim_start().starts_with("platform ") && l.contains("client_secret"))
        .unwrap();
    let (client_id, secret) = (after(creds, "client_id"), after(creds, "client_secret"));

    // `wrapd serve` on the same database answers the same figure to those credentials.
    let mut settings = Settings::builtin().unwrap();
    settings.server.bind = "127.0.0.1:0".to_owned();
    if backend != "sqlite" {
        // Served from PostgreSQL, the service needs a configured signing key.
        settings.auth.key_pem = tenants::jwt::generate_dev_key().unwrap();
    }
    settings.database.url = url.clone();
    let db = api::db::connect(&url).await.unwrap();
    let (server, addr) = api::build_server(&settings, db.clone()).await.unwrap();
    let handle = server.handle();
    let running = tokio::spawn(server);
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!("http://{addr}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap();
    let aum: serde_json::Value = http
        .get(format!(
            "http://{addr}/v1/reports/aum?as_of=2025-12-31&group_by=distributor"
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(aum["groups"].as_array().unwrap().len(), 2, "{aum}");
    assert_eq!(aum["totals"][0]["aum"], printed_total.as_str(), "{aum}");
    assert_eq!(aum["totals"][0]["wraps"], 40, "{aum}");
    // The year is finished: the next date to run is 2026-01-01.
    let status: serde_json::Value = http
        .get(format!("http://{addr}/v1/operations/eod/2025-12-31"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "finished", "{status}");

    // The console users it printed sign in; the adviser sees the demo customer of branch 001.
    let login = |role: &str| {
        let line = lines
            .iter()
            .find(|l| l.trim_start().starts_with(&format!("{role} ")) && l.contains("password"))
            .unwrap_or_else(|| panic!("no {role} console user in:\n{stdout}"));
        (
            after(line, "tenant").to_owned(),
            after(line, "email").to_owned(),
            after(line, "password").to_owned(),
        )
    };
    let customer_line = lines
        .iter()
        .find(|l| l.starts_with("== Customer "))
        .unwrap();
    let customer = after(customer_line, "== Customer");
    for role in ["operator", "head_office", "adviser", "manager"] {
        let (tenant, email, password) = login(role);
        let mut browser = crate::console::Browser::at(format!("http://{addr}"));
        browser
            .sign_in(&tenant, &email, &password)
            .await
            .redirects_to("/console/home");
        if role == "adviser" {
            let list = browser.get("/console/customers").await;
            assert!(
                list.text
                    .contains(&format!("/console/customers/{customer}")),
                "{}",
                list.text
            );
        }
    }
    handle.stop(true).await;
    running.await.unwrap().unwrap();

    // A second demo on the same database refuses and prints nothing.
    let again = wrapd(&url, &["demo", "--wraps", "40"]);
    assert!(!again.status.success());
    assert!(again.stdout.is_empty());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("already has tenants"), "{err}");

    db.close().await.unwrap();
}
