//! The leader's side of replication to one follower: openraft's `stream_append` over one QUIC
//! stream per replication session.
//!
//! openraft's replication task hands the network a stream of AppendEntries requests for as
//! long as a session lasts (in steady state, every new batch of entries and every commit
//! advance) and expects the replies back in the same order. The default sends each request
//! as a unary RPC: a new QUIC stream, and a new task on the follower, per request. Here a
//! writer task sends the session's requests on one stream, and the returned stream reads the
//! replies from it; the follower hands the requests to its Raft one at a time (`server`).
//!
//! How many requests may wait for a reply at once is the caller's `depth`; the node uses
//! `APPEND_STREAM_IN_FLIGHT_MAX` (one). The writer takes the next request from openraft only
//! when there is room, so the entries submitted while a request is out go together in the
//! next one. Measured at 64 clients (bench/README.md), deeper pipelines cut those batches into
//! more, smaller requests: more fsyncs and packets per write and more CPU, for no throughput.
//! One long-lived stream instead of a stream per request is the gain: half the QUIC packets
//! per sequential write, which is about 0.15 ms faster and costs about a tenth less CPU; under
//! load the difference is within the benchmark's noise.
//!
//! Invariants and failure:
//! - The writer records a request (its reply's deadline) before it sends it, so the reader
//!   never receives a reply it does not expect, and replies pair with requests by order.
//! - At most `depth` requests wait for their reply; each holds a permit of the session's
//!   semaphore from before it is taken from openraft until its reply is read.
//! - Each reply must come within the timeout of its request, counted from when it was sent
//!   (openraft's soft TTL, as for a unary RPC). A missing reply ends the stream with
//!   [`Failure::TimedOut`]; a broken stream, a closed one with replies owed, or an error from
//!   the follower ends it with [`Failure::Unreachable`]. openraft then backs off or retries
//!   and opens a new session; a transport failure also drops the cached connection.
//! - A request over `RPC_MESSAGE_BYTES_MAX` is cut to the prefix that fits, and the writer
//!   sends nothing after it: the follower acknowledges the prefix, openraft sees the session
//!   end with that acknowledgement and sends the rest in the next one.
//! - Dropping the returned stream stops the writer and so finishes the QUIC stream.

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use irpc::channel::mpsc;
use openraft::raft::{AppendEntriesRequest, StreamAppendResult};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, timeout_at};
use tokio_util::task::AbortOnDropHandle;

use super::connections::{CallError, transport};
use super::peer::{Failure, fit_append_entries};
use super::protocol::{RemoteRaftError, RemoteRaftResult};
use crate::api::NodeId;
use crate::limits::RPC_MESSAGE_BYTES_MAX;
use crate::raft::AspenTypeConfig;

type C = AspenTypeConfig;

/// What the writer tells the reader about each request, in order.
#[derive(Debug)]
enum Sent {
    /// A request went out; its reply is due by `deadline`. The permit is its place in the
    /// pipeline, given back when the reply is in.
    Request { deadline: Instant, _permit: OwnedSemaphorePermit },
    /// The writer stopped because of `Failure`; no reply is owed for it.
    Failed(Failure),
}

/// The reply stream's state. Dropping it aborts the writer.
struct Reader<E> {
    target: NodeId,
    replies: mpsc::Receiver<RemoteRaftResult<StreamAppendResult<C>>>,
    sent: tokio::sync::mpsc::Receiver<Sent>,
    writer: AbortOnDropHandle<()>,
    /// Called once when the transport failed (not when the follower answered with an error).
    on_transport_failure: Option<E>,
}

