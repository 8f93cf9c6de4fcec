//! Hostile input (issue 23, item 4): every bound on what a request may hold answers 4xx
//! problem+json naming what is wrong, and a refused request writes nothing. The bounds are
//! enforced in one place, `api/src/extract.rs` (body size, nesting, string lengths, array
//! lengths, `limit`), and `routes::instruments::MAX_UPLOAD_ROWS` for uploads (tried in
//! `instruments.rs`); the statement timeout in `ledger::connect_with`.

use serde_json::{Value, json};

use crate::common::{Res, TestServer};
use crate::on_each_backend;

on_each_backend!(hostile_bodies_are_refused_by_name, hostile_bodies);
on_each_backend!(page_sizes_are_bounded, page_sizes);

async fn post_raw(s: &TestServer, token: &str, path: &str, body: Vec<u8>) -> Res {
    s.send(
        reqwest::Method::POST,
        Some(token),
        path,
        &[],
        Some(("application/json", body)),
    )
    .await
}

/// The one field error a 422 names.
#[track_caller]
fn field_error(r: &Res) -> (String, String) {
    let b = r.problem(422);
    (
        b["errors"][0]["field"].as_str().unwrap().to_owned(),
        b["errors"][0]["message"].as_str().unwrap().to_owned(),
    )
}

async fn hostile_bodies(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let root = s.token(&s.platform).await;
    let tenants_before = s.count_rows("tenants").await;
    let audit_before = s.audit_count().await;
    let tenant = |name: Value, email: Value| json!({"kind": "distributor", "name": name, "contact_email": email});

    // Body size: over 1 MiB (the default `server.body_limit_bytes`) is 413.
    let big = tenant(json!("x".repeat(1024 * 1024)), json!("ops@bank.example"));
    let r = post_raw(&s, &root, "/v1/tenants", big.to_string().into_bytes()).await;
    let b = r.problem(413);
    assert!(
        b["detail"].as_str().unwrap().contains("1048576 bytes"),
        "{}",
        r.text
    );

    // Nesting: 33 levels is refused before parsing, 400 naming the bound.
    let deep = format!(
        r#"{{"kind":"distributor","name":"Deep","contact_email":"a@b.example","display":{}1{}}}"#,
        "[".repeat(32),
        "]".repeat(32)
    );
    let r = post_raw(&s, &root, "/v1/tenants", deep.into_bytes()).await;
    let b = r.problem(400);
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("more than 32 levels"),
        "{}",
        r.text
    );
    // Far deeper than serde_json's own guard: still the same answer, not a stack overflow.
    let abyss = "[".repeat(100_000);
    let r = post_raw(&s, &root, "/v1/tenants", abyss.into_bytes()).await;
    r.problem(400);

    // String lengths: each field's bound, named with its path.
    let cases = [
        (
            tenant(json!("n".repeat(201)), json!("a@b.example")),
            "name",
            "200 characters",
        ),
        (
            tenant(
                json!("Bank"),
                json!(format!("{}@b.example", "a".repeat(300))),
            ),
            "contact_email",
            "254 characters",
        ),
        (
            json!({"kind": "k".repeat(1_001), "name": "Bank", "contact_email": "a@b.example"}),
            "kind",
            "1000 characters",
        ),
        (
            json!({"kind": "distributor", "name": "Bank", "contact_email": "a@b.example",
                   "display": {"brand_name": "b".repeat(1_001)}}),
            "display.brand_name",
            "1000 characters",
        ),
    ];
    for (body, field, bound) in cases {
        let r = post_raw(&s, &root, "/v1/tenants", body.to_string().into_bytes()).await;
        let (named, message) = field_error(&r);
        assert_eq!(named, field, "{}", r.text);
        assert!(message.contains(bound), "{}", r.text);
    }

    // Arrays: at most 1,000 items in any array of a body (the fee-impact projection's own
    // rule is 10 scenarios; the backstop answers first, naming the field).
    let rates = vec!["0.01"; 1_001];
    let r = s
        .post(
            &root,
            "/v1/projections/fee-impact",
            Some(json!({"initial_amount": "1000000", "years": 10,
                        "gross_annual_return": "0.05", "fee_rates": rates})),
        )
        .await;
    let (named, message) = field_error(&r);
    assert_eq!(named, "fee_rates", "{}", r.text);
    assert!(message.contains("1000 items"), "{}", r.text);

    // An upload's cells (JSON or CSV): at most 200 characters, the row named, nothing stored.
    let code = "C".repeat(5_000);
    let csv = format!("instrument,date,price\n{code},2026-12-01,100\nJP0000000001,2026-12-01,1\n");
    let r = s
        .send(
            reqwest::Method::POST,
            Some(&root),
            "/v1/prices",
            &[],
            Some(("text/csv", csv.into_bytes())),
        )
        .await;
    let b = r.problem(422);
    let long = b["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["field"] == "row 2: instrument")
        .unwrap_or_else(|| panic!("{}", r.text));
    assert!(long["message"].as_str().unwrap().contains("200 characters"));
    assert!(!r.text.contains(&code), "the cell is not echoed");
    let r = s
        .post(
            &root,
            "/v1/prices",
            Some(json!({"prices": [{"instrument": code, "date": "2026-12-01", "price": "1"}]})),
        )
        .await;
    assert_eq!(
        r.problem(422)["errors"][0]["field"],
        "prices/0/instrument",
        "{}",
        r.text
    );

    // Nothing of it was written.
    assert_eq!(s.count_rows("tenants").await, tenants_before);
    assert_eq!(s.audit_count().await, audit_before);
    // The bounds are not tighter than the rules: the longest allowed name is accepted.
    s.post(
        &root,
        "/v1/tenants",
        Some(tenant(json!("n".repeat(200)), json!("ops@bank.example"))),
    )
    .await
    .ok(201);
    s.stop().await;
}

