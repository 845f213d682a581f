//! Every bound Aspen enforces, in one place.
//!
//! A request over one of these limits is answered with an `InvalidRequest` error that names the
//! limit; nothing panics on input. Each constant says why it has the value it has, so that a
//! change is a decision and not an accident. Names carry their unit and end in `_MAX` (or
//! `_DEFAULT`) as in TigerBeetle's style.
//!
//! Caveats: the limits are compile-time constants. Making them configurable per cluster would
//! need them replicated through Raft so that every node enforces the same ones.

/// Longest key, in bytes. Keys are identifiers, not payloads; etcd users rarely exceed a few
/// hundred bytes, and a bound keeps scans and log entries small.
pub const KEY_BYTES_MAX: usize = 1024;

/// Largest value, in bytes. Aspen is a coordination store, not a blob store: 1 MiB matches the
/// order of etcd's default request limit and keeps one log entry well under the RPC limit.
pub const VALUE_BYTES_MAX: usize = 1024 * 1024;

/// Most pairs in one `SetMulti`. etcd caps a transaction at 128 operations; the same bound keeps
/// one atomic write inside one Raft entry of bounded size.
pub const SET_MULTI_PAIRS_MAX: usize = 128;

/// Most total bytes (keys plus values) in one write command. Bounds one Raft entry so that an
/// append-entries batch always fits in one RPC message.
pub const WRITE_COMMAND_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Entries a scan returns when the caller names no limit.
pub const SCAN_LIMIT_DEFAULT: u32 = 1000;

/// Most entries one scan may return; a larger limit is refused rather than silently cut.
pub const SCAN_LIMIT_MAX: u32 = 10_000;

/// Most nodes (voters plus learners) in one membership. Raft's quorum traffic grows with the
/// member count; 64 is far beyond any sensible voter set and bounds every per-member loop.
pub const CLUSTER_NODES_MAX: usize = 64;

/// Most peers one node keeps in its peer book. Bounds memory against a flood of discovered
/// peers.
pub const PEERS_MAX: usize = 256;

/// Largest single Raft RPC message, in bytes. irpc refuses frames over 16 MiB; staying below it
/// leaves room for framing.
pub const RPC_MESSAGE_BYTES_MAX: usize = 15 * 1024 * 1024;

/// Most log entries openraft sends in one append-entries RPC. With `WRITE_COMMAND_BYTES_MAX`
/// this bounds the message; openraft also batches client writes up to this many entries.
pub const APPEND_ENTRIES_ENTRIES_MAX: u64 = 512;

/// Most AppendEntries requests a leader has out to one follower on its replication stream,
/// waiting for their replies. One: the entries submitted while a request is out then go in the
/// next one together; deeper pipelines split them into more, smaller requests, which cost more
/// fsyncs and CPU per write on this kind of machine (measured in bench/README.md). A follower
/// serves a stream's requests one at a time, so more would only queue there.
pub const APPEND_STREAM_IN_FLIGHT_MAX: usize = 1;

/// Bytes of snapshot data in one streamed chunk. A snapshot of any size is sent as a sequence
/// of chunks of at most this many bytes, so no single message grows with the state machine.
pub const SNAPSHOT_CHUNK_BYTES_MAX: usize = 256 * 1024;

/// Largest snapshot a node accepts, in bytes. A bound on what a (possibly confused) peer can
/// make a node buffer in memory.
pub const SNAPSHOT_BYTES_MAX: u64 = 1024 * 1024 * 1024;

/// Largest record (id, last log id, membership) kept in front of a snapshot's bytes in its file;
/// a larger one in a file is read as corruption.
pub const SNAPSHOT_RECORD_BYTES_MAX: u64 = 1024 * 1024;

/// Timeout for one Raft RPC when openraft names none, in milliseconds.
pub const RPC_TIMEOUT_MS_DEFAULT: u64 = 2_000;

/// Timeout for sending a whole snapshot, in milliseconds.
pub const SNAPSHOT_TIMEOUT_MS_MAX: u64 = 60_000;

/// Timeout for a client write or read, including forwarding to the leader, in milliseconds.
pub const CLIENT_REQUEST_TIMEOUT_MS_MAX: u64 = 10_000;

/// Times a client retries a request answered `NotLeader` (never applied) while leadership
/// settles, within `CLIENT_REQUEST_TIMEOUT_MS_MAX`.
pub const CLIENT_RETRIES_MAX: u32 = 5;

