//! Tests of `/v1/instruments` and `/v1/prices`: the platform's market data.
//!
//! Every refusal is checked for its status, the field it names, and that nothing was written
//! (row counts of instruments, prices, ledger assets and the audit log unchanged).

use chrono::NaiveDate;
use ledger::{Asset, Ledger};
use reqwest::Method;
use rust_decimal::Decimal;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::common::{Res, TestServer};
use crate::on_each_backend;

on_each_backend!(instrument_flow, instrument_flow);
on_each_backend!(
    bad_instruments_are_refused_by_field,
    bad_instruments_are_refused_by_field
);
on_each_backend!(
    patch_refuses_immutable_fields,
    patch_refuses_immutable_fields
);
on_each_backend!(
    prices_replace_until_end_of_day,
    prices_replace_until_end_of_day
);
on_each_backend!(bad_rows_are_each_named, bad_rows_are_each_named);
on_each_backend!(csv_upload_names_each_bad_row, csv_upload_names_each_bad_row);
on_each_backend!(price_reads_and_upload_limits, price_reads_and_upload_limits);
on_each_backend!(market_routes_are_documented, market_routes_are_documented);

/// A Japanese investment trust in JPY.
pub fn fund(code: &str) -> Value {
    json!({
        "code": code,
        "name": format!("Fund {code}"),
        "kind": "investment_trust",
        "currency": "JPY",
        "unit_scale": 0,
        "quote_unit": 10000,
        "min_order_amount": "1000",
        "settlement_days": 2,
    })
}

/// Registers the fund `code` as the platform (must succeed).
pub async fn make_fund(s: &TestServer, root: &str, code: &str) -> Value {
    s.post(root, "/v1/instruments", Some(fund(code)))
        .await
        .ok(201)
        .clone()
}

async fn patch(s: &TestServer, token: &str, path: &str, body: Value) -> Res {
    s.send(
        Method::PATCH,
        Some(token),
        path,
        &[],
        Some(("application/json", serde_json::to_vec(&body).unwrap())),
    )
    .await
}

async fn csv(s: &TestServer, token: &str, text: &str) -> Res {
    s.send(
        Method::POST,
        Some(token),
        "/v1/prices",
        &[],
        Some(("text/csv", text.as_bytes().to_vec())),
    )
    .await
}

/// Rows of every table a market-data write may touch.
async fn counts(s: &TestServer) -> [i64; 4] {
    [
        s.count_rows("instruments").await,
        s.count_rows("instrument_prices").await,
        s.count_rows("ledger_assets").await,
        s.audit_count().await,
    ]
}

