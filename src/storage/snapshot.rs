//! Snapshots: the whole `kv` table plus its Raft metadata as one postcard blob, built from a
//! consistent redb read transaction and kept in the `snapshot` table so that it survives a
//! restart.

use std::io::Cursor;

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction,
};
use serde::{Deserialize, Serialize};

use super::StorageError;
use super::schema::{
    KV_TABLE, META_LAST_APPLIED, META_MEMBERSHIP, META_SNAPSHOT_COUNTER, META_TABLE, RecordKey,
    SNAPSHOT_DATA, SNAPSHOT_TABLE, decode, encode, get_record, put_record, remove_record,
};
use crate::limits::SNAPSHOT_BYTES_MAX;
use crate::raft::{LogId, Snapshot, SnapshotMeta, StoredMembership};

/// The version of [`SnapshotPayload`]'s layout; a node refuses a snapshot of another version
/// rather than misreading it.
const SNAPSHOT_FORMAT_VERSION: u32 = 1;

/// What a snapshot's bytes hold. The Raft metadata travels inside the bytes as well as beside
/// them, so that an installing node can check that the two belong together.
#[derive(Serialize, Deserialize)]
struct SnapshotPayload {
    format_version: u32,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    /// Every key-value pair, in key order.
    pairs: Vec<(String, String)>,
}

/// The stored record of the current snapshot. openraft 0.10's `SnapshotMeta` has no id, so the
/// id ("{term}-{index}-{counter}") lives here, for logs and for telling snapshots apart.
#[derive(Serialize, Deserialize)]
struct StoredSnapshotRecord {
    id: String,
    meta: SnapshotMeta,
}

/// Snapshot table key: the [`StoredSnapshotRecord`] of the current snapshot.
const SNAPSHOT_RECORD: RecordKey<StoredSnapshotRecord> = RecordKey::new("record");

/// Refuses snapshot data over `SNAPSHOT_BYTES_MAX`, built or received.
pub(super) fn check_size(bytes: usize) -> Result<(), StorageError> {
    if bytes as u64 > SNAPSHOT_BYTES_MAX {
        return Err(StorageError::LimitExceeded {
            reason: format!(
                "snapshot is {bytes} bytes, more than SNAPSHOT_BYTES_MAX ({SNAPSHOT_BYTES_MAX})"
            ),
        });
    }
    Ok(())
}

/// The state machine as of one read transaction: the snapshot's metadata and bytes. Reads
/// only, so it needs no write gate; [`keep`] stores the result.
pub(crate) fn serialize(db: &Database) -> Result<(SnapshotMeta, Vec<u8>), StorageError> {
    let payload = {
        let txn = db.begin_read()?;
        let meta = txn.open_table(META_TABLE)?;
        let kv = txn.open_table(KV_TABLE)?;
        let mut pairs = Vec::with_capacity(usize::try_from(kv.len()?).unwrap_or(0));
        for item in kv.iter()? {
            let (key, value) = item?;
            pairs.push((key.value().to_owned(), value.value().to_owned()));
        }
        SnapshotPayload {
            format_version: SNAPSHOT_FORMAT_VERSION,
            last_applied: get_record(&meta, &META_LAST_APPLIED)?,
            membership: get_record(&meta, &META_MEMBERSHIP)?.unwrap_or_default(),
            pairs,
        }
    };
    let data = encode(&payload, "snapshot")?;
    check_size(data.len())?;
    let meta =
        SnapshotMeta { last_log_id: payload.last_applied, last_membership: payload.membership };
    Ok((meta, data))
}

