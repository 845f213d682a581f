//! The nemesis: a seeded, reproducible schedule of faults.
//!
//! [`schedule`] turns a `nemesis` step, a seed and the running nodes into a list of timed
//! actions. Time is cut into cycles of `interval_ms`; in each cycle one fault kind and one
//! target are drawn, the fault is injected early in the cycle and, if it leaves the node down
//! (kill, terminate, pause), recovered in the middle of it. So at most one fault is in effect
//! at a time, and every fault is healed before `duration_ms` ends. The same seed and inputs
//! always give the same schedule, on every machine: the generator is ChaCha8, and the draws
//! use no platform-dependent sampling.
//!
//! Caveats:
//! - The schedule names targets as the scenario does (`Leader` or an index); the runner
//!   resolves `Leader` when the action runs, and a recovery targets whatever node its fault hit.
//! - One fault at a time keeps a majority up in clusters of three or more; partitions and
//!   overlapping faults are left for when the network layer exists.

mod schedule;

pub use schedule::{NemesisAction, ScheduledFault, schedule, step_seed};
