//! [`RedbLogStore`]: the Raft log and vote, in the `log` and `meta` tables.

use std::collections::{BTreeMap, btree_map};
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
use super::store::{Db, InFlight};
use crate::raft::{AspenTypeConfig, Entry, LogId, Vote};

/// The Raft log store of a node. Cheap to clone; it is its own log reader.
///
/// It keeps nothing in memory of its own: what is not in the database yet (appended entries
/// not durable yet, the last committed id) is in the database handle's log writer, shared with
/// every store on that database, so a store created again after a RaftActor restart sees
/// exactly what the one before it saw.
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

/// Reads the last purged log id and the id of the last entry in one read transaction; the
/// caller adds the pending tail.
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

/// Reads the entries in `range` (owned bounds) in one read transaction, where `pending` (taken
/// before) does not hold them already.
fn read_entries(
    db: &Database,
    range: (Bound<u64>, Bound<u64>),
    mut pending: BTreeMap<u64, Entry>,
) -> Result<Vec<Entry>, StorageError> {
    let txn = db.begin_read()?;
    let log = txn.open_table(LOG_TABLE)?;
    for item in log.range::<u64>(range)? {
        let (index, bytes) = item?;
        // An entry that was pending when the caller looked and is durable now is in both.
        if let btree_map::Entry::Vacant(slot) = pending.entry(index.value()) {
            slot.insert(decode(bytes.value(), "log entry")?);
        }
    }
    Ok(pending.into_values().collect())
}

/// Whether `pending` holds every index of `range` (which must be bounded at its end).
fn covers(pending: &BTreeMap<u64, Entry>, range: &(Bound<u64>, Bound<u64>)) -> bool {
    let (Some((&first, _)), Some((&last, _))) =
        (pending.first_key_value(), pending.last_key_value())
    else {
        return false;
    };
    let start = match range.0 {
        Bound::Included(start) => start,
        Bound::Excluded(start) => start.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.1 {
        Bound::Included(end) => end,
        Bound::Excluded(end) => end.saturating_sub(1),
        Bound::Unbounded => return false,
    };
    // Pending indexes are contiguous: `append` follows the tail and truncation drops a suffix.
    first <= start && end <= last && (last - first + 1) as usize == pending.len()
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
pub(super) fn write_meta<T: serde::Serialize>(
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

/// Appends `appends`, in order, and records `committed` if given, in one durable transaction:
/// one fsync per batch, however many entries. The log writer thread calls it.
pub(super) fn append_entries(
    db: &Database,
    appends: &[&[Entry]],
    committed: Option<Option<LogId>>,
) -> Result<(), StorageError> {
    let mut entries = appends.iter().flat_map(|entries| entries.iter()).peekable();
    let Some(first_index) = entries.peek().map(|entry| entry.log_id.index) else {
        return Ok(());
    };
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    {
        let mut meta = txn.open_table(META_TABLE)?;
        if let Some(committed) = committed {
            put_record(&mut meta, &META_COMMITTED, &committed)?;
        }
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
        for (offset, entry) in entries.enumerate() {
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
        if range_is_empty(&range) {
            // redb, like BTreeMap, may refuse a range whose start lies after its end.
            return Ok(Vec::new());
        }
        // The pending tail first: an entry leaves it only once it is durable (see LogWriter).
        let pending = self.db.log_writer().pending().range(range);
        if covers(&pending, &range) {
            // A leader replicating what it just appended: no database read at all.
            return Ok(pending.into_values().collect());
        }
        Ok(self.db.run(move |db| read_entries(db, range, pending)).await?)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.db.run(|db| read_meta(db, &META_VOTE)).await?)
    }
}

impl RaftLogStorage<AspenTypeConfig> for RedbLogStore {
    type LogReader = RedbLogStore;

    async fn get_log_state(&mut self) -> Result<LogState<AspenTypeConfig>, io::Error> {
        let pending_last = self.db.log_writer().pending().last();
        let mut state = self.db.run(read_log_state).await?;
        state.last_log_id = state.last_log_id.max(pending_last);
        Ok(state)
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let vote = *vote;
        // The vote must survive a crash before openraft acts on it: durable.
        let save = move |db: &Database| write_meta(db, &META_VOTE, &vote, Durability::Immediate);
        Ok(self.db.run_in_log_order(save).await?)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // Kept in memory and written with the next batch of appends, not durable on its own: a
        // lost committed id only means re-applying less on restart (the rest is re-applied as
        // the leader commits it again), and the next durable commit persists it. This saves a transaction and a
        // wake-up of the log writer on every commit advance.
        self.db.log_writer().save_committed(committed);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        if let Some(unsaved) = self.db.log_writer().unsaved_committed() {
            return Ok(unsaved);
        }
        // In log order, so that a batch that wrote it is done.
        let committed: Option<Option<LogId>> =
            self.db.run_in_log_order(|db| read_meta(db, &META_COMMITTED)).await?;
        Ok(committed.flatten())
    }

    /// Returns once the entries are in the pending tail and queued; `callback` hears when they
    /// are durable (see [`LogWriter`](super::log_writer)).
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
        if entries.is_empty() {
            callback.io_completed(Ok(()));
            return Ok(());
        }
        Ok(self.db.log_writer().append(entries, callback, InFlight::new(&self.db))?)
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        Ok(self.db.run_in_log_order(move |db| truncate_after(db, last_log_id)).await?)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        Ok(self.db.run_in_log_order(move |db| purge(db, log_id)).await?)
    }
}
