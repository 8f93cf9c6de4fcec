//! Layered configuration (the `config` crate).
//!
//! Later layers win:
//! 1. the built-in defaults, which are `deploy/config/default.toml` compiled into the binary;
//! 2. `<dir>/default.toml`, where `<dir>` is `WRAP_CONFIG_DIR`, else `./deploy/config` when it
//!    exists (so the binary also runs from any other directory, on the built-in defaults);
//! 3. `<dir>/{WRAP_ENV}.toml` when `WRAP_ENV` is set (it must exist then);
//! 4. environment variables `WRAP__SECTION__KEY`, e.g. `WRAP__DATABASE__URL`;
//! 5. command-line flags (`--database-url`, `--bind`), applied by the caller.
//!
//! Every section refuses unknown keys, so a misspelt key is an error, not a silent default.

use std::fmt;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

use crate::error::Error;
use crate::logging::redact_url;

/// `deploy/config/default.toml`, as built into the binary.
pub const BUILTIN_DEFAULTS: &str = include_str!("../../deploy/config/default.toml");

/// The config directory used when `WRAP_CONFIG_DIR` is not set (relative to the current dir).
pub const DEFAULT_CONFIG_DIR: &str = "deploy/config";

/// The body limit when none is configured (the default.toml value).
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// All settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `[server]`
    pub server: ServerSettings,
    /// `[database]`
    pub database: DatabaseSettings,
    /// `[log]`
    pub log: LogSettings,
    /// `[auth]`
    pub auth: AuthSettings,
    /// `[wraps]`
    pub wraps: WrapSettings,
    /// `[calendar]`
    pub calendar: CalendarSettings,
    /// `[goals]`
    pub goals: GoalSettings,
    /// `[limits]`: the largest single amount per asset (minor units), checked by
    /// [`ledger::amount::check_money`] on every amount a request or plan brings in.
    pub limits: ledger::amount::AmountLimits,
    /// `[clock]`: real or simulated business dates ([`Settings::clock`]).
    pub clock: ClockSettings,
    /// `[rate_limits]`: per address and client on the token endpoint, per client on the API.
    pub rate_limits: crate::rate_limit::RateLimitSettings,
    /// `[console]`: the people's screens under `/console` (sessions, cookies, lockout).
    pub console: ConsoleSettings,
    /// `[webhooks]`: the delivery worker `wrapd serve` starts (`crate::webhooks`).
    pub webhooks: WebhookSettings,
    /// `[nats]`: the optional relay of the outbox to NATS JetStream (`crate::relay`).
    pub nats: NatsSettings,
    /// `WRAP_ENV`, when set (not a configuration key).
    #[serde(skip)]
    pub environment: Option<String>,
}

/// `[clock]`: real or simulated business dates (`wraps::clock`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSettings {
    /// Empty: real dates. A date: a simulated clock starting then.
    pub simulated_start: String,
}

impl Settings {
    /// The business clock, checked: a simulated clock is refused in production.
    pub fn clock(&self) -> Result<wraps::clock::Clock, Error> {
        let text = self.clock.simulated_start.trim();
        if text.is_empty() {
            return Ok(wraps::clock::Clock::Real);
        }
        let start = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
            Error::Config(format!(
                "clock.simulated_start: {text:?} is not a date (YYYY-MM-DD)"
            ))
        })?;
        if self.environment.as_deref() == Some("production") {
            return Err(Error::Config(
                "clock.simulated_start is set, and a simulated clock is refused when \
                 WRAP_ENV=production: business dates there are real dates"
                    .to_owned(),
            ));
        }
        Ok(wraps::clock::Clock::Simulated { start })
    }
}

/// `[goals]`: when end of day recomputes every goal's probability.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoalSettings {
    /// `daily` (every date) or `month_end` (the last date of each month).
    pub recompute: wraps::eod::GoalCadence,
}

/// `[calendar]`: the trading calendar (weekends are always closed).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSettings {
    /// Market holidays, ISO dates (`"2027-01-01"`).
    pub holidays: Vec<String>,
}

impl CalendarSettings {
    /// The calendar; an error naming the first holiday that is not a date.
    pub fn calendar(&self) -> Result<ledger::calendar::Calendar, Error> {
        ledger::calendar::Calendar::try_from_strs(&self.holidays)
            .map_err(|e| Error::Config(format!("calendar.holidays: {e}")))
    }
}

