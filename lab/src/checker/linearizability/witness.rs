//! A small witness for a violation: the shortest prefix of the key's history that cannot be
//! linearized, shrunk to the operations a person needs to see.

use std::fmt;

use super::register::calls;
use super::search::{SearchResult, search};
use crate::history::{OpFunction, OpType, OpValue, Operation};
use crate::limits;

/// Operations on one key that admit no legal order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witness {
    /// The key.
    pub key: String,
    /// The history stops being linearizable at this record index: the history up to and
    /// including it cannot be linearized, the history before it can (within the budget).
    pub cut_index: u64,
    /// The operations involved, in invocation order. A completion after `cut_index` is left
    /// out: in the prefix, that operation had no reply yet.
    pub operations: Vec<Operation>,
}

/// Builds the witness for `operations` on `key`, which are known not to be linearizable.
pub(super) fn find_witness(key: &str, operations: &[Operation]) -> Witness {
    let mut records: Vec<u64> = Vec::new();
    for operation in operations {
        records.push(operation.invoke.index);
        records.extend(operation.completion.as_ref().map(|completion| completion.index));
    }
    records.sort_unstable();
    let cut_index = shortest_illegal_prefix(operations, &records);
    let cut = cut_index.saturating_add(1);
    let mut skip: Vec<bool> = operations.iter().map(|op| op.invoke.index >= cut).collect();
    // Failed operations never happened, and reads without a reply in the prefix say nothing.
    for (position, operation) in operations.iter().enumerate() {
        let outcome = operation.completion.as_ref().filter(|c| c.index < cut).map(|c| c.op_type);
        let is_read = operation.invoke.f == OpFunction::Read;
        skip[position] |= outcome == Some(OpType::Fail) || (is_read && outcome != Some(OpType::Ok));
    }
    if skip.iter().filter(|skipped| !**skipped).count() <= limits::WITNESS_SHRINK_OPS_MAX {
        shrink(operations, cut, &mut skip);
    }
    let kept = operations.iter().zip(&skip).filter(|(_, skipped)| !**skipped);
    let operations = kept
        .map(|(operation, _)| Operation {
            invoke: operation.invoke.clone(),
            completion: operation.completion.clone().filter(|completion| completion.index < cut),
        })
        .collect();
    Witness { key: key.to_string(), cut_index, operations }
}

/// The last record of the shortest illegal prefix, by binary search: linearizability of
/// prefixes is monotonic (an illegal prefix stays illegal as the history grows). A prefix the
/// budget cannot decide counts as legal, so the answer is always a proven-illegal prefix.
fn shortest_illegal_prefix(operations: &[Operation], records: &[u64]) -> u64 {
    let illegal = |length: usize| {
        let cut = records[length - 1].saturating_add(1);
        let prefix = calls(operations, Some(cut), &[]);
        search(&prefix, limits::WITNESS_STATES_MAX) == SearchResult::Illegal
    };
    let (mut legal_length, mut illegal_length) = (0, records.len());
    while illegal_length - legal_length > 1 {
        let middle = legal_length + (illegal_length - legal_length) / 2;
        if illegal(middle) { illegal_length = middle } else { legal_length = middle }
    }
    records.get(illegal_length.wrapping_sub(1)).copied().unwrap_or_default()
}

/// Leaves out operations one at a time, latest first, while the rest stays illegal. Only
/// removals that cannot make a legal history illegal are tried: reads, and writes whose value
/// no remaining operation observes. So the shrunk witness is a proof on its own.
fn shrink(operations: &[Operation], cut: u64, skip: &mut [bool]) {
    for position in (0..operations.len()).rev() {
        if skip[position] || is_observed(operations, skip, position) {
            continue;
        }
        skip[position] = true;
        let rest = calls(operations, Some(cut), skip);
        if search(&rest, limits::WITNESS_STATES_MAX) != SearchResult::Illegal {
            skip[position] = false;
        }
    }
}

/// Whether the value written by the operation at `position` is read, or expected by a CAS, by
/// another operation still in the witness.
fn is_observed(operations: &[Operation], skip: &[bool], position: usize) -> bool {
    let written = match &operations[position].invoke.value {
        OpValue::Value(value) if operations[position].invoke.f == OpFunction::Write => value,
        OpValue::Cas { new, .. } => new,
        _ => return false,
    };
    operations.iter().enumerate().any(|(other, operation)| {
        let observes = match (operation.invoke.f, operation.value()) {
            (OpFunction::Read, OpValue::Value(value)) => value == written,
            (OpFunction::Cas, OpValue::Cas { expected: Some(expected), .. }) => expected == written,
            _ => false,
        };
        other != position && !skip[other] && observes
    })
}

impl fmt::Display for Witness {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            formatter,
            "key {:?}: no order of these {} operations fits a register; the history stops being \
             linearizable at index {}:",
            self.key,
            self.operations.len(),
            self.cut_index
        )?;
        for operation in &self.operations {
            writeln!(formatter, "  {}", describe(operation))?;
        }
        Ok(())
    }
}

/// One operation on one line: `index 4..7  process 2  read -> ok "1"`.
pub fn describe(operation: &Operation) -> String {
    let invoke = &operation.invoke;
    let span = match &operation.completion {
        Some(completion) => format!("{}..{}", invoke.index, completion.index),
        None => format!("{}..", invoke.index),
    };
    let call = match invoke.f {
        OpFunction::Read => "read".to_string(),
        _ => format!("{} {}", invoke.f, invoke.value),
    };
    let result = match (&operation.completion, invoke.f) {
        (None, _) => "no reply (yet)".to_string(),
        (Some(completion), OpFunction::Read) if completion.op_type == OpType::Ok => {
            format!("ok {}", completion.value)
        }
        (Some(completion), _) => completion.op_type.to_string(),
    };
    let node = invoke.node.map(|node| format!("  via node {node}")).unwrap_or_default();
    format!("index {span:<12} process {:<4} {call} -> {result}{node}", invoke.process)
}
