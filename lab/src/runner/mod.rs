//! The runner: starts real `aspen-node` processes for a scenario, runs its steps, and judges it.
//!
//! A run has a [`LabSupervisor`](node::LabSupervisor) actor with one
//! [`NodeProcess`](node::NodeProcess) actor per OS process, workload clients (one thread each,
//! each a Jepsen process recorded through the [`Recorder`]), a nemesis task executing the
//! seeded [`schedule`], a leader watcher that records `leader` events, and the checkers at the
//! end. Every process is killed and every temporary directory removed when the run ends, also
//! on an error or Ctrl-C.
//!
//! Caveats:
//! - Reads are linearizable (served through the leader), so the replication check compares
//!   what every node answers for every key plus the applied log index, not each node's local
//!   state machine.
//! - `network: netns` is refused with a message: not implemented yet.

mod node;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aspen::cluster::node_control::RemoteNodeControl;
use aspen::discovery::endpoint_to_string;
use iroh::{EndpointAddr, SecretKey, TransportAddr};
use ractor::{Actor, ActorRef};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde_json::{Value, json};

use crate::checker::linearizability::check_history;
use crate::checker::{
    CheckVerdict, NodePeers, NodeState, Outcome, check_discovery, check_durability, check_failover,
    check_liveness, check_replication,
};
use crate::history::{
    Clock, Event, EventKind, Events, History, OpFunction, OpType, OpValue, Recorder, RunClock,
};
use crate::limits;
use crate::nemesis::{NemesisAction, schedule, step_seed};
use crate::report::{RunData, RunSummary};
use crate::scenario::{
    CheckKind, FaultKind, NemesisStep, Network, NodeIndex, NodeSelector, Scenario, Step,
    WaitCondition, WorkloadStep,
};
use node::{LabSupervisor, NodeMsg, NodeSpec, ProcessGuard, SupervisorMsg};

/// The cookie of the nodes' control port.
const COOKIE: &str = "aspen-lab";
/// Timeout of one workload or step request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Timeout of one status request (metrics, peers).
const STATUS_TIMEOUT: Duration = Duration::from_millis(500);

/// Set on Ctrl-C, so that workload threads stop at once.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

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

/// One node of the cluster, as the runner sees it.
struct Slot {
    node_id: u64,
    secret: [u8; 32],
    iroh_port: u16,
    actor: ActorRef<NodeMsg>,
    http: Option<String>,
    ractor_port: u16,
    state: NodeStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeStatus {
    Running,
    Down,
    Paused,
    Removed,
}

impl Slot {
    fn endpoint_addr(&self) -> EndpointAddr {
        let mut addr = EndpointAddr::new(SecretKey::from_bytes(&self.secret).public());
        addr.addrs.insert(TransportAddr::Ip(([127, 0, 0, 1], self.iroh_port).into()));
        addr
    }
}

/// The cluster and the run's shared records.
struct Cluster {
    slots: Mutex<Vec<Slot>>,
    supervisor: ActorRef<SupervisorMsg>,
    scenario: Scenario,
    data_root: tempfile::TempDir,
    run_dir: PathBuf,
    bin: PathBuf,
    clock: RunClock,
    events: Arc<Mutex<Events>>,
    recorder: Arc<Mutex<Recorder>>,
    leader: Mutex<Option<(NodeIndex, u64)>>,
    rng: Mutex<ChaCha8Rng>,
    next_process: AtomicU64,
    bootstrapped: AtomicBool,
}

fn log(message: impl AsRef<str>) {
    println!("aspen-lab: {}", message.as_ref());
}

impl Cluster {
    fn event(&self, kind: EventKind, node: Option<NodeIndex>, detail: impl Into<String>) {
        let event = Event { time_ns: self.clock.now_ns(), kind, node, detail: detail.into() };
        self.events.lock().expect("events").push(event);
    }

    fn http(&self, index: NodeIndex) -> Option<String> {
        let slots = self.slots.lock().expect("slots");
        slots.get(index as usize).filter(|s| s.state == NodeStatus::Running)?.http.clone()
    }

    fn status(&self, index: NodeIndex) -> Option<NodeStatus> {
        self.slots.lock().expect("slots").get(index as usize).map(|s| s.state)
    }

