//! The gossip task: the I/O shell around [`Announcer`] and [`Receiver`]. It subscribes to the
//! cluster's topic (again after a pause when the subscription ends), broadcasts on a timer and
//! when a neighbour comes up, joins peers the book learns, and counts what it sends and drops.
//! Kept apart from the two plain halves so that every await and timeout is in one place.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use iroh::address_lookup::MemoryLookup;
use iroh::{Endpoint, EndpointId};
use iroh_gossip::Gossip;
use iroh_gossip::api::{Event, GossipReceiver, GossipSender};
use tokio::task::JoinHandle;
use tokio::time::{MissedTickBehavior, timeout};

use super::{Announcer, GossipCounters, Receiver};
use crate::api::NodeId;
use crate::discovery::{PeerBook, PeerSource};
use crate::limits::{GOSSIP_COMMAND_TIMEOUT_MS_MAX, GOSSIP_RESUBSCRIBE_BACKOFF_MS};

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
