//! Tests of `/v1/ledger/reconciliation`: the virtual layer against the omnibus.
