//! `bootstrap_node`: from a configuration to a running node, and the handle that stops it.
//!
//! The order matters: the database is opened first (it may refuse a data dir that belongs to
//! another node id), then the iroh endpoint (its key is kept in the data dir so a restarted
//! node keeps its endpoint id) with its address lookups (mDNS, DNS, pkarr; each one that
//! cannot run is left out with a warning), then the ractor_cluster control server, and last the
//! supervision tree, whose RaftActor starts Raft over all of them and whose HttpActor, started
//! last, binds the HTTP API. The Raft RPC server (and, unless disabled, iroh-gossip) is
//! registered on the endpoint's router before Raft starts; the Raft RPC server answers
//! "restarting" until the RaftActor has published its instance, and gossip is joined by the
//! DiscoveryActor once it has put the ticket's and the manual peers in the peer book.

use openraft::async_runtime::watch::WatchReceiver;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use iroh::address_lookup::MemoryLookup;
use iroh::protocol::Router;
use iroh::{Endpoint, SecretKey};
use iroh_gossip::Gossip;
use ractor::{Actor, ActorRef};
use tokio::sync::watch;

use super::config::{ClusterBootstrapConfig, ConfigError, ControlBackend, parse_secret_key};
use super::iroh_manager::{AddressLookups, IrohEndpointManager, IrohError};
use super::node_control::{
    ControlError, ControlServer, NodeControlArgs, SupervisionReport, start_control_server,
};
use super::supervisor::{
    ChildSpec, NodeStatus, NodeSupervisor, NodeSupervisorArgs, NodeSupervisorMessage, actor_name,
};
use crate::api::{DeterministicCluster, NodeId};
use crate::discovery::{
    DiscoveryActorArgs, GossipArgs, GossipCounters, MembersView, PeerBook, cluster_topic,
};
use crate::http::{HttpActorArgs, HttpServerSlot, HttpState};
use crate::limits::{APPEND_ENTRIES_ENTRIES_MAX, SHUTDOWN_TIMEOUT_MS_MAX, SNAPSHOT_TIMEOUT_MS_MAX};
use crate::raft::network::{AccessPolicy, IrpcRaftNetworkFactory, RAFT_ALPN, RaftRpcServer};
use crate::raft::{LocalKv, MemberResolver, RaftActorArgs, RaftActorHandle, SharedRaft};
use crate::storage::{DatabaseReleaseWatch, RedbStore, StorageError};

/// The file in the data dir that keeps the node's iroh secret key.
const SECRET_KEY_FILE: &str = "iroh-secret-key";

