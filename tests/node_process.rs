//! `aspen-node` as a real process: a three-node cluster on loopback formed with the `aspen`
//! CLI, failover after `kill -9` of the leader, a restart that rejoins with the same identity
//! and catches up, clean exit on SIGTERM, and refusals of bad flags and config files.

mod process;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aspen::api::{ClusterState, ScanResult, WriteResult};
use process::{
    ELECTION_TIMEOUT_MAX_MS, NodeProcess, NodeSpec, aspen, exchange_peers, form_cluster,
    node_refusal, start_cluster, wait_for,
};

/// How long a new leader may take after the old one died: the followers notice after at most
/// one election timeout, and a few rounds may split their votes; ten maximal timeouts covers
/// that with room for a loaded machine.
const FAILOVER_BOUND: Duration = Duration::from_millis(10 * ELECTION_TIMEOUT_MAX_MS);

/// How long a graceful shutdown may take in these tests (the node's own bound is
/// `SHUTDOWN_TIMEOUT_MS_MAX`, 10 s; a small node stops in well under a second).
const SHUTDOWN_BOUND: Duration = Duration::from_secs(12);

/// How long replication and catch-up may take on loopback.
const CATCH_UP_BOUND: Duration = Duration::from_secs(15);

#[test]
fn three_nodes_replicate_a_write_made_through_a_follower() {
    let root = tempfile::tempdir().unwrap();
    let specs: Vec<NodeSpec> = (1..=3).map(|id| NodeSpec::new(id, 0x11, root.path())).collect();
    let nodes = start_cluster(&specs, root.path());
    for (node, spec) in nodes.iter().zip(&specs) {
        assert_eq!(node.ready.endpoint_id, spec.endpoint_addr().id, "key from --iroh-secret-key");
    }
    form_cluster(&nodes);

    let status = aspen(&nodes[0].url(), &["--json", "cluster", "status"]).expect_code(0).json();
    let state: ClusterState = serde_json::from_value(status).unwrap();
    assert_eq!((state.members, state.learners), (vec![1, 2, 3], vec![]));

    let follower = &nodes[2];
    let written = aspen(&follower.url(), &["--json", "kv", "put", "greeting", "hello"]);
    let written: WriteResult = serde_json::from_value(written.expect_code(0).json()).unwrap();
    for node in &nodes {
        let read = aspen(&node.url(), &["kv", "get", "greeting"]).expect_code(0);
        assert_eq!(read.stdout, "hello", "node {}", node.ready.node_id);
        wait_for("every node to apply the write", CATCH_UP_BOUND, || {
            (node.applied_index()? >= written.log_index).then_some(())
        });
    }
}

#[test]
fn killed_leader_fails_over_and_rejoins_with_every_acknowledged_write() {
    let root = tempfile::tempdir().unwrap();
    let specs: Vec<NodeSpec> = (1..=3).map(|id| NodeSpec::new(id, 0x22, root.path())).collect();
    let mut nodes = start_cluster_with_stored_keys(&specs, root.path());
    let mut acknowledged = BTreeMap::new();
    for i in 0..25 {
        put_acknowledged(&nodes[1], &format!("before/{i:02}"), &i.to_string(), &mut acknowledged);
    }

    let leader_id = wait_for("a leader", CATCH_UP_BOUND, || nodes[0].leader());
    let leader = nodes.iter().position(|n| n.ready.node_id == leader_id).unwrap();
    let endpoint_before = nodes[leader].ready.endpoint_id;
    nodes[leader].kill9();
    let killed_at = Instant::now();
    let survivors: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let new_leader = wait_for("a new leader on both survivors", FAILOVER_BOUND, || {
        let seen: Vec<Option<u64>> = survivors.iter().map(|i| nodes[*i].leader()).collect();
        let first = seen[0]?;
        (first != leader_id && seen.iter().all(|l| *l == Some(first))).then_some(first)
    });
    eprintln!(
        "node {new_leader} leads {:?} after node {leader_id} was killed",
        killed_at.elapsed()
    );

    for i in 0..25 {
        let node = &nodes[survivors[i % 2]];
        put_acknowledged(node, &format!("after/{i:02}"), &i.to_string(), &mut acknowledged);
    }

    let log = nodes[leader].log_path.clone();
    nodes[leader] = NodeProcess::start(nodes[leader].args.clone(), &log);
    let restarted = &nodes[leader];
    let info = restarted.client().get_json("/node-info").expect("node-info of the restarted node");
    assert_eq!(info["endpoint_id"], endpoint_before.to_string(), "the key kept in the data dir");
    let last_index = acknowledged.values().map(|(_, index)| *index).max().unwrap();
    wait_for("the restarted node to catch up", CATCH_UP_BOUND, || {
        (restarted.applied_index()? >= last_index).then_some(())
    });

    for node in &nodes {
        let scan = aspen(&node.url(), &["--json", "kv", "scan", "--limit", "1000"]);
        let scan: ScanResult = serde_json::from_value(scan.expect_code(0).json()).unwrap();
        let found: BTreeMap<String, String> = scan.entries.into_iter().collect();
        for (key, (value, _)) in &acknowledged {
            assert_eq!(found.get(key), Some(value), "node {} lost {key}", node.ready.node_id);
        }
    }
}

