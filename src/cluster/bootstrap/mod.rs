//! `bootstrap_node`: from a configuration to a running node, and the handle that stops it.
//!
//! The order matters: the database is opened first (it may refuse a data dir that belongs to
//! another node id), then the iroh endpoint (its key is kept in the data dir so a restarted
//! node keeps its endpoint id) with its address lookups (mDNS, DNS, pkarr; each one that
//! cannot run is left out with a warning), then the ractor_cluster control server, and last the
//! supervision tree, whose RaftActor starts Raft over all of them and whose HttpActor, started
//! last, binds the HTTP API. The Raft RPC server (and, unless disabled, iroh-gossip) is
//! registered on the endpoint's router before Raft starts; the Raft RPC server answers
//! "restarting" until the RaftActor has published its instance, and gossip is joined by the
//! DiscoveryActor once it has put the ticket's and the manual peers in the peer book.
//!
//! The pieces, one file each:
//! - `start.rs`: [`bootstrap_node`] itself, the start order above, and the supervision tree's
//!   children (with how clients reach the RaftActor, and what stops serving peers when the
//!   supervisor gives up).
//! - `handle.rs`: [`BootstrapHandle`], the running node, and its `shutdown`.
//! - `error.rs`: [`BootstrapError`], why a node could not start or stop cleanly.
//! - `raft_config.rs`: the node's configuration turned into openraft's, with the election
//!   timeouts openraft needs to elect inside the node's range.
//! - `access.rs`: who may call Raft RPC.
//! - `discovery.rs`: gossip discovery's parts and the startup line that says how peers are found.
//! - `secret_key.rs`: the iroh secret key kept in the data dir.

mod access;
mod discovery;
mod error;
mod handle;
mod raft_config;
mod secret_key;
mod start;

pub use error::BootstrapError;
pub use handle::BootstrapHandle;
pub use start::bootstrap_node;
