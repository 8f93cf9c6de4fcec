//! Rows of the Zengin files (migration `m20261208_000026_zengin`): `customer_bank_accounts`,
//! `debit_requests`, `debit_items`. The only writer of these tables. Every statement names the
//! distributor (`tenant_id`); the one row lock ([`request`] with `for_update`) is taken after
//! the tenant's book, by the platform's lock order (ledger/src/store/work.rs).

use chrono::{DateTime, NaiveDate, Utc};
use ledger::LedgerError;
use ledger::sql::typed::{exec, from_micros, get, micros, query};
use ledger::sql::{IN_CHUNK, INSERT_ROWS, Params};
use sea_orm::{ConnectionTrait, QueryResult, Value};
use uuid::Uuid;

use super::debit::{BankAccount, Collector, ResultCode};

/// A customer's account for direct debit, as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct CustomerBankAccount {
    pub customer_id: Uuid,
    /// 4 digits (金融機関コード).
    pub bank_code: String,
    /// 3 digits (支店コード).
    pub branch_code: String,
    /// 預金種目: 1 普通 (ordinary), 2 当座 (current), 3 納税準備 (tax reserve), 9 other.
    pub account_type: u8,
    /// 7 digits.
    pub account_number: String,
    /// 預金者名 in half-width katakana, as the files write it.
    pub holder_name: String,
    pub updated_at: DateTime<Utc>,
}

impl CustomerBankAccount {
    pub fn account(&self) -> BankAccount {
        BankAccount {
            bank_code: self.bank_code.clone(),
            branch_code: self.branch_code.clone(),
            account_type: self.account_type,
            account_number: self.account_number.clone(),
        }
    }
}

fn account_type(row: &QueryResult, idx: usize) -> Result<u8, LedgerError> {
    let t: i32 = get(row, idx)?;
    u8::try_from(t).map_err(|_| LedgerError::Corrupt(format!("account type {t}")))
}

/// Inserts or replaces the bank account of a customer (the caller holds the customer's lock).
pub async fn upsert_bank_account<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    a: &CustomerBankAccount,
) -> Result<(), LedgerError> {
    let mut pa = Params::new(db.get_database_backend());
    let row = pa.row(vec![
        tenant_id.into(),
        a.customer_id.into(),
        a.bank_code.clone().into(),
        a.branch_code.clone().into(),
        i32::from(a.account_type).into(),
        a.account_number.clone().into(),
        a.holder_name.clone().into(),
        micros(a.updated_at).into(),
    ]);
    let q = format!(
        "INSERT INTO customer_bank_accounts (tenant_id, customer_id, bank_code, branch_code, \
         account_type, account_number, holder_name, updated_at) VALUES {row} \
         ON CONFLICT (tenant_id, customer_id) DO UPDATE SET bank_code = excluded.bank_code, \
         branch_code = excluded.branch_code, account_type = excluded.account_type, \
         account_number = excluded.account_number, holder_name = excluded.holder_name, \
         updated_at = excluded.updated_at"
    );
    exec(db, q, pa.values).await?;
    Ok(())
}

/// The bank account of customer `customer_id` of `tenant_id`, if one is set.
pub async fn bank_account<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    customer_id: Uuid,
) -> Result<Option<CustomerBankAccount>, LedgerError> {
    Ok(bank_accounts(db, tenant_id, &[customer_id])
        .await?
        .remove(&customer_id))
}

/// The bank accounts of `customers` that have one, by customer, read [`IN_CHUNK`] at a time.
pub async fn bank_accounts<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    customers: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, CustomerBankAccount>, LedgerError> {
    let mut found = std::collections::HashMap::new();
    for chunk in customers.chunks(IN_CHUNK) {
        let mut pa = Params::new(db.get_database_backend());
        let t = pa.push(tenant_id);
        let list = pa.list(chunk);
        let q = format!(
            "SELECT customer_id, bank_code, branch_code, account_type, account_number, \
             holder_name, updated_at FROM customer_bank_accounts \
             WHERE tenant_id = {t} AND customer_id IN {list}"
        );
        for r in query(db, q, pa.values).await? {
            let account = CustomerBankAccount {
                customer_id: get(&r, 0)?,
                bank_code: get(&r, 1)?,
                branch_code: get(&r, 2)?,
                account_type: account_type(&r, 3)?,
                account_number: get(&r, 4)?,
                holder_name: get(&r, 5)?,
                updated_at: from_micros(get(&r, 6)?)?,
            };
            found.insert(account.customer_id, account);
        }
    }
    Ok(found)
}

