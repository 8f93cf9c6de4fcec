//! Logging (tracing) and keeping secrets out of it.
//!
//! Logs go to stderr, so that what a command prints on stdout (`wrapd bench`'s JSON lines,
//! `wrapd migrate status`) stays clean for scripts. Format `auto` writes JSON unless stderr
//! is a terminal.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::error::Error;
use crate::settings::{LogFormat, LogSettings};

/// Installs the global subscriber: filter from `RUST_LOG`, else `settings.level`. Calling it
/// again (tests) leaves the first subscriber in place.
pub fn init(settings: &LogSettings) -> Result<(), Error> {
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Err only when a subscriber is already installed.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    } else {
        builder.try_init()
    };
    Ok(())
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
