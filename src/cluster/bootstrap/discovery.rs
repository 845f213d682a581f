//! Discovery's parts at startup: gossip's (the gossip instance, its address lookup and the
//! membership it announces), the sources handed to the DiscoveryActor, and the line that says
//! how the node finds peers. Apart from `start.rs` so that the start order reads at once.

use openraft::async_runtime::watch::WatchReceiver;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use iroh::Endpoint;
use iroh::address_lookup::MemoryLookup;
use iroh_gossip::Gossip;

use crate::cluster::config::ClusterBootstrapConfig;
use crate::cluster::iroh_manager::AddressLookups;
use crate::discovery::{GossipArgs, GossipCounters, MembersView, PeerBook, cluster_topic};
use crate::raft::SharedRaft;

/// The discovery methods the DiscoveryActor runs besides manual and ticket peers.
pub(super) struct DiscoverySources {
    pub(super) gossip: Option<GossipArgs>,
    pub(super) lookups: AddressLookups,
}

/// Gossip discovery's parts, when enabled: the gossip instance (the caller registers it on the
/// router) and an address lookup on the endpoint through which gossip dials peers by id.
pub(super) fn gossip_args(
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

/// Says once, at startup, how this node finds peers. Methods that were asked for but cannot
/// run have already said why (`start_address_lookups`); a URL given without its method
/// switched on is pointed out here, since it does nothing.
pub(super) fn log_discovery_methods(config: &ClusterBootstrapConfig, lookups: &AddressLookups) {
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
