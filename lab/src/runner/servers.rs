//! The discovery servers a run brings along: a DNS + pkarr server for `"discovery": "dns"`, in
//! the lab process, on the address the nodes reach the lab at (127.0.0.1 on loopback, the lab
//! address in netns mode, which the fault rules never drop).
//!
//! Under `dns` every node publishes its addresses with pkarr to the server and resolves its
//! peers, which the runner names by endpoint id alone (`--peers ID@<endpoint id>`), through it.
//!
//! Caveats:
//! - The server runs on the run's tokio runtime: a run that is killed takes it with it.
//! - No relay scenario yet: a relay run (every node on the lab's relay, then every direct path
//!   cut) did not replicate, because a first connection through the relay takes longer than a
//!   heartbeat's RPC deadline and each timed-out call drops the half-made connection (see the
//!   session note of 2026-11-24). tests/discovery_relay.rs, where there never is a direct path,
//!   passes.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use iroh_dns_server::config::{Config, DnsConfig, MetricsConfig, RateLimitConfig};

use crate::scenario::Discovery;

/// The zone the DNS server answers for.
const ORIGIN: &str = "aspen-lab.test";

/// How long a server may take to stop at the end of a run.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The servers of a run (none for manual, gossip and mDNS discovery).
#[derive(Default)]
pub(super) struct DiscoveryServers {
    dns: Option<(iroh_dns_server::Server, tempfile::TempDir)>,
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
            Discovery::Manual | Discovery::Gossip | Discovery::Mdns => {}
        }
        Ok(servers)
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
        args
    }

    /// Stops the server within `STOP_TIMEOUT`.
    pub(super) async fn stop(self) {
        if let Some((server, _data_dir)) = self.dns {
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
