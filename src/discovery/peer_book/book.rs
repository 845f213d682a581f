//! The peer book: a shared map from node id to [`PeerEntry`], and the rules that decide what a
//! new word about a peer changes (see the parent module for the rules in prose). The tests of
//! those rules stay with them.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use iroh::{EndpointAddr, EndpointId};

use super::entry::{PeerEntry, PeerSource};
use crate::api::NodeId;
use crate::limits::{GOSSIP_PEERS_MAX, PEERS_MAX};

/// The peer book is full (`PEERS_MAX`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the peer book already holds {PEERS_MAX} peers")]
pub struct PeerBookFull;

/// Why a gossip announcement did not enter the peer book.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerRefused {
    /// The book holds `PEERS_MAX` peers, or `GOSSIP_PEERS_MAX` that only gossip vouches for.
    #[error("the peer book holds as many peers as it takes from gossip")]
    Full,
    /// The node id is bound to another endpoint, or the endpoint to another node id.
    #[error("node {node_id} or endpoint {endpoint} is already bound to another peer")]
    Conflict {
        /// The node id claimed.
        node_id: NodeId,
        /// The endpoint that claimed it.
        endpoint: EndpointId,
    },
}

/// A node's peer book; clones share the same book.
#[derive(Debug, Clone, Default)]
pub struct PeerBook {
    peers: Arc<RwLock<BTreeMap<NodeId, PeerEntry>>>,
}

fn unix_ms_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// What one source says about one peer.
struct Claim {
    node_id: NodeId,
    endpoint_addr: EndpointAddr,
    source: PeerSource,
    api_addr: Option<String>,
}