/// Stores a snapshot made by [`serialize`] as the current one, unless a newer one was installed
/// since.
pub(crate) fn keep(
    db: &Database,
    meta: SnapshotMeta,
    data: Vec<u8>,
) -> Result<Snapshot, StorageError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    let current: Option<StoredSnapshotRecord> =
        get_record(&txn.open_table(SNAPSHOT_TABLE)?, &SNAPSHOT_RECORD)?;
    // A snapshot installed from the leader while this one was being built is newer: keep it.
    if current.is_none_or(|current| current.meta.last_log_id <= meta.last_log_id) {
        let id = store(&txn, &meta, &data)?;
        tracing::info!(snapshot_id = %id, bytes = data.len(), "built snapshot");
    }
    txn.commit()?;
    Ok(Snapshot { meta, snapshot: Cursor::new(data) })
}

/// Replaces the key-value data, the last applied log id and the membership with the snapshot's,
/// and keeps the snapshot as the current one, all in one transaction.
pub(crate) fn install(
    db: &Database,
    meta: SnapshotMeta,
    data: Vec<u8>,
) -> Result<(), StorageError> {
    check_size(data.len())?;
    let payload: SnapshotPayload = decode(&data, "snapshot")?;
    if payload.format_version != SNAPSHOT_FORMAT_VERSION {
        return Err(StorageError::Corrupt {
            reason: format!(
                "snapshot format version {}, this build reads {SNAPSHOT_FORMAT_VERSION}",
                payload.format_version
            ),
        });
    }
    if payload.last_applied != meta.last_log_id || payload.membership != meta.last_membership {
        return Err(StorageError::Corrupt {
            reason: "snapshot bytes do not match its metadata".into(),
        });
    }
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    {
        let mut kv = txn.open_table(KV_TABLE)?;
        kv.retain(|_, _| false)?;
        for (key, value) in &payload.pairs {
            kv.insert(key.as_str(), value.as_str())?;
        }
        let mut meta_table = txn.open_table(META_TABLE)?;
        match &meta.last_log_id {
            Some(last_log_id) => put_record(&mut meta_table, &META_LAST_APPLIED, last_log_id)?,
            None => remove_record(&mut meta_table, &META_LAST_APPLIED)?,
        }
        put_record(&mut meta_table, &META_MEMBERSHIP, &meta.last_membership)?;
    }
    let id = store(&txn, &meta, &data)?;
    txn.commit()?;
    tracing::info!(snapshot_id = %id, keys = payload.pairs.len(), "installed snapshot");
    Ok(())
}

/// The current snapshot, as last built or installed.
pub(crate) fn current(db: &Database) -> Result<Option<Snapshot>, StorageError> {
    let txn = db.begin_read()?;
    let table = txn.open_table(SNAPSHOT_TABLE)?;
    let Some(record) = get_record(&table, &SNAPSHOT_RECORD)? else {
        return Ok(None);
    };
    let Some(data) = table.get(SNAPSHOT_DATA)? else {
        return Err(StorageError::Corrupt {
            reason: format!("snapshot {} has no data", record.id),
        });
    };
    Ok(Some(Snapshot { meta: record.meta, snapshot: Cursor::new(data.value().to_vec()) }))
}

/// Writes `meta` and `data` as the current snapshot under a new id, which it returns. Callers
/// commit durably: openraft purges the log behind a snapshot it believes stored.
fn store(txn: &WriteTransaction, meta: &SnapshotMeta, data: &[u8]) -> Result<String, StorageError> {
    let mut meta_table = txn.open_table(META_TABLE)?;
    let counter = get_record(&meta_table, &META_SNAPSHOT_COUNTER)?.unwrap_or(0) + 1;
    put_record(&mut meta_table, &META_SNAPSHOT_COUNTER, &counter)?;
    let (term, index) =
        meta.last_log_id.as_ref().map_or((0, 0), |id| (id.leader_id.term, id.index));
    let id = format!("{term}-{index}-{counter}");
    let record = StoredSnapshotRecord { id: id.clone(), meta: meta.clone() };
    let mut table = txn.open_table(SNAPSHOT_TABLE)?;
    put_record(&mut table, &SNAPSHOT_RECORD, &record)?;
    table.insert(SNAPSHOT_DATA, data)?;
    Ok(id)
}
