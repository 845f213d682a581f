//! History files, well-formedness, the recorder's rules, and fault windows.

use super::*;

fn recorder() -> (Recorder<ManualClock>, ManualClock) {
    let clock = ManualClock::default();
    (Recorder::new(clock.clone()), clock)
}

fn value(text: &str) -> OpValue {
    OpValue::Value(text.into())
}

#[test]
fn the_recorder_assigns_indexes_and_monotonic_times() {
    let (mut recorder, clock) = recorder();
    clock.set_ns(100);
    assert_eq!(recorder.invoke(1, OpFunction::Write, "k", value("a"), Some(0)), Ok(0));
    clock.set_ns(50); // a clock that went back must not make the history go back
    assert_eq!(recorder.invoke(2, OpFunction::Read, "k", OpValue::Absent, Some(1)), Ok(1));
    clock.set_ns(300);
    assert_eq!(recorder.complete(2, OpType::Ok, Some("a".into())), Ok(2));
    assert_eq!(recorder.in_flight(), vec![1]);
    let history = recorder.into_history();
    let times: Vec<u64> = history.ops().iter().map(|op| op.time_ns).collect();
    assert_eq!(times, [100, 100, 300]);
    assert_eq!(history.ops()[2].value, value("a"));
    assert_eq!(history.ops()[2].node, Some(1), "a completion keeps its invocation's node");
    let operations = history.operations();
    assert_eq!(operations[0].outcome(), OpType::Info, "in flight at the end counts as info");
    assert_eq!(operations[1].latency_ns(), Some(200));
}

#[test]
fn the_recorder_refuses_what_a_client_cannot_do() {
    let (mut recorder, _clock) = recorder();
    let cas = OpValue::Cas { expected: None, new: "b".into() };
    recorder.invoke(1, OpFunction::Cas, "k", cas.clone(), None).expect("first invoke");
    assert_eq!(
        recorder.invoke(1, OpFunction::Read, "k", OpValue::Absent, None),
        Err(RecordError::InFlight { process: 1 })
    );
    assert!(matches!(
        recorder.complete(1, OpType::Ok, Some("x".into())),
        Err(RecordError::Shape { .. })
    ));
    recorder.complete(1, OpType::Info, None).expect("info");
    assert_eq!(
        recorder.invoke(1, OpFunction::Write, "k", value("c"), None),
        Err(RecordError::Retired { process: 1 })
    );
    assert_eq!(
        recorder.complete(2, OpType::Ok, None),
        Err(RecordError::NothingInFlight { process: 2 })
    );
    assert!(matches!(
        recorder.invoke(3, OpFunction::Write, "k", OpValue::Absent, None),
        Err(RecordError::Shape { .. })
    ));
    let history = recorder.into_history();
    assert_eq!(history.ops()[1].value, cas, "a completion repeats the CAS argument");
}

#[test]
fn histories_round_trip_through_json_lines() {
    let (mut recorder, clock) = recorder();
    recorder
        .invoke(0, OpFunction::Cas, "k", OpValue::Cas { expected: None, new: "a".into() }, Some(2))
        .unwrap();
    clock.set_ns(5);
    recorder.complete(0, OpType::Ok, None).unwrap();
    recorder.invoke(0, OpFunction::Read, "k", OpValue::Absent, None).unwrap();
    recorder.complete(0, OpType::Ok, None).unwrap();
    let history = recorder.into_history();
    let mut bytes = Vec::new();
    history.write_jsonl(&mut bytes).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    let first = text.lines().next().unwrap();
    assert_eq!(
        first,
        r#"{"index":0,"process":0,"type":"invoke","f":"cas","key":"k","value":[null,"a"],"time_ns":0,"node":2}"#
    );
    assert_eq!(History::read_jsonl(bytes.as_slice()).unwrap(), history);
}

fn read_error(text: &str) -> String {
    History::read_jsonl(text.as_bytes()).expect_err("should be refused").to_string()
}

