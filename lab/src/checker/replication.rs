//! The replication check: every node reports the same state digest.

use std::collections::BTreeMap;

use super::verdict::{CheckVerdict, nodes};
use crate::scenario::{CheckKind, NodeIndex};

/// What one node reported about its state machine at the end of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    /// The node.
    pub node: NodeIndex,
    /// Its state digest; `None` if it did not answer.
    pub digest: Option<String>,
    /// Its key-value pairs, when the runner could read them; used to name a differing key.
    pub values: Option<BTreeMap<String, String>>,
}

/// Passes when every node answered with the same digest. Otherwise names each node that
/// differs from the largest group (ties go to the group with the lowest node), and the first
/// key on which they differ when both reported their values.
pub fn check_replication(states: &[NodeState]) -> CheckVerdict {
    let check = CheckKind::Replication;
    if states.is_empty() {
        return CheckVerdict::unknown(check, "no node reported its state");
    }
    let silent: Vec<NodeIndex> =
        states.iter().filter(|s| s.digest.is_none()).map(|s| s.node).collect();
    if !silent.is_empty() {
        return CheckVerdict::fail(
            check,
            format!("{} did not report a state digest", nodes(&silent)),
        );
    }
    let mut groups: BTreeMap<&str, Vec<&NodeState>> = BTreeMap::new();
    for state in states {
        groups.entry(state.digest.as_deref().unwrap_or_default()).or_default().push(state);
    }
    if groups.len() == 1 {
        let digest = states[0].digest.as_deref().unwrap_or_default();
        return CheckVerdict::pass(
            check,
            format!("all {} nodes report digest {digest}", states.len()),
        );
    }
    let lowest = |group: &Vec<&NodeState>| group.iter().map(|s| s.node).min().unwrap_or_default();
    let majority = groups
        .values()
        .max_by(|a, b| a.len().cmp(&b.len()).then_with(|| lowest(b).cmp(&lowest(a))))
        .cloned()
        .unwrap_or_default();
    let majority_nodes: Vec<NodeIndex> = majority.iter().map(|s| s.node).collect();
    let mut reasons = Vec::new();
    for state in states.iter().filter(|s| !majority_nodes.contains(&s.node)) {
        reasons.push(describe_difference(state, &majority, &majority_nodes));
    }
    CheckVerdict::fail(check, reasons.join("\n"))
}

/// Why `state` differs from the majority: a key if values are known, else the digests.
fn describe_difference(
    state: &NodeState,
    majority: &[&NodeState],
    majority_nodes: &[NodeIndex],
) -> String {
    let node = state.node;
    let reference = majority[0];
    if let (Some(mine), Some(theirs)) = (&state.values, &reference.values) {
        let keys = mine.keys().chain(theirs.keys());
        if let Some(key) = keys.filter(|key| mine.get(*key) != theirs.get(*key)).min() {
            let show =
                |value: Option<&String>| value.map_or("absent".to_string(), |v| format!("{v:?}"));
            return format!(
                "node {node} differs from {}: key {key:?} is {} on node {node} and {} on node {}",
                nodes(majority_nodes),
                show(mine.get(key)),
                show(theirs.get(key)),
                reference.node
            );
        }
    }
    format!(
        "node {node} reports digest {}, {} report {}",
        state.digest.as_deref().unwrap_or_default(),
        nodes(majority_nodes),
        reference.digest.as_deref().unwrap_or_default()
    )
}
