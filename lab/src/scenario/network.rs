//! Network faults of a scenario: partitions, delay, loss and heal, for `network: "netns"`.
//!
//! A network fault is written as a one-field object named after its kind
//! (`{"isolate": {"node": "leader"}}`), or as a bare string for the kinds that take no fields
//! (`"bridge"`, `"majorities_ring"`, `"heal"`). [`check_network_fault`] checks what the types
//! cannot say, with the node indexes known at that point of the script.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::model::{Network, NodeIndex};
use super::node_selector::NodeSelector;
use super::validate::{FieldError, NodeScope};
use crate::limits;

#[cfg(test)]
mod tests;

/// A fault of the network between nodes. The lab's own traffic to the nodes is never cut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkFault {
    /// Cut one node off from every other node.
    Isolate(IsolateFault),
    /// Cut the nodes into groups that talk within themselves only (a majority and a minority,
    /// or any other split).
    Split(SplitFault),
    /// Drop the packets of one node to another; the other way still works.
    OneWay(OneWayFault),
    /// Two halves that cannot talk, and one node in the middle that talks to both.
    Bridge,
    /// Every node sees a majority, and no two nodes see the same one.
    MajoritiesRing,
    /// Delay the packets a node (or every node) sends.
    Delay(DelayFault),
    /// Lose a share of the packets a node (or every node) sends to other nodes.
    Loss(LossFault),
    /// Remove every partition, delay and loss.
    Heal,
}

impl NetworkFault {
    /// The fault's kind, as written in scenario files and at the start of event details.
    pub fn kind(&self) -> NetworkFaultKind {
        match self {
            NetworkFault::Isolate(_) => NetworkFaultKind::Isolate,
            NetworkFault::Split(_) => NetworkFaultKind::Split,
            NetworkFault::OneWay(_) => NetworkFaultKind::OneWay,
            NetworkFault::Bridge => NetworkFaultKind::Bridge,
            NetworkFault::MajoritiesRing => NetworkFaultKind::MajoritiesRing,
            NetworkFault::Delay(_) => NetworkFaultKind::Delay,
            NetworkFault::Loss(_) => NetworkFaultKind::Loss,
            NetworkFault::Heal => NetworkFaultKind::Heal,
        }
    }

    /// Whether this fault cuts links (rather than slowing them or healing).
    pub fn is_partition(&self) -> bool {
        self.kind().is_partition()
    }
}

/// The kinds of network fault, without their fields (for a nemesis to draw from).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkFaultKind {
    /// See [`NetworkFault::Isolate`].
    Isolate,
    /// See [`NetworkFault::Split`].
    Split,
    /// See [`NetworkFault::OneWay`].
    OneWay,
    /// See [`NetworkFault::Bridge`].
    Bridge,
    /// See [`NetworkFault::MajoritiesRing`].
    MajoritiesRing,
    /// See [`NetworkFault::Delay`].
    Delay,
    /// See [`NetworkFault::Loss`].
    Loss,
    /// See [`NetworkFault::Heal`].
    Heal,
}

impl NetworkFaultKind {
    /// Every kind, in declaration order.
    pub const ALL: [NetworkFaultKind; 8] = [
        NetworkFaultKind::Isolate,
        NetworkFaultKind::Split,
        NetworkFaultKind::OneWay,
        NetworkFaultKind::Bridge,
        NetworkFaultKind::MajoritiesRing,
        NetworkFaultKind::Delay,
        NetworkFaultKind::Loss,
        NetworkFaultKind::Heal,
    ];

    /// The kind's name as written in scenario files and in events.
    pub fn name(self) -> &'static str {
        match self {
            NetworkFaultKind::Isolate => "isolate",
            NetworkFaultKind::Split => "split",
            NetworkFaultKind::OneWay => "one_way",
            NetworkFaultKind::Bridge => "bridge",
            NetworkFaultKind::MajoritiesRing => "majorities_ring",
            NetworkFaultKind::Delay => "delay",
            NetworkFaultKind::Loss => "loss",
            NetworkFaultKind::Heal => "heal",
        }
    }

    /// The kind with this name.
    pub fn from_name(name: &str) -> Option<NetworkFaultKind> {
        NetworkFaultKind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// Whether faults of this kind cut links.
    pub fn is_partition(self) -> bool {
        matches!(
            self,
            NetworkFaultKind::Isolate
                | NetworkFaultKind::Split
                | NetworkFaultKind::OneWay
                | NetworkFaultKind::Bridge
                | NetworkFaultKind::MajoritiesRing
        )
    }
}

impl fmt::Display for NetworkFaultKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// Fields of an `isolate` fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsolateFault {
    /// The node cut off: an index, `"leader"` or `"random_follower"`.
    pub node: NodeSelector,
}

/// Fields of a `split` fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitFault {
    /// The groups, by node index: every node of the cluster in exactly one group.
    pub groups: Vec<Vec<NodeIndex>>,
}

/// Fields of a `one_way` fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OneWayFault {
    /// The node whose packets are dropped.
    pub from: NodeSelector,
    /// The node that no longer hears from `from`; its own packets still reach `from`.
    pub to: NodeSelector,
}

