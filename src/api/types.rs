//! Request and result types of the two API traits.

use serde::{Deserialize, Serialize};

/// A node's identity in the cluster: the Raft node id, chosen by the operator and unique in
/// the cluster.
pub type NodeId = u64;

/// A node as the control plane sees it: its id, the address of its API, and the address at
/// which its Raft RPC endpoint is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNode {
    /// The node's Raft id.
    pub id: NodeId,
    /// Where the node's API is served (for example its HTTP address `127.0.0.1:8080`). Empty
    /// (or absent in JSON) means "as the peer book has it" (from the node's gossip
    /// announcement), else unknown.
    #[serde(default)]
    pub addr: String,
    /// The node's iroh endpoint: an endpoint id, or an endpoint address as JSON
    /// (`{"id": "...", "addrs": [...]}`). `None` means "look it up in the peer book".
    #[serde(default)]
    pub raft_addr: Option<String>,
}

impl ClusterNode {
    /// A node with the given id, API address and optional Raft (iroh endpoint) address.
    pub fn new(id: NodeId, addr: impl Into<String>, raft_addr: Option<&str>) -> Self {
        Self { id, addr: addr.into(), raft_addr: raft_addr.map(str::to_owned) }
    }
}

/// Create a new cluster with these voting members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitRequest {
    /// The first voters. The node receiving the request must be one of them.
    pub initial_members: Vec<ClusterNode>,
}

/// Add a non-voting learner that receives the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddLearnerRequest {
    /// The node to add.
    pub learner: ClusterNode,
}

/// Replace the set of voters. Every id must already be a member or a learner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeMembershipRequest {
    /// The new voters.
    pub members: Vec<NodeId>,
}

/// Remove a node from the cluster completely, as etcd's `member remove` does: a voter leaves the
/// voter set and is not kept as a learner. The node may later join again, even under the same
/// id with an empty data directory, by being added as a learner anew.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveNodeRequest {
    /// The node to remove.
    pub node_id: NodeId,
}

/// The cluster's membership as replicated through Raft: every node reports the same state once
/// it has applied the same log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    /// Every node known to the membership (voters and learners), sorted by id.
    pub nodes: Vec<ClusterNode>,
    /// The voting members, sorted.
    pub members: Vec<NodeId>,
    /// The learners, sorted.
    pub learners: Vec<NodeId>,
}

/// A change to the key-value state, applied atomically through the Raft log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteCommand {
    /// Set one key to a value.
    Set {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Set several keys at once; all or none are applied.
    SetMulti {
        /// The `(key, value)` pairs, applied in order (a later pair wins over an earlier one
        /// with the same key).
        pairs: Vec<(String, String)>,
    },
    /// Remove a key. Removing a missing key succeeds and changes nothing.
    Delete {
        /// The key.
        key: String,
    },
    /// Set `key` to `new_value` only if its current value is `expected` (`None`: only if the
    /// key is absent). On a mismatch nothing changes and the current value is returned.
    CompareAndSwap {
        /// The key.
        key: String,
        /// The value the key must have now, or `None` for "absent".
        expected: Option<String>,
        /// The value to set.
        new_value: String,
    },
}

impl std::fmt::Display for WriteCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteCommand::Set { key, .. } => write!(f, "Set({key})"),
            WriteCommand::SetMulti { pairs } => write!(f, "SetMulti({} pairs)", pairs.len()),
            WriteCommand::Delete { key } => write!(f, "Delete({key})"),
            WriteCommand::CompareAndSwap { key, .. } => write!(f, "CompareAndSwap({key})"),
        }
    }
}

/// A write to apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteRequest {
    /// What to change.
    pub command: WriteCommand,
}

/// What a successful write reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteResult {
    /// The command that was applied.
    pub command: WriteCommand,
    /// The Raft log index at which it was applied (`0` for the deterministic backend's first
    /// write is never used: indexes start at 1).
    pub log_index: u64,
}

/// Read one key. By default linearizably: the result reflects every write acknowledged before
/// the read began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadRequest {
    /// The key.
    pub key: String,
    /// How fresh the answer must be; linearizable when absent.
    #[serde(default)]
    pub consistency: ReadConsistency,
}

impl ReadRequest {
    /// A linearizable read of `key`.
    pub fn new(key: impl Into<String>) -> Self {
        Self { key: key.into(), consistency: ReadConsistency::Linearizable }
    }

    /// A serializable read of `key`: answered from the node's own state, possibly stale.
    pub fn serializable(key: impl Into<String>) -> Self {
        Self { key: key.into(), consistency: ReadConsistency::Serializable }
    }
}

/// How fresh a read must be, as in etcd.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadConsistency {
    /// Reflects every write acknowledged before the read began: the leader confirms with a
    /// quorum that it still leads (a ReadIndex round), and a follower forwards the read to it.
    #[default]
    Linearizable,
    /// Answered by the node that receives it, from what it has applied, with no round trip:
    /// it may miss recent writes (a follower can lag; a node cut off from the cluster keeps
    /// answering with old data). It never sees a write that was not committed, and a later
    /// serializable read on the same running node never sees older data than an earlier one.
    Serializable,
}

/// The value of a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadResult {
    /// The key that was read.
    pub key: String,
    /// Its value.
    pub value: String,
}

/// List keys that start with a prefix, in key order, linearizably.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRequest {
    /// The prefix; empty lists every key.
    #[serde(default)]
    pub prefix: String,
    /// Most entries to return (default `SCAN_LIMIT_DEFAULT`, at most `SCAN_LIMIT_MAX`).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// The result of a scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanResult {
    /// The `(key, value)` pairs found, in key order.
    pub entries: Vec<(String, String)>,
    /// True when more keys match than the limit allowed to return.
    pub truncated: bool,
}
