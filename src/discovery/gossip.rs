//! Gossip discovery: every node of a cluster announces itself on the cluster's iroh-gossip
//! topic, and every node that hears a valid announcement records the peer in its peer book.
//!
//! How the pieces fit:
//! - `bootstrap_node` spawns one `iroh_gossip::Gossip` per node and registers it under
//!   `iroh_gossip::ALPN` on the node's router, next to Raft RPC. It also registers a
//!   `MemoryLookup` on the endpoint, because gossip dials peers by endpoint id alone and the
//!   offline endpoint has no other way to find their addresses.
//! - The DiscoveryActor owns a [`GossipTask`] (spawned by [`spawn`]; aborted when the actor
//!   stops or crashes, and started again by its restart). The task subscribes to the topic
//!   [`cluster_topic`](super::cluster_topic) derives from the cookie, with every peer the book
//!   already knows (ticket bootstrap peers, manual peers) as bootstrap endpoints, and then:
//!   - every `interval`, and at once when a neighbour comes up, broadcasts this node's
//!     [`Announcement`] (node id, endpoint address, HTTP API address, timestamp), signed with
//!     the endpoint's secret key;
//!   - for every message received, [`Receiver::on_message`] verifies it and, if valid, adds the
//!     peer to the book with source `Gossip` (the Raft network dials from there, and a learner
//!     can then be added by node id alone);
//!   - every `interval`, joins peers the book learned since (e.g. `POST /add-peer`).
//! - Every message dropped is counted by reason in [`GossipCounters`], shown at `/metrics`.
//!
//! Dropped, and why: not an announcement or over a limit (`malformed`), not signed by the
//! endpoint it names (`bad_signature`), signed for another cluster (`wrong_topic`), not newer
//! than one already accepted from that endpoint (`replayed`), too old or from the future
//! (`stale`), claiming a node id bound to another endpoint or an endpoint bound to another
//! node id, in the Raft membership or the peer book (`conflict`), and more gossip-only peers
//! than `GOSSIP_PEERS_MAX` (`full`).
//!
//! Nothing here waits on the network: subscribing returns at once (the join goes on in the
//! background), every command to the gossip actor is bounded by
//! `GOSSIP_COMMAND_TIMEOUT_MS_MAX`, and a node with no reachable peer simply hears nothing.
//!
//! Caveats:
//! - A peer learned by gossip may not call this node's Raft RPC until the membership names it:
//!   knowing the topic lets anyone announce itself, so the announcement is a claim, not a
//!   credential.
//! - The first endpoint to claim a node id on the topic holds it in every peer book that has
//!   no other word for it (operator, ticket, membership). Anyone who knows the topic (from a
//!   ticket, or the cookie) can claim free ids; check `GET /peers` before adding a learner by
//!   id where that matters, or name its endpoint (`raft_addr`). A node that returns under the
//!   same id with a new key must be named again by the operator (`POST /add-peer`).
//! - A node bound to an unspecified address (`0.0.0.0`) announces no API address, since
//!   clients could not use it.
//! - Joining needs one reachable peer (a ticket's bootstrap peers, manual peers); mDNS,
//!   DNS/pkarr and relays are other methods, not part of this module.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use iroh::address_lookup::MemoryLookup;
use iroh::{Endpoint, EndpointAddr, EndpointId};
use iroh_gossip::Gossip;
use iroh_gossip::api::{Event, GossipReceiver, GossipSender};
use tokio::task::JoinHandle;
use tokio::time::{MissedTickBehavior, timeout};

pub use super::gossip_counters::{DropReason, GossipCounters, GossipCounts};
use super::{Announcement, AnnouncementError, PeerBook, PeerRefused, PeerSource, ReplayGuard};
use crate::api::NodeId;
use crate::limits::{
    ANNOUNCEMENT_ADDRS_MAX, ANNOUNCEMENT_API_ADDR_BYTES_MAX, GOSSIP_COMMAND_TIMEOUT_MS_MAX,
    GOSSIP_RESUBSCRIBE_BACKOFF_MS,
};

