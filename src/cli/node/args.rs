//! `aspen-node`'s flags.
//!
//! Every flag is optional and has an `ASPEN_*` environment variable: a flag that is absent
//! leaves the value of the config file (or the default) in place, so clap itself holds no
//! defaults; each help line states the default instead. [`parse_node_args`] turns clap's
//! several-line usage errors into one line, because scripts and the lab read the first line of
//! stderr to learn what was wrong.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Parser, ValueEnum};

use crate::cluster::ControlBackend;

/// The environment variable with a whitespace-separated list of manual peers, read when no
/// `--peers` flag is given (clap's own `env` would split JSON peers at their commas).
pub const PEERS_ENV: &str = "ASPEN_PEERS";

/// Runs one Aspen node until SIGTERM or SIGINT.
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "aspen-node",
    version,
    about = "Runs one Aspen node: a Raft-replicated key-value store with an HTTP API.",
    long_about = None,
    after_help = "Precedence: flags, then ASPEN_* environment variables, then the --config \
file, then the defaults.\nOn start the node prints one line to stdout: `aspen-node ready \
node_id=.. http=.. endpoint_id=.. ractor_port=.. endpoint_addr=..`; logs go to stderr \
(RUST_LOG, default info).\nExit codes: 0 stopped cleanly after SIGTERM/SIGINT, 1 the node \
failed or stopped on its own, 2 bad flag, variable or config file (nothing was started).\n\
Discovery: peers come from --peers, POST /add-peer, the bootstrap peers of --ticket, gossip \
(every node announces itself, signed with its endpoint key, on a topic derived from the \
cookie, every --gossip-interval-ms; joined through a ticket's bootstrap peers or manual \
peers), mDNS on the LAN (a service name derived from the cookie; not on loopback), and DNS \
(--enable-dns-discovery: peers named by endpoint id alone are located at \
--dns-discovery-url, where nodes publish with --enable-pkarr). GET /peers lists what the \
node knows and how. No public DNS, pkarr or relay server is asked unless named, and a \
method that cannot run says so once at startup while the others go on."
)]
pub struct NodeArgs {
    /// TOML file with the ClusterBootstrapConfig fields and an [iroh] table (default: none).
    #[arg(long, env = "ASPEN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// This node's Raft id, unique in the cluster (default: 1).
    #[arg(long, env = "ASPEN_NODE_ID", value_name = "ID")]
    pub node_id: Option<u64>,
    /// Directory of the node's databases and identity key (default: none, state in memory).
    #[arg(long, env = "ASPEN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// IP address the iroh and ractor sockets bind to (default: 127.0.0.1).
    #[arg(long, env = "ASPEN_HOST", value_name = "IP")]
    pub host: Option<String>,
    /// TCP port of the ractor_cluster control server, 0 for any free port (default: 0).
    #[arg(long, env = "ASPEN_RACTOR_PORT", value_name = "PORT")]
    pub ractor_port: Option<u16>,
    /// Shared cluster secret for ractor_cluster peers and the gossip topic (default: aspen-
    /// cluster).
    #[arg(long, env = "ASPEN_COOKIE", value_name = "SECRET", hide_env_values = true)]
    pub cookie: Option<String>,
    /// Address of the HTTP API; port 0 picks a free port (default: 127.0.0.1:8080).
    #[arg(long, env = "ASPEN_HTTP_ADDR", value_name = "ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// What serves the node: real Raft, or an in-memory backend for tests (default: raft-actor).
    #[arg(long, env = "ASPEN_CONTROL_BACKEND", value_name = "BACKEND")]
    pub control_backend: Option<BackendArg>,
    /// Raft heartbeat interval in milliseconds (default: 500).
    #[arg(long, env = "ASPEN_HEARTBEAT_INTERVAL_MS", value_name = "MS")]
    pub heartbeat_interval_ms: Option<u64>,
    /// Smallest Raft election timeout in milliseconds: a follower that hears from no leader
    /// for a random time between this and --election-timeout-max-ms (drawn again at every
    /// term) starts an election (default: 1500).
    #[arg(long, env = "ASPEN_ELECTION_TIMEOUT_MIN_MS", value_name = "MS")]
    pub election_timeout_min_ms: Option<u64>,
    /// Largest Raft election timeout in milliseconds (default: 3000). Half of it is the leader
    /// lease: for that long after it last heard from its leader a follower refuses votes.
    #[arg(long, env = "ASPEN_ELECTION_TIMEOUT_MAX_MS", value_name = "MS")]
    pub election_timeout_max_ms: Option<u64>,
    /// Build a snapshot (and purge the log behind it) after this many applied entries; small
    /// values make new nodes catch up through a snapshot (default: 100000).
    #[arg(long, env = "ASPEN_SNAPSHOT_AFTER_ENTRIES", value_name = "N")]
    pub snapshot_after_entries: Option<u64>,
    /// Log entries kept behind the last snapshot for lagging followers (default: 1000).
    #[arg(long, env = "ASPEN_LOGS_KEPT_AFTER_SNAPSHOT", value_name = "N")]
    pub logs_kept_after_snapshot: Option<u64>,
    /// iroh secret key as 64 hex characters (default: kept in the data dir, else a new one).
    #[arg(long, env = "ASPEN_IROH_SECRET_KEY", value_name = "HEX", hide_env_values = true)]
    pub iroh_secret_key: Option<String>,
    /// UDP port of the iroh endpoint; a node restarted on the same port is found again by its peers
    /// (default: 0, any free port).
    #[arg(long, env = "ASPEN_IROH_PORT", value_name = "PORT")]
    pub iroh_port: Option<u16>,
    /// iroh relay server URL, http:// allowed; nodes that cannot reach each other directly talk
    /// through it (default: none, no relay and no internet).
    #[arg(long, env = "ASPEN_RELAY_URL", value_name = "URL")]
    pub relay_url: Option<String>,
    /// Turn off gossip discovery: no announcements sent or heard (default: gossip on).
    #[arg(long, env = "ASPEN_DISABLE_GOSSIP", value_parser = BoolishValueParser::new())]
    pub disable_gossip: bool,
    /// Milliseconds between two signed gossip announcements of this node (default: 10000).
    #[arg(long, env = "ASPEN_GOSSIP_INTERVAL_MS", value_name = "MS")]
    pub gossip_interval_ms: Option<u64>,
    /// Cluster ticket (aspen...) from GET /cluster-ticket: adds its bootstrap peers and joins
    /// gossip through them; its cookie hash must match --cookie (default: none).
    #[arg(long, env = "ASPEN_TICKET", value_name = "TICKET")]
    pub ticket: Option<String>,
    /// Turn off mDNS discovery on the LAN; it never runs on a loopback --host (default: mDNS
    /// on).
    #[arg(long, env = "ASPEN_DISABLE_MDNS", value_parser = BoolishValueParser::new())]
    pub disable_mdns: bool,
    /// Locate peers known by endpoint id alone through DNS at --dns-discovery-url (default:
    /// off).
    #[arg(long, env = "ASPEN_ENABLE_DNS_DISCOVERY", value_parser = BoolishValueParser::new())]
    pub enable_dns_discovery: bool,
    /// DNS server for DNS discovery, dns://IP:PORT/ORIGIN; asked alone, never public
    /// resolvers (default: none).
    #[arg(long, env = "ASPEN_DNS_DISCOVERY_URL", value_name = "URL")]
    pub dns_discovery_url: Option<String>,
    /// Publish this node's addresses (direct IPs and relay) to --pkarr-relay-url (default:
    /// off).
    #[arg(long, env = "ASPEN_ENABLE_PKARR", value_parser = BoolishValueParser::new())]
    pub enable_pkarr: bool,
    /// pkarr relay URL, http(s)://HOST:PORT/pkarr for iroh-dns-server (default: none).
    #[arg(long, env = "ASPEN_PKARR_RELAY_URL", value_name = "URL")]
    pub pkarr_relay_url: Option<String>,
    /// A manual peer, ID@ENDPOINT_ID or ID@ENDPOINT_ADDR_JSON (the endpoint address as JSON);
    /// repeat for more, or list them space-separated in ASPEN_PEERS (default: none).
    #[arg(long = "peers", value_name = "PEER", action = clap::ArgAction::Append)]
    pub peers: Vec<String>,
}

