//! Runs every shipped scenario against real `aspen-node` processes with the scenario's own
//! seed, one test per scenario, and checks that it passes and writes its run directory; a
//! scenario file that no test names fails `every_scenario_file_has_a_test`. A `netns` scenario
//! may come back `SKIP` only for a reason this machine gives (no root or `nft`; no tc netem for
//! a scenario that delays packets). And a `netns` run leaves no namespace and no node process
//! behind, whether it passes or fails a step; and the intruder of `discovery_intruder` is kept
//! out in a `netns` run too, and its process is gone at the end of a run that passes or fails.
//!
//! The node binary must be built in the same target directory (`cargo build --workspace`, or
//! `cargo nextest run --workspace --all-targets`, builds it). `.config/nextest.toml` gives this
//! binary the machine to itself, so the clusters run one after another: several real clusters
//! at once on a small machine would turn election timeouts into flakes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// target/<profile>/aspen-node, from this test's path (target/<profile>/deps/scenarios-…).
fn node_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let bin = profile_dir.join("aspen-node");
    assert!(
        bin.exists(),
        "{} is missing: build the workspace first (cargo build --workspace, or cargo nextest \
         run --workspace --all-targets)",
        bin.display()
    );
    bin
}

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// Runs `aspen-lab run <scenario> --out <out>`.
fn aspen_lab_run(scenario: &Path, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aspen-lab"))
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .arg("--node-bin")
        .arg(node_bin())
        .output()
        .expect("run aspen-lab")
}

/// Whether a `SKIP` of `name` is one this machine explains.
fn skip_is_explained(name: &str, reason: &str) -> bool {
    if let Err(error) = aspen_lab::network::support() {
        return reason == error.to_string();
    }
    let scenario = aspen_lab::scenario::load_scenario(&scenarios_dir().join(name)).expect("loads");
    let delays = serde_json::to_string(&scenario).expect("serializes").contains("delay");
    delays && reason.starts_with("no tc netem in this kernel")
}

fn run(name: &str) {
    let started = std::time::Instant::now();
    let out = tempfile::tempdir().expect("out dir");
    let output = aspen_lab_run(&scenarios_dir().join(name), out.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{name} failed\n{stdout}\n{stderr}");
    if let Some(line) = stdout.lines().find(|line| line.starts_with(&format!("{name}: SKIP: "))) {
        let reason = line.trim_start_matches(&format!("{name}: SKIP: "));
        assert!(skip_is_explained(name, reason), "{name} skipped for no good reason: {reason}");
        eprintln!("{line}");
        return;
    }
    assert!(stdout.contains(": PASS (seed "), "{stdout}");
    let run_dirs: Vec<PathBuf> =
        std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(run_dirs.len(), 1, "{run_dirs:?}");
    let dir = &run_dirs[0];
    for file in ["summary.json", "history.jsonl", "events.jsonl", "report.html", "node-0.log"] {
        assert!(dir.join(file).is_file(), "{} has no {file}", dir.display());
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["outcome"], "pass", "{summary:#}");
    eprintln!("{name}: passed in {:.1} s", started.elapsed().as_secs_f64());
}

/// One test per shipped scenario, and the list of their names.
macro_rules! scenario_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run(concat!(stringify!($name), ".json"));
            }
        )*

        /// The scenarios that have a test.
        const LISTED: &[&str] = &[$(stringify!($name)),*];
    };
}

scenario_tests!(
    actor_crash_supervision,
    bootstrap_manual_3,
    bridge_partition,
    discovery_dns,
    discovery_gossip,
    discovery_intruder,
    discovery_mdns,
    discovery_relay,
    follower_kill_restart,
    leader_kill_failover,
    leader_pause,
    lossy_network,
    majorities_ring,
    membership_grow_shrink,
    nemesis_mix,
    nemesis_mix_network,
    nemesis_snapshots,
    partition_isolate_leader,
    partition_majority_minority,
    partition_one_way,
    rolling_restart,
    slow_network,
    snapshot_catch_up,
    wipe_and_rejoin,
);

#[test]
fn every_scenario_file_has_a_test() {
    let files: BTreeSet<String> = std::fs::read_dir(scenarios_dir())
        .expect("scenarios dir")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json") && name != "schema.json")
        .map(|name| name.trim_end_matches(".json").to_string())
        .collect();
    let listed: BTreeSet<String> = LISTED.iter().map(ToString::to_string).collect();
    let untested: Vec<&String> = files.difference(&listed).collect();
    let missing: Vec<&String> = listed.difference(&files).collect();
    assert!(untested.is_empty(), "add these scenarios to scenario_tests!: {untested:?}");
    assert!(missing.is_empty(), "these tests name no scenario file: {missing:?}");
}

/// The run id a `netns` run prints (`aspen-lab: network <id>: subnet …`).
fn network_id(stdout: &str) -> String {
    let line = stdout.lines().find_map(|line| line.strip_prefix("aspen-lab: network "));
    let line = line.unwrap_or_else(|| panic!("no network line in\n{stdout}"));
    line.split(':').next().unwrap_or_default().to_string()
}

