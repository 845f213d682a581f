//! Raft RPC over real iroh endpoints on loopback, offline (no relay, no DNS): access control,
//! the "restarting" answer, forwarded requests and their errors, connection reuse, and the
//! snapshot chunking bounds. Raft itself is not running here; replication between real nodes
//! is covered by the cluster tests.

use std::future::Future;
use std::io::Cursor;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aspen::api::{
    ClusterController, ClusterNode, DeterministicCluster, InitRequest, KeyValueStore,
    KeyValueStoreError, ReadRequest, ReadResult, ScanRequest, ScanResult, WriteCommand,
    WriteRequest, WriteResult,
};
use aspen::discovery::PeerBook;
use aspen::limits::{SNAPSHOT_BYTES_MAX, SNAPSHOT_CHUNK_BYTES_MAX};
use aspen::raft::network::{
    AccessPolicy, IrpcRaftNetwork, IrpcRaftNetworkFactory, LocalRequests, RAFT_ALPN, RaftRpcServer,
    SnapshotAssembler, SnapshotTransferError, check_snapshot_size, snapshot_chunks,
};
use aspen::raft::{RaftMemberInfo, SharedRaft, Snapshot, SnapshotMeta, Vote};
use iroh::endpoint::presets;
use iroh::protocol::Router;
use iroh::{Endpoint, EndpointAddr, SecretKey};
use openraft::error::{RPCError, ReplicationClosed, StreamingError};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{AppendEntriesRequest, VoteRequest};

/// A `LocalRequests` that executes on an in-memory cluster, standing in for the leader.
struct Deterministic(DeterministicCluster);

#[async_trait::async_trait]
impl LocalRequests for Deterministic {
    async fn write(&self, request: WriteRequest) -> Result<WriteResult, KeyValueStoreError> {
        self.0.write(request).await
    }
    async fn read(&self, request: ReadRequest) -> Result<ReadResult, KeyValueStoreError> {
        self.0.read(request).await
    }
    async fn scan(&self, request: ScanRequest) -> Result<ScanResult, KeyValueStoreError> {
        self.0.scan(request).await
    }
}

async fn endpoint(seed: u8) -> Endpoint {
    Endpoint::builder(presets::Minimal)
        .secret_key(SecretKey::from_bytes(&[seed; 32]))
        .bind_addr((Ipv4Addr::LOCALHOST, 0))
        .expect("loopback address")
        .bind()
        .await
        .expect("bind endpoint")
}

struct Server {
    rpc: RaftRpcServer,
    addr: EndpointAddr,
    _router: Router,
}

/// A Raft RPC server on a fresh endpoint whose Raft slot is empty (a node that is restarting).
async fn serve(access: AccessPolicy) -> Server {
    let cluster = DeterministicCluster::new();
    let node = ClusterNode::new(1, "api-1", None);
    cluster.init(InitRequest { initial_members: vec![node] }).await.expect("init");
    let rpc = RaftRpcServer::new(SharedRaft::new(), Arc::new(Deterministic(cluster)), access);
    let endpoint = endpoint(1).await;
    let addr = endpoint.addr();
    let router = Router::builder(endpoint).accept(RAFT_ALPN, rpc.clone()).spawn();
    Server { rpc, addr, _router: router }
}

/// A client node's factory that knows the server as node 1.
async fn factory_for(server: &Server) -> IrpcRaftNetworkFactory {
    let factory = IrpcRaftNetworkFactory::new(endpoint(2).await, PeerBook::new());
    factory.add_peer(1, server.addr.clone());
    factory
}

async fn network_to(factory: &IrpcRaftNetworkFactory, target: u64) -> IrpcRaftNetwork {
    factory.clone().new_client(target, &RaftMemberInfo::default()).await
}

fn option() -> RPCOption {
    RPCOption::new(Duration::from_secs(5))
}

