//! [`RedbStore`]: the node's two open databases (the log, the state machine), and the handles
//! it gives out.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};

use redb::backends::InMemoryBackend;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableError};

use super::log_store::{append_entries, write_meta};
use super::log_writer::LogWriter;
use super::schema::{
    KV_TABLE, LOG_TABLE, META_COMMITTED, META_LAST_APPLIED, META_LAST_PURGED, META_MEMBERSHIP,
    META_NODE_ID, META_SCHEMA_VERSION, META_SNAPSHOT_COUNTER, META_TABLE, RecordKey,
    SCHEMA_VERSION, SNAPSHOT_DATA, SNAPSHOT_RECORD, SNAPSHOT_TABLE, decode, get_record, put_record,
    remove_record, run_blocking,
};
use super::snapshot::{SnapshotRecord, SnapshotSlot};
use super::{RedbLogStore, RedbStateMachine, StateReader, StorageError};
use crate::limits::STATE_DURABLE_AFTER_ENTRIES;
use crate::raft::{LogId, SnapshotMeta};

/// One of a node's two databases (the log, or the state machine) with a count of the blocking
/// calls in flight on it.
///
/// A blocking call cannot be cancelled: when a Raft instance is shut down (or its actor killed)
/// a commit it started still finishes on the blocking pool. A new instance on the same database
/// must not read its starting state before that commit lands, or it would apply entries twice;
/// [`RedbStore::wait_idle`] waits for such calls.
pub(crate) struct Db {
    database: Database,
    in_flight: AtomicUsize,
    /// Held by whoever has a redb write transaction open (see [`Db::write_gate`]).
    write_gate: Mutex<()>,
    /// The log database's writer, which runs every change to the Raft log in order (see
    /// [`LogWriter`]); `None` on the state database.
    log_writer: Option<LogWriter>,
    /// The state database's entries applied since its last durable commit (see
    /// [`Db::count_applied`]); unused on the log database.
    applied_since_durable: AtomicU64,
    /// Declared after `database`, so dropped after it: says "released" only once redb has
    /// closed the file and let go of its lock (see [`DatabaseReleaseWatch`]).
    released: ReleasedOnDrop,
}

/// Sets its flag when dropped.
struct ReleasedOnDrop(Arc<AtomicBool>);

impl Drop for ReleasedOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

impl std::ops::Deref for Db {
    type Target = Database;

    fn deref(&self) -> &Database {
        &self.database
    }
}

impl Drop for Db {
    /// A database closed cleanly keeps the last committed id openraft gave it, also when no
    /// append followed to write it (see `LogWriter::save_committed`).
    fn drop(&mut self) {
        let unsaved = self.log_writer.as_ref().and_then(LogWriter::unsaved_committed);
        if let Some(committed) = unsaved {
            let saved =
                write_meta(&self.database, &META_COMMITTED, &committed, Durability::Immediate);
            if let Err(error) = saved {
                tracing::warn!("the committed log id was not saved at close: {error}");
            }
        }
    }
}

/// Counts one blocking call (or one queued log write) for as long as it lives.
pub(super) struct InFlight(Arc<Db>);

impl InFlight {
    pub(super) fn new(db: &Arc<Db>) -> Self {
        db.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(db.clone())
    }

    pub(super) fn database(&self) -> &Database {
        &self.0.database
    }