/// `[wraps]`: limits of the virtual account layer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrapSettings {
    /// Most wraps a customer may have that are not closed (DOMAIN.md: up to 10 goals).
    pub max_open_per_customer: i64,
}

/// `[webhooks]`: the delivery worker (`crate::webhooks`) and how it retries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Start the worker with `wrapd serve`. Any number of replicas may run it: deliveries are
    /// claimed in the database.
    pub worker: bool,
    /// How often an idle worker looks for due deliveries.
    pub poll_interval_ms: u64,
    /// Deliveries claimed per round (sent concurrently).
    pub batch_size: u64,
    /// One attempt's limit; past it the attempt failed (and is retried).
    pub timeout_ms: u64,
    /// The first retry's delay; each next one doubles (with jitter) up to `max_delay_ms`.
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    /// A delivery still failing this long after its first attempt is given up.
    pub give_up_after_seconds: u64,
    /// This many failed attempts in a row disable an endpoint (its tenant gets a
    /// `webhook.endpoint.disabled` event).
    pub disable_after_failures: u32,
    /// Whether deliveries may go to loopback, private, link-local and other non-public
    /// addresses (off: a tenant cannot point the platform at its internal network).
    pub allow_private_targets: bool,
}

impl WebhookSettings {
    /// The retry policy the store applies.
    pub fn policy(&self) -> wraps::events::webhooks::RetryPolicy {
        wraps::events::webhooks::RetryPolicy {
            base_delay_ms: self.base_delay_ms.max(1),
            max_delay_ms: self.max_delay_ms.max(self.base_delay_ms.max(1)),
            give_up_after_ms: self.give_up_after_seconds.saturating_mul(1000),
            disable_after_failures: self.disable_after_failures.max(1),
        }
    }
}

/// `[nats]`: the relay of the outbox to NATS JetStream (off by default; the outbox stays the
/// source of truth).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSettings {
    /// Start the relay with `wrapd serve`.
    pub enabled: bool,
    /// The server, `nats://host:port`.
    pub url: String,
    /// The stream (created when missing, over `<subject_prefix>.>`).
    pub stream: String,
    /// Events are published to `<subject_prefix>.<tenant id>.<type>`.
    pub subject_prefix: String,
    /// How often an idle relay looks for new events.
    pub poll_interval_ms: u64,
}

/// `[console]`: sign-in and sessions of the console (`crate::console`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSettings {
    /// Mark the session cookie `Secure` (sent over HTTPS only). Set it when wrapd is reached
    /// through TLS (a reverse proxy); a browser would not send a `Secure` cookie over plain
    /// HTTP to 127.0.0.1, which is why it is off by default.
    pub secure_cookie: bool,
    /// A session ends after this many seconds without a request.
    pub idle_timeout_seconds: u64,
    /// A session ends this many seconds after sign-in, however busy.
    pub absolute_timeout_seconds: u64,
    /// Wrong passwords in a row before a user is locked (an admin resumes it).
    pub max_failed_sign_ins: u32,
}

impl ConsoleSettings {
    /// The session lifetimes as the `tenants` crate takes them.
    pub fn policy(&self) -> tenants::sessions::SessionPolicy {
        // At most a year: a session longer than that is a configuration mistake, and the
        // bound keeps `now + lifetime` far from chrono's range.
        let secs = |s: u64| {
            chrono::Duration::try_seconds(i64::try_from(s).unwrap_or(i64::MAX))
                .map_or(chrono::Duration::days(365), |d| {
                    d.min(chrono::Duration::days(365))
                })
        };
        tenants::sessions::SessionPolicy {
            idle: secs(self.idle_timeout_seconds),
            absolute: secs(self.absolute_timeout_seconds),
        }
    }
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Listen address, `host:port`.
    pub bind: String,
    /// Largest request body accepted, in bytes; larger bodies are answered 413.
    pub body_limit_bytes: usize,
    /// Seconds a client has to send a request's head (a slow client is cut off with 408).
    pub read_timeout_seconds: u64,
    /// Seconds a handler may run before the request is abandoned with 503 (its transaction
    /// rolled back unless it had committed: retry with the same `Idempotency-Key`).
    pub handler_timeout_seconds: u64,
}

