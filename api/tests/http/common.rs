//! The real server on a free port, over its own fresh database from the `testing` crate: an
//! SQLite file, or a PostgreSQL database created on the `WRAP_TEST_POSTGRES_URL` server and
//! dropped by `stop`.
//! The platform is bootstrapped; helpers get tokens and make tenants and clients through
//! the HTTP API itself, as a user would.

use actix_web::dev::ServerHandle;
use api::cli::BootstrapArgs;
use api::settings::Settings;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};
use uuid::Uuid;

/// Runs an async test body once per backend: `sqlite` always, `postgres` when
/// `WRAP_TEST_POSTGRES_URL` is set (otherwise that test says so and passes).
#[macro_export]
macro_rules! on_each_backend {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$body("sqlite").await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if !::testing::has_postgres() {
                    eprintln!("WRAP_TEST_POSTGRES_URL not set: PostgreSQL run skipped");
                    return;
                }
                super::$body("postgres").await
            }
        }
    };
}

/// The simulated clock's start for tests: today in Tokyo. End of day may then run any date
/// in order; money is booked on the open business date.
pub fn simulated_start() -> String {
    api::money::today(chrono::Utc::now()).to_string()
}

/// Client credentials.
#[derive(Debug, Clone)]
pub struct Creds {
    pub tenant_id: Uuid,
    /// The client's id in paths.
    pub id: Uuid,
    pub client_id: String,
    pub secret: String,
}

/// An answer, read whole.
#[derive(Debug)]
pub struct Res {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Res {
    /// Asserts a problem+json answer with `status` (also in the body); returns the body.
    #[track_caller]
    pub fn problem(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(
            self.headers["content-type"], "application/problem+json",
            "{}",
            self.text
        );
        assert_eq!(self.body["status"], status, "{}", self.text);
        assert!(
            self.body["type"]
                .as_str()
                .unwrap()
                .starts_with("https://wrap.example/problems/"),
            "{}",
            self.text
        );
        &self.body
    }

    /// Asserts `status` and returns the JSON body.
    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        &self.body
    }
}

pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    pub db: DatabaseConnection,
    pub url: String,
    /// The signing key's PEM, to forge tokens in tests.
    pub key_pem: String,
    pub platform: Creds,
    handle: ServerHandle,
    running: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The database `db` and `url` point at, removed when this is dropped.
    database: testing::TestDb,
}

impl TestServer {
    pub async fn start(backend: &'static str) -> Self {
        Self::start_on(backend, &simulated_start()).await
    }

    /// A server whose simulated clock starts on `first_day`: money moved before its first end
    /// of day is booked on that date, for tests that run fixed dates in the past.
    pub async fn start_on(backend: &'static str, first_day: &str) -> Self {
        Self::start_tuned(backend, first_day, |_| {}).await
    }

    /// A server with `tune` applied to its settings last (rate limits, timeouts).
    pub async fn start_tuned(
        backend: &'static str,
        first_day: &str,
        tune: impl FnOnce(&mut Settings),
    ) -> Self {
        Self::start_in(
            testing::fresh(backend, api::db::connect).await,
            first_day,
            tune,
        )
        .await
    }

