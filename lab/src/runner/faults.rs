//! The faults the lab puts on the cluster: the process faults (kill, terminate, pause/resume,
//! restart, crash an actor through the node's control port, wipe and rejoin), the network
//! faults of a `netns` run, which the Network actor (network.rs) puts in force, and heal.
//! Apart from cluster.rs, which holds the records they change, since each fault is a short
//! script of its own with its events.
//!
//! A fault that takes the leader away (a process fault on it, or a partition that leaves it
//! without a majority) forgets the leader, so that the next leader observed is a new `leader`
//! event. A partition also remembers it as *deposed* until the network heals: the leader
//! watcher does not take a deposed leader's claim at its old term for a new leader, since a
//! leader cut off by a partition goes on calling itself leader until it hears a higher term.
//! (A paused or restarted leader that nobody replaced does lead again at its old term.)

use std::sync::Arc;
use std::time::Duration;

use aspen::cluster::node_control::RemoteNodeControl;
use serde_json::json;

use super::COOKIE;
use super::cluster::{Cluster, NodeStatus};
use super::membership::{change_membership, cluster_node, post_to_leader, remove_member};
use super::network::{NetworkMsg, leader_cut_off, resolve_fault};
use super::progress::log;
use crate::history::{EventKind, NETWORK_HEAL};
use crate::scenario::{FaultKind, NetworkFault, NodeIndex, NodeSelector};

impl Cluster {
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
