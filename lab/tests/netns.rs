//! Real packets through the lab's network namespaces: nodes reach each other and the lab
//! reaches them; an isolated node reaches no peer while the lab still reaches it, and heal
//! brings it back; a one-way partition drops one direction only; and nothing is left behind,
//! whether a topology is dropped, torn down on Ctrl-C, or its process is killed.
//!
//! The programs inside the namespaces are this test executable again, started through
//! `ip netns exec` (the runner's [`NetnsTopology::command_prefix`]) with the `helper` test
//! selected and `ASPEN_NETNS_HELPER` saying what to do: serve a TCP echo and report UDP
//! datagrams, probe a TCP echo, send a datagram, or hold a topology until killed.
//!
//! Needs Linux, root, `ip` and `nft`: without them every test prints one line saying why and
//! passes. Every wait polls its condition up to a deadline.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use aspen_lab::network::{
    Conditions, Delay, NetnsTopology, NetworkError, Partition, RunId, cleanup_stale, support,
    teardown_all,
};

/// What a helper process does; unset in a normal test run.
const HELPER_ENV: &str = "ASPEN_NETNS_HELPER";
/// The port every echo server listens on: each namespace has its own ports.
const PORT: u16 = 7007;
/// Longest wait for any condition of these tests.
const DEADLINE: Duration = Duration::from_secs(15);
/// Pause between two looks at a condition.
const POLL: Duration = Duration::from_millis(50);
/// How long a probe waits for a connection or an answer before calling the peer unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Whether this machine can run the tests; prints why not.
fn supported(test: &str) -> bool {
    match support() {
        Ok(()) => true,
        Err(error) => {
            println!("{test}: skipped: {error}");
            false
        }
    }
}

/// Polls `condition` until it holds, failing the test after `DEADLINE`.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "waited {DEADLINE:?} for: {what}");
        std::thread::sleep(POLL);
    }
}

/// Not a test of its own: the entry point of the helper processes, which returns at once in a
/// normal run.
#[test]
fn helper() {
    let Ok(task) = std::env::var(HELPER_ENV) else { return };
    let (mode, argument) = task.split_once(' ').unwrap_or((&task, ""));
    match mode {
        "serve" => serve(argument.parse().expect("serve <addr:port>")),
        "probe" => std::process::exit(if echo(argument.parse().expect("addr")) { 0 } else { 1 }),
        "udp" => {
            let (to, payload) = argument.split_once(' ').expect("udp <addr:port> <payload>");
            let socket = UdpSocket::bind("0.0.0.0:0").expect("bind");
            socket.send_to(payload.as_bytes(), to).expect("send");
        }
        "hold" => {
            // A run with a node process in its namespace, as the runner leaves one when killed.
            let topology = NetnsTopology::create(2).expect("topology");
            let node =
                Helper::start(Some((&topology, 0)), &format!("serve {}", address(&topology, 0)));
            node.line("ready");
            println!("run {} {}", topology.run_id(), node.child.id());
            std::mem::forget(node);
            // Block until killed (or until the test closes stdin).
            let _ = std::io::stdin().read(&mut [0u8; 1]);
        }
        other => panic!("unknown helper task {other:?}"),
    }
}

/// A TCP echo server and a UDP receiver that prints `udp <sender ip> <payload>` per datagram.
fn serve(address: SocketAddr) {
    let listener = TcpListener::bind(address).expect("bind tcp");
    let udp = UdpSocket::bind(address).expect("bind udp");
    std::thread::spawn(move || {
        let mut buffer = [0u8; 512];
        while let Ok((length, from)) = udp.recv_from(&mut buffer) {
            println!("udp {} {}", from.ip(), String::from_utf8_lossy(&buffer[..length]));
        }
    });
    println!("ready");
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let mut stream = stream;
            let mut buffer = [0u8; 512];
            while let Ok(length @ 1..) = stream.read(&mut buffer) {
                if stream.write_all(&buffer[..length]).is_err() {
                    break;
                }
            }
        });
    }
}