#[test]
fn a_removed_node_wiped_and_rejoined_under_its_id_catches_up() {
    let root = tempfile::tempdir().unwrap();
    let specs: Vec<NodeSpec> = (1..=3).map(|id| NodeSpec::new(id, 0x33, root.path())).collect();
    let mut nodes = start_cluster_with_stored_keys(&specs, root.path());
    let mut acknowledged = BTreeMap::new();
    for i in 0..10 {
        put_acknowledged(&nodes[0], &format!("before/{i:02}"), &i.to_string(), &mut acknowledged);
    }

    // Remove a follower completely, as `etcdctl member remove` would: it is not kept as a
    // learner, so the leader forgets how far its log went.
    let leader_id = wait_for("a leader", CATCH_UP_BOUND, || nodes[0].leader());
    let leader = nodes.iter().position(|n| n.ready.node_id == leader_id).unwrap();
    let wiped = (0..3).find(|i| *i != leader).unwrap();
    let wiped_id = nodes[wiped].ready.node_id.to_string();
    let removed = aspen(&nodes[leader].url(), &["--json", "cluster", "remove-node", &wiped_id]);
    let removed: ClusterState = serde_json::from_value(removed.expect_code(0).json()).unwrap();
    assert_eq!(removed.members.len(), 2, "{removed:?}");
    assert!(removed.learners.is_empty() && removed.nodes.len() == 2, "{removed:?}");

    // Wipe its data dir: it comes back with the same node id, a new key and an empty log.
    nodes[wiped].kill9();
    std::fs::remove_dir_all(&specs[wiped].data_dir).unwrap();
    for i in 0..10 {
        put_acknowledged(
            &nodes[leader],
            &format!("while/{i:02}"),
            &i.to_string(),
            &mut acknowledged,
        );
    }
    let log = nodes[wiped].log_path.clone();
    nodes[wiped] = NodeProcess::start(nodes[wiped].args.clone(), &log);
    // Like any new node, it accepts Raft RPC only from peers it was told about.
    for other in nodes.iter().filter(|n| n.ready.node_id != nodes[wiped].ready.node_id) {
        let id = other.ready.node_id.to_string();
        let endpoint = aspen::discovery::endpoint_to_string(&other.ready.endpoint_addr);
        aspen(&nodes[wiped].url(), &["node", "add-peer", &id, &endpoint]).expect_code(0);
    }
    let endpoint = aspen::discovery::endpoint_to_string(&nodes[wiped].ready.endpoint_addr);
    let addr = nodes[wiped].ready.http_addr.to_string();
    let leader_url = nodes[leader].url();
    aspen(
        &leader_url,
        &["cluster", "add-learner", &wiped_id, "--addr", &addr, "--raft-addr", &endpoint],
    )
    .expect_code(0);
    aspen(&leader_url, &["cluster", "change-membership", "1", "2", "3"]).expect_code(0);
    for i in 0..10 {
        put_acknowledged(
            &nodes[wiped],
            &format!("after/{i:02}"),
            &i.to_string(),
            &mut acknowledged,
        );
    }

    // Every node, the rejoined one included, has every acknowledged write, and all are alive.
    let last_index = acknowledged.values().map(|(_, index)| *index).max().unwrap();
    for node in &nodes {
        wait_for("every node to apply the last write", CATCH_UP_BOUND, || {
            (node.applied_index()? >= last_index).then_some(())
        });
        let scan = aspen(&node.url(), &["--json", "kv", "scan", "--limit", "1000"]);
        let scan: ScanResult = serde_json::from_value(scan.expect_code(0).json()).unwrap();
        let found: BTreeMap<String, String> = scan.entries.into_iter().collect();
        for (key, (value, _)) in &acknowledged {
            assert_eq!(found.get(key), Some(value), "node {} lost {key}", node.ready.node_id);
        }
    }
}

