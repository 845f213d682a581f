//! summary.json: what a run was, how it came out, and its numbers.

use serde::{Deserialize, Serialize};

use crate::checker::{CheckVerdict, Outcome, overall};
use crate::history::{EventKind, Events, History, OpType};

/// The contents of summary.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSummary {
    /// The scenario file's name.
    pub scenario: String,
    /// The scenario's description.
    pub description: String,
    /// The seed the run used; running the scenario with it again draws the same choices.
    pub seed: u64,
    /// The worst verdict: `fail` if any check failed, else `unknown` if any was undecided.
    pub outcome: Outcome,
    /// One verdict per check run.
    pub verdicts: Vec<CheckVerdict>,
    /// How many operations ended which way, and how many faults and leader changes happened.
    pub counts: Counts,
    /// Latency of the operations that completed `ok`.
    pub latency: Latency,
    /// When things happened.
    pub timings: Timings,
}

/// Counters of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    /// Operations invoked.
    pub operations: usize,
    /// Operations that completed `ok`.
    pub ok: usize,
    /// Operations that completed `fail`.
    pub fail: usize,
    /// Operations that completed `info` or never completed.
    pub info: usize,
    /// Faults injected (`fault_start` events).
    pub faults: usize,
    /// Leaders observed (`leader` events).
    pub leader_changes: usize,
}

/// Latency percentiles by nearest rank, in milliseconds; `None` without any `ok` operation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    /// The median.
    pub p50_ms: Option<f64>,
    /// The 99th percentile.
    pub p99_ms: Option<f64>,
    /// The slowest.
    pub max_ms: Option<f64>,
}

/// When the run and its steps happened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timings {
    /// From the start of the run to its last record or event, in milliseconds.
    pub duration_ms: u64,
    /// Each step, from its `step` event to the next one (or the end of the run).
    pub steps: Vec<StepTiming>,
}

/// One step's span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepTiming {
    /// The step, as the `step` event's detail names it (`steps[3] fault`).
    pub step: String,
    /// When it started, in milliseconds since the run started.
    pub start_ms: u64,
    /// When the next step started or the run ended.
    pub end_ms: u64,
}

impl RunSummary {
    /// Summarizes a run from its verdicts and recorded data.
    pub fn build(
        scenario: &str,
        description: &str,
        seed: u64,
        verdicts: Vec<CheckVerdict>,
        history: &History,
        events: &Events,
    ) -> Self {
        let operations = history.operations();
        let count =
            |outcome: OpType| operations.iter().filter(|op| op.outcome() == outcome).count();
        let counts = Counts {
            operations: operations.len(),
            ok: count(OpType::Ok),
            fail: count(OpType::Fail),
            info: count(OpType::Info),
            faults: events.of_kind(EventKind::FaultStart).count(),
            leader_changes: events.of_kind(EventKind::Leader).count(),
        };
        let mut latencies: Vec<u64> = operations
            .iter()
            .filter(|op| op.outcome() == OpType::Ok)
            .filter_map(|op| op.latency_ns())
            .collect();
        latencies.sort_unstable();
        let latency = Latency {
            p50_ms: percentile_ms(&latencies, 50.0),
            p99_ms: percentile_ms(&latencies, 99.0),
            max_ms: latencies.last().map(|ns| *ns as f64 / 1e6),
        };
        let end_ns = run_end_ns(history, events);
        let timings =
            Timings { duration_ms: end_ns / 1_000_000, steps: step_timings(events, end_ns) };
        let outcome = overall(&verdicts);
        let (scenario, description) = (scenario.to_string(), description.to_string());
        Self { scenario, description, seed, outcome, verdicts, counts, latency, timings }
    }
}

/// The time of the last record or event.
pub fn run_end_ns(history: &History, events: &Events) -> u64 {
    history.ops().last().map_or(0, |op| op.time_ns).max(events.end_ns())
}

/// The nearest-rank percentile of sorted nanosecond latencies, in milliseconds.
fn percentile_ms(sorted_ns: &[u64], percent: f64) -> Option<f64> {
    if sorted_ns.is_empty() {
        return None;
    }
    let rank = ((percent / 100.0) * sorted_ns.len() as f64).ceil() as usize;
    Some(sorted_ns[rank.clamp(1, sorted_ns.len()) - 1] as f64 / 1e6)
}

fn step_timings(events: &Events, end_ns: u64) -> Vec<StepTiming> {
    let steps: Vec<_> = events.of_kind(EventKind::Step).collect();
    let ends = steps.iter().skip(1).map(|event| event.time_ns).chain([end_ns]);
    steps
        .iter()
        .zip(ends)
        .map(|(event, end)| StepTiming {
            step: event.detail.clone(),
            start_ms: event.time_ns / 1_000_000,
            end_ms: end.max(event.time_ns) / 1_000_000,
        })
        .collect()
}
