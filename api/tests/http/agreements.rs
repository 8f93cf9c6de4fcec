//! Tests of `/v1/agreements`: distributor × manager × strategy, their terms, and platform fees.
//!
//! Each flow end to end (propose → accept → active, decline, new terms versions and the terms
//! in effect on a date, the `offer` the wraps work calls, platform fees and their history),
//! every refusal with its status, the field it names and no rows written, and isolation: an
//! agreement or platform fee of another tenant answers 404 exactly like a missing id.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestServer;
use crate::on_each_backend;
use crate::strategies::{counts, names, strategy_with_version};

on_each_backend!(propose_accept_decline, propose_accept_decline);
on_each_backend!(terms_are_checked, terms_are_checked);
on_each_backend!(terms_versions, terms_versions);
on_each_backend!(foreign_ids_look_missing, foreign_ids_look_missing);
on_each_backend!(platform_fees, platform_fees);

/// Tiered terms effective on `date`: 1.1 % up to ¥30 M, 0.9 % above.
pub fn terms_body(date: &str) -> Value {
    json!({
        "effective_date": date,
        "management_fee": {"kind": "tiered", "tiers": [
            {"up_to": "30000000", "rate_annual": "0.011"},
            {"up_to": null, "rate_annual": "0.009"}
        ]},
        "split": {"channel": "0.5", "manager": "0.4", "platform": "0.1"},
        "billing_period": "quarterly"
    })
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

async fn propose_accept_decline(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let root = s.token(&s.platform).await;
    let (m, mt) = s.tenant_with_token("manager", "Fuji AM").await;
    let (_, m2t) = s.tenant_with_token("manager", "Other AM").await;
    let (d1, dt) = s.tenant_with_token("distributor", "Sakura Bank").await;
    let strategy = strategy_with_version(&s, &mt, "BAL").await;
    let second = strategy_with_version(&s, &mt, "GROWTH").await;
    let mviewer = s.token_for_role(m, "viewer").await;
    let audit = s.audit_count().await;

    let r = s
        .post(
            &dt,
            "/v1/agreements",
            Some(json!({"manager_tenant_id": m, "strategy_id": strategy,
                        "terms": terms_body("2026-01-01")})),
        )
        .await;
    let b = r.ok(201).clone();
    let id = b["id"].as_str().unwrap().to_owned();
    assert_eq!(r.headers["location"], format!("/v1/agreements/{id}"));
    assert_eq!(b["status"], "proposed");
    assert_eq!(b["distributor_tenant_id"], d1.to_string());
    assert_eq!(b["proposed_terms"]["version"], 1);
    // Defaults for JPY, and exact strings.
    assert_eq!(b["proposed_terms"]["terms"]["consumption_tax_rate"], "0.10");
    assert_eq!(b["proposed_terms"]["terms"]["min_contribution"], "1000");
    assert_eq!(
        b["proposed_terms"]["terms"]["management_fee"]["tiers"][0]["up_to"],
        "30000000"
    );
    assert_eq!(b["current_terms"], Value::Null);

    // Both parties and the platform see it; the manager lists it.
    for token in [&dt, &mt, &root] {
        assert_eq!(
            s.get(token, &format!("/v1/agreements/{id}")).await.ok(200)["status"],
            "proposed"
        );
    }
    let listed = s.get(&mt, "/v1/agreements?status=proposed").await;
    assert_eq!(listed.ok(200)["items"][0]["id"], id);
    assert_eq!(
        s.get(&mt, "/v1/agreements?status=active").await.ok(200)["items"],
        json!([])
    );
    assert_eq!(
        s.get(&dt, &format!("/v1/agreements?strategy_id={strategy}"))
            .await
            .ok(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Only its manager accepts: the distributor and the platform 403, another manager 404.
    let before = counts(&s).await;
    let accept = format!("/v1/agreements/{id}/accept");
    s.post(&dt, &accept, None).await.problem(403);
    s.post(&root, &accept, None).await.problem(403);
    let missing = s
        .post(
            &m2t,
            &format!("/v1/agreements/{}/accept", Uuid::now_v7()),
            None,
        )
        .await;
    let foreign = s.post(&m2t, &accept, None).await;
    foreign.problem(404);
    assert_eq!(foreign.text, missing.text);
    s.post(&mviewer, &accept, None).await.problem(403);
    // A second live agreement for the same strategy.
    let again = s
        .post(
            &dt,
            "/v1/agreements",
            Some(json!({"manager_tenant_id": m, "strategy_id": strategy,
                        "terms": terms_body("2026-01-01")})),
        )
        .await;
    again.problem(409);
    assert_eq!(counts(&s).await, before);

    let r = s.post(&mt, &accept, None).await;
    let b = r.ok(200);
    assert_eq!(b["status"], "active");
    assert_eq!(b["current_terms"]["version"], 1);
    assert_eq!(b["current_terms"]["status"], "accepted");
    assert_eq!(b["proposed_terms"], Value::Null);
    let before = counts(&s).await;
    s.post(&mt, &accept, None).await.problem(409);
    s.post(&mt, &format!("/v1/agreements/{id}/decline"), None)
        .await
        .problem(409);
    s.post(
        &dt,
        "/v1/agreements",
        Some(json!({"manager_tenant_id": m, "strategy_id": strategy,
                    "terms": terms_body("2026-01-01")})),
    )
    .await
    .problem(409);
    assert_eq!(counts(&s).await, before);

    // Decline a second one; a declined agreement is not live, so it may be proposed again.
    let r = s
        .post(
            &dt,
            "/v1/agreements",
            Some(json!({"manager_tenant_id": m, "strategy_id": second,
                        "terms": terms_body("2026-01-01")})),
        )
        .await;
    let declined = r.ok(201)["id"].as_str().unwrap().to_owned();
    let r = s
        .post(&mt, &format!("/v1/agreements/{declined}/decline"), None)
        .await;
    assert_eq!(r.ok(200)["status"], "declined");
    s.post(&mt, &format!("/v1/agreements/{declined}/accept"), None)
        .await
        .problem(409);
    s.get(&dt, &format!("/v1/strategies/{second}"))
        .await
        .problem(404);
    s.post(
        &dt,
        "/v1/agreements",
        Some(json!({"manager_tenant_id": m, "strategy_id": second,
                    "terms": terms_body("2026-01-01")})),
    )
    .await
    .ok(201);
    // Propose, accept, propose, decline, propose.
    assert_eq!(s.audit_count().await, audit + 5);
    names(
        &s.get(&dt, "/v1/agreements?status=open").await,
        400,
        "status",
    );
    names(
        &s.get(&dt, "/v1/agreements?strategy_id=x").await,
        400,
        "strategy_id",
    );
    s.stop().await;
}

async fn terms_are_checked(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let (m, mt) = s.tenant_with_token("manager", "Fuji AM").await;
    let (m2, _) = s.tenant_with_token("manager", "Other AM").await;
    let (d1, dt) = s.tenant_with_token("distributor", "Sakura Bank").await;
    let strategy = strategy_with_version(&s, &mt, "BAL").await;
    let retired = strategy_with_version(&s, &mt, "OLD").await;
    s.send(
        reqwest::Method::PATCH,
        Some(&mt),
        &format!("/v1/strategies/{retired}"),
        &[],
        Some(("application/json", br#"{"status":"retired"}"#.to_vec())),
    )
    .await
    .ok(200);
    let dviewer = s.token_for_role(d1, "viewer").await;
    let root = s.token(&s.platform).await;
    let before = counts(&s).await;

    let with = |path: &[&str], value: Value| {
        let mut t = terms_body("2026-01-01");
        let mut at = &mut t;
        for p in &path[..path.len() - 1] {
            at = &mut at[*p];
        }
        at[path[path.len() - 1]] = value;
        json!({"manager_tenant_id": m, "strategy_id": strategy, "terms": t})
    };
    let tiers = |t: Value| with(&["management_fee"], json!({"kind": "tiered", "tiers": t}));
    let cases = [
        (
            with(
                &["split"],
                json!({"channel": "0.5", "manager": "0.4", "platform": "0.0999999999"}),
            ),
            "terms.split",
        ),
        (
            with(
                &["split"],
                json!({"channel": "0.5", "manager": "0.4", "platform": "0.1000000001"}),
            ),
            "terms.split",
        ),
        (
            with(
                &["split"],
                json!({"channel": "1.1", "manager": "-0.1", "platform": "0"}),
            ),
            "terms.split",
        ),
        (
            with(&["split", "platform"], json!(0.1)),
            "terms.split.platform",
        ),
        (
            tiers(
                json!([{"up_to": "30000000", "rate_annual": "0.011"}, {"up_to": "10000000", "rate_annual": "0.01"}, {"up_to": null, "rate_annual": "0.009"}]),
            ),
            "terms.management_fee",
        ),
        (
            tiers(json!([{"up_to": "30000000", "rate_annual": "0.011"}])),
            "terms.management_fee",
        ),
        (
            tiers(
                json!([{"up_to": null, "rate_annual": "0.011"}, {"up_to": null, "rate_annual": "0.01"}]),
            ),
            "terms.management_fee",
        ),
        (tiers(json!([])), "terms.management_fee"),
        (
            with(
                &["management_fee"],
                json!({"kind": "flat", "rate_annual": "-0.01"}),
            ),
            "terms.management_fee",
        ),
        (
            with(
                &["management_fee"],
                json!({"kind": "flat", "rate_annual": "0.00000000001"}),
            ),
            "terms.management_fee",
        ),
        (
            with(
                &["management_fee"],
                json!({"kind": "banded", "rate_annual": "0.01"}),
            ),
            "terms.management_fee.kind",
        ),
        (
            with(&["consumption_tax_rate"], json!("1.5")),
            "terms.consumption_tax_rate",
        ),
        (
            with(&["min_contribution"], json!("1000.5")),
            "terms.min_contribution",
        ),
        (
            with(&["billing_period"], json!("weekly")),
            "terms.billing_period",
        ),
        (
            with(
                &["performance_fee"],
                json!({"rate": "0.1", "high_water_mark": true, "crystallisation": "monthly",
                                           "split": {"channel": "0.5", "manager": "0.5", "platform": "0"}}),
            ),
            "terms.performance_fee.crystallisation",
        ),
        (
            with(&["effective_date"], json!("2026-02-30")),
            "terms.effective_date",
        ),
        (
            with(
                &["performance_fee"],
                json!({"rate": "0.1", "high_water_mark": true, "crystallisation": "yearly",
                                           "split": {"channel": "0.5", "manager": "0.5", "platform": "0.1"}}),
            ),
            "terms.performance_fee.split",
        ),
        (
            with(
                &["performance_fee"],
                json!({"rate": "0.1", "high_water_mark": false, "crystallisation": "yearly",
                                           "split": {"channel": "0.5", "manager": "0.5", "platform": "0"}}),
            ),
            "terms.performance_fee.high_water_mark",
        ),
        (
            with(
                &["performance_fee"],
                json!({"rate": "0", "high_water_mark": true, "crystallisation": "at_close",
                                           "split": {"channel": "0.5", "manager": "0.5", "platform": "0"}}),
            ),
            "terms.performance_fee.rate",
        ),
        (
            json!({"manager_tenant_id": m, "strategy_id": Uuid::now_v7(), "terms": terms_body("2026-01-01")}),
            "strategy_id",
        ),
        (
            json!({"manager_tenant_id": m2, "strategy_id": strategy, "terms": terms_body("2026-01-01")}),
            "strategy_id",
        ),
        (
            json!({"manager_tenant_id": d1, "strategy_id": strategy, "terms": terms_body("2026-01-01")}),
            "strategy_id",
        ),
        (
            json!({"manager_tenant_id": m, "strategy_id": retired, "terms": terms_body("2026-01-01")}),
            "strategy_id",
        ),
        (
            json!({"manager_tenant_id": m, "strategy_id": "nope", "terms": terms_body("2026-01-01")}),
            "strategy_id",
        ),
    ];
    for (body, field) in cases {
        let r = s.post(&dt, "/v1/agreements", Some(body.clone())).await;
        names(&r, 422, field);
    }
    // A performance fee done right is accepted (after all those refusals), `at_close` too.
    let ok = with(
        &["performance_fee"],
        json!({"rate": "0.1", "high_water_mark": true, "crystallisation": "at_close",
                                              "split": {"channel": "0.3", "manager": "0.6", "platform": "0.1"}}),
    );
    // Managers, viewers and the platform do not propose.
    for token in [&mt, &dviewer, &root] {
        s.post(token, "/v1/agreements", Some(ok.clone()))
            .await
            .problem(403);
    }
    assert_eq!(counts(&s).await, before);
    let r = s.post(&dt, "/v1/agreements", Some(ok)).await;
    assert_eq!(
        r.ok(201)["proposed_terms"]["terms"]["performance_fee"]["crystallisation"],
        "at_close"
    );
    s.stop().await;
}

async fn terms_versions(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let (m, mt) = s.tenant_with_token("manager", "Fuji AM").await;
    let (d1, dt) = s.tenant_with_token("distributor", "Sakura Bank").await;
    let (d2, d2t) = s.tenant_with_token("distributor", "Other Bank").await;
    let strategy = strategy_with_version(&s, &mt, "BAL").await;
    let r = s
        .post(
            &dt,
            "/v1/agreements",
            Some(json!({"manager_tenant_id": m, "strategy_id": strategy,
                        "terms": terms_body("2026-01-01")})),
        )
        .await;
    let id: Uuid = r.ok(201)["id"].as_str().unwrap().parse().unwrap();
    let terms = format!("/v1/agreements/{id}/terms");
    let flat = |date: &str| {
        json!({"effective_date": date, "management_fee": {"kind": "flat", "rate_annual": "0.0088"},
               "split": {"channel": "0.45", "manager": "0.45", "platform": "0.1"},
               "billing_period": "monthly", "min_contribution": "5000"})
    };
    // Not yet active: no new terms, and no offer.
    let before = counts(&s).await;
    s.post(&dt, &terms, Some(flat("2027-01-01")))
        .await
        .problem(409);
    assert!(matches!(
        wraps::market::offer(&s.db, d1, id, date("2026-06-01")).await,
        Err(tenants::TenantsError::NotFound)
    ));
    assert_eq!(counts(&s).await, before);
    s.post(&mt, &format!("/v1/agreements/{id}/accept"), None)
        .await
        .ok(200);

    // New terms: later than the accepted ones, proposed by the distributor only.
    let before = counts(&s).await;
    names(
        &s.post(&dt, &terms, Some(flat("2026-01-01"))).await,
        422,
        "effective_date",
    );
    names(
        &s.post(&dt, &terms, Some(flat("2025-06-01"))).await,
        422,
        "effective_date",
    );
    let mut bad = flat("2027-01-01");
    bad["split"]["platform"] = json!("0.2");
    names(&s.post(&dt, &terms, Some(bad)).await, 422, "split");
    s.post(&mt, &terms, Some(flat("2027-01-01")))
        .await
        .problem(403);
    let missing = s
        .post(
            &d2t,
            &format!("/v1/agreements/{}/terms", Uuid::now_v7()),
            Some(flat("2027-01-01")),
        )
        .await;
    let foreign = s.post(&d2t, &terms, Some(flat("2027-01-01"))).await;
    foreign.problem(404);
    assert_eq!(foreign.text, missing.text);
    assert_eq!(counts(&s).await, before);

    let r = s.post(&dt, &terms, Some(flat("2027-01-01"))).await;
    let v2 = r.ok(201);
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["status"], "proposed");
    s.post(&dt, &terms, Some(flat("2027-02-01")))
        .await
        .problem(409);
    // Until accepted, version 1 applies on every date.
    let r = s.get(&dt, &format!("{terms}?on=2027-06-01")).await;
    assert_eq!(r.ok(200)["in_effect"]["version"], 1);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    let r = s
        .post(&mt, &format!("/v1/agreements/{id}/accept"), None)
        .await;
    let b = r.ok(200);
    assert_eq!(b["status"], "active");
    assert_eq!(b["proposed_terms"], Value::Null);
    for (on, version) in [
        ("2026-01-01", Value::from(1)),
        ("2026-12-31", 1.into()),
        ("2027-01-01", 2.into()),
        ("2030-01-01", 2.into()),
        ("2025-12-31", Value::Null),
    ] {
        let r = s.get(&mt, &format!("{terms}?on={on}")).await;
        let got = &r.ok(200)["in_effect"];
        assert_eq!(
            if got.is_null() {
                &Value::Null
            } else {
                &got["version"]
            },
            &version,
            "{on}"
        );
    }
    names(&s.get(&mt, &format!("{terms}?on=soon")).await, 400, "on");

    // A third version, declined: the second stays in effect.
    s.post(&dt, &terms, Some(flat("2028-01-01"))).await.ok(201);
    s.post(&mt, &format!("/v1/agreements/{id}/decline"), None)
        .await
        .ok(200);
    let r = s.get(&dt, &format!("{terms}?on=2029-01-01")).await;
    assert_eq!(r.ok(200)["in_effect"]["version"], 2);
    assert_eq!(r.body["items"][2]["status"], "declined");

    // Terms never change in place, not even through SQL; only their status moves.
    for sql in [
        "UPDATE agreement_terms SET terms = '{}'",
        "UPDATE agreement_terms SET effective_date = '2020-01-01'",
        "DELETE FROM agreement_terms",
    ] {
        assert!(crate::strategies::execute(&s, sql).await.is_err(), "{sql}");
    }

    // The offer the wraps work calls: the terms in effect on the date, exact.
    let offer = wraps::market::offer(&s.db, d1, id, date("2026-06-01"))
        .await
        .unwrap();
    assert_eq!(offer.manager_tenant_id, m);
    assert_eq!(offer.terms_version, 1);
    assert_eq!(offer.strategy.id, strategy);
    assert_eq!(offer.strategy.min_initial_investment, d("100000"));
    assert_eq!(offer.terms.min_contribution, d("1000"));
    assert_eq!(offer.terms.blended_annual_fee(d("50000000")), d("510000"));
    let offer = wraps::market::offer(&s.db, d1, id, date("2029-06-01"))
        .await
        .unwrap();
    assert_eq!(offer.terms_version, 2);
    assert_eq!(offer.terms.blended_annual_fee(d("50000000")), d("440000"));
    assert_eq!(offer.terms.min_contribution, d("5000"));
    assert!(
        wraps::market::offer(&s.db, d1, id, date("2025-06-01"))
            .await
            .is_err()
    );
    assert!(
        wraps::market::offer(&s.db, d2, id, date("2029-06-01"))
            .await
            .is_err()
    );
    s.stop().await;
}

async fn foreign_ids_look_missing(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let (m, mt) = s.tenant_with_token("manager", "Fuji AM").await;
    let (_, m2t) = s.tenant_with_token("manager", "Other AM").await;
    let (_, dt) = s.tenant_with_token("distributor", "Sakura Bank").await;
    let (_, d2t) = s.tenant_with_token("distributor", "Other Bank").await;
    let strategy = strategy_with_version(&s, &mt, "BAL").await;
    let r = s
        .post(
            &dt,
            "/v1/agreements",
            Some(json!({"manager_tenant_id": m, "strategy_id": strategy,
                        "terms": terms_body("2026-01-01")})),
        )
        .await;
    let id = r.ok(201)["id"].as_str().unwrap().to_owned();
    let missing = Uuid::now_v7().to_string();
    let before = counts(&s).await;
    for token in [&d2t, &m2t] {
        for (method, suffix) in [
            (reqwest::Method::GET, ""),
            (reqwest::Method::GET, "/terms"),
            (reqwest::Method::POST, "/accept"),
            (reqwest::Method::POST, "/decline"),
            (reqwest::Method::POST, "/terms"),
        ] {
            let body = serde_json::to_vec(&terms_body("2027-01-01")).unwrap();
            let mut answers = Vec::new();
            for target in [&id, &missing] {
                let path = format!("/v1/agreements/{target}{suffix}");
                let body = Some(("application/json", body.clone()));
                answers.push(s.send(method.clone(), Some(token), &path, &[], body).await);
            }
            let (foreign, absent) = (&answers[0], &answers[1]);
            foreign.problem(404);
            assert_eq!(foreign.text, absent.text, "{method} {suffix}");
        }
        assert_eq!(
            s.get(token, "/v1/agreements").await.ok(200)["items"],
            json!([])
        );
    }
    assert_eq!(counts(&s).await, before);
    s.stop().await;
}

async fn platform_fees(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let root = s.token(&s.platform).await;
    let (d1, dt) = s.tenant_with_token("distributor", "Sakura Bank").await;
    let (d2, d2t) = s.tenant_with_token("distributor", "Other Bank").await;
    let (m, _) = s.tenant_with_token("manager", "Fuji AM").await;
    crate::strategies::seed_instrument(&s, "US0000000001", "USD").await;
    let path = format!("/v1/tenants/{d1}/platform-fee");
    let operator = s.token_for_role(s.platform.tenant_id, "operator").await;
    let audit = s.audit_count().await;

    let empty = s.get(&dt, &path).await;
    assert_eq!(empty.ok(200)["current"], Value::Null);
    assert_eq!(empty.body["history"], json!([]));

    let r = s
        .put(
            &root,
            &path,
            json!({"amount": "50000", "currency": "JPY", "effective_date": "2026-01-01"}),
        )
        .await;
    let b = r.ok(200);
    assert_eq!(b["history"][0]["amount"], "50000");
    s.put(
        &root,
        &path,
        json!({"amount": "60000", "currency": "JPY", "effective_date": "2027-04-01"}),
    )
    .await
    .ok(200);
    // The same date replaces that date's fee.
    s.put(
        &root,
        &path,
        json!({"amount": "55000", "currency": "JPY", "effective_date": "2027-04-01"}),
    )
    .await
    .ok(200);
    assert_eq!(s.count_rows("platform_fees").await, 2);
    assert_eq!(s.audit_count().await, audit + 3);
    for (on, amount) in [
        ("2026-06-01", Value::from("50000")),
        ("2027-04-01", "55000".into()),
        ("2025-01-01", Value::Null),
    ] {
        let r = s.get(&dt, &format!("{path}?on={on}")).await;
        let current = &r.ok(200)["current"];
        assert_eq!(
            if current.is_null() {
                &Value::Null
            } else {
                &current["amount"]
            },
            &amount,
            "{on}"
        );
        assert_eq!(r.body["history"].as_array().unwrap().len(), 2);
        assert_eq!(r.body["history"][0]["effective_date"], "2027-04-01");
    }
    s.get(&root, &path).await.ok(200);

    // Refusals write nothing.
    let before = counts(&s).await;
    let good = json!({"amount": "1", "currency": "JPY", "effective_date": "2028-01-01"});
    for (body, field) in [
        (
            json!({"amount": "100.5", "currency": "JPY", "effective_date": "2028-01-01"}),
            "amount",
        ),
        (
            json!({"amount": "-1", "currency": "JPY", "effective_date": "2028-01-01"}),
            "amount",
        ),
        (
            json!({"amount": 100, "currency": "JPY", "effective_date": "2028-01-01"}),
            "amount",
        ),
        (
            json!({"amount": "100", "currency": "XYZ", "effective_date": "2028-01-01"}),
            "currency",
        ),
        (
            json!({"amount": "100", "currency": "US0000000001", "effective_date": "2028-01-01"}),
            "currency",
        ),
        (
            json!({"amount": "100", "currency": "JPY", "effective_date": "someday"}),
            "effective_date",
        ),
    ] {
        names(&s.put(&root, &path, body).await, 422, field);
    }
    // The distributor itself and an operator of the platform may not set it.
    s.put(&dt, &path, good.clone()).await.problem(403);
    s.put(&operator, &path, good.clone()).await.problem(403);
    // Another distributor, a manager, a missing id: 404, all alike.
    let missing = s
        .put(
            &root,
            &format!("/v1/tenants/{}/platform-fee", Uuid::now_v7()),
            good.clone(),
        )
        .await;
    missing.problem(404);
    for (token, target) in [
        (&root, m),
        (&d2t, d1),
        (&dt, d2),
        (&root, s.platform.tenant_id),
    ] {
        let p = format!("/v1/tenants/{target}/platform-fee");
        assert_eq!(s.put(token, &p, good.clone()).await.text, missing.text);
        assert_eq!(s.get(token, &p).await.text, missing.text);
    }
    assert_eq!(counts(&s).await, before);
    s.stop().await;
}
