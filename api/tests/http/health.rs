//! The real server on a free port: probes answer, unknown paths get problem+json 404.
//! Runs on SQLite always, and on PostgreSQL too when WRAP_TEST_POSTGRES_URL is set (each test
//! in a fresh database it drops afterwards).

use api::settings::Settings;
use reqwest::StatusCode;
use uuid::Uuid;

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

/// A fresh PostgreSQL database on the WRAP_TEST_POSTGRES_URL server, dropped on `drop_db`.
async fn fresh_postgres() -> Option<String> {
    let base = std::env::var("WRAP_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    let name = format!("wrap_test_{}", Uuid::now_v7().simple());
    let url = api::db::with_database(&base, &name)
        .expect("WRAP_TEST_POSTGRES_URL must be a postgres:// URL");
    assert!(
        api::db::create_postgres_database_if_missing(&url)
            .await
            .unwrap()
    );
    Some(url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_on_sqlite() {
    let path = std::env::temp_dir().join(format!("wrapd-health-{}.db", Uuid::now_v7()));
    check_probes(&format!("sqlite://{}?mode=rwc", path.display())).await;
    api::db::remove_sqlite_files(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_on_postgres() {
    let Some(url) = fresh_postgres().await else {
        eprintln!("WRAP_TEST_POSTGRES_URL not set: PostgreSQL probe test skipped");
        return;
    };
    check_probes(&url).await;
    api::db::drop_postgres_database(&url).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_start_refuses_pending_migrations_unless_auto_migrate() {
    let Some(url) = fresh_postgres().await else {
        eprintln!("WRAP_TEST_POSTGRES_URL not set: PostgreSQL start-up test skipped");
        return;
    };
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
    api::db::drop_postgres_database(&url).await.unwrap();
}

#[tokio::test]
async fn sqlite_is_migrated_on_start_even_without_auto_migrate() {
    let path = std::env::temp_dir().join(format!("wrapd-migrate-{}.db", Uuid::now_v7()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut settings = settings_for(&url);
    settings.database.auto_migrate = false;
    let db = api::db::connect(&url).await.unwrap();
    assert!(!api::db::pending_names(&db).await.unwrap().is_empty());
    api::db::prepare(&db, &settings.database).await.unwrap();
    assert!(api::db::pending_names(&db).await.unwrap().is_empty());
    db.close().await.unwrap();
    api::db::remove_sqlite_files(&path);
}
