//! The cluster of a run as the lab sees it: one slot per node (its id, key, port, actor and
//! status), the run's shared records (clock, events, history recorder, last leader seen), and
//! the process faults: kill, terminate, pause/resume, restart, crash an actor through the
//! node's control port, wipe and rejoin, heal; and the network faults of a `netns` run, which
//! the Network actor (network.rs) puts in force.
//!
//! A fault that takes the leader away (a process fault on it, or a partition that leaves it
//! without a majority) forgets the leader, so that the next leader observed is a new `leader`
//! event. A partition also remembers it as *deposed* until the network heals: the leader
//! watcher does not take a deposed leader's claim at its old term for a new leader, since a
//! leader cut off by a partition goes on calling itself leader until it hears a higher term.
//! (A paused or restarted leader that nobody replaced does lead again at its old term.)

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aspen::cluster::node_control::RemoteNodeControl;
use aspen::discovery::endpoint_to_string;
use iroh::{EndpointAddr, SecretKey, TransportAddr};
use ractor::ActorRef;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::RngCore;
use serde_json::json;

use super::COOKIE;
use super::intruder::IntruderProcess;
use super::membership::{change_membership, cluster_node, post_to_leader, remove_member};
use super::network::{NetworkMsg, NodeNetwork, leader_cut_off, resolve_fault};
use super::node::{NodeMsg, NodeSpec, ProcessRole, SupervisorMsg};
use super::progress::log;
use crate::history::{Clock, Event, EventKind, Events, NETWORK_HEAL, Recorder, RunClock};
use crate::scenario::{
    Discovery, FaultKind, NetworkFault, NodeIndex, NodeSelector, NodeSettings, Scenario,
};

/// Gossip interval of nodes under gossip discovery: short, so that a run's nodes find each
/// other within a second or two.
pub(super) const GOSSIP_INTERVAL_MS: u64 = 500;

/// One node of the cluster, as the runner sees it.
pub(super) struct Slot {
    pub(super) node_id: u64,
    /// The address its sockets bind to: 127.0.0.1, or its namespace's address.
    pub(super) ip: Ipv4Addr,
    pub(super) secret: [u8; 32],
    pub(super) iroh_port: u16,
    pub(super) actor: ActorRef<NodeMsg>,
    pub(super) http: Option<String>,
    pub(super) ractor_port: u16,
    pub(super) state: NodeStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NodeStatus {
    Running,
    Down,
    Paused,
    Removed,
}

impl Slot {
    pub(super) fn endpoint_id(&self) -> iroh::EndpointId {
        SecretKey::from_bytes(&self.secret).public()
    }

    pub(super) fn endpoint_addr(&self) -> EndpointAddr {
        let mut addr = EndpointAddr::new(SecretKey::from_bytes(&self.secret).public());
        addr.addrs.insert(TransportAddr::Ip((self.ip, self.iroh_port).into()));
        addr
    }
}

/// The cluster and the run's shared records.
pub(super) struct Cluster {
    pub(super) slots: Mutex<Vec<Slot>>,
    pub(super) supervisor: ActorRef<SupervisorMsg>,
    pub(super) scenario: Scenario,
    pub(super) data_root: tempfile::TempDir,
    pub(super) run_dir: PathBuf,
    pub(super) bin: PathBuf,
    pub(super) clock: RunClock,
    pub(super) events: Arc<Mutex<Events>>,
    pub(super) recorder: Arc<Mutex<Recorder>>,
    pub(super) leader: Mutex<Option<(NodeIndex, u64)>>,
    /// The leader a partition cut off, with its term, until the network heals: its claim at
    /// that term is stale.
    pub(super) deposed: Mutex<Option<(NodeIndex, u64)>>,
    /// The Network actor of a `netns` run.
    pub(super) network: Option<ActorRef<NetworkMsg>>,
    /// The network faults in force, for the status line.
    pub(super) network_faults: Mutex<Vec<String>>,
    pub(super) rng: Mutex<ChaCha8Rng>,
    pub(super) next_process: AtomicU64,
    pub(super) bootstrapped: AtomicBool,
    /// The step being run, for the status line.
    pub(super) step: Mutex<String>,
    /// Operations completed (any outcome), for the status line.
    pub(super) ops_done: AtomicU64,
    /// Node 0's cluster ticket, for nodes started after it under gossip discovery.
    pub(super) ticket: Mutex<Option<String>>,
    /// Flags pointing every node at the run's discovery servers (DNS, relay).
    pub(super) discovery_args: Vec<String>,
    /// The lab's relay under `relay` discovery, named in every peer address the runner gives.
    pub(super) relay_url: Option<iroh::RelayUrl>,
    /// The address the lab reaches the nodes from: 127.0.0.1, or the lab's address in a
    /// `netns` run. The intruder binds to it.
    pub(super) lab_address: Ipv4Addr,
    /// The stranger of the `intruder` step, once started.
    pub(super) intruder: Mutex<Option<IntruderProcess>>,
}

impl Cluster {
    pub(super) fn event(
        &self,
        kind: EventKind,
        node: Option<NodeIndex>,
        detail: impl Into<String>,
    ) {
        let event = Event { time_ns: self.clock.now_ns(), kind, node, detail: detail.into() };
        self.events.lock().expect("events").push(event);
    }