/// Why a node could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The configuration is invalid; nothing was started.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database could not be opened (or belongs to another node).
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The iroh endpoint could not start.
    #[error(transparent)]
    Iroh(#[from] IrohError),
    /// The ractor_cluster control server could not start.
    #[error("control server: {0}")]
    Control(#[from] ControlError),
    /// An actor failed to start or stop.
    #[error("actor: {reason}")]
    Actor {
        /// What happened.
        reason: String,
    },
    /// The data directory could not be used.
    #[error("data dir: {reason}")]
    DataDir {
        /// What happened.
        reason: String,
    },
}

/// A running node. Drop does not stop it: call [`BootstrapHandle::shutdown`].
pub struct BootstrapHandle {
    /// The node's id.
    pub node_id: NodeId,
    /// The configuration it was started with.
    pub config: ClusterBootstrapConfig,
    /// The RaftActor, for `RaftControlClient::new` and `KvClient::new`.
    pub raft_actor: RaftActorHandle,
    /// The node's iroh endpoint.
    pub iroh_manager: IrohEndpointManager,
    /// The Raft network; `add_peer` tells it where another node is.
    pub network_factory: IrpcRaftNetworkFactory,
    /// Every peer this node knows.
    pub peer_book: PeerBook,
    /// The root of the node's actor tree.
    pub supervisor: ActorRef<NodeSupervisorMessage>,
    /// The supervised actors and their restart counts.
    pub supervision_report: SupervisionReport,
    /// The Raft RPC server (for its counters).
    pub rpc_server: RaftRpcServer,
    /// Gossip discovery's counters (all zero when gossip is disabled).
    pub gossip_counters: GossipCounters,
    router: Router,
    control_server: ControlServer,
    http_server: HttpServerSlot,
    status: watch::Receiver<NodeStatus>,
    database: DatabaseReleaseWatch,
}

impl BootstrapHandle {
    /// The port of the ractor_cluster control server.
    pub fn ractor_port(&self) -> u16 {
        self.control_server.port()
    }

    /// The address the HTTP API listens on: `config.http_addr` with the port the OS chose
    /// when that port was 0.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_server.local_addr().unwrap_or(self.config.http_addr)
    }

    /// Whether the node runs, or why it stopped.
    pub fn status(&self) -> NodeStatus {
        self.status.borrow().clone()
    }

    /// Waits until the node has stopped (bounded by `timeout`) and returns its final status,
    /// or `None` if it still runs.
    pub async fn wait_stopped(&self, timeout: Duration) -> Option<NodeStatus> {
        let mut status = self.status.clone();
        let stopped = status.wait_for(|s| matches!(s, NodeStatus::Stopped { .. }));
        match tokio::time::timeout(timeout, stopped).await {
            Ok(Ok(status)) => Some(status.clone()),
            Ok(Err(_)) => Some(self.status()),
            Err(_) => None,
        }
    }

    /// Stops the node: the actors in reverse start order (Raft shuts down), then the HTTP
    /// server, the endpoint and the control server, and waits until the database is closed, so
    /// that the same data dir can be opened again at once. Each step is bounded by
    /// `SHUTDOWN_TIMEOUT_MS_MAX`.
    pub async fn shutdown(self) -> Result<(), BootstrapError> {
        let bound = Duration::from_millis(SHUTDOWN_TIMEOUT_MS_MAX);
        // Take the handle apart and drop what holds storage handles before the wait below
        // (fields left in a partly moved `self` would live until the end of this function).
        let BootstrapHandle {
            supervisor,
            router,
            control_server,
            http_server,
            database,
            raft_actor,
            rpc_server,
            ..
        } = self;
        drop((raft_actor, rpc_server));
        if supervisor.get_status() != ractor::ActorStatus::Stopped {
            let _ = supervisor.call(NodeSupervisorMessage::Shutdown, Some(bound)).await;
            let _ = supervisor.get_cell().stop_and_wait(None, Some(bound)).await;
        }
        // Last of the node's own parts, so that until here callers get 503 and a reason.
        http_server.stop().await;
        if tokio::time::timeout(bound, router.shutdown()).await.is_err() {
            tracing::warn!("iroh router did not shut down within {bound:?}");
        }
        control_server.stop().await;
        if database.wait_released(bound).await {
            Ok(())
        } else {
            Err(BootstrapError::Storage(StorageError::Io {
                reason: format!("the database was still in use {bound:?} after shutdown"),
            }))
        }
    }
}

/// Reads the node's secret key from the data dir, or makes one and keeps it there, so that a
/// restarted node has the same endpoint id.
fn persistent_secret_key(data_dir: &Path) -> Result<SecretKey, BootstrapError> {
    let path = data_dir.join(SECRET_KEY_FILE);
    let data_dir_error =
        |e: std::io::Error| BootstrapError::DataDir { reason: format!("{}: {e}", path.display()) };
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_secret_key(text.trim()).map_err(|reason| BootstrapError::DataDir {
            reason: format!("{}: {reason}", path.display()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            std::fs::create_dir_all(data_dir).map_err(data_dir_error)?;
            std::fs::write(&path, hex::encode(key.to_bytes())).map_err(data_dir_error)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .map_err(data_dir_error)?;
            }
            Ok(key)
        }
        Err(e) => Err(data_dir_error(e)),
    }
}

/// openraft's election timeouts for the node's: a follower that hears from no leader for a
/// random time between `election_timeout_min_ms` and `election_timeout_max_ms` starts an
/// election, as in Raft and etcd.
///
/// openraft counts its election timeout only after a leader lease that it sets to its own
/// `election_timeout_max` (engine_config.rs: `leader_lease = election_timeout_max`; a
/// follower refuses votes while that lease holds). Given the node's values as they are, a
/// follower would wait `max + random(min, max)`: 3 to 4 s for 1000–2000 ms. So openraft gets
/// half the largest timeout as its own largest (the lease), and as its smallest what is left of
/// the node's smallest (at least one heartbeat interval and a millisecond): elections then
/// start between `max / 2 + that` and `max`, inside the node's range. When the halves do not
/// fit above the heartbeat interval, openraft gets the node's values unchanged (slower).
pub(crate) fn openraft_election_timeouts(
    heartbeat_ms: u64,
    min_ms: u64,
    max_ms: u64,
) -> (u64, u64) {
    let lease = max_ms / 2;
    let smallest = min_ms.saturating_sub(lease).max(heartbeat_ms + 1);
    if smallest < lease { (smallest, lease) } else { (min_ms, max_ms) }
}