/// The fields a problem names.
fn fields(r: &Res) -> Vec<String> {
    r.body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["field"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The message the problem gives for `field`.
fn message(r: &Res, field: &str) -> String {
    r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["field"] == field)
        .unwrap_or_else(|| panic!("no error for {field}: {}", r.text))["message"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

async fn finish_eod(s: &TestServer, day: &str) {
    let backend = s.db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => format!(
            "INSERT INTO eod_runs (business_date, status, started_at, finished_at) \
             VALUES (DATE '{day}', 'finished', 1, 2)"
        ),
        _ => format!(
            "INSERT INTO eod_runs (business_date, status, started_at, finished_at) \
             VALUES ('{day}', 'finished', 1, 2)"
        ),
    };
    s.db.execute_unprepared(&sql).await.unwrap();
}

async fn instrument_flow(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let root = s.token(&s.platform).await;
    let ledger = Ledger::new(s.db.clone());
    ledger
        .create_asset(&Asset::currency("USD", 2))
        .await
        .unwrap();
    let audit = s.audit_count().await;

    let created = s
        .post(&root, "/v1/instruments", Some(fund("JP90C0001")))
        .await;
    let b = created.ok(201);
    assert_eq!(created.headers["location"], "/v1/instruments/JP90C0001");
    assert_eq!(b["kind"], "investment_trust");
    assert_eq!(b["quote_unit"], 10000);
    assert_eq!(b["price_scale"], 0, "defaults to the currency's scale");
    assert_eq!(b["min_order_amount"], "1000");
    assert_eq!(b["settlement_days"], 2);
    assert_eq!(b["status"], "active");
    // The ledger asset came with it, in the same transaction.
    let asset = ledger.asset("JP90C0001").await.unwrap();
    assert_eq!(asset, Asset::instrument("JP90C0001", 0, "JPY", 10_000));
    let i = ledger::store::market::instrument(&s.db, "JP90C0001")
        .await
        .unwrap();
    assert_eq!(i.min_order_amount, Decimal::from(1000));

    let etf = s
        .post(
            &root,
            "/v1/instruments",
            Some(json!({
                "code": "VT", "name": "World ETF", "kind": "etf", "currency": "USD",
                "unit_scale": 4, "quote_unit": 1, "min_order_amount": "10.50",
            })),
        )
        .await;
    let e = etf.ok(201);
    assert_eq!(e["price_scale"], 2);
    assert_eq!(e["min_order_amount"], "10.50");
    assert_eq!(e["settlement_days"], 1, "T+1 by default");
    make_fund(&s, &root, "JP90C0002").await;
    assert_eq!(s.audit_count().await, audit + 3);

    // Everyone reads reference data.
    let (_, dist) = s.tenant_with_token("distributor", "Bank A").await;
    let (_, mgr) = s.tenant_with_token("manager", "Manager M").await;
    for token in [&root, &dist, &mgr] {
        let all = s.get(token, "/v1/instruments").await;
        let codes: Vec<&str> = all.ok(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap())
            .collect();
        assert_eq!(codes, ["JP90C0001", "JP90C0002", "VT"]);
        s.get(token, "/v1/instruments/VT").await.ok(200);
    }
    // Paging and filters.
    let p1 = s.get(&dist, "/v1/instruments?limit=2").await;
    let p1 = p1.ok(200);
    assert_eq!(p1["items"].as_array().unwrap().len(), 2);
    let cursor = p1["next_cursor"].as_str().unwrap();
    let p2 = s
        .get(&dist, &format!("/v1/instruments?limit=2&cursor={cursor}"))
        .await;
    let p2 = p2.ok(200);
    assert_eq!(p2["items"][0]["code"], "VT");
    assert!(p2.get("next_cursor").is_none());
    let etfs = s.get(&dist, "/v1/instruments?kind=etf").await;
    assert_eq!(etfs.ok(200)["items"].as_array().unwrap().len(), 1);
    for bad in [
        "kind=bond",
        "status=gone",
        "limit=0",
        "cursor=%20",
        "colour=red",
    ] {
        let r = s.get(&dist, &format!("/v1/instruments?{bad}")).await;
        let name = bad.split('=').next().unwrap();
        assert_eq!(r.problem(400)["errors"][0]["field"], name, "{bad}");
    }

    // PATCH what may change.
    let r = patch(
        &s,
        &root,
        "/v1/instruments/JP90C0001",
        json!({"name": "Global Fund", "status": "suspended", "min_order_amount": "5000", "settlement_days": 4}),
    )
    .await;
    let b = r.ok(200);
    assert_eq!(b["name"], "Global Fund");
    assert_eq!(b["status"], "suspended");
    assert_eq!(b["min_order_amount"], "5000");
    assert_eq!(b["settlement_days"], 4);
    let suspended = s.get(&dist, "/v1/instruments?status=suspended").await;
    assert_eq!(suspended.ok(200)["items"][0]["code"], "JP90C0001");
    assert_eq!(
        s.audit_count().await,
        audit + 4 + 4,
        "tenants, clients and the patch"
    );

    // Missing instruments: 404, whoever asks.
    for path in ["/v1/instruments/NOPE", "/v1/instruments/bad%20code"] {
        s.get(&dist, path).await.problem(404);
    }
    s.stop().await;
}

async fn bad_instruments_are_refused_by_field(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let root = s.token(&s.platform).await;
    make_fund(&s, &root, "F1").await;
    let before = counts(&s).await;

    let cases: Vec<(&str, Value, u16)> = vec![
        ("code", json!(""), 422),
        ("code", json!("has space"), 422),
        ("code", json!("x".repeat(65)), 422),
        ("name", json!(""), 422),
        ("name", json!("n".repeat(201)), 422),
        ("kind", json!("bond"), 422),
        ("currency", json!("EUR"), 422),
        ("currency", json!("F1"), 422),
        ("currency", json!("bad cur"), 422),
        ("unit_scale", json!(11), 422),
        ("unit_scale", json!(-1), 422),
        ("quote_unit", json!(0), 422),
        ("quote_unit", json!(-10000), 422),
        ("quote_unit", json!("10000"), 422),
        ("price_scale", json!(11), 422),
        ("min_order_amount", json!("-1"), 422),
        ("min_order_amount", json!("0.5"), 422),
        ("min_order_amount", json!("1e3"), 422),
        ("min_order_amount", json!(1000), 422),
        ("settlement_days", json!(11), 422),
        ("status", json!("open"), 422),
    ];
    for (field, value, status) in cases {
        let mut body = fund("NEW1");
        body[field] = value.clone();
        let r = s.post(&root, "/v1/instruments", Some(body)).await;
        r.problem(status);
        assert!(
            fields(&r).iter().any(|f| f == field),
            "{field}={value}: {}",
            r.text
        );
        assert_eq!(counts(&s).await, before, "{field}={value}");
    }
    // Every bad field at once is named at once.
    let r = s
        .post(
            &root,
            "/v1/instruments",
            Some(json!({
                "code": "a b", "name": "", "kind": "etf", "currency": "JPY",
                "unit_scale": 12, "quote_unit": 0, "settlement_days": 30,
            })),
        )
        .await;
    r.problem(422);
    assert_eq!(
        fields(&r),
        [
            "code",
            "name",
            "unit_scale",
            "quote_unit",
            "settlement_days"
        ]
    );
    // Missing and unknown fields.
    let mut missing = fund("NEW1");
    missing.as_object_mut().unwrap().remove("quote_unit");
    s.post(&root, "/v1/instruments", Some(missing))
        .await
        .problem(422);
    let mut extra = fund("NEW1");
    extra["isin"] = json!("x");
    s.post(&root, "/v1/instruments", Some(extra))
        .await
        .problem(422);
    // A taken code (an instrument's or a currency's) is a conflict.
    Ledger::new(s.db.clone())
        .create_asset(&Asset::currency("USD", 2))
        .await
        .unwrap();
    let before = counts(&s).await;
    for code in ["F1", "USD"] {
        let r = s.post(&root, "/v1/instruments", Some(fund(code))).await;
        r.problem(409);
        assert_eq!(fields(&r), ["code"]);
    }
    // Not JSON, malformed JSON.
    let r = s
        .send(
            Method::POST,
            Some(&root),
            "/v1/instruments",
            &[],
            Some(("text/plain", b"x".to_vec())),
        )
        .await;
    r.problem(415);
    let r = s
        .send(
            Method::POST,
            Some(&root),
            "/v1/instruments",
            &[],
            Some(("application/json", b"{\"code\":".to_vec())),
        )
        .await;
    r.problem(400);
    assert_eq!(counts(&s).await, before);

    // Only platform writers: a distributor, a manager, a platform viewer get 403.
    let (_, dist) = s.tenant_with_token("distributor", "Bank A").await;
    let (_, mgr) = s.tenant_with_token("manager", "Manager M").await;
    let viewer = s.token_for_role(s.platform.tenant_id, "viewer").await;
    let before = counts(&s).await;
    for token in [&dist, &mgr, &viewer] {
        s.post(token, "/v1/instruments", Some(fund("NEW2")))
            .await
            .problem(403);
        // 403 before the body is read: even a bad body is refused for the role.
        s.post(token, "/v1/instruments", Some(json!({})))
            .await
            .problem(403);
        patch(&s, token, "/v1/instruments/F1", json!({"name": "x"}))
            .await
            .problem(403);
        s.post(
            token,
            "/v1/prices",
            Some(json!({"prices": [{"instrument": "F1", "date": "2026-11-20", "price": "10000"}]})),
        )
        .await
        .problem(403);
        csv(&s, token, "instrument,date,price\nF1,2026-11-20,10000\n")
            .await
            .problem(403);
    }
    // An unknown instrument is a 404 for them too, exactly as for the platform.
    let theirs = patch(&s, &dist, "/v1/instruments/NOPE", json!({"name": "x"})).await;
    let ours = patch(&s, &root, "/v1/instruments/NOPE", json!({"name": "x"})).await;
    theirs.problem(404);
    assert_eq!(theirs.text, ours.text);
    assert_eq!(counts(&s).await, before);
    s.stop().await;
}

async fn patch_refuses_immutable_fields(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let root = s.token(&s.platform).await;
    let created = make_fund(&s, &root, "F1").await;
    let before = counts(&s).await;
    let path = "/v1/instruments/F1";
    for (field, value) in [
        ("unit_scale", json!(2)),
        ("quote_unit", json!(1)),
        ("currency", json!("USD")),
        ("price_scale", json!(2)),
        ("kind", json!("etf")),
        ("code", json!("F2")),
    ] {
        let r = patch(&s, &root, path, json!({ field: value, "name": "ok" })).await;
        r.problem(422);
        assert_eq!(fields(&r), [field], "{}", r.text);
    }
    for (field, value) in [
        ("name", json!("")),
        ("status", json!("gone")),
        ("min_order_amount", json!("0.5")),
        ("min_order_amount", json!("-5")),
        ("min_order_amount", json!("abc")),
        ("settlement_days", json!(11)),
        ("settlement_days", json!(-1)),
        ("colour", json!("red")),
    ] {
        let r = patch(&s, &root, path, json!({ field: value })).await;
        r.problem(422);
        let named = fields(&r);
        assert!(
            named.iter().any(|f| f == field) || (field == "colour" && named == ["body"]),
            "{field}: {}",
            r.text
        );
    }
    // PATCH, not PUT: a PUT would have to restate the immutable fields.
    s.put(&root, path, fund("F1")).await.problem(405);
    let r = patch(&s, &root, path, json!({})).await;
    assert_eq!(fields(&r), ["body"]);
    r.problem(422);
    assert_eq!(counts(&s).await, before);
    let now = s.get(&root, path).await;
    assert_eq!(now.ok(200)["updated_at"], created["updated_at"]);
    s.stop().await;
}

fn price_rows(rows: &[(&str, &str, &str)]) -> Value {
    json!({
        "prices": rows
            .iter()
            .map(|(i, d, p)| json!({"instrument": i, "date": d, "price": p}))
            .collect::<Vec<_>>()
    })
}

async fn prices_replace_until_end_of_day(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let root = s.token(&s.platform).await;
    let ledger = Ledger::new(s.db.clone());
    ledger
        .create_asset(&Asset::currency("USD", 2))
        .await
        .unwrap();
    make_fund(&s, &root, "F1").await;
    make_fund(&s, &root, "F2").await;
    s.post(
        &root,
        "/v1/instruments",
        Some(json!({
            "code": "VT", "name": "World ETF", "kind": "etf", "currency": "USD",
            "unit_scale": 0, "quote_unit": 1,
        })),
    )
    .await
    .ok(201);

    // An Idempotency-Key is accepted (and not needed: a re-upload replaces with equal prices).
    let r = s
        .post_idem(
            &root,
            "/v1/prices",
            "prices-2026-11-20",
            price_rows(&[
                ("F1", "2026-11-19", "10000"),
                ("F1", "2026-11-20", "10234"),
                ("F2", "2026-11-20", "9876"),
                ("VT", "2026-11-20", "101.25"),
            ]),
        )
        .await;
    assert_eq!(r.ok(200), &json!({"inserted": 4, "replaced": 0}));
    // CSV replaces one and adds one.
    let r = csv(
        &s,
        &root,
        "instrument,date,price\r\nF1,2026-11-20,10300\r\nF2,2026-11-21,9900\r\n",
    )
    .await;
    assert_eq!(r.ok(200), &json!({"inserted": 1, "replaced": 1}));
    // Columns in any order, with a BOM-free header in another case, and trailing zeros.
    let r = csv(&s, &root, "Price,Instrument,Date\n10301.00,F1,2026-11-20\n").await;
    assert_eq!(r.ok(200), &json!({"inserted": 0, "replaced": 1}));
    assert_eq!(s.count_rows("instrument_prices").await, 5);

    let listed = s.get(&root, "/v1/prices?instrument=F1").await;
    let items = listed.ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1]["date"], "2026-11-20");
    assert_eq!(items[1]["price"], "10301");
    assert!(
        items[1]["uploaded_by"]
            .as_str()
            .unwrap()
            .starts_with("cli_")
    );
    let vt = s.get(&root, "/v1/prices?instrument=VT").await;
    assert_eq!(vt.ok(200)["items"][0]["price"], "101.25");

    // The valuation read: the last price on or before a date, in one call.
    let codes = ["F1", "F2", "VT", "NONE"].map(str::to_owned);
    let latest = ledger::store::market::latest_prices(&s.db, &codes, date("2026-11-20"))
        .await
        .unwrap();
    assert_eq!(latest.len(), 3);
    assert_eq!(latest["F1"].price, Decimal::from(10301));
    assert_eq!(latest["F2"].date, date("2026-11-20"));
    assert_eq!(latest["VT"].price, Decimal::new(10125, 2));
    let earlier = ledger::store::market::latest_prices(&s.db, &codes, date("2026-11-19"))
        .await
        .unwrap();
    assert_eq!(earlier.len(), 1);
    assert_eq!(earlier["F1"].price, Decimal::from(10000));
    let later = ledger::store::market::latest_prices(&s.db, &codes, date("2030-01-01"))
        .await
        .unwrap();
    assert_eq!(later["F2"].date, date("2026-11-21"));

    // End of day finished for the 20th: its prices are frozen; other dates still open.
    assert!(
        !wraps::eod::prices::eod_finished(&s.db, date("2026-11-20"))
            .await
            .unwrap()
    );
    finish_eod(&s, "2026-11-20").await;
    assert!(
        wraps::eod::prices::eod_finished(&s.db, date("2026-11-20"))
            .await
            .unwrap()
    );
    let before = counts(&s).await;
    let r = s
        .post(
            &root,
            "/v1/prices",
            Some(price_rows(&[
                ("F1", "2026-11-21", "10400"),
                ("F1", "2026-11-20", "1"),
            ])),
        )
        .await;
    r.problem(409);
    assert!(
        r.body["detail"].as_str().unwrap().contains("2026-11-20"),
        "{}",
        r.text
    );
    assert!(message(&r, "date").contains("2026-11-20"));
    let r = csv(&s, &root, "instrument,date,price\nF2,2026-11-20,1\n").await;
    r.problem(409);
    assert_eq!(counts(&s).await, before, "a refused upload writes nothing");
    let r = csv(&s, &root, "instrument,date,price\nF1,2026-11-21,10400\n").await;
    assert_eq!(r.ok(200), &json!({"inserted": 1, "replaced": 0}));
    s.stop().await;
}