    /// A server over `database` (say, one on a PostgreSQL server the test runs itself).
    pub async fn start_in(
        database: testing::TestDb,
        first_day: &str,
        tune: impl FnOnce(&mut Settings),
    ) -> Self {
        let (url, db) = (database.url.clone(), database.db.clone());
        let mut settings = Settings::builtin().unwrap();
        settings.server.bind = "127.0.0.1:0".to_owned();
        settings.database.url = url.clone();
        settings.database.auto_migrate = true;
        // Tests run end of day on dates from today on (and in 2031): a simulated clock, as
        // the README says demos and tests must (docs/DOMAIN.md section 7).
        settings.clock.simulated_start = first_day.to_owned();
        let key_pem = tenants::jwt::generate_dev_key().unwrap();
        settings.auth.key_pem = key_pem.clone();
        // The suite asks for many tokens from 127.0.0.1: the token limits are tried by
        // `rate_limits.rs`, with its own settings.
        settings.rate_limits.token_per_minute_per_address = 0;
        settings.rate_limits.token_per_minute_per_client = 0;
        tune(&mut settings);
        api::db::prepare(&db, &settings.database).await.unwrap();
        let made = api::bootstrap::bootstrap(
            &db,
            &BootstrapArgs {
                json: true,
                name: "platform".into(),
                display_name: "Wrap Platform".into(),
                contact_email: "ops@wrap.example".into(),
            },
        )
        .await
        .unwrap();
        let client = tenants::store::find_client_by_client_id(&db, &made.client_id)
            .await
            .unwrap()
            .unwrap();
        let (server, addr) = api::build_server(&settings, db.clone()).await.unwrap();
        let handle = server.handle();
        let running = tokio::spawn(server);
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            db,
            url,
            key_pem,
            platform: Creds {
                tenant_id: made.tenant_id,
                id: client.id,
                client_id: made.client_id,
                secret: made.client_secret,
            },
            handle,
            running,
            database,
        }
    }

    /// Stops the server and removes its database.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.running.await;
        let _ = self.db.close().await;
        drop(self.database);
    }

    pub async fn read(r: reqwest::Response) -> Res {
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Res {
            status,
            headers,
            body,
            text,
        }
    }

    /// POST /oauth/token with form credentials.
    pub async fn token_request(&self, client_id: &str, secret: &str) -> Res {
        let r = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", secret),
            ])
            .send()
            .await
            .unwrap();
        Self::read(r).await
    }

    /// A token for `creds` (must succeed).
    pub async fn token(&self, creds: &Creds) -> String {
        let r = self.token_request(&creds.client_id, &creds.secret).await;
        r.ok(200)["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn get(&self, token: &str, path: &str) -> Res {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        Self::read(r).await
    }

    /// GET a file: the status and the body's raw bytes (a Zengin file is Shift_JIS, not UTF-8).
    pub async fn get_bytes(&self, token: &str, path: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let (status, headers) = (r.status(), r.headers().clone());
        (status, headers, r.bytes().await.unwrap().to_vec())
    }

    /// POST with a JSON body (or none).
    pub async fn post(&self, token: &str, path: &str, body: Option<Value>) -> Res {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        Self::read(req.send().await.unwrap()).await
    }

    /// Creates a tenant of `kind` named `name` as the platform admin `token`.
    pub async fn make_tenant(&self, token: &str, kind: &str, name: &str) -> Uuid {
        let r = self
            .post(
                token,
                "/v1/tenants",
                Some(json!({"kind": kind, "name": name, "contact_email": "ops@bank.example"})),
            )
            .await;
        r.ok(201)["id"].as_str().unwrap().parse().unwrap()
    }

    /// Creates a client of `tenant_id` with `role` as `token` (an admin).
    pub async fn make_client(&self, token: &str, tenant_id: Uuid, role: &str) -> Creds {
        let r = self
            .post(
                token,
                &format!("/v1/tenants/{tenant_id}/clients"),
                Some(json!({"name": format!("{role} client"), "role": role})),
            )
            .await;
        let b = r.ok(201);
        Creds {
            tenant_id,
            id: b["id"].as_str().unwrap().parse().unwrap(),
            client_id: b["client_id"].as_str().unwrap().to_owned(),
            secret: b["client_secret"].as_str().unwrap().to_owned(),
        }
    }

    /// How many rows the audit log holds.
    pub async fn audit_count(&self) -> i64 {
        use sea_orm::ConnectionTrait as _;
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                self.db.get_database_backend(),
                "SELECT COUNT(*) FROM audit_log",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    }

    /// Any request: `method`, optional bearer token, extra headers, and a raw body with its
    /// content type (for CSV uploads and malformed bodies).
    pub async fn send(
        &self,
        method: reqwest::Method,
        token: Option<&str>,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Res {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some((content_type, bytes)) = body {
            req = req.header("content-type", content_type).body(bytes);
        }
        Self::read(req.send().await.unwrap()).await
    }

    /// POST a JSON body with an `Idempotency-Key` header (every POST that moves money).
    pub async fn post_idem(&self, token: &str, path: &str, key: &str, body: Value) -> Res {
        self.send(
            reqwest::Method::POST,
            Some(token),
            path,
            &[("idempotency-key", key)],
            Some(("application/json", serde_json::to_vec(&body).unwrap())),
        )
        .await
    }

    /// PUT with a JSON body.
    pub async fn put(&self, token: &str, path: &str, body: Value) -> Res {
        self.send(
            reqwest::Method::PUT,
            Some(token),
            path,
            &[],
            Some(("application/json", serde_json::to_vec(&body).unwrap())),
        )
        .await
    }

    /// A new tenant of `kind` and a token of its admin client.
    pub async fn tenant_with_token(&self, kind: &str, name: &str) -> (Uuid, String) {
        let platform = self.token(&self.platform).await;
        let id = self.make_tenant(&platform, kind, name).await;
        let creds = self.make_client(&platform, id, "admin").await;
        (id, self.token(&creds).await)
    }

    /// A token of a new client of `tenant_id` with `role` (`admin`, `operator`, `viewer`).
    pub async fn token_for_role(&self, tenant_id: Uuid, role: &str) -> String {
        let platform = self.token(&self.platform).await;
        let creds = self.make_client(&platform, tenant_id, role).await;
        self.token(&creds).await
    }

    /// How many rows `table` holds: to assert that a refused request wrote nothing.
    pub async fn count_rows(&self, table: &str) -> i64 {
        use sea_orm::ConnectionTrait as _;
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                self.db.get_database_backend(),
                format!("SELECT COUNT(*) FROM {table}"),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    }
}
