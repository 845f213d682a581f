//! The one list of routes, the router built from it, and the OpenAPI document of it.
//!
//! [`route_table`] is what the router serves; the OpenAPI document is generated from the
//! handlers' `#[utoipa::path]` attributes and checked against the table in the tests below,
//! so a route cannot be served without being documented, nor documented without being served.

use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{MethodRouter, get, post};
use axum::{Json, Router};
use std::sync::Arc;
use utoipa::OpenApi;

use super::error::ErrorBody;
use super::extract::{method_not_allowed, no_route};
use super::handlers::{cluster, kv, node};
use super::state::HttpState;
use crate::limits::HTTP_BODY_BYTES_MAX;

/// Every route: method, path and handler.
fn routes() -> Vec<(Method, &'static str, MethodRouter<Arc<HttpState>>)> {
    vec![
        (Method::GET, "/health", get(node::health)),
        (Method::GET, "/metrics", get(node::metrics)),
        (Method::GET, "/raft-metrics", get(node::raft_metrics)),
        (Method::GET, "/node-info", get(node::node_info)),
        (Method::GET, "/cluster-ticket", get(node::cluster_ticket)),
        (Method::GET, "/peers", get(node::peers)),
        (Method::POST, "/add-peer", post(node::add_peer)),
        (Method::GET, "/cluster/state", get(cluster::cluster_state)),
        (Method::POST, "/init", post(cluster::init)),
        (Method::POST, "/add-learner", post(cluster::add_learner)),
        (Method::POST, "/change-membership", post(cluster::change_membership)),
        (Method::POST, "/remove-node", post(cluster::remove_node)),
        (Method::POST, "/write", post(kv::write)),
        (Method::POST, "/read", post(kv::read)),
        (Method::POST, "/scan", post(kv::scan)),
        (Method::GET, "/openapi.json", get(openapi)),
    ]
}

/// Every route the node serves, as `(method, path)`.
pub fn route_table() -> Vec<(Method, &'static str)> {
    routes().into_iter().map(|(method, path, _)| (method, path)).collect()
}

/// The node's HTTP API over `state`: every route, JSON answers for unknown paths (404) and
/// wrong methods (405), and bodies bounded by `HTTP_BODY_BYTES_MAX`.
pub fn router(state: HttpState) -> Router {
    let mut router = Router::new();
    for (_, path, handler) in routes() {
        router = router.route(path, handler);
    }
    router
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(HTTP_BODY_BYTES_MAX))
        .with_state(Arc::new(state))
}

/// The OpenAPI document of the node's API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Aspen node API",
        description = "JSON in, JSON out. Errors are `{\"error\": \"...\", \"kind\": \"...\"}`."
    ),
    paths(
        node::health,
        node::metrics,
        node::raft_metrics,
        node::node_info,
        node::cluster_ticket,
        node::peers,
        node::add_peer,
        cluster::cluster_state,
        cluster::init,
        cluster::add_learner,
        cluster::change_membership,
        cluster::remove_node,
        kv::write,
        kv::read,
        kv::scan,
        openapi,
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "node", description = "The node itself: health, metrics, identity, peers"),
        (name = "cluster", description = "Membership (control plane)"),
        (name = "kv", description = "Keys and values (data plane)"),
    )
)]
pub struct ApiDoc;

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "node", responses(
    (status = 200, description = "The OpenAPI 3 document of this API", body = Object),
))]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_document_lists_exactly_the_served_routes() {
        let document = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let mut documented = BTreeSet::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
        let served: BTreeSet<_> =
            route_table().into_iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
        assert_eq!(documented, served);
        assert_eq!(served.len(), route_table().len(), "a route is listed twice");
        // A type alias (`NodeId`) without `value_type` would leak in as a schema named `u64`.
        for name in document["components"]["schemas"].as_object().unwrap().keys() {
            assert!(name.starts_with(char::is_uppercase), "schema {name} is not an API type");
        }
    }
}
