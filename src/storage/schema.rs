//! The layout of the node's two databases: their tables, the keys of their meta tables, how
//! values are encoded, and the one way redb is called from async code.
//!
//! The log database (`aspen.redb`) holds the `log` table and, in `meta`, the layout version, the
//! node id, the vote, the committed and the last purged ids. The state database (`state.redb`)
//! holds the `kv` table and, in `meta`, the layout version, the node id, the last applied id and
//! the membership. The current snapshot is a file of its own (`snapshot`).

use std::marker::PhantomData;

use redb::{ReadableTable, Table, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StorageError;
use crate::raft::{LogId, StoredMembership, Vote};

/// Raft log entries by index, each the postcard encoding of an `Entry` (log database).
pub(crate) const LOG_TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("log");

/// Small named records (the `META_*` keys), each postcard-encoded (both databases).
pub(crate) const META_TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// The replicated key-value data (state database).
pub(crate) const KV_TABLE: TableDefinition<&str, &str> = TableDefinition::new("kv");

/// Layout 1 only: the current snapshot, its record under `SNAPSHOT_RECORD`, its bytes under
/// `SNAPSHOT_DATA`. Snapshots now live in a file of their own (`snapshot`).
pub(crate) const SNAPSHOT_TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshot");

/// The layout version stamped at creation in both databases. A database written by a later
/// layout is refused rather than misread. Layout 1 kept everything in one database; opening one
/// moves its state machine into the state database (`store::move_state_out_of_the_log`).
pub(crate) const SCHEMA_VERSION: u32 = 2;

/// A key of a table of postcard records, with the type of its record, so that a record is
/// always read as the type it was written as.
pub(crate) struct RecordKey<T> {
    name: &'static str,
    record: PhantomData<fn() -> T>,
}

impl<T> RecordKey<T> {
    pub(crate) const fn new(name: &'static str) -> Self {
        Self { name, record: PhantomData }
    }
}

/// Meta key (both): the layout version.
pub(crate) const META_SCHEMA_VERSION: RecordKey<u32> = RecordKey::new("schema_version");
/// Meta key (both): the node the database belongs to.
pub(crate) const META_NODE_ID: RecordKey<u64> = RecordKey::new("node_id");
/// Meta key (log): the last saved vote.
pub(crate) const META_VOTE: RecordKey<Vote> = RecordKey::new("vote");
/// Meta key (log): the last saved committed log id (openraft may save `None`).
pub(crate) const META_COMMITTED: RecordKey<Option<LogId>> = RecordKey::new("committed");
/// Meta key (log): the last purged log id.
pub(crate) const META_LAST_PURGED: RecordKey<LogId> = RecordKey::new("last_purged");
/// Meta key (state): the last log id applied to the state machine.
pub(crate) const META_LAST_APPLIED: RecordKey<LogId> = RecordKey::new("last_applied");
/// Meta key (state): the last applied membership.
pub(crate) const META_MEMBERSHIP: RecordKey<StoredMembership> = RecordKey::new("membership");
/// Meta key, layout 1 only: how many snapshots the node had built or installed (now in the
/// snapshot file's record).
pub(crate) const META_SNAPSHOT_COUNTER: RecordKey<u64> = RecordKey::new("snapshot_counter");

/// Snapshot table key, layout 1 only: the snapshot's record, `{id, meta}`.
pub(crate) const SNAPSHOT_RECORD: &str = "record";
/// Snapshot table key, layout 1 only: the snapshot bytes.
pub(crate) const SNAPSHOT_DATA: &str = "data";

/// postcard, as everywhere else in Aspen: compact, and openraft's types round-trip through it.
pub(crate) fn encode<T: Serialize + ?Sized>(
    value: &T,
    what: &str,
) -> Result<Vec<u8>, StorageError> {
    postcard::to_stdvec(value)
        .map_err(|error| StorageError::Io { reason: format!("encoding {what}: {error}") })
}

/// Decodes bytes written by [`encode`]; anything else is corruption.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, StorageError> {
    postcard::from_bytes(bytes).map_err(|error| StorageError::corrupt(what, error))
}

/// Reads and decodes one record; `None` when it was never written.
pub(crate) fn get_record<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &RecordKey<T>,
) -> Result<Option<T>, StorageError> {
    match table.get(key.name)? {
        Some(guard) => decode(guard.value(), key.name).map(Some),
        None => Ok(None),
    }
}

/// Encodes and writes one record.
pub(crate) fn put_record<T: Serialize>(
    table: &mut Table<'_, &'static str, &'static [u8]>,
    key: &RecordKey<T>,
    value: &T,
) -> Result<(), StorageError> {
    table.insert(key.name, encode(value, key.name)?.as_slice())?;
    Ok(())
}

/// Removes one record, if present.
pub(crate) fn remove_record<T>(
    table: &mut Table<'_, &'static str, &'static [u8]>,
    key: &RecordKey<T>,
) -> Result<(), StorageError> {
    table.remove(key.name)?;
    Ok(())
}

/// Runs a blocking redb call on tokio's blocking pool: a durable commit waits for an fsync, and
/// an async executor thread must never wait for a disk. A panic inside (a broken invariant) is
/// resumed here, so it stops the caller as loudly as if it had happened in place.
pub(crate) async fn run_blocking<T, F>(work: F) -> Result<T, StorageError>
where
    F: FnOnce() -> Result<T, StorageError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => Err(StorageError::Io { reason: format!("storage task cancelled: {error}") }),
    }
}