/// Starts one node per spec without fixed keys (each keeps the key it makes in its data dir),
/// introduces the peers at run time, as an operator without a key plan would, and forms the
/// cluster.
fn start_cluster_with_stored_keys(
    specs: &[NodeSpec],
    log_dir: &std::path::Path,
) -> Vec<NodeProcess> {
    let nodes: Vec<NodeProcess> = specs
        .iter()
        .map(|spec| {
            let log = log_dir.join(format!("node-{}.log", spec.node_id));
            NodeProcess::start(spec.args_with_stored_key(), &log)
        })
        .collect();
    exchange_peers(&nodes);
    form_cluster(&nodes);
    nodes
}

/// Writes `key` through `node`, retrying while leadership settles, and records it with its log
/// index once the node acknowledges it.
fn put_acknowledged(
    node: &NodeProcess,
    key: &str,
    value: &str,
    acknowledged: &mut BTreeMap<String, (String, u64)>,
) {
    let index = wait_for(&format!("an acknowledged write of {key}"), CATCH_UP_BOUND, || {
        let run = aspen(&node.url(), &["--json", "kv", "put", key, value]);
        (run.code == 0).then(|| run.json()["log_index"].as_u64().expect("log_index"))
    });
    acknowledged.insert(key.to_string(), (value.to_string(), index));
}

/// A follower forwards a write to its leader, which stops answering (SIGSTOP, so its
/// connections stay open and nothing fails fast). Once the other two elect a new leader the
/// follower gives the client an answer, that the write may or may not have executed, instead of
/// holding it on the dead connection until it times out.
#[test]
fn a_write_forwarded_to_a_paused_leader_is_answered_once_a_new_leader_is_elected() {
    let root = tempfile::tempdir().unwrap();
    let specs: Vec<NodeSpec> = (1..=3).map(|id| NodeSpec::new(id, 0x55, root.path())).collect();
    let nodes = start_cluster(&specs, root.path());
    form_cluster(&nodes);
    let leader_id = wait_for("a leader every node names", CATCH_UP_BOUND, || {
        let leader = nodes[0].leader()?;
        nodes.iter().all(|node| node.leader() == Some(leader)).then_some(leader)
    });
    let leader = nodes.iter().find(|node| node.ready.node_id == leader_id).unwrap();
    let follower = nodes.iter().find(|node| node.ready.node_id != leader_id).unwrap();

    // Paused until the end (SIGKILL, on drop, also ends a stopped process): resumed earlier,
    // it could win the next election again.
    leader.signal(libc::SIGSTOP);
    let run = aspen(&follower.url(), &["kv", "put", "during-election", "x"]);
    assert_ne!(run.code, 0, "the paused leader cannot have acknowledged it: {run:?}");
    assert!(
        run.stderr.contains("was replaced") && run.stderr.contains("may or may not"),
        "answered because the leader was replaced, not by a timeout: {run:?}"
    );
    wait_for("the follower to name a new leader", CATCH_UP_BOUND, || {
        follower.leader().filter(|leader| *leader != leader_id)
    });
    aspen(&follower.url(), &["kv", "put", "after-election", "y"]).expect_code(0);
    leader.signal(libc::SIGCONT);
}

/// A serializable read is answered by the node that receives it, from what it applied: a
/// follower whose leader and other follower are both paused (no quorum, no leader to forward
/// to) still answers it, while a linearizable read there cannot be answered.
#[test]
fn a_follower_without_a_quorum_answers_serializable_reads_only() {
    let root = tempfile::tempdir().unwrap();
    let specs: Vec<NodeSpec> = (1..=3).map(|id| NodeSpec::new(id, 0x66, root.path())).collect();
    let nodes = start_cluster(&specs, root.path());
    form_cluster(&nodes);
    let written = aspen(&nodes[0].url(), &["--json", "kv", "put", "greeting", "hello"]);
    let written: WriteResult = serde_json::from_value(written.expect_code(0).json()).unwrap();
    let leader_id = nodes[0].leader().expect("the node that took the write names its leader");
    let follower = nodes.iter().find(|node| node.ready.node_id != leader_id).unwrap();
    wait_for("the follower to apply the write", CATCH_UP_BOUND, || {
        (follower.applied_index()? >= written.log_index).then_some(())
    });

    // Paused until the end (SIGKILL, on drop, also ends a stopped process).
    let others: Vec<&NodeProcess> =
        nodes.iter().filter(|node| node.ready.node_id != follower.ready.node_id).collect();
    for other in &others {
        other.signal(libc::SIGSTOP);
    }
    let read = aspen(&follower.url(), &["kv", "get", "--serializable", "greeting"]);
    assert_eq!(read.expect_code(0).stdout, "hello");
    aspen(&follower.url(), &["kv", "get", "--serializable", "missing"]).expect_code(3);
    let linearizable = aspen(&follower.url(), &["kv", "get", "greeting"]);
    assert_ne!(linearizable.code, 0, "no quorum confirms a leader: {linearizable:?}");
    for other in &others {
        other.signal(libc::SIGCONT);
    }
}

