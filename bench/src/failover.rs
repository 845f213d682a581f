//! The failover test: kill the leader under load, time the recovery, restart the node.
//!
//! `--clients` writers run closed-loop against all endpoints. After `--warmup-ms` the leader's
//! process gets SIGKILL, and the test measures, from that instant:
//!
//! - `new_leader_ms`: until a surviving node names another leader in `/raft-metrics`;
//! - `first_ack_ms`: until the first write *sent after the kill* is acknowledged (a write sent
//!   before it and answered after is not evidence that the cluster recovered);
//!
//! then restarts the killed node with its own executable, arguments and working directory
//! (see `process`), measures `restart_ready_ms` until its `/health` answers 200, and lets the
//! writers run `--after-ms` more before it stops them.
//!
//! A writer whose request fails (refused by the dead node, or timed out behind it after the
//! short failover `--request-timeout-ms`) moves to the next endpoint after a short pause, as an
//! etcd client's balancer does; failed writes are counted as errors, which a failover has.
//!
//! Caveats:
//! - No node CPU figure: the killed process takes its CPU time with it.
//! - A writer stuck in a request when the leader dies sees the recovery only when that request
//!   ends, so `first_ack_ms` includes up to one request timeout of client-side delay only when
//!   every writer is stuck at once.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::args::TestFlags;
use crate::client::{Connection, HttpVersion};
use crate::cluster::{Targets, current_leader, leader_named_by, node_ids};
use crate::commands::report_errors;
use crate::limits::{
    FAILOVER_CLIENTS_DEFAULT, FAILOVER_ERROR_BACKOFF_MS, FAILOVER_POLL_INTERVAL_MS,
    FAILOVER_REQUEST_TIMEOUT_MS_DEFAULT, FAILOVER_WAIT_MS_MAX, KILL_EXIT_MS_MAX,
};
use crate::process::{Relaunch, kill9, wait_gone};
use crate::report::{FailoverFigures, TestReport};
use crate::stats::{LatencySummary, nanos};
use crate::workload::{Outcome, key, note_error, value};

/// What the writers share with the test's main thread.
struct Shared {
    stop: AtomicBool,
    next: AtomicU64,
    total: u64,
    deadline: Instant,
    /// When the leader was killed, once it was.
    killed_at: Mutex<Option<Instant>>,
    /// Nanoseconds from the kill to the first acknowledged write sent after it (`u64::MAX`:
    /// none yet).
    first_ack_ns: AtomicU64,
}

/// Runs the failover test and returns its report.
pub fn run_failover(
    flags: &TestFlags,
    warmup_ms: u64,
    after_ms: u64,
) -> Result<TestReport, String> {
    let mut targets =
        Targets::resolve(&flags.endpoints, &flags.pids, flags.cluster_dir.as_deref())?;
    let poll_timeout = Duration::from_millis(FAILOVER_REQUEST_TIMEOUT_MS_DEFAULT);
    let ids = node_ids(&targets.endpoints, poll_timeout, flags.http)?;
    let control = connections(&targets.endpoints, poll_timeout, flags.http)?;
    let old_leader = current_leader(&control).ok_or("no node names a leader")?;
    let pid = targets.pid_of(old_leader).ok_or(format!(
        "no pid for the leader, node {old_leader}: give --pids ID=PID or --cluster-dir"
    ))?;
    let relaunch = Relaunch::capture(pid)?;
    let leader_index = ids.iter().position(|id| *id == old_leader);
    let clients = flags.clients.unwrap_or(FAILOVER_CLIENTS_DEFAULT);
    let timeout = Duration::from_millis(
        flags.request_timeout_ms.unwrap_or(FAILOVER_REQUEST_TIMEOUT_MS_DEFAULT),
    );
    let shared = Shared {
        stop: AtomicBool::new(false),
        next: AtomicU64::new(0),
        total: flags.total,
        deadline: Instant::now() + Duration::from_millis(flags.duration_ms),
        killed_at: Mutex::new(None),
        first_ack_ns: AtomicU64::new(u64::MAX),
    };
    eprintln!(
        "aspen-bench: failover: {clients} writers; leader is node {old_leader} (pid {pid}); \
         killing it in {warmup_ms} ms"
    );
    let started = Instant::now();
    let mut figures = FailoverFigures { old_leader, ..Default::default() };
    let mut outcome = Outcome::default();
    let value = value(flags.val_size);
    let endpoints = targets.endpoints.clone();
    std::thread::scope(|scope| -> Result<(), String> {
        let writers: Vec<_> = (0..clients)
            .map(|client| {
                let (shared, value, endpoints) = (&shared, &value, &endpoints);
                let plan = WriterPlan { endpoints, timeout, http: flags.http };
                scope.spawn(move || writer(client, &plan, flags.key_size, value, shared))
            })
            .collect();
        let result = (|| {
            std::thread::sleep(Duration::from_millis(warmup_ms));
            kill_and_recover(&shared, pid, &control, leader_index, &mut figures)?;
            let started = restart(&relaunch, &mut targets, old_leader, pid, &mut figures)?;
            let health = leader_index.map(|i| &control[i]);
            figures.restart_ready_ms = health.and_then(|c| wait_healthy(c, started));
            std::thread::sleep(Duration::from_millis(after_ms));
            Ok(())
        })();
        shared.stop.store(true, Ordering::SeqCst);
        for handle in writers {
            let (latencies, errors, samples) = handle.join().expect("a writer panicked");
            outcome.latencies_ns.extend(latencies);
            outcome.errors += errors;
            samples.into_iter().for_each(|s| note_error(&mut outcome.error_samples, s));
        }
        result
    })?;
    outcome.elapsed = started.elapsed();
    if shared.next.load(Ordering::SeqCst) >= shared.total {
        eprintln!("aspen-bench: failover: the writers used up --total before the test ended");
    }
    report_errors(&outcome);
    Ok(failover_report(flags, clients, endpoints.len(), figures, outcome))
}

