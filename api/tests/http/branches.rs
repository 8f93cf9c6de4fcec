//! Branches and advisers over real HTTP, on both databases: `/v1/branches`, advisers' branch
//! on `/v1/users`, `PUT /v1/customers/{id}/assignment`, and the console showing an adviser
//! their own branch's customers only (tenants/src/branches.rs, wraps::customers::Scope).

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{Res, TestServer};
use crate::console::{Browser, PASSWORD, field_error};
use crate::on_each_backend;

on_each_backend!(branches_and_assignments, branches_and_assignments);
on_each_backend!(
    an_adviser_sees_their_branch_only,
    an_adviser_sees_their_branch_only
);

async fn make_branch(s: &TestServer, token: &str, code: &str) -> Uuid {
    let r = s
        .post(
            token,
            "/v1/branches",
            Some(json!({ "code": code, "name": format!("Branch {code}") })),
        )
        .await;
    r.ok(201)["id"].as_str().unwrap().parse().unwrap()
}

fn user(email: &str, role: &str, branch: Option<Uuid>) -> Value {
    let mut body = json!({ "name": format!("User {email}"), "email": email, "role": role,
                           "access": "write", "password": PASSWORD });
    if let Some(b) = branch {
        body["branch_id"] = json!(b);
    }
    body
}

async fn make_user(
    s: &TestServer,
    token: &str,
    email: &str,
    role: &str,
    branch: Option<Uuid>,
) -> Uuid {
    let r = s
        .post(token, "/v1/users", Some(user(email, role, branch)))
        .await;
    r.ok(201)["id"].as_str().unwrap().parse().unwrap()
}

async fn assign(
    s: &TestServer,
    token: &str,
    customer: Uuid,
    branch: Uuid,
    adviser: Option<Uuid>,
) -> Res {
    s.put(
        token,
        &format!("/v1/customers/{customer}/assignment"),
        json!({ "branch_id": branch, "adviser_id": adviser }),
    )
    .await
}

async fn branches_and_assignments(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let (bank, admin) = s.tenant_with_token("distributor", "bank-a").await;
    let (_, other) = s.tenant_with_token("distributor", "bank-b").await;
    let (_, manager) = s.tenant_with_token("manager", "am-one").await;

    // Branches: made by admins, codes checked and unique, a manager has none.
    let tokyo = make_branch(&s, &admin, "001").await;
    let osaka = make_branch(&s, &admin, "002").await;
    let theirs = make_branch(&s, &other, "001").await;
    let operator = s.token_for_role(bank, "operator").await;
    let before = (s.count_rows("branches").await, s.audit_count().await);
    let r = s
        .post(
            &admin,
            "/v1/branches",
            Some(json!({ "code": "001", "name": "Again" })),
        )
        .await;
    r.problem(409);
    let r = s
        .post(
            &admin,
            "/v1/branches",
            Some(json!({ "code": "0 1", "name": "Bad" })),
        )
        .await;
    field_error(&r, 422, "code");
    let r = s
        .post(
            &manager,
            "/v1/branches",
            Some(json!({ "code": "M1", "name": "No" })),
        )
        .await;
    field_error(&r, 422, "tenant");
    s.post(
        &operator,
        "/v1/branches",
        Some(json!({ "code": "003", "name": "No" })),
    )
    .await
    .problem(403);
    assert_eq!(
        (s.count_rows("branches").await, s.audit_count().await),
        before
    );
    // Each distributor reads its own only.
    let list = s.get(&operator, "/v1/branches").await;
    let codes: Vec<&str> = list.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["001", "002"]);
    s.get(&other, &format!("/v1/branches/{tokyo}"))
        .await
        .problem(404);
    assert_eq!(
        s.get(&admin, &format!("/v1/branches/{osaka}"))
            .await
            .ok(200)["code"],
        "002"
    );

    // Users: an adviser needs a branch of its own distributor; nobody else has one.
    let users_before = s.count_rows("console_users").await;
    let r = s
        .post(
            &admin,
            "/v1/users",
            Some(user("a@a.example", "adviser", None)),
        )
        .await;
    field_error(&r, 422, "branch_id");
    let r = s
        .post(
            &admin,
            "/v1/users",
            Some(user("a@a.example", "adviser", Some(theirs))),
        )
        .await;
    field_error(&r, 422, "branch_id");
    let r = s
        .post(
            &admin,
            "/v1/users",
            Some(user("h@a.example", "head_office", Some(tokyo))),
        )
        .await;
    field_error(&r, 422, "branch_id");
    assert_eq!(s.count_rows("console_users").await, users_before);
    let tokyo_adviser = make_user(&s, &admin, "t@a.example", "adviser", Some(tokyo)).await;
    let head = make_user(&s, &admin, "h@a.example", "head_office", None).await;
    assert_eq!(
        s.get(&admin, &format!("/v1/users/{tokyo_adviser}"))
            .await
            .ok(200)["branch_id"],
        tokyo.to_string()
    );

    // Assignment: the adviser must work at the branch; refusals change nothing.
    let c1 = crate::customers::make_customer(&s, &admin, "A-001", 3).await;
    let c2 = crate::customers::make_customer(&s, &admin, "A-002", 3).await;
    let viewer = s.token_for_role(bank, "viewer").await;
    let audit_before = s.audit_count().await;
    field_error(
        &assign(&s, &admin, c2, osaka, Some(tokyo_adviser)).await,
        422,
        "adviser_id",
    );
    field_error(
        &assign(&s, &admin, c2, osaka, Some(head)).await,
        422,
        "adviser_id",
    );
    field_error(
        &assign(&s, &admin, c2, theirs, None).await,
        422,
        "branch_id",
    );
    field_error(
        &assign(&s, &admin, c2, osaka, Some(Uuid::now_v7())).await,
        422,
        "adviser_id",
    );
    assign(&s, &other, c2, theirs, None).await.problem(404);
    assign(&s, &manager, c2, osaka, None).await.problem(404);
    assign(&s, &viewer, c2, osaka, None).await.problem(403);
    assert_eq!(s.audit_count().await, audit_before);
    let c2_now = s.get(&admin, &format!("/v1/customers/{c2}")).await;
    assert_eq!(c2_now.ok(200)["external_ref"], "A-002", "{}", c2_now.text);
    assert!(c2_now.ok(200).get("branch_id").is_none(), "{}", c2_now.text);

    let r = assign(&s, &operator, c1, tokyo, Some(tokyo_adviser)).await;
    assert_eq!(r.ok(200)["branch_id"], tokyo.to_string());
    assert_eq!(r.ok(200)["adviser_id"], tokyo_adviser.to_string());
    assign(&s, &operator, c2, osaka, None).await.ok(200);
    assert_eq!(s.audit_count().await, audit_before + 2);
    // The list by branch.
    let r = s
        .get(&admin, &format!("/v1/customers?branch_id={tokyo}"))
        .await;
    let refs: Vec<&str> = r.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["external_ref"].as_str().unwrap())
        .collect();
    assert_eq!(refs, ["A-001"]);
    s.stop().await;
}

