//! Raft RPC between nodes: an irpc service over the node's iroh endpoint, on one versioned ALPN
//! ([`RAFT_ALPN`]).
//!
//! - `protocol`: the messages ([`RaftRpcProtocol`]) and the error a node sends back
//!   ([`RemoteRaftError`]). openraft's own request and response types travel unchanged.
//! - `connections`: one lazily dialed irpc client per remote endpoint, shared by everything a
//!   node sends; each request is a QUIC stream on that one connection.
//! - `append_stream`: the leader's side of replication as one QUIC stream per session
//!   (openraft's `stream_append`) rather than a stream per request: requests go out on it,
//!   replies come back in order, each within its timeout. Heartbeats, which openraft sends as
//!   one-request sessions, go one at a time on a stream kept open between them.
//! - `factory` and `peer`: the client side. [`IrpcRaftNetworkFactory`] is openraft's
//!   `RaftNetworkFactory`; its [`IrpcRaftNetwork`] per peer implements `RaftNetworkV2`, and the
//!   factory also forwards client requests to the leader (`forward_write`, `forward_read`,
//!   `forward_scan`). A peer's address comes from the peer book, else from the membership.
//! - `server`: [`RaftRpcServer`], the iroh protocol handler. It refuses endpoints its
//!   [`AccessPolicy`] rejects, hands Raft RPCs to the instance in [`SharedRaft`](super::SharedRaft)
//!   and forwarded requests to [`LocalRequests`].
//! - `snapshot`: cutting a snapshot into chunks of at most `SNAPSHOT_CHUNK_BYTES_MAX` and
//!   putting it back together within `SNAPSHOT_BYTES_MAX`, with no I/O.
//!
//! Every call has a deadline (openraft's soft TTL, `CLIENT_REQUEST_TIMEOUT_MS_MAX` for forwarded
//! requests). Failures reach openraft as `Unreachable` (so it backs off) or, for a missing reply,
//! `Network` (so it retries soon). An append-entries batch over `RPC_MESSAGE_BYTES_MAX` is cut
//! and reported as a partial success, and openraft sends the rest next.
//!
//! Caveats:
//! - Votes and pre-votes are one unary request each.
//! - An open replication or heartbeat stream is not checked against the access policy again
//!   after it was opened; a leader removed from the cluster stops leading, which ends its
//!   streams.
//! - `transfer_leader` is not implemented (openraft's default answers `Unreachable`); followers
//!   then wait for the leader lease to run out before electing.
//! - irpc reads a message of up to 16 MiB before anything here can look at it; the server's
//!   per-message bound is irpc's, the sender's is `RPC_MESSAGE_BYTES_MAX`.
//! - The snapshot is held in memory whole on both sides (`SnapshotData` is a `Cursor<Vec<u8>>`),
//!   which `SNAPSHOT_BYTES_MAX` bounds; it is not spooled to disk.
//! - A reply that times out maps to `Network`, not `Timeout`: the latter names this node's id,
//!   which the factory is not given.

mod append_stream;
mod connections;
mod factory;
mod peer;
mod protocol;
mod server;
mod snapshot;

pub use factory::IrpcRaftNetworkFactory;
pub use peer::IrpcRaftNetwork;
pub use protocol::{
    AppendStreamOpen, CLOSE_CODE_MALFORMED, CLOSE_CODE_REFUSED, PreVoteRequest, RAFT_ALPN,
    RaftRpcMessage, RaftRpcProtocol, RemoteRaftError, RemoteRaftResult, SnapshotChunk,
    SnapshotHeader,
};
pub use server::{AccessPolicy, LocalRequests, RaftRpcServer};
pub use snapshot::{
    SnapshotAssembler, SnapshotTransferError, check_snapshot_size, snapshot_chunks,
};
