//! Rate limits (`[rate_limits]`): per client address and per client on `POST /oauth/token`,
//! whose every try costs an argon2id hash (about 19 MiB and tens of milliseconds of a core), and
//! per client on the API. Each is a token bucket per key ([`governor`], keyed, in memory):
//! `N` per period with a burst of `N`. A refusal is 429 problem+json with `Retry-After` (whole
//! seconds until the bucket lets one through), counted in `/metrics` with the requests of
//! status 429.
//!
//! The buckets live in each `wrapd serve` process: `R` replicas allow up to `R` times the rate
//! (docs/OPERATIONS.md). The per-address limit keys on the TCP peer, or on the first
//! `X-Forwarded-For`/`Forwarded` address when `trust_forwarded_for` says the service runs behind
//! a proxy that sets it (otherwise a caller could pick its own key). A limit of 0 is off.
//! Tried by `api/tests/http/rate_limits.rs`.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::HttpRequest;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::Deserialize;

use crate::problem::Problem;

/// `[rate_limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Token requests per minute from one address (0: no limit).
    pub token_per_minute_per_address: u32,
    /// Token requests per minute for one `client_id` (0: no limit).
    pub token_per_minute_per_client: u32,
    /// Authenticated API requests per second of one client (0: no limit).
    pub api_per_second_per_client: u32,
    /// Key the per-address limit on the proxy's `X-Forwarded-For`/`Forwarded` header.
    pub trust_forwarded_for: bool,
}

/// Keys kept before stale buckets are dropped (a full bucket is the same as none).
const RETAIN_ABOVE: usize = 100_000;

struct Keyed<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    what: &'static str,
    /// Requests this bucket refused, for `rate_limit_refusals_total` (`crate::metrics`).
    refused: AtomicU64,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(n: u32, per: Duration, what: &'static str) -> Option<Self> {
        let n = NonZeroU32::new(n)?;
        let quota = Quota::with_period(per / n.get())?.allow_burst(n);
        Some(Self {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            what,
            refused: AtomicU64::new(0),
        })
    }

    fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn check(&self, key: &K) -> Result<(), Problem> {
        if self.limiter.len() > RETAIN_ABOVE {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(key).map_err(|not_until| {
            self.refused.fetch_add(1, Ordering::Relaxed);
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            // Whole seconds, at least one: a client that waits that long gets through.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            Problem::too_many_requests(self.what, seconds.max(1))
        })
    }
}

/// The service's buckets (one set per process, shared by every worker).
pub struct RateLimits {
    token_by_address: Option<Keyed<IpAddr>>,
    token_by_client: Option<Keyed<String>>,
    api_by_client: Option<Keyed<String>>,
    trust_forwarded_for: bool,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("token_by_address", &self.token_by_address.is_some())
            .field("token_by_client", &self.token_by_client.is_some())
            .field("api_by_client", &self.api_by_client.is_some())
            .field("trust_forwarded_for", &self.trust_forwarded_for)
            .finish()
    }
}

impl RateLimits {
    pub fn new(s: &RateLimitSettings) -> Self {
        let minute = Duration::from_secs(60);
        Self {
            token_by_address: Keyed::new(
                s.token_per_minute_per_address,
                minute,
                "token requests from this address",
            ),
            token_by_client: Keyed::new(
                s.token_per_minute_per_client,
                minute,
                "token requests for this client",
            ),
            api_by_client: Keyed::new(
                s.api_per_second_per_client,
                Duration::from_secs(1),
                "requests of this client",
            ),
            trust_forwarded_for: s.trust_forwarded_for,
        }
    }

    /// The caller's address for the per-address limit (none for an in-process request).
    fn address(&self, req: &HttpRequest) -> Option<IpAddr> {
        let info = req.connection_info();
        let text = if self.trust_forwarded_for {
            info.realip_remote_addr().map(str::to_owned)
        } else {
            info.peer_addr().map(str::to_owned)
        }?;
        // "1.2.3.4", "1.2.3.4:5678", "[::1]:5678" or "::1".
        text.parse::<IpAddr>()
            .ok()
            .or_else(|| text.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
    }

    /// Before a token request is read: its address's bucket.
    pub fn token_address(&self, req: &HttpRequest) -> Result<(), Problem> {
        match (&self.token_by_address, self.address(req)) {
            (Some(k), Some(ip)) => k.check(&ip),
            _ => Ok(()),
        }
    }

    /// Before a token request's secret is hashed: its client's bucket.
    pub fn token_client(&self, client_id: &str) -> Result<(), Problem> {
        match &self.token_by_client {
            Some(k) => k.check(&client_id.to_owned()),
            None => Ok(()),
        }
    }

    /// Requests each bucket has refused since the process started, by its metric label.
    pub fn refusals(&self) -> Vec<(&'static str, u64)> {
        let count = |k: Option<u64>| k.unwrap_or(0);
        vec![
            (
                "token_address",
                count(self.token_by_address.as_ref().map(Keyed::refused)),
            ),
            (
                "token_client",
                count(self.token_by_client.as_ref().map(Keyed::refused)),
            ),
            (
                "api_client",
                count(self.api_by_client.as_ref().map(Keyed::refused)),
            ),
        ]
    }

    /// An authenticated API request of `client_id`.
    pub fn api(&self, client_id: &str) -> Result<(), Problem> {
        match &self.api_by_client {
            Some(k) => k.check(&client_id.to_owned()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_lets_its_burst_through_then_refuses_with_a_wait() {
        let k: Keyed<String> = Keyed::new(3, Duration::from_secs(60), "tries").unwrap();
        let a = "a".to_owned();
        for _ in 0..3 {
            assert!(k.check(&a).is_ok());
        }
        let refused = k.check(&a).unwrap_err();
        assert_eq!(refused.status, 429);
        // One token comes back every 20 s.
        assert!((1..=20).contains(&refused.retry_after.unwrap()));
        // Another key has its own bucket.
        assert!(k.check(&"b".to_owned()).is_ok());
        assert!(Keyed::<String>::new(0, Duration::from_secs(60), "off").is_none());
    }
}
