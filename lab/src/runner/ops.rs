//! One recorded operation: invoke it in the history, send it to a node, and complete it as
//! `ok`, `fail` (certainly not applied) or `info` (unknown), in Jepsen's model.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::REQUEST_TIMEOUT;
use super::cluster::{Cluster, NodeStatus};
use super::http::{Reply, agent, request};
use crate::history::{OpFunction, OpType, OpValue};
use crate::scenario::NodeIndex;

/// One recorded operation from the script (a `write` or `read` step, or a final read): retried
/// under fresh processes until it succeeds or `timeout` passes. Returns the last outcome and
/// the value read.
pub(super) async fn step_op(
    cluster: &Arc<Cluster>,
    f: OpFunction,
    key: &str,
    value: OpValue,
    timeout: Duration,
) -> (OpType, Option<String>) {
    let deadline = Instant::now() + timeout;
    loop {
        let leader = cluster.leader.lock().expect("leader").map(|(l, _)| l);
        let running = cluster.nodes_in(NodeStatus::Running);
        let target = leader.filter(|l| running.contains(l)).or_else(|| running.first().copied());
        if let Some(node) = target {
            let http = cluster.http(node).unwrap_or_default();
            let process = cluster.next_process.fetch_add(1, Ordering::SeqCst);
            let (key, value, cluster) = (key.to_string(), value.clone(), cluster.clone());
            let result = tokio::task::spawn_blocking(move || {
                one_op(&agent(REQUEST_TIMEOUT), &cluster, process, node, &http, f, &key, value)
            })
            .await
            .unwrap_or((OpType::Info, None));
            if result.0 == OpType::Ok || Instant::now() >= deadline {
                return result;
            }
        } else if Instant::now() >= deadline {
            return (OpType::Fail, None);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Invokes, sends and completes one operation; returns its outcome and the value read.
#[allow(clippy::too_many_arguments)]
pub(super) fn one_op(
    agent: &ureq::Agent,
    cluster: &Cluster,
    process: u64,
    node: NodeIndex,
    http: &str,
    f: OpFunction,
    key: &str,
    value: OpValue,
) -> (OpType, Option<String>) {
    let (path, body) = match (&f, &value) {
        (OpFunction::Read, _) => ("/read", json!({"key": key})),
        (OpFunction::Write, OpValue::Value(v)) => {
            ("/write", json!({"command": {"Set": {"key": key, "value": v}}}))
        }
        (_, OpValue::Cas { expected, new }) => (
            "/write",
            json!({"command": {"CompareAndSwap": {"key": key, "expected": expected, "new_value": new}}}),
        ),
        _ => return (OpType::Fail, None),
    };
    let recorder = &cluster.recorder;
    if recorder.lock().expect("recorder").invoke(process, f, key, value, Some(node)).is_err() {
        return (OpType::Fail, None);
    }
    let reply = request(agent, http, path, Some(&body));
    let (outcome, read) = match reply {
        Reply::Ok(answer) if f == OpFunction::Read => {
            (OpType::Ok, answer.get("value").and_then(Value::as_str).map(str::to_string))
        }
        Reply::Ok(_) => (OpType::Ok, None),
        Reply::Error(404, kind) if f == OpFunction::Read && kind == "not_found" => {
            (OpType::Ok, None)
        }
        Reply::Error(_, kind) if kind == "cas_failed" => (OpType::Fail, None),
        // Refused before any proposal: the write certainly did not happen.
        Reply::Error(_, kind) if kind == "not_leader" || kind == "not_initialized" => {
            (OpType::Fail, None)
        }
        Reply::Refused => (OpType::Fail, None),
        // A read has no effect, so a failed read is a `fail`.
        _ if f == OpFunction::Read => (OpType::Fail, None),
        _ => (OpType::Info, None),
    };
    let read_value =
        if outcome == OpType::Ok && f == OpFunction::Read { read.clone() } else { None };
    let _ = recorder.lock().expect("recorder").complete(process, outcome, read_value);
    cluster.ops_done.fetch_add(1, Ordering::Relaxed);
    (outcome, read)
}
