//! The CI smoke test of `aspen-bench`: a few hundred operations against a real 3-node cluster,
//! only to prove that the tool works end to end, over HTTP/2 (the default) and HTTP/1.1, for
//! writes and for linearizable and serializable reads. It is not a benchmark and asserts no
//! speed.
//!
//! The node binary must be built in the same target directory (`cargo build --workspace`, or
//! `cargo nextest run --workspace --all-targets`, builds it), as for the lab's scenario tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long a debug node may take to print its ready line on a busy 2-core machine.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the cluster may take to elect a leader and apply its membership.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(15);

/// target/<profile>/aspen-node, from this test's path (target/<profile>/deps/smoke-…).
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

/// A node process, killed (SIGKILL) when dropped, also when the test panics.
struct Node {
    child: Child,
    id: u64,
    url: String,
    endpoint_addr: Value,
    log: PathBuf,
}

impl Node {
    fn start(id: u64, root: &Path) -> Node {
        let log = root.join(format!("node-{id}.log"));
        let mut child = Command::new(node_bin())
            .arg(format!("--node-id={id}"))
            .arg(format!("--data-dir={}", root.join(format!("node-{id}")).display()))
            .args(["--http-addr=127.0.0.1:0", "--iroh-port=0", "--cookie=aspen-bench-smoke"])
            .args(["--heartbeat-interval-ms=100", "--election-timeout-min-ms=400"])
            .args(["--election-timeout-max-ms=800", "--disable-gossip", "--disable-mdns"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn aspen-node");
        let stdout = child.stdout.take().expect("stdout");
        let (lines, ready) = mpsc::channel();
        // Keep reading stdout for the node's whole life, so that it never writes to a closed pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let line = ready.recv_timeout(READY_TIMEOUT).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("node {id}: no ready line in {READY_TIMEOUT:?}\n{}", tail(&log))
        });
        let (head, endpoint) = line.split_once(" endpoint_addr=").expect("ready line");
        let http = head.split_whitespace().find_map(|f| f.strip_prefix("http=")).expect("http=");
        Node {
            child,
            id,
            url: format!("http://{http}"),
            endpoint_addr: serde_json::from_str(endpoint).expect("endpoint_addr JSON"),
            log,
        }
    }

    fn get(&self, path: &str) -> Option<Value> {
        agent().get(&format!("{}{path}", self.url)).call().ok()?.body_mut().read_json().ok()
    }

    fn post(&self, path: &str, body: Value) {
        let answer = agent().post(&format!("{}{path}", self.url)).send_json(&body);
        if let Err(error) = answer {
            panic!("node {}: POST {path} {body}: {error}\n{}", self.id, tail(&self.log));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- node {} ---\n{}", self.id, tail(&self.log));
        }
    }
}

/// An HTTP client that ignores proxies in the environment and gives up after 10 s.
fn agent() -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(10)))
        .build();
    config.into()
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes; panics naming `what`.
fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Three nodes that know each other, node 1 initialized, 2 and 3 added and promoted.
fn start_cluster(root: &Path) -> Vec<Node> {
    let nodes: Vec<Node> = (1..=3).map(|id| Node::start(id, root)).collect();
    for node in &nodes {
        for other in nodes.iter().filter(|o| o.id != node.id) {
            node.post(
                "/add-peer",
                json!({"node_id": other.id, "endpoint_addr": other.endpoint_addr}),
            );
        }
    }
    let first = &nodes[0];
    let member = |n: &Node| json!({"id": n.id, "addr": n.url.trim_start_matches("http://")});
    first.post("/init", json!({"initial_members": [member(first)]}));
    wait_for("node 1 to lead", CLUSTER_TIMEOUT, || {
        first.get("/raft-metrics").is_some_and(|m| m["current_leader"] == 1)
    });
    for node in &nodes[1..] {
        first.post("/add-learner", json!({"learner": member(node)}));
    }
    first.post("/change-membership", json!({"members": [1, 2, 3]}));
    wait_for("every node to know the leader", CLUSTER_TIMEOUT, || {
        nodes.iter().all(|n| n.get("/raft-metrics").is_some_and(|m| m["current_leader"] == 1))
    });
    nodes
}

