//! [`StateReader`]: local reads of the applied state for the data path.

use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::StorageError;
use super::schema::KV_TABLE;
use super::state_machine::read_applied_state;
use super::store::Db;
use crate::limits::SCAN_LIMIT_MAX;
use crate::raft::{LogId, StoredMembership};

/// Reads the node's applied key-value state; cheap to clone.
///
/// These are local reads of whatever this node has applied: linearizability is the caller's
/// job (a ReadIndex round on the leader before the read). Every read runs in one redb read
/// transaction, so it sees one consistent state; redb's readers never wait for its writer.
///
/// A point read ([`StateReader::get`]) runs right on the caller's async thread: it walks a few
/// B-tree pages, which are almost always in redb's cache or the OS page cache, in a few
/// microseconds, where a hop to the blocking pool and back costs two thread wake-ups (tens of
/// microseconds each on the benchmark VM; reads went from about 20,000 to 30,000/s, see
/// bench/README.md). The price: a page that must come from the disk holds that async thread
/// for one disk read. Scans and digests, which may read many pages, stay on the blocking pool.
#[derive(Clone)]
pub struct StateReader {
    db: Arc<Db>,
}

impl std::fmt::Debug for StateReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateReader").finish_non_exhaustive()
    }
}

/// A summary of the whole key-value state, to compare replicas: two nodes that applied the
/// same writes have equal digests, whatever their log or membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StateDigest {
    /// How many keys the state holds.
    pub key_count: u64,
    /// A 64-bit FNV-1a hash of every key and value, in key order, each prefixed by its length
    /// so that `("ab", "c")` and `("a", "bc")` differ. Not collision-resistant against an
    /// adversary; it detects divergence, it does not authenticate.
    pub hash: u64,
}

impl std::fmt::Display for StateDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} keys, hash {:016x}", self.key_count, self.hash)
    }
}

/// FNV-1a, 64 bits: a few lines, no dependency, stable across builds and platforms.
struct Fnv1a(u64);

impl Fnv1a {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    fn write_field(&mut self, bytes: &[u8]) {
        self.write(&(bytes.len() as u64).to_le_bytes());
        self.write(bytes);
    }
}

impl StateReader {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }

    /// The value of `key`, or `None` when it is absent. Runs on the caller's thread (see
    /// [`StateReader`]); `async` so that callers need not change if that changes.
    pub async fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        let txn = self.db.begin_read()?;
        let kv = txn.open_table(KV_TABLE)?;
        Ok(kv.get(key)?.map(|value| value.value().to_owned()))
    }

    /// Up to `limit` pairs whose key starts with `prefix`, in key order, and whether more
    /// matched. `limit` is clamped to `SCAN_LIMIT_MAX`, which callers validate against first.
    pub async fn scan(
        &self,
        prefix: &str,
        limit: u32,
    ) -> Result<(Vec<(String, String)>, bool), StorageError> {
        let prefix = prefix.to_owned();
        let limit = limit.min(SCAN_LIMIT_MAX) as usize;
        self.db
            .run(move |db| {
                let txn = db.begin_read()?;
                let kv = txn.open_table(KV_TABLE)?;
                let mut entries = Vec::new();
                for item in kv.range::<&str>(prefix.as_str()..)? {
                    let (key, value) = item?;
                    if !key.value().starts_with(prefix.as_str()) {
                        return Ok((entries, false));
                    }
                    if entries.len() == limit {
                        return Ok((entries, true));
                    }
                    entries.push((key.value().to_owned(), value.value().to_owned()));
                }
                Ok((entries, false))
            })
            .await
    }

    /// The id of the last log entry applied to the state machine.
    pub async fn last_applied(&self) -> Result<Option<LogId>, StorageError> {
        self.db.run(|db| read_applied_state(db).map(|(last_applied, _)| last_applied)).await
    }

    /// The last membership applied to the state machine.
    pub async fn membership(&self) -> Result<StoredMembership, StorageError> {
        self.db.run(|db| read_applied_state(db).map(|(_, membership)| membership)).await
    }

    /// The [`StateDigest`] of the whole key-value state, from one read transaction. Reads every
    /// pair: meant for tests and operator checks, not for the request path.
    pub async fn digest(&self) -> Result<StateDigest, StorageError> {
        self.db
            .run(|db| {
                let txn = db.begin_read()?;
                let kv = txn.open_table(KV_TABLE)?;
                let mut hasher = Fnv1a(Fnv1a::OFFSET_BASIS);
                let mut key_count = 0;
                for item in kv.iter()? {
                    let (key, value) = item?;
                    hasher.write_field(key.value().as_bytes());
                    hasher.write_field(value.value().as_bytes());
                    key_count += 1;
                }
                Ok(StateDigest { key_count, hash: hasher.0 })
            })
            .await
    }
}
