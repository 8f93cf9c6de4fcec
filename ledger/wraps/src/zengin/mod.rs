//! Zengin files (全銀協規定形式) to and from the distributor's bank: monthly contributions
//! collected by direct debit (口座振替). Owns `customer_bank_accounts`, `debit_requests` and
//! `debit_items` (written only by [`store`]). The fixed-width format is pure and separate:
//! [`codec`] (records, fields, Shift_JIS), [`kana`] (the character set), [`debit`] (the
//! 種別 91 layouts and the file's rules); this module is the workflow between them and the books.
//! Never names HTTP. The layouts' source: /work/shared/ZENGIN.md (the JBA standard as banks
//! publish it); the rules: docs/DOMAIN.md section 8.
//!
//! **Invariants** (each tried by the test named):
//! * A result file is applied whole or not at all: any fault (record length, record type,
//!   a non-digit, an unknown code, trailer totals that disagree with its data records, a
//!   customer number the request does not hold, an account or amount other than the
//!   request's) refuses it with the line and the field, and nothing is written
//!   (`api/tests/http/zengin.rs::malformed_result_files_apply_nothing`).
//! * Each instalment is collected at most once: a debit's result is recorded once, in the same
//!   transaction as its deposit; reading the same result file again changes nothing, and a
//!   different result for a debit already recorded is refused
//!   (`api/tests/http/zengin.rs::a_request_and_its_result_round_trip`).
//! * A collected debit is booked by the one deposit rule, [`crate::movements::move_cash`]
//!   (Dr omnibus, Cr customer cash), on the open business date, which is never before the
//!   collection date: the customer's cash then pays the plan's contribution at end of day.
//! * A distributor reads and writes only its own customers' accounts and requests: every
//!   statement names its `tenant_id` (`api/tests/http/zengin.rs::zengin_is_isolated`).
//!
//! **Locks**: the tenant's book first, then the customer's or the request's row
//! (ledger/src/store/work.rs), so two uploads of one result file run one after the other and
//! the second finds the first's results.

pub mod codec;
pub mod debit;
pub mod kana;
pub mod store;
pub mod transfer;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use ledger::{Ledger, LedgerError};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::customers::Invalid;
use crate::movements::{CashMove, Direction, MoveError, Who};
use codec::FileError;
use debit::{BankAccount, Collector, Debit, DebitFile, Header, ResultCode};
pub use store::CustomerBankAccount;

/// The currency direct debits collect (yen: the files' amounts are whole yen).
pub const CURRENCY: &str = "JPY";

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum ZenginError {
    /// No such customer, request or plan as the caller may see it (404).
    #[error("{0}")]
    NotFound(String),
    /// The state forbids it (409).
    #[error("{0}")]
    Conflict(String),
    /// A value of the request breaks a rule, naming the field (422).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// A file refused whole, naming its line and field (422).
    #[error(transparent)]
    File(#[from] FileError),
    /// A result for a debit that already has another one (409, naming the line and field).
    #[error("{0}")]
    ResultChanged(FileError),
    #[error(transparent)]
    Move(#[from] MoveError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl From<sea_orm::DbErr> for ZenginError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Ledger(LedgerError::from(e))
    }
}

impl From<crate::eod::EodError> for ZenginError {
    fn from(e: crate::eod::EodError) -> Self {
        Self::Move(MoveError::Eod(e))
    }
}

// ---------------------------------------------------------------------------------------
// Bank accounts

fn digits(field: &str, value: &str, width: usize) -> Result<String, Invalid> {
    if value.len() == width && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(value.to_owned())
    } else {
        Err(Invalid::new(
            field,
            format!("must be exactly {width} digits"),
        ))
    }
}

/// `text` in the Zengin character set (full-width forms converted), 1 to `max` characters
/// (`min` 0 allows empty).
fn zengin_text(field: &str, text: &str, min: usize, max: usize) -> Result<String, Invalid> {
    let half = kana::to_zengin(text).map_err(|e| Invalid::new(field, e.to_string()))?;
    let trimmed = half.trim_end_matches(' ');
    let n = trimmed.chars().count();
    if n < min || n > max {
        return Err(Invalid::new(
            field,
            format!("must be {min} to {max} half-width characters; it is {n}"),
        ));
    }
    Ok(trimmed.to_owned())
}