    /// Nodes in the given state.
    fn nodes_in(&self, state: NodeStatus) -> Vec<NodeIndex> {
        let slots = self.slots.lock().expect("slots");
        (0..slots.len() as NodeIndex).filter(|i| slots[*i as usize].state == state).collect()
    }

    /// Nodes not removed.
    fn members(&self) -> Vec<NodeIndex> {
        let slots = self.slots.lock().expect("slots");
        (0..slots.len() as NodeIndex)
            .filter(|i| slots[*i as usize].state != NodeStatus::Removed)
            .collect()
    }

    fn node_args(&self, index: NodeIndex) -> Vec<String> {
        let slots = self.slots.lock().expect("slots");
        let me = &slots[index as usize];
        let settings = &self.scenario.node_settings;
        let mut args = vec![
            format!("--node-id={}", me.node_id),
            format!("--data-dir={}", self.data_root.path().join(format!("node-{index}")).display()),
            "--http-addr=127.0.0.1:0".into(),
            format!("--iroh-port={}", me.iroh_port),
            format!("--iroh-secret-key={}", hex::encode(me.secret)),
            format!("--cookie={COOKIE}"),
            format!("--heartbeat-interval-ms={}", settings.heartbeat_interval_ms),
            format!("--election-timeout-min-ms={}", settings.election_timeout_min_ms),
            format!("--election-timeout-max-ms={}", settings.election_timeout_max_ms),
            "--disable-gossip".into(),
            "--disable-mdns".into(),
        ];
        for (other, slot) in slots.iter().enumerate() {
            if other as NodeIndex != index {
                let peer = endpoint_to_string(&slot.endpoint_addr());
                args.push(format!("--peers={}@{peer}", slot.node_id));
            }
        }
        args
    }

    /// Adds a slot for a new node and spawns its actor (not its process).
    async fn new_slot(&self) -> anyhow::Result<NodeIndex> {
        let index = self.slots.lock().expect("slots").len() as NodeIndex;
        let mut secret = [0u8; 32];
        self.rng.lock().expect("rng").fill_bytes(&mut secret);
        let spec = NodeSpec {
            index,
            bin: self.bin.clone(),
            args: Vec::new(),
            log_path: self.run_dir.join(format!("node-{index}.log")),
            clock: self.clock,
            events: self.events.clone(),
        };
        let actor = ractor::call!(self.supervisor, SupervisorMsg::SpawnNode, spec)
            .map_err(|e| anyhow::anyhow!("spawn node actor: {e}"))?
            .map_err(|e| anyhow::anyhow!(e))?;
        self.slots.lock().expect("slots").push(Slot {
            node_id: u64::from(index) + 1,
            secret,
            iroh_port: free_udp_port()?,
            actor,
            http: None,
            ractor_port: 0,
            state: NodeStatus::Down,
        });
        Ok(index)
    }

    /// Starts (or restarts) a node's process with the current peer list.
    async fn start(&self, index: NodeIndex) -> anyhow::Result<()> {
        let args = self.node_args(index);
        let actor = self.slots.lock().expect("slots")[index as usize].actor.clone();
        // The spec's args are fixed at spawn; restarts pass them again through a fresh spec.
        let ready = ractor::call_t!(actor, node_start_with_args, 30_000, args)
            .map_err(|e| anyhow::anyhow!("node {index}: {e}"))?
            .map_err(|e| anyhow::anyhow!(e))?;
        let mut slots = self.slots.lock().expect("slots");
        let slot = &mut slots[index as usize];
        slot.http = Some(ready.http_addr.to_string());
        slot.ractor_port = ready.ractor_port;
        slot.state = NodeStatus::Running;
        Ok(())
    }

    async fn signal(&self, index: NodeIndex, signal: i32) -> anyhow::Result<()> {
        let actor = self.slots.lock().expect("slots")[index as usize].actor.clone();
        ractor::call_t!(actor, NodeMsg::Signal, 30_000, signal)
            .map_err(|e| anyhow::anyhow!("node {index}: {e}"))?
            .map_err(|e| anyhow::anyhow!(e))
    }

