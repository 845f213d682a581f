//! The log writer: one thread per database that runs every change to the Raft log, in the
//! order it was asked for, and makes appended entries durable many appends per transaction.
//!
//! openraft calls `append` from its core task and expects it to return as soon as the entries
//! are readable, not when they are on disk; the flush callback says when they are. Returning
//! early is what lets a leader send entries to its followers while its own fsync runs, and lets
//! the core take in more client writes meanwhile. So `append` puts its entries in the
//! [`Pending`] tail (where log reads find them) and queues them here; this thread takes every
//! append queued behind the first (up to [`LOG_WRITE_BATCH_ENTRIES_MAX`] entries) into one
//! durable transaction, drops them from the tail and calls their callbacks.
//!
//! Truncate, purge and vote go through the same queue as closures, so nothing overtakes an
//! append submitted before it; their callers wait for them. The committed id, which openraft
//! may lose (see `save_committed`), is only kept in memory and written with the next batch of
//! appends: queueing it would wake this thread on every commit advance, and waiting for it
//! would hold the Raft core behind the fsync of the batch before it.
//!
//! Invariants and failure:
//! - Entries leave the tail only after the transaction that holds them committed; a reader
//!   looks at the tail before the database (see `RedbLogStore`), so an entry is always found
//!   in one or the other.
//! - Every queued job holds an [`InFlight`] count of the database, so `RedbStore::wait_idle`
//!   (which a restarted RaftActor calls before it reads its starting state) also waits for
//!   appends not yet durable, and the tail is empty when it returns.
//! - A failed or panicking batch answers each of its callbacks with the error: openraft then
//!   stops the Raft instance. A later batch cannot leave a hole, because `append_entries`
//!   checks that each batch follows the durable tail.
//! - The thread ends when the database is dropped (its queue's sender goes with it).
//!
//! Caveat: the queue has no bound of its own. It holds what openraft submitted and this thread
//! has not written yet, which the clients in flight bound (each API request is one entry and is
//! bounded by the API's timeouts); a disk much slower than the clients would let it grow.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};

use openraft::storage::IOFlushed;
use redb::Database;

use super::StorageError;
use super::store::InFlight;
use crate::limits::LOG_WRITE_BATCH_ENTRIES_MAX;
use crate::raft::{AspenTypeConfig, Entry, LogId};

/// A closure run on the writer thread, in queue order. It gets the job's in-flight count and
/// lets it go before it answers, so that whoever hears the answer and then drops the last store
/// finds the database closed (a count holds the database open).
pub(super) type Work = Box<dyn FnOnce(InFlight) + Send>;

/// Commits a batch of appends, in order, and the committed id if one is given, in one durable
/// transaction (`log_store::append_entries`).
pub(super) type CommitAppends =
    fn(&Database, &[&[Entry]], Option<Option<LogId>>) -> Result<(), StorageError>;

enum Job {
    Append { entries: Vec<Entry>, callback: IOFlushed<AspenTypeConfig>, in_flight: InFlight },
    Run { work: Work, in_flight: InFlight },
}

/// Entries appended but not yet durable, by index: the log's tail as readers must see it.
#[derive(Default)]
pub(super) struct Pending {
    entries: Mutex<BTreeMap<u64, Entry>>,
}

impl Pending {
    /// Copies of the pending entries in `range`.
    pub(super) fn range(&self, range: (Bound<u64>, Bound<u64>)) -> BTreeMap<u64, Entry> {
        let entries = self.entries.lock().expect("pending log entries");
        entries.range(range).map(|(index, entry)| (*index, entry.clone())).collect()
    }

    /// The id of the last pending entry.
    pub(super) fn last(&self) -> Option<LogId> {
        let entries = self.entries.lock().expect("pending log entries");
        entries.last_key_value().map(|(_, entry)| entry.log_id)
    }

    fn insert(&self, entries: &[Entry]) {
        let mut pending = self.entries.lock().expect("pending log entries");
        for entry in entries {
            pending.insert(entry.log_id.index, entry.clone());
        }
    }

    /// Drops `entries` from the tail, each only if the tail still holds that very entry.
    fn remove(&self, entries: &[Entry]) {
        let mut pending = self.entries.lock().expect("pending log entries");
        for entry in entries {
            if pending.get(&entry.log_id.index).is_some_and(|held| held.log_id == entry.log_id) {
                pending.remove(&entry.log_id.index);
            }
        }
    }
}

/// The handle to a database's writer thread.
pub(super) struct LogWriter {
    /// std's `Sender` is `Sync`: every store on the database sends through this one.
    jobs: Sender<Job>,
    pending: Arc<Pending>,
    /// The last committed id given to `save_committed` and not written yet.
    committed: Arc<Mutex<Option<Option<LogId>>>>,
}

