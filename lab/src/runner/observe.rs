//! Watching the cluster from outside: the leader each node names (recorded as `leader`
//! events), waiting for a condition with a deadline, and what every node knows of its peers.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::STATUS_TIMEOUT;
use super::cluster::{Cluster, NodeStatus};
use super::http::{Reply, applied_of, leader_of, metrics, request_async};
use super::progress::log;
use crate::checker::NodePeers;
use crate::history::EventKind;
use crate::scenario::{NodeIndex, WaitCondition};

/// Watches the running nodes and records a `leader` event for each new leader or term. A
/// deposed leader's claim at the term it was deposed in is not a new leader.
pub(super) async fn watch_leader(cluster: Arc<Cluster>) {
    loop {
        for index in cluster.nodes_in(NodeStatus::Running) {
            let Some(m) = metrics(cluster.http(index)).await else { continue };
            let node_id = u64::from(index) + 1;
            let term = m.get("current_term").and_then(Value::as_u64).unwrap_or(0);
            if leader_of(&m) == Some(node_id)
                && m.get("state").and_then(Value::as_str) == Some("Leader")
            {
                let deposed = *cluster.deposed.lock().expect("deposed");
                let stale = deposed.is_some_and(|(node, t)| node == index && term <= t);
                let mut leader = cluster.leader.lock().expect("leader");
                if !stale && *leader != Some((index, term)) && leader.is_none_or(|(_, t)| term >= t)
                {
                    *leader = Some((index, term));
                    drop(leader);
                    cluster.event(EventKind::Leader, Some(index), format!("term {term}"));
                    log(format!("leader: node {index} (term {term})"));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(super) async fn wait_for(
    cluster: &Arc<Cluster>,
    condition: WaitCondition,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let held = match condition {
            WaitCondition::Leader => agreed_leader(cluster).await.is_some(),
            WaitCondition::Replicated => replicated(cluster).await,
            WaitCondition::LogPurged => log_purged(cluster).await,
            WaitCondition::AllNodesKnowEachOther => {
                discovery_peers(cluster).await.iter().all(|p| {
                    let everyone: BTreeSet<NodeIndex> = cluster.members().into_iter().collect();
                    p.known.as_ref().is_some_and(|known| {
                        everyone.iter().all(|n| *n == p.node || known.contains(n))
                    })
                })
            }
        };
        if held {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{condition:?} did not hold within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The leader every running member names, if they agree and it is running.
pub(super) async fn agreed_leader(cluster: &Arc<Cluster>) -> Option<NodeIndex> {
    let mut named = BTreeSet::new();
    let members = cluster.members();
    for index in &members {
        if cluster.status(*index) != Some(NodeStatus::Running) {
            continue;
        }
        named.insert(leader_of(&metrics(cluster.http(*index)).await?)?);
    }
    let leader = (*named.iter().next()? - 1) as NodeIndex;
    (named.len() == 1 && cluster.status(leader) == Some(NodeStatus::Running)).then_some(leader)
}

/// The agreed leader reports a purged log id: its log no longer starts at the beginning.
async fn log_purged(cluster: &Arc<Cluster>) -> bool {
    let Some(leader) = agreed_leader(cluster).await else { return false };
    let Some(metrics) = metrics(cluster.http(leader)).await else { return false };
    metrics.get("purged").and_then(|p| p.get("index")).and_then(Value::as_u64).is_some()
}

/// Every running member has applied the leader's last log index.
pub(super) async fn replicated(cluster: &Arc<Cluster>) -> bool {
    let Some(leader) = agreed_leader(cluster).await else { return false };
    let Some(leader_metrics) = metrics(cluster.http(leader)).await else { return false };
    let Some(last) = leader_metrics.get("last_log_index").and_then(Value::as_u64) else {
        return false;
    };
    for index in cluster.nodes_in(NodeStatus::Running) {
        let Some(m) = metrics(cluster.http(index)).await else { return false };
        if applied_of(&m) != Some(last) {
            return false;
        }
    }
    true
}

pub(super) async fn discovery_peers(cluster: &Arc<Cluster>) -> Vec<NodePeers> {
    let mut peers = Vec::new();
    for index in cluster.members() {
        let known = match cluster.http(index) {
            Some(http) => match request_async(http, "/peers", None, STATUS_TIMEOUT).await {
                Reply::Ok(Value::Array(entries)) => Some(
                    entries
                        .iter()
                        .filter_map(|e| e.get("node_id")?.as_u64())
                        .filter(|id| *id > 0)
                        .map(|id| (id - 1) as NodeIndex)
                        .collect(),
                ),
                _ => None,
            },
            None => None,
        };
        peers.push(NodePeers { node: index, known });
    }
    peers
}
