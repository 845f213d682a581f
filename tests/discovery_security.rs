//! No stranger injects itself through gossip. Against a running node with gossip on, a stranger
//! that knows the cluster's topic joins it over real iroh on loopback and sends: an
//! announcement about another endpoint signed with its own key (dropped as `bad_signature`),
//! an older announcement of its own after a newer one (dropped as `replayed`), and one signed
//! for another cluster (dropped as `wrong_topic`), each counted. Its own valid announcement puts
//! it in the peer book, and still it cannot call Raft RPC, because gossip is a claim, not a
//! credential (`raft_access.rs` shows the same for a stranger that does not know the topic).
//! Separately, a node with another cookie, introduced to the cluster's node as a manual peer,
//! never enters its peer book, while a node of its own cluster learns it.

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aspen::api::{ClusterController, ClusterNode, InitRequest};
use aspen::cluster::BootstrapHandle;
use aspen::discovery::{
    Announcement, DropReason, PeerBook, PeerSource, SignedAnnouncement, cluster_topic,
    endpoint_to_string,
};
use aspen::raft::network::IrpcRaftNetworkFactory;
use aspen::raft::{RaftMemberInfo, Vote};
use aspen::{ClusterBootstrapConfig, RaftControlClient, bootstrap_node};
use common::*;
use iroh::address_lookup::MemoryLookup;
use iroh::endpoint::presets;
use iroh::protocol::Router;
use iroh::{Endpoint, EndpointAddr, SecretKey};
use iroh_gossip::Gossip;
use iroh_gossip::api::{GossipReceiver, GossipSender};
use openraft::async_runtime::watch::WatchReceiver;
use openraft::error::RPCError;
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::VoteRequest;

const COOKIE: &str = "aspen-security-cookie";

/// How long a join over loopback and a few announcement intervals may take.
const GOSSIP_BOUND: Duration = Duration::from_secs(20);

fn gossip_config(node_id: u64, dir: &Path, cookie: &str) -> ClusterBootstrapConfig {
    let mut config = node_config(node_id, Some(dir));
    config.cookie = cookie.into();
    config.iroh.enable_gossip = true;
    config.iroh.gossip_interval_ms = 200;
    config
}

fn unix_ms_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// An iroh endpoint outside the cluster, on the cluster's gossip topic.
struct Stranger {
    key: SecretKey,
    endpoint: Endpoint,
    router: Router,
    sender: GossipSender,
    _receiver: GossipReceiver,
}

