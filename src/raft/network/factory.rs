//! The client side: the network factory openraft asks for per-peer networks, and forwarding of
//! client requests to the leader.

use std::time::Duration;

use iroh::{Endpoint, EndpointAddr};
use irpc::Channels;
use irpc::channel::oneshot;
use openraft::network::RaftNetworkFactory;
use serde::de::DeserializeOwned;

use super::connections::{CallError, Connections};
use super::peer::IrpcRaftNetwork;
use super::protocol::RaftRpcProtocol;
use crate::api::{
    KeyValueStoreError, NodeId, ReadRequest, ReadResult, ScanRequest, ScanResult, WriteRequest,
    WriteResult,
};
use crate::discovery::{PeerBook, PeerSource};
use crate::limits::CLIENT_REQUEST_TIMEOUT_MS_MAX;
use crate::raft::{AspenTypeConfig, RaftMemberInfo};

/// Builds the per-peer Raft networks of a node and forwards client requests to the leader.
///
/// Clones share the peer book and one connection cache, so every Raft replication stream,
/// heartbeat and forwarded request to a peer goes over the same QUIC connection.
#[derive(Debug, Clone)]
pub struct IrpcRaftNetworkFactory {
    connections: Connections,
    peers: PeerBook,
}

impl IrpcRaftNetworkFactory {
    /// A factory dialing from `endpoint`, looking peers up in `peers` first.
    pub fn new(endpoint: Endpoint, peers: PeerBook) -> Self {
        Self { connections: Connections::new(endpoint), peers }
    }

    /// Records that `node_id` is reached at `addr`, as a manual peer (the operator's word wins
    /// over discovery). Returns nothing so that wiring code can call it as a statement: a full
    /// peer book (`PEERS_MAX`) is logged as a warning and the peer is not added. Callers that
    /// must know use [`PeerBook::add`] on [`Self::peer_book`].
    pub fn add_peer(&self, node_id: NodeId, addr: EndpointAddr) {
        if let Err(full) = self.peers.add(node_id, addr, PeerSource::Manual) {
            tracing::warn!(node_id, %full, "peer not added");
        }
    }

    /// The peer book this factory dials from.
    pub fn peer_book(&self) -> &PeerBook {
        &self.peers
    }

    /// How many remote endpoints have a cached connection (a client is cached on first use and
    /// dropped when a call through it fails).
    pub fn cached_connections(&self) -> usize {
        self.connections.len()
    }

    /// Where `node_id` is reached. The Raft membership decides *who* the node is (its endpoint
    /// id, agreed through consensus); the peer book may know fresher *addresses* for it (a
    /// restart on another port, discovery). So: the peer book's entry when its endpoint id is
    /// the membership's (with the addresses of both), the membership's when the ids differ (the
    /// node was removed and rejoined with a new key, and the book still holds the old one), and
    /// whichever exists when only one does.
    pub(crate) fn resolve(
        &self,
        node_id: NodeId,
        node: Option<&RaftMemberInfo>,
    ) -> Option<EndpointAddr> {
        let member = node.and_then(|node| node.endpoint_addr.clone());
        pick_address(self.peers.get(node_id), member)
    }

    pub(crate) fn connections(&self) -> &Connections {
        &self.connections
    }

    /// Executes `request` on `leader`, which must not forward it again.
    pub async fn forward_write(
        &self,
        leader: NodeId,
        node: Option<&RaftMemberInfo>,
        request: WriteRequest,
    ) -> Result<WriteResult, KeyValueStoreError> {
        self.forward(leader, node, request, "write").await
    }

    /// Reads linearizably on `leader`.
    pub async fn forward_read(
        &self,
        leader: NodeId,
        node: Option<&RaftMemberInfo>,
        request: ReadRequest,
    ) -> Result<ReadResult, KeyValueStoreError> {
        self.forward(leader, node, request, "read").await
    }

    /// Scans linearizably on `leader`.
    pub async fn forward_scan(
        &self,
        leader: NodeId,
        node: Option<&RaftMemberInfo>,
        request: ScanRequest,
    ) -> Result<ScanResult, KeyValueStoreError> {
        self.forward(leader, node, request, "scan").await
    }

