//! The failover check: after the leader is lost, a new leader is elected and writes resume
//! within a bound.
//!
//! A *leader loss* is a `fault_start` event whose fault takes a node down (kill, terminate,
//! pause, wipe_and_rejoin, or crash_actor of the raft actor) or cuts it off (a network
//! partition: the runner names the node of an `isolate`, and the leader when any other
//! partition leaves it without a majority) on the node that the last `leader` event named. From it, the check measures the time to the next `leader` event and
//! to the completion of the first acknowledged write or CAS invoked after the loss.

use super::verdict::{CheckVerdict, seconds};
use crate::history::{Event, EventKind, Events, History, OpFunction, OpType};
use crate::scenario::{CheckKind, FaultKind, NodeIndex};

/// Applies the rule above with `bound_ms` for both the new leader and the first write.
pub fn check_failover(history: &History, events: &Events, bound_ms: u64) -> CheckVerdict {
    let check = CheckKind::Failover;
    let bound_ns = bound_ms.saturating_mul(1_000_000);
    let losses = leader_losses(events);
    if losses.is_empty() {
        return CheckVerdict::unknown(check, "no fault took down a node while it was the leader");
    }
    let writes: Vec<(u64, u64)> = history
        .operations()
        .iter()
        .filter(|op| op.invoke.f != OpFunction::Read && op.outcome() == OpType::Ok)
        .filter_map(|op| Some((op.invoke.time_ns, op.completion.as_ref()?.time_ns)))
        .collect();
    let (mut failures, mut passes) = (Vec::new(), Vec::new());
    for (leader, loss) in losses {
        let lost =
            format!("leader node {leader} lost at {} ({})", seconds(loss.time_ns), loss.detail);
        let next_leader = events.of_kind(EventKind::Leader).find(|e| e.time_ns > loss.time_ns);
        let first_write = writes
            .iter()
            .filter(|(invoke, _)| *invoke >= loss.time_ns)
            .map(|(_, done)| *done)
            .min();
        let after = |time_ns: u64| seconds(time_ns - loss.time_ns);
        match (next_leader, first_write) {
            (None, _) => failures.push(format!("{lost}: no new leader was observed")),
            (_, None) => failures.push(format!("{lost}: no write succeeded afterwards")),
            (Some(new), Some(write)) => {
                let led = format!("node {} led after {}", node_name(new.node), after(new.time_ns));
                let wrote = format!("writes resumed after {}", after(write));
                let summary = format!("{lost}: {led}, {wrote}");
                let slow = new.time_ns - loss.time_ns > bound_ns || write - loss.time_ns > bound_ns;
                if slow {
                    failures.push(format!("{summary}, over the bound of {bound_ms} ms"));
                } else {
                    passes.push(summary);
                }
            }
        }
    }
    if failures.is_empty() {
        CheckVerdict::pass(check, passes.join("\n"))
    } else {
        CheckVerdict::fail(check, failures.join("\n"))
    }
}

/// Each fault that took down the current leader, with that leader.
fn leader_losses(events: &Events) -> Vec<(NodeIndex, &Event)> {
    let mut leader: Option<NodeIndex> = None;
    let mut losses = Vec::new();
    for event in events.events() {
        match event.kind {
            EventKind::Leader => leader = event.node,
            EventKind::FaultStart
                if takes_node_down(event) && event.node.is_some() && event.node == leader =>
            {
                losses.push((event.node.unwrap_or_default(), event));
                leader = None;
            }
            _ => {}
        }
    }
    losses
}

/// Whether a `fault_start` stops the node from leading.
fn takes_node_down(event: &Event) -> bool {
    if event.network_fault_kind().is_some_and(|kind| kind.is_partition()) {
        return true;
    }
    match event.fault_kind() {
        Some(
            FaultKind::Kill | FaultKind::Terminate | FaultKind::Pause | FaultKind::WipeAndRejoin,
        ) => true,
        Some(FaultKind::CrashActor) => event.detail.split_whitespace().nth(1) == Some("raft"),
        _ => false,
    }
}

fn node_name(node: Option<NodeIndex>) -> String {
    node.map_or("?".to_string(), |node| node.to_string())
}
