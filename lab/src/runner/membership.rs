//! Membership through the nodes' HTTP API, as an operator would do it: init on the first node,
//! add learners and promote them, remove a node entirely (`/remove-node`), always asking the
//! leader.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use aspen::discovery::endpoint_to_string;
use serde_json::{Value, json};

use super::REQUEST_TIMEOUT;
use super::cluster::{Cluster, NodeStatus};
use super::http::{Reply, request_async};
use crate::scenario::{Discovery, NodeIndex};

/// Posts to whichever running node leads, retrying on refusals until `timeout`.
pub(super) async fn post_to_leader(
    cluster: &Cluster,
    path: &'static str,
    body: Value,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        let target =
            cluster.leader.lock().expect("leader").map(|(l, _)| l).and_then(|l| cluster.http(l));
        if let Some(http) = target {
            match request_async(http, path, Some(body.clone()), REQUEST_TIMEOUT).await {
                Reply::Ok(value) => return Ok(value),
                Reply::Error(status, kind) => last = format!("HTTP {status} {kind}"),
                Reply::Refused => last = "connection refused".into(),
                Reply::Lost(e) => last = e,
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("{path} did not succeed within {timeout:?}: {last}")
}

pub(super) fn cluster_node(cluster: &Cluster, index: NodeIndex) -> Value {
    let slots = cluster.slots.lock().expect("slots");
    let slot = &slots[index as usize];
    if !matches!(cluster.scenario.node_settings.discovery, Discovery::Manual | Discovery::Relay) {
        // No endpoint: the leader must take it from what its node discovered.
        return json!({"id": slot.node_id, "addr": slot.http.clone().unwrap_or_default()});
    }
    json!({
        "id": slot.node_id,
        "addr": slot.http.clone().unwrap_or_default(),
        "raft_addr": endpoint_to_string(&cluster.peer_addr(slot)),
    })
}

/// The cluster ticket node `index` hands out (`GET /cluster-ticket`).
pub(super) async fn fetch_ticket(
    cluster: &Arc<Cluster>,
    index: NodeIndex,
) -> anyhow::Result<String> {
    let http = cluster.http(index).ok_or_else(|| anyhow::anyhow!("node {index} is not running"))?;
    match request_async(http, "/cluster-ticket", None, REQUEST_TIMEOUT).await {
        Reply::Ok(answer) => answer
            .get("ticket")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("GET /cluster-ticket: no ticket in {answer}")),
        Reply::Error(status, kind) => anyhow::bail!("GET /cluster-ticket: HTTP {status} {kind}"),
        Reply::Refused => anyhow::bail!("GET /cluster-ticket: connection refused"),
        Reply::Lost(e) => anyhow::bail!("GET /cluster-ticket: {e}"),
    }
}

pub(super) async fn bootstrap(cluster: &Arc<Cluster>) -> anyhow::Result<()> {
    let first = cluster.http(0).ok_or_else(|| anyhow::anyhow!("node 0 is not running"))?;
    let body = json!({"initial_members": [cluster_node(cluster, 0)]});
    match request_async(first, "/init", Some(body), Duration::from_secs(10)).await {
        Reply::Ok(_) => {}
        Reply::Error(status, kind) => anyhow::bail!("init: HTTP {status} {kind}"),
        Reply::Refused => anyhow::bail!("init: connection refused"),
        Reply::Lost(e) => anyhow::bail!("init: {e}"),
    }
    cluster.bootstrapped.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(15);
    while cluster.leader.lock().expect("leader").is_none() {
        anyhow::ensure!(Instant::now() < deadline, "node 0 did not become leader within 15 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let others: Vec<NodeIndex> = cluster.members().into_iter().filter(|i| *i != 0).collect();
    if others.is_empty() {
        return Ok(());
    }
    for index in &others {
        let body = json!({"learner": cluster_node(cluster, *index)});
        post_to_leader(cluster, "/add-learner", body, Duration::from_secs(20)).await?;
    }
    change_membership(cluster, None).await
}

pub(super) async fn change_membership(
    cluster: &Arc<Cluster>,
    without: Option<NodeIndex>,
) -> anyhow::Result<()> {
    let members = cluster.members().into_iter().filter(|i| Some(*i) != without);
    let members: Vec<u64> = members.map(|i| u64::from(i) + 1).collect();
    let body = json!({"members": members});
    post_to_leader(cluster, "/change-membership", body, Duration::from_secs(20)).await?;
    Ok(())
}

pub(super) async fn add_node(cluster: &Arc<Cluster>) -> anyhow::Result<()> {
    let index = cluster.new_slot().await?;
    cluster.start(index).await?;
    let body = json!({"learner": cluster_node(cluster, index)});
    post_to_leader(cluster, "/add-learner", body, Duration::from_secs(30)).await?;
    change_membership(cluster, None).await
}

pub(super) async fn remove_node(cluster: &Arc<Cluster>, index: NodeIndex) -> anyhow::Result<()> {
    anyhow::ensure!(cluster.members().len() > 1, "the last node cannot be removed");
    remove_member(cluster, index).await?;
    cluster.set_status(index, NodeStatus::Removed);
    let _ = cluster.signal(index, libc::SIGKILL).await;
    let mut leader = cluster.leader.lock().expect("leader");
    if leader.is_some_and(|(l, _)| l == index) {
        *leader = None;
    }
    Ok(())
}

/// Removes a node from the membership entirely, through the leader.
pub(super) async fn remove_member(cluster: &Arc<Cluster>, index: NodeIndex) -> anyhow::Result<()> {
    let node_id = cluster.slots.lock().expect("slots")[index as usize].node_id;
    let body = json!({"node_id": node_id});
    post_to_leader(cluster, "/remove-node", body, Duration::from_secs(20)).await?;
    Ok(())
}
