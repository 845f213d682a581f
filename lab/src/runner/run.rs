//! One run from start to end: the run directory, the runtime, the supervisor and its actors,
//! the network of a `netns` run, the script, the final heal and checks, and the teardown that
//! follows whatever happened (an error, a failed step, Ctrl-C).

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorRef};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

use super::checker::Checker;
use super::cluster::{Cluster, NodeStatus};
use super::intruder::stop_intruder;
use super::liveness::probe_every_node;
use super::network::NetworkMsg;
use super::node::{LabSupervisor, ProcessGuard, SupervisorMsg};
use super::observe::watch_leader;
use super::progress::{Progress, log};
use super::script::{checks, run_script};
use super::servers::DiscoveryServers;
use super::{INTERRUPTED, RunOptions, RunOutcome};
use crate::checker::Outcome;
use crate::history::{EventKind, Events, History, Recorder, RunClock};
use crate::network::{NetnsTopology, NetworkError, support, teardown_all};
use crate::report::{RunData, RunSummary};
use crate::scenario::{NemesisStep, Network, NetworkFault, NetworkFaultKind, Scenario, Step};

/// Why a scenario cannot run on this machine; the run is reported as skipped with it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Skip(String);

/// Runs one scenario; `name` names it in the summary (the file name). A scenario this machine
/// cannot run (see [`RunOutcome::skipped`]) comes back skipped, without a run directory.
pub fn run_scenario(
    name: &str,
    scenario: &Scenario,
    options: &RunOptions,
) -> anyhow::Result<RunOutcome> {
    if scenario.network == Network::Netns
        && let Err(error) = support()
    {
        return Ok(skipped(name, scenario, options, error.to_string()));
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
    // The nodes die before their namespaces are removed, so that every exit is one the lab
    // asked for.
    drop(guard);
    // Dropping the runtime drops every monitor task, whose `kill_on_drop` children die, and
    // every actor, whose topology removes its network when dropped.
    runtime.shutdown_timeout(Duration::from_secs(2));
    // Whatever an error or Ctrl-C left of this process's networks.
    for error in teardown_all() {
        eprintln!("aspen-lab: network teardown: {error}");
    }
    match result {
        Err(error) if error.downcast_ref::<Skip>().is_some() => {
            let _ = std::fs::remove_dir_all(&run_dir);
            Ok(skipped(name, scenario, options, error.to_string()))
        }
        Err(error) => Err(error),
        Ok((summary, outcome)) => Ok(RunOutcome { run_dir, outcome, summary, skipped: None }),
    }
}

/// The outcome of a scenario skipped for `reason`.
fn skipped(name: &str, scenario: &Scenario, options: &RunOptions, reason: String) -> RunOutcome {
    let (history, events) = (History::default(), Events::default());
    let description = &scenario.description;
    let summary = RunSummary::build(name, description, options.seed, vec![], &history, &events);
    let run_dir = options.out.clone();
    RunOutcome { run_dir, outcome: Outcome::Unknown, summary, skipped: Some(reason) }
}

/// Whether the scenario delays packets somewhere (a step, or a nemesis that may draw a delay).
fn needs_delay(scenario: &Scenario) -> bool {
    scenario.steps.iter().any(|step| match step {
        Step::NetworkFault(fault) => matches!(fault, NetworkFault::Delay(_)),
        Step::Nemesis(NemesisStep { network_faults, .. }) => {
            network_faults.contains(&NetworkFaultKind::Delay)
        }
        _ => false,
    })
}

/// Builds the network of a `netns` run and hands it to a Network actor under the supervisor.
/// A machine that cannot do what the scenario needs is a [`Skip`].
async fn start_network(
    scenario: &Scenario,
    supervisor: &ActorRef<SupervisorMsg>,
) -> anyhow::Result<(ActorRef<NetworkMsg>, Ipv4Addr)> {
    let delay = needs_delay(scenario);
    let built = tokio::task::spawn_blocking(move || {
        let topology = NetnsTopology::create(0)?;
        if delay {
            // Never drop a delay silently: without netem the scenario cannot run as written.
            topology.netem_available().map_err(|error| match error {
                NetworkError::Unsupported { reason } => NetworkError::Unsupported {
                    reason: format!("no tc netem in this kernel ({reason})"),
                },
                other => other,
            })?;
        }
        Ok::<_, NetworkError>(topology)
    })
    .await?;
    let topology = match built {
        Ok(topology) => topology,
        Err(NetworkError::Unsupported { reason }) => return Err(Skip(reason).into()),
        Err(error) => anyhow::bail!("network: {error}"),
    };
    let lab_address = topology.lab_address();
    log(format!(
        "network {}: subnet {}, lab at {lab_address}",
        topology.run_id(),
        topology.subnet()
    ));
    let network = ractor::call!(supervisor, SupervisorMsg::SpawnNetwork, topology)
        .map_err(|e| anyhow::anyhow!("spawn the network actor: {e}"))?
        .map_err(|e| anyhow::anyhow!(e))?;
    Ok((network, lab_address))
}

async fn run_async(
    name: &str,
    scenario: &Scenario,
    options: &RunOptions,
    run_dir: &Path,
) -> anyhow::Result<(RunSummary, Outcome)> {
    let clock = RunClock::start();
    let (supervisor, _) = Actor::spawn(None, LabSupervisor, ()).await?;
    let (network, lab_address) = match scenario.network {
        Network::Netns => match start_network(scenario, &supervisor).await {
            Ok((network, lab_address)) => (Some(network), lab_address),
            Err(error) => {
                supervisor.stop_and_wait(None, Some(Duration::from_secs(10))).await.ok();
                return Err(error);
            }
        },
        Network::Loopback => (None, Ipv4Addr::LOCALHOST),
    };
    let servers = match DiscoveryServers::start(scenario.node_settings.discovery, lab_address).await
    {
        Ok(servers) => servers,
        Err(error) => {
            supervisor.stop_and_wait(None, Some(Duration::from_secs(10))).await.ok();
            return Err(error);
        }
    };
    std::fs::create_dir_all(run_dir)?;
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
        deposed: Mutex::new(None),
        network,
        network_faults: Mutex::new(Vec::new()),
        rng: Mutex::new(ChaCha8Rng::seed_from_u64(options.seed)),
        next_process: AtomicU64::new(0),
        bootstrapped: AtomicBool::new(false),
        step: Mutex::new("starting".into()),
        ops_done: AtomicU64::new(0),
        ticket: Mutex::new(None),
        discovery_args: servers.node_args(),
        relay_url: servers.relay_url(),
        lab_address,
        intruder: Mutex::new(None),
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
    // Final checks, with every fault healed and every node shown to make progress.
    if cluster.bootstrapped.load(Ordering::SeqCst) {
        *cluster.step.lock().expect("step") = "final heal".into();
        match cluster.heal(false).await {
            Ok(true) => probe_every_node(&cluster).await,
            Ok(false) => {}
            Err(error) => log(format!("heal before the checks failed: {error:#}")),
        }
        *cluster.step.lock().expect("step") = "final checks".into();
        verdicts.extend(checks(&checker, &scenario.checks, true).await?);
    }
    drop(progress);
    watcher.abort();
    // Stop every node: the supervisor's children kill their processes as they stop, and the
    // Network actor removes the namespaces once the nodes are gone.
    for index in cluster.members() {
        if cluster.status(index) != Some(NodeStatus::Down) {
            let _ = cluster.signal(index, libc::SIGKILL).await;
        }
    }
    stop_intruder(&cluster).await;
    supervisor.stop_and_wait(None, Some(Duration::from_secs(10))).await.ok();
    servers.stop().await;
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
