//! The runner: starts real `aspen-node` processes for a scenario, runs its steps, and judges it.
//!
//! A run is an actor system (ractor), as DESIGN.md draws it:
//!
//! ```text
//! LabSupervisor
//! ├── NodeProcess × N   one aspen-node OS process each (node.rs), and one for the intruder
//! ├── Network           in a `netns` run, the namespaces and the network faults (network.rs)
//! ├── Workload          per workload step, with one WorkloadClient per client (workload.rs)
//! ├── Nemesis           per nemesis step, the seeded fault schedule (nemesis.rs)
//! └── Checker           the checks, in the middle of the script and at the end (checker.rs)
//! ```
//!
//! [`run_scenario`] (run.rs) sets a run up and tears it down; the script (script.rs) walks the
//! steps in order. The [`Cluster`](cluster::Cluster) it shares with the actors holds the
//! nodes' slots and the run's records (events, history, the leader last seen, written by the
//! leader watcher in observe.rs). Starting a node's process (its flags, its slot) is in
//! launch.rs, process faults, network faults and heal in faults.rs, the write and read sent
//! to every node after a heal in liveness.rs, membership changes in membership.rs, one
//! recorded operation in ops.rs, HTTP in http.rs, the terminal status line in progress.rs, and
//! the stranger of an `intruder` step (a node with another cookie that holds the cluster's
//! ticket) in intruder.rs. Every process is killed, every namespace and
//! temporary directory removed when the run ends, also on an error or Ctrl-C.
//!
//! With `"network": "netns"`, every node runs in a namespace of its own
//! ([`crate::network::NetnsTopology`]), binds its HTTP API, iroh and control sockets to its
//! namespace's address, and is reached there by the lab and its peers. A machine that cannot
//! build namespaces (not root, no `nft`), or a scenario that delays packets on a kernel without
//! tc netem, makes the run a skip ([`RunOutcome::skipped`]) with the reason, not a failure.
//!
//! Caveats:
//! - Reads are linearizable (served through the leader), so the replication check compares
//!   what every node answers for every key plus the applied log index, not each node's local
//!   state machine.
//! - A network fault's window in the report lasts until the network is healed: a partition
//!   replaced by another is not closed at the replacement.

mod checker;
mod cluster;
mod faults;
mod http;
mod intruder;
mod launch;
mod liveness;
mod membership;
mod nemesis;
mod network;
mod node;
mod observe;
mod ops;
mod progress;
mod run;
mod script;
mod servers;
mod workload;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::checker::Outcome;
use crate::report::RunSummary;
pub use run::run_scenario;

/// The cookie of the nodes' control port.
const COOKIE: &str = "aspen-lab";
/// Timeout of one workload or step request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Timeout of one status request (metrics, peers).
const STATUS_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a stopping Nemesis may take to finish the fault it is injecting (a wipe and
/// rejoin waits for the node to catch up).
const NEMESIS_STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// Set on Ctrl-C, so that workload clients stop at once.
pub(super) static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// How to run a scenario.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The seed.
    pub seed: u64,
    /// Where run directories go.
    pub out: PathBuf,
    /// The `aspen-node` binary.
    pub node_bin: PathBuf,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The run directory (none is written for a skipped run).
    pub run_dir: PathBuf,
    /// The overall outcome (a failed step makes it `Fail`).
    pub outcome: Outcome,
    /// The summary written.
    pub summary: RunSummary,
    /// Why the scenario was skipped without running, if it was: this machine cannot do what
    /// it needs. A skip is not a failure.
    pub skipped: Option<String>,
}

/// The `aspen-node` next to the running executable (the same target directory).
pub fn default_node_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let candidate = dir.join("aspen-node");
    if candidate.exists() {
        return candidate;
    }
    // A test executable lives in target/<profile>/deps.
    dir.parent().map(|p| p.join("aspen-node")).unwrap_or(candidate)
}
