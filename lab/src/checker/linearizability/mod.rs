//! The linearizability checker for a register per key, with read, write and CAS.
//!
//! Linearizability is compositional, so each key is checked on its own (as DEPS.md advises),
//! which keeps each search small. For one key, the search (see `search.rs`) looks for a total
//! order of the operations that respects real time (an operation that completed before another
//! was invoked comes first, by record index) and in which every read returns the latest write
//! and every CAS finds its expected value. `ok` operations must be placed; `info` operations
//! (and those still in flight at the end) may be placed anywhere after their invocation, or
//! left out; `fail` operations are dropped.
//!
//! On a violation the checker builds a [`Witness`]: the shortest prefix that cannot be
//! linearized, shrunk to the operations involved.
//!
//! Caveats:
//! - A search that exceeds `LINEARIZABILITY_STATES_MAX` states answers `Unknown` rather than
//!   running for hours. The cost grows with the number of operations in flight on one key at
//!   once: about a dozen concurrent clients per key decide 20,000 operations in well under a
//!   second, twenty on one key may not decide at all. Spread workloads over several keys.
//! - A CAS that did not swap must be recorded as `fail` (it did not take effect); the checker
//!   does not use the value it saw.

mod check;
mod register;
mod search;
mod witness;

#[cfg(test)]
mod tests;

pub use check::{
    KeyOutcome, LinearizabilityReport, check_history, check_operations, check_with_budget,
};
pub use witness::{Witness, describe};
