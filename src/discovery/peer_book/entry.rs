//! One peer as the book holds it, and the sources a peer can be learned from. Kept apart from
//! the book so that the ranking of sources (whose addresses win, who may name a node) reads in
//! one place, next to the sources themselves.

use iroh::EndpointAddr;
use serde::{Deserialize, Serialize};

use crate::api::NodeId;

/// How a peer became known (for an entry: the method that last supplied its addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PeerSource {
    /// Given by the operator (`--peers`, `add_peer`, `POST /add-peer`).
    Manual,
    /// Taken from the replicated Raft membership.
    Membership,
    /// A bootstrap peer of the cluster ticket the node was started with (`--ticket`).
    Ticket,
    /// A signed gossip announcement by the peer itself.
    Gossip,
    /// An mDNS record on the local network, under the service name derived from the cookie.
    Mdns,
    /// A DNS lookup of the peer's endpoint id at the configured DNS discovery server (where
    /// the peer published its addresses with pkarr).
    Dns,
}

impl PeerSource {
    /// How much this source's addresses are worth against another's for the same endpoint:
    /// the operator's word first, then a fresh signed announcement, then snapshots.
    pub(super) fn address_rank(self) -> u8 {
        match self {
            PeerSource::Manual => 3,
            PeerSource::Gossip | PeerSource::Mdns | PeerSource::Dns => 2,
            PeerSource::Ticket | PeerSource::Membership => 1,
        }
    }

    /// True for the sources an operator controls.
    pub(super) fn is_operator(self) -> bool {
        matches!(self, PeerSource::Manual | PeerSource::Ticket)
    }

    /// True for the sources that only claim a node id: anyone who knows the cluster's topic or
    /// service name can send them, so they may not rebind an id held by another endpoint.
    pub(super) fn is_claim(self) -> bool {
        matches!(self, PeerSource::Gossip | PeerSource::Mdns)
    }
}

/// One known peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerEntry {
    /// The peer's Raft node id.
    pub node_id: NodeId,
    /// Where its iroh endpoint is reached.
    pub endpoint_addr: EndpointAddr,
    /// How we learned the addresses above.
    pub source: PeerSource,
    /// Where its HTTP API is served (`host:port`), as it announced; `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_addr: Option<String>,
    /// True when an operator named this peer (manually or in a ticket), or its mDNS record
    /// proved that it holds the cluster cookie: it may call Raft RPC before the membership
    /// names it.
    #[serde(default)]
    pub operator_named: bool,
    /// When it was last added or confirmed, in milliseconds since the Unix epoch.
    pub last_seen_unix_ms: u64,
}
