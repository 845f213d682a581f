//! The sending side of gossip: this node's announcements, with timestamps that only move
//! forward. Kept apart from the task that broadcasts them because it is plain state, tested
//! without tokio or a network.

use std::net::SocketAddr;

use iroh::EndpointAddr;

use crate::api::NodeId;
use crate::discovery::Announcement;
use crate::limits::{ANNOUNCEMENT_ADDRS_MAX, ANNOUNCEMENT_API_ADDR_BYTES_MAX};

/// The sending side, without I/O: makes this node's announcements, with timestamps that only
/// move forward (receivers drop one that is not newer than the last).
#[derive(Debug)]
pub struct Announcer {
    node_id: NodeId,
    topic: [u8; 32],
    last_timestamp_unix_ms: u64,
}

impl Announcer {
    /// An announcer for node `node_id` in the cluster of `topic`.
    pub fn new(node_id: NodeId, topic: [u8; 32]) -> Self {
        Self { node_id, topic, last_timestamp_unix_ms: 0 }
    }

    /// The next announcement: `endpoint_addr` cut to `ANNOUNCEMENT_ADDRS_MAX` addresses, and
    /// `api_addr` unless it is unusable by others (unspecified IP) or too long.
    pub fn next(
        &mut self,
        endpoint_addr: &EndpointAddr,
        api_addr: Option<SocketAddr>,
        now_unix_ms: u64,
    ) -> Announcement {
        let timestamp_unix_ms = now_unix_ms.max(self.last_timestamp_unix_ms + 1);
        self.last_timestamp_unix_ms = timestamp_unix_ms;
        let addrs = endpoint_addr.addrs.iter().take(ANNOUNCEMENT_ADDRS_MAX).cloned().collect();
        let api_addr = api_addr
            .filter(|addr| !addr.ip().is_unspecified())
            .map(|addr| addr.to_string())
            .filter(|text| text.len() <= ANNOUNCEMENT_API_ADDR_BYTES_MAX);
        Announcement {
            topic: self.topic,
            node_id: self.node_id,
            endpoint_addr: EndpointAddr { id: endpoint_addr.id, addrs },
            api_addr,
            timestamp_unix_ms,
        }
    }
}