async fn bad_rows_are_each_named(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let root = s.token(&s.platform).await;
    make_fund(&s, &root, "F1").await;
    make_fund(&s, &root, "F2").await;
    let before = counts(&s).await;
    let body = json!({"prices": [
        {"instrument": "F1", "date": "2026-11-20", "price": "10000"},
        {"instrument": "NOPE", "date": "2026-11-20", "price": "10000"},
        {"instrument": "F1", "date": "2026-11-21", "price": "0"},
        {"instrument": "F1", "date": "2026-11-22", "price": "100.5"},
        {"instrument": "F1", "date": "2026-13-01", "price": "100"},
        {"instrument": "F1", "date": "2026-11-20", "price": "10001"},
        {"instrument": "F2", "date": "2026-11-20", "price": -5},
        {"instrument": "F2", "date": "2026-11-21"},
        {"instrument": "F2", "date": "2026-11-22", "price": "1", "note": "x"},
        "F2,2026-11-23,1",
        {"instrument": "F2", "date": "2026-11-24", "price": "-3"},
    ]});
    let r = s.post(&root, "/v1/prices", Some(body)).await;
    r.problem(422);
    assert_eq!(
        fields(&r),
        [
            "prices/1/instrument",
            "prices/2/price",
            "prices/3/price",
            "prices/4/date",
            "prices/5/date",
            "prices/6/price",
            "prices/7/price",
            "prices/8/note",
            "prices/9",
            "prices/10/price",
        ],
        "{}",
        r.text
    );
    assert!(message(&r, "prices/1/instrument").contains("unknown instrument"));
    assert!(message(&r, "prices/2/price").contains("greater than zero"));
    assert!(message(&r, "prices/3/price").contains("price_scale allows 0"));
    assert!(message(&r, "prices/4/date").contains("YYYY-MM-DD"));
    assert!(message(&r, "prices/5/date").contains("duplicates prices/0"));
    assert!(message(&r, "prices/7/price").contains("missing"));
    assert_eq!(counts(&s).await, before);

    // Shapes of the whole body.
    for (body, status, field) in [
        (json!({"prices": []}), 422, "prices"),
        (json!({"prices": {}}), 422, "prices"),
        (json!({}), 422, "prices"),
        (json!([]), 422, "body"),
        (
            json!({"prices": [{"instrument": "F1", "date": "2026-11-20", "price": "1"}], "as_of": "x"}),
            422,
            "as_of",
        ),
    ] {
        let r = s.post(&root, "/v1/prices", Some(body.clone())).await;
        r.problem(status);
        assert_eq!(fields(&r), [field], "{body}");
    }
    assert_eq!(counts(&s).await, before);
    s.stop().await;
}

