//! Unit tests of the storage module: what survives a reopen, who may open a database, how a
//! snapshot moves state between nodes, and what a writer hears back through openraft.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use futures::stream;
use openraft::entry::RaftEntry;
use openraft::storage::{
    EntryResponder, IOFlushed, RaftLogReader, RaftLogStorage, RaftSnapshotBuilder, RaftStateMachine,
};
use openraft::type_config::TypeConfigExt;
use openraft::{Membership, StoredMembership};

use super::state_machine::apply_entries;
use super::{RedbStore, StorageError};
use crate::api::{WriteCommand, WriteOutcome};
use crate::raft::{AspenTypeConfig, Entry, LogId, RaftMemberInfo, Vote};

mod single_node;

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(term.into(), index)
}

fn set(key: &str, value: &str) -> WriteCommand {
    WriteCommand::Set { key: key.into(), value: value.into() }
}

fn normal(term: u64, index: u64, command: WriteCommand) -> Entry {
    Entry::new_normal(log_id(term, index), command)
}

/// A membership of voters `ids`, with node 1 carrying a real iroh endpoint address so that its
/// encoding is exercised too.
fn membership(ids: &[u64]) -> Membership<u64, RaftMemberInfo> {
    let nodes: BTreeMap<u64, RaftMemberInfo> = ids
        .iter()
        .map(|&id| {
            let endpoint = (id == 1).then(|| {
                let secret = iroh::SecretKey::from_bytes(&[7; 32]);
                iroh::EndpointAddr::new(secret.public())
            });
            (id, RaftMemberInfo { api_addr: format!("node-{id}"), endpoint_addr: endpoint })
        })
        .collect();
    let voters: BTreeSet<u64> = ids.iter().copied().collect();
    Membership::new(vec![voters], nodes).expect("voters are nodes")
}

/// Appends `entries` and waits for the flush callback.
pub(super) async fn append(store: &mut super::RedbLogStore, entries: Vec<Entry>) {
    let (sender, flushed) = AspenTypeConfig::oneshot();
    store.append(entries, IOFlushed::signal(sender)).await.expect("append");
    flushed.await.expect("flush callback sent").expect("flushed without error");
}

#[tokio::test]
async fn reopened_file_store_finds_log_vote_kv_and_membership() {
    let dir = tempfile::tempdir().unwrap();
    let config = membership(&[1, 2]);
    let vote = Vote::new_committed(3, 1);
    let entries = vec![
        Entry::new_membership(log_id(1, 0), config.clone()),
        normal(1, 1, set("a", "1")),
        Entry::new_blank(log_id(3, 2)),
        normal(3, 3, set("b", "2")),
    ];
    {
        let store = RedbStore::open(Some(dir.path()), 1).unwrap();
        let mut log = store.log_store();
        log.save_vote(&vote).await.unwrap();
        append(&mut log, entries[..2].to_vec()).await;
        append(&mut log, entries[2..].to_vec()).await;
        log.save_committed(Some(log_id(3, 3))).await.unwrap();
        store.state_machine().apply(responderless(&entries)).await.unwrap();
        assert!(store.disk_usage_bytes() > 0, "the file has data");
    }

    let store = RedbStore::open(Some(dir.path()), 1).unwrap();
    assert_eq!(store.data_dir(), Some(dir.path()));
    store.check_health().unwrap();
    let mut log = store.log_store();
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id(3, 3)));
    assert_eq!(state.last_purged_log_id, None);
    assert_eq!(log.read_vote().await.unwrap(), Some(vote));
    assert_eq!(log.read_committed().await.unwrap(), Some(log_id(3, 3)));
    assert_eq!(log.try_get_log_entries(0..).await.unwrap(), entries);

    let reader = store.reader();
    assert_eq!(reader.get("a").await.unwrap().as_deref(), Some("1"));
    assert_eq!(reader.get("b").await.unwrap().as_deref(), Some("2"));
    assert_eq!(reader.last_applied().await.unwrap(), Some(log_id(3, 3)));
    let stored = StoredMembership::new(Some(log_id(1, 0)), config);
    assert_eq!(reader.membership().await.unwrap(), stored);
    let (applied, applied_membership) = store.state_machine().applied_state().await.unwrap();
    assert_eq!((applied, applied_membership), (Some(log_id(3, 3)), stored));
}

