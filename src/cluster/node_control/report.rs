//! The supervision report: which actors a node supervises, whether they run, and how often they
//! were restarted.
//!
//! The NodeSupervisor writes it (`set_child` when a child starts, `record_restart` and
//! `set_running` around a restart); the NodeControl actor reads it to answer operators. It is a
//! plain shared record rather than a question to the supervisor, so that an operator can still
//! read it while the supervisor is busy restarting a child.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

/// One supervised actor, as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildStatus {
    /// The child's role, unique within a node (`"raft"`, `"storage"`...).
    pub name: String,
    /// The process-global ractor name of the actor (`"aspen-1-raft"`).
    pub actor_name: String,
    /// How many times the supervisor restarted it since the node started.
    pub restarts: u32,
    /// Whether the actor runs now (false while it is being restarted or after the node stopped).
    pub running: bool,
}

/// A copy of a node's report at one moment, as it travels to an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeReport {
    /// The node the report describes.
    pub node_id: u64,
    /// Its supervised actors, sorted by role name.
    pub children: Vec<ChildStatus>,
}

/// The shared, cloneable supervision report of one node. Clones share the same record.
#[derive(Debug, Clone)]
pub struct SupervisionReport {
    node_id: u64,
    children: Arc<Mutex<BTreeMap<String, ChildStatus>>>,
}

impl SupervisionReport {
    /// An empty report for node `node_id`.
    pub fn new(node_id: u64) -> Self {
        Self { node_id, children: Arc::new(Mutex::new(BTreeMap::new())) }
    }

    /// The node this report describes.
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// Records that the child `name` runs as the actor `actor_name`. A child seen before keeps
    /// its restart count, so that calling this again after a restart loses nothing.
    pub fn set_child(&self, name: &str, actor_name: &str) {
        let mut children = self.lock();
        let child = children.entry(name.to_string()).or_insert_with(|| ChildStatus {
            name: name.to_string(),
            actor_name: actor_name.to_string(),
            restarts: 0,
            running: true,
        });
        child.actor_name = actor_name.to_string();
        child.running = true;
    }

    /// Counts one restart of the child `name`. An unknown name is ignored: the supervisor
    /// registers every child with [`SupervisionReport::set_child`] before it can restart it.
    pub fn record_restart(&self, name: &str) {
        if let Some(child) = self.lock().get_mut(name) {
            child.restarts = child.restarts.saturating_add(1);
        }
    }

    /// Marks the child `name` as running or not. An unknown name is ignored.
    pub fn set_running(&self, name: &str, running: bool) {
        if let Some(child) = self.lock().get_mut(name) {
            child.running = running;
        }
    }

    /// The child with role `name`, if the node supervises one.
    pub fn child(&self, name: &str) -> Option<ChildStatus> {
        self.lock().get(name).cloned()
    }

    /// Every supervised child, sorted by role name.
    pub fn children(&self) -> Vec<ChildStatus> {
        self.lock().values().cloned().collect()
    }

    /// A copy of the whole report, for the wire.
    pub fn snapshot(&self) -> NodeReport {
        NodeReport { node_id: self.node_id, children: self.children() }
    }

    /// The record stays usable after a panic elsewhere while it was locked: every update is a
    /// single field write, so a poisoned lock cannot hold a half-made change.
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, ChildStatus>> {
        self.children.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_are_sorted_by_role_and_count_restarts() {
        let report = SupervisionReport::new(7);
        report.set_child("storage", "aspen-7-storage");
        report.set_child("raft", "aspen-7-raft");
        report.set_running("raft", false);
        report.record_restart("raft");
        report.set_running("raft", true);
        report.record_restart("unknown");

        let children = report.clone().children();
        let names: Vec<_> = children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["raft", "storage"]);
        assert_eq!(children[0].restarts, 1);
        assert!(children[0].running);
        assert_eq!(children[1].restarts, 0);
        assert_eq!(report.snapshot().node_id, 7);
    }

    #[test]
    fn set_child_again_keeps_the_restart_count() {
        let report = SupervisionReport::new(1);
        report.set_child("raft", "aspen-1-raft");
        report.record_restart("raft");
        report.set_running("raft", false);
        report.set_child("raft", "aspen-1-raft");
        let raft = report.child("raft").expect("raft is registered");
        assert_eq!((raft.restarts, raft.running), (1, true));
    }
}
