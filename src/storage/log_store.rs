//! [`RedbLogStore`]: the Raft log and vote, in the `log` and `meta` tables.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{OptionalSend, RaftTypeConfig};
use redb::{Database, Durability, ReadableDatabase, ReadableTable};

use super::StorageError;
use super::schema::{
    LOG_TABLE, META_COMMITTED, META_LAST_PURGED, META_TABLE, META_VOTE, RecordKey, decode, encode,
    get_record, put_record,
};
use super::store::Db;
use crate::raft::{AspenTypeConfig, Entry, LogId, Vote};

/// The Raft log store of a node. Cheap to clone; it is its own log reader.
///
/// It keeps nothing in memory: every call reads or writes the database, so a store created
/// again after a RaftActor restart sees exactly what was made durable before.
#[derive(Clone)]
pub struct RedbLogStore {
    db: Arc<Db>,
}

impl Debug for RedbLogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbLogStore").finish_non_exhaustive()
    }
}

impl RedbLogStore {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

/// Reads the last purged log id and the id of the last entry in one read transaction.
fn read_log_state(db: &Database) -> Result<LogState<AspenTypeConfig>, StorageError> {
    let txn = db.begin_read()?;
    let meta = txn.open_table(META_TABLE)?;
    let last_purged_log_id: Option<LogId> = get_record(&meta, &META_LAST_PURGED)?;
    let log = txn.open_table(LOG_TABLE)?;
    let last_entry = match log.last()? {
        Some((_, bytes)) => Some(decode::<Entry>(bytes.value(), "log entry")?.log_id),
        None => None,
    };
    // An empty log (all purged) reports the purged id as its last, as openraft requires.
    let last_log_id = last_entry.or(last_purged_log_id);
    Ok(LogState { last_purged_log_id, last_log_id })
}

/// Reads the entries in `range` (owned bounds) in one read transaction.
fn read_entries(
    db: &Database,
    range: (Bound<u64>, Bound<u64>),
) -> Result<Vec<Entry>, StorageError> {
    if range_is_empty(&range) {
        // redb, like BTreeMap, may refuse a range whose start lies after its end.
        return Ok(Vec::new());
    }
    let txn = db.begin_read()?;
    let log = txn.open_table(LOG_TABLE)?;
    let mut entries = Vec::new();
    for item in log.range::<u64>(range)? {
        let (_, bytes) = item?;
        entries.push(decode(bytes.value(), "log entry")?);
    }
    Ok(entries)
}

fn range_is_empty(range: &(Bound<u64>, Bound<u64>)) -> bool {
    let start = match range.0 {
        Bound::Included(start) => start,
        Bound::Excluded(start) => match start.checked_add(1) {
            Some(start) => start,
            None => return true,
        },
        Bound::Unbounded => 0,
    };
    match range.1 {
        Bound::Included(end) => start > end,
        Bound::Excluded(end) => start >= end,
        Bound::Unbounded => false,
    }
}

fn read_meta<T: serde::de::DeserializeOwned>(
    db: &Database,
    key: &RecordKey<T>,
) -> Result<Option<T>, StorageError> {
    let txn = db.begin_read()?;
    get_record(&txn.open_table(META_TABLE)?, key)
}

/// Writes one meta record in its own transaction with the given durability.
fn write_meta<T: serde::Serialize>(
    db: &Database,
    key: &RecordKey<T>,
    value: &T,
    durability: Durability,
) -> Result<(), StorageError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(durability)?;
    put_record(&mut txn.open_table(META_TABLE)?, key, value)?;
    txn.commit()?;
    Ok(())
}

