//! Key-value operations: `Set`, `SetMulti`, linearizable reads, overwrites, `NotFound`,
//! `Delete` and `CompareAndSwap` on a single-node cluster.
//!
//! Run with `cargo run --example kv_operations`.

use aspen::api::{
    ClusterController, ClusterNode, InitRequest, KeyValueStore, KeyValueStoreError, ReadRequest,
    WriteCommand, WriteRequest,
};
use aspen::{ClusterBootstrapConfig, IrohConfig, KvClient, RaftControlClient, bootstrap_node};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(env_filter()).init();
    println!("🚀 Starting Aspen Key-Value Operations Example");
    let data_dir = tempfile::tempdir()?;
    let config = ClusterBootstrapConfig {
        node_id: 1,
        data_dir: Some(data_dir.path().to_path_buf()),
        iroh: IrohConfig { enable_gossip: false, enable_mdns: false, ..Default::default() },
        // Let the OS pick the HTTP API's port, so the example never collides with a running node.
        http_addr: "127.0.0.1:0".parse().expect("a socket address"),
        ..Default::default()
    };
    let handle = bootstrap_node(config).await?;
    println!("✅ Node bootstrapped successfully");
    let cluster = RaftControlClient::new(handle.raft_actor.clone());
    cluster
        .init(InitRequest { initial_members: vec![ClusterNode::new(1, "127.0.0.1:26000", None)] })
        .await?;
    println!("✅ Cluster initialized");
    let kv = KvClient::new(handle.raft_actor.clone());

    println!("\n📝 Example 1: Simple Set and Read");
    set(&kv, "app:name", "Aspen").await?;
    println!("✅ Written: app:name = Aspen");
    let value = read(&kv, "app:name").await?;
    println!("✅ Read: app:name = {value} (linearizable read)");

    println!("\n📝 Example 2: Multiple Individual Writes");
    for n in 1..=3 {
        let (key, value) = (format!("counter:{n}"), format!("value_{n}"));
        set(&kv, &key, &value).await?;
        println!("✅ Written: {key} = {value}");
    }

    println!("\n📝 Example 3: Bulk Write with SetMulti");
    let pairs: Vec<(String, String)> = [
        ("config:timeout", "30"),
        ("config:retries", "3"),
        ("config:region", "local"),
        ("config:mode", "strict"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    kv.write(WriteRequest { command: WriteCommand::SetMulti { pairs: pairs.clone() } }).await?;
    println!("✅ Written {} key-value pairs atomically", pairs.len());
    println!("🔍 Reading back config values:");
    for (key, expected) in &pairs {
        let value = read(&kv, key).await?;
        anyhow::ensure!(&value == expected, "{key}: read {value}, expected {expected}");
        println!("  {key} = {value} ✓");
    }

    println!("\n📝 Example 4: Overwriting Existing Keys");
    set(&kv, "app:name", "Aspen v2").await?;
    let value = read(&kv, "app:name").await?;
    anyhow::ensure!(value == "Aspen v2", "overwrite not visible: {value}");
    println!("✅ Overwritten: app:name = {value}");

    println!("\n📝 Example 5: Handling NotFound Errors");
    match kv.read(ReadRequest::new("missing:key1")).await {
        Err(KeyValueStoreError::NotFound { key }) => {
            println!("✅ Key '{key}' not found (as expected)")
        }
        other => anyhow::bail!("expected NotFound, got {other:?}"),
    }

    println!("\n📝 Example 6: Delete and CompareAndSwap");
    kv.write(WriteRequest { command: WriteCommand::Delete { key: "counter:1".into() } }).await?;
    anyhow::ensure!(matches!(
        kv.read(ReadRequest::new("counter:1")).await,
        Err(KeyValueStoreError::NotFound { .. })
    ));
    println!("✅ Deleted: counter:1");
    let cas = |expected: Option<&str>, new_value: &str| WriteRequest {
        command: WriteCommand::CompareAndSwap {
            key: "lock:leader".into(),
            expected: expected.map(str::to_owned),
            new_value: new_value.into(),
        },
    };
    kv.write(cas(None, "node-a")).await?;
    println!("✅ CompareAndSwap: lock:leader absent → node-a");
    match kv.write(cas(None, "node-b")).await {
        Err(KeyValueStoreError::CompareAndSwapFailed { current, .. }) => {
            println!("✅ CompareAndSwap refused: lock:leader is already {current:?}")
        }
        other => anyhow::bail!("expected CompareAndSwapFailed, got {other:?}"),
    }

    handle.shutdown().await?;
    println!("\n🎉 Key-value operations example completed successfully!");
    Ok(())
}

async fn set(kv: &KvClient, key: &str, value: &str) -> anyhow::Result<()> {
    let command = WriteCommand::Set { key: key.into(), value: value.into() };
    kv.write(WriteRequest { command }).await?;
    Ok(())
}

async fn read(kv: &KvClient, key: &str) -> anyhow::Result<String> {
    Ok(kv.read(ReadRequest::new(key)).await?.value)
}

fn env_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into())
}
