//! The checks that judge a run, as plain functions over recorded data.
//!
//! Each check takes what the runner recorded (the [`History`](crate::history::History), the
//! [`Events`](crate::history::Events), or what nodes reported at the end) and returns a
//! [`CheckVerdict`]: pass, fail or unknown, with a reason that names the node, the key and the
//! time. None of them does I/O, so each is tested on synthetic data.
//!
//! - [`linearizability`]: the history of each key is linearizable for a register.
//! - [`check_durability`]: every acknowledged write is readable at the end unless replaced.
//! - [`check_failover`]: after a leader is lost, a new one leads and writes resume in time.
//! - [`check_liveness`]: after every heal, every node writes and reads again in time.
//! - [`check_replication`]: every node reports the same state digest.
//! - [`check_discovery`]: every node knows every other.
//! - [`check_no_intruder`]: the stranger of an `intruder` step is in no peer book and no
//!   membership, and the members turned its connections away.
//!
//! Caveats:
//! - `Unknown` is not a pass: the run's overall outcome is `Unknown` unless something failed.
//! - The bounds of failover and liveness are the runner's to choose; `crate::limits` has the
//!   defaults.

mod discovery;
mod durability;
mod failover;
mod intruder;
pub mod linearizability;
mod liveness;
mod replication;
mod verdict;

#[cfg(test)]
mod tests;

pub use discovery::{NodePeers, check_discovery};
pub use durability::check_durability;
pub use failover::check_failover;
pub use intruder::{Intruder, KnownNode, MemberReport, check_no_intruder};
pub use liveness::{check_liveness, liveness_bound_ms};
pub use replication::{NodeState, check_replication};
pub use verdict::{CheckVerdict, Outcome, nodes, overall, seconds};