fn account_type(field: &str, t: u8, allowed: &[u8]) -> Result<u8, Invalid> {
    if allowed.contains(&t) {
        Ok(t)
    } else {
        Err(Invalid::new(field, format!("must be one of {allowed:?}")))
    }
}

/// A customer's account for direct debit, as given (full-width katakana accepted).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BankAccountInput {
    /// 4 digits (金融機関コード), e.g. `"0005"`.
    pub bank_code: String,
    /// 3 digits (支店コード).
    pub branch_code: String,
    /// 預金種目: 1 普通 (ordinary), 2 当座 (current), 3 納税準備 (tax reserve), 9 other.
    pub account_type: u8,
    /// 7 digits.
    pub account_number: String,
    /// 預金者名 in katakana (full-width is converted to half-width; kanji and other
    /// characters without a half-width form are refused), at most 30 half-width characters.
    pub holder_name: String,
}

/// `input` checked and in the form the files write, for `customer_id`.
pub fn check_bank_account(
    customer_id: Uuid,
    input: &BankAccountInput,
    now: DateTime<Utc>,
) -> Result<CustomerBankAccount, Invalid> {
    Ok(CustomerBankAccount {
        customer_id,
        bank_code: digits("bank_code", &input.bank_code, 4)?,
        branch_code: digits("branch_code", &input.branch_code, 3)?,
        account_type: account_type(
            "account_type",
            input.account_type,
            debit::PAYER_ACCOUNT_TYPES,
        )?,
        account_number: digits("account_number", &input.account_number, 7)?,
        holder_name: zengin_text("holder_name", &input.holder_name, 1, 30)?,
        updated_at: now,
    })
}

/// Sets customer `customer_id`'s bank account (the customer of `tenant_id`, 404 otherwise).
pub async fn set_bank_account(
    txn: &sea_orm::DatabaseTransaction,
    tenant_id: Uuid,
    customer_id: Uuid,
    input: &BankAccountInput,
    now: DateTime<Utc>,
) -> Result<CustomerBankAccount, ZenginError> {
    let account = check_bank_account(customer_id, input, now)?;
    // The book, then the customer's row (the lock order): a request being written waits.
    crate::customers::store::customer_for_update(txn, tenant_id, customer_id)
        .await?
        .ok_or_else(|| ZenginError::NotFound(format!("no customer {customer_id}")))?;
    store::upsert_bank_account(txn, tenant_id, &account).await?;
    Ok(account)
}

// ---------------------------------------------------------------------------------------
// Requests

/// The collector's header fields, as given.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectorInput {
    /// 委託者コード: 10 digits, given by the bank.
    pub code: String,
    /// 委託者名 in katakana (converted to half-width), at most 40 characters.
    pub name: String,
    /// 4 digits.
    pub bank_code: String,
    /// Optional, at most 15 half-width characters.
    #[serde(default)]
    pub bank_name: String,
    /// 3 digits.
    pub branch_code: String,
    #[serde(default)]
    pub branch_name: String,
    /// 1 普通, 2 当座, 9 other.
    pub account_type: u8,
    /// 7 digits.
    pub account_number: String,
}

/// A request to write the direct-debit file of a collection date.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DebitRequestInput {
    /// The date the bank debits the customers' accounts (引落日).
    pub collection_date: NaiveDate,
    pub collector: CollectorInput,
}

fn check_collector(c: &CollectorInput) -> Result<Collector, Invalid> {
    Ok(Collector {
        code: digits("collector/code", &c.code, 10)?,
        name: zengin_text("collector/name", &c.name, 1, 40)?,
        bank_name: zengin_text("collector/bank_name", &c.bank_name, 0, 15)?,
        branch_name: zengin_text("collector/branch_name", &c.branch_name, 0, 15)?,
        account: BankAccount {
            bank_code: digits("collector/bank_code", &c.bank_code, 4)?,
            branch_code: digits("collector/branch_code", &c.branch_code, 3)?,
            account_type: account_type(
                "collector/account_type",
                c.account_type,
                debit::COLLECTOR_ACCOUNT_TYPES,
            )?,
            account_number: digits("collector/account_number", &c.account_number, 7)?,
        },
    })
}

/// A due plan left out of a request, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SkippedPlan {
    pub plan_id: Uuid,
    pub wrap_id: Uuid,
    pub customer_id: Uuid,
    pub reason: String,
}

