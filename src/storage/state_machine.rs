//! [`RedbStateMachine`]: applies committed entries to the `kv` table, in batches.

use std::io;
use std::sync::Arc;

use futures::{FutureExt, Stream, StreamExt};
use openraft::storage::{ApplyResponder, EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, Table};

use super::StorageError;
use super::schema::{
    KV_TABLE, META_LAST_APPLIED, META_MEMBERSHIP, META_TABLE, get_record, put_record,
};
use super::snapshot::{self, SnapshotSlot};
use super::store::{Db, InFlight};
use crate::api::apply::{KvTable, apply_command};
use crate::api::{WriteCommand, WriteOutcome};
use crate::limits::{APPLY_BATCH_ENTRIES_MAX, APPLY_INLINE_BYTES_MAX, APPLY_INLINE_ENTRIES_MAX};
use crate::raft::{
    AspenTypeConfig, Entry, LogId, Snapshot, SnapshotData, SnapshotMeta, StoredMembership,
};

/// The Raft state machine of a node, in the state database; also its own snapshot builder.
/// Cheap to clone.
///
/// `apply` commits the key-value changes, the last applied log id and the membership in one
/// transaction before it answers, so the data is never ahead of or behind `last_applied`. That
/// commit is not fsynced (redb `Durability::None`): every applied entry is already durable in
/// the log, which is purged only behind a snapshot, and a snapshot is durable in its file
/// before openraft purges (see `snapshot`). A clean close and every
/// `STATE_DURABLE_AFTER_ENTRIES`-th applied entry commit durably. After a crash the
/// state machine may come back at an older `last_applied`, and openraft installs the snapshot
/// if it is newer and applies the rest again from the log. It may also come back ahead of the log, since an entry can be applied before
/// this node's own copy of it is flushed; openraft then purges the log up to `last_applied` and
/// the leader sends what follows. Like the log store it keeps nothing in memory, so one created
/// again after a RaftActor restart resumes where the last one stopped.
#[derive(Clone)]
pub struct RedbStateMachine {
    db: Arc<Db>,
    snapshots: Arc<SnapshotSlot>,
}

impl std::fmt::Debug for RedbStateMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStateMachine").finish_non_exhaustive()
    }
}

impl RedbStateMachine {
    pub(crate) fn new(db: Arc<Db>, snapshots: Arc<SnapshotSlot>) -> Self {
        Self { db, snapshots }
    }

    /// Applies one batch, then answers every entry that has a waiting client.
    async fn apply_batch(
        &self,
        batch: Vec<EntryResponder<AspenTypeConfig>>,
    ) -> Result<(), StorageError> {
        let (entries, responders): (Vec<Entry>, Vec<Option<ApplyResponder<AspenTypeConfig>>>) =
            batch.into_iter().unzip();
        let outcomes = if self.db.count_applied(entries.len()) {
            let durable = move |db: &Database| apply_entries(db, &entries, Durability::Immediate);
            self.db.run_write(durable).await?
        } else {
            match apply_here(&self.db, &entries) {
                Some(outcomes) => outcomes?,
                None => {
                    let apply = move |db: &Database| apply_entries(db, &entries, Durability::None);
                    self.db.run_write(apply).await?
                }
            }
        };
        // Only after the commit: a client told "applied" must find its write after a crash.
        for (responder, outcome) in responders.into_iter().zip(outcomes) {
            if let Some(responder) = responder {
                responder.send(outcome);
            }
        }
        Ok(())
    }
}

/// Applies a small batch right here, on the async thread, when no other write transaction is
/// open on the state database; `None` when it must go to the blocking pool instead.
///
/// The commit is not durable (no fsync) and the batch is bounded by `APPLY_INLINE_ENTRIES_MAX`
/// and `APPLY_INLINE_BYTES_MAX`, so it takes tens of microseconds; holding the write gate means
/// `begin_write` cannot wait behind a snapshot being installed (the only other writer of the
/// state database; applies come one batch at a time). A hop to the blocking pool and back
/// costs two thread wake-ups, more than such a commit (bench/README.md).
fn apply_here(db: &Arc<Db>, entries: &[Entry]) -> Option<Result<Vec<WriteOutcome>, StorageError>> {
    if entries.len() > APPLY_INLINE_ENTRIES_MAX {
        return None;
    }
    let mut bytes = 0usize;
    for entry in entries {
        bytes = bytes.saturating_add(payload_bytes(entry));
        if bytes > APPLY_INLINE_BYTES_MAX {
            return None;
        }
    }
    let _gate = db.try_write_gate()?;
    let _in_flight = InFlight::new(db);
    Some(apply_entries(db, entries, Durability::None))
}

