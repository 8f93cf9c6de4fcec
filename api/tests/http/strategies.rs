//! Tests of `/v1/strategies`: managers' strategies and their model versions.
//!
//! Each flow end to end, every refusal with the field it names and no rows written, and
//! isolation: another manager's strategy, or one a distributor has no active agreement for,
//! answers 404 exactly like a missing id; the kinds and roles that may not write get 403.

use ledger::{Asset, Ledger};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{Res, TestServer};
use crate::on_each_backend;

on_each_backend!(strategy_and_versions_flow, strategy_and_versions_flow);
on_each_backend!(strategies_are_checked, strategies_are_checked);
on_each_backend!(versions_are_checked, versions_are_checked);
on_each_backend!(
    distributor_sees_only_agreed_strategies,
    distributor_sees_only_agreed_strategies
);
on_each_backend!(documented_in_openapi, documented_in_openapi);

/// The tables this feature writes, and the audit log: compared before and after a refusal.
pub const TABLES: [&str; 7] = [
    "strategies",
    "strategy_versions",
    "strategy_weights",
    "agreements",
    "agreement_terms",
    "platform_fees",
    "audit_log",
];

pub async fn counts(s: &TestServer) -> Vec<i64> {
    let mut out = Vec::new();
    for t in TABLES {
        out.push(s.count_rows(t).await);
    }
    out
}

/// Registers instrument `code` (scale 0, quote unit 10,000) priced in `currency`, as the
/// instruments work will through its own endpoint.
pub async fn seed_instrument(s: &TestServer, code: &str, currency: &str) {
    if currency != "JPY" {
        // Currencies other than the base one have no endpoint yet: the books register them.
        Ledger::new(s.db.clone())
            .create_asset(&Asset::currency(currency, 2))
            .await
            .unwrap();
    }
    let platform = s.token(&s.platform).await;
    let r = s
        .post(
            &platform,
            "/v1/instruments",
            Some(json!({
                "code": code,
                "name": format!("Fund {code}"),
                "kind": "investment_trust",
                "currency": currency,
                "unit_scale": 0,
                "quote_unit": 10000,
            })),
        )
        .await;
    r.ok(201);
}

pub fn strategy_body(code: &str) -> Value {
    json!({
        "code": code,
        "name": format!("Strategy {code}"),
        "description": "Global balanced",
        "base_currency": "JPY",
        "risk_level": 3,
        "expected_return_annual": "0.045",
        "volatility_annual": "0.12",
        "drift_band_kind": "absolute",
        "drift_band": "0.05",
        "rebalance_calendar": "quarterly",
        "cooldown_days": 30,
        "min_initial_investment": "100000"
    })
}

/// A strategy of the manager `token` with one model version (effective 2026-01-01) on
/// instrument `JP90C000AAA1` (seeded if needed).
pub async fn strategy_with_version(s: &TestServer, token: &str, code: &str) -> Uuid {
    let r = s
        .post(token, "/v1/strategies", Some(strategy_body(code)))
        .await;
    let id: Uuid = r.ok(201)["id"].as_str().unwrap().parse().unwrap();
    if Ledger::new(s.db.clone())
        .asset("JP90C000AAA1")
        .await
        .is_err()
    {
        seed_instrument(s, "JP90C000AAA1", "JPY").await;
    }
    s.post(
        token,
        &format!("/v1/strategies/{id}/versions"),
        Some(
            json!({"effective_date": "2026-01-01", "cash_weight": "0.02",
                    "weights": [{"instrument": "JP90C000AAA1", "weight": "0.98"}]}),
        ),
    )
    .await
    .ok(201);
    id
}

/// Asserts a 422 naming `field`, and returns the problem.
#[track_caller]
pub fn names(r: &Res, status: u16, field: &str) -> Value {
    let p = r.problem(status).clone();
    assert_eq!(p["errors"][0]["field"], field, "{}", r.text);
    p
}

/// Runs raw SQL on the server's database (to show what the schema itself refuses).
pub async fn execute(s: &TestServer, sql: &str) -> Result<u64, sea_orm::DbErr> {
    use sea_orm::ConnectionTrait as _;
    s.db.execute_raw(sea_orm::Statement::from_string(
        s.db.get_database_backend(),
        sql.to_owned(),
    ))
    .await
    .map(|r| r.rows_affected())
}

