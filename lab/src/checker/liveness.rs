//! The liveness check: once the last fault is healed, operations succeed again within a bound.

use super::verdict::{CheckVerdict, seconds};
use crate::history::{EventKind, Events, History, OpType};
use crate::scenario::CheckKind;

/// Passes when the first operation invoked after the last `fault_end` (or after the start, in a
/// run without faults) that succeeds does so within `bound_ms` of that point.
pub fn check_liveness(history: &History, events: &Events, bound_ms: u64) -> CheckVerdict {
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
