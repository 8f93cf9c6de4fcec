//! Tests of `/v1/customers`: a distributor's customers, their accounts and cash movements.