#[test]
fn sigterm_stops_cleanly_and_the_data_dir_belongs_to_its_node() {
    let root = tempfile::tempdir().unwrap();
    let spec = NodeSpec::new(1, 0x33, root.path());
    let log = root.path().join("node-1.log");
    let mut node = NodeProcess::start(spec.args(&[]), &log);
    aspen(&node.url(), &["cluster", "init"]).expect_code(0);
    aspen(&node.url(), &["kv", "put", "kept", "yes"]).expect_code(0);

    node.signal(libc::SIGTERM);
    let started = Instant::now();
    let status = node.wait_exit(SHUTDOWN_BOUND);
    assert_eq!(status.code(), Some(0), "clean exit after SIGTERM");
    eprintln!("SIGTERM to exit: {:?}", started.elapsed());

    // The same data dir under another node id is refused in one line, before anything runs.
    let data_dir = format!("--data-dir={}", spec.data_dir.display());
    let refused = node_refusal(&["--node-id=2", &data_dir, "--http-addr=127.0.0.1:0"], &[]);
    assert_eq!(refused.code, 2, "{refused:?}");
    let last = refused.stderr.lines().last().unwrap_or_default();
    assert!(last.contains("belongs to node 1"), "{refused:?}");

    // The node restarts on its data dir with its data, and SIGINT stops it too.
    let mut node = NodeProcess::start(spec.args(&[]), &log);
    let read = wait_for("the restarted single node to serve reads", CATCH_UP_BOUND, || {
        let run = aspen(&node.url(), &["kv", "get", "kept"]);
        (run.code == 0).then_some(run.stdout)
    });
    assert_eq!(read, "yes");
    node.signal(libc::SIGINT);
    assert_eq!(node.wait_exit(SHUTDOWN_BOUND).code(), Some(0), "clean exit after SIGINT");
}

#[test]
fn bad_flags_and_config_files_exit_2_with_one_line_naming_them() {
    let root = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = root.path().join(name);
        std::fs::write(&path, text).unwrap();
        format!("--config={}", path.display())
    };
    let bad_toml = file("bad.toml", "node_id = \n");
    let unknown = file("unknown.toml", "node_id = 1\nnode_idd = 2\n");
    let unknown_iroh = file("unknown-iroh.toml", "[iroh]\nsecret = \"x\"\n");
    let bad_type = file("type.toml", "heartbeat_interval_ms = \"fast\"\n");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![&bad_toml], "bad.toml"),
        (vec![&unknown], "node_idd"),
        (vec![&unknown_iroh], "iroh.secret"),
        (vec![&bad_type], "heartbeat_interval_ms"),
        (vec!["--config=/nonexistent/aspen.toml"], "/nonexistent/aspen.toml"),
        (
            vec!["--election-timeout-min-ms=800", "--election-timeout-max-ms=800"],
            "--election-timeout-min-ms",
        ),
        (vec!["--iroh-secret-key=abc"], "--iroh-secret-key"),
        (vec!["--peers=2@not-an-endpoint"], "--peers"),
        (vec!["--peers=two@abc"], "--peers"),
        (vec!["--ticket=aspennotaticket"], "--ticket"),
        (vec!["--node-id=one"], "--node-id"),
        (vec!["--http-addr=localhost"], "--http-addr"),
        (vec!["--control-backend=paxos"], "--control-backend"),
        (vec!["--no-such-flag"], "--no-such-flag"),
    ];
    for (args, named) in cases {
        let run = node_refusal(&args, &[]);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: one line: {run:?}");
        assert!(run.stderr.contains(named), "{args:?} names {named}: {run:?}");
        assert!(run.stdout.is_empty(), "{args:?}: nothing started: {run:?}");
    }
    let run = node_refusal(&[], &[("ASPEN_ELECTION_TIMEOUT_MAX_MS", "soon")]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--election-timeout-max-ms"), "{run:?}");
}

