//! Reading requests, with every failure a problem that names what is wrong:
//!
//! * [`json`]: the body must be `application/json` (415 otherwise), at most
//!   `server.body_limit_bytes` (413), well-formed (400) and of the right shape, unknown fields
//!   refused (422 naming the field by its path, e.g. `display.contact_email`);
//! * [`Query`]: query parameters, each known by name; an unknown or repeated parameter is a
//!   400 naming it (a misspelt `as_of` must not silently give today's balance);
//! * [`path_uuid`]: a path segment that does not parse (an id that is not a UUID) is a 400
//!   naming it.
//!
//! Hostile-input bounds on every JSON body, checked here before any handler sees it (so no
//! endpoint can forget them; a handler's own rule may be tighter, never looser):
//! * nesting at most [`MAX_DEPTH`] levels of arrays and objects (400), counted on the raw
//!   bytes before anything is allocated;
//! * every string (values and keys) at most its field's bound in [`FIELD_MAX_CHARS`], else
//!   [`DEFAULT_MAX_CHARS`] characters (422 naming the field's path and the bound);
//! * every array at most [`MAX_ARRAY_ITEMS`] items (422 naming the field). Uploads of rows
//!   (prices, custodian statements, JSON or CSV) have their own bound,
//!   `routes::instruments::MAX_UPLOAD_ROWS` (413), and each cell at most
//!   `routes::instruments::MAX_CELL_CHARS` (422).
//!
//! docs/OPERATIONS.md ("Rate limits and timeouts") lists these figures.

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

/// Deepest nesting of arrays and objects a JSON body may have (`{"a":[1]}` is 2 levels). The
/// deepest request the API defines is 4; serde_json's own guard is 128.
pub const MAX_DEPTH: usize = 32;

/// Longest string in a JSON body, in characters, for a field not in [`FIELD_MAX_CHARS`]
/// (identifiers, dates, currencies, amounts are far shorter; decimals stop at 64).
pub const DEFAULT_MAX_CHARS: usize = 1_000;

/// Longest string per field name (the last key of its path), in characters: names and
/// references as the domain rules have them, free text longer.
pub const FIELD_MAX_CHARS: &[(&str, usize)] = &[
    ("name", tenants::tenant::MAX_NAME_CHARS),
    ("display_name", tenants::tenant::MAX_NAME_CHARS),
    ("contact_email", tenants::tenant::MAX_EMAIL_CHARS),
    ("code", 64),
    ("reference", 200),
    ("fill_id", 100),
    ("source", 200),
    ("reason", 500),
    // A strategy's description (the strategy rules' own bound).
    ("description", 4_000),
];

/// Most items in any array of a JSON body (the domain's own bounds are tighter: 200
/// instruments in a model, 20 fee tiers, 10 fee scenarios).
pub const MAX_ARRAY_ITEMS: usize = 1_000;

/// The character bound of a field named `key`.
pub fn max_chars(key: &str) -> usize {
    FIELD_MAX_CHARS
        .iter()
        .find(|(name, _)| *name == key)
        .map_or(DEFAULT_MAX_CHARS, |(_, n)| *n)
}

/// Refuses JSON text nested deeper than [`MAX_DEPTH`], scanning the bytes (strings skipped),
/// so a deep body costs neither recursion nor allocation.
pub(crate) fn check_depth(bytes: &[u8]) -> Result<(), Problem> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Problem::bad_request(format!(
                        "the JSON body is nested more than {MAX_DEPTH} levels deep"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Refuses a string longer than its field's bound or an array longer than
/// [`MAX_ARRAY_ITEMS`], naming the first by its path (`tiers[3].name`).
fn check_sizes(value: &serde_json::Value, path: &str, key: &str) -> Result<(), Problem> {
    use serde_json::Value;
    let field = |p: &str| {
        if p.is_empty() {
            "body".to_owned()
        } else {
            p.to_owned()
        }
    };
    match value {
        Value::String(s) => {
            let max = max_chars(key);
            if s.chars().count() > max {
                return Err(Problem::invalid_field(
                    &field(path),
                    format!("must be at most {max} characters"),
                ));
            }
        }
        Value::Array(items) => {
            if items.len() > MAX_ARRAY_ITEMS {
                return Err(Problem::invalid_field(
                    &field(path),
                    format!("must hold at most {MAX_ARRAY_ITEMS} items"),
                ));
            }
            for (i, item) in items.iter().enumerate() {
                check_sizes(item, &format!("{path}[{i}]"), key)?;
            }
        }
        Value::Object(members) => {
            for (name, member) in members {
                let at = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                if name.chars().count() > DEFAULT_MAX_CHARS {
                    return Err(Problem::invalid_field(
                        &field(path),
                        format!("has a member name longer than {DEFAULT_MAX_CHARS} characters"),
                    ));
                }
                check_sizes(member, &at, name)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    check_depth(bytes)?;
    // The bounds are checked on a tree of the body, whatever the endpoint's type; the typed
    // read is then from the bytes again, not the tree, because a tree keeps the last of two
    // equal keys where the typed read refuses a duplicate field.
    let tree: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Problem::bad_request(format!("malformed JSON: {e}")))?;
    check_sizes(&tree, "", "")?;
    drop(tree);
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
    fn depth_strings_and_arrays_are_bounded_and_named() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(check_depth(deep(MAX_DEPTH).as_bytes()).is_ok());
        let p = check_depth(deep(MAX_DEPTH + 1).as_bytes()).unwrap_err();
        assert_eq!(p.status, 400);
        // Brackets inside strings (escaped quotes too) are text, not nesting.
        let text = format!(r#"{{"a":"\"{}"}}"#, "[".repeat(100));
        assert!(check_depth(text.as_bytes()).is_ok());

        let long = "é".repeat(201);
        let p = parse::<Outer>(format!(r#"{{"name":"{long}","inner":{{"count":1}}}}"#).as_bytes())
            .unwrap_err();
        assert_eq!((p.status, p.errors[0].field.as_str()), (422, "name"));
        assert!(p.errors[0].message.contains("200 characters"), "{p:?}");
        let items = vec!["x"; MAX_ARRAY_ITEMS + 1];
        let body = serde_json::json!({"name": "a", "inner": {"count": 1, "tags": items}});
        let p = parse::<Outer>(body.to_string().as_bytes()).unwrap_err();
        assert_eq!((p.status, p.errors[0].field.as_str()), (422, "inner.tags"));
        let body = serde_json::json!({"name": "a", "inner": {"list": ["ok", "y".repeat(1_001)]}});
        let p = parse::<Outer>(body.to_string().as_bytes()).unwrap_err();
        assert_eq!(p.errors[0].field, "inner.list[1]");
        // A duplicate field is still refused (the typed read, not the tree, decides).
        let p = parse::<Outer>(br#"{"name":"a","name":"b","inner":{"count":1}}"#).unwrap_err();
        assert_eq!(p.status, 422, "{p:?}");
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