fn raft_config(config: &ClusterBootstrapConfig) -> Result<Arc<openraft::Config>, BootstrapError> {
    let (election_timeout_min, election_timeout_max) = openraft_election_timeouts(
        config.heartbeat_interval_ms,
        config.election_timeout_min_ms,
        config.election_timeout_max_ms,
    );
    let raft_config = openraft::Config {
        cluster_name: "aspen".into(),
        heartbeat_interval: config.heartbeat_interval_ms,
        election_timeout_min,
        election_timeout_max,
        max_payload_entries: APPEND_ENTRIES_ENTRIES_MAX,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.snapshot_after_entries),
        max_in_snapshot_log_to_keep: config.logs_kept_after_snapshot,
        install_snapshot_timeout: SNAPSHOT_TIMEOUT_MS_MAX,
        ..Default::default()
    };
    let validated = raft_config.validate().map_err(|e| {
        BootstrapError::Config(ConfigError {
            field: "election_timeout_min_ms",
            reason: e.to_string(),
        })
    })?;
    Ok(Arc::new(validated))
}

/// Only members and learners of the cluster, and peers an operator named (manually or in a
/// ticket), may call Raft RPC. A peer known only from gossip may not: anyone who knows the
/// topic can announce itself.
fn access_policy(peers: PeerBook, shared: SharedRaft) -> AccessPolicy {
    Arc::new(move |endpoint_id| {
        if peers.is_operator_named(endpoint_id) {
            return true;
        }
        let Some(raft) = shared.get() else {
            return false;
        };
        // The server asks on every request: take only the membership (an Arc), not a copy of
        // all the metrics, and do not hold the watch while looking.
        let membership_config = raft.metrics().borrow_watched().membership_config.clone();
        membership_config.membership().nodes().any(|(_, info)| {
            info.endpoint_addr.as_ref().is_some_and(|addr| addr.id == *endpoint_id)
        })
    })
}

/// Starts a node: storage, iroh endpoint, control server and supervision tree (with the HTTP
/// API last).
pub async fn bootstrap_node(
    config: ClusterBootstrapConfig,
) -> Result<BootstrapHandle, BootstrapError> {
    config.validate()?;
    let node_id = config.node_id;
    let store = RedbStore::open(config.data_dir.as_deref(), node_id)?;
    let stored_key = match (&config.iroh.secret_key, &config.data_dir) {
        (None, Some(dir)) => Some(persistent_secret_key(dir)?),
        _ => None,
    };
    let iroh_manager =
        IrohEndpointManager::bind(&config.iroh, &config.host, stored_key, vec![RAFT_ALPN.to_vec()])
            .await?;
    let lookups = iroh_manager.start_address_lookups(&config.iroh, node_id, &config.cookie);
    log_discovery_methods(&config, &lookups);

    let peer_book = PeerBook::new();
    let network_factory =
        IrpcRaftNetworkFactory::new(iroh_manager.endpoint().clone(), peer_book.clone());
    let shared = SharedRaft::new();
    let local = LocalKv { shared: shared.clone() };
    let rpc_server = RaftRpcServer::new(
        shared.clone(),
        Arc::new(local),
        access_policy(peer_book.clone(), shared.clone()),
    );
    let http_server = HttpServerSlot::new();
    let gossip_counters = GossipCounters::default();
    let gossip = gossip_args(
        &config,
        iroh_manager.endpoint(),
        &peer_book,
        &shared,
        http_server.bound_addr_cell(),
        &gossip_counters,
    );
    let mut router =
        Router::builder(iroh_manager.endpoint().clone()).accept(RAFT_ALPN, rpc_server.clone());
    if let Some(gossip) = &gossip {
        router = router.accept(iroh_gossip::ALPN, gossip.gossip.clone());
    }
    let router = router.spawn();

    let control_server =
        start_control_server(&config.host, config.ractor_port, &config.cookie, node_id).await?;
    let report = SupervisionReport::new(node_id);
    let resolver = MemberResolver {
        node_id,
        own_endpoint: iroh_manager.node_addr().clone(),
        peers: peer_book.clone(),
    };
    let discovery = DiscoverySources { gossip, lookups };
    let mut children = supervised_children(
        &config,
        &store,
        &network_factory,
        &shared,
        resolver,
        &report,
        discovery,
    )?;
    let raft_actor = raft_actor_handle(&config, shared, network_factory.clone());
    let (status_tx, status) = watch::channel(NodeStatus::Running);
    children.push(ChildSpec::Http(HttpActorArgs {
        listen_addr: config.http_addr,
        server: http_server.clone(),
        state: HttpState {
            node_id,
            backend: config.control_backend,
            raft_actor: raft_actor.clone(),
            peer_book: peer_book.clone(),
            endpoint_addr: iroh_manager.node_addr().clone(),
            ractor_port: control_server.port(),
            topic: cluster_topic(&config.cookie),
            supervision_report: report.clone(),
            rpc_server: rpc_server.clone(),
            gossip_counters: gossip_counters.clone(),
            status: status.clone(),
            http_addr: http_server.bound_addr_cell(),
        },
    }));

    let args = NodeSupervisorArgs { node_id, children, report: report.clone(), status: status_tx };
    let spawned = Actor::spawn(Some(actor_name(node_id, "supervisor")), NodeSupervisor, args).await;
    let supervisor = match spawned {
        Ok((supervisor, _)) => supervisor,
        Err(error) => {
            http_server.stop().await;
            let _ = router.shutdown().await;
            control_server.stop().await;
            return Err(BootstrapError::Actor { reason: error.to_string() });
        }
    };
    stop_serving_when_stopped(status.clone(), router.clone());

    tracing::info!(node_id, endpoint_id = %iroh_manager.endpoint_id(), "node started");
    Ok(BootstrapHandle {
        node_id,
        config,
        raft_actor,
        iroh_manager,
        network_factory,
        peer_book,
        supervisor,
        supervision_report: report,
        rpc_server,
        gossip_counters,
        router,
        control_server,
        http_server,
        status,
        database: store.release_watch(),
    })
}

