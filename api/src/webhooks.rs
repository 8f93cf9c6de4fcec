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
//! `two_workers_deliver_each_event_once`).
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
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(settings.timeout_ms.max(1)))
        // A redirect could point a tenant's deliveries anywhere: the URL registered is the
        // only one posted to.
        .redirect(reqwest::redirect::Policy::none())
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
    let attempt = attempt(client, &d).await;
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
            error: Some(if e.is_timeout() {
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