fn failover_report(
    flags: &TestFlags,
    clients: usize,
    endpoints: usize,
    figures: FailoverFigures,
    mut outcome: Outcome,
) -> TestReport {
    let mut report = TestReport {
        test: "failover".into(),
        clients,
        conns: clients,
        http: Some(flags.http.number()),
        endpoints,
        key_bytes: flags.key_size,
        value_bytes: flags.val_size,
        failover: Some(figures),
        ..Default::default()
    };
    let summary = LatencySummary::from_nanos(&mut outcome.latencies_ns);
    report.set_latencies(&summary, outcome.errors, outcome.elapsed.as_secs_f64());
    report
}

fn connections(
    endpoints: &[String],
    timeout: Duration,
    http: HttpVersion,
) -> Result<Vec<Connection>, String> {
    endpoints.iter().map(|e| Connection::new(e, timeout, http).map_err(|e| e.to_string())).collect()
}

/// SIGKILL, then wait for a new leader and for the first acknowledged write after the kill.
fn kill_and_recover(
    shared: &Shared,
    pid: i32,
    control: &[Connection],
    leader_index: Option<usize>,
    figures: &mut FailoverFigures,
) -> Result<(), String> {
    kill9(pid)?;
    let killed_at = Instant::now();
    *shared.killed_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(killed_at);
    if !wait_gone(pid, Duration::from_millis(KILL_EXIT_MS_MAX)) {
        return Err(format!("process {pid} still runs {KILL_EXIT_MS_MAX} ms after SIGKILL"));
    }
    let survivors: Vec<Connection> = control
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != leader_index)
        .map(|(_, c)| c.clone())
        .collect();
    let old_leader = figures.old_leader;
    // Any survivor naming another leader will do; one may still name the dead one for a while.
    figures.new_leader =
        poll(|| survivors.iter().find_map(|c| leader_named_by(c).filter(|id| *id != old_leader)));
    figures.new_leader_ms = figures.new_leader.map(|_| ms_since(killed_at));
    let first_ack = poll(|| match shared.first_ack_ns.load(Ordering::SeqCst) {
        u64::MAX => None,
        ns => Some(ns),
    });
    figures.first_ack_ms = first_ack.map(|ns| ns as f64 / 1e6);
    eprintln!(
        "aspen-bench: failover: new leader {:?} after {:?} ms, first write after {:?} ms",
        figures.new_leader, figures.new_leader_ms, figures.first_ack_ms
    );
    Ok(())
}

/// Starts the killed node again and records its new pid.
fn restart(
    relaunch: &Relaunch,
    targets: &mut Targets,
    node_id: u64,
    old_pid: i32,
    figures: &mut FailoverFigures,
) -> Result<Instant, String> {
    let started = Instant::now();
    let pid = relaunch.spawn(targets.log_path(node_id).as_deref())?;
    eprintln!("aspen-bench: failover: restarted node {node_id} as pid {pid}");
    figures.restarted_pid = Some(pid);
    targets.replace_pid(node_id, old_pid, pid as i32)?;
    Ok(started)
}

fn wait_healthy(connection: &Connection, started: Instant) -> Option<f64> {
    poll(|| connection.get_json("/health").ok()).map(|_| ms_since(started))
}

/// Polls `check` every `FAILOVER_POLL_INTERVAL_MS` for at most `FAILOVER_WAIT_MS_MAX`.
fn poll<T>(mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_millis(FAILOVER_WAIT_MS_MAX);
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(FAILOVER_POLL_INTERVAL_MS));
    }
}

fn ms_since(instant: Instant) -> f64 {
    instant.elapsed().as_secs_f64() * 1000.0
}

/// Where a writer writes: over one connection of its own to each endpoint.
struct WriterPlan<'a> {
    endpoints: &'a [String],
    timeout: Duration,
    http: HttpVersion,
}

/// One writer: writes until stopped, `total` is used up or the deadline passes; moves to the
/// next endpoint after an error. Returns its latencies, error count and error samples.
fn writer(
    client: usize,
    plan: &WriterPlan<'_>,
    key_bytes: usize,
    value: &str,
    shared: &Shared,
) -> (Vec<u64>, u64, Vec<String>) {
    let connections: Vec<Connection> = plan
        .endpoints
        .iter()
        .filter_map(|e| Connection::new(e, plan.timeout, plan.http).ok())
        .collect();
    let (mut latencies, mut errors, mut samples) = (Vec::new(), 0u64, Vec::new());
    let mut target = client % connections.len().max(1);
    while !shared.stop.load(Ordering::SeqCst) && Instant::now() < shared.deadline {
        let index = shared.next.fetch_add(1, Ordering::SeqCst);
        let Some(connection) = connections.get(target).filter(|_| index < shared.total) else {
            break;
        };
        let begin = Instant::now();
        match connection.put(&key(index, key_bytes), value) {
            Ok(()) => {
                latencies.push(nanos(begin.elapsed()));
                let killed_at = *shared.killed_at.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(killed_at) = killed_at.filter(|k| begin > *k) {
                    shared.first_ack_ns.fetch_min(nanos(killed_at.elapsed()), Ordering::SeqCst);
                }
            }
            Err(error) => {
                errors += 1;
                note_error(&mut samples, error.to_string());
                target = (target + 1) % connections.len();
                std::thread::sleep(Duration::from_millis(FAILOVER_ERROR_BACKOFF_MS));
            }
        }
    }
    (latencies, errors, samples)
}
