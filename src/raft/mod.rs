//! Consensus: openraft's configuration, the RaftActor that owns the Raft instance, the Raft RPC
//! protocol over iroh, and the clients programs use.
//!
//! - [`types`](AspenTypeConfig): the Raft type configuration; membership records carry each
//!   node's iroh endpoint, so addresses are replicated with the membership.
//! - `actor`: the [`RaftActor`], a thin shell over `control` (init, add learner, change
//!   membership) that owns the instance's lifecycle.
//! - `local` and `client`: the data path. [`KvClient`] calls openraft directly from the
//!   caller's task (many writes in flight, batched by openraft) and forwards to the leader when
//!   this node is not the leader.
//! - [`network`]: Raft RPC and forwarding as an irpc service on the node's iroh endpoint.
//! - `election`: the follower's election timer, drawn again at every term (openraft's own
//!   timer is off; see the module for why).
//!
//! Caveats:
//! - Control-plane calls are not forwarded: on a follower they answer `NotLeader` with the
//!   leader's id and address.
//! - Reads are linearizable by default, through a ReadIndex round on the leader (openraft
//!   shares one heartbeat round among the reads that wait for it). A serializable read
//!   (`ReadConsistency::Serializable`) is answered by the node that gets it, from what it has
//!   applied, and is never forwarded; scans are always linearizable.

mod actor;
mod client;
pub mod control;
mod counters;
mod election;
mod errors;
mod local;
pub mod network;
mod shared;
mod types;

pub use actor::{RaftActor, RaftActorArgs, RaftActorMessage};
pub use client::{KvClient, RaftActorHandle, RaftControlClient};
pub use control::MemberResolver;
pub use counters::{DataPathCounters, DataPathCounts};
pub use election::{ElectionWindow, LeaderContact};
pub use local::LocalKv;
pub use shared::SharedRaft;
pub use types::{
    AspenRaft, AspenTypeConfig, Entry, LogId, RaftMemberInfo, RaftMetrics, Snapshot, SnapshotData,
    SnapshotMeta, StoredMembership, Vote,
};
