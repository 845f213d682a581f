//! A node's configuration, as the seed README names it, with its defaults and its checks.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::api::NodeId;
use crate::discovery::{
    ClusterTicket, TicketError, cluster_topic, parse_dns_discovery_url, parse_pkarr_relay_url,
};
use crate::limits::{
    ELECTION_TIMEOUT_MS_MAX, GOSSIP_INTERVAL_MS_DEFAULT, GOSSIP_INTERVAL_MS_MAX,
    GOSSIP_INTERVAL_MS_MIN, HEARTBEAT_INTERVAL_MS_MIN,
};

/// Which implementation serves the node's control and data planes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlBackend {
    /// Raft over iroh with redb storage: the real thing.
    #[default]
    RaftActor,
    /// The in-memory deterministic backend: no consensus, no network, for tests.
    Deterministic,
}

/// How a node joins the iroh network and finds its peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IrohConfig {
    /// The endpoint's secret key as 64 hex characters (32 bytes); `None` generates one.
    pub secret_key: Option<String>,
    /// A relay server URL (`http://` allowed): peers that cannot reach this node directly reach
    /// it through there, and it is part of the node's endpoint address. `None` uses no relay at
    /// all, so the node works offline and never waits for the internet.
    pub relay_url: Option<String>,
    /// Broadcast signed gossip announcements (default: true).
    pub enable_gossip: bool,
    /// A cluster ticket (`aspen…`) to join the gossip topic through: its bootstrap peers enter
    /// the peer book (source `Ticket`) and gossip joins through them. Its topic must be this
    /// cluster's (the same cookie).
    pub gossip_ticket: Option<String>,
    /// Milliseconds between two gossip announcements of this node (default: 10 000, as in the
    /// seed). A node also announces itself whenever a gossip neighbour comes up.
    pub gossip_interval_ms: u64,
    /// Discover peers on the LAN with mDNS, under a service name derived from the cookie
    /// (default: true). It does not run on a loopback `host`, which carries no multicast.
    pub enable_mdns: bool,
    /// Resolve peers' endpoint ids through DNS at `dns_discovery_url` (default: false).
    pub enable_dns_discovery: bool,
    /// The DNS discovery server, `dns://IP:PORT/ORIGIN`; DNS discovery asks it alone.
    pub dns_discovery_url: Option<String>,
    /// Publish this node's addresses (direct IPs and relay) to `pkarr_relay_url` (default:
    /// false).
    pub enable_pkarr: bool,
    /// The pkarr relay URL, `http(s)://HOST[:PORT]/PATH` (`/pkarr` for iroh-dns-server).
    pub pkarr_relay_url: Option<String>,
    /// The UDP port of the iroh endpoint (`0`: chosen by the OS). Not in the seed: a node that
    /// restarts on a fixed port is found again at the address its peers already know, even
    /// without discovery.
    pub bind_port: u16,
}

impl Default for IrohConfig {
    fn default() -> Self {
        Self {
            secret_key: None,
            relay_url: None,
            enable_gossip: true,
            gossip_ticket: None,
            gossip_interval_ms: GOSSIP_INTERVAL_MS_DEFAULT,
            enable_mdns: true,
            enable_dns_discovery: false,
            dns_discovery_url: None,
            enable_pkarr: false,
            pkarr_relay_url: None,
            bind_port: 0,
        }
    }
}

/// Everything `bootstrap_node` needs to start a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterBootstrapConfig {
    /// The node's Raft id, unique in the cluster.
    pub node_id: NodeId,
    /// Where the node keeps its redb databases (`aspen.redb`, `state.redb`) and its snapshot
    /// (`snapshot.bin`); `None` keeps everything in memory.
    pub data_dir: Option<PathBuf>,
    /// The host the node binds its sockets to (default `127.0.0.1`).
    pub host: String,
    /// The ractor_cluster control port (`0`: chosen by the OS).
    pub ractor_port: u16,
    /// The cluster cookie: authenticates ractor_cluster peers and names the gossip topic.
    pub cookie: String,
    /// The HTTP API address (default `127.0.0.1:8080`).
    pub http_addr: SocketAddr,
    /// Which backend serves the node.
    pub control_backend: ControlBackend,
    /// Raft heartbeat interval in milliseconds (default 500).
    pub heartbeat_interval_ms: u64,
    /// Smallest election timeout in milliseconds (default 1500): a follower that hears from no
    /// leader for a random time between this and `election_timeout_max_ms` starts an election.
    pub election_timeout_min_ms: u64,
    /// Largest election timeout in milliseconds (default 3000); half of it is the leader lease,
    /// during which a follower refuses votes (see `openraft_election_timeouts` in bootstrap).
    pub election_timeout_max_ms: u64,
    /// Log entries applied since the last snapshot before the node builds a new one and purges
    /// its log up to `logs_kept_after_snapshot` entries behind it (default 100000). Beyond the
    /// seed's fields: small values make learners catch up through a snapshot, as the lab's
    /// `snapshot_catch_up` scenario does.
    pub snapshot_after_entries: u64,
    /// Log entries kept behind the last snapshot, so that a briefly lagging follower catches up
    /// from the log instead of a snapshot (default 1000).
    pub logs_kept_after_snapshot: u64,
    /// iroh networking and discovery.
    pub iroh: IrohConfig,
    /// Manual peers: `"<node_id>@<endpoint_id>"` or `"<node_id>@<endpoint address JSON>"`.
    pub peers: Vec<String>,
}

