//! Tests of `/v1/wraps`: wraps (virtual sub-accounts) and their money movements.
