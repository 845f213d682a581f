//! Launching a node of the cluster: the flags its `aspen-node` process starts with (identity,
//! Raft settings, discovery, peers), a new slot with its NodeProcess actor and ports, and
//! starting and signalling the process through that actor. Apart from cluster.rs, which holds
//! the records these fill in, and shared with the intruder (intruder.rs), which starts its
//! process with the same Raft settings and gossip interval.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};

use aspen::discovery::endpoint_to_string;
use rand_chacha::rand_core::RngCore;

use super::COOKIE;
use super::cluster::{Cluster, NodeStatus, Slot};
use super::network::{NetworkMsg, NodeNetwork};
use super::node::{NodeMsg, NodeSpec, ProcessRole, SupervisorMsg};
use crate::scenario::{Discovery, NodeIndex, NodeSettings};

/// Gossip interval of nodes under gossip discovery: short, so that a run's nodes find each
/// other within a second or two.
pub(super) const GOSSIP_INTERVAL_MS: u64 = 500;

impl Cluster {
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