/// Runs `aspen-bench` and returns its output.
fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aspen-bench")).args(args).output().expect("run aspen-bench")
}

/// The JSON lines of an `aspen-bench` run (it exited 0).
fn json_lines(output: &Output) -> Vec<Value> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "aspen-bench failed\n{stdout}\n{stderr}");
    stdout
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

fn assert_clean(report: &Value, test: &str, ops: u64) {
    assert_eq!(report["test"], test, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["ops"], ops, "{report}");
    assert!(report["ops_per_s"].as_f64().unwrap() > 0.0, "{report}");
    assert!(report["p50_ms"].as_f64().unwrap() > 0.0, "{report}");
    let node_cpu = report["node_cpu_s_per_op"].as_f64().expect("node CPU with --pids");
    assert!(node_cpu >= 0.0, "{report}");
}

#[test]
fn put_and_get_run_against_a_real_cluster() {
    let root = tempfile::tempdir().expect("temp dir");
    let nodes = start_cluster(root.path());
    let endpoints = nodes.iter().map(|n| n.url.clone()).collect::<Vec<_>>().join(",");
    let pids = nodes.iter().map(|n| format!("{}={}", n.id, n.child.id())).collect::<Vec<_>>();
    let pids = pids.join(",");
    let floor_file = root.path().join("floor.jsonl");
    let floor_path = floor_file.to_str().unwrap();
    let dir = root.path().to_str().unwrap();

    let floor = json_lines(&bench(&[
        "floor",
        "--dir",
        dir,
        "--fsync-samples",
        "20",
        "--udp-samples",
        "200",
        "--redb-samples",
        "20",
        "--json-out",
        floor_path,
    ]));
    let tests: Vec<&str> = floor.iter().map(|line| line["test"].as_str().unwrap_or("")).collect();
    assert_eq!(tests, ["floor-fsync", "floor-udp", "floor-redb"], "{floor:?}");
    assert_eq!(floor[2]["ops"], 20, "{}", floor[2]);
    assert!(floor[2]["client_cpu_s_per_op"].as_f64().unwrap() > 0.0, "{}", floor[2]);

    // One test of 200 operations from 4 clients against the cluster, with `extra` flags.
    let run = |test: &str, extra: &[&str]| {
        let mut args = vec![test, "--endpoints", &endpoints, "--pids", &pids];
        args.extend(["--total", "200", "--clients", "4"]);
        args.extend_from_slice(extra);
        json_lines(&bench(&args))
    };
    let put = run("put", &["--conns", "2", "--floor", floor_path]);
    assert_eq!(put.len(), 1, "{put:?}");
    assert_clean(&put[0], "put", 200);
    assert_eq!(put[0]["http"], 2, "HTTP/2 unless asked otherwise: {}", put[0]);
    assert!(put[0]["floor_ratio"]["p50"].as_f64().unwrap() > 0.0, "{}", put[0]);

    let put_http1 = run("put", &["--conns", "2", "--http", "1"]);
    assert_eq!(put_http1.len(), 1, "{put_http1:?}");
    assert_clean(&put_http1[0], "put", 200);
    assert_eq!(put_http1[0]["http"], 1, "{}", put_http1[0]);

    let get = run("get", &["--key-space", "20"]);
    assert_eq!(get.len(), 1, "{get:?}");
    assert_clean(&get[0], "get", 200);
    assert_eq!(get[0]["consistency"], "linearizable");
    assert_eq!(get[0]["http"], 2, "{}", get[0]);

    // Over all three nodes, so that followers answer from their own state.
    let serializable = run("get", &["--key-space", "20", "--consistency", "serializable"]);
    assert_eq!(serializable.len(), 1, "{serializable:?}");
    assert_clean(&serializable[0], "get", 200);
    assert_eq!(serializable[0]["consistency"], "serializable");
    assert_eq!(serializable[0]["endpoints"], 3, "{}", serializable[0]);
}
