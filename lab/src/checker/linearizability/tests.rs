//! Known-bad histories that must be caught and known-good ones that must pass, written as
//! small scripts: `<process> invoke <read|write|cas> <key> [args]` or `<process> <ok|fail|info>
//! [read value]`, where `nil` is the absent value. Each script's first line says what it shows.

use super::*;
use crate::history::{History, ManualClock, OpFunction, OpType, OpValue, Recorder};

fn history(script: &str) -> History {
    let clock = ManualClock::default();
    let mut recorder = Recorder::new(clock.clone());
    let parse = |word: &str| (word != "nil").then(|| word.to_string());
    for (line, text) in
        script.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).enumerate()
    {
        clock.set_ns(line as u64 * 1_000_000);
        let words: Vec<&str> = text.split_whitespace().collect();
        let process: u64 = words[0].parse().expect("process id");
        let result = match &words[1..] {
            ["invoke", "read", key] => {
                recorder.invoke(process, OpFunction::Read, *key, OpValue::Absent, None)
            }
            ["invoke", "write", key, value] => recorder.invoke(
                process,
                OpFunction::Write,
                *key,
                OpValue::Value(value.to_string()),
                None,
            ),
            ["invoke", "cas", key, expected, new] => {
                let value = OpValue::Cas { expected: parse(expected), new: new.to_string() };
                recorder.invoke(process, OpFunction::Cas, *key, value, None)
            }
            ["ok"] => recorder.complete(process, OpType::Ok, None),
            ["ok", value] => recorder.complete(process, OpType::Ok, parse(value)),
            ["fail"] => recorder.complete(process, OpType::Fail, None),
            ["info"] => recorder.complete(process, OpType::Info, None),
            _ => panic!("bad script line: {text}"),
        };
        result.unwrap_or_else(|error| panic!("{text}: {error}"));
    }
    recorder.into_history()
}

fn violation(script: &str) -> Witness {
    let report = check_history(&history(script));
    assert!(report.unknown.is_empty(), "undecided: {:?}", report.unknown);
    assert_eq!(report.violations.len(), 1, "expected one violation in:\n{script}");
    report.violations[0].clone()
}

fn assert_linearizable(script: &str) {
    let report = check_history(&history(script));
    assert_eq!(report.verdict().outcome, crate::checker::Outcome::Pass, "{}", report.verdict());
}

/// The (process, function) pairs of a witness, for compact assertions.
fn calls_of(witness: &Witness) -> Vec<(u64, OpFunction)> {
    witness.operations.iter().map(|op| (op.invoke.process, op.invoke.f)).collect()
}

#[test]
fn a_stale_read_is_caught() {
    let witness = violation(
        "# a read after a completed write returns the value before it
         0 invoke write x 1
         0 ok
         1 invoke read x
         1 ok 1
         0 invoke write x 2
         0 ok
         1 invoke read x
         1 ok 1",
    );
    assert_eq!(witness.key, "x");
    assert_eq!(witness.cut_index, 7, "the stale read's completion");
    // The earlier, correct read is not needed to show the violation.
    assert_eq!(
        calls_of(&witness),
        [(0, OpFunction::Write), (0, OpFunction::Write), (1, OpFunction::Read)]
    );
    let text = witness.to_string();
    assert!(text.contains("write \"2\" -> ok") && text.contains("read -> ok \"1\""), "{text}");
}

#[test]
fn a_lost_acknowledged_write_is_caught() {
    let witness = violation(
        "# a write was acknowledged, yet later reads see the key absent
         0 invoke write y 5
         1 invoke read y
         1 ok nil
         0 ok
         2 invoke read y
         2 ok nil",
    );
    assert_eq!(calls_of(&witness), [(0, OpFunction::Write), (2, OpFunction::Read)]);
    let older = violation(
        "# a write was acknowledged, yet a later read sees an older value
         0 invoke write y 1
         0 ok
         1 invoke write y 2
         2 invoke read y
         2 ok 1
         1 ok
         2 invoke read y
         2 ok 1",
    );
    assert_eq!(older.cut_index, 7);
}

#[test]
fn a_cas_against_a_value_that_was_never_there_is_caught() {
    let witness = violation(
        "# the CAS expected 7, but only 1 was ever written
         0 invoke write z 1
         0 ok
         1 invoke cas z 7 8
         1 ok",
    );
    // The CAS alone proves it: nothing ever wrote 7, so the write of 1 is shrunk away.
    assert_eq!(calls_of(&witness), [(1, OpFunction::Cas)]);
    let from_absent = violation(
        "# a CAS from absent succeeded after the key was written
         0 invoke write z 1
         0 ok
         1 invoke cas z nil 8
         1 ok",
    );
    assert_eq!(calls_of(&from_absent), [(0, OpFunction::Write), (1, OpFunction::Cas)]);
}

#[test]
fn a_violation_that_needs_backtracking_is_caught() {
    violation(
        "# two concurrent writes, then reads that see 2 and then 1: no order allows both
         0 invoke write k 1
         1 invoke write k 2
         0 ok
         1 ok
         2 invoke read k
         2 ok 2
         2 invoke read k
         2 ok 1",
    );
}

