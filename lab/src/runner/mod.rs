//! The runner: starts real `aspen-node` processes for a scenario, runs its steps, and judges it.
//!
//! A run is an actor system (ractor), as DESIGN.md draws it:
//!
//! ```text
//! LabSupervisor
//! ├── NodeProcess × N   one aspen-node OS process each (node.rs)
//! ├── Workload          per workload step, with one WorkloadClient per client (workload.rs)
//! ├── Nemesis           per nemesis step, the seeded fault schedule (nemesis.rs)
//! └── Checker           the checks, in the middle of the script and at the end (checker.rs)
//! ```
//!
//! The script itself ([`run_scenario`]) walks the steps in order; the [`Cluster`] it shares
//! with the actors holds the nodes' slots and the run's records (events, history, the leader
//! last seen, written by the leader watcher in observe.rs). Process faults and heal are in
//! cluster.rs, membership changes in membership.rs, one recorded operation in ops.rs, HTTP in
//! http.rs, the terminal status line in progress.rs. Every process is killed and every
//! temporary directory removed when the run ends, also on an error or Ctrl-C.
//!
//! Caveats:
//! - Reads are linearizable (served through the leader), so the replication check compares
//!   what every node answers for every key plus the applied log index, not each node's local
//!   state machine.
//! - `network: netns` is refused with a message: not implemented yet.

mod checker;
mod cluster;
mod http;
mod membership;
mod nemesis;
mod node;
mod observe;
mod ops;
mod progress;
mod workload;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorRef};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

use crate::checker::{CheckVerdict, Outcome};
use crate::history::{EventKind, Events, OpFunction, OpType, OpValue, Recorder, RunClock};
use crate::nemesis::step_seed;
use crate::report::{RunData, RunSummary};
use crate::scenario::{CheckKind, Network, Scenario, Step};
use checker::{Checker, RunChecks};
use cluster::{Cluster, NodeStatus};
use membership::{add_node, bootstrap, remove_node};
use nemesis::{Nemesis, NemesisArgs};
use node::{LabSupervisor, ProcessGuard};
use observe::{wait_for, watch_leader};
use ops::step_op;
use progress::Progress;
pub(crate) use progress::log;
use workload::{Workload, WorkloadArgs};

/// The cookie of the nodes' control port.
const COOKIE: &str = "aspen-lab";
/// Timeout of one workload or step request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Timeout of one status request (metrics, peers).
const STATUS_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a stopping Nemesis may take to finish the fault it is injecting (a wipe and
/// rejoin waits for the node to catch up).
const NEMESIS_STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// Set on Ctrl-C, so that workload clients stop at once.
pub(super) static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// How to run a scenario.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The seed.
    pub seed: u64,
    /// Where run directories go.
    pub out: PathBuf,
    /// The `aspen-node` binary.
    pub node_bin: PathBuf,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The run directory.
    pub run_dir: PathBuf,
    /// The overall outcome (a failed step makes it `Fail`).
    pub outcome: Outcome,
    /// The summary written.
    pub summary: RunSummary,
}

/// The `aspen-node` next to the running executable (the same target directory).
pub fn default_node_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let candidate = dir.join("aspen-node");
    if candidate.exists() {
        return candidate;
    }
    // A test executable lives in target/<profile>/deps.
    dir.parent().map(|p| p.join("aspen-node")).unwrap_or(candidate)
}

/// Runs one scenario; `name` names it in the summary (the file name).
pub fn run_scenario(
    name: &str,
    scenario: &Scenario,
    options: &RunOptions,
) -> anyhow::Result<RunOutcome> {
    if scenario.network == Network::Netns {
        anyhow::bail!("network \"netns\" is not implemented by the runner yet");
    }
    if !options.node_bin.exists() {
        anyhow::bail!(
            "{} not found: build the workspace first (cargo build --workspace), or pass \
             --node-bin",
            options.node_bin.display()
        );
    }
    let stem = name.trim_end_matches(".json");
    let mut run_dir = options.out.join(format!("{stem}-seed{}", options.seed));
    let mut attempt = 1;
    while run_dir.exists() {
        attempt += 1;
        run_dir = options.out.join(format!("{stem}-seed{}-{attempt}", options.seed));
    }
    std::fs::create_dir_all(&run_dir)?;
    let guard = ProcessGuard;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let result = runtime.block_on(async {
        tokio::select! {
            result = run_async(name, scenario, options, &run_dir) => result,
            _ = tokio::signal::ctrl_c() => {
                INTERRUPTED.store(true, Ordering::SeqCst);
                Err(anyhow::anyhow!("interrupted"))
            }
        }
    });
    drop(guard);
    // Dropping the runtime drops every monitor task, whose `kill_on_drop` children die.
    runtime.shutdown_timeout(Duration::from_secs(2));
    let (summary, outcome) = result?;
    Ok(RunOutcome { run_dir, outcome, summary })
}

