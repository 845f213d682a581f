//! Every bound of the benchmark tool in one place: counts, sizes and timeouts.
//!
//! A benchmark runs against a cluster that may be slow, overloaded or half dead (the failover
//! test kills its leader on purpose), so every loop is bounded twice: by a count and by a
//! time. A flag over one of these limits is refused with a message naming the limit, before
//! anything is sent.

/// Most clients of one test. Each client does one request at a time (a future over HTTP/2, an
/// OS thread over HTTP/1.1 and for the failover writers); beyond a thousand a 2-core machine
/// measures its scheduler, not the cluster.
pub const CLIENTS_MAX: usize = 1024;

/// Most HTTP connections of one test (one TCP connection each).
pub const CONNS_MAX: usize = 1024;

/// Worker threads of the tokio runtime that drives the sockets of the HTTP/2 connections that
/// blocking callers use (the failover writers, the cluster probes; a measured run drives its
/// own on its own thread). One is enough to read and write a thousand connections at the rates
/// a node answers, and each more would compete with the nodes for the 2 cores the standard
/// suite runs on; the calling threads only wait for their own answers.
pub const HTTP2_RUNTIME_THREADS: usize = 1;

/// Most endpoints (node HTTP addresses) one test spreads its connections over; the node's own
/// bound on cluster size (`CLUSTER_NODES_MAX` in the node's `src/limits.rs`).
pub const ENDPOINTS_MAX: usize = 64;

/// Most operations of one test; ten million 8-byte latency samples are 80 MB.
pub const TOTAL_OPS_MAX: u64 = 10_000_000;

/// Default operation count of `put`, `get` and `mixed`: the standard shape.
pub const TOTAL_OPS_DEFAULT: u64 = 20_000;

/// Largest key, as the node accepts it (`KEY_BYTES_MAX` in the node's `src/limits.rs`).
pub const KEY_BYTES_MAX: usize = 1024;

/// Largest value, as the node accepts it (`VALUE_BYTES_MAX` in the node's `src/limits.rs`).
pub const VALUE_BYTES_MAX: usize = 1024 * 1024;

/// Most distinct keys `get` and `mixed` write before they read (every key is written once, not
/// timed, so that reads find a value instead of measuring the not-found path).
pub const KEY_SPACE_MAX: u64 = 1_000_000;

/// Default number of distinct keys for `get` and `mixed`.
pub const KEY_SPACE_DEFAULT: u64 = 1_000;

/// How long a serializable `get`, once its keys are written, waits for every endpoint to apply
/// them: each node answers such a read from its own state, and a follower learns that an entry
/// is committed one replication message after the leader does, so it can miss the last writes
/// for a heartbeat or so. A node still behind after this is broken, and the test fails.
pub const CATCH_UP_MS_MAX: u64 = 30_000;

/// How often that wait asks each endpoint how far it has applied.
pub const CATCH_UP_POLL_INTERVAL_MS: u64 = 10;

/// Default bound on one HTTP request (connect, send, answer). The node bounds its own client
/// requests at 10 s, so a healthy node always answers first.
pub const REQUEST_TIMEOUT_MS_DEFAULT: u64 = 15_000;

/// Largest `--request-timeout-ms`.
pub const REQUEST_TIMEOUT_MS_MAX: u64 = 120_000;

/// Largest answer body read from a node; a write answer echoes its value.
pub const RESPONSE_BYTES_MAX: u64 = 2 * VALUE_BYTES_MAX as u64 + 64 * 1024;

/// Longest one test may run; clients stop issuing requests after this, whatever `--total` says.
pub const TEST_DURATION_MS_MAX: u64 = 600_000;

/// Default `--duration-ms`: the time bound of one test unless given.
pub const TEST_DURATION_MS_DEFAULT: u64 = 300_000;

/// How many distinct error messages a test prints (the count of errors is always complete).
pub const ERROR_SAMPLES_MAX: usize = 5;

