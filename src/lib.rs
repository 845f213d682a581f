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
//! - [`http`]: the node's HTTP API (JSON; Prometheus metrics; OpenAPI document), served by the
//!   HttpActor under the node's supervisor.
//! - [`discovery`]: how a node learns its peers (the peer book; manual peers; cluster tickets).
//! - [`storage`]: the Raft log and the state machine in two redb databases per node.
//! - [`limits`]: every bound, in one place.
//! - [`cli`]: the `aspen-node` and `aspen` programs as library code (flags, config merging,
//!   the HTTP client, output and exit codes); `src/bin/` only wires them up.
//!
//! Dependencies point one way: `cluster` → `http` → `raft`, `discovery` → `storage` → `api`.

pub mod api;
pub mod cli;
pub mod cluster;
pub mod discovery;
pub mod http;
pub mod limits;
pub mod raft;
pub mod storage;

pub use api::{
    AddLearnerRequest, ChangeMembershipRequest, ClusterController, ClusterNode, ClusterState,
    ControlPlaneError, InitRequest, KeyValueStore, KeyValueStoreError, ReadConsistency,
    ReadRequest, ReadResult, RemoveNodeRequest, ScanRequest, ScanResult, WriteCommand,
    WriteRequest, WriteResult,
};
pub use cluster::{
    BootstrapHandle, ClusterBootstrapConfig, ControlBackend, IrohConfig, IrohEndpointManager,
    bootstrap_node,
};
pub use raft::{KvClient, RaftControlClient};