async fn an_adviser_sees_their_branch_only(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let (_, admin) = s.tenant_with_token("distributor", "bank-a").await;
    let (_, other) = s.tenant_with_token("distributor", "bank-b").await;
    let tokyo = make_branch(&s, &admin, "001").await;
    let osaka = make_branch(&s, &admin, "002").await;
    let t = make_user(&s, &admin, "t@a.example", "adviser", Some(tokyo)).await;
    make_user(&s, &admin, "o@a.example", "adviser", Some(osaka)).await;
    make_user(&s, &admin, "h@a.example", "head_office", None).await;
    let mine = crate::customers::make_customer(&s, &admin, "A-001", 3).await;
    let osakas = crate::customers::make_customer(&s, &admin, "A-002", 3).await;
    let nobodys = crate::customers::make_customer(&s, &admin, "A-003", 3).await;
    let theirs = crate::customers::make_customer(&s, &other, "B-001", 3).await;
    assign(&s, &admin, mine, tokyo, Some(t)).await.ok(200);
    assign(&s, &admin, osakas, osaka, None).await.ok(200);

    let mut adviser = Browser::new(&s);
    adviser
        .sign_in("bank-a", "t@a.example", PASSWORD)
        .await
        .redirects_to("/console/home");
    let home = adviser.get("/console/home").await;
    assert!(home.text.contains("/console/customers"), "{}", home.text);
    let list = adviser.get("/console/customers").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert!(list.text.contains("A-001"), "{}", list.text);
    for other_ref in ["A-002", "A-003", "B-001"] {
        assert!(!list.text.contains(other_ref), "{other_ref}: {}", list.text);
    }
    let found = adviser.get("/console/customers?q=a-00").await;
    assert!(
        found.text.contains("A-001") && !found.text.contains("A-002"),
        "{}",
        found.text
    );
    let page = adviser.get(&format!("/console/customers/{mine}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    // Another branch's customer, an unassigned one, another tenant's and none at all: one 404.
    let missing = adviser
        .get(&format!("/console/customers/{}", Uuid::now_v7()))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    for id in [osakas, nobodys, theirs] {
        let r = adviser.get(&format!("/console/customers/{id}")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{id}");
        assert_eq!(r.text, missing.text);
    }
    // Head office's and the operator's screens stay closed to an adviser.
    for path in ["/console/book", "/console/eod", "/console/audit"] {
        assert_eq!(
            adviser.get(path).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }

    // The Osaka adviser sees Osaka's; head office sees every customer of the bank.
    let mut osaka_adviser = Browser::new(&s);
    osaka_adviser
        .sign_in("bank-a", "o@a.example", PASSWORD)
        .await
        .redirects_to("/console/home");
    let list = osaka_adviser.get("/console/customers").await;
    assert!(
        list.text.contains("A-002") && !list.text.contains("A-001"),
        "{}",
        list.text
    );
    let mut head = Browser::new(&s);
    head.sign_in("bank-a", "h@a.example", PASSWORD)
        .await
        .redirects_to("/console/home");
    let list = head.get("/console/customers").await;
    for r in ["A-001", "A-002", "A-003"] {
        assert!(list.text.contains(r), "{r}: {}", list.text);
    }
    assert!(!list.text.contains("B-001"));
    s.stop().await;
}
