//! Control-plane routes: membership through the node's [`ClusterController`].

use axum::Json;
use axum::extract::State;
use std::sync::Arc;

use crate::api::{
    AddLearnerRequest, ChangeMembershipRequest, ClusterController, ClusterState, InitRequest,
    RemoveNodeRequest,
};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::JsonBody;
use crate::http::schema;
use crate::http::state::HttpState;

/// The membership as this node has applied it.
#[utoipa::path(get, path = "/cluster/state", tag = "cluster", responses(
    (status = 200, description = "The replicated membership", body = schema::ClusterState),
    (status = 412, description = "The cluster is not initialized", body = ErrorBody),
    (status = 503, description = "The node cannot answer now", body = ErrorBody),
))]
pub async fn cluster_state(
    State(state): State<Arc<HttpState>>,
) -> Result<Json<ClusterState>, ApiError> {
    state.ensure_running()?;
    Ok(Json(state.control().current_state().await?))
}

/// Create the cluster with its first voters.
#[utoipa::path(post, path = "/init", tag = "cluster", request_body = schema::InitRequest,
    responses(
        (status = 200, description = "The new membership", body = schema::ClusterState),
        (status = 400, description = "Bad request, or already initialized", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 503, description = "The node cannot answer now", body = ErrorBody),
    )
)]
pub async fn init(
    State(state): State<Arc<HttpState>>,
    JsonBody(request): JsonBody<InitRequest>,
) -> Result<Json<ClusterState>, ApiError> {
    state.ensure_running()?;
    Ok(Json(state.control().init(request).await?))
}

/// Add a learner and wait until it has caught up.
#[utoipa::path(post, path = "/add-learner", tag = "cluster",
    request_body = schema::AddLearnerRequest,
    responses(
        (status = 200, description = "The new membership", body = schema::ClusterState),
        (status = 400, description = "Bad request (for example no address for the node)",
            body = ErrorBody),
        (status = 412, description = "The cluster is not initialized", body = ErrorBody),
        (status = 503, description = "Not the leader, or the node cannot answer now",
            body = ErrorBody),
    )
)]
pub async fn add_learner(
    State(state): State<Arc<HttpState>>,
    JsonBody(request): JsonBody<AddLearnerRequest>,
) -> Result<Json<ClusterState>, ApiError> {
    state.ensure_running()?;
    Ok(Json(state.control().add_learner(request).await?))
}

/// Replace the voters.
#[utoipa::path(post, path = "/change-membership", tag = "cluster",
    request_body = schema::ChangeMembershipRequest,
    responses(
        (status = 200, description = "The new membership", body = schema::ClusterState),
        (status = 400, description = "Bad request (for example an unknown node id)",
            body = ErrorBody),
        (status = 412, description = "The cluster is not initialized", body = ErrorBody),
        (status = 503, description = "Not the leader, or the node cannot answer now",
            body = ErrorBody),
    )
)]
pub async fn change_membership(
    State(state): State<Arc<HttpState>>,
    JsonBody(request): JsonBody<ChangeMembershipRequest>,
) -> Result<Json<ClusterState>, ApiError> {
    state.ensure_running()?;
    Ok(Json(state.control().change_membership(request).await?))
}

/// Remove a node from the membership entirely (a voter is not kept as a learner).
#[utoipa::path(post, path = "/remove-node", tag = "cluster",
    request_body = schema::RemoveNodeRequest,
    responses(
        (status = 200, description = "The new membership", body = schema::ClusterState),
        (status = 400, description = "Bad request (an unknown node, or the last voter)",
            body = ErrorBody),
        (status = 412, description = "The cluster is not initialized", body = ErrorBody),
        (status = 503, description = "Not the leader, or the node cannot answer now",
            body = ErrorBody),
    )
)]
pub async fn remove_node(
    State(state): State<Arc<HttpState>>,
    JsonBody(request): JsonBody<RemoveNodeRequest>,
) -> Result<Json<ClusterState>, ApiError> {
    state.ensure_running()?;
    Ok(Json(state.control().remove_node(request).await?))
}
