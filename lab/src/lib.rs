//! aspen-lab: spawn real Aspen clusters from scenario files, inject faults, and check them.
//!
//! Like Jepsen, the lab treats nodes as black boxes: it starts `aspen-node` processes, talks to
//! them over HTTP (and their ractor_cluster control port for actor faults), drives a workload
//! of concurrent clients, injects faults, records everything, and judges the run with checkers.
//! A run is reproducible from its scenario file and seed.
//!
//! How the pieces fit, in the order of a run:
//!
//! - [`scenario`] reads and validates a scenario file: the cluster, a script of steps, and the
//!   checks. Errors name the field (`steps[3].fault.node`).
//! - [`nemesis`] turns a `nemesis` step and the run's seed into a deterministic schedule of
//!   faults and recoveries.
//! - [`runner`] starts real `aspen-node` processes (a ractor `LabSupervisor` with one
//!   `NodeProcess` actor per process) and executes the steps. It records client operations with
//!   a [`history::Recorder`] and lab events (faults, leader changes, steps) in
//!   [`history::Events`], both on one [`history::RunClock`].
//! - [`checker`] judges the recorded data with plain functions: linearizability per key,
//!   durability, failover, liveness, replication, discovery and no intruder, each a
//!   [`checker::CheckVerdict`] with a reason that names node, key and time.
//! - [`report`] writes the run directory: `summary.json` ([`report::RunSummary`]),
//!   `history.jsonl`, `events.jsonl`, and a self-contained `report.html` with a timeline.
//! - [`network`] builds the `netns` network of a run (a namespace per node on a bridge) and
//!   puts network faults in force: partitions and loss with nftables, delay with tc netem.
//! - [`limits`] holds every bound the lab enforces.
//!
//! The `aspen-lab` binary wires these together: `validate`, `list`, `check`, `report` and `run`.
//!
//! Caveats:
//! - `network: "netns"` needs Linux, root, `ip` and `nft` (and tc netem for delay); a machine
//!   without them skips such scenarios with the reason instead of running them.
//! - The history model is a single-key register with string values (read, write, CAS); Aspen's
//!   multi-key `SetMulti`, `Delete` and scans are not part of the workload.
//! - The runner uses the `aspen` crate's public types and clients (`ReadyLine`,
//!   `RemoteNodeControl`); it never runs a node in-process, only `aspen-node` processes.

#![warn(missing_docs)]

pub mod checker;
pub mod history;
pub mod limits;
pub mod nemesis;
pub mod network;
pub mod report;
pub mod runner;
pub mod scenario;
