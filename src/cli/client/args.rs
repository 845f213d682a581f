//! `aspen`'s commands and flags.

use clap::{Parser, Subcommand};

use crate::api::NodeId;
use crate::cli::exit::EXIT_CODES_HELP;

/// The node `aspen` talks to when neither `--node` nor `ASPEN_NODE` says otherwise.
pub const DEFAULT_NODE_URL: &str = "http://127.0.0.1:8080";

/// Talks to an Aspen node over its HTTP API: keys, cluster membership, node status.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "aspen",
    version,
    about = "Talks to an Aspen node over its HTTP API: keys, cluster membership, node status.",
    after_help = EXIT_CODES_HELP
)]
pub struct ClientArgs {
    /// The node's HTTP API (default: http://127.0.0.1:8080).
    #[arg(long, env = "ASPEN_NODE", value_name = "URL", global = true)]
    #[arg(default_value = DEFAULT_NODE_URL, hide_default_value = true)]
    pub node: String,
    /// Print the node's answer as one JSON document on stdout, for scripts (default: human-readable
    /// text).
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The command groups.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Read and write keys.
    #[command(subcommand)]
    Kv(KvCommand),
    /// Create the cluster and change its membership.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Look at the node itself.
    #[command(subcommand)]
    Node(NodeCommand),
}

/// Key-value commands; reads are linearizable, writes go through Raft (a follower forwards
/// them to the leader).
#[derive(Debug, Clone, Subcommand)]
pub enum KvCommand {
    /// Set KEY to VALUE.
    Put {
        /// The key.
        key: String,
        /// The value.
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Print the value of KEY (exit code 3 if it does not exist).
    Get {
        /// The key.
        key: String,
        /// Answer from this node's own applied state, with no round trip to the leader: works
        /// without a quorum, but may miss recent writes (etcd's `--consistency=s`). Without it
        /// the read is linearizable.
        #[arg(long)]
        serializable: bool,
    },
    /// Remove KEY (removing a missing key succeeds).
    Delete {
        /// The key.
        key: String,
    },
    /// Set KEY to NEW only if its value is --expected V, or it is absent with --expect-absent (exit
    /// code 4 on a mismatch).
    Cas {
        /// The key.
        key: String,
        /// The value KEY must have now.
        #[arg(
            long,
            value_name = "V",
            allow_hyphen_values = true,
            required_unless_present = "expect_absent",
            conflicts_with = "expect_absent"
        )]
        expected: Option<String>,
        /// KEY must not exist now.
        #[arg(long)]
        expect_absent: bool,
        /// The value to set.
        #[arg(allow_hyphen_values = true)]
        new_value: String,
    },
    /// List the keys that start with PREFIX (all keys without one), in key order.
    Scan {
        /// The prefix (default: empty, every key).
        prefix: Option<String>,
        /// Most entries to print (default: the node's, 1000).
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
    },
    /// Set several keys at once, atomically: KEY=VALUE ...
    PutMulti {
        /// The pairs, each KEY=VALUE.
        #[arg(required = true, value_name = "KEY=VALUE", value_parser = parse_pair)]
        pairs: Vec<(String, String)>,
    },
}

