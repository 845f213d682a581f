//! Relay across real `aspen-node` processes: two network namespaces, A and B, each linked to
//! the host namespace only, with no route between them (and no forwarding on the host). The
//! test runs a local `iroh-relay` server (plain HTTP) on the host end of A's link, which B
//! also routes to. Node 1 in A and node 2 in B start with `--relay-url` and no peers; each
//! prints an endpoint address that names the relay next to its direct address, and each is
//! given the other's (`aspen node add-peer`). They form a cluster and a write replicates, so
//! everything went through the relay. Needs root and `ip`; skipped with a message otherwise.

mod process;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use iroh::{RelayUrl, TransportAddr};
use iroh_relay::server::{RelayConfig, Server, ServerConfig};
use process::netns::{self, Netns, address, ip, ip_succeeds};
use process::{NodeProcess, NodeSpec, exchange_peers, form_cluster, write_replicates};

/// How long replication through the relay may take.
const CATCH_UP_BOUND: Duration = Duration::from_secs(30);

/// A relay server on `ip`, stopped with its runtime when dropped.
struct Relay {
    runtime: tokio::runtime::Runtime,
    server: Option<Server>,
}

impl Relay {
    fn start(ip: Ipv4Addr) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let mut config = ServerConfig::default();
        config.relay = Some(RelayConfig::new(SocketAddr::new(IpAddr::V4(ip), 0)));
        let server = runtime.block_on(Server::spawn(config)).expect("relay server");
        Self { runtime, server: Some(server) }
    }

    fn url(&self) -> RelayUrl {
        let addr = self.server.as_ref().and_then(Server::http_addr).expect("HTTP relay");
        format!("http://{addr}").parse().unwrap()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let bound = Duration::from_secs(5);
            let stopped = self
                .runtime
                .block_on(async { tokio::time::timeout(bound, server.shutdown()).await });
            if stopped.is_err() {
                eprintln!("the relay did not stop within {bound:?}; its runtime is dropped");
            }
        }
    }
}

/// Namespaces A and B, each on its own /24 to the host (`.1` host end, `.2` the node), and B
/// with a route to the relay's address (host end of A) only.
struct Networks {
    guard: Netns,
    namespaces: [String; 2],
    node_ips: [Ipv4Addr; 2],
    relay_ip: Ipv4Addr,
}

fn create_networks() -> Networks {
    let mut guard = Netns::new("asprl");
    let subnets = netns::free_subnets(2);
    let relay_ip = address(subnets[0], 1);
    let mut namespaces = Vec::new();
    for (side, subnet) in ["a", "b"].into_iter().zip(&subnets) {
        let namespace = guard.add_namespace(side);
        let host = guard.add_host_link(side, &namespace, "eth0");
        let (host_ip, node_ip) = (address(*subnet, 1), address(*subnet, 2));
        ip(&["addr", "add", &format!("{host_ip}/24"), "dev", &host]);
        ip(&["link", "set", &host, "up"]);
        ip(&["-n", &namespace, "addr", "add", &format!("{node_ip}/24"), "dev", "eth0"]);
        ip(&["-n", &namespace, "link", "set", "eth0", "up"]);
        if host_ip != relay_ip {
            let via = host_ip.to_string();
            ip(&["-n", &namespace, "route", "add", &format!("{relay_ip}/32"), "via", &via]);
        }
        namespaces.push(namespace);
    }
    let node_ips = [address(subnets[0], 2), address(subnets[1], 2)];
    Networks { guard, namespaces: namespaces.try_into().unwrap(), node_ips, relay_ip }
}

#[test]
fn nodes_without_a_route_to_each_other_form_a_cluster_through_a_relay() {
    if let Some(reason) = netns::unsupported() {
        println!("skipped: {reason}");
        return;
    }
    let networks = create_networks();
    let [a, b] = &networks.namespaces;
    let [ip_a, ip_b] = networks.node_ips;
    // The premise: neither namespace can send to the other, both reach the relay's address.
    assert!(!ip_succeeds(&["-n", a, "route", "get", &ip_b.to_string()]), "A routes to B");
    assert!(!ip_succeeds(&["-n", b, "route", "get", &ip_a.to_string()]), "B routes to A");
    assert!(ip_succeeds(&["-n", b, "route", "get", &networks.relay_ip.to_string()]));
    let relay = Relay::start(networks.relay_ip);
    let relay_url = relay.url();

    let root = tempfile::tempdir().unwrap();
    let specs: Vec<NodeSpec> = (1..=2).map(|id| NodeSpec::new(id, 0x94, root.path())).collect();
    let placed = [(&specs[0], a, ip_a), (&specs[1], b, ip_b)];
    let mut nodes = Vec::new();
    for (spec, namespace, node_ip) in placed {
        let mut args: Vec<String> =
            spec.args(&[]).into_iter().filter(|a| !a.starts_with("--http-addr")).collect();
        args.push(format!("--host={node_ip}"));
        args.push(format!("--http-addr={node_ip}:0"));
        args.push(format!("--relay-url={relay_url}"));
        let log = root.path().join(format!("node-{}.log", spec.node_id));
        nodes.push(NodeProcess::start_in_namespace(namespace, args, &log));
    }
    // Each node's address names the relay next to its (unreachable) direct address; each is
    // given the other's as its ready line printed it.
    for node in &nodes {
        let addrs = &node.ready.endpoint_addr.addrs;
        assert!(addrs.contains(&TransportAddr::Relay(relay_url.clone())), "{addrs:?}");
        assert!(addrs.iter().any(|a| matches!(a, TransportAddr::Ip(_))), "{addrs:?}");
    }
    exchange_peers(&nodes);

    form_cluster(&nodes);
    write_replicates(&nodes, "found-by", "relay", CATCH_UP_BOUND);
    // Stop the nodes before the relay and the namespaces go (drop order is reversed).
    drop(nodes);
    drop(relay);
    drop(networks.guard);
}