/// The pause before the first such retry, in milliseconds; retry `n` waits `n` times as long.
pub const CLIENT_RETRY_BACKOFF_MS: u64 = 50;

/// Timeout for a control-plane call (init, add learner, change membership), in milliseconds.
/// A membership change waits for a learner to catch up, which may take a snapshot transfer.
pub const CONTROL_REQUEST_TIMEOUT_MS_MAX: u64 = 30_000;

/// Timeout for a call to one of the node's actors, in milliseconds.
pub const ACTOR_CALL_TIMEOUT_MS_MAX: u64 = 5_000;

/// Longest an operator waits, in milliseconds, to reach a node's NodeControl actor over
/// ractor_cluster: TCP connect, cookie handshake and the process-group sync that makes the actor
/// visible. On a LAN this takes milliseconds; a node that shows nothing after 10 s is unreachable
/// or refused the cookie, and waiting longer would only hide that.
pub const CONTROL_CONNECT_TIMEOUT_MS_MAX: u64 = 10_000;

/// Restarts of one supervised actor allowed within `ACTOR_RESTART_WINDOW_MS`; one more and the
/// node stops, because an actor that keeps failing points at a bug or a broken environment
/// that restarting will not fix.
pub const ACTOR_RESTARTS_MAX: usize = 3;

/// The sliding window, in milliseconds, over which `ACTOR_RESTARTS_MAX` is counted.
pub const ACTOR_RESTART_WINDOW_MS: u64 = 60_000;

/// How long a graceful shutdown may take before the node gives up waiting, in milliseconds.
pub const SHUTDOWN_TIMEOUT_MS_MAX: u64 = 10_000;

/// Smallest heartbeat interval accepted, in milliseconds. Below this the node spends its time
/// on heartbeats.
pub const HEARTBEAT_INTERVAL_MS_MIN: u64 = 10;

/// Largest election timeout accepted, in milliseconds. Above this a failover takes minutes.
pub const ELECTION_TIMEOUT_MS_MAX: u64 = 120_000;

/// How long a membership change waits for the previous one to be applied before it is
/// proposed, in milliseconds (right after `init`, the first membership is not committed yet).
pub const MEMBERSHIP_SETTLE_MS_MAX: u64 = 5_000;

/// Most log entries the log writer makes durable in one transaction (one fsync): appends
/// queued while a commit runs join the next one up to this many entries.
pub const LOG_WRITE_BATCH_ENTRIES_MAX: usize = 4_096;

/// Most entries the state machine applies in one transaction. Bounds the memory and the time
/// one commit holds the state database's writer lock, while a burst of client writes still
/// shares one transaction.
pub const APPLY_BATCH_ENTRIES_MAX: usize = 1024;

/// Largest apply batch, in entries, run right on the async thread that asked for it (when no
/// other write transaction is open); larger ones go to the blocking pool.
pub const APPLY_INLINE_ENTRIES_MAX: usize = 64;

/// Largest apply batch, in key and value bytes, run right on the async thread that asked for
/// it; larger ones go to the blocking pool. At this size a non-durable commit takes well under
/// a millisecond.
pub const APPLY_INLINE_BYTES_MAX: usize = 64 * 1024;

/// Most entries applied to the state database between two of its durable commits (its applies
/// are not fsynced). redb keeps a non-durable commit's pages in memory until a durable commit
/// writes them all, so this bounds that memory and the pause of the durable commit that writes
/// them: every 50,000 entries it held the applies for 80-90 ms, every 1,000 for 2-4 ms
/// (bench/README.md). It also bounds what redb must repair after a crash; what the node applies
/// again is bounded by the snapshot file, not by this.
pub const STATE_DURABLE_AFTER_ENTRIES: u64 = 1_000;

/// Interval of QUIC keep-alive pings on every connection, in milliseconds.
pub const QUIC_KEEP_ALIVE_MS: u64 = 1_000;

/// A QUIC connection without any answer for this long is closed, in milliseconds: a dead peer
/// is noticed within this bound and the next call dials afresh. Well above the keep-alive
/// interval, so that a few lost pings do not close a live connection.
pub const QUIC_IDLE_TIMEOUT_MS: u64 = 5_000;

