//! The node's HTTP API against live in-process nodes: every kind of bad request gets its JSON
//! error and leaves the node serving, a three-node cluster is formed and used over HTTP alone,
//! the metrics page shows the node's numbers, the OpenAPI document lists exactly the served
//! routes, `/health` turns 503 with the reason when the node stops, and HTTP/2 with prior
//! knowledge is served on the same port as HTTP/1.1.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use aspen::cluster::{BootstrapHandle, NodeStatus, actor_name};
use aspen::discovery::{ClusterTicket, cluster_topic};
use aspen::limits::{
    ACTOR_RESTARTS_MAX, HTTP_BODY_BYTES_MAX, KEY_BYTES_MAX, SET_MULTI_PAIRS_MAX, VALUE_BYTES_MAX,
};
use aspen::{ClusterBootstrapConfig, ControlBackend, bootstrap_node};
use axum::body::Bytes;
use axum::http::{Request, Version};
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};

/// Longer than the longest API call (a membership change waits up to 35 s), so that a test
/// fails on the API's own answer rather than on the client giving up first.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(40);

/// A JSON-speaking client of one node.
struct Api {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

/// A request body.
enum Body {
    None,
    Json(Value),
    Raw(&'static str, String),
}

impl Api {
    fn new(addr: SocketAddr) -> Self {
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self { client, base: format!("http://{addr}") }
    }

    /// Sends a request; returns the status, the content type and the body text.
    async fn exchange(&self, method: &str, path: &str, body: Body) -> (u16, String, String) {
        let request = Request::builder().method(method).uri(format!("{}{path}", self.base));
        let request = match body {
            Body::None => request.body(Full::default()),
            Body::Json(value) => request
                .header("content-type", "application/json")
                .body(Full::from(value.to_string())),
            Body::Raw(content_type, text) => {
                request.header("content-type", content_type).body(Full::from(text))
            }
        };
        let call = async {
            let response = self.client.request(request.unwrap()).await?;
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap_or_default().to_string())
                .unwrap_or_default();
            let bytes = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, content_type, String::from_utf8(bytes.to_vec())?))
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => panic!("{method} {path}: {error:#}"),
            Err(_) => panic!("{method} {path}: no answer within {REQUEST_TIMEOUT:?}"),
        }
    }

    /// Sends a request; returns the status and the body (JSON when it parses, else a string).
    async fn send(&self, method: &str, path: &str, body: Body) -> (u16, Value) {
        let (status, _, text) = self.exchange(method, path, body).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send("GET", path, Body::None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send("POST", path, Body::Json(body)).await
    }

    /// A POST that must succeed; returns its answer.
    async fn ok(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.post(path, body).await;
        assert_eq!(status, 200, "POST {path}: {answer}");
        answer
    }
}

fn http_config(node_id: u64, dir: Option<&std::path::Path>) -> ClusterBootstrapConfig {
    ClusterBootstrapConfig {
        http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..node_config(node_id, dir)
    }
}

async fn start(node_id: u64, dir: &std::path::Path) -> (BootstrapHandle, Api) {
    let node = bootstrap_node(http_config(node_id, Some(dir))).await.expect("bootstrap");
    assert_ne!(node.http_addr().port(), 0, "http_addr reports the bound port");
    let api = Api::new(node.http_addr());
    (node, api)
}

/// A JSON body.
fn j(value: Value) -> Body {
    Body::Json(value)
}

fn set(key: &str, value: &str) -> Value {
    json!({"command": {"Set": {"key": key, "value": value}}})
}

