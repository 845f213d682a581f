//! Data-plane routes: writes, reads and scans through the node's [`KeyValueStore`]. A request
//! to a follower is forwarded to the leader by the KV client, not by HTTP.

use axum::Json;
use axum::extract::State;
use std::sync::Arc;

use crate::api::{
    KeyValueStore, ReadRequest, ReadResult, ScanRequest, ScanResult, WriteRequest, WriteResult,
};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::JsonBody;
use crate::http::schema;
use crate::http::state::HttpState;

/// Apply a write through Raft.
#[utoipa::path(post, path = "/write", tag = "kv", request_body = schema::WriteRequest,
    responses(
        (status = 200, description = "Committed and applied", body = schema::WriteResult),
        (status = 400, description = "Malformed, or over a limit", body = ErrorBody),
        (status = 409, description = "Compare-and-swap mismatch; `current` holds the value",
            body = ErrorBody),
        (status = 412, description = "The cluster is not initialized", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 503, description = "No leader reachable, timeout, or stopped; the write \
            may or may not have been applied", body = ErrorBody),
    )
)]
pub async fn write(
    State(state): State<Arc<HttpState>>,
    JsonBody(request): JsonBody<WriteRequest>,
) -> Result<Json<WriteResult>, ApiError> {
    state.ensure_running()?;
    Ok(Json(state.kv().write(request).await?))
}

/// Read one key: linearizably (through the leader), or with `"consistency": "serializable"`
/// from this node's own applied state, possibly stale.
#[utoipa::path(post, path = "/read", tag = "kv", request_body = schema::ReadRequest,
    responses(
        (status = 200, description = "The value", body = schema::ReadResult),
        (status = 400, description = "Malformed, or over a limit", body = ErrorBody),
        (status = 404, description = "The key does not exist", body = ErrorBody),
        (status = 412, description = "The cluster is not initialized", body = ErrorBody),
        (status = 503, description = "No leader reachable, timeout, or stopped",
            body = ErrorBody),
    )
)]
pub async fn read(
    State(state): State<Arc<HttpState>>,
    JsonBody(request): JsonBody<ReadRequest>,
) -> Result<Json<ReadResult>, ApiError> {
    state.ensure_running()?;
    Ok(Json(state.kv().read(request).await?))
}

/// List the keys with a prefix, linearizably, up to a limit.
#[utoipa::path(post, path = "/scan", tag = "kv", request_body = schema::ScanRequest,
    responses(
        (status = 200, description = "The matching entries", body = schema::ScanResult),
        (status = 400, description = "Malformed, or over a limit", body = ErrorBody),
        (status = 412, description = "The cluster is not initialized", body = ErrorBody),
        (status = 503, description = "No leader reachable, timeout, or stopped",
            body = ErrorBody),
    )
)]
pub async fn scan(
    State(state): State<Arc<HttpState>>,
    JsonBody(request): JsonBody<ScanRequest>,
) -> Result<Json<ScanResult>, ApiError> {
    state.ensure_running()?;
    Ok(Json(state.kv().scan(request).await?))
}
