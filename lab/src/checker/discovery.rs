//! The discovery check: every node knows every other node.

use std::collections::BTreeSet;

use super::verdict::{CheckVerdict, nodes};
use crate::scenario::{CheckKind, NodeIndex};

/// The peers one node knows at the end of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePeers {
    /// The node.
    pub node: NodeIndex,
    /// The nodes in its peer book; `None` if it did not answer.
    pub known: Option<BTreeSet<NodeIndex>>,
}

/// Passes when each listed node knows every other listed node; otherwise names each node and
/// the nodes it is missing.
pub fn check_discovery(peers: &[NodePeers]) -> CheckVerdict {
    let check = CheckKind::Discovery;
    if peers.is_empty() {
        return CheckVerdict::unknown(check, "no node reported its peers");
    }
    let everyone: BTreeSet<NodeIndex> = peers.iter().map(|p| p.node).collect();
    let mut reasons = Vec::new();
    for peer in peers {
        let Some(known) = &peer.known else {
            reasons.push(format!("node {} did not report its peers", peer.node));
            continue;
        };
        let missing: Vec<NodeIndex> =
            everyone.iter().filter(|n| **n != peer.node && !known.contains(n)).copied().collect();
        if !missing.is_empty() {
            reasons.push(format!("node {} does not know {}", peer.node, nodes(&missing)));
        }
    }
    if reasons.is_empty() {
        CheckVerdict::pass(check, format!("each of the {} nodes knows every other", peers.len()))
    } else {
        CheckVerdict::fail(check, reasons.join("\n"))
    }
}
