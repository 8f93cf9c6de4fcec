//! The webhook delivery worker: sends each due delivery (rows of
//! [`wraps::events::webhooks`]) as a signed POST and records the attempt. Started by
//! `wrapd serve` when `[webhooks] worker = true`; any number of replicas may run it.
//!
//! What it guarantees rests on the store's claim (module docs there): it sends only the
//! deliveries whose claim it won, holds each claim for longer than an attempt may take
//! ([`lease`]), and records a result only while it still holds the claim. After a crash or
//! restart nothing is in memory to lose: the pending rows are due again when their lease
//! lapses, so a delivery is sent at least once and, at worst, twice with the same
//! `webhook-id` (the event id) for the receiver to drop. Tried by
//! `api/tests/http/webhooks.rs` (`a_restarted_worker_resumes`,
//! `two_workers_deliver_each_event_once`, and `a_killed_wrapd_resumes_deliveries`: the
//! `wrapd serve` binary SIGKILLed mid-delivery and started again).
//!
//! Targets: unless `[webhooks] allow_private_targets` is set, nothing is posted to an address
//! that is not public ([`public`]): an IP literal is checked before the request, and a name is
//! resolved by [`PublicOnly`], which keeps only public addresses, so a name that resolves (or
//! later re-resolves) to an internal address reaches nothing. Redirects are never followed.
//! Tried by `webhooks.rs::private_targets_are_refused`.
//!
//! Signing follows the Standard Webhooks specification: `webhook-id` (the event id),
//! `webhook-timestamp` (Unix seconds) and `webhook-signature: v1,<base64 of HMAC-SHA256 over
//! "<id>.<timestamp>.<body>">` keyed by the secret's bytes (the base64 after `whsec_`).
//! Receivers check the signature and refuse a timestamp far from their clock (replays).

use std::time::{Duration, Instant};

use base64::Engine;
use chrono::Utc;
use hmac::{Hmac, Mac};
use sea_orm::DatabaseConnection;
use sha2::Sha256;
use wraps::events::webhooks::{self as store, Attempt, Due, Outcome};

use crate::background::Handle;
use crate::settings::WebhookSettings;

/// The signature of `body` for message `id` at `timestamp` with `secret` (`whsec_…`), as the
/// `webhook-signature` header carries it.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap_or_else(|_| encoded.as_bytes().to_vec());
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
        return String::new();
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// How long a worker holds a claimed delivery: longer than an attempt can take (its timeout)
/// and the recording of its result, so no other worker sends it meanwhile.
pub fn lease(settings: &WebhookSettings) -> Duration {
    Duration::from_millis(settings.timeout_ms.saturating_mul(2).saturating_add(10_000))
}

/// Starts a worker named `name` (recorded on its claims and attempts).
pub fn spawn(
    db: DatabaseConnection,
    settings: WebhookSettings,
    name: String,
) -> Result<Handle, crate::error::Error> {
    let mut client = reqwest::Client::builder()
        .timeout(Duration::from_millis(settings.timeout_ms.max(1)))
        // A redirect could point a tenant's deliveries anywhere: the URL registered is the
        // only one posted to.
        .redirect(reqwest::redirect::Policy::none());
    if !settings.allow_private_targets {
        client = client.dns_resolver(std::sync::Arc::new(PublicOnly));
    }
    let client = client
        .build()
        .map_err(|e| crate::error::Error::Other(format!("webhook client: {e}")))?;
    let idle = Duration::from_millis(settings.poll_interval_ms.max(10));
    Ok(crate::background::spawn("webhooks", idle, move || {
        let (db, client, settings, name) =
            (db.clone(), client.clone(), settings.clone(), name.clone());
        async move {
            round(&db, &client, &settings, &name)
                .await
                .map_err(|e| e.to_string())
        }
    }))
}

/// One round: claim what is due, send it all at once, record each result. Returns how many
/// were sent.
async fn round(
    db: &DatabaseConnection,
    client: &reqwest::Client,
    settings: &WebhookSettings,
    name: &str,
) -> Result<usize, sea_orm::DbErr> {
    let now = Utc::now();
    let until =
        now + chrono::Duration::from_std(lease(settings)).unwrap_or(chrono::Duration::seconds(60));
    let due = store::due(db, now, settings.batch_size.max(1)).await?;
    let mut claimed = Vec::with_capacity(due.len());
    for d in due {
        if store::claim(db, d.key, name, now, until).await? {
            claimed.push(d);
        }
    }
    let count = claimed.len();
    let sends = claimed
        .into_iter()
        .map(|d| deliver(db, client, settings, name, d));
    futures::future::join_all(sends).await;
    Ok(count)
}