/// The Raft membership as `(node id, endpoint id)` pairs, read when an announcement arrives.
pub type MembersView = Arc<dyn Fn() -> Vec<(NodeId, EndpointId)> + Send + Sync>;

/// Everything the gossip task needs; cheap to clone (handles).
#[derive(Clone)]
pub struct GossipArgs {
    /// The node's gossip instance, registered on its router.
    pub gossip: Gossip,
    /// The node's endpoint: its key signs, its address is announced.
    pub endpoint: Endpoint,
    /// This node's Raft id.
    pub node_id: NodeId,
    /// The cluster's topic.
    pub topic: [u8; 32],
    /// How often to announce.
    pub interval: Duration,
    /// The node's peer book.
    pub peers: PeerBook,
    /// The address lookup gossip dials through; peers' addresses are copied into it.
    pub address_lookup: MemoryLookup,
    /// The HTTP API's address, once bound.
    pub api_addr: Arc<OnceLock<SocketAddr>>,
    /// The current Raft membership.
    pub members: MembersView,
    /// Where drops and sends are counted.
    pub counters: GossipCounters,
}

impl fmt::Debug for GossipArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GossipArgs")
            .field("node_id", &self.node_id)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

fn unix_ms_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

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

/// The running gossip task; aborted when dropped, so that a DiscoveryActor that stops or
/// crashes takes its gossip with it.
#[derive(Debug)]
pub struct GossipTask {
    handle: JoinHandle<()>,
}

impl Drop for GossipTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Starts announcing and listening on the cluster's topic.
pub fn spawn(args: GossipArgs) -> GossipTask {
    GossipTask { handle: tokio::spawn(run(args)) }
}

/// Subscribes, serves the subscription until it ends, and subscribes again after a pause.
async fn run(args: GossipArgs) {
    let own_endpoint = args.endpoint.id();
    let mut receiver = Receiver::new(args.node_id, own_endpoint, args.topic);
    let mut announcer = Announcer::new(args.node_id, args.topic);
    let backoff = Duration::from_millis(GOSSIP_RESUBSCRIBE_BACKOFF_MS);
    loop {
        let bootstrap = known_endpoints(&args, true);
        let topic_id = args.topic.into();
        let subscribed = timeout(
            command_timeout(),
            args.gossip.subscribe(topic_id, bootstrap.iter().copied().collect()),
        )
        .await;
        match subscribed {
            Ok(Ok(topic)) => {
                tracing::info!(bootstrap = bootstrap.len(), "subscribed to the gossip topic");
                let (sender, events) = topic.split();
                let mut session = Session { args: &args, sender, joined: bootstrap };
                session.serve(events, &mut receiver, &mut announcer).await;
            }
            Ok(Err(error)) => tracing::warn!(%error, "cannot subscribe to the gossip topic"),
            Err(_) => tracing::warn!("subscribing to the gossip topic timed out"),
        }
        tokio::time::sleep(backoff).await;
    }
}

fn command_timeout() -> Duration {
    Duration::from_millis(GOSSIP_COMMAND_TIMEOUT_MS_MAX)
}

/// The endpoints of the peers in the book (all, or only those learned other than by gossip,
/// which are in the swarm already), with their addresses copied into the address lookup so
/// that gossip can dial them.
fn known_endpoints(args: &GossipArgs, with_gossip_peers: bool) -> BTreeSet<EndpointId> {
    let own = args.endpoint.id();
    let mut endpoints = BTreeSet::new();
    for entry in args.peers.list() {
        if entry.endpoint_addr.id == own
            || (!with_gossip_peers && entry.source == PeerSource::Gossip)
        {
            continue;
        }
        if !entry.endpoint_addr.addrs.is_empty() {
            args.address_lookup.set_endpoint_info(entry.endpoint_addr.clone());
        }
        endpoints.insert(entry.endpoint_addr.id);
    }
    endpoints
}

/// One subscription.
struct Session<'a> {
    args: &'a GossipArgs,
    sender: GossipSender,
    /// Endpoints already given to gossip as bootstrap or join peers.
    joined: BTreeSet<EndpointId>,
}

