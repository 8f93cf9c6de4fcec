//! The console (`/console`) and its users (`/v1/users`) over real HTTP, on both databases:
//! sign-in, wrong passwords and lockout, CSRF refusals that change nothing, idle expiry,
//! sign-out, per-screen tenant isolation and role checks, and the offline `/docs`.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{Res, TestServer};
use crate::on_each_backend;

on_each_backend!(users_api, users_api);
on_each_backend!(sign_in_language_and_sign_out, sign_in_language_and_sign_out);
on_each_backend!(csrf_refusals_change_nothing, csrf_refusals_change_nothing);
on_each_backend!(wrong_passwords_lock_the_user, wrong_passwords_lock_the_user);
on_each_backend!(idle_sessions_end, idle_sessions_end);
on_each_backend!(
    screens_keep_tenants_and_roles_apart,
    screens_keep_tenants_and_roles_apart
);
on_each_backend!(docs_work_offline, docs_work_offline);

pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// A browser without JavaScript: keeps cookies by hand (Max-Age=0 deletes), follows no
/// redirect, so each answer is seen as sent.
pub(crate) struct Browser {
    base: String,
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
    /// The `Set-Cookie` headers of the last answer.
    last_set_cookie: Vec<String>,
}

impl Browser {
    pub(crate) fn new(server: &TestServer) -> Self {
        Self::at(server.base.clone())
    }

    /// A browser on the server at `base` (`http://host:port`).
    pub(crate) fn at(base: String) -> Self {
        Self {
            base,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
            last_set_cookie: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, res: &reqwest::Response) {
        self.last_set_cookie = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for line in &self.last_set_cookie {
            let (pair, attrs) = line.split_once(';').unwrap_or((line, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&res);
        Page::read(res).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap())
            .send()
            .await
            .unwrap();
        self.keep(&res);
        Page::read(res).await
    }

    /// Opens the sign-in page and posts it; returns the answer to the post.
    pub(crate) async fn sign_in(&mut self, tenant: &str, email: &str, password: &str) -> Page {
        let form = self.get("/console/sign-in").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.text);
        let csrf = form.csrf();
        self.post(
            "/console/sign-in",
            &[
                ("csrf", &csrf),
                ("tenant", tenant),
                ("email", email),
                ("password", password),
            ],
        )
        .await
    }

    /// The CSRF token of the signed-in session, from the sign-out form of the home page.
    async fn csrf(&mut self) -> String {
        let home = self.get("/console/home").await;
        assert_eq!(home.status, StatusCode::OK, "{}", home.text);
        home.csrf()
    }
}

pub(crate) struct Page {
    pub(crate) status: StatusCode,
    location: String,
    pub(crate) text: String,
}

impl Page {
    async fn read(res: reqwest::Response) -> Self {
        let status = res.status();
        let location = res
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        Self {
            status,
            location,
            text: res.text().await.unwrap(),
        }
    }

    /// The value of the page's first `csrf` hidden field.
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.text.find(marker).expect("a csrf field") + marker.len();
        let end = self.text[start..].find('"').unwrap() + start;
        self.text[start..end].to_owned()
    }

    #[track_caller]
    pub(crate) fn redirects_to(&self, path: &str) {
        assert_eq!(self.status, StatusCode::SEE_OTHER, "{}", self.text);
        assert_eq!(self.location, path);
    }
}

/// Creates a console user through `/v1/users` with the admin `token`; returns its id.
async fn make_user(server: &TestServer, token: &str, email: &str, role: &str) -> Uuid {
    let r = server
        .post(
            token,
            "/v1/users",
            Some(json!({
                "name": format!("User {email}"),
                "email": email,
                "role": role,
                "access": "write",
                "password": PASSWORD,
            })),
        )
        .await;
    r.ok(201)["id"].as_str().unwrap().parse().unwrap()
}

async fn user_status(server: &TestServer, token: &str, id: Uuid) -> Value {
    server
        .get(token, &format!("/v1/users/{id}"))
        .await
        .ok(200)
        .clone()
}