async fn csv_upload_names_each_bad_row(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let root = s.token(&s.platform).await;
    make_fund(&s, &root, "F1").await;
    let before = counts(&s).await;
    let text = "instrument,date,price\n\
                F1,2026-11-20,10000\n\
                NOPE,2026-11-20,10000\n\
                F1,2026-11-21,-1\n\
                F1,2026-11-22,1.5\n\
                F1,20261123,100\n\
                F1,2026-11-20,10001\n\
                F1,2026-11-24\n\
                F1,2026-11-25,abc\n";
    let r = csv(&s, &root, text).await;
    r.problem(422);
    assert_eq!(
        fields(&r),
        [
            "row 3: instrument",
            "row 4: price",
            "row 5: price",
            "row 6: date",
            "row 7: date",
            "row 8",
            "row 9: price",
        ],
        "{}",
        r.text
    );
    assert!(message(&r, "row 3: instrument").contains("unknown instrument \"NOPE\""));
    assert!(message(&r, "row 4: price").contains("greater than zero"));
    assert!(message(&r, "row 5: price").contains("decimal places"));
    assert!(message(&r, "row 7: date").contains("duplicates row 2"));
    assert!(message(&r, "row 8").contains("2 cells"));
    assert!(r.body["detail"].as_str().unwrap().contains("7 problem(s)"));
    assert_eq!(counts(&s).await, before);

    for (text, field) in [
        ("instrument,date\nF1,2026-11-20\n", "row 1"),
        ("instrument,date,price,extra\nF1,2026-11-20,1,x\n", "row 1"),
        ("instrument,date,price\n", "row 2"),
    ] {
        let r = csv(&s, &root, text).await;
        r.problem(422);
        assert_eq!(fields(&r), [field], "{text}");
    }
    // Not UTF-8.
    let r = s
        .send(
            Method::POST,
            Some(&root),
            "/v1/prices",
            &[],
            Some((
                "text/csv; charset=utf-8",
                b"instrument,date,price\nF\xff1,2026-11-20,1\n".to_vec(),
            )),
        )
        .await;
    r.problem(422);
    assert_eq!(fields(&r), ["row 2"]);
    assert_eq!(counts(&s).await, before);
    s.stop().await;
}