/// A contribution plan due on a date, with its wrap and its customer's bank account.
#[derive(Debug, Clone)]
pub struct DuePlan {
    pub plan_id: Uuid,
    pub wrap_id: Uuid,
    pub customer_id: Uuid,
    /// Minor units of `currency`.
    pub amount: i64,
    pub currency: String,
    pub scale: u32,
    pub wrap_status: String,
    pub frequency: String,
    pub start_date: NaiveDate,
    pub bank: Option<(BankAccount, String)>,
}

/// The tenant's contribution plans due on `date` by the plans step's rule
/// ([`crate::eod::plans::due_condition`] and [`crate::eod::plans::month_is_due`]).
pub async fn due_contribution_plans<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    date: NaiveDate,
) -> Result<Vec<DuePlan>, LedgerError> {
    let mut pa = Params::new(db.get_database_backend());
    let t = pa.push(tenant_id);
    let due = crate::eod::plans::due_condition(&mut pa, date);
    let q = format!(
        "SELECT p.id, p.wrap_id, w.customer_id, p.amount, w.currency, w.currency_scale, w.status, \
         p.frequency, p.start_date, b.bank_code, b.branch_code, b.account_type, \
         b.account_number, b.holder_name \
         FROM wrap_plans p JOIN wraps w ON w.tenant_id = p.tenant_id AND w.id = p.wrap_id \
         LEFT JOIN customer_bank_accounts b ON b.tenant_id = w.tenant_id \
             AND b.customer_id = w.customer_id \
         WHERE p.tenant_id = {t} AND p.kind = 'contribution' AND {due} \
         ORDER BY w.customer_id, p.id"
    );
    let mut out = Vec::new();
    for r in query(db, q, pa.values).await? {
        let frequency: String = get(&r, 7)?;
        let start_date: NaiveDate = get(&r, 8)?;
        if !crate::eod::plans::month_is_due(&frequency, start_date, date) {
            continue;
        }
        let bank_code: Option<String> = get(&r, 9)?;
        let bank = match bank_code {
            Some(bank_code) => Some((
                BankAccount {
                    bank_code,
                    branch_code: get(&r, 10)?,
                    account_type: account_type(&r, 11)?,
                    account_number: get(&r, 12)?,
                },
                get::<String>(&r, 13)?,
            )),
            None => None,
        };
        out.push(DuePlan {
            plan_id: get(&r, 0)?,
            wrap_id: get(&r, 1)?,
            customer_id: get(&r, 2)?,
            amount: get::<Option<i64>>(&r, 3)?.unwrap_or(0),
            currency: get(&r, 4)?,
            scale: u32::try_from(get::<i32>(&r, 5)?).unwrap_or(0),
            wrap_status: get(&r, 6)?,
            frequency,
            start_date,
            bank,
        });
    }
    Ok(out)
}

/// The account each of `plans` was last debited from (for the 新規コード).
pub async fn last_accounts<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    plans: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, BankAccount>, LedgerError> {
    let mut out = std::collections::HashMap::new();
    for chunk in plans.chunks(IN_CHUNK) {
        let mut pa = Params::new(db.get_database_backend());
        let t = pa.push(tenant_id);
        let list = pa.list(chunk);
        let q = format!(
            "SELECT plan_id, bank_code, branch_code, account_type, account_number \
             FROM debit_items WHERE tenant_id = {t} AND plan_id IN {list} \
             ORDER BY collection_date"
        );
        // Later dates overwrite earlier ones: the last account wins.
        for r in query(db, q, pa.values).await? {
            out.insert(
                get::<Uuid>(&r, 0)?,
                BankAccount {
                    bank_code: get(&r, 1)?,
                    branch_code: get(&r, 2)?,
                    account_type: account_type(&r, 3)?,
                    account_number: get(&r, 4)?,
                },
            );
        }
    }
    Ok(out)
}

