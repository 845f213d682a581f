//! The server side: an iroh protocol handler that checks who calls, then hands each request to
//! the node's current Raft instance or, for forwarded client requests, to [`LocalRequests`].
//!
//! Every request runs in its own task, so a snapshot being received never delays a heartbeat
//! on the same connection. In-flight requests per connection are bounded by QUIC's limit on
//! concurrent streams (100 by default), because a request holds its stream until it replies.

use std::io::{Cursor, ErrorKind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use iroh::EndpointId;
use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler};
use irpc::channel::{mpsc, oneshot};
use irpc::{RpcMessage, WithChannels};
use openraft::error::RaftError;
use openraft::raft::{
    AppendEntriesResponse, SnapshotResponse, StreamAppendError, StreamAppendResult,
};

use super::protocol::{
    AppendStreamOpen, CLOSE_CODE_MALFORMED, CLOSE_CODE_REFUSED, RaftRpcMessage, RaftRpcProtocol,
    RemoteRaftError, RemoteRaftResult, SnapshotChunk, SnapshotHeader,
};
use super::snapshot::SnapshotAssembler;
use crate::api::{
    KeyValueStoreError, ReadRequest, ReadResult, ScanRequest, ScanResult, WriteRequest, WriteResult,
};
use crate::limits::SNAPSHOT_TIMEOUT_MS_MAX;
use crate::raft::{AspenTypeConfig, LogId, SharedRaft, Snapshot};

/// Decides whether an endpoint may call Raft RPC on this node (members and learners of the
/// cluster only). Consulted when a connection arrives and again before every request, so a
/// node removed from the cluster loses an open connection too.
pub type AccessPolicy = Arc<dyn Fn(&EndpointId) -> bool + Send + Sync>;

/// Executes client requests forwarded to this node, as leader, without forwarding them again:
/// a request crosses the network at most once. It also owns the answer while Raft restarts
/// (`Failed`), so the data path has one place that decides it.
#[async_trait::async_trait]
pub trait LocalRequests: Send + Sync + 'static {
    /// Applies a write through this node's Raft.
    async fn write(&self, request: WriteRequest) -> Result<WriteResult, KeyValueStoreError>;
    /// Reads one key linearizably on this node.
    async fn read(&self, request: ReadRequest) -> Result<ReadResult, KeyValueStoreError>;
    /// Scans a prefix linearizably on this node.
    async fn scan(&self, request: ScanRequest) -> Result<ScanResult, KeyValueStoreError>;
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    refused: AtomicU64,
}

/// Serves Raft RPC on [`super::RAFT_ALPN`]; register it on the node's iroh router. Clones
/// share the counters.
#[derive(Clone)]
pub struct RaftRpcServer {
    raft: SharedRaft,
    local: Arc<dyn LocalRequests>,
    access: AccessPolicy,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for RaftRpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftRpcServer")
            .field("raft", &self.raft)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

type Message<T> = WithChannels<T, RaftRpcProtocol>;

impl RaftRpcServer {
    /// A server handing Raft RPCs to the instance in `raft`, forwarded requests to `local`,
    /// and accepting only the endpoints `access` allows.
    pub fn new(raft: SharedRaft, local: Arc<dyn LocalRequests>, access: AccessPolicy) -> Self {
        Self { raft, local, access, counters: Arc::default() }
    }

    /// Connections accepted since the server was made.
    pub fn accepted_connections(&self) -> u64 {
        self.counters.accepted.load(Ordering::Relaxed)
    }

    /// Connections closed because the access policy refused the caller.
    pub fn refused_connections(&self) -> u64 {
        self.counters.refused.load(Ordering::Relaxed)
    }

    /// Closes the connection when `peer` may not call; true when it may.
    fn admit(&self, connection: &Connection, peer: EndpointId) -> bool {
        if (self.access)(&peer) {
            return true;
        }
        self.counters.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%peer, "refused Raft RPC from an endpoint that is not in the cluster");
        connection.close(CLOSE_CODE_REFUSED.into(), b"not a member of this cluster");
        false
    }