#[track_caller]
pub(crate) fn field_error(r: &Res, status: u16, field: &str) {
    let body = r.problem(status);
    let named = body["errors"].as_array().is_some_and(|errors| {
        errors
            .iter()
            .filter_map(|e| e["field"].as_str())
            .any(|f| f.trim_start_matches('/') == field)
    });
    assert!(named, "{field} not named: {}", r.text);
}

async fn users_api(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let (bank, admin) = s.tenant_with_token("distributor", "bank-a").await;
    let (_, other_admin) = s.tenant_with_token("distributor", "bank-b").await;
    let before = s.audit_count().await;

    let body = |password: &str, role: &str, email: &str| {
        json!({ "name": "Hanako Sato", "email": email, "role": role, "access": "write",
                "password": password })
    };
    // Validation names the field, and writes nothing.
    let r = s
        .post(
            &admin,
            "/v1/users",
            Some(body("short", "head_office", "h@bank.example")),
        )
        .await;
    field_error(&r, 422, "password");
    let r = s
        .post(
            &admin,
            "/v1/users",
            Some(body(PASSWORD, "operator", "h@bank.example")),
        )
        .await;
    field_error(&r, 422, "role");
    let r = s
        .post(
            &admin,
            "/v1/users",
            Some(body(PASSWORD, "head_office", "not-an-email")),
        )
        .await;
    field_error(&r, 422, "email");
    let r = s
        .post(
            &admin,
            "/v1/users",
            Some(body(PASSWORD, "chief", "h@bank.example")),
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.text);
    assert!(r.text.contains("role"), "{}", r.text);
    assert_eq!(s.count_rows("console_users").await, 0);
    assert_eq!(s.audit_count().await, before);

    // Created, listed, never with a password or its hash.
    let r = s
        .post(
            &admin,
            "/v1/users",
            Some(body(PASSWORD, "head_office", "Hanako@Bank.example")),
        )
        .await;
    let user = r.ok(201).clone();
    assert_eq!(user["email"], "hanako@bank.example");
    assert_eq!(user["status"], "active");
    assert_eq!(user["tenant_id"], bank.to_string());
    assert!(
        !r.text.contains("argon2") && !r.text.contains(PASSWORD),
        "{}",
        r.text
    );
    let id: Uuid = user["id"].as_str().unwrap().parse().unwrap();
    // The same email in any case is taken.
    let r = s
        .post(
            &admin,
            "/v1/users",
            Some(body(PASSWORD, "head_office", "HANAKO@bank.example")),
        )
        .await;
    r.problem(409);
    let list = s.get(&admin, "/v1/users").await;
    assert_eq!(list.ok(200)["items"].as_array().unwrap().len(), 1);
    assert!(!list.text.contains("argon2"));

    // Only admins manage users; another tenant's user is not found.
    let operator = s.token_for_role(bank, "operator").await;
    s.get(&operator, "/v1/users").await.problem(403);
    s.post(
        &operator,
        "/v1/users",
        Some(body(PASSWORD, "adviser", "a@bank.example")),
    )
    .await
    .problem(403);
    s.get(&other_admin, &format!("/v1/users/{id}"))
        .await
        .problem(404);
    s.post(&other_admin, &format!("/v1/users/{id}/suspend"), None)
        .await
        .problem(404);
    assert_eq!(
        s.get(&other_admin, "/v1/users").await.ok(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    s.get(&admin, &format!("/v1/users/{}", Uuid::now_v7()))
        .await
        .problem(404);

    // Suspend and resume, each audited.
    let r = s
        .post(&admin, &format!("/v1/users/{id}/suspend"), None)
        .await;
    assert_eq!(r.ok(200)["status"], "suspended");
    let r = s
        .post(&admin, &format!("/v1/users/{id}/resume"), None)
        .await;
    assert_eq!(r.ok(200)["status"], "active");
    let platform = s.token(&s.platform).await;
    let audit = s.get(&platform, "/v1/audit?limit=1000").await;
    let actions: Vec<&str> = audit.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target_id"] == id.to_string())
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["user.create", "user.suspend", "user.resume"]);
    assert!(!audit.text.contains(PASSWORD));
    s.stop().await;
}

async fn sign_in_language_and_sign_out(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let (_, admin) = s.tenant_with_token("distributor", "bank-a").await;
    make_user(&s, &admin, "hanako@bank.example", "head_office").await;
    let mut b = Browser::new(&s);

    b.get("/console").await.redirects_to("/console/sign-in");
    b.get("/console/home")
        .await
        .redirects_to("/console/sign-in");
    // The email in another case is the same user.
    let r = b.sign_in("bank-a", "Hanako@Bank.example", PASSWORD).await;
    r.redirects_to("/console/home");
    let session = b
        .last_set_cookie
        .iter()
        .find(|c| c.starts_with("wrap_session="))
        .unwrap()
        .clone();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(session.contains(attr), "{session}");
    }
    assert!(!session.contains("Secure"), "{session}");
    assert_eq!(s.count_rows("console_sessions").await, 1);

    // Japanese by default, English on request and then remembered.
    let home = b.get("/console/home").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.text.contains("lang=\"ja\""), "{}", home.text);
    assert!(home.text.contains("ようこそ"), "{}", home.text);
    assert!(home.text.contains("href=\"/docs\""));
    let en = b.get("/console/home?lang=en").await;
    assert!(en.text.contains("Welcome"), "{}", en.text);
    let still = b.get("/console/book").await;
    assert!(
        still.text.contains("The book at a glance"),
        "{}",
        still.text
    );
    assert!(
        still.text.contains("No end of day has finished yet"),
        "{}",
        still.text
    );

    // Sign-out ends the session: the old cookie signs nobody in.
    let old = b.cookies["wrap_session"].clone();
    let csrf = b.csrf().await;
    b.post("/console/sign-out", &[("csrf", &csrf)])
        .await
        .redirects_to("/console/sign-in");
    assert!(!b.cookies.contains_key("wrap_session"));
    assert_eq!(s.count_rows("console_sessions").await, 0);
    b.cookies.insert("wrap_session".into(), old);
    b.get("/console/home")
        .await
        .redirects_to("/console/sign-in");

    // Each step is in the audit log under the user's name.
    let platform = s.token(&s.platform).await;
    let audit = s.get(&platform, "/v1/audit?limit=1000").await;
    let actions: Vec<(String, String)> = audit.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor_client_id"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for action in ["console.sign_in", "console.sign_out"] {
        assert!(
            actions.contains(&("user:hanako@bank.example".to_owned(), action.to_owned())),
            "{action}: {actions:?}"
        );
    }
    s.stop().await;
}

