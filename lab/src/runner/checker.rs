//! The Checker actor: runs the scenario's checks on the live cluster and the history recorded
//! so far, and answers with one verdict per check.
//!
//! Checks in the middle of a script judge the cluster as it is; the final checks first heal
//! every fault, read every key once more (recorded, for durability) and wait for replication
//! to settle, each with a deadline.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde_json::{Value, json};

use super::REQUEST_TIMEOUT;
use super::cluster::Cluster;
use super::http::{Reply, applied_of, metrics, request_async};
use super::intruder::intruder_reports;
use super::observe::{discovery_peers, wait_for};
use super::ops::step_op;
use super::progress::log;
use crate::checker::linearizability::check_history;
use crate::checker::{
    CheckVerdict, NodeState, check_discovery, check_durability, check_failover, check_liveness,
    check_no_intruder, check_replication, liveness_bound_ms,
};
use crate::history::{EventKind, History, OpFunction, OpValue};
use crate::limits;
use crate::scenario::{CheckKind, WaitCondition};

/// The Checker actor of a run.
pub(super) struct Checker;

/// "Run these checks and answer with their verdicts."
pub(super) struct RunChecks {
    /// The checks.
    pub(super) checks: Vec<CheckKind>,
    /// True for the final checks: read every key once more and let replication settle first.
    pub(super) final_reads: bool,
    /// Where the verdicts go.
    pub(super) reply: RpcReplyPort<Vec<CheckVerdict>>,
}
impl ractor::Message for RunChecks {}

impl Actor for Checker {
    type Msg = RunChecks;
    type State = Arc<Cluster>;
    type Arguments = Arc<Cluster>;

    async fn pre_start(
        &self,
        _myself: ActorRef<RunChecks>,
        cluster: Arc<Cluster>,
    ) -> Result<Arc<Cluster>, ActorProcessingErr> {
        Ok(cluster)
    }

    async fn handle(
        &self,
        _myself: ActorRef<RunChecks>,
        message: RunChecks,
        cluster: &mut Arc<Cluster>,
    ) -> Result<(), ActorProcessingErr> {
        let verdicts = run_checks(cluster, &message.checks, message.final_reads).await;
        let _ = message.reply.send(verdicts);
        Ok(())
    }
}

/// Runs checks; `final_reads` first reads every key once more (recorded) for durability.
async fn run_checks(
    cluster: &Arc<Cluster>,
    checks: &[CheckKind],
    final_reads: bool,
) -> Vec<CheckVerdict> {
    let history_keys = history_keys(cluster);
    if final_reads && !checks.is_empty() {
        let _ = wait_for(cluster, WaitCondition::Leader, Duration::from_secs(20)).await;
        for key in &history_keys {
            step_op(cluster, OpFunction::Read, key, OpValue::Absent, Duration::from_secs(15)).await;
        }
    }
    let history = snapshot_history(cluster);
    let events = cluster.events.lock().expect("events").clone();
    let mut verdicts = Vec::new();
    for check in checks {
        let verdict = match check {
            CheckKind::Discovery => check_discovery(&discovery_peers(cluster).await),
            CheckKind::Replication => {
                if final_reads {
                    let _ =
                        wait_for(cluster, WaitCondition::Replicated, Duration::from_secs(20)).await;
                }
                check_replication(&node_states(cluster, &history_keys).await)
            }
            CheckKind::Failover => {
                check_failover(&history, &events, limits::FAILOVER_MS_MAX_DEFAULT)
            }
            CheckKind::Durability => check_durability(&history),
            CheckKind::Liveness => {
                let settings = &cluster.scenario.node_settings;
                let bound_ms = liveness_bound_ms(settings.election_timeout_max_ms);
                check_liveness(&history, &events, &cluster.members(), bound_ms)
            }
            CheckKind::Linearizability => check_history(&history).verdict(),
            CheckKind::NoIntruder => {
                let (intruder, members) = intruder_reports(cluster).await;
                check_no_intruder(intruder.as_ref(), &members)
            }
        };
        verdicts.push(verdict);
    }
    verdicts
}

fn history_keys(cluster: &Cluster) -> Vec<String> {
    snapshot_history(cluster).keys().into_iter().map(str::to_string).collect()
}

/// The history recorded so far (operations in flight count as `info`).
pub(super) fn snapshot_history(cluster: &Cluster) -> History {
    let recorder = cluster.recorder.lock().expect("recorder");
    recorder.history()
}

/// Every key as each running member answers it, and a digest of those answers and the applied
/// log index.
async fn node_states(cluster: &Arc<Cluster>, keys: &[String]) -> Vec<NodeState> {
    let mut states = Vec::new();
    for index in cluster.members() {
        let Some(http) = cluster.http(index) else {
            states.push(NodeState { node: index, digest: None, values: None });
            continue;
        };
        let mut values = BTreeMap::new();
        let mut complete = true;
        // A follower forwards reads to the leader; give a connection that a fault broke a few
        // tries to come back before calling the node silent.
        let deadline = Instant::now() + Duration::from_secs(15);
        for key in keys {
            let body = json!({"key": key});
            let mut reply;
            loop {
                reply =
                    request_async(http.clone(), "/read", Some(body.clone()), REQUEST_TIMEOUT).await;
                let retry = matches!(reply, Reply::Lost(_) | Reply::Error(503, _));
                if !retry || Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            match reply {
                Reply::Ok(answer) => {
                    if let Some(value) = answer.get("value").and_then(Value::as_str) {
                        values.insert(key.clone(), value.to_string());
                    }
                }
                Reply::Error(404, _) => {}
                other => {
                    let why = match other {
                        Reply::Error(status, kind) => format!("HTTP {status} {kind}"),
                        Reply::Refused => "connection refused".to_string(),
                        Reply::Lost(error) => error,
                        Reply::Ok(_) => String::new(),
                    };
                    let detail = format!("replication: node {index} did not answer {key:?}: {why}");
                    log(&detail);
                    cluster.event(EventKind::Note, Some(index), detail);
                    complete = false;
                    break;
                }
            }
        }
        let applied = metrics(Some(http)).await.as_ref().and_then(applied_of);
        let digest = (complete && applied.is_some()).then(|| {
            let text = serde_json::to_string(&values).unwrap_or_default();
            format!("applied {} values {:016x}", applied.unwrap_or(0), fnv(&text))
        });
        states.push(NodeState { node: index, digest, values: Some(values) });
    }
    states
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