impl Session<'_> {
    /// Announces on every tick and when a neighbour comes up, and handles what arrives, until
    /// the subscription ends.
    async fn serve(
        &mut self,
        mut events: GossipReceiver,
        receiver: &mut Receiver,
        announcer: &mut Announcer,
    ) {
        let mut tick = tokio::time::interval(self.args.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.join_new_peers().await;
                    if events.is_joined() {
                        self.announce(announcer).await;
                    }
                }
                event = events.next() => match event {
                    Some(Ok(Event::Received(message))) => {
                        self.on_received(receiver, &message.content);
                    }
                    Some(Ok(Event::NeighborUp(neighbour))) => {
                        tracing::debug!(%neighbour, "gossip neighbour up");
                        self.announce(announcer).await;
                    }
                    Some(Ok(Event::NeighborDown(neighbour))) => {
                        tracing::debug!(%neighbour, "gossip neighbour down");
                    }
                    Some(Ok(Event::Lagged)) => {
                        self.args.counters.record_lagged();
                        tracing::warn!("gossip receiver lagged; some announcements were missed");
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%error, "gossip subscription failed; subscribing again");
                        return;
                    }
                    None => {
                        tracing::warn!("gossip subscription closed; subscribing again");
                        return;
                    }
                },
            }
        }
    }

    fn on_received(&self, receiver: &mut Receiver, content: &[u8]) {
        let args = self.args;
        let members = (args.members)();
        match receiver.on_message(content, unix_ms_now(), &args.peers, &members) {
            Ok(Some(announcement)) => {
                args.counters.record_accepted();
                args.address_lookup.set_endpoint_info(announcement.endpoint_addr.clone());
                tracing::debug!(
                    node_id = announcement.node_id,
                    endpoint = %announcement.endpoint_addr.id,
                    "accepted a gossip announcement"
                );
            }
            Ok(None) => {}
            Err(reason) => {
                args.counters.record_drop(reason);
                tracing::debug!(reason = reason.label(), "dropped a gossip message");
            }
        }
    }

    async fn announce(&self, announcer: &mut Announcer) {
        let args = self.args;
        let api_addr = args.api_addr.get().copied();
        let announcement = announcer.next(&args.endpoint.addr(), api_addr, unix_ms_now());
        let bytes = announcement.sign(args.endpoint.secret_key());
        match timeout(command_timeout(), self.sender.broadcast(bytes.into())).await {
            Ok(Ok(())) => args.counters.record_sent(),
            Ok(Err(error)) => tracing::warn!(%error, "gossip broadcast failed"),
            Err(_) => tracing::warn!("gossip broadcast timed out"),
        }
    }

    /// Joins peers the book learned other than by gossip (e.g. `POST /add-peer`) since the
    /// subscription began.
    async fn join_new_peers(&mut self) {
        let new: Vec<EndpointId> =
            known_endpoints(self.args, false).difference(&self.joined).copied().collect();
        if new.is_empty() {
            return;
        }
        match timeout(command_timeout(), self.sender.join_peers(new.clone())).await {
            Ok(Ok(())) => self.joined.extend(new),
            Ok(Err(error)) => tracing::warn!(%error, "gossip join failed"),
            Err(_) => tracing::warn!("gossip join timed out"),
        }
    }
}

#[cfg(test)]
mod tests {
    use iroh::{SecretKey, TransportAddr};

    use super::*;
    use crate::discovery::{SignedAnnouncement, cluster_topic};

    fn endpoint(seed: u8, port: u16) -> (SecretKey, EndpointAddr) {
        let key = SecretKey::from_bytes(&[seed; 32]);
        let mut addr = EndpointAddr::new(key.public());
        addr.addrs.insert(TransportAddr::Ip(([127, 0, 0, 1], port).into()));
        (key, addr)
    }

