//! The bulk transfer file (総合振込, 種別コード 21), pure: the layouts as tables and the file
//! written from the payouts of a date. The platform writes it and reads nothing back (banks
//! answer transfers with their own statements). Tried by `zengin::transfer::tests` (a
//! hand-built file byte for byte).

use super::codec::{self, FileError, Layout, Value, c, digits, n, text as s};
use super::debit::{BankAccount, Collector, END};

/// Header record (データ区分 1).
pub const HEADER: Layout = &[
    n("record_type", "データ区分", 1),
    n("kind", "種別コード", 2),
    n("code_set", "コード区分", 1),
    n("sender_code", "振込依頼人コード", 10),
    c("sender_name", "振込依頼人名", 40),
    n("transfer_date", "振込指定日", 4),
    n("bank_code", "仕向銀行番号", 4),
    c("bank_name", "仕向銀行名", 15),
    n("branch_code", "仕向支店番号", 3),
    c("branch_name", "仕向支店名", 15),
    n("account_type", "預金種目", 1),
    n("account_number", "口座番号", 7),
    c("filler", "ダミー", 17),
];

/// Data record (データ区分 2).
pub const DATA: Layout = &[
    n("record_type", "データ区分", 1),
    n("bank_code", "被仕向銀行番号", 4),
    c("bank_name", "被仕向銀行名", 15),
    n("branch_code", "被仕向支店番号", 3),
    c("branch_name", "被仕向支店名", 15),
    n("clearing_house", "手形交換所番号", 4),
    n("account_type", "預金種目", 1),
    n("account_number", "口座番号", 7),
    c("payee_name", "受取人名", 30),
    n("amount", "振込金額", 10),
    n("new_code", "新規コード", 1),
    n("customer_code_1", "顧客コード1", 10),
    n("customer_code_2", "顧客コード2", 10),
    n("transfer_kind", "振込指定区分", 1),
    c("edi", "識別表示", 1),
    c("filler", "ダミー", 7),
];

/// Trailer record (データ区分 8).
pub const TRAILER: Layout = &[
    n("record_type", "データ区分", 1),
    n("total_count", "合計件数", 6),
    n("total_amount", "合計金額", 12),
    c("filler", "ダミー", 101),
];

/// Account types a payee's account may have: 1 普通, 2 当座, 4 貯蓄, 9 other.
pub const PAYEE_ACCOUNT_TYPES: &[u8] = &[1, 2, 4, 9];

/// 振込指定区分 7: 電信 (telegraphic), the platform's only kind.
const TELEGRAPHIC: u64 = 7;

/// One transfer (a data record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub account: BankAccount,
    /// 受取人名, in the Zengin character set.
    pub payee_name: String,
    /// Yen.
    pub amount: u64,
}

/// The file's bytes for `sender` on (`month`, `day`): records joined by CR LF.
pub fn encode(
    sender: &Collector,
    month: u32,
    day: u32,
    transfers: &[Transfer],
) -> Result<Vec<u8>, FileError> {
    let mut records = Vec::with_capacity(transfers.len() + 3);
    records.push(super::debit::header_record(HEADER, 21, sender, month, day)?);
    let mut total = 0_u64;
    for (i, t) in transfers.iter().enumerate() {
        let line = i + 2;
        if !PAYEE_ACCOUNT_TYPES.contains(&t.account.account_type) {
            return Err(FileError::new(
                line,
                "account_type",
                format!(
                    "預金種目 (account_type) {} cannot receive a transfer (1, 2, 4 or 9)",
                    t.account.account_type
                ),
            ));
        }
        total += t.amount;
        records.push(codec::encode(
            DATA,
            &[
                Value::N(2),
                Value::N(digits(&t.account.bank_code)),
                s(""),
                Value::N(digits(&t.account.branch_code)),
                s(""),
                Value::N(0),
                Value::N(u64::from(t.account.account_type)),
                Value::N(digits(&t.account.account_number)),
                s(&t.payee_name),
                Value::N(t.amount),
                Value::N(0),
                Value::N(0),
                Value::N(0),
                Value::N(TELEGRAPHIC),
                s(""),
                s(""),
            ],
            line,
        )?);
    }
    let count = u64::try_from(transfers.len()).unwrap_or(u64::MAX);
    records.push(codec::encode(
        TRAILER,
        &[Value::N(8), Value::N(count), Value::N(total), s("")],
        transfers.len() + 2,
    )?);
    records.push(codec::encode(
        END,
        &[Value::N(9), s("")],
        transfers.len() + 3,
    )?);
    Ok(codec::join(&records))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pad(text: &[u8], width: usize) -> Vec<u8> {
        let mut v = text.to_vec();
        v.resize(width, b' ');
        v
    }

    #[test]
    fn layouts_are_120_bytes() {
        for layout in [HEADER, DATA, TRAILER] {
            assert_eq!(layout.iter().map(|f| f.width).sum::<usize>(), 120);
        }
    }

    /// By hand from ZENGIN.md's table: sender 1234567890 ｻｸﾗ at 0005/001 普通 1234567 on
    /// 0411; one transfer of ¥40,000 to 0009/123 普通 7654321 ﾔﾏﾀﾞ ﾀﾛｳ, telegraphic.
    #[test]
    fn a_transfer_file_is_written_byte_for_byte() {
        let sender = Collector {
            code: "1234567890".into(),
            name: "ｻｸﾗ".into(),
            bank_name: String::new(),
            branch_name: String::new(),
            account: BankAccount {
                bank_code: "0005".into(),
                branch_code: "001".into(),
                account_type: 1,
                account_number: "1234567".into(),
            },
        };
        let transfer = Transfer {
            account: BankAccount {
                bank_code: "0009".into(),
                branch_code: "123".into(),
                account_type: 1,
                account_number: "7654321".into(),
            },
            payee_name: "ﾔﾏﾀﾞ ﾀﾛｳ".into(),
            amount: 40_000,
        };
        let mut header = b"1210".to_vec();
        header.extend(b"1234567890");
        header.extend(pad(&[0xBB, 0xB8, 0xD7], 40));
        header.extend(b"0411");
        header.extend(b"0005");
        header.extend(pad(b"", 15));
        header.extend(b"001");
        header.extend(pad(b"", 15));
        header.extend(b"11234567");
        header.extend(pad(b"", 17));
        let mut data = b"20009".to_vec();
        data.extend(pad(b"", 15));
        data.extend(b"123");
        data.extend(pad(b"", 15));
        data.extend(b"0000");
        data.extend(b"17654321");
        data.extend(pad(&[0xD4, 0xCF, 0xC0, 0xDE, 0x20, 0xC0, 0xDB, 0xB3], 30));
        data.extend(b"0000040000");
        data.extend(b"0");
        data.extend(b"0000000000");
        data.extend(b"0000000000");
        data.extend(b"7");
        data.extend(pad(b"", 8));
        let mut trailer = b"8000001000000040000".to_vec();
        trailer.extend(pad(b"", 101));
        let end = pad(b"9", 120);
        let mut expected = Vec::new();
        for r in [header, data, trailer, end] {
            assert_eq!(r.len(), 120);
            expected.extend(r);
            expected.extend(b"\r\n");
        }
        assert_eq!(
            encode(&sender, 4, 11, std::slice::from_ref(&transfer)).unwrap(),
            expected
        );
        let tax = Transfer {
            account: BankAccount {
                account_type: 3,
                ..transfer.account.clone()
            },
            ..transfer
        };
        let e = encode(&sender, 4, 11, &[tax]).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (2, "account_type"));
    }
}
