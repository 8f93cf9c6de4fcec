//! The chart of a distributor's accounts that the wrap business opens itself. The codes and
//! their parsers are in [`ledger::wraps`] (shared with the ledger's reads); what each account
//! is opened with (side, no-negative flag, purpose) is defined here once.

use ledger::wraps::omnibus_code;
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