impl LogWriter {
    /// Starts the writer thread; `commit` makes a batch of appends durable.
    pub(super) fn start(commit: CommitAppends) -> Result<Self, StorageError> {
        let (sender, receiver) = std::sync::mpsc::channel();
        let pending = Arc::new(Pending::default());
        let committed = Arc::new(Mutex::new(None));
        let shared = Shared { pending: pending.clone(), committed: committed.clone(), commit };
        std::thread::Builder::new()
            .name("aspen-log-writer".into())
            .spawn(move || run(receiver, &shared))
            .map_err(|e| StorageError::Io { reason: format!("start the log writer: {e}") })?;
        Ok(Self { jobs: sender, pending, committed })
    }

    pub(super) fn pending(&self) -> &Pending {
        &self.pending
    }

    /// Keeps `committed` to be written with the next batch of appends.
    pub(super) fn save_committed(&self, committed: Option<LogId>) {
        *self.committed.lock().expect("unsaved committed id") = Some(committed);
    }

    /// The committed id given to `save_committed` and not written yet, if any.
    pub(super) fn unsaved_committed(&self) -> Option<Option<LogId>> {
        *self.committed.lock().expect("unsaved committed id")
    }

    /// Puts `entries` in the pending tail and queues them; `callback` hears when they are
    /// durable (or why not).
    pub(super) fn append(
        &self,
        entries: Vec<Entry>,
        callback: IOFlushed<AspenTypeConfig>,
        in_flight: InFlight,
    ) -> Result<(), StorageError> {
        self.pending.insert(&entries);
        let job = Job::Append { entries, callback, in_flight };
        self.send(job).map_err(|job| {
            if let Job::Append { entries, callback, .. } = job {
                self.pending.remove(&entries);
                callback.io_completed(Err(std::io::Error::other("the log writer has stopped")));
            }
            stopped()
        })
    }

    /// Runs `work` on the writer thread after everything queued before it.
    pub(super) async fn run<T, F>(&self, work: F, in_flight: InFlight) -> Result<T, StorageError>
    where
        F: FnOnce(&Database) -> Result<T, StorageError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let work: Work = Box::new(move |in_flight| {
            let gate = in_flight.db().write_gate();
            let result = catch_unwind(AssertUnwindSafe(|| work(in_flight.database())))
                .unwrap_or_else(|panic| Err(panicked(panic.as_ref())));
            drop(gate);
            drop(in_flight);
            let _ = reply.send(result);
        });
        self.send(Job::Run { work, in_flight }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    fn send(&self, job: Job) -> Result<(), Job> {
        self.jobs.send(job).map_err(|error| error.0)
    }
}

fn stopped() -> StorageError {
    StorageError::Io { reason: "the log writer has stopped".into() }
}

fn panicked(panic: &(dyn std::any::Any + Send)) -> StorageError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    StorageError::Io { reason: format!("the log writer panicked: {message}") }
}

/// What the writer thread shares with its handle.
struct Shared {
    pending: Arc<Pending>,
    committed: Arc<Mutex<Option<Option<LogId>>>>,
    commit: CommitAppends,
}

/// The writer thread: takes jobs in order until the queue's sender is dropped.
fn run(jobs: Receiver<Job>, shared: &Shared) {
    let mut next = jobs.recv().ok();
    while let Some(job) = next.take() {
        match job {
            Job::Run { work, in_flight } => work(in_flight),
            Job::Append { entries, callback, in_flight } => {
                let mut batch = vec![(entries, callback, in_flight)];
                let mut size: usize = batch[0].0.len();
                // Every append queued behind the first joins its transaction, up to the bound;
                // a closure waits for the batch before it.
                while size < LOG_WRITE_BATCH_ENTRIES_MAX {
                    match jobs.try_recv() {
                        Ok(Job::Append { entries, callback, in_flight }) => {
                            size += entries.len();
                            batch.push((entries, callback, in_flight));
                        }
                        Ok(run) => {
                            next = Some(run);
                            break;
                        }
                        Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                    }
                }
                write_batch(batch, shared);
            }
        }
        if next.is_none() {
            next = jobs.recv().ok();
        }
    }
}

fn write_batch(batch: Vec<(Vec<Entry>, IOFlushed<AspenTypeConfig>, InFlight)>, shared: &Shared) {
    let committed = shared.committed.lock().expect("unsaved committed id").take();
    let result = {
        let appends: Vec<&[Entry]> = batch.iter().map(|(entries, _, _)| &entries[..]).collect();
        let database = batch[0].2.database();
        let _gate = batch[0].2.db().write_gate();
        catch_unwind(AssertUnwindSafe(|| (shared.commit)(database, &appends, committed)))
            .unwrap_or_else(|panic| Err(panicked(panic.as_ref())))
    };
    if let Err(error) = &result {
        tracing::error!("the Raft log could not be written: {error}");
    }
    for (entries, callback, in_flight) in batch {
        shared.pending.remove(&entries);
        // Let go of the database before answering (see `Work`).
        drop(in_flight);
        callback.io_completed(result.clone().map_err(std::io::Error::from));
    }
}