async fn page_sizes(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let root = s.token(&s.platform).await;
    // Every list the platform reads: a `limit` above its maximum (or zero, or not a number)
    // is a 400 naming `limit` and the range; the maximum itself is served.
    let lists = [
        ("/v1/tenants", 1000),
        ("/v1/audit", 1000),
        ("/v1/instruments", 1000),
        ("/v1/prices", 1000),
        ("/v1/strategies", 1000),
        ("/v1/instructions", 1000),
        ("/v1/ledger/reconciliation/custodian-statements", 1000),
    ];
    for (path, max) in lists {
        for bad in [
            format!("{}", max + 1),
            "0".into(),
            "1e9".into(),
            "-1".into(),
        ] {
            let r = s.get(&root, &format!("{path}?limit={bad}")).await;
            let b = r.problem(400);
            assert_eq!(b["errors"][0]["field"], "limit", "{path}: {}", r.text);
            assert!(
                b["errors"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("1 to {max}")),
                "{path}: {}",
                r.text
            );
        }
        s.get(&root, &format!("{path}?limit={max}")).await.ok(200);
    }
    s.stop().await;
}

/// `[database] statement_timeout_seconds`: PostgreSQL cancels a statement that runs longer
/// (SQLite has none: its writers wait at most the 30 s busy timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_cancels_long_statements() {
    use sea_orm::ConnectionTrait as _;
    if !testing::has_postgres() {
        eprintln!("WRAP_TEST_POSTGRES_URL not set: PostgreSQL run skipped");
        return;
    }
    let database = testing::EmptyDb::create("postgres").await;
    let db = api::db::connect_with(&database.url, Some(std::time::Duration::from_secs(1)))
        .await
        .unwrap();
    let backend = db.get_database_backend();
    let shown = db
        .query_one_raw(sea_orm::Statement::from_string(
            backend,
            "SELECT current_setting('statement_timeout')",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<String>(0)
        .unwrap();
    assert_eq!(shown, "1s");
    let err = db
        .execute_raw(sea_orm::Statement::from_string(
            backend,
            "SELECT pg_sleep(3)",
        ))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("statement timeout"), "{err}");
    // The pool goes on serving.
    db.execute_raw(sea_orm::Statement::from_string(backend, "SELECT 1"))
        .await
        .unwrap();
    db.close().await.unwrap();
    // The setting's default, as shipped.
    let settings = api::settings::Settings::builtin().unwrap();
    assert_eq!(
        settings.database.statement_timeout(),
        Some(std::time::Duration::from_secs(60))
    );
    drop(database);
}
