//! Consensus: openraft's configuration, the RaftActor that owns the Raft instance, the Raft RPC
//! protocol over iroh, and the clients programs use.
//!
//! Caveats: see the submodules.

pub mod network;
mod shared;
mod types;

pub use shared::SharedRaft;
pub use types::{
    AspenRaft, AspenTypeConfig, Entry, LogId, RaftMemberInfo, RaftMetrics, Snapshot, SnapshotData,
    SnapshotMeta, StoredMembership, Vote,
};
