//! What the handlers share: one [`HttpState`] per node, built by `bootstrap_node`.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use iroh::EndpointAddr;
use tokio::sync::watch;

use super::connections::HttpConnectionCounters;
use super::error::ApiError;
use crate::api::NodeId;
use crate::cluster::node_control::SupervisionReport;
use crate::cluster::{ControlBackend, NodeStatus};
use crate::discovery::{GossipCounters, PeerBook};
use crate::raft::network::RaftRpcServer;
use crate::raft::{KvClient, RaftActorHandle, RaftControlClient};

/// Everything the HTTP handlers read. The router holds it in one `Arc`, which axum clones for
/// every request: one reference count instead of one per field.
#[derive(Clone)]
pub struct HttpState {
    /// The node's id.
    pub node_id: NodeId,
    /// Which backend serves the node (the deterministic one runs no Raft).
    pub backend: ControlBackend,
    /// The RaftActor handle: the clients are made from it, and it holds the data-path
    /// counters (one set per node, shared with the node's other clients).
    pub raft_actor: RaftActorHandle,
    /// The node's peer book.
    pub peer_book: PeerBook,
    /// The node's own iroh endpoint address.
    pub endpoint_addr: EndpointAddr,
    /// The ractor_cluster control port.
    pub ractor_port: u16,
    /// The cluster's gossip topic (a hash of the cookie), for tickets.
    pub topic: [u8; 32],
    /// The supervised actors and their restart counts.
    pub supervision_report: SupervisionReport,
    /// The Raft RPC server, for its connection counters.
    pub rpc_server: RaftRpcServer,
    /// Gossip discovery's counters.
    pub gossip_counters: GossipCounters,
    /// Whether the node runs.
    pub status: watch::Receiver<NodeStatus>,
    /// The address the HTTP server actually listens on, once bound.
    pub http_addr: Arc<OnceLock<SocketAddr>>,
    /// The HTTP server's connection counters.
    pub http_connections: Arc<HttpConnectionCounters>,
}

impl HttpState {
    /// The node's control-plane client.
    pub fn control(&self) -> RaftControlClient {
        RaftControlClient::new(self.raft_actor.clone())
    }

    /// The node's data-plane client.
    pub fn kv(&self) -> KvClient {
        KvClient::new(self.raft_actor.clone())
    }

    /// Why the node stopped (`Some(None)`: it was shut down), or `None` while it runs.
    pub fn stopped(&self) -> Option<Option<String>> {
        match &*self.status.borrow() {
            NodeStatus::Running => None,
            NodeStatus::Stopped { error } => Some(error.clone()),
        }
    }

    /// A 503 `unavailable` once the node has stopped, so that callers get the reason rather
    /// than "actor not running".
    pub fn ensure_running(&self) -> Result<(), ApiError> {
        match self.stopped() {
            None => Ok(()),
            Some(None) => Err(ApiError::unavailable(format!("node {} is shut down", self.node_id))),
            Some(Some(error)) => {
                Err(ApiError::unavailable(format!("node {} has stopped: {error}", self.node_id)))
            }
        }
    }
}
