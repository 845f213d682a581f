//! The DiscoveryActor: feeds the peer book.
//!
//! On start it records the manual peers of the configuration (so a restarted actor restores
//! them), and it takes peers added at run time. Later discovery methods (gossip, mDNS,
//! DNS/pkarr) run under this actor too, so that their failures are supervised.

use iroh::EndpointAddr;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorMessage;

use super::{PeerBook, PeerBookFull, PeerEntry, PeerSource, parse_peer};
use crate::api::NodeId;

/// Messages the DiscoveryActor handles.
#[derive(RactorMessage)]
pub enum DiscoveryActorMessage {
    /// Add (or refresh) a manual peer.
    AddPeer(NodeId, EndpointAddr, RpcReplyPort<Result<(), PeerBookFull>>),
    /// Every known peer.
    ListPeers(RpcReplyPort<Vec<PeerEntry>>),
}

/// What the DiscoveryActor starts from.
#[derive(Debug, Clone)]
pub struct DiscoveryActorArgs {
    /// The node's peer book.
    pub peers: PeerBook,
    /// Manual peer specifications from the configuration (already validated).
    pub manual_peers: Vec<String>,
}

/// The DiscoveryActor.
pub struct DiscoveryActor;

impl Actor for DiscoveryActor {
    type Msg = DiscoveryActorMessage;
    type State = PeerBook;
    type Arguments = DiscoveryActorArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: DiscoveryActorArgs,
    ) -> Result<PeerBook, ActorProcessingErr> {
        for spec in &args.manual_peers {
            let (node_id, addr) = parse_peer(spec)?;
            if addr.addrs.is_empty() {
                tracing::warn!(
                    node_id,
                    "manual peer {spec} has no addresses: it can be dialed only once another \
                     discovery method supplies them"
                );
            }
            args.peers.add(node_id, addr, PeerSource::Manual)?;
        }
        Ok(args.peers)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        peers: &mut PeerBook,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            DiscoveryActorMessage::AddPeer(node_id, addr, reply) => {
                let _ = reply.send(peers.add(node_id, addr, PeerSource::Manual));
            }
            DiscoveryActorMessage::ListPeers(reply) => {
                let _ = reply.send(peers.list());
            }
        }
        Ok(())
    }
}