/// `[auth]`: access tokens and their signing keys.
///
/// The signing key is `key_pem` or `key_file` (PKCS#8 PEM, Ed25519); during a rotation the
/// key being retired is `previous_key_pem` or `previous_key_file` and only verifies. With no
/// key configured, the embedded SQLite default generates a development key beside the
/// database file (`jwt-dev-key.pem`); on PostgreSQL a missing key is an error.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// `iss` of issued tokens, and the only issuer accepted.
    pub issuer: String,
    /// `aud` of issued tokens, and the only audience accepted.
    pub audience: String,
    /// Token lifetime in seconds (1 to 86400).
    pub token_lifetime_seconds: u64,
    /// Clock skew tolerated when checking `exp`, in seconds.
    pub leeway_seconds: u64,
    /// The signing key, inline PEM (usually from `WRAP__AUTH__KEY_PEM`). Secret.
    pub key_pem: String,
    /// The signing key, a PEM file.
    pub key_file: String,
    /// The key being rotated out (verifies only), inline PEM. Secret.
    pub previous_key_pem: String,
    /// The key being rotated out (verifies only), a PEM file.
    pub previous_key_file: String,
    /// How long, in seconds, a client's previous secret keeps working after a rotation,
    /// when the request does not say.
    pub default_rotation_overlap_seconds: u64,
    /// Verified tokens, and (on PostgreSQL) client standings, remembered per process
    /// (`crate::auth_cache`); 0 turns both off (every request checks a signature and reads
    /// its client's standing).
    pub cache_entries: u64,
}

impl fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |s: &str| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("AuthSettings")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("token_lifetime_seconds", &self.token_lifetime_seconds)
            .field("leeway_seconds", &self.leeway_seconds)
            .field("key_pem", &shown(&self.key_pem))
            .field("key_file", &self.key_file)
            .field("previous_key_pem", &shown(&self.previous_key_pem))
            .field("previous_key_file", &self.previous_key_file)
            .field(
                "default_rotation_overlap_seconds",
                &self.default_rotation_overlap_seconds,
            )
            .field("cache_entries", &self.cache_entries)
            .finish()
    }
}

/// `[database]`
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://...` or `postgres://...`. May hold a password: never log it unredacted.
    pub url: String,
    /// PostgreSQL: apply pending migrations on `serve` (SQLite always does).
    pub auto_migrate: bool,
    /// PostgreSQL: `statement_timeout` of every connection of `serve` and `eod`, in seconds
    /// (0: none). A statement running longer is cancelled and its transaction rolled back.
    pub statement_timeout_seconds: u64,
}

impl DatabaseSettings {
    /// [`Self::statement_timeout_seconds`], `None` when 0.
    pub fn statement_timeout(&self) -> Option<std::time::Duration> {
        (self.statement_timeout_seconds > 0)
            .then(|| std::time::Duration::from_secs(self.statement_timeout_seconds))
    }
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url(&self.url))
            .field("auto_migrate", &self.auto_migrate)
            .field("statement_timeout_seconds", &self.statement_timeout_seconds)
            .finish()
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// An `EnvFilter` directive, used when `RUST_LOG` is not set.
    pub level: String,
    /// Output format.
    pub format: LogFormat,
    /// Where to send OpenTelemetry traces (the full OTLP/HTTP URL, say
    /// `http://127.0.0.1:4318/v1/traces`); empty: no traces are exported.
    pub otlp_endpoint: String,
    /// An `EnvFilter` directive for the spans exported (independent of `level`).
    pub otlp_filter: String,
    /// The `service.name` the traces carry.
    pub otlp_service_name: String,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON unless the log stream (stderr) is a terminal.
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Pretty,
}

impl Settings {
    /// The built-in defaults alone (what `deploy/config/default.toml` says).
    pub fn builtin() -> Result<Self, Error> {
        Self::from_config(
            Config::builder()
                .add_source(File::from_str(BUILTIN_DEFAULTS, FileFormat::Toml))
                .build(),
            "built-in defaults",
        )
    }

    /// Loads every layer, reading `WRAP_CONFIG_DIR`, `WRAP_ENV` and `WRAP__*` from the process
    /// environment. `database_url` (the `--database-url` flag) wins over all of them.
    pub fn load(database_url: Option<&str>) -> Result<Self, Error> {
        let dir = match std::env::var_os("WRAP_CONFIG_DIR") {
            Some(d) => Some(PathBuf::from(d)),
            None => Some(PathBuf::from(DEFAULT_CONFIG_DIR)).filter(|d| d.is_dir()),
        };
        let env = std::env::var("WRAP_ENV")
            .ok()
            .filter(|e| !e.trim().is_empty());
        let mut settings = Self::load_from(dir.as_deref(), env.as_deref())?;
        settings.environment = env;
        settings.clock()?;
        if let Some(url) = database_url {
            settings.database.url = url.to_owned();
        }
        Ok(settings)
    }