/// A request as stored.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: Uuid,
    pub collection_date: NaiveDate,
    pub collector: Collector,
    pub records: i32,
    pub total_amount: i64,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub resulted_at: Option<DateTime<Utc>>,
}

/// One data record of a request, as stored.
#[derive(Debug, Clone)]
pub struct Item {
    pub request_id: Uuid,
    pub seq: i32,
    pub collection_date: NaiveDate,
    pub plan_id: Uuid,
    pub wrap_id: Uuid,
    pub customer_id: Uuid,
    /// Yen.
    pub amount: i64,
    pub account: BankAccount,
    pub holder_name: String,
    pub new_code: u8,
    pub result: Option<ResultCode>,
    pub entry_id: Option<Uuid>,
    pub settled_date: Option<NaiveDate>,
}

/// Writes a request and its items.
pub async fn insert_request<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    r: &Request,
    items: &[Item],
) -> Result<(), LedgerError> {
    let c = &r.collector;
    let mut pa = Params::new(db.get_database_backend());
    let row = pa.row(vec![
        tenant_id.into(),
        r.id.into(),
        r.collection_date.into(),
        c.code.clone().into(),
        c.name.clone().into(),
        c.account.bank_code.clone().into(),
        c.bank_name.clone().into(),
        c.account.branch_code.clone().into(),
        c.branch_name.clone().into(),
        i32::from(c.account.account_type).into(),
        c.account.account_number.clone().into(),
        r.records.into(),
        r.total_amount.into(),
        r.created_by.clone().into(),
        micros(r.created_at).into(),
    ]);
    let q = format!(
        "INSERT INTO debit_requests (tenant_id, id, collection_date, collector_code, \
         collector_name, bank_code, bank_name, branch_code, branch_name, account_type, \
         account_number, records, total_amount, created_by, created_at) VALUES {row}"
    );
    exec(db, q, pa.values).await?;
    for chunk in items.chunks(INSERT_ROWS) {
        let mut pa = Params::new(db.get_database_backend());
        let rows: Vec<String> = chunk
            .iter()
            .map(|i| {
                pa.row(vec![
                    tenant_id.into(),
                    i.request_id.into(),
                    i.seq.into(),
                    i.collection_date.into(),
                    i.plan_id.into(),
                    i.wrap_id.into(),
                    i.customer_id.into(),
                    i.amount.into(),
                    i.account.bank_code.clone().into(),
                    i.account.branch_code.clone().into(),
                    i32::from(i.account.account_type).into(),
                    i.account.account_number.clone().into(),
                    i.holder_name.clone().into(),
                    i32::from(i.new_code).into(),
                ])
            })
            .collect();
        let q = format!(
            "INSERT INTO debit_items (tenant_id, request_id, seq, collection_date, plan_id, \
             wrap_id, customer_id, amount, bank_code, branch_code, account_type, \
             account_number, holder_name, new_code) VALUES {}",
            rows.join(", ")
        );
        exec(db, q, pa.values).await?;
    }
    Ok(())
}

const REQUEST_COLS: &str = "id, collection_date, collector_code, collector_name, bank_code, \
     bank_name, branch_code, branch_name, account_type, account_number, records, total_amount, \
     created_by, created_at, resulted_at";

fn request_from_row(r: &QueryResult) -> Result<Request, LedgerError> {
    Ok(Request {
        id: get(r, 0)?,
        collection_date: get(r, 1)?,
        collector: Collector {
            code: get(r, 2)?,
            name: get(r, 3)?,
            bank_name: get(r, 5)?,
            branch_name: get(r, 7)?,
            account: BankAccount {
                bank_code: get(r, 4)?,
                branch_code: get(r, 6)?,
                account_type: account_type(r, 8)?,
                account_number: get(r, 9)?,
            },
        },
        records: get(r, 10)?,
        total_amount: get(r, 11)?,
        created_by: get(r, 12)?,
        created_at: from_micros(get(r, 13)?)?,
        resulted_at: get::<Option<i64>>(r, 14)?.map(from_micros).transpose()?,
    })
}

