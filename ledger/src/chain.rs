//! Tamper evidence: each entry's hash covers its content and the previous entry's hash in the
//! same tenant's book, so changing, removing or reordering any stored entry breaks the chain
//! from that point on. [`verify`] recomputes the chain and names the first broken link; tested
//! by `tests/store.rs::tampering_is_detected_at_the_first_broken_link`.
//!
//! Fields are written length-prefixed, so no two different entries hash the same bytes.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::account::Side;
use crate::entry::EntryStatus;

/// The `prev_hash` of a tenant's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A canonical, unambiguous byte encoding fed to SHA-256.
#[derive(Debug, Default)]
pub(crate) struct Canon(Sha256);

impl Canon {
    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.update((b.len() as u64).to_be_bytes());
        self.0.update(b);
        self
    }
    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }
    pub(crate) fn i64(&mut self, v: i64) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    pub(crate) fn uuid(&mut self, id: Uuid) -> &mut Self {
        self.bytes(id.as_bytes())
    }
    pub(crate) fn opt_uuid(&mut self, id: Option<Uuid>) -> &mut Self {
        match id {
            Some(id) => self.uuid(id),
            None => self.bytes(&[]),
        }
    }
    pub(crate) fn opt_i64(&mut self, v: Option<i64>) -> &mut Self {
        match v {
            Some(v) => self.i64(v),
            None => self.bytes(&[]),
        }
    }
    pub(crate) fn date(&mut self, d: NaiveDate) -> &mut Self {
        self.str(&d.format("%Y-%m-%d").to_string())
    }
    pub(crate) fn hex(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// A stored posting as the chain covers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostingRecord {
    /// The account.
    pub account_id: Uuid,
    /// The asset.
    pub asset: String,
    /// Debit or credit.
    pub side: Side,
    /// Minor units.
    pub amount: i64,
}

/// A stored entry exactly as written, with its postings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRecord {
    /// The tenant.
    pub tenant_id: Uuid,
    /// The entry.
    pub id: Uuid,
    /// Position in the tenant's chain, from 1.
    pub seq: i64,
    /// Idempotency key.
    pub idempotency_key: String,
    /// Hash of the request that created it (for idempotent replays).
    pub request_hash: String,
    /// Kind.
    pub kind: String,
    /// Posted or pending.
    pub status: EntryStatus,
    /// Business date.
    pub effective_date: NaiveDate,
    /// Booking time, microseconds since the Unix epoch.
    pub booked_at_us: i64,
    /// Description.
    pub description: String,
    /// Metadata as stored (canonical JSON text).
    pub metadata: String,
    /// Entry reversed by this one.
    pub reverses_entry_id: Option<Uuid>,
    /// Hold posted by this one.
    pub hold_entry_id: Option<Uuid>,
    /// Hold expiry, microseconds since the Unix epoch.
    pub expires_at_us: Option<i64>,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
    /// Postings in order.
    pub postings: Vec<PostingRecord>,
}

impl EntryRecord {
    /// The hash this entry must carry, given its content and `prev_hash`.
    pub fn compute_hash(&self) -> String {
        let mut c = Canon::default();
        c.str(&self.prev_hash)
            .uuid(self.tenant_id)
            .uuid(self.id)
            .i64(self.seq)
            .str(&self.idempotency_key)
            .str(&self.request_hash)
            .str(&self.kind)
            .str(self.status.as_str())
            .date(self.effective_date)
            .i64(self.booked_at_us)
            .str(&self.description)
            .str(&self.metadata)
            .opt_uuid(self.reverses_entry_id)
            .opt_uuid(self.hold_entry_id)
            .opt_i64(self.expires_at_us)
            .i64(self.postings.len() as i64);
        for p in &self.postings {
            c.uuid(p.account_id)
                .str(&p.asset)
                .str(p.side.as_str())
                .i64(p.amount);
        }
        c.hex()
    }
}

/// The outcome of verifying a tenant's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainReport {
    /// Entries checked.
    pub entries_checked: u64,
    /// The first broken link, if any.
    pub first_break: Option<ChainBreak>,
}

/// Where and how the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainBreak {
    /// The sequence number expected at this point.
    pub seq: i64,
    /// The entry found there (if any).
    pub entry_id: Option<Uuid>,
    /// What is wrong.
    pub reason: String,
}

/// Checks `records`, which must be the tenant's entries in `seq` order, and stops at the first
/// broken link, with the number of entries that checked out before it. `expected_start` is the
/// (seq, hash) of the entry before the first record.
pub fn verify<'a>(
    records: impl IntoIterator<Item = &'a EntryRecord>,
    expected_start: (i64, String),
) -> Result<(i64, String, u64), (ChainBreak, u64)> {
    let (mut seq, mut prev) = expected_start;
    let mut checked = 0_u64;
    for r in records {
        seq += 1;
        if r.seq != seq {
            return Err((
                ChainBreak {
                    seq,
                    entry_id: Some(r.id),
                    reason: format!(
                        "expected sequence {seq}, found {} (an entry is missing or moved)",
                        r.seq
                    ),
                },
                checked,
            ));
        }
        if r.prev_hash != prev {
            return Err((
                ChainBreak {
                    seq,
                    entry_id: Some(r.id),
                    reason: "prev_hash does not match the previous entry's hash".to_owned(),
                },
                checked,
            ));
        }
        let computed = r.compute_hash();
        if computed != r.hash {
            return Err((
                ChainBreak {
                    seq,
                    entry_id: Some(r.id),
                    reason: format!(
                        "content does not match its hash (stored {}, computed {computed})",
                        r.hash
                    ),
                },
                checked,
            ));
        }
        prev = computed;
        checked += 1;
    }
    Ok((seq, prev, checked))
}
