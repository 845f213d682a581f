//! The `aspen` client against a real single-node cluster: every command, its exit code (0 ok,
//! 1 error, 2 usage, 3 not found, 4 compare-and-swap mismatch) and its `--json` output.

mod process;

use aspen::api::{ClusterState, ReadResult, ScanResult, WriteResult};
use process::{NodeProcess, NodeSpec, aspen};

fn single_node(salt: u8) -> (tempfile::TempDir, NodeProcess) {
    let root = tempfile::tempdir().unwrap();
    let spec = NodeSpec::new(1, salt, root.path());
    let node = NodeProcess::start(spec.args(&[]), &root.path().join("node-1.log"));
    aspen(&node.url(), &["cluster", "init"]).expect_code(0);
    (root, node)
}

#[test]
fn key_value_commands_exit_with_their_documented_codes() {
    let (_root, node) = single_node(0x44);
    let url = node.url();
    let run = |args: &[&str]| aspen(&url, args);

    assert!(run(&["kv", "put", "color", "red"]).expect_code(0).stdout.starts_with("OK"));
    assert_eq!(run(&["kv", "get", "color"]).expect_code(0).stdout, "red");
    let missing = run(&["kv", "get", "shape"]).expect_code(3);
    assert!(missing.stderr.contains("shape"), "the server's sentence: {missing:?}");

    let lost = run(&["kv", "cas", "color", "--expected", "blue", "green"]).expect_code(4);
    assert!(!lost.stderr.is_empty());
    let lost = run(&["--json", "kv", "cas", "color", "--expected", "blue", "green"]).expect_code(4);
    assert_eq!(lost.json()["kind"], "cas_failed", "{lost:?}");
    run(&["kv", "cas", "color", "--expected", "red", "green"]).expect_code(0);
    run(&["kv", "cas", "shape", "--expect-absent", "round"]).expect_code(0);
    run(&["kv", "cas", "shape", "--expect-absent", "square"]).expect_code(4);
    assert_eq!(run(&["kv", "get", "shape"]).expect_code(0).stdout, "round");

    let read: ReadResult =
        serde_json::from_value(run(&["--json", "kv", "get", "color"]).expect_code(0).json())
            .unwrap();
    assert_eq!((read.key.as_str(), read.value.as_str()), ("color", "green"));

    let multi = run(&["--json", "kv", "put-multi", "cfg/a=1", "cfg/b=2", "cfg/c=x=y"]);
    let multi: WriteResult = serde_json::from_value(multi.expect_code(0).json()).unwrap();
    assert!(multi.log_index > 0);
    assert_eq!(run(&["kv", "scan", "cfg/"]).expect_code(0).stdout, "cfg/a=1\ncfg/b=2\ncfg/c=x=y");
    let scan = run(&["--json", "kv", "scan", "cfg/", "--limit", "2"]).expect_code(0);
    let scan: ScanResult = serde_json::from_value(scan.json()).unwrap();
    assert_eq!(scan.entries.len(), 2);
    assert!(scan.truncated);

    run(&["kv", "delete", "color"]).expect_code(0);
    run(&["kv", "get", "color"]).expect_code(3);
    let invalid = run(&["kv", "put", "", "empty-key"]).expect_code(1);
    assert!(invalid.stderr.contains("key"), "{invalid:?}");
}

#[test]
fn cluster_and_node_commands_answer_in_text_and_json() {
    let (_root, node) = single_node(0x55);
    let url = node.url();
    let run = |args: &[&str]| aspen(&url, args);

    let state: ClusterState =
        serde_json::from_value(run(&["--json", "cluster", "status"]).expect_code(0).json())
            .unwrap();
    assert_eq!(state.members, vec![1]);
    assert_eq!(state.nodes[0].addr, node.ready.http_addr.to_string());
    let table = run(&["cluster", "status"]).expect_code(0).stdout;
    assert!(table.lines().any(|l| l.starts_with('1') && l.contains("leader")), "{table}");
    run(&["cluster", "init"]).expect_code(1);

    let ticket = run(&["cluster", "ticket"]).expect_code(0).stdout;
    assert!(ticket.starts_with("aspen"), "{ticket}");
    let info = run(&["--json", "node", "info"]).expect_code(0).json();
    assert_eq!(info["node_id"], 1);
    assert_eq!(info["endpoint_id"], node.ready.endpoint_id.to_string());
    assert!(run(&["node", "info"]).expect_code(0).stdout.contains("endpoint_id: "));
    assert_eq!(run(&["node", "health"]).expect_code(0).stdout, "ok (node 1)");
    assert_eq!(run(&["--json", "node", "health"]).expect_code(0).json()["status"], "ok");
    assert!(!run(&["node", "metrics"]).expect_code(0).stdout.is_empty());
    let metrics = run(&["--json", "node", "metrics"]).expect_code(0).json();
    assert_eq!(metrics["current_leader"], 1, "{metrics}");

    let stranger = NodeSpec::new(9, 0x56, std::path::Path::new("/unused"));
    let endpoint = aspen::discovery::endpoint_to_string(&stranger.endpoint_addr());
    run(&["node", "add-peer", "9", &endpoint]).expect_code(0);
    let peers = run(&["--json", "node", "peers"]).expect_code(0).stdout;
    assert!(peers.contains(&stranger.endpoint_addr().id.to_string()), "{peers}");
    run(&["node", "add-peer", "9", "not-an-endpoint"]).expect_code(2);
}

#[test]
fn usage_errors_exit_2_and_an_unreachable_node_exits_1() {
    let nowhere = "http://127.0.0.1:1";
    for args in [
        &["kv"][..],
        &["kv", "put", "only-key"],
        &["kv", "cas", "k", "new"],
        &["kv", "put-multi", "no-equals-sign"],
        &["cluster", "add-learner", "x"],
        &["bogus"],
    ] {
        let run = aspen(nowhere, args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
    }
    let run = aspen("https://127.0.0.1:1", &["kv", "get", "k"]);
    assert_eq!(run.code, 2, "{run:?}");
    let run = aspen(nowhere, &["kv", "get", "k"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("cannot reach http://127.0.0.1:1"), "{run:?}");
    let help = aspen(nowhere, &["--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("3 key not found"), "{help:?}");
}
