//! Counters of the data path, for the node's metrics: what clients asked of this node and how
//! it went. Relaxed atomics: they are statistics, never used to decide anything.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::api::KeyValueStoreError;

/// Live counters, shared by every client of one node.
#[derive(Debug, Default)]
pub struct DataPathCounters {
    writes: AtomicU64,
    reads: AtomicU64,
    scans: AtomicU64,
    forwarded: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataPathCounts {
    /// Writes answered (successfully or with a definite outcome such as a CAS mismatch).
    pub writes: u64,
    /// Reads answered (including `NotFound`).
    pub reads: u64,
    /// Scans answered.
    pub scans: u64,
    /// Requests this node forwarded to the leader.
    pub forwarded: u64,
    /// Requests refused as invalid (bad input, over a limit).
    pub rejected: u64,
    /// Requests that failed otherwise (no leader, timeout, not initialized, restarting).
    pub failed: u64,
}

/// Which operation a request was.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Operation {
    Write,
    Read,
    Scan,
}

impl DataPathCounters {
    /// Counts one finished request.
    pub(crate) fn record<T>(&self, operation: Operation, result: &Result<T, KeyValueStoreError>) {
        let counter = match result {
            Ok(_)
            | Err(KeyValueStoreError::NotFound { .. })
            | Err(KeyValueStoreError::CompareAndSwapFailed { .. }) => match operation {
                Operation::Write => &self.writes,
                Operation::Read => &self.reads,
                Operation::Scan => &self.scans,
            },
            Err(KeyValueStoreError::InvalidRequest { .. }) => &self.rejected,
            Err(_) => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one request forwarded to the leader.
    pub(crate) fn record_forward(&self) {
        self.forwarded.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> DataPathCounts {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        DataPathCounts {
            writes: load(&self.writes),
            reads: load(&self.reads),
            scans: load(&self.scans),
            forwarded: load(&self.forwarded),
            rejected: load(&self.rejected),
            failed: load(&self.failed),
        }
    }
}
