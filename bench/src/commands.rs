//! Each test from flags to report: `put`, `get`, `mixed` and `floor` (failover has its own
//! module).
//!
//! A test resolves its targets, learns the floor if asked, writes its key space first where it
//! reads (untimed), then runs the timed phase between two CPU readings of the node processes
//! and of itself, and emits one report.
//!
//! `get` reads linearizably by default (the leader confirms that it still leads with a
//! ReadIndex round; a follower forwards the read to it) or, with `--consistency serializable`,
//! from the applied state of whichever node is asked, with no round trip beyond the client's.
//! Before a serializable test it waits until every endpoint has applied the keys it wrote, so
//! that the reads measure answers rather than a follower's lag. Both compare with the read
//! floor (one round trip).
//!
//! Caveats:
//! - `mixed` reads linearizably only: `--consistency` belongs to `get`.
//! - Before a serializable test every endpoint must say how far it applied (`/raft-metrics`);
//!   one that does not fails the test rather than being read before it caught up.

use std::path::Path;
use std::time::Duration;

use crate::args::{TestCommand, TestFlags};
use crate::client::{Connection, Consistency, Op};
use crate::cluster::{Targets, wait_until_applied};
use crate::cpu::{own_cpu_seconds, processes_cpu_seconds};
use crate::failover::run_failover;
use crate::floor::{Floor, measure_fsync, measure_redb, measure_udp};
use crate::idle::run_idle;
use crate::limits::{
    CATCH_UP_MS_MAX, FLOOR_APPEND_BYTES, FLOOR_FSYNC_SAMPLES_DEFAULT, FLOOR_REDB_SAMPLES_DEFAULT,
    FLOOR_REDB_VALUE_BYTES, FLOOR_UDP_SAMPLES_DEFAULT, REQUEST_TIMEOUT_MS_DEFAULT,
};
use crate::report::{TestReport, emit, load_floor};
use crate::stats::LatencySummary;
use crate::workload::{self, Outcome, Plan, key, value};

/// Runs one test and prints its report.
pub fn run(command: &TestCommand) -> Result<(), String> {
    match command {
        TestCommand::Put(flags) => run_put(flags),
        TestCommand::Get { flags, consistency, key_space } => {
            run_get(flags, *consistency, *key_space)
        }
        TestCommand::Mixed { flags, key_space, write_percent } => {
            run_mixed(flags, *key_space, *write_percent)
        }
        TestCommand::Failover { flags, warmup_ms, after_ms } => {
            let floor = floor_for(flags)?;
            let mut report = run_failover(flags, *warmup_ms, *after_ms)?;
            if let Some(floor) = floor {
                report.set_floor(floor.write_ms());
            }
            emit(&report, flags.json_out.as_deref()).map_err(|e| e.to_string())
        }
        TestCommand::Idle { pids, cluster_dir, duration_ms, json_out } => {
            let report = run_idle(pids, cluster_dir.as_deref(), *duration_ms)?;
            emit(&report, json_out.as_deref()).map_err(|e| e.to_string())
        }
        TestCommand::Floor { dir, fsync_samples, udp_samples, redb_samples, json_out } => {
            let samples =
                FloorSamples { fsync: *fsync_samples, udp: *udp_samples, redb: *redb_samples };
            run_floor(dir, samples, json_out.as_deref()).map(drop)
        }
    }
}

fn run_put(flags: &TestFlags) -> Result<(), String> {
    let setup = Setup::new(flags, 1)?;
    let value = value(flags.val_size);
    let outcome =
        setup.measure(|index| Op::Put { key: key(index, flags.key_size), value: &value })?;
    setup.finish("put", None, outcome, |floor| floor.write_ms())
}

fn run_get(flags: &TestFlags, consistency: Consistency, key_space: u64) -> Result<(), String> {
    let setup = Setup::new(flags, 1)?;
    setup.preload(key_space)?;
    if consistency == Consistency::Serializable {
        setup.wait_until_applied()?;
    }
    let outcome = setup
        .measure(|index| Op::Get { key: key(index % key_space, flags.key_size), consistency })?;
    setup.finish("get", Some(consistency.name()), outcome, |floor| floor.read_ms())
}

