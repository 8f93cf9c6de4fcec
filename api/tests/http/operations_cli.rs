//! The operations commands run as an operator runs them, on both databases: `wrapd verify`
//! passes on books with money moved, then names the tenant and what broke after a deliberate
//! break (an entry's amount edited behind the ledger's back: the hash chain; an account's
//! counter edited: the trial balance and the reconciliation); `wrapd backup` copies an SQLite
//! database to a file that verifies, refuses to overwrite it, and sends PostgreSQL to its own
//! tools.

use sea_orm::ConnectionTrait as _;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestServer;
use crate::customers::{deposit, make_customer};
use crate::eod::wrapd;
use crate::on_each_backend;
use crate::wraps::{market, open_wrap};

on_each_backend!(verify_names_each_break, verify_names_each_break);
on_each_backend!(
    backup_copies_and_never_overwrites,
    backup_copies_and_never_overwrites
);

/// A distributor's customer with a deposit and a funded wrap: entries in the platform's,
/// the distributor's books, a virtual layer to reconcile. Returns (bank id, customer id).
async fn book_with_money(server: &TestServer) -> (Uuid, Uuid) {
    let m = market(server, "Ops Bank", 3).await;
    let customer = make_customer(server, &m.bank, "OPS-1", 3).await;
    deposit(server, &m.bank, customer, "500000").await;
    let wrap = open_wrap(server, &m, customer).await;
    server
        .post_idem(
            &m.bank,
            &format!("/v1/wraps/{wrap}/contributions"),
            "ops-contribution-1",
            json!({ "amount": "200000" }),
        )
        .await
        .ok(201);
    (m.bank_id, customer)
}

/// `wrapd verify --json`: (exit status, report, stderr).
fn verify_json(url: &str) -> (i32, Value, String) {
    let out = wrapd(url, &["verify", "--json"]);
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), report, stderr)
}

/// The report's entry for `tenant`.
fn tenant_of(report: &Value, tenant: Uuid) -> &Value {
    report["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant_id"] == tenant.to_string())
        .unwrap_or_else(|| panic!("tenant {tenant} not in {report}"))
}

async fn exec(server: &TestServer, sql: &str) {
    server
        .db
        .execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn verify_names_each_break(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let (bank, customer) = book_with_money(&server).await;

    let out = wrapd(&server.url, &["verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("every hash chain, trial balance and reconciliation holds"));
    assert!(text.contains(&format!("ok     tenant Ops Bank (distributor, {bank})")));
    let (code, report, _) = verify_json(&server.url);
    assert_eq!((code, &report["ok"]), (0, &json!(true)), "{report}");
    let books = tenant_of(&report, bank);
    assert!(books["entries_checked"].as_u64().unwrap() >= 2, "{books}");
    assert_eq!(books["reconciliation"][0]["reconciled"], true, "{books}");

    // Someone with database access switches the journal's guard off and edits the amounts of
    // the bank's first entry.
    let cash = format!("customer:{customer}:cash:JPY");
    let bank_tenant = format!("(SELECT tenant_id FROM ledger_accounts WHERE code = '{cash}')");
    let edit = format!(
        "UPDATE ledger_postings SET amount = amount + 1 WHERE entry_id = \
         (SELECT id FROM ledger_entries WHERE seq = 1 AND tenant_id = {bank_tenant})"
    );
    if backend == "postgres" {
        exec(
            &server,
            "ALTER TABLE ledger_postings DISABLE TRIGGER ledger_postings_immutable",
        )
        .await;
        exec(&server, &edit).await;
        exec(
            &server,
            "ALTER TABLE ledger_postings ENABLE TRIGGER ledger_postings_immutable",
        )
        .await;
    } else {
        exec(&server, "DROP TRIGGER ledger_postings_no_update").await;
        exec(&server, &edit).await;
    }
    let out = wrapd(&server.url, &["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let named = format!("tenant Ops Bank (distributor, {bank}): hash chain broken at entry 1");
    assert!(stdout.contains(&format!("BROKEN {named}")), "{stdout}");
    assert!(
        stderr.contains("the books of 1 of") && stderr.contains(&named),
        "{stderr}"
    );
    let (code, report, _) = verify_json(&server.url);
    assert_eq!((code, &report["ok"]), (1, &json!(false)), "{report}");
    let books = tenant_of(&report, bank);
    assert_eq!(books["chain_break"]["seq"], 1, "{books}");
    assert!(
        books["chain_break"]["reason"]
            .as_str()
            .unwrap()
            .contains("does not match its hash"),
        "{books}"
    );
    // The other books are untouched, and say so.
    let others: Vec<&Value> = report["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["tenant_id"] != bank.to_string())
        .collect();
    assert!(
        !others.is_empty() && others.iter().all(|t| t["ok"] == true),
        "{report}"
    );

    // Then the customer's cash counter is raised by one yen: the books no longer balance, and
    // the virtual layer no longer matches the omnibus.
    exec(
        &server,
        &format!(
            "UPDATE ledger_accounts SET credits_posted = credits_posted + 1 WHERE code = '{cash}'"
        ),
    )
    .await;
    let (code, report, stderr) = verify_json(&server.url);
    assert_eq!(code, 1, "{report}");
    let problems = tenant_of(&report, bank)["problems"].to_string();
    assert!(
        problems.contains("hash chain broken at entry 1"),
        "{problems}"
    );
    assert!(
        problems.contains("trial balance off by -1 in JPY"),
        "{problems}"
    );
    assert!(
        problems.contains("does not reconcile in JPY") && problems.contains("(difference 1)"),
        "{problems}"
    );
    assert!(
        stderr.contains("trial balance off by -1 in JPY"),
        "{stderr}"
    );
    server.stop().await;
}

async fn backup_copies_and_never_overwrites(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let (bank, _) = book_with_money(&server).await;
    let copy = std::env::temp_dir().join(format!("wrapd-backup-{}.db", Uuid::now_v7()));
    let to = copy.to_str().unwrap();

    if backend == "postgres" {
        let out = wrapd(&server.url, &["backup", "--to", to]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("pg_dump") && stderr.contains("docs/OPERATIONS.md"),
            "{stderr}"
        );
        assert!(!copy.exists());
        server.stop().await;
        return;
    }

    // Online: the server is up and holds its connections while the copy is taken.
    let out = wrapd(&server.url, &["backup", "--to", to]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("to {to} (")), "{stdout}");

    // The copy opens, and its books verify, with the same tenants as the original.
    let copy_url = format!("sqlite://{to}?mode=rwc");
    let (code, report, stderr) = verify_json(&copy_url);
    assert_eq!((code, &report["ok"]), (0, &json!(true)), "{report}{stderr}");
    let (_, original, _) = verify_json(&server.url);
    assert_eq!(report["tenants"], original["tenants"]);
    assert!(
        tenant_of(&report, bank)["entries_checked"]
            .as_u64()
            .unwrap()
            >= 2
    );

    // A second backup to the same file is refused and leaves it as it was.
    let kept = std::fs::read(&copy).unwrap();
    let again = wrapd(&server.url, &["backup", "--to", to]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("never overwrites"), "{stderr}");
    assert!(
        std::fs::read(&copy).unwrap() == kept,
        "the copy was changed"
    );
    api::db::remove_sqlite_files(&copy);
    server.stop().await;
}