/// One debit of a request, with its result once the bank's file is read.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DebitView {
    pub request_id: Uuid,
    pub collection_date: NaiveDate,
    /// The data record's number in the request (1 = the file's line 2).
    pub seq: i32,
    /// 顧客番号 as written: the sequence, 20 digits.
    pub customer_number: String,
    pub plan_id: Uuid,
    pub wrap_id: Uuid,
    pub customer_id: Uuid,
    /// Yen.
    #[schema(value_type = String)]
    pub amount: Decimal,
    pub bank_code: String,
    pub branch_code: String,
    pub account_type: u8,
    pub account_number: String,
    pub holder_name: String,
    /// 新規コード: 1 first debit of the plan, 2 its account changed, 0 other.
    pub new_code: u8,
    /// `requested` (no result yet), `collected` or `failed`.
    pub status: String,
    /// The bank's result (振替結果コード), once read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_code: Option<u8>,
    /// Why it failed, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The deposit's ledger entry (collected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_id: Option<Uuid>,
    /// The business date the deposit was booked on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settled_date: Option<NaiveDate>,
}

fn customer_number(seq: i32) -> String {
    format!("{seq:020}")
}

impl DebitView {
    fn of(i: &store::Item) -> Self {
        Self {
            request_id: i.request_id,
            collection_date: i.collection_date,
            seq: i.seq,
            customer_number: customer_number(i.seq),
            plan_id: i.plan_id,
            wrap_id: i.wrap_id,
            customer_id: i.customer_id,
            amount: Decimal::from(i.amount),
            bank_code: i.account.bank_code.clone(),
            branch_code: i.account.branch_code.clone(),
            account_type: i.account.account_type,
            account_number: i.account.account_number.clone(),
            holder_name: i.holder_name.clone(),
            new_code: i.new_code,
            status: match i.result {
                None => "requested",
                Some(ResultCode::Collected) => "collected",
                Some(_) => "failed",
            }
            .to_owned(),
            result: i.result,
            result_code: i.result.map(ResultCode::digit),
            reason: i.result.and_then(ResultCode::reason).map(str::to_owned),
            entry_id: i.entry_id,
            settled_date: i.settled_date,
        }
    }
}

/// A request with its figures (and its debits, when read one by one).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DebitRequestView {
    pub id: Uuid,
    pub collection_date: NaiveDate,
    pub collector_code: String,
    pub records: i32,
    /// Yen.
    #[schema(value_type = String)]
    pub total_amount: Decimal,
    /// `requested`, or `resulted` once the bank's result file has been read.
    pub status: String,
    pub collected_count: i64,
    #[schema(value_type = String)]
    pub collected_amount: Decimal,
    pub failed_count: i64,
    #[schema(value_type = String)]
    pub failed_amount: Decimal,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resulted_at: Option<DateTime<Utc>>,
    /// The debits (on the request's own read).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub debits: Vec<DebitView>,
    /// The plans due on the date that the request left out, and why (on its creation).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedPlan>,
}

fn view(r: &store::Request, items: &[store::Item], with_items: bool) -> DebitRequestView {
    let (mut cc, mut ca, mut fc, mut fa) = (0_i64, 0_i64, 0_i64, 0_i64);
    for i in items {
        match i.result {
            Some(ResultCode::Collected) => {
                cc += 1;
                ca += i.amount;
            }
            Some(_) => {
                fc += 1;
                fa += i.amount;
            }
            None => {}
        }
    }
    DebitRequestView {
        id: r.id,
        collection_date: r.collection_date,
        collector_code: r.collector.code.clone(),
        records: r.records,
        total_amount: Decimal::from(r.total_amount),
        status: if r.resulted_at.is_some() {
            "resulted"
        } else {
            "requested"
        }
        .to_owned(),
        collected_count: cc,
        collected_amount: Decimal::from(ca),
        failed_count: fc,
        failed_amount: Decimal::from(fa),
        created_by: r.created_by.clone(),
        created_at: r.created_at,
        resulted_at: r.resulted_at,
        debits: if with_items {
            items.iter().map(DebitView::of).collect()
        } else {
            Vec::new()
        },
        skipped: Vec::new(),
    }
}