/// `--control-backend` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// Raft over iroh with redb storage.
    RaftActor,
    /// The in-memory deterministic backend (no consensus, no network).
    Deterministic,
}

impl From<BackendArg> for ControlBackend {
    fn from(backend: BackendArg) -> Self {
        match backend {
            BackendArg::RaftActor => ControlBackend::RaftActor,
            BackendArg::Deterministic => ControlBackend::Deterministic,
        }
    }
}

/// What parsing the command line came to when it did not produce flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgsOutcome {
    /// `--help` or `--version`: print this to stdout and exit 0.
    Print(String),
    /// A usage error, as one line (no "error:" prefix, no usage block).
    Usage(String),
}

/// Parses `aspen-node`'s command line (the first item is the program name).
pub fn parse_node_args<I, T>(args: I) -> Result<NodeArgs, ArgsOutcome>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    NodeArgs::try_parse_from(args).map_err(|error| {
        use clap::error::ErrorKind;
        match error.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                ArgsOutcome::Print(error.render().to_string())
            }
            _ => ArgsOutcome::Usage(first_line(&error.render().to_string())),
        }
    })
}

/// The first non-empty line of a clap error, without its `error: ` prefix.
fn first_line(rendered: &str) -> String {
    let line = rendered.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("bad usage");
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<NodeArgs, ArgsOutcome> {
        parse_node_args(std::iter::once("aspen-node").chain(args.iter().copied()))
    }

    #[test]
    fn absent_flags_stay_absent_so_the_file_can_fill_them() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.node_id, None);
        assert_eq!(args.http_addr, None);
        assert!(!args.disable_gossip && args.peers.is_empty());
    }

    #[test]
    fn every_flag_parses() {
        let args = parse(&[
            "--node-id=3",
            "--http-addr=127.0.0.1:0",
            "--control-backend=deterministic",
            "--iroh-port=4000",
            "--disable-gossip",
            "--disable-mdns",
            "--enable-pkarr",
            "--peers=1@a",
            "--peers=2@b",
        ])
        .unwrap();
        assert_eq!(args.node_id, Some(3));
        assert_eq!(args.control_backend, Some(BackendArg::Deterministic));
        assert_eq!(args.iroh_port, Some(4000));
        assert!(args.disable_gossip && args.disable_mdns && args.enable_pkarr);
        assert!(!args.enable_dns_discovery);
        assert_eq!(args.peers, ["1@a", "2@b"]);
    }

    #[test]
    fn a_bad_value_is_one_line_naming_the_flag() {
        let Err(ArgsOutcome::Usage(line)) = parse(&["--node-id", "x"]) else { panic!() };
        assert!(line.contains("--node-id"), "{line}");
        assert!(!line.contains('\n'));
        let Err(ArgsOutcome::Usage(line)) = parse(&["--http-addr", "nope"]) else { panic!() };
        assert!(line.contains("--http-addr"), "{line}");
        let Err(ArgsOutcome::Usage(line)) = parse(&["--no-such-flag"]) else { panic!() };
        assert!(line.contains("--no-such-flag"), "{line}");
    }

    #[test]
    fn help_explains_every_flag_with_its_default() {
        let Err(ArgsOutcome::Print(help)) = parse(&["--help"]) else { panic!() };
        use clap::CommandFactory;
        for arg in NodeArgs::command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if long == "help" || long == "version" {
                continue;
            }
            let text = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(text.contains("(default: "), "--{long} states its default: {text}");
            assert!(help.contains(&format!("--{long}")), "--{long} is in --help");
        }
    }
}