/// Whether a TCP echo at `address` answers within `PROBE_TIMEOUT`.
fn echo(address: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, PROBE_TIMEOUT) else { return false };
    let _ = stream.set_read_timeout(Some(PROBE_TIMEOUT));
    let mut answer = [0u8; 4];
    stream.write_all(b"ping").is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && &answer == b"ping"
}

/// A helper process, killed when dropped.
struct Helper {
    child: Child,
    lines: Receiver<String>,
}

impl Helper {
    /// Starts `task` in node `node`'s namespace, or in the root namespace for `None`.
    fn start(topology: Option<(&NetnsTopology, u32)>, task: &str) -> Helper {
        let mut child = helper_command(topology, task)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start helper");
        let lines = read_lines(child.stdout.take().expect("stdout"));
        Helper { child, lines }
    }

    /// The rest of the next line that holds `prefix`, from `prefix` on, skipping other lines,
    /// within `DEADLINE`.
    fn line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                // libtest prints `test helper ... ` without a newline before the helper runs.
                Ok(line) => {
                    if let Some(start) = line.find(prefix) {
                        return line[start..].to_string();
                    }
                }
                Err(_) => panic!("no line starting with {prefix:?} within {DEADLINE:?}"),
            }
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn helper_command(topology: Option<(&NetnsTopology, u32)>, task: &str) -> Command {
    let exe = std::env::current_exe().expect("test executable");
    let mut command = match topology {
        Some((topology, node)) => {
            let prefix = topology.command_prefix(node).expect("node exists");
            let mut command = Command::new(&prefix[0]);
            command.args(&prefix[1..]).arg(exe);
            command
        }
        None => Command::new(exe),
    };
    command.args(["helper", "--exact", "--nocapture", "--test-threads=1"]).env(HELPER_ENV, task);
    command
}

fn read_lines(stdout: ChildStdout) -> Receiver<String> {
    let (sender, receiver) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

fn address(topology: &NetnsTopology, node: u32) -> SocketAddr {
    SocketAddr::from((topology.node_address(node).expect("node exists"), PORT))
}

/// Starts an echo server in every node's namespace and waits until each is listening.
fn serve_everywhere(topology: &NetnsTopology) -> Vec<Helper> {
    let servers: Vec<Helper> = (0..topology.nodes())
        .map(|node| {
            Helper::start(Some((topology, node)), &format!("serve {}", address(topology, node)))
        })
        .collect();
    servers.iter().for_each(|server| drop(server.line("ready")));
    servers
}

/// Whether node `from` reaches node `to`'s echo server.
fn reaches(topology: &NetnsTopology, from: u32, to: u32) -> bool {
    let task = format!("probe {}", address(topology, to));
    let status = helper_command(Some((topology, from)), &task)
        .stdout(Stdio::null())
        .status()
        .expect("run probe");
    status.success()
}

/// Whether the lab (this process, in the root namespace) reaches node `node`'s echo server.
fn lab_reaches(topology: &NetnsTopology, node: u32) -> bool {
    echo(address(topology, node))
}

/// Sends one datagram from node `from` to node `to`.
fn send_udp(topology: &NetnsTopology, from: u32, to: u32, payload: &str) {
    let task = format!("udp {} {payload}", address(topology, to));
    let status = helper_command(Some((topology, from)), &task)
        .stdout(Stdio::null())
        .status()
        .expect("run udp sender");
    assert!(status.success(), "sending from node {from} failed");
}

fn namespaces() -> String {
    String::from_utf8_lossy(&Command::new("ip").args(["netns", "list"]).output().unwrap().stdout)
        .into_owned()
}

fn host_links() -> String {
    String::from_utf8_lossy(&Command::new("ip").args(["-o", "link"]).output().unwrap().stdout)
        .into_owned()
}

/// Whether anything named after run `id` exists on the machine.
fn leftovers(id: &RunId) -> bool {
    namespaces().contains(&id.namespace_prefix()) || host_links().contains(&id.host_link())
}

fn wait_gone(id: &RunId) {
    wait_until(&format!("every namespace and the host link of run {id} gone"), || !leftovers(id));
}

/// Whether process `pid` runs (a zombie waiting for its parent to reap it does not).
fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the command name, which is in parentheses.
    let state = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next());
    state.is_some_and(|state| state != "Z" && state != "X")
}