/// Appends `entries` in one durable transaction: one fsync per batch, however many entries.
fn append_entries(db: &Database, entries: Vec<Entry>) -> Result<(), StorageError> {
    let Some(first_index) = entries.first().map(|entry| entry.log_id.index) else {
        return Ok(());
    };
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    {
        let meta = txn.open_table(META_TABLE)?;
        let mut log = txn.open_table(LOG_TABLE)?;
        let last_index = log.last()?.map(|(index, _)| index.value());
        let purged_index = get_record(&meta, &META_LAST_PURGED)?.map(|id| id.index);
        // openraft truncates before it overwrites and purges before it skips ahead, so a new
        // entry always follows the tail; anything else would leave a hole or rewrite history.
        if let Some(previous) = last_index.max(purged_index) {
            assert_eq!(
                first_index,
                previous + 1,
                "appended entries must follow the log tail at {previous} without a gap or overlap"
            );
        }
        for (offset, entry) in entries.iter().enumerate() {
            let index = entry.log_id.index;
            assert_eq!(index, first_index + offset as u64, "appended indexes must be contiguous");
            log.insert(index, encode(entry, "log entry")?.as_slice())?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// Deletes every entry after `last` (all of them for `None`); `last` itself is kept.
fn truncate_after(db: &Database, last: Option<LogId>) -> Result<(), StorageError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    {
        let meta = txn.open_table(META_TABLE)?;
        let committed = get_record(&meta, &META_COMMITTED)?.flatten();
        // Raft never takes back a committed entry; the saved committed id may lag, never lead.
        let kept_index = last.as_ref().map(|last| last.index);
        assert!(
            committed.as_ref().is_none_or(|committed| Some(committed.index) <= kept_index),
            "truncating after {last:?} would remove committed entries up to {committed:?}"
        );
        let mut log = txn.open_table(LOG_TABLE)?;
        match last {
            Some(last) => log
                .retain_in::<u64, _>((Bound::Excluded(last.index), Bound::Unbounded), |_, _| {
                    false
                })?,
            None => log.retain(|_, _| false)?,
        }
    }
    txn.commit()?;
    Ok(())
}

/// Deletes every entry up to and including `upto` and records it as the last purged id.
fn purge(db: &Database, upto: LogId) -> Result<(), StorageError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    {
        let mut meta = txn.open_table(META_TABLE)?;
        let purged: Option<LogId> = get_record(&meta, &META_LAST_PURGED)?;
        assert!(
            purged.as_ref() <= Some(&upto),
            "purge must not go backwards: last purged {purged:?}, asked to purge up to {upto}"
        );
        let mut log = txn.open_table(LOG_TABLE)?;
        log.retain_in::<u64, _>(..=upto.index, |_, _| false)?;
        put_record(&mut meta, &META_LAST_PURGED, &upto)?;
    }
    txn.commit()?;
    Ok(())
}

impl RaftLogReader<AspenTypeConfig> for RedbLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let range = (range.start_bound().cloned(), range.end_bound().cloned());
        Ok(self.db.run(move |db| read_entries(db, range)).await?)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.db.run(|db| read_meta(db, &META_VOTE)).await?)
    }
}

impl RaftLogStorage<AspenTypeConfig> for RedbLogStore {
    type LogReader = RedbLogStore;

    async fn get_log_state(&mut self) -> Result<LogState<AspenTypeConfig>, io::Error> {
        Ok(self.db.run(read_log_state).await?)
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let vote = *vote;
        // The vote must survive a crash before openraft acts on it: durable.
        Ok(self.db.run(move |db| write_meta(db, &META_VOTE, &vote, Durability::Immediate)).await?)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // Not durable on its own: a lost committed id only means re-applying less on restart
        // (the state machine is durable), and the next durable commit of the log or the state
        // machine persists it anyway. This saves an fsync on every commit advance.
        Ok(self
            .db
            .run(move |db| write_meta(db, &META_COMMITTED, &committed, Durability::None))
            .await?)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        let committed: Option<Option<LogId>> =
            self.db.run(|db| read_meta(db, &META_COMMITTED)).await?;
        Ok(committed.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<AspenTypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = <AspenTypeConfig as RaftTypeConfig>::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        match self.db.run(move |db| append_entries(db, entries)).await {
            Ok(()) => {
                callback.io_completed(Ok(()));
                Ok(())
            }
            Err(error) => {
                // Whoever waits on the callback must hear of the failure too, or it waits forever.
                callback.io_completed(Err(io::Error::from(error.clone())));
                Err(error.into())
            }
        }
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        Ok(self.db.run(move |db| truncate_after(db, last_log_id)).await?)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        Ok(self.db.run(move |db| purge(db, log_id)).await?)
    }
}