/// Runs an AppendEntries session on one stream: sends every request of `input` on `requests`,
/// at most `depth` of them waiting for a reply at a time, and returns the follower's replies
/// from `replies`, in order, ending after the first error.
///
/// `timeout` bounds the wait for each reply from the moment its request was sent;
/// `on_transport_failure` runs when the stream broke or timed out (the caller drops its
/// cached connection there).
pub(crate) fn session<S, E>(
    target: NodeId,
    input: S,
    requests: mpsc::Sender<AppendEntriesRequest<C>>,
    replies: mpsc::Receiver<RemoteRaftResult<StreamAppendResult<C>>>,
    depth: usize,
    timeout: Duration,
    on_transport_failure: E,
) -> impl Stream<Item = Result<StreamAppendResult<C>, Failure>> + Send + 'static
where
    S: Stream<Item = AppendEntriesRequest<C>> + Send + Unpin + 'static,
    E: FnOnce() + Send + 'static,
{
    assert!(depth > 0, "an append stream needs room for one request");
    let places = Arc::new(Semaphore::new(depth));
    // One more than the places, for the record of a failure.
    let (sent_tx, sent) = tokio::sync::mpsc::channel(depth + 1);
    let writer = tokio::spawn(write_requests(target, input, requests, sent_tx, places, timeout));
    let reader = Reader {
        target,
        replies,
        sent,
        writer: AbortOnDropHandle::new(writer),
        on_transport_failure: Some(on_transport_failure),
    };
    futures::stream::unfold(Some(reader), |state| async move {
        let mut reader = state?;
        let item = reader.next_reply().await?;
        let go_on = matches!(item, Ok(Ok(_)));
        Some((item, go_on.then_some(reader)))
    })
}

impl<E: FnOnce()> Reader<E> {
    /// The reply to the oldest request without one; `None` once the writer is done and every
    /// reply is in.
    async fn next_reply(&mut self) -> Option<Result<StreamAppendResult<C>, Failure>> {
        // The permit goes back when this returns, once the reply is in (or the stream failed).
        let (deadline, _permit) = match self.sent.recv().await? {
            Sent::Request { deadline, _permit } => (deadline, _permit),
            Sent::Failed(failure) => return Some(Err(self.transport_failed(failure))),
        };
        let target = self.target;
        let failure = match timeout_at(deadline, self.replies.recv()).await {
            Ok(Ok(Some(Ok(appended)))) => return Some(Ok(appended)),
            Ok(Ok(Some(Err(remote)))) => {
                if remote != RemoteRaftError::Restarting {
                    tracing::warn!(target_node = target, %remote, "append stream refused");
                }
                return Some(Err(Failure::Unreachable(format!(
                    "append stream to node {target}: {remote}"
                ))));
            }
            Ok(Ok(None)) => Failure::Unreachable(format!(
                "append stream to node {target}: closed with a reply owed"
            )),
            Ok(Err(error)) => {
                Failure::Unreachable(format!("append stream to node {target}: {error:#}"))
            }
            Err(_) => Failure::TimedOut(format!(
                "append stream to node {target}: no reply within the timeout"
            )),
        };
        Some(Err(self.transport_failed(failure)))
    }

    fn transport_failed(&mut self, failure: Failure) -> Failure {
        let (Failure::Unreachable(reason) | Failure::TimedOut(reason)) = &failure;
        tracing::debug!(target_node = self.target, %reason, "append stream failed");
        self.writer.abort();
        if let Some(evict) = self.on_transport_failure.take() {
            evict();
        }
        failure
    }
}

