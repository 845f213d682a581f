//! The peer book: which iroh endpoint each Raft node id is reached at, and how we learned it.
//!
//! Every discovery method writes here; the Raft network reads from here when it dials a node
//! that the membership does not give a usable address for, and the Raft RPC server consults it
//! to decide who may call. It is bounded by `PEERS_MAX`.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use iroh::{EndpointAddr, EndpointId};
use serde::{Deserialize, Serialize};

use crate::api::NodeId;
use crate::limits::PEERS_MAX;

/// How a peer became known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PeerSource {
    /// Given by the operator (`--peers`, `add_peer`, `POST /add-peer`).
    Manual,
    /// Taken from the replicated Raft membership.
    Membership,
}

/// One known peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerEntry {
    /// The peer's Raft node id.
    pub node_id: NodeId,
    /// Where its iroh endpoint is reached.
    pub endpoint_addr: EndpointAddr,
    /// How we learned it.
    pub source: PeerSource,
    /// When it was last added or confirmed, in milliseconds since the Unix epoch.
    pub last_seen_unix_ms: u64,
}

/// The peer book is full (`PEERS_MAX`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the peer book already holds {PEERS_MAX} peers")]
pub struct PeerBookFull;

/// A node's peer book; clones share the same book.
#[derive(Debug, Clone, Default)]
pub struct PeerBook {
    peers: Arc<RwLock<BTreeMap<NodeId, PeerEntry>>>,
}

fn unix_ms_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl PeerBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records (or refreshes) `node_id` at `endpoint_addr`. A manual entry is never replaced by
    /// one learned another way, because the operator's word wins over discovery.
    pub fn add(
        &self,
        node_id: NodeId,
        endpoint_addr: EndpointAddr,
        source: PeerSource,
    ) -> Result<(), PeerBookFull> {
        let mut peers = self.peers.write().unwrap_or_else(|e| e.into_inner());
        if !peers.contains_key(&node_id) && peers.len() >= PEERS_MAX {
            return Err(PeerBookFull);
        }
        let last_seen_unix_ms = unix_ms_now();
        match peers.get_mut(&node_id) {
            Some(entry) if entry.source == PeerSource::Manual && source != PeerSource::Manual => {
                entry.last_seen_unix_ms = last_seen_unix_ms;
            }
            _ => {
                peers.insert(
                    node_id,
                    PeerEntry { node_id, endpoint_addr, source, last_seen_unix_ms },
                );
            }
        }
        Ok(())
    }

    /// The endpoint address of `node_id`, if known.
    pub fn get(&self, node_id: NodeId) -> Option<EndpointAddr> {
        let peers = self.peers.read().unwrap_or_else(|e| e.into_inner());
        peers.get(&node_id).map(|entry| entry.endpoint_addr.clone())
    }

    /// The node id known for an endpoint id, if any.
    pub fn node_of(&self, endpoint_id: &EndpointId) -> Option<NodeId> {
        let peers = self.peers.read().unwrap_or_else(|e| e.into_inner());
        peers.values().find(|entry| entry.endpoint_addr.id == *endpoint_id).map(|e| e.node_id)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(seed: u8) -> EndpointAddr {
        let key = iroh::SecretKey::from_bytes(&[seed; 32]);
        EndpointAddr::new(key.public())
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
}