/// Cluster membership commands; they must be sent to the leader.
#[derive(Debug, Clone, Subcommand)]
pub enum ClusterCommand {
    /// Create the cluster with these voters, each ID or ID=API_ADDR (default: the target node
    /// alone).
    Init {
        /// The first voters.
        #[arg(value_name = "ID[=ADDR]", value_parser = parse_member)]
        members: Vec<(NodeId, Option<String>)>,
    },
    /// Add node ID as a learner and wait until it has caught up.
    AddLearner {
        /// The learner's node id.
        id: NodeId,
        /// The learner's HTTP API address, shown to clients (default: the address the learner
        /// announced over gossip, else empty).
        #[arg(long, value_name = "ADDR")]
        addr: Option<String>,
        /// The learner's iroh endpoint: id or address JSON (default: from the node's peers).
        #[arg(long, value_name = "ENDPOINT")]
        raft_addr: Option<String>,
    },
    /// Make exactly these nodes the voters; each must be a member or a learner already.
    ChangeMembership {
        /// The new voters.
        #[arg(required = true, value_name = "ID")]
        members: Vec<NodeId>,
    },
    /// Remove node ID from the cluster entirely (like `etcdctl member remove`); a voter is not
    /// kept as a learner. Add it again as a learner to bring it back.
    RemoveNode {
        /// The node to remove.
        id: NodeId,
    },
    /// Show the members, the learners, their addresses and the leader.
    Status,
    /// Print a ticket that other nodes join with (`aspen-node --ticket`).
    Ticket,
}

/// Commands about the target node.
#[derive(Debug, Clone, Subcommand)]
pub enum NodeCommand {
    /// The node's id, endpoint and addresses.
    Info,
    /// Only the node's endpoint address, as the JSON that `node add-peer` takes.
    Addr,
    /// Whether the node is up (exit code 1 if not).
    Health,
    /// Prometheus metrics; with --json, the Raft metrics.
    Metrics,
    /// The peers the node knows.
    Peers,
    /// Tell the node where node ID is: ENDPOINT is an endpoint id or endpoint address JSON.
    AddPeer {
        /// The peer's node id.
        id: NodeId,
        /// Its iroh endpoint id, or its endpoint address as JSON.
        endpoint: String,
    },
}

/// `KEY=VALUE`, split at the first `=`; the key must not be empty.
pub fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

/// `ID` or `ID=ADDR`.
pub fn parse_member(text: &str) -> Result<(NodeId, Option<String>), String> {
    let (id, addr) = match text.split_once('=') {
        Some((id, addr)) => (id, Some(addr.to_string())),
        None => (text, None),
    };
    let id = id.parse().map_err(|_| format!("{id:?} is not a node id"))?;
    Ok((id, addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ClientArgs, clap::Error> {
        ClientArgs::try_parse_from(std::iter::once("aspen").chain(args.iter().copied()))
    }

    #[test]
    fn commands_parse() {
        let args = parse(&["--json", "kv", "cas", "k", "--expected", "-1", "2"]).unwrap();
        assert!(args.json);
        let Command::Kv(KvCommand::Cas { expected, expect_absent, new_value, .. }) = args.command
        else {
            panic!()
        };
        assert_eq!(
            (expected.as_deref(), expect_absent, new_value.as_str()),
            (Some("-1"), false, "2")
        );
        let args = parse(&["kv", "put-multi", "a=1", "b=x=y", "--node", "http://h:1"]).unwrap();
        assert_eq!(args.node, "http://h:1");
        let Command::Kv(KvCommand::PutMulti { pairs }) = args.command else { panic!() };
        assert_eq!(pairs[1], ("b".to_string(), "x=y".to_string()));
        let args = parse(&["cluster", "init", "1", "2=127.0.0.1:8081"]).unwrap();
        let Command::Cluster(ClusterCommand::Init { members }) = args.command else { panic!() };
        assert_eq!(members, [(1, None), (2, Some("127.0.0.1:8081".into()))]);
    }

    #[test]
    fn usage_errors_are_refused_with_code_2() {
        for bad in [
            &["kv", "put", "only-key"][..],
            &["kv", "cas", "k", "new"],
            &["kv", "cas", "k", "--expected", "a", "--expect-absent", "new"],
            &["kv", "put-multi", "novalue"],
            &["cluster", "init", "x"],
            &["cluster", "change-membership"],
            &["frobnicate"],
        ] {
            let error = parse(bad).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn help_documents_the_exit_codes() {
        let error = parse(&["--help"]).unwrap_err();
        assert!(error.render().to_string().contains("4 compare-and-swap mismatch"));
    }
}
