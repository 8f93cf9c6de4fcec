//! Opening a tenant: the tenant itself and its standard ledger accounts, in the caller's
//! transaction, so a tenant never exists without its books.
//!
//! Every tenant gets one fee income account in the base currency, where its share of wrap
//! fees is credited: `fee-income:platform`, `fee-income:channel` (a distributor) or
//! `fee-income:manager`. Its id is found with `GET /v1/ledger/accounts`. A distributor also
//! gets its omnibus account in the base currency (`omnibus:JPY`, see [`wraps::customers`]), so
//! two first deposits never race to open it.

use chrono::{DateTime, Utc};
use ledger::{Asset, Ledger, NewAccount, Side};
use sea_orm::DatabaseTransaction;
use serde_json::json;
use tenants::{NewTenant, Tenant, TenantKind};

use crate::problem::Problem;

/// The platform's base currency (yen, no minor unit).
pub const BASE_CURRENCY: &str = "JPY";

/// The code of a tenant's fee income account.
pub fn fee_income_code(kind: TenantKind) -> &'static str {
    match kind {
        TenantKind::Platform => "fee-income:platform",
        TenantKind::Distributor => "fee-income:channel",
        TenantKind::Manager => "fee-income:manager",
    }
}

/// Registers the base currency (idempotent; its own transaction, harmless if what follows
/// fails).
pub async fn ensure_base_currency(ledger: &Ledger) -> Result<(), Problem> {
    ledger
        .create_asset(&Asset::currency(BASE_CURRENCY, 0))
        .await?;
    Ok(())
}

/// Creates the tenant and its fee income account inside `txn` (base currency registered
/// first with [`ensure_base_currency`]).
pub async fn open_tenant(
    txn: &DatabaseTransaction,
    ledger: &Ledger,
    new: &NewTenant,
    now: DateTime<Utc>,
) -> Result<Tenant, Problem> {
    let tenant = tenants::store::create_tenant(txn, new, now).await?;
    ledger
        .create_account_in(
            txn,
            &NewAccount {
                tenant_id: tenant.id,
                code: fee_income_code(tenant.kind).to_owned(),
                asset: BASE_CURRENCY.to_owned(),
                normal_side: Side::Credit,
                no_negative: false,
                metadata: json!({ "purpose": "fee income" }),
            },
        )
        .await?;
    if tenant.kind == TenantKind::Distributor {
        ledger
            .create_account_in(
                txn,
                &crate::money::omnibus_account(tenant.id, BASE_CURRENCY),
            )
            .await?;
    }
    Ok(tenant)
}
