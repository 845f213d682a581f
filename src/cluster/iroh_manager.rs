//! The node's iroh endpoint: its identity (secret key), its QUIC socket, its relay, and the
//! address lookups that publish and find endpoints.
//!
//! Offline first: with no `relay_url` the endpoint uses no relay and no public DNS (iroh's
//! `Minimal` preset with relays disabled), so nothing waits for the internet. With a
//! `relay_url`, that relay alone is used (`http://` works without TLS): peers that cannot
//! reach each other directly talk through it, and iroh moves to a direct path when one
//! appears.
//!
//! [`IrohEndpointManager::start_address_lookups`] then adds the configured lookups: mDNS, DNS
//! discovery at the configured server alone, and pkarr publishing to the configured relay. A
//! lookup that cannot run is left out with one warning; the others go on.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use iroh::endpoint::{IdleTimeout, QuicTransportConfig, RelayMode, presets};
use iroh::{Endpoint, EndpointAddr, EndpointId, RelayMap, SecretKey, TransportAddr};

use super::config::{IrohConfig, parse_secret_key};
use crate::api::NodeId;
use crate::discovery::dns::{dns_address_lookup, pkarr_publisher};
use crate::discovery::mdns::{node_user_data, proof_key, start_mdns};
use crate::discovery::{DnsDiscoveryUrl, MdnsArgs, parse_dns_discovery_url, parse_pkarr_relay_url};
use crate::limits::{QUIC_IDLE_TIMEOUT_MS, QUIC_KEEP_ALIVE_MS};

/// The address lookups that run, for the DiscoveryActor.
#[derive(Debug, Clone, Default)]
pub struct AddressLookups {
    /// mDNS, when it runs.
    pub mdns: Option<MdnsArgs>,
    /// The DNS discovery server, when DNS discovery runs.
    pub dns: Option<DnsDiscoveryUrl>,
    /// Whether this node publishes its addresses with pkarr.
    pub pkarr: bool,
}

impl AddressLookups {
    /// The names of the lookups that run, for the startup log.
    pub fn names(&self) -> Vec<&'static str> {
        [(self.mdns.is_some(), "mDNS"), (self.dns.is_some(), "DNS"), (self.pkarr, "pkarr")]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect()
    }
}

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum IrohError {
    /// The configuration is wrong (bad key, bad host, bad relay URL).
    #[error("invalid iroh configuration: {reason}")]
    Invalid {
        /// What is wrong.
        reason: String,
    },
    /// Binding the socket failed.
    #[error("could not bind the iroh endpoint: {reason}")]
    Bind {
        /// The bind error.
        reason: String,
    },
}

/// Owns the node's iroh endpoint.
#[derive(Debug, Clone)]
pub struct IrohEndpointManager {
    endpoint: Endpoint,
    node_addr: EndpointAddr,
}

impl IrohEndpointManager {
    /// Binds an endpoint on `host` and `config.bind_port` (0: chosen by the OS) with the configured
    /// key, else `secret_key`, else a new one.
    pub async fn bind(
        config: &IrohConfig,
        host: &str,
        secret_key: Option<SecretKey>,
        alpns: Vec<Vec<u8>>,
    ) -> Result<Self, IrohError> {
        let secret_key = match (&config.secret_key, secret_key) {
            (Some(hex_key), _) => {
                parse_secret_key(hex_key).map_err(|reason| IrohError::Invalid { reason })?
            }
            (None, Some(key)) => key,
            (None, None) => SecretKey::generate(),
        };
        let ip: IpAddr = host.parse().map_err(|_| IrohError::Invalid {
            reason: format!("host {host:?} is not an IP address"),
        })?;
        let relay_url: Option<iroh::RelayUrl> = match &config.relay_url {
            None => None,
            Some(url) => Some(
                url.parse()
                    .map_err(|e| IrohError::Invalid { reason: format!("relay_url: {e}") })?,
            ),
        };
        let relay_mode = match &relay_url {
            None => RelayMode::Disabled,
            Some(url) => RelayMode::Custom(RelayMap::from_iter([url.clone()])),
        };
        let endpoint = Endpoint::builder(presets::Minimal)
            .secret_key(secret_key)
            .transport_config(transport_config()?)
            .relay_mode(relay_mode)
            .alpns(alpns)
            .bind_addr(SocketAddr::new(ip, config.bind_port))
            .map_err(|e| IrohError::Invalid { reason: e.to_string() })?
            .bind()
            .await
            .map_err(|e| IrohError::Bind { reason: e.to_string() })?;
        let mut node_addr = endpoint.addr();
        // The configured relay is the only one, so it is this node's home relay: peers that
        // get this address (ready line, ticket, announcement, membership) can reach the node
        // through it before the relay connection is even up.
        node_addr.addrs.extend(relay_url.map(TransportAddr::Relay));
        tracing::info!(endpoint_id = %endpoint.id(), ?node_addr, "Iroh endpoint initialized");
        Ok(Self { endpoint, node_addr })
    }

