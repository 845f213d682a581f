//! From flags, `ASPEN_*` variables and a TOML file to one checked [`ClusterBootstrapConfig`].
//!
//! Precedence, highest first: flags, environment variables (clap reads them into the same
//! fields as the flags, so the two arrive here already merged), the `--config` file, and
//! [`ClusterBootstrapConfig::default`]. A value that is absent at one level leaves the level
//! below in place. The result is checked by [`ClusterBootstrapConfig::validate`] plus the few
//! things only the command line can check (the host is an IP address, the ticket decodes), so
//! that a bad value stops the program before anything binds a socket.
//!
//! Every error is one line that names where the bad value came from: the flag (with its config
//! field), or the config file with the line and the key.
//!
//! Caveats:
//! - The configuration types refuse unknown fields themselves, but the file's keys are checked
//!   here first against the serialized default configuration, so that the error names the
//!   whole path (`iroh.secret`), which serde's message does not.
//! - Boolean "disable"/"enable" flags can only move a setting away from its default; to turn
//!   gossip back on after a file turned it off, edit the file.

use std::path::Path;

use crate::cluster::{ClusterBootstrapConfig, ConfigError};
use crate::discovery::{ClusterTicket, cluster_topic};

use super::args::{NodeArgs, PEERS_ENV};

/// A configuration that cannot start a node, as the one line the program prints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NodeConfigError(pub String);

/// Builds the node's configuration. `env` looks up environment variables (only `ASPEN_PEERS`
/// is read here; clap reads the others).
pub fn load_node_config(
    args: &NodeArgs,
    env: impl Fn(&str) -> Option<String>,
) -> Result<ClusterBootstrapConfig, NodeConfigError> {
    let mut config = match &args.config {
        Some(path) => read_config_file(path)?,
        None => ClusterBootstrapConfig::default(),
    };
    apply_args(&mut config, args);
    if args.peers.is_empty()
        && let Some(list) = env(PEERS_ENV).filter(|l| !l.trim().is_empty())
    {
        config.peers = list.split_whitespace().map(str::to_owned).collect();
    }
    check_ticket(&config, args.ticket.is_some())?;
    if config.host.parse::<std::net::IpAddr>().is_err() {
        return Err(NodeConfigError(format!(
            "invalid host (--host): {:?} is not an IP address",
            config.host
        )));
    }
    config.validate().map_err(|error| describe_config_error(&error))?;
    Ok(config)
}

/// Lays every given flag over the configuration.
fn apply_args(config: &mut ClusterBootstrapConfig, args: &NodeArgs) {
    fn set<T: Clone>(target: &mut T, value: &Option<T>) {
        if let Some(value) = value {
            *target = value.clone();
        }
    }
    set(&mut config.node_id, &args.node_id);
    if args.data_dir.is_some() {
        config.data_dir = args.data_dir.clone();
    }
    set(&mut config.host, &args.host);
    set(&mut config.ractor_port, &args.ractor_port);
    set(&mut config.cookie, &args.cookie);
    set(&mut config.http_addr, &args.http_addr);
    if let Some(backend) = args.control_backend {
        config.control_backend = backend.into();
    }
    set(&mut config.heartbeat_interval_ms, &args.heartbeat_interval_ms);
    set(&mut config.election_timeout_min_ms, &args.election_timeout_min_ms);
    set(&mut config.election_timeout_max_ms, &args.election_timeout_max_ms);
    set(&mut config.snapshot_after_entries, &args.snapshot_after_entries);
    set(&mut config.logs_kept_after_snapshot, &args.logs_kept_after_snapshot);
    let iroh = &mut config.iroh;
    let optional = [
        (&mut iroh.secret_key, &args.iroh_secret_key),
        (&mut iroh.relay_url, &args.relay_url),
        (&mut iroh.gossip_ticket, &args.ticket),
        (&mut iroh.dns_discovery_url, &args.dns_discovery_url),
        (&mut iroh.pkarr_relay_url, &args.pkarr_relay_url),
    ];
    for (target, value) in optional {
        if value.is_some() {
            target.clone_from(value);
        }
    }
    set(&mut iroh.bind_port, &args.iroh_port);
    set(&mut iroh.gossip_interval_ms, &args.gossip_interval_ms);
    iroh.enable_gossip &= !args.disable_gossip;
    iroh.enable_mdns &= !args.disable_mdns;
    iroh.enable_dns_discovery |= args.enable_dns_discovery;
    iroh.enable_pkarr |= args.enable_pkarr;
    if !args.peers.is_empty() {
        config.peers = args.peers.clone();
    }
}

