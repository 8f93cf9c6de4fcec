//! Reading requests, with every failure a problem that names what is wrong:
//!
//! * [`json`]: the body must be `application/json` (415 otherwise), at most
//!   `server.body_limit_bytes` (413), well-formed (400) and of the right shape, unknown fields
//!   refused (422 naming the field by its path, e.g. `display.contact_email`);
//! * [`Query`]: query parameters, each known by name; an unknown or repeated parameter is a
//!   400 naming it (a misspelt `as_of` must not silently give today's balance);
//! * [`path_uuid`]: a path segment that does not parse (an id that is not a UUID) is a 400
//!   naming it.

use std::collections::BTreeMap;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, web};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::problem::Problem;

/// The body limit, in the app data (from `server.body_limit_bytes`).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

fn is_json(req: &HttpRequest) -> Result<(), Problem> {
    let given = req
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    let essence = given
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/json") => Ok(()),
        Some(e) if e.starts_with("application/") && e.ends_with("+json") => Ok(()),
        _ => Err(Problem::unsupported_media_type("application/json", given)),
    }
}

/// Reads the whole body within the limit (413 beyond it, before reading when the length is
/// declared).
pub(crate) async fn read_body<S, E>(
    req: &HttpRequest,
    payload: &mut S,
) -> Result<web::Bytes, Problem>
where
    S: futures::Stream<Item = Result<web::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let limit = req
        .app_data::<BodyLimit>()
        .map_or(crate::settings::DEFAULT_BODY_LIMIT, |l| l.0);
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Problem::too_large(limit));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = futures::StreamExt::next(payload).await {
        let chunk = chunk.map_err(|e| Problem::bad_request(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(Problem::too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if path == "." { "body" } else { path.as_str() };
                Problem::invalid_field(field, strip_position(&inner.to_string()))
            }
            _ => Problem::bad_request(format!("malformed JSON: {inner}")),
        }
    })?;
    de.end()
        .map_err(|e| Problem::bad_request(format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// serde_json appends " at line L column C" to data errors; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// The JSON body of `req`. Handlers call this after authorising the caller, so a caller
/// who may not act gets 401 or 403 whatever the body holds.
pub async fn json<T: DeserializeOwned>(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<T, Problem> {
    is_json(req)?;
    let bytes = read_body(req, &mut payload).await?;
    if bytes.is_empty() {
        return Err(Problem::bad_request("the request body is empty"));
    }
    parse(&bytes)
}

/// The JSON body of `req`, or `None` when there is no body at all.
pub async fn optional_json<T: DeserializeOwned>(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<Option<T>, Problem> {
    let bytes = read_body(req, &mut payload).await?;
    if bytes.is_empty() {
        return Ok(None);
    }
    is_json(req)?;
    parse(&bytes).map(Some)
}

/// Query parameters checked against the names an endpoint knows.
#[derive(Debug, Default)]
pub struct Query(BTreeMap<String, String>);

impl Query {
    /// Parses the query string of `req`, refusing unknown and repeated names.
    pub fn parse(req: &HttpRequest, known: &[&str]) -> Result<Self, Problem> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
            .map_err(|e| Problem::bad_request(format!("malformed query string: {e}")))?;
        let mut map = BTreeMap::new();
        for (name, value) in pairs {
            if !known.contains(&name.as_str()) {
                let expected = if known.is_empty() {
                    "this endpoint takes no query parameters".to_owned()
                } else {
                    format!("unknown parameter; expected one of {}", known.join(", "))
                };
                return Err(Problem::bad_parameter(&name, expected));
            }
            if map.contains_key(&name) {
                return Err(Problem::bad_parameter(&name, "given more than once"));
            }
            map.insert(name, value);
        }
        Ok(Self(map))
    }

    /// The raw value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// `name` as a UUID, if given.
    pub fn uuid(&self, name: &str) -> Result<Option<Uuid>, Problem> {
        self.get(name)
            .map(|v| Uuid::parse_str(v).map_err(|_| Problem::bad_parameter(name, "must be a UUID")))
            .transpose()
    }

    /// `name` as an ISO 8601 date (`2026-11-20`), if given.
    pub fn date(&self, name: &str) -> Result<Option<chrono::NaiveDate>, Problem> {
        self.get(name)
            .map(|v| {
                chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                    .map_err(|_| Problem::bad_parameter(name, "must be a date, YYYY-MM-DD"))
            })
            .transpose()
    }

    /// `name` as one of `allowed` (an enum filter such as `status`), if given.
    pub fn one_of(&self, name: &str, allowed: &[&str]) -> Result<Option<&str>, Problem> {
        match self.get(name) {
            Some(v) if !allowed.contains(&v) => Err(Problem::bad_parameter(
                name,
                format!("must be one of {}", allowed.join(", ")),
            )),
            other => Ok(other),
        }
    }

    /// `cursor` as given by a list ordered by id (a UUID), if given.
    pub fn id_cursor(&self) -> Result<Option<Uuid>, Problem> {
        self.get("cursor")
            .map(|c| Uuid::parse_str(c).map_err(|_| bad_cursor()))
            .transpose()
    }

    /// `cursor` as given by a list ordered by sequence number, if given.
    pub fn seq_cursor(&self) -> Result<Option<i64>, Problem> {
        self.get("cursor")
            .map(|c| {
                c.parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(bad_cursor)
            })
            .transpose()
    }

    /// `limit`: 1 to `max`, default `default`.
    pub fn limit(&self, default: u64, max: u64) -> Result<u64, Problem> {
        match self.get("limit") {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    Problem::bad_parameter("limit", format!("must be an integer from 1 to {max}"))
                }),
        }
    }
}

fn bad_cursor() -> Problem {
    Problem::bad_parameter("cursor", "not a cursor this API gave")
}

/// Path id `name` as a UUID (the error names which segment, on routes with two ids).
pub fn path_uuid(req: &HttpRequest, name: &str) -> Result<Uuid, Problem> {
    let raw = req
        .match_info()
        .get(name)
        .ok_or_else(|| Problem::bad_request(format!("missing path segment {name}")))?;
    Uuid::parse_str(raw).map_err(|_| Problem::bad_parameter(name, "must be a UUID"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        inner: Inner,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    #[test]
    fn shape_errors_name_the_field_path() {
        let p = parse::<Outer>(br#"{"name":"a","inner":{"count":"x"}}"#).unwrap_err();
        assert_eq!(p.status, 422);
        assert_eq!(p.errors[0].field, "inner.count");
        assert!(!p.errors[0].message.contains("line"), "{p:?}");
        let p = parse::<Outer>(br#"{"name":"a","inner":{"count":1},"extra":1}"#).unwrap_err();
        assert_eq!(p.status, 422);
        assert!(p.errors[0].message.contains("extra"), "{p:?}");
        let p = parse::<Outer>(br#"{"name":"a"}"#).unwrap_err();
        assert_eq!(p.status, 422);
        assert!(p.errors[0].message.contains("inner"), "{p:?}");
    }

    #[test]
    fn syntax_errors_are_bad_requests() {
        for body in [
            &br#"{"name":"#[..],
            br#"{"name":"a","inner":{"count":1}} {}"#,
            b"nope",
        ] {
            let p = parse::<Outer>(body).unwrap_err();
            assert_eq!(p.status, 400, "{body:?}");
        }
    }
}
