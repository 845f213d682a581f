//! A one-voter openraft cluster on the redb store: what a writer hears back through
//! `client_write`, and that a Raft instance built again on the same open database (as after a
//! RaftActor restart) finds every write.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::storage::{RaftLogReader, RaftLogStorage};
use openraft::{OptionalSend, Raft};

use super::set;
use crate::api::{WriteCommand, WriteOutcome};
use crate::raft::{
    AspenRaft, AspenTypeConfig, LogId, RaftMemberInfo, Snapshot, SnapshotData, Vote,
};
use crate::storage::RedbStore;

/// Bound on every wait below: a one-node election takes one election timeout.
const WAIT: Duration = Duration::from_secs(10);

/// A network with no peers: a single voter never sends an RPC, and if it did, the peer is
/// unreachable.
struct NoPeers;

impl RaftNetworkFactory<AspenTypeConfig> for NoPeers {
    type Network = NoPeers;

    async fn new_client(&mut self, _target: u64, _node: &RaftMemberInfo) -> NoPeers {
        NoPeers
    }
}

fn unreachable() -> Unreachable<AspenTypeConfig> {
    Unreachable::from_string("a one-node test cluster has no peers")
}

impl RaftNetworkV2<AspenTypeConfig> for NoPeers {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<AspenTypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<AspenTypeConfig>, RPCError<AspenTypeConfig>> {
        Err(unreachable().into())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<AspenTypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<AspenTypeConfig>, RPCError<AspenTypeConfig>> {
        Err(unreachable().into())
    }

    async fn full_snapshot(
        &mut self,
        _vote: Vote,
        _snapshot: Snapshot,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<AspenTypeConfig>, StreamingError<AspenTypeConfig>> {
        Err(unreachable().into())
    }
}

/// Starts node 1 on `store`: new log store and state machine handles, as a RaftActor does.
async fn start(store: &RedbStore) -> AspenRaft {
    let config = openraft::Config {
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        ..Default::default()
    };
    let config = Arc::new(config.validate().expect("valid config"));
    Raft::new(1, config, NoPeers, store.log_store(), store.state_machine())
        .await
        .expect("raft starts")
}

async fn write(raft: &AspenRaft, command: WriteCommand) -> WriteOutcome {
    raft.client_write(command).await.expect("client write").data
}

fn cas(expected: Option<&str>, new_value: &str) -> WriteCommand {
    WriteCommand::CompareAndSwap {
        key: "lock".into(),
        expected: expected.map(str::to_owned),
        new_value: new_value.into(),
    }
}

#[tokio::test]
async fn client_writes_hear_their_outcome_and_survive_a_raft_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(Some(dir.path()), 1).unwrap();
    let raft = start(&store).await;
    raft.initialize(BTreeMap::from([(1, RaftMemberInfo::default())])).await.expect("initialize");
    raft.wait(Some(WAIT)).current_leader(1, "node 1 leads").await.unwrap();

    assert_eq!(write(&raft, cas(None, "a")).await, WriteOutcome::Applied);
    let mismatch = WriteOutcome::CompareAndSwapMismatch { current: Some("a".into()) };
    assert_eq!(write(&raft, cas(None, "b")).await, mismatch);
    let pairs = vec![("x".into(), "1".into()), ("y".into(), "2".into())];
    assert_eq!(write(&raft, WriteCommand::SetMulti { pairs }).await, WriteOutcome::Applied);
    let written = store.reader().digest().await.unwrap();
    raft.shutdown().await.expect("shutdown");

    // As after a RaftActor restart: new handles on the same open database.
    let raft = start(&store).await;
    raft.wait(Some(WAIT)).current_leader(1, "node 1 leads again").await.unwrap();
    assert_eq!(store.reader().digest().await.unwrap(), written, "every write survives the restart");
    assert_eq!(write(&raft, cas(Some("a"), "c")).await, WriteOutcome::Applied);
    assert_eq!(write(&raft, set("z", "3")).await, WriteOutcome::Applied);
    assert_eq!(store.reader().get("lock").await.unwrap().as_deref(), Some("c"));
    raft.shutdown().await.expect("shutdown");
}

/// After a crash the state database may be older than the snapshot file (its applies are not
/// fsynced): at start, openraft installs the snapshot and applies the rest of the log. Here the
/// state database is older still, never written, beside a log purged behind the snapshot.
#[tokio::test]
async fn a_state_machine_behind_its_snapshot_is_restored_from_it_at_start() {
    let first = tempfile::tempdir().unwrap();
    let (written, log_entries) = {
        let store = RedbStore::open(Some(first.path()), 1).unwrap();
        let raft = start(&store).await;
        raft.initialize(BTreeMap::from([(1, RaftMemberInfo::default())])).await.expect("init");
        raft.wait(Some(WAIT)).current_leader(1, "node 1 leads").await.unwrap();
        for (key, value) in [("a", "1"), ("b", "2")] {
            assert_eq!(write(&raft, set(key, value)).await, WriteOutcome::Applied);
        }
        raft.trigger().snapshot().await.expect("snapshot triggered");
        raft.wait(Some(WAIT)).snapshot(LogId::new(1.into(), 3), "snapshot built").await.unwrap();
        assert_eq!(write(&raft, set("c", "3")).await, WriteOutcome::Applied);
        let written = store.reader().digest().await.unwrap();
        let entries = store.log_store().try_get_log_entries(0..).await.unwrap();
        raft.shutdown().await.expect("shutdown");
        (written, entries)
    };

    // The same log and snapshot file, and a state database that never saw an apply.
    let second = tempfile::tempdir().unwrap();
    std::fs::copy(
        first.path().join(crate::storage::SNAPSHOT_FILE_NAME),
        second.path().join(crate::storage::SNAPSHOT_FILE_NAME),
    )
    .unwrap();
    let store = RedbStore::open(Some(second.path()), 1).unwrap();
    let mut log = store.log_store();
    crate::storage::tests::append(&mut log, log_entries).await;
    log.save_vote(&Vote::new_committed(1, 1)).await.unwrap();
    // Purged behind the snapshot, as openraft does: only the snapshot holds a and b now.
    log.purge(LogId::new(1.into(), 3)).await.unwrap();
    assert_eq!(store.reader().last_applied().await.unwrap(), None);

    let raft = start(&store).await;
    raft.wait(Some(WAIT)).current_leader(1, "node 1 leads").await.unwrap();
    raft.wait(Some(WAIT)).applied_index(Some(4), "the last entry applied").await.unwrap();
    assert_eq!(store.reader().digest().await.unwrap(), written, "snapshot, then the log's rest");
    raft.shutdown().await.expect("shutdown");
}
