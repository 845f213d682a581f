//! The idle test: what the node processes cost when nobody uses them.
//!
//! A node that burns CPU while idle (timers, polling, heartbeats) makes every figure per
//! operation of a slow test look worse, and competes with the work on a small machine. This
//! test reads the node processes' CPU time twice, `--duration-ms` apart, and their resident
//! memory at the end.
//!
//! Caveats:
//! - "Idle" means no client requests; a Raft leader still sends heartbeats to its followers.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cluster::{parse_pids, read_cluster_dir};
use crate::cpu::{process_rss_bytes, processes_cpu_seconds};
use crate::report::{IdleFigures, TestReport};

/// Watches the node processes for `duration_ms` and reports their CPU and memory.
pub fn run_idle(
    pids: &[String],
    cluster_dir: Option<&Path>,
    duration_ms: u64,
) -> Result<TestReport, String> {
    let pids = match (pids.is_empty(), cluster_dir) {
        (false, _) => parse_pids(pids)?,
        (true, Some(dir)) => read_cluster_dir(dir)?.1,
        (true, None) => return Err("no node processes: give --pids or --cluster-dir".into()),
    };
    let pids: Vec<i32> = pids.iter().map(|p| p.pid).collect();
    eprintln!("aspen-bench: idle: watching {} node process(es) for {duration_ms} ms", pids.len());
    let before = processes_cpu_seconds(&pids).ok_or("a node process cannot be read")?;
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(duration_ms));
    let after = processes_cpu_seconds(&pids).ok_or("a node process exited during the test")?;
    let seconds = started.elapsed().as_secs_f64();
    let node_rss_mib = pids
        .iter()
        .map(|pid| process_rss_bytes(*pid).map(|bytes| bytes as f64 / (1024.0 * 1024.0)))
        .collect::<Result<Vec<_>, _>>()?;
    let idle = IdleFigures { node_cpu_cores: (after - before) / seconds, node_rss_mib };
    Ok(TestReport { test: "idle".into(), seconds, idle: Some(idle), ..Default::default() })
}