/// Takes requests from openraft and sends them, recording each before it goes out.
async fn write_requests<S>(
    target: NodeId,
    mut input: S,
    requests: mpsc::Sender<AppendEntriesRequest<C>>,
    sent: tokio::sync::mpsc::Sender<Sent>,
    places: Arc<Semaphore>,
    timeout: Duration,
) where
    S: Stream<Item = AppendEntriesRequest<C>> + Unpin,
{
    loop {
        // Wait for a place before asking openraft for the next request: entries submitted
        // meanwhile then go out together in that request.
        let Ok(permit) = places.clone().acquire_owned().await else {
            return; // never closed; nothing to send without a place
        };
        let Some(request) = input.next().await else {
            break;
        };
        let (request, cut_at) = match fit_append_entries(request, RPC_MESSAGE_BYTES_MAX) {
            Ok(fitted) => fitted,
            Err(reason) => {
                // WRITE_COMMAND_BYTES_MAX keeps every entry far below the message limit, so
                // this is a bug in the limits; say so loudly, but keep the node running.
                tracing::warn!(target_node = target, %reason, "append entries not sent");
                let failure = Failure::Unreachable(format!("append entries: {reason}"));
                let _reader_gone = sent.send(Sent::Failed(failure)).await;
                return;
            }
        };
        let deadline = Instant::now() + timeout;
        if sent.send(Sent::Request { deadline, _permit: permit }).await.is_err() {
            return; // the reader is gone
        }
        if let Err(error) = requests.send(request).await {
            // The reader learns of it from the reply stream too; this names the cause.
            let failure =
                Failure::Unreachable(format!("append stream to node {target}: {error:#}"));
            let _reader_gone = sent.send(Sent::Failed(failure)).await;
            return;
        }
        if cut_at.is_some() {
            return; // the rest goes in the next session, after openraft saw this one's ack
        }
    }
    // Dropping `requests` finishes the stream: the follower ends its side after its last reply.
}

/// A stream kept open between AppendEntries that go one at a time: openraft's heartbeats.
///
/// openraft sends every heartbeat to a follower as a session of its own, one after the other.
/// A QUIC stream (and a task on the follower) per heartbeat costs more than the heartbeat:
/// linearizable reads each wait for a heartbeat round, so under reads the leader sent
/// thousands of them a second. The follower treats this stream like a session's.
///
/// [`KeptStream::exchange`] takes the stream and gives it back only with the reply, so a
/// stream that may still owe a reply (the exchange failed, or its caller dropped it midway) is
/// never used again: the next request would read the old reply as its own.
pub(crate) struct KeptStream {
    requests: mpsc::Sender<AppendEntriesRequest<C>>,
    replies: mpsc::Receiver<RemoteRaftResult<StreamAppendResult<C>>>,
}

impl KeptStream {
    pub(crate) fn new(
        requests: mpsc::Sender<AppendEntriesRequest<C>>,
        replies: mpsc::Receiver<RemoteRaftResult<StreamAppendResult<C>>>,
    ) -> Self {
        Self { requests, replies }
    }

