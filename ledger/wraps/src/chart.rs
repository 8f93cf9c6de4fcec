//! The chart of a distributor's accounts that the wrap business opens itself. The codes and
//! their parsers are in [`crate::customers`] (shared with the ledger's reads); what each account
//! is opened with (side, no-negative flag, purpose) is defined here once.

use crate::customers::{customer_cash_code, omnibus_code};
use ledger::{NewAccount, Side};
use serde_json::json;
use uuid::Uuid;

/// The distributor's omnibus account of `asset`: debit-normal, what the platform really holds
/// for the distributor's customers.
pub fn omnibus_account(tenant_id: Uuid, asset: &str) -> NewAccount {
    NewAccount {
        tenant_id,
        code: omnibus_code(asset),
        asset: asset.to_owned(),
        normal_side: Side::Debit,
        no_negative: false,
        metadata: json!({ "purpose": "omnibus: held at the bank or custodian for customers" }),
    }
}

/// A customer's cash account in `currency`: credit-normal (owed to the customer) and never
/// negative, opened on first use.
pub fn customer_cash_account(tenant_id: Uuid, customer_id: Uuid, currency: &str) -> NewAccount {
    NewAccount {
        tenant_id,
        code: customer_cash_code(customer_id, currency),
        asset: currency.to_owned(),
        normal_side: Side::Credit,
        no_negative: true,
        metadata: json!({ "customer_id": customer_id, "purpose": "customer cash" }),
    }
}