    /// This node's endpoint address (id, its direct addresses as bound at startup, and its
    /// relay if one is configured); give it to peers (`network_factory.add_peer`) so they can
    /// dial this node.
    pub fn node_addr(&self) -> &EndpointAddr {
        &self.node_addr
    }

    /// This node's endpoint id (its public key).
    pub fn endpoint_id(&self) -> EndpointId {
        self.endpoint.id()
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Publishes `node_id` with the endpoint's addresses and adds the address lookups `config`
    /// asks for. One that cannot run is logged once as a warning and left out.
    pub fn start_address_lookups(
        &self,
        config: &IrohConfig,
        node_id: NodeId,
        cookie: &str,
    ) -> AddressLookups {
        let endpoint = &self.endpoint;
        endpoint.set_user_data_for_address_lookup(Some(node_user_data(
            node_id,
            &endpoint.id(),
            cookie,
        )));
        let mut lookups = AddressLookups::default();
        if config.enable_mdns && self.bound_to_loopback_only() {
            tracing::warn!(
                "mDNS discovery does not run: the endpoint is bound to loopback, which carries \
                 no multicast and which no other machine can reach; bind --host to a LAN \
                 address to use it (--disable-mdns silences this)"
            );
        } else if config.enable_mdns {
            match start_mdns(endpoint, cookie) {
                Ok(lookup) => {
                    let (own_endpoint, proof_key) = (endpoint.id(), proof_key(cookie));
                    lookups.mdns = Some(MdnsArgs { lookup, own_endpoint, proof_key });
                }
                Err(error) => tracing::warn!(
                    "mDNS discovery does not run: {error}; the other discovery methods go on \
                     (--disable-mdns silences this)"
                ),
            }
        }
        lookups.dns = dns_discovery(config).and_then(|url| {
            match endpoint.address_lookup() {
                Ok(services) => services.add(dns_address_lookup(&url)),
                Err(error) => {
                    tracing::warn!("DNS discovery does not run: {error}");
                    return None;
                }
            }
            Some(url)
        });
        lookups.pkarr = self.start_pkarr(config);
        lookups
    }

    /// True when every direct address of the endpoint is a loopback address.
    fn bound_to_loopback_only(&self) -> bool {
        self.node_addr.ip_addrs().all(|addr| addr.ip().is_loopback())
    }

    /// Adds the pkarr publisher, if configured; returns whether it runs.
    fn start_pkarr(&self, config: &IrohConfig) -> bool {
        if !config.enable_pkarr {
            return false;
        }
        let Some(text) = &config.pkarr_relay_url else {
            tracing::warn!(
                "pkarr publishing does not run: --enable-pkarr needs --pkarr-relay-url (no \
                 public relay is used unless named)"
            );
            return false;
        };
        // Checked by `ClusterBootstrapConfig::validate`; a bad URL here is still no panic.
        let url = match parse_pkarr_relay_url(text) {
            Ok(url) => url,
            Err(error) => {
                tracing::warn!("pkarr publishing does not run: {error}");
                return false;
            }
        };
        let started = self.endpoint.address_lookup().map_err(|e| e.to_string()).and_then(|s| {
            let publisher = iroh::address_lookup::AddressLookupBuilder::into_address_lookup(
                pkarr_publisher(url),
                &self.endpoint,
            )
            .map_err(|e| e.to_string())?;
            s.add(publisher);
            Ok(())
        });
        if let Err(error) = &started {
            tracing::warn!("pkarr publishing does not run: {error}");
        }
        started.is_ok()
    }
}

/// The DNS discovery server, when DNS discovery is enabled and named; warns when it is enabled
/// but cannot run.
fn dns_discovery(config: &IrohConfig) -> Option<DnsDiscoveryUrl> {
    if !config.enable_dns_discovery {
        return None;
    }
    let Some(text) = &config.dns_discovery_url else {
        tracing::warn!(
            "DNS discovery does not run: --enable-dns-discovery needs --dns-discovery-url \
             (no public DNS is asked unless named)"
        );
        return None;
    };
    parse_dns_discovery_url(text)
        .inspect_err(|error| tracing::warn!("DNS discovery does not run: {error}"))
        .ok()
}

/// QUIC settings: a connection pings its peer every `QUIC_KEEP_ALIVE_MS` and is closed after
/// `QUIC_IDLE_TIMEOUT_MS` without an answer. A peer that died (or restarted on the same key
/// and port, which does not know the old connection) is thus noticed within seconds, also on a
/// connection that only carries the occasional forwarded request; the next call then dials
/// afresh instead of waiting on a dead connection.
fn transport_config() -> Result<QuicTransportConfig, IrohError> {
    let idle = IdleTimeout::try_from(Duration::from_millis(QUIC_IDLE_TIMEOUT_MS))
        .map_err(|e| IrohError::Invalid { reason: format!("QUIC idle timeout: {e}") })?;
    Ok(QuicTransportConfig::builder()
        .keep_alive_interval(Duration::from_millis(QUIC_KEEP_ALIVE_MS))
        .max_idle_timeout(Some(idle))
        .build())
}