/// Log work answers only after it let go of the database, so a caller that drops the store
/// when it hears the answer can open the file again at once.
#[tokio::test]
async fn a_store_dropped_right_after_a_log_write_opens_again_at_once() {
    let dir = tempfile::tempdir().unwrap();
    for term in 1..=20 {
        let store = RedbStore::open(Some(dir.path()), 1).expect("the last store was dropped");
        let mut log = store.log_store();
        append(&mut log, vec![Entry::new_blank(log_id(term, term - 1))]).await;
        log.save_vote(&Vote::new_committed(term, 1)).await.unwrap();
    }
}

#[test]
fn another_node_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(RedbStore::open(Some(dir.path()), 1).unwrap());
    let refused = RedbStore::open(Some(dir.path()), 2).unwrap_err();
    assert_eq!(refused, StorageError::NodeIdMismatch { stored: 1, given: 2 });
    RedbStore::open(Some(dir.path()), 1).expect("the owner may still open it");
}

/// A data dir of layout 1 kept the log and the state machine in `aspen.redb`; it opens with its
/// state moved into `state.redb`, nothing lost.
#[tokio::test]
async fn a_data_dir_of_the_first_layout_opens_with_its_state_moved_out_of_the_log() {
    use super::schema::{
        KV_TABLE, LOG_TABLE, META_LAST_APPLIED, META_MEMBERSHIP, META_NODE_ID, META_SCHEMA_VERSION,
        META_SNAPSHOT_COUNTER, META_TABLE, SNAPSHOT_TABLE, encode, put_record,
    };
    use crate::raft::SnapshotMeta;
    let dir = tempfile::tempdir().unwrap();
    let stored = StoredMembership::new(Some(log_id(1, 0)), membership(&[1]));
    {
        // What a node of layout 1 left: every table in one file.
        let old = redb::Database::create(dir.path().join(super::DATABASE_FILE_NAME)).unwrap();
        let txn = old.begin_write().unwrap();
        {
            let mut meta = txn.open_table(META_TABLE).unwrap();
            put_record(&mut meta, &META_SCHEMA_VERSION, &1).unwrap();
            put_record(&mut meta, &META_NODE_ID, &1).unwrap();
            put_record(&mut meta, &META_LAST_APPLIED, &log_id(1, 1)).unwrap();
            put_record(&mut meta, &META_MEMBERSHIP, &stored).unwrap();
            let mut log = txn.open_table(LOG_TABLE).unwrap();
            let entry = normal(1, 1, set("a", "1"));
            log.insert(1, encode(&entry, "entry").unwrap().as_slice()).unwrap();
            txn.open_table(KV_TABLE).unwrap().insert("a", "1").unwrap();
            // Its snapshot: a record `{id, meta}` and the bytes, and the counter in `meta`.
            let snapshot_meta =
                SnapshotMeta { last_log_id: Some(log_id(1, 1)), last_membership: stored.clone() };
            let record = encode(&("1-1-4".to_string(), snapshot_meta), "record").unwrap();
            let mut snapshots = txn.open_table(SNAPSHOT_TABLE).unwrap();
            snapshots.insert("record", record.as_slice()).unwrap();
            snapshots.insert("data", [7u8, 7, 7].as_slice()).unwrap();
            put_record(&mut meta, &META_SNAPSHOT_COUNTER, &4).unwrap();
        }
        txn.commit().unwrap();
    }

    for _ in 0..2 {
        let store = RedbStore::open(Some(dir.path()), 1).unwrap();
        store.check_health().unwrap();
        assert_eq!(store.reader().get("a").await.unwrap().as_deref(), Some("1"));
        let applied = store.state_machine().applied_state().await.unwrap();
        assert_eq!(applied, (Some(log_id(1, 1)), stored.clone()));
        let entries = store.log_store().try_get_log_entries(0..).await.unwrap();
        assert_eq!(entries, [normal(1, 1, set("a", "1"))], "the log stays where it was");
        let snapshot = store.state_machine().get_current_snapshot().await.unwrap();
        let snapshot = snapshot.expect("the snapshot moved into its file");
        assert_eq!(snapshot.meta.last_log_id, Some(log_id(1, 1)));
        assert_eq!(snapshot.snapshot.into_inner(), [7, 7, 7]);
    }
    let log = redb::Database::open(dir.path().join(super::DATABASE_FILE_NAME)).unwrap();
    let txn = redb::ReadableDatabase::begin_read(&log).unwrap();
    assert!(txn.open_table(KV_TABLE).is_err(), "the log database no longer holds the state");
}