impl Stranger {
    /// Joins `topic` through `node`, and waits until the node is its neighbour.
    async fn join(seed: u8, topic: [u8; 32], node: &BootstrapHandle) -> Self {
        let key = SecretKey::from_bytes(&[seed; 32]);
        let endpoint = Endpoint::builder(presets::Minimal)
            .secret_key(key.clone())
            .bind_addr((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .bind()
            .await
            .unwrap();
        let lookup = MemoryLookup::new();
        lookup.add_endpoint_info(node.iroh_manager.node_addr().clone());
        endpoint.address_lookup().unwrap().add(lookup);
        let gossip = Gossip::builder().spawn(endpoint.clone());
        let router =
            Router::builder(endpoint.clone()).accept(iroh_gossip::ALPN, gossip.clone()).spawn();
        let bootstrap = vec![node.iroh_manager.endpoint_id()];
        let joined = gossip.subscribe_and_join(topic.into(), bootstrap);
        let topic = tokio::time::timeout(GOSSIP_BOUND, joined)
            .await
            .expect("the stranger joins the topic within the bound")
            .expect("subscribe");
        let (sender, receiver) = topic.split();
        Self { key, endpoint, router, sender, _receiver: receiver }
    }

    /// Its own endpoint address, as it would announce it.
    fn addr(&self) -> EndpointAddr {
        self.endpoint.addr()
    }

    async fn broadcast(&self, bytes: Vec<u8>) {
        self.sender.broadcast(bytes.into()).await.expect("broadcast");
    }
}

/// `claim` as signed by `signer` with the correct message format: only the key is wrong.
fn signed_by(claim: &Announcement, owner: &SecretKey, signer: &SecretKey) -> Vec<u8> {
    let Ok(SignedAnnouncement::V2 { body, .. }) = postcard::from_bytes(&claim.sign(owner)) else {
        panic!("format 2");
    };
    let signature = signer.sign(&SignedAnnouncement::signing_input(&body));
    postcard::to_stdvec(&SignedAnnouncement::V2 { body, signature }).unwrap()
}

async fn wait_for_drop(node: &BootstrapHandle, reason: DropReason) {
    wait_until(&format!("a message dropped as {}", reason.label()), GOSSIP_BOUND, || async {
        node.gossip_counters.snapshot().dropped(reason) >= 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_replayed_and_foreign_announcements_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let node = bootstrap_node(gossip_config(71, dir.path(), COOKIE)).await.expect("bootstrap");
    let control = RaftControlClient::new(node.raft_actor.clone());
    let me = ClusterNode::new(71, "node-71", None);
    control.init(InitRequest { initial_members: vec![me] }).await.expect("init");
    let topic = cluster_topic(COOKIE);
    let stranger = Stranger::join(0xe1, topic, &node).await;

    // A claim that node 72 is at the victim's endpoint, signed by the stranger.
    let victim = SecretKey::from_bytes(&[0xe2; 32]);
    let mut victim_addr = EndpointAddr::new(victim.public());
    victim_addr.addrs = stranger.addr().addrs;
    let claim = Announcement {
        topic,
        node_id: 72,
        endpoint_addr: victim_addr,
        api_addr: None,
        timestamp_unix_ms: unix_ms_now(),
    };
    stranger.broadcast(signed_by(&claim, &victim, &stranger.key)).await;
    wait_for_drop(&node, DropReason::BadSignature).await;
    assert_eq!(node.peer_book.get(72), None, "a forged claim never enters the peer book");

    // The stranger's own announcements: the newer one is accepted, the older one (recorded
    // before, played back after) is a replay.
    let own = |timestamp_unix_ms| Announcement {
        topic,
        node_id: 73,
        endpoint_addr: stranger.addr(),
        api_addr: None,
        timestamp_unix_ms,
    };
    let now = unix_ms_now();
    let (older, newer) = (own(now - 2_000), own(now - 1_000));
    stranger.broadcast(newer.sign(&stranger.key)).await;
    wait_until("the stranger's announcement to be accepted", GOSSIP_BOUND, || async {
        node.peer_book.get(73).is_some()
    })
    .await;
    stranger.broadcast(older.sign(&stranger.key)).await;
    wait_for_drop(&node, DropReason::Replayed).await;

    let foreign = Announcement { topic: cluster_topic("another-cookie"), ..own(unix_ms_now()) };
    stranger.broadcast(foreign.sign(&stranger.key)).await;
    wait_for_drop(&node, DropReason::WrongTopic).await;
    let counts = node.gossip_counters.snapshot();
    assert_eq!(counts.accepted, 1, "{counts:?}");

    // In the peer book by gossip, and still no Raft RPC.
    let entry = node.peer_book.list().into_iter().find(|e| e.node_id == 73).unwrap();
    assert_eq!((entry.source, entry.operator_named), (PeerSource::Gossip, false));
    let refused_before = node.rpc_server.refused_connections();
    let factory = IrpcRaftNetworkFactory::new(stranger.endpoint.clone(), PeerBook::new());
    factory.add_peer(71, node.iroh_manager.node_addr().clone());
    let mut network = factory.clone().new_client(71, &RaftMemberInfo::default()).await;
    let request = VoteRequest::new(Vote::new(1000, 73), None);
    let result = network.vote(request, RPCOption::new(Duration::from_secs(5))).await;
    assert!(matches!(result, Err(RPCError::Unreachable(_))), "{result:?}");
    assert!(node.rpc_server.refused_connections() > refused_before, "the refusal is counted");
    let term = node.raft_actor.current_raft().unwrap().metrics().borrow_watched().current_term;
    assert!(term < 1000, "the vote never reached Raft: term {term}");
    set(&node, "after-stranger", "ok").await.expect("the node still serves");

    drop(network);
    stranger.router.shutdown().await.unwrap();
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_with_another_cookie_never_enters_the_peer_book() {
    let dirs =
        [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let ours = bootstrap_node(gossip_config(81, dirs[0].path(), COOKIE)).await.expect("ours");
    // Theirs knows our node's address (a manual peer) and joins gossip through it, on the topic
    // of its own cookie; a second node of its cluster joins through it.
    let mut config = gossip_config(82, dirs[1].path(), "another-cookie");
    config.peers = vec![format!("81@{}", endpoint_to_string(ours.iroh_manager.node_addr()))];
    let theirs = bootstrap_node(config).await.expect("theirs");
    let mut config = gossip_config(83, dirs[2].path(), "another-cookie");
    config.peers = vec![format!("82@{}", endpoint_to_string(theirs.iroh_manager.node_addr()))];
    let their_peer = bootstrap_node(config).await.expect("their peer");

    // Node 83 named node 82 manually; only 82's announcement tells it 82's API address.
    wait_until("node 83 to hear node 82's announcement", GOSSIP_BOUND, || async {
        their_peer.peer_book.api_addr(82) == Some(theirs.http_addr().to_string())
    })
    .await;
    let sent_then = theirs.gossip_counters.snapshot().sent;
    wait_until("node 82 to announce itself three more times", GOSSIP_BOUND, || async {
        theirs.gossip_counters.snapshot().sent >= sent_then + 3
    })
    .await;
    assert!(ours.peer_book.is_empty(), "{:?}", ours.peer_book.list());
    assert_eq!(ours.gossip_counters.snapshot().accepted, 0);

    shutdown_all(vec![their_peer, theirs, ours]).await;
}
