//! mDNS discovery across real `aspen-node` processes: three nodes, each in its own network
//! namespace on one bridge (as on a LAN), started with no peers and no ticket, find each other
//! by multicast (`GET /peers` lists the other two with source `Mdns` at their real addresses).
//! They form a cluster from what they found, with nothing typed in: node 1 adds the others as
//! learners by node id alone, the joiners accept its Raft calls because its mDNS record proves
//! it holds the cookie, and a write replicates to all. A fourth node with another cookie on the same bridge is never seen, and a
//! node started with `--disable-mdns` is neither seen nor sees. Needs root and `ip`; skipped
//! with a message otherwise.

mod process;

use std::net::Ipv4Addr;
use std::time::Duration;

use process::netns::{self, Netns, address, ip};
use process::{NodeProcess, NodeSpec, aspen, peers_by_id, wait_for, write_replicates};

/// How long nodes on one bridge may take to find each other: a few mDNS query rounds (one a
/// second), with a wide margin for a busy 2-core machine.
const DISCOVERY_BOUND: Duration = Duration::from_secs(30);

/// How long replication may take on the bridge.
const CATCH_UP_BOUND: Duration = Duration::from_secs(15);

/// The host reaches the nodes through the bridge: a namespace holding bridge `br0`, the host's
/// veth end `<prefix>h` (`.1`) plugged into it, and one namespace per node, whose `eth0`
/// (`.(10 + i)`) is plugged into it too.
struct Lan {
    guard: Netns,
    bridge_namespace: String,
    subnet: [u8; 3],
}

impl Lan {
    fn create() -> Self {
        let mut guard = Netns::new("aspmd");
        let subnet = netns::free_subnets(1)[0];
        let bridge_namespace = guard.add_namespace("br");
        ip(&["-n", &bridge_namespace, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &bridge_namespace, "link", "set", "br0", "up"]);
        let host = guard.add_host_link("h", &bridge_namespace, "up0");
        ip(&["-n", &bridge_namespace, "link", "set", "up0", "master", "br0", "up"]);
        ip(&["addr", "add", &format!("{}/24", address(subnet, 1)), "dev", &host]);
        ip(&["link", "set", &host, "up"]);
        Self { guard, bridge_namespace, subnet }
    }

    /// A namespace for node `index` on the bridge; returns its name and address.
    fn add_node(&mut self, index: u8) -> (String, Ipv4Addr) {
        let namespace = self.guard.add_namespace(&format!("n{index}"));
        let port = format!("p{index}");
        let add = ["link", "add", "eth0", "type", "veth", "peer", "name", &port];
        ip(&[&["-n", &namespace], &add[..], &["netns", &self.bridge_namespace]].concat());
        ip(&["-n", &self.bridge_namespace, "link", "set", &port, "master", "br0", "up"]);
        let node_ip = address(self.subnet, 10 + index);
        ip(&["-n", &namespace, "addr", "add", &format!("{node_ip}/24"), "dev", "eth0"]);
        ip(&["-n", &namespace, "link", "set", "eth0", "up"]);
        // mDNS sends to 224.0.0.251: the namespace needs a route for multicast.
        ip(&["-n", &namespace, "route", "add", "224.0.0.0/4", "dev", "eth0"]);
        (namespace, node_ip)
    }
}

/// True when `node` knows every other node of `nodes` from mDNS, at its endpoint and address.
fn found_all_by_mdns(node: &NodeProcess, nodes: &[NodeProcess]) -> bool {
    let Some(known) = peers_by_id(node) else { return false };
    nodes.iter().filter(|other| other.ready.node_id != node.ready.node_id).all(|other| {
        let expected = serde_json::to_value(&other.ready.endpoint_addr).unwrap();
        known.get(&other.ready.node_id).is_some_and(|entry| {
            let addrs = entry["endpoint_addr"]["addrs"].as_array().cloned().unwrap_or_default();
            entry["source"] == "Mdns"
                && entry["endpoint_addr"]["id"] == expected["id"]
                && expected["addrs"].as_array().unwrap().iter().all(|a| addrs.contains(a))
        })
    })
}

/// A node's flags on the LAN: its namespace address, mDNS on, gossip off (so that mDNS is
/// the only way to find peers), no peers.
fn lan_args(spec: &NodeSpec, node_ip: Ipv4Addr) -> Vec<String> {
    let mut args: Vec<String> = spec
        .args(&[])
        .into_iter()
        .filter(|a| !a.starts_with("--http-addr") && a != "--disable-mdns")
        .collect();
    args.push(format!("--host={node_ip}"));
    args.push(format!("--http-addr={node_ip}:0"));
    args
}

#[test]
fn nodes_on_one_lan_find_each_other_by_mdns_and_form_a_cluster() {
    if let Some(reason) = netns::unsupported() {
        println!("skipped: {reason}");
        return;
    }
    let mut lan = Lan::create();
    let root = tempfile::tempdir().unwrap();
    let start = |lan: &mut Lan, spec: &NodeSpec, args: fn(&NodeSpec, Ipv4Addr) -> Vec<String>| {
        let (namespace, node_ip) = lan.add_node(spec.node_id as u8);
        let log = root.path().join(format!("node-{}.log", spec.node_id));
        NodeProcess::start_in_namespace(&namespace, args(spec, node_ip), &log)
    };
    let specs: Vec<NodeSpec> = (1..=5).map(|id| NodeSpec::new(id, 0x95, root.path())).collect();
    let mut nodes: Vec<NodeProcess> = Vec::new();
    for spec in &specs[..3] {
        nodes.push(start(&mut lan, spec, lan_args));
    }
    // Node 4 belongs to another cluster; node 5 has mDNS off.
    let stranger = start(&mut lan, &specs[3], |spec, node_ip| {
        let mut args = lan_args(spec, node_ip);
        args.retain(|a| !a.starts_with("--cookie"));
        args.push("--cookie=another-cluster".into());
        args
    });
    let quiet = start(&mut lan, &specs[4], |spec, node_ip| {
        let mut args = lan_args(spec, node_ip);
        args.push("--disable-mdns".into());
        args
    });

    for node in &nodes {
        wait_for(
            &format!("node {} to find the others by mDNS", node.ready.node_id),
            DISCOVERY_BOUND,
            || found_all_by_mdns(node, &nodes).then_some(()),
        );
    }

    // Nothing typed in: node 1's mDNS record proves it holds the cookie, so the joiners accept
    // its Raft calls; node 1 adds them by node id alone, their endpoints from its peer book.
    let url = nodes[0].url();
    aspen(&url, &["cluster", "init"]).expect_code(0);
    for node in &nodes[1..] {
        let (id, addr) = (node.ready.node_id.to_string(), node.ready.http_addr.to_string());
        aspen(&url, &["cluster", "add-learner", &id, "--addr", &addr]).expect_code(0);
    }
    aspen(&url, &["cluster", "change-membership", "1", "2", "3"]).expect_code(0);
    write_replicates(&nodes, "found-by", "mdns", CATCH_UP_BOUND);

    // By now every node has heard many mDNS rounds: neither outsider was ever recorded.
    for node in nodes.iter().chain([&stranger, &quiet]) {
        let known = peers_by_id(node).unwrap();
        assert!(!known.contains_key(&4) && !known.contains_key(&5), "{known:?}");
    }
    for outsider in [&stranger, &quiet] {
        let known = peers_by_id(outsider).unwrap();
        assert!(known.is_empty(), "node {} knows {known:?}", outsider.ready.node_id);
    }
    drop((nodes, stranger, quiet));
    drop(lan.guard);
}