/// The pids of the node processes a run started, from its `node_start` events.
fn node_pids(run_dir: &Path) -> Vec<u32> {
    let events = std::fs::read_to_string(run_dir.join("events.jsonl")).expect("events.jsonl");
    events
        .lines()
        .filter(|line| line.contains(r#""kind":"node_start""#))
        .filter_map(|line| line.split("pid ").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Runs a small `netns` scenario whose last step is `last_step`; checks the exit status, then
/// that none of the run's namespaces and none of its node processes are left.
fn netns_run_leaves_nothing(last_step: &str, succeeds: bool) {
    if let Err(error) = aspen_lab::network::support() {
        println!("skipped: {error}");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = dir.path().join("netns_cleanup.json");
    let text = format!(
        r#"{{"description": "Two nodes in namespaces, a partition, then one more step.",
            "nodes": 2, "network": "netns", "seed": 1,
            "node_settings": {{"heartbeat_interval_ms": 100, "election_timeout_min_ms": 500,
                               "election_timeout_max_ms": 1000}},
            "steps": ["bootstrap", {{"write": {{"key": "a", "value": "1"}}}},
                      {{"network_fault": {{"isolate": {{"node": 1}}}}}}, {last_step}]}}"#
    );
    std::fs::write(&scenario, text).expect("write scenario");
    let out = dir.path().join("out");
    let output = aspen_lab_run(&scenario, &out);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.success(), succeeds, "{stdout}\n{stderr}");
    assert_eq!(stdout.contains("  script: FAIL: "), !succeeds, "{stdout}");
    let id = network_id(&stdout);
    let namespaces = Command::new("ip").args(["netns", "list"]).output().expect("ip netns list");
    let namespaces = String::from_utf8_lossy(&namespaces.stdout);
    assert!(!namespaces.contains(&format!("aspl-{id}")), "left behind:\n{namespaces}");
    let links = Command::new("ip").args(["-o", "link", "show"]).output().expect("ip link show");
    assert!(!String::from_utf8_lossy(&links.stdout).contains(&format!("aspl-{id}")));
    let run_dir = std::fs::read_dir(&out).expect("out").next().expect("a run dir").unwrap().path();
    let pids = node_pids(&run_dir);
    assert_eq!(pids.len(), 2, "both nodes started");
    for pid in pids {
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "node pid {pid} is still alive");
    }
}

#[test]
fn a_netns_run_leaves_no_namespace_or_process_behind() {
    netns_run_leaves_nothing(r#"{"network_fault": "heal"}"#, true);
}

#[test]
fn a_netns_run_that_fails_a_step_leaves_no_namespace_or_process_behind() {
    netns_run_leaves_nothing(r#"{"read": {"key": "a", "expect": "not what was written"}}"#, false);
}

/// Runs `discovery_intruder.json` changed by `change`, from a temporary directory; returns the
/// output and the run directory (inside `dir`).
fn run_intruder_scenario(
    dir: &Path,
    change: impl FnOnce(&mut serde_json::Value),
) -> (Output, PathBuf) {
    let text = std::fs::read_to_string(scenarios_dir().join("discovery_intruder.json")).unwrap();
    let mut scenario: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    change(&mut scenario);
    let path = dir.join("intruder.json");
    std::fs::write(&path, scenario.to_string()).expect("write scenario");
    let out = dir.join("out");
    let output = aspen_lab_run(&path, &out);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let run_dir = std::fs::read_dir(&out).expect(&stdout).next().expect("a run dir");
    (output, run_dir.unwrap().path())
}

/// Asserts that the run started the three nodes and the intruder and that none of them lives.
fn nodes_and_intruder_are_gone(run_dir: &Path) {
    let events = std::fs::read_to_string(run_dir.join("events.jsonl")).expect("events.jsonl");
    assert!(events.contains(r#""node":null,"detail":"the intruder: pid "#), "{events}");
    let pids = node_pids(run_dir);
    assert_eq!(pids.len(), 4, "three nodes and the intruder started: {pids:?}");
    for pid in pids {
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "pid {pid} is still alive");
    }
    assert!(run_dir.join("intruder.log").is_file(), "the intruder has its log");
}

#[test]
fn the_intruder_is_kept_out_in_a_netns_run_and_stopped_at_its_end() {
    if let Err(error) = aspen_lab::network::support() {
        println!("skipped: {error}");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (output, run_dir) = run_intruder_scenario(dir.path(), |scenario| {
        scenario["network"] = "netns".into();
    });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("  no_intruder: PASS: 3 members: "), "{stdout}");
    nodes_and_intruder_are_gone(&run_dir);
}

#[test]
fn the_intruder_is_stopped_when_a_later_step_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (output, run_dir) = run_intruder_scenario(dir.path(), |scenario| {
        let failing = serde_json::json!({"read": {"key": "k0", "expect": "never written"}});
        let steps = scenario["steps"].as_array_mut().expect("steps");
        steps.truncate(4);
        assert_eq!(steps[3], "intruder", "the fourth step starts the intruder");
        steps.push(failing);
    });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert!(stdout.contains("  script: FAIL: steps[4] read: "), "{stdout}");
    nodes_and_intruder_are_gone(&run_dir);
}

/// The nemesis schedule of a shipped scenario depends only on the scenario and the seed.
#[test]
fn the_same_scenario_and_seed_give_the_same_fault_schedule() {
    use aspen_lab::nemesis::{schedule, step_seed};
    use aspen_lab::scenario::{Step, load_scenario};
    for name in ["nemesis_mix.json", "nemesis_mix_network.json"] {
        let path = scenarios_dir().join(name);
        let plan = |seed: u64| {
            let scenario = load_scenario(&path).expect(name);
            let (position, nemesis) = scenario
                .steps
                .iter()
                .enumerate()
                .find_map(|(i, step)| match step {
                    Step::Nemesis(nemesis) => Some((i, nemesis.clone())),
                    _ => None,
                })
                .expect("a nemesis step");
            let nodes: Vec<u32> = (0..scenario.nodes).collect();
            schedule(step_seed(seed, position), &nemesis, &nodes)
        };
        assert!(!plan(42).is_empty(), "{name}");
        assert_eq!(plan(42), plan(42), "{name}");
        assert_ne!(plan(42), plan(43), "{name}");
    }
}
