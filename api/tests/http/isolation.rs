//! Isolation, per endpoint: another tenant's id answers 404 exactly like an id that does not
//! exist; a viewer cannot write (403); distributors and managers cannot call platform
//! endpoints (403); and none of the refused calls changes anything.

use chrono::NaiveDate;
use ledger::{Asset, Ledger, NewAccount, NewEntry, NewPosting, Side};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{Creds, Res, TestServer};
use crate::on_each_backend;

on_each_backend!(foreign_ids_look_missing, foreign_ids_look_missing);
on_each_backend!(roles_and_kinds_are_enforced, roles_and_kinds_are_enforced);

/// Books for `tenant`: a cash and a wrap account in JPY, and one deposit of `amount`.
pub async fn seed_books(ledger: &Ledger, tenant: Uuid, amount: i64) -> (Uuid, Uuid, Uuid) {
    ledger
        .create_asset(&Asset::currency("JPY", 0))
        .await
        .unwrap();
    let account = |code: &str, side| NewAccount {
        tenant_id: tenant,
        code: code.to_owned(),
        asset: "JPY".to_owned(),
        normal_side: side,
        no_negative: false,
        metadata: json!({}),
    };
    let cash = ledger
        .create_account(&account("bank:cash", Side::Debit))
        .await
        .unwrap();
    let wrap = ledger
        .create_account(&account("customer:wraps", Side::Credit))
        .await
        .unwrap();
    let posted = ledger
        .post_entry(NewEntry {
            tenant_id: tenant,
            idempotency_key: format!("deposit-{tenant}"),
            kind: "deposit".to_owned(),
            effective_date: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
            description: "first deposit".to_owned(),
            metadata: json!({}),
            postings: vec![
                NewPosting::debit(cash.id, "JPY", Decimal::from(amount)),
                NewPosting::credit(wrap.id, "JPY", Decimal::from(amount)),
            ],
            hold: None,
        })
        .await
        .unwrap();
    (cash.id, wrap.id, posted.entry.id)
}

/// The body with every occurrence of `id` replaced, to compare a foreign id's answer with a
/// missing id's.
fn without(r: &Res, id: &str) -> String {
    r.text.replace(id, "<id>")
}

struct World {
    root: String,
    a: Uuid,
    a_admin: Creds,
    a_viewer: Creds,
    b: Uuid,
    b_admin: Creds,
    m: Uuid,
    m_admin: Creds,
}

async fn world(s: &TestServer) -> World {
    let root = s.token(&s.platform).await;
    let a = s.make_tenant(&root, "distributor", "Bank A").await;
    let b = s.make_tenant(&root, "distributor", "Bank B").await;
    let m = s.make_tenant(&root, "manager", "Manager M").await;
    World {
        a_admin: s.make_client(&root, a, "admin").await,
        a_viewer: s.make_client(&root, a, "viewer").await,
        b_admin: s.make_client(&root, b, "admin").await,
        m_admin: s.make_client(&root, m, "admin").await,
        root,
        a,
        b,
        m,
    }
}

