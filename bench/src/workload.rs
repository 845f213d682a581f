//! Closed-loop clients over a fixed set of persistent connections, as etcd's benchmark tool
//! runs them.
//!
//! A run has `clients` clients and `conns` [`Connection`]s; client `c` uses connection
//! `c % conns`, and connection `j` goes to endpoint `j % endpoints` (etcd's round-robin). Each
//! client takes the next operation index from a shared counter, times the request from just
//! before it waits for its connection to just after the answer, and records the latency.
//!
//! Over HTTP/2 (the default) the clients are futures on the benchmark's HTTP/2 runtime (as
//! etcd's benchmark runs its clients as goroutines) and those sharing a connection send on it
//! at the same time, as etcd's clients share a gRPC connection: up to `clients` requests are in
//! flight. Over HTTP/1.1 each client is an OS thread that blocks on its request. Over
//! HTTP/1.1 a connection carries one request at a time, so clients sharing one take turns in
//! arrival order (a ticket queue), not in whatever order a mutex happens to wake them: a plain
//! mutex lets the client that just finished take the connection again at once, which starves
//! the others and turns the latency tail into a measure of the mutex. The run stops when
//! `total` operations were issued or when its deadline passes, whichever comes first. What an
//! operation index means (which key, read or write) is the caller's function.
//!
//! Caveats:
//! - Over HTTP/1.1, `clients > conns` means clients queue for their connection (at most `conns`
//!   requests in flight), and that wait is part of the latency they see.
//! - A failed operation is counted and not retried; its latency is not recorded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::client::{ClientError, Connection, HttpVersion, Op, run_http2};
use crate::limits::ERROR_SAMPLES_MAX;
use crate::stats::nanos;

/// How many clients, over which connections, do how many operations.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Node HTTP addresses; connections are spread over them round-robin.
    pub endpoints: Vec<String>,
    /// Clients (OS threads over HTTP/1.1, futures over HTTP/2).
    pub clients: usize,
    /// Connections (at most `clients`: more would stay idle).
    pub conns: usize,
    /// The protocol: with HTTP/2 the clients of one connection share it, with HTTP/1.1 they
    /// take turns.
    pub http: HttpVersion,
    /// Operations to issue.
    pub total: u64,
    /// The bound on one request.
    pub request_timeout: Duration,
    /// The bound on the whole run.
    pub duration_max: Duration,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The latency of every acknowledged operation, in nanoseconds.
    pub latencies_ns: Vec<u64>,
    /// Operations that failed.
    pub errors: u64,
    /// A few distinct error messages.
    pub error_samples: Vec<String>,
    /// Wall-clock time from the first request to the last answer.
    pub elapsed: Duration,
    /// Whether the run stopped at its deadline before issuing `total` operations.
    pub timed_out: bool,
}

impl Outcome {
    /// Acknowledged operations.
    pub fn ops(&self) -> u64 {
        self.latencies_ns.len() as u64
    }

    /// Records one operation that began at `begin`: its latency, or its error.
    fn record(&mut self, begin: Instant, result: Result<(), ClientError>) {
        match result {
            Ok(()) => self.latencies_ns.push(nanos(begin.elapsed())),
            Err(error) => {
                self.errors += 1;
                note_error(&mut self.error_samples, error.to_string());
            }
        }
    }

    fn merge(&mut self, other: Outcome) {
        self.latencies_ns.extend(other.latencies_ns);
        self.errors += other.errors;
        for sample in other.error_samples {
            note_error(&mut self.error_samples, sample);
        }
    }
}

/// Keeps `message` if it is new and there is room for it.
pub fn note_error(samples: &mut Vec<String>, message: String) {
    if samples.len() < ERROR_SAMPLES_MAX && !samples.contains(&message) {
        samples.push(message);
    }
}

