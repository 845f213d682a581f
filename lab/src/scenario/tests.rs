//! Scenario parsing and validation: paths in errors, bounds, and the files in `scenarios/`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::*;

/// A valid scenario with every step kind, to mutate in tests.
const EVERY_STEP: &str = r#"{
  "description": "Every step kind once.",
  "nodes": 3,
  "node_settings": {"heartbeat_interval_ms": 100, "election_timeout_min_ms": 300,
                    "election_timeout_max_ms": 600, "discovery": "gossip"},
  "network": "netns",
  "seed": 7,
  "steps": [
    "bootstrap",
    {"write": {"key": "a", "value": "1"}},
    {"read": {"key": "a", "expect": "1"}},
    {"fault": {"kind": "kill", "node": "leader"}},
    {"wait": {"ms": 100}},
    {"wait_for": {"condition": "leader", "timeout_ms": 5000}},
    {"nemesis": {"duration_ms": 2000, "interval_ms": 500, "faults": ["pause", "crash_actor"]}},
    {"workload": {"clients": 4, "duration_ms": 2000, "rate_per_s": 50, "keys": 3,
                  "mix": {"read": 2, "write": 1, "cas": 1}}},
    "heal",
    "add_node",
    {"remove_node": {"node": 3}},
    {"check": {"checks": ["replication"]}},
    {"network_fault": {"isolate": {"node": "random_follower"}}},
    "intruder"
  ],
  "checks": ["linearizability", "durability", "failover", "no_intruder"]
}"#;

