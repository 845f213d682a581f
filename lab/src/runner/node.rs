//! The actors of a run: a `LabSupervisor` with one `NodeProcess` actor per `aspen-node` OS
//! process, and in a `netns` run the `Network` actor (network.rs).
//!
//! A NodeProcess starts its process, waits for the ready line with a deadline, appends the
//! process's stdout and stderr to `node-N.log` (`intruder.log` for the stranger of an
//! `intruder` step, which is not a member: its events name no node), sends signals, and
//! restarts the process on the same data directory and ports. A monitor task owns the `Child`
//! (with `kill_on_drop`), so a process never outlives the run, also on an error or a panic; an
//! exit the lab did not ask for is recorded as a `node_exit` event.
//!
//! In a `netns` run the process is started as `ip netns exec <ns> aspen-node ...`. `ip` execs
//! the node in place, so the pid the lab signals is the node's own; the actor checks this once
//! the node is ready (`/proc/<pid>/exe` must be the node binary) and refuses the node if not,
//! because a SIGSTOP or SIGKILL sent to a wrapper would leave the node running.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aspen::cli::node::ReadyLine;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::watch;

use super::network::{Network, NetworkMsg};
use crate::history::{Clock, Event, EventKind, Events, RunClock};
use crate::network::NetnsTopology;
use crate::scenario::NodeIndex;

/// How long a node may take from spawn to its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a node may take to exit after SIGKILL or SIGTERM.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Every node process this program started and has not seen exit.
static LIVE_PIDS: Mutex<std::collections::BTreeSet<i32>> =
    Mutex::new(std::collections::BTreeSet::new());

/// Kills every node process still alive when dropped: the guard of a run, so that no process
/// outlives it, also on an error, a panic or Ctrl-C.
pub struct ProcessGuard;

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        let pids = std::mem::take(&mut *LIVE_PIDS.lock().unwrap_or_else(|e| e.into_inner()));
        for pid in pids {
            // SAFETY: kill(2) on a pid this program spawned; the monitor removes a pid from the
            // set before it reaps it, so the pid was not reused.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Which process a NodeProcess actor runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessRole {
    /// The cluster node with this index.
    Node(NodeIndex),
    /// The stranger of an `intruder` step.
    Intruder,
}

impl ProcessRole {
    /// The node its events name: none for the intruder, which is no member.
    fn event_node(self) -> Option<NodeIndex> {
        match self {
            ProcessRole::Node(index) => Some(index),
            ProcessRole::Intruder => None,
        }
    }
}

impl std::fmt::Display for ProcessRole {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProcessRole::Node(index) => write!(formatter, "node {index}"),
            ProcessRole::Intruder => formatter.write_str("the intruder"),
        }
    }
}

/// Everything needed to start (and restart) one node.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Which process it is.
    pub role: ProcessRole,
    /// The `aspen-node` binary.
    pub bin: PathBuf,
    /// Its flags.
    pub args: Vec<String>,
    /// What runs the binary (`ip netns exec <ns>`), or nothing to run it directly.
    pub command_prefix: Vec<String>,
    /// Where stdout and stderr are appended.
    pub log_path: PathBuf,
    /// The run's clock and events, for `node_start` / `node_exit`.
    pub clock: RunClock,
    /// The run's events.
    pub events: Arc<Mutex<Events>>,
}

/// Messages of a NodeProcess actor.
pub enum NodeMsg {
    /// Start the process (if not running) with these flags and wait for its ready line.
    Start(Vec<String>, RpcReplyPort<Result<ReadyLine, String>>),
    /// Send a signal; for SIGKILL and SIGTERM also wait for the exit (SIGKILL after the
    /// timeout).
    Signal(i32, RpcReplyPort<Result<(), String>>),
}

impl ractor::Message for NodeMsg {}
impl ractor::Message for SupervisorMsg {}

/// The process of one node, while it runs.
struct Running {
    pid: i32,
    expected_exit: Arc<std::sync::atomic::AtomicBool>,
    exited: watch::Receiver<bool>,
}

/// The actor owning one node's process.
pub struct NodeProcess;

