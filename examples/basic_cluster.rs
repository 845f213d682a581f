//! Basic cluster: bootstrap one Aspen node, initialize a single-member cluster, read the cluster
//! state and the Raft metrics, and shut down.
//!
//! Run with `cargo run --example basic_cluster`.

use aspen::api::{ClusterController, ClusterNode, InitRequest};
use aspen::{ClusterBootstrapConfig, IrohConfig, RaftControlClient, bootstrap_node};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(env_filter()).init();
    println!("🚀 Starting Aspen Basic Cluster Example");
    let data_dir = tempfile::tempdir()?;
    println!("📁 Data directory: {}", data_dir.path().display());

    println!("🔧 Bootstrapping node 1");
    let config = ClusterBootstrapConfig {
        node_id: 1,
        data_dir: Some(data_dir.path().to_path_buf()),
        // One node on one machine needs no discovery.
        iroh: IrohConfig { enable_gossip: false, enable_mdns: false, ..Default::default() },
        // Let the OS pick the HTTP API's port, so the example never collides with a running node.
        http_addr: "127.0.0.1:0".parse().expect("a socket address"),
        ..Default::default()
    };
    let handle = bootstrap_node(config).await?;
    println!("✅ Node 1 bootstrapped successfully");

    println!("🏗️  Initializing cluster with single member");
    let cluster_client = RaftControlClient::new(handle.raft_actor.clone());
    cluster_client
        .init(InitRequest { initial_members: vec![ClusterNode::new(1, "127.0.0.1:26000", None)] })
        .await?;
    println!("✅ Cluster initialized successfully");

    let state = cluster_client.current_state().await?;
    println!("📊 Cluster state:");
    println!("   Members: {:?}", state.members);
    println!("   Nodes: {} total", state.nodes.len());

    let metrics = cluster_client.metrics().await?;
    println!("📈 Raft metrics:");
    println!(
        "   State: {:?}, leader: {:?}, term: {}",
        metrics.state, metrics.current_leader, metrics.current_term
    );
    println!("   Last applied: {:?}", metrics.last_applied.map(|id| id.index));

    handle.shutdown().await?;
    println!("🎉 Basic cluster example completed successfully!");
    Ok(())
}

fn env_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into())
}
