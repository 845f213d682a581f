//! DNS discovery and pkarr publishing across real `aspen-node` processes: a local
//! `iroh-dns-server` runs on loopback (HTTP for pkarr, UDP for DNS); three nodes with no
//! gossip and no mDNS publish their addresses to it, each is told the others' endpoint ids
//! only (`aspen node add-peer ID ENDPOINT_ID`, no addresses), locates them through DNS
//! (`GET /peers` shows source `Dns` and the address each really has), and the three form a
//! cluster in which a write replicates to all.
//!
//! Also: discovery methods that cannot work (DNS discovery without a server, a pkarr relay and
//! a relay server that do not answer, mDNS on loopback) block nothing: two such nodes start
//! at once, say once each why a method does not run, and replicate over their direct
//! addresses.

mod process;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use aspen::api::WriteResult;
use iroh_dns_server::config::{Config, DnsConfig, MetricsConfig, RateLimitConfig};
use process::{
    NodeProcess, NodeSpec, aspen, form_cluster, free_udp_port, peers_by_id, wait_for,
    write_replicates,
};

/// The origin domain the test server publishes endpoints under.
const ORIGIN: &str = "aspen.test";

/// How long nodes may take to publish and locate each other: a publish on start, then a DNS
/// round every two seconds, with a wide margin for a busy 2-core machine.
const DISCOVERY_BOUND: Duration = Duration::from_secs(30);

/// How long replication may take on loopback.
const CATCH_UP_BOUND: Duration = Duration::from_secs(15);

/// A DNS + pkarr server on loopback, stopped with its runtime when dropped.
struct DnsServer {
    runtime: tokio::runtime::Runtime,
    server: Option<iroh_dns_server::Server>,
    _data_dir: tempfile::TempDir,
}

impl DnsServer {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let data_dir = tempfile::tempdir().unwrap();
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let mut config = Config::default();
        let mut http = config.http.take().expect("the default config has HTTP");
        (http.port, http.bind_addr) = (0, Some(loopback));
        config.http = Some(http);
        config.https = None;
        let soa = format!("{ORIGIN} hostmaster.{ORIGIN} 0 10800 3600 604800 3600");
        // The server's static zone is rooted at ".", which must be an origin too.
        config.dns = DnsConfig::new(0, soa, 30, vec![format!("{ORIGIN}."), ".".into()]);
        config.dns.bind_addr = Some(loopback);
        config.metrics = Some(MetricsConfig::disabled());
        config.pkarr_put_rate_limit = RateLimitConfig::Disabled;
        config.data_dir = Some(data_dir.path().to_path_buf());
        let server = runtime.block_on(iroh_dns_server::Server::bind(config)).expect("DNS server");
        Self { runtime, server: Some(server), _data_dir: data_dir }
    }

    fn server(&self) -> &iroh_dns_server::Server {
        self.server.as_ref().expect("running")
    }

    /// `--dns-discovery-url`.
    fn dns_url(&self) -> String {
        format!("dns://{}/{ORIGIN}", self.server().dns_addr())
    }

    /// `--pkarr-relay-url`.
    fn pkarr_url(&self) -> String {
        format!("http://{}/pkarr", self.server().http_addr().expect("HTTP is on"))
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let stopped = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(5), server.shutdown()).await
            });
            if stopped.is_err() {
                eprintln!("the DNS server did not stop within 5 s; its runtime is dropped");
            }
        }
    }
}

/// True when `node` has located every other node through DNS, at the address it really has.
fn located_all(node: &NodeProcess, nodes: &[NodeProcess]) -> bool {
    let Some(known) = peers_by_id(node) else { return false };
    nodes.iter().filter(|other| other.ready.node_id != node.ready.node_id).all(|other| {
        let expected = serde_json::to_value(&other.ready.endpoint_addr).unwrap();
        known.get(&other.ready.node_id).is_some_and(|entry| {
            let addrs = entry["endpoint_addr"]["addrs"].as_array().cloned().unwrap_or_default();
            entry["source"] == "Dns"
                && entry["endpoint_addr"]["id"] == expected["id"]
                && expected["addrs"].as_array().unwrap().iter().all(|a| addrs.contains(a))
        })
    })
}

