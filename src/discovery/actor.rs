//! The DiscoveryActor: feeds the peer book.
//!
//! On start it records the manual peers of the configuration and the bootstrap peers of its
//! cluster ticket (so a restarted actor restores them), starts gossip discovery when it is
//! enabled, and takes peers added at run time. The gossip task belongs to the actor's state:
//! when the actor stops or crashes the task is aborted, and the supervisor's restart starts it
//! again, so gossip is supervised with the rest of discovery. The mDNS listener and the DNS
//! locator are owned the same way.

use iroh::EndpointAddr;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorMessage;

use super::dns::{self, DnsDiscoveryUrl, DnsLocateTask};
use super::gossip::{self, GossipArgs, GossipTask};
use super::mdns::{self, MdnsTask};
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
    /// The bootstrap peers of the node's cluster ticket, without the node itself.
    pub ticket_peers: Vec<(NodeId, EndpointAddr)>,
    /// Gossip discovery, when enabled.
    pub gossip: Option<GossipArgs>,
    /// mDNS discovery, when it runs.
    pub mdns: Option<MdnsArgs>,
    /// The DNS discovery server, when DNS discovery runs: peers whose addresses are unknown
    /// are looked up there.
    pub dns: Option<DnsDiscoveryUrl>,
}

/// What the mDNS listener needs.
#[derive(Debug, Clone)]
pub struct MdnsArgs {
    /// The mDNS service registered on the endpoint.
    pub lookup: iroh_mdns_address_lookup::MdnsAddressLookup,
    /// This node's endpoint id, whose own record is skipped.
    pub own_endpoint: iroh::EndpointId,
    /// The key of the cluster's cookie proofs (`mdns::proof_key`).
    pub proof_key: [u8; 32],
}

/// The DiscoveryActor's state.
pub struct DiscoveryState {
    peers: PeerBook,
    /// Kept for its `Drop`: the task stops with the actor.
    _gossip: Option<GossipTask>,
    /// Kept for its `Drop`, as above.
    _mdns: Option<MdnsTask>,
    /// Kept for its `Drop`, as above.
    _dns: Option<DnsLocateTask>,
}

/// The DiscoveryActor.
pub struct DiscoveryActor;

impl Actor for DiscoveryActor {
    type Msg = DiscoveryActorMessage;
    type State = DiscoveryState;
    type Arguments = DiscoveryActorArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: DiscoveryActorArgs,
    ) -> Result<DiscoveryState, ActorProcessingErr> {
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
        for (node_id, addr) in &args.ticket_peers {
            args.peers.add(*node_id, addr.clone(), PeerSource::Ticket)?;
        }
        let gossip = args.gossip.map(gossip::spawn);
        let peers = args.peers;
        let mdns =
            args.mdns.map(|m| mdns::spawn(m.lookup, m.own_endpoint, m.proof_key, peers.clone()));
        let dns = args.dns.map(|url| dns::spawn_locate(&url, peers.clone()));
        Ok(DiscoveryState { peers, _gossip: gossip, _mdns: mdns, _dns: dns })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut DiscoveryState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            DiscoveryActorMessage::AddPeer(node_id, addr, reply) => {
                let _ = reply.send(state.peers.add(node_id, addr, PeerSource::Manual));
            }
            DiscoveryActorMessage::ListPeers(reply) => {
                let _ = reply.send(state.peers.list());
            }
        }
        Ok(())
    }
}
