//! The real server on a free port: probes answer, unknown paths get problem+json 404.
//! Runs on SQLite always, and on PostgreSQL too when WRAP_TEST_POSTGRES_URL is set (each test
//! in a fresh database it drops afterwards).

use api::settings::Settings;
use reqwest::StatusCode;

fn settings_for(url: &str) -> Settings {
    let mut settings = Settings::builtin().unwrap();
    settings.server.bind = "127.0.0.1:0".to_owned();
    settings.database.url = url.to_owned();
    settings.database.auto_migrate = true;
    settings.auth.key_pem = tenants::jwt::generate_dev_key().unwrap();
    settings
}

/// Starts the server on `url`, checks the probes and a 404, stops it.
async fn check_probes(url: &str) {
    let settings = settings_for(url);
    let db = api::db::connect(url).await.unwrap();
    api::db::prepare(&db, &settings.database).await.unwrap();
    let (server, addr) = api::build_server(&settings, db.clone()).await.unwrap();
    let handle = server.handle();
    let running = tokio::spawn(server);
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();

    let r = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "ok"})
    );

    let r = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "ready"})
    );

    let r = client.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["type"], "https://wrap.example/problems/not-found");
    assert_eq!(body["title"], "Not Found");
    assert_eq!(body["status"], 404);
    assert!(body["detail"].as_str().unwrap().contains("/nope"), "{body}");

    let r = client.post(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["content-type"], "application/problem+json");

    // Database gone: ready no more, still alive.
    db.close_by_ref().await.unwrap();
    let r = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    handle.stop(true).await;
    running.await.unwrap().unwrap();
}

/// A fresh, empty PostgreSQL database on the WRAP_TEST_POSTGRES_URL server, dropped with the
/// guard; none when that is not set.
async fn fresh_postgres() -> Option<testing::EmptyDb> {
    if !testing::has_postgres() {
        return None;
    }
    Some(testing::EmptyDb::create("postgres").await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_on_sqlite() {
    let database = testing::EmptyDb::create("sqlite").await;
    check_probes(&database.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_on_postgres() {
    let Some(database) = fresh_postgres().await else {
        eprintln!("WRAP_TEST_POSTGRES_URL not set: PostgreSQL probe test skipped");
        return;
    };
    check_probes(&database.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_start_refuses_pending_migrations_unless_auto_migrate() {
    let Some(database) = fresh_postgres().await else {
        eprintln!("WRAP_TEST_POSTGRES_URL not set: PostgreSQL start-up test skipped");
        return;
    };
    let url = database.url.clone();
    let mut settings = settings_for(&url);
    settings.database.auto_migrate = false;
    let db = api::db::connect(&url).await.unwrap();
    let err = api::db::prepare(&db, &settings.database)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("wrapd migrate up"), "{err}");
    settings.database.auto_migrate = true;
    api::db::prepare(&db, &settings.database).await.unwrap();
    settings.database.auto_migrate = false;
    api::db::prepare(&db, &settings.database).await.unwrap();
    db.close().await.unwrap();
}

#[tokio::test]
async fn sqlite_is_migrated_on_start_even_without_auto_migrate() {
    let database = testing::EmptyDb::create("sqlite").await;
    let url = database.url.clone();
    let mut settings = settings_for(&url);
    settings.database.auto_migrate = false;
    let db = api::db::connect(&url).await.unwrap();
    assert!(!api::db::pending_names(&db).await.unwrap().is_empty());
    api::db::prepare(&db, &settings.database).await.unwrap();
    assert!(api::db::pending_names(&db).await.unwrap().is_empty());
    db.close().await.unwrap();
}