/// Runs operation `op(index)` for indexes `0..plan.total` over the plan's clients and
/// connections.
pub fn run<'v, F>(plan: &Plan, op: F) -> Result<Outcome, ClientError>
where
    F: Fn(u64) -> Op<'v> + Sync,
{
    let conns = plan.conns.clamp(1, plan.clients.max(1));
    let connections = (0..conns)
        .map(|j| {
            let endpoint = &plan.endpoints[j % plan.endpoints.len()];
            Connection::new(endpoint, plan.request_timeout, plan.http).map(Shared::new)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let started = Instant::now();
    let turns =
        Turns { next: AtomicU64::new(0), total: plan.total, deadline: started + plan.duration_max };
    let mut outcome = Outcome::default();
    if plan.http == HttpVersion::Http2 {
        let clients = (0..plan.clients.max(1)).map(|client| {
            let connection = &connections[client % conns].connection;
            client_future(connection, &turns, &op)
        });
        for client in run_http2(&plan.endpoints, futures::future::join_all(clients))? {
            outcome.merge(client);
        }
    } else {
        let op = |connection: &Connection, index| connection.execute(&op(index));
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..plan.clients.max(1))
                .map(|client| {
                    let connection = &connections[client % conns];
                    let (turns, op) = (&turns, &op);
                    scope.spawn(move || client_loop(connection, turns, op))
                })
                .collect();
            for handle in handles {
                outcome.merge(handle.join().expect("a client thread panicked"));
            }
        });
    }
    outcome.elapsed = started.elapsed();
    outcome.timed_out = turns.next.load(Ordering::SeqCst) < plan.total;
    Ok(outcome)
}

/// One client on its own thread: takes its turns until there are none.
fn client_loop<F>(connection: &Shared, turns: &Turns, op: &F) -> Outcome
where
    F: Fn(&Connection, u64) -> Result<(), ClientError>,
{
    let mut outcome = Outcome::default();
    while let Some((index, begin)) = turns.take() {
        outcome.record(begin, connection.with(|connection| op(connection, index)));
    }
    outcome
}

/// A run's operation indexes, handed out one at a time until `total` were or `deadline`
/// passed: every client loop is bounded by both.
struct Turns {
    next: AtomicU64,
    total: u64,
    deadline: Instant,
}

impl Turns {
    /// The next operation index and the time its latency counts from; `None` when the run is
    /// over.
    fn take(&self) -> Option<(u64, Instant)> {
        let begin = Instant::now();
        if begin >= self.deadline {
            return None;
        }
        let index = self.next.fetch_add(1, Ordering::SeqCst);
        (index < self.total).then_some((index, begin))
    }
}

/// One client over HTTP/2, as a future: the clients of a run are futures of one task on the
/// benchmark's HTTP/2 runtime, so an answer wakes no thread of its own (with a thread per
/// client, the wake-ups cost the benchmark about 40 µs of CPU per operation, CPU the nodes
/// on the same 2 cores then lacked). Takes its turns until there are none.
async fn client_future<'v, F>(connection: &Connection, turns: &Turns, op: &F) -> Outcome
where
    F: Fn(u64) -> Op<'v>,
{
    let mut outcome = Outcome::default();
    while let Some((index, begin)) = turns.take() {
        outcome.record(begin, connection.execute_async(&op(index)).await);
    }
    outcome
}

/// A connection shared by several clients: all at once if it multiplexes (HTTP/2), else one at
/// a time in the order they asked.
pub struct Shared {
    connection: Connection,
    /// (next ticket to hand out, ticket now being served).
    tickets: Mutex<(u64, u64)>,
    turn: Condvar,
}

impl Shared {
    /// `connection`, shareable.
    pub fn new(connection: Connection) -> Self {
        Self { connection, tickets: Mutex::new((0, 0)), turn: Condvar::new() }
    }

    /// Runs `use_connection` at once on a multiplexing connection, else when it is this
    /// caller's turn. The wait is bounded by the requests ahead of it, each bounded by the
    /// request timeout.
    pub fn with<T>(&self, use_connection: impl FnOnce(&Connection) -> T) -> T {
        if self.connection.multiplexes() {
            return use_connection(&self.connection);
        }
        let mut tickets = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        let ticket = tickets.0;
        tickets.0 += 1;
        while tickets.1 != ticket {
            tickets = self.turn.wait(tickets).unwrap_or_else(|e| e.into_inner());
        }
        drop(tickets);
        // Pass the turn on even if the operation panics, so that no client waits forever.
        struct NextTurn<'a>(&'a Shared);
        impl Drop for NextTurn<'_> {
            fn drop(&mut self) {
                self.0.tickets.lock().unwrap_or_else(|e| e.into_inner()).1 += 1;
                self.0.turn.notify_all();
            }
        }
        let _next = NextTurn(self);
        use_connection(&self.connection)
    }
}