    pub(super) fn db(&self) -> &Db {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Db {
    fn new(database: Database, log_writer: Option<LogWriter>) -> Arc<Db> {
        Arc::new(Db {
            database,
            in_flight: AtomicUsize::new(0),
            write_gate: Mutex::new(()),
            log_writer,
            applied_since_durable: AtomicU64::new(0),
            released: ReleasedOnDrop(Arc::new(AtomicBool::new(false))),
        })
    }

    /// The log writer of the log database.
    ///
    /// # Panics
    /// On the state database, which has none: only the log store asks, and it is only ever
    /// given the log database.
    pub(super) fn log_writer(&self) -> &LogWriter {
        self.log_writer.as_ref().expect("only the log database is asked for its log writer")
    }

    /// Counts `entries` applied to the state database and says whether this batch should
    /// commit durably: once `STATE_DURABLE_AFTER_ENTRIES` have been applied since the last
    /// time it said so (see that limit for why). openraft applies one batch at a time, so the
    /// count is never raced.
    pub(super) fn count_applied(&self, entries: usize) -> bool {
        let entries = entries as u64;
        let before = self.applied_since_durable.fetch_add(entries, Ordering::AcqRel);
        if before + entries < STATE_DURABLE_AFTER_ENTRIES {
            return false;
        }
        self.applied_since_durable.store(0, Ordering::Release);
        true
    }

    /// The write gate: every redb write transaction on this database is opened and committed
    /// while holding it (the log writer's batches and closures, applies, snapshot installs).
    /// It adds nothing to redb's own writer lock but a way to learn, without blocking, that no
    /// write transaction is open: see [`Db::try_write_gate`].
    pub(super) fn write_gate(&self) -> MutexGuard<'_, ()> {
        // The gate guards no data, so a panic while it was held leaves nothing inconsistent.
        self.write_gate.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The write gate if no one holds it: then `begin_write` returns at once, so an async
    /// thread may run a short write transaction without waiting on a disk.
    pub(super) fn try_write_gate(&self) -> Option<MutexGuard<'_, ()>> {
        match self.write_gate.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Runs `work`, which opens a write transaction, on the blocking pool under the write
    /// gate, counted as in flight like [`Db::run`].
    pub(crate) async fn run_write<T, F>(self: &Arc<Self>, work: F) -> Result<T, StorageError>
    where
        F: FnOnce(&Database) -> Result<T, StorageError> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.clone();
        self.run(move |database| {
            let _gate = db.write_gate();
            work(database)
        })
        .await
    }

    /// Runs `work` on the blocking pool, counted as in flight until it returns (even when the
    /// caller stopped waiting for it).
    pub(crate) async fn run<T, F>(self: &Arc<Self>, work: F) -> Result<T, StorageError>
    where
        F: FnOnce(&Database) -> Result<T, StorageError> + Send + 'static,
        T: Send + 'static,
    {
        let guard = InFlight::new(self);
        run_blocking(move || {
            let guard = guard;
            work(guard.database())
        })
        .await
    }

    /// Runs `work` on the log writer thread, after every log change queued before it.
    pub(crate) async fn run_in_log_order<T, F>(self: &Arc<Self>, work: F) -> Result<T, StorageError>
    where
        F: FnOnce(&Database) -> Result<T, StorageError> + Send + 'static,
        T: Send + 'static,
    {
        self.log_writer().run(work, InFlight::new(self)).await
    }
}

/// The file name of the log database inside a node's data dir: the Raft log, the vote, the
/// committed and last purged ids, and the node's id.
pub const DATABASE_FILE_NAME: &str = "aspen.redb";

/// The file name of the state database inside a node's data dir: the key-value data, the last
/// applied id and the membership. (The current snapshot is a file of its own,
/// [`super::SNAPSHOT_FILE_NAME`].)
pub const STATE_DATABASE_FILE_NAME: &str = "state.redb";

/// A node's open redb databases. Cheap to clone: clones share the databases.
///
/// Two databases, because redb commits a whole database at once and lets one writer in at a
/// time. In one database, every durable log commit also wrote the pages the state machine had
/// changed since the last one, and an apply waited for redb's lock while the log writer's fsync
/// ran. Apart, a log commit writes only log pages, and applies never wait for the log's disk
/// (bench/README.md, "The log and the state machine in two databases"). The state database
/// commits without an fsync except at close and every `STATE_DURABLE_AFTER_ENTRIES` entries:
/// everything it holds is also durable in the log, which is purged only behind a snapshot whose
/// file is durable (see `snapshot`).
///
/// redb locks its files, so a process opens them once (in `bootstrap_node`) and hands out the
/// log store, the state machine and readers from here. Those handles keep no state of their own
/// beyond the databases: a RaftActor restarted by its supervisor builds new ones and finds
/// everything that was committed.
#[derive(Clone)]
pub struct RedbStore {
    log: Arc<Db>,
    state: Arc<Db>,
    snapshots: Arc<SnapshotSlot>,
    dir: Option<PathBuf>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// Tells when a store's databases have been closed: see [`RedbStore::release_watch`].
#[derive(Debug, Clone)]
pub struct DatabaseReleaseWatch {
    released: [Arc<AtomicBool>; 2],
}

impl DatabaseReleaseWatch {
    /// True once no handle keeps either database open and both files are closed. (The last
    /// handle going away is not enough: closing takes a moment, redb writes on close, and until
    /// it is done the file stays locked.)
    pub fn is_released(&self) -> bool {
        self.released.iter().all(|released| released.load(Ordering::Acquire))
    }