/// Fields of a `delay` fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelayFault {
    /// Delay added to each packet, in milliseconds.
    pub ms: u64,
    /// Jitter, in milliseconds either way (at most `ms`; default 0).
    #[serde(default)]
    pub jitter_ms: u64,
    /// The node whose packets are delayed; every node when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeSelector>,
}

/// Fields of a `loss` fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossFault {
    /// Percent of the packets lost (1 to 100).
    pub percent: u32,
    /// The node whose packets to other nodes are lost; every node when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeSelector>,
}

impl fmt::Display for NetworkFault {
    /// The kind first, then its target: the `detail` of the fault's events.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = |node: &Option<NodeSelector>| match node {
            Some(node) => format!("on {node}"),
            None => "on every node".to_string(),
        };
        match self {
            NetworkFault::Isolate(isolate) => write!(formatter, "isolate {}", isolate.node),
            NetworkFault::Split(split) => {
                let groups: Vec<String> = split.groups.iter().map(|g| format!("{g:?}")).collect();
                write!(formatter, "split {}", groups.join(" "))
            }
            NetworkFault::OneWay(one) => write!(formatter, "one_way {} -> {}", one.from, one.to),
            NetworkFault::Delay(delay) => {
                let (ms, jitter) = (delay.ms, delay.jitter_ms);
                write!(formatter, "delay {ms}±{jitter} ms {}", on(&delay.node))
            }
            NetworkFault::Loss(loss) => {
                write!(formatter, "loss {}% {}", loss.percent, on(&loss.node))
            }
            other => formatter.write_str(other.kind().name()),
        }
    }
}

/// Checks a network fault at `path` (`steps[4].network_fault`) against the scenario's network
/// mode and the nodes that exist at that point of the script.
pub fn check_network_fault(
    path: &str,
    fault: &NetworkFault,
    network: Network,
    scope: &NodeScope,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if network != Network::Netns {
        errors.push(FieldError::new(path, r#"network faults need "network": "netns""#));
    }
    let field = |name: &str| format!("{path}.{}.{name}", fault.kind());
    let mut node = |name: &str, selector: NodeSelector| {
        errors.extend(scope.check_node(field(name), selector));
    };
    match fault {
        NetworkFault::Isolate(isolate) => node("node", isolate.node),
        NetworkFault::OneWay(one_way) => {
            node("from", one_way.from);
            node("to", one_way.to);
            if one_way.from == one_way.to && one_way.from != NodeSelector::RandomFollower {
                errors.push(FieldError::new(field("to"), "must differ from `from`"));
            }
        }
        NetworkFault::Delay(delay) => {
            delay.node.into_iter().for_each(|selector| node("node", selector));
            let max = limits::NETWORK_DELAY_MS_MAX;
            if !(1..=max).contains(&delay.ms) {
                let message = format!("expected 1 to {max}, got {}", delay.ms);
                errors.push(FieldError::new(field("ms"), message));
            }
            if delay.jitter_ms > delay.ms {
                let message =
                    format!("expected at most ms ({}), got {}", delay.ms, delay.jitter_ms);
                errors.push(FieldError::new(field("jitter_ms"), message));
            }
        }
        NetworkFault::Loss(loss) => {
            loss.node.into_iter().for_each(|selector| node("node", selector));
            let max = limits::NETWORK_LOSS_PERCENT_MAX;
            if !(1..=max).contains(&loss.percent) {
                let message = format!("expected 1 to {max}, got {}", loss.percent);
                errors.push(FieldError::new(field("percent"), message));
            }
        }
        NetworkFault::Split(split) => check_split(&field("groups"), split, scope, &mut errors),
        NetworkFault::Bridge if scope.live() < 3 => {
            errors.push(FieldError::new(format!("{path}.bridge"), "needs 3 or more nodes"));
        }
        NetworkFault::MajoritiesRing if scope.live() < 4 => {
            let message = "needs 4 or more nodes (with 3, every node sees every other)";
            errors.push(FieldError::new(format!("{path}.majorities_ring"), message));
        }
        NetworkFault::Bridge | NetworkFault::MajoritiesRing | NetworkFault::Heal => {}
    }
    errors
}

/// Two or more non-empty groups; every node that exists in one group, and only in one.
fn check_split(path: &str, split: &SplitFault, scope: &NodeScope, errors: &mut Vec<FieldError>) {
    if split.groups.len() < 2 {
        errors.push(FieldError::new(path, "needs 2 or more groups"));
    }
    let mut seen: BTreeMap<NodeIndex, usize> = BTreeMap::new();
    for (group_index, group) in split.groups.iter().enumerate() {
        let group_path = format!("{path}[{group_index}]");
        if group.is_empty() {
            errors.push(FieldError::new(&group_path, "is empty"));
        }
        for (position, node) in group.iter().enumerate() {
            let node_path = format!("{group_path}[{position}]");
            if let Some(first) = seen.insert(*node, group_index) {
                let message = format!("node {node} is already in groups[{first}]");
                errors.push(FieldError::new(node_path, message));
            } else {
                errors.extend(scope.check_node(node_path, NodeSelector::Index(*node)));
            }
        }
    }
    for node in scope.indexes().filter(|node| !seen.contains_key(node)) {
        errors.push(FieldError::new(path, format!("node {node} is in no group")));
    }
}