impl PeerBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records (or refreshes) `node_id` at `endpoint_addr`, learned from `source` (any but
    /// `Gossip`, see [`PeerBook::add_announced`]). A manual entry is never replaced by one
    /// learned another way, because the operator's word wins over discovery.
    pub fn add(
        &self,
        node_id: NodeId,
        endpoint_addr: EndpointAddr,
        source: PeerSource,
    ) -> Result<(), PeerBookFull> {
        let claim = Claim { node_id, endpoint_addr, source, api_addr: None };
        match self.record(claim) {
            Ok(()) | Err(PeerRefused::Conflict { .. }) => Ok(()),
            Err(PeerRefused::Full) => Err(PeerBookFull),
        }
    }

    /// Records what a verified announcement says: `node_id` is at `endpoint_addr` and serves
    /// its API at `api_addr`. Refused when the node id or the endpoint is bound to another
    /// peer, or when the book holds as many gossip-only peers as it takes.
    pub fn add_announced(
        &self,
        node_id: NodeId,
        endpoint_addr: EndpointAddr,
        api_addr: Option<String>,
    ) -> Result<(), PeerRefused> {
        self.record(Claim { node_id, endpoint_addr, source: PeerSource::Gossip, api_addr })
    }

    /// Records what an mDNS record on the local network says: `node_id` is at
    /// `endpoint_addr`. The same rules as for gossip apply, because the record is a claim too.
    pub fn add_mdns(
        &self,
        node_id: NodeId,
        endpoint_addr: EndpointAddr,
        cookie_proven: bool,
    ) -> Result<(), PeerRefused> {
        let endpoint = endpoint_addr.id;
        self.record(Claim { node_id, endpoint_addr, source: PeerSource::Mdns, api_addr: None })?;
        if cookie_proven {
            // The record proved the cluster cookie for this endpoint: trust it like a peer
            // an operator named (it may call Raft RPC before the membership names it).
            let mut peers = self.peers.write().unwrap_or_else(|e| e.into_inner());
            if let Some(entry) = peers.get_mut(&node_id).filter(|e| e.endpoint_addr.id == endpoint)
            {
                entry.operator_named = true;
            }
        }
        Ok(())
    }

    /// Records addresses a DNS lookup found for `endpoint_addr.id`, when the book binds
    /// `node_id` to that endpoint; returns whether it did. A lookup answers where an endpoint
    /// is, never which node it is, so it never adds a peer.
    pub fn add_resolved(&self, node_id: NodeId, endpoint_addr: EndpointAddr) -> bool {
        let mut peers = self.peers.write().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = peers.get_mut(&node_id) else { return false };
        if entry.endpoint_addr.id != endpoint_addr.id {
            return false;
        }
        let claim = Claim { node_id, endpoint_addr, source: PeerSource::Dns, api_addr: None };
        refresh(entry, claim, unix_ms_now());
        true
    }

    fn record(&self, claim: Claim) -> Result<(), PeerRefused> {
        let mut peers = self.peers.write().unwrap_or_else(|e| e.into_inner());
        let gossip = claim.source.is_claim();
        let endpoint = claim.endpoint_addr.id;
        let conflict = PeerRefused::Conflict { node_id: claim.node_id, endpoint };
        if gossip
            && peers.values().any(|e| e.endpoint_addr.id == endpoint && e.node_id != claim.node_id)
        {
            return Err(conflict);
        }
        let now = unix_ms_now();
        match peers.get_mut(&claim.node_id) {
            Some(entry) if entry.endpoint_addr.id == endpoint => {
                refresh(entry, claim, now);
                Ok(())
            }
            Some(_) if gossip => Err(conflict),
            Some(entry) => {
                // Only the operator rebinds a node id the operator named.
                if claim.source == PeerSource::Manual || !entry.operator_named {
                    *entry = new_entry(claim, now);
                }
                Ok(())
            }
            None => {
                let gossip_only = peers.values().filter(|e| !e.operator_named).count();
                if peers.len() >= PEERS_MAX || (gossip && gossip_only >= GOSSIP_PEERS_MAX) {
                    return Err(PeerRefused::Full);
                }
                peers.insert(claim.node_id, new_entry(claim, now));
                Ok(())
            }
        }
    }

    /// The endpoint address of `node_id`, if known.
    pub fn get(&self, node_id: NodeId) -> Option<EndpointAddr> {
        let peers = self.peers.read().unwrap_or_else(|e| e.into_inner());
        peers.get(&node_id).map(|entry| entry.endpoint_addr.clone())
    }

    /// The HTTP API address `node_id` announced, if any.
    pub fn api_addr(&self, node_id: NodeId) -> Option<String> {
        let peers = self.peers.read().unwrap_or_else(|e| e.into_inner());
        peers.get(&node_id).and_then(|entry| entry.api_addr.clone())
    }

    /// The node id known for an endpoint id, if any.
    pub fn node_of(&self, endpoint_id: &EndpointId) -> Option<NodeId> {
        let peers = self.peers.read().unwrap_or_else(|e| e.into_inner());
        peers.values().find(|entry| entry.endpoint_addr.id == *endpoint_id).map(|e| e.node_id)
    }

    /// True when an operator named the peer at `endpoint_id` (manually or in a ticket).
    pub fn is_operator_named(&self, endpoint_id: &EndpointId) -> bool {
        let peers = self.peers.read().unwrap_or_else(|e| e.into_inner());
        peers.values().any(|entry| entry.operator_named && entry.endpoint_addr.id == *endpoint_id)
    }

    /// Every known peer, sorted by node id.
    pub fn list(&self) -> Vec<PeerEntry> {
        let peers = self.peers.read().unwrap_or_else(|e| e.into_inner());
        peers.values().cloned().collect()
    }

    /// How many peers are known.
    pub fn len(&self) -> usize {
        self.peers.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// True when no peer is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn new_entry(claim: Claim, now: u64) -> PeerEntry {
    PeerEntry {
        node_id: claim.node_id,
        endpoint_addr: claim.endpoint_addr,
        operator_named: claim.source.is_operator(),
        source: claim.source,
        api_addr: claim.api_addr,
        last_seen_unix_ms: now,
    }
}

/// Another word about the same endpoint: the better-ranked source supplies the addresses (an
/// entry without addresses takes any), and what is known for sure is kept.
fn refresh(entry: &mut PeerEntry, claim: Claim, now: u64) {
    let takes_addresses = !claim.endpoint_addr.addrs.is_empty()
        && (entry.endpoint_addr.addrs.is_empty()
            || claim.source.address_rank() >= entry.source.address_rank());
    if takes_addresses {
        entry.endpoint_addr = claim.endpoint_addr;
        entry.source = claim.source;
    }
    entry.operator_named |= claim.source.is_operator();
    if claim.api_addr.is_some() {
        entry.api_addr = claim.api_addr;
    }
    entry.last_seen_unix_ms = now;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(seed: u8) -> EndpointAddr {
        let key = iroh::SecretKey::from_bytes(&[seed; 32]);
        EndpointAddr::new(key.public())
    }

    fn addr_at(seed: u8, port: u16) -> EndpointAddr {
        let mut addr = addr(seed);
        addr.addrs.insert(iroh::TransportAddr::Ip(([127, 0, 0, 1], port).into()));
        addr
    }

    #[test]
    fn manual_entries_win_over_learned_ones() {
        let book = PeerBook::new();
        book.add(2, addr(2), PeerSource::Manual).unwrap();
        book.add(2, addr(9), PeerSource::Membership).unwrap();
        assert_eq!(book.get(2), Some(addr(2)));
        assert_eq!(book.node_of(&addr(2).id), Some(2));
        assert_eq!(book.node_of(&addr(9).id), None);
    }

    #[test]
    fn gossip_refreshes_addresses_but_never_rebinds_a_node_id() {
        let book = PeerBook::new();
        book.add(2, addr_at(2, 4000), PeerSource::Ticket).unwrap();
        assert!(book.is_operator_named(&addr(2).id));
        // The node itself announces a new address and its API: the fresher word wins, and it
        // stays operator-named.
        book.add_announced(2, addr_at(2, 5000), Some("127.0.0.1:8082".into())).unwrap();
        let entry = &book.list()[0];
        assert_eq!(
            (entry.source, entry.endpoint_addr.clone()),
            (PeerSource::Gossip, addr_at(2, 5000))
        );
        assert_eq!(book.api_addr(2).as_deref(), Some("127.0.0.1:8082"));
        assert!(book.is_operator_named(&addr(2).id));
        // Another endpoint claiming node 2, or node 2's endpoint claiming another id: refused.
        let conflict = book.add_announced(2, addr_at(9, 1), None).unwrap_err();
        assert!(matches!(conflict, PeerRefused::Conflict { node_id: 2, .. }));
        assert!(book.add_announced(3, addr_at(2, 1), None).is_err());
        assert_eq!(book.get(2), Some(addr_at(2, 5000)));
        // A gossip-only peer may not call Raft RPC; the ticket re-read on restart does not
        // take back fresher addresses.
        book.add_announced(4, addr_at(4, 1), None).unwrap();
        assert!(!book.is_operator_named(&addr(4).id));
        book.add(2, addr_at(2, 4000), PeerSource::Ticket).unwrap();
        assert_eq!(book.get(2), Some(addr_at(2, 5000)));
    }

    #[test]
    fn a_manual_peer_without_addresses_takes_them_from_gossip() {
        let book = PeerBook::new();
        book.add(2, addr(2), PeerSource::Manual).unwrap();
        book.add_announced(2, addr_at(2, 4000), Some("h:1".into())).unwrap();
        let entry = &book.list()[0];
        assert_eq!(
            (entry.source, entry.endpoint_addr.clone()),
            (PeerSource::Gossip, addr_at(2, 4000))
        );
        assert_eq!(entry.api_addr.as_deref(), Some("h:1"));
        assert!(entry.operator_named);
        // Its addresses came from gossip, so fresher gossip moves them.
        book.add_announced(2, addr_at(2, 5000), None).unwrap();
        assert_eq!(book.get(2), Some(addr_at(2, 5000)));
        // Addresses the operator gives stay, whatever gossip says.
        book.add(2, addr_at(2, 6000), PeerSource::Manual).unwrap();
        book.add_announced(2, addr_at(2, 7000), None).unwrap();
        assert_eq!(book.get(2), Some(addr_at(2, 6000)));
        assert_eq!(book.api_addr(2).as_deref(), Some("h:1"));
        // Only the operator rebinds an id the operator named.
        book.add(2, addr(9), PeerSource::Membership).unwrap();
        assert_eq!(book.get(2), Some(addr_at(2, 6000)));
        book.add(2, addr(8), PeerSource::Manual).unwrap();
        assert_eq!(book.get(2), Some(addr(8)));
    }

    #[test]
    fn mdns_claims_like_gossip_and_dns_only_locates() {
        let book = PeerBook::new();
        book.add_mdns(2, addr_at(2, 4000), false).unwrap();
        assert_eq!(book.list()[0].source, PeerSource::Mdns);
        assert!(!book.is_operator_named(&addr(2).id));
        assert!(matches!(book.add_mdns(2, addr_at(9, 1), true), Err(PeerRefused::Conflict { .. })));
        // A lookup never adds a peer, and only locates the endpoint the book binds.
        assert!(!book.add_resolved(3, addr_at(3, 1)));
        assert!(!book.add_resolved(2, addr_at(9, 1)));
        book.add(3, addr(3), PeerSource::Manual).unwrap();
        assert!(book.add_resolved(3, addr_at(3, 5000)));
        let entry = book.list().into_iter().find(|e| e.node_id == 3).unwrap();
        assert_eq!((entry.source, entry.endpoint_addr), (PeerSource::Dns, addr_at(3, 5000)));
        assert!(entry.operator_named);
    }

    #[test]
    fn the_book_is_bounded() {
        let book = PeerBook::new();
        for id in 0..PEERS_MAX as u64 {
            book.add(id, addr(1), PeerSource::Manual).unwrap();
        }
        assert_eq!(book.add(PEERS_MAX as u64, addr(1), PeerSource::Manual), Err(PeerBookFull));
        // Refreshing a known peer still works when the book is full.
        book.add(0, addr(3), PeerSource::Manual).unwrap();
        assert_eq!(book.len(), PEERS_MAX);
    }

    #[test]
    fn gossip_alone_fills_only_part_of_the_book() {
        let book = PeerBook::new();
        let key = |id: u64| {
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(&id.to_le_bytes());
            EndpointAddr::new(iroh::SecretKey::from_bytes(&bytes).public())
        };
        for id in 0..GOSSIP_PEERS_MAX as u64 {
            book.add_announced(id, key(id), None).unwrap();
        }
        let over = GOSSIP_PEERS_MAX as u64;
        assert_eq!(book.add_announced(over, key(over), None), Err(PeerRefused::Full));
        book.add(over, key(over), PeerSource::Manual).unwrap();
        assert_eq!(book.len(), GOSSIP_PEERS_MAX + 1);
    }
}