/// A state machine without its log lost the node's vote; a log purged behind a snapshot without
/// its state machine cannot rebuild it. Both are refused, and the log is left as it was.
#[tokio::test]
async fn a_data_dir_missing_one_of_its_databases_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = RedbStore::open(Some(dir.path()), 1).unwrap();
        let entries: Vec<Entry> = (0..4).map(|index| normal(1, index, set("k", "v"))).collect();
        let mut log = store.log_store();
        append(&mut log, entries.clone()).await;
        store.state_machine().apply(responderless(&entries)).await.unwrap();
        log.purge(log_id(1, 1)).await.unwrap();
    }
    let log_file = dir.path().join(super::DATABASE_FILE_NAME);
    let state_file = dir.path().join(super::STATE_DATABASE_FILE_NAME);
    let log_bytes = std::fs::read(&log_file).unwrap();

    std::fs::remove_file(&log_file).unwrap();
    let refused = RedbStore::open(Some(dir.path()), 1).unwrap_err();
    assert!(refused.to_string().contains("vote and log are lost"), "{refused}");

    std::fs::write(&log_file, &log_bytes).unwrap();
    std::fs::remove_file(&state_file).unwrap();
    let refused = RedbStore::open(Some(dir.path()), 1).unwrap_err();
    assert!(refused.to_string().contains("applied nothing"), "{refused}");
    assert!(refused.to_string().contains("cannot be rebuilt"), "{refused}");
    let log = redb::Database::open(&log_file).unwrap();
    let txn = redb::ReadableDatabase::begin_read(&log).unwrap();
    let entries = txn.open_table(super::schema::LOG_TABLE).unwrap();
    let indexes: Vec<u64> =
        redb::ReadableTable::iter(&entries).unwrap().map(|item| item.unwrap().0.value()).collect();
    assert_eq!(indexes, [2, 3], "the log was left as it was");
}

/// A state machine behind the log's purge point, with no snapshot file to bridge the gap, is
/// refused with both positions named, not left for openraft to trip over at start.
#[tokio::test]
async fn a_state_machine_behind_a_purged_log_without_a_snapshot_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = RedbStore::open(Some(dir.path()), 1).unwrap();
        let entries: Vec<Entry> = (0..5).map(|index| normal(1, index, set("k", "v"))).collect();
        let mut log = store.log_store();
        append(&mut log, entries.clone()).await;
        store.state_machine().apply(responderless(&entries[..2])).await.unwrap();
        log.purge(log_id(1, 3)).await.unwrap();
    }
    let refused = RedbStore::open(Some(dir.path()), 1).unwrap_err();
    let text = refused.to_string();
    assert!(matches!(refused, StorageError::Corrupt { .. }), "{text}");
    assert!(text.contains("purged up to") && text.contains("applied up to"), "{text}");
}

