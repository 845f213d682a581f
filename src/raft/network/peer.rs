//! The Raft network to one peer: openraft's `RaftNetworkV2` over the shared connection cache.
//!
//! Errors are mapped for openraft's retry logic. Anything that means "the peer cannot serve
//! this now" (no address, no connection, a broken stream, a peer whose Raft is restarting or
//! failed, a refused request) is `Unreachable`, so openraft backs off. A reply that does not
//! come back in time is `Network`, which openraft retries a few times at once before backing
//! off; `Timeout` would fit better but must name this node's id, which the factory does not
//! know.

use std::future::Future;
use std::time::Duration;

use iroh::EndpointAddr;
use irpc::Channels;
use irpc::channel::oneshot;
use openraft::base::{BoxFuture, BoxStream};
use openraft::entry::RaftEntry;
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult, VoteRequest,
    VoteResponse,
};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::append_stream::{self, KeptStream};
use super::connections::{CallError, Eviction};
use super::factory::IrpcRaftNetworkFactory;
use super::protocol::{
    AppendStreamOpen, PreVoteRequest, RaftRpcProtocol, RemoteRaftError, RemoteRaftResult,
    SnapshotChunk, SnapshotHeader,
};
use super::snapshot::snapshot_chunks;
use crate::api::NodeId;
use crate::limits::{
    APPEND_STREAM_IN_FLIGHT_MAX, RPC_MESSAGE_BYTES_MAX, RPC_TIMEOUT_MS_DEFAULT,
    SNAPSHOT_TIMEOUT_MS_MAX,
};
use crate::raft::{AspenTypeConfig, LogId, RaftMemberInfo, Snapshot, SnapshotData, Vote};

type C = AspenTypeConfig;

/// The replies of an AppendEntries session, in openraft's terms.
type AppendReplies<'s> = BoxStream<'s, Result<StreamAppendResult<C>, RPCError<C>>>;

/// The Raft network to one peer, made by [`IrpcRaftNetworkFactory`].
#[derive(Debug)]
pub struct IrpcRaftNetwork {
    target: NodeId,
    node: RaftMemberInfo,
    factory: IrpcRaftNetworkFactory,
    /// The stream heartbeats go on, kept open between them; `None` until the first one and
    /// after a failed one.
    heartbeats: Option<HeartbeatStream>,
}

/// A [`KeptStream`] with the address it was opened to and the connection's eviction.
struct HeartbeatStream {
    addr: EndpointAddr,
    stream: KeptStream,
    eviction: Eviction,
}

impl std::fmt::Debug for HeartbeatStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeartbeatStream").field("addr", &self.addr).finish_non_exhaustive()
    }
}

/// What went wrong with a call: the exchange itself, or the peer's answer.
enum Fault {
    Call(CallError),
    Remote(RemoteRaftError),
}

/// Why a Raft RPC failed, before it is fitted to the error type of the openraft method.
#[derive(Debug)]
pub(super) enum Failure {
    Unreachable(String),
    TimedOut(String),
}

impl From<Failure> for RPCError<C> {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Unreachable(reason) => RPCError::Unreachable(Unreachable::from_string(reason)),
            Failure::TimedOut(reason) => RPCError::Network(NetworkError::from_string(reason)),
        }
    }
}

impl From<Failure> for StreamingError<C> {
    fn from(failure: Failure) -> Self {
        StreamingError::from(RPCError::from(failure))
    }
}

impl IrpcRaftNetwork {
    pub(crate) fn new(
        target: NodeId,
        node: RaftMemberInfo,
        factory: IrpcRaftNetworkFactory,
    ) -> Self {
        Self { target, node, factory, heartbeats: None }
    }

    /// Resolved on every call, so that a peer added or moved after this network was made is
    /// reached at its new address.
    fn address(&self) -> Result<EndpointAddr, Failure> {
        self.factory.resolve(self.target, Some(&self.node)).ok_or_else(|| {
            Failure::Unreachable(format!("no address known for node {}", self.target))
        })
    }

    async fn call<Req, Res>(
        &self,
        request: Req,
        timeout: Duration,
        what: &str,
    ) -> Result<Res, Failure>
    where
        Req: Channels<RaftRpcProtocol, Tx = oneshot::Sender<RemoteRaftResult<Res>>>,
        RaftRpcProtocol: From<Req>,
        Res: DeserializeOwned + Send + 'static,
    {
        let addr = self.address()?;
        let result = self.factory.connections().call(&addr, request, timeout).await;
        self.outcome(&addr, what, result)
    }

