//! Supervision: an operator on a second ractor node crashes a node's RaftActor through its
//! NodeControl actor over ractor_cluster; the node restarts it and serves again. Crashed past
//! the restart intensity, the node stops with a clear error. A wrong cookie is refused.

mod common;

use std::time::Duration;

use aspen::api::{ClusterController, ClusterNode, InitRequest};
use aspen::cluster::NodeStatus;
use aspen::cluster::node_control::{ControlError, RemoteNodeControl};
use aspen::limits::ACTOR_RESTARTS_MAX;
use aspen::{RaftControlClient, bootstrap_node};
use common::*;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

async fn single_node_cluster(node_id: u64, dir: &std::path::Path) -> aspen::BootstrapHandle {
    let node = bootstrap_node(node_config(node_id, Some(dir))).await.unwrap();
    let me = ClusterNode::new(node_id, format!("node-{node_id}"), None);
    RaftControlClient::new(node.raft_actor.clone())
        .init(InitRequest { initial_members: vec![me] })
        .await
        .unwrap();
    wait_until("the node leads itself", Duration::from_secs(10), || async {
        leader_of(&node) == Some(node_id)
    })
    .await;
    node
}

fn control_addr(node: &aspen::BootstrapHandle) -> String {
    format!("127.0.0.1:{}", node.ractor_port())
}

async fn crash_raft_and_wait_for_restart(
    operator: &RemoteNodeControl,
    node: &aspen::BootstrapHandle,
    restarts: u32,
) {
    operator.crash_actor("raft").await.expect("crash through NodeControl");
    wait_until("the RaftActor to be restarted", Duration::from_secs(10), || async {
        node.supervision_report.child("raft").is_some_and(|c| c.restarts == restarts && c.running)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crashed_raft_actor_is_restarted_and_the_node_serves_again() {
    let dir = tempfile::tempdir().unwrap();
    let node = single_node_cluster(81, dir.path()).await;
    let before = set(&node, "before-crash", "1").await.unwrap();

    let operator =
        RemoteNodeControl::connect(&control_addr(&node), "aspen-test-cookie", 81, CONNECT_TIMEOUT)
            .await
            .expect("the right cookie is accepted");
    let actors = operator.list_actors().await.unwrap();
    let roles: Vec<_> = actors.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(roles, ["discovery", "http", "node-control", "raft", "storage"]);
    assert!(actors.iter().all(|a| a.running && a.restarts == 0), "{actors:#?}");

    crash_raft_and_wait_for_restart(&operator, &node, 1).await;
    let listed = operator.list_actors().await.unwrap();
    assert_eq!(listed.iter().find(|a| a.name == "raft").unwrap().restarts, 1);

    // The new Raft instance recovers from the same database and serves reads and writes.
    wait_until("leadership after the restart", Duration::from_secs(10), || async {
        leader_of(&node) == Some(81)
    })
    .await;
    assert_eq!(get(&node, "before-crash").await.unwrap(), "1");
    let after = set(&node, "after-crash", "2").await.expect("writes after the restart");
    assert!(after.log_index > before.log_index);
    assert_eq!(node.status(), NodeStatus::Running);
    operator.close().await;
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crashing_past_the_restart_intensity_stops_the_node_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let node = single_node_cluster(82, dir.path()).await;
    let operator =
        RemoteNodeControl::connect(&control_addr(&node), "aspen-test-cookie", 82, CONNECT_TIMEOUT)
            .await
            .unwrap();
    for restarts in 1..=ACTOR_RESTARTS_MAX as u32 {
        crash_raft_and_wait_for_restart(&operator, &node, restarts).await;
    }
    // This crash makes the supervisor give up and stop every child, NodeControl included, so
    // the reply may not make it back: the node's status is what tells.
    let _ = operator.crash_actor("raft").await;
    let status = node.wait_stopped(Duration::from_secs(10)).await.expect("the node stops");
    let NodeStatus::Stopped { error: Some(error) } = status else {
        panic!("expected a stop with an error, got {status:?}");
    };
    assert!(error.contains("raft") && error.contains("restarts"), "{error}");
    assert!(set(&node, "k", "v").await.is_err(), "a stopped node serves no writes");
    operator.close().await;
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_cookie_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = bootstrap_node(node_config(83, Some(dir.path()))).await.unwrap();
    let result = RemoteNodeControl::connect(
        &control_addr(&node),
        "not-the-cookie",
        83,
        Duration::from_secs(3),
    )
    .await;
    assert!(
        matches!(
            result,
            Err(ControlError::AuthenticationFailed { .. }) | Err(ControlError::Unreachable { .. })
        ),
        "{result:?}"
    );
    node.shutdown().await.unwrap();
}
