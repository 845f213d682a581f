//! Snapshots: the whole `kv` table plus its Raft metadata as one postcard blob, built from a
//! consistent redb read transaction and kept as the current snapshot in a file of its own,
//! `snapshot.bin` in the data dir (in memory without one), so that it survives a restart.
//!
//! The file is not in redb, because storing a blob of many megabytes in the state database
//! held its writer lock through the write and the fsync: every apply (and so every client
//! answer) waited 40 to 260 ms, once per snapshot (bench/README.md). A file is written to a
//! temporary name, fsynced and renamed over the old one, with no lock any apply needs.
//!
//! The file is what makes the log purge safe: openraft purges the log behind a snapshot only
//! once [`SnapshotSlot::keep`] returned, and by then the file is durable. The state database may
//! be older after a crash (its applies are not fsynced); openraft then installs the snapshot
//! again before it applies the rest of the log (`restore_from_snapshot` in openraft's storage
//! helper). Installing a snapshot from the leader writes the file first, then the state.

use std::fs::{File, OpenOptions};
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use super::StorageError;
use super::schema::{
    KV_TABLE, META_LAST_APPLIED, META_MEMBERSHIP, META_TABLE, decode, encode, get_record,
    put_record, remove_record,
};
use crate::limits::{SNAPSHOT_BYTES_MAX, SNAPSHOT_RECORD_BYTES_MAX};
use crate::raft::{LogId, Snapshot, SnapshotMeta, StoredMembership};

/// The file name of the current snapshot inside a node's data dir.
pub const SNAPSHOT_FILE_NAME: &str = "snapshot.bin";

/// The first bytes of a snapshot file, with the version of its layout.
const SNAPSHOT_FILE_MAGIC: &[u8; 8] = b"ASPNSNP1";

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

/// The record of the current snapshot, kept in front of its bytes. openraft 0.10's
/// `SnapshotMeta` has no id, so the id ("{term}-{index}-{counter}") lives here, for logs and
/// for telling snapshots apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SnapshotRecord {
    pub(crate) id: String,
    /// How many snapshots this node had built or installed, this one included.
    pub(crate) counter: u64,
    pub(crate) meta: SnapshotMeta,
}

impl SnapshotRecord {
    fn new(meta: SnapshotMeta, counter: u64) -> Self {
        let (term, index) =
            meta.last_log_id.as_ref().map_or((0, 0), |id| (id.leader_id.term, id.index));
        Self { id: format!("{term}-{index}-{counter}"), counter, meta }
    }
}

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

/// Where the node's current snapshot is kept: `snapshot.bin` in the data dir, or memory.
///
/// Writers (a snapshot built, a snapshot installed) take turns through one mutex, held while
/// the file is written: they are rare, and the order decides which snapshot is current. Readers
/// of the file take it too, so that they never open a file halfway through its rename.
pub(crate) struct SnapshotSlot {
    /// The snapshot file, or `None` in memory.
    path: Option<PathBuf>,
    /// In memory, the current snapshot; with a file, nothing (the mutex only orders writers).
    memory: Mutex<Option<(SnapshotRecord, Vec<u8>)>>,
}

impl SnapshotSlot {
    /// The slot of the data dir `dir`, or an empty one in memory.
    pub(crate) fn new(dir: Option<&Path>) -> Self {
        Self { path: dir.map(|dir| dir.join(SNAPSHOT_FILE_NAME)), memory: Mutex::new(None) }
    }

    fn lock(&self) -> MutexGuard<'_, Option<(SnapshotRecord, Vec<u8>)>> {
        // A panic while writing leaves at worst the temporary file, which the next write
        // replaces: nothing inconsistent behind the lock.
        self.memory.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a snapshot file is there (false in memory).
    pub(crate) fn file_exists(&self) -> bool {
        self.path.as_ref().is_some_and(|path| path.exists())
    }

    /// The current snapshot, as last built or installed.
    pub(crate) fn current(&self) -> Result<Option<Snapshot>, StorageError> {
        let memory = self.lock();
        let current = match &self.path {
            None => memory.clone(),
            Some(path) => read_file(path, true)?,
        };
        Ok(current
            .map(|(record, data)| Snapshot { meta: record.meta, snapshot: Cursor::new(data) }))
    }

