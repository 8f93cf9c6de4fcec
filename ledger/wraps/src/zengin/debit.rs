//! The direct-debit file (口座振替, 種別コード 91), request and result, pure: its four record
//! layouts as tables (a bank's variant is a change of one table), the file as types, and the
//! rules a file read back must keep: records in the order header, data…, trailer, end; kind 91,
//! code set 0; known account types and result codes; the trailer's counts and totals equal to
//! its data records (in a result file, also the collected and failed ones). Any break is a
//! [`FileError`] naming the line and the field. Tried by `zengin::debit::tests` (a hand-built
//! file byte for byte, and each malformed case).

use super::codec::{self, FileError, Layout, Value, c, digits, n, text as s};

/// Header record (データ区分 1).
pub const HEADER: Layout = &[
    n("record_type", "データ区分", 1),
    n("kind", "種別コード", 2),
    n("code_set", "コード区分", 1),
    n("collector_code", "委託者コード", 10),
    c("collector_name", "委託者名", 40),
    n("debit_date", "引落日", 4),
    n("bank_code", "取引銀行番号", 4),
    c("bank_name", "取引銀行名", 15),
    n("branch_code", "取引支店番号", 3),
    c("branch_name", "取引支店名", 15),
    n("account_type", "預金種目", 1),
    n("account_number", "口座番号", 7),
    c("filler", "ダミー", 17),
];

/// Data record (データ区分 2).
pub const DATA: Layout = &[
    n("record_type", "データ区分", 1),
    n("bank_code", "引落銀行番号", 4),
    c("bank_name", "引落銀行名", 15),
    n("branch_code", "引落支店番号", 3),
    c("branch_name", "引落支店名", 15),
    c("filler", "ダミー", 4),
    n("account_type", "預金種目", 1),
    n("account_number", "口座番号", 7),
    c("holder_name", "預金者名", 30),
    n("amount", "引落金額", 10),
    n("new_code", "新規コード", 1),
    c("customer_number", "顧客番号", 20),
    n("result_code", "振替結果コード", 1),
    c("filler", "ダミー", 8),
];

/// Trailer record (データ区分 8).
pub const TRAILER: Layout = &[
    n("record_type", "データ区分", 1),
    n("total_count", "合計件数", 6),
    n("total_amount", "合計金額", 12),
    n("collected_count", "振替済件数", 6),
    n("collected_amount", "振替済金額", 12),
    n("failed_count", "振替不能件数", 6),
    n("failed_amount", "振替不能金額", 12),
    c("filler", "ダミー", 65),
];

/// End record (データ区分 9), shared by every Zengin file.
pub const END: Layout = &[
    n("record_type", "データ区分", 1),
    c("filler", "ダミー", 119),
];

/// Account types (預金種目) a payer's account may have: 1 普通, 2 当座, 3 納税準備, 9 other.
pub const PAYER_ACCOUNT_TYPES: &[u8] = &[1, 2, 3, 9];

/// Account types of the collector's own account: 1 普通, 2 当座, 9 other.
pub const COLLECTOR_ACCOUNT_TYPES: &[u8] = &[1, 2, 9];

/// 振替結果コード: what the bank did with one debit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResultCode {
    /// 0 振替済.
    Collected,
    /// 1 資金不足.
    InsufficientFunds,
    /// 2 預金取引なし (no such account, or closed).
    NoAccount,
    /// 3 預金者の都合による振替停止.
    StoppedByPayer,
    /// 4 預金口座振替依頼書なし.
    NoAuthorisation,
    /// 8 委託者の都合による振替停止.
    StoppedByCollector,
    /// 9 その他.
    Other,
}

impl ResultCode {
    /// The code of digit `d`; `None` for a digit the standard does not define.
    pub fn of(d: u64) -> Option<Self> {
        Some(match d {
            0 => Self::Collected,
            1 => Self::InsufficientFunds,
            2 => Self::NoAccount,
            3 => Self::StoppedByPayer,
            4 => Self::NoAuthorisation,
            8 => Self::StoppedByCollector,
            9 => Self::Other,
            _ => return None,
        })
    }