/// Which due plans a request takes, pure: plans of JPY wraps that accept money, whose
/// customer has a bank account; each with its 新規コード (1 when the plan was never debited,
/// 2 when its account changed since the last debit, else 0).
pub fn select_debits(
    request_id: Uuid,
    date: NaiveDate,
    due: &[store::DuePlan],
    last: &std::collections::HashMap<Uuid, BankAccount>,
) -> (Vec<store::Item>, Vec<SkippedPlan>) {
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    for p in due {
        let skip = |reason: String| SkippedPlan {
            plan_id: p.plan_id,
            wrap_id: p.wrap_id,
            customer_id: p.customer_id,
            reason,
        };
        let accepts = crate::customers::WrapStatus::parse(&p.wrap_status)
            .is_some_and(crate::customers::WrapStatus::accepts_money);
        let Some((account, holder_name)) = &p.bank else {
            skipped.push(skip(
                "the customer has no bank account for direct debit".into(),
            ));
            continue;
        };
        if !accepts {
            skipped.push(skip(format!(
                "the wrap is {}: it takes no contributions",
                p.wrap_status
            )));
            continue;
        }
        if p.currency != CURRENCY || p.scale != 0 || p.amount <= 0 {
            skipped.push(skip(format!(
                "the plan is in {}: direct debit collects yen",
                p.currency
            )));
            continue;
        }
        let new_code = match last.get(&p.plan_id) {
            None => 1,
            Some(a) if a != account => 2,
            Some(_) => 0,
        };
        let seq = i32::try_from(items.len() + 1).unwrap_or(i32::MAX);
        items.push(store::Item {
            request_id,
            seq,
            collection_date: date,
            plan_id: p.plan_id,
            wrap_id: p.wrap_id,
            customer_id: p.customer_id,
            amount: p.amount,
            account: account.clone(),
            holder_name: holder_name.clone(),
            new_code,
            result: None,
            entry_id: None,
            settled_date: None,
        });
    }
    (items, skipped)
}

/// The request as a file: the data records in sequence, with their results once read.
fn file_of(r: &store::Request, items: &[store::Item], with_results: bool) -> DebitFile {
    DebitFile {
        header: Header {
            collector: r.collector.clone(),
            month: r.collection_date.month(),
            day: r.collection_date.day(),
        },
        debits: items
            .iter()
            .map(|i| Debit {
                account: i.account.clone(),
                bank_name: String::new(),
                branch_name: String::new(),
                holder_name: i.holder_name.clone(),
                amount: u64::try_from(i.amount).unwrap_or(0),
                new_code: i.new_code,
                customer_number: customer_number(i.seq),
                result: if with_results { i.result } else { None },
            })
            .collect(),
    }
}

/// Writes the direct-debit request of `input.collection_date` for the contribution plans of
/// `tenant_id` due that day (one request per date: a second is 409). `today` is the open
/// business date: a collection date before it is refused.
pub async fn request_debits(
    txn: &sea_orm::DatabaseTransaction,
    tenant_id: Uuid,
    input: &DebitRequestInput,
    created_by: &str,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<DebitRequestView, ZenginError> {
    let collector = check_collector(&input.collector)?;
    let date = input.collection_date;
    if date < today {
        return Err(Invalid::new(
            "collection_date",
            format!("{date} is before the open business date {today}"),
        )
        .into());
    }
    ledger::store::lock_book(txn, tenant_id).await?;
    if let Some(existing) = store::request_on(txn, tenant_id, date).await? {
        return Err(ZenginError::Conflict(format!(
            "the direct-debit request for {date} is already written: {}",
            existing.id
        )));
    }
    let due = store::due_contribution_plans(txn, tenant_id, date).await?;
    let plans: Vec<Uuid> = due.iter().map(|p| p.plan_id).collect();
    let last = store::last_accounts(txn, tenant_id, &plans).await?;
    let id = Uuid::now_v7();
    let (items, skipped) = select_debits(id, date, &due, &last);
    if items.is_empty() {
        return Err(Invalid::new(
            "collection_date",
            format!(
                "no contribution plan with a bank account is due on {date} ({} due, all left out)",
                skipped.len()
            ),
        )
        .into());
    }
    let total: i64 = items.iter().map(|i| i.amount).sum();
    let request = store::Request {
        id,
        collection_date: date,
        collector,
        records: i32::try_from(items.len()).unwrap_or(i32::MAX),
        total_amount: total,
        created_by: created_by.to_owned(),
        created_at: now,
        resulted_at: None,
    };
    // Written once here so that a field the file cannot hold refuses the request now, not
    // when the file is fetched.
    debit::encode(&file_of(&request, &items, false))?;
    store::insert_request(txn, tenant_id, &request, &items).await?;
    let mut out = view(&request, &items, true);
    out.skipped = skipped;
    Ok(out)
}

/// Request `id` of `tenant_id` with its debits.
pub async fn request<C: sea_orm::ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<DebitRequestView, ZenginError> {
    let r = store::request(db, tenant_id, id, false)
        .await?
        .ok_or_else(|| ZenginError::NotFound(format!("no debit request {id}")))?;
    let items = store::items(db, tenant_id, id).await?;
    Ok(view(&r, &items, true))
}

/// The tenant's requests, newest first, with their figures (head office's view).
pub async fn requests<C: sea_orm::ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    limit: u64,
) -> Result<Vec<DebitRequestView>, ZenginError> {
    let requests = store::requests(db, tenant_id, limit).await?;
    let ids: Vec<Uuid> = requests.iter().map(|r| r.id).collect();
    let mut items = store::items_of(db, tenant_id, &ids).await?;
    Ok(requests
        .iter()
        .map(|r| view(r, &items.remove(&r.id).unwrap_or_default(), false))
        .collect())
}