/// Checks the ticket here, to name where it came from; the node itself adds its bootstrap
/// peers to the peer book (source `Ticket`) and joins gossip through them.
fn check_ticket(config: &ClusterBootstrapConfig, from_flag: bool) -> Result<(), NodeConfigError> {
    let Some(text) = &config.iroh.gossip_ticket else { return Ok(()) };
    let source = if from_flag { "--ticket" } else { "iroh.gossip_ticket" };
    let ticket: ClusterTicket = text
        .trim()
        .parse()
        .map_err(|e| NodeConfigError(format!("invalid ticket ({source}): {e}")))?;
    if ticket.topic() != cluster_topic(&config.cookie) {
        return Err(NodeConfigError(format!(
            "invalid ticket ({source}): it belongs to a cluster with another cookie; start this \
             node with that cluster's --cookie"
        )));
    }
    Ok(())
}

/// The flag that sets a configuration field, for error messages.
pub fn flag_for_field(field: &str) -> Option<&'static str> {
    Some(match field {
        "node_id" => "--node-id",
        "data_dir" => "--data-dir",
        "host" => "--host",
        "ractor_port" => "--ractor-port",
        "cookie" => "--cookie",
        "http_addr" => "--http-addr",
        "control_backend" => "--control-backend",
        "heartbeat_interval_ms" => "--heartbeat-interval-ms",
        "election_timeout_min_ms" => "--election-timeout-min-ms",
        "election_timeout_max_ms" => "--election-timeout-max-ms",
        "snapshot_after_entries" => "--snapshot-after-entries",
        "logs_kept_after_snapshot" => "--logs-kept-after-snapshot",
        "iroh.secret_key" => "--iroh-secret-key",
        "iroh.bind_port" => "--iroh-port",
        "iroh.relay_url" => "--relay-url",
        "iroh.gossip_ticket" => "--ticket",
        "iroh.gossip_interval_ms" => "--gossip-interval-ms",
        "iroh.dns_discovery_url" => "--dns-discovery-url",
        "iroh.pkarr_relay_url" => "--pkarr-relay-url",
        "peers" => "--peers",
        _ => return None,
    })
}

/// `invalid <field> (<flag>): <reason>`.
fn describe_config_error(error: &ConfigError) -> NodeConfigError {
    let reason = error.reason.replace('\n', " ");
    match flag_for_field(error.field) {
        Some(flag) => NodeConfigError(format!("invalid {} ({flag}): {reason}", error.field)),
        None => NodeConfigError(format!("invalid {}: {reason}", error.field)),
    }
}

/// Reads and decodes a TOML config file, refusing keys the configuration does not have.
pub fn read_config_file(path: &Path) -> Result<ClusterBootstrapConfig, NodeConfigError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| NodeConfigError(format!("config file {shown}: {e}")))?;
    parse_config_text(&text)
        .map_err(|reason| NodeConfigError(format!("config file {shown}: {reason}")))
}

/// Decodes the text of a config file; the error says where and what.
pub fn parse_config_text(text: &str) -> Result<ClusterBootstrapConfig, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| describe_toml_error(text, &e))?;
    let known = serde_json::to_value(ClusterBootstrapConfig::default())
        .map_err(|e| format!("cannot list the config fields: {e}"))?;
    check_known_keys(&table, &known, "")?;
    toml::from_str(text).map_err(|e| describe_toml_error(text, &e))
}

/// Fails on the first key of `table` that `known` (a serialized default) does not have.
fn check_known_keys(
    table: &toml::Table,
    known: &serde_json::Value,
    prefix: &str,
) -> Result<(), String> {
    for (key, value) in table {
        let Some(known_value) = known.get(key) else {
            return Err(format!("unknown field `{prefix}{key}`"));
        };
        if let (toml::Value::Table(inner), serde_json::Value::Object(_)) = (value, known_value) {
            check_known_keys(inner, known_value, &format!("{prefix}{key}."))?;
        }
    }
    Ok(())
}

