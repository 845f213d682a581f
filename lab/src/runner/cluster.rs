//! The cluster of a run as the lab sees it: one slot per node (its id, key, port, actor and
//! status), the run's shared records (clock, events, history recorder, last leader seen, the
//! network faults in force), and the questions asked of them: which nodes are running, which
//! are members, which node a selector names, and forgetting a leader that a fault took away.
//!
//! What is done to the cluster lives next to it: starting a node's process (its flags, its slot
//! and actor, signals) in launch.rs, and the process and network faults and heal in faults.rs.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};

use iroh::{EndpointAddr, SecretKey, TransportAddr};
use ractor::ActorRef;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::RngCore;

use super::intruder::IntruderProcess;
use super::network::NetworkMsg;
use super::node::{NodeMsg, SupervisorMsg};
use crate::history::{Clock, Event, EventKind, Events, Recorder, RunClock};
use crate::scenario::{NodeIndex, NodeSelector, Scenario};

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

    /// The address the runner names `slot` by: its direct address, and the lab's relay if any.
    pub(super) fn peer_addr(&self, slot: &Slot) -> EndpointAddr {
        let mut addr = slot.endpoint_addr();
        addr.addrs.extend(self.relay_url.clone().map(TransportAddr::Relay));
        addr
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
}