/// Its state.
pub struct NodeState {
    spec: NodeSpec,
    running: Option<Running>,
}

fn push_event(spec: &NodeSpec, kind: EventKind, detail: String) {
    let node = spec.role.event_node();
    let detail = match node {
        Some(_) => detail,
        None => format!("{}: {detail}", spec.role),
    };
    let event = Event { time_ns: spec.clock.now_ns(), kind, node, detail };
    if let Ok(mut events) = spec.events.lock() {
        events.push(event);
    }
}

impl NodeState {
    async fn start(&mut self) -> Result<ReadyLine, String> {
        if let Some(running) = &self.running
            && !*running.exited.borrow()
        {
            return Err(format!("{} is already running", self.spec.role));
        }
        let spec = &self.spec;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log_path)
            .map_err(|e| format!("{}: {e}", spec.log_path.display()))?;
        let mut command = match spec.command_prefix.split_first() {
            Some((program, prefix)) => {
                let mut command = tokio::process::Command::new(program);
                command.args(prefix).arg(&spec.bin);
                command
            }
            None => tokio::process::Command::new(&spec.bin),
        };
        let mut child = command
            .args(&spec.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", spec.bin.display()))?;
        let pid = child.id().map(|id| id as i32).ok_or("the process has no pid")?;
        LIVE_PIDS.lock().unwrap_or_else(|e| e.into_inner()).insert(pid);
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<String>(1);
        // Keep reading stdout for the process's whole life (so it never writes to a closed
        // pipe), appending it to the log; the first ready line goes to the waiter.
        let log_path = spec.log_path.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            let mut log = tokio::fs::OpenOptions::new().append(true).open(&log_path).await.ok();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(log) = log.as_mut() {
                    let _ = log.write_all(format!("[stdout] {line}\n").as_bytes()).await;
                }
                if line.starts_with(aspen::cli::node::READY_PREFIX) {
                    let _ = ready_tx.try_send(line);
                }
            }
        });
        let expected_exit = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (exited_tx, exited) = watch::channel(false);
        let monitor_spec = spec.clone();
        let expected = expected_exit.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            LIVE_PIDS.lock().unwrap_or_else(|e| e.into_inner()).remove(&pid);
            if !expected.load(std::sync::atomic::Ordering::SeqCst) {
                let detail = format!("unexpected exit: {status:?}");
                eprintln!("aspen-lab: {}: {detail}", monitor_spec.role);
                push_event(&monitor_spec, EventKind::NodeExit, detail);
            }
            let _ = exited_tx.send(true);
        });
        self.running = Some(Running { pid, expected_exit, exited: exited.clone() });
        let mut exited = exited;
        let line = tokio::select! {
            line = tokio::time::timeout(READY_TIMEOUT, ready_rx.recv()) => line,
            _ = exited.wait_for(|done| *done) => Ok(None),
        };
        match line {
            Ok(Some(line)) => {
                let ready: ReadyLine = line.parse()?;
                let wrapped = !spec.command_prefix.is_empty();
                let checked = if wrapped { is_the_node(pid, &spec.bin) } else { Ok(()) };
                if let Err(error) = checked {
                    self.signal(libc::SIGKILL).await?;
                    return Err(error);
                }
                let spec = &self.spec;
                push_event(
                    spec,
                    EventKind::NodeStart,
                    format!("pid {pid} http {}", ready.http_addr),
                );
                Ok(ready)
            }
            Ok(None) => Err(format!(
                "{} exited before its ready line; see {}",
                spec.role,
                spec.log_path.display()
            )),
            Err(_) => {
                let spec = self.spec.clone();
                self.signal(libc::SIGKILL).await?;
                Err(format!(
                    "{} printed no ready line within {READY_TIMEOUT:?}; see {}",
                    spec.role,
                    spec.log_path.display()
                ))
            }
        }
    }

    async fn signal(&mut self, signal: i32) -> Result<(), String> {
        let Some(running) = &mut self.running else {
            return Err(format!("{} is not running", self.spec.role));
        };
        if *running.exited.borrow() {
            return Err(format!("{} is not running", self.spec.role));
        }
        let stops = signal == libc::SIGKILL || signal == libc::SIGTERM;
        if stops {
            running.expected_exit.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        // SAFETY: kill(2) on a pid this actor spawned and whose monitor has not reaped it.
        let result = unsafe { libc::kill(running.pid, signal) };
        if result != 0 {
            return Err(format!("kill({}, {signal}) failed", running.pid));
        }
        if !stops {
            return Ok(());
        }
        if signal == libc::SIGTERM {
            // A stopped process cannot handle SIGTERM.
            // SAFETY: as above.
            unsafe { libc::kill(running.pid, libc::SIGCONT) };
        }
        let waited =
            tokio::time::timeout(EXIT_TIMEOUT, running.exited.wait_for(|d| *d)).await.is_err();
        if waited {
            // SAFETY: as above.
            unsafe { libc::kill(running.pid, libc::SIGKILL) };
            let _ = tokio::time::timeout(EXIT_TIMEOUT, running.exited.wait_for(|d| *d)).await;
        }
        Ok(())
    }
}