#[tokio::test]
async fn purge_and_truncate_keep_the_right_entries() {
    let store = RedbStore::open(None, 1).unwrap();
    let mut log = store.log_store();
    append(&mut log, (0..10).map(|index| Entry::new_blank(log_id(1, index))).collect()).await;
    log.truncate_after(Some(log_id(1, 6))).await.unwrap();
    log.purge(log_id(1, 2)).await.unwrap();
    let indexes: Vec<u64> =
        log.try_get_log_entries(0..).await.unwrap().iter().map(|e| e.log_id.index).collect();
    assert_eq!(indexes, [3, 4, 5, 6], "purge is inclusive, truncate_after keeps its id");
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 2)));
    assert_eq!(state.last_log_id, Some(log_id(1, 6)));
}

#[tokio::test]
#[should_panic(expected = "without a gap or overlap")]
async fn an_append_that_leaves_a_hole_is_a_bug() {
    let store = RedbStore::open(None, 1).unwrap();
    let mut log = store.log_store();
    append(&mut log, vec![Entry::new_blank(log_id(1, 0))]).await;
    append(&mut log, vec![Entry::new_blank(log_id(1, 2))]).await;
}

#[tokio::test]
async fn a_snapshot_built_on_one_store_installs_on_another() {
    let leader = RedbStore::open(None, 1).unwrap();
    let entries = vec![
        Entry::new_membership(log_id(1, 0), membership(&[1, 2])),
        normal(1, 1, set("k1", "v1")),
        normal(1, 2, WriteCommand::SetMulti { pairs: vec![("k2".into(), "v2".into())] }),
        normal(1, 3, WriteCommand::Delete { key: "k1".into() }),
    ];
    let mut leader_machine = leader.state_machine();
    leader_machine.apply(responderless(&entries)).await.unwrap();
    let built = leader_machine.build_snapshot().await.unwrap();
    assert_eq!(built.meta.last_log_id, Some(log_id(1, 3)));

    let follower = RedbStore::open(None, 2).unwrap();
    let mut follower_machine = follower.state_machine();
    follower_machine.apply(responderless(&[normal(1, 0, set("stale", "x"))])).await.unwrap();
    follower_machine.install_snapshot(&built.meta, built.snapshot.clone()).await.unwrap();

    let digest = follower.reader().digest().await.unwrap();
    assert_eq!(digest, leader.reader().digest().await.unwrap());
    assert_eq!(digest.key_count, 1, "only k2 is left, the stale key is gone");
    assert_eq!(follower.reader().get("stale").await.unwrap(), None);
    let current = follower_machine.get_current_snapshot().await.unwrap().expect("stored");
    assert_eq!(current.meta, built.meta);
    assert_eq!(current.snapshot.get_ref(), built.snapshot.get_ref());
    let applied = follower_machine.applied_state().await.unwrap();
    assert_eq!(applied, (built.meta.last_log_id, built.meta.last_membership.clone()));

    let garbage = std::io::Cursor::new(vec![0xff; 16]);
    let refused = follower_machine.install_snapshot(&built.meta, garbage).await.unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::InvalidData);
    assert_eq!(
        follower.reader().digest().await.unwrap(),
        digest,
        "a refused snapshot changes nothing"
    );
}

