//! Tests of `/v1/instruments` and `/v1/prices`: the platform's market data.
