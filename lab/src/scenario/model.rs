//! The top of a scenario file: the cluster it starts, its settings, and the checks it runs.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::step::Step;

/// A node's position in a scenario: 0 for the first node started, up to `nodes - 1`, then one
/// more for each `add_node` step. Node index `i` runs `aspen-node` with Raft node id `i + 1`.
pub type NodeIndex = u32;

/// One scenario file: a cluster, a script of steps, and the checks that judge the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario shows, in a sentence or two; `aspen-lab list` prints it.
    pub description: String,
    /// How many nodes the cluster starts with (1 to 9).
    pub nodes: u32,
    /// Raft timing and discovery for every node.
    #[serde(default)]
    pub node_settings: NodeSettings,
    /// How the node processes are connected.
    #[serde(default)]
    pub network: Network,
    /// Seed for every random choice of the run; `--seed` overrides it, and without either the
    /// runner picks one and prints it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The script, run in order.
    pub steps: Vec<Step>,
    /// Checks run once the script has finished.
    #[serde(default)]
    pub checks: Vec<CheckKind>,
}

/// Settings passed to every node of the scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeSettings {
    /// Raft heartbeat interval in milliseconds (default 500, the node's default).
    pub heartbeat_interval_ms: u64,
    /// Smallest election timeout in milliseconds (default 1500).
    pub election_timeout_min_ms: u64,
    /// Largest election timeout in milliseconds (default 3000).
    pub election_timeout_max_ms: u64,
    /// Applied entries after which a node builds a snapshot and purges its log (default 100000,
    /// the node's default; `--snapshot-after-entries`).
    pub snapshot_after_entries: u64,
    /// Entries a node keeps behind its last snapshot (default 1000;
    /// `--logs-kept-after-snapshot`). 0 purges everything the snapshot covers.
    pub logs_kept_after_snapshot: u64,
    /// How nodes find each other.
    pub discovery: Discovery,
}

impl Default for NodeSettings {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 500,
            election_timeout_min_ms: 1500,
            election_timeout_max_ms: 3000,
            snapshot_after_entries: 100_000,
            logs_kept_after_snapshot: 1_000,
            discovery: Discovery::Manual,
        }
    }
}

/// How nodes find each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Discovery {
    /// The runner passes every node the addresses of the others (`--peers`).
    #[default]
    Manual,
    /// Node 0 starts alone; the others start with its cluster ticket only (`--ticket`) and
    /// find each other through signed gossip announcements.
    Gossip,
    /// No peers and no ticket: nodes find each other by mDNS on the lab's bridge. Needs
    /// `"network": "netns"` (loopback carries no multicast).
    Mdns,
    /// The lab runs a DNS + pkarr server; nodes publish to it and are given their peers by
    /// endpoint id alone (`--peers ID@<endpoint id>`), whose addresses they resolve through it.
    Dns,
    /// The lab runs an iroh relay server; every node uses it (`--relay-url`) and is given its
    /// peers' addresses with the relay named next to the direct address, so nodes that cannot
    /// reach each other directly (a `network_fault`) still talk through it.
    Relay,
}

/// How the node processes are connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// All nodes on 127.0.0.1; no network faults beyond process faults.
    #[default]
    Loopback,
    /// One network namespace per node on a bridge, which makes partitions and delays possible.
    /// Needs root; the runner skips such scenarios with a message without it.
    Netns,
}

/// A property a run is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// Every node knows every other node.
    Discovery,
    /// Every node reports the same state digest.
    Replication,
    /// After the leader is lost, a new leader is elected and writes resume within a bound.
    Failover,
    /// Every acknowledged write is readable at the end, unless a later write replaced it.
    Durability,
    /// Operations succeed again within a bound after the last fault is healed.
    Liveness,
    /// The recorded history of reads, writes and CAS is linearizable, key by key.
    Linearizability,
    /// The stranger of the `intruder` step is in no member's peer book and no membership,
    /// and the members turned away its connections.
    NoIntruder,
}

impl CheckKind {
    /// Every check, in the order reports list them.
    pub const ALL: [CheckKind; 7] = [
        CheckKind::Discovery,
        CheckKind::Replication,
        CheckKind::Failover,
        CheckKind::Durability,
        CheckKind::Liveness,
        CheckKind::Linearizability,
        CheckKind::NoIntruder,
    ];

    /// The check's name as written in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            CheckKind::Discovery => "discovery",
            CheckKind::Replication => "replication",
            CheckKind::Failover => "failover",
            CheckKind::Durability => "durability",
            CheckKind::Liveness => "liveness",
            CheckKind::Linearizability => "linearizability",
            CheckKind::NoIntruder => "no_intruder",
        }
    }
}

impl fmt::Display for CheckKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}