    /// An unreachable leader is answered with `NotLeader` naming it, so the caller may retry
    /// there directly; a failure after the request may have reached the leader is `Failed`,
    /// because a write may then have been applied.
    async fn forward<Req, Res>(
        &self,
        leader: NodeId,
        node: Option<&RaftMemberInfo>,
        request: Req,
        what: &str,
    ) -> Result<Res, KeyValueStoreError>
    where
        Req: Channels<RaftRpcProtocol, Tx = oneshot::Sender<Result<Res, KeyValueStoreError>>>,
        RaftRpcProtocol: From<Req>,
        Res: DeserializeOwned + Send + 'static,
    {
        let not_leader = || KeyValueStoreError::NotLeader {
            leader: Some(leader),
            leader_addr: node.map(|node| node.api_addr.clone()).filter(|addr| !addr.is_empty()),
        };
        let Some(addr) = self.resolve(leader, node) else {
            tracing::warn!(leader, "no address known for the leader; cannot forward a {what}");
            return Err(not_leader());
        };
        let timeout = Duration::from_millis(CLIENT_REQUEST_TIMEOUT_MS_MAX);
        match self.connections.call(&addr, request, timeout).await {
            Ok(answer) => answer,
            Err(CallError::Connect(reason)) => {
                tracing::warn!(leader, peer = %addr.id, %reason, "cannot reach the leader to forward a {what}");
                Err(not_leader())
            }
            Err(error) => {
                tracing::warn!(leader, peer = %addr.id, %error, "forwarded {what} failed");
                Err(KeyValueStoreError::Failed {
                    reason: format!(
                        "forwarded {what} to leader {leader} failed: {error}; the leader may or \
                         may not have executed it"
                    ),
                })
            }
        }
    }
}

/// The rule of [`IrpcRaftNetworkFactory::resolve`] over the peer book's and the membership's
/// entries for one node.
fn pick_address(book: Option<EndpointAddr>, member: Option<EndpointAddr>) -> Option<EndpointAddr> {
    match (book, member) {
        (Some(mut book), Some(member)) if book.id == member.id => {
            book.addrs.extend(member.addrs);
            Some(book)
        }
        (Some(_stale), Some(member)) => Some(member),
        (book, member) => book.or(member),
    }
}

impl RaftNetworkFactory<AspenTypeConfig> for IrpcRaftNetworkFactory {
    type Network = IrpcRaftNetwork;

    async fn new_client(&mut self, target: NodeId, node: &RaftMemberInfo) -> IrpcRaftNetwork {
        IrpcRaftNetwork::new(target, node.clone(), self.clone())
    }
}

#[cfg(test)]
mod tests {
    use iroh::{SecretKey, TransportAddr};

    use super::*;

    fn addr(key: u8, port: u16) -> EndpointAddr {
        let mut addr = EndpointAddr::new(SecretKey::from_bytes(&[key; 32]).public());
        addr.addrs.insert(TransportAddr::Ip(([127, 0, 0, 1], port).into()));
        addr
    }

    #[test]
    fn the_membership_decides_the_identity_and_the_book_adds_addresses() {
        // Same identity: the book's fresher address and the membership's are both tried.
        let both = pick_address(Some(addr(1, 2000)), Some(addr(1, 1000))).unwrap();
        assert_eq!(both.id, addr(1, 0).id);
        assert_eq!(both.addrs.len(), 2);
        // The node rejoined with a new key: the book's entry is stale, the membership wins.
        assert_eq!(pick_address(Some(addr(1, 1000)), Some(addr(2, 1000))), Some(addr(2, 1000)));
        // Only one source: that one.
        assert_eq!(pick_address(Some(addr(1, 1000)), None), Some(addr(1, 1000)));
        assert_eq!(pick_address(None, Some(addr(2, 1000))), Some(addr(2, 1000)));
        assert_eq!(pick_address(None, None), None);
    }
}