/// Initializes a single-node cluster over HTTP and waits until the node leads.
async fn init_alone(node: &BootstrapHandle, api: &Api) {
    let me = json!({"id": node.node_id, "addr": node.http_addr().to_string()});
    let state = api.ok("/init", json!({"initial_members": [me]})).await;
    assert_eq!(state["members"], json!([node.node_id]));
    wait_until("the node leads itself", Duration::from_secs(10), || async {
        leader_of(node) == Some(node.node_id)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_bad_request_gets_its_json_error_and_the_node_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (node, api) = start(101, dir.path()).await;
    init_alone(&node, &api).await;
    api.ok("/write", set("before", "1")).await;

    let long_key = "k".repeat(KEY_BYTES_MAX + 1);
    let big_value = "v".repeat(VALUE_BYTES_MAX + 1);
    let pairs: Vec<_> = (0..=SET_MULTI_PAIRS_MAX).map(|i| json!([format!("k{i}"), "v"])).collect();
    let huge = format!("{{\"key\": \"{}\"}}", "x".repeat(HTTP_BODY_BYTES_MAX));
    let raw = |text: &str| Body::Raw("application/json", text.to_string());
    let learner =
        |raft_addr: Value| json!({"learner": {"id": 5, "addr": "a", "raft_addr": raft_addr}});
    let cas = json!({"command": {"CompareAndSwap": {"key": "before", "expected": "0", "new_value": "2"}}});
    // (method and path, body, expected status and kind)
    let cases: Vec<(&str, Body, &str)> = vec![
        ("POST /write", raw("{\"command\": "), "400 invalid_request"),
        ("POST /write", raw("not json"), "400 invalid_request"),
        ("POST /write", j(json!({"command": {"Set": {"key": "k"}}})), "400 invalid_request"),
        ("POST /read", j(json!({})), "400 invalid_request"),
        (
            "POST /write",
            j(json!({"command": {"Set": {"key": 1, "value": "v"}}})),
            "400 invalid_request",
        ),
        ("POST /scan", j(json!({"prefix": "a", "limit": "ten"})), "400 invalid_request"),
        ("POST /write", j(set("", "v")), "400 invalid_request"),
        ("POST /read", j(json!({"key": ""})), "400 invalid_request"),
        ("POST /write", j(set(&long_key, "v")), "400 invalid_request"),
        ("POST /write", j(set("k", &big_value)), "400 invalid_request"),
        (
            "POST /write",
            j(json!({"command": {"SetMulti": {"pairs": pairs}}})),
            "400 invalid_request",
        ),
        ("POST /scan", j(json!({"limit": 0})), "400 invalid_request"),
        ("POST /read", raw(&huge), "413 payload_too_large"),
        (
            "POST /write",
            Body::Raw("text/plain", set("k", "v").to_string()),
            "415 unsupported_media_type",
        ),
        ("POST /change-membership", j(json!({"members": [101, 999]})), "400 invalid_request"),
        ("POST /change-membership", j(json!({"members": []})), "400 invalid_request"),
        (
            "POST /init",
            j(json!({"initial_members": [{"id": 101, "addr": "a"}]})),
            "400 invalid_request",
        ),
        ("POST /add-learner", j(learner(json!("not-an-endpoint"))), "400 invalid_request"),
        ("POST /add-learner", j(learner(Value::Null)), "400 invalid_request"),
        (
            "POST /add-peer",
            j(json!({"node_id": 2, "endpoint_addr": "not-an-endpoint"})),
            "400 invalid_request",
        ),
        ("POST /add-peer", j(json!({"node_id": 2, "endpoint_addr": 7})), "400 invalid_request"),
        ("POST /add-peer", j(json!({"node_id": 2})), "400 invalid_request"),
        ("POST /read", j(json!({"key": "missing"})), "404 not_found"),
        ("POST /write", j(cas), "409 cas_failed"),
        ("GET /no-such-route", Body::None, "404 no_route"),
        ("GET /write", Body::None, "405 method_not_allowed"),
        ("POST /health", j(json!({})), "405 method_not_allowed"),
    ];
    for (route, body, expected) in cases {
        let (method, path) = route.split_once(' ').unwrap();
        let (status, answer) = api.send(method, path, body).await;
        let shown = answer.to_string().chars().take(300).collect::<String>();
        let got = format!("{status} {}", answer["kind"].as_str().unwrap_or("(no kind)"));
        assert_eq!(got, expected, "{route}: {shown}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.len() > 10, "{route}: the error says what is wrong: {shown}");
    }

    // The mismatch names the current value, and the node still serves the earlier write.
    let cas = json!({"command": {"CompareAndSwap": {"key": "before", "expected": null, "new_value": "2"}}});
    let (status, answer) = api.post("/write", cas).await;
    assert_eq!((status, &answer["current"]), (409, &json!("1")));
    let read = api.ok("/read", json!({"key": "before"})).await;
    assert_eq!(read, json!({"key": "before", "value": "1"}));
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_form_a_cluster_and_serve_over_http_alone() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (id, dir) in [111, 112, 113].into_iter().zip(&dirs) {
        nodes.push(start(id, dir.path()).await);
    }
    let mut infos = Vec::new();
    for (_, api) in &nodes {
        let (status, info) = api.get("/node-info").await;
        assert_eq!(status, 200);
        infos.push(info);
    }
    for ((node, api), info) in nodes.iter().zip(&infos) {
        assert_eq!(info["node_id"], node.node_id);
        assert_eq!(info["http_addr"], node.http_addr().to_string());
        assert_eq!(info["ractor_port"], node.ractor_port());
        assert_eq!(info["endpoint_id"], info["endpoint_addr"]["id"]);
        // Every node learns every other one; one by endpoint address object.
        for other in infos.iter().filter(|other| other["node_id"] != info["node_id"]) {
            let body =
                json!({"node_id": other["node_id"], "endpoint_addr": other["endpoint_addr"]});
            assert_eq!(api.ok("/add-peer", body).await, json!({"node_id": other["node_id"]}));
        }
    }
    let (node1, api1) = &nodes[0];
    init_alone(node1, api1).await;
    for (node, _) in &nodes[1..] {
        let learner = json!({"id": node.node_id, "addr": node.http_addr().to_string()});
        api1.ok("/add-learner", json!({"learner": learner})).await;
    }
    let state = api1.ok("/change-membership", json!({"members": [111, 112, 113]})).await;
    assert_eq!((&state["members"], &state["learners"]), (&json!([111, 112, 113]), &json!([])));

    // A control call on a follower names the leader; a write through it is forwarded.
    let (follower, follower_api) = &nodes[1];
    let (status, answer) =
        follower_api.post("/change-membership", json!({"members": [111, 112]})).await;
    assert_eq!(
        (status, answer["kind"].as_str(), &answer["leader"]),
        (503, Some("not_leader"), &json!(111))
    );
    let written = follower_api.ok("/write", set("through-follower", "yes")).await;
    assert!(written["log_index"].as_u64().unwrap() > 0, "{written}");
    assert!(follower.raft_actor.counters().snapshot().forwarded >= 1, "the write was forwarded");
    for (node, api) in &nodes {
        let read = api.ok("/read", json!({"key": "through-follower"})).await;
        assert_eq!(read["value"], "yes", "node {}", node.node_id);
    }

    let (_, peers) = api1.get("/peers").await;
    let peer_ids: Vec<_> = peers.as_array().unwrap().iter().map(|p| p["node_id"].clone()).collect();
    assert_eq!(peer_ids, [json!(112), json!(113)]);
    assert_eq!(peers[0]["source"], "Manual");
    let (_, ticket) = nodes[2].1.get("/cluster-ticket").await;
    let ticket: ClusterTicket = ticket["ticket"].as_str().unwrap().parse().unwrap();
    assert_eq!(ticket.topic(), cluster_topic("aspen-test-cookie"));
    let ids: Vec<_> = ticket.bootstrap().iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [111, 112, 113]);
    let (status, metrics) = api1.get("/raft-metrics").await;
    assert_eq!((status, &metrics["current_leader"]), (200, &json!(111)), "{metrics}");
    shutdown_all(nodes.into_iter().map(|(node, _)| node).collect()).await;
}

/// The value of the sample `series` (name plus labels) on a metrics page.
fn sample(page: &str, series: &str) -> Option<i64> {
    page.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_metrics_page_shows_raft_and_the_data_path_after_some_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (node, api) = start(121, dir.path()).await;
    init_alone(&node, &api).await;
    for i in 0..3 {
        api.ok("/write", set(&format!("m{i}"), "v")).await;
    }
    api.ok("/read", json!({"key": "m0"})).await;
    api.ok("/scan", json!({"prefix": "m"})).await;
    assert_eq!(api.post("/write", set("", "v")).await.0, 400);

    let (status, content_type, page) = api.exchange("GET", "/metrics", Body::None).await;
    assert_eq!((status, content_type.as_str()), (200, "text/plain; version=0.0.4"));
    let expected = [
        ("aspen_raft_state{state=\"Leader\"}", 1),
        ("aspen_raft_state{state=\"Follower\"}", 0),
        ("aspen_raft_leader", 121),
        ("aspen_writes_total", 3),
        ("aspen_reads_total", 1),
        ("aspen_scans_total", 1),
        ("aspen_forwarded_total", 0),
        ("aspen_rejected_total", 1),
        ("aspen_failed_total", 0),
        ("aspen_peers_known", 0),
        ("aspen_actor_restarts_total{actor=\"raft\"}", 0),
        ("aspen_actor_restarts_total{actor=\"http\"}", 0),
        ("aspen_rpc_refused_connections_total", 0),
        ("aspen_http_connections_refused_total", 0),
    ];
    for (series, value) in expected {
        assert_eq!(sample(&page, series), Some(value), "{series} in\n{page}");
    }
    assert!(sample(&page, "aspen_raft_term").is_some_and(|term| term >= 1), "{page}");
    // Three writes at least, on top of the membership and the leader's blank entry.
    for series in ["aspen_raft_last_applied_index", "aspen_raft_commit_index"] {
        assert!(sample(&page, series).is_some_and(|index| index >= 3), "{series} in\n{page}");
    }
    let families: BTreeSet<_> =
        page.lines().filter(|l| !l.starts_with('#')).map(|l| l.split([' ', '{']).next()).collect();
    for family in families.into_iter().flatten() {
        assert!(page.contains(&format!("# HELP {family} ")), "{family} has HELP");
        assert!(page.contains(&format!("# TYPE {family} ")), "{family} has TYPE");
    }
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_openapi_document_lists_exactly_the_routes_the_router_serves() {
    let config = ClusterBootstrapConfig {
        control_backend: ControlBackend::Deterministic,
        ..http_config(131, None)
    };
    let node = bootstrap_node(config).await.unwrap();
    let api = Api::new(node.http_addr());
    let (status, document) = api.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(document["openapi"].as_str().is_some_and(|v| v.starts_with('3')), "{document}");
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let served: BTreeSet<_> = aspen::http::route_table()
        .into_iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    assert_eq!(documented, served);

    // Every listed route is really served: none answers "no route" or "wrong method".
    for (method, path) in &served {
        let body = if method == "POST" { Body::Json(json!({})) } else { Body::None };
        let (status, answer) = api.send(method, path, body).await;
        assert!(
            ![404, 405].contains(&status) || answer["kind"] == "not_found",
            "{method} {path}: {answer}"
        );
    }
    // With no Raft, /raft-metrics says so.
    let (status, answer) = api.get("/raft-metrics").await;
    assert_eq!((status, answer["kind"].as_str()), (412, Some("not_initialized")));
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_turns_503_with_the_reason_when_the_node_stops() {
    let dir = tempfile::tempdir().unwrap();
    let (node, api) = start(141, dir.path()).await;
    init_alone(&node, &api).await;
    assert_eq!(api.get("/health").await, (200, json!({"status": "ok", "node_id": 141})));

    // Kill the RaftActor past its restart intensity: the supervisor gives up.
    for restarts in 1..=ACTOR_RESTARTS_MAX as u32 + 1 {
        let raft = ractor::registry::where_is(actor_name(141, "raft")).expect("raft runs");
        raft.kill();
        if restarts <= ACTOR_RESTARTS_MAX as u32 {
            wait_until("the RaftActor to be restarted", Duration::from_secs(10), || async {
                node.supervision_report
                    .child("raft")
                    .is_some_and(|c| c.restarts == restarts && c.running)
            })
            .await;
        }
    }
    let status = node.wait_stopped(Duration::from_secs(10)).await.expect("the node stops");
    assert!(matches!(status, NodeStatus::Stopped { error: Some(_) }), "{status:?}");

    let (status, health) = api.get("/health").await;
    assert_eq!(
        (status, &health["status"], &health["node_id"]),
        (503, &json!("stopped"), &json!(141))
    );
    let reason = health["error"].as_str().unwrap_or_default();
    assert!(reason.contains("raft") && reason.contains("restarts"), "{health}");
    let (status, answer) = api.post("/write", set("k", "v")).await;
    assert_eq!((status, answer["kind"].as_str()), (503, Some("unavailable")), "{answer}");

    // Shutting the node down closes the listener.
    let addr = node.http_addr();
    node.shutdown().await.unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "nothing listens after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_http_actor_serves_again_on_the_same_port() {
    let config = ClusterBootstrapConfig {
        control_backend: ControlBackend::Deterministic,
        ..http_config(151, None)
    };
    let node = bootstrap_node(config).await.unwrap();
    let api = Api::new(node.http_addr());
    assert_eq!(api.get("/health").await.0, 200);

    ractor::registry::where_is(actor_name(151, "http")).expect("the HttpActor runs").kill();
    wait_until("the HttpActor to be restarted", Duration::from_secs(10), || async {
        node.supervision_report.child("http").is_some_and(|c| c.restarts == 1 && c.running)
    })
    .await;
    let (status, info) = api.get("/node-info").await;
    assert_eq!((status, &info["http_addr"]), (200, &json!(node.http_addr().to_string())));
    assert_eq!(node.status(), NodeStatus::Running);
    node.shutdown().await.unwrap();
}

/// One HTTP/2 connection with prior knowledge (no upgrade), as `aspen-bench` opens it.
struct Http2 {
    sender: SendRequest<Full<Bytes>>,
    base: String,
}

impl Http2 {
    /// `POST path` with a JSON body on the shared connection; the status, the HTTP version of
    /// the answer and its body.
    async fn post(&self, path: &str, body: String) -> (u16, Version, Value) {
        let request = Request::post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(Full::from(body))
            .unwrap();
        let call = async {
            let response = self.sender.clone().send_request(request).await?;
            let (status, version) = (response.status().as_u16(), response.version());
            let bytes = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, version, serde_json::from_slice(&bytes)?))
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => panic!("HTTP/2 POST {path}: {error:#}"),
            Err(_) => panic!("HTTP/2 POST {path}: no answer within {REQUEST_TIMEOUT:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http2_with_prior_knowledge_is_served_next_to_http1_on_the_same_port() {
    let dir = tempfile::tempdir().unwrap();
    let (node, api) = start(161, dir.path()).await;
    init_alone(&node, &api).await;

    let stream = tokio::net::TcpStream::connect(node.http_addr()).await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("HTTP/2 handshake");
    let connection = tokio::spawn(connection);
    let h2 = Http2 { sender, base: format!("http://{}", node.http_addr()) };

    // Sixteen writes sent together on the one connection, each answered over HTTP/2.
    let writes = (0..16).map(|i| h2.post("/write", set(&format!("h2-{i}"), "v").to_string()));
    for (status, version, answer) in futures::future::join_all(writes).await {
        assert_eq!((status, version), (200, Version::HTTP_2), "{answer}");
    }
    let (_, _, read) = h2.post("/read", json!({"key": "h2-3"}).to_string()).await;
    assert_eq!(read, json!({"key": "h2-3", "value": "v"}));
    // HTTP/1.1 clients on the same port see the same store.
    assert_eq!(api.ok("/read", json!({"key": "h2-15"})).await["value"], "v");

    // The body limit holds for an HTTP/2 stream as for an HTTP/1.1 request.
    let huge = format!("{{\"key\": \"{}\"}}", "x".repeat(HTTP_BODY_BYTES_MAX));
    let (status, _, answer) = h2.post("/read", huge).await;
    assert_eq!((status, answer["kind"].as_str()), (413, Some("payload_too_large")), "{answer}");

    // Shutting down closes the idle HTTP/2 connection (GOAWAY) rather than waiting on it.
    node.shutdown().await.unwrap();
    let bound = Duration::from_secs(10);
    let closed = tokio::time::timeout(bound, connection).await;
    assert!(closed.is_ok(), "the HTTP/2 connection is still open {bound:?} after shutdown");
}
