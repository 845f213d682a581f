//! The script of a run: its steps, run in order against the cluster, with the Nemesis of the
//! last `nemesis` step running in the background until a `heal` or the end of the script.
//!
//! A `heal` step (and a `network_fault` heal) is followed by a write and a read on every node
//! (liveness.rs), so that the liveness check can judge progress after every heal.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorRef};

use super::NEMESIS_STOP_TIMEOUT;
use super::checker::RunChecks;
use super::cluster::Cluster;
use super::intruder::start_intruder;
use super::liveness::probe_every_node;
use super::membership::{add_node, bootstrap, fetch_ticket, remove_node};
use super::nemesis::{self, Nemesis, NemesisArgs};
use super::observe::wait_for;
use super::ops::step_op;
use super::progress::log;
use super::workload::{Workload, WorkloadArgs};
use crate::checker::{CheckVerdict, Outcome};
use crate::history::{EventKind, OpFunction, OpType, OpValue};
use crate::nemesis::step_seed;
use crate::scenario::{CheckKind, Discovery, NetworkFault, Scenario, Step};

/// The script's state between steps.
struct Script<'a> {
    cluster: &'a Arc<Cluster>,
    checker: &'a ActorRef<RunChecks>,
    seed: u64,
    /// The Nemesis of the last `nemesis` step, until a `heal` or the end of the script.
    nemesis: Option<ActorRef<nemesis::Act>>,
    /// Verdicts of `check` steps.
    verdicts: Vec<CheckVerdict>,
    /// Workloads started with `background`, awaited before the script ends.
    background: Vec<tokio::task::JoinHandle<()>>,
}

pub(super) async fn run_script(
    cluster: &Arc<Cluster>,
    checker: &ActorRef<RunChecks>,
    scenario: &Scenario,
    seed: u64,
) -> anyhow::Result<Vec<CheckVerdict>> {
    for _ in 0..scenario.nodes {
        cluster.new_slot().await?;
    }
    for index in 0..scenario.nodes {
        cluster.start(index).await?;
        if index == 0 && scenario.node_settings.discovery == Discovery::Gossip {
            // The others join node 0's gossip topic through its ticket, nothing else.
            let ticket = fetch_ticket(cluster, 0).await?;
            *cluster.ticket.lock().expect("ticket") = Some(ticket);
        }
    }
    log(format!("{} nodes started", scenario.nodes));
    let mut script = Script {
        cluster,
        checker,
        seed,
        nemesis: None,
        verdicts: Vec::new(),
        background: Vec::new(),
    };
    let mut result = Ok(());
    for (position, step) in scenario.steps.iter().enumerate() {
        let label = format!("steps[{position}] {}", step.kind());
        log(&label);
        *cluster.step.lock().expect("step") = label.clone();
        cluster.event(EventKind::Step, None, label.clone());
        result = script.step(step, position).await.map_err(|e| e.context(label));
        if result.is_err() {
            break;
        }
    }
    // Background workloads end by themselves (their duration is bounded); the checks judge
    // their whole history.
    for workload in script.background.drain(..) {
        let _ = workload.await;
    }
    script.stop_nemesis().await;
    result.map(|()| script.verdicts)
}

impl Script<'_> {
    async fn step(&mut self, step: &Step, position: usize) -> anyhow::Result<()> {
        let cluster = self.cluster;
        match step {
            Step::Bootstrap => bootstrap(cluster).await,
            Step::Write(write) => {
                let value = OpValue::Value(write.value.clone());
                let (outcome, _) =
                    step_op(cluster, OpFunction::Write, &write.key, value, Duration::from_secs(10))
                        .await;
                anyhow::ensure!(
                    outcome == OpType::Ok,
                    "the write of {:?} was not acknowledged",
                    write.key
                );
                Ok(())
            }
            Step::Read(read) => {
                let absent = OpValue::Absent;
                let timeout = Duration::from_secs(10);
                let (outcome, value) =
                    step_op(cluster, OpFunction::Read, &read.key, absent, timeout).await;
                anyhow::ensure!(
                    outcome == OpType::Ok,
                    "the read of {:?} did not succeed",
                    read.key
                );
                if let Some(expect) = &read.expect {
                    anyhow::ensure!(
                        &value == expect,
                        "read {:?}: expected {expect:?}, got {value:?}",
                        read.key
                    );
                }
                Ok(())
            }
            Step::Wait(wait) => {
                tokio::time::sleep(Duration::from_millis(wait.ms)).await;
                Ok(())
            }
            Step::WaitFor(wait) => {
                wait_for(cluster, wait.condition, Duration::from_millis(wait.timeout_ms)).await
            }
            Step::Fault(fault) => {
                let index = cluster.resolve(fault.node)?;
                let actor = fault.crashed_actor().map(|a| a.name());
                cluster.any_fault(fault.kind, index, actor).await
            }
            Step::Workload(workload) => {
                let args = WorkloadArgs {
                    cluster: cluster.clone(),
                    step: workload.clone(),
                    seed: step_seed(self.seed, position),
                };
                let supervisor = cluster.supervisor.get_cell();
                let (_, done) = Actor::spawn_linked(None, Workload, args, supervisor).await?;
                if workload.background {
                    self.background.push(done);
                } else {
                    done.await?;
                }
                Ok(())
            }
            Step::Nemesis(step) => {
                self.stop_nemesis().await;
                let args = NemesisArgs {
                    cluster: cluster.clone(),
                    step: step.clone(),
                    seed: step_seed(self.seed, position),
                };
                let supervisor = cluster.supervisor.get_cell();
                let (nemesis, _) = Actor::spawn_linked(None, Nemesis, args, supervisor).await?;
                self.nemesis = Some(nemesis);
                Ok(())
            }
            Step::Heal => {
                self.stop_nemesis().await;
                cluster.heal(true).await?;
                probe_every_node(cluster).await;
                Ok(())
            }
            Step::NetworkFault(NetworkFault::Heal) => {
                cluster.heal_network().await?;
                probe_every_node(cluster).await;
                Ok(())
            }
            Step::NetworkFault(fault) => cluster.network_fault(fault).await,
            Step::Intruder => start_intruder(cluster).await,
            Step::AddNode => add_node(cluster).await,
            Step::RemoveNode(remove) => {
                let index = cluster.resolve(remove.node)?;
                remove_node(cluster, index).await
            }
            Step::Check(check) => {
                let found = checks(self.checker, &check.checks, false).await?;
                for verdict in &found {
                    log(format!("check: {verdict}"));
                }
                let failed: Vec<String> = found
                    .iter()
                    .filter(|v| v.outcome != Outcome::Pass)
                    .map(ToString::to_string)
                    .collect();
                self.verdicts.extend(found);
                anyhow::ensure!(failed.is_empty(), "{}", failed.join("; "));
                Ok(())
            }
        }
    }

    /// Stops the running Nemesis, letting the fault it is injecting finish.
    async fn stop_nemesis(&mut self) {
        if let Some(nemesis) = self.nemesis.take() {
            nemesis.stop_and_wait(None, Some(NEMESIS_STOP_TIMEOUT)).await.ok();
        }
    }
}

/// Asks the Checker for verdicts.
pub(super) async fn checks(
    checker: &ActorRef<RunChecks>,
    checks: &[CheckKind],
    final_reads: bool,
) -> anyhow::Result<Vec<CheckVerdict>> {
    let checks = checks.to_vec();
    ractor::call!(checker, |reply| RunChecks { checks, final_reads, reply })
        .map_err(|e| anyhow::anyhow!("the checker did not answer: {e}"))
}
