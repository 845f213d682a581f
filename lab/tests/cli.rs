//! The `aspen-lab` binary as a user runs it: exit codes and what it prints for validate, check,
//! report, list and run.

use std::path::Path;
use std::process::{Command, Output};

use aspen_lab::checker::CheckVerdict;
use aspen_lab::history::{Events, History};
use aspen_lab::report::{REPORT_FILE, RunData, RunSummary};
use aspen_lab::scenario::CheckKind;

const GOOD: &str = r#"{"description": "Kill the leader and read back.", "nodes": 3,
  "steps": ["bootstrap", {"fault": {"kind": "kill", "node": "leader"}}, {"read": {"key": "a"}}]}"#;

const BAD_NODE: &str = r#"{"description": "Kill a node that does not exist.", "nodes": 3,
  "steps": ["bootstrap", {"fault": {"kind": "kill", "node": 3}}]}"#;

const LINEARIZABLE: &str = r#"{"index":0,"process":0,"type":"invoke","f":"write","key":"x","value":"1","time_ns":0}
{"index":1,"process":0,"type":"ok","f":"write","key":"x","value":"1","time_ns":10}
{"index":2,"process":1,"type":"invoke","f":"read","key":"x","value":null,"time_ns":20}
{"index":3,"process":1,"type":"ok","f":"read","key":"x","value":"1","time_ns":30}
"#;

const STALE_READ: &str = r#"{"index":0,"process":0,"type":"invoke","f":"write","key":"x","value":"1","time_ns":0}
{"index":1,"process":0,"type":"ok","f":"write","key":"x","value":"1","time_ns":10}
{"index":2,"process":0,"type":"invoke","f":"write","key":"x","value":"2","time_ns":20}
{"index":3,"process":0,"type":"ok","f":"write","key":"x","value":"2","time_ns":30}
{"index":4,"process":1,"type":"invoke","f":"read","key":"x","value":null,"time_ns":40}
{"index":5,"process":1,"type":"ok","f":"read","key":"x","value":"1","time_ns":50}
"#;

fn aspen_lab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aspen-lab")).args(args).output().expect("aspen-lab runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write test file");
    path.display().to_string()
}

#[test]
fn validate_exits_0_for_valid_files_and_1_with_the_field_for_invalid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.json", GOOD);
    let output = aspen_lab(&["validate", &good]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), format!("{good}: ok\n"));

    let bad = write(dir.path(), "bad.json", BAD_NODE);
    let output = aspen_lab(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        format!(
            "{bad}: steps[1].fault.node: expected a node index below 3, \"leader\" or \"random_follower\"\n"
        )
    );
    let missing = aspen_lab(&["validate", "/nonexistent/scenario.json"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("/nonexistent/scenario.json: cannot read"));
}

#[test]
fn check_exits_0_when_linearizable_1_with_a_witness_and_2_on_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let good = aspen_lab(&["check", &write(dir.path(), "good.jsonl", LINEARIZABLE)]);
    assert_eq!(good.status.code(), Some(0), "{}", text(&good.stderr));
    assert_eq!(text(&good.stdout), "linearizable: 1 keys, 2 operations\n");

    let stale = aspen_lab(&["check", &write(dir.path(), "stale.jsonl", STALE_READ)]);
    assert_eq!(stale.status.code(), Some(1));
    let stdout = text(&stale.stdout);
    assert!(
        stdout.starts_with("key \"x\": no order of these 3 operations fits a register"),
        "{stdout}"
    );
    assert!(stdout.contains("index 4..5         process 1    read -> ok \"1\""), "{stdout}");
    assert!(stdout.ends_with("not linearizable: 1 of 1 keys (3 operations)\n"), "{stdout}");

    let malformed = LINEARIZABLE.replace(r#""type":"ok","f":"write""#, r#""type":"ok","f":"read""#);
    let bad = aspen_lab(&["check", &write(dir.path(), "bad.jsonl", &malformed)]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("bad.jsonl: line 2: process 0 completes a read"),
        "{}",
        text(&bad.stderr)
    );
    assert_eq!(aspen_lab(&["check", "/nonexistent/history.jsonl"]).status.code(), Some(2));
}

#[test]
fn report_rebuilds_the_page_of_a_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::read_jsonl(STALE_READ.as_bytes()).unwrap();
    let verdicts =
        vec![CheckVerdict::pass(CheckKind::Replication, "all 3 nodes report digest abc")];
    let summary =
        RunSummary::build("stale.json", "A stale read.", 5, verdicts, &history, &Events::default());
    RunData { summary, history, events: Events::default() }.write(dir.path()).unwrap();
    std::fs::remove_file(dir.path().join(REPORT_FILE)).unwrap();

    let output = aspen_lab(&["report", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let html = std::fs::read_to_string(dir.path().join(REPORT_FILE)).expect("report.html written");
    assert!(html.contains("all 3 nodes report digest abc"));

    let empty = tempfile::tempdir().unwrap();
    let output = aspen_lab(&["report", empty.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("summary.json"), "{}", text(&output.stderr));
}

#[test]
fn list_prints_each_scenario_with_its_description() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "b_good.json", GOOD);
    write(dir.path(), "a_bad.json", BAD_NODE);
    write(dir.path(), "schema.json", "{}");
    let output = aspen_lab(&["list", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    let stdout = text(&output.stdout);
    assert!(stdout.starts_with("a_bad.json\n    (invalid: see `aspen-lab validate"), "{stdout}");
    assert!(stdout.ends_with("b_good.json\n    Kill the leader and read back.\n"), "{stdout}");
}

#[test]
fn run_validates_then_refuses_a_missing_node_binary() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.json", GOOD);
    let missing = dir.path().join("no-such-aspen-node").display().to_string();
    let out = dir.path().join("runs").display().to_string();
    let output = aspen_lab(&["run", &good, "--seed", "9", "--out", &out, "--node-bin", &missing]);
    assert_eq!(output.status.code(), Some(2));
    let stdout = text(&output.stdout);
    assert!(
        stdout.starts_with(&format!("{good}: 3 nodes, 3 steps, seed 9 (--seed), out {out}\n")),
        "{stdout}"
    );
    assert!(stdout.contains("good.json: ERROR (seed 9)"), "{stdout}");
    assert!(stdout.contains("build the workspace first"), "{stdout}");

    let bad = write(dir.path(), "bad.json", BAD_NODE);
    let output = aspen_lab(&["run", &bad]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("steps[1].fault.node"));
}
