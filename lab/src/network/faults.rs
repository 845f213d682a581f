//! Network faults as plain data, and the nftables and tc text that puts them in force.
//!
//! [`Conditions`] is everything wrong with the network at one moment: a [`Partition`] (the
//! directed node-to-node links that drop every packet), packet loss per sending node, and delay
//! per node. A scenario's [`NetworkFault`] changes the conditions ([`Conditions::with_fault`]),
//! and [`nft_ruleset`] and [`netem_args`] turn them into what runs inside each node's
//! namespace. Everything here is a pure function, so the rules are pinned by unit tests.
//!
//! Packets are dropped where they arrive: the ruleset of node `b` drops what comes from `a`
//! when the link `a → b` is cut, so the sender sees a silent network, as in a real partition,
//! not an error from its own firewall. Rules match only node addresses as sources and accept
//! the lab's address first, so the lab always reaches every node's HTTP API and control port.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::command::NetworkError;
use super::names::NODE_DEVICE;
use crate::scenario::{NetworkFault, NodeIndex, NodeSelector};

/// The nftables table of the lab in every node namespace: deleting it heals the node.
pub const NFT_TABLE: &str = "inet aspen_lab";

/// A direction between two nodes: packets sent by `from` to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Link {
    /// The sender.
    pub from: NodeIndex,
    /// The receiver.
    pub to: NodeIndex,
}

/// A partition: the directed links that drop every packet. Empty means none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Partition {
    cut: BTreeSet<Link>,
}

impl Partition {
    /// Cuts `a → b` and `b → a`.
    fn cut_both(&mut self, a: NodeIndex, b: NodeIndex) {
        if a != b {
            self.cut.insert(Link { from: a, to: b });
            self.cut.insert(Link { from: b, to: a });
        }
    }

    /// `node` is cut off from every other node of `nodes`.
    pub fn isolate(node: NodeIndex, nodes: &[NodeIndex]) -> Partition {
        let mut partition = Partition::default();
        nodes.iter().for_each(|other| partition.cut_both(node, *other));
        partition
    }

    /// Each group talks within itself only. A node may appear in one group at most.
    pub fn split(groups: &[Vec<NodeIndex>]) -> Result<Partition, NetworkError> {
        let mut seen = BTreeSet::new();
        for node in groups.iter().flatten() {
            if !seen.insert(*node) {
                return Err(NetworkError::invalid(format!("node {node} is in two groups")));
            }
        }
        let mut partition = Partition::default();
        for (position, group) in groups.iter().enumerate() {
            for other in &groups[position + 1..] {
                for (a, b) in group.iter().flat_map(|a| other.iter().map(move |b| (*a, *b))) {
                    partition.cut_both(a, b);
                }
            }
        }
        Ok(partition)
    }

    /// Packets from `from` to `to` are dropped; those from `to` to `from` are delivered.
    pub fn one_way(from: NodeIndex, to: NodeIndex) -> Result<Partition, NetworkError> {
        if from == to {
            return Err(NetworkError::invalid(format!("one_way from node {from} to itself")));
        }
        Ok(Partition { cut: BTreeSet::from([Link { from, to }]) })
    }

    /// Two halves that cannot talk, and one node in the middle that talks to both (Jepsen's
    /// bridge). In the order given, the node at position `len / 2` bridges the nodes before it
    /// and the nodes after it. Needs three nodes.
    pub fn bridge(nodes: &[NodeIndex]) -> Result<Partition, NetworkError> {
        if nodes.len() < 3 {
            return Err(NetworkError::invalid("a bridge needs 3 or more nodes"));
        }
        let middle = nodes.len() / 2;
        Partition::split(&[nodes[..middle].to_vec(), nodes[middle + 1..].to_vec()])
    }

