//! DNS discovery and pkarr publishing: a node publishes its endpoint's addresses to a pkarr
//! relay (`--pkarr-relay-url`), and resolves other endpoints by id at a DNS server
//! (`--dns-discovery-url`) that serves what was published there, such as `iroh-dns-server`.
//!
//! How the pieces fit:
//! - [`pkarr_publisher`] is registered on the endpoint as an address lookup: iroh hands it the
//!   endpoint's addresses whenever they change, and it signs them with the endpoint's secret
//!   key and PUTs them to the relay (again every few minutes). It publishes direct IP
//!   addresses and the home relay, not only the relay (iroh's default), because a node
//!   without a relay would otherwise publish nothing.
//! - [`dns_address_lookup`] is registered on the endpoint as well: when the Raft network or
//!   gossip dials an endpoint id whose addresses nobody gave, iroh asks it. Its resolver asks
//!   the configured server alone and never falls back to public resolvers, so a node with no
//!   internet does not wait on them.
//! - A [`DnsLocateTask`] (owned by the DiscoveryActor) looks up, every
//!   `DNS_LOCATE_INTERVAL_MS`, the peers of the book whose addresses are unknown or came from
//!   DNS, and records what it finds with source `Dns`, so `GET /peers` shows where they are.
//!
//! Caveats:
//! - A lookup answers where an endpoint is, never which node it is: a peer must first be named
//!   with its endpoint id (`--peers ID@ENDPOINT_ID`, `aspen node add-peer ID ENDPOINT_ID`).
//! - The DNS server is given as an IP address and port (`dns://IP:PORT/ORIGIN`), because a host
//!   name would need another DNS server to find it.
//! - The pkarr relay speaks HTTP(S) and may be given by host name; that name is resolved by the
//!   system's resolver.

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use iroh::address_lookup::{
    AddrFilter, AddressLookup, DnsAddressLookup, PkarrPublisher, PkarrPublisherBuilder,
};
use iroh::dns::{DnsResolver, NameserverConfig};
use iroh::{EndpointAddr, EndpointId};
use tokio::task::JoinHandle;
use url::Url;

use super::PeerBook;
use crate::api::NodeId;
use crate::limits::{DNS_LOCATE_INTERVAL_MS, DNS_LOOKUP_TIMEOUT_MS_MAX, PEERS_MAX};

/// The default DNS port, used when the URL names none.
const DNS_PORT_DEFAULT: u16 = 53;

/// Where DNS discovery asks: a DNS server and the origin domain endpoints are published under
/// (`_iroh.<z32 endpoint id>.<origin>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsDiscoveryUrl {
    /// The DNS server's UDP address.
    pub nameserver: SocketAddr,
    /// The origin domain, e.g. `dns.iroh.link`.
    pub origin: String,
}

/// Parses `dns://IP[:PORT]/ORIGIN` (port 53 by default).
pub fn parse_dns_discovery_url(text: &str) -> Result<DnsDiscoveryUrl, String> {
    let form = "it must look like dns://IP:PORT/ORIGIN, e.g. dns://127.0.0.1:5300/dns.example";
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL ({e}); {form}"))?;
    if url.scheme() != "dns" {
        return Err(format!("{text:?} has scheme {:?}; {form}", url.scheme()));
    }
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let ip =
        host.parse().map_err(|_| format!("{text:?}: {host:?} is not an IP address; {form}"))?;
    let origin = url.path().trim_matches('/').to_string();
    if origin.is_empty() || origin.contains('/') {
        return Err(format!("{text:?} names no origin domain; {form}"));
    }
    let port = url.port().unwrap_or(DNS_PORT_DEFAULT);
    Ok(DnsDiscoveryUrl { nameserver: SocketAddr::new(ip, port), origin })
}

/// Parses the pkarr relay's `http://` or `https://` URL (for `iroh-dns-server`, its `/pkarr`
/// path).
pub fn parse_pkarr_relay_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        _ => Err(format!("{text:?} must be an http:// or https:// URL, e.g. http://host/pkarr")),
    }
}

