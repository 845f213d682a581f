//! Helpers for integration tests that run several Aspen nodes in one process over real iroh on
//! loopback.

#![allow(dead_code)]

use openraft::async_runtime::watch::WatchReceiver;
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use aspen::api::{
    AddLearnerRequest, ChangeMembershipRequest, ClusterController, ClusterNode, InitRequest,
    KeyValueStore, KeyValueStoreError, ReadRequest, WriteCommand, WriteRequest, WriteResult,
};
use aspen::cluster::BootstrapHandle;
use aspen::{ClusterBootstrapConfig, IrohConfig, KvClient, RaftControlClient, bootstrap_node};

/// Fast timeouts so that elections in tests take a fraction of a second.
pub fn node_config(node_id: u64, data_dir: Option<&Path>) -> ClusterBootstrapConfig {
    ClusterBootstrapConfig {
        node_id,
        data_dir: data_dir.map(Path::to_path_buf),
        cookie: "aspen-test-cookie".into(),
        // Several nodes share one process and one machine: let the OS pick the HTTP port.
        http_addr: "127.0.0.1:0".parse().unwrap(),
        heartbeat_interval_ms: 100,
        election_timeout_min_ms: 400,
        election_timeout_max_ms: 800,
        iroh: IrohConfig { enable_gossip: false, enable_mdns: false, ..Default::default() },
        ..Default::default()
    }
}

/// Starts nodes `ids` on the given data dirs.
pub async fn start_nodes(ids: &[u64], dirs: &[&Path]) -> Vec<BootstrapHandle> {
    let mut handles = Vec::new();
    for (id, dir) in ids.iter().zip(dirs) {
        handles.push(bootstrap_node(node_config(*id, Some(dir))).await.expect("bootstrap"));
    }
    handles
}

/// Starts nodes `ids`, each on a fresh data dir, and forms them into one cluster with the first
/// as its initial leader. The dirs must outlive the nodes.
pub async fn start_cluster(ids: &[u64]) -> (Vec<tempfile::TempDir>, Vec<BootstrapHandle>) {
    let dirs: Vec<_> = ids.iter().map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let paths: Vec<_> = dirs.iter().map(|d| d.path()).collect();
    let nodes = start_nodes(ids, &paths).await;
    form_cluster(&nodes.iter().collect::<Vec<_>>()).await;
    (dirs, nodes)
}

/// Tells every node where every other one is.
pub fn exchange_peers(nodes: &[&BootstrapHandle]) {
    for a in nodes {
        for b in nodes {
            if a.node_id != b.node_id {
                a.network_factory.add_peer(b.node_id, b.iroh_manager.node_addr().clone());
            }
        }
    }
}

/// Initializes `nodes[0]` alone, adds the others as learners and promotes everyone.
pub async fn form_cluster(nodes: &[&BootstrapHandle]) {
    exchange_peers(nodes);
    let first = RaftControlClient::new(nodes[0].raft_actor.clone());
    let me = ClusterNode::new(nodes[0].node_id, format!("node-{}", nodes[0].node_id), None);
    first.init(InitRequest { initial_members: vec![me] }).await.expect("init");
    for node in &nodes[1..] {
        let learner = ClusterNode::new(node.node_id, format!("node-{}", node.node_id), None);
        first.add_learner(AddLearnerRequest { learner }).await.expect("add_learner");
    }
    let members = nodes.iter().map(|n| n.node_id).collect();
    first.change_membership(ChangeMembershipRequest { members }).await.expect("change_membership");
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes; panics saying what it
/// waited for.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !condition().await {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The leader as seen by `node`, if any.
pub fn leader_of(node: &BootstrapHandle) -> Option<u64> {
    node.raft_actor.current_raft().and_then(|raft| raft.metrics().borrow_watched().current_leader)
}

/// Waits until every node names the same leader and returns it.
pub async fn wait_for_common_leader(nodes: &[&BootstrapHandle], timeout: Duration) -> u64 {
    wait_until("one leader on every node", timeout, || async {
        let leaders: Vec<_> = nodes.iter().map(|n| leader_of(n)).collect();
        leaders[0].is_some() && leaders.iter().all(|l| *l == leaders[0])
    })
    .await;
    leader_of(nodes[0]).expect("leader")
}

/// A `Set` through `node`'s KvClient.
pub async fn set(
    node: &BootstrapHandle,
    key: &str,
    value: &str,
) -> Result<WriteResult, KeyValueStoreError> {
    let command = WriteCommand::Set { key: key.into(), value: value.into() };
    KvClient::new(node.raft_actor.clone()).write(WriteRequest { command }).await
}

/// A linearizable read through `node`'s KvClient.
pub async fn get(node: &BootstrapHandle, key: &str) -> Result<String, KeyValueStoreError> {
    KvClient::new(node.raft_actor.clone()).read(ReadRequest::new(key)).await.map(|r| r.value)
}

/// Waits until `node` has applied `index`, then reads `key` from its own state machine.
pub async fn local_value(node: &BootstrapHandle, index: u64, key: &str) -> Option<String> {
    let raft = node.raft_actor.current_raft().expect("raft running");
    raft.wait(Some(Duration::from_secs(10)))
        .applied_index_at_least(Some(index), "replication")
        .await
        .expect("node applies the write");
    node.raft_actor.state_reader().expect("reader").get(key).await.expect("local read")
}

/// Shuts every node down.
pub async fn shutdown_all(nodes: Vec<BootstrapHandle>) {
    for node in nodes {
        node.shutdown().await.expect("shutdown");
    }
}