    /// Sends one AppendEntries (openraft's heartbeat) on the stream kept for heartbeats,
    /// opening it first when there is none (see [`KeptStream`]).
    ///
    /// The follower ends a stream after an error reply and when its Raft restarts, so a kept
    /// stream may be closed by the time the next heartbeat goes; a transport failure on a kept
    /// stream is therefore tried once more on a fresh one (an AppendEntries may be repeated)
    /// before the connection is dropped from the cache.
    async fn heartbeat(
        &mut self,
        request: AppendEntriesRequest<C>,
        timeout: Duration,
    ) -> Result<StreamAppendResult<C>, Failure> {
        let deadline = Instant::now() + timeout;
        let addr = self.address()?;
        let kept = self.heartbeats.take().filter(|kept| kept.addr == addr);
        // A copy for the second try, which only a kept stream may need.
        let retry = kept.as_ref().map(|_| request.clone());
        let (stream, eviction) = match kept {
            Some(HeartbeatStream { stream, eviction, .. }) => (stream, eviction),
            None => self.open_kept_stream(&addr, deadline).await?,
        };
        let mut attempt = (stream.exchange(request, deadline).await, eviction);
        if let (Err(CallError::Transport(_)), Some(request)) = (&attempt.0, retry) {
            let (stream, eviction) = self.open_kept_stream(&addr, deadline).await?;
            attempt = (stream.exchange(request, deadline).await, eviction);
        }
        let (outcome, eviction) = attempt;
        match outcome {
            Ok((Ok(reply), stream)) => {
                // The follower ends its side after an error reply; only a success keeps it.
                if reply.is_ok() {
                    self.heartbeats = Some(HeartbeatStream { addr, stream, eviction });
                }
                Ok(reply)
            }
            Ok((Err(remote), _)) => Err(self.failure(&addr, "heartbeat", Fault::Remote(remote))),
            Err(error) => {
                eviction.evict();
                Err(self.failure(&addr, "heartbeat", Fault::Call(error)))
            }
        }
    }

    async fn open_kept_stream(
        &self,
        addr: &EndpointAddr,
        deadline: Instant,
    ) -> Result<(KeptStream, Eviction), Failure> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        let connections = self.factory.connections();
        match connections.open_duplex(addr, AppendStreamOpen, timeout).await {
            Ok((requests, replies, eviction)) => Ok((KeptStream::new(requests, replies), eviction)),
            Err(error) => Err(self.failure(addr, "heartbeat", Fault::Call(error))),
        }
    }

    /// Turns a call's result into openraft's terms (see [`Self::failure`]).
    fn outcome<Res>(
        &self,
        addr: &EndpointAddr,
        what: &str,
        result: Result<RemoteRaftResult<Res>, CallError>,
    ) -> Result<Res, Failure> {
        match result {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(remote)) => Err(self.failure(addr, what, Fault::Remote(remote))),
            Err(error) => Err(self.failure(addr, what, Fault::Call(error))),
        }
    }

    /// A failed call in openraft's terms, logged with the peer's ids: at debug for the
    /// expected failures (a peer down or restarting, which openraft also reports), at warn for
    /// a peer whose Raft failed or that refused the request.
    fn failure(&self, addr: &EndpointAddr, what: &str, fault: Fault) -> Failure {
        let target = self.target;
        let (failure, notable) = match fault {
            Fault::Remote(remote) => {
                let notable = remote != RemoteRaftError::Restarting;
                let reason = format!("{what} to node {target}: {remote}");
                (Failure::Unreachable(reason), notable)
            }
            Fault::Call(CallError::TimedOut(after)) => {
                let reason = format!("{what} to node {target}: no reply within {after:?}");
                (Failure::TimedOut(reason), false)
            }
            Fault::Call(error) => {
                let reason = format!("{what} to node {target}: {error}");
                (Failure::Unreachable(reason), false)
            }
        };
        let (Failure::Unreachable(reason) | Failure::TimedOut(reason)) = &failure;
        if notable {
            tracing::warn!(target_node = target, peer = %addr.id, %reason, "Raft RPC failed");
        } else {
            tracing::debug!(target_node = target, peer = %addr.id, %reason, "Raft RPC failed");
        }
        failure
    }
}