/// A resolver that asks `url`'s server alone, never the system's or public resolvers.
fn local_resolver(url: &DnsDiscoveryUrl) -> DnsResolver {
    let nameserver = NameserverConfig::udp(url.nameserver.ip()).with_port(url.nameserver.port());
    DnsResolver::builder().add_nameserver_config(nameserver).disable_fallback().build()
}

/// The address lookup that resolves endpoint ids at `url`.
pub fn dns_address_lookup(url: &DnsDiscoveryUrl) -> DnsAddressLookup {
    DnsAddressLookup::builder(url.origin.clone()).dns_resolver(local_resolver(url)).build()
}

/// The publisher of this endpoint's addresses (direct IP addresses and the home relay) to the
/// pkarr relay at `url`.
pub fn pkarr_publisher(url: Url) -> PkarrPublisherBuilder {
    PkarrPublisher::builder(url).addr_filter(AddrFilter::unfiltered())
}

/// Looks up, now and then, the peers whose addresses nobody else gave; stops when dropped.
#[derive(Debug)]
pub struct DnsLocateTask {
    handle: JoinHandle<()>,
}

impl Drop for DnsLocateTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Starts locating the book's peers through `url`.
pub fn spawn_locate(url: &DnsDiscoveryUrl, peers: PeerBook) -> DnsLocateTask {
    let lookup = dns_address_lookup(url);
    DnsLocateTask { handle: tokio::spawn(locate_forever(lookup, peers)) }
}

async fn locate_forever(lookup: DnsAddressLookup, peers: PeerBook) {
    let mut tick = tokio::time::interval(Duration::from_millis(DNS_LOCATE_INTERVAL_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for (node_id, endpoint_id) in unlocated(&peers) {
            if let Some(addr) = locate(&lookup, endpoint_id).await
                && peers.add_resolved(node_id, addr)
            {
                tracing::debug!(node_id, %endpoint_id, "located through DNS");
            }
        }
    }
}

/// The peers (at most `PEERS_MAX`) whose addresses are unknown or came from DNS.
fn unlocated(peers: &PeerBook) -> Vec<(NodeId, EndpointId)> {
    peers
        .list()
        .into_iter()
        .filter(|e| e.endpoint_addr.addrs.is_empty() || e.source == super::PeerSource::Dns)
        .take(PEERS_MAX)
        .map(|e| (e.node_id, e.endpoint_addr.id))
        .collect()
}

/// The first answer of a lookup, within `DNS_LOOKUP_TIMEOUT_MS_MAX`.
async fn locate(lookup: &DnsAddressLookup, endpoint_id: EndpointId) -> Option<EndpointAddr> {
    let mut answers = lookup.resolve(endpoint_id)?;
    let bound = Duration::from_millis(DNS_LOOKUP_TIMEOUT_MS_MAX);
    match tokio::time::timeout(bound, answers.next()).await {
        Ok(Some(Ok(item))) => Some(item.to_endpoint_addr()),
        Ok(Some(Err(error))) => {
            tracing::debug!(%endpoint_id, %error, "DNS lookup failed");
            None
        }
        Ok(None) | Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_urls_name_a_server_and_an_origin() {
        let url = parse_dns_discovery_url("dns://127.0.0.1:5300/dns.example").unwrap();
        assert_eq!(url.nameserver, "127.0.0.1:5300".parse().unwrap());
        assert_eq!(url.origin, "dns.example");
        let url = parse_dns_discovery_url("dns://[::1]/dns.example").unwrap();
        assert_eq!(url.nameserver, "[::1]:53".parse().unwrap());
        for bad in ["http://127.0.0.1/x", "dns://example.com/x", "dns://127.0.0.1", "nonsense"] {
            let error = parse_dns_discovery_url(bad).unwrap_err();
            assert!(error.contains("dns://IP:PORT/ORIGIN"), "{bad}: {error}");
        }
    }

    #[test]
    fn pkarr_urls_are_http() {
        assert!(parse_pkarr_relay_url("http://127.0.0.1:8080/pkarr").is_ok());
        assert!(parse_pkarr_relay_url("https://dns.example/pkarr").is_ok());
        assert!(parse_pkarr_relay_url("dns://127.0.0.1/x").is_err());
        assert!(parse_pkarr_relay_url("pkarr").is_err());
    }
}
