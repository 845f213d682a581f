//! Who may talk to a node, and how much at once: a foreign iroh endpoint that is neither a
//! member nor a known peer cannot call a running node's Raft RPC (even a vote that would be
//! harmless), while the cluster keeps working; and many concurrent writes through one node
//! are all applied (the data path does not serialize them behind an actor).

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use aspen::KvClient;
use aspen::api::{KeyValueStore, WriteCommand, WriteRequest};
use aspen::discovery::PeerBook;
use aspen::raft::network::IrpcRaftNetworkFactory;
use aspen::raft::{RaftMemberInfo, Vote};
use common::*;
use iroh::endpoint::presets;
use iroh::{Endpoint, SecretKey};
use openraft::async_runtime::watch::WatchReceiver;
use openraft::error::RPCError;
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::VoteRequest;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_foreign_endpoint_cannot_call_raft_rpc() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let paths: Vec<_> = dirs.iter().map(|d| d.path()).collect();
    let nodes = start_nodes(&[91, 92], &paths).await;
    let refs: Vec<_> = nodes.iter().collect();
    form_cluster(&refs).await;
    wait_for_common_leader(&refs, Duration::from_secs(10)).await;
    let refused_before = nodes[0].rpc_server.refused_connections();

    // A stranger that knows node 91's full address and speaks the protocol.
    let stranger = Endpoint::builder(presets::Minimal)
        .secret_key(SecretKey::from_bytes(&[0xee; 32]))
        .bind_addr((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .bind()
        .await
        .unwrap();
    let factory = IrpcRaftNetworkFactory::new(stranger, PeerBook::new());
    factory.add_peer(91, nodes[0].iroh_manager.node_addr().clone());
    let mut network = factory.clone().new_client(91, &RaftMemberInfo::default()).await;
    let request = VoteRequest::new(Vote::new(1000, 7), None);
    let result = network.vote(request, RPCOption::new(Duration::from_secs(5))).await;
    assert!(matches!(result, Err(RPCError::Unreachable(_))), "{result:?}");
    assert!(nodes[0].rpc_server.refused_connections() > refused_before, "the refusal is counted");

    // The vote never reached Raft: the term did not move and the cluster still writes.
    let term = nodes[0].raft_actor.current_raft().unwrap().metrics().borrow_watched().current_term;
    assert!(term < 1000, "term {term}");
    set(&nodes[1], "after-stranger", "ok").await.expect("the cluster still serves");
    drop(network);
    shutdown_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_writes_through_one_node_are_all_applied() {
    let dirs =
        [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let paths: Vec<_> = dirs.iter().map(|d| d.path()).collect();
    let nodes = start_nodes(&[93, 94, 95], &paths).await;
    let refs: Vec<_> = nodes.iter().collect();
    form_cluster(&refs).await;
    wait_for_common_leader(&refs, Duration::from_secs(10)).await;

    let kv = KvClient::new(nodes[0].raft_actor.clone());
    let writes = (0..200).map(|n| {
        let kv = kv.clone();
        async move {
            let command =
                WriteCommand::Set { key: format!("concurrent:{n:03}"), value: n.to_string() };
            kv.write(WriteRequest { command }).await
        }
    });
    let results = futures::future::join_all(writes).await;
    let last =
        results.iter().map(|r| r.as_ref().expect("every write succeeds").log_index).max().unwrap();
    for node in &nodes {
        for n in [0, 99, 199] {
            let value = local_value(node, last, &format!("concurrent:{n:03}")).await;
            assert_eq!(value, Some(n.to_string()), "node {}", node.node_id);
        }
    }
    let counts = nodes[0].raft_actor.counters().snapshot();
    assert_eq!(counts.writes, 200);
    shutdown_all(nodes).await;
}