impl Default for ClusterBootstrapConfig {
    fn default() -> Self {
        Self {
            node_id: 1,
            data_dir: None,
            host: "127.0.0.1".into(),
            ractor_port: 0,
            cookie: "aspen-cluster".into(),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            control_backend: ControlBackend::RaftActor,
            heartbeat_interval_ms: 500,
            election_timeout_min_ms: 1500,
            election_timeout_max_ms: 3000,
            snapshot_after_entries: crate::limits::SNAPSHOT_LOGS_SINCE_LAST_DEFAULT,
            logs_kept_after_snapshot: crate::limits::LOGS_KEPT_AFTER_SNAPSHOT_DEFAULT,
            iroh: IrohConfig::default(),
            peers: Vec::new(),
        }
    }
}

/// A configuration that cannot start a node; names the field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {field}: {reason}")]
pub struct ConfigError {
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

fn config_error(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError { field, reason: reason.into() }
}

impl ClusterBootstrapConfig {
    /// Checks everything that can be checked before anything starts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.host.trim().is_empty() {
            return Err(config_error("host", "must not be empty"));
        }
        if self.cookie.is_empty() {
            return Err(config_error("cookie", "must not be empty"));
        }
        if self.heartbeat_interval_ms < HEARTBEAT_INTERVAL_MS_MIN {
            return Err(config_error(
                "heartbeat_interval_ms",
                format!("must be at least {HEARTBEAT_INTERVAL_MS_MIN}"),
            ));
        }
        if self.election_timeout_min_ms >= self.election_timeout_max_ms {
            return Err(config_error(
                "election_timeout_min_ms",
                format!(
                    "must be less than election_timeout_max_ms ({} >= {})",
                    self.election_timeout_min_ms, self.election_timeout_max_ms
                ),
            ));
        }
        if self.snapshot_after_entries == 0 {
            return Err(config_error("snapshot_after_entries", "must be at least 1"));
        }
        if self.election_timeout_max_ms > ELECTION_TIMEOUT_MS_MAX {
            return Err(config_error(
                "election_timeout_max_ms",
                format!("must be at most {ELECTION_TIMEOUT_MS_MAX}"),
            ));
        }
        if self.heartbeat_interval_ms >= self.election_timeout_min_ms {
            return Err(config_error(
                "heartbeat_interval_ms",
                format!(
                    "must be less than election_timeout_min_ms ({} >= {})",
                    self.heartbeat_interval_ms, self.election_timeout_min_ms
                ),
            ));
        }
        if let Some(key) = &self.iroh.secret_key {
            parse_secret_key(key).map_err(|reason| config_error("iroh.secret_key", reason))?;
        }
        if let Some(url) = &self.iroh.relay_url {
            url.parse::<iroh::RelayUrl>()
                .map_err(|e| config_error("iroh.relay_url", format!("not a URL: {e}")))?;
        }
        self.validate_gossip()?;
        if let Some(url) = &self.iroh.dns_discovery_url {
            parse_dns_discovery_url(url)
                .map_err(|reason| config_error("iroh.dns_discovery_url", reason))?;
        }
        if let Some(url) = &self.iroh.pkarr_relay_url {
            parse_pkarr_relay_url(url)
                .map_err(|reason| config_error("iroh.pkarr_relay_url", reason))?;
        }
        if self.peers.len() > crate::limits::PEERS_MAX {
            return Err(config_error(
                "peers",
                format!("at most {} peers", crate::limits::PEERS_MAX),
            ));
        }
        for peer in &self.peers {
            crate::discovery::parse_peer(peer).map_err(|reason| config_error("peers", reason))?;
        }
        Ok(())
    }
}

