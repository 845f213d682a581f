//! How every failure becomes an HTTP answer: one JSON shape, `{"error": "<sentence>", "kind":
//! "<kind>"}`, with a status that tells the caller how to react.
//!
//! The mapping from the API's errors to statuses is a pair of plain `From` conversions, so that
//! it is tested without a server. Extra fields appear only where a caller can use them:
//! `current` for a failed compare-and-swap, `leader` (and `leader_addr` when known) for
//! `not_leader`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::api::{ControlPlaneError, KeyValueStoreError, NodeId};

/// What kind of failure an error is; the `kind` field of every error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400: the request is malformed or breaks a limit; retrying it unchanged will not help.
    InvalidRequest,
    /// 404: the key does not exist.
    NotFound,
    /// 404: no route has this path.
    NoRoute,
    /// 405: the path exists, but not for this method.
    MethodNotAllowed,
    /// 409: a compare-and-swap found another value.
    CasFailed,
    /// 412: the cluster is not initialized (or, for `/raft-metrics`, no Raft runs here).
    NotInitialized,
    /// 413: the body is larger than `HTTP_BODY_BYTES_MAX`.
    PayloadTooLarge,
    /// 415: the body is not declared as JSON.
    UnsupportedMediaType,
    /// 503: this node is not the leader and could not forward; ask the leader.
    NotLeader,
    /// 503: the node cannot serve now (no quorum, timeout, restarting, stopped); retry later.
    Unavailable,
}

impl ErrorKind {
    /// The HTTP status of this kind.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound | ErrorKind::NoRoute => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::CasFailed => StatusCode::CONFLICT,
            ErrorKind::NotInitialized => StatusCode::PRECONDITION_FAILED,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::NotLeader | ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The kind as it appears in the body.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::NotFound => "not_found",
            ErrorKind::NoRoute => "no_route",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::CasFailed => "cas_failed",
            ErrorKind::NotInitialized => "not_initialized",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::NotLeader => "not_leader",
            ErrorKind::Unavailable => "unavailable",
        }
    }
}

/// The JSON body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, as a sentence for a person.
    pub error: String,
    /// The kind, for programs: `invalid_request`, `not_found`, `no_route`,
    /// `method_not_allowed`, `cas_failed`, `not_initialized`, `payload_too_large`,
    /// `unsupported_media_type`, `not_leader`, `unavailable`.
    pub kind: String,
    /// For `cas_failed`: the key's current value (`null`: absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub current: Option<Option<String>>,
    /// For `not_leader`: the leader's node id (`null`: unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u64>)]
    pub leader: Option<Option<NodeId>>,
    /// For `not_leader`: the leader's API address, when the membership records one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_addr: Option<String>,
}

/// An error answer: a kind and a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The kind, which decides the status.
    pub kind: ErrorKind,
    /// The body sent.
    pub body: ErrorBody,
}

impl ApiError {
    /// An error of `kind` saying `error`.
    pub fn new(kind: ErrorKind, error: impl Into<String>) -> Self {
        let body = ErrorBody {
            error: error.into(),
            kind: kind.as_str().into(),
            current: None,
            leader: None,
            leader_addr: None,
        };
        Self { kind, body }
    }

    /// A 400 `invalid_request` saying `error`.
    pub fn invalid(error: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, error)
    }

    /// A 503 `unavailable` saying `error`.
    pub fn unavailable(error: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, error)
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    fn not_leader(error: String, leader: Option<NodeId>, leader_addr: Option<String>) -> Self {
        let mut api = Self::new(ErrorKind::NotLeader, error);
        api.body.leader = Some(leader);
        api.body.leader_addr = leader_addr;
        api
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(self.body)).into_response()
    }
}

