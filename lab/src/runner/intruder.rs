//! The stranger of an `intruder` step: one more `aspen-node` process that holds the cluster's
//! ticket but not its cookie, and tries to get into the cluster for the rest of the run.
//!
//! The step, in order:
//! 1. It takes a ticket from a running member (`GET /cluster-ticket`), as a stranger who found
//!    one would, and reads its bootstrap peers: node ids and endpoint addresses of members.
//! 2. It reads every running member's count of refused Raft RPC connections (`GET /metrics`),
//!    so that the check counts only the refusals that follow.
//! 3. It starts the intruder as a NodeProcess actor under the LabSupervisor, like a member
//!    (log `intruder.log`), with node id [`INTRUDER_NODE_ID`], cookie [`INTRUDER_COOKIE`], an
//!    iroh key drawn from the run's seed, gossip on at the lab's interval, and the ticket's
//!    bootstrap peers as manual peers (`--peers`). It cannot be given the ticket itself: a
//!    node refuses a ticket whose topic is not its own cookie's ("invalid ticket (--ticket): it
//!    belongs to a cluster with another cookie") and exits. So it joins gossip on its own
//!    cookie's topic through the members; they never subscribed to that topic, and iroh-gossip
//!    drops the messages of a topic it has not joined without a word, before any announcement
//!    check of the node sees them. Having no gossip neighbour, the intruder never announces.
//! 4. It inits the intruder as a cluster of itself and the ticket's peers (`POST /init`), so
//!    that it campaigns: every election timeout it asks each member for a vote over Raft RPC,
//!    and each member refuses the connection (only the membership and peers an operator named
//!    may call Raft RPC) and counts it. These refusals prove that the intruder reached the
//!    members.
//!
//! The intruder runs until the run ends and is killed with the nodes; on an error or Ctrl-C the
//! supervisor and the ProcessGuard kill it like any node. [`intruder_reports`] gathers what the
//! `no_intruder` check ([`crate::checker::check_no_intruder`]) judges.
//!
//! Caveats:
//! - In a `netns` run the intruder runs beside the lab, in the host's namespace on the lab's
//!   address, not in a namespace of its own: namespaces go with node indexes, and the intruder
//!   is no node. Network faults never cut the lab's address, so they never cut the intruder.
//! - It never gossips on the cluster's topic, which takes the cookie. A stranger that does
//!   (a crafted client that knows the topic) is shown by `tests/discovery_security.rs`: its
//!   forged, replayed and foreign announcements are dropped and counted by reason, and a valid
//!   one enters the peer book but gives no right to call Raft RPC.

use std::collections::BTreeMap;
use std::sync::Arc;

use aspen::discovery::{ClusterTicket, cluster_topic, endpoint_to_string, parse_endpoint};
use iroh::EndpointId;
use ractor::ActorRef;
use rand_chacha::rand_core::RngCore;
use serde_json::{Value, json};

use super::cluster::{Cluster, NodeStatus};
use super::http::{Reply, metric_value, metrics_page, request_async};
use super::launch::{GOSSIP_INTERVAL_MS, node_start_with_args, raft_settings_args};
use super::membership::fetch_ticket;
use super::node::{NodeMsg, NodeSpec, ProcessRole, SupervisorMsg};
use super::progress::log;
use super::{COOKIE, REQUEST_TIMEOUT, STATUS_TIMEOUT};
use crate::checker::{Intruder, KnownNode, MemberReport};
use crate::limits;
use crate::scenario::NodeIndex;

/// The intruder's Raft node id: above every id a run gives its nodes (index + 1), so that it
/// claims no member's id and is told apart from every node.
pub(super) const INTRUDER_NODE_ID: u64 = 100;
const _: () = assert!(INTRUDER_NODE_ID > limits::NODES_MAX as u64);

/// The intruder's cookie: not the cluster's ([`COOKIE`]).
const INTRUDER_COOKIE: &str = "aspen-lab-intruder";

/// The series of a member's refused Raft RPC connections on its metrics page.
const REFUSED_SERIES: &str = "aspen_rpc_refused_connections_total";

/// The series of the gossip announcements a node sent on its metrics page.
const SENT_SERIES: &str = "aspen_gossip_announcements_sent_total";

/// How long the intruder's process may take from spawn to its ready line, in milliseconds
/// (the NodeProcess's own deadline, plus room to answer).
const START_TIMEOUT_MS: u64 = 30_000;

