//! The run's clock: nanoseconds since the run started, never going back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A source of run-relative time. History records and events of one run share one clock, so
/// the report can lay them on one timeline.
pub trait Clock {
    /// Nanoseconds since the run started.
    fn now_ns(&self) -> u64;
}

/// The real clock of a run: monotonic (`Instant`), starting at 0 when created. It is `Copy`, so
/// the recorder and the event log can each hold one.
#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    start: Instant,
}

impl RunClock {
    /// A clock that reads 0 now.
    pub fn start() -> Self {
        Self { start: Instant::now() }
    }
}

impl Clock for RunClock {
    fn now_ns(&self) -> u64 {
        // u64 nanoseconds last 584 years; saturate rather than wrap past that.
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A clock that only moves when told to, for tests and for replaying recorded times.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now_ns: Arc<AtomicU64>,
}

impl ManualClock {
    /// Sets the time every clone of this clock reads.
    pub fn set_ns(&self, now_ns: u64) {
        self.now_ns.store(now_ns, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> u64 {
        self.now_ns.load(Ordering::SeqCst)
    }
}