fn errors_of(text: &str) -> Vec<String> {
    match parse_scenario(text) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn a_scenario_with_every_step_kind_parses_and_round_trips() {
    let scenario = parse_scenario(EVERY_STEP).expect("valid");
    let kinds: Vec<&str> = scenario.steps.iter().map(Step::kind).collect();
    let mut sorted_kinds = kinds.clone();
    sorted_kinds.sort();
    let mut all = Step::KINDS.to_vec();
    all.sort();
    assert_eq!(sorted_kinds, all, "the test scenario should use every step kind once");
    let text = serde_json::to_string(&scenario).expect("serializes");
    assert_eq!(parse_scenario(&text).expect("reparses"), scenario);
}

#[test]
fn a_node_index_out_of_range_is_named_with_its_path() {
    let text = EVERY_STEP.replace(r#""node": "leader""#, r#""node": 3"#);
    let errors = errors_of(&text);
    assert_eq!(
        errors,
        [r#"steps[3].fault.node: expected a node index below 3, "leader" or "random_follower""#]
    );
}

#[test]
fn type_errors_name_the_path_and_the_line() {
    let text = EVERY_STEP.replace(r#""node": "leader""#, r#""node": "boss""#);
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("steps[3].fault.node: invalid value"), "{errors:?}");
    assert!(errors[0].contains(r#"expected a node index, "leader" or "random_follower""#));
    assert!(errors[0].contains("(line 12,"), "{errors:?}");

    let unknown_field = EVERY_STEP.replace(r#""ms": 100"#, r#""ms": 100, "jitter": 1"#);
    let errors = errors_of(&unknown_field);
    assert!(
        errors[0].starts_with("steps[4].wait.jitter: unknown field `jitter`, expected `ms`"),
        "{errors:?}"
    );

    let unknown_step = EVERY_STEP.replace(r#""heal""#, r#""explode""#);
    let errors = errors_of(&unknown_step);
    assert!(errors[0].starts_with("steps[8]: unknown variant `explode`"), "{errors:?}");

    let missing = EVERY_STEP.replace(r#""description": "Every step kind once.","#, "");
    let errors = errors_of(&missing);
    assert!(errors[0].starts_with("scenario: missing field `description`"), "{errors:?}");
}

#[test]
fn bounds_are_checked_and_every_error_is_reported() {
    let text = EVERY_STEP
        .replace(r#""ms": 100"#, r#""ms": 60001"#)
        .replace(r#""timeout_ms": 5000"#, r#""timeout_ms": 0"#)
        .replace(r#""mix": {"read": 2, "write": 1, "cas": 1}"#, r#""mix": {}"#)
        .replace(r#""nodes": 3"#, r#""nodes": 10"#);
    let errors = errors_of(&text);
    assert_eq!(
        errors,
        [
            "nodes: expected 1 to 9 nodes, got 10",
            "steps[4].wait.ms: expected 1 to 60000, got 60001",
            "steps[5].wait_for.timeout_ms: expected 1 to 120000, got 0",
            "steps[7].workload.mix: the weights of read, write and cas must not all be 0",
            "steps[9].add_node: the scenario would have more than 9 nodes",
        ]
    );
}

#[test]
fn node_settings_must_be_ordered() {
    let text = EVERY_STEP
        .replace(r#""election_timeout_max_ms": 600"#, r#""election_timeout_max_ms": 300"#);
    assert_eq!(
        errors_of(&text),
        ["node_settings.election_timeout_min_ms: must be less than election_timeout_max_ms"]
    );
}

#[test]
fn steps_that_need_a_cluster_need_a_bootstrap_first() {
    let text = r#"{"description": "d", "nodes": 1,
        "steps": [{"write": {"key": "a", "value": "1"}}, "bootstrap", "bootstrap"]}"#;
    assert_eq!(
        errors_of(text),
        [
            "steps[0].write: needs a bootstrap step before it",
            "steps[2].bootstrap: the cluster was bootstrapped by steps[1]",
        ]
    );
}

#[test]
fn added_nodes_extend_and_removed_nodes_leave_the_valid_indexes() {
    let text = r#"{"description": "d", "nodes": 3, "steps": ["bootstrap", "add_node",
        {"fault": {"kind": "kill", "node": 3}}, {"remove_node": {"node": 1}},
        {"fault": {"kind": "pause", "node": 1}}, {"fault": {"kind": "pause", "node": 4}}]}"#;
    assert_eq!(
        errors_of(text),
        [
            "steps[4].fault.node: node 1 was removed by steps[3]",
            r#"steps[5].fault.node: expected a node index below 4, "leader" or "random_follower""#,
        ]
    );
}

#[test]
fn nemesis_faults_exclude_recoveries_and_checks_need_something_to_judge() {
    let text = r#"{"description": "d", "nodes": 1, "steps": ["bootstrap",
        {"nemesis": {"duration_ms": 50, "interval_ms": 50, "faults": ["restart", "wipe_and_rejoin"]}},
        {"fault": {"kind": "kill", "node": 0, "actor": "raft"}}],
        "checks": ["linearizability", "discovery", "discovery"]}"#;
    assert_eq!(
        errors_of(text),
        [
            "steps[1].nemesis.interval_ms: expected 100 to 600000, got 50",
            "steps[1].nemesis.duration_ms: expected 100 to 600000, got 50",
            "steps[1].nemesis.faults[0]: restart is a recovery: the nemesis schedules it itself",
            "steps[1].nemesis.faults[1]: wipe_and_rejoin needs 3 or more nodes, so that a quorum remains",
            "steps[2].fault.actor: only a crash_actor fault names an actor",
            "checks[0]: linearizability needs a workload, write or read step to judge",
            "checks[2]: discovery is already listed at checks[1]",
        ]
    );
}

#[test]
fn network_faults_need_netns_and_enough_nodes_and_a_nemesis_may_draw_them() {
    let loopback = EVERY_STEP.replace(r#""network": "netns""#, r#""network": "loopback""#);
    assert_eq!(
        errors_of(&loopback),
        [r#"steps[12].network_fault: network faults need "network": "netns""#]
    );
    let split = EVERY_STEP.replace(
        r#"{"isolate": {"node": "random_follower"}}"#,
        r#"{"split": {"groups": [[0], [1]]}}"#,
    );
    assert_eq!(errors_of(&split), ["steps[12].network_fault.split.groups: node 2 is in no group"]);
    let nemesis = EVERY_STEP.replace(
        r#""faults": ["pause", "crash_actor"]"#,
        r#""faults": [], "network_faults": ["isolate", "majorities_ring", "heal"]"#,
    );
    assert_eq!(
        errors_of(&nemesis),
        [
            "steps[6].nemesis.network_faults[1]: majorities_ring needs 4 or more nodes",
            "steps[6].nemesis.network_faults[2]: heal is a recovery: the nemesis schedules it itself",
        ]
    );
    let nothing = EVERY_STEP.replace(r#""faults": ["pause", "crash_actor"]"#, r#""faults": []"#);
    assert_eq!(errors_of(&nothing), ["steps[6].nemesis.faults: names no fault kind"]);
    let network_only = EVERY_STEP
        .replace(r#""faults": ["pause", "crash_actor"]"#, r#""network_faults": ["loss", "split"]"#);
    let scenario = parse_scenario(&network_only).expect("a nemesis of network faults only");
    let text = serde_json::to_string(&scenario).expect("serializes");
    assert_eq!(parse_scenario(&text).expect("reparses"), scenario);
}

#[test]
fn the_intruder_needs_gossip_discovery_and_comes_once_after_the_bootstrap() {
    let manual = EVERY_STEP.replace(r#""discovery": "gossip""#, r#""discovery": "manual""#);
    assert_eq!(
        errors_of(&manual),
        [
            r#"steps[13].intruder: needs "node_settings": {"discovery": "gossip"} (node_settings.discovery is "manual")"#
        ]
    );
    let twice = EVERY_STEP.replace(r#""intruder""#, r#""intruder", "intruder""#);
    assert_eq!(errors_of(&twice), ["steps[14].intruder: the intruder was started by steps[13]"]);
    let text = r#"{"description": "d", "nodes": 3, "node_settings": {"discovery": "gossip"},
        "steps": ["intruder", "bootstrap"]}"#;
    assert_eq!(errors_of(text), ["steps[0].intruder: needs a bootstrap step before it"]);
}

#[test]
fn no_intruder_needs_an_intruder_step_to_judge() {
    let text = r#"{"description": "d", "nodes": 3, "node_settings": {"discovery": "gossip"},
        "steps": ["bootstrap", {"check": {"checks": ["discovery", "no_intruder"]}}, "intruder",
                  {"check": {"checks": ["no_intruder"]}}],
        "checks": ["no_intruder"]}"#;
    assert_eq!(
        errors_of(text),
        ["steps[1].check.checks[1]: no_intruder needs an intruder step before it"]
    );
    let without = r#"{"description": "d", "nodes": 3, "node_settings": {"discovery": "gossip"},
        "steps": ["bootstrap"], "checks": ["no_intruder"]}"#;
    assert_eq!(errors_of(without), ["checks[0]: no_intruder needs an intruder step to judge"]);
}

#[test]
fn crash_actor_crashes_the_raft_actor_unless_told_otherwise() {
    let fault = |kind, actor| FaultStep { kind, node: NodeSelector::Leader, actor };
    assert_eq!(fault(FaultKind::CrashActor, None).crashed_actor(), Some(ActorName::Raft));
    let storage = fault(FaultKind::CrashActor, Some(ActorName::Storage));
    assert_eq!(storage.crashed_actor(), Some(ActorName::Storage));
    assert_eq!(fault(FaultKind::Kill, None).crashed_actor(), None);
}

#[test]
fn read_expect_tells_missing_from_null() {
    let read = |expect: &str| -> Option<Option<String>> {
        let text = format!(
            r#"{{"description": "d", "nodes": 1, "steps": ["bootstrap", {{"read": {{"key": "a"{expect}}}}}]}}"#
        );
        match &parse_scenario(&text).expect("valid").steps[1] {
            Step::Read(read) => read.expect.clone(),
            other => panic!("expected a read, got {other:?}"),
        }
    };
    assert_eq!(read(""), None);
    assert_eq!(read(r#", "expect": null"#), Some(None));
    assert_eq!(read(r#", "expect": "v""#), Some(Some("v".into())));
}

fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

#[test]
fn every_scenario_file_validates() {
    for path in scenario_files(&scenarios_dir()).expect("scenarios/ is readable") {
        if let Err(error) = load_scenario(&path) {
            panic!("{error}");
        }
    }
}

#[test]
fn every_json_example_in_the_readme_validates() {
    let readme = std::fs::read_to_string(scenarios_dir().join("README.md")).expect("README");
    let mut examples = 0;
    for block in readme.split("```json\n").skip(1) {
        let example = block.split("```").next().unwrap_or_default();
        if let Err(errors) = parse_scenario(example) {
            panic!("README example does not validate: {errors:?}\n{example}");
        }
        examples += 1;
    }
    assert!(examples >= 2, "the README shows complete scenarios, found {examples}");
}

#[test]
fn the_schema_parses_and_names_every_kind() {
    let text = std::fs::read_to_string(scenarios_dir().join(SCHEMA_FILE_NAME)).expect("schema");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema.json is JSON");
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    let mut names = BTreeSet::new();
    collect_strings(&schema, &mut names);
    let faults =
        ["kill", "terminate", "pause", "resume", "restart", "wipe_and_rejoin", "crash_actor"];
    let conditions = ["leader", "all_nodes_know_each_other", "replicated"];
    let checks = CheckKind::ALL.map(CheckKind::name);
    for name in Step::KINDS.iter().chain(&faults).chain(&conditions).chain(&checks) {
        assert!(names.contains(*name), "schema.json does not name {name}");
    }
    for fault in faults {
        assert!(FaultKind::from_name(fault).is_some(), "{fault} is a fault kind");
    }
}

/// Every object key and string value in a JSON document.
fn collect_strings(value: &serde_json::Value, names: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::String(text) => {
            names.insert(text.clone());
        }
        serde_json::Value::Array(items) => {
            items.iter().for_each(|item| collect_strings(item, names))
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                names.insert(key.clone());
                collect_strings(item, names);
            }
        }
        _ => {}
    }
}
