//! The nemesis: a seeded, reproducible schedule of faults.
//!
//! [`schedule`] turns a `nemesis` step, a seed and the running nodes into a list of timed
//! actions. Time is cut into cycles of `interval_ms`; in each cycle one fault kind (process or
//! network) and one target are drawn, the fault is injected early in the cycle and, if it
//! leaves the node down (kill, terminate, pause) or is a network fault, recovered (restart,
//! resume, heal the network) in the middle of it. A network fault's fields are drawn too: the
//! isolated node, a split's minority (the largest that leaves a majority), a one-way pair, a
//! loss of 10 to 40 % or a delay of 20 to 100 ms. So at most one fault is in effect
//! at a time, and every fault is healed before `duration_ms` ends. The same seed and inputs
//! always give the same schedule, on every machine: the generator is ChaCha8, and the draws
//! use no platform-dependent sampling.
//!
//! Caveats:
//! - The schedule names targets as the scenario does (`Leader` or an index); the runner
//!   resolves `Leader` when the action runs, and a recovery targets whatever node its fault hit.
//! - One fault at a time keeps a majority connected in clusters of three or more, except under
//!   `majorities_ring` and `bridge`, whose point is that no node sees all of a majority's view.
//!   Overlapping faults are not drawn.
//! - A split's groups are drawn from the nodes at schedule time, so a split never follows the
//!   leader; `isolate` does, half the time.

mod schedule;

pub use schedule::{NemesisAction, ScheduledFault, schedule, step_seed};