#[test]
fn nodes_publish_to_pkarr_and_locate_each_other_by_endpoint_id_through_dns() {
    let server = DnsServer::start();
    let root = tempfile::tempdir().unwrap();
    let specs: Vec<NodeSpec> = (1..=3).map(|id| NodeSpec::new(id, 0x93, root.path())).collect();
    let nodes: Vec<NodeProcess> = specs
        .iter()
        .map(|spec| {
            let mut args = spec.args(&[]);
            args.push("--enable-dns-discovery".into());
            args.push(format!("--dns-discovery-url={}", server.dns_url()));
            args.push("--enable-pkarr".into());
            args.push(format!("--pkarr-relay-url={}", server.pkarr_url()));
            let log = root.path().join(format!("node-{}.log", spec.node_id));
            NodeProcess::start(args, &log)
        })
        .collect();

    // Endpoint ids only: where the others are must come from DNS.
    for node in &nodes {
        for other in nodes.iter().filter(|o| o.ready.node_id != node.ready.node_id) {
            let id = other.ready.node_id.to_string();
            let endpoint_id = other.ready.endpoint_id.to_string();
            aspen(&node.url(), &["node", "add-peer", &id, &endpoint_id]).expect_code(0);
        }
    }
    for node in &nodes {
        wait_for(
            &format!("node {} to locate the others through DNS", node.ready.node_id),
            DISCOVERY_BOUND,
            || located_all(node, &nodes).then_some(()),
        );
    }

    form_cluster(&nodes);
    write_replicates(&nodes, "found-by", "dns", CATCH_UP_BOUND);
}

/// Two nodes that must reach each other directly while every other discovery method fails.
#[test]
fn discovery_methods_that_cannot_work_block_nothing_and_say_so_once() {
    let root = tempfile::tempdir().unwrap();
    let specs: Vec<NodeSpec> = (1..=2).map(|id| NodeSpec::new(id, 0x96, root.path())).collect();
    // Nothing listens on these ports (a UDP port is as good as any closed TCP port here).
    let dead_pkarr = format!("http://127.0.0.1:{}/pkarr", free_udp_port());
    let dead_relay = format!("http://127.0.0.1:{}", free_udp_port());
    let nodes: Vec<NodeProcess> = specs
        .iter()
        .map(|spec| {
            let others: Vec<&NodeSpec> =
                specs.iter().filter(|s| s.node_id != spec.node_id).collect();
            let mut args: Vec<String> =
                spec.args(&others).into_iter().filter(|a| a != "--disable-mdns").collect();
            args.push("--enable-dns-discovery".into());
            args.push("--enable-pkarr".into());
            args.push(format!("--pkarr-relay-url={dead_pkarr}"));
            args.push(format!("--relay-url={dead_relay}"));
            let log = root.path().join(format!("node-{}.log", spec.node_id));
            NodeProcess::start(args, &log)
        })
        .collect();

    form_cluster(&nodes);
    let written = aspen(&nodes[0].url(), &["--json", "kv", "put", "k", "v"]).expect_code(0);
    let written: WriteResult = serde_json::from_value(written.json()).unwrap();
    wait_for("node 2 to apply the write", CATCH_UP_BOUND, || {
        (nodes[1].applied_index()? >= written.log_index).then_some(())
    });
    for node in &nodes {
        let log = std::fs::read_to_string(&node.log_path).unwrap();
        for warning in [": DNS discovery does not run", ": mDNS discovery does not run"] {
            assert_eq!(log.matches(warning).count(), 1, "{warning:?} once in\n{log}");
        }
    }
}
