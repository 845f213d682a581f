//! The wire protocol of Raft RPC: one irpc service, postcard-encoded over QUIC streams.
//!
//! Each request opens its own bidirectional QUIC stream on the one connection kept per peer,
//! so a slow snapshot never blocks a heartbeat. openraft's own request, response and error
//! types travel as they are (they derive serde), which keeps this file to the framing.

use irpc::channel::{mpsc, oneshot};
use irpc::rpc_requests;
use openraft::error::RaftError;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult, VoteRequest,
    VoteResponse,
};
use serde::{Deserialize, Serialize};

use crate::api::{
    KeyValueStoreError, ReadRequest, ReadResult, ScanRequest, ScanResult, WriteRequest, WriteResult,
};
use crate::raft::{AspenTypeConfig, SnapshotMeta, Vote};

/// The ALPN of Aspen's Raft RPC protocol; the version suffix changes with any incompatible
/// change of the messages below.
pub const RAFT_ALPN: &[u8] = b"aspen/raft/3";

/// QUIC application error code with which the server closes a connection from an endpoint its
/// access policy refuses.
pub const CLOSE_CODE_REFUSED: u32 = 403;

/// QUIC application error code with which the server closes a connection that sent a request
/// it could not decode.
pub const CLOSE_CODE_MALFORMED: u32 = 400;

/// Why a Raft RPC failed on the receiving node, as sent back over the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum RemoteRaftError {
    /// The node's Raft instance is being (re)started: there is nothing to hand the request to.
    /// The caller treats the node as unreachable and backs off.
    #[error("node is restarting")]
    Restarting,
    /// The node's Raft instance failed (stopped, panicked, storage error).
    #[error("remote Raft failed: {0}")]
    Raft(RaftError<AspenTypeConfig>),
    /// The request broke a limit or the protocol (for example an oversized or truncated
    /// snapshot); sending it again unchanged will fail again.
    #[error("request refused: {reason}")]
    Refused {
        /// What was wrong with it.
        reason: String,
    },
}

/// The result of a Raft RPC on the receiving node.
pub type RemoteRaftResult<T> = Result<T, RemoteRaftError>;

/// Asks the receiver whether it would grant a vote, without changing its term (Pre-Vote). A
/// wrapper because irpc needs one request type per variant and `Vote` already uses
/// `VoteRequest`.
#[derive(Debug, Serialize, Deserialize)]
pub struct PreVoteRequest(pub VoteRequest<AspenTypeConfig>);

/// Opens an AppendEntries stream (openraft's `stream_append`): the leader's requests follow on
/// the stream, and the follower sends one reply per request back, in order. It ends
/// after the first error reply or when the leader finishes its side.
#[derive(Debug, Serialize, Deserialize)]
pub struct AppendStreamOpen;

/// The first message of a snapshot transfer; the chunks follow on the same stream.
#[derive(Debug, Serialize, Deserialize)]
pub struct SnapshotHeader {
    /// The leader's vote, checked by the receiver before it installs the snapshot.
    pub vote: Vote,
    /// What the snapshot covers.
    pub meta: SnapshotMeta,
    /// The exact number of snapshot bytes that follow. A stream that ends early (a leader that
    /// gave up mid-transfer finishes its QUIC stream too) is told apart from a complete one by
    /// this count.
    pub total_bytes: u64,
}

/// Up to `SNAPSHOT_CHUNK_BYTES_MAX` bytes of snapshot data, in order.
#[derive(Debug, Serialize, Deserialize)]
pub struct SnapshotChunk(pub Vec<u8>);

/// Every request one node sends another on [`RAFT_ALPN`], with the reply each one gets.
#[rpc_requests(message = RaftRpcMessage)]
#[derive(Debug, Serialize, Deserialize)]
pub enum RaftRpcProtocol {
    /// Replicate log entries in one request. Aspen's leader sends `AppendStream` instead; a
    /// node still answers this (openraft's `append_entries`).
    #[rpc(tx = oneshot::Sender<RemoteRaftResult<AppendEntriesResponse<AspenTypeConfig>>>)]
    AppendEntries(AppendEntriesRequest<AspenTypeConfig>),
    /// Replicate log entries on one stream for a whole replication session, or send the
    /// leader's heartbeats one after another on a stream kept open between them.
    #[rpc(
        tx = mpsc::Sender<RemoteRaftResult<StreamAppendResult<AspenTypeConfig>>>,
        rx = mpsc::Receiver<AppendEntriesRequest<AspenTypeConfig>>
    )]
    AppendStream(AppendStreamOpen),
    /// Ask for a vote in an election.
    #[rpc(tx = oneshot::Sender<RemoteRaftResult<VoteResponse<AspenTypeConfig>>>)]
    Vote(VoteRequest<AspenTypeConfig>),
    /// Ask whether a vote would be granted (only sent when Pre-Vote is enabled).
    #[rpc(tx = oneshot::Sender<RemoteRaftResult<VoteResponse<AspenTypeConfig>>>)]
    PreVote(PreVoteRequest),
    /// Send a whole snapshot: the header, then the data as a stream of chunks.
    #[rpc(
        tx = oneshot::Sender<RemoteRaftResult<SnapshotResponse<AspenTypeConfig>>>,
        rx = mpsc::Receiver<SnapshotChunk>
    )]
    InstallSnapshot(SnapshotHeader),
    /// A client write forwarded to the leader.
    #[rpc(tx = oneshot::Sender<Result<WriteResult, KeyValueStoreError>>)]
    ForwardWrite(WriteRequest),
    /// A linearizable read forwarded to the leader.
    #[rpc(tx = oneshot::Sender<Result<ReadResult, KeyValueStoreError>>)]
    ForwardRead(ReadRequest),
    /// A linearizable scan forwarded to the leader.
    #[rpc(tx = oneshot::Sender<Result<ScanResult, KeyValueStoreError>>)]
    ForwardScan(ScanRequest),
}