fn isolate(topology: &mut NetnsTopology, node: u32) {
    let nodes: Vec<u32> = (0..topology.nodes()).collect();
    let conditions =
        Conditions { partition: Partition::isolate(node, &nodes), ..Default::default() };
    topology.apply(&conditions).expect("isolate");
}

#[test]
fn an_isolated_node_reaches_no_peer_but_the_lab_reaches_it_until_heal() {
    if !supported("isolate") {
        return;
    }
    let mut topology = NetnsTopology::create(3).expect("topology");
    let id = topology.run_id().clone();
    let servers = serve_everywhere(&topology);
    wait_until("node 0 reaches node 1", || reaches(&topology, 0, 1));
    wait_until("node 1 reaches node 0", || reaches(&topology, 1, 0));
    assert!((0..3).all(|node| lab_reaches(&topology, node)), "the lab reaches every node");

    isolate(&mut topology, 0);
    wait_until("node 0 no longer reaches node 1", || !reaches(&topology, 0, 1));
    wait_until("node 2 no longer reaches node 0", || !reaches(&topology, 2, 0));
    assert!(reaches(&topology, 1, 2), "the other nodes still talk");
    assert!(lab_reaches(&topology, 0), "the lab still reaches the isolated node");

    topology.heal().expect("heal");
    wait_until("node 0 reaches node 1 again", || reaches(&topology, 0, 1));
    wait_until("node 2 reaches node 0 again", || reaches(&topology, 2, 0));

    drop(servers);
    topology.teardown().expect("teardown");
    wait_gone(&id);
}

#[test]
fn a_one_way_partition_drops_one_direction_only() {
    if !supported("one_way") {
        return;
    }
    let mut topology = NetnsTopology::create(3).expect("topology");
    let servers = serve_everywhere(&topology);
    let conditions =
        Conditions { partition: Partition::one_way(0, 1).unwrap(), ..Default::default() };
    topology.apply(&conditions).expect("one_way");
    let [zero, one] = [0, 1].map(|node| topology.node_address(node).unwrap());

    // Node 1 hears node 2's marker, sent after node 0's datagram, and never node 0.
    send_udp(&topology, 0, 1, "from-0");
    send_udp(&topology, 2, 1, "marker");
    let heard = servers[1].line("udp ");
    assert!(heard.ends_with(" marker"), "node 1 heard {heard:?} before the marker");
    // Node 0 still hears node 1.
    send_udp(&topology, 1, 0, "from-1");
    assert_eq!(servers[0].line("udp "), format!("udp {one} from-1"));

    topology.heal().expect("heal");
    send_udp(&topology, 0, 1, "healed");
    assert_eq!(servers[1].line("udp "), format!("udp {zero} healed"));
}

#[test]
fn total_loss_cuts_a_nodes_packets_to_peers_but_not_to_the_lab() {
    if !supported("loss") {
        return;
    }
    let mut topology = NetnsTopology::create(2).expect("topology");
    let _servers = serve_everywhere(&topology);
    let mut conditions = Conditions::default();
    conditions.loss_percent.insert(0, 100);
    topology.apply(&conditions).expect("loss");
    wait_until("node 0 no longer reaches node 1", || !reaches(&topology, 0, 1));
    assert!(lab_reaches(&topology, 0), "loss applies between nodes only");
    topology.heal().expect("heal");
    wait_until("node 0 reaches node 1 again", || reaches(&topology, 0, 1));
}