/// Log entries applied since the last snapshot before a new one is built. etcd's default
/// (`--snapshot-count`) too: a snapshot serializes and writes the whole state, so at 10,000 a
/// state of 40 MB was written every 10,000 writes, and its fsync held up the log's
/// (bench/README.md).
pub const SNAPSHOT_LOGS_SINCE_LAST_DEFAULT: u64 = 100_000;

/// Log entries kept behind the last snapshot, so that a briefly lagging follower can catch up
/// from the log instead of a snapshot.
pub const LOGS_KEPT_AFTER_SNAPSHOT_DEFAULT: u64 = 1_000;

/// Largest HTTP request body, in bytes: the largest write command plus 64 KiB for its JSON
/// framing (quotes, brackets, field names of up to `SET_MULTI_PAIRS_MAX` pairs). A body over
/// it is refused with 413 before it is parsed. Values full of characters that JSON escapes
/// (quotes, control characters) can reach this limit before `WRITE_COMMAND_BYTES_MAX`.
pub const HTTP_BODY_BYTES_MAX: usize = WRITE_COMMAND_BYTES_MAX + 64 * 1024;

/// Most HTTP connections open at once, over both protocols. One more is accepted and closed at
/// once, so that its client fails fast with a closed connection instead of waiting unanswered
/// in the listen queue. Linux's default soft limit on open files is 1024 per process, and the
/// node needs descriptors of its own (the database, iroh's and ractor_cluster's sockets): 512
/// leaves them room and is still far above what the API's clients open (`aspen-bench` 8, the
/// CLI one per call).
pub const HTTP_CONNECTIONS_MAX: usize = 512;

/// Most requests in flight on one HTTP/2 connection: the `SETTINGS_MAX_CONCURRENT_STREAMS` the
/// server advertises, so that further streams wait in the client. hyper's own default, kept:
/// `aspen-bench` keeps up to 64 streams in flight per connection, and times
/// `HTTP_CONNECTIONS_MAX` it bounds the requests in flight on a node.
pub const HTTP2_CONCURRENT_STREAMS_MAX: u32 = 200;

/// Largest header section of one HTTP request, in bytes, answered 431 beyond it: for HTTP/1.1
/// the request line and headers (hyper's read buffer, which must stay at least 8 KiB), for
/// HTTP/2 the decoded header list (`SETTINGS_MAX_HEADER_LIST_SIZE`, where each header counts
/// 32 bytes on top of its name and value). The API's requests carry a few short headers, a few
/// hundred bytes; 16 KiB leaves room for what a proxy adds and is hyper's own HTTP/2 default.
pub const HTTP_HEADER_BYTES_MAX: usize = 16 * 1024;

/// Most headers in one HTTP/1.1 request, answered 431 beyond it. curl and the CLI send three
/// to five, a browser about twenty; 32 leaves room for what a proxy adds. HTTP/2 needs no count
/// of its own: `HTTP_HEADER_BYTES_MAX` allows at most 512 headers there.
pub const HTTP1_HEADERS_MAX: usize = 32;

/// How long an HTTP connection may take to send its first bytes, and an HTTP/1.1 request its
/// whole header section, in milliseconds; past it the connection is closed without an answer.
/// hyper also runs this timer while an HTTP/1.1 connection waits for its next request, so an
/// idle keep-alive connection closes after it too. Headers fit in one packet, so any value
/// covers a slow link many times over; 30 s (hyper's own default once it has a timer) frees the
/// slot of a client that sends nothing while keeping the keep-alive connections of clients that
/// pause between requests (the lab's checkers, the CLI's pool) open across pauses of seconds.
pub const HTTP_HEADER_READ_TIMEOUT_MS_MAX: u64 = 30_000;

/// The pause after a failed `accept` that is not one connection's own failure (out of file
/// descriptors, for instance), in milliseconds. Short, because nobody is accepted meanwhile;
/// not zero, so that a persistent failure does not spin.
pub const HTTP_ACCEPT_BACKOFF_MS: u64 = 100;

/// Shortest interval between two log lines about refused HTTP connections, or about failed
/// accepts, in milliseconds. Each line counts the events since the previous one, so that a
/// flood of connections writes a line every few seconds, not one per connection.
pub const HTTP_ACCEPT_LOG_INTERVAL_MS: u64 = 10_000;

/// Most bootstrap peers in a cluster ticket. A joining node needs only a few reachable peers
/// to find the rest; the bound keeps a ticket short enough to paste into a command line.
pub const TICKET_BOOTSTRAP_PEERS_MAX: usize = 16;