    /// Waits (polling every 10 ms) until the database is released or `timeout` passes; returns
    /// whether it was released. Handles live in tasks that end on their own after a shutdown
    /// (connection handlers, blocking storage calls), so there is no event to wait on.
    pub async fn wait_released(&self, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.is_released() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        true
    }
}

impl RedbStore {
    /// Opens (or creates) the databases of node `node_id`: `dir/aspen.redb` (the log) and
    /// `dir/state.redb` (the state machine), beside the snapshot file `dir/snapshot.bin`, when a
    /// data dir is given (the dir is created), or fresh in-memory databases otherwise.
    ///
    /// The first open stamps the node id in both; a later open with another id fails with
    /// [`StorageError::NodeIdMismatch`], so that a node never adopts another node's log and vote.
    /// A data dir written by an earlier layout, with everything in `aspen.redb`, has its state
    /// moved out ([`move_state_out_of_the_log`]). A data dir missing one half that the other
    /// needs is refused as corrupt ([`check_pair`]).
    /// This blocks on the disk; it runs once, before the node's actors start.
    pub fn open(data_dir: Option<&Path>, node_id: u64) -> Result<RedbStore, StorageError> {
        let (log, state, dir) = match data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                let log = Database::create(dir.join(DATABASE_FILE_NAME))?;
                let state = Database::create(dir.join(STATE_DATABASE_FILE_NAME))?;
                (log, state, Some(dir.to_path_buf()))
            }
            None => {
                let log = Database::builder().create_with_backend(InMemoryBackend::new())?;
                let state = Database::builder().create_with_backend(InMemoryBackend::new())?;
                (log, state, None)
            }
        };
        // Both ids before anything is written, so that a refused open writes nothing.
        for db in [&log, &state] {
            match read_record(db, &META_NODE_ID)? {
                Some(stored) if stored != node_id => {
                    return Err(StorageError::NodeIdMismatch { stored, given: node_id });
                }
                _ => {}
            }
        }
        let snapshots = Arc::new(SnapshotSlot::new(dir.as_deref()));
        if stored_version(&log)? == Some(1) {
            // The state database is new here, or a copy an interrupted move left: either way
            // the move writes it afresh.
            stamp(&state, Part::State, node_id)?;
            move_state_out_of_the_log(&log, &state, &snapshots)?;
        }
        check_pair(&log, &state, &snapshots)?;
        stamp(&state, Part::State, node_id)?;
        stamp(&log, Part::Log, node_id)?;
        let log = Db::new(log, Some(LogWriter::start(append_entries)?));
        let state = Db::new(state, None);
        Ok(RedbStore { log, state, snapshots, dir })
    }

    /// Waits (polling every 5 ms, at most `timeout`) until no blocking call runs on either
    /// database and no log write is queued; returns whether it became idle. See [`Db`] for why.
    pub async fn wait_idle(&self, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let busy = || {
            self.log.in_flight.load(Ordering::Acquire)
                + self.state.in_flight.load(Ordering::Acquire)
        };
        while busy() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        true
    }

    /// A watch on these databases that does not keep them open, to learn when every handle to
    /// them is gone and the file locks are released.
    pub fn release_watch(&self) -> DatabaseReleaseWatch {
        DatabaseReleaseWatch {
            released: [self.log.released.0.clone(), self.state.released.0.clone()],
        }
    }

    /// The Raft log store over the log database. Each call loads the log state from disk.
    pub fn log_store(&self) -> RedbLogStore {
        RedbLogStore::new(self.log.clone())
    }

    /// The Raft state machine over the state database and the snapshot file. Each call loads
    /// its state from disk.
    pub fn state_machine(&self) -> RedbStateMachine {
        RedbStateMachine::new(self.state.clone(), self.snapshots.clone())
    }