/// The debits of plan `plan_id` (the caller has checked the plan is its own).
pub async fn plan_debits<C: sea_orm::ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    plan_id: Uuid,
) -> Result<Vec<DebitView>, ZenginError> {
    Ok(store::plan_items(db, tenant_id, plan_id)
        .await?
        .iter()
        .map(DebitView::of)
        .collect())
}

/// The request file of request `id`: Shift_JIS, 120-byte records joined by CR LF, the same
/// bytes every time.
pub async fn request_file<C: sea_orm::ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<(NaiveDate, Vec<u8>), ZenginError> {
    let r = store::request(db, tenant_id, id, false)
        .await?
        .ok_or_else(|| ZenginError::NotFound(format!("no debit request {id}")))?;
    let items = store::items(db, tenant_id, id).await?;
    Ok((
        r.collection_date,
        debit::encode(&file_of(&r, &items, false))?,
    ))
}

// ---------------------------------------------------------------------------------------
// Results

/// What reading a result file did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResultsApplied {
    pub request_id: Uuid,
    /// Debits whose result this file recorded now.
    pub applied: usize,
    /// Debits whose result was already recorded, the same (a re-read of the file).
    pub unchanged: usize,
    /// The request after it.
    pub request: DebitRequestView,
}

/// What to do with each debit of a result file, decided before anything is written.
fn match_results(
    request: &store::Request,
    items: &[store::Item],
    file: &DebitFile,
) -> Result<Vec<(usize, ResultCode, usize)>, ZenginError> {
    let h = &file.header;
    if h.collector.code != request.collector.code {
        return Err(FileError::new(
            1,
            "collector_code",
            format!(
                "委託者コード (collector_code) {} is not the request's {}",
                h.collector.code, request.collector.code
            ),
        )
        .into());
    }
    if (h.month, h.day)
        != (
            request.collection_date.month(),
            request.collection_date.day(),
        )
    {
        return Err(FileError::new(
            1,
            "debit_date",
            format!(
                "引落日 (debit_date) {:02}{:02} is not the request's collection date {}",
                h.month, h.day, request.collection_date
            ),
        )
        .into());
    }
    let mut seen = vec![false; items.len()];
    let mut out = Vec::with_capacity(file.debits.len());
    for (k, d) in file.debits.iter().enumerate() {
        let line = k + 2;
        let bad =
            |field: &str, message: String| ZenginError::File(FileError::new(line, field, message));
        let index = d
            .customer_number
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=items.len()).contains(n))
            .map(|n| n - 1);
        let Some((index, item)) = index.and_then(|i| items.get(i).map(|item| (i, item))) else {
            return Err(bad(
                "customer_number",
                format!(
                    "顧客番号 (customer_number) {:?} is no debit of request {}",
                    d.customer_number, request.id
                ),
            ));
        };
        if std::mem::replace(&mut seen[index], true) {
            return Err(bad(
                "customer_number",
                format!(
                    "顧客番号 (customer_number) {} appears twice",
                    d.customer_number
                ),
            ));
        }
        let checks: [(&str, &str, String, String); 5] = [
            (
                "bank_code",
                "引落銀行番号",
                d.account.bank_code.clone(),
                item.account.bank_code.clone(),
            ),
            (
                "branch_code",
                "引落支店番号",
                d.account.branch_code.clone(),
                item.account.branch_code.clone(),
            ),
            (
                "account_type",
                "預金種目",
                d.account.account_type.to_string(),
                item.account.account_type.to_string(),
            ),
            (
                "account_number",
                "口座番号",
                d.account.account_number.clone(),
                item.account.account_number.clone(),
            ),
            (
                "amount",
                "引落金額",
                d.amount.to_string(),
                item.amount.to_string(),
            ),
        ];
        for (field, label, got, want) in checks {
            if got != want {
                return Err(bad(
                    field,
                    format!("{label} ({field}) {got} is not the request's {want} for this debit"),
                ));
            }
        }
        let result = d
            .result
            .ok_or_else(|| bad("result_code", "no result".into()))?;
        if let Some(before) = item.result
            && before != result
        {
            return Err(ZenginError::ResultChanged(FileError::new(
                line,
                "result_code",
                format!(
                    "振替結果コード (result_code) {} differs from the result already recorded \
                     for this debit, {} ({})",
                    result.digit(),
                    before.digit(),
                    before.as_str()
                ),
            )));
        }
        out.push((index, result, line));
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        return Err(FileError::new(
            file.debits.len() + 2,
            "total_count",
            format!(
                "合計件数 (total_count): the request has {} debits; the file lacks 顧客番号 {}",
                items.len(),
                customer_number(i32::try_from(missing + 1).unwrap_or(0))
            ),
        )
        .into());
    }
    Ok(out)
}