async fn patch(s: &TestServer, token: &str, path: &str, body: Value) -> Res {
    s.send(
        reqwest::Method::PATCH,
        Some(token),
        path,
        &[],
        Some(("application/json", serde_json::to_vec(&body).unwrap())),
    )
    .await
}

async fn strategy_and_versions_flow(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let (m, mt) = s.tenant_with_token("manager", "Fuji AM").await;
    seed_instrument(&s, "JP90C000AAA1", "JPY").await;
    seed_instrument(&s, "JP90C000BBB2", "JPY").await;
    let audit = s.audit_count().await;

    let r = s
        .post(&mt, "/v1/strategies", Some(strategy_body("BAL-60.40")))
        .await;
    let created = r.ok(201).clone();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(r.headers["location"], format!("/v1/strategies/{id}"));
    assert_eq!(created["manager_tenant_id"], m.to_string());
    assert_eq!(created["min_initial_investment"], "100000");
    assert_eq!(created["expected_return_annual"], "0.045");
    assert_eq!(created["drift_band_kind"], "absolute");
    assert_eq!(created["status"], "active");
    let got = s.get(&mt, &format!("/v1/strategies/{id}")).await;
    assert_eq!(got.ok(200), &created);
    let list = s.get(&mt, "/v1/strategies").await;
    assert_eq!(list.ok(200)["items"].as_array().unwrap().len(), 1);

    let r = patch(
        &s,
        &mt,
        &format!("/v1/strategies/{id}"),
        json!({"name": "Balanced 60/40", "risk_level": 4}),
    )
    .await;
    let b = r.ok(200);
    assert_eq!(b["name"], "Balanced 60/40");
    assert_eq!(b["risk_level"], 4);
    assert_eq!(b["code"], "BAL-60.40");

    let versions = format!("/v1/strategies/{id}/versions");
    let r = s
        .post(
            &mt,
            &versions,
            Some(
                json!({"effective_date": "2026-12-01", "cash_weight": "0.02",
                        "weights": [{"instrument": "JP90C000BBB2", "weight": "0.38"},
                                    {"instrument": "JP90C000AAA1", "weight": "0.6"}]}),
            ),
        )
        .await;
    let v1 = r.ok(201);
    assert_eq!(v1["version"], 1);
    // Stored sorted by instrument, exact strings.
    assert_eq!(v1["weights"][0]["instrument"], "JP90C000AAA1");
    assert_eq!(v1["weights"][0]["weight"], "0.6");
    let r = s
        .post(
            &mt,
            &versions,
            Some(json!({"effective_date": "2027-01-04", "cash_weight": "0",
                        "weights": [{"instrument": "JP90C000AAA1", "weight": "0.3333333333"},
                                    {"instrument": "JP90C000BBB2", "weight": "0.6666666667"}]})),
        )
        .await;
    assert_eq!(r.ok(201)["version"], 2);

    let all = s.get(&mt, &versions).await;
    let items = all.ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1]["weights"][1]["weight"], "0.6666666667");
    let first = s.get(&mt, &format!("{versions}?limit=1")).await;
    assert_eq!(first.ok(200)["next_cursor"], "1");
    let second = s.get(&mt, &format!("{versions}?limit=1&cursor=1")).await;
    assert_eq!(second.ok(200)["items"][0]["version"], 2);
    assert!(second.body.get("next_cursor").is_none());

    for (on, version) in [
        ("2026-12-01", 1),
        ("2027-01-03", 1),
        ("2027-01-04", 2),
        ("2030-01-01", 2),
    ] {
        let r = s.get(&mt, &format!("{versions}/current?on={on}")).await;
        assert_eq!(r.ok(200)["version"], version, "{on}");
    }
    s.get(&mt, &format!("{versions}/current?on=2026-11-30"))
        .await
        .problem(404);
    names(
        &s.get(&mt, &format!("{versions}/current?on=tomorrow")).await,
        400,
        "on",
    );
    names(
        &s.get(&mt, &format!("{versions}?cursor=x")).await,
        400,
        "cursor",
    );

    // The version function the wraps work calls.
    let on = chrono::NaiveDate::from_ymd_opt(2027, 2, 1).unwrap();
    let v = wraps::market::version_in_effect(&s.db, m, id.parse().unwrap(), on)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.version, 2);
    assert_eq!(v.weights.len(), 2);

    // Create, patch, two versions: four audit records.
    assert_eq!(s.audit_count().await, audit + 4);
    s.stop().await;
}