    /// Loads the layers from `dir` (none: built-in defaults only) for environment `env`,
    /// then the `WRAP__*` environment variables.
    pub fn load_from(dir: Option<&Path>, env: Option<&str>) -> Result<Self, Error> {
        let mut builder =
            Config::builder().add_source(File::from_str(BUILTIN_DEFAULTS, FileFormat::Toml));
        let mut sources = vec!["built-in defaults".to_owned()];
        if let Some(dir) = dir {
            if !dir.is_dir() {
                return Err(Error::Config(format!(
                    "config directory {} (WRAP_CONFIG_DIR) does not exist",
                    dir.display()
                )));
            }
            let default = dir.join("default.toml");
            builder = builder.add_source(
                File::from(default.clone())
                    .format(FileFormat::Toml)
                    .required(false),
            );
            sources.push(default.display().to_string());
        }
        if let Some(env) = env {
            if env.contains(['/', '\\']) || env.starts_with('.') {
                return Err(Error::Config(format!(
                    "WRAP_ENV={env:?} is not a plain environment name"
                )));
            }
            let Some(dir) = dir else {
                return Err(Error::Config(format!(
                    "WRAP_ENV={env} is set but there is no config directory ({DEFAULT_CONFIG_DIR} under the \
                     current directory, or WRAP_CONFIG_DIR) holding {env}.toml"
                )));
            };
            let file = dir.join(format!("{env}.toml"));
            if !file.is_file() {
                return Err(Error::Config(format!(
                    "WRAP_ENV={env} is set but {} does not exist",
                    file.display()
                )));
            }
            builder = builder.add_source(File::from(file.clone()).format(FileFormat::Toml));
            sources.push(file.display().to_string());
        }
        builder = builder.add_source(Environment::with_prefix("WRAP").separator("__"));
        sources.push("WRAP__* environment variables".to_owned());
        Self::from_config(builder.build(), &sources.join(", "))
    }

