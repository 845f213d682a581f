//! The recorder: turns client calls into a well-formed history as they happen.

use std::collections::BTreeMap;

use super::clock::{Clock, RunClock};
use super::log::History;
use super::op::{Op, OpFunction, OpType, OpValue, ProcessId};
use crate::scenario::NodeIndex;

/// Why the recorder refused a record. Each is a bug in the workload driver, not in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The process already has an operation in flight.
    #[error("process {process} already has an operation in flight")]
    InFlight {
        /// The process.
        process: ProcessId,
    },
    /// The process has nothing to complete.
    #[error("process {process} has no operation in flight")]
    NothingInFlight {
        /// The process.
        process: ProcessId,
    },
    /// The process got `info` before and may never issue another operation; its client must
    /// continue as a new process.
    #[error("process {process} got info and may not issue another operation")]
    Retired {
        /// The process.
        process: ProcessId,
    },
    /// The value does not fit the operation.
    #[error("{reason}")]
    Shape {
        /// What does not fit.
        reason: String,
    },
}

/// What a process may do next.
#[derive(Debug, Clone, Copy)]
enum ProcessState {
    /// Waiting for the completion of the record at this position.
    InFlight(usize),
    /// Got `info`.
    Retired,
}

/// Assigns indexes and times to operations and enforces the rules of [`History`] as each record
/// arrives. Plain state: a concurrent workload shares it behind a mutex, so that the index
/// order is the real-time order in which the records were taken.
#[derive(Debug)]
pub struct Recorder<C: Clock = RunClock> {
    clock: C,
    ops: Vec<Op>,
    processes: BTreeMap<ProcessId, ProcessState>,
    last_time_ns: u64,
}

impl<C: Clock> Recorder<C> {
    /// An empty recorder that reads time from `clock`.
    pub fn new(clock: C) -> Self {
        Self { clock, ops: Vec::new(), processes: BTreeMap::new(), last_time_ns: 0 }
    }

    /// Records that `process` sent an operation to `node`; returns the record's index.
    pub fn invoke(
        &mut self,
        process: ProcessId,
        f: OpFunction,
        key: impl Into<String>,
        value: OpValue,
        node: Option<NodeIndex>,
    ) -> Result<u64, RecordError> {
        match self.processes.get(&process) {
            Some(ProcessState::InFlight(_)) => return Err(RecordError::InFlight { process }),
            Some(ProcessState::Retired) => return Err(RecordError::Retired { process }),
            None => {}
        }
        value.check_shape(f, OpType::Invoke).map_err(|reason| RecordError::Shape { reason })?;
        self.processes.insert(process, ProcessState::InFlight(self.ops.len()));
        Ok(self.push(process, OpType::Invoke, f, key.into(), value, node))
    }

    /// Records how the operation of `process` ended; `read_value` is what an ok read returned
    /// (`None` for an absent key) and must be `None` otherwise. Returns the record's index.
    pub fn complete(
        &mut self,
        process: ProcessId,
        outcome: OpType,
        read_value: Option<String>,
    ) -> Result<u64, RecordError> {
        let position = match self.processes.get(&process) {
            Some(ProcessState::InFlight(position)) => *position,
            Some(ProcessState::Retired) => return Err(RecordError::Retired { process }),
            None => return Err(RecordError::NothingInFlight { process }),
        };
        if outcome == OpType::Invoke {
            let reason = "a completion is ok, fail or info, not invoke".to_string();
            return Err(RecordError::Shape { reason });
        }
        let invoke = &self.ops[position];
        let value = match (invoke.f, read_value) {
            (OpFunction::Read, Some(value)) => OpValue::Value(value),
            (OpFunction::Read, None) => OpValue::Absent,
            (_, None) => invoke.value.clone(),
            (f, Some(_)) => {
                let reason = format!("a {f} completes without a read value");
                return Err(RecordError::Shape { reason });
            }
        };
        value.check_shape(invoke.f, outcome).map_err(|reason| RecordError::Shape { reason })?;
        let (f, key, node) = (invoke.f, invoke.key.clone(), invoke.node);
        match outcome {
            OpType::Info => self.processes.insert(process, ProcessState::Retired),
            _ => self.processes.remove(&process),
        };
        Ok(self.push(process, outcome, f, key, value, node))
    }

    /// Processes with an operation in flight, in order.
    pub fn in_flight(&self) -> Vec<ProcessId> {
        let in_flight = self.processes.iter();
        in_flight
            .filter(|(_, state)| matches!(state, ProcessState::InFlight(_)))
            .map(|(p, _)| *p)
            .collect()
    }

    /// A copy of the history so far, for checks in the middle of a run.
    pub fn history(&self) -> History {
        History::from_recorded(self.ops.clone())
    }

    /// The history so far. Operations still in flight count as `info` for the checkers.
    pub fn into_history(self) -> History {
        History::from_recorded(self.ops)
    }

    fn push(
        &mut self,
        process: ProcessId,
        op_type: OpType,
        f: OpFunction,
        key: String,
        value: OpValue,
        node: Option<NodeIndex>,
    ) -> u64 {
        // The clock is monotonic already; the max guards against a clock that is not.
        self.last_time_ns = self.last_time_ns.max(self.clock.now_ns());
        let index = self.ops.len() as u64;
        let time_ns = self.last_time_ns;
        self.ops.push(Op { index, process, op_type, f, key, value, time_ns, node });
        index
    }
}
