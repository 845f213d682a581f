//! [`bootstrap_node`]: the parts of a node started in order, and the supervision tree's
//! children built from them. The order and its reasons are in the parent module's docs.

use std::sync::Arc;

use iroh::protocol::Router;
use ractor::Actor;
use tokio::sync::watch;

use super::access::access_policy;
use super::discovery::{DiscoverySources, gossip_args, log_discovery_methods};
use super::raft_config::raft_config;
use super::secret_key::persistent_secret_key;
use super::{BootstrapError, BootstrapHandle};
use crate::api::DeterministicCluster;
use crate::cluster::config::{ClusterBootstrapConfig, ControlBackend};
use crate::cluster::iroh_manager::IrohEndpointManager;
use crate::cluster::node_control::{NodeControlArgs, SupervisionReport, start_control_server};
use crate::cluster::supervisor::{
    ChildSpec, NodeStatus, NodeSupervisor, NodeSupervisorArgs, actor_name,
};
use crate::discovery::{DiscoveryActorArgs, GossipCounters, PeerBook, cluster_topic};
use crate::http::{HttpActorArgs, HttpServerSlot, HttpState};
use crate::raft::network::{IrpcRaftNetworkFactory, RAFT_ALPN, RaftRpcServer};
use crate::raft::{LocalKv, MemberResolver, RaftActorArgs, RaftActorHandle, SharedRaft};
use crate::storage::RedbStore;

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
            http_connections: http_server.connection_counters(),
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