    /// Sends `request` and waits for its reply until `deadline`; the stream comes back with the
    /// reply, for the next request.
    pub(crate) async fn exchange(
        mut self,
        request: AppendEntriesRequest<C>,
        deadline: Instant,
    ) -> Result<(RemoteRaftResult<StreamAppendResult<C>>, Self), CallError> {
        let started = Instant::now();
        let exchange = async {
            self.requests.send(request).await.map_err(transport)?;
            match self.replies.recv().await {
                Ok(Some(reply)) => Ok(reply),
                Ok(None) => Err(CallError::Transport("the stream was closed".into())),
                Err(error) => Err(transport(error)),
            }
        };
        let reply = timeout_at(deadline, exchange)
            .await
            .map_err(|_| CallError::TimedOut(deadline.saturating_duration_since(started)))??;
        Ok((reply, self))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use openraft::EntryPayload;
    use openraft::entry::RaftEntry;
    use openraft::raft::StreamAppendError;

    use super::*;
    use crate::api::WriteCommand;
    use crate::limits::VALUE_BYTES_MAX;
    use crate::raft::{Entry, LogId, Vote};

    fn log_id(index: u64) -> LogId {
        LogId::new(1.into(), index)
    }

    /// A request for entries `first..=last` (none when `first > last`: a commit update).
    fn request(first: u64, last: u64, value_bytes: usize) -> AppendEntriesRequest<C> {
        let entries = (first..=last)
            .map(|index| {
                let command = WriteCommand::Set { key: "k".into(), value: "v".repeat(value_bytes) };
                Entry::new(log_id(index), EntryPayload::Normal(command))
            })
            .collect();
        AppendEntriesRequest {
            vote: Vote::new_committed(1, 1),
            prev_log_id: Some(log_id(first - 1)),
            entries,
            leader_commit: None,
        }
    }

    /// Deeper than the node's, to show the pipelining.
    const DEPTH: usize = 3;

    struct Follower {
        requests: mpsc::Receiver<AppendEntriesRequest<C>>,
        replies: mpsc::Sender<RemoteRaftResult<StreamAppendResult<C>>>,
    }

    /// A pipeline over in-process channels, the follower's ends, and whether the connection
    /// was dropped.
    fn start(
        input: Vec<AppendEntriesRequest<C>>,
        timeout: Duration,
    ) -> (impl Stream<Item = Result<StreamAppendResult<C>, Failure>>, Follower, Arc<AtomicBool>)
    {
        let (requests_tx, requests) = mpsc::channel(DEPTH);
        let (replies, replies_rx) = mpsc::channel(DEPTH);
        let evicted = Arc::new(AtomicBool::new(false));
        let flag = evicted.clone();
        let stream = session(
            2,
            futures::stream::iter(input),
            requests_tx,
            replies_rx,
            DEPTH,
            timeout,
            move || flag.store(true, Ordering::SeqCst),
        );
        (stream, Follower { requests, replies }, evicted)
    }

    #[tokio::test]
    async fn requests_go_out_before_any_reply_and_replies_come_back_in_order() {
        let input = vec![request(1, 2, 10), request(3, 3, 10), request(4, 5, 10)];
        let (stream, mut follower, evicted) = start(input, Duration::from_secs(10));
        let mut stream = Box::pin(stream);
        // All three are sent although none was answered: that is the pipelining.
        let mut received = Vec::new();
        for _ in 0..3 {
            let request = follower.requests.recv().await.expect("open").expect("a request");
            received.push(request.entries.last().map(|entry| entry.log_id));
        }
        assert_eq!(received, vec![Some(log_id(2)), Some(log_id(3)), Some(log_id(5))]);
        for last in [2, 3, 5] {
            follower.replies.send(Ok(Ok(Some(log_id(last))))).await.expect("reply");
        }
        for last in [2, 3, 5] {
            let reply = stream.next().await.expect("a reply").expect("no failure");
            assert_eq!(reply, Ok(Some(log_id(last))));
        }
        // The writer finished the request stream, so the follower sees its end, and the reply
        // stream ends too once every reply is in.
        assert!(follower.requests.recv().await.expect("clean end").is_none());
        assert!(stream.next().await.is_none());
        assert!(!evicted.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_missing_reply_times_out_ends_the_stream_and_drops_the_connection() {
        let (stream, mut follower, evicted) =
            start(vec![request(1, 1, 10), request(2, 2, 10)], Duration::from_millis(50));
        let mut stream = Box::pin(stream);
        follower.requests.recv().await.expect("open").expect("first request");
        follower.replies.send(Ok(Ok(Some(log_id(1))))).await.expect("reply");
        assert_eq!(stream.next().await.expect("reply").expect("ok"), Ok(Some(log_id(1))));
        // No reply to the second request.
        let failure = stream.next().await.expect("an item").expect_err("timed out");
        assert!(matches!(failure, Failure::TimedOut(_)), "{failure:?}");
        assert!(stream.next().await.is_none(), "nothing after the failure");
        assert!(evicted.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_conflict_is_returned_and_ends_the_stream() {
        let (stream, follower, evicted) =
            start(vec![request(1, 1, 10), request(2, 2, 10)], Duration::from_secs(10));
        let mut stream = Box::pin(stream);
        follower.replies.send(Ok(Err(StreamAppendError::Conflict(log_id(0))))).await.ok();
        let reply = stream.next().await.expect("a reply").expect("no transport failure");
        assert_eq!(reply, Err(StreamAppendError::Conflict(log_id(0))));
        assert!(stream.next().await.is_none());
        assert!(!evicted.load(Ordering::SeqCst), "the connection is fine");
    }

    #[tokio::test]
    async fn a_follower_error_or_a_closed_stream_is_unreachable() {
        let (stream, follower, _) = start(vec![request(1, 1, 10)], Duration::from_secs(10));
        let mut stream = Box::pin(stream);
        follower.replies.send(Err(RemoteRaftError::Restarting)).await.ok();
        let failure = stream.next().await.expect("an item").expect_err("refused");
        assert!(matches!(&failure, Failure::Unreachable(reason) if reason.contains("restarting")));

        let (stream, follower, evicted) = start(vec![request(1, 1, 10)], Duration::from_secs(10));
        let mut stream = Box::pin(stream);
        drop(follower);
        let failure = stream.next().await.expect("an item").expect_err("closed");
        assert!(matches!(&failure, Failure::Unreachable(reason) if reason.contains("reply owed")));
        assert!(evicted.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn an_oversized_request_is_cut_and_nothing_is_sent_after_it() {
        // Five entries of VALUE_BYTES_MAX in one request do not fit in RPC_MESSAGE_BYTES_MAX
        // once VALUE_BYTES_MAX is large; otherwise this checks the uncut path.
        let per_message = RPC_MESSAGE_BYTES_MAX / VALUE_BYTES_MAX;
        let count = per_message as u64 + 2;
        let input = vec![request(1, count, VALUE_BYTES_MAX), request(count + 1, count + 1, 10)];
        let (stream, mut follower, _) = start(input, Duration::from_secs(10));
        let mut stream = Box::pin(stream);
        let first = follower.requests.recv().await.expect("open").expect("the cut request");
        let sent_last = first.entries.last().expect("entries").log_id;
        assert!(sent_last.index < count, "cut to a prefix");
        assert!(follower.requests.recv().await.expect("clean end").is_none(), "nothing after");
        follower.replies.send(Ok(Ok(Some(sent_last)))).await.expect("reply");
        assert_eq!(stream.next().await.expect("reply").expect("ok"), Ok(Some(sent_last)));
        assert!(stream.next().await.is_none());
    }

    fn kept_stream() -> (KeptStream, Follower) {
        let (requests_tx, requests) = mpsc::channel(DEPTH);
        let (replies, replies_rx) = mpsc::channel(DEPTH);
        (KeptStream::new(requests_tx, replies_rx), Follower { requests, replies })
    }

    /// Answers every request on `follower` with the last log id it carries, like a follower
    /// that accepts them.
    fn accepting(mut follower: Follower) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            while let Ok(Some(request)) = follower.requests.recv().await {
                let last = request.prev_log_id.max(request.entries.last().map(|e| e.log_id));
                if follower.replies.send(Ok(Ok(last))).await.is_err() {
                    return;
                }
            }
        })
    }

    #[tokio::test]
    async fn a_kept_stream_carries_one_exchange_after_another_each_with_its_own_reply() {
        let (mut stream, follower) = kept_stream();
        let _follower = AbortOnDropHandle::new(accepting(follower));
        let deadline = || Instant::now() + Duration::from_secs(10);
        for index in 1..=3 {
            let (reply, again) =
                stream.exchange(request(index + 1, index, 0), deadline()).await.expect("reply");
            assert_eq!(reply, Ok(Ok(Some(log_id(index)))));
            stream = again;
        }
    }

    #[tokio::test]
    async fn a_kept_stream_without_a_reply_in_time_is_not_given_back() {
        let (stream, mut follower) = kept_stream();
        let deadline = Instant::now() + Duration::from_millis(50);
        let outcome = stream.exchange(request(2, 1, 0), deadline).await;
        // The request went out; its reply, should it still come, has no stream to be read on.
        assert!(follower.requests.recv().await.expect("open").is_some());
        assert!(matches!(outcome, Err(CallError::TimedOut(_))), "{:?}", outcome.err());
    }

    #[tokio::test]
    async fn a_kept_stream_the_follower_closed_is_a_transport_failure() {
        let (stream, follower) = kept_stream();
        drop(follower);
        let deadline = Instant::now() + Duration::from_secs(10);
        let outcome = stream.exchange(request(2, 1, 0), deadline).await;
        assert!(matches!(outcome, Err(CallError::Transport(_))), "{:?}", outcome.err());
    }
}