    pub fn digit(self) -> u8 {
        match self {
            Self::Collected => 0,
            Self::InsufficientFunds => 1,
            Self::NoAccount => 2,
            Self::StoppedByPayer => 3,
            Self::NoAuthorisation => 4,
            Self::StoppedByCollector => 8,
            Self::Other => 9,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Collected => "collected",
            Self::InsufficientFunds => "insufficient_funds",
            Self::NoAccount => "no_account",
            Self::StoppedByPayer => "stopped_by_payer",
            Self::NoAuthorisation => "no_authorisation",
            Self::StoppedByCollector => "stopped_by_collector",
            Self::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [0, 1, 2, 3, 4, 8, 9]
            .into_iter()
            .filter_map(Self::of)
            .find(|c| c.as_str() == s)
    }

    /// Why the bank could not collect, in words (None when it did).
    pub fn reason(self) -> Option<&'static str> {
        match self {
            Self::Collected => None,
            Self::InsufficientFunds => Some("insufficient funds (資金不足)"),
            Self::NoAccount => Some("no such account, or closed (預金取引なし)"),
            Self::StoppedByPayer => Some("stopped by the payer (預金者の都合による振替停止)"),
            Self::NoAuthorisation => {
                Some("no debit authorisation on file (預金口座振替依頼書なし)")
            }
            Self::StoppedByCollector => {
                Some("stopped by the collector (委託者の都合による振替停止)")
            }
            Self::Other => Some("other (その他)"),
        }
    }
}

/// A bank account as the files write it: codes as digit strings (leading zeros matter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankAccount {
    /// 4 digits (金融機関コード).
    pub bank_code: String,
    /// 3 digits (支店コード).
    pub branch_code: String,
    /// 預金種目.
    pub account_type: u8,
    /// 7 digits.
    pub account_number: String,
}

/// The collector (委託者) of a request: who the bank pays the money to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collector {
    /// 10 digits, given by the bank.
    pub code: String,
    pub name: String,
    pub bank_name: String,
    pub branch_name: String,
    pub account: BankAccount,
}

/// The header of a file: the collector and the debit date (month, day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub collector: Collector,
    pub month: u32,
    pub day: u32,
}

/// One debit (a data record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Debit {
    pub account: BankAccount,
    pub bank_name: String,
    pub branch_name: String,
    /// 預金者名, in the Zengin character set.
    pub holder_name: String,
    /// Yen.
    pub amount: u64,
    /// 新規コード: 1 first debit, 2 account changed, 0 other.
    pub new_code: u8,
    /// 顧客番号: the platform's reference of the debit.
    pub customer_number: String,
    /// `None` in a request (written `0`).
    pub result: Option<ResultCode>,
}

/// The trailer's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub count: u64,
    pub amount: u64,
    pub collected_count: u64,
    pub collected_amount: u64,
    pub failed_count: u64,
    pub failed_amount: u64,
}

impl Totals {
    /// The totals of `debits` (results counted when they have one).
    pub fn of(debits: &[Debit]) -> Self {
        let mut t = Totals::default();
        for d in debits {
            t.count += 1;
            t.amount += d.amount;
            match d.result {
                Some(ResultCode::Collected) => {
                    t.collected_count += 1;
                    t.collected_amount += d.amount;
                }
                Some(_) => {
                    t.failed_count += 1;
                    t.failed_amount += d.amount;
                }
                None => {}
            }
        }
        t
    }
}

/// A whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebitFile {
    pub header: Header,
    pub debits: Vec<Debit>,
}

/// Which file is read: a request has no results (every result code `0`, the trailer's
/// collected and failed figures zero); a result has one per record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Request,
    Result,
}