    #[test]
    fn announcements_move_forward_and_leave_out_unusable_api_addresses() {
        let (_, addr) = endpoint(1, 4000);
        let mut announcer = Announcer::new(1, [0; 32]);
        let first = announcer.next(&addr, Some(([127, 0, 0, 1], 80).into()), 1_000);
        let second = announcer.next(&addr, Some(([0, 0, 0, 0], 80).into()), 1_000);
        assert_eq!((first.timestamp_unix_ms, second.timestamp_unix_ms), (1_000, 1_001));
        assert_eq!(first.api_addr.as_deref(), Some("127.0.0.1:80"));
        assert_eq!(second.api_addr, None);
        let mut many = addr.clone();
        for port in 0..40 {
            many.addrs.insert(TransportAddr::Ip(([10, 0, 0, 1], port).into()));
        }
        assert_eq!(
            announcer.next(&many, None, 0).endpoint_addr.addrs.len(),
            ANNOUNCEMENT_ADDRS_MAX
        );
    }

    #[test]
    fn a_valid_announcement_enters_the_book_and_bad_ones_are_dropped_by_reason() {
        let topic = cluster_topic("cookie");
        let (own_key, own) = endpoint(1, 4001);
        let (peer_key, peer) = endpoint(2, 4002);
        let (_, member) = endpoint(3, 4003);
        let book = PeerBook::new();
        let mut receiver = Receiver::new(1, own.id, topic);
        let members = [(1, own.id), (3, member.id)];
        let mut peer_announcer = Announcer::new(2, topic);
        let on = |bytes: &[u8], receiver: &mut Receiver| {
            receiver.on_message(bytes, 1_000_000, &book, &members)
        };

        let valid = peer_announcer.next(&peer, Some(([127, 0, 0, 1], 8082).into()), 999_000);
        let accepted = on(&valid.sign(&peer_key), &mut receiver).unwrap().unwrap();
        assert_eq!(accepted.node_id, 2);
        let entry = book.list().into_iter().find(|e| e.node_id == 2).unwrap();
        assert_eq!(
            (entry.source, entry.api_addr.as_deref()),
            (PeerSource::Gossip, Some("127.0.0.1:8082"))
        );

        assert_eq!(on(&valid.sign(&peer_key), &mut receiver), Err(DropReason::Replayed));
        let older = Announcement { timestamp_unix_ms: 998_000, ..valid.clone() };
        assert_eq!(on(&older.sign(&peer_key), &mut receiver), Err(DropReason::Replayed));
        let stale = Announcer::new(2, topic).next(&peer, None, 1);
        assert_eq!(on(&stale.sign(&peer_key), &mut receiver), Err(DropReason::Stale));
        let foreign = Announcer::new(2, cluster_topic("other")).next(&peer, None, 999_500);
        assert_eq!(on(&foreign.sign(&peer_key), &mut receiver), Err(DropReason::WrongTopic));
        assert_eq!(on(b"junk", &mut receiver), Err(DropReason::Malformed));
        // A claim about the peer signed by another key.
        let claim = peer_announcer.next(&peer, None, 999_600);
        let Ok(SignedAnnouncement::V2 { body, .. }) = postcard::from_bytes(&claim.sign(&peer_key))
        else {
            panic!("format 2")
        };
        let signature = own_key.sign(&body);
        let forged = postcard::to_stdvec(&SignedAnnouncement::V2 { body, signature }).unwrap();
        assert_eq!(on(&forged, &mut receiver), Err(DropReason::BadSignature));

        // The peer claims node 3, a member at another endpoint, or this node's own id.
        for (claimed, timestamp) in [(3, 999_900), (1, 999_901)] {
            let claim = Announcer::new(claimed, topic).next(&peer, None, timestamp);
            assert_eq!(on(&claim.sign(&peer_key), &mut receiver), Err(DropReason::Conflict));
        }
        // This node's own announcement is ignored, neither counted nor added.
        let own_announcement = Announcer::new(1, topic).next(&own, None, 999_999);
        assert_eq!(on(&own_announcement.sign(&own_key), &mut receiver), Ok(None));
        assert_eq!(book.len(), 1);
    }
}
