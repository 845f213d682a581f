//! Helpers for tests that run `aspen-node` and `aspen` as real processes.
//!
//! Every node runs under a [`NodeProcess`] guard that kills it when dropped, also when the test
//! panics, and then prints the end of the node's log so that a failure shows what the node
//! saw. Every wait has a deadline and says what it waited for.

#![allow(dead_code)]

pub mod netns;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aspen::cli::client::NodeClient;
use aspen::cli::node::ReadyLine;
use aspen::discovery::endpoint_to_string;
use iroh::{EndpointAddr, SecretKey, TransportAddr};
use serde_json::Value;

/// The node binary cargo built for these tests.
pub const NODE_BIN: &str = env!("CARGO_BIN_EXE_aspen-node");

/// How long a node may take from spawn to its ready line (a debug build on a busy 2-core
/// machine opens redb, binds iroh and starts its actors in well under a second).
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How long one `aspen` command may take: the CLI's own request bound is 35 s, but in these
/// tests every command should answer in a few seconds.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(40);

/// Raft timings for tests, as in `tests/common`: elections take a fraction of a second.
pub const HEARTBEAT_INTERVAL_MS: u64 = 100;
/// The smallest election timeout of test nodes.
pub const ELECTION_TIMEOUT_MIN_MS: u64 = 400;
/// The largest election timeout of test nodes.
pub const ELECTION_TIMEOUT_MAX_MS: u64 = 800;

/// A UDP port that was free a moment ago (bound and released), for `--iroh-port`.
pub fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
    socket.local_addr().expect("local addr").port()
}

/// What one node of a test cluster is: fixed key and port, so its endpoint address is known
/// before it starts and the others can be given it with `--peers`.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// The Raft node id.
    pub node_id: u64,
    /// The iroh UDP port.
    pub iroh_port: u16,
    /// The iroh secret key bytes.
    pub secret: [u8; 32],
    /// The node's data dir.
    pub data_dir: PathBuf,
}

impl NodeSpec {
    /// A node with a key derived from `node_id` and `salt`, a free port and a data dir under
    /// `root`.
    pub fn new(node_id: u64, salt: u8, root: &Path) -> Self {
        let mut secret = [salt; 32];
        secret[0] = node_id as u8;
        Self {
            node_id,
            iroh_port: free_udp_port(),
            secret,
            data_dir: root.join(format!("node-{node_id}")),
        }
    }

    /// The node's iroh endpoint address on loopback.
    pub fn endpoint_addr(&self) -> EndpointAddr {
        let mut addr = EndpointAddr::new(SecretKey::from_bytes(&self.secret).public());
        addr.addrs.insert(TransportAddr::Ip(([127, 0, 0, 1], self.iroh_port).into()));
        addr
    }

    /// `ID@<endpoint address JSON>` for the other nodes' `--peers`.
    pub fn peer_arg(&self) -> String {
        format!("{}@{}", self.node_id, endpoint_to_string(&self.endpoint_addr()))
    }

    /// The node's flags, with `peers` as manual peers and fast Raft timings.
    pub fn args(&self, peers: &[&NodeSpec]) -> Vec<String> {
        let mut args: Vec<String> = vec![
            format!("--node-id={}", self.node_id),
            format!("--data-dir={}", self.data_dir.display()),
            "--http-addr=127.0.0.1:0".into(),
            format!("--iroh-port={}", self.iroh_port),
            format!("--iroh-secret-key={}", hex::encode(self.secret)),
            "--cookie=aspen-process-test".into(),
            format!("--heartbeat-interval-ms={HEARTBEAT_INTERVAL_MS}"),
            format!("--election-timeout-min-ms={ELECTION_TIMEOUT_MIN_MS}"),
            format!("--election-timeout-max-ms={ELECTION_TIMEOUT_MAX_MS}"),
            "--disable-gossip".into(),
            "--disable-mdns".into(),
        ];
        args.extend(peers.iter().map(|peer| format!("--peers={}", peer.peer_arg())));
        args
    }

    /// The node's flags with gossip on, announcing every `interval_ms`, joining through
    /// `ticket` if given, and no manual peers.
    pub fn gossip_args(&self, interval_ms: u64, ticket: Option<&str>) -> Vec<String> {
        let mut args: Vec<String> =
            self.args(&[]).into_iter().filter(|a| a != "--disable-gossip").collect();
        args.push(format!("--gossip-interval-ms={interval_ms}"));
        args.extend(ticket.map(|ticket| format!("--ticket={ticket}")));
        args
    }