fn run_mixed(flags: &TestFlags, key_space: u64, write_percent: u8) -> Result<(), String> {
    let setup = Setup::new(flags, 1)?;
    setup.preload(key_space)?;
    let value = value(flags.val_size);
    let outcome = setup.measure(|index| {
        let key = key(index % key_space, flags.key_size);
        if index % 100 < u64::from(write_percent) {
            Op::Put { key, value: &value }
        } else {
            Op::Get { key, consistency: Consistency::Linearizable }
        }
    })?;
    setup.finish("mixed", None, outcome, |floor| floor.write_ms())
}

/// How many samples each floor measurement takes.
#[derive(Debug, Clone, Copy)]
struct FloorSamples {
    fsync: u64,
    udp: u64,
    redb: u64,
}

impl Default for FloorSamples {
    fn default() -> Self {
        Self {
            fsync: FLOOR_FSYNC_SAMPLES_DEFAULT,
            udp: FLOOR_UDP_SAMPLES_DEFAULT,
            redb: FLOOR_REDB_SAMPLES_DEFAULT,
        }
    }
}

/// Measures and reports the three floors: `floor-fsync`, `floor-udp` and `floor-redb`, in that
/// order. The redb commit's CPU is the benchmark's own, so it goes in `client_cpu_s_per_op`.
fn run_floor(dir: &Path, samples: FloorSamples, json_out: Option<&Path>) -> Result<Floor, String> {
    eprintln!(
        "aspen-bench: floor: {} × 4 KiB append + fdatasync in {}",
        samples.fsync,
        dir.display()
    );
    let (fsync, fsync_time) =
        measure_fsync(dir, samples.fsync).map_err(|e| format!("{}: {e}", dir.display()))?;
    eprintln!("aspen-bench: floor: {} loopback UDP round trips", samples.udp);
    let (udp, udp_time) = measure_udp(samples.udp).map_err(|e| format!("loopback UDP: {e}"))?;
    eprintln!("aspen-bench: floor: {} durable redb commits in {}", samples.redb, dir.display());
    let redb =
        measure_redb(dir, samples.redb).map_err(|e| format!("redb in {}: {e}", dir.display()))?;
    let floor_report = |test: &str, summary, time: std::time::Duration, bytes| {
        let mut report =
            TestReport { test: test.into(), clients: 1, value_bytes: bytes, ..Default::default() };
        report.set_latencies(summary, 0, time.as_secs_f64());
        report
    };
    let reports = [
        floor_report("floor-fsync", &fsync, fsync_time, FLOOR_APPEND_BYTES),
        floor_report("floor-udp", &udp, udp_time, 64),
        TestReport {
            key_bytes: 8,
            client_cpu_s_per_op: Some(redb.cpu_s_per_commit),
            ..floor_report("floor-redb", &redb.latencies, redb.elapsed, FLOOR_REDB_VALUE_BYTES)
        },
    ];
    for report in &reports {
        emit(report, json_out).map_err(|e| e.to_string())?;
    }
    Ok(Floor { fsync_ms: fsync.p50_ms, udp_ms: udp.p50_ms })
}

/// The floor a test compares with: read back with --floor, measured with --floor-dir, or none.
fn floor_for(flags: &TestFlags) -> Result<Option<Floor>, String> {
    if let Some(path) = &flags.floor {
        return load_floor(path).map(Some);
    }
    match &flags.floor_dir {
        Some(dir) => run_floor(dir, FloorSamples::default(), flags.json_out.as_deref()).map(Some),
        None => Ok(None),
    }
}

/// What a measured test knows before it starts.
struct Setup<'a> {
    flags: &'a TestFlags,
    targets: Targets,
    plan: Plan,
    floor: Option<Floor>,
}

/// A timed phase and the CPU it cost.
struct Measured {
    outcome: Outcome,
    node_cpu_s: Option<f64>,
    client_cpu_s: f64,
}

impl<'a> Setup<'a> {
    fn new(flags: &'a TestFlags, clients_default: usize) -> Result<Self, String> {
        let targets =
            Targets::resolve(&flags.endpoints, &flags.pids, flags.cluster_dir.as_deref())?;
        let clients = flags.clients.unwrap_or(clients_default);
        let plan = Plan {
            endpoints: targets.endpoints.clone(),
            clients,
            conns: flags.conns.unwrap_or(clients).min(clients),
            http: flags.http,
            total: flags.total,
            request_timeout: Duration::from_millis(
                flags.request_timeout_ms.unwrap_or(REQUEST_TIMEOUT_MS_DEFAULT),
            ),
            duration_max: Duration::from_millis(flags.duration_ms),
        };
        let floor = floor_for(flags)?;
        Ok(Self { flags, targets, plan, floor })
    }