#[test]
fn bad_history_files_are_refused_with_the_line() {
    let invoke =
        r#"{"index":0,"process":1,"type":"invoke","f":"write","key":"k","value":"a","time_ns":0}"#;
    assert!(
        read_error(&format!("{invoke}\n\n{{oops\n")).starts_with("line 3: key must be a string")
    );
    let unknown = r#"{"index":0,"process":1,"type":"invoke","f":"delete","key":"k","value":null,"time_ns":0}"#;
    assert!(
        read_error(unknown).starts_with("line 1: unknown variant `delete`"),
        "{}",
        read_error(unknown)
    );
    let twice = format!("{invoke}\n{}\n", invoke.replace(r#""index":0"#, r#""index":1"#));
    assert_eq!(
        read_error(&twice),
        "line 2: process 1 invokes while its operation at index 0 is in flight"
    );
    let bad_cas =
        r#"{"index":0,"process":1,"type":"invoke","f":"cas","key":"k","value":"a","time_ns":0}"#;
    assert_eq!(
        read_error(bad_cas),
        r#"line 1: a cas invoke carries [expected, new] (expected may be null), not "a""#
    );
    let orphan =
        r#"{"index":0,"process":1,"type":"ok","f":"read","key":"k","value":null,"time_ns":0}"#;
    assert_eq!(read_error(orphan), "line 1: process 1 completes an operation it never invoked");
    let info = invoke
        .replace(r#""type":"invoke""#, r#""type":"info""#)
        .replace(r#""index":0"#, r#""index":1"#);
    let again = invoke.replace(r#""index":0"#, r#""index":2"#);
    assert_eq!(
        read_error(&format!("{invoke}\n{info}\n{again}\n")),
        "line 3: process 1 got info at index 1 and may not issue another operation"
    );
    let backwards = format!("{invoke}\n{}", info.replace(r#""index":1"#, r#""index":0"#));
    assert_eq!(read_error(&backwards), "line 2: index 0 does not follow index 0");
}

#[test]
fn fault_windows_pair_starts_with_ends_per_node() {
    let event =
        |time_ns, kind, node, detail: &str| Event { time_ns, kind, node, detail: detail.into() };
    let events = Events::from_events(vec![
        event(30, EventKind::FaultEnd, Some(0), "restart"),
        event(10, EventKind::FaultStart, Some(0), "kill"),
        event(20, EventKind::FaultStart, Some(1), "pause"),
        event(40, EventKind::FaultStart, Some(2), "crash_actor raft"),
        event(50, EventKind::FaultStart, Some(0), "pause"),
        event(60, EventKind::FaultEnd, None, "heal"),
        event(70, EventKind::FaultStart, Some(1), "kill"),
    ]);
    let windows = events.fault_windows(100);
    let spans: Vec<(Option<u32>, u64, u64, bool)> =
        windows.iter().map(|w| (w.node, w.start_ns, w.end_ns, w.healed)).collect();
    assert_eq!(
        spans,
        [
            (Some(0), 10, 30, true),
            (Some(1), 20, 60, true),
            (Some(2), 40, 60, true),
            (Some(0), 50, 60, true),
            (Some(1), 70, 100, false),
        ]
    );
    assert_eq!(events.events()[3].fault_kind(), Some(crate::scenario::FaultKind::CrashActor));
    let mut bytes = Vec::new();
    events.write_jsonl(&mut bytes).unwrap();
    assert_eq!(Events::read_jsonl(bytes.as_slice()).unwrap(), events);
}

#[test]
fn network_windows_close_on_a_network_heal_and_process_windows_on_their_recovery() {
    let event =
        |time_ns, kind, node, detail: &str| Event { time_ns, kind, node, detail: detail.into() };
    let events = Events::from_events(vec![
        event(10, EventKind::FaultStart, Some(1), "isolate the leader"),
        event(20, EventKind::FaultStart, Some(1), "kill"),
        event(30, EventKind::FaultEnd, Some(1), "restart"),
        event(40, EventKind::FaultStart, None, "loss 10% on every node"),
        event(50, EventKind::FaultStart, Some(2), "pause"),
        event(60, EventKind::FaultEnd, None, NETWORK_HEAL),
        event(70, EventKind::FaultStart, None, "split [0, 1] [2]"),
        event(80, EventKind::FaultEnd, None, "heal"),
    ]);
    let spans: Vec<(u64, u64)> =
        events.fault_windows(100).iter().map(|w| (w.start_ns, w.end_ns)).collect();
    assert_eq!(spans, [(10, 60), (20, 30), (40, 60), (50, 80), (70, 80)]);
    let heals: Vec<u64> =
        events.events().iter().filter(|e| e.is_heal()).map(|e| e.time_ns).collect();
    assert_eq!(heals, [60, 80], "a network heal and a heal of everything");
    assert!(events.events()[0].is_network() && !events.events()[1].is_network());
}
