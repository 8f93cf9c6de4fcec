//! Answer formats shared by the report-like endpoints (`/v1/reports/fee-split`, the
//! statements): JSON by default, CSV on request, and the CSV writing rules.
//!
//! CSV is UTF-8 with a header row, `\r\n` line ends (RFC 4180), a field quoted only when it
//! holds a comma, a quote or a line break, and amounts written as the exact decimal strings
//! the JSON carries, so a CSV reader gets back the same numbers.

use std::borrow::Cow;

use actix_web::{HttpRequest, HttpResponse};

use crate::extract::Query;
use crate::problem::Problem;

/// The values `format` takes.
pub const FORMATS: [&str; 2] = ["json", "csv"];

/// Whether the caller asked for CSV: `?format=csv` (`json` or `csv`; anything else is 400
/// naming `format`), or without it an `Accept` header listing `text/csv`.
pub fn wants_csv(req: &HttpRequest, q: &Query) -> Result<bool, Problem> {
    if let Some(f) = q.one_of("format", &FORMATS)? {
        return Ok(f == "csv");
    }
    Ok(req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|m| m.trim().starts_with("text/csv"))))
}

/// One CSV field: quoted (quotes doubled) only when it holds a comma, a quote or a line break.
pub fn field(s: &str) -> Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(s)
    }
}

/// Appends one CSV row of `fields` (each already a plain value or passed through [`field`]).
pub fn row<S: AsRef<str>>(out: &mut String, fields: &[S]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(f.as_ref());
    }
    out.push_str("\r\n");
}

/// A 200 answer carrying `body` as UTF-8 CSV.
pub fn csv_response(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(field("Balanced"), "Balanced");
        assert_eq!(field("Growth, Japan"), "\"Growth, Japan\"");
        assert_eq!(field("the \"core\""), "\"the \"\"core\"\"\"");
        let mut out = String::new();
        row(&mut out, &["a", "1.50"]);
        assert_eq!(out, "a,1.50\r\n");
    }
}
