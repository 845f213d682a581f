//! The liveness check: after every heal, every node makes progress again within a bound.
//!
//! A *heal* is a `fault_end` that ends every fault (a `heal` step, the heal before the final
//! checks) or the whole network ([`NETWORK_HEAL`](crate::history::NETWORK_HEAL)). After each one, every node that is a member
//! at the end, had started by then and was not down must complete an acknowledged write (or
//! CAS) and a successful linearizable read sent to it, both invoked after the heal and completed
//! within the bound. The runner sends such a pair to every node after each heal (and the
//! workload may supply them too). A run without heals passes when the first operation invoked
//! after its last recovery (or the start) that succeeds does so within the bound.
//!
//! The bound comes from the nodes' election timeout ([`liveness_bound_ms`]): a few elections
//! for the cluster to settle after a heal, plus a margin for connections to be dialled again.

use std::collections::BTreeSet;

use super::verdict::{CheckVerdict, seconds};
use crate::history::{EventKind, Events, History, OpFunction, OpType};
use crate::limits;
use crate::scenario::{CheckKind, FaultKind, NodeIndex};

/// The liveness bound for nodes whose largest election timeout is `election_timeout_max_ms`.
pub fn liveness_bound_ms(election_timeout_max_ms: u64) -> u64 {
    election_timeout_max_ms
        .saturating_mul(limits::LIVENESS_ELECTION_TIMEOUTS)
        .saturating_add(limits::LIVENESS_MARGIN_MS)
}

/// Applies the rule above to the `members` at the end of the run.
pub fn check_liveness(
    history: &History,
    events: &Events,
    members: &[NodeIndex],
    bound_ms: u64,
) -> CheckVerdict {
    let check = CheckKind::Liveness;
    let heals: Vec<u64> =
        events.events().iter().filter(|e| e.is_heal()).map(|e| e.time_ns).collect();
    if heals.is_empty() {
        return first_success(history, events, bound_ms);
    }
    let (mut failures, mut passes) = (Vec::new(), Vec::new());
    for heal_ns in heals {
        let nodes = expected_nodes(events, members, heal_ns);
        let mut slowest = 0;
        for node in &nodes {
            match node_progress(history, *node, heal_ns, bound_ms) {
                Ok(waited_ns) => slowest = slowest.max(waited_ns),
                Err(missing) => failures.push(format!(
                    "after the heal at {}, node {node}: {missing} within {bound_ms} ms",
                    seconds(heal_ns)
                )),
            }
        }
        passes.push(format!(
            "after the heal at {}: {} nodes wrote and read, the last after {}",
            seconds(heal_ns),
            nodes.len(),
            seconds(slowest)
        ));
    }
    if failures.is_empty() {
        CheckVerdict::pass(check, passes.join("\n"))
    } else {
        CheckVerdict::fail(check, failures.join("\n"))
    }
}

/// The members that had started by `heal_ns` and were not down (killed, terminated, paused,
/// being wiped) at that moment.
fn expected_nodes(events: &Events, members: &[NodeIndex], heal_ns: u64) -> Vec<NodeIndex> {
    let started: BTreeSet<NodeIndex> = events
        .of_kind(EventKind::NodeStart)
        .filter(|event| event.time_ns <= heal_ns)
        .filter_map(|event| event.node)
        .collect();
    let down: BTreeSet<NodeIndex> = events
        .fault_windows(u64::MAX)
        .into_iter()
        .filter(|window| window.start_ns <= heal_ns && window.end_ns > heal_ns)
        .filter(|window| {
            let kind = FaultKind::from_name(window.detail.split_whitespace().next().unwrap_or(""));
            matches!(
                kind,
                Some(
                    FaultKind::Kill
                        | FaultKind::Terminate
                        | FaultKind::Pause
                        | FaultKind::WipeAndRejoin
                )
            )
        })
        .filter_map(|window| window.node)
        .collect();
    members.iter().copied().filter(|n| started.contains(n) && !down.contains(n)).collect()
}

/// How long after `heal_ns` node `node` had both an acknowledged write and a successful read,
/// or what it lacked within the bound.
fn node_progress(
    history: &History,
    node: NodeIndex,
    heal_ns: u64,
    bound_ms: u64,
) -> Result<u64, &'static str> {
    let deadline_ns = heal_ns.saturating_add(bound_ms.saturating_mul(1_000_000));
    let first = |read: bool| {
        history
            .operations()
            .iter()
            .filter(|op| op.invoke.node == Some(node) && op.invoke.time_ns >= heal_ns)
            .filter(|op| (op.invoke.f == OpFunction::Read) == read && op.outcome() == OpType::Ok)
            .filter_map(|op| op.completion.as_ref().map(|c| c.time_ns))
            .filter(|done| *done <= deadline_ns)
            .min()
    };
    match (first(false), first(true)) {
        (None, _) => Err("no acknowledged write"),
        (_, None) => Err("no successful read"),
        (Some(write), Some(read)) => Ok(write.max(read) - heal_ns),
    }
}

/// The rule of a run without heals: the first operation invoked after the last `fault_end` (or
/// after the start, in a run without faults) that succeeds does so within the bound.
fn first_success(history: &History, events: &Events, bound_ms: u64) -> CheckVerdict {
    let check = CheckKind::Liveness;
    let healed_ns = events.of_kind(EventKind::FaultEnd).map(|e| e.time_ns).max().unwrap_or(0);
    let since = if healed_ns == 0 {
        "the start".to_string()
    } else {
        format!("the last fault healed at {}", seconds(healed_ns))
    };
    let operations = history.operations();
    let after: Vec<_> = operations.iter().filter(|op| op.invoke.time_ns >= healed_ns).collect();
    if after.is_empty() {
        return CheckVerdict::unknown(check, format!("no operation was invoked after {since}"));
    }
    let first_ok = after
        .iter()
        .filter(|op| op.outcome() == OpType::Ok)
        .filter_map(|op| op.completion.as_ref())
        .min_by_key(|completion| completion.time_ns);
    let Some(first_ok) = first_ok else {
        return CheckVerdict::fail(
            check,
            format!("none of the {} operations invoked after {since} succeeded", after.len()),
        );
    };
    let waited_ns = first_ok.time_ns - healed_ns;
    let node = first_ok.node.map(|node| format!(" via node {node}")).unwrap_or_default();
    let reason =
        format!("the first operation after {since} succeeded{node} after {}", seconds(waited_ns));
    if waited_ns > bound_ms.saturating_mul(1_000_000) {
        CheckVerdict::fail(check, format!("{reason}, over the bound of {bound_ms} ms"))
    } else {
        CheckVerdict::pass(check, reason)
    }
}