/// Request `id` of `tenant_id`; with `for_update` its row is locked (PostgreSQL): the caller
/// has locked the tenant's book first.
pub async fn request<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    id: Uuid,
    for_update: bool,
) -> Result<Option<Request>, LedgerError> {
    let b = db.get_database_backend();
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT {REQUEST_COLS} FROM debit_requests WHERE tenant_id = {} AND id = {}{}",
        pa.push(tenant_id),
        pa.push(id),
        if for_update {
            ledger::sql::for_update(b)
        } else {
            ""
        }
    );
    let rows = query(db, q, pa.values).await?;
    rows.first().map(request_from_row).transpose()
}

/// The tenant's request for `date`, if there is one.
pub async fn request_on<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    date: NaiveDate,
) -> Result<Option<Request>, LedgerError> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "SELECT {REQUEST_COLS} FROM debit_requests WHERE tenant_id = {} AND collection_date = {}",
        pa.push(tenant_id),
        pa.push(date)
    );
    let rows = query(db, q, pa.values).await?;
    rows.first().map(request_from_row).transpose()
}

/// The tenant's requests, newest collection date first, at most `limit`.
pub async fn requests<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    limit: u64,
) -> Result<Vec<Request>, LedgerError> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "SELECT {REQUEST_COLS} FROM debit_requests WHERE tenant_id = {} \
         ORDER BY collection_date DESC LIMIT {}",
        pa.push(tenant_id),
        limit.clamp(1, 500)
    );
    query(db, q, pa.values)
        .await?
        .iter()
        .map(request_from_row)
        .collect()
}

const ITEM_COLS: &str = "request_id, seq, collection_date, plan_id, wrap_id, customer_id, amount, \
     bank_code, branch_code, account_type, account_number, holder_name, new_code, result, \
     entry_id, settled_date";

fn item_from_row(r: &QueryResult) -> Result<Item, LedgerError> {
    let result: Option<String> = get(r, 13)?;
    Ok(Item {
        request_id: get(r, 0)?,
        seq: get(r, 1)?,
        collection_date: get(r, 2)?,
        plan_id: get(r, 3)?,
        wrap_id: get(r, 4)?,
        customer_id: get(r, 5)?,
        amount: get(r, 6)?,
        account: BankAccount {
            bank_code: get(r, 7)?,
            branch_code: get(r, 8)?,
            account_type: account_type(r, 9)?,
            account_number: get(r, 10)?,
        },
        holder_name: get(r, 11)?,
        new_code: u8::try_from(get::<i32>(r, 12)?).unwrap_or(0),
        result: result
            .map(|s| {
                ResultCode::parse(&s)
                    .ok_or_else(|| LedgerError::Corrupt(format!("debit result {s:?}")))
            })
            .transpose()?,
        entry_id: get(r, 14)?,
        settled_date: get(r, 15)?,
    })
}

/// The items of request `request_id`, in file order.
pub async fn items<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    request_id: Uuid,
) -> Result<Vec<Item>, LedgerError> {
    Ok(items_of(db, tenant_id, &[request_id])
        .await?
        .remove(&request_id)
        .unwrap_or_default())
}

/// The debits of each of `requests`, in `seq` order, by request, read [`IN_CHUNK`] requests
/// at a time.
pub async fn items_of<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    requests: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, Vec<Item>>, LedgerError> {
    let mut by_request: std::collections::HashMap<Uuid, Vec<Item>> =
        std::collections::HashMap::new();
    for chunk in requests.chunks(IN_CHUNK) {
        let mut pa = Params::new(db.get_database_backend());
        let t = pa.push(tenant_id);
        let list = pa.list(chunk);
        let q = format!(
            "SELECT {ITEM_COLS} FROM debit_items WHERE tenant_id = {t} AND request_id IN {list} \
             ORDER BY request_id, seq"
        );
        for r in query(db, q, pa.values).await? {
            let item = item_from_row(&r)?;
            by_request.entry(item.request_id).or_default().push(item);
        }
    }
    Ok(by_request)
}

