//! What a run shows while it goes.
//!
//! Every notable thing (a step, a fault, a new leader, a verdict) is one log line on stdout.
//! When stdout is a terminal, a status line under the log is redrawn a few times a second:
//! the step, the time since the run started, the operations completed, and the faults in
//! effect (nodes down or paused, network faults). When it is not (CI, a pipe, a file), only the plain log lines are written.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::cluster::{Cluster, NodeStatus};

/// True while a status line is on the terminal and must be cleared before a log line.
static STATUS_SHOWN: AtomicBool = AtomicBool::new(false);
/// Serializes writes, so that a log line and a redraw never interleave.
static OUTPUT: Mutex<()> = Mutex::new(());

/// How often the status line is redrawn.
const REDRAW_EVERY: Duration = Duration::from_millis(250);

/// Prints one log line (above the status line on a terminal).
pub(crate) fn log(message: impl AsRef<str>) {
    let _output = OUTPUT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut stdout = std::io::stdout().lock();
    if STATUS_SHOWN.load(Ordering::SeqCst) {
        let _ = write!(stdout, "\r\x1b[K");
    }
    let _ = writeln!(stdout, "aspen-lab: {}", message.as_ref());
    let _ = stdout.flush();
}

/// Redraws the status line until dropped; does nothing when stdout is not a terminal.
pub(super) struct Progress {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Starts the status line for `cluster`, if stdout is a terminal.
    pub(super) fn start(cluster: Arc<Cluster>) -> Self {
        if !std::io::stdout().is_terminal() {
            return Self { task: None };
        }
        let started = Instant::now();
        let task = tokio::spawn(async move {
            loop {
                draw(&status_line(&cluster, started.elapsed()));
                tokio::time::sleep(REDRAW_EVERY).await;
            }
        });
        Self { task: Some(task) }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _output = OUTPUT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if STATUS_SHOWN.swap(false, Ordering::SeqCst) {
                print!("\r\x1b[K");
                let _ = std::io::stdout().flush();
            }
        }
    }
}

fn draw(line: &str) {
    let _output = OUTPUT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut stdout = std::io::stdout().lock();
    let _ = write!(stdout, "\r\x1b[K{line}");
    let _ = stdout.flush();
    STATUS_SHOWN.store(true, Ordering::SeqCst);
}

/// `▶ steps[3] workload · 12.4 s · 1830 ops · faults: node 1 down`.
pub(super) fn status_line(cluster: &Cluster, elapsed: Duration) -> String {
    let step = cluster.step.lock().expect("step").clone();
    let ops = cluster.ops_done.load(Ordering::Relaxed);
    let mut faults = Vec::new();
    // Before the bootstrap, nodes that are not started yet are not faults.
    let started = cluster.bootstrapped.load(Ordering::Relaxed);
    for (index, slot) in cluster.slots.lock().expect("slots").iter().enumerate().filter(|_| started)
    {
        match slot.state {
            NodeStatus::Down => faults.push(format!("node {index} down")),
            NodeStatus::Paused => faults.push(format!("node {index} paused")),
            NodeStatus::Running | NodeStatus::Removed => {}
        }
    }
    faults.extend(cluster.network_faults.lock().expect("network faults").iter().cloned());
    let faults = if faults.is_empty() { "none".to_string() } else { faults.join(", ") };
    format!("▶ {step} · {:.1} s · {ops} ops · faults: {faults}", elapsed.as_secs_f64())
}
