//! Observability (issue 23, item 6): `/metrics` counts what it says (entries posted by a
//! deposit, end of day's steps, the pool, rate-limit refusals), and a JSON log line of a
//! request carries its request id, tenant and client at the top level (the real binary, its
//! stderr captured).

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::common::{TestServer, simulated_start};
use crate::customers::{deposit, make_customer};
use crate::on_each_backend;

on_each_backend!(metrics_count_what_they_say, metrics_move);
on_each_backend!(rate_limit_refusals_are_counted, refusals_counted);

async fn scrape(s: &TestServer) -> String {
    let r = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// The value of the sample `name` (with its labels, exactly as exposed), if exposed.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn metrics_move(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let before = scrape(&s).await;
    let entries = sample(&before, "ledger_entries_written_total").unwrap();
    assert!(
        sample(&before, r#"db_pool_connections{state="idle"}"#).is_some(),
        "{before}"
    );
    assert!(sample(&before, "db_pool_max_connections").unwrap() >= 1.0);
    // No end of day yet: 0.
    assert_eq!(
        sample(&before, "eod_latest_date_seconds"),
        Some(0.0),
        "{before}"
    );

    // A deposit posts one entry, in its request's transaction: the counter moves by one.
    let (_, bank) = s.tenant_with_token("distributor", "Bank").await;
    let customer = make_customer(&s, &bank, "C-1", 3).await;
    deposit(&s, &bank, customer, "100000").await;
    let after = scrape(&s).await;
    assert_eq!(
        sample(&after, "ledger_entries_written_total").unwrap(),
        entries + 1.0,
        "{after}"
    );
    // Its replay (same key, same body) writes nothing and counts nothing.
    let path = format!("/v1/customers/{customer}/deposits");
    for _ in 0..2 {
        s.post_idem(&bank, &path, "same-key", json!({"amount": "5"}))
            .await
            .ok(201);
    }
    let replayed = scrape(&s).await;
    assert_eq!(
        sample(&replayed, "ledger_entries_written_total").unwrap(),
        entries + 2.0
    );

    // End of day of today: its date, and each step's time and counts.
    let root = s.token(&s.platform).await;
    let today: chrono::NaiveDate = simulated_start().parse().unwrap();
    s.post(&root, "/v1/operations/eod", Some(json!({"date": today})))
        .await
        .ok(202);
    assert_eq!(crate::eod::wait(&s, today).await["status"], "finished");
    let text = scrape(&s).await;
    let midnight = today.and_time(chrono::NaiveTime::MIN).and_utc().timestamp();
    assert_eq!(
        sample(&text, "eod_latest_date_seconds"),
        Some(midnight as f64)
    );
    assert_eq!(sample(&text, "eod_latest_date_finished"), Some(1.0));
    for step in wraps::eod::STEPS {
        assert!(
            sample(
                &text,
                &format!(r#"eod_step_duration_seconds{{step="{step}"}}"#)
            )
            .is_some(),
            "{step}: {text}"
        );
    }
    assert!(
        text.contains(r#"eod_step_rows{count="due",step="plans"} 0"#),
        "{text}"
    );
    s.stop().await;
}

async fn refusals_counted(backend: &'static str) {
    let s = TestServer::start_tuned(backend, &simulated_start(), |st| {
        st.rate_limits.api_per_second_per_client = 1;
    })
    .await;
    let root = s.token(&s.platform).await;
    let mut refused = 0;
    for _ in 0..5 {
        if s.get(&root, "/v1/tenants").await.status == 429 {
            refused += 1;
        }
    }
    assert!(refused >= 1);
    let text = scrape(&s).await;
    assert_eq!(
        sample(&text, r#"rate_limit_refusals_total{limit="api_client"}"#),
        Some(f64::from(refused)),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"http_requests_total{method="GET",route="/v1/tenants",status="429"}"#
        ),
        Some(f64::from(refused))
    );
    s.stop().await;
}

/// `wrapd serve` with JSON logs: the line of an authenticated request carries `request_id`,
/// `tenant_id` and `client_id` as top-level fields, with its own fields beside them. With
/// `log.otlp_endpoint` set, the request's span reaches an OTLP/HTTP collector (a receiver of
/// the test's own), at the latest when `wrapd` stops on SIGTERM.
#[test]
fn json_log_lines_and_traces_carry_request_tenant_and_client() {
    let collector = Collector::start();
    let dir = std::env::temp_dir().join(format!("wrapd-logs-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/wrap.db?mode=rwc", dir.display());
    let wrapd = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_wrapd"));
        c.args(args)
            .args(["--database-url", &url])
            .env("WRAP__LOG__FORMAT", "json")
            .env("WRAP__LOG__LEVEL", "info")
            .env("WRAP__DATABASE__AUTO_MIGRATE", "true")
            .env_remove("RUST_LOG");
        c
    };
    let made = wrapd(&["bootstrap", "--json"]).output().unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let made: Value = serde_json::from_slice(&made.stdout).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = wrapd(&["serve"])
        .env("WRAP__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("WRAP__LOG__OTLP_ENDPOINT", &collector.url)
        .env("WRAP__LOG__OTLP_SERVICE_NAME", "wrapd-under-test")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let collected = std::sync::Arc::clone(&lines);
    let reader = std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            collected.lock().unwrap().push(line);
        }
    });

    let base = format!("http://127.0.0.1:{port}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let mut ready = false;
        for _ in 0..200 {
            if http.get(format!("{base}/healthz")).send().await.is_ok() {
                ready = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(ready, "wrapd serve did not answer");
        let token: Value = http
            .post(format!("{base}/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", made["client_id"].as_str().unwrap()),
                ("client_secret", made["client_secret"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let r = http
            .get(format!("{base}/v1/tenants"))
            .bearer_auth(token["access_token"].as_str().unwrap())
            .header("x-request-id", "log-fields-test-1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    });
    // A graceful stop (SIGTERM to the process this test started), so the last spans are sent.
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "wrapd serve exited with {exit}");
    reader.join().unwrap();
    // OTLP/HTTP protobuf: strings are stored as they are, so the service name, the span's
    // name and its request id are found in the bodies the collector received.
    let posts = collector.posts();
    assert!(!posts.is_empty(), "no trace export reached the collector");
    for (path, content_type, _) in &posts {
        assert_eq!(path, "/v1/traces");
        assert_eq!(content_type, "application/x-protobuf");
    }
    let has = |needle: &[u8]| {
        posts
            .iter()
            .any(|(_, _, body)| body.windows(needle.len()).any(|w| w == needle))
    };
    assert!(has(b"wrapd-under-test"), "no service.name in the traces");
    assert!(
        has(b"log-fields-test-1"),
        "the request's span was not exported"
    );
    assert!(
        has(made["client_id"].as_str().unwrap().as_bytes()),
        "no client_id on the span"
    );
    let lines = lines.lock().unwrap();
    let line: Value = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["request_id"] == "log-fields-test-1" && l["message"] == "request done")
        .unwrap_or_else(|| panic!("no request line in:\n{}", lines.join("\n")));
    assert_eq!(line["tenant_id"], made["tenant_id"], "{line}");
    assert_eq!(line["client_id"], made["client_id"], "{line}");
    assert_eq!(line["status"], 200, "{line}");
    assert_eq!(line["route"], "/v1/tenants", "{line}");
    assert_eq!(line["level"], "INFO", "{line}");
    assert!(line["timestamp"].is_string(), "{line}");
    // Every line is one JSON object.
    for l in lines.iter() {
        assert!(
            serde_json::from_str::<Value>(l).is_ok_and(|v| v.is_object()),
            "{l}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A minimal OTLP/HTTP receiver: answers 200 to every POST and keeps its path, content type
/// and body (HTTP/1.1 with keep-alive, as the exporter's client sends).
struct Collector {
    url: String,
    posts: std::sync::Arc<std::sync::Mutex<Vec<Post>>>,
}

/// A request the collector received: path, content type, body.
type Post = (String, String, Vec<u8>);

impl Collector {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let posts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = std::sync::Arc::clone(&posts);
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let kept = std::sync::Arc::clone(&kept);
                std::thread::spawn(move || Self::serve(stream, &kept));
            }
        });
        Self { url, posts }
    }

    fn serve(stream: std::net::TcpStream, kept: &std::sync::Mutex<Vec<(String, String, Vec<u8>)>>) {
        use std::io::{Read as _, Write as _};
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        loop {
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                return;
            }
            let path = request_line
                .split(' ')
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            let (mut length, mut content_type) = (0usize, String::new());
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 {
                    return;
                }
                let header = header.trim_end();
                if header.is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    match name.to_ascii_lowercase().as_str() {
                        "content-length" => length = value.trim().parse().unwrap_or(0),
                        "content-type" => content_type = value.trim().to_owned(),
                        _ => {}
                    }
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            kept.lock().unwrap().push((path, content_type, body));
            if writer
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .is_err()
            {
                return;
            }
        }
    }

    fn posts(&self) -> Vec<Post> {
        self.posts.lock().unwrap().clone()
    }
}