/// The discovery methods the DiscoveryActor runs besides manual and ticket peers.
struct DiscoverySources {
    gossip: Option<GossipArgs>,
    lookups: AddressLookups,
}

/// The supervised children before the HttpActor, in start order.
fn supervised_children(
    config: &ClusterBootstrapConfig,
    store: &RedbStore,
    network: &IrpcRaftNetworkFactory,
    shared: &SharedRaft,
    resolver: MemberResolver,
    report: &SupervisionReport,
    discovery: DiscoverySources,
) -> Result<Vec<ChildSpec>, BootstrapError> {
    let mut children = vec![ChildSpec::Storage(store.clone())];
    if config.control_backend == ControlBackend::RaftActor {
        children.push(ChildSpec::Raft(RaftActorArgs {
            node_id: config.node_id,
            raft_config: raft_config(config)?,
            store: store.clone(),
            network: network.clone(),
            shared: shared.clone(),
            resolver,
        }));
    }
    let ticket_peers = match config.ticket()? {
        Some(ticket) => {
            ticket.bootstrap().iter().filter(|(id, _)| *id != config.node_id).cloned().collect()
        }
        None => Vec::new(),
    };
    children.push(ChildSpec::Discovery(DiscoveryActorArgs {
        peers: network.peer_book().clone(),
        manual_peers: config.peers.clone(),
        ticket_peers,
        gossip: discovery.gossip,
        mdns: discovery.lookups.mdns,
        dns: discovery.lookups.dns,
    }));
    children.push(ChildSpec::NodeControl(NodeControlArgs { report: report.clone() }));
    Ok(children)
}

/// Gossip discovery's parts, when enabled: the gossip instance (the caller registers it on the
/// router) and an address lookup on the endpoint through which gossip dials peers by id.
fn gossip_args(
    config: &ClusterBootstrapConfig,
    endpoint: &Endpoint,
    peers: &PeerBook,
    shared: &SharedRaft,
    api_addr: Arc<OnceLock<SocketAddr>>,
    counters: &GossipCounters,
) -> Option<GossipArgs> {
    if !config.iroh.enable_gossip {
        return None;
    }
    let address_lookup = MemoryLookup::new();
    match endpoint.address_lookup() {
        Ok(lookups) => lookups.add(address_lookup.clone()),
        Err(error) => {
            tracing::warn!(%error, "gossip discovery does not run: the endpoint is closed");
            return None;
        }
    }
    Some(GossipArgs {
        gossip: Gossip::builder().spawn(endpoint.clone()),
        endpoint: endpoint.clone(),
        node_id: config.node_id,
        topic: cluster_topic(&config.cookie),
        interval: Duration::from_millis(config.iroh.gossip_interval_ms),
        peers: peers.clone(),
        address_lookup,
        api_addr,
        members: members_view(shared.clone()),
        counters: counters.clone(),
    })
}

/// The current membership's `(node id, endpoint id)` pairs, empty while no Raft runs.
fn members_view(shared: SharedRaft) -> MembersView {
    Arc::new(move || {
        let Some(raft) = shared.get() else { return Vec::new() };
        let membership_config = raft.metrics().borrow_watched().membership_config.clone();
        membership_config
            .membership()
            .nodes()
            .filter_map(|(id, info)| Some((*id, info.endpoint_addr.as_ref()?.id)))
            .collect()
    })
}

