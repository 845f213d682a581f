//! The summary's numbers and the report page, from a synthetic run.

use super::*;
use crate::checker::{CheckVerdict, Outcome};
use crate::history::{
    Event, EventKind, Events, History, ManualClock, OpFunction, OpType, OpValue, Recorder,
};
use crate::scenario::CheckKind;

/// Ten writes of 1..10 ms latency (one fails, one gets info), two leaders, three faults of
/// which the last is never healed, and two steps.
fn synthetic_run() -> RunData {
    let clock = ManualClock::default();
    let mut recorder = Recorder::new(clock.clone());
    for op in 0..10u64 {
        let start_ns = op * 100_000_000;
        clock.set_ns(start_ns);
        recorder
            .invoke(op, OpFunction::Write, "k", OpValue::Value(op.to_string()), Some(0))
            .unwrap();
        clock.set_ns(start_ns + (op + 1) * 1_000_000);
        let outcome = match op {
            3 => OpType::Fail,
            7 => OpType::Info,
            _ => OpType::Ok,
        };
        recorder.complete(op, outcome, None).unwrap();
    }
    let event = |ms: u64, kind, node, detail: &str| Event {
        time_ns: ms * 1_000_000,
        kind,
        node,
        detail: detail.into(),
    };
    let events = Events::from_events(vec![
        event(0, EventKind::Step, None, "steps[0] bootstrap"),
        event(10, EventKind::Leader, Some(0), "term 1"),
        event(200, EventKind::Step, None, "steps[1] nemesis"),
        event(200, EventKind::FaultStart, Some(0), "kill"),
        event(300, EventKind::Leader, Some(1), "term 2"),
        event(400, EventKind::FaultEnd, Some(0), "restart"),
        event(500, EventKind::FaultStart, Some(2), "crash_actor raft"),
        event(550, EventKind::FaultEnd, Some(2), "crash_actor raft"),
        event(700, EventKind::FaultStart, Some(1), "pause"),
    ]);
    let history = recorder.into_history();
    let verdicts = vec![
        CheckVerdict::pass(CheckKind::Linearizability, "all 1 keys are linearizable"),
        CheckVerdict::fail(CheckKind::Durability, "key \"k\": write of \"5\" <lost>"),
    ];
    let summary = RunSummary::build(
        "leader_kill_failover.json",
        "Kill the leader & recover.",
        42,
        verdicts,
        &history,
        &events,
    );
    RunData { summary, history, events }
}

#[test]
fn the_summary_counts_operations_and_takes_percentiles_of_ok_latencies() {
    let summary = synthetic_run().summary;
    assert_eq!(summary.outcome, Outcome::Fail);
    assert_eq!(
        summary.counts,
        Counts { operations: 10, ok: 8, fail: 1, info: 1, faults: 3, leader_changes: 2 }
    );
    // ok latencies are 1, 2, 3, 5, 6, 7, 9, 10 ms.
    assert_eq!(
        summary.latency,
        Latency { p50_ms: Some(5.0), p99_ms: Some(10.0), max_ms: Some(10.0) }
    );
    assert_eq!(summary.timings.duration_ms, 910);
    let steps: Vec<(&str, u64, u64)> =
        summary.timings.steps.iter().map(|s| (s.step.as_str(), s.start_ms, s.end_ms)).collect();
    assert_eq!(steps, [("steps[0] bootstrap", 0, 200), ("steps[1] nemesis", 200, 910)]);
}

#[test]
fn the_report_shows_verdicts_one_window_per_fault_and_references_nothing_outside() {
    let run = synthetic_run();
    let html = render_html(&run);
    assert!(html.contains("all 1 keys are linearizable"));
    assert!(
        html.contains("key &quot;k&quot;: write of &quot;5&quot; &lt;lost&gt;"),
        "reasons are escaped"
    );
    assert!(html.contains(r#"<span class="badge fail">FAIL</span>"#));
    assert_eq!(html.matches(r#"class="fault-window""#).count(), 3, "one shaded window per fault");
    assert!(html.contains("pause node 1 from 0.700 s to the end (never healed)"));
    assert_eq!(html.matches(r#"<g class="leader">"#).count(), 2);
    assert_eq!(html.matches(r#"class="op ok""#).count(), 8);
    assert_eq!(html.matches(r#"class="op fail""#).count(), 1);
    assert_eq!(html.matches(r#"class="op info""#).count(), 1);
    assert!(html.contains("<svg") && html.contains("<polyline class=\"throughput\""));
    for external in ["http://", "https://", "<script", "<link", "src="] {
        assert!(!html.contains(external), "the report must be self-contained, found {external}");
    }
}

#[test]
fn a_run_directory_round_trips_and_its_report_can_be_rebuilt() {
    let run = synthetic_run();
    let dir = tempfile::tempdir().unwrap();
    run.write(dir.path()).unwrap();
    assert_eq!(RunData::load(dir.path()).unwrap(), run);
    std::fs::remove_file(dir.path().join(REPORT_FILE)).unwrap();
    let path = rebuild_report(dir.path()).unwrap();
    assert_eq!(std::fs::read_to_string(path).unwrap(), render_html(&run));
    std::fs::write(dir.path().join(HISTORY_FILE), "{}\n").unwrap();
    let error = RunData::load(dir.path()).unwrap_err().to_string();
    assert!(error.ends_with("history.jsonl: line 1: missing field `index` (column 2)"), "{error}");
}

#[test]
fn an_empty_run_still_renders() {
    let summary = RunSummary::build(
        "empty.json",
        "Nothing happened.",
        1,
        Vec::new(),
        &History::default(),
        &Events::default(),
    );
    let html =
        render_html(&RunData { summary, history: History::default(), events: Events::default() });
    assert!(html.contains("no check was run") && html.contains("</svg>"));
}
