//! Gossip discovery across real `aspen-node` processes: node 1 starts and inits; nodes 2 and 3
//! start with its ticket only (no `--peers`); within a bound all three list each other in
//! `GET /peers` with source `Gossip` and the HTTP address each announced; 2 and 3 are added as
//! learners by node id alone (once with the CLI, once over HTTP), promoted, and a write made
//! through node 1 replicates to all. A node started with `--disable-gossip` announces nothing
//! and is never learned by gossip.

mod process;

use std::time::Duration;

use aspen::api::ClusterState;
use process::{NodeProcess, NodeSpec, aspen, metric, peers_by_id, wait_for, write_replicates};
use serde_json::json;

/// Announcement interval of the test nodes: short, so that discovery takes about a second.
const GOSSIP_INTERVAL_MS: u64 = 250;

/// How long three nodes on loopback may take to find each other: a join, then a few
/// announcement intervals, with a wide margin for a busy 2-core machine.
const DISCOVERY_BOUND: Duration = Duration::from_secs(30);

/// How long replication may take on loopback.
const CATCH_UP_BOUND: Duration = Duration::from_secs(15);

/// True when `node` knows every other node of `nodes` by gossip, at the endpoint and HTTP
/// address that node really has.
fn knows_all_by_gossip(node: &NodeProcess, nodes: &[NodeProcess]) -> bool {
    let Some(known) = peers_by_id(node) else { return false };
    nodes.iter().filter(|other| other.ready.node_id != node.ready.node_id).all(|other| {
        known.get(&other.ready.node_id).is_some_and(|entry| {
            entry["source"] == "Gossip"
                && entry["endpoint_addr"]["id"] == other.ready.endpoint_id.to_string()
                && entry["api_addr"] == other.ready.http_addr.to_string()
        })
    })
}

fn start(spec: &NodeSpec, args: Vec<String>, root: &std::path::Path) -> NodeProcess {
    NodeProcess::start(args, &root.join(format!("node-{}.log", spec.node_id)))
}

#[test]
fn nodes_joined_by_ticket_find_each_other_and_are_added_by_id() {
    let root = tempfile::tempdir().unwrap();
    let specs: Vec<NodeSpec> = (1..=3).map(|id| NodeSpec::new(id, 0x91, root.path())).collect();
    let first = start(&specs[0], specs[0].gossip_args(GOSSIP_INTERVAL_MS, None), root.path());
    aspen(&first.url(), &["cluster", "init"]).expect_code(0);
    let ticket = aspen(&first.url(), &["cluster", "ticket"]).expect_code(0).stdout;

    let mut nodes = vec![first];
    for spec in &specs[1..] {
        nodes.push(start(spec, spec.gossip_args(GOSSIP_INTERVAL_MS, Some(&ticket)), root.path()));
    }
    for node in &nodes {
        wait_for(
            &format!("node {} to know the others by gossip", node.ready.node_id),
            DISCOVERY_BOUND,
            || knows_all_by_gossip(node, &nodes).then_some(()),
        );
        let accepted = metric(node, "aspen_gossip_announcements_accepted_total").unwrap();
        assert!(accepted >= 2, "node {} accepted {accepted}", node.ready.node_id);
        let forged = metric(node, r#"aspen_gossip_messages_dropped_total{reason="bad_signature"}"#);
        assert_eq!(forged, Some(0), "honest nodes send no forgeries");
    }

    // Learners by node id alone: the endpoint and the API address come from the peer book.
    let url = nodes[0].url();
    aspen(&url, &["cluster", "add-learner", "2"]).expect_code(0);
    let added = nodes[0].client().post_json("/add-learner", &json!({"learner": {"id": 3}}));
    added.expect("POST /add-learner with a node id only");
    aspen(&url, &["cluster", "change-membership", "1", "2", "3"]).expect_code(0);
    let status = aspen(&url, &["--json", "cluster", "status"]).expect_code(0).json();
    let state: ClusterState = serde_json::from_value(status).unwrap();
    assert_eq!((state.members.clone(), state.learners.clone()), (vec![1, 2, 3], vec![]));
    for (node, member) in nodes.iter().zip(&state.nodes) {
        assert_eq!(member.addr, node.ready.http_addr.to_string(), "announced API address");
    }

    write_replicates(&nodes, "found-by", "gossip", CATCH_UP_BOUND);

    // A node with gossip off knows the ticket's peers only, and nobody learns it by gossip.
    let quiet_spec = NodeSpec::new(4, 0x91, root.path());
    let mut quiet_args = quiet_spec.args(&[]);
    quiet_args.push(format!("--ticket={ticket}"));
    let quiet = start(&quiet_spec, quiet_args, root.path());
    let sent_at_start = metric(&nodes[0], "aspen_gossip_announcements_sent_total").unwrap();
    wait_for("node 1 to announce itself three more times", DISCOVERY_BOUND, || {
        let sent = metric(&nodes[0], "aspen_gossip_announcements_sent_total")?;
        (sent >= sent_at_start + 3).then_some(())
    });
    assert_eq!(metric(&quiet, "aspen_gossip_announcements_sent_total"), Some(0));
    let quiet_peers = peers_by_id(&quiet).unwrap();
    assert_eq!(quiet_peers.keys().copied().collect::<Vec<_>>(), vec![1], "{quiet_peers:?}");
    assert_eq!(quiet_peers[&1]["source"], "Ticket");
    for node in &nodes {
        assert!(!peers_by_id(node).unwrap().contains_key(&4), "node {}", node.ready.node_id);
    }
}