#[test]
fn flags_beat_environment_beats_config_file() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("node.toml");
    std::fs::write(&config, "node_id = 5\ncontrol_backend = \"Deterministic\"\n").unwrap();
    let config = format!("--config={}", config.display());
    let base = vec![config, "--http-addr=127.0.0.1:0".to_string(), "--disable-mdns".into()];
    let log = root.path().join("precedence.log");
    let started_id = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = base.clone();
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut node = NodeProcess::start_with_env(args, env, &log);
        let id = node.ready.node_id;
        node.signal(libc::SIGTERM);
        assert_eq!(node.wait_exit(SHUTDOWN_BOUND).code(), Some(0));
        id
    };
    assert_eq!(started_id(&[], &[]), 5, "from the file");
    assert_eq!(started_id(&[], &[("ASPEN_NODE_ID", "6")]), 6, "environment over file");
    assert_eq!(started_id(&["--node-id=7"], &[("ASPEN_NODE_ID", "6")]), 7, "flag over environment");
}

#[test]
fn help_names_every_flag() {
    let run = node_refusal(&["--help"], &[]);
    assert_eq!(run.code, 0);
    for flag in [
        "--config",
        "--node-id",
        "--data-dir",
        "--host",
        "--ractor-port",
        "--cookie",
        "--http-addr",
        "--control-backend",
        "--heartbeat-interval-ms",
        "--election-timeout-min-ms",
        "--election-timeout-max-ms",
        "--snapshot-after-entries",
        "--logs-kept-after-snapshot",
        "--iroh-secret-key",
        "--iroh-port",
        "--relay-url",
        "--disable-gossip",
        "--gossip-interval-ms",
        "--ticket",
        "--disable-mdns",
        "--enable-dns-discovery",
        "--dns-discovery-url",
        "--enable-pkarr",
        "--pkarr-relay-url",
        "--peers",
    ] {
        assert!(run.stdout.contains(flag), "--help mentions {flag}");
    }
}

#[test]
fn a_node_whose_supervisor_gives_up_exits_1_with_the_reason() {
    use aspen::cluster::node_control::RemoteNodeControl;
    use aspen::limits::ACTOR_RESTARTS_MAX;

    let root = tempfile::tempdir().unwrap();
    let spec = NodeSpec::new(4, 0x66, root.path());
    let mut node = NodeProcess::start(spec.args(&[]), &root.path().join("node-4.log"));
    let control_addr = format!("127.0.0.1:{}", node.ready.ractor_port);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let operator =
            RemoteNodeControl::connect(&control_addr, "aspen-process-test", 4, CATCH_UP_BOUND)
                .await
                .expect("the operator reaches NodeControl");
        for restarts in 1..=ACTOR_RESTARTS_MAX as u32 {
            operator.crash_actor("discovery").await.expect("crash the discovery actor");
            let deadline = Instant::now() + CATCH_UP_BOUND;
            loop {
                let actors = operator.list_actors().await.expect("list actors");
                let discovery = actors.iter().find(|a| a.name == "discovery").unwrap();
                if discovery.running && discovery.restarts == restarts {
                    break;
                }
                assert!(Instant::now() < deadline, "discovery restart {restarts} within bound");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // One crash too many: the supervisor gives up and the node stops, NodeControl too, so
        // the reply may be lost.
        let _ = operator.crash_actor("discovery").await;
        operator.close().await;
    });
    let status = node.wait_exit(SHUTDOWN_BOUND);
    assert_eq!(status.code(), Some(1), "a node that stopped on its own exits with 1");
    let log = std::fs::read_to_string(&node.log_path).unwrap();
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("aspen-node: the node stopped: ") && last.contains("discovery"),
        "{last}"
    );
}

#[test]
fn a_node_started_with_a_ticket_knows_the_ticket_holders() {
    let root = tempfile::tempdir().unwrap();
    let first_spec = NodeSpec::new(1, 0x77, root.path());
    let first = NodeProcess::start(first_spec.args(&[]), &root.path().join("node-1.log"));
    aspen(&first.url(), &["cluster", "init"]).expect_code(0);
    let ticket = aspen(&first.url(), &["cluster", "ticket"]).expect_code(0).stdout;

    let second_spec = NodeSpec::new(2, 0x77, root.path());
    let mut args = second_spec.args(&[]);
    args.push(format!("--ticket={ticket}"));
    let second = NodeProcess::start(args, &root.path().join("node-2.log"));
    let peers = aspen(&second.url(), &["--json", "node", "peers"]).expect_code(0).stdout;
    assert!(peers.contains(&first.ready.endpoint_id.to_string()), "{peers}");

    // The same ticket under another cookie is refused before anything starts.
    let mut args: Vec<String> =
        second_spec.args(&[]).into_iter().filter(|a| !a.starts_with("--cookie")).collect();
    args.push("--cookie=another-cluster".into());
    args.push(format!("--ticket={ticket}"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let refused = node_refusal(&args, &[]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("--ticket"), "{refused:?}");
}
