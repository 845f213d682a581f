//! `aspen-bench`: drives a running Aspen cluster the way etcd's `benchmark` tool drives etcd,
//! and measures the machine's floor in the same run so that results compare across machines.
//!
//! The tool is a client and nothing more: it talks to nodes over their HTTP API with persistent
//! connections (HTTP/2 by default, HTTP/1.1 with `--http 1`), reads the node processes' CPU
//! time from `/proc`, and for the failover test sends SIGKILL to the leader's process and
//! starts it again. It never runs a node itself.
//!
//! ```text
//! args       the command line (etcd's flag names: --endpoints, --clients, --conns, --total)
//! commands   each test from flags to report: put, get (linearizable or serializable), mixed,
//!            floor
//! failover   the failover test: kill the leader under load, time recovery, restart
//! idle       CPU and memory of the node processes with no load
//! workload   closed-loop clients over a fixed set of connections
//! client     one persistent HTTP/2 or HTTP/1.1 connection and the requests sent on it
//! cluster    endpoints, pids and the leader (flags or a cluster dir)
//! process    kill and restart a node process, by pid, after checking what it runs
//! floor      4 KiB append + fdatasync, loopback UDP round trip, durable redb commit
//! cpu        CPU seconds of the node processes and of the benchmark
//! stats      exact latency percentiles
//! report     the human table, the JSON line, the floor ratios
//! limits     every bound
//! ```
//!
//! Caveats:
//! - With `--http 2` (the default) a connection multiplexes the requests of its clients, as
//!   etcd's gRPC connections do, so `--clients 64 --conns 8` has 64 requests in flight. With
//!   `--http 1` a connection carries one request at a time: 8 in flight.
//! - Linux only: CPU accounting and the failover test read `/proc`.

pub mod args;
pub mod client;
pub mod cluster;
pub mod commands;
pub mod cpu;
pub mod failover;
pub mod floor;
pub mod idle;
pub mod limits;
pub mod process;
pub mod report;
pub mod stats;
pub mod workload;