/// The intruder, while the run lasts.
pub(super) struct IntruderProcess {
    /// Its iroh endpoint id.
    endpoint_id: EndpointId,
    /// Its HTTP API.
    http: String,
    /// The NodeProcess actor that owns its process.
    actor: ActorRef<NodeMsg>,
    /// Raft RPC connections each member had refused before the intruder started.
    refused_before: BTreeMap<NodeIndex, u64>,
}

/// Starts the intruder and makes it campaign; see the module documentation.
pub(super) async fn start_intruder(cluster: &Arc<Cluster>) -> anyhow::Result<()> {
    anyhow::ensure!(cluster.intruder.lock().expect("intruder").is_none(), "an intruder runs");
    let source = *cluster
        .nodes_in(NodeStatus::Running)
        .first()
        .ok_or_else(|| anyhow::anyhow!("no running node to take a ticket from"))?;
    let text = fetch_ticket(cluster, source).await?;
    let ticket: ClusterTicket =
        text.parse().map_err(|e| anyhow::anyhow!("node {source}'s ticket: {e}"))?;
    anyhow::ensure!(
        ticket.topic() != cluster_topic(INTRUDER_COOKIE) && INTRUDER_COOKIE != COOKIE,
        "the intruder's cookie is the cluster's"
    );
    let refused_before = refused_counts(cluster).await;
    let actor = spawn_actor(cluster).await?;
    let args = intruder_args(cluster, &ticket);
    let started = ractor::call_t!(actor, node_start_with_args, START_TIMEOUT_MS, args);
    let ready = match started {
        Ok(Ok(ready)) => ready,
        Ok(Err(error)) => anyhow::bail!(error),
        Err(error) => anyhow::bail!("the intruder's actor: {error}"),
    };
    let http = ready.http_addr.to_string();
    let peers: Vec<u64> = ticket.bootstrap().iter().map(|(id, _)| *id).collect();
    log(format!(
        "intruder: node {INTRUDER_NODE_ID} at {http}, endpoint {}, knows nodes {peers:?} from \
         node {source}'s ticket",
        ready.endpoint_id.fmt_short()
    ));
    let endpoint_id = ready.endpoint_id;
    let process = IntruderProcess { endpoint_id, http: http.clone(), actor, refused_before };
    *cluster.intruder.lock().expect("intruder") = Some(process);
    // A cluster of itself and every member it knows of: it campaigns for their votes.
    let members: Vec<Value> =
        std::iter::once(INTRUDER_NODE_ID).chain(peers).map(|id| json!({"id": id})).collect();
    let body = json!({"initial_members": members});
    match request_async(http, "/init", Some(body), REQUEST_TIMEOUT).await {
        Reply::Ok(_) => Ok(()),
        Reply::Error(status, kind) => anyhow::bail!("the intruder's init: HTTP {status} {kind}"),
        Reply::Refused => anyhow::bail!("the intruder's init: connection refused"),
        Reply::Lost(error) => anyhow::bail!("the intruder's init: {error}"),
    }
}

/// Kills the intruder, if one runs; the end of a run.
pub(super) async fn stop_intruder(cluster: &Cluster) {
    let actor = cluster.intruder.lock().expect("intruder").as_ref().map(|i| i.actor.clone());
    if let Some(actor) = actor {
        let _ = ractor::call_t!(actor, NodeMsg::Signal, START_TIMEOUT_MS, libc::SIGKILL);
    }
}

/// A NodeProcess actor for the intruder, under the run's supervisor.
async fn spawn_actor(cluster: &Cluster) -> anyhow::Result<ActorRef<NodeMsg>> {
    let spec = NodeSpec {
        role: ProcessRole::Intruder,
        bin: cluster.bin.clone(),
        args: Vec::new(),
        command_prefix: Vec::new(),
        log_path: cluster.run_dir.join("intruder.log"),
        clock: cluster.clock,
        events: cluster.events.clone(),
    };
    ractor::call!(cluster.supervisor, SupervisorMsg::SpawnNode, spec)
        .map_err(|e| anyhow::anyhow!("spawn the intruder's actor: {e}"))?
        .map_err(|e| anyhow::anyhow!(e))
}