/// The debits of plan `plan_id`, newest collection date first, at most 500.
pub async fn plan_items<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    plan_id: Uuid,
) -> Result<Vec<Item>, LedgerError> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "SELECT {ITEM_COLS} FROM debit_items WHERE tenant_id = {} AND plan_id = {} \
         ORDER BY collection_date DESC LIMIT 500",
        pa.push(tenant_id),
        pa.push(plan_id)
    );
    query(db, q, pa.values)
        .await?
        .iter()
        .map(item_from_row)
        .collect()
}

/// Records the result of item `seq` (and the deposit's entry and date, when collected).
pub async fn record_result<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    request_id: Uuid,
    seq: i32,
    result: ResultCode,
    entry: Option<(Uuid, NaiveDate)>,
    now: DateTime<Utc>,
) -> Result<(), LedgerError> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "UPDATE debit_items SET result = {}, entry_id = {}, settled_date = {}, resulted_at = {} \
         WHERE tenant_id = {} AND request_id = {} AND seq = {} AND result IS NULL",
        pa.push(result.as_str()),
        pa.push(Value::from(entry.map(|e| e.0))),
        pa.push(Value::from(entry.map(|e| e.1))),
        pa.push(micros(now)),
        pa.push(tenant_id),
        pa.push(request_id),
        pa.push(seq)
    );
    let n = exec(db, q, pa.values).await?;
    if n != 1 {
        return Err(LedgerError::Corrupt(format!(
            "debit {request_id}/{seq} had a result already"
        )));
    }
    Ok(())
}

/// Marks request `id` as having results (the first time).
pub async fn mark_resulted<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), LedgerError> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "UPDATE debit_requests SET resulted_at = {} \
         WHERE tenant_id = {} AND id = {} AND resulted_at IS NULL",
        pa.push(micros(now)),
        pa.push(tenant_id),
        pa.push(id)
    );
    exec(db, q, pa.values).await?;
    Ok(())
}

/// One payout of a date: a customer's cash paid out to the bank (a `withdrawal` entry that
/// debits the customer's cash and credits the omnibus: `movements::move_cash`).
#[derive(Debug, Clone)]
pub struct Payout {
    pub entry_id: Uuid,
    pub customer_id: Uuid,
    /// Minor units of `currency` (yen).
    pub amount: i64,
}

/// The tenant's payouts in `currency` booked on `date`, in booking order. Read from the books:
/// the ledger's tables are read here, never written.
pub async fn payouts_on<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    date: NaiveDate,
    currency: &str,
) -> Result<Vec<Payout>, LedgerError> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "SELECT e.id, a.code, p.amount FROM ledger_entries e \
         JOIN ledger_postings p ON p.tenant_id = e.tenant_id AND p.entry_id = e.id \
         JOIN ledger_accounts a ON a.tenant_id = p.tenant_id AND a.id = p.account_id \
         WHERE e.tenant_id = {} AND e.kind = 'withdrawal' AND e.effective_date = {} \
         AND p.side = 'debit' AND p.asset_code = {} AND a.code LIKE 'customer:%' \
         ORDER BY e.seq",
        pa.push(tenant_id),
        pa.push(date),
        pa.push(currency)
    );
    let mut out = Vec::new();
    for r in query(db, q, pa.values).await? {
        let code: String = get(&r, 1)?;
        // customer:{id}:cash:{CCY}
        let customer_id = code
            .split(':')
            .nth(1)
            .and_then(|id| id.parse::<Uuid>().ok())
            .ok_or_else(|| LedgerError::Corrupt(format!("customer account code {code:?}")))?;
        out.push(Payout {
            entry_id: get(&r, 0)?,
            customer_id,
            amount: get(&r, 2)?,
        });
    }
    Ok(out)
}
