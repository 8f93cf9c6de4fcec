//! Tests of `/v1/agreements`: distributor × manager × strategy, their terms, and platform fees.
