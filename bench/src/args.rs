//! The command line, modelled on etcd's `benchmark` tool.
//!
//! Every test takes the same target and shape flags ([`TestFlags`]); flags are checked against
//! `limits` before anything is sent, and a flag over a limit names the limit.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::client::{Consistency, HttpVersion};
use crate::limits::{
    CLIENTS_MAX, CONNS_MAX, FAILOVER_AFTER_MS_DEFAULT, FAILOVER_PHASE_MS_MAX,
    FAILOVER_WARMUP_MS_DEFAULT, FLOOR_FSYNC_SAMPLES_DEFAULT, FLOOR_REDB_SAMPLES_DEFAULT,
    FLOOR_SAMPLES_MAX, FLOOR_UDP_SAMPLES_DEFAULT, IDLE_MS_DEFAULT, IDLE_MS_MAX, KEY_BYTES_MAX,
    KEY_SPACE_DEFAULT, KEY_SPACE_MAX, REQUEST_TIMEOUT_MS_MAX, TEST_DURATION_MS_DEFAULT,
    TEST_DURATION_MS_MAX, TOTAL_OPS_DEFAULT, TOTAL_OPS_MAX, VALUE_BYTES_MAX,
};

/// Benchmarks a running Aspen cluster through its HTTP API.
#[derive(Debug, Parser)]
#[command(
    name = "aspen-bench",
    version,
    about = "Benchmarks a running Aspen cluster the way etcd's benchmark tool measures etcd.",
    after_help = "Each test prints a table and one JSON line (ops_per_s, p50_ms, p90_ms, p99_ms, \
max_ms, errors, node_cpu_s_per_op, floor ratios). Exit codes: 0 ran, 1 failed, 2 bad flags.\n\
scripts/bench.sh starts a release cluster and runs the standard suite; bench/README.md explains \
every figure."
)]
pub struct Cli {
    /// The test to run.
    #[command(subcommand)]
    pub command: TestCommand,
}

/// The tests.
#[derive(Debug, Subcommand)]
pub enum TestCommand {
    /// Writes (`Set`) of distinct keys: sequential with one client, concurrent with --clients.
    Put(TestFlags),
    /// Reads of keys written first (not timed).
    Get {
        /// Target, shape and output flags.
        #[command(flatten)]
        flags: TestFlags,
        /// Read consistency: linearizable (through the leader's ReadIndex; a follower forwards
        /// the read) or serializable (answered by the node asked, from what it has applied).
        #[arg(long, value_enum, default_value_t = Consistency::Linearizable)]
        consistency: Consistency,
        /// Distinct keys to write first and then read round-robin.
        #[arg(long, default_value_t = KEY_SPACE_DEFAULT)]
        key_space: u64,
    },
    /// Reads and writes over one key space, --write-percent of them writes.
    Mixed {
        /// Target, shape and output flags.
        #[command(flatten)]
        flags: TestFlags,
        /// Distinct keys to write first and then read and write round-robin.
        #[arg(long, default_value_t = KEY_SPACE_DEFAULT)]
        key_space: u64,
        /// Percentage of operations that are writes (0..=100).
        #[arg(long, default_value_t = 50)]
        write_percent: u8,
    },
    /// While --clients writers run, SIGKILL the leader's process; report the time to a new
    /// leader and to the first acknowledged write, then restart the killed node. Needs the
    /// node pids (--pids or --cluster-dir).
    Failover {
        /// Target, shape and output flags (--clients defaults to 8 here).
        #[command(flatten)]
        flags: TestFlags,
        /// How long the writers run before the kill.
        #[arg(long, default_value_t = FAILOVER_WARMUP_MS_DEFAULT)]
        warmup_ms: u64,
        /// How long the writers keep running once the restarted node answers.
        #[arg(long, default_value_t = FAILOVER_AFTER_MS_DEFAULT)]
        after_ms: u64,
    },
    /// Measures what the node processes use with no load: CPU (in cores) and resident memory.
    Idle {
        /// Node processes, comma-separated PID or ID=PID (default: from --cluster-dir).
        #[arg(long, value_delimiter = ',', value_name = "PID")]
        pids: Vec<String>,
        /// A cluster directory as scripts/bench.sh writes it.
        #[arg(long, value_name = "DIR")]
        cluster_dir: Option<PathBuf>,
        /// How long to watch.
        #[arg(long, default_value_t = IDLE_MS_DEFAULT)]
        duration_ms: u64,
        /// Also append the JSON line to this file.
        #[arg(long, value_name = "FILE")]
        json_out: Option<PathBuf>,
    },
    /// Measures the machine's floor: 4 KiB append + fdatasync in --dir, loopback UDP round trip,
    /// and one durable redb commit in --dir (its latency and CPU).
    Floor {
        /// A directory on the file system of the nodes' data dirs.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Append + fdatasync samples.
        #[arg(long, default_value_t = FLOOR_FSYNC_SAMPLES_DEFAULT)]
        fsync_samples: u64,
        /// UDP round trip samples.
        #[arg(long, default_value_t = FLOOR_UDP_SAMPLES_DEFAULT)]
        udp_samples: u64,
        /// Durable redb commit samples.
        #[arg(long, default_value_t = FLOOR_REDB_SAMPLES_DEFAULT)]
        redb_samples: u64,
        /// Also append each JSON line to this file.
        #[arg(long, value_name = "FILE")]
        json_out: Option<PathBuf>,
    },
}

