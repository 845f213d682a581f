//! A whole history: well-formed by construction, read from and written to history.jsonl, and
//! paired into operations for the checkers.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};

use super::jsonl::{self, JsonlError};
use super::op::{Op, OpFunction, OpType, OpValue, ProcessId};

/// Why a history could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// history.jsonl could not be read, or a line is not an operation.
    #[error(transparent)]
    Jsonl(#[from] JsonlError),
    /// The operations do not form a history a client could have produced.
    #[error("{at}: {reason}")]
    Malformed {
        /// Where: `line N` in a file, `op N` (position from 0) in memory.
        at: String,
        /// What is wrong.
        reason: String,
    },
}

/// A well-formed history: indexes increase, time never goes back, each process alternates
/// invocations and completions that match them, and a process that got `info` stays silent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    ops: Vec<Op>,
}

/// An invocation paired with its completion, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// The invocation record.
    pub invoke: Op,
    /// The completion record; `None` when the history ended with the operation in flight,
    /// which means the same as `info`.
    pub completion: Option<Op>,
}

impl Operation {
    /// How the operation ended; an operation without completion counts as `info`.
    pub fn outcome(&self) -> OpType {
        self.completion.as_ref().map_or(OpType::Info, |completion| completion.op_type)
    }

    /// The key the operation touches.
    pub fn key(&self) -> &str {
        &self.invoke.key
    }

    /// The value a read returned (from the completion) or a write's argument (from the
    /// invocation).
    pub fn value(&self) -> &OpValue {
        match (&self.completion, self.invoke.f) {
            (Some(completion), OpFunction::Read) => &completion.value,
            _ => &self.invoke.value,
        }
    }

    /// Time from invocation to completion, in nanoseconds.
    pub fn latency_ns(&self) -> Option<u64> {
        let completion = self.completion.as_ref()?;
        Some(completion.time_ns.saturating_sub(self.invoke.time_ns))
    }
}

impl History {
    /// Builds a history from records in index order, checking that it is well-formed.
    pub fn from_ops(ops: Vec<Op>) -> Result<Self, HistoryError> {
        check_well_formed(&ops).map_err(|(position, reason)| HistoryError::Malformed {
            at: format!("op {position}"),
            reason,
        })?;
        Ok(Self { ops })
    }

    /// Wraps records the recorder already checked one by one.
    pub(super) fn from_recorded(ops: Vec<Op>) -> Self {
        Self { ops }
    }

    /// Reads history.jsonl; errors name the line.
    pub fn read_jsonl(reader: impl BufRead) -> Result<Self, HistoryError> {
        let records: Vec<(usize, Op)> = jsonl::read_records(reader)?;
        let (lines, ops): (Vec<usize>, Vec<Op>) = records.into_iter().unzip();
        check_well_formed(&ops).map_err(|(position, reason)| HistoryError::Malformed {
            at: format!("line {}", lines[position]),
            reason,
        })?;
        Ok(Self { ops })
    }

    /// Writes history.jsonl, one record per line.
    pub fn write_jsonl(&self, writer: impl Write) -> std::io::Result<()> {
        jsonl::write_records(writer, &self.ops)
    }

    /// Every record, in index order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Whether the history holds no record.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Every key the history touches, sorted.
    pub fn keys(&self) -> BTreeSet<&str> {
        self.ops.iter().map(|op| op.key.as_str()).collect()
    }

    /// Every operation, in invocation order.
    pub fn operations(&self) -> Vec<Operation> {
        let mut operations: Vec<Operation> = Vec::new();
        let mut in_flight: BTreeMap<ProcessId, usize> = BTreeMap::new();
        for op in &self.ops {
            if op.op_type == OpType::Invoke {
                in_flight.insert(op.process, operations.len());
                operations.push(Operation { invoke: op.clone(), completion: None });
            } else if let Some(position) = in_flight.remove(&op.process) {
                operations[position].completion = Some(op.clone());
            }
        }
        operations
    }

    /// Every operation on each key, in invocation order.
    pub fn operations_by_key(&self) -> BTreeMap<String, Vec<Operation>> {
        let mut by_key: BTreeMap<String, Vec<Operation>> = BTreeMap::new();
        for operation in self.operations() {
            by_key.entry(operation.invoke.key.clone()).or_default().push(operation);
        }
        by_key
    }
}

/// What a process may do next.
#[derive(Clone, Copy)]
enum ProcessState {
    /// Waiting for the completion of the invocation at this position.
    InFlight(usize),
    /// Got `info` at this index; it may never issue another operation.
    Retired(u64),
}

/// Checks the rules of [`History`]; on failure, the position of the offending record and why.
pub(super) fn check_well_formed(ops: &[Op]) -> Result<(), (usize, String)> {
    let mut processes: BTreeMap<ProcessId, ProcessState> = BTreeMap::new();
    let mut previous: Option<&Op> = None;
    for (position, op) in ops.iter().enumerate() {
        let at = |reason: String| (position, reason);
        op.value.check_shape(op.f, op.op_type).map_err(at)?;
        if let Some(previous) = previous {
            if op.index <= previous.index {
                return Err(at(format!(
                    "index {} does not follow index {}",
                    op.index, previous.index
                )));
            }
            if op.time_ns < previous.time_ns {
                return Err(at(format!("time_ns {} is before the previous record's", op.time_ns)));
            }
        }
        let state = processes.get(&op.process).copied();
        let next = check_transition(ops, position, state).map_err(at)?;
        match next {
            Some(next) => processes.insert(op.process, next),
            None => processes.remove(&op.process),
        };
        previous = Some(op);
    }
    Ok(())
}

/// The process's next state after the record at `current`, or why it may not come now.
fn check_transition(
    ops: &[Op],
    current: usize,
    state: Option<ProcessState>,
) -> Result<Option<ProcessState>, String> {
    let op = &ops[current];
    let process = op.process;
    match (state, op.op_type) {
        (Some(ProcessState::Retired(index)), _) => Err(format!(
            "process {process} got info at index {index} and may not issue another operation"
        )),
        (Some(ProcessState::InFlight(position)), OpType::Invoke) => Err(format!(
            "process {process} invokes while its operation at index {} is in flight",
            ops[position].index
        )),
        (None, OpType::Invoke) => Ok(Some(ProcessState::InFlight(current))),
        (None, _) => Err(format!("process {process} completes an operation it never invoked")),
        (Some(ProcessState::InFlight(position)), _) => {
            let invoke = &ops[position];
            if invoke.f != op.f || invoke.key != op.key {
                return Err(format!(
                    "process {process} completes a {} of {:?} but invoked a {} of {:?} at index {}",
                    op.f, op.key, invoke.f, invoke.key, invoke.index
                ));
            }
            if op.f != OpFunction::Read && op.value != invoke.value {
                return Err(format!(
                    "process {process} completes its {} with {} but invoked it with {}",
                    op.f, op.value, invoke.value
                ));
            }
            Ok((op.op_type == OpType::Info).then_some(ProcessState::Retired(op.index)))
        }
    }
}