    /// The node's flags without `--iroh-secret-key` and without peers: the node makes its key
    /// on first start and keeps it in its data dir, and learns its peers at run time.
    pub fn args_with_stored_key(&self) -> Vec<String> {
        self.args(&[]).into_iter().filter(|a| !a.starts_with("--iroh-secret-key")).collect()
    }
}

/// A running `aspen-node`; killed (SIGKILL) when dropped.
pub struct NodeProcess {
    child: Option<Child>,
    /// What the node announced on stdout.
    pub ready: ReadyLine,
    /// Where its stderr (the log) goes.
    pub log_path: PathBuf,
    /// The flags it was started with.
    pub args: Vec<String>,
}

impl NodeProcess {
    /// Starts a node and waits for its ready line; the log goes to `log_path` (appended, so a
    /// restarted node continues the same file).
    pub fn start(args: Vec<String>, log_path: &Path) -> Self {
        Self::start_with_env(args, &[], log_path)
    }

    /// Like [`NodeProcess::start`], with extra environment variables.
    pub fn start_with_env(args: Vec<String>, env: &[(&str, &str)], log_path: &Path) -> Self {
        Self::spawn(NODE_BIN, args.clone(), args, env, log_path)
    }

    /// Like [`NodeProcess::start`], inside network namespace `namespace` (`ip netns exec`,
    /// which execs the node in place, so the pid is the node's).
    pub fn start_in_namespace(namespace: &str, args: Vec<String>, log_path: &Path) -> Self {
        let mut argv: Vec<String> = vec!["netns".into(), "exec".into(), namespace.into()];
        argv.push(NODE_BIN.into());
        argv.extend(args.iter().cloned());
        Self::spawn("ip", argv, args, &[], log_path)
    }

