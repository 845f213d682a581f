//! What happened in a run: client operations (history.jsonl) and lab events (events.jsonl).
//!
//! The history follows Jepsen's model. Each client is a *process* that invokes one operation at
//! a time and sees it end `ok` (it happened), `fail` (it certainly did not) or `info` (unknown:
//! it may happen at any time after its invocation, or never). A process that got `info` never
//! issues another operation, because its next invocation could be concurrent with the unknown
//! one; its client continues under a new process id. Records carry a strictly increasing
//! `index`, which is the real-time order the checkers use, and `time_ns` on the run's
//! monotonic [`Clock`], which the report uses.
//!
//! The [`Recorder`] enforces these rules as records arrive; [`History::read_jsonl`] enforces
//! them on files, naming the line. [`Events`] share the clock, so faults and leader changes lie
//! on the same timeline as operations.
//!
//! Caveats:
//! - Values are strings, as in Aspen's KV API; keys are single registers (no multi-key ops).
//! - The recorder keeps the history in memory; a run is bounded by `RUN_DURATION_MS_MAX` and
//!   `WORKLOAD_RATE_PER_S_MAX`, so a history has at most a few million records.

mod clock;
mod events;
mod jsonl;
mod log;
mod op;
mod recorder;

#[cfg(test)]
mod tests;

pub use clock::{Clock, ManualClock, RunClock};
pub use events::{Event, EventKind, Events, FaultWindow, NETWORK_HEAL};
pub use jsonl::{JsonlError, read_records, write_records};
pub use log::{History, HistoryError, Operation};
pub use op::{Op, OpFunction, OpType, OpValue, ProcessId};
pub use recorder::{RecordError, Recorder};