    fn set_status(&self, index: NodeIndex, state: NodeStatus) {
        self.slots.lock().expect("slots")[index as usize].state = state;
    }

    /// Resolves a selector to a node index.
    fn resolve(&self, selector: NodeSelector) -> anyhow::Result<NodeIndex> {
        match selector {
            NodeSelector::Index(index) => Ok(index),
            NodeSelector::Leader => self
                .leader
                .lock()
                .expect("leader")
                .map(|(leader, _)| leader)
                .ok_or_else(|| anyhow::anyhow!("no leader is known")),
            NodeSelector::RandomFollower => {
                let leader = self.leader.lock().expect("leader").map(|(l, _)| l);
                let followers: Vec<NodeIndex> = self
                    .nodes_in(NodeStatus::Running)
                    .into_iter()
                    .filter(|n| Some(*n) != leader)
                    .collect();
                anyhow::ensure!(!followers.is_empty(), "no running follower");
                let draw = self.rng.lock().expect("rng").next_u64();
                Ok(followers[(draw % followers.len() as u64) as usize])
            }
        }
    }

    /// Injects one fault; returns the node it hit.
    async fn fault(
        &self,
        kind: FaultKind,
        index: NodeIndex,
        actor: Option<&str>,
    ) -> anyhow::Result<()> {
        let status = self.status(index).ok_or_else(|| anyhow::anyhow!("no node {index}"))?;
        log(format!("fault: {kind} node {index}"));
        let takes_down = matches!(kind, FaultKind::Kill | FaultKind::Terminate | FaultKind::Pause)
            || (kind == FaultKind::CrashActor && actor.unwrap_or("raft") == "raft");
        if takes_down {
            // The next leader observed, even this node again, is a new `leader` event.
            let mut leader = self.leader.lock().expect("leader");
            if leader.is_some_and(|(l, _)| l == index) {
                *leader = None;
            }
        }
        match kind {
            FaultKind::Kill | FaultKind::Terminate => {
                anyhow::ensure!(status != NodeStatus::Down, "node {index} is already down");
                anyhow::ensure!(status != NodeStatus::Removed, "node {index} was removed");
                self.event(EventKind::FaultStart, Some(index), kind.name());
                let signal = if kind == FaultKind::Kill { libc::SIGKILL } else { libc::SIGTERM };
                self.set_status(index, NodeStatus::Down);
                self.signal(index, signal).await?;
            }
            FaultKind::Pause => {
                anyhow::ensure!(status == NodeStatus::Running, "node {index} is not running");
                self.event(EventKind::FaultStart, Some(index), "pause");
                self.set_status(index, NodeStatus::Paused);
                self.signal(index, libc::SIGSTOP).await?;
            }
            FaultKind::Resume => {
                anyhow::ensure!(status == NodeStatus::Paused, "node {index} is not paused");
                self.signal(index, libc::SIGCONT).await?;
                self.set_status(index, NodeStatus::Running);
                self.event(EventKind::FaultEnd, Some(index), "resume");
            }
            FaultKind::Restart => {
                anyhow::ensure!(status == NodeStatus::Down, "node {index} is not down");
                self.start(index).await?;
                self.event(EventKind::FaultEnd, Some(index), "restart");
            }
            FaultKind::CrashActor => {
                let actor = actor.unwrap_or("raft");
                anyhow::ensure!(status == NodeStatus::Running, "node {index} is not running");
                let (addr, node_id) = {
                    let slots = self.slots.lock().expect("slots");
                    let slot = &slots[index as usize];
                    (format!("127.0.0.1:{}", slot.ractor_port), slot.node_id)
                };
                let control =
                    RemoteNodeControl::connect(&addr, COOKIE, node_id, Duration::from_secs(10))
                        .await
                        .map_err(|e| anyhow::anyhow!("node {index} control port: {e}"))?;
                self.event(EventKind::FaultStart, Some(index), format!("crash_actor {actor}"));
                let crashed = control.crash_actor(actor).await;
                control.close().await;
                crashed.map_err(|e| anyhow::anyhow!("crash_actor {actor} on node {index}: {e}"))?;
                self.event(EventKind::FaultEnd, Some(index), format!("crash_actor {actor}"));
            }
            FaultKind::WipeAndRejoin => {
                anyhow::bail!("wipe_and_rejoin needs the cluster; use Cluster::wipe_and_rejoin")
            }
        }
        Ok(())
    }