/// The header record of a file of `kind` (91, 21: the two layouts hold the same fields) from
/// the collector or sender and the date (`month`, `day`).
pub fn header_record(
    layout: Layout,
    kind: u64,
    party: &Collector,
    month: u32,
    day: u32,
) -> Result<Vec<u8>, FileError> {
    let a = &party.account;
    codec::encode(
        layout,
        &[
            Value::N(1),
            Value::N(kind),
            Value::N(0),
            Value::N(digits(&party.code)),
            s(&party.name),
            Value::N(u64::from(month * 100 + day)),
            Value::N(digits(&a.bank_code)),
            s(&party.bank_name),
            Value::N(digits(&a.branch_code)),
            s(&party.branch_name),
            Value::N(u64::from(a.account_type)),
            Value::N(digits(&a.account_number)),
            s(""),
        ],
        1,
    )
}

/// The file's bytes: records joined by CR LF, the trailer's figures computed from the debits.
pub fn encode(file: &DebitFile) -> Result<Vec<u8>, FileError> {
    let h = &file.header;
    let mut records = Vec::with_capacity(file.debits.len() + 3);
    records.push(header_record(HEADER, 91, &h.collector, h.month, h.day)?);
    for (i, d) in file.debits.iter().enumerate() {
        records.push(codec::encode(
            DATA,
            &[
                Value::N(2),
                Value::N(digits(&d.account.bank_code)),
                s(&d.bank_name),
                Value::N(digits(&d.account.branch_code)),
                s(&d.branch_name),
                s(""),
                Value::N(u64::from(d.account.account_type)),
                Value::N(digits(&d.account.account_number)),
                s(&d.holder_name),
                Value::N(d.amount),
                Value::N(u64::from(d.new_code)),
                s(&d.customer_number),
                Value::N(u64::from(d.result.map_or(0, ResultCode::digit))),
                s(""),
            ],
            i + 2,
        )?);
    }
    let t = Totals::of(&file.debits);
    records.push(codec::encode(
        TRAILER,
        &[
            Value::N(8),
            Value::N(t.count),
            Value::N(t.amount),
            Value::N(t.collected_count),
            Value::N(t.collected_amount),
            Value::N(t.failed_count),
            Value::N(t.failed_amount),
            s(""),
        ],
        file.debits.len() + 2,
    )?);
    records.push(codec::encode(
        END,
        &[Value::N(9), s("")],
        file.debits.len() + 3,
    )?);
    Ok(codec::join(&records))
}

fn code(v: &Value, width: usize) -> String {
    format!("{:0width$}", v.number())
}

fn get(values: &[Value], i: usize) -> Value {
    values.get(i).cloned().unwrap_or(Value::N(0))
}

fn account_type(v: &Value, allowed: &[u8], line: usize, label: &str) -> Result<u8, FileError> {
    u8::try_from(v.number())
        .ok()
        .filter(|t| allowed.contains(t))
        .ok_or_else(|| {
            FileError::new(
                line,
                "account_type",
                format!(
                    "{label} (account_type) {} is not one of {allowed:?}",
                    v.number()
                ),
            )
        })
}

fn expect(line: usize, field: &str, label: &str, got: u64, want: u64) -> Result<(), FileError> {
    if got == want {
        Ok(())
    } else {
        Err(FileError::new(
            line,
            field,
            format!("{label} ({field}) is {got}; the data records make it {want}"),
        ))
    }
}

fn header_of(values: &[Value], line: usize) -> Result<Header, FileError> {
    if get(values, 1).number() != 91 {
        return Err(FileError::new(
            line,
            "kind",
            format!(
                "種別コード (kind) is {:02}; a direct-debit file is 91",
                get(values, 1).number()
            ),
        ));
    }
    if get(values, 2).number() != 0 {
        return Err(FileError::new(
            line,
            "code_set",
            "コード区分 (code_set) must be 0 (JIS)",
        ));
    }
    let date = get(values, 5).number();
    let (month, day) = (
        u32::try_from(date / 100).unwrap_or(0),
        u32::try_from(date % 100).unwrap_or(0),
    );
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(FileError::new(
            line,
            "debit_date",
            format!("引落日 (debit_date) {date:04} is not a month and day (MMDD)"),
        ));
    }
    Ok(Header {
        collector: Collector {
            code: code(&get(values, 3), 10),
            name: get(values, 4).text().to_owned(),
            bank_name: get(values, 7).text().to_owned(),
            branch_name: get(values, 9).text().to_owned(),
            account: BankAccount {
                bank_code: code(&get(values, 6), 4),
                branch_code: code(&get(values, 8), 3),
                account_type: account_type(
                    &get(values, 10),
                    COLLECTOR_ACCOUNT_TYPES,
                    line,
                    "預金種目",
                )?,
                account_number: code(&get(values, 11), 7),
            },
        },
        month,
        day,
    })
}