    /// Runs `program argv` (which runs the node with `args`) and waits for the ready line.
    fn spawn(
        program: &str,
        argv: Vec<String>,
        args: Vec<String>,
        env: &[(&str, &str)],
        log_path: &Path,
    ) -> Self {
        let log = File::options().create(true).append(true).open(log_path).expect("log file");
        let mut child = Command::new(program)
            .args(&argv)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn aspen-node");
        let stdout = child.stdout.take().expect("stdout");
        let (lines, ready) = mpsc::channel();
        // Keep reading stdout for the node's whole life, so that it never writes to a closed
        // pipe; only the first line is expected.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let mut process = NodeProcess {
            child: Some(child),
            ready: placeholder_ready(),
            log_path: log_path.to_path_buf(),
            args,
        };
        match ready.recv_timeout(READY_TIMEOUT) {
            Ok(line) => {
                process.ready = line.parse().unwrap_or_else(|e| panic!("bad ready line: {e}"))
            }
            Err(_) => {
                let status = process.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
                panic!(
                    "aspen-node printed no ready line within {READY_TIMEOUT:?} (exit status: \
                     {status:?})\n{}",
                    log_tail(log_path)
                );
            }
        }
        process
    }

    /// The node's HTTP API URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.ready.http_addr)
    }

    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`).
    pub fn signal(&self, signal: i32) {
        let pid = self.pid() as libc::pid_t;
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
        let result = unsafe { libc::kill(pid, signal) };
        assert_eq!(result, 0, "kill({pid}, {signal}) failed");
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "aspen-node did not exit within {timeout:?}\n{}",
                log_tail(&self.log_path)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A client of the node's HTTP API.
    pub fn client(&self) -> NodeClient {
        NodeClient::new(&self.url()).expect("client")
    }

    /// The node's Raft metrics (`GET /raft-metrics`), or `None` if it does not answer.
    pub fn raft_metrics(&self) -> Option<Value> {
        self.client().get_json("/raft-metrics").ok()
    }

    /// The leader this node names, if any.
    pub fn leader(&self) -> Option<u64> {
        self.raft_metrics()?.get("current_leader")?.as_u64()
    }

    /// The highest log index this node has applied.
    pub fn applied_index(&self) -> Option<u64> {
        let metrics = self.raft_metrics()?;
        let applied = metrics.get("last_applied")?;
        applied.get("index").and_then(Value::as_u64).or_else(|| applied.as_u64())
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("--- log of {} ---\n{}", self.log_path.display(), log_tail(&self.log_path));
        }
    }
}

fn placeholder_ready() -> ReadyLine {
    let key = SecretKey::from_bytes(&[0; 32]).public();
    ReadyLine {
        node_id: 0,
        http_addr: ([127, 0, 0, 1], 0).into(),
        endpoint_id: key,
        ractor_port: 0,
        endpoint_addr: EndpointAddr::new(key),
    }
}

/// The last lines of a log file.
pub fn log_tail(path: &Path) -> String {
    const LINES: usize = 60;
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LINES)..].join("\n")
}

/// What an `aspen` run printed and how it exited.
#[derive(Debug)]
pub struct CliRun {
    /// The exit code.
    pub code: i32,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

impl CliRun {
    /// Stdout as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// Panics with everything printed unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(self.code, code, "unexpected exit code: {self:?}");
        self
    }
}

/// Runs `aspen --node <url> <args>` with a time limit.
pub fn aspen(url: &str, args: &[&str]) -> CliRun {
    let mut command = assert_cmd::cargo::cargo_bin_cmd!("aspen");
    command.arg("--node").arg(url).args(args).env_remove("ASPEN_NODE").timeout(CLI_TIMEOUT);
    let output = command.output().expect("run aspen");
    CliRun {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).trim_end().to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).trim_end().to_string(),
    }
}

/// Runs `aspen-node <args>` to completion (for refusals), with a time limit.
pub fn node_refusal(args: &[&str], env: &[(&str, &str)]) -> CliRun {
    let mut command = assert_cmd::cargo::cargo_bin_cmd!("aspen-node");
    command.args(args).envs(env.iter().copied()).timeout(CLI_TIMEOUT);
    let output = command.output().expect("run aspen-node");
    CliRun {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).trim_end().to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).trim_end().to_string(),
    }
}

/// The value of one sample (`name` with its labels, e.g. `x_total{reason="a"}`) on a node's
/// `GET /metrics` page, if the node answers and shows it.
pub fn metric(node: &NodeProcess, series: &str) -> Option<u64> {
    let page = node.client().get_text("/metrics").ok()?;
    page.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Polls `condition` every 50 ms until it returns `Some` or `timeout` passes; panics saying
/// what it waited for.
pub fn wait_for<T>(what: &str, timeout: Duration, mut condition: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = condition() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts one node per spec, each with all the others as manual peers.
pub fn start_cluster(specs: &[NodeSpec], log_dir: &Path) -> Vec<NodeProcess> {
    specs
        .iter()
        .map(|spec| {
            let others: Vec<&NodeSpec> =
                specs.iter().filter(|s| s.node_id != spec.node_id).collect();
            let log = log_dir.join(format!("node-{}.log", spec.node_id));
            NodeProcess::start(spec.args(&others), &log)
        })
        .collect()
}

/// With `aspen node add-peer`: tells every node where every other one is, from their ready
/// lines.
pub fn exchange_peers(nodes: &[NodeProcess]) {
    for node in nodes {
        for other in nodes.iter().filter(|o| o.ready.node_id != node.ready.node_id) {
            let id = other.ready.node_id.to_string();
            let endpoint = endpoint_to_string(&other.ready.endpoint_addr);
            aspen(&node.url(), &["node", "add-peer", &id, &endpoint]).expect_code(0);
        }
    }
}

/// With the `aspen` CLI: init on the first node, add the others as learners, promote all.
pub fn form_cluster(nodes: &[NodeProcess]) {
    let first = nodes[0].url();
    aspen(&first, &["cluster", "init"]).expect_code(0);
    for node in &nodes[1..] {
        let id = node.ready.node_id.to_string();
        let addr = node.ready.http_addr.to_string();
        aspen(&first, &["cluster", "add-learner", &id, "--addr", &addr]).expect_code(0);
    }
    let ids: Vec<String> = nodes.iter().map(|n| n.ready.node_id.to_string()).collect();
    let mut args = vec!["cluster", "change-membership"];
    args.extend(ids.iter().map(String::as_str));
    aspen(&first, &args).expect_code(0);
}

/// What `GET /peers` on `node` says: node id → the entry.
pub fn peers_by_id(node: &NodeProcess) -> Option<std::collections::BTreeMap<u64, Value>> {
    let list = node.client().get_json("/peers").ok()?;
    let entries = list.as_array()?.iter().cloned();
    Some(entries.filter_map(|entry| Some((entry.get("node_id")?.as_u64()?, entry))).collect())
}

/// Writes `key` = `value` through the first node and checks that every node applies it (within
/// `bound`) and reads it back.
pub fn write_replicates(nodes: &[NodeProcess], key: &str, value: &str, bound: Duration) {
    let url = nodes[0].url();
    let written = aspen(&url, &["--json", "kv", "put", key, value]).expect_code(0);
    let log_index = written.json()["log_index"].as_u64().expect("log_index of the write");
    for node in nodes {
        wait_for(&format!("node {} to apply the write", node.ready.node_id), bound, || {
            (node.applied_index()? >= log_index).then_some(())
        });
        let read = aspen(&node.url(), &["kv", "get", key]).expect_code(0);
        assert_eq!(read.stdout, value, "node {}", node.ready.node_id);
    }
}