/// Checks that process `pid` runs `bin` itself (not a wrapper that started it), so that the
/// signals the lab sends reach the node.
fn is_the_node(pid: i32, bin: &std::path::Path) -> Result<(), String> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map_err(|e| format!("/proc/{pid}/exe: {e}"))?;
    let name = |path: &std::path::Path| {
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    };
    // A binary rebuilt while the node runs shows as "aspen-node (deleted)".
    if name(&exe).starts_with(&name(bin)) {
        Ok(())
    } else {
        Err(format!(
            "pid {pid} runs {}, not {}: signals would miss the node",
            exe.display(),
            bin.display()
        ))
    }
}

impl Actor for NodeProcess {
    type Msg = NodeMsg;
    type State = NodeState;
    type Arguments = NodeSpec;

    async fn pre_start(
        &self,
        _myself: ActorRef<NodeMsg>,
        spec: NodeSpec,
    ) -> Result<NodeState, ActorProcessingErr> {
        Ok(NodeState { spec, running: None })
    }

    async fn handle(
        &self,
        _myself: ActorRef<NodeMsg>,
        message: NodeMsg,
        state: &mut NodeState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            NodeMsg::Start(args, reply) => {
                state.spec.args = args;
                let _ = reply.send(state.start().await);
            }
            NodeMsg::Signal(signal, reply) => {
                let _ = reply.send(state.signal(signal).await);
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<NodeMsg>,
        state: &mut NodeState,
    ) -> Result<(), ActorProcessingErr> {
        if state.running.as_ref().is_some_and(|r| !*r.exited.borrow()) {
            let _ = state.signal(libc::SIGKILL).await;
        }
        Ok(())
    }
}

/// Messages of the LabSupervisor.
pub enum SupervisorMsg {
    /// Spawn a NodeProcess actor, linked to the supervisor.
    SpawnNode(NodeSpec, RpcReplyPort<Result<ActorRef<NodeMsg>, String>>),
    /// Spawn the Network actor owning this topology, linked to the supervisor.
    SpawnNetwork(NetnsTopology, RpcReplyPort<Result<ActorRef<NetworkMsg>, String>>),
}

/// The root of a run's actors: it owns the NodeProcess actors and the Network actor, and
/// stopping it stops them, which kills their processes and removes the network.
pub struct LabSupervisor;

impl Actor for LabSupervisor {
    type Msg = SupervisorMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        _: (),
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        message: SupervisorMsg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::SpawnNode(spec, reply) => {
                let spawned = Actor::spawn_linked(None, NodeProcess, spec, myself.get_cell()).await;
                let _ = reply.send(spawned.map(|(actor, _)| actor).map_err(|e| e.to_string()));
            }
            SupervisorMsg::SpawnNetwork(topology, reply) => {
                let spawned = Actor::spawn_linked(None, Network, topology, myself.get_cell()).await;
                let _ = reply.send(spawned.map(|(actor, _)| actor).map_err(|e| e.to_string()));
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(actor, error) = event {
            eprintln!("aspen-lab: actor {:?} failed: {error}", actor.get_id());
        }
        Ok(())
    }
}
