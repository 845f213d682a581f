//! Every error variant of the two API traits, and every request limit, against real nodes:
//! each bad request gets its error and the node keeps serving afterwards.

mod common;

use std::time::Duration;

use aspen::api::{
    AddLearnerRequest, ChangeMembershipRequest, ClusterController, ClusterNode, ControlPlaneError,
    InitRequest, KeyValueStore, KeyValueStoreError, ReadRequest, RemoveNodeRequest, ScanRequest,
    WriteCommand, WriteRequest,
};
use aspen::limits::{KEY_BYTES_MAX, SCAN_LIMIT_MAX, SET_MULTI_PAIRS_MAX, VALUE_BYTES_MAX};
use aspen::{ControlBackend, KvClient, RaftControlClient, bootstrap_node};
use common::*;

fn write(command: WriteCommand) -> WriteRequest {
    WriteRequest { command }
}

fn set(key: &str, value: &str) -> WriteRequest {
    write(WriteCommand::Set { key: key.into(), value: value.into() })
}

fn is_invalid<T: std::fmt::Debug>(result: Result<T, KeyValueStoreError>, what: &str) {
    assert!(
        matches!(result, Err(KeyValueStoreError::InvalidRequest { .. })),
        "{what}: expected InvalidRequest, got {result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_single_node_answers_every_bad_request_and_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let node = bootstrap_node(node_config(51, Some(dir.path()))).await.unwrap();
    let cluster = RaftControlClient::new(node.raft_actor.clone());
    let kv = KvClient::new(node.raft_actor.clone());

    // Before init.
    assert_eq!(kv.write(set("k", "v")).await, Err(KeyValueStoreError::NotInitialized));
    assert_eq!(
        kv.read(ReadRequest::serializable("k")).await,
        Err(KeyValueStoreError::NotInitialized),
        "a node that never joined has nothing to serve, not an empty store"
    );
    assert_eq!(cluster.current_state().await, Err(ControlPlaneError::NotInitialized));
    let learner = ClusterNode::new(99, "x", None);
    assert_eq!(
        cluster.add_learner(AddLearnerRequest { learner: learner.clone() }).await,
        Err(ControlPlaneError::NotInitialized)
    );
    let not_me = InitRequest { initial_members: vec![ClusterNode::new(7, "x", None)] };
    assert!(matches!(cluster.init(not_me).await, Err(ControlPlaneError::InvalidRequest { .. })));

    let me = InitRequest { initial_members: vec![ClusterNode::new(51, "node-51", None)] };
    cluster.init(me.clone()).await.unwrap();
    let twice = cluster.init(me).await;
    assert!(
        matches!(&twice, Err(ControlPlaneError::InvalidRequest { reason }) if reason.contains("already")),
        "{twice:?}"
    );

    kv.write(set("kept", "value")).await.unwrap();

    // Data-plane limits and shapes.
    is_invalid(kv.write(set("", "v")).await, "empty key");
    is_invalid(kv.write(set(&"k".repeat(KEY_BYTES_MAX + 1), "v")).await, "oversize key");
    is_invalid(kv.write(set("k", &"v".repeat(VALUE_BYTES_MAX + 1))).await, "oversize value");
    let pairs = vec![("k".to_string(), "v".to_string()); SET_MULTI_PAIRS_MAX + 1];
    is_invalid(kv.write(write(WriteCommand::SetMulti { pairs })).await, "too many pairs");
    is_invalid(kv.write(write(WriteCommand::SetMulti { pairs: vec![] })).await, "no pairs");
    is_invalid(kv.read(ReadRequest::new("")).await, "empty read key");
    is_invalid(kv.read(ReadRequest::serializable("")).await, "empty serializable read key");
    let over = ScanRequest { prefix: String::new(), limit: Some(SCAN_LIMIT_MAX + 1) };
    is_invalid(kv.scan(over).await, "scan limit over the maximum");
    is_invalid(
        kv.scan(ScanRequest { prefix: String::new(), limit: Some(0) }).await,
        "scan limit 0",
    );

    // NotFound and CompareAndSwapFailed.
    assert_eq!(
        kv.read(ReadRequest::new("missing")).await,
        Err(KeyValueStoreError::NotFound { key: "missing".into() })
    );
    assert_eq!(
        kv.read(ReadRequest::serializable("missing")).await,
        Err(KeyValueStoreError::NotFound { key: "missing".into() })
    );
    assert_eq!(kv.read(ReadRequest::serializable("kept")).await.unwrap().value, "value");
    let cas = |expected: Option<&str>| {
        write(WriteCommand::CompareAndSwap {
            key: "kept".into(),
            expected: expected.map(str::to_owned),
            new_value: "swapped".into(),
        })
    };
    assert_eq!(
        kv.write(cas(Some("wrong"))).await,
        Err(KeyValueStoreError::CompareAndSwapFailed {
            key: "kept".into(),
            current: Some("value".into())
        })
    );
    assert_eq!(
        kv.write(cas(None)).await,
        Err(KeyValueStoreError::CompareAndSwapFailed {
            key: "kept".into(),
            current: Some("value".into())
        })
    );

    // Control-plane shapes.
    let unknown =
        cluster.change_membership(ChangeMembershipRequest { members: vec![51, 77] }).await;
    assert!(
        matches!(&unknown, Err(ControlPlaneError::InvalidRequest { reason }) if reason.contains("77")),
        "{unknown:?}"
    );
    let unknown = cluster.remove_node(RemoveNodeRequest { node_id: 77 }).await;
    assert!(
        matches!(&unknown, Err(ControlPlaneError::InvalidRequest { reason }) if reason.contains("77")),
        "{unknown:?}"
    );
    let last = cluster.remove_node(RemoveNodeRequest { node_id: 51 }).await;
    assert!(
        matches!(&last, Err(ControlPlaneError::InvalidRequest { reason }) if reason.contains("last voter")),
        "{last:?}"
    );
    let no_address = cluster.add_learner(AddLearnerRequest { learner }).await;
    assert!(
        matches!(&no_address, Err(ControlPlaneError::InvalidRequest { reason }) if reason.contains("no endpoint")),
        "{no_address:?}"
    );
    let bad_address = ClusterNode::new(98, "x", Some("not-an-endpoint"));
    assert!(matches!(
        cluster.add_learner(AddLearnerRequest { learner: bad_address }).await,
        Err(ControlPlaneError::InvalidRequest { .. })
    ));

    // The node still serves, and the CAS that matches applies.
    kv.write(cas(Some("value"))).await.unwrap();
    assert_eq!(kv.read(ReadRequest::new("kept")).await.unwrap().value, "swapped");

    // After shutdown, clients made earlier fail clearly instead of hanging.
    let (kv_after, cluster_after) = (kv.clone(), cluster.clone());
    node.shutdown().await.unwrap();
    assert!(matches!(
        kv_after.read(ReadRequest::new("kept")).await,
        Err(KeyValueStoreError::Failed { .. })
    ));
    assert!(matches!(cluster_after.current_state().await, Err(ControlPlaneError::Failed { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn followers_name_the_leader_when_they_cannot_serve() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let paths: Vec<_> = dirs.iter().map(|d| d.path()).collect();
    let mut nodes = start_nodes(&[61, 62], &paths).await;
    let (leader, learner) = (&nodes[0], &nodes[1]);
    form_cluster(&[leader]).await;
    exchange_peers(&[leader, learner]);
    let learner_node = ClusterNode::new(62, "node-62", None);
    RaftControlClient::new(leader.raft_actor.clone())
        .add_learner(AddLearnerRequest { learner: learner_node })
        .await
        .unwrap();
    wait_until("the learner knows the leader", Duration::from_secs(10), || async {
        leader_of(learner) == Some(61)
    })
    .await;

    // Control calls are not forwarded: a learner answers NotLeader with the leader's id.
    let on_learner = RaftControlClient::new(learner.raft_actor.clone());
    let result =
        on_learner.change_membership(ChangeMembershipRequest { members: vec![61, 62] }).await;
    assert!(
        matches!(result, Err(ControlPlaneError::NotLeader { leader: Some(61), .. })),
        "{result:?}"
    );

    // With the leader gone, a learner (which never runs for election) cannot forward.
    nodes.remove(0).shutdown().await.unwrap();
    let learner = &nodes[0];
    let result = KvClient::new(learner.raft_actor.clone()).write(set("k", "v")).await;
    assert!(
        matches!(
            result,
            Err(KeyValueStoreError::NotLeader { leader: Some(61), .. })
                | Err(KeyValueStoreError::Failed { .. })
        ),
        "{result:?}"
    );
    shutdown_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_deterministic_backend_serves_the_same_api_from_memory() {
    let config = aspen::ClusterBootstrapConfig {
        control_backend: ControlBackend::Deterministic,
        ..node_config(71, None)
    };
    let node = bootstrap_node(config).await.unwrap();
    assert!(node.raft_actor.current_raft().is_none(), "no Raft runs");
    let cluster = RaftControlClient::new(node.raft_actor.clone());
    let kv = KvClient::new(node.raft_actor.clone());
    assert_eq!(kv.read(ReadRequest::new("k")).await, Err(KeyValueStoreError::NotInitialized));
    cluster
        .init(InitRequest { initial_members: vec![ClusterNode::new(71, "mem", None)] })
        .await
        .unwrap();
    kv.write(set("k", "v")).await.unwrap();
    assert_eq!(kv.read(ReadRequest::new("k")).await.unwrap().value, "v");
    assert_eq!(cluster.current_state().await.unwrap().members, vec![71]);
    let learner = ClusterNode::new(72, "mem", None);
    cluster.add_learner(AddLearnerRequest { learner }).await.unwrap();
    let removed = cluster.remove_node(RemoveNodeRequest { node_id: 72 }).await.unwrap();
    assert_eq!((removed.members, removed.learners), (vec![71], vec![]));
    assert!(matches!(
        cluster.remove_node(RemoveNodeRequest { node_id: 71 }).await,
        Err(ControlPlaneError::InvalidRequest { .. })
    ));
    node.shutdown().await.unwrap();
}
