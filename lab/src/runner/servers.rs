//! The discovery servers a run brings along, in the lab process, on the address the nodes reach
//! the lab at (127.0.0.1 on loopback, the lab address in netns mode, which the fault rules
//! never drop):
//! - `"discovery": "dns"`: a DNS + pkarr server. Every node publishes its addresses with pkarr
//!   to it and resolves its peers, which the runner names by endpoint id alone
//!   (`--peers ID@<endpoint id>`), through it.
//! - `"discovery": "relay"`: an iroh relay server (plain HTTP). Every node uses it as its home
//!   relay (`--relay-url`), and the runner names each peer with the relay next to its direct
//!   address, so packets between nodes whose direct path is cut go through the relay.
//!
//! The servers run on the run's tokio runtime: a run that is killed takes them with it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use iroh::RelayUrl;
use iroh_dns_server::config::{Config, DnsConfig, MetricsConfig, RateLimitConfig};
use iroh_relay::server::{RelayConfig, ServerConfig};

use crate::scenario::Discovery;

/// The zone the DNS server answers for.
const ORIGIN: &str = "aspen-lab.test";

/// How long a server may take to stop at the end of a run.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The servers of a run (none for manual, gossip and mDNS discovery).
#[derive(Default)]
pub(super) struct DiscoveryServers {
    dns: Option<(iroh_dns_server::Server, tempfile::TempDir)>,
    relay: Option<iroh_relay::server::Server>,
}

impl DiscoveryServers {
    /// Starts what `discovery` needs, bound to `ip`.
    pub(super) async fn start(discovery: Discovery, ip: Ipv4Addr) -> anyhow::Result<Self> {
        let mut servers = Self::default();
        match discovery {
            Discovery::Dns => {
                let data_dir = tempfile::Builder::new().prefix("aspen-lab-dns-").tempdir()?;
                let server = iroh_dns_server::Server::bind(dns_config(ip, &data_dir))
                    .await
                    .map_err(|e| anyhow::anyhow!("the lab's DNS server: {e:#}"))?;
                servers.dns = Some((server, data_dir));
            }
            Discovery::Relay => {
                let mut config = ServerConfig::default();
                config.relay = Some(RelayConfig::new(SocketAddr::new(IpAddr::V4(ip), 0)));
                let server = iroh_relay::server::Server::spawn(config)
                    .await
                    .map_err(|e| anyhow::anyhow!("the lab's relay server: {e:#}"))?;
                servers.relay = Some(server);
            }
            Discovery::Manual | Discovery::Gossip | Discovery::Mdns => {}
        }
        Ok(servers)
    }

    /// The relay's URL, under `relay` discovery.
    pub(super) fn relay_url(&self) -> Option<RelayUrl> {
        let addr = self.relay.as_ref()?.http_addr()?;
        format!("http://{addr}").parse().ok()
    }

    /// The flags that point a node at these servers.
    pub(super) fn node_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some((server, _)) = &self.dns {
            let pkarr = server.http_addr().map(|addr| format!("http://{addr}/pkarr"));
            args.push("--enable-dns-discovery".into());
            args.push(format!("--dns-discovery-url=dns://{}/{ORIGIN}", server.dns_addr()));
            args.push("--enable-pkarr".into());
            args.extend(pkarr.map(|url| format!("--pkarr-relay-url={url}")));
        }
        args.extend(self.relay_url().map(|url| format!("--relay-url={url}")));
        args
    }

    /// Stops the servers, each within `STOP_TIMEOUT`.
    pub(super) async fn stop(self) {
        if let Some((server, _data_dir)) = self.dns {
            let _ = tokio::time::timeout(STOP_TIMEOUT, server.shutdown()).await;
        }
        if let Some(server) = self.relay {
            let _ = tokio::time::timeout(STOP_TIMEOUT, server.shutdown()).await;
        }
    }
}

/// A DNS server for `ORIGIN` with a pkarr endpoint over plain HTTP, on `ip` with ports chosen
/// by the OS, its data in `data_dir`, no HTTPS, no metrics, no rate limit.
fn dns_config(ip: Ipv4Addr, data_dir: &tempfile::TempDir) -> Config {
    let ip = IpAddr::V4(ip);
    let mut config = Config::default();
    if let Some(mut http) = config.http.take() {
        (http.port, http.bind_addr) = (0, Some(ip));
        config.http = Some(http);
    }
    config.https = None;
    let soa = format!("{ORIGIN} hostmaster.{ORIGIN} 0 10800 3600 604800 3600");
    // The server's static zone is rooted at ".", which must be an origin too.
    config.dns = DnsConfig::new(0, soa, 30, vec![format!("{ORIGIN}."), ".".into()]);
    config.dns.bind_addr = Some(ip);
    config.metrics = Some(MetricsConfig::disabled());
    config.pkarr_put_rate_limit = RateLimitConfig::Disabled;
    config.data_dir = Some(data_dir.path().to_path_buf());
    config
}