async fn csrf_refusals_change_nothing(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let (_, admin) = s.tenant_with_token("distributor", "bank-a").await;
    make_user(&s, &admin, "hanako@bank.example", "head_office").await;
    let mut b = Browser::new(&s);

    // Sign-in without the form's token, or with another: refused, no session.
    let form = b.get("/console/sign-in").await;
    let audit_before = s.audit_count().await;
    for token in ["", "forged", &format!("{}x", form.csrf())] {
        let r = b
            .post(
                "/console/sign-in",
                &[
                    ("csrf", token),
                    ("tenant", "bank-a"),
                    ("email", "hanako@bank.example"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{token}: {}", r.text);
    }
    assert_eq!(s.count_rows("console_sessions").await, 0);
    assert_eq!(s.audit_count().await, audit_before);

    // Signed in: a sign-out without the session's token, or with a wrong one, ends nothing.
    b.sign_in("bank-a", "hanako@bank.example", PASSWORD)
        .await
        .redirects_to("/console/home");
    let csrf = b.csrf().await;
    let audit_before = s.audit_count().await;
    let r = b.post("/console/sign-out", &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = b
        .post("/console/sign-out", &[("csrf", &csrf[..csrf.len() - 1])])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // Another session's token does not fit this one.
    let mut other = Browser::new(&s);
    other
        .sign_in("bank-a", "hanako@bank.example", PASSWORD)
        .await
        .redirects_to("/console/home");
    let others = other.csrf().await;
    assert_ne!(others, csrf);
    let r = b.post("/console/sign-out", &[("csrf", &others)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(s.count_rows("console_sessions").await, 2);
    // Only the sign-in of the second browser was recorded.
    assert_eq!(s.audit_count().await, audit_before + 1);
    assert_eq!(b.get("/console/home").await.status, StatusCode::OK);
    s.stop().await;
}

async fn wrong_passwords_lock_the_user(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let (_, admin) = s.tenant_with_token("distributor", "bank-a").await;
    let id = make_user(&s, &admin, "hanako@bank.example", "head_office").await;
    let mut b = Browser::new(&s);

    // Unknown tenant, unknown email, wrong password: one answer.
    for (tenant, email, password) in [
        ("bank-x", "hanako@bank.example", PASSWORD),
        ("bank-a", "nobody@bank.example", PASSWORD),
        ("bank-a", "hanako@bank.example", "wrong password!"),
    ] {
        let r = b.sign_in(tenant, email, password).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
        assert!(r.text.contains("sign-in-error"), "{}", r.text);
    }
    assert_eq!(user_status(&s, &admin, id).await["failed_sign_ins"], 1);
    // A right password resets the count.
    b.sign_in("bank-a", "hanako@bank.example", PASSWORD)
        .await
        .redirects_to("/console/home");
    assert_eq!(user_status(&s, &admin, id).await["failed_sign_ins"], 0);

    // Five wrong in a row (the default) lock the user, whose sessions end when next used;
    // then even the right password is refused.
    let mut guesser = Browser::new(&s);
    for _ in 0..5 {
        let r = guesser
            .sign_in("bank-a", "hanako@bank.example", "wrong password!")
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let user = user_status(&s, &admin, id).await;
    assert_eq!(user["status"], "locked", "{user}");
    assert_eq!(s.count_rows("console_sessions").await, 1);
    // The earlier session no longer opens anything.
    b.get("/console/home")
        .await
        .redirects_to("/console/sign-in");
    assert_eq!(s.count_rows("console_sessions").await, 0);
    let r = guesser
        .sign_in("bank-a", "hanako@bank.example", PASSWORD)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let platform = s.token(&s.platform).await;
    let audit = s.get(&platform, "/v1/audit?limit=1000").await;
    assert!(audit.text.contains("\"user.lock\""), "{}", audit.text);

    // An admin resumes the user.
    s.post(&admin, &format!("/v1/users/{id}/resume"), None)
        .await
        .ok(200);
    guesser
        .sign_in("bank-a", "hanako@bank.example", PASSWORD)
        .await
        .redirects_to("/console/home");

    // A suspended user is refused too, and its sessions end.
    s.post(&admin, &format!("/v1/users/{id}/suspend"), None)
        .await
        .ok(200);
    guesser
        .get("/console/home")
        .await
        .redirects_to("/console/sign-in");
    let r = guesser
        .sign_in("bank-a", "hanako@bank.example", PASSWORD)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    s.stop().await;
}

async fn idle_sessions_end(backend: &'static str) {
    let s = TestServer::start_tuned(backend, &crate::common::simulated_start(), |settings| {
        settings.console.idle_timeout_seconds = 2;
        settings.console.secure_cookie = true;
    })
    .await;
    let (_, admin) = s.tenant_with_token("distributor", "bank-a").await;
    make_user(&s, &admin, "hanako@bank.example", "head_office").await;
    let mut b = Browser::new(&s);
    b.sign_in("bank-a", "hanako@bank.example", PASSWORD)
        .await
        .redirects_to("/console/home");
    let session = b
        .last_set_cookie
        .iter()
        .find(|c| c.starts_with("wrap_session="))
        .unwrap()
        .clone();
    assert!(session.contains("; Secure"), "{session}");
    // Used within the idle time: still alive, and the idle clock starts again.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(b.get("/console/home").await.status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(b.get("/console/home").await.status, StatusCode::OK);
    // Idle for longer: ended, and its row deleted.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    b.get("/console/home")
        .await
        .redirects_to("/console/sign-in");
    assert_eq!(s.count_rows("console_sessions").await, 0);
    s.stop().await;
}

async fn screens_keep_tenants_and_roles_apart(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let platform = s.token(&s.platform).await;
    make_user(&s, &platform, "ops@wrap.example", "operator").await;
    let (_, admin_a) = s.tenant_with_token("distributor", "bank-a").await;
    let (_, admin_b) = s.tenant_with_token("distributor", "bank-b").await;
    make_user(&s, &admin_a, "head@a.example", "head_office").await;
    let (_, manager_admin) = s.tenant_with_token("manager", "am-one").await;
    make_user(&s, &manager_admin, "pm@am.example", "manager").await;
    let own = crate::customers::make_customer(&s, &admin_a, "A-001", 3).await;
    crate::customers::make_customer(&s, &admin_a, "A-002", 2).await;
    let theirs = crate::customers::make_customer(&s, &admin_b, "B-001", 3).await;

    let mut head = Browser::new(&s);
    head.sign_in("bank-a", "head@a.example", PASSWORD)
        .await
        .redirects_to("/console/home");
    let page = head.get(&format!("/console/customers/{own}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("Customer A-001"), "{}", page.text);
    assert!(page.text.contains("¥0"), "{}", page.text);
    // Another tenant's customer and a customer that does not exist: the same 404.
    let theirs_page = head.get(&format!("/console/customers/{theirs}")).await;
    assert_eq!(theirs_page.status, StatusCode::NOT_FOUND);
    assert!(!theirs_page.text.contains("B-001"));
    let missing = head
        .get(&format!("/console/customers/{}", Uuid::now_v7()))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.text, theirs_page.text);
    assert_eq!(
        head.get("/console/customers/not-a-uuid").await.status,
        StatusCode::NOT_FOUND
    );
    // The list and the search show the tenant's own customers only.
    let list = head.get("/console/customers").await;
    assert!(list.text.contains("A-001") && list.text.contains("A-002"));
    assert!(!list.text.contains("B-001"), "{}", list.text);
    let found = head.get("/console/customers?q=a-002").await;
    assert!(found.text.contains("A-002") && !found.text.contains("A-001"));
    let none = head.get("/console/customers?q=B-001").await;
    assert!(!none.text.contains("/console/customers/"), "{}", none.text);
    // Head office may not open the operator's screens.
    assert_eq!(head.get("/console/eod").await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        head.get("/console/audit").await.status,
        StatusCode::FORBIDDEN
    );

    // A manager may not open head office's or the operator's screens (an adviser's are
    // tried by branches.rs).
    for (tenant, email) in [("am-one", "pm@am.example")] {
        let mut b = Browser::new(&s);
        b.sign_in(tenant, email, PASSWORD)
            .await
            .redirects_to("/console/home");
        assert_eq!(b.get("/console/home").await.status, StatusCode::OK);
        for path in [
            "/console/book".to_owned(),
            "/console/customers".to_owned(),
            format!("/console/customers/{own}"),
            "/console/eod".to_owned(),
            "/console/audit".to_owned(),
        ] {
            let r = b.get(&path).await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{email} {path}: {}",
                r.text
            );
        }
    }

    // The operator sees end of day and the audit log, and no distributor's customers.
    let mut ops = Browser::new(&s);
    ops.sign_in("platform", "ops@wrap.example", PASSWORD)
        .await
        .redirects_to("/console/home");
    let eod = ops.get("/console/eod").await;
    assert_eq!(eod.status, StatusCode::OK, "{}", eod.text);
    assert!(eod.text.contains("日次処理"), "{}", eod.text);
    let audit = ops.get("/console/audit").await;
    assert_eq!(audit.status, StatusCode::OK);
    assert!(audit.text.contains("user:head@a.example"), "{}", audit.text);
    assert_eq!(
        ops.get(&format!("/console/customers/{own}")).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        ops.get("/console/eod?date=garbage").await.status,
        StatusCode::BAD_REQUEST
    );
    s.stop().await;
}

async fn docs_work_offline(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let page = s.http.get(format!("{}/docs", s.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("src=\"/docs/redoc.standalone.js\""), "{html}");
    assert!(!html.contains("cdn"), "{html}");
    let script = s
        .http
        .get(format!("{}/docs/redoc.standalone.js", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/javascript")
    );
    assert!(script.bytes().await.unwrap().len() > 500_000);
    let css = s
        .http
        .get(format!("{}/console/console.css", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    s.stop().await;
}