    fn from_config(
        built: Result<Config, config::ConfigError>,
        sources: &str,
    ) -> Result<Self, Error> {
        let settings: Self = built
            .and_then(Config::try_deserialize)
            .map_err(|e| Error::Config(format!("{e} (read from {sources})")))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), Error> {
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(Error::Config(format!(
                "database.url {} must start with sqlite:, postgres:// or postgresql://",
                redact_url(url)
            )));
        }
        if self.server.bind.trim().is_empty() {
            return Err(Error::Config("server.bind must not be empty".to_owned()));
        }
        if self.server.body_limit_bytes == 0 {
            return Err(Error::Config(
                "server.body_limit_bytes must be greater than 0".to_owned(),
            ));
        }
        self.limits.validate().map_err(Error::Config)?;
        self.clock()?;
        if !(1..=1000).contains(&self.wraps.max_open_per_customer) {
            return Err(Error::Config(
                "wraps.max_open_per_customer must be between 1 and 1000".to_owned(),
            ));
        }
        let auth = &self.auth;
        if !(1..=86_400).contains(&auth.token_lifetime_seconds) {
            return Err(Error::Config(
                "auth.token_lifetime_seconds must be between 1 and 86400".to_owned(),
            ));
        }
        if auth.issuer.trim().is_empty() || auth.audience.trim().is_empty() {
            return Err(Error::Config(
                "auth.issuer and auth.audience must not be empty".to_owned(),
            ));
        }
        if !auth.key_pem.is_empty() && !auth.key_file.is_empty() {
            return Err(Error::Config(
                "set auth.key_pem or auth.key_file, not both".to_owned(),
            ));
        }
        if !auth.previous_key_pem.is_empty() && !auth.previous_key_file.is_empty() {
            return Err(Error::Config(
                "set auth.previous_key_pem or auth.previous_key_file, not both".to_owned(),
            ));
        }
        if auth.default_rotation_overlap_seconds > 30 * 86_400 {
            return Err(Error::Config(
                "auth.default_rotation_overlap_seconds must be at most 2592000 (30 days)"
                    .to_owned(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wrapd-settings-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_simulated_clock_is_refused_in_production_and_named_when_malformed() {
        let mut settings = Settings::builtin().unwrap();
        assert_eq!(settings.clock().unwrap(), wraps::clock::Clock::Real);
        settings.clock.simulated_start = "2025-01-01".into();
        assert!(settings.clock().unwrap().is_simulated());
        settings.environment = Some("production".into());
        let err = settings.clock().unwrap_err().to_string();
        assert!(err.contains("refused when WRAP_ENV=production"), "{err}");
        settings.environment = None;
        settings.clock.simulated_start = "2025-13-01".into();
        let err = settings.clock().unwrap_err().to_string();
        assert!(err.contains("clock.simulated_start"), "{err}");
    }

    #[test]
    fn the_configured_holidays_are_the_built_in_list() {
        let settings = Settings::builtin().unwrap();
        assert_eq!(
            settings.calendar.calendar().unwrap(),
            ledger::calendar::Calendar::japan()
        );
    }

    #[test]
    fn a_bad_holiday_is_named() {
        let mut settings = Settings::builtin().unwrap();
        settings.calendar.holidays.push("2027-13-01".into());
        let err = settings.calendar.calendar().unwrap_err().to_string();
        assert!(
            err.contains("calendar.holidays") && err.contains("2027-13-01"),
            "{err}"
        );
    }

    #[test]
    fn builtin_defaults_match_the_design() {
        let s = Settings::builtin().unwrap();
        assert_eq!(s.server.bind, "127.0.0.1:8080");
        assert_eq!(s.database.url, "sqlite://data/wrap.db?mode=rwc");
        assert!(!s.database.auto_migrate);
        assert_eq!(s.log.format, LogFormat::Auto);
        assert_eq!(s.server.body_limit_bytes, 1024 * 1024);
        assert_eq!(s.auth.token_lifetime_seconds, 15 * 60);
    }

    #[test]
    fn environment_file_overrides_defaults() {
        let dir = scratch();
        write(&dir, "default.toml", BUILTIN_DEFAULTS);
        write(
            &dir,
            "staging.toml",
            "[log]\nformat = \"json\"\n[database]\nauto_migrate = true\n",
        );
        let s = Settings::load_from(Some(&dir), Some("staging")).unwrap();
        assert_eq!(s.log.format, LogFormat::Json);
        assert!(s.database.auto_migrate);
        assert_eq!(s.server.bind, "127.0.0.1:8080");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn amount_limits_default_and_override_per_asset() {
        let s = Settings::builtin().unwrap();
        assert_eq!(s.limits.max_amount_minor, 1_000_000_000_000_000);
        assert!(s.limits.assets.is_empty());
        let dir = scratch();
        write(&dir, "default.toml", BUILTIN_DEFAULTS);
        // Asset codes keep their case (they are values, not keys the config crate lowercases).
        write(
            &dir,
            "fine.toml",
            "[limits]\nassets = [{ asset = \"FINE8\", max_amount_minor = 5_000 }]\n",
        );
        let s = Settings::load_from(Some(&dir), Some("fine")).unwrap();
        assert_eq!(s.limits.max_minor("FINE8"), 5_000);
        assert_eq!(s.limits.max_minor("JPY"), 1_000_000_000_000_000);
        write(&dir, "zero.toml", "[limits]\nmax_amount_minor = 0\n");
        let err = Settings::load_from(Some(&dir), Some("zero"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("limits.max_amount_minor"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let dir = scratch();
        write(&dir, "default.toml", "[server]\nbnd = \"0.0.0.0:1\"\n");
        let err = Settings::load_from(Some(&dir), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bnd"), "{err}");
        write(&dir, "default.toml", "[serverr]\nbind = \"0.0.0.0:1\"\n");
        let err = Settings::load_from(Some(&dir), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("serverr"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_environment_file_is_an_error() {
        let dir = scratch();
        let err = Settings::load_from(Some(&dir), Some("nowhere"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("nowhere.toml"), "{err}");
        let err = Settings::load_from(None, Some("production"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("production.toml"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn shipped_production_example_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config");
        let s = Settings::load_from(Some(&dir), Some("production")).unwrap();
        assert_eq!(s.log.format, LogFormat::Json);
        assert!(!s.database.auto_migrate);
    }

    #[test]
    fn debug_output_hides_the_password() {
        let mut s = Settings::builtin().unwrap();
        s.database.url = "postgres://wrap:s3cret@db:5432/wrap".to_owned();
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        s.auth.key_pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n".to_owned();
        let shown = format!("{s:?}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