/// The intruder's flags: its own id, cookie and key, the cluster's Raft timings, gossip at the
/// lab's interval, no mDNS, and the ticket's bootstrap peers as manual peers.
fn intruder_args(cluster: &Cluster, ticket: &ClusterTicket) -> Vec<String> {
    let mut secret = [0u8; 32];
    cluster.rng.lock().expect("rng").fill_bytes(&mut secret);
    let ip = cluster.lab_address;
    let mut args = vec![
        format!("--node-id={INTRUDER_NODE_ID}"),
        format!("--data-dir={}", cluster.data_root.path().join("intruder").display()),
        format!("--http-addr={ip}:0"),
        format!("--host={ip}"),
        // Never restarted, so any free port will do.
        "--iroh-port=0".to_string(),
        format!("--iroh-secret-key={}", hex::encode(secret)),
        format!("--cookie={INTRUDER_COOKIE}"),
        format!("--gossip-interval-ms={GOSSIP_INTERVAL_MS}"),
        "--disable-mdns".to_string(),
    ];
    args.extend(raft_settings_args(&cluster.scenario.node_settings));
    for (node_id, addr) in ticket.bootstrap() {
        args.push(format!("--peers={node_id}@{}", endpoint_to_string(addr)));
    }
    args
}

/// Raft RPC connections each running member has refused so far; members that do not answer
/// are left out.
async fn refused_counts(cluster: &Cluster) -> BTreeMap<NodeIndex, u64> {
    let mut counts = BTreeMap::new();
    for index in cluster.nodes_in(NodeStatus::Running) {
        let page = metrics_page(cluster.http(index)).await;
        if let Some(refused) = page.as_deref().and_then(|p| metric_value(p, REFUSED_SERIES)) {
            counts.insert(index, refused);
        }
    }
    counts
}

/// What the intruder and every member report now, for the `no_intruder` check; no intruder if
/// none was started.
pub(super) async fn intruder_reports(
    cluster: &Arc<Cluster>,
) -> (Option<Intruder>, Vec<MemberReport>) {
    let (endpoint_id, http, refused_before) = {
        let intruder = cluster.intruder.lock().expect("intruder");
        let Some(intruder) = intruder.as_ref() else { return (None, Vec::new()) };
        (intruder.endpoint_id, intruder.http.clone(), intruder.refused_before.clone())
    };
    let page = metrics_page(Some(http)).await;
    let intruder = Intruder {
        node_id: INTRUDER_NODE_ID,
        endpoint_id: endpoint_id.to_string(),
        announcements_sent: page.as_deref().and_then(|page| metric_value(page, SENT_SERIES)),
    };
    let mut members = Vec::new();
    for node in cluster.members() {
        let http = cluster.http(node);
        let page = metrics_page(http.clone()).await;
        let refused = page.as_deref().and_then(|page| metric_value(page, REFUSED_SERIES));
        let before = refused_before.get(&node).copied().unwrap_or(0);
        members.push(MemberReport {
            node,
            peers: peer_book(http.clone()).await,
            membership: membership(http).await,
            // A member restarted since counts from 0 again.
            refused_since_intruder: refused.map(|refused| refused.saturating_sub(before)),
        });
    }
    (Some(intruder), members)
}

/// Every peer in a node's book (`GET /peers`).
async fn peer_book(http: Option<String>) -> Option<Vec<KnownNode>> {
    let Reply::Ok(Value::Array(entries)) =
        request_async(http?, "/peers", None, STATUS_TIMEOUT).await
    else {
        return None;
    };
    let known = entries.iter().map(|entry| KnownNode {
        node_id: entry.get("node_id").and_then(Value::as_u64).unwrap_or(0),
        endpoint_id: entry
            .pointer("/endpoint_addr/id")
            .and_then(Value::as_str)
            .and_then(|id| parse_endpoint(id).ok())
            .map(|addr| addr.id.to_string()),
    });
    Some(known.collect())
}

/// Every node of a node's membership, voters and learners (`GET /cluster/state`).
async fn membership(http: Option<String>) -> Option<Vec<KnownNode>> {
    let Reply::Ok(state) = request_async(http?, "/cluster/state", None, STATUS_TIMEOUT).await
    else {
        return None;
    };
    let nodes = state.get("nodes")?.as_array()?;
    let known = nodes.iter().map(|node| KnownNode {
        node_id: node.get("id").and_then(Value::as_u64).unwrap_or(0),
        endpoint_id: node
            .get("raft_addr")
            .and_then(Value::as_str)
            .and_then(|addr| parse_endpoint(addr).ok())
            .map(|addr| addr.id.to_string()),
    });
    Some(known.collect())
}