/// The timeout of one RPC: openraft's soft TTL, which leaves it time to act before its hard
/// limit cancels the call.
fn rpc_timeout(option: &RPCOption, default_ms: u64) -> Duration {
    match option.soft_ttl() {
        ttl if ttl.is_zero() => Duration::from_millis(default_ms),
        ttl => ttl,
    }
}

/// Cuts `request` to the longest prefix of its entries that fits in `bytes_max` encoded
/// bytes, returning the last log id sent when it was cut. openraft accepts this as a partial
/// success and sends the rest next, so an oversized batch never stalls replication.
pub(crate) fn fit_append_entries(
    mut request: AppendEntriesRequest<C>,
    bytes_max: usize,
) -> Result<(AppendEntriesRequest<C>, Option<LogId>), String> {
    let total = encoded_size(&request)?;
    if total <= bytes_max {
        return Ok((request, None));
    }
    let mut entry_sizes = Vec::with_capacity(request.entries.len());
    for entry in &request.entries {
        entry_sizes.push(encoded_size(entry)?);
    }
    // Everything but the entries. The length prefix of the entry list only shrinks as entries
    // are dropped, so this never underestimates what the cut request needs.
    let mut used = total - entry_sizes.iter().sum::<usize>();
    let fitting = entry_sizes.iter().take_while(|&&bytes| {
        used += bytes;
        used <= bytes_max
    });
    let count = fitting.count();
    if count == 0 {
        return Err(format!(
            "the first log entry does not fit in one RPC message of {bytes_max} bytes"
        ));
    }
    request.entries.truncate(count);
    let last = request.entries.last().map(|entry| entry.log_id());
    // The receiver must not learn of a commit beyond what it was sent.
    request.leader_commit = request.leader_commit.min(last);
    Ok((request, last))
}

/// A named function rather than a closure: the chunk iterator lives across awaits, and only a
/// function item is general enough over the borrow's lifetime for the future to stay `Send`.
fn owned_chunk(chunk: &[u8]) -> SnapshotChunk {
    SnapshotChunk(chunk.to_vec())
}

/// The size of a value as irpc puts it on the wire (postcard), without encoding it.
fn encoded_size(value: &impl serde::Serialize) -> Result<usize, String> {
    postcard::experimental::serialized_size(value)
        .map_err(|error| format!("cannot encode: {error}"))
}

impl RaftNetworkV2<C> for IrpcRaftNetwork {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<C>, RPCError<C>> {
        let (request, cut_at) =
            fit_append_entries(request, RPC_MESSAGE_BYTES_MAX).map_err(|reason| {
                // WRITE_COMMAND_BYTES_MAX keeps every entry far below the message limit, so
                // this is a bug in the limits; say so loudly, but keep the node running.
                tracing::warn!(target_node = self.target, %reason, "append entries not sent");
                Failure::Unreachable(format!("append entries: {reason}"))
            })?;
        let timeout = rpc_timeout(&option, RPC_TIMEOUT_MS_DEFAULT);
        let response = self.call(request, timeout, "append entries").await?;
        Ok(match (response, cut_at) {
            (AppendEntriesResponse::Success, Some(last)) => {
                AppendEntriesResponse::PartialSuccess(Some(last))
            }
            (response, _) => response,
        })
    }

