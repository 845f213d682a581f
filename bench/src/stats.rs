//! Latency percentiles from raw samples.
//!
//! Every sample is kept (8 bytes per operation, bounded by `TOTAL_OPS_MAX`) and sorted once at
//! the end, so the percentiles are exact rather than estimated by a histogram's buckets.
//! Percentiles use the nearest-rank method: p50 of 4 samples is the 2nd smallest.
//!
//! Caveats:
//! - No coordinated-omission correction: the clients are closed-loop (a client sends its next
//!   request when the last one is answered), as in etcd's benchmark tool, so a stall delays
//!   the requests that would have been sent during it instead of making them slow.

use std::time::Duration;

/// The latency distribution of a set of operations, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

impl LatencySummary {
    /// The summary of `samples_ns` (nanoseconds; sorted in place). All zero when empty.
    pub fn from_nanos(samples_ns: &mut [u64]) -> Self {
        if samples_ns.is_empty() {
            return Self::default();
        }
        samples_ns.sort_unstable();
        let ms = |ns: u64| ns as f64 / 1e6;
        Self {
            count: samples_ns.len() as u64,
            p50_ms: ms(percentile(samples_ns, 50.0)),
            p90_ms: ms(percentile(samples_ns, 90.0)),
            p99_ms: ms(percentile(samples_ns, 99.0)),
            max_ms: ms(*samples_ns.last().expect("not empty")),
        }
    }
}

/// The nearest-rank percentile `p` (0 < p ≤ 100) of sorted, non-empty `sorted`.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    assert!(!sorted.is_empty(), "percentile of no samples");
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `duration` in nanoseconds, saturating (a sample over 584 years is not a concern).
pub fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples: Vec<u64> = (1..=100).rev().map(|ms| ms * 1_000_000).collect();
        let summary = LatencySummary::from_nanos(&mut samples);
        assert_eq!(summary.count, 100);
        assert_eq!(summary.p50_ms, 50.0);
        assert_eq!(summary.p90_ms, 90.0);
        assert_eq!(summary.p99_ms, 99.0);
        assert_eq!(summary.max_ms, 100.0);
    }

    #[test]
    fn few_and_no_samples() {
        let mut one = vec![2_000_000];
        let summary = LatencySummary::from_nanos(&mut one);
        assert_eq!((summary.p50_ms, summary.p99_ms, summary.max_ms), (2.0, 2.0, 2.0));
        let mut four = vec![4, 1, 3, 2];
        assert_eq!(LatencySummary::from_nanos(&mut four).p50_ms, 2e-6);
        assert_eq!(LatencySummary::from_nanos(&mut []), LatencySummary::default());
    }
}
