//! The node's HTTP API: JSON in, JSON out, on `config.http_addr` (loopback by default).
//!
//! The routes (see [`route_table`] and `GET /openapi.json`) are thin: each calls the node's
//! [`crate::api::ClusterController`] or [`crate::api::KeyValueStore`] client, or reads the
//! node's state, and encodes the answer. The pieces:
//!
//! - `routes`: the one list of routes, the router, and the OpenAPI document ([`ApiDoc`]).
//! - `handlers`: the handlers, by topic (node, cluster, kv).
//! - `error`: every failure as `{"error": "<sentence>", "kind": "<kind>"}` with a status that
//!   says how to react ([`ApiError`]); the API's errors map to it with plain `From`s.
//! - `extract`: the JSON body extractor (400 for bad JSON, 413 over `HTTP_BODY_BYTES_MAX`,
//!   415 when not declared JSON) and the JSON 404 and 405 answers.
//! - `metrics`: the Prometheus text rendering of `GET /metrics`.
//! - `schema`: the JSON shapes of the API's types for the OpenAPI document, tested against them.
//! - `state`, `server`, `actor`: what handlers share ([`HttpState`]), the listener
//!   ([`HttpServerSlot`]), and the [`HttpActor`] that starts it under the node's supervisor.
//! - `connections`: the listener's accept loop and connection tasks, with the limits they
//!   enforce ([`HttpServerLimits`]).
//!
//! Caveats:
//! - No TLS and no authentication: the API trusts whoever can reach it, which is why it binds
//!   loopback unless told otherwise. POST bodies must be declared JSON, so a web page cannot
//!   make a browser post to it; a page could still read GET answers through DNS rebinding, as
//!   the `Host` header is not checked.
//! - HTTP/1.1 and cleartext HTTP/2 (prior knowledge) only: no TLS, no ALPN, no `Upgrade: h2c`.
//!   No request timeouts of its own beyond the API's (every API call is bounded) and a
//!   header-read timeout; `server` lists the connection, header and stream limits and why.
//! - Control-plane calls are not forwarded: on a follower they answer 503 `not_leader` with the
//!   leader's id. Data-plane calls are forwarded by the KV client.

mod actor;
mod connections;
mod error;
mod extract;
mod handlers;
mod metrics;
mod routes;
mod schema;
mod server;
mod state;

pub use actor::{HttpActor, HttpActorArgs, HttpActorMessage};
pub use connections::{HttpConnectionCounters, HttpConnectionCounts, HttpServerLimits};
pub use error::{ApiError, ErrorBody, ErrorKind};
pub use handlers::node::{AddPeerRequest, AddPeerResponse, Health, NodeInfo, TicketResponse};
pub use metrics::{MetricsSnapshot, RaftGauges, render as render_metrics};
pub use routes::{ApiDoc, route_table, router};
pub use server::HttpServerSlot;
pub use state::HttpState;
