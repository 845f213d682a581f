//! The receiving side of gossip: verifies each message and feeds the peer book, or says why it
//! was dropped. Kept apart from the task that receives the messages because it is plain state,
//! tested without tokio or a network.

use iroh::EndpointId;

use super::DropReason;
use crate::api::NodeId;
use crate::discovery::{Announcement, AnnouncementError, PeerBook, PeerRefused, ReplayGuard};

/// The receiving side, without I/O: verifies announcements and feeds the peer book.
#[derive(Debug)]
pub struct Receiver {
    node_id: NodeId,
    own_endpoint: EndpointId,
    topic: [u8; 32],
    guard: ReplayGuard,
}

impl Receiver {
    /// A receiver for the node `node_id` at `own_endpoint` in the cluster of `topic`.
    pub fn new(node_id: NodeId, own_endpoint: EndpointId, topic: [u8; 32]) -> Self {
        Self { node_id, own_endpoint, topic, guard: ReplayGuard::new() }
    }

    /// Handles one received message at `now_unix_ms`: the announcement that entered (or
    /// refreshed) the peer book, `Ok(None)` for this node's own announcement, or why it was
    /// dropped.
    pub fn on_message(
        &mut self,
        bytes: &[u8],
        now_unix_ms: u64,
        peers: &PeerBook,
        members: &[(NodeId, EndpointId)],
    ) -> Result<Option<Announcement>, DropReason> {
        let announcement = Announcement::verify(bytes, &self.topic).map_err(drop_reason)?;
        let (node_id, endpoint) = (announcement.node_id, announcement.endpoint_addr.id);
        if (node_id, endpoint) == (self.node_id, self.own_endpoint) {
            return Ok(None);
        }
        self.guard.admit(&announcement, now_unix_ms).map_err(drop_reason)?;
        let claims_other = |(id, ep): &(NodeId, EndpointId)| (*id == node_id) != (*ep == endpoint);
        if claims_other(&(self.node_id, self.own_endpoint)) || members.iter().any(claims_other) {
            return Err(DropReason::Conflict);
        }
        let entered = peers.add_announced(
            node_id,
            announcement.endpoint_addr.clone(),
            announcement.api_addr.clone(),
        );
        match entered {
            Ok(()) => Ok(Some(announcement)),
            Err(PeerRefused::Conflict { .. }) => Err(DropReason::Conflict),
            Err(PeerRefused::Full) => Err(DropReason::Full),
        }
    }
}

fn drop_reason(error: AnnouncementError) -> DropReason {
    match error {
        AnnouncementError::Malformed { .. } => DropReason::Malformed,
        AnnouncementError::BadSignature { .. } => DropReason::BadSignature,
        AnnouncementError::WrongTopic { .. } => DropReason::WrongTopic,
        AnnouncementError::Replayed { .. } => DropReason::Replayed,
        AnnouncementError::Stale { .. } => DropReason::Stale,
    }
}