    /// Every node sees a majority, and no two nodes see the same majority (Jepsen's majorities
    /// ring). The nodes, in the order given, stand in a ring; each keeps the links to the
    /// `ceil(floor(n / 2) / 2)` nearest on either side, which with itself is a majority, and
    /// loses the rest. Needs four nodes: with three, every node is a neighbour of every other.
    pub fn majorities_ring(nodes: &[NodeIndex]) -> Result<Partition, NetworkError> {
        let count = nodes.len();
        if count < 4 {
            return Err(NetworkError::invalid("a majorities ring needs 4 or more nodes"));
        }
        let reach = (count / 2).div_ceil(2);
        let mut partition = Partition::default();
        for a in 0..count {
            for b in a + 1..count {
                let distance = (b - a).min(count - (b - a));
                if distance > reach {
                    partition.cut_both(nodes[a], nodes[b]);
                }
            }
        }
        Ok(partition)
    }

    /// Whether packets from `from` to `to` are dropped.
    pub fn is_cut(&self, from: NodeIndex, to: NodeIndex) -> bool {
        self.cut.contains(&Link { from, to })
    }

    /// The cut links, in order.
    pub fn links(&self) -> impl Iterator<Item = Link> + '_ {
        self.cut.iter().copied()
    }

    /// Whether nothing is cut.
    pub fn is_empty(&self) -> bool {
        self.cut.is_empty()
    }
}

/// Delay added to every packet a node sends, with a uniform jitter of up to `jitter_ms` either
/// way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Delay {
    /// Mean delay in milliseconds.
    pub ms: u64,
    /// Jitter in milliseconds.
    pub jitter_ms: u64,
}

/// Everything wrong with the network at one moment. The default is a healthy network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    /// The links that drop every packet.
    pub partition: Partition,
    /// Percent of the packets each node sends to other nodes that are lost, by sender.
    pub loss_percent: BTreeMap<NodeIndex, u32>,
    /// The delay of each node's outgoing packets, by node.
    pub delay: BTreeMap<NodeIndex, Delay>,
}

impl Conditions {
    /// Whether the network is healthy.
    pub fn is_healthy(&self) -> bool {
        self.partition.is_empty() && self.loss_percent.is_empty() && self.delay.is_empty()
    }

    /// The conditions after `fault`, among the `nodes` that take part (in the order bridge and
    /// majorities ring use; the runner may shuffle it with the run's seed). A partition replaces
    /// the partition in force; a delay or loss replaces the delay or loss of the nodes it names
    /// and leaves the partition; `heal` clears everything. `resolve` turns `"leader"` and
    /// `"random_follower"` into a node index.
    pub fn with_fault(
        &self,
        fault: &NetworkFault,
        nodes: &[NodeIndex],
        mut resolve: impl FnMut(NodeSelector) -> Result<NodeIndex, NetworkError>,
    ) -> Result<Conditions, NetworkError> {
        let mut next = self.clone();
        match fault {
            NetworkFault::Isolate(isolate) => {
                next.partition = Partition::isolate(resolve(isolate.node)?, nodes)
            }
            NetworkFault::Split(split) => next.partition = Partition::split(&split.groups)?,
            NetworkFault::OneWay(one_way) => {
                next.partition = Partition::one_way(resolve(one_way.from)?, resolve(one_way.to)?)?
            }
            NetworkFault::Bridge => next.partition = Partition::bridge(nodes)?,
            NetworkFault::MajoritiesRing => next.partition = Partition::majorities_ring(nodes)?,
            NetworkFault::Delay(delay) => {
                let value = Delay { ms: delay.ms, jitter_ms: delay.jitter_ms };
                for node in targets(delay.node, nodes, &mut resolve)? {
                    next.delay.insert(node, value);
                }
            }
            NetworkFault::Loss(loss) => {
                for node in targets(loss.node, nodes, &mut resolve)? {
                    next.loss_percent.insert(node, loss.percent);
                }
            }
            NetworkFault::Heal => next = Conditions::default(),
        }
        Ok(next)
    }
}