    async fn on_message(self, peer: EndpointId, message: RaftRpcMessage) {
        match message {
            RaftRpcMessage::AppendEntries(message) => {
                let WithChannels { inner, tx, .. } = message;
                let result = match self.raft.get() {
                    Some(raft) => raft.append_entries(inner).await.map_err(RemoteRaftError::Raft),
                    None => Err(RemoteRaftError::Restarting),
                };
                if matches!(&result, Ok(response) if from_the_leader(response)) {
                    self.raft.contact().heard();
                }
                reply(peer, "append entries", tx, result).await;
            }
            RaftRpcMessage::AppendStream(message) => self.on_append_stream(peer, message).await,
            RaftRpcMessage::Vote(message) => {
                let WithChannels { inner, tx, .. } = message;
                let result = match self.raft.get() {
                    Some(raft) => raft.vote(inner).await.map_err(RemoteRaftError::Raft),
                    None => Err(RemoteRaftError::Restarting),
                };
                // Granting a vote restarts the election timeout, as in Raft.
                if matches!(&result, Ok(response) if response.vote_granted) {
                    self.raft.contact().heard();
                }
                reply(peer, "vote", tx, result).await;
            }
            RaftRpcMessage::PreVote(message) => {
                let WithChannels { inner, tx, .. } = message;
                let Some(raft) = self.raft.get() else {
                    reply(peer, "pre-vote", tx, Err(RemoteRaftError::Restarting)).await;
                    return;
                };
                let candidate_last_log = inner.0.last_log_id;
                let result = raft.pre_vote(inner.0).await.map_err(RemoteRaftError::Raft);
                let better_here = result.as_ref().is_ok_and(|response| {
                    !response.vote_granted && response.last_log_id > candidate_last_log
                });
                reply(peer, "pre-vote", tx, result).await;
                if better_here {
                    campaign_after_refusing(&raft, peer).await;
                }
            }
            RaftRpcMessage::InstallSnapshot(message) => {
                self.on_install_snapshot(peer, message).await
            }
            RaftRpcMessage::ForwardWrite(message) => {
                let WithChannels { inner, tx, .. } = message;
                reply(peer, "forwarded write", tx, self.local.write(inner).await).await;
            }
            RaftRpcMessage::ForwardRead(message) => {
                let WithChannels { inner, tx, .. } = message;
                reply(peer, "forwarded read", tx, self.local.read(inner).await).await;
            }
            RaftRpcMessage::ForwardScan(message) => {
                let WithChannels { inner, tx, .. } = message;
                reply(peer, "forwarded scan", tx, self.local.scan(inner).await).await;
            }
        }
    }

    /// Hands a leader's requests to Raft one at a time and sends each reply back before it
    /// reads the next. Ends after an error reply (the leader's session ends on one), when the
    /// leader finishes its side, or when the stream breaks. The instance is the one running
    /// when the stream opened: if it is replaced meanwhile, its replies fail as `Fatal` and the
    /// leader opens a new stream to the new instance.
    ///
    /// One at a time rather than through openraft's `stream_append`, which pipelines through a
    /// task of its own: Aspen's leader keeps one request in flight per stream (replication) or
    /// sends one and waits (heartbeats), so that task was one more thread hop per request and
    /// never overlapped anything.
    async fn on_append_stream(&self, peer: EndpointId, message: Message<AppendStreamOpen>) {
        let WithChannels { tx, mut rx, .. } = message;
        let Some(raft) = self.raft.get() else {
            send_stream_reply(peer, &tx, Err(RemoteRaftError::Restarting)).await;
            return;
        };
        loop {
            let request = match rx.recv().await {
                Ok(Some(request)) => request,
                Ok(None) => return,
                Err(error) => {
                    let error = format!("{error:#}");
                    tracing::debug!(%peer, %error, "append stream from peer broke");
                    return;
                }
            };
            let prev = request.prev_log_id;
            let last = request.entries.last().map(|entry| entry.log_id).or(prev);
            let reply = match raft.append_entries(request).await {
                Ok(response) => {
                    if from_the_leader(&response) {
                        self.raft.contact().heard();
                    }
                    stream_result(response, prev, last)
                }
                Err(error) => Err(RemoteRaftError::Raft(error)),
            };
            let last_reply = !matches!(reply, Ok(Ok(_)));
            if !send_stream_reply(peer, &tx, reply).await || last_reply {
                return;
            }
        }
    }

