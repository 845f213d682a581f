//! Starting and running a node: its configuration, its iroh endpoint, its supervision tree and
//! its operator control port.
//!
//! [`bootstrap_node`] turns a [`ClusterBootstrapConfig`] into a running node and returns a
//! [`BootstrapHandle`]: the RaftActor handle for the clients, the iroh endpoint
//! ([`IrohEndpointManager`]), the Raft network factory (`add_peer`), and `shutdown()`.
//!
//! The actor tree:
//!
//! ```text
//! NodeSupervisor            restarts a child at most ACTOR_RESTARTS_MAX times per window
//! ├── StorageActor          the redb databases (log, state): health, disk usage
//! ├── RaftActor             the openraft instance and the control plane
//! ├── DiscoveryActor        the peer book: manual and ticket peers, gossip discovery
//! ├── NodeControl           operators' entry over ractor_cluster (cookie-authenticated)
//! └── HttpActor             the HTTP API (see `crate::http`)
//! ```
//!
//! Caveats:
//! - With `ControlBackend::Deterministic` the node answers from memory: no RaftActor runs.

mod bootstrap;
mod config;
mod iroh_manager;
pub mod node_control;
mod restart_policy;
mod supervisor;

pub use bootstrap::{BootstrapError, BootstrapHandle, bootstrap_node};
pub use config::{
    ClusterBootstrapConfig, ConfigError, ControlBackend, IrohConfig, parse_secret_key,
};
pub use iroh_manager::{AddressLookups, IrohEndpointManager, IrohError};
pub use restart_policy::{RestartDecision, RestartIntensity};
pub use supervisor::{
    ChildSpec, NodeStatus, NodeSupervisor, NodeSupervisorArgs, NodeSupervisorMessage, actor_name,
};
