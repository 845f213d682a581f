//! openraft's type configuration for Aspen, and the names the rest of the crate uses for it.

use std::io::Cursor;

use iroh::EndpointAddr;
use serde::{Deserialize, Serialize};

use crate::api::{WriteCommand, WriteOutcome};

/// What the Raft membership records about each node, so that every node knows how to reach
/// every other one: this is how node addresses are replicated rather than node-local.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftMemberInfo {
    /// Where the node's API is served (as given in `ClusterNode::addr`).
    pub api_addr: String,
    /// The node's iroh endpoint address (id plus the direct and relay addresses known when it
    /// was added). `None` only for nodes made by openraft's storage test suite.
    pub endpoint_addr: Option<EndpointAddr>,
}

openraft::declare_raft_types!(
    /// Aspen's Raft types: string commands in, [`WriteOutcome`] out, classic one-leader-per-term
    /// Raft (the standard leader id, as in the Raft paper).
    pub AspenTypeConfig:
        D = WriteCommand,
        R = WriteOutcome,
        NodeId = u64,
        Node = RaftMemberInfo,
        Term = u64,
        LeaderId = openraft::impls::leader_id_std::LeaderId<Self::Term, Self::NodeId>,
);

/// A snapshot's bytes: the postcard encoding of the whole key-value table, built by the state
/// machine and streamed between nodes in chunks of at most `SNAPSHOT_CHUNK_BYTES_MAX`.
pub type SnapshotData = Cursor<Vec<u8>>;

/// The Raft handle of a node.
pub type AspenRaft = openraft::Raft<AspenTypeConfig, crate::storage::RedbStateMachine>;

/// A log id of Aspen's log.
pub type LogId = openraft::alias::LogIdOf<AspenTypeConfig>;

/// A vote of Aspen's Raft.
pub type Vote = openraft::alias::VoteOf<AspenTypeConfig>;

/// A log entry of Aspen's log.
pub type Entry = openraft::alias::EntryOf<AspenTypeConfig>;

/// Aspen's stored membership (the last applied membership config and its log id).
pub type StoredMembership = openraft::alias::StoredMembershipOf<AspenTypeConfig>;

/// Aspen's snapshot metadata.
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<AspenTypeConfig>;

/// Aspen's snapshot.
pub type Snapshot = openraft::alias::SnapshotOf<AspenTypeConfig, SnapshotData>;

/// Aspen's Raft metrics.
pub type RaftMetrics = openraft::RaftMetrics<AspenTypeConfig>;