async fn run_async(
    name: &str,
    scenario: &Scenario,
    options: &RunOptions,
    run_dir: &Path,
) -> anyhow::Result<(RunSummary, Outcome)> {
    let clock = RunClock::start();
    let (supervisor, _) = Actor::spawn(None, LabSupervisor, ()).await?;
    let cluster = Arc::new(Cluster {
        slots: Mutex::new(Vec::new()),
        supervisor: supervisor.clone(),
        scenario: scenario.clone(),
        data_root: tempfile::Builder::new().prefix("aspen-lab-").tempdir()?,
        run_dir: run_dir.to_path_buf(),
        bin: options.node_bin.clone(),
        clock,
        events: Arc::new(Mutex::new(Events::default())),
        recorder: Arc::new(Mutex::new(Recorder::new(clock))),
        leader: Mutex::new(None),
        rng: Mutex::new(ChaCha8Rng::seed_from_u64(options.seed)),
        next_process: AtomicU64::new(0),
        bootstrapped: AtomicBool::new(false),
        step: Mutex::new("starting".into()),
        ops_done: AtomicU64::new(0),
    });
    let (checker, _) =
        Actor::spawn_linked(None, Checker, cluster.clone(), supervisor.get_cell()).await?;
    let watcher = tokio::spawn(watch_leader(cluster.clone()));
    let progress = Progress::start(cluster.clone());
    let script = run_script(&cluster, &checker, scenario, options.seed).await;
    let mut verdicts = Vec::new();
    let script_error = match script {
        Ok(found) => {
            verdicts.extend(found);
            None
        }
        Err(error) => {
            log(format!("step failed: {error:#}"));
            cluster.event(EventKind::Note, None, format!("step failed: {error:#}"));
            Some(error)
        }
    };
    // Final checks, with every fault healed.
    if cluster.bootstrapped.load(Ordering::SeqCst) {
        if let Err(error) = cluster.heal(false).await {
            log(format!("heal before the checks failed: {error:#}"));
        }
        *cluster.step.lock().expect("step") = "final checks".into();
        verdicts.extend(checks(&checker, &scenario.checks, true).await?);
    }
    drop(progress);
    watcher.abort();
    // Stop every node: the supervisor's children kill their processes as they stop.
    for index in cluster.members() {
        if cluster.status(index) != Some(NodeStatus::Down) {
            let _ = cluster.signal(index, libc::SIGKILL).await;
        }
    }
    supervisor.stop_and_wait(None, Some(Duration::from_secs(10))).await.ok();
    let events = cluster.events.lock().expect("events").clone();
    let recorder =
        std::mem::replace(&mut *cluster.recorder.lock().expect("recorder"), Recorder::new(clock));
    let history = recorder.into_history();
    let mut summary =
        RunSummary::build(name, &scenario.description, options.seed, verdicts, &history, &events);
    if script_error.is_some() {
        summary.outcome = Outcome::Fail;
    }
    let outcome = summary.outcome;
    RunData { summary: summary.clone(), history, events }.write(run_dir)?;
    for verdict in &summary.verdicts {
        println!("  {verdict}");
    }
    if let Some(error) = script_error {
        println!("  script: FAIL: {error:#}");
    }
    Ok((summary, outcome))
}

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

async fn run_script(
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
                cluster.heal(true).await
            }
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
async fn checks(
    checker: &ActorRef<RunChecks>,
    checks: &[CheckKind],
    final_reads: bool,
) -> anyhow::Result<Vec<CheckVerdict>> {
    let checks = checks.to_vec();
    ractor::call!(checker, |reply| RunChecks { checks, final_reads, reply })
        .map_err(|e| anyhow::anyhow!("the checker did not answer: {e}"))
}
