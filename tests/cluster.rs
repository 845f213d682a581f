//! Three Aspen nodes in one process over real iroh on loopback: forming a cluster, writing on
//! the leader and through a follower, restarting on the same data dirs, losing the leader,
//! catching a new learner up through a snapshot, and a survivor with the longer log campaigning
//! when a stale one asks for its vote.

mod common;

use std::time::Duration;

use aspen::api::{
    AddLearnerRequest, ClusterController, ClusterNode, KeyValueStore, ScanRequest, WriteCommand,
    WriteRequest,
};
use aspen::limits::SNAPSHOT_CHUNK_BYTES_MAX;
use aspen::{KvClient, RaftControlClient};
use common::*;

const ELECTION_BOUND: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_replicate_writes_from_leader_and_followers() {
    let (_dirs, nodes) = start_cluster(&[11, 12, 13]).await;
    let refs: Vec<_> = nodes.iter().collect();
    let leader = wait_for_common_leader(&refs, ELECTION_BOUND).await;
    assert_eq!(leader, 11, "the initializing node leads");

    let on_leader = set(&nodes[0], "written:on-leader", "1").await.expect("write on leader");
    let on_follower =
        set(&nodes[1], "written:through-follower", "2").await.expect("forwarded write");
    assert!(on_follower.log_index > on_leader.log_index);

    for node in &nodes {
        assert_eq!(
            local_value(node, on_follower.log_index, "written:on-leader").await.as_deref(),
            Some("1")
        );
        assert_eq!(
            local_value(node, on_follower.log_index, "written:through-follower").await.as_deref(),
            Some("2")
        );
        assert_eq!(
            get(node, "written:through-follower").await.unwrap(),
            "2",
            "linearizable read on {}",
            node.node_id
        );
    }
    // The membership, with every node's address, is the same everywhere.
    let states = futures::future::join_all(nodes.iter().map(|n| async {
        RaftControlClient::new(n.raft_actor.clone()).current_state().await.unwrap()
    }))
    .await;
    assert_eq!(states[0].members, vec![11, 12, 13]);
    assert!(states.iter().all(|s| s == &states[0]), "{states:#?}");
    assert!(states[0].nodes.iter().all(|n| n.raft_addr.is_some()));

    // A scan through a follower sees both keys, in order.
    let scan = KvClient::new(nodes[2].raft_actor.clone())
        .scan(ScanRequest { prefix: "written:".into(), limit: None })
        .await
        .unwrap();
    let keys: Vec<_> = scan.entries.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["written:on-leader", "written:through-follower"]);
    shutdown_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_cluster_recovers_data_and_membership_without_init() {
    let (dirs, nodes) = start_cluster(&[21, 22, 23]).await;
    let paths: Vec<_> = dirs.iter().map(|d| d.path()).collect();
    let refs: Vec<_> = nodes.iter().collect();
    wait_for_common_leader(&refs, ELECTION_BOUND).await;
    let written = set(&nodes[0], "durable", "yes").await.unwrap();
    let ids_before: Vec<_> = nodes.iter().map(|n| n.iroh_manager.endpoint_id()).collect();
    shutdown_all(nodes).await;

    let nodes = start_nodes(&[21, 22, 23], &paths).await;
    let ids_after: Vec<_> = nodes.iter().map(|n| n.iroh_manager.endpoint_id()).collect();
    assert_eq!(ids_before, ids_after, "endpoint ids are kept in the data dirs");
    let refs: Vec<_> = nodes.iter().collect();
    // Sockets get new ports on restart: tell the nodes where the others are now.
    exchange_peers(&refs);
    wait_for_common_leader(&refs, ELECTION_BOUND).await;
    for node in &nodes {
        assert_eq!(local_value(node, written.log_index, "durable").await.as_deref(), Some("yes"));
        let state = RaftControlClient::new(node.raft_actor.clone()).current_state().await.unwrap();
        assert_eq!(state.members, vec![21, 22, 23]);
    }
    set(&nodes[1], "after-restart", "ok").await.expect("the restarted cluster takes writes");
    shutdown_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn losing_the_leader_elects_a_new_one_and_writes_continue() {
    let (_dirs, mut nodes) = start_cluster(&[31, 32, 33]).await;
    let refs: Vec<_> = nodes.iter().collect();
    let old_leader = wait_for_common_leader(&refs, ELECTION_BOUND).await;
    let before = set(&nodes[0], "before-failover", "1").await.unwrap();

    let position = nodes.iter().position(|n| n.node_id == old_leader).unwrap();
    nodes.remove(position).shutdown().await.unwrap();
    let survivors: Vec<_> = nodes.iter().collect();
    wait_until("a new leader among the survivors", ELECTION_BOUND, || async {
        let leaders: Vec<_> = survivors.iter().map(|n| leader_of(n)).collect();
        leaders[0].is_some_and(|l| l != old_leader) && leaders[0] == leaders[1]
    })
    .await;
    let after = set(&nodes[0], "after-failover", "2").await.expect("writes continue");
    assert!(after.log_index > before.log_index);
    for node in &nodes {
        assert_eq!(
            local_value(node, after.log_index, "before-failover").await.as_deref(),
            Some("1")
        );
        assert_eq!(get(node, "after-failover").await.unwrap(), "2");
    }
    // The survivors report the same membership (the lost leader is still a member: nobody
    // removed it) with every node's address.
    let first = RaftControlClient::new(nodes[0].raft_actor.clone()).current_state().await.unwrap();
    let second = RaftControlClient::new(nodes[1].raft_actor.clone()).current_state().await.unwrap();
    assert_eq!(first, second);
    assert_eq!(first.members, vec![31, 32, 33]);
    assert_eq!(first.nodes.len(), 3);
    shutdown_all(nodes).await;
}

/// A survivor with the longer log campaigns as soon as a stale survivor asks it for a
/// pre-vote, instead of waiting for its own election timer. Here its timer never fires
/// (elections are disabled on it), so only that answer can elect it: without it, the stale
/// node can never win and the cluster stays without a leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_survivor_with_the_longer_log_campaigns_when_a_stale_one_asks() {
    let (dirs, mut nodes) = start_cluster(&[51, 52, 53]).await;
    let refs: Vec<_> = nodes.iter().collect();
    assert_eq!(wait_for_common_leader(&refs, ELECTION_BOUND).await, 51);

    // Node 52 misses a write that nodes 51 and 53 commit.
    nodes.remove(1).shutdown().await.unwrap();
    let missed = set(&nodes[0], "missed-by-52", "1").await.expect("a quorum of 51 and 53");
    nodes[1].raft_actor.set_elections(false);

    // The leader goes; node 52 comes back with its shorter log and starts elections.
    nodes.remove(0).shutdown().await.unwrap();
    let restarted = aspen::bootstrap_node(node_config(52, Some(dirs[1].path()))).await.unwrap();
    let survivors = [&nodes[0], &restarted];
    exchange_peers(&survivors);
    wait_until("node 53 to lead", ELECTION_BOUND, || async {
        leader_of(&nodes[0]) == Some(53) && leader_of(&restarted) == Some(53)
    })
    .await;
    assert_eq!(
        local_value(&restarted, missed.log_index, "missed-by-52").await.as_deref(),
        Some("1")
    );
    nodes.push(restarted);
    shutdown_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_learner_catches_up_through_a_multi_chunk_snapshot() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let paths: Vec<_> = dirs.iter().map(|d| d.path()).collect();
    let nodes = start_nodes(&[41, 42], &paths).await;
    let (leader, joiner) = (&nodes[0], &nodes[1]);
    form_cluster(&[leader]).await;

    // More state than one snapshot chunk: 3 chunks' worth of values, in SetMulti batches.
    let value = "v".repeat(8 * 1024);
    let keys_total = 3 * SNAPSHOT_CHUNK_BYTES_MAX / value.len() + 1;
    let kv = KvClient::new(leader.raft_actor.clone());
    let mut last = 0;
    for batch in (0..keys_total).collect::<Vec<_>>().chunks(16) {
        let pairs = batch.iter().map(|n| (format!("bulk:{n:05}"), value.clone())).collect();
        last = kv
            .write(WriteRequest { command: WriteCommand::SetMulti { pairs } })
            .await
            .unwrap()
            .log_index;
    }
    let raft = leader.raft_actor.current_raft().unwrap();
    raft.trigger().snapshot().await.unwrap();
    raft.wait(Some(ELECTION_BOUND))
        .metrics(|m| m.snapshot.is_some_and(|s| s.index >= last), "snapshot of every write")
        .await
        .unwrap();
    raft.trigger().purge_log(last).await.unwrap();
    raft.wait(Some(ELECTION_BOUND))
        .metrics(|m| m.purged.is_some_and(|p| p.index >= last), "log purged up to the snapshot")
        .await
        .unwrap();

    exchange_peers(&[leader, joiner]);
    let learner = ClusterNode::new(42, "node-42", None);
    RaftControlClient::new(leader.raft_actor.clone())
        .add_learner(AddLearnerRequest { learner })
        .await
        .expect("learner catches up");
    let joined = joiner.raft_actor.current_raft().unwrap();
    let metrics = joined
        .wait(Some(ELECTION_BOUND))
        .metrics(
            |m| m.snapshot.is_some_and(|s| s.index >= last),
            "the learner installs the snapshot",
        )
        .await
        .unwrap();
    assert!(metrics.last_applied.unwrap().index >= last);
    let reader = joiner.raft_actor.state_reader().unwrap();
    assert_eq!(reader.get("bulk:00000").await.unwrap().as_deref(), Some(value.as_str()));
    let last_key = format!("bulk:{:05}", keys_total - 1);
    assert_eq!(reader.get(&last_key).await.unwrap().as_deref(), Some(value.as_str()));
    assert_eq!(
        reader.digest().await.unwrap(),
        leader.raft_actor.state_reader().unwrap().digest().await.unwrap(),
        "the learner's state equals the leader's"
    );
    // Readers and Raft handles keep the databases open; let them go before shutting down.
    drop((reader, raft, joined));
    shutdown_all(nodes).await;
}