fn debit_of(values: &[Value], line: usize, direction: Direction) -> Result<Debit, FileError> {
    let result_digit = get(values, 12).number();
    let result = match direction {
        Direction::Request if result_digit == 0 => None,
        Direction::Request => {
            return Err(FileError::new(
                line,
                "result_code",
                format!("振替結果コード (result_code) is {result_digit}; a request has 0"),
            ));
        }
        Direction::Result => Some(ResultCode::of(result_digit).ok_or_else(|| {
            FileError::new(
                line,
                "result_code",
                format!(
                    "振替結果コード (result_code) {result_digit} is not a known code \
                     (0, 1, 2, 3, 4, 8, 9)"
                ),
            )
        })?),
    };
    let new_code = get(values, 10).number();
    if new_code > 2 {
        return Err(FileError::new(
            line,
            "new_code",
            format!("新規コード (new_code) {new_code} is not 0, 1 or 2"),
        ));
    }
    Ok(Debit {
        account: BankAccount {
            bank_code: code(&get(values, 1), 4),
            branch_code: code(&get(values, 3), 3),
            account_type: account_type(&get(values, 6), PAYER_ACCOUNT_TYPES, line, "預金種目")?,
            account_number: code(&get(values, 7), 7),
        },
        bank_name: get(values, 2).text().to_owned(),
        branch_name: get(values, 4).text().to_owned(),
        holder_name: get(values, 8).text().to_owned(),
        amount: get(values, 9).number(),
        new_code: u8::try_from(new_code).unwrap_or(0),
        customer_number: get(values, 11).text().to_owned(),
        result,
    })
}

fn out_of_order(line: usize, got: u8, expected: &str) -> FileError {
    FileError::new(
        line,
        "record_type",
        format!("データ区分 (record_type) is {got}; expected {expected}"),
    )
}

