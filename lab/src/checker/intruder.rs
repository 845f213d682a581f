//! The no-intruder check: a stranger that holds the cluster's ticket but not its cookie never
//! gets into the cluster, and the members did turn it away.
//!
//! The runner's `intruder` step starts the stranger (see `runner/intruder.rs`); this check
//! judges what the members report about it afterwards:
//! - no member's peer book holds it, by node id or by endpoint id (gossip discovery never took
//!   it in);
//! - no member's membership names it, by node id or by endpoint id;
//! - at least one member refused a Raft RPC connection since the intruder started, which is
//!   the evidence that its packets did reach the members: without it, an intruder that never
//!   got through to anyone would pass for one that was kept out.
//!
//! Caveats:
//! - The node counts refused connections, not who made them; in a run whose membership does
//!   not change after the intruder starts, every refusal is the intruder's.
//! - The intruder's own count of gossip announcements sent is shown, not judged: a node with
//!   another cookie gossips on its own topic, which no member joins, so it never finds a
//!   neighbour to announce itself to.

use super::verdict::{CheckVerdict, nodes};
use crate::scenario::{CheckKind, NodeIndex};

/// The stranger, as the lab started it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intruder {
    /// Its Raft node id (no member's).
    pub node_id: u64,
    /// Its iroh endpoint id, in hex.
    pub endpoint_id: String,
    /// Gossip announcements it reports having sent; `None` if it did not answer.
    pub announcements_sent: Option<u64>,
}

/// A node as one member knows it: its Raft node id and its endpoint id (hex), if known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownNode {
    /// The node id.
    pub node_id: u64,
    /// The endpoint id, in hex; `None` when the member has no endpoint for it.
    pub endpoint_id: Option<String>,
}

/// What one member reports when the check runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberReport {
    /// The member.
    pub node: NodeIndex,
    /// Every peer in its peer book (`GET /peers`); `None` if it did not answer.
    pub peers: Option<Vec<KnownNode>>,
    /// Every node of its membership, voters and learners (`GET /cluster/state`); `None` if it
    /// did not answer.
    pub membership: Option<Vec<KnownNode>>,
    /// Raft RPC connections it refused since the intruder started (`GET /metrics`); `None` if
    /// it did not answer.
    pub refused_since_intruder: Option<u64>,
}

/// Fails when some member's peer book or membership holds the intruder; is undecided when no
/// intruder ran, a member did not answer, the intruder did not answer, or no member refused a
/// connection (no evidence that the intruder reached the cluster); passes otherwise, with the
/// numbers found.
pub fn check_no_intruder(intruder: Option<&Intruder>, members: &[MemberReport]) -> CheckVerdict {
    let check = CheckKind::NoIntruder;
    let Some(intruder) = intruder else {
        return CheckVerdict::unknown(check, "no intruder was started");
    };
    if members.is_empty() {
        return CheckVerdict::unknown(check, "no member reported");
    }
    let found = intruder_sightings(intruder, members);
    if !found.is_empty() {
        return CheckVerdict::fail(check, found.join("\n"));
    }
    let mut missing = Vec::new();
    for (what, silent) in [
        ("/peers", silent(members, |m| m.peers.is_none())),
        ("/cluster/state", silent(members, |m| m.membership.is_none())),
        ("/metrics", silent(members, |m| m.refused_since_intruder.is_none())),
    ] {
        if !silent.is_empty() {
            missing.push(format!("{} did not answer {what}", nodes(&silent)));
        }
    }
    if intruder.announcements_sent.is_none() {
        missing.push("the intruder did not answer /metrics: it was not running".to_string());
    }
    if !missing.is_empty() {
        return CheckVerdict::unknown(check, missing.join("\n"));
    }
    let refused: u64 = members.iter().filter_map(|m| m.refused_since_intruder).sum();
    if refused == 0 {
        return CheckVerdict::unknown(
            check,
            format!(
                "no member refused a Raft RPC connection since the intruder started: no \
                 evidence that {} reached the cluster",
                name(intruder)
            ),
        );
    }
    CheckVerdict::pass(check, pass_reason(intruder, members, refused))
}

/// One line per member whose peer book or membership holds the intruder.
fn intruder_sightings(intruder: &Intruder, members: &[MemberReport]) -> Vec<String> {
    let is_intruder = |known: &KnownNode| {
        known.node_id == intruder.node_id
            || known.endpoint_id.as_deref() == Some(intruder.endpoint_id.as_str())
    };
    let mut found = Vec::new();
    for member in members {
        for (place, list) in [("peer book", &member.peers), ("membership", &member.membership)] {
            let sightings = list.iter().flatten().filter(|known| is_intruder(known));
            for known in sightings {
                let endpoint = known.endpoint_id.as_deref().map_or("none", short);
                found.push(format!(
                    "node {}'s {place} holds {} as node {} at endpoint {endpoint}",
                    member.node,
                    name(intruder),
                    known.node_id
                ));
            }
        }
    }
    found
}

/// The members for which `unanswered` holds.
fn silent(members: &[MemberReport], unanswered: impl Fn(&MemberReport) -> bool) -> Vec<NodeIndex> {
    members.iter().filter(|m| unanswered(m)).map(|m| m.node).collect()
}

fn pass_reason(intruder: &Intruder, members: &[MemberReport], refused: u64) -> String {
    let per_member: Vec<String> = members
        .iter()
        .map(|m| format!("node {} {}", m.node, m.refused_since_intruder.unwrap_or(0)))
        .collect();
    let sent = intruder.announcements_sent.unwrap_or(0);
    let gossip = match sent {
        0 => "it sent no gossip announcement (no member joins the topic of another cookie)"
            .to_string(),
        sent => format!("it sent {sent} gossip announcements"),
    };
    format!(
        "{} members: {} is in no peer book and no membership; they refused {refused} of its Raft \
         RPC connections ({}); {gossip}",
        members.len(),
        name(intruder),
        per_member.join(", ")
    )
}

/// `the intruder (node 100, endpoint 1a2b3c4d5e)`.
fn name(intruder: &Intruder) -> String {
    format!("the intruder (node {}, endpoint {})", intruder.node_id, short(&intruder.endpoint_id))
}

/// The first ten characters of an endpoint id, as iroh's short form shows it.
fn short(endpoint_id: &str) -> &str {
    endpoint_id.get(..10).unwrap_or(endpoint_id)
}