/// A snapshot is kept in its file, apart from the databases: it is there after a reopen, a
/// newer one replaces it, and a damaged file is reported as corrupt, not misread, until the next
/// snapshot replaces it.
#[tokio::test]
async fn a_built_snapshot_is_kept_in_its_file_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let entries: Vec<Entry> = (0..3).map(|index| normal(1, index, set("k", "v"))).collect();
    let built = {
        let store = RedbStore::open(Some(dir.path()), 1).unwrap();
        let mut machine = store.state_machine();
        machine.apply(responderless(&entries[..2])).await.unwrap();
        machine.build_snapshot().await.unwrap();
        machine.apply(responderless(&entries[2..])).await.unwrap();
        machine.build_snapshot().await.unwrap()
    };
    assert_eq!(built.meta.last_log_id, Some(log_id(1, 2)));
    let path = dir.path().join(super::SNAPSHOT_FILE_NAME);
    assert!(path.exists() && !path.with_extension("tmp").exists(), "renamed into place");

    let store = RedbStore::open(Some(dir.path()), 1).unwrap();
    let mut machine = store.state_machine();
    let current = machine.get_current_snapshot().await.unwrap().expect("kept");
    assert_eq!(current.meta, built.meta, "the newer of the two");
    assert_eq!(current.snapshot.get_ref(), built.snapshot.get_ref());

    std::fs::write(&path, b"ASPNSNP1\xff\xff").unwrap();
    let damaged = machine.get_current_snapshot().await.unwrap_err();
    assert_eq!(damaged.kind(), std::io::ErrorKind::InvalidData, "{damaged}");
    let rebuilt = machine.build_snapshot().await.expect("a damaged file is replaced");
    let current = machine.get_current_snapshot().await.unwrap().expect("kept again");
    assert_eq!(current.meta, rebuilt.meta);
}

#[test]
fn snapshot_data_over_the_limit_is_refused() {
    let limit = crate::limits::SNAPSHOT_BYTES_MAX as usize;
    assert!(super::snapshot::check_size(limit).is_ok());
    let refused = super::snapshot::check_size(limit + 1).unwrap_err();
    assert!(matches!(refused, StorageError::LimitExceeded { .. }), "{refused}");
}

#[test]
fn apply_answers_each_command() {
    let store = RedbStore::open(None, 1).unwrap();
    let cas = |expected: Option<&str>, new: &str| WriteCommand::CompareAndSwap {
        key: "k".into(),
        expected: expected.map(str::to_owned),
        new_value: new.into(),
    };
    let pairs = vec![("a".into(), "1".into()), ("a".into(), "2".into())];
    let entries = vec![
        Entry::new_blank(log_id(1, 0)),
        normal(1, 1, cas(None, "x")),
        normal(1, 2, cas(None, "y")),
        normal(1, 3, WriteCommand::SetMulti { pairs }),
        normal(1, 4, cas(Some("x"), "z")),
    ];
    let outcomes = apply_entries(store.state_database(), &entries, redb::Durability::None).unwrap();
    let mismatch = WriteOutcome::CompareAndSwapMismatch { current: Some("x".into()) };
    let applied = WriteOutcome::Applied;
    assert_eq!(outcomes, [applied.clone(), applied.clone(), mismatch, applied.clone(), applied]);
}

#[tokio::test]
async fn scan_stops_at_the_prefix_and_the_limit() {
    let store = RedbStore::open(None, 1).unwrap();
    let keys = ["a", "b/1", "b/2", "b/3", "c"];
    let entries: Vec<Entry> =
        keys.iter().zip(0..).map(|(key, index)| normal(1, index, set(key, "v"))).collect();
    store.state_machine().apply(responderless(&entries)).await.unwrap();
    let reader = store.reader();
    let (found, truncated) = reader.scan("b/", 2).await.unwrap();
    assert_eq!(found, [("b/1".to_string(), "v".to_string()), ("b/2".into(), "v".into())]);
    assert!(truncated, "b/3 is left");
    let (found, truncated) = reader.scan("b/", 3).await.unwrap();
    assert_eq!((found.len(), truncated), (3, false));
    assert_eq!(reader.scan("", 10).await.unwrap().0.len(), 5);
}

/// The entries as openraft's apply stream yields them on a follower: no client waiting.
fn responderless(entries: &[Entry]) -> stream::Iter<std::vec::IntoIter<ApplyItem>> {
    stream::iter(entries.iter().cloned().map(|entry| Ok((entry, None))).collect::<Vec<_>>())
}

type ApplyItem = Result<EntryResponder<AspenTypeConfig>, io::Error>;
