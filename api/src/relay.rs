//! The optional relay of the events outbox to NATS JetStream (`[nats] enabled`), for banks
//! that run a broker. The outbox (`wraps::events`) stays the source of truth: the relay reads
//! each tenant's events after the position it last recorded (`event_relay_cursors`), publishes
//! them in order to `<subject_prefix>.<tenant id>.<type>` and waits for the stream's
//! acknowledgement before moving the position on. A relay that dies between the two publishes
//! again after restart, with the same `Nats-Msg-Id` (the event id), which the stream drops as
//! a duplicate within its window. Tried by `api/tests/http/events.rs::the_relay_publishes_to_jetstream`.

use std::time::Duration;

use async_nats::jetstream;
use sea_orm::DatabaseConnection;

use crate::background::Handle;
use crate::settings::NatsSettings;

/// Most events published per tenant per round.
const BATCH: u64 = 500;

/// Connects to the server, makes sure the stream exists, and starts the relay.
pub async fn spawn(
    db: DatabaseConnection,
    settings: NatsSettings,
) -> Result<Handle, crate::error::Error> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        crate::error::Error::Other(format!("nats relay: {what}: {e}"))
    };
    let client = async_nats::connect(settings.url.as_str())
        .await
        .map_err(|e| failed("connect", &e))?;
    let js = jetstream::new(client);
    js.get_or_create_stream(jetstream::stream::Config {
        name: settings.stream.clone(),
        subjects: vec![format!("{}.>", settings.subject_prefix)],
        ..Default::default()
    })
    .await
    .map_err(|e| failed("stream", &e))?;
    let idle = Duration::from_millis(settings.poll_interval_ms.max(10));
    Ok(crate::background::spawn("nats-relay", idle, move || {
        let (db, js, prefix) = (db.clone(), js.clone(), settings.subject_prefix.clone());
        async move { round(&db, &js, &prefix).await }
    }))
}

/// Publishes what each tenant has beyond its recorded position; returns how many.
async fn round(
    db: &DatabaseConnection,
    js: &jetstream::Context,
    prefix: &str,
) -> Result<usize, String> {
    let mut published = 0;
    for (tenant_id, last, done) in wraps::events::relay_positions(db)
        .await
        .map_err(|e| e.to_string())?
    {
        if last <= done {
            continue;
        }
        let events = wraps::events::after(db, tenant_id, done, BATCH)
            .await
            .map_err(|e| e.to_string())?;
        let Some(newest) = events.last().map(|e| e.seq) else {
            continue;
        };
        for event in &events {
            let subject = format!("{prefix}.{tenant_id}.{}", event.kind);
            let body = serde_json::to_vec(event).map_err(|e| e.to_string())?;
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                event.id.to_string().as_str(),
            );
            // In order: the next is published only once the stream has this one.
            js.publish_with_headers(subject, headers, body.into())
                .await
                .map_err(|e| format!("publish: {e}"))?
                .await
                .map_err(|e| format!("acknowledgement: {e}"))?;
            published += 1;
        }
        wraps::events::relay_published(db, tenant_id, newest)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(published)
}
