//! Logging (tracing) and keeping secrets out of it.
//!
//! Logs go to stderr, so that what a command prints on stdout (`wrapd bench`'s JSON lines,
//! `wrapd migrate status`) stays clean for scripts. Format `auto` writes JSON unless stderr
//! is a terminal.
//!
//! A JSON line is one flat object: `timestamp`, `level`, `target`, the fields of every span
//! the event is in (outermost first), then the event's own fields (`message` among them). So
//! every line logged while serving a request carries `request_id`, and `tenant_id` and
//! `client_id` once its bearer token is verified, at the top level where a log search finds
//! them (tracing-subscriber's own JSON format nests span fields in a `spans` list). Tried by
//! `api/tests/http/observability.rs`.
//!
//! Traces: with `[log] otlp_endpoint` set, every span (the request's, with the same fields)
//! is also exported as OpenTelemetry over OTLP/HTTP, filtered by `otlp_filter` on its own.
//! Tried by `observability.rs::spans_reach_an_otlp_collector`.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::error::Error;
use crate::settings::{LogFormat, LogSettings};

/// Installs the global subscriber: filter from `RUST_LOG`, else `settings.level`, and, when
/// `settings.otlp_endpoint` is set, an OpenTelemetry layer exporting spans over OTLP/HTTP.
/// Calling it again (tests) leaves the first subscriber in place. Keep the returned
/// [`Telemetry`] and [`Telemetry::shutdown`] it at exit, so the last spans are sent.
pub fn init(settings: &LogSettings) -> Result<Telemetry, Error> {
    let directive = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| settings.level.clone());
    let filter = EnvFilter::try_new(&directive)
        .map_err(|e| Error::Logging(format!("invalid log filter {directive:?}: {e}")))?;
    let json = match settings.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let lines: Box<dyn Layer<Registry> + Send + Sync> = if json {
        Box::new(
            lines
                .fmt_fields(JsonFields::new())
                .event_format(FlatJson)
                .with_filter(filter),
        )
    } else {
        Box::new(lines.with_filter(filter))
    };
    let provider = otlp_provider(settings)?;
    let traces = match &provider {
        Some(provider) => {
            let filter = EnvFilter::try_new(&settings.otlp_filter).map_err(|e| {
                Error::Logging(format!(
                    "invalid log.otlp_filter {:?}: {e}",
                    settings.otlp_filter
                ))
            })?;
            Some(
                tracing_opentelemetry::layer()
                    .with_tracer(provider.tracer("wrapd"))
                    .with_filter(filter),
            )
        }
        None => None,
    };
    // Err only when a subscriber is already installed.
    let _ = tracing_subscriber::registry()
        .with(lines)
        .with(traces)
        .try_init();
    Ok(Telemetry { provider })
}

/// The span exporter's provider, when `otlp_endpoint` is set: spans are batched and sent by
/// the SDK's own thread with a blocking HTTP client, so exporting never runs on (or waits for)
/// the server's runtime, and a collector that is down costs dropped spans, not requests.
fn otlp_provider(settings: &LogSettings) -> Result<Option<SdkTracerProvider>, Error> {
    let endpoint = settings.otlp_endpoint.trim();
    if endpoint.is_empty() {
        return Ok(None);
    }
    // No TLS client is built in for this exporter: the collector runs beside wrapd (same host
    // or pod) and does its own TLS outward. Refused here rather than failing at every export.
    if !endpoint.starts_with("http://") {
        return Err(Error::Logging(format!(
            "log.otlp_endpoint {endpoint:?} must be an http:// URL of a collector beside wrapd"
        )));
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .with_timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| Error::Logging(format!("OTLP exporter for {endpoint}: {e}")))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(settings.otlp_service_name.clone())
        .build();
    Ok(Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build(),
    ))
}

/// What [`init`] started that must be stopped at exit: the trace exporter, whose last batch is
/// sent by [`Telemetry::shutdown`].
#[derive(Debug, Default)]
#[must_use = "shut it down at exit, or the last spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still batched and stops the exporter (on a blocking thread: it waits
    /// for the exporter's HTTP request, at most its 5-second timeout).
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = provider.shutdown() {
                    eprintln!("wrapd: traces not all sent: {e}");
                }
            })
            .await;
        }
    }
}

/// One flat JSON object per event (see the module documentation). Span fields are kept by
/// [`JsonFields`] as JSON text in each span's extensions, fields recorded later (the tenant
/// and client) merged in.
#[derive(Debug, Clone, Copy, Default)]
pub struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        line.insert("level".into(), Value::String(meta.level().to_string()));
        line.insert("target".into(), Value::String(meta.target().to_owned()));
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && let Ok(Value::Object(fields)) =
                        serde_json::from_str::<Value>(fields.as_str())
                {
                    line.extend(fields);
                }
            }
        }
        event.record(&mut Fields(&mut line));
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// Collects an event's fields into the line.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_owned()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::Bool(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_string()));
    }
}

/// A URL fit for logs and error messages: the password of `user:password@` and any
/// `password=` query parameter replaced by `***`.
///
/// ```
/// use api::logging::redact_url;
/// assert_eq!(redact_url("postgres://wrap:s3cret@db:5432/wrap"), "postgres://wrap:***@db:5432/wrap");
/// assert_eq!(redact_url("sqlite://data/wrap.db?mode=rwc"), "sqlite://data/wrap.db?mode=rwc");
/// ```
pub fn redact_url(url: &str) -> String {
    let (before_query, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = String::with_capacity(url.len());
    match before_query.split_once("://") {
        Some((scheme, rest)) => {
            out.push_str(scheme);
            out.push_str("://");
            // The last '@' ends the user info (a password may hold an unescaped '/' or '@').
            match rest.rsplit_once('@') {
                Some((userinfo, host_and_path)) => {
                    match userinfo.split_once(':') {
                        Some((user, _password)) => {
                            out.push_str(user);
                            out.push_str(":***");
                        }
                        None => out.push_str(userinfo),
                    }
                    out.push('@');
                    out.push_str(host_and_path);
                }
                None => out.push_str(rest),
            }
        }
        None => out.push_str(before_query),
    }
    if let Some(query) = query {
        out.push('?');
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => param.to_owned(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_hidden_and_the_rest_kept() {
        let cases = [
            (
                "postgres://wrap:s3cret@db:5432/wrap",
                "postgres://wrap:***@db:5432/wrap",
            ),
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/postgres",
            ),
            (
                "postgresql://u:p/a@ss@h/db?sslmode=require",
                "postgresql://u:***@h/db?sslmode=require",
            ),
            (
                "postgres://h/db?user=u&password=x&sslmode=disable",
                "postgres://h/db?user=u&password=***&sslmode=disable",
            ),
            (
                "sqlite://data/wrap.db?mode=rwc",
                "sqlite://data/wrap.db?mode=rwc",
            ),
            ("sqlite::memory:", "sqlite::memory:"),
            ("", ""),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }
}