    pub(super) fn http(&self, index: NodeIndex) -> Option<String> {
        let slots = self.slots.lock().expect("slots");
        slots.get(index as usize).filter(|s| s.state == NodeStatus::Running)?.http.clone()
    }

    pub(super) fn status(&self, index: NodeIndex) -> Option<NodeStatus> {
        self.slots.lock().expect("slots").get(index as usize).map(|s| s.state)
    }

    /// Nodes in the given state.
    pub(super) fn nodes_in(&self, state: NodeStatus) -> Vec<NodeIndex> {
        let slots = self.slots.lock().expect("slots");
        (0..slots.len() as NodeIndex).filter(|i| slots[*i as usize].state == state).collect()
    }

    /// Nodes not removed.
    pub(super) fn members(&self) -> Vec<NodeIndex> {
        let slots = self.slots.lock().expect("slots");
        (0..slots.len() as NodeIndex)
            .filter(|i| slots[*i as usize].state != NodeStatus::Removed)
            .collect()
    }

    pub(super) fn node_args(&self, index: NodeIndex) -> Vec<String> {
        let slots = self.slots.lock().expect("slots");
        let me = &slots[index as usize];
        let settings = &self.scenario.node_settings;
        let mut args = vec![
            format!("--node-id={}", me.node_id),
            format!("--data-dir={}", self.data_root.path().join(format!("node-{index}")).display()),
            format!("--http-addr={}:0", me.ip),
            format!("--iroh-port={}", me.iroh_port),
            format!("--iroh-secret-key={}", hex::encode(me.secret)),
            format!("--cookie={COOKIE}"),
        ];
        args.extend(raft_settings_args(settings));
        let discovery = settings.discovery;
        if discovery != Discovery::Gossip {
            args.push("--disable-gossip".into());
        }
        if discovery != Discovery::Mdns {
            args.push("--disable-mdns".into());
        }
        if discovery == Discovery::Gossip {
            args.push(format!("--gossip-interval-ms={GOSSIP_INTERVAL_MS}"));
            if let Some(ticket) = self.ticket.lock().expect("ticket").clone() {
                args.push(format!("--ticket={ticket}"));
            }
        }
        if self.network.is_some() {
            // The iroh and ractor sockets too, so that peers and the lab reach them.
            args.push(format!("--host={}", me.ip));
        }
        args.extend(self.discovery_args.iter().cloned());
        for (other, slot) in slots.iter().enumerate() {
            if other as NodeIndex == index {
                continue;
            }
            match discovery {
                Discovery::Manual | Discovery::Relay => {
                    let peer = endpoint_to_string(&self.peer_addr(slot));
                    args.push(format!("--peers={}@{peer}", slot.node_id));
                }
                // By endpoint id alone: the node resolves the addresses through DNS.
                Discovery::Dns => {
                    args.push(format!("--peers={}@{}", slot.node_id, slot.endpoint_id()))
                }
                Discovery::Gossip | Discovery::Mdns => {}
            }
        }
        args
    }

    /// The address the runner names `slot` by: its direct address, and the lab's relay if any.
    pub(super) fn peer_addr(&self, slot: &Slot) -> EndpointAddr {
        let mut addr = slot.endpoint_addr();
        addr.addrs.extend(self.relay_url.clone().map(TransportAddr::Relay));
        addr
    }

