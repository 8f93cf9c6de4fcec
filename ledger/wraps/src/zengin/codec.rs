//! Fixed-width Zengin records, pure (no database): a record is [`RECORD`] bytes of Shift_JIS,
//! cut into the fields of a layout ([`Field`]), each `N` (digits, right-aligned, zero-filled)
//! or `C` (the Zengin character set of [`super::kana`], left-aligned, space-filled).
//!
//! Every failure is a [`FileError`] naming the line (the record's 1-based number in the file)
//! and the field, so a refused file tells its reader where to look. Tried by
//! `zengin::codec::tests` and, through the layouts, `zengin::debit::tests`.

use encoding_rs::SHIFT_JIS;

use super::kana;

/// Bytes of every record.
pub const RECORD: usize = 120;

/// End-of-file mark some banks append (SUB).
const EOF_MARK: u8 = 0x1A;

/// How a field is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Digits, right-aligned, zero-filled.
    N,
    /// The Zengin character set, left-aligned, space-filled.
    C,
}

/// One field of a record layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The name errors use (`amount`, `result_code`).
    pub name: &'static str,
    /// Its name in the standard (引落金額), for the reader of an error.
    pub label: &'static str,
    pub kind: Kind,
    pub width: usize,
}

/// An `N` field of a layout.
pub const fn n(name: &'static str, label: &'static str, width: usize) -> Field {
    Field {
        name,
        label,
        kind: Kind::N,
        width,
    }
}

/// A `C` field of a layout.
pub const fn c(name: &'static str, label: &'static str, width: usize) -> Field {
    Field {
        name,
        label,
        kind: Kind::C,
        width,
    }
}

/// The number written for a code kept as a string of digits (codes are strings: leading
/// zeros matter; they were checked to be digits when given).
pub fn digits(code: &str) -> u64 {
    code.parse().unwrap_or(0)
}

/// The value of a `C` field.
pub fn text(t: &str) -> Value {
    Value::C(t.to_owned())
}

/// A layout's fields, in order; their widths sum to [`RECORD`] (checked by each layout's test).
pub type Layout = &'static [Field];

/// A value of one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    N(u64),
    C(String),
}

impl Value {
    /// The number of an `N` field (0 for a `C` field: layouts are checked at encode time).
    pub fn number(&self) -> u64 {
        match self {
            Value::N(n) => *n,
            Value::C(_) => 0,
        }
    }

    /// The text of a `C` field, trailing spaces removed (digits of an `N` field, zero-filled,
    /// are not asked for this way).
    pub fn text(&self) -> &str {
        match self {
            Value::C(s) => s.as_str(),
            Value::N(_) => "",
        }
    }
}

/// Why a file (or a record being written) is refused: its line and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {field}: {message}")]
pub struct FileError {
    pub line: usize,
    pub field: String,
    pub message: String,
}

impl FileError {
    pub fn new(line: usize, field: &str, message: impl Into<String>) -> Self {
        Self {
            line,
            field: field.to_owned(),
            message: message.into(),
        }
    }

    fn of(line: usize, field: &Field, message: impl Into<String>) -> Self {
        Self::new(
            line,
            field.name,
            format!("{} ({}): {}", field.label, field.name, message.into()),
        )
    }
}

/// Writes `values` (one per field of `layout`) as record `line`.
pub fn encode(layout: Layout, values: &[Value], line: usize) -> Result<Vec<u8>, FileError> {
    debug_assert_eq!(layout.iter().map(|f| f.width).sum::<usize>(), RECORD);
    if values.len() != layout.len() {
        return Err(FileError::new(
            line,
            "record",
            format!("{} values for {} fields", values.len(), layout.len()),
        ));
    }
    let mut out = Vec::with_capacity(RECORD);
    for (field, value) in layout.iter().zip(values) {
        match (field.kind, value) {
            (Kind::N, Value::N(n)) => {
                let digits = format!("{n:0width$}", width = field.width);
                if digits.len() != field.width {
                    return Err(FileError::of(
                        line,
                        field,
                        format!("{n} has more than {} digits", field.width),
                    ));
                }
                out.extend_from_slice(digits.as_bytes());
            }
            (Kind::C, Value::C(text)) => {
                kana::check_zengin(text).map_err(|e| FileError::of(line, field, e.to_string()))?;
                let (bytes, _, unmappable) = SHIFT_JIS.encode(text);
                // Every character of the set is one Shift_JIS byte, so bytes = characters.
                if unmappable || bytes.len() > field.width {
                    return Err(FileError::of(
                        line,
                        field,
                        format!("{text:?} is longer than {} characters", field.width),
                    ));
                }
                out.extend_from_slice(&bytes);
                out.resize(out.len() + field.width - bytes.len(), b' ');
            }
            _ => {
                return Err(FileError::of(line, field, "a value of the wrong kind"));
            }
        }
    }
    debug_assert_eq!(out.len(), RECORD);
    Ok(out)
}