/// The key and value bytes an entry writes, as a measure of what applying it costs.
fn payload_bytes(entry: &Entry) -> usize {
    match &entry.payload {
        EntryPayload::Blank | EntryPayload::Membership(_) => 0,
        EntryPayload::Normal(command) => match command {
            WriteCommand::Set { key, value } => key.len() + value.len(),
            WriteCommand::SetMulti { pairs } => pairs.iter().map(|(k, v)| k.len() + v.len()).sum(),
            WriteCommand::Delete { key } => key.len(),
            WriteCommand::CompareAndSwap { key, expected, new_value } => {
                key.len() + expected.as_ref().map_or(0, String::len) + new_value.len()
            }
        },
    }
}

/// The redb `kv` table as the table that `apply_command` changes.
impl KvTable for Table<'_, &'static str, &'static str> {
    type Error = redb::StorageError;

    fn get(&mut self, key: &str) -> Result<Option<String>, Self::Error> {
        Ok(ReadableTable::get(self, key)?.map(|value| value.value().to_owned()))
    }

    fn put(&mut self, key: &str, value: &str) -> Result<(), Self::Error> {
        self.insert(key, value)?;
        Ok(())
    }

    fn remove(&mut self, key: &str) -> Result<(), Self::Error> {
        Table::remove(self, key)?;
        Ok(())
    }
}

/// Reads the last applied log id and the last applied membership.
pub(crate) fn read_applied_state(
    db: &Database,
) -> Result<(Option<LogId>, StoredMembership), StorageError> {
    let txn = db.begin_read()?;
    let meta = txn.open_table(META_TABLE)?;
    let last_applied = get_record(&meta, &META_LAST_APPLIED)?;
    let membership = get_record(&meta, &META_MEMBERSHIP)?.unwrap_or_default();
    Ok((last_applied, membership))
}

/// Applies `entries` in one transaction, with `durability` (see [`RedbStateMachine`] for when
/// it is durable), and returns each entry's outcome, in order.
///
/// The key-value changes, the last applied log id and the membership commit together, so a
/// crash never leaves the data ahead of or behind `last_applied`. A storage error aborts the
/// whole transaction: no partial batch (and no partial `SetMulti`) is ever committed.
pub(crate) fn apply_entries(
    db: &Database,
    entries: &[Entry],
    durability: Durability,
) -> Result<Vec<WriteOutcome>, StorageError> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let mut txn = db.begin_write()?;
    txn.set_durability(durability)?;
    let mut outcomes = Vec::with_capacity(entries.len());
    {
        let mut meta = txn.open_table(META_TABLE)?;
        let mut kv = txn.open_table(KV_TABLE)?;
        let mut last_applied: Option<LogId> = get_record(&meta, &META_LAST_APPLIED)?;
        let mut membership: Option<StoredMembership> = None;
        for entry in entries {
            assert!(
                last_applied.as_ref() < Some(&entry.log_id),
                "last_applied must only move forward: applied {last_applied:?}, next {}",
                entry.log_id
            );
            let outcome = match &entry.payload {
                EntryPayload::Blank => WriteOutcome::Applied,
                EntryPayload::Normal(command) => apply_command(&mut kv, command)?,
                EntryPayload::Membership(config) => {
                    membership = Some(StoredMembership::new(Some(entry.log_id), config.clone()));
                    WriteOutcome::Applied
                }
            };
            outcomes.push(outcome);
            last_applied = Some(entry.log_id);
        }
        let last_applied = last_applied.expect("a non-empty batch sets last_applied");
        put_record(&mut meta, &META_LAST_APPLIED, &last_applied)?;
        if let Some(membership) = membership {
            put_record(&mut meta, &META_MEMBERSHIP, &membership)?;
        }
    }
    txn.commit()?;
    Ok(outcomes)
}