async fn strategies_are_checked(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let (_, mt) = s.tenant_with_token("manager", "Fuji AM").await;
    seed_instrument(&s, "US0000000001", "USD").await;
    s.post(&mt, "/v1/strategies", Some(strategy_body("TAKEN")))
        .await
        .ok(201);
    let before = counts(&s).await;

    let with = |field: &str, value: Value| {
        let mut b = strategy_body("NEW");
        b[field] = value;
        b
    };
    let cases = [
        (with("code", json!("has space")), "code"),
        (with("code", json!("x".repeat(65))), "code"),
        (with("name", json!("")), "name"),
        (with("risk_level", json!(0)), "risk_level"),
        (with("risk_level", json!(6)), "risk_level"),
        (
            with("expected_return_annual", json!("1.5")),
            "expected_return_annual",
        ),
        (
            with("expected_return_annual", json!(0.045)),
            "expected_return_annual",
        ),
        (
            with("volatility_annual", json!("-0.1")),
            "volatility_annual",
        ),
        (with("volatility_annual", json!("abc")), "volatility_annual"),
        (with("drift_band", json!("0")), "drift_band"),
        (with("drift_band", json!("1")), "drift_band"),
        (
            with("drift_band_kind", json!("sideways")),
            "drift_band_kind",
        ),
        (
            with("rebalance_calendar", json!("weekly")),
            "rebalance_calendar",
        ),
        (with("cooldown_days", json!(366)), "cooldown_days"),
        (
            with("min_initial_investment", json!("-1")),
            "min_initial_investment",
        ),
        (
            with("min_initial_investment", json!("100.5")),
            "min_initial_investment",
        ),
        (with("base_currency", json!("XYZ")), "base_currency"),
        (
            with("base_currency", json!("US0000000001")),
            "base_currency",
        ),
        (with("surprise", json!(1)), "body"),
    ];
    for (body, field) in cases {
        let r = s.post(&mt, "/v1/strategies", Some(body.clone())).await;
        if field == "body" {
            let p = r.problem(422);
            assert!(
                p["errors"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains("surprise")
            );
        } else {
            names(&r, 422, field);
        }
    }
    let r = s
        .post(&mt, "/v1/strategies", Some(strategy_body("TAKEN")))
        .await;
    r.problem(409);
    s.post(&mt, "/v1/strategies", None).await.problem(415);
    let id = s.get(&mt, "/v1/strategies").await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (body, field) in [
        (json!({}), "body"),
        (json!({"risk_level": 9}), "risk_level"),
        (json!({"status": "paused"}), "status"),
        (json!({"code": "RENAMED"}), "body"),
        (json!({"name": " padded "}), "name"),
    ] {
        let r = patch(&s, &mt, &format!("/v1/strategies/{id}"), body).await;
        assert_eq!(r.status.as_u16(), 422, "{}", r.text);
        if field != "body" {
            names(&r, 422, field);
        }
    }
    names(&s.get(&mt, "/v1/strategies?limit=0").await, 400, "limit");
    names(&s.get(&mt, "/v1/strategies?sort=x").await, 400, "sort");
    names(&s.get(&mt, "/v1/strategies/not-a-uuid").await, 400, "id");
    assert_eq!(counts(&s).await, before);
    s.stop().await;
}

async fn versions_are_checked(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let (_, mt) = s.tenant_with_token("manager", "Fuji AM").await;
    let id = strategy_with_version(&s, &mt, "BAL").await;
    seed_instrument(&s, "JP90C000BBB2", "JPY").await;
    seed_instrument(&s, "US0000000001", "USD").await;
    seed_instrument(&s, "JP90C000SUS3", "JPY").await;
    let platform = s.token(&s.platform).await;
    patch(
        &s,
        &platform,
        "/v1/instruments/JP90C000SUS3",
        json!({"status": "suspended"}),
    )
    .await
    .ok(200);
    let path = format!("/v1/strategies/{id}/versions");
    let before = counts(&s).await;

    let body = |date: &str, cash: &str, weights: &[(&str, &str)]| {
        json!({
            "effective_date": date,
            "cash_weight": cash,
            "weights": weights.iter().map(|(i, w)| json!({"instrument": i, "weight": w})).collect::<Vec<_>>(),
        })
    };
    let a = "JP90C000AAA1";
    let b = "JP90C000BBB2";
    let cases = [
        (
            body("2027-01-01", "0", &[(a, "0.5"), (b, "0.4999999999")]),
            "weights",
            "0.9999999999",
        ),
        (
            body("2027-01-01", "0", &[(a, "0.5"), (b, "0.5000000001")]),
            "weights",
            "1.0000000001",
        ),
        (
            body("2027-01-01", "0", &[(a, "0.5"), ("JP99NOSUCH01", "0.5")]),
            "weights",
            "JP99NOSUCH01",
        ),
        (
            body("2027-01-01", "0", &[(a, "0.5"), ("US0000000001", "0.5")]),
            "weights",
            "USD",
        ),
        (
            body("2027-01-01", "0", &[(a, "0.5"), ("JP90C000SUS3", "0.5")]),
            "weights",
            "suspended",
        ),
        (
            body("2027-01-01", "0", &[(a, "0.5"), ("JPY", "0.5")]),
            "weights",
            "currency",
        ),
        (
            body("2027-01-01", "0", &[(a, "0.5"), (a, "0.5")]),
            "weights",
            "more than once",
        ),
        (
            body(
                "2027-01-01",
                "0",
                &[(a, "0.12345678901"), (b, "0.87654321099")],
            ),
            "weights",
            "decimals",
        ),
        (
            body("2027-01-01", "0", &[(a, "0"), (b, "1")]),
            "weights",
            "(0, 1]",
        ),
        (
            body("2027-01-01", "0", &[(a, "1.2"), (b, "-0.2")]),
            "weights",
            "(0, 1]",
        ),
        (body("2027-01-01", "1", &[]), "weights", "at least one"),
        (body("2027-01-01", "-0.1", &[(a, "1.1")]), "cash_weight", ""),
        (
            body("2025-12-31", "0", &[(a, "1")]),
            "effective_date",
            "2026-01-01",
        ),
        (
            body("2026-01-01", "0", &[(a, "1")]),
            "effective_date",
            "2026-01-01",
        ),
        (
            json!({"effective_date": "2027-13-01", "cash_weight": "0", "weights": []}),
            "effective_date",
            "",
        ),
        (
            json!({"effective_date": "2027-01-01", "cash_weight": 0, "weights": []}),
            "cash_weight",
            "",
        ),
        (
            json!({"effective_date": "2027-01-01", "cash_weight": "0", "weights": [{"instrument": a, "weight": 1}]}),
            "weights[0].weight",
            "",
        ),
    ];
    for (body, field, says) in cases {
        let r = s.post(&mt, &path, Some(body)).await;
        let p = names(&r, 422, field);
        assert!(
            p["errors"][0]["message"].as_str().unwrap().contains(says),
            "{says}: {}",
            r.text
        );
    }
    // A well-formed version is accepted after all that, as version 2.
    let r = s
        .post(
            &mt,
            &path,
            Some(body("2027-01-01", "0", &[(a, "0.5"), (b, "0.5")])),
        )
        .await;
    assert_eq!(r.ok(201)["version"], 2);
    let after = counts(&s).await;
    assert_eq!(after[1], before[1] + 1);
    assert_eq!(after[2], before[2] + 2);
    // No route changes or removes a version.
    for method in [
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
    ] {
        let r = s.send(method, Some(&mt), &path, &[], None).await;
        r.problem(405);
    }
    // Nor can SQL: the schema refuses it.
    for sql in [
        "UPDATE strategy_versions SET cash_weight = '0.5'",
        "DELETE FROM strategy_versions",
        "UPDATE strategy_weights SET weight = '0.5'",
        "DELETE FROM strategy_weights",
    ] {
        assert!(execute(&s, sql).await.is_err(), "{sql}");
    }
    assert_eq!(counts(&s).await, after);
    s.stop().await;
}

async fn distributor_sees_only_agreed_strategies(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let root = s.token(&s.platform).await;
    let (m, mt) = s.tenant_with_token("manager", "Fuji AM").await;
    let (_, m2t) = s.tenant_with_token("manager", "Other AM").await;
    let (d, dt) = s.tenant_with_token("distributor", "Sakura Bank").await;
    let (_, d2t) = s.tenant_with_token("distributor", "Other Bank").await;
    let agreed = strategy_with_version(&s, &mt, "AGREED").await;
    let other = strategy_with_version(&s, &mt, "OTHER").await;
    let missing = Uuid::now_v7();
    let mviewer = s.token_for_role(m, "viewer").await;

    // Before any agreement, only the manager and the platform see it.
    let missing_answer = s.get(&dt, &format!("/v1/strategies/{missing}")).await;
    missing_answer.problem(404);
    for token in [&dt, &d2t, &m2t] {
        for path in [
            format!("/v1/strategies/{agreed}"),
            format!("/v1/strategies/{agreed}/versions"),
            format!("/v1/strategies/{agreed}/versions/current?on=2026-06-01"),
        ] {
            let r = s.get(token, &path).await;
            assert_eq!(r.status.as_u16(), 404, "{path}");
            assert_eq!(r.text, missing_answer.text, "{path}");
        }
        assert_eq!(
            s.get(token, "/v1/strategies").await.ok(200)["items"],
            json!([])
        );
    }
    s.get(&root, &format!("/v1/strategies/{agreed}"))
        .await
        .ok(200);
    assert_eq!(
        s.get(&root, "/v1/strategies").await.ok(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // A proposed agreement shows nothing yet; an accepted one shows that strategy only.
    let r = s
        .post(
            &dt,
            "/v1/agreements",
            Some(json!({"manager_tenant_id": m, "strategy_id": agreed,
                        "terms": crate::agreements::terms_body("2026-01-01")})),
        )
        .await;
    let agreement = r.ok(201)["id"].as_str().unwrap().to_owned();
    s.get(&dt, &format!("/v1/strategies/{agreed}"))
        .await
        .problem(404);
    s.post(&mt, &format!("/v1/agreements/{agreement}/accept"), None)
        .await
        .ok(200);
    s.get(&dt, &format!("/v1/strategies/{agreed}"))
        .await
        .ok(200);
    s.get(&dt, &format!("/v1/strategies/{agreed}/versions"))
        .await
        .ok(200);
    let list = s.get(&dt, "/v1/strategies").await;
    let items = list.ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], agreed.to_string());
    let r = s.get(&dt, &format!("/v1/strategies/{other}")).await;
    assert_eq!(r.text, missing_answer.text);
    // The other distributor and the other manager still see nothing.
    s.get(&d2t, &format!("/v1/strategies/{agreed}"))
        .await
        .problem(404);
    s.get(&m2t, &format!("/v1/strategies/{agreed}"))
        .await
        .problem(404);

    // Writes: those who see it but may not write get 403; those who do not see it, 404.
    let before = counts(&s).await;
    let version = json!({"effective_date": "2027-01-01", "cash_weight": "0",
                         "weights": [{"instrument": "JP90C000AAA1", "weight": "1"}]});
    for (token, status) in [
        (&dt, 403),
        (&root, 403),
        (&mviewer, 403),
        (&m2t, 404),
        (&d2t, 404),
    ] {
        let r = patch(
            &s,
            token,
            &format!("/v1/strategies/{agreed}"),
            json!({"name": "Mine"}),
        )
        .await;
        r.problem(status);
        let r = s
            .post(
                token,
                &format!("/v1/strategies/{agreed}/versions"),
                Some(version.clone()),
            )
            .await;
        r.problem(status);
    }
    let r = patch(
        &s,
        &m2t,
        &format!("/v1/strategies/{missing}"),
        json!({"name": "Mine"}),
    )
    .await;
    assert_eq!(r.text, missing_answer.text);
    for token in [&dt, &root, &mviewer] {
        s.post(token, "/v1/strategies", Some(strategy_body("NOPE")))
            .await
            .problem(403);
    }
    assert_eq!(counts(&s).await, before);
    let _ = d;
    s.stop().await;
}

async fn documented_in_openapi(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let r = s
        .http
        .get(format!("{}/v1/openapi.json", s.base))
        .send()
        .await
        .unwrap();
    let doc = TestServer::read(r).await;
    let paths = doc.ok(200)["paths"].as_object().unwrap().clone();
    for (route, methods) in [
        ("/v1/strategies", &["get", "post"][..]),
        ("/v1/strategies/{id}", &["get", "patch"]),
        ("/v1/strategies/{id}/versions", &["get", "post"]),
        ("/v1/strategies/{id}/versions/current", &["get"]),
        ("/v1/agreements", &["get", "post"]),
        ("/v1/agreements/{id}", &["get"]),
        ("/v1/agreements/{id}/accept", &["post"]),
        ("/v1/agreements/{id}/decline", &["post"]),
        ("/v1/agreements/{id}/terms", &["get", "post"]),
        ("/v1/tenants/{id}/platform-fee", &["get", "put"]),
    ] {
        for method in methods {
            assert!(
                paths[route][method].is_object(),
                "{method} {route} not documented"
            );
        }
    }
    s.stop().await;
}