/// The flags every cluster test takes.
#[derive(Debug, Clone, Args)]
pub struct TestFlags {
    /// Node HTTP addresses, comma-separated; connections are spread over them round-robin
    /// (default: the node-*.url files of --cluster-dir).
    #[arg(long, value_delimiter = ',', value_name = "URL")]
    pub endpoints: Vec<String>,
    /// Node processes for CPU accounting (and failover), comma-separated PID or ID=PID
    /// (default: the node-*.pid files of --cluster-dir).
    #[arg(long, value_delimiter = ',', value_name = "PID")]
    pub pids: Vec<String>,
    /// A cluster directory as scripts/bench.sh writes it (node-<id>.url, node-<id>.pid).
    #[arg(long, value_name = "DIR")]
    pub cluster_dir: Option<PathBuf>,
    /// Key size in bytes.
    #[arg(long, default_value_t = 8)]
    pub key_size: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 256)]
    pub val_size: usize,
    /// Operations to issue.
    #[arg(long, default_value_t = TOTAL_OPS_DEFAULT)]
    pub total: u64,
    /// Concurrent clients (default: 1; 8 for failover).
    #[arg(long)]
    pub clients: Option<usize>,
    /// HTTP connections shared by the clients (default: one per client). Over HTTP/2 the
    /// clients of a connection send on it at once; over HTTP/1.1 they take turns.
    #[arg(long)]
    pub conns: Option<usize>,
    /// HTTP version: 2 is cleartext HTTP/2 with prior knowledge, every connection multiplexing
    /// the requests of its clients as etcd's gRPC connections do (up to --clients in flight);
    /// 1 is HTTP/1.1, one request at a time per connection (up to --conns in flight).
    #[arg(long, value_enum, value_name = "VERSION", default_value = "2")]
    pub http: HttpVersion,
    /// Bound on one request in milliseconds (default: 15000; 1000 for failover).
    #[arg(long)]
    pub request_timeout_ms: Option<u64>,
    /// Bound on the whole test in milliseconds.
    #[arg(long, default_value_t = TEST_DURATION_MS_DEFAULT)]
    pub duration_ms: u64,
    /// JSON lines of an earlier `aspen-bench floor` run, for the floor ratios.
    #[arg(long, value_name = "FILE")]
    pub floor: Option<PathBuf>,
    /// Measure the floor in this directory first, for the floor ratios.
    #[arg(long, value_name = "DIR", conflicts_with = "floor")]
    pub floor_dir: Option<PathBuf>,
    /// Also append the JSON line to this file.
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
}

impl TestFlags {
    /// Refuses flags over a limit, naming it.
    pub fn check(&self, clients_default: usize) -> Result<(), String> {
        let clients = self.clients.unwrap_or(clients_default);
        let conns = self.conns.unwrap_or(clients);
        within("--clients", clients as u64, 1, CLIENTS_MAX as u64, "CLIENTS_MAX")?;
        within("--conns", conns as u64, 1, CONNS_MAX as u64, "CONNS_MAX")?;
        within("--total", self.total, 1, TOTAL_OPS_MAX, "TOTAL_OPS_MAX")?;
        within("--key-size", self.key_size as u64, 1, KEY_BYTES_MAX as u64, "KEY_BYTES_MAX")?;
        within("--val-size", self.val_size as u64, 0, VALUE_BYTES_MAX as u64, "VALUE_BYTES_MAX")?;
        within("--duration-ms", self.duration_ms, 1, TEST_DURATION_MS_MAX, "TEST_DURATION_MS_MAX")?;
        if let Some(timeout) = self.request_timeout_ms {
            within(
                "--request-timeout-ms",
                timeout,
                1,
                REQUEST_TIMEOUT_MS_MAX,
                "REQUEST_TIMEOUT_MS_MAX",
            )?;
        }
        Ok(())
    }
}

