//! Every bound the lab enforces, in one place.
//!
//! A scenario over one of these limits is refused by validation with an error that names the
//! field; nothing panics on input. Each constant says why it has its value. Names carry their
//! unit and end in `_MAX` or `_MIN` (or `_DEFAULT`), as in the node's `src/limits.rs`.
//!
//! Caveats: the node settings bounds mirror the node's own limits instead of importing them, so
//! that the lab builds without the node's dependencies; the node refuses anything else anyway.

/// Most nodes a scenario may start or add. Real processes share two cores here; nine is the
/// largest odd cluster that still elects leaders promptly on such a machine.
pub const NODES_MAX: u32 = 9;

/// Most steps in one scenario. A longer script is a sign that a workload or nemesis step should
/// be used instead.
pub const STEPS_MAX: usize = 1_000;

/// Largest scenario file, in bytes. Scenarios are hand-written scripts.
pub const SCENARIO_FILE_BYTES_MAX: u64 = 1024 * 1024;

/// Longest scenario description, in bytes: a sentence or two for `aspen-lab list`.
pub const DESCRIPTION_BYTES_MAX: usize = 2_000;

/// Longest key in a `write` or `read` step, in bytes; mirrors the node's `KEY_BYTES_MAX`.
pub const KEY_BYTES_MAX: usize = 1024;

/// Largest value in a `write` step, in bytes; mirrors the node's `VALUE_BYTES_MAX`.
pub const VALUE_BYTES_MAX: usize = 1024 * 1024;

/// Smallest Raft heartbeat interval, in milliseconds; mirrors the node's bound.
pub const HEARTBEAT_INTERVAL_MS_MIN: u64 = 10;

/// Largest election timeout, in milliseconds; mirrors the node's bound.
pub const ELECTION_TIMEOUT_MS_MAX: u64 = 120_000;

/// Longest `wait` step, in milliseconds. A longer pause is better expressed as a `wait_for`
/// with a condition, which ends as soon as the cluster is ready.
pub const WAIT_MS_MAX: u64 = 60_000;

/// Longest `wait_for` timeout, in milliseconds. Long enough for a learner to catch up through a
/// snapshot on a slow machine, short enough that a stuck run fails in minutes.
pub const WAIT_FOR_TIMEOUT_MS_MAX: u64 = 120_000;

/// Longest workload or nemesis, in milliseconds. Ten minutes of history is already more than
/// the linearizability checker can search in one sitting.
pub const RUN_DURATION_MS_MAX: u64 = 600_000;

/// Most concurrent workload clients. Each is a task with a connection; 64 saturates two cores.
pub const WORKLOAD_CLIENTS_MAX: u32 = 64;

/// Highest workload rate over all clients, in operations per second.
pub const WORKLOAD_RATE_PER_S_MAX: u32 = 10_000;

/// Most distinct keys a workload touches. Linearizability is checked per key, so more keys mean
/// smaller searches, but each key needs a final read for the durability check.
pub const WORKLOAD_KEYS_MAX: u32 = 1_000;

/// Largest weight of one operation kind in a workload mix.
pub const MIX_WEIGHT_MAX: u32 = 1_000;

/// Shortest nemesis interval, in milliseconds. A fault and its recovery share one interval;
/// below this the nodes never get the chance to notice either.
pub const NEMESIS_INTERVAL_MS_MIN: u64 = 100;

/// Bound within which a new leader and the first acknowledged write must follow the loss of a
/// leader, in milliseconds, when the runner names none. Two of the node's largest default
/// election timeouts plus room for the client's retries.
pub const FAILOVER_MS_MAX_DEFAULT: u64 = 10_000;

/// Election timeouts (the largest) in the liveness bound after a heal: one for the nodes to
/// notice a leader is gone or back, one for a contested election, one for a node that was cut
/// off to step down and follow.
pub const LIVENESS_ELECTION_TIMEOUTS: u64 = 3;

/// Margin of the liveness bound after a heal, in milliseconds: a connection that died during a
/// partition is closed by the node's QUIC idle timeout (5 s) before a request dials afresh.
pub const LIVENESS_MARGIN_MS: u64 = 5_000;

/// Most search states the linearizability checker visits for one key before it answers
/// `Unknown`. Histories that linearize greedily need about one state per operation; this budget
/// allows a great deal of backtracking and still ends in seconds.
pub const LINEARIZABILITY_STATES_MAX: usize = 1_000_000;

/// Most search states for each attempt while a witness is shrunk. Shrinking only makes the
/// witness easier to read, so it gets a small budget.
pub const WITNESS_STATES_MAX: usize = 100_000;

/// Most operations in a non-linearizable prefix for which the witness is shrunk one operation
/// at a time; above this the whole prefix is reported.
pub const WITNESS_SHRINK_OPS_MAX: usize = 200;

/// Longest line in history.jsonl or events.jsonl, in bytes: one operation with the largest
/// value the node accepts (twice, for a CAS) and room for the rest of the record.
pub const JSONL_LINE_BYTES_MAX: usize = 2 * VALUE_BYTES_MAX + 64 * 1024;

/// Most operation dots drawn in report.html. Past this the dots are sampled evenly, so that the
/// page stays small enough for a browser.
pub const REPORT_POINTS_MAX: usize = 20_000;

/// Number of time buckets in the report's throughput plot.
pub const REPORT_THROUGHPUT_BUCKETS: usize = 100;

/// Longest a single `ip`, `nft` or `tc` command of the network layer may run, in milliseconds.
/// Each one is a netlink request that answers in milliseconds; a command still running after
/// this is stuck (a wedged kernel module, a full process table), and is killed.
pub const NETWORK_COMMAND_MS_MAX: u64 = 10_000;

/// Longest a run waits for another run on the same machine to finish choosing its subnet, in
/// milliseconds. The choice and the address it reserves take a few commands.
pub const NETWORK_LOCK_WAIT_MS_MAX: u64 = 30_000;

/// Largest delay a `delay` fault adds to each packet, in milliseconds. Above the largest
/// election timeout a scenario can ask for, delay is a partition in disguise.
pub const NETWORK_DELAY_MS_MAX: u64 = 10_000;

/// Largest packet loss a `loss` fault sets, in percent: 100 drops every packet, like a
/// partition.
pub const NETWORK_LOSS_PERCENT_MAX: u32 = 100;
