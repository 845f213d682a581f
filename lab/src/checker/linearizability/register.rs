//! The register model: a key's operations turned into calls the search can apply.

use std::collections::{BTreeMap, BTreeSet};

use crate::history::{OpFunction, OpType, OpValue, Operation};

/// A value, interned: 0 is "absent", every distinct string gets its own number.
pub(super) type ValueId = u32;

/// The id of the absent value, the register's initial state.
pub(super) const ABSENT: ValueId = 0;

/// What a call does to the register.
#[derive(Debug, Clone, Copy)]
pub(super) enum Effect {
    /// Returns the value; legal only if the register holds it.
    Read(ValueId),
    /// Sets the value; always legal.
    Write(ValueId),
    /// Sets `new` if the register holds `expected`; legal only then (a CAS that did not swap
    /// is recorded as `fail` and never reaches the search).
    Cas(ValueId, ValueId),
}

impl Effect {
    /// The register's state after this call, or `None` if the call cannot happen in `state`.
    pub(super) fn apply(self, state: ValueId) -> Option<ValueId> {
        match self {
            Effect::Read(value) => (value == state).then_some(state),
            Effect::Write(value) => Some(value),
            Effect::Cas(expected, new) => (expected == state).then_some(new),
        }
    }
}

/// One operation as the search sees it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Call {
    /// Index of the invocation record.
    pub invoke: u64,
    /// Index of the completion record; `u64::MAX` when the call may take effect at any time
    /// after its invocation (`info`, or no reply within the history).
    pub complete: u64,
    /// Whether the call must be linearized (it completed `ok`); others may be left out.
    pub required: bool,
    /// What it does.
    pub effect: Effect,
}

/// The calls of one key's operations, sorted by invocation.
///
/// With `cut`, only the history before record index `cut` counts: later invocations are left
/// out and later completions are treated as no reply yet. `skip[i]` leaves out operation `i`.
/// Failed operations never took effect and reads without a value constrain nothing, so both are
/// left out.
pub(super) fn calls(operations: &[Operation], cut: Option<u64>, skip: &[bool]) -> Vec<Call> {
    let cut = cut.unwrap_or(u64::MAX);
    let mut values: BTreeMap<String, ValueId> = BTreeMap::new();
    let mut intern = |value: Option<&str>| -> ValueId {
        let Some(text) = value else { return ABSENT };
        let next = values.len() as ValueId + 1;
        *values.entry(text.to_string()).or_insert(next)
    };
    let mut calls = Vec::new();
    for (position, operation) in operations.iter().enumerate() {
        if skip.get(position).copied().unwrap_or(false) || operation.invoke.index >= cut {
            continue;
        }
        let completion = operation.completion.as_ref().filter(|completion| completion.index < cut);
        let outcome = completion.map_or(OpType::Info, |completion| completion.op_type);
        let effect = match (operation.invoke.f, outcome, operation.value()) {
            (_, OpType::Fail, _) => continue,
            (OpFunction::Read, OpType::Ok, OpValue::Value(value)) => {
                Effect::Read(intern(Some(value)))
            }
            (OpFunction::Read, OpType::Ok, _) => Effect::Read(ABSENT),
            (OpFunction::Read, _, _) => continue,
            (OpFunction::Write, _, OpValue::Value(value)) => Effect::Write(intern(Some(value))),
            (OpFunction::Cas, _, OpValue::Cas { expected, new }) => {
                Effect::Cas(intern(expected.as_deref()), intern(Some(new)))
            }
            // A well-formed history has no other shapes.
            _ => continue,
        };
        let required = outcome == OpType::Ok;
        let complete = if required { completion.map_or(u64::MAX, |c| c.index) } else { u64::MAX };
        calls.push(Call { invoke: operation.invoke.index, complete, required, effect });
    }
    calls.sort_by_key(|call| call.invoke);
    drop_unobserved_optional_writes(calls)
}

/// Leaves out `info` writes and CAS whose value no read returns and no CAS expects. Such a call
/// can always be left out of a linearization that contains it (nothing between it and the next
/// write looks at the register), so leaving it out loses no linearization, and it spares the
/// search from trying every place for calls that, with unique values, mostly never happened.
fn drop_unobserved_optional_writes(calls: Vec<Call>) -> Vec<Call> {
    let observed: BTreeSet<ValueId> = calls
        .iter()
        .filter_map(|call| match call.effect {
            Effect::Read(value) | Effect::Cas(value, _) => Some(value),
            Effect::Write(_) => None,
        })
        .collect();
    let keep = |call: &Call| match call.effect {
        _ if call.required => true,
        Effect::Write(value) | Effect::Cas(_, value) => observed.contains(&value),
        Effect::Read(_) => true,
    };
    calls.into_iter().filter(keep).collect()
}