/// Reads record `line` (exactly [`RECORD`] bytes) by `layout`.
pub fn decode(layout: Layout, record: &[u8], line: usize) -> Result<Vec<Value>, FileError> {
    if record.len() != RECORD {
        return Err(length_error(line, record.len()));
    }
    let mut at = 0;
    let mut out = Vec::with_capacity(layout.len());
    for field in layout {
        let bytes = record.get(at..at + field.width).unwrap_or_default();
        at += field.width;
        out.push(match field.kind {
            Kind::N => {
                if !bytes.iter().all(u8::is_ascii_digit) {
                    return Err(FileError::of(
                        line,
                        field,
                        format!(
                            "{:?} is not {} digits",
                            String::from_utf8_lossy(bytes),
                            field.width
                        ),
                    ));
                }
                // At most 12 digits in any layout: always fits.
                let n = std::str::from_utf8(bytes)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| FileError::of(line, field, "not a number"))?;
                Value::N(n)
            }
            Kind::C => {
                let text = SHIFT_JIS
                    .decode_without_bom_handling_and_without_replacement(bytes)
                    .ok_or_else(|| FileError::of(line, field, "not Shift_JIS"))?;
                let text = text.trim_end_matches(' ');
                kana::check_zengin(text).map_err(|e| FileError::of(line, field, e.to_string()))?;
                Value::C(text.to_owned())
            }
        });
    }
    Ok(out)
}

fn length_error(line: usize, length: usize) -> FileError {
    FileError::new(
        line,
        "record",
        format!("the record is {length} bytes; every Zengin record is {RECORD}"),
    )
}

/// The records of a file: separated by CR LF (or LF), or not separated at all; a final EOF
/// mark (0x1A) and a final separator are ignored. A record of another length is refused.
pub fn records(file: &[u8]) -> Result<Vec<&[u8]>, FileError> {
    let mut body = file;
    if let Some((&EOF_MARK, rest)) = body.split_last() {
        body = rest;
    }
    if body.is_empty() {
        return Err(FileError::new(1, "record", "the file is empty"));
    }
    if body.contains(&b'\n') || body.contains(&b'\r') {
        let mut lines: Vec<&[u8]> = body
            .split(|b| *b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .collect();
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        for (i, l) in lines.iter().enumerate() {
            if l.len() != RECORD {
                return Err(length_error(i + 1, l.len()));
            }
        }
        Ok(lines)
    } else {
        let lines: Vec<&[u8]> = body.chunks(RECORD).collect();
        match lines.iter().position(|l| l.len() != RECORD) {
            Some(i) => Err(length_error(i + 1, lines.get(i).map_or(0, |l| l.len()))),
            None => Ok(lines),
        }
    }
}

/// The record type (データ区分, the first byte) of record `line`.
pub fn record_type(record: &[u8], line: usize) -> Result<u8, FileError> {
    match record.first() {
        Some(b @ b'0'..=b'9') => Ok(b - b'0'),
        _ => Err(FileError::new(
            line,
            "record_type",
            "データ区分 (record_type) is not a digit",
        )),
    }
}

/// Joins records with CR LF, as the platform writes its files.
pub fn join(records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() * (RECORD + 2));
    for r in records {
        out.extend_from_slice(r);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &[Field] = &[
        Field {
            name: "kind",
            label: "種別",
            kind: Kind::N,
            width: 10,
        },
        Field {
            name: "name",
            label: "名前",
            kind: Kind::C,
            width: 110,
        },
    ];

    #[test]
    fn fields_are_filled_and_read_back() {
        let r = encode(TWO, &[Value::N(91), Value::C("ﾔﾏﾀﾞ".into())], 1).unwrap();
        let mut expected = b"0000000091".to_vec();
        // ﾔ ﾏ ﾀ ﾞ are the single bytes 0xD4 0xCF 0xC0 0xDE.
        expected.extend_from_slice(&[0xD4, 0xCF, 0xC0, 0xDE]);
        expected.resize(RECORD, b' ');
        assert_eq!(r, expected);
        assert_eq!(
            decode(TWO, &r, 1).unwrap(),
            vec![Value::N(91), Value::C("ﾔﾏﾀﾞ".into())]
        );
    }

    #[test]
    fn bad_fields_are_named_with_their_line() {
        let e = encode(TWO, &[Value::N(91), Value::C("山田".into())], 3).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (3, "name"));
        let e = encode(TWO, &[Value::N(12_345_678_901), Value::C(String::new())], 2).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (2, "kind"));
        let mut r = encode(TWO, &[Value::N(1), Value::C("A".into())], 1).unwrap();
        r[5] = b'X';
        let e = decode(TWO, &r, 4).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (4, "kind"), "{e}");
        let e = decode(TWO, &r[..119], 4).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (4, "record"));
    }

    #[test]
    fn records_are_split_with_or_without_separators() {
        let a = vec![b'1'; RECORD];
        let b = vec![b'9'; RECORD];
        let joined = join(&[a.clone(), b.clone()]);
        assert_eq!(records(&joined).unwrap(), vec![&a[..], &b[..]]);
        let mut plain = [a.clone(), b.clone()].concat();
        assert_eq!(records(&plain).unwrap().len(), 2);
        plain.push(EOF_MARK);
        assert_eq!(records(&plain).unwrap().len(), 2);
        plain.pop();
        plain.pop();
        let e = records(&plain).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (2, "record"));
        let mut short = join(&[a.clone(), b[..100].to_vec(), b.clone()]);
        short.truncate(short.len() - 2);
        let e = records(&short).unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert_eq!(records(b"").unwrap_err().line, 1);
    }
}