/// One line: `line N (<the line>): <message>`.
fn describe_toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().replace('\n', " ");
    let Some(span) = error.span() else { return message };
    let start = span.start.min(text.len());
    let line_number = text[..start].matches('\n').count() + 1;
    let line = text.lines().nth(line_number - 1).unwrap_or("").trim();
    format!("line {line_number} ({line}): {message}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ControlBackend;
    use clap::Parser;

    fn args(flags: &[&str]) -> NodeArgs {
        NodeArgs::try_parse_from(std::iter::once("aspen-node").chain(flags.iter().copied()))
            .unwrap()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let file = parse_config_text(
            "node_id = 5\ncookie = \"from-file\"\nheartbeat_interval_ms = 50\n\
             [iroh]\nenable_gossip = false\nbind_port = 7000\n",
        )
        .unwrap();
        assert_eq!((file.node_id, file.iroh.bind_port), (5, 7000));
        assert!(!file.iroh.enable_gossip && file.iroh.enable_mdns);
        let mut config = file.clone();
        apply_args(&mut config, &args(&["--node-id", "7", "--control-backend", "deterministic"]));
        assert_eq!(config.node_id, 7);
        assert_eq!(config.cookie, "from-file");
        assert_eq!(config.heartbeat_interval_ms, 50);
        assert_eq!(config.control_backend, ControlBackend::Deterministic);
        assert_eq!(config.election_timeout_max_ms, 3000, "default kept");
    }

    #[test]
    fn peers_come_from_flags_else_the_environment() {
        let key = iroh::SecretKey::from_bytes(&[1; 32]).public();
        let env_list = format!("2@{key} 3@{key}");
        let env = |name: &str| (name == PEERS_ENV).then(|| env_list.clone());
        let from_env = load_node_config(&args(&[]), env).unwrap();
        assert_eq!(from_env.peers.len(), 2);
        let flag = format!("4@{key}");
        let from_flag = load_node_config(&args(&["--peers", &flag]), env).unwrap();
        assert_eq!(from_flag.peers, [flag]);
    }

    #[test]
    fn bad_values_name_their_flag() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["--election-timeout-min-ms", "900", "--election-timeout-max-ms", "800"],
                "--election-timeout-min-ms",
            ),
            (&["--iroh-secret-key", "abc"], "--iroh-secret-key"),
            (&["--peers", "nonsense"], "--peers"),
            (&["--host", "localhost-ish"], "--host"),
            (&["--cookie", ""], "--cookie"),
            (&["--ticket", "garbage"], "--ticket"),
            (&["--dns-discovery-url", "dns://example.com/x"], "--dns-discovery-url"),
            (&["--pkarr-relay-url", "127.0.0.1:80"], "--pkarr-relay-url"),
        ];
        for (flags, flag) in cases {
            let error = load_node_config(&args(flags), no_env).unwrap_err();
            assert!(error.0.contains(flag), "{flags:?}: {error}");
            assert!(!error.0.contains('\n'));
        }
    }

    #[test]
    fn a_ticket_is_kept_for_the_node_and_checked_against_the_cookie() {
        let endpoint = |seed: u8| {
            let mut addr =
                iroh::EndpointAddr::new(iroh::SecretKey::from_bytes(&[seed; 32]).public());
            addr.addrs.insert(iroh::TransportAddr::Ip(
                format!("127.0.0.1:{}", 4000 + seed as u16).parse().unwrap(),
            ));
            addr
        };
        let topic = cluster_topic("aspen-cluster");
        let ticket = ClusterTicket::new(topic, vec![(1, endpoint(1)), (2, endpoint(2))]).unwrap();
        let text = ticket.to_string();
        let config =
            load_node_config(&args(&["--node-id", "1", "--ticket", &text]), no_env).unwrap();
        assert!(config.peers.is_empty(), "ticket peers are not manual peers");
        assert_eq!(config.iroh.gossip_ticket.as_deref(), Some(text.as_str()));
        assert_eq!(config.ticket().unwrap(), Some(ticket));
        let error =
            load_node_config(&args(&["--cookie", "other", "--ticket", &text]), no_env).unwrap_err();
        assert!(error.0.contains("--ticket") && error.0.contains("cookie"), "{error}");
    }

    #[test]
    fn bad_files_say_where() {
        let error = parse_config_text("node_id = \n").unwrap_err();
        assert!(error.starts_with("line 1"), "{error}");
        let error = parse_config_text("nodeid = 3\n").unwrap_err();
        assert!(error.contains("unknown field `nodeid`"), "{error}");
        let error = parse_config_text("[iroh]\nenable_gosip = true\n").unwrap_err();
        assert!(error.contains("`iroh.enable_gosip`"), "{error}");
        let error =
            parse_config_text("node_id = 1\nelection_timeout_min_ms = \"x\"\n").unwrap_err();
        assert!(error.contains("line 2") && error.contains("election_timeout_min_ms"), "{error}");
        assert!(!error.contains('\n'));
    }

    #[test]
    fn every_field_has_a_flag_except_the_peer_list_entries() {
        let known = serde_json::to_value(ClusterBootstrapConfig::default()).unwrap();
        let mut fields = Vec::new();
        for (key, value) in known.as_object().unwrap() {
            match value.as_object() {
                Some(inner) => fields.extend(inner.keys().map(|k| format!("{key}.{k}"))),
                None => fields.push(key.clone()),
            }
        }
        let boolean = [
            "iroh.enable_gossip",
            "iroh.enable_mdns",
            "iroh.enable_dns_discovery",
            "iroh.enable_pkarr",
        ];
        for field in fields.iter().filter(|f| !boolean.contains(&f.as_str())) {
            assert!(flag_for_field(field).is_some(), "{field} has a flag");
        }
    }
}