    /// Adds a slot for a new node and spawns its actor (not its process).
    pub(super) async fn new_slot(&self) -> anyhow::Result<NodeIndex> {
        let index = self.slots.lock().expect("slots").len() as NodeIndex;
        let mut secret = [0u8; 32];
        self.rng.lock().expect("rng").fill_bytes(&mut secret);
        let place = match &self.network {
            Some(network) => ractor::call!(network, NetworkMsg::AddNode)
                .map_err(|e| anyhow::anyhow!("network actor: {e}"))?
                .map_err(|e| anyhow::anyhow!("node {index} namespace: {e}"))?,
            None => NodeNetwork { address: Ipv4Addr::LOCALHOST, command_prefix: Vec::new() },
        };
        let spec = NodeSpec {
            role: ProcessRole::Node(index),
            bin: self.bin.clone(),
            args: Vec::new(),
            command_prefix: place.command_prefix,
            log_path: self.run_dir.join(format!("node-{index}.log")),
            clock: self.clock,
            events: self.events.clone(),
        };
        let actor = ractor::call!(self.supervisor, SupervisorMsg::SpawnNode, spec)
            .map_err(|e| anyhow::anyhow!("spawn node actor: {e}"))?
            .map_err(|e| anyhow::anyhow!(e))?;
        self.slots.lock().expect("slots").push(Slot {
            node_id: u64::from(index) + 1,
            ip: place.address,
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
    pub(super) async fn start(&self, index: NodeIndex) -> anyhow::Result<()> {
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

    pub(super) async fn signal(&self, index: NodeIndex, signal: i32) -> anyhow::Result<()> {
        let actor = self.slots.lock().expect("slots")[index as usize].actor.clone();
        ractor::call_t!(actor, NodeMsg::Signal, 30_000, signal)
            .map_err(|e| anyhow::anyhow!("node {index}: {e}"))?
            .map_err(|e| anyhow::anyhow!(e))
    }

    pub(super) fn set_status(&self, index: NodeIndex, state: NodeStatus) {
        self.slots.lock().expect("slots")[index as usize].state = state;
    }

    /// Resolves a selector to a node index.
    pub(super) fn resolve(&self, selector: NodeSelector) -> anyhow::Result<NodeIndex> {
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
    pub(super) async fn fault(
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
            self.forget_leader(index);
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
                    (format!("{}:{}", slot.ip, slot.ractor_port), slot.node_id)
                };
                let control =
                    RemoteNodeControl::connect(&addr, COOKIE, node_id, Duration::from_secs(10))
                        .await
                        .map_err(|e| anyhow::anyhow!("node {index} control port: {e}"))?;
                self.event(EventKind::FaultStart, Some(index), format!("crash_actor {actor}"));
                let crashed = control.crash_actor(actor).await;
                control.close().await;
                crashed.map_err(|e| anyhow::anyhow!("crash_actor {actor} on node {index}: {e}"))?;
                if takes_down {
                    // Forget it again now that the actor is gone: between the first forget and
                    // the crash the watcher may have seen this node lead once more, and a
                    // restarted RaftActor can restore its leadership in the same term, which
                    // the watcher would not then count as a new leader.
                    self.forget_leader(index);
                }
                self.event(EventKind::FaultEnd, Some(index), format!("crash_actor {actor}"));
            }
            FaultKind::WipeAndRejoin => {
                anyhow::bail!("wipe_and_rejoin needs the cluster; use Cluster::wipe_and_rejoin")
            }
        }
        Ok(())
    }

    /// Removes a node from the membership entirely (`/remove-node`: not kept as a learner, so
    /// the leader forgets how far its log went), kills it, deletes its data directory, starts
    /// it afresh on the same key and port, and joins it again as a learner, then a voter.
    /// Leaving the membership first keeps the wiped node from voting with a forgotten vote.
    pub(super) async fn wipe_and_rejoin(self: &Arc<Self>, index: NodeIndex) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.status(index) == Some(NodeStatus::Running),
            "node {index} is not running"
        );
        log(format!("fault: wipe_and_rejoin node {index}"));
        self.event(EventKind::FaultStart, Some(index), "wipe_and_rejoin");
        remove_member(self, index).await?;
        self.forget_leader(index);
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
    pub(super) async fn any_fault(
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

    /// Forgets `index` as the leader if it is, and returns it with its term: the next leader
    /// observed, even this node again, is a new `leader` event.
    pub(super) fn forget_leader(&self, index: NodeIndex) -> Option<(NodeIndex, u64)> {
        let mut leader = self.leader.lock().expect("leader");
        let forgotten = leader.filter(|(current, _)| *current == index);
        if forgotten.is_some() {
            *leader = None;
        }
        forgotten
    }

    /// Puts a network fault in force (`heal` heals the network) and records it: a
    /// `fault_start` whose detail is the fault as written, on the isolated node for `isolate`,
    /// on the leader when the fault leaves it without a majority, else on no node.
    pub(super) async fn network_fault(&self, fault: &NetworkFault) -> anyhow::Result<()> {
        if *fault == NetworkFault::Heal {
            self.heal_network().await?;
            return Ok(());
        }
        let network = self
            .network
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!(r#"network faults need "network": "netns""#))?;
        let resolved = resolve_fault(fault, |selector| self.resolve(selector))?;
        let members = self.members();
        log(format!("network fault: {fault} ({resolved})"));
        let sent = (resolved.clone(), members.clone());
        let conditions = ractor::call!(network, NetworkMsg::Fault, sent.0, sent.1)
            .map_err(|e| anyhow::anyhow!("network actor: {e}"))?
            .map_err(|e| anyhow::anyhow!("{fault}: {e}"))?;
        let leader = *self.leader.lock().expect("leader");
        let leader_lost = leader.filter(|(l, _)| leader_cut_off(&conditions, *l, &members));
        let node = match (&resolved, leader_lost) {
            (NetworkFault::Isolate(isolate), _) => match isolate.node {
                NodeSelector::Index(index) => Some(index),
                _ => None,
            },
            (_, Some((leader, _))) => Some(leader),
            _ => None,
        };
        if let Some((leader, _)) = leader_lost {
            *self.deposed.lock().expect("deposed") = self.forget_leader(leader);
        }
        self.network_faults.lock().expect("network faults").push(resolved.to_string());
        self.event(EventKind::FaultStart, node, fault.to_string());
        Ok(())
    }

    /// Heals the network of a `netns` run; records [`NETWORK_HEAL`] and returns true if a
    /// fault was in force.
    pub(super) async fn heal_network(&self) -> anyhow::Result<bool> {
        let Some(network) = &self.network else { return Ok(false) };
        let healed = ractor::call!(network, NetworkMsg::Heal)
            .map_err(|e| anyhow::anyhow!("network actor: {e}"))?
            .map_err(|e| anyhow::anyhow!("heal the network: {e}"))?;
        self.network_faults.lock().expect("network faults").clear();
        *self.deposed.lock().expect("deposed") = None;
        if healed {
            log("network healed");
            self.event(EventKind::FaultEnd, None, NETWORK_HEAL);
        }
        Ok(healed)
    }

    /// Recovers every fault still in effect, the network's first, so that restarted nodes
    /// find their peers. Records a `heal` event when something was healed, or always for a
    /// `heal` step; returns whether it recorded one.
    pub(super) async fn heal(&self, always: bool) -> anyhow::Result<bool> {
        let network_healed = match &self.network {
            Some(network) => ractor::call!(network, NetworkMsg::Heal)
                .map_err(|e| anyhow::anyhow!("network actor: {e}"))?
                .map_err(|e| anyhow::anyhow!("heal the network: {e}"))?,
            None => false,
        };
        self.network_faults.lock().expect("network faults").clear();
        *self.deposed.lock().expect("deposed") = None;
        let (paused, down) = (self.nodes_in(NodeStatus::Paused), self.nodes_in(NodeStatus::Down));
        let healing = network_healed || !paused.is_empty() || !down.is_empty();
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
        Ok(healing || always)
    }
}

/// The Raft timing and snapshot flags of every node (the intruder's too).
pub(super) fn raft_settings_args(settings: &NodeSettings) -> Vec<String> {
    vec![
        format!("--heartbeat-interval-ms={}", settings.heartbeat_interval_ms),
        format!("--election-timeout-min-ms={}", settings.election_timeout_min_ms),
        format!("--election-timeout-max-ms={}", settings.election_timeout_max_ms),
        format!("--snapshot-after-entries={}", settings.snapshot_after_entries),
        format!("--logs-kept-after-snapshot={}", settings.logs_kept_after_snapshot),
    ]
}

/// Starts a node actor's process with `args` (the peer list can grow between starts).
pub(super) fn node_start_with_args(
    args: Vec<String>,
    reply: ractor::RpcReplyPort<Result<aspen::cli::node::ReadyLine, String>>,
) -> NodeMsg {
    NodeMsg::Start(args, reply)
}

pub(super) fn free_udp_port() -> anyhow::Result<u16> {
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