/// Reads a file, refusing it whole at its first fault (see the module docs).
pub fn decode(file: &[u8], direction: Direction) -> Result<DebitFile, FileError> {
    let records = codec::records(file)?;
    let mut header = None;
    let mut debits = Vec::new();
    let mut trailer: Option<(usize, Totals)> = None;
    let mut ended = false;
    for (i, record) in records.iter().enumerate() {
        let line = i + 1;
        let kind = codec::record_type(record, line)?;
        if ended {
            return Err(out_of_order(line, kind, "nothing after the end record (9)"));
        }
        match (kind, header.is_some(), trailer.is_some()) {
            (1, false, _) => header = Some(header_of(&codec::decode(HEADER, record, line)?, line)?),
            (_, false, _) => return Err(out_of_order(line, kind, "1 (header) first")),
            (2, true, false) => {
                debits.push(debit_of(
                    &codec::decode(DATA, record, line)?,
                    line,
                    direction,
                )?);
            }
            (8, true, false) => {
                let v = codec::decode(TRAILER, record, line)?;
                trailer = Some((
                    line,
                    Totals {
                        count: get(&v, 1).number(),
                        amount: get(&v, 2).number(),
                        collected_count: get(&v, 3).number(),
                        collected_amount: get(&v, 4).number(),
                        failed_count: get(&v, 5).number(),
                        failed_amount: get(&v, 6).number(),
                    },
                ));
            }
            (9, true, true) => {
                codec::decode(END, record, line)?;
                ended = true;
            }
            (_, true, false) => return Err(out_of_order(line, kind, "2 (data) or 8 (trailer)")),
            (_, true, true) => return Err(out_of_order(line, kind, "9 (end)")),
        }
    }
    let Some(header) = header else {
        return Err(FileError::new(1, "record_type", "no header record (1)"));
    };
    let Some((line, given)) = trailer else {
        return Err(FileError::new(
            records.len() + 1,
            "record_type",
            "no trailer record (8)",
        ));
    };
    if !ended {
        return Err(FileError::new(
            records.len() + 1,
            "record_type",
            "no end record (9)",
        ));
    }
    let want = Totals::of(&debits);
    expect(line, "total_count", "合計件数", given.count, want.count)?;
    expect(line, "total_amount", "合計金額", given.amount, want.amount)?;
    expect(
        line,
        "collected_count",
        "振替済件数",
        given.collected_count,
        want.collected_count,
    )?;
    expect(
        line,
        "collected_amount",
        "振替済金額",
        given.collected_amount,
        want.collected_amount,
    )?;
    expect(
        line,
        "failed_count",
        "振替不能件数",
        given.failed_count,
        want.failed_count,
    )?;
    expect(
        line,
        "failed_amount",
        "振替不能金額",
        given.failed_amount,
        want.failed_amount,
    )?;
    Ok(DebitFile { header, debits })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A field of `width` bytes: `text` then spaces.
    fn pad(text: &[u8], width: usize) -> Vec<u8> {
        let mut v = text.to_vec();
        v.resize(width, b' ');
        v
    }

    /// The sample request, built by hand from ZENGIN.md's table (not by the encoder):
    /// collector 1234567890 ｶ)ｻｸﾗﾗｯﾌﾟ, 10 April, bank 0005 branch 001 普通 1234567; one debit
    /// of ¥30,000 from bank 0009 branch 123 普通 7654321, ﾔﾏﾀﾞ ﾀﾛｳ, first debit, customer
    /// number 00000000000000000001.
    fn sample(result: u8, collected: bool) -> Vec<u8> {
        let sjis = |s: &str| encoding_rs::SHIFT_JIS.encode(s).0.into_owned();
        let mut header = b"1910".to_vec();
        header.extend(b"1234567890");
        header.extend(pad(&sjis("ｶ)ｻｸﾗﾗｯﾌﾟ"), 40));
        header.extend(b"0410");
        header.extend(b"0005");
        header.extend(pad(b"", 15));
        header.extend(b"001");
        header.extend(pad(b"", 15));
        header.extend(b"1");
        header.extend(b"1234567");
        header.extend(pad(b"", 17));
        let mut data = b"2".to_vec();
        data.extend(b"0009");
        data.extend(pad(b"", 15));
        data.extend(b"123");
        data.extend(pad(b"", 15));
        data.extend(pad(b"", 4));
        data.extend(b"1");
        data.extend(b"7654321");
        // ﾔ ﾏ ﾀ ﾞ space ﾀ ﾛ ｳ in Shift_JIS.
        data.extend(pad(&[0xD4, 0xCF, 0xC0, 0xDE, 0x20, 0xC0, 0xDB, 0xB3], 30));
        data.extend(b"0000030000");
        data.extend(b"1");
        data.extend(b"00000000000000000001");
        data.push(b'0' + result);
        data.extend(pad(b"", 8));
        let mut trailer = b"8".to_vec();
        trailer.extend(b"000001");
        trailer.extend(b"000000030000");
        if !collected && result == 0 {
            trailer.extend(b"000000000000000000");
            trailer.extend(b"000000000000000000");
        } else if result == 0 {
            trailer.extend(b"000001000000030000");
            trailer.extend(b"000000000000000000");
        } else {
            trailer.extend(b"000000000000000000");
            trailer.extend(b"000001000000030000");
        }
        trailer.extend(pad(b"", 65));
        let end = pad(b"9", 120);
        let mut out = Vec::new();
        for r in [header, data, trailer, end] {
            assert_eq!(r.len(), 120);
            out.extend(r);
            out.extend(b"\r\n");
        }
        out
    }

    fn sample_file() -> DebitFile {
        DebitFile {
            header: Header {
                collector: Collector {
                    code: "1234567890".into(),
                    name: "ｶ)ｻｸﾗﾗｯﾌﾟ".into(),
                    bank_name: String::new(),
                    branch_name: String::new(),
                    account: BankAccount {
                        bank_code: "0005".into(),
                        branch_code: "001".into(),
                        account_type: 1,
                        account_number: "1234567".into(),
                    },
                },
                month: 4,
                day: 10,
            },
            debits: vec![Debit {
                account: BankAccount {
                    bank_code: "0009".into(),
                    branch_code: "123".into(),
                    account_type: 1,
                    account_number: "7654321".into(),
                },
                bank_name: String::new(),
                branch_name: String::new(),
                holder_name: "ﾔﾏﾀﾞ ﾀﾛｳ".into(),
                amount: 30_000,
                new_code: 1,
                customer_number: "00000000000000000001".into(),
                result: None,
            }],
        }
    }

    #[test]
    fn layouts_are_120_bytes() {
        for layout in [HEADER, DATA, TRAILER, END] {
            assert_eq!(layout.iter().map(|f| f.width).sum::<usize>(), 120);
        }
    }

    #[test]
    fn a_request_round_trips_byte_for_byte() {
        let bytes = encode(&sample_file()).unwrap();
        assert_eq!(bytes, sample(0, false));
        assert_eq!(decode(&bytes, Direction::Request).unwrap(), sample_file());
    }

    #[test]
    fn a_result_is_read_with_its_codes() {
        let mut file = sample_file();
        file.debits[0].result = Some(ResultCode::InsufficientFunds);
        assert_eq!(decode(&sample(1, false), Direction::Result).unwrap(), file);
        assert_eq!(encode(&file).unwrap(), sample(1, false));
        file.debits[0].result = Some(ResultCode::Collected);
        assert_eq!(decode(&sample(0, true), Direction::Result).unwrap(), file);
    }

    fn refused(bytes: &[u8], direction: Direction) -> (usize, String) {
        let e = decode(bytes, direction).unwrap_err();
        (e.line, e.field)
    }

    #[test]
    fn malformed_files_name_the_line_and_field() {
        let good = sample(0, true);
        // A record one byte short.
        let mut short = good.clone();
        short.remove(122 + 50);
        assert_eq!(refused(&short, Direction::Result), (2, "record".into()));
        // A data record where the trailer should be.
        let mut wrong = good.clone();
        wrong[244] = b'3';
        assert_eq!(
            refused(&wrong, Direction::Result),
            (3, "record_type".into())
        );
        // An unknown result code.
        let mut code = good.clone();
        code[122 + 111] = b'5';
        assert_eq!(refused(&code, Direction::Result), (2, "result_code".into()));
        // A total that disagrees with the data.
        let mut total = good.clone();
        total[244 + 17] = b'1';
        assert_eq!(
            refused(&total, Direction::Result),
            (3, "total_amount".into())
        );
        // Collected figures that disagree with the codes.
        let mut failed = good.clone();
        failed[122 + 111] = b'1';
        assert_eq!(
            refused(&failed, Direction::Result),
            (3, "collected_count".into())
        );
        // Letters in an amount.
        let mut amount = good.clone();
        amount[122 + 80] = b'X';
        assert_eq!(refused(&amount, Direction::Result), (2, "amount".into()));
        // Another kind of file.
        let mut kind = good.clone();
        kind[1] = b'2';
        assert_eq!(refused(&kind, Direction::Result), (1, "kind".into()));
        // No end record.
        assert_eq!(
            refused(&good[..366], Direction::Result),
            (4, "record_type".into())
        );
        // A result code in a request.
        assert_eq!(
            refused(&sample(1, false), Direction::Request),
            (2, "result_code".into())
        );
    }
}