/// Reads the bank's result file for request `id` and applies it whole: each collected debit
/// deposited into its customer's cash ([`crate::movements::move_cash`], on `today`, the open
/// business date), each failed one recorded with its reason; a debit already recorded the same
/// is left as it is. Refused whole at the first fault (see the module's invariants).
#[allow(clippy::too_many_arguments)]
pub async fn apply_results(
    txn: &sea_orm::DatabaseTransaction,
    books: &Ledger,
    who: Who<'_>,
    tenant_id: Uuid,
    id: Uuid,
    file: &[u8],
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<ResultsApplied, ZenginError> {
    // Load: the file first (pure), then the request under the book's lock.
    let parsed = debit::decode(file, debit::Direction::Result)?;
    ledger::store::lock_book(txn, tenant_id).await?;
    let request = store::request(txn, tenant_id, id, true)
        .await?
        .ok_or_else(|| ZenginError::NotFound(format!("no debit request {id}")))?;
    let items = store::items(txn, tenant_id, id).await?;
    // Compute: every line matched before anything is written.
    let matched = match_results(&request, &items, &parsed)?;
    if today < request.collection_date {
        return Err(ZenginError::Conflict(format!(
            "the bank collects on {}; its result cannot be booked before then (the open \
             business date is {today})",
            request.collection_date
        )));
    }
    // Write.
    let asset = books.asset_in(txn, CURRENCY).await?;
    let (mut applied, mut unchanged) = (0, 0);
    for (index, result, line) in matched {
        let Some(item) = items.get(index) else {
            continue;
        };
        if item.result.is_some() {
            unchanged += 1;
            continue;
        }
        let entry = if result == ResultCode::Collected {
            let customer = crate::customers::store::customer(txn, tenant_id, item.customer_id)
                .await?
                .ok_or_else(|| {
                    ZenginError::File(FileError::new(
                        line,
                        "customer_number",
                        format!("the customer {} of this debit is gone", item.customer_id),
                    ))
                })?;
            let reference = format!("zengin:{}:{}", id, item.seq);
            let moved = crate::movements::move_cash(
                txn,
                books,
                who,
                &CashMove {
                    customer: &customer,
                    asset: &asset,
                    amount: Decimal::from(item.amount),
                    direction: Direction::In,
                    reference: Some(&reference),
                    date: today,
                },
            )
            .await?;
            Some((moved.entry.id, today))
        } else {
            None
        };
        store::record_result(txn, tenant_id, id, item.seq, result, entry, now).await?;
        applied += 1;
    }
    store::mark_resulted(txn, tenant_id, id, now).await?;
    let request = store::request(txn, tenant_id, id, false)
        .await?
        .ok_or_else(|| ZenginError::NotFound(format!("no debit request {id}")))?;
    let items = store::items(txn, tenant_id, id).await?;
    Ok(ResultsApplied {
        request_id: id,
        applied,
        unchanged,
        request: view(&request, &items, true),
    })
}

/// The result file the bank would send for request `id` with `results` (one per debit, in
/// order), for demos and tests that play the bank: the request's bytes with each result code
/// and the trailer's figures filled in.
pub async fn simulated_result_file<C: sea_orm::ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    id: Uuid,
    results: &[ResultCode],
) -> Result<Vec<u8>, ZenginError> {
    let r = store::request(db, tenant_id, id, false)
        .await?
        .ok_or_else(|| ZenginError::NotFound(format!("no debit request {id}")))?;
    let mut items = store::items(db, tenant_id, id).await?;
    for (i, code) in items.iter_mut().zip(results) {
        i.result = Some(*code);
    }
    Ok(debit::encode(&file_of(&r, &items, true))?)
}

