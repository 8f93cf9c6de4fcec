//! Tests of `/v1/strategies`: managers' strategies and their model versions.