#[test]
fn sequential_and_concurrent_histories_pass() {
    assert_linearizable(
        "# reads see the latest completed write; an absent key reads as nil
         0 invoke read a
         0 ok nil
         0 invoke write a 1
         0 ok
         0 invoke read a
         0 ok 1
         0 invoke cas a 1 2
         0 ok
         0 invoke read a
         0 ok 2",
    );
    assert_linearizable(
        "# overlapping writes and reads: write 2 takes effect before write 1
         0 invoke write a 1
         1 invoke write a 2
         2 invoke read a
         2 ok 2
         2 invoke read a
         2 ok 1
         1 ok
         0 ok
         2 invoke read a
         2 ok 1",
    );
}

#[test]
fn info_operations_may_or_may_not_happen() {
    assert_linearizable(
        "# an info write that did happen, and took effect after a later write completed
         0 invoke write b 1
         0 ok
         1 invoke write b 2
         1 info
         0 invoke write b 3
         0 ok
         0 invoke read b
         0 ok 2",
    );
    assert_linearizable(
        "# an info write and an info CAS that never happened; a failed write is ignored
         0 invoke write c 1
         0 ok
         1 invoke write c 2
         1 info
         2 invoke cas c 1 9
         2 info
         3 invoke write c 4
         3 fail
         0 invoke read c
         0 ok 1",
    );
    assert_linearizable(
        "# an operation still in flight at the end counts as info
         0 invoke write d 1
         1 invoke read d
         1 ok 1",
    );
    violation(
        "# but an info write cannot take effect before its invocation
         1 invoke read e
         1 ok 1
         0 invoke write e 1
         0 info",
    );
}

#[test]
fn only_the_bad_key_is_reported() {
    let report = check_history(&history(
        "# key p is fine, key q has a stale read
         0 invoke write p 1
         0 ok
         0 invoke write q 1
         0 ok
         0 invoke write q 2
         0 ok
         1 invoke read q
         1 ok 1
         1 invoke read p
         1 ok 1",
    ));
    assert_eq!(report.keys, 2);
    let keys: Vec<&str> = report.violations.iter().map(|witness| witness.key.as_str()).collect();
    assert_eq!(keys, ["q"]);
    let verdict = report.verdict();
    assert_eq!(verdict.outcome, crate::checker::Outcome::Fail);
    assert!(verdict.reason.starts_with("key \"q\""), "{}", verdict.reason);
}

#[test]
fn a_search_over_its_budget_is_unknown_not_endless() {
    let history = history(
        "# four concurrent info writes, reads that see each, then a value never written
         0 invoke write k 1
         1 invoke write k 2
         2 invoke write k 3
         3 invoke write k 4
         0 info
         1 info
         2 info
         3 info
         4 invoke read k
         4 ok 1
         4 invoke read k
         4 ok 2
         4 invoke read k
         4 ok 3
         4 invoke read k
         4 ok 4
         4 invoke read k
         4 ok 9",
    );
    let operations = &history.operations_by_key()["k"];
    assert!(matches!(check_with_budget("k", operations, 3), KeyOutcome::Unknown { .. }));
    assert!(matches!(check_with_budget("k", operations, 1_000), KeyOutcome::Violation(_)));
}

#[test]
fn a_long_history_of_a_real_register_passes_and_one_corrupted_read_fails() {
    let (script, last_read) = simulated_register(3_000, 10);
    assert_linearizable(&script);
    let lines: Vec<&str> = script.lines().collect();
    let corrupted: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            if i == last_read {
                format!("{} ok never-written", &line[..line.find(' ').unwrap()])
            } else {
                line.to_string()
            }
        })
        .collect();
    violation(&corrupted.join("\n"));
}

/// A script of `operations` operations by `processes` concurrent clients on one register, each
/// taking effect at a pseudo-random point inside its span; returns it and the line of its last
/// read completion.
fn simulated_register(operations: usize, processes: u64) -> (String, usize) {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut random = move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    let mut register: Option<String> = None;
    let (mut lines, mut last_read) = (vec!["# a simulated register".to_string()], 0);
    // Each process: Some((completion line, stage)) where stage 0 = invoked, 1 = took effect.
    let mut pending: Vec<Option<(String, bool)>> = vec![None; processes as usize];
    let mut started = 0;
    while started < operations || pending.iter().any(Option::is_some) {
        let process = random(processes) as usize;
        match pending[process].take() {
            None if started < operations => {
                started += 1;
                let value = format!("v{started}");
                let (call, completion) = match random(3) {
                    0 => ("read k".to_string(), String::new()),
                    1 => (format!("write k {value}"), value),
                    _ => (
                        format!("cas k {} {value}", register.clone().unwrap_or("nil".into())),
                        value,
                    ),
                };
                lines.push(format!("{process} invoke {call}"));
                pending[process] = Some((format!("{call}|{completion}"), false));
            }
            None => {}
            Some((call, false)) => {
                // The linearization point: apply the call to the register now.
                let (words, value) = call.split_once('|').unwrap();
                let words: Vec<&str> = words.split_whitespace().collect();
                let result = match words[0] {
                    "read" => format!("ok {}", register.clone().unwrap_or("nil".into())),
                    "write" => {
                        register = Some(value.to_string());
                        "ok".to_string()
                    }
                    _ if Some(words[2].to_string()) == register
                        || (words[2] == "nil" && register.is_none()) =>
                    {
                        register = Some(value.to_string());
                        "ok".to_string()
                    }
                    _ => "fail".to_string(),
                };
                pending[process] = Some((result, true));
            }
            Some((result, true)) => {
                if result.starts_with("ok ") {
                    last_read = lines.len();
                }
                lines.push(format!("{process} {result}"));
            }
        }
    }
    (lines.join("\n"), last_read)
}