async fn price_reads_and_upload_limits(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let root = s.token(&s.platform).await;
    make_fund(&s, &root, "F1").await;
    make_fund(&s, &root, "F2").await;
    let r = csv(
        &s,
        &root,
        "instrument,date,price\nF1,2026-11-18,1\nF1,2026-11-19,2\nF1,2026-11-20,3\nF2,2026-11-18,4\n",
    )
    .await;
    r.ok(200);
    let (_, dist) = s.tenant_with_token("distributor", "Bank A").await;
    // Paging across instruments, as any caller.
    let mut seen = Vec::new();
    let mut path = "/v1/prices?limit=3".to_owned();
    loop {
        let page = s.get(&dist, &path).await;
        let b = page.ok(200).clone();
        for i in b["items"].as_array().unwrap() {
            seen.push(format!(
                "{}:{}",
                i["instrument"].as_str().unwrap(),
                i["price"].as_str().unwrap()
            ));
        }
        match b["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/prices?limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ["F1:1", "F1:2", "F1:3", "F2:4"]);
    let window = s
        .get(
            &dist,
            "/v1/prices?instrument=F1&from=2026-11-19&to=2026-11-19",
        )
        .await;
    assert_eq!(window.ok(200)["items"][0]["price"], "2");
    for (query, status, field) in [
        ("from=2026-11-31", 400, "from"),
        ("to=yesterday", 400, "to"),
        ("from=2026-11-20&to=2026-11-19", 400, "to"),
        ("cursor=garbage", 400, "cursor"),
        ("limit=1001", 400, "limit"),
        ("instrument_code=F1", 400, "instrument_code"),
    ] {
        let r = s.get(&dist, &format!("/v1/prices?{query}")).await;
        assert_eq!(r.problem(status)["errors"][0]["field"], field, "{query}");
    }
    s.get(&dist, "/v1/prices?instrument=NOPE")
        .await
        .problem(404);

    // Limits: more rows than allowed (compact rows, under the byte limit) is 413, and the
    // wrong media type 415; nothing written.
    let before = counts(&s).await;
    let rows = vec![json!({}); 100_001];
    let r = s
        .post(&root, "/v1/prices", Some(json!({ "prices": rows })))
        .await;
    r.problem(413);
    assert!(r.body["type"].as_str().unwrap().ends_with("too-many-rows"));
    let r = s
        .send(
            Method::POST,
            Some(&root),
            "/v1/prices",
            &[],
            Some(("text/plain", b"instrument,date,price\n".to_vec())),
        )
        .await;
    r.problem(415);
    let r = s
        .send(
            Method::POST,
            Some(&root),
            "/v1/prices",
            &[],
            Some(("application/json", b"{\"prices\": [".to_vec())),
        )
        .await;
    r.problem(400);
    assert_eq!(counts(&s).await, before);
    s.stop().await;
}

async fn market_routes_are_documented(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let r = s
        .send(Method::GET, None, "/v1/openapi.json", &[], None)
        .await;
    let doc = r.ok(200);
    for (path, method) in [
        ("/v1/instruments", "post"),
        ("/v1/instruments", "get"),
        ("/v1/instruments/{code}", "get"),
        ("/v1/instruments/{code}", "patch"),
        ("/v1/instruments/{code}/fund-terms", "post"),
        ("/v1/instruments/{code}/fund-terms", "get"),
        ("/v1/wraps/{id}/cost-basis", "get"),
        ("/v1/customers/{id}/cost-basis", "get"),
        ("/v1/prices", "post"),
        ("/v1/prices", "get"),
        ("/v1/ledger/reconciliation", "get"),
        ("/v1/ledger/reconciliation/custodian-statements", "post"),
        ("/v1/ledger/reconciliation/custodian-statements", "get"),
        ("/v1/ledger/reconciliation/custodian-statements/{id}", "get"),
        (
            "/v1/ledger/reconciliation/custodian-statements/{id}/breaks",
            "get",
        ),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    // Uploads document both media types.
    let content = &doc["paths"]["/v1/prices"]["post"]["requestBody"]["content"];
    assert!(content["application/json"].is_object(), "{content}");
    assert!(content["text/csv"].is_object(), "{content}");
    s.stop().await;
}

/// PostgreSQL: an upload racing with end of day's finishing transaction for the same date.
/// End of day takes `instrument_prices` in SHARE mode, checks for late prices, then marks the
/// date finished. An upload that arrives in between must wait and then be refused, never
/// store a price of a date that is already finished (the upload takes its table lock before
/// reading the date's status).
async fn an_upload_racing_the_finish_is_refused(backend: &'static str) {
    if backend != "postgres" {
        return; // SQLite has one writer at a time: the race cannot happen.
    }
    let s = TestServer::start(backend).await;
    let root = s.token(&s.platform).await;
    make_fund(&s, &root, "F1").await;
    let day: NaiveDate = "2026-11-20".parse().unwrap();
    let b = s.db.get_database_backend();
    s.db.execute_raw(sea_orm::Statement::from_sql_and_values(
        b,
        "INSERT INTO eod_runs (business_date, status, started_at, finished_at) VALUES ($1, 'running', 0, NULL)",
        [day.into()],
    ))
    .await
    .unwrap();
    // End of day's finishing transaction, as in ledger/wraps/src/eod/mod.rs::run_date.
    let finish = async {
        let txn = sea_orm::TransactionTrait::begin(&s.db).await.unwrap();
        txn.execute_unprepared("LOCK TABLE instrument_prices IN SHARE MODE")
            .await
            .unwrap();
        // Let the upload arrive and block while this transaction holds the lock.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        txn.execute_raw(sea_orm::Statement::from_sql_and_values(
            b,
            "UPDATE eod_runs SET status = 'finished', finished_at = 1 WHERE business_date = $1",
            [day.into()],
        ))
        .await
        .unwrap();
        txn.commit().await.unwrap();
    };
    let upload = async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        s.post(
            &root,
            "/v1/prices",
            Some(price_rows(&[("F1", "2026-11-20", "10000")])),
        )
        .await
    };
    let ((), r) = tokio::join!(finish, upload);
    let p = r.problem(409);
    assert!(p["detail"].as_str().unwrap().contains("2026-11-20"), "{p}");
    assert_eq!(s.count_rows("instrument_prices").await, 0);
    s.stop().await;
}
on_each_backend!(
    an_upload_racing_the_finish_is_refused,
    an_upload_racing_the_finish_is_refused
);