#[test]
fn delay_slows_a_nodes_packets_when_the_kernel_has_netem() {
    if !supported("delay") {
        return;
    }
    let mut topology = NetnsTopology::create(2).expect("topology");
    if let Err(error) = topology.netem_available() {
        println!("delay: skipped: {error}");
        let mut conditions = Conditions::default();
        conditions.delay.insert(0, Delay { ms: 50, jitter_ms: 0 });
        let refused = topology.apply(&conditions).unwrap_err();
        assert!(matches!(refused, NetworkError::Unsupported { .. }), "{refused}");
        return;
    }
    let _servers = serve_everywhere(&topology);
    let connect_ms = |topology: &NetnsTopology| {
        let start = Instant::now();
        assert!(lab_reaches(topology, 0), "the lab reaches node 0");
        start.elapsed().as_millis()
    };
    let mut conditions = Conditions::default();
    conditions.delay.insert(0, Delay { ms: 150, jitter_ms: 0 });
    topology.apply(&conditions).expect("delay");
    // A connect and an echo each wait for one delayed packet of node 0.
    assert!(connect_ms(&topology) >= 300, "node 0's packets are delayed");
    topology.heal().expect("heal");
    wait_until("node 0 answers without delay", || connect_ms(&topology) < 150);
}

#[test]
fn a_dropped_topology_leaves_nothing_even_after_a_panic() {
    if !supported("drop") {
        return;
    }
    let topology = NetnsTopology::create(2).expect("topology");
    let id = topology.run_id().clone();
    assert!(leftovers(&id), "the topology exists");
    let panicked = std::panic::catch_unwind(move || {
        let _owned = topology;
        panic!("a run fails half-way");
    });
    assert!(panicked.is_err());
    wait_gone(&id);
}

#[test]
fn teardown_all_removes_every_topology_of_the_process() {
    if !supported("teardown_all") {
        return;
    }
    let topology = NetnsTopology::create(1).expect("topology");
    let id = topology.run_id().clone();
    let errors = teardown_all();
    assert!(errors.is_empty(), "{errors:?}");
    wait_gone(&id);
    topology.teardown().expect("a second teardown finds nothing to do");
}

#[test]
fn the_set_of_a_killed_run_is_removed_by_the_next_cleanup_and_not_before() {
    if !supported("stale") {
        return;
    }
    // Dropped after `holder` (locals drop in reverse order): if the test fails, the killed
    // run's set is still removed.
    struct RemoveStale;
    impl Drop for RemoveStale {
        fn drop(&mut self) {
            let _ = cleanup_stale();
        }
    }
    let _remove_stale = RemoveStale;
    let mut holder = Helper::start(None, "hold");
    let line = holder.line("run ");
    let words: Vec<&str> = line.split_whitespace().collect();
    let id = RunId::of_name(&format!("aspl-{}", words[1])).expect("a run id");
    let node_pid: u32 = words[2].parse().expect("the node's pid");
    assert!(namespaces().contains(&id.lab_namespace()), "{}", namespaces());
    assert!(namespaces().contains(&id.node_namespace(1)));
    assert!(host_links().contains(&id.host_link()));

    let removed = cleanup_stale().expect("cleanup");
    assert!(!removed.contains(&id), "a live run's set is left alone");
    assert!(leftovers(&id));

    holder.child.kill().expect("kill the run");
    holder.child.wait().expect("reap it");
    // Every lab run cleans up stale sets when it starts, so a run of another test in the same
    // moment may be removing this one already: then it is not in our list, but it goes all
    // the same (and `wait_gone` fails the test if it does not).
    let removed = cleanup_stale().expect("cleanup");
    if !removed.contains(&id) {
        eprintln!("run {id} was not in this cleanup's list {removed:?}: another run's cleanup");
    }
    wait_gone(&id);
    wait_until("the killed run's node process gone", || !alive(node_pid));
}