impl From<KeyValueStoreError> for ApiError {
    fn from(error: KeyValueStoreError) -> Self {
        let sentence = error.to_string();
        match error {
            KeyValueStoreError::NotFound { .. } => Self::new(ErrorKind::NotFound, sentence),
            KeyValueStoreError::CompareAndSwapFailed { current, .. } => {
                let mut api = Self::new(ErrorKind::CasFailed, sentence);
                api.body.current = Some(current);
                api
            }
            KeyValueStoreError::InvalidRequest { reason } => Self::invalid(reason),
            KeyValueStoreError::NotInitialized => Self::new(ErrorKind::NotInitialized, sentence),
            KeyValueStoreError::NotLeader { leader, leader_addr } => {
                Self::not_leader(sentence, leader, leader_addr)
            }
            KeyValueStoreError::Failed { reason } => Self::unavailable(reason),
        }
    }
}

impl From<ControlPlaneError> for ApiError {
    fn from(error: ControlPlaneError) -> Self {
        let sentence = error.to_string();
        match error {
            ControlPlaneError::InvalidRequest { reason } => Self::invalid(reason),
            ControlPlaneError::NotInitialized => Self::new(ErrorKind::NotInitialized, sentence),
            ControlPlaneError::NotLeader { leader, leader_addr } => {
                Self::not_leader(sentence, leader, leader_addr)
            }
            ControlPlaneError::Failed { reason } => Self::unavailable(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(error: impl Into<ApiError>) -> (u16, serde_json::Value) {
        let api = error.into();
        (api.status().as_u16(), serde_json::to_value(&api.body).unwrap())
    }

    #[test]
    fn key_value_errors_map_to_statuses_and_kinds() {
        let cases = [
            (KeyValueStoreError::NotFound { key: "k".into() }, 404, "not_found"),
            (
                KeyValueStoreError::CompareAndSwapFailed { key: "k".into(), current: None },
                409,
                "cas_failed",
            ),
            (KeyValueStoreError::InvalidRequest { reason: "bad".into() }, 400, "invalid_request"),
            (KeyValueStoreError::NotInitialized, 412, "not_initialized"),
            (KeyValueStoreError::NotLeader { leader: None, leader_addr: None }, 503, "not_leader"),
            (KeyValueStoreError::Failed { reason: "timeout".into() }, 503, "unavailable"),
        ];
        for (error, status, kind) in cases {
            let (got_status, body) = answer(error.clone());
            assert_eq!((got_status, body["kind"].as_str()), (status, Some(kind)), "{error:?}");
            assert!(!body["error"].as_str().unwrap().is_empty());
        }
    }

    #[test]
    fn control_errors_map_to_statuses_and_kinds() {
        let cases = [
            (ControlPlaneError::InvalidRequest { reason: "bad".into() }, 400, "invalid_request"),
            (ControlPlaneError::NotInitialized, 412, "not_initialized"),
            (
                ControlPlaneError::NotLeader { leader: Some(2), leader_addr: None },
                503,
                "not_leader",
            ),
            (ControlPlaneError::Failed { reason: "stopped".into() }, 503, "unavailable"),
        ];
        for (error, status, kind) in cases {
            let (got_status, body) = answer(error.clone());
            assert_eq!((got_status, body["kind"].as_str()), (status, Some(kind)), "{error:?}");
        }
    }

    #[test]
    fn extra_fields_appear_only_where_they_mean_something() {
        let (_, cas_absent) =
            answer(KeyValueStoreError::CompareAndSwapFailed { key: "k".into(), current: None });
        assert!(cas_absent["current"].is_null() && cas_absent.get("current").is_some());
        let (_, cas) = answer(KeyValueStoreError::CompareAndSwapFailed {
            key: "k".into(),
            current: Some("v".into()),
        });
        assert_eq!(cas["current"], "v");
        let (_, leader) = answer(ControlPlaneError::NotLeader {
            leader: Some(3),
            leader_addr: Some("127.0.0.1:8083".into()),
        });
        assert_eq!(
            (leader["leader"].as_u64(), leader["leader_addr"].as_str()),
            (Some(3), Some("127.0.0.1:8083"))
        );
        let (_, unknown) =
            answer(KeyValueStoreError::NotLeader { leader: None, leader_addr: None });
        assert!(unknown.get("leader").is_some_and(|l| l.is_null()));
        assert!(unknown.get("leader_addr").is_none());
        let (_, plain) = answer(KeyValueStoreError::NotFound { key: "k".into() });
        let keys: Vec<_> = plain.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["error", "kind"]);
    }
}
