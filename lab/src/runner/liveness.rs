//! Progress after a heal: the runner sends a write and then a linearizable read to every
//! running node, each retried until it succeeds or the liveness bound passes.
//!
//! The operations are recorded in the history like any other (key `liveness-n<index>`, one key
//! per node, so that probes of different nodes do not contend), so the linearizability and
//! durability checks cover them, and the liveness check ([`crate::checker::check_liveness`])
//! judges whether each node wrote and read in time. This module only sends them; a node that
//! does not make it is named in a log line here and in the liveness verdict.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::REQUEST_TIMEOUT;
use super::cluster::{Cluster, NodeStatus};
use super::http::agent;
use super::ops::one_op;
use super::progress::log;
use crate::checker::liveness_bound_ms;
use crate::history::{OpFunction, OpType, OpValue};
use crate::scenario::NodeIndex;

/// Pause between two attempts of one probe operation.
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// Sends a write and a read to every running node at once, each within the liveness bound.
pub(super) async fn probe_every_node(cluster: &Arc<Cluster>) {
    let settings = &cluster.scenario.node_settings;
    let bound = Duration::from_millis(liveness_bound_ms(settings.election_timeout_max_ms));
    let started = Instant::now();
    let deadline = started + bound;
    let round = cluster.next_process.load(Ordering::SeqCst);
    let mut probes = tokio::task::JoinSet::new();
    for node in cluster.nodes_in(NodeStatus::Running) {
        let cluster = cluster.clone();
        probes.spawn(async move { (node, probe_node(&cluster, node, round, deadline).await) });
    }
    let mut missing = Vec::new();
    while let Some(joined) = probes.join_next().await {
        match joined {
            Ok((_, Ok(()))) => {}
            Ok((node, Err(what))) => missing.push(format!("node {node}: {what}")),
            Err(error) => missing.push(format!("a probe failed: {error}")),
        }
    }
    missing.sort();
    match missing.is_empty() {
        true => log(format!(
            "liveness: every node wrote and read {:.1} s after the heal",
            started.elapsed().as_secs_f64()
        )),
        false => log(format!("liveness: {} within {bound:?}", missing.join(", "))),
    }
}

/// A write and then a read of `liveness-n<node>` on `node`, each retried until the deadline.
async fn probe_node(
    cluster: &Arc<Cluster>,
    node: NodeIndex,
    round: u64,
    deadline: Instant,
) -> Result<(), &'static str> {
    let key = format!("liveness-n{node}");
    let value = OpValue::Value(format!("heal-{round}"));
    if !until_ok(cluster, node, OpFunction::Write, &key, &value, deadline).await {
        return Err("no acknowledged write");
    }
    if !until_ok(cluster, node, OpFunction::Read, &key, &OpValue::Absent, deadline).await {
        return Err("no successful read");
    }
    Ok(())
}

/// Sends one operation to `node` until it completes `ok`; false if the deadline passed first.
async fn until_ok(
    cluster: &Arc<Cluster>,
    node: NodeIndex,
    f: OpFunction,
    key: &str,
    value: &OpValue,
    deadline: Instant,
) -> bool {
    while Instant::now() < deadline {
        let Some(http) = cluster.http(node) else { return false };
        // A fresh process per attempt: an attempt that ended `info` may still take effect.
        let process = cluster.next_process.fetch_add(1, Ordering::SeqCst);
        let (cluster_, key_, value_) = (cluster.clone(), key.to_string(), value.clone());
        let timeout = REQUEST_TIMEOUT.min(deadline.saturating_duration_since(Instant::now()));
        let outcome = tokio::task::spawn_blocking(move || {
            let agent = agent(timeout.max(Duration::from_millis(100)));
            one_op(&agent, &cluster_, process, node, &http, f, &key_, value_).0
        })
        .await
        .unwrap_or(OpType::Info);
        if outcome == OpType::Ok {
            return true;
        }
        tokio::time::sleep(RETRY_AFTER).await;
    }
    false
}