    /// The record of the current snapshot, without its bytes, for a writer about to replace
    /// it. A damaged file is logged and counts as none: the writer replaces it, where failing
    /// would keep the node from ever keeping a snapshot again.
    fn current_record(
        &self,
        memory: &Option<(SnapshotRecord, Vec<u8>)>,
    ) -> Result<Option<SnapshotRecord>, StorageError> {
        let Some(path) = &self.path else {
            return Ok(memory.as_ref().map(|(record, _)| record.clone()));
        };
        match read_file(path, false) {
            Ok(current) => Ok(current.map(|(record, _)| record)),
            Err(error @ StorageError::Corrupt { .. }) => {
                tracing::warn!("replacing a damaged snapshot file: {error}");
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Keeps a snapshot made by [`serialize`] as the current one, durably, unless a newer one
    /// was installed since, and returns it.
    pub(crate) fn keep(&self, meta: SnapshotMeta, data: Vec<u8>) -> Result<Snapshot, StorageError> {
        let mut memory = self.lock();
        let current = self.current_record(&memory)?;
        let newer_kept =
            current.as_ref().is_some_and(|current| current.meta.last_log_id > meta.last_log_id);
        // A snapshot installed from the leader while this one was being built is newer: keep it.
        if !newer_kept {
            let record = SnapshotRecord::new(meta.clone(), next_counter(current.as_ref()));
            let id = record.id.clone();
            self.write(&mut memory, record, &data)?;
            tracing::info!(snapshot_id = %id, bytes = data.len(), "built snapshot");
        }
        Ok(Snapshot { meta, snapshot: Cursor::new(data) })
    }

    /// Makes `meta` and `data` the current snapshot, durably, whatever was there; returns its
    /// id.
    pub(crate) fn replace(&self, meta: SnapshotMeta, data: &[u8]) -> Result<String, StorageError> {
        let mut memory = self.lock();
        let current = self.current_record(&memory)?;
        let record = SnapshotRecord::new(meta, next_counter(current.as_ref()));
        let id = record.id.clone();
        self.write(&mut memory, record, data)?;
        Ok(id)
    }

    /// Writes `record` and `data` as the current snapshot: in memory, or to a temporary file
    /// that is fsynced and renamed over the old one, and the rename fsynced with the dir.
    fn write(
        &self,
        memory: &mut Option<(SnapshotRecord, Vec<u8>)>,
        record: SnapshotRecord,
        data: &[u8],
    ) -> Result<(), StorageError> {
        let Some(path) = &self.path else {
            *memory = Some((record, data.to_vec()));
            return Ok(());
        };
        let record_bytes = encode(&record, "snapshot record")?;
        let record_len = u32::try_from(record_bytes.len())
            .ok()
            .filter(|len| u64::from(*len) <= SNAPSHOT_RECORD_BYTES_MAX)
            .ok_or_else(|| StorageError::LimitExceeded {
                reason: format!(
                    "snapshot record is {} bytes, more than SNAPSHOT_RECORD_BYTES_MAX \
                     ({SNAPSHOT_RECORD_BYTES_MAX})",
                    record_bytes.len()
                ),
            })?;
        let temporary = path.with_extension("tmp");
        {
            let mut file = File::create(&temporary)?;
            file.write_all(SNAPSHOT_FILE_MAGIC)?;
            file.write_all(&record_len.to_le_bytes())?;
            file.write_all(&record_bytes)?;
            file.write_all(data)?;
            file.sync_all()?;
        }
        std::fs::rename(&temporary, path)?;
        if let Some(dir) = path.parent() {
            OpenOptions::new().read(true).open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Writes a snapshot of layout 1 as the current one, with the record it had
    /// (`store::move_state_out_of_the_log`).
    pub(crate) fn write_moved(
        &self,
        record: SnapshotRecord,
        data: &[u8],
    ) -> Result<(), StorageError> {
        let mut memory = self.lock();
        self.write(&mut memory, record, data)
    }
}

/// The counter of the next snapshot after `current`.
fn next_counter(current: Option<&SnapshotRecord>) -> u64 {
    current.map_or(0, |current| current.counter) + 1
}

/// Reads a snapshot file: its record, and its bytes when `with_data` (else empty). `None` when
/// there is no file.
fn read_file(
    path: &Path,
    with_data: bool,
) -> Result<Option<(SnapshotRecord, Vec<u8>)>, StorageError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let corrupt = |what: &str| StorageError::Corrupt {
        reason: format!("snapshot file {}: {what}", path.display()),
    };
    let mut header = [0u8; 12];
    file.read_exact(&mut header).map_err(|_| corrupt("shorter than its header"))?;
    if &header[..8] != SNAPSHOT_FILE_MAGIC {
        return Err(corrupt("not a snapshot file of this layout"));
    }
    let record_len = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    if u64::from(record_len) > SNAPSHOT_RECORD_BYTES_MAX {
        return Err(corrupt("record over SNAPSHOT_RECORD_BYTES_MAX"));
    }
    let mut record_bytes = vec![0u8; record_len as usize];
    file.read_exact(&mut record_bytes).map_err(|_| corrupt("record cut short"))?;
    let record: SnapshotRecord = decode(&record_bytes, "snapshot record")?;
    let mut data = Vec::new();
    if with_data {
        // One byte over the limit is enough to refuse it.
        file.take(SNAPSHOT_BYTES_MAX + 1).read_to_end(&mut data)?;
        check_size(data.len())?;
    }
    Ok(Some((record, data)))
}

/// The state machine as of one read transaction: the snapshot's metadata and bytes. Reads
/// only, so it needs no write gate; [`SnapshotSlot::keep`] stores the result.
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

/// A snapshot received from the leader, checked: its bytes decode and match its metadata.
pub(crate) struct CheckedSnapshot {
    pub(crate) meta: SnapshotMeta,
    pub(crate) data: Vec<u8>,
    payload: SnapshotPayload,
}

/// Decodes and checks a received snapshot without storing anything, so that a refused snapshot
/// changes nothing.
pub(crate) fn check(meta: SnapshotMeta, data: Vec<u8>) -> Result<CheckedSnapshot, StorageError> {
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
    Ok(CheckedSnapshot { meta, data, payload })
}

/// Replaces the key-value data, the last applied log id and the membership with the snapshot's,
/// in one transaction. Not fsynced: the caller keeps the snapshot first
/// ([`SnapshotSlot::replace`]), and that restores it after a crash.
pub(crate) fn install(db: &Database, snapshot: CheckedSnapshot) -> Result<(), StorageError> {
    let CheckedSnapshot { meta, payload, .. } = snapshot;
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::None)?;
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
    txn.commit()?;
    tracing::info!(keys = payload.pairs.len(), "installed snapshot");
    Ok(())
}
