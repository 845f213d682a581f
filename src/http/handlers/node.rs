//! Routes about the node itself: health, metrics, identity, ticket and peers.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use iroh::EndpointAddr;
use openraft::async_runtime::watch::WatchReceiver;
use ractor::rpc::CallResult;
use ractor::{ActorRef, registry};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::NodeId;
use crate::cluster::{ControlBackend, actor_name};
use crate::discovery::{ClusterTicket, DiscoveryActorMessage, PeerEntry, parse_endpoint};
use crate::http::error::{ApiError, ErrorBody, ErrorKind};
use crate::http::extract::JsonBody;
use crate::http::metrics::{self, MetricsSnapshot, RaftGauges};
use crate::http::state::HttpState;
use crate::limits::ACTOR_CALL_TIMEOUT_MS_MAX;

/// Whether the node runs.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`, or `stopped` once the node has stopped.
    pub status: String,
    /// The node's id.
    #[schema(value_type = u64)]
    pub node_id: NodeId,
    /// Why the node stopped on its own, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Who this node is and where it listens.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NodeInfo {
    /// The node's Raft id.
    #[schema(value_type = u64)]
    pub node_id: NodeId,
    /// The node's iroh endpoint id.
    pub endpoint_id: String,
    /// The node's iroh endpoint address: `{"id": "...", "addrs": [...]}`.
    #[schema(value_type = Object)]
    pub endpoint_addr: EndpointAddr,
    /// The ractor_cluster control port.
    pub ractor_port: u16,
    /// The address this HTTP API listens on.
    pub http_addr: String,
}

/// A cluster ticket.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TicketResponse {
    /// The ticket: `aspen` followed by base32.
    pub ticket: String,
}

/// Tell the node where another node is.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AddPeerRequest {
    /// The peer's Raft node id.
    #[schema(value_type = u64)]
    pub node_id: NodeId,
    /// Its endpoint: an endpoint address object (`{"id": "...", "addrs": [...]}`), or an
    /// endpoint id string (then its addresses must come from elsewhere).
    #[schema(value_type = Object)]
    pub endpoint_addr: serde_json::Value,
}

/// The peer that was added.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AddPeerResponse {
    /// Its Raft node id.
    #[schema(value_type = u64)]
    pub node_id: NodeId,
}

/// Is the node up?
#[utoipa::path(get, path = "/health", tag = "node", responses(
    (status = 200, description = "The node runs", body = Health),
    (status = 503, description = "The node has stopped", body = Health),
))]
pub async fn health(State(state): State<Arc<HttpState>>) -> (StatusCode, Json<Health>) {
    let node_id = state.node_id;
    match state.stopped() {
        None => (StatusCode::OK, Json(Health { status: "ok".into(), node_id, error: None })),
        Some(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health { status: "stopped".into(), node_id, error }),
        ),
    }
}

/// The node's metrics in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "node", responses(
    (status = 200, description = "Prometheus text exposition", body = String,
        content_type = "text/plain; version=0.0.4"),
))]
pub async fn metrics(State(state): State<Arc<HttpState>>) -> Response {
    let raft = state
        .raft_actor
        .current_raft()
        .map(|raft| RaftGauges::from_metrics(&raft.metrics().borrow_watched()));
    let snapshot = MetricsSnapshot {
        raft,
        counts: state.raft_actor.counters().snapshot(),
        peers_known: state.peer_book.len(),
        actor_restarts: state
            .supervision_report
            .children()
            .into_iter()
            .map(|child| (child.name, child.restarts))
            .collect(),
        rpc_accepted_connections: state.rpc_server.accepted_connections(),
        rpc_refused_connections: state.rpc_server.refused_connections(),
        gossip: state.gossip_counters.snapshot(),
        http_connections: state.http_connections.snapshot(),
    };
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], metrics::render(&snapshot)).into_response()
}

/// openraft's own metrics of this node, as JSON.
#[utoipa::path(get, path = "/raft-metrics", tag = "node", responses(
    (status = 200, description = "openraft's RaftMetrics", body = Object),
    (status = 412, description = "No Raft runs on this node (deterministic backend)",
        body = ErrorBody),
    (status = 503, description = "Raft is restarting or the node stopped", body = ErrorBody),
))]
pub async fn raft_metrics(State(state): State<Arc<HttpState>>) -> Result<Response, ApiError> {
    if state.backend == ControlBackend::Deterministic {
        return Err(ApiError::new(
            ErrorKind::NotInitialized,
            "this node runs the deterministic backend: there is no Raft to report on",
        ));
    }
    state.ensure_running()?;
    let raft = state.raft_actor.current_raft().ok_or_else(|| {
        ApiError::unavailable("the Raft actor is restarting; no metrics until it is back")
    })?;
    let metrics = raft.metrics().borrow_watched().clone();
    Ok(Json(metrics).into_response())
}

/// Who this node is.
#[utoipa::path(get, path = "/node-info", tag = "node", responses(
    (status = 200, description = "The node's identity and addresses", body = NodeInfo),
))]
pub async fn node_info(State(state): State<Arc<HttpState>>) -> Json<NodeInfo> {
    let http_addr = state.http_addr.get().map(ToString::to_string).unwrap_or_default();
    Json(NodeInfo {
        node_id: state.node_id,
        endpoint_id: state.endpoint_addr.id.to_string(),
        endpoint_addr: state.endpoint_addr.clone(),
        ractor_port: state.ractor_port,
        http_addr,
    })
}