impl ClusterBootstrapConfig {
    /// The gossip interval is within its bounds, and the ticket (if any) decodes and belongs to
    /// this cluster's cookie.
    fn validate_gossip(&self) -> Result<(), ConfigError> {
        let interval = self.iroh.gossip_interval_ms;
        if !(GOSSIP_INTERVAL_MS_MIN..=GOSSIP_INTERVAL_MS_MAX).contains(&interval) {
            return Err(config_error(
                "iroh.gossip_interval_ms",
                format!("must be between {GOSSIP_INTERVAL_MS_MIN} and {GOSSIP_INTERVAL_MS_MAX}"),
            ));
        }
        self.ticket().map(|_| ())
    }

    /// The cluster ticket the node joins with, checked against the cookie.
    pub fn ticket(&self) -> Result<Option<ClusterTicket>, ConfigError> {
        let Some(text) = &self.iroh.gossip_ticket else { return Ok(None) };
        let field = "iroh.gossip_ticket";
        let ticket: ClusterTicket =
            text.trim().parse().map_err(|e: TicketError| config_error(field, e.to_string()))?;
        if ticket.topic() != cluster_topic(&self.cookie) {
            return Err(config_error(
                field,
                "it belongs to a cluster with another cookie; start this node with that \
                 cluster's cookie",
            ));
        }
        Ok(Some(ticket))
    }
}

/// Parses a secret key given as exactly 64 hex characters.
pub fn parse_secret_key(hex_key: &str) -> Result<iroh::SecretKey, String> {
    if hex_key.len() != 64 {
        return Err(format!("must be 64 hex characters, got {}", hex_key.len()));
    }
    let bytes = hex::decode(hex_key).map_err(|e| format!("not hex: {e}"))?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| "must be 32 bytes".to_string())?;
    Ok(iroh::SecretKey::from_bytes(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_seeds() {
        let config = ClusterBootstrapConfig::default();
        assert_eq!(config.host, "127.0.0.1");
        assert_eq!(config.ractor_port, 0);
        assert_eq!(config.heartbeat_interval_ms, 500);
        assert_eq!((config.election_timeout_min_ms, config.election_timeout_max_ms), (1500, 3000));
        assert!(config.iroh.enable_gossip && config.iroh.enable_mdns);
        assert!(!config.iroh.enable_dns_discovery && !config.iroh.enable_pkarr);
        assert_eq!(config.control_backend, ControlBackend::RaftActor);
        config.validate().unwrap();
    }

    #[test]
    fn bad_configs_name_their_field() {
        let base = ClusterBootstrapConfig::default;
        let cases: Vec<(ClusterBootstrapConfig, &str)> = vec![
            (
                ClusterBootstrapConfig { election_timeout_min_ms: 3000, ..base() },
                "election_timeout_min_ms",
            ),
            (
                ClusterBootstrapConfig { heartbeat_interval_ms: 1500, ..base() },
                "heartbeat_interval_ms",
            ),
            (
                ClusterBootstrapConfig { heartbeat_interval_ms: 1, ..base() },
                "heartbeat_interval_ms",
            ),
            (ClusterBootstrapConfig { cookie: String::new(), ..base() }, "cookie"),
            (
                ClusterBootstrapConfig {
                    iroh: IrohConfig { secret_key: Some("abc".into()), ..Default::default() },
                    ..base()
                },
                "iroh.secret_key",
            ),
            (
                ClusterBootstrapConfig {
                    iroh: IrohConfig { secret_key: Some("zz".repeat(32)), ..Default::default() },
                    ..base()
                },
                "iroh.secret_key",
            ),
            (ClusterBootstrapConfig { peers: vec!["x@y".into()], ..base() }, "peers"),
            (
                ClusterBootstrapConfig {
                    iroh: IrohConfig {
                        dns_discovery_url: Some("http://127.0.0.1/x".into()),
                        ..Default::default()
                    },
                    ..base()
                },
                "iroh.dns_discovery_url",
            ),
            (
                ClusterBootstrapConfig {
                    iroh: IrohConfig {
                        pkarr_relay_url: Some("127.0.0.1".into()),
                        ..Default::default()
                    },
                    ..base()
                },
                "iroh.pkarr_relay_url",
            ),
            (
                ClusterBootstrapConfig {
                    iroh: IrohConfig { gossip_interval_ms: 1, ..Default::default() },
                    ..base()
                },
                "iroh.gossip_interval_ms",
            ),
            (
                ClusterBootstrapConfig {
                    iroh: IrohConfig {
                        gossip_ticket: Some("aspenxyz".into()),
                        ..Default::default()
                    },
                    ..base()
                },
                "iroh.gossip_ticket",
            ),
        ];
        for (config, field) in cases {
            let error = config.validate().unwrap_err();
            assert_eq!(error.field, field, "{error}");
        }
    }

    #[test]
    fn a_valid_secret_key_parses() {
        let key = parse_secret_key(&"ab".repeat(32)).unwrap();
        assert_eq!(key.to_bytes(), [0xab; 32]);
    }
}
