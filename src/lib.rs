//! Aspen: a Raft-replicated, strongly consistent key-value store and cluster membership control,
//! running as a ractor supervision tree over peer-to-peer QUIC (iroh).
//!
//! The modules follow the path of a request, from the contract down to the disk:
//!
//! - [`api`]: the public contract ([`api::ClusterController`], [`api::KeyValueStore`]), request
//!   and result types, errors, and the deterministic in-memory backend.
//! - [`cluster`]: starting a node ([`cluster::bootstrap_node`]), its configuration, its
//!   supervision tree, its iroh endpoint and its operator control over ractor_cluster.
//! - [`raft`]: openraft's type configuration, the RaftActor, the Raft RPC protocol (irpc over
//!   iroh), and the clients ([`raft::RaftControlClient`], [`raft::KvClient`]).
//! - [`discovery`]: how a node learns its peers (the peer book; manual peers).
//! - [`storage`]: the Raft log and the state machine in one redb database per node.
//! - [`limits`]: every bound, in one place.
//!
//! Dependencies point one way: `cluster` → `raft`, `discovery` → `storage` → `api`.

pub mod api;
pub mod cluster;
pub mod discovery;
pub mod limits;
pub mod raft;
pub mod storage;

pub use api::{
    AddLearnerRequest, ChangeMembershipRequest, ClusterController, ClusterNode, ClusterState,
    ControlPlaneError, InitRequest, KeyValueStore, KeyValueStoreError, ReadRequest, ReadResult,
    ScanRequest, ScanResult, WriteCommand, WriteRequest, WriteResult,
};
pub use cluster::{
    BootstrapHandle, ClusterBootstrapConfig, ControlBackend, IrohConfig, IrohEndpointManager,
    bootstrap_node,
};
pub use raft::{KvClient, RaftControlClient};