/// A ticket for joining this node's cluster: this node plus the members it knows.
#[utoipa::path(get, path = "/cluster-ticket", tag = "node", responses(
    (status = 200, description = "A ticket (`aspen…`)", body = TicketResponse),
))]
pub async fn cluster_ticket(State(state): State<Arc<HttpState>>) -> Json<TicketResponse> {
    let members: Vec<(NodeId, EndpointAddr)> = match state.raft_actor.current_raft() {
        Some(raft) => {
            let metrics = raft.metrics().borrow_watched().clone();
            let membership = metrics.membership_config.membership();
            membership
                .nodes()
                .filter_map(|(id, info)| Some((*id, info.endpoint_addr.clone()?)))
                .collect()
        }
        None => Vec::new(),
    };
    let own = (state.node_id, state.endpoint_addr.clone());
    let ticket = ClusterTicket::for_node(state.topic, own, members);
    Json(TicketResponse { ticket: ticket.to_string() })
}

/// Every peer this node knows, sorted by node id.
#[utoipa::path(get, path = "/peers", tag = "node", responses(
    (status = 200, description = "The peer book", body = Vec<crate::http::schema::PeerEntry>),
))]
pub async fn peers(State(state): State<Arc<HttpState>>) -> Json<Vec<PeerEntry>> {
    Json(state.peer_book.list())
}

/// Add (or refresh) a manual peer, through the node's DiscoveryActor.
#[utoipa::path(post, path = "/add-peer", tag = "node", request_body = AddPeerRequest, responses(
    (status = 200, description = "The peer is in the peer book", body = AddPeerResponse),
    (status = 400, description = "Bad node id or endpoint, or the peer book is full",
        body = ErrorBody),
    (status = 503, description = "The DiscoveryActor is not running", body = ErrorBody),
))]
pub async fn add_peer(
    State(state): State<Arc<HttpState>>,
    JsonBody(request): JsonBody<AddPeerRequest>,
) -> Result<Json<AddPeerResponse>, ApiError> {
    state.ensure_running()?;
    let node_id = request.node_id;
    if node_id == state.node_id {
        return Err(ApiError::invalid(format!("node {node_id} is this node, not a peer")));
    }
    let addr = endpoint_from_json(request.endpoint_addr)?;
    let name = actor_name(state.node_id, "discovery");
    let actor: ActorRef<DiscoveryActorMessage> = registry::where_is(name.clone())
        .map(ActorRef::from)
        .ok_or_else(|| ApiError::unavailable(format!("actor {name} is not running")))?;
    let timeout = Some(Duration::from_millis(ACTOR_CALL_TIMEOUT_MS_MAX));
    match actor.call(|reply| DiscoveryActorMessage::AddPeer(node_id, addr, reply), timeout).await {
        Ok(CallResult::Success(Ok(()))) => Ok(Json(AddPeerResponse { node_id })),
        Ok(CallResult::Success(Err(full))) => Err(ApiError::invalid(full.to_string())),
        Ok(CallResult::Timeout) => Err(ApiError::unavailable(format!(
            "{name} did not answer within {ACTOR_CALL_TIMEOUT_MS_MAX} ms"
        ))),
        Ok(CallResult::SenderError) | Err(_) => {
            Err(ApiError::unavailable(format!("{name} stopped before answering")))
        }
    }
}

/// An endpoint given as an address object, or as a string (an endpoint id, or address JSON).
pub fn endpoint_from_json(value: serde_json::Value) -> Result<EndpointAddr, ApiError> {
    let invalid = |reason: String| ApiError::invalid(format!("endpoint_addr: {reason}"));
    match value {
        serde_json::Value::String(text) => parse_endpoint(text.trim()).map_err(invalid),
        value @ serde_json::Value::Object(_) => serde_json::from_value(value)
            .map_err(|error| invalid(format!("not an endpoint address: {error}"))),
        other => Err(invalid(format!(
            "must be an endpoint address object or an endpoint id string, not {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn endpoints_parse_from_objects_and_strings() {
        let key = iroh::SecretKey::from_bytes(&[5; 32]);
        let mut addr = EndpointAddr::new(key.public());
        addr.addrs.insert(iroh::TransportAddr::Ip("127.0.0.1:4000".parse().unwrap()));
        let object = serde_json::to_value(&addr).unwrap();
        assert_eq!(endpoint_from_json(object).unwrap(), addr);
        let id = endpoint_from_json(json!(key.public().to_string())).unwrap();
        assert_eq!(id, EndpointAddr::new(key.public()));
        for bad in [json!("not-an-id"), json!(42), json!({"id": "x"}), json!(null)] {
            let error = endpoint_from_json(bad.clone()).unwrap_err();
            assert_eq!(error.kind, ErrorKind::InvalidRequest, "{bad}");
            assert!(error.body.error.starts_with("endpoint_addr: "), "{}", error.body.error);
        }
    }
}