    /// A reader of the applied key-value state, for local reads on the data path.
    pub fn reader(&self) -> StateReader {
        StateReader::new(self.state.clone())
    }

    /// The data dir holding the database files, or `None` in memory.
    pub fn data_dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The size of both database files and the snapshot file in bytes; 0 in memory, and a file
    /// whose size cannot be read counts 0 (this is a gauge, not a check:
    /// [`RedbStore::check_health`] reports failures).
    pub fn disk_usage_bytes(&self) -> u64 {
        let Some(dir) = &self.dir else { return 0 };
        [DATABASE_FILE_NAME, STATE_DATABASE_FILE_NAME, super::SNAPSHOT_FILE_NAME]
            .iter()
            .filter_map(|name| std::fs::metadata(dir.join(name)).ok())
            .map(|metadata| metadata.len())
            .sum()
    }

    /// The state database itself, for tests of the blocking functions.
    #[cfg(test)]
    pub(super) fn state_database(&self) -> &Database {
        &self.state
    }

    /// The state database's handle, for tests of the write gate.
    #[cfg(test)]
    pub(super) fn state_db(&self) -> &Arc<Db> {
        &self.state
    }

    /// Checks that both databases still answer: a read transaction opens and reads each meta
    /// table. Cheap (no disk write), so a supervisor may call it from an async handler.
    pub fn check_health(&self) -> Result<(), StorageError> {
        for db in [&self.log, &self.state] {
            let txn = db.begin_read()?;
            let meta = txn.open_table(META_TABLE)?;
            let _: Option<u64> = get_record(&meta, &META_NODE_ID)?;
        }
        Ok(())
    }
}

/// Which of the node's two databases: what tables it holds.
#[derive(Clone, Copy)]
enum Part {
    Log,
    State,
}

/// The layout version stamped in `db`, or `None` for a database never stamped.
fn stored_version(db: &Database) -> Result<Option<u32>, StorageError> {
    read_record(db, &META_SCHEMA_VERSION)
}

