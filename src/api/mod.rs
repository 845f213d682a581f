//! The public contract of Aspen: what a program may ask of a cluster, and what it gets back.
//!
//! Two traits split the work as in the seed README:
//!
//! - [`ClusterController`] is the control plane: create a cluster (`init`), add learners,
//!   change the voting membership, and read the replicated [`ClusterState`].
//! - [`KeyValueStore`] is the data plane: [`WriteCommand`]s (`Set`, `SetMulti`, `Delete`,
//!   `CompareAndSwap`), linearizable reads and bounded prefix scans.
//!
//! Both are implemented twice: by the Raft-backed clients in [`crate::raft`] (`RaftControlClient`,
//! `KvClient`), and by the in-memory [`DeterministicCluster`] here, which needs no network and
//! gives the same answers to the same calls, for tests of code built on Aspen.
//!
//! Every request is checked against [`crate::limits`] by [`validate`] before it goes anywhere,
//! so the backends agree on what is invalid.
//!
//! Caveats:
//! - Values are UTF-8 strings, as in the seed. Binary values would need base64 at the HTTP edge.
//! - There are no leases, watches or multi-key transactions beyond `SetMulti` and single-key
//!   `CompareAndSwap`.

pub mod apply;
mod deterministic;
mod error;
mod traits;
mod types;
pub mod validate;

pub use apply::WriteOutcome;
pub use deterministic::DeterministicCluster;
pub use error::{ControlPlaneError, KeyValueStoreError};
pub use traits::{ClusterController, KeyValueStore};
pub use types::{
    AddLearnerRequest, ChangeMembershipRequest, ClusterNode, ClusterState, InitRequest, NodeId,
    ReadConsistency, ReadRequest, ReadResult, RemoveNodeRequest, ScanRequest, ScanResult,
    WriteCommand, WriteRequest, WriteResult,
};