async fn foreign_ids_look_missing(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let w = world(&s).await;
    let ledger = Ledger::new(s.db.clone());
    let (a_cash, _, a_entry) = seed_books(&ledger, w.a, 1_000_000).await;
    let (b_cash, _, b_entry) = seed_books(&ledger, w.b, 2_000_000).await;
    let a_token = s.token(&w.a_admin).await;
    let missing = Uuid::now_v7();

    // (path with {X} for the id, the caller's own id for a positive control, another tenant's id)
    let b_client = w.b_admin.id;
    let a_client = w.a_viewer.id;
    let gets: Vec<(String, String, String)> = vec![
        ("/v1/tenants/{X}".into(), w.a.to_string(), w.b.to_string()),
        (
            "/v1/tenants/{X}/clients".into(),
            w.a.to_string(),
            w.b.to_string(),
        ),
        (
            format!("/v1/tenants/{}/clients/{{X}}", w.a),
            a_client.to_string(),
            b_client.to_string(),
        ),
        (
            "/v1/ledger/accounts/{X}".into(),
            a_cash.to_string(),
            b_cash.to_string(),
        ),
        (
            "/v1/ledger/entries?account_id={X}".into(),
            a_cash.to_string(),
            b_cash.to_string(),
        ),
        (
            "/v1/ledger/entries/{X}".into(),
            a_entry.to_string(),
            b_entry.to_string(),
        ),
    ];
    for (template, own, foreign) in &gets {
        let ok = s.get(&a_token, &template.replace("{X}", own)).await;
        ok.ok(200);
        let theirs = s.get(&a_token, &template.replace("{X}", foreign)).await;
        let nothing = s
            .get(&a_token, &template.replace("{X}", &missing.to_string()))
            .await;
        theirs.problem(404);
        nothing.problem(404);
        assert_eq!(
            without(&theirs, foreign),
            without(&nothing, &missing.to_string()),
            "{template}"
        );
    }
    // Lists show the caller's own objects only.
    let list = s.get(&a_token, "/v1/ledger/accounts").await;
    let ids: Vec<String> = list.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    // Fee income and omnibus (opened with the distributor) and the seeded cash account.
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert!(ids.contains(&a_cash.to_string()));
    assert!(!ids.contains(&b_cash.to_string()));
    let clients = s
        .get(&a_token, &format!("/v1/tenants/{}/clients", w.a))
        .await;
    assert!(
        clients.ok(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["tenant_id"] == w.a.to_string())
    );

    // The client of another tenant under the caller's own tenant path.
    s.get(&a_token, &format!("/v1/tenants/{}/clients/{b_client}", w.a))
        .await
        .problem(404);

    // Writes naming another tenant's objects: 404 as for a missing id, and nothing changes.
    let audit_before = s.audit_count().await;
    let posts: Vec<(String, Option<Value>)> = vec![
        ("/v1/tenants/{T}/suspend".into(), None),
        ("/v1/tenants/{T}/resume".into(), None),
        (
            "/v1/tenants/{T}/clients".into(),
            Some(json!({"name": "intruder", "role": "admin"})),
        ),
        ("/v1/tenants/{T}/clients/{C}/revoke".into(), None),
        ("/v1/tenants/{T}/clients/{C}/rotate".into(), None),
    ];
    for (template, body) in &posts {
        let theirs = s
            .post(
                &a_token,
                &template
                    .replace("{T}", &w.b.to_string())
                    .replace("{C}", &b_client.to_string()),
                body.clone(),
            )
            .await;
        let nothing = s
            .post(
                &a_token,
                &template
                    .replace("{T}", &missing.to_string())
                    .replace("{C}", &missing.to_string()),
                body.clone(),
            )
            .await;
        theirs.problem(404);
        nothing.problem(404);
        assert_eq!(theirs.body, nothing.body, "{template}");
    }
    // Own tenant path, another tenant's client.
    for action in ["revoke", "rotate"] {
        s.post(
            &a_token,
            &format!("/v1/tenants/{}/clients/{b_client}/{action}", w.a),
            None,
        )
        .await
        .problem(404);
    }
    assert_eq!(s.audit_count().await, audit_before);
    // B's admin still works: nothing was revoked, rotated or suspended.
    let b_token = s.token(&w.b_admin).await;
    let b_view = s
        .get(&b_token, &format!("/v1/ledger/accounts/{b_cash}"))
        .await;
    assert_eq!(b_view.ok(200)["balance"]["posted"], "2000000");
    let root_view = s
        .get(&w.root, &format!("/v1/tenants/{}/clients", w.b))
        .await;
    assert_eq!(root_view.ok(200)["items"].as_array().unwrap().len(), 1);
    s.stop().await;
}

async fn roles_and_kinds_are_enforced(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let w = world(&s).await;
    let viewer = s.token(&w.a_viewer).await;
    let a_admin = s.token(&w.a_admin).await;
    let m_admin = s.token(&w.m_admin).await;
    let audit_before = s.audit_count().await;

    // A viewer never writes, even in its own tenant.
    let own = w.a;
    for (path, body) in [
        (
            format!("/v1/tenants/{own}/clients"),
            Some(json!({"name": "x", "role": "viewer"})),
        ),
        (
            format!("/v1/tenants/{own}/clients/{}/revoke", w.a_admin.id),
            None,
        ),
        (
            format!("/v1/tenants/{own}/clients/{}/rotate", w.a_admin.id),
            None,
        ),
    ] {
        s.post(&viewer, &path, body).await.problem(403);
    }
    // ... and cannot list its tenant's clients (admin only), but reads its tenant and books.
    s.get(&viewer, &format!("/v1/tenants/{own}/clients"))
        .await
        .problem(403);
    s.get(&viewer, &format!("/v1/tenants/{own}")).await.ok(200);

    // Distributors and managers, even admins, cannot call platform endpoints.
    for (token, own) in [(&a_admin, w.a), (&m_admin, w.m), (&viewer, w.a)] {
        for path in ["/v1/tenants", "/v1/ledger/trial-balance", "/v1/audit"] {
            s.get(token, path).await.problem(403);
        }
        s.post(
            token,
            "/v1/tenants",
            Some(json!({"kind": "manager", "name": "Sneaky AM", "contact_email": "x@y.example"})),
        )
        .await
        .problem(403);
        for action in ["suspend", "resume"] {
            // Their own tenant: visible, but not theirs to suspend.
            s.post(token, &format!("/v1/tenants/{own}/{action}"), None)
                .await
                .problem(403);
        }
    }
    assert_eq!(s.audit_count().await, audit_before);

    // A tenant admin manages its own clients: the positive control.
    let made = s.make_client(&a_admin, own, "operator").await;
    s.token(&made).await;
    // The platform admin reads every platform endpoint.
    for path in ["/v1/tenants", "/v1/ledger/trial-balance", "/v1/audit"] {
        s.get(&w.root, path).await.ok(200);
    }
    let _ = w.b;
    s.stop().await;
}
