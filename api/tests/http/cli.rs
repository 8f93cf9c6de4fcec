//! `wrapd bootstrap` as a user runs it: the binary, on a database of its own.

use std::process::Command;

use crate::on_each_backend;

on_each_backend!(bootstrap_runs_once, bootstrap_runs_once);

fn wrapd(url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wrapd"))
        .args(args)
        .args(["--database-url", url])
        .env("WRAP__DATABASE__AUTO_MIGRATE", "true")
        .env("WRAP__LOG__LEVEL", "warn")
        .output()
        .unwrap()
}

async fn bootstrap_runs_once(backend: &'static str) {
    let database = testing::EmptyDb::create(backend).await;
    let url = &database.url;
    let first = wrapd(url, &["bootstrap", "--json"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let made: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert!(made["client_id"].as_str().unwrap().starts_with("cli_"));
    assert!(made["client_secret"].as_str().unwrap().len() >= 32);
    uuid::Uuid::parse_str(made["tenant_id"].as_str().unwrap()).unwrap();

    let second = wrapd(url, &["bootstrap"]);
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("already exists"), "{err}");
    assert!(err.contains(made["tenant_id"].as_str().unwrap()), "{err}");
    assert!(second.stdout.is_empty(), "no secret printed on refusal");

    // Still exactly one platform, with one client.
    let db = api::db::connect(url).await.unwrap();
    let tenants = tenants::store::list_tenants(&db, None, 10).await.unwrap();
    assert_eq!(tenants.items.len(), 1);
    let clients = tenants::store::list_clients(&db, tenants.items[0].id, None, 10)
        .await
        .unwrap();
    assert_eq!(clients.items.len(), 1);
    db.close().await.unwrap();
}
