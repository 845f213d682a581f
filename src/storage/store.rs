//! [`RedbStore`]: the node's one open database, and the handles it gives out.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};

use redb::backends::InMemoryBackend;
use redb::{Database, Durability, ReadableDatabase};

use super::log_store::{append_entries, write_meta};
use super::log_writer::LogWriter;
use super::schema::{
    KV_TABLE, LOG_TABLE, META_COMMITTED, META_NODE_ID, META_SCHEMA_VERSION, META_TABLE,
    SCHEMA_VERSION, SNAPSHOT_TABLE, get_record, put_record, run_blocking,
};
use super::{RedbLogStore, RedbStateMachine, StateReader, StorageError};

/// A node's database with a count of the blocking calls in flight on it.
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
    /// Runs every change to the Raft log, in order; see [`LogWriter`].
    pub(super) log_writer: LogWriter,
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
        if let Some(committed) = self.log_writer.unsaved_committed() {
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
    /// The write gate: every redb write transaction on this database is opened and committed
    /// while holding it (the log writer's batches and closures, applies, snapshot stores and
    /// installs). It adds nothing to redb's own writer lock but a way to learn, without
    /// blocking, that no write transaction is open: see [`Db::try_write_gate`].
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
        self.log_writer.run(work, InFlight::new(self)).await
    }
}

/// The file name of the database inside a node's data dir.
pub const DATABASE_FILE_NAME: &str = "aspen.redb";

/// A node's open redb database. Cheap to clone: clones share the database.
///
/// redb locks the file, so a process opens it once (in `bootstrap_node`) and hands out the log
/// store, the state machine and readers from here. Those handles keep no state of their own
/// beyond the database: a RaftActor restarted by its supervisor builds new ones and finds
/// everything that was committed.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Db>,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Tells when a database has been closed: see [`RedbStore::release_watch`].
#[derive(Debug, Clone)]
pub struct DatabaseReleaseWatch {
    released: Arc<AtomicBool>,
}

impl DatabaseReleaseWatch {
    /// True once no handle keeps the database open and the file is closed. (The last handle
    /// going away is not enough: closing takes a moment, redb writes on close, and until it is
    /// done the file stays locked.)
    pub fn is_released(&self) -> bool {
        self.released.load(Ordering::Acquire)
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
    /// Opens (or creates) the database of node `node_id`: `dir/aspen.redb` when a data dir is
    /// given (the dir is created), or a fresh in-memory database otherwise.
    ///
    /// The first open stamps the node id; a later open with another id fails with
    /// [`StorageError::NodeIdMismatch`], so that a node never adopts another node's log and vote.
    /// This blocks on the disk; it runs once, before the node's actors start.
    pub fn open(data_dir: Option<&Path>, node_id: u64) -> Result<RedbStore, StorageError> {
        let (db, path) = match data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                let path = dir.join(DATABASE_FILE_NAME);
                (Database::create(&path)?, Some(path))
            }
            None => (Database::builder().create_with_backend(InMemoryBackend::new())?, None),
        };
        stamp(&db, node_id)?;
        let log_writer = LogWriter::start(append_entries)?;
        let released = ReleasedOnDrop(Arc::new(AtomicBool::new(false)));
        let db = Arc::new(Db {
            database: db,
            in_flight: AtomicUsize::new(0),
            write_gate: Mutex::new(()),
            log_writer,
            released,
        });
        Ok(RedbStore { db, path })
    }

    /// Waits (polling every 5 ms, at most `timeout`) until no blocking call runs on this
    /// database and no log write is queued; returns whether it became idle. See [`Db`] for why.
    pub async fn wait_idle(&self, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.db.in_flight.load(Ordering::Acquire) > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        true
    }

    /// A watch on this database that does not keep it open, to learn when every handle to it
    /// is gone and the file lock is released.
    pub fn release_watch(&self) -> DatabaseReleaseWatch {
        DatabaseReleaseWatch { released: self.db.released.0.clone() }
    }

    /// The Raft log store over this database. Each call loads the log state from disk.
    pub fn log_store(&self) -> RedbLogStore {
        RedbLogStore::new(self.db.clone())
    }

    /// The Raft state machine over this database. Each call loads its state from disk.
    pub fn state_machine(&self) -> RedbStateMachine {
        RedbStateMachine::new(self.db.clone())
    }

    /// A reader of the applied key-value state, for local reads on the data path.
    pub fn reader(&self) -> StateReader {
        StateReader::new(self.db.clone())
    }

    /// The database file, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The size of the database file in bytes; 0 in memory or if the size cannot be read (this
    /// is a gauge, not a check: [`RedbStore::check_health`] reports failures).
    pub fn disk_usage_bytes(&self) -> u64 {
        self.path.as_ref().and_then(|path| std::fs::metadata(path).ok()).map_or(0, |m| m.len())
    }

    /// The database itself, for tests of the blocking functions.
    #[cfg(test)]
    pub(super) fn database(&self) -> &Database {
        &self.db
    }

    /// The database handle, for tests of the write gate.
    #[cfg(test)]
    pub(super) fn db(&self) -> &Arc<Db> {
        &self.db
    }

    /// Checks that the database still answers: a read transaction opens and reads the meta
    /// table. Cheap (no disk write), so a supervisor may call it from an async handler.
    pub fn check_health(&self) -> Result<(), StorageError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META_TABLE)?;
        let _: Option<u64> = get_record(&meta, &META_NODE_ID)?;
        Ok(())
    }
}

/// Creates every table (so that readers never meet a missing one), then stamps or checks the
/// layout version and the node id, all in one transaction.
fn stamp(db: &Database, node_id: u64) -> Result<(), StorageError> {
    let txn = db.begin_write()?;
    {
        txn.open_table(LOG_TABLE)?;
        txn.open_table(KV_TABLE)?;
        txn.open_table(SNAPSHOT_TABLE)?;
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