    async fn on_install_snapshot(&self, peer: EndpointId, message: Message<SnapshotHeader>) {
        let WithChannels { inner: header, tx, rx, .. } = message;
        let result = self.receive_and_install(header, rx).await;
        if let Err(error) = &result {
            tracing::warn!(%peer, %error, "snapshot from peer not installed");
        }
        reply(peer, "install snapshot", tx, result).await;
    }

    async fn receive_and_install(
        &self,
        header: SnapshotHeader,
        mut chunks: mpsc::Receiver<SnapshotChunk>,
    ) -> RemoteRaftResult<SnapshotResponse<AspenTypeConfig>> {
        // Refuse before the transfer rather than after it, not to waste the bandwidth.
        if self.raft.get().is_none() {
            return Err(RemoteRaftError::Restarting);
        }
        let refused = |reason: String| RemoteRaftError::Refused { reason };
        let mut assembler =
            SnapshotAssembler::new(header.total_bytes).map_err(|e| refused(e.to_string()))?;
        let receive = async {
            while let Some(SnapshotChunk(chunk)) = chunks
                .recv()
                .await
                .map_err(|e| refused(format!("snapshot stream failed: {e:#}")))?
            {
                assembler.push(&chunk).map_err(|e| refused(e.to_string()))?;
            }
            Ok(())
        };
        let limit = Duration::from_millis(SNAPSHOT_TIMEOUT_MS_MAX);
        tokio::time::timeout(limit, receive).await.map_err(|_| {
            refused(format!("snapshot not received within {SNAPSHOT_TIMEOUT_MS_MAX} ms"))
        })??;
        let data = assembler.finish().map_err(|e| refused(e.to_string()))?;
        // Raft may have restarted during the transfer: install into the instance running now.
        let raft = self.raft.get().ok_or(RemoteRaftError::Restarting)?;
        let snapshot = Snapshot { meta: header.meta, snapshot: Cursor::new(data) };
        raft.install_full_snapshot(header.vote, snapshot)
            .await
            .map_err(|fatal| RemoteRaftError::Raft(RaftError::Fatal(fatal)))
    }
}

/// Starts a Pre-Vote round on this node after it refused a peer's pre-vote because its own log
/// is longer.
///
/// The peer timed out on the leader; if this node's leader lease has run out too, the leader is
/// most likely gone, and this node, with the longer log, is the one that can win. Waiting for
/// its own election timer would cost on average a third of the timeout range (the failover
/// benchmark's slow half: the survivor whose timer fires first often has the shorter log).
/// Safe to ask for at any time: openraft refuses the round locally, sending nothing, while this
/// node's leader lease holds (a live leader still heartbeats it), and Pre-Vote never raises a
/// term that a quorum would not grant; a leader ignores it.
async fn campaign_after_refusing(raft: &crate::raft::AspenRaft, peer: EndpointId) {
    if let Err(fatal) = raft.trigger().elect(true).await {
        tracing::debug!(%peer, %fatal, "no Pre-Vote round after refusing a peer's");
    }
}

async fn reply<T: RpcMessage>(peer: EndpointId, what: &str, tx: oneshot::Sender<T>, value: T) {
    // The caller gave up (timeout, cancelled replication) or the connection broke; openraft on
    // the other side retries, so there is nothing to do but note it.
    if let Err(error) = tx.send(value).await {
        tracing::debug!(%peer, what, error = %format!("{error:#}"), "Raft RPC reply not delivered");
    }
}