/// Sends delivery `d` once and records the attempt.
async fn deliver(
    db: &DatabaseConnection,
    client: &reqwest::Client,
    settings: &WebhookSettings,
    name: &str,
    d: Due,
) {
    let attempt = if settings.allow_private_targets || literal_is_public(&d.url) {
        attempt(client, &d).await
    } else {
        Attempt {
            started_at: Utc::now(),
            latency_ms: 0,
            response_code: None,
            error: Some(NOT_ALLOWED.to_owned()),
        }
    };
    let result: Result<Outcome, sea_orm::DbErr> = async {
        let txn = ledger::begin_write(db).await?;
        let outcome =
            store::finish(&txn, d.key, name, &attempt, &settings.policy(), Utc::now()).await?;
        txn.commit().await?;
        Ok(outcome)
    }
    .await;
    match result {
        Ok(outcome) => tracing::debug!(
            tenant_id = %d.key.tenant_id, endpoint_id = %d.key.endpoint_id,
            event_id = %d.event.id, ?outcome, code = ?attempt.response_code,
            latency_ms = attempt.latency_ms, "webhooks.attempt"
        ),
        // The claim lapses and the delivery is sent again: at least once.
        Err(e) => tracing::error!(
            tenant_id = %d.key.tenant_id, endpoint_id = %d.key.endpoint_id,
            error = %e, "webhooks.attempt not recorded"
        ),
    }
}

/// Why an attempt to a non-public address failed (the delivery log shows it).
const NOT_ALLOWED: &str = "target address not allowed (not a public address)";

/// Whether `ip` is a public unicast address: not loopback, private, link-local, carrier-grade
/// NAT, unspecified, broadcast, multicast, documentation or unique-local, nor an IPv4 address
/// of those kinds mapped into IPv6.
pub fn public(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(a) => {
            let [first, second, ..] = a.octets();
            !(a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || a.is_documentation()
                || first == 0
                || (first == 100 && (second & 0xc0) == 64))
        }
        IpAddr::V6(a) => {
            let first = a.segments()[0];
            match a.to_ipv4_mapped() {
                Some(v4) => public(IpAddr::V4(v4)),
                None => {
                    !(a.is_loopback()
                        || a.is_unspecified()
                        || a.is_multicast()
                        || (first & 0xfe00) == 0xfc00
                        || (first & 0xffc0) == 0xfe80
                        || first == 0x2001 && a.segments()[1] == 0x0db8)
                }
            }
        }
    }
}

/// False when `url`'s host is an IP literal that is not public (a name is the resolver's to
/// judge; an unparsable URL is left to the client, which fails it).
fn literal_is_public(url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else {
        return true;
    };
    // An IPv6 literal comes bracketed.
    let host = url.host_str().unwrap_or_default();
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .map_or(true, public)
}

/// Whether `e` (or what caused it) is [`PublicOnly`]'s refusal.
fn refused_target(e: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if s.to_string().contains(NOT_ALLOWED) {
            return true;
        }
        source = s.source();
    }
    false
}

/// Resolves a delivery's host name to its public addresses only; none is an error, so the
/// attempt fails without a connection to anything internal.
#[derive(Debug)]
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let found: Vec<std::net::SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(NOT_ALLOWED.into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// One signed POST of `d`'s event.
async fn attempt(client: &reqwest::Client, d: &Due) -> Attempt {
    let started_at = Utc::now();
    let clock = Instant::now();
    let body = serde_json::to_vec(&d.event).unwrap_or_default();
    let id = d.event.id.to_string();
    let timestamp = Utc::now().timestamp();
    let signature = sign(&d.secret, &id, timestamp, &body);
    let sent = client
        .post(&d.url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let latency_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
    match sent {
        Ok(response) => {
            let code = response.status().as_u16();
            Attempt {
                started_at,
                latency_ms,
                response_code: Some(code),
                error: (!response.status().is_success()).then(|| format!("status {code}")),
            }
        }
        Err(e) => Attempt {
            started_at,
            latency_ms,
            response_code: None,
            error: Some(if refused_target(&e) {
                NOT_ALLOWED.to_owned()
            } else if e.is_timeout() {
                "timeout".to_owned()
            } else if e.is_connect() {
                "connection failed".to_owned()
            } else {
                "request failed".to_owned()
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!public(private.parse().unwrap()), "{private}");
        }
        for open in [
            "8.8.8.8",
            "203.0.114.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(public(open.parse().unwrap()), "{open}");
        }
        assert!(!literal_is_public("http://127.0.0.1:8080/hook"));
        assert!(!literal_is_public("https://[::1]/hook"));
        assert!(literal_is_public("https://hooks.example.com/hook"));
    }

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, id, 1_614_265_330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
