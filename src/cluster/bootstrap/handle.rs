//! [`BootstrapHandle`]: a running node, what it is made of, and how it stops. Apart from
//! `start.rs`, which builds it, since stopping is its own ordered sequence.

use std::net::SocketAddr;
use std::time::Duration;

use iroh::protocol::Router;
use ractor::ActorRef;
use tokio::sync::watch;

use super::BootstrapError;
use crate::api::NodeId;
use crate::cluster::config::ClusterBootstrapConfig;
use crate::cluster::iroh_manager::IrohEndpointManager;
use crate::cluster::node_control::{ControlServer, SupervisionReport};
use crate::cluster::supervisor::{NodeStatus, NodeSupervisorMessage};
use crate::discovery::{GossipCounters, PeerBook};
use crate::http::HttpServerSlot;
use crate::limits::SHUTDOWN_TIMEOUT_MS_MAX;
use crate::raft::RaftActorHandle;
use crate::raft::network::{IrpcRaftNetworkFactory, RaftRpcServer};
use crate::storage::{DatabaseReleaseWatch, StorageError};

/// A running node. Drop does not stop it: call [`BootstrapHandle::shutdown`].
pub struct BootstrapHandle {
    /// The node's id.
    pub node_id: NodeId,
    /// The configuration it was started with.
    pub config: ClusterBootstrapConfig,
    /// The RaftActor, for `RaftControlClient::new` and `KvClient::new`.
    pub raft_actor: RaftActorHandle,
    /// The node's iroh endpoint.
    pub iroh_manager: IrohEndpointManager,
    /// The Raft network; `add_peer` tells it where another node is.
    pub network_factory: IrpcRaftNetworkFactory,
    /// Every peer this node knows.
    pub peer_book: PeerBook,
    /// The root of the node's actor tree.
    pub supervisor: ActorRef<NodeSupervisorMessage>,
    /// The supervised actors and their restart counts.
    pub supervision_report: SupervisionReport,
    /// The Raft RPC server (for its counters).
    pub rpc_server: RaftRpcServer,
    /// Gossip discovery's counters (all zero when gossip is disabled).
    pub gossip_counters: GossipCounters,
    pub(super) router: Router,
    pub(super) control_server: ControlServer,
    pub(super) http_server: HttpServerSlot,
    pub(super) status: watch::Receiver<NodeStatus>,
    pub(super) database: DatabaseReleaseWatch,
}

impl BootstrapHandle {
    /// The port of the ractor_cluster control server.
    pub fn ractor_port(&self) -> u16 {
        self.control_server.port()
    }

    /// The address the HTTP API listens on: `config.http_addr` with the port the OS chose
    /// when that port was 0.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_server.local_addr().unwrap_or(self.config.http_addr)
    }

    /// Whether the node runs, or why it stopped.
    pub fn status(&self) -> NodeStatus {
        self.status.borrow().clone()
    }

    /// Waits until the node has stopped (bounded by `timeout`) and returns its final status,
    /// or `None` if it still runs.
    pub async fn wait_stopped(&self, timeout: Duration) -> Option<NodeStatus> {
        let mut status = self.status.clone();
        let stopped = status.wait_for(|s| matches!(s, NodeStatus::Stopped { .. }));
        match tokio::time::timeout(timeout, stopped).await {
            Ok(Ok(status)) => Some(status.clone()),
            Ok(Err(_)) => Some(self.status()),
            Err(_) => None,
        }
    }

    /// Stops the node: the actors in reverse start order (Raft shuts down), then the HTTP
    /// server, the endpoint and the control server, and waits until the database is closed, so
    /// that the same data dir can be opened again at once. Each step is bounded by
    /// `SHUTDOWN_TIMEOUT_MS_MAX`.
    pub async fn shutdown(self) -> Result<(), BootstrapError> {
        let bound = Duration::from_millis(SHUTDOWN_TIMEOUT_MS_MAX);
        // Take the handle apart and drop what holds storage handles before the wait below
        // (fields left in a partly moved `self` would live until the end of this function).
        let BootstrapHandle {
            supervisor,
            router,
            control_server,
            http_server,
            database,
            raft_actor,
            rpc_server,
            ..
        } = self;
        drop((raft_actor, rpc_server));
        if supervisor.get_status() != ractor::ActorStatus::Stopped {
            let _ = supervisor.call(NodeSupervisorMessage::Shutdown, Some(bound)).await;
            let _ = supervisor.get_cell().stop_and_wait(None, Some(bound)).await;
        }
        // Last of the node's own parts, so that until here callers get 503 and a reason.
        http_server.stop().await;
        if tokio::time::timeout(bound, router.shutdown()).await.is_err() {
            tracing::warn!("iroh router did not shut down within {bound:?}");
        }
        control_server.stop().await;
        if database.wait_released(bound).await {
            Ok(())
        } else {
            Err(BootstrapError::Storage(StorageError::Io {
                reason: format!("the database was still in use {bound:?} after shutdown"),
            }))
        }
    }
}