/// Whether an AppendEntries answered so came from this node's leader: every answer but "your
/// vote is stale" (a conflict too: the leader is alive, only the logs differ). Such a request
/// restarts the election timeout (`raft::election`).
fn from_the_leader(response: &AppendEntriesResponse<AspenTypeConfig>) -> bool {
    !matches!(response, AppendEntriesResponse::HigherVote(_))
}

/// A one-request answer in an append stream's terms. openraft's unary answer says only
/// "success", and a success matches everything the request carried: its last entry, or its
/// `prev_log_id` when it carried none (what openraft's own sequential `stream_append` does).
fn stream_result(
    response: AppendEntriesResponse<AspenTypeConfig>,
    prev: Option<LogId>,
    last: Option<LogId>,
) -> RemoteRaftResult<StreamAppendResult<AspenTypeConfig>> {
    match response {
        AppendEntriesResponse::Success => Ok(Ok(last)),
        AppendEntriesResponse::PartialSuccess(matching) => Ok(Ok(matching)),
        AppendEntriesResponse::HigherVote(vote) => Ok(Err(StreamAppendError::HigherVote(vote))),
        AppendEntriesResponse::Conflict => match prev {
            Some(prev) => Ok(Err(StreamAppendError::Conflict(prev))),
            // An empty prev_log_id matches every log; openraft never answers it with a conflict.
            None => Err(RemoteRaftError::Refused {
                reason: "a conflict at the start of the log".into(),
            }),
        },
    }
}

/// Sends one reply of an append stream; false when the leader is gone.
async fn send_stream_reply<T: RpcMessage>(
    peer: EndpointId,
    tx: &mpsc::Sender<T>,
    value: T,
) -> bool {
    match tx.send(value).await {
        Ok(()) => true,
        Err(error) => {
            let error = format!("{error:#}");
            tracing::debug!(%peer, %error, "append stream reply not delivered");
            false
        }
    }
}

impl ProtocolHandler for RaftRpcServer {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let peer = connection.remote_id();
        if !self.admit(&connection, peer) {
            return Ok(());
        }
        self.counters.accepted.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%peer, "Raft RPC connection accepted");
        loop {
            let message = match irpc_iroh::read_request::<RaftRpcProtocol>(&connection).await {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(error) if error.kind() == ErrorKind::InvalidData => {
                    tracing::warn!(%peer, %error, "malformed Raft RPC request; closing the connection");
                    connection.close(CLOSE_CODE_MALFORMED.into(), b"malformed request");
                    break;
                }
                Err(error) => {
                    tracing::debug!(%peer, %error, "Raft RPC connection ended");
                    break;
                }
            };
            if !self.admit(&connection, peer) {
                break;
            }
            tokio::spawn(self.clone().on_message(peer, message));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::Vote;

    fn log_id(index: u64) -> LogId {
        LogId::new(1.into(), index)
    }

    #[test]
    fn a_unary_answer_becomes_the_stream_answer_openraft_expects() {
        let (prev, last) = (Some(log_id(3)), Some(log_id(5)));
        assert_eq!(stream_result(AppendEntriesResponse::Success, prev, last), Ok(Ok(last)));
        let partial = AppendEntriesResponse::PartialSuccess(Some(log_id(4)));
        assert_eq!(stream_result(partial, prev, last), Ok(Ok(Some(log_id(4)))));
        assert_eq!(
            stream_result(AppendEntriesResponse::Conflict, prev, last),
            Ok(Err(StreamAppendError::Conflict(log_id(3))))
        );
        let higher = Vote::new_committed(2, 2);
        assert_eq!(
            stream_result(AppendEntriesResponse::HigherVote(higher), prev, last),
            Ok(Err(StreamAppendError::HigherVote(higher)))
        );
    }

    #[test]
    fn a_conflict_without_a_previous_entry_is_an_error_not_a_panic() {
        let result = stream_result(AppendEntriesResponse::Conflict, None, None);
        assert!(matches!(result, Err(RemoteRaftError::Refused { .. })), "{result:?}");
    }
}