/// Default time `idle` watches the node processes: 500 clock ticks of `/proc` resolution.
pub const IDLE_MS_DEFAULT: u64 = 5_000;

/// Longest `idle` may watch.
pub const IDLE_MS_MAX: u64 = 600_000;

/// Default number of 4 KiB append + fdatasync samples of `floor`.
pub const FLOOR_FSYNC_SAMPLES_DEFAULT: u64 = 1_000;

/// Default number of loopback UDP round trips of `floor`.
pub const FLOOR_UDP_SAMPLES_DEFAULT: u64 = 10_000;

/// Default number of durable redb commits of `floor`.
pub const FLOOR_REDB_SAMPLES_DEFAULT: u64 = 1_000;

/// Most samples of one floor measurement.
pub const FLOOR_SAMPLES_MAX: u64 = 1_000_000;

/// Longest one floor measurement may run (a slow disk at 20 ms per fsync still gives 500
/// samples).
pub const FLOOR_DURATION_MS_MAX: u64 = 10_000;

/// Bytes appended before each fdatasync of the floor: one page, the size of a small Raft entry
/// batch.
pub const FLOOR_APPEND_BYTES: usize = 4096;

/// Most bytes the floor's append file may grow to; it is truncated and rewritten from the start
/// beyond this, so that a fast disk does not fill its file system.
pub const FLOOR_FILE_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// Bytes of the value each redb commit of the floor inserts: about the size of one bench put's
/// log entry (an 8-byte key and a 256-byte value, plus the entry's framing: log id, request
/// envelope, serialization), so that a commit writes what a one-entry log batch writes.
pub const FLOOR_REDB_VALUE_BYTES: usize = 330;

/// Most distinct keys the floor's redb table holds; key `i` is written as `i % this`, so that a
/// fast disk (or a tmpfs, where fsync is nearly free) does not grow the file without bound.
/// 100,000 values of 330 bytes are about 40 MB of pages; the default 1,000 samples all insert
/// new keys, as a log append does.
pub const FLOOR_REDB_KEYS_MAX: u64 = 100_000;

/// How long a floor UDP round trip may take before it counts as lost.
pub const FLOOR_UDP_TIMEOUT_MS: u64 = 1_000;

/// Default number of writer clients of `failover`.
pub const FAILOVER_CLIENTS_DEFAULT: usize = 8;

/// Default time writers run before the leader is killed.
pub const FAILOVER_WARMUP_MS_DEFAULT: u64 = 1_000;

/// Default time writers keep running after the killed node answers again.
pub const FAILOVER_AFTER_MS_DEFAULT: u64 = 1_000;

/// Largest `--warmup-ms` and `--after-ms`.
pub const FAILOVER_PHASE_MS_MAX: u64 = 60_000;

/// Default bound on one write during `failover`: short, so that a client stuck behind the dead
/// leader gives up and tries another node, as an etcd client would.
pub const FAILOVER_REQUEST_TIMEOUT_MS_DEFAULT: u64 = 1_000;

/// How long `failover` waits for a new leader, for the first acknowledged write, and for the
/// restarted node to answer, each.
pub const FAILOVER_WAIT_MS_MAX: u64 = 60_000;

/// How often `failover` asks the survivors who leads, and checks the writers.
pub const FAILOVER_POLL_INTERVAL_MS: u64 = 5;

/// How long a failover writer waits after an error before its next write, so that a dead
/// endpoint (connection refused in microseconds) does not turn a writer into a busy loop.
pub const FAILOVER_ERROR_BACKOFF_MS: u64 = 10;

/// How long a killed node process may take to disappear after SIGKILL.
pub const KILL_EXIT_MS_MAX: u64 = 10_000;

/// Largest file read from `/proc` or a cluster dir.
pub const SMALL_FILE_BYTES_MAX: u64 = 64 * 1024;
