//! Runs every shipped scenario against real `aspen-node` processes with the scenario's own
//! seed, and checks that it passes and writes its run directory.
//!
//! The node binary must be built in the same target directory (`cargo build --workspace`, or
//! `cargo nextest run --workspace --all-targets`, builds it).

use std::path::{Path, PathBuf};
use std::process::Command;

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

fn run(name: &str) {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(name);
    let out = tempfile::tempdir().expect("out dir");
    let output = Command::new(env!("CARGO_BIN_EXE_aspen-lab"))
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(out.path())
        .arg("--node-bin")
        .arg(node_bin())
        .output()
        .expect("run aspen-lab");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{name} failed\n{stdout}\n{stderr}");
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
}

/// One test, so the clusters run one after another: several real clusters at once on a small
/// machine would turn election timeouts into flakes.
#[test]
fn every_shipped_scenario_passes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("scenarios dir")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json") && name != "schema.json")
        .collect();
    names.sort();
    assert!(names.len() >= 7, "{names:?}");
    for name in names {
        let started = std::time::Instant::now();
        run(&name);
        eprintln!("{name}: passed in {:.1} s", started.elapsed().as_secs_f64());
    }
}

/// The nemesis schedule of a shipped scenario depends only on the scenario and the seed.
#[test]
fn the_same_scenario_and_seed_give_the_same_fault_schedule() {
    use aspen_lab::nemesis::{schedule, step_seed};
    use aspen_lab::scenario::{Step, load_scenario};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/nemesis_mix.json");
    let plan = |seed: u64| {
        let scenario = load_scenario(&path).expect("nemesis_mix.json");
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
    assert!(!plan(42).is_empty());
    assert_eq!(plan(42), plan(42));
    assert_ne!(plan(42), plan(43));
}