/// The node a delay or loss names, or every node when it names none.
fn targets(
    node: Option<NodeSelector>,
    nodes: &[NodeIndex],
    resolve: &mut impl FnMut(NodeSelector) -> Result<NodeIndex, NetworkError>,
) -> Result<Vec<NodeIndex>, NetworkError> {
    match node {
        Some(selector) => Ok(vec![resolve(selector)?]),
        None => Ok(nodes.to_vec()),
    }
}

/// Where the lab and each node are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressMap {
    /// The lab's address (the host's end of the lab veth).
    pub lab: Ipv4Addr,
    /// Each node's address.
    pub nodes: BTreeMap<NodeIndex, Ipv4Addr>,
}

/// The nftables script that puts `conditions` in force in the namespace of `receiver`: fed to
/// `nft -f -` there, it atomically replaces whatever the lab's table held. A healthy receiver
/// gets [`nft_heal`], which deletes the table.
pub fn nft_ruleset(receiver: NodeIndex, conditions: &Conditions, addresses: &AddressMap) -> String {
    let senders = || addresses.nodes.iter().filter(move |(node, _)| **node != receiver);
    // Percent of `sender`'s packets that `receiver` drops: all of them across a cut link.
    let loss = |sender: NodeIndex| match conditions.partition.is_cut(sender, receiver) {
        true => 100,
        false => conditions.loss_percent.get(&sender).copied().unwrap_or(0).min(100),
    };
    let dropped: Vec<Ipv4Addr> =
        senders().filter(|(node, _)| loss(**node) == 100).map(|(_, address)| *address).collect();
    // `numgen random mod 100` draws 0 to 99, and nft refuses to compare it with 100.
    let lossy: Vec<(Ipv4Addr, u32)> = senders()
        .map(|(node, address)| (*address, loss(*node)))
        .filter(|(_, percent)| (1..100).contains(percent))
        .collect();
    let mut text = nft_heal();
    if dropped.is_empty() && lossy.is_empty() {
        return text;
    }
    // `add` + `delete` + the new table in one `nft -f` run is one transaction: the old rules
    // stay in force until the new ones are.
    let _ = writeln!(text, "table {NFT_TABLE} {{");
    text.push_str("    chain input {\n");
    text.push_str("        type filter hook input priority 0; policy accept;\n");
    // The lab drives and observes the nodes; no fault may come between them.
    let _ = writeln!(text, "        ip saddr {} accept", addresses.lab);
    if !dropped.is_empty() {
        let list: Vec<String> = dropped.iter().map(ToString::to_string).collect();
        let _ = writeln!(text, "        ip saddr {{ {} }} drop", list.join(", "));
    }
    for (address, percent) in lossy {
        let _ = writeln!(text, "        ip saddr {address} numgen random mod 100 < {percent} drop");
    }
    // Nodes have IPv4 addresses only; an IPv6 packet between them would slip past the rules.
    text.push_str("        meta nfproto ipv6 iifname != \"lo\" drop\n");
    text.push_str("    }\n}\n");
    text
}

/// The nftables script that removes the lab's table (and succeeds when there is none).
pub fn nft_heal() -> String {
    format!("add table {NFT_TABLE}\ndelete table {NFT_TABLE}\n")
}

/// The `tc` arguments that give a node's device `delay`, or remove any delay (`None`). Run
/// inside the node's namespace. Removing fails when the device has no delay, so the caller
/// removes only a delay it set.
pub fn netem_args(delay: Option<Delay>) -> Vec<String> {
    let mut args: Vec<String> = ["qdisc", "replace", "dev", NODE_DEVICE, "root", "netem"]
        .into_iter()
        .map(String::from)
        .collect();
    match delay {
        None => {
            args[1] = "del".into();
            args.truncate(5);
        }
        Some(delay) => {
            args.extend(["delay".to_string(), format!("{}ms", delay.ms)]);
            if delay.jitter_ms > 0 {
                args.push(format!("{}ms", delay.jitter_ms));
            }
        }
    }
    args
}
