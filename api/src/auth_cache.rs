//! What a bearer token speaks for, remembered so that a request costs neither an Ed25519
//! check nor a database read when nothing has changed (docs/BENCHMARKS.md, "HTTP": the two
//! were most of a read's cost).
//!
//! Invariants enforced here (tested by `api/tests/http/auth.rs` and
//! `api/tests/http/auth_cache.rs`):
//! * **a token is remembered only after it verified**, and only until its `exp`: a cached
//!   token is used exactly as a freshly verified one would be, and an expired one is checked
//!   again (and refused). Keys are loaded once per process, so no key change can make a
//!   remembered verification stale;
//! * **a suspension or revocation still takes effect at once.** A client's standing
//!   (`tenants::store::Standing`) is remembered only on PostgreSQL, and only while this
//!   process listens on `tenants::store::STANDING_CHANNEL`: the transaction that suspends a
//!   tenant or revokes a client announces it there, and every process forgets every standing
//!   when the announcement arrives (as that transaction commits). The process that made the
//!   change also forgets before it answers ([`AuthCache::forget_standings`]). While the
//!   listener is not connected (starting, or reconnecting after its connection dropped)
//!   nothing is remembered and every request reads its standing, as without the cache;
//! * every announcement, and every (re)connection of the listener, starts a new generation;
//!   a standing is used only in the generation it was read in, and one read while a new
//!   generation began is not kept, so a read that raced a revocation cannot outlive it;
//! * a standing is kept at most [`STANDING_MAX_AGE`] even so: a listener connection that died
//!   without the process noticing (no reset ever arrived) cannot make a revocation wait longer;
//! * both maps are bounded (`auth.cache_entries`); `0` turns the cache off.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use sea_orm::{DatabaseConnection, DbBackend};
use tenants::store::{STANDING_CHANNEL, Standing};
use tenants::{Claims, JwtError, KeySet, Principal, TenantsError};
use uuid::Uuid;

/// The longest a standing is used before it is read again, whatever the listener says.
pub const STANDING_MAX_AGE: Duration = Duration::from_secs(5);

/// How long the standing listener waits before connecting again after a failure.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Verified tokens and client standings of this process.
#[derive(Debug)]
pub struct AuthCache {
    tokens: Option<Cache<String, Claims>>,
    standings: Option<Cache<(Uuid, String), Remembered>>,
    shared: Arc<Shared>,
    listener: Option<tokio::task::AbortHandle>,
}

/// A standing with the generation and the moment it was read in.
type Remembered = (Standing, u64, Instant);

/// What the listener task and the request path share.
#[derive(Debug, Default)]
struct Shared {
    /// True while the listener is connected and listening: standings may be remembered.
    listening: AtomicBool,
    /// Bumped on every announcement (and on every (dis)connection of the listener).
    generation: AtomicU64,
}

impl AuthCache {
    /// A cache of at most `entries` tokens and standings; standings only on PostgreSQL,
    /// where a listener task is started on `db`'s pool (on the current Tokio runtime).
    pub fn new(entries: u64, db: &DatabaseConnection) -> Self {
        let shared = Arc::new(Shared::default());
        if entries == 0 {
            return Self {
                tokens: None,
                standings: None,
                shared,
                listener: None,
            };
        }
        let capacity = usize::try_from(entries).unwrap_or(usize::MAX);
        let postgres = db.get_database_backend() == DbBackend::Postgres;
        let listener =
            postgres.then(|| tokio::spawn(listen(db.clone(), Arc::clone(&shared))).abort_handle());
        Self {
            tokens: Some(Cache::new(capacity)),
            standings: postgres.then(|| Cache::new(capacity)),
            shared,
            listener,
        }
    }

    /// `token`'s claims: remembered if it verified before and has not expired, else
    /// verified by `keys` now (and remembered if it passes).
    pub fn verify(&self, keys: &KeySet, token: &str) -> Result<Claims, JwtError> {
        let Some(tokens) = &self.tokens else {
            return keys.verify(token);
        };
        if let Some(claims) = tokens.get(token) {
            if claims.exp > chrono::Utc::now().timestamp() {
                return Ok(claims);
            }
            tokens.remove(token);
        }
        let claims = keys.verify(token)?;
        tokens.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    /// Whether `principal` may still act ([`tenants::store::principal_is_live`]), from the
    /// remembered standing when one may be trusted.
    pub async fn is_live(
        &self,
        db: &DatabaseConnection,
        principal: &Principal,
    ) -> Result<bool, TenantsError> {
        let Some(standings) = &self.standings else {
            return tenants::store::principal_is_live(db, principal).await;
        };
        let key = (principal.tenant_id, principal.client_id.clone());
        let generation = self.shared.generation.load(Ordering::Acquire);
        let listening = self.shared.listening.load(Ordering::Acquire);
        if listening
            && let Some((standing, read_in, read_at)) = standings.get(&key)
            && read_in == generation
            && read_at.elapsed() < STANDING_MAX_AGE
        {
            return Ok(standing.admits(principal));
        }
        let read_at = Instant::now();
        let Some(standing) =
            tenants::store::standing(db, principal.tenant_id, &principal.client_id).await?
        else {
            return Ok(false);
        };
        let live = standing.admits(principal);
        // Kept only if no announcement arrived (and the listener did not drop) meanwhile.
        if listening
            && self.shared.listening.load(Ordering::Acquire)
            && self.shared.generation.load(Ordering::Acquire) == generation
        {
            standings.insert(key, (standing, generation, read_at));
        }
        Ok(live)
    }

    /// Forgets every standing (this process just suspended a tenant or revoked a client;
    /// the announcement will reach the other processes).
    pub fn forget_standings(&self) {
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(standings) = &self.standings {
            standings.clear();
        }
    }
}

impl Drop for AuthCache {
    fn drop(&mut self) {
        if let Some(listener) = &self.listener {
            listener.abort();
        }
    }
}

/// Listens on [`STANDING_CHANNEL`] for as long as the process runs, reconnecting after a
/// failure (until the pool is closed). Standings are trusted only between a successful
/// `LISTEN` and the next failure, and each only in the generation it was read in.
async fn listen(db: DatabaseConnection, shared: Arc<Shared>) {
    use sea_orm::sqlx::postgres::PgListener;
    let pool = db.get_postgres_connection_pool().clone();
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(sea_orm::sqlx::Error::PoolClosed) => return,
            Err(e) => {
                tracing::warn!(error = %e, "auth cache: standing listener cannot connect; standings read per request");
                tokio::time::sleep(RECONNECT_DELAY).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(STANDING_CHANNEL).await {
            tracing::warn!(error = %e, "auth cache: LISTEN failed; standings read per request");
            tokio::time::sleep(RECONNECT_DELAY).await;
            continue;
        }
        // Anything remembered before this point may have missed an announcement.
        shared.generation.fetch_add(1, Ordering::AcqRel);
        shared.listening.store(true, Ordering::Release);
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => {
                    shared.generation.fetch_add(1, Ordering::AcqRel);
                }
                Err(sea_orm::sqlx::Error::PoolClosed) => {
                    shared.listening.store(false, Ordering::Release);
                    return;
                }
                // The connection dropped: announcements may have been lost.
                Ok(None) | Err(_) => {
                    shared.listening.store(false, Ordering::Release);
                    shared.generation.fetch_add(1, Ordering::AcqRel);
                    tracing::warn!(
                        "auth cache: standing listener lost its connection; reconnecting"
                    );
                    break;
                }
            }
        }
        drop(listener);
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}