    /// Takes a node out of the membership, kills it, deletes its data directory, starts it
    /// afresh on the same key and port, and joins it again as a learner, then a voter. Leaving
    /// the membership first keeps the wiped node from voting with a forgotten vote.
    async fn wipe_and_rejoin(self: &Arc<Self>, index: NodeIndex) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.status(index) == Some(NodeStatus::Running),
            "node {index} is not running"
        );
        log(format!("fault: wipe_and_rejoin node {index}"));
        self.event(EventKind::FaultStart, Some(index), "wipe_and_rejoin");
        change_membership(self, Some(index)).await?;
        {
            let mut leader = self.leader.lock().expect("leader");
            if leader.is_some_and(|(l, _)| l == index) {
                *leader = None;
            }
        }
        self.set_status(index, NodeStatus::Down);
        self.signal(index, libc::SIGKILL).await?;
        let data_dir = self.data_root.path().join(format!("node-{index}"));
        std::fs::remove_dir_all(&data_dir)
            .map_err(|e| anyhow::anyhow!("{}: {e}", data_dir.display()))?;
        self.start(index).await?;
        let body = json!({"learner": cluster_node(self, index)});
        post_to_leader(self, "/add-learner", body, Duration::from_secs(30)).await?;
        change_membership(self, None).await?;
        self.event(EventKind::FaultEnd, Some(index), "wipe_and_rejoin");
        Ok(())
    }

    /// Injects any fault, `wipe_and_rejoin` included.
    async fn any_fault(
        self: &Arc<Self>,
        kind: FaultKind,
        index: NodeIndex,
        actor: Option<&str>,
    ) -> anyhow::Result<()> {
        match kind {
            FaultKind::WipeAndRejoin => self.wipe_and_rejoin(index).await,
            _ => self.fault(kind, index, actor).await,
        }
    }

    /// Recovers every fault still in effect.
    /// Records a `heal` event when something was healed, or always for a `heal` step.
    async fn heal(&self, always: bool) -> anyhow::Result<()> {
        let (paused, down) = (self.nodes_in(NodeStatus::Paused), self.nodes_in(NodeStatus::Down));
        let healing = !paused.is_empty() || !down.is_empty();
        for index in paused {
            self.signal(index, libc::SIGCONT).await?;
            self.set_status(index, NodeStatus::Running);
        }
        for index in down {
            self.start(index).await?;
        }
        if healing || always {
            self.event(EventKind::FaultEnd, None, "heal");
        }
        Ok(())
    }
}

/// Starts a node actor's process with `args` (the peer list can grow between starts).
fn node_start_with_args(
    args: Vec<String>,
    reply: ractor::RpcReplyPort<Result<aspen::cli::node::ReadyLine, String>>,
) -> NodeMsg {
    NodeMsg::Start(args, reply)
}