/// Checks the flags of the tests that have their own.
pub fn check_command(command: &TestCommand) -> Result<(), String> {
    match command {
        TestCommand::Put(flags) => flags.check(1),
        TestCommand::Get { flags, key_space, .. } => {
            flags.check(1)?;
            within("--key-space", *key_space, 1, KEY_SPACE_MAX, "KEY_SPACE_MAX")
        }
        TestCommand::Mixed { flags, key_space, write_percent } => {
            flags.check(1)?;
            within("--key-space", *key_space, 1, KEY_SPACE_MAX, "KEY_SPACE_MAX")?;
            within("--write-percent", u64::from(*write_percent), 0, 100, "100")
        }
        TestCommand::Failover { flags, warmup_ms, after_ms } => {
            flags.check(crate::limits::FAILOVER_CLIENTS_DEFAULT)?;
            within("--warmup-ms", *warmup_ms, 0, FAILOVER_PHASE_MS_MAX, "FAILOVER_PHASE_MS_MAX")?;
            within("--after-ms", *after_ms, 0, FAILOVER_PHASE_MS_MAX, "FAILOVER_PHASE_MS_MAX")
        }
        TestCommand::Idle { duration_ms, .. } => {
            within("--duration-ms", *duration_ms, 1, IDLE_MS_MAX, "IDLE_MS_MAX")
        }
        TestCommand::Floor { fsync_samples, udp_samples, redb_samples, .. } => {
            within("--fsync-samples", *fsync_samples, 1, FLOOR_SAMPLES_MAX, "FLOOR_SAMPLES_MAX")?;
            within("--udp-samples", *udp_samples, 1, FLOOR_SAMPLES_MAX, "FLOOR_SAMPLES_MAX")?;
            within("--redb-samples", *redb_samples, 1, FLOOR_SAMPLES_MAX, "FLOOR_SAMPLES_MAX")
        }
    }
}

fn within(flag: &str, value: u64, min: u64, max: u64, limit: &str) -> Result<(), String> {
    if value < min || value > max {
        return Err(format!("{flag} {value} is outside {min}..={max} ({limit})"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_over_a_limit_name_it() {
        let cli =
            Cli::try_parse_from(["aspen-bench", "put", "--endpoints", "a:1", "--clients", "5000"])
                .unwrap();
        let error = check_command(&cli.command).unwrap_err();
        assert!(error.contains("CLIENTS_MAX"), "{error}");
        let cli = Cli::try_parse_from(["aspen-bench", "put", "--endpoints", "a:1,b:2"]).unwrap();
        check_command(&cli.command).unwrap();
        let TestCommand::Put(flags) = cli.command else { panic!() };
        assert_eq!((flags.endpoints.len(), flags.key_size, flags.val_size), (2, 8, 256));
        assert_eq!(flags.total, 20_000);
    }

    #[test]
    fn http_is_2_unless_asked_for_1() {
        let put = |args: &[&str]| {
            let cli = Cli::try_parse_from([&["aspen-bench", "put"], args].concat()).unwrap();
            let TestCommand::Put(flags) = cli.command else { panic!() };
            flags.http
        };
        assert_eq!(put(&[]), HttpVersion::Http2);
        assert_eq!(put(&["--http", "1"]), HttpVersion::Http1);
        assert_eq!(put(&["--http", "2"]), HttpVersion::Http2);
        assert!(Cli::try_parse_from(["aspen-bench", "put", "--http", "3"]).is_err());
    }

    #[test]
    fn get_is_linearizable_unless_asked_for_serializable() {
        let get = |args: &[&str]| {
            let cli = Cli::try_parse_from([&["aspen-bench", "get"], args].concat()).unwrap();
            check_command(&cli.command).unwrap();
            let TestCommand::Get { consistency, .. } = cli.command else { panic!() };
            consistency
        };
        assert_eq!(get(&[]), Consistency::Linearizable);
        assert_eq!(get(&["--consistency", "linearizable"]), Consistency::Linearizable);
        assert_eq!(get(&["--consistency", "serializable"]), Consistency::Serializable);
        assert!(Cli::try_parse_from(["aspen-bench", "get", "--consistency", "stale"]).is_err());
    }

    #[test]
    fn floor_takes_redb_samples_within_the_floor_limit() {
        let floor = |args: &[&str]| {
            let cli = Cli::try_parse_from([&["aspen-bench", "floor"], args].concat()).unwrap();
            check_command(&cli.command).map(|()| cli.command)
        };
        let Ok(TestCommand::Floor { redb_samples, .. }) = floor(&[]) else { panic!() };
        assert_eq!(redb_samples, FLOOR_REDB_SAMPLES_DEFAULT);
        let Ok(TestCommand::Floor { redb_samples, .. }) = floor(&["--redb-samples", "50"]) else {
            panic!()
        };
        assert_eq!(redb_samples, 50);
        let error = floor(&["--redb-samples", "0"]).unwrap_err();
        assert!(error.contains("--redb-samples") && error.contains("FLOOR_SAMPLES_MAX"), "{error}");
    }
}