    /// Writes keys `0..key_space` once (untimed) so that reads find values; any error fails
    /// the test.
    fn preload(&self, key_space: u64) -> Result<(), String> {
        let plan = Plan { total: key_space, ..self.plan.clone() };
        let value = value(self.flags.val_size);
        let key_bytes = self.flags.key_size;
        let outcome =
            workload::run(&plan, |index| Op::Put { key: key(index, key_bytes), value: &value })
                .map_err(|e| e.to_string())?;
        if outcome.errors > 0 || outcome.ops() < key_space {
            return Err(format!(
                "writing the {key_space} keys to read failed ({} errors, {} written): {}",
                outcome.errors,
                outcome.ops(),
                outcome.error_samples.join("; ")
            ));
        }
        eprintln!(
            "aspen-bench: wrote {key_space} keys to read in {:.2} s",
            outcome.elapsed.as_secs_f64()
        );
        Ok(())
    }

    /// Waits (untimed) until every endpoint has applied what the most advanced of them had,
    /// which covers the preloaded keys when the leader is among them.
    fn wait_until_applied(&self) -> Result<(), String> {
        let plan = &self.plan;
        let connections = plan
            .endpoints
            .iter()
            .map(|endpoint| Connection::new(endpoint, plan.request_timeout, plan.http))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let index = wait_until_applied(&connections, Duration::from_millis(CATCH_UP_MS_MAX))
            .map_err(|e| format!("waiting for every endpoint to apply the keys to read: {e}"))?;
        eprintln!("aspen-bench: every endpoint applied the log up to index {index}");
        Ok(())
    }

    fn measure<'v, F>(&self, op: F) -> Result<Measured, String>
    where
        F: Fn(u64) -> Op<'v> + Sync,
    {
        let plan = &self.plan;
        eprintln!(
            "aspen-bench: {} operations, {} client(s) over {} HTTP/{} connection(s) to {} \
             endpoint(s)",
            plan.total,
            plan.clients,
            plan.conns,
            plan.http.number(),
            plan.endpoints.len()
        );
        let pids = self.targets.pid_list();
        let nodes_before = processes_cpu_seconds(&pids);
        let own_before = own_cpu_seconds();
        let outcome = workload::run(plan, op).map_err(|e| e.to_string())?;
        let own_after = own_cpu_seconds();
        let nodes_after = processes_cpu_seconds(&pids);
        let node_cpu_s = nodes_before.zip(nodes_after).map(|(before, after)| after - before);
        Ok(Measured { outcome, node_cpu_s, client_cpu_s: own_after - own_before })
    }

    fn finish(
        self,
        test: &str,
        consistency: Option<&str>,
        mut measured: Measured,
        floor_ms: impl Fn(&Floor) -> f64,
    ) -> Result<(), String> {
        let outcome = &mut measured.outcome;
        let attempts = (outcome.ops() + outcome.errors).max(1) as f64;
        let mut report = TestReport {
            test: test.into(),
            consistency: consistency.map(str::to_string),
            clients: self.plan.clients,
            conns: self.plan.conns,
            http: Some(self.plan.http.number()),
            endpoints: self.plan.endpoints.len(),
            key_bytes: self.flags.key_size,
            value_bytes: self.flags.val_size,
            node_cpu_s_per_op: measured.node_cpu_s.map(|s| s / attempts),
            client_cpu_s_per_op: Some(measured.client_cpu_s / attempts),
            ..Default::default()
        };
        let summary = LatencySummary::from_nanos(&mut outcome.latencies_ns);
        report.set_latencies(&summary, outcome.errors, outcome.elapsed.as_secs_f64());
        if let Some(floor) = &self.floor {
            report.set_floor(floor_ms(floor));
        }
        report_errors(outcome);
        emit(&report, self.flags.json_out.as_deref()).map_err(|e| e.to_string())
    }
}

/// Says on stderr what went wrong, if anything did.
pub fn report_errors(outcome: &Outcome) {
    if outcome.timed_out {
        eprintln!("aspen-bench: the test reached its --duration-ms before --total operations");
    }
    if outcome.errors > 0 {
        eprintln!("aspen-bench: {} operations failed, for example:", outcome.errors);
        for sample in &outcome.error_samples {
            eprintln!("  {sample}");
        }
    }
}