fn free_udp_port() -> anyhow::Result<u16> {
    // Bind both protocols on the same port where possible, so that nothing else takes it.
    for _ in 0..20 {
        let udp = UdpSocket::bind("127.0.0.1:0")?;
        let port = udp.local_addr()?.port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A blocking HTTP agent with a timeout.
fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// How a request ended.
enum Reply {
    /// 2xx with its body.
    Ok(Value),
    /// An error answer: status and kind.
    Error(u16, String),
    /// No answer: connection refused (the request was never sent).
    Refused,
    /// No answer in time, or the connection broke.
    Lost(String),
}

fn request(agent: &ureq::Agent, http: &str, path: &str, body: Option<&Value>) -> Reply {
    let url = format!("http://{http}{path}");
    let response = match body {
        Some(body) => agent.post(&url).send_json(body),
        None => agent.get(&url).call(),
    };
    match response {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let text = response.body_mut().read_to_string().unwrap_or_default();
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if (200..300).contains(&status) {
                Reply::Ok(value)
            } else {
                let kind = value.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
                Reply::Error(status, kind)
            }
        }
        Err(ureq::Error::ConnectionFailed) => Reply::Refused,
        Err(ureq::Error::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Reply::Refused
        }
        Err(e) => Reply::Lost(e.to_string()),
    }
}

async fn request_async(
    http: String,
    path: &'static str,
    body: Option<Value>,
    timeout: Duration,
) -> Reply {
    tokio::task::spawn_blocking(move || request(&agent(timeout), &http, path, body.as_ref()))
        .await
        .unwrap_or_else(|e| Reply::Lost(e.to_string()))
}

/// Raft metrics of one node, if it answers.
async fn metrics(http: Option<String>) -> Option<Value> {
    match request_async(http?, "/raft-metrics", None, STATUS_TIMEOUT).await {
        Reply::Ok(value) => Some(value),
        _ => None,
    }
}

fn leader_of(metrics: &Value) -> Option<u64> {
    metrics.get("current_leader")?.as_u64()
}

fn applied_of(metrics: &Value) -> Option<u64> {
    let applied = metrics.get("last_applied")?;
    applied.get("index").and_then(Value::as_u64).or_else(|| applied.as_u64())
}

/// Watches the running nodes and records a `leader` event for each new leader or term.
async fn watch_leader(cluster: Arc<Cluster>) {
    loop {
        for index in cluster.nodes_in(NodeStatus::Running) {
            let Some(m) = metrics(cluster.http(index)).await else { continue };
            let node_id = u64::from(index) + 1;
            let term = m.get("current_term").and_then(Value::as_u64).unwrap_or(0);
            if leader_of(&m) == Some(node_id)
                && m.get("state").and_then(Value::as_str) == Some("Leader")
            {
                let mut leader = cluster.leader.lock().expect("leader");
                if *leader != Some((index, term)) && leader.is_none_or(|(_, t)| term >= t) {
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
    });
    let watcher = tokio::spawn(watch_leader(cluster.clone()));
    let script = run_script(&cluster, scenario, options.seed).await;
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
        verdicts.extend(run_checks(&cluster, &scenario.checks, true).await);
    }
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

async fn run_script(
    cluster: &Arc<Cluster>,
    scenario: &Scenario,
    seed: u64,
) -> anyhow::Result<Vec<CheckVerdict>> {
    let mut verdicts = Vec::new();
    for _ in 0..scenario.nodes {
        cluster.new_slot().await?;
    }
    for index in 0..scenario.nodes {
        cluster.start(index).await?;
    }
    log(format!("{} nodes started", scenario.nodes));
    let mut nemesis: Option<tokio::task::JoinHandle<()>> = None;
    for (position, step) in scenario.steps.iter().enumerate() {
        let label = format!("steps[{position}] {}", step.kind());
        log(&label);
        cluster.event(EventKind::Step, None, label.clone());
        let result = run_step(cluster, step, position, seed, &mut nemesis, &mut verdicts).await;
        result.map_err(|e| e.context(label))?;
    }
    if let Some(nemesis) = nemesis.take() {
        nemesis.abort();
    }
    Ok(verdicts)
}

async fn run_step(
    cluster: &Arc<Cluster>,
    step: &Step,
    position: usize,
    seed: u64,
    nemesis: &mut Option<tokio::task::JoinHandle<()>>,
    verdicts: &mut Vec<CheckVerdict>,
) -> anyhow::Result<()> {
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
            let (outcome, value) = step_op(
                cluster,
                OpFunction::Read,
                &read.key,
                OpValue::Absent,
                Duration::from_secs(10),
            )
            .await;
            anyhow::ensure!(outcome == OpType::Ok, "the read of {:?} did not succeed", read.key);
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
        Step::Workload(workload) => run_workload(cluster, workload, seed, position).await,
        Step::Nemesis(step) => {
            *nemesis = Some(tokio::spawn(run_nemesis(
                cluster.clone(),
                step.clone(),
                step_seed(seed, position),
            )));
            Ok(())
        }
        Step::Heal => {
            if let Some(nemesis) = nemesis.take() {
                nemesis.abort();
                let _ = nemesis.await;
            }
            cluster.heal(true).await
        }
        Step::AddNode => add_node(cluster).await,
        Step::RemoveNode(remove) => {
            let index = cluster.resolve(remove.node)?;
            remove_node(cluster, index).await
        }
        Step::Check(check) => {
            let found = run_checks(cluster, &check.checks, false).await;
            for verdict in &found {
                log(format!("check: {verdict}"));
            }
            let failed: Vec<String> = found
                .iter()
                .filter(|v| v.outcome != Outcome::Pass)
                .map(ToString::to_string)
                .collect();
            verdicts.extend(found);
            anyhow::ensure!(failed.is_empty(), "{}", failed.join("; "));
            Ok(())
        }
    }
}

/// Posts to whichever running node leads, retrying on refusals until `timeout`.
async fn post_to_leader(
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

fn cluster_node(cluster: &Cluster, index: NodeIndex) -> Value {
    let slots = cluster.slots.lock().expect("slots");
    let slot = &slots[index as usize];
    json!({
        "id": slot.node_id,
        "addr": slot.http.clone().unwrap_or_default(),
        "raft_addr": endpoint_to_string(&slot.endpoint_addr()),
    })
}

async fn bootstrap(cluster: &Arc<Cluster>) -> anyhow::Result<()> {
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

async fn change_membership(
    cluster: &Arc<Cluster>,
    without: Option<NodeIndex>,
) -> anyhow::Result<()> {
    let members = cluster.members().into_iter().filter(|i| Some(*i) != without);
    let members: Vec<u64> = members.map(|i| u64::from(i) + 1).collect();
    let body = json!({"members": members});
    post_to_leader(cluster, "/change-membership", body, Duration::from_secs(20)).await?;
    Ok(())
}

async fn add_node(cluster: &Arc<Cluster>) -> anyhow::Result<()> {
    let index = cluster.new_slot().await?;
    cluster.start(index).await?;
    let body = json!({"learner": cluster_node(cluster, index)});
    post_to_leader(cluster, "/add-learner", body, Duration::from_secs(30)).await?;
    change_membership(cluster, None).await
}

async fn remove_node(cluster: &Arc<Cluster>, index: NodeIndex) -> anyhow::Result<()> {
    anyhow::ensure!(cluster.members().len() > 1, "the last node cannot be removed");
    change_membership(cluster, Some(index)).await?;
    cluster.set_status(index, NodeStatus::Removed);
    let _ = cluster.signal(index, libc::SIGKILL).await;
    let mut leader = cluster.leader.lock().expect("leader");
    if leader.is_some_and(|(l, _)| l == index) {
        *leader = None;
    }
    Ok(())
}

async fn wait_for(
    cluster: &Arc<Cluster>,
    condition: WaitCondition,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let held = match condition {
            WaitCondition::Leader => agreed_leader(cluster).await.is_some(),
            WaitCondition::Replicated => replicated(cluster).await,
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
async fn agreed_leader(cluster: &Arc<Cluster>) -> Option<NodeIndex> {
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

/// Every running member has applied the leader's last log index.
async fn replicated(cluster: &Arc<Cluster>) -> bool {
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

async fn discovery_peers(cluster: &Arc<Cluster>) -> Vec<NodePeers> {
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

/// One recorded operation from the script (a `write` or `read` step, or a final read): retried
/// under fresh processes until it succeeds or `timeout` passes. Returns the last outcome and
/// the value read.
async fn step_op(
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
            let recorder = cluster.recorder.clone();
            let (key, value) = (key.to_string(), value.clone());
            let result = tokio::task::spawn_blocking(move || {
                one_op(&agent(REQUEST_TIMEOUT), &recorder, process, node, &http, f, &key, value)
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
fn one_op(
    agent: &ureq::Agent,
    recorder: &Mutex<Recorder>,
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
    (outcome, read)
}

async fn run_workload(
    cluster: &Arc<Cluster>,
    workload: &WorkloadStep,
    seed: u64,
    position: usize,
) -> anyhow::Result<()> {
    let end = Instant::now() + Duration::from_millis(workload.duration_ms);
    let per_client = Duration::from_secs_f64(
        f64::from(workload.clients) / f64::from(workload.rate_per_s.max(1)),
    );
    let mut threads = Vec::new();
    for client in 0..workload.clients {
        let cluster = cluster.clone();
        let workload = workload.clone();
        let mut rng = ChaCha8Rng::seed_from_u64(step_seed(seed, position) ^ u64::from(client));
        threads.push(tokio::task::spawn_blocking(move || {
            let agent = agent(REQUEST_TIMEOUT);
            let mut process = cluster.next_process.fetch_add(1, Ordering::SeqCst);
            let mut seen: BTreeMap<String, Option<String>> = BTreeMap::new();
            let mut counter = 0u64;
            let mix = workload.mix;
            let total = u64::from(mix.read + mix.write + mix.cas).max(1);
            while Instant::now() < end && !INTERRUPTED.load(Ordering::SeqCst) {
                let started = Instant::now();
                let key = format!("k{}", rng.next_u64() % u64::from(workload.keys.max(1)));
                counter += 1;
                let new = format!("c{client}-{counter}");
                let draw = rng.next_u64() % total;
                let (f, value) = if draw < u64::from(mix.read) {
                    (OpFunction::Read, OpValue::Absent)
                } else if draw < u64::from(mix.read + mix.write) {
                    (OpFunction::Write, OpValue::Value(new))
                } else {
                    let expected = seen.get(&key).cloned().flatten();
                    (OpFunction::Cas, OpValue::Cas { expected, new })
                };
                let leader = cluster.leader.lock().expect("leader").map(|(l, _)| l);
                let running = cluster.nodes_in(NodeStatus::Running);
                let node = match leader.filter(|l| running.contains(l)) {
                    Some(leader) => leader,
                    None if running.is_empty() => {
                        std::thread::sleep(per_client);
                        continue;
                    }
                    None => running[(rng.next_u64() % running.len() as u64) as usize],
                };
                let http = cluster.http(node).unwrap_or_default();
                let (outcome, read) =
                    one_op(&agent, &cluster.recorder, process, node, &http, f, &key, value.clone());
                match (outcome, f, &value) {
                    (OpType::Ok, OpFunction::Read, _) => {
                        seen.insert(key, read);
                    }
                    (OpType::Ok, _, OpValue::Value(v) | OpValue::Cas { new: v, .. }) => {
                        seen.insert(key, Some(v.clone()));
                    }
                    (OpType::Info, _, _) => {
                        process = cluster.next_process.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {}
                }
                if let Some(rest) = per_client.checked_sub(started.elapsed()) {
                    std::thread::sleep(rest);
                }
            }
        }));
    }
    for thread in threads {
        thread.await?;
    }
    Ok(())
}

async fn run_nemesis(cluster: Arc<Cluster>, step: NemesisStep, seed: u64) {
    let plan = schedule(seed, &step, &cluster.members());
    let start = Instant::now();
    let mut hit: Vec<Option<NodeIndex>> = vec![None; plan.len()];
    for (position, action) in plan.iter().enumerate() {
        let at = start + Duration::from_millis(action.time_ms);
        tokio::time::sleep_until(at.into()).await;
        log(format!("nemesis: {action}"));
        let result = match &action.action {
            NemesisAction::Inject { kind, node, actor } => match cluster.resolve(*node) {
                Ok(index) => {
                    let result = cluster.any_fault(*kind, index, actor.map(|a| a.name())).await;
                    if result.is_ok() {
                        hit[position] = Some(index);
                    }
                    result
                }
                Err(error) => Err(error),
            },
            NemesisAction::Recover { kind, of } => match hit.get(*of).copied().flatten() {
                Some(index) => cluster.fault(*kind, index, None).await,
                None => Ok(()),
            },
        };
        if let Err(error) = result {
            log(format!("nemesis: skipped: {error:#}"));
            cluster.event(EventKind::Note, None, format!("nemesis skipped: {error:#}"));
        }
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
                check_liveness(&history, &events, limits::LIVENESS_MS_MAX_DEFAULT)
            }
            CheckKind::Linearizability => check_history(&history).verdict(),
        };
        verdicts.push(verdict);
    }
    verdicts
}

fn history_keys(cluster: &Cluster) -> Vec<String> {
    snapshot_history(cluster).keys().into_iter().map(str::to_string).collect()
}

/// The history recorded so far (operations in flight count as `info`).
fn snapshot_history(cluster: &Cluster) -> History {
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