    /// One QUIC stream for the whole session: the requests go out on it, at most
    /// `APPEND_STREAM_IN_FLIGHT_MAX` waiting for a reply, and the replies come back on it in
    /// order (see `append_stream`).
    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<'s, Result<AppendReplies<'s>, RPCError<C>>>
    where
        S: futures::Stream<Item = AppendEntriesRequest<C>> + Send + Unpin + 'static,
    {
        // openraft sends each heartbeat as a stream of one request, one after the other. A
        // session's writer task would cost more than it saves there; they go one at a time on
        // a stream kept open between them instead.
        if input.size_hint().1 == Some(1) {
            return Box::pin(async move {
                let mut input = input;
                let Some(request) = futures::StreamExt::next(&mut input).await else {
                    return Ok(Box::pin(futures::stream::empty()) as AppendReplies<'s>);
                };
                let timeout = rpc_timeout(&option, RPC_TIMEOUT_MS_DEFAULT);
                let reply = self.heartbeat(request, timeout).await?;
                Ok(Box::pin(futures::stream::once(async move { Ok(reply) })) as AppendReplies<'s>)
            });
        }
        Box::pin(async move {
            let addr = self.address()?;
            let timeout = rpc_timeout(&option, RPC_TIMEOUT_MS_DEFAULT);
            let connections = self.factory.connections();
            let opened = connections.open_duplex(&addr, AppendStreamOpen, timeout).await;
            let (requests, replies, eviction) = opened.map_err(|error| {
                RPCError::from(self.failure(&addr, "append stream", Fault::Call(error)))
            })?;
            let replies = append_stream::session(
                self.target,
                input,
                requests,
                replies,
                APPEND_STREAM_IN_FLIGHT_MAX,
                timeout,
                move || eviction.evict(),
            );
            let replies: AppendReplies<'s> =
                Box::pin(futures::StreamExt::map(replies, |item| item.map_err(RPCError::from)));
            Ok(replies)
        })
    }

    async fn vote(
        &mut self,
        request: VoteRequest<C>,
        option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        let timeout = rpc_timeout(&option, RPC_TIMEOUT_MS_DEFAULT);
        Ok(self.call(request, timeout, "vote").await?)
    }

    async fn pre_vote(
        &mut self,
        request: VoteRequest<C>,
        option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        let timeout = rpc_timeout(&option, RPC_TIMEOUT_MS_DEFAULT);
        Ok(self.call(PreVoteRequest(request), timeout, "pre-vote").await?)
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<C>, StreamingError<C>> {
        let data = snapshot.snapshot.into_inner();
        let chunks = snapshot_chunks(&data)
            .map_err(|error| {
                Failure::Unreachable(format!("snapshot to node {}: {error}", self.target))
            })?
            .map(owned_chunk);
        let header = SnapshotHeader { vote, meta: snapshot.meta, total_bytes: data.len() as u64 };
        let addr = self.address()?;
        let timeout = rpc_timeout(&option, SNAPSHOT_TIMEOUT_MS_MAX);
        let transfer = self.factory.connections().call_streaming(&addr, header, chunks, timeout);
        // Dropping the transfer finishes the stream short of its declared size, so the receiver
        // discards what it got.
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            result = transfer => Ok(self.outcome(&addr, "snapshot", result)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use openraft::EntryPayload;

    use super::*;
    use crate::api::WriteCommand;
    use crate::limits::VALUE_BYTES_MAX;
    use crate::raft::Entry;

    fn entry(index: u64, value_bytes: usize) -> Entry {
        let command = WriteCommand::Set { key: "k".into(), value: "v".repeat(value_bytes) };
        Entry::new(LogId::new(1.into(), index), EntryPayload::Normal(command))
    }

    fn request(entries: Vec<Entry>) -> AppendEntriesRequest<C> {
        AppendEntriesRequest {
            vote: Vote::new_committed(1, 1),
            prev_log_id: Some(LogId::new(1.into(), 0)),
            entries,
            leader_commit: Some(LogId::new(1.into(), 5)),
        }
    }

    #[test]
    fn a_batch_that_fits_is_sent_whole() {
        let (sent, cut_at) =
            fit_append_entries(request(vec![entry(1, 10), entry(2, 10)]), 1024).expect("fits");
        assert_eq!((sent.entries.len(), cut_at), (2, None));
        assert_eq!(sent.leader_commit, Some(LogId::new(1.into(), 5)));
    }

    #[test]
    fn an_oversized_batch_is_cut_to_a_prefix_and_commit_is_capped() {
        let entries = (1..=5).map(|index| entry(index, VALUE_BYTES_MAX)).collect();
        let (sent, cut_at) =
            fit_append_entries(request(entries), 3 * VALUE_BYTES_MAX + 1024).expect("cut");
        assert_eq!(sent.entries.len(), 3);
        assert_eq!(cut_at, Some(LogId::new(1.into(), 3)));
        assert_eq!(sent.leader_commit, Some(LogId::new(1.into(), 3)), "commit not past the cut");
        assert!(encoded_size(&sent).expect("size") <= 3 * VALUE_BYTES_MAX + 1024);
    }

    #[test]
    fn an_entry_larger_than_a_message_is_an_error_not_a_panic() {
        let result = fit_append_entries(request(vec![entry(1, 4096)]), 1024);
        assert!(result.expect_err("cannot fit").contains("does not fit"));
    }
}