fn vote_request() -> VoteRequest<aspen::raft::AspenTypeConfig> {
    VoteRequest::new(Vote::new(1, 2), None)
}

fn heartbeat() -> AppendEntriesRequest<aspen::raft::AspenTypeConfig> {
    AppendEntriesRequest {
        vote: Vote::new_committed(1, 2),
        prev_log_id: None,
        entries: vec![],
        leader_commit: None,
    }
}

fn set(key: &str, value: &str) -> WriteRequest {
    WriteRequest { command: WriteCommand::Set { key: key.into(), value: value.into() } }
}

/// Polls `condition` every 20 ms until it holds, panicking after 5 s with what it waited for.
async fn wait_until<F: Future<Output = bool>>(what: &str, mut condition: impl FnMut() -> F) {
    let start = Instant::now();
    while !condition().await {
        assert!(start.elapsed() < Duration::from_secs(5), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_refused_peer_is_unreachable_and_counted() {
    let server = serve(Arc::new(|_| false)).await;
    let factory = factory_for(&server).await;
    let mut network = network_to(&factory, 1).await;

    let vote = network.vote(vote_request(), option()).await;
    assert!(matches!(vote, Err(RPCError::Unreachable(_))), "vote: {vote:?}");
    let append = network.append_entries(heartbeat(), option()).await;
    assert!(matches!(append, Err(RPCError::Unreachable(_))), "append: {append:?}");

    wait_until("two refusals", || async { server.rpc.refused_connections() >= 2 }).await;
    assert_eq!(server.rpc.accepted_connections(), 0);
}

#[tokio::test]
async fn an_admitted_peer_reaches_a_restarting_node() {
    let server = serve(Arc::new(|_| true)).await;
    let factory = factory_for(&server).await;
    let mut network = network_to(&factory, 1).await;

    for result in [
        network.vote(vote_request(), option()).await.map(|_| ()),
        network.append_entries(heartbeat(), option()).await.map(|_| ()),
    ] {
        match result {
            Err(RPCError::Unreachable(error)) => {
                assert!(error.to_string().contains("restarting"), "{error}")
            }
            other => panic!("expected Unreachable(restarting), got {other:?}"),
        }
    }
    assert_eq!(server.rpc.refused_connections(), 0);
}

#[tokio::test]
async fn a_snapshot_to_a_restarting_node_is_refused_with_the_reason() {
    let server = serve(Arc::new(|_| true)).await;
    let factory = factory_for(&server).await;
    let mut network = network_to(&factory, 1).await;
    let data = vec![7u8; 3 * SNAPSHOT_CHUNK_BYTES_MAX + 17];
    let snapshot = Snapshot { meta: SnapshotMeta::default(), snapshot: Cursor::new(data) };
    let cancel = std::future::pending::<ReplicationClosed>();

    let result = network.full_snapshot(Vote::new_committed(1, 2), snapshot, cancel, option()).await;
    match result {
        Err(StreamingError::Unreachable(error)) => {
            assert!(error.to_string().contains("restarting"), "{error}")
        }
        other => panic!("expected Unreachable(restarting), got {other:?}"),
    }
}

#[tokio::test]
async fn a_peer_without_an_address_is_unreachable() {
    let server = serve(Arc::new(|_| true)).await;
    let factory = factory_for(&server).await;
    let mut network = network_to(&factory, 7).await;

    match network.vote(vote_request(), option()).await {
        Err(RPCError::Unreachable(error)) => {
            assert!(error.to_string().contains("no address"), "{error}")
        }
        other => panic!("expected Unreachable(no address), got {other:?}"),
    }
    let forwarded = factory.forward_write(7, None, set("k", "v")).await;
    assert_eq!(
        forwarded,
        Err(KeyValueStoreError::NotLeader { leader: Some(7), leader_addr: None })
    );
}

#[tokio::test]
async fn forwarded_requests_and_their_errors_round_trip() {
    let server = serve(Arc::new(|_| true)).await;
    let factory = factory_for(&server).await;

    let written = factory.forward_write(1, None, set("a", "1")).await.expect("write");
    assert_eq!(written.command, set("a", "1").command);
    assert_eq!(written.log_index, 2, "init is index 1, the write index 2");

    let cas = WriteCommand::CompareAndSwap {
        key: "a".into(),
        expected: Some("0".into()),
        new_value: "2".into(),
    };
    let refused = factory.forward_write(1, None, WriteRequest { command: cas }).await;
    assert_eq!(
        refused,
        Err(KeyValueStoreError::CompareAndSwapFailed {
            key: "a".into(),
            current: Some("1".into())
        })
    );

    let read = factory.forward_read(1, None, ReadRequest::new("a")).await;
    assert_eq!(read, Ok(ReadResult { key: "a".into(), value: "1".into() }));
    let missing = factory.forward_read(1, None, ReadRequest::new("zz")).await;
    assert_eq!(missing, Err(KeyValueStoreError::NotFound { key: "zz".into() }));
    let scan = factory.forward_scan(1, None, ScanRequest { prefix: "".into(), limit: None }).await;
    assert_eq!(scan, Ok(ScanResult { entries: vec![("a".into(), "1".into())], truncated: false }));
}

#[tokio::test]
async fn calls_to_one_peer_share_one_connection() {
    let server = serve(Arc::new(|_| true)).await;
    let factory = factory_for(&server).await;
    let mut replication = network_to(&factory, 1).await;
    let mut heartbeats = network_to(&factory, 1).await;

    let _ = replication.vote(vote_request(), option()).await;
    let _ = heartbeats.append_entries(heartbeat(), option()).await;
    factory.forward_write(1, None, set("a", "1")).await.expect("write");
    factory.forward_read(1, None, ReadRequest::new("a")).await.expect("read");

    assert_eq!(factory.cached_connections(), 1);
    assert_eq!(server.rpc.accepted_connections(), 1, "one QUIC connection for four calls");
}

#[test]
fn a_snapshot_is_split_into_bounded_chunks_and_reassembled_identically() {
    let data: Vec<u8> = (0..3 * SNAPSHOT_CHUNK_BYTES_MAX + 17).map(|i| (i % 251) as u8).collect();
    let chunks: Vec<&[u8]> = snapshot_chunks(&data).expect("within the limit").collect();
    assert_eq!(chunks.len(), 4);
    assert!(chunks.iter().all(|chunk| chunk.len() <= SNAPSHOT_CHUNK_BYTES_MAX));
    assert_eq!(chunks[3].len(), 17);

    let mut assembler = SnapshotAssembler::new(data.len() as u64).expect("declared size");
    for chunk in &chunks {
        assembler.push(chunk).expect("chunk");
    }
    assert_eq!(assembler.finish().expect("complete"), data);
}

#[test]
fn snapshot_bounds_are_enforced() {
    let too_large = SNAPSHOT_BYTES_MAX + 1;
    assert_eq!(
        check_snapshot_size(too_large),
        Err(SnapshotTransferError::TooLarge { bytes: too_large })
    );
    assert!(SnapshotAssembler::new(too_large).is_err(), "refused before any byte arrives");

    let mut assembler = SnapshotAssembler::new(10).expect("declared size");
    let oversized = vec![0u8; SNAPSHOT_CHUNK_BYTES_MAX + 1];
    assert!(matches!(assembler.push(&oversized), Err(SnapshotTransferError::ChunkTooLarge { .. })));
    assembler.push(&[1; 6]).expect("first chunk");
    assert_eq!(assembler.push(&[1; 5]), Err(SnapshotTransferError::Overrun { declared: 10 }));
    assert_eq!(
        assembler.finish(),
        Err(SnapshotTransferError::Truncated { received: 6, declared: 10 }),
        "a stream that ends early is not a snapshot"
    );
}