/// How the node's clients reach its RaftActor (or the deterministic backend).
fn raft_actor_handle(
    config: &ClusterBootstrapConfig,
    shared: SharedRaft,
    network: IrpcRaftNetworkFactory,
) -> RaftActorHandle {
    let node_id = config.node_id;
    match config.control_backend {
        ControlBackend::RaftActor => {
            RaftActorHandle::raft(node_id, actor_name(node_id, "raft"), shared, network)
        }
        ControlBackend::Deterministic => {
            RaftActorHandle::deterministic(node_id, DeterministicCluster::new())
        }
    }
}

/// When the supervisor gives up, the node must stop answering peers too, or they would keep
/// talking to an endpoint whose Raft is gone. A requested shutdown (no error) is left to
/// [`BootstrapHandle::shutdown`], which waits for the router to close the endpoint: a second,
/// concurrent `Router::shutdown` returns at once, and the handle would then drop an endpoint
/// that is still closing (gossip's handler takes a moment to leave its topics).
fn stop_serving_when_stopped(mut status: watch::Receiver<NodeStatus>, router: Router) {
    tokio::spawn(async move {
        let failed = |s: &NodeStatus| matches!(s, NodeStatus::Stopped { error: Some(_) });
        if status.wait_for(failed).await.is_ok() {
            let _ = router.shutdown().await;
        }
    });
}

/// Says once, at startup, how this node finds peers. Methods that were asked for but cannot
/// run have already said why (`start_address_lookups`); a URL given without its method
/// switched on is pointed out here, since it does nothing.
fn log_discovery_methods(config: &ClusterBootstrapConfig, lookups: &AddressLookups) {
    let iroh = &config.iroh;
    let mut methods = vec!["manual peers"];
    if iroh.gossip_ticket.is_some() {
        methods.push("ticket");
    }
    if iroh.enable_gossip {
        methods.push("gossip");
    }
    methods.extend(lookups.names());
    let relay = iroh.relay_url.as_deref().unwrap_or("none");
    tracing::info!(?methods, relay, "discovery methods");
    if iroh.dns_discovery_url.is_some() && !iroh.enable_dns_discovery {
        tracing::warn!(
            "--dns-discovery-url is given but DNS discovery is off (--enable-dns-discovery)"
        );
    }
    if iroh.pkarr_relay_url.is_some() && !iroh.enable_pkarr {
        tracing::warn!("--pkarr-relay-url is given but pkarr publishing is off (--enable-pkarr)");
    }
}

#[cfg(test)]
mod tests {
    use super::openraft_election_timeouts;

    /// When openraft's follower starts an election after it last heard from its leader: its
    /// lease (its largest timeout) plus a timeout drawn between its smallest and largest.
    fn election_window(heartbeat: u64, min: u64, max: u64) -> (u64, u64) {
        let (smallest, largest) = openraft_election_timeouts(heartbeat, min, max);
        (largest + smallest, 2 * largest)
    }

    #[test]
    fn elections_start_inside_the_configured_range() {
        // The benchmark's and etcd's setting, the lab's fast one, and the defaults.
        assert_eq!(openraft_election_timeouts(100, 1000, 2000), (101, 1000));
        assert_eq!(election_window(100, 1000, 2000), (1101, 2000));
        assert_eq!(election_window(100, 500, 1000), (601, 1000));
        assert_eq!(election_window(500, 1500, 3000), (2001, 3000));
        assert_eq!(election_window(50, 1400, 2000), (1400, 2000));
    }

    #[test]
    fn timeouts_too_close_to_the_heartbeat_are_passed_on_unchanged() {
        assert_eq!(openraft_election_timeouts(100, 110, 200), (110, 200));
    }

    #[test]
    fn every_valid_setting_gives_a_valid_openraft_config_inside_the_range() {
        for heartbeat in [10, 50, 100, 250, 500] {
            for min in (heartbeat + 1..=4000).step_by(97) {
                for max in (min + 1..=8000).step_by(211) {
                    let (smallest, largest) = openraft_election_timeouts(heartbeat, min, max);
                    assert!(heartbeat < smallest && smallest < largest, "{heartbeat} {min} {max}");
                    if (smallest, largest) != (min, max) {
                        let (first, last) = election_window(heartbeat, min, max);
                        assert!(min <= first && last <= max, "{heartbeat} {min} {max}");
                    }
                }
            }
        }
    }
}
