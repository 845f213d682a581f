//! The durability check: every acknowledged write is readable at the end, unless a later
//! operation replaced it.
//!
//! The rule, from the history alone. For each key, the *final read* is the last `ok` read
//! invoked after every acknowledged write or CAS on the key completed (the runner reads every
//! key once the faults are healed). An acknowledged write of `v` survives if the final read
//! returns `v`, or if it returns a value written by another write or CAS (`ok` or `info`) that
//! did not complete before the acknowledged one was invoked, and so may have replaced it. A
//! final read that returns anything else, or nothing, means the acknowledged write was lost.

use std::collections::BTreeSet;

use super::verdict::{CheckVerdict, seconds};
use crate::history::{History, OpFunction, OpType, OpValue, Operation};
use crate::scenario::CheckKind;

/// Applies the rule above to every key; the reason names the first lost writes by key, value,
/// node and time.
pub fn check_durability(history: &History) -> CheckVerdict {
    let check = CheckKind::Durability;
    let (mut acknowledged, mut keys_without_final_read) = (0, BTreeSet::new());
    let mut lost = Vec::new();
    for (key, operations) in history.operations_by_key() {
        let writes: Vec<&Operation> = operations
            .iter()
            .filter(|op| written(op).is_some() && op.outcome() == OpType::Ok)
            .collect();
        if writes.is_empty() {
            continue;
        }
        acknowledged += writes.len();
        let Some(final_read) = final_read(&operations, &writes) else {
            keys_without_final_read.insert(key);
            continue;
        };
        let final_value = read_value(final_read);
        for write in writes {
            if !survives(write, final_value, &operations) {
                lost.push(describe_loss(&key, write, final_read));
            }
        }
    }
    if !lost.is_empty() {
        let count = lost.len();
        lost.truncate(5);
        let more =
            if count > 5 { format!("\n({} more lost writes)", count - 5) } else { String::new() };
        return CheckVerdict::fail(check, format!("{}{more}", lost.join("\n")));
    }
    if let Some(key) = keys_without_final_read.first() {
        let reason = format!(
            "key {key:?} (and {} other keys) has no read after its last acknowledged write; \
             the runner reads every key at the end",
            keys_without_final_read.len() - 1
        );
        return CheckVerdict::unknown(check, reason);
    }
    CheckVerdict::pass(
        check,
        format!("all {acknowledged} acknowledged writes are readable at the end"),
    )
}

/// The value a write or CAS writes.
fn written(operation: &Operation) -> Option<&str> {
    match (&operation.invoke.f, &operation.invoke.value) {
        (OpFunction::Write, OpValue::Value(value)) => Some(value),
        (OpFunction::Cas, OpValue::Cas { new, .. }) => Some(new),
        _ => None,
    }
}

/// The value an ok read returned.
fn read_value(read: &Operation) -> Option<&str> {
    match read.value() {
        OpValue::Value(value) => Some(value),
        _ => None,
    }
}

/// The last ok read invoked after every acknowledged write completed.
fn final_read<'a>(operations: &'a [Operation], writes: &[&Operation]) -> Option<&'a Operation> {
    let last_ack = writes.iter().filter_map(|w| w.completion.as_ref()).map(|c| c.index).max()?;
    operations
        .iter()
        .filter(|op| op.invoke.f == OpFunction::Read && op.outcome() == OpType::Ok)
        .filter(|op| op.invoke.index > last_ack)
        .max_by_key(|op| op.invoke.index)
}

/// Whether the acknowledged `write` is still visible in `final_value`, or was replaced by an
/// operation that may have come after it.
fn survives(write: &Operation, final_value: Option<&str>, operations: &[Operation]) -> bool {
    let Some(final_value) = final_value else { return false };
    if written(write) == Some(final_value) {
        return true;
    }
    operations.iter().any(|other| {
        let may_follow = other.completion.as_ref().is_none_or(|c| c.index > write.invoke.index);
        let took_effect = matches!(other.outcome(), OpType::Ok | OpType::Info);
        other.invoke.index != write.invoke.index
            && took_effect
            && may_follow
            && written(other) == Some(final_value)
    })
}

fn describe_loss(key: &str, write: &Operation, final_read: &Operation) -> String {
    let value = written(write).unwrap_or_default();
    let acknowledged_at = write.completion.as_ref().map_or(0, |c| c.time_ns);
    let by = write.invoke.node.map(|node| format!(" by node {node}")).unwrap_or_default();
    let read_by = final_read.invoke.node.map(|node| format!(" on node {node}")).unwrap_or_default();
    let found = read_value(final_read).map_or("the key absent".to_string(), |v| format!("{v:?}"));
    format!(
        "key {key:?}: {} of {value:?} acknowledged{by} at {} is lost: the final read{read_by} \
         at {} found {found}, which no operation that may follow the write wrote",
        write.invoke.f,
        seconds(acknowledged_at),
        seconds(final_read.invoke.time_ns),
    )
}