// ---------------------------------------------------------------------------------------
// Payouts

/// A request to write the bulk transfer file (総合振込) of a date.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequestInput {
    /// The business date whose payouts are transferred (振込指定日).
    pub transfer_date: NaiveDate,
    /// The sender (振込依頼人): the distributor's code at its bank and the account paid from;
    /// the same fields as a direct debit's collector.
    pub sender: CollectorInput,
}

/// The bulk transfer file of `input.transfer_date`: one data record per payout of the
/// tenant's customers' cash booked that date (`withdrawal` entries from a customer's cash to
/// the omnibus), to the customer's bank account. Written from the books each time, so it is
/// the same bytes for the same payouts; nothing is stored. A payout whose customer has no bank
/// account refuses the file (409, naming the customers), as does a date without payouts (422).
pub async fn transfer_file<C: sea_orm::ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    input: &TransferRequestInput,
) -> Result<Vec<u8>, ZenginError> {
    let sender = check_collector(&input.sender).map_err(|e| {
        Invalid::new(
            &e.field.replacen("collector/", "sender/", 1),
            e.message.clone(),
        )
    })?;
    let date = input.transfer_date;
    let payouts = store::payouts_on(db, tenant_id, date, CURRENCY).await?;
    if payouts.is_empty() {
        return Err(Invalid::new("transfer_date", format!("no payouts on {date}")).into());
    }
    let customers: Vec<Uuid> = payouts.iter().map(|p| p.customer_id).collect();
    let accounts = store::bank_accounts(db, tenant_id, &customers).await?;
    let mut transfers = Vec::with_capacity(payouts.len());
    let mut missing = Vec::new();
    for p in &payouts {
        match accounts.get(&p.customer_id) {
            Some(a) => transfers.push(transfer::Transfer {
                account: a.account(),
                payee_name: a.holder_name.clone(),
                amount: u64::try_from(p.amount).unwrap_or(0),
            }),
            None => missing.push(p.customer_id.to_string()),
        }
    }
    if !missing.is_empty() {
        missing.dedup();
        return Err(ZenginError::Conflict(format!(
            "customers without a bank account have payouts on {date}: {}",
            missing.join(", ")
        )));
    }
    Ok(transfer::encode(
        &sender,
        date.month(),
        date.day(),
        &transfers,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(holder: &str) -> BankAccountInput {
        BankAccountInput {
            bank_code: "0005".into(),
            branch_code: "001".into(),
            account_type: 1,
            account_number: "1234567".into(),
            holder_name: holder.into(),
        }
    }

    #[test]
    fn a_bank_account_is_checked_and_made_half_width() {
        let a = check_bank_account(Uuid::nil(), &input("ヤマダ　タロウ"), Utc::now()).unwrap();
        assert_eq!(a.holder_name, "ﾔﾏﾀﾞ ﾀﾛｳ");
        let field = |i: BankAccountInput| {
            check_bank_account(Uuid::nil(), &i, Utc::now())
                .unwrap_err()
                .field
        };
        assert_eq!(field(input("山田太郎")), "holder_name");
        assert_eq!(field(input("")), "holder_name");
        assert_eq!(field(input(&"ア".repeat(31))), "holder_name");
        assert_eq!(
            field(BankAccountInput {
                bank_code: "05".into(),
                ..input("ｱ")
            }),
            "bank_code"
        );
        assert_eq!(
            field(BankAccountInput {
                account_type: 4,
                ..input("ｱ")
            }),
            "account_type"
        );
        assert_eq!(
            field(BankAccountInput {
                account_number: "123456a".into(),
                ..input("ｱ")
            }),
            "account_number"
        );
    }
}