/// One record of the meta table, or `None` when it, or the table, was never written.
fn read_record<T: serde::de::DeserializeOwned>(
    db: &Database,
    key: &RecordKey<T>,
) -> Result<Option<T>, StorageError> {
    let txn = db.begin_read()?;
    match txn.open_table(META_TABLE) {
        Ok(meta) => get_record(&meta, key),
        Err(TableError::TableDoesNotExist(_)) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// Refuses a pair of databases that cannot belong together: a state machine that applied
/// entries beside a log database that was never written (the vote and the log are lost), or,
/// with no snapshot file, a log purged past what the state machine applied (the entries in
/// between are gone; a state database that was never written applied nothing). Either half
/// missing alone, with nothing lost, is created afresh: that is also what a crash between the
/// first two stamps leaves.
fn check_pair(
    log: &Database,
    state: &Database,
    snapshots: &SnapshotSlot,
) -> Result<(), StorageError> {
    let applied: Option<LogId> = read_record(state, &META_LAST_APPLIED)?;
    if stored_version(log)?.is_none() && applied.is_some() {
        return Err(StorageError::Corrupt {
            reason: format!(
                "{STATE_DATABASE_FILE_NAME} has applied entries but {DATABASE_FILE_NAME} is \
                 missing or was never written: the node's vote and log are lost"
            ),
        });
    }
    let purged: Option<LogId> = read_record(log, &META_LAST_PURGED)?;
    if let Some(purged) = purged
        && applied.is_none_or(|applied| applied.index < purged.index)
        && !snapshots.file_exists()
    {
        let applied = applied.map_or("nothing".to_string(), |id| format!("up to {id}"));
        return Err(StorageError::Corrupt {
            reason: format!(
                "{DATABASE_FILE_NAME} is purged up to {purged}, {STATE_DATABASE_FILE_NAME} \
                 applied {applied}, and {} is missing: the state machine cannot be rebuilt",
                super::SNAPSHOT_FILE_NAME
            ),
        });
    }
    Ok(())
}

/// Creates every table of `part` (so that readers never meet a missing one), then stamps or
/// checks the layout version and the node id, all in one transaction.
fn stamp(db: &Database, part: Part, node_id: u64) -> Result<(), StorageError> {
    let txn = db.begin_write()?;
    {
        match part {
            Part::Log => drop(txn.open_table(LOG_TABLE)?),
            Part::State => drop(txn.open_table(KV_TABLE)?),
        }
        let mut meta = txn.open_table(META_TABLE)?;
        match get_record(&meta, &META_SCHEMA_VERSION)? {
            None => put_record(&mut meta, &META_SCHEMA_VERSION, &SCHEMA_VERSION)?,
            Some(SCHEMA_VERSION) => {}
            Some(other) => {
                return Err(StorageError::Corrupt {
                    reason: format!("layout version {other}, this build reads {SCHEMA_VERSION}"),
                });
            }
        }
        match get_record(&meta, &META_NODE_ID)? {
            None => put_record(&mut meta, &META_NODE_ID, &node_id)?,
            Some(stored) if stored == node_id => {}
            Some(stored) => {
                return Err(StorageError::NodeIdMismatch { stored, given: node_id });
            }
        }
    }
    txn.commit()?;
    Ok(())
}

/// The record layout 1 kept in front of its snapshot bytes, in the `snapshot` table.
#[derive(serde::Deserialize)]
struct LayoutOneSnapshotRecord {
    id: String,
    meta: SnapshotMeta,
}

/// Moves the state machine out of a log database of layout 1, which held everything: the
/// current snapshot goes to the snapshot file, the `kv` table and the applied records to the
/// state database, durably, and only then do they leave the log database. A crash in between
/// leaves the log database at layout 1, and the next open copies again over what the first copy
/// wrote.
fn move_state_out_of_the_log(
    log: &Database,
    state: &Database,
    snapshots: &SnapshotSlot,
) -> Result<(), StorageError> {
    let from = log.begin_read()?;
    let old_meta = from.open_table(META_TABLE)?;
    let old_snapshots = from.open_table(SNAPSHOT_TABLE)?;
    if let Some(record) = old_snapshots.get(SNAPSHOT_RECORD)? {
        let record: LayoutOneSnapshotRecord = decode(record.value(), "snapshot record")?;
        let Some(data) = old_snapshots.get(SNAPSHOT_DATA)? else {
            return Err(StorageError::Corrupt {
                reason: format!("snapshot {} has no data", record.id),
            });
        };
        let counter = get_record(&old_meta, &META_SNAPSHOT_COUNTER)?.unwrap_or(1);
        let record = SnapshotRecord { id: record.id, counter, meta: record.meta };
        snapshots.write_moved(record, data.value())?;
    }

    let mut txn = state.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    {
        let mut kv = txn.open_table(KV_TABLE)?;
        kv.retain(|_, _| false)?;
        for item in from.open_table(KV_TABLE)?.iter()? {
            let (key, value) = item?;
            kv.insert(key.value(), value.value())?;
        }
        let mut meta = txn.open_table(META_TABLE)?;
        match get_record(&old_meta, &META_LAST_APPLIED)? {
            Some(last_applied) => put_record(&mut meta, &META_LAST_APPLIED, &last_applied)?,
            None => remove_record(&mut meta, &META_LAST_APPLIED)?,
        }
        match get_record(&old_meta, &META_MEMBERSHIP)? {
            Some(membership) => put_record(&mut meta, &META_MEMBERSHIP, &membership)?,
            None => remove_record(&mut meta, &META_MEMBERSHIP)?,
        }
    }
    txn.commit()?;
    drop((old_meta, old_snapshots, from));

    let mut txn = log.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    txn.delete_table(KV_TABLE)?;
    txn.delete_table(SNAPSHOT_TABLE)?;
    {
        let mut meta = txn.open_table(META_TABLE)?;
        remove_record(&mut meta, &META_LAST_APPLIED)?;
        remove_record(&mut meta, &META_MEMBERSHIP)?;
        remove_record(&mut meta, &META_SNAPSHOT_COUNTER)?;
        put_record(&mut meta, &META_SCHEMA_VERSION, &SCHEMA_VERSION)?;
    }
    txn.commit()?;
    tracing::info!(
        "moved the state machine out of {DATABASE_FILE_NAME} into {STATE_DATABASE_FILE_NAME} and \
         {}",
        super::SNAPSHOT_FILE_NAME
    );
    Ok(())
}
