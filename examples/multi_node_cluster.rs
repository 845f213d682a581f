//! Multi-node cluster: three nodes in one process over real iroh QUIC on loopback. Peer
//! addresses are exchanged by hand, node 1 initializes the cluster, nodes 2 and 3 join as
//! learners and are promoted to voters, data is written through the leader, and every key is
//! read back on all three nodes, which must agree.
//!
//! Run with `cargo run --example multi_node_cluster`.

use std::time::Duration;

use aspen::api::{
    AddLearnerRequest, ChangeMembershipRequest, ClusterController, ClusterNode, InitRequest,
    KeyValueStore, ReadRequest, WriteCommand, WriteRequest,
};
use aspen::cluster::BootstrapHandle;
use aspen::{ClusterBootstrapConfig, IrohConfig, KvClient, RaftControlClient, bootstrap_node};

fn node_config(node_id: u64, data_dir: &std::path::Path) -> ClusterBootstrapConfig {
    ClusterBootstrapConfig {
        node_id,
        data_dir: Some(data_dir.to_path_buf()),
        // One machine: peers are exchanged by hand (mDNS does not work on loopback).
        iroh: IrohConfig { enable_gossip: false, enable_mdns: false, ..Default::default() },
        // Let the OS pick the HTTP API's port, so the example never collides with a running node.
        http_addr: "127.0.0.1:0".parse().expect("a socket address"),
        ..Default::default()
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(env_filter()).init();
    println!("🚀 Starting Aspen Multi-Node Cluster Example");
    let dirs = [tempfile::tempdir()?, tempfile::tempdir()?, tempfile::tempdir()?];
    println!("📁 Data directories:");
    for (n, dir) in dirs.iter().enumerate() {
        println!("   Node {}: {}", n + 1, dir.path().display());
    }

    println!("\n🔧 Bootstrapping 3 nodes concurrently...");
    let (h1, h2, h3) = tokio::try_join!(
        bootstrap_node(node_config(1, dirs[0].path())),
        bootstrap_node(node_config(2, dirs[1].path())),
        bootstrap_node(node_config(3, dirs[2].path())),
    )?;
    println!("✅ All nodes bootstrapped successfully");

    println!("\n🔗 Exchanging peer addresses for IRPC connectivity");
    let addr1 = h1.iroh_manager.node_addr().clone();
    let addr2 = h2.iroh_manager.node_addr().clone();
    let addr3 = h3.iroh_manager.node_addr().clone();
    h1.network_factory.add_peer(2, addr2.clone());
    h1.network_factory.add_peer(3, addr3.clone());
    h2.network_factory.add_peer(1, addr1.clone());
    h2.network_factory.add_peer(3, addr3.clone());
    h3.network_factory.add_peer(1, addr1.clone());
    h3.network_factory.add_peer(2, addr2.clone());
    println!("✅ Peer addresses exchanged");

    println!("\n🏗️  Initializing cluster with node 1 as initial member");
    let cluster = RaftControlClient::new(h1.raft_actor.clone());
    cluster
        .init(InitRequest { initial_members: vec![ClusterNode::new(1, "node-1", None)] })
        .await?;
    println!("✅ Cluster initialized");

    for id in [2, 3] {
        println!("\n➕ Adding node {id} as learner");
        let learner = ClusterNode::new(id, format!("node-{id}"), None);
        cluster.add_learner(AddLearnerRequest { learner }).await?;
        println!("✅ Node {id} added as learner");
    }

    println!("\n⬆️  Promoting learners to voting members");
    let state =
        cluster.change_membership(ChangeMembershipRequest { members: vec![1, 2, 3] }).await?;
    println!("✅ Membership changed");
    println!("   Voting members: {:?}", state.members);

    println!("\n📝 Writing data to the cluster (via leader)");
    let kv1 = KvClient::new(h1.raft_actor.clone());
    let mut expected = Vec::new();
    for (key, value) in [("cluster:name", "aspen"), ("cluster:size", "3"), ("cluster:mode", "raft")]
    {
        let command = WriteCommand::Set { key: key.into(), value: value.into() };
        kv1.write(WriteRequest { command }).await?;
        expected.push((key.to_string(), value.to_string()));
    }
    println!("✅ Written 3 key-value pairs");
    let pairs: Vec<(String, String)> =
        (1..=5).map(|n| (format!("item:{n}"), format!("value-{n}"))).collect();
    let last = kv1
        .write(WriteRequest { command: WriteCommand::SetMulti { pairs: pairs.clone() } })
        .await?;
    expected.extend(pairs);
    println!("✅ Written 5 more key-value pairs atomically (SetMulti)");

    let nodes = [&h1, &h2, &h3];
    verify_replication(&nodes, &expected, last.log_index).await?;

    let state2 = RaftControlClient::new(h2.raft_actor.clone()).current_state().await?;
    anyhow::ensure!(
        state2 == state || state2.members == vec![1, 2, 3],
        "node 2 sees another membership"
    );
    println!("\n📊 Summary:");
    println!("  - Bootstrapped 3-node cluster");
    println!("  - Established Raft consensus with 1 leader and 2 followers");
    println!("  - Successfully replicated {} keys across all nodes", expected.len());
    println!("  - All nodes have consistent state");

    for handle in [h1, h2, h3] {
        handle.shutdown().await?;
    }
    println!("\n🎉 Multi-node cluster example completed successfully!");
    Ok(())
}

/// Every node must have applied the last write and hold every key with the same value, read
/// both from its own state machine and linearizably through its `KvClient`.
async fn verify_replication(
    nodes: &[&BootstrapHandle],
    expected: &[(String, String)],
    log_index: u64,
) -> anyhow::Result<()> {
    for node in nodes {
        let raft = node.raft_actor.current_raft().ok_or_else(|| anyhow::anyhow!("no raft"))?;
        raft.wait(Some(Duration::from_secs(10)))
            .applied_index_at_least(Some(log_index), "replication of the last write")
            .await?;
        let reader = node.raft_actor.state_reader().ok_or_else(|| anyhow::anyhow!("no reader"))?;
        let kv = KvClient::new(node.raft_actor.clone());
        for (key, value) in expected {
            let local = reader.get(key).await?;
            anyhow::ensure!(
                local.as_deref() == Some(value.as_str()),
                "node {}: {key} is {local:?} locally",
                node.node_id
            );
            let read = kv.read(ReadRequest::new(key.clone())).await?;
            anyhow::ensure!(
                &read.value == value,
                "node {}: {key} reads {}",
                node.node_id,
                read.value
            );
        }
    }
    Ok(())
}

fn env_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into())
}