impl RaftStateMachine<AspenTypeConfig> for RedbStateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = RedbStateMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        Ok(self.db.run(read_applied_state).await?)
    }

    /// Takes every entry the stream has ready (up to `APPLY_BATCH_ENTRIES_MAX`) and applies them
    /// in one transaction, so that a burst of client writes costs one commit.
    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<AspenTypeConfig>, io::Error>>
            + Unpin
            + OptionalSend,
    {
        loop {
            let Some(first) = entries.next().await else {
                return Ok(());
            };
            let mut batch = vec![first?];
            let mut failure = None;
            let mut ended = false;
            while batch.len() < APPLY_BATCH_ENTRIES_MAX {
                // `now_or_never` drops a pending `next()`, which is safe: the stream keeps its
                // place and yields the item to the next call.
                match entries.next().now_or_never() {
                    Some(Some(Ok(item))) => batch.push(item),
                    Some(Some(Err(error))) => {
                        failure = Some(error);
                        break;
                    }
                    Some(None) => {
                        ended = true;
                        break;
                    }
                    None => break,
                }
            }
            // What was read before a failure is still applied, so its clients get answers.
            self.apply_batch(batch).await?;
            if let Some(error) = failure {
                return Err(error);
            }
            if ended {
                return Ok(());
            }
        }
    }

    async fn try_create_snapshot_builder(&mut self, _force: bool) -> Option<Self::SnapshotBuilder> {
        // Building reads one consistent redb snapshot and never blocks apply, so there is no
        // reason to defer it.
        Some(self.clone())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    /// Checks the snapshot, keeps it as the current one (durably, in the snapshot file), then
    /// replaces the state with it. A refused snapshot changes nothing; a crash after the first
    /// step is mended at the next start, when openraft finds the snapshot newer than the state.
    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotData,
    ) -> Result<(), io::Error> {
        let meta = meta.clone();
        let data = snapshot.into_inner();
        let snapshots = self.snapshots.clone();
        let checked = self
            .db
            .run(move |_| {
                let checked = snapshot::check(meta, data)?;
                let id = snapshots.replace(checked.meta.clone(), &checked.data)?;
                tracing::info!(snapshot_id = %id, "kept a snapshot received from the leader");
                Ok(checked)
            })
            .await?;
        Ok(self.db.run_write(move |db| snapshot::install(db, checked)).await?)
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let snapshots = self.snapshots.clone();
        Ok(self.db.run(move |_| snapshots.current()).await?)
    }
}

impl RaftSnapshotBuilder<AspenTypeConfig> for RedbStateMachine {
    type SnapshotData = SnapshotData;

    /// Reads the state in one read transaction and keeps the result in the snapshot file; no
    /// apply waits for either.
    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let snapshots = self.snapshots.clone();
        let build = move |db: &Database| {
            let (meta, data) = snapshot::serialize(db)?;
            snapshots.keep(meta, data)
        };
        Ok(self.db.run(build).await?)
    }
}

#[cfg(test)]
mod tests {
    use openraft::entry::RaftEntry;

    use super::*;
    use crate::limits::{STATE_DURABLE_AFTER_ENTRIES, VALUE_BYTES_MAX};
    use crate::storage::RedbStore;

    fn set(index: u64, value_bytes: usize) -> Entry {
        let command =
            WriteCommand::Set { key: format!("k{index}"), value: "v".repeat(value_bytes) };
        Entry::new_normal(LogId::new(1.into(), index), command)
    }

    #[test]
    fn a_small_batch_applies_here_only_while_no_write_transaction_is_open() {
        let store = RedbStore::open(None, 1).expect("in-memory store");
        let db = store.state_db();
        let gate = db.write_gate();
        assert!(apply_here(db, &[set(1, 10)]).is_none(), "the gate is held: blocking pool");
        drop(gate);
        let outcomes = apply_here(db, &[set(1, 10), set(2, 10)]).expect("applied here");
        assert_eq!(outcomes.expect("applied"), vec![WriteOutcome::Applied; 2]);
        let (last_applied, _) = read_applied_state(db).expect("applied state");
        assert_eq!(last_applied, Some(LogId::new(1.into(), 2)));
        assert!(db.try_write_gate().is_some(), "the gate is given back");
    }

    #[test]
    fn every_so_many_applied_entries_one_batch_commits_durably() {
        let store = RedbStore::open(None, 1).expect("in-memory store");
        let db = store.state_db();
        let step = STATE_DURABLE_AFTER_ENTRIES / 4;
        let durable: Vec<bool> = (0..8).map(|_| db.count_applied(step as usize)).collect();
        assert_eq!(durable, [false, false, false, true, false, false, false, true]);
        assert!(db.count_applied(STATE_DURABLE_AFTER_ENTRIES as usize), "one large batch");
    }

    #[test]
    fn a_large_batch_goes_to_the_blocking_pool() {
        let store = RedbStore::open(None, 1).expect("in-memory store");
        let db = store.state_db();
        let many: Vec<Entry> =
            (1..=APPLY_INLINE_ENTRIES_MAX as u64 + 1).map(|i| set(i, 1)).collect();
        assert!(apply_here(db, &many).is_none(), "too many entries");
        let big = [set(1, APPLY_INLINE_BYTES_MAX.min(VALUE_BYTES_MAX))];
        assert!(apply_here(db, &big).is_none(), "too many bytes");
        let (last_applied, _) = read_applied_state(db).expect("applied state");
        assert_eq!(last_applied, None, "nothing was applied");
    }
}