/// The key of operation-key number `index`: `index` in decimal, zero-padded to exactly
/// `key_bytes` bytes (taken modulo `10^key_bytes` when it has more digits).
pub fn key(index: u64, key_bytes: usize) -> String {
    let digits = key_bytes.min(19);
    let modulus = 10u64.pow(digits as u32);
    let number = format!("{:0digits$}", index % modulus);
    format!("{number:0>key_bytes$}")
}

/// A value of `value_bytes` printable ASCII bytes (no JSON escaping needed).
pub fn value(value_bytes: usize) -> String {
    (0..value_bytes).map(|i| char::from(b'a' + (i % 26) as u8)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::test_server::TestServer;

    #[test]
    fn keys_have_exactly_the_asked_size() {
        assert_eq!(key(42, 8), "00000042");
        assert_eq!(key(123_456_789, 8), "23456789");
        assert_eq!(key(7, 1), "7");
        assert_eq!(key(5, 24).len(), 24);
        assert_eq!(value(30).len(), 30);
        assert!(value(300).bytes().all(|b| b.is_ascii_lowercase()));
    }

    /// Waits (bounded) until `shared` has handed out `count` tickets.
    fn wait_for_tickets(shared: &Shared, count: u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while shared.tickets.lock().unwrap().0 < count {
            assert!(std::time::Instant::now() < deadline, "{count} tickets never handed out");
            std::thread::yield_now();
        }
    }

    #[test]
    fn clients_sharing_a_connection_take_turns_in_arrival_order() {
        let connection =
            Connection::new("127.0.0.1:1", Duration::from_secs(1), HttpVersion::Http1).unwrap();
        let shared = Shared::new(connection);
        let order = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            // The first client holds the connection until all others queue behind it; none of
            // them may use it meanwhile.
            let (shared, order) = (&shared, &order);
            scope.spawn(move || {
                shared.with(|_| {
                    wait_for_tickets(shared, 4);
                    assert!(order.lock().unwrap().is_empty(), "a client did not wait its turn");
                })
            });
            wait_for_tickets(shared, 1);
            for client in 1..=3 {
                scope.spawn(move || shared.with(|_| order.lock().unwrap().push(client)));
                // This client takes its ticket before the next one arrives.
                wait_for_tickets(shared, client + 1);
            }
        });
        assert_eq!(*order.lock().unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn a_run_stops_at_its_total_and_counts_errors() {
        for http in [HttpVersion::Http1, HttpVersion::Http2] {
            // Nothing listens on port 1 of loopback: every request fails at once.
            let plan = Plan {
                endpoints: vec!["127.0.0.1:1".into()],
                clients: 4,
                conns: 2,
                http,
                total: 40,
                request_timeout: Duration::from_secs(2),
                duration_max: Duration::from_secs(20),
            };
            let outcome = run(&plan, |index| Op::Put { key: key(index, 8), value: "v" }).unwrap();
            assert_eq!((outcome.ops(), outcome.errors), (0, 40), "{http:?}");
            assert_eq!(outcome.error_samples.len(), 1, "{http:?}: {:?}", outcome.error_samples);
            assert!(!outcome.timed_out);
        }
    }

    #[test]
    fn over_http2_every_client_of_a_connection_has_its_request_in_flight() {
        // The server holds each request until all 8 are in flight: a run over 1 connection
        // completes only if its 8 clients do not take turns.
        let server = TestServer::holding_until(8);
        let plan = Plan {
            endpoints: vec![server.url.clone()],
            clients: 8,
            conns: 1,
            http: HttpVersion::Http2,
            total: 8,
            request_timeout: Duration::from_secs(20),
            duration_max: Duration::from_secs(30),
        };
        let outcome = run(&plan, |index| Op::Put { key: key(index, 8), value: "v" }).unwrap();
        assert_eq!((outcome.ops(), outcome.errors), (8, 0), "{:?}", outcome.error_samples);
        assert_eq!(server.connections(), 1);
    }
}