/// Longest one request of the `aspen` CLI may take, in milliseconds: the node's own longest
/// bound (a membership change waiting for a learner to catch up) plus a margin for the HTTP
/// round trip, so that the node answers with its own timeout error before the client gives up.
pub const CLI_REQUEST_TIMEOUT_MS_MAX: u64 = CONTROL_REQUEST_TIMEOUT_MS_MAX + 5_000;

/// Largest answer the `aspen` CLI accepts, in bytes: a bound that keeps a confused server from
/// filling the client's memory, far above any scan answer the node's own limits allow.
pub const CLI_RESPONSE_BYTES_MAX: u64 = 64 * VALUE_BYTES_MAX as u64;

/// Largest signed gossip announcement accepted, in bytes. An announcement holds one endpoint
/// address; iroh-gossip's own message limit is 4 KiB.
pub const ANNOUNCEMENT_BYTES_MAX: usize = 2048;

/// Oldest announcement accepted, in milliseconds: a few announcement intervals (10 s by
/// default), so that a recording played back later is refused.
pub const ANNOUNCEMENT_AGE_MS_MAX: u64 = 60_000;

/// How far in the future an announcement's timestamp may be, in milliseconds: the clock
/// difference tolerated between two nodes.
pub const ANNOUNCEMENT_CLOCK_SKEW_MS_MAX: u64 = 5_000;

/// Most direct addresses one announcement carries. A node bound to every interface may have
/// many; a dozen or so reach it from anywhere it can be reached, and the bound keeps an
/// announcement far under `ANNOUNCEMENT_BYTES_MAX`.
pub const ANNOUNCEMENT_ADDRS_MAX: usize = 16;

/// Longest HTTP API address an announcement carries, in bytes. A `host:port` is at most a few
/// dozen bytes; the bound keeps a stranger from making every node store a long string.
pub const ANNOUNCEMENT_API_ADDR_BYTES_MAX: usize = 256;

/// Most peers the peer book takes from gossip alone (peers no operator named). Anyone who knows
/// the cluster's topic can announce itself under many node ids; this bound keeps such a flood
/// from filling the book (`PEERS_MAX`) and crowding out the peers an operator adds. Twice the
/// largest membership leaves room for nodes that are waiting to be added.
pub const GOSSIP_PEERS_MAX: usize = 2 * CLUSTER_NODES_MAX;

/// The default interval between two announcements of a node, in milliseconds: the seed's
/// "every 10 seconds".
pub const GOSSIP_INTERVAL_MS_DEFAULT: u64 = 10_000;

/// Shortest announcement interval accepted, in milliseconds. Below it announcements cost more
/// than they tell (tests use a few hundred milliseconds).
pub const GOSSIP_INTERVAL_MS_MIN: u64 = 50;

/// Longest announcement interval accepted, in milliseconds. A node announces itself at once
/// when a neighbour comes up, so the interval only refreshes; an hour is already very slow.
pub const GOSSIP_INTERVAL_MS_MAX: u64 = 3_600_000;

/// Longest wait for the gossip actor to take a broadcast or a join, in milliseconds. Its
/// command queue is bounded; a gossip actor that does not take a command within this time is
/// stuck, and the node must not hang on it.
pub const GOSSIP_COMMAND_TIMEOUT_MS_MAX: u64 = 2_000;

/// The pause before subscribing to the topic again after the subscription ended (the receiver
/// lagged behind, or the gossip actor restarted), in milliseconds. Short, because the node is
/// deaf to announcements meanwhile; not zero, so that a persistent failure does not spin.
pub const GOSSIP_RESUBSCRIBE_BACKOFF_MS: u64 = 1_000;

/// Milliseconds between two rounds of DNS lookups for peers whose addresses are unknown (DNS
/// discovery): short enough that a peer named by endpoint id is located within seconds.
pub const DNS_LOCATE_INTERVAL_MS: u64 = 2_000;

/// Bound on one DNS lookup of an endpoint id; iroh's own staggered lookup gives up after about
/// six seconds.
pub const DNS_LOOKUP_TIMEOUT_MS_MAX: u64 = 8_000;

/// mDNS query cadence in milliseconds: how often a node asks the LAN who is there (iroh's
/// default is 700 ms; a little slower keeps the multicast traffic of a cluster low).
pub const MDNS_CADENCE_MS: u64 = 1_000;
