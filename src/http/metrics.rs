//! `GET /metrics`: the node's numbers in the Prometheus text exposition format (0.0.4).
//!
//! The handler gathers a [`MetricsSnapshot`] (Raft's metrics watch, the data-path counters, the
//! peer book, the supervision report, the Raft RPC server's counters, the gossip counters, the
//! HTTP server's connection counts) and
//! [`render`] turns it into text. Rendering is a plain function, tested without a node.
//!
//! Caveats: no histograms (request latencies) yet, and no node id label: Prometheus adds the
//! scrape target as `instance` itself.

use std::fmt::Write;

use openraft::ServerState;

use super::connections::HttpConnectionCounts;
use crate::api::NodeId;
use crate::discovery::{DropReason, GossipCounts};
use crate::raft::{DataPathCounts, RaftMetrics};

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Raft's numbers, as far as the metrics page shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftGauges {
    /// The node's role.
    pub state: ServerState,
    /// The current term.
    pub term: u64,
    /// The leader this node knows, if any.
    pub leader: Option<NodeId>,
    /// The index of the last log entry this node applied.
    pub last_applied_index: Option<u64>,
    /// The index of the last log entry this node knows committed.
    pub commit_index: Option<u64>,
    /// The index of the last entry in this node's log.
    pub last_log_index: Option<u64>,
}

impl RaftGauges {
    /// The gauges of one moment of openraft's metrics.
    pub fn from_metrics(metrics: &RaftMetrics) -> Self {
        Self {
            state: metrics.state,
            term: metrics.current_term,
            leader: metrics.current_leader,
            last_applied_index: metrics.last_applied.as_ref().map(|id| id.index),
            commit_index: metrics.local_committed.as_ref().map(|id| id.index),
            last_log_index: metrics.last_log_index,
        }
    }
}

/// Everything the metrics page shows, gathered at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Raft's gauges; `None` when no Raft runs (deterministic backend, or restarting).
    pub raft: Option<RaftGauges>,
    /// The data-path counters of the node's clients.
    pub counts: DataPathCounts,
    /// Peers in the peer book.
    pub peers_known: usize,
    /// `(actor role, restarts)` of every supervised actor, sorted by role.
    pub actor_restarts: Vec<(String, u32)>,
    /// Raft RPC connections accepted.
    pub rpc_accepted_connections: u64,
    /// Raft RPC connections refused by the access policy.
    pub rpc_refused_connections: u64,
    /// Gossip announcements sent, accepted and dropped.
    pub gossip: GossipCounts,
    /// The HTTP server's connections.
    pub http_connections: HttpConnectionCounts,
}

const SERVER_STATES: [(ServerState, &str); 5] = [
    (ServerState::Learner, "Learner"),
    (ServerState::Follower, "Follower"),
    (ServerState::Candidate, "Candidate"),
    (ServerState::Leader, "Leader"),
    (ServerState::Shutdown, "Shutdown"),
];

/// The text exposition of `snapshot`: every family with its `# HELP` and `# TYPE` lines.
pub fn render(snapshot: &MetricsSnapshot) -> String {
    let mut page = Page::default();
    if let Some(raft) = &snapshot.raft {
        render_raft(&mut page, raft);
    }
    let counts = &snapshot.counts;
    let counters = [
        ("aspen_writes_total", "Writes answered by this node's clients.", counts.writes),
        ("aspen_reads_total", "Reads answered by this node's clients.", counts.reads),
        ("aspen_scans_total", "Scans answered by this node's clients.", counts.scans),
        ("aspen_forwarded_total", "Requests forwarded to the leader.", counts.forwarded),
        ("aspen_rejected_total", "Requests refused as invalid.", counts.rejected),
        ("aspen_failed_total", "Requests that failed (no leader, timeout...).", counts.failed),
    ];
    for (name, help, value) in counters {
        page.family(name, "counter", help, [(String::new(), value.to_string())]);
    }
    let peers = [(String::new(), snapshot.peers_known.to_string())];
    page.family("aspen_peers_known", "gauge", "Peers in the peer book.", peers);
    let restarts = snapshot
        .actor_restarts
        .iter()
        .map(|(actor, restarts)| (label("actor", actor), restarts.to_string()));
    page.family(
        "aspen_actor_restarts_total",
        "counter",
        "Restarts of each supervised actor since the node started.",
        restarts,
    );
    let rpc = [
        (
            "aspen_rpc_accepted_connections_total",
            "Raft RPC connections accepted.",
            snapshot.rpc_accepted_connections,
        ),
        (
            "aspen_rpc_refused_connections_total",
            "Raft RPC connections refused by the access policy.",
            snapshot.rpc_refused_connections,
        ),
    ];
    let http = &snapshot.http_connections;
    let counters = [
        (
            "aspen_http_connections_accepted_total",
            "counter",
            "HTTP connections accepted and served.",
            http.accepted,
        ),
        (
            "aspen_http_connections_refused_total",
            "counter",
            "HTTP connections closed at once because the connection limit was reached.",
            http.refused,
        ),
        ("aspen_http_connections_open", "gauge", "HTTP connections open now.", http.open),
    ];
    let rpc = rpc.into_iter().map(|(name, help, value)| (name, "counter", help, value));
    for (name, kind, help, value) in rpc.chain(counters) {
        page.family(name, kind, help, [(String::new(), value.to_string())]);
    }
    render_gossip(&mut page, &snapshot.gossip);
    page.text
}

fn render_gossip(page: &mut Page, gossip: &GossipCounts) {
    let counters = [
        (
            "aspen_gossip_announcements_sent_total",
            "Signed announcements of this node handed to gossip.",
            gossip.sent,
        ),
        (
            "aspen_gossip_announcements_accepted_total",
            "Announcements of peers verified and recorded in the peer book.",
            gossip.accepted,
        ),
        (
            "aspen_gossip_lagged_total",
            "Times the gossip receiver fell behind and missed messages.",
            gossip.lagged,
        ),
    ];
    for (name, help, value) in counters {
        page.family(name, "counter", help, [(String::new(), value.to_string())]);
    }
    let dropped = DropReason::ALL
        .iter()
        .map(|reason| (label("reason", reason.label()), gossip.dropped(*reason).to_string()));
    page.family(
        "aspen_gossip_messages_dropped_total",
        "counter",
        "Gossip messages dropped, by reason (malformed, bad_signature, wrong_topic, replayed, \
         stale, conflict, full).",
        dropped,
    );
}

fn render_raft(page: &mut Page, raft: &RaftGauges) {
    let states = SERVER_STATES
        .iter()
        .map(|(state, name)| (label("state", name), u8::from(*state == raft.state).to_string()));
    page.family("aspen_raft_state", "gauge", "1 for the node's current Raft role.", states);
    let leader = raft.leader.map_or("-1".to_string(), |id| id.to_string());
    let gauges = [
        ("aspen_raft_term", "The current Raft term.", raft.term.to_string()),
        ("aspen_raft_leader", "The leader's node id, -1 when none is known.", leader),
        (
            "aspen_raft_last_applied_index",
            "The last log index applied to the state machine (0: none).",
            raft.last_applied_index.unwrap_or(0).to_string(),
        ),
        (
            "aspen_raft_commit_index",
            "The last log index known committed (0: none).",
            raft.commit_index.unwrap_or(0).to_string(),
        ),
        (
            "aspen_raft_last_log_index",
            "The last index in the local log (0: none).",
            raft.last_log_index.unwrap_or(0).to_string(),
        ),
    ];
    for (name, help, value) in gauges {
        page.family(name, "gauge", help, [(String::new(), value)]);
    }
}

/// `{name="value"}` with the value escaped as the format asks.
fn label(name: &str, value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    format!("{{{name}=\"{escaped}\"}}")
}

#[derive(Default)]
struct Page {
    text: String,
}

impl Page {
    fn family(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        samples: impl IntoIterator<Item = (String, String)>,
    ) {
        // Writing to a String cannot fail.
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(self.text, "{name}{labels} {value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(page: &str, series: &str) -> Option<String> {
        page.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ').map(str::to_owned))
    }

    fn gossip_counts() -> GossipCounts {
        let counters = crate::discovery::GossipCounters::default();
        counters.record_sent();
        counters.record_drop(DropReason::BadSignature);
        counters.record_drop(DropReason::BadSignature);
        counters.snapshot()
    }

    #[test]
    fn a_leader_renders_every_family_with_help_and_type() {
        let snapshot = MetricsSnapshot {
            raft: Some(RaftGauges {
                state: ServerState::Leader,
                term: 3,
                leader: Some(1),
                last_applied_index: Some(7),
                commit_index: Some(7),
                last_log_index: Some(8),
            }),
            counts: DataPathCounts { writes: 5, reads: 2, ..Default::default() },
            peers_known: 2,
            actor_restarts: vec![("raft".into(), 1), ("storage".into(), 0)],
            rpc_accepted_connections: 4,
            rpc_refused_connections: 1,
            gossip: gossip_counts(),
            http_connections: HttpConnectionCounts { accepted: 9, refused: 3, open: 2 },
        };
        let page = render(&snapshot);
        let expected = [
            ("aspen_raft_state{state=\"Leader\"}", "1"),
            ("aspen_raft_state{state=\"Follower\"}", "0"),
            ("aspen_raft_term", "3"),
            ("aspen_raft_leader", "1"),
            ("aspen_raft_last_applied_index", "7"),
            ("aspen_raft_commit_index", "7"),
            ("aspen_writes_total", "5"),
            ("aspen_reads_total", "2"),
            ("aspen_scans_total", "0"),
            ("aspen_forwarded_total", "0"),
            ("aspen_rejected_total", "0"),
            ("aspen_failed_total", "0"),
            ("aspen_peers_known", "2"),
            ("aspen_actor_restarts_total{actor=\"raft\"}", "1"),
            ("aspen_rpc_refused_connections_total", "1"),
            ("aspen_http_connections_accepted_total", "9"),
            ("aspen_http_connections_refused_total", "3"),
            ("aspen_http_connections_open", "2"),
            ("aspen_gossip_announcements_sent_total", "1"),
            ("aspen_gossip_messages_dropped_total{reason=\"bad_signature\"}", "2"),
            ("aspen_gossip_messages_dropped_total{reason=\"replayed\"}", "0"),
        ];
        for (series, value) in expected {
            assert_eq!(sample(&page, series).as_deref(), Some(value), "{series} in\n{page}");
            let family = series.split('{').next().unwrap();
            assert!(page.contains(&format!("# HELP {family} ")), "{family}");
            assert!(page.contains(&format!("# TYPE {family} ")), "{family}");
        }
    }

    #[test]
    fn no_leader_is_minus_one_and_no_raft_leaves_raft_out() {
        let gauges = RaftGauges {
            state: ServerState::Follower,
            term: 0,
            leader: None,
            last_applied_index: None,
            commit_index: None,
            last_log_index: None,
        };
        let page = render(&MetricsSnapshot { raft: Some(gauges), ..Default::default() });
        assert_eq!(sample(&page, "aspen_raft_leader").as_deref(), Some("-1"));
        assert_eq!(sample(&page, "aspen_raft_last_applied_index").as_deref(), Some("0"));
        let page = render(&MetricsSnapshot::default());
        assert!(!page.contains("aspen_raft_"), "{page}");
        assert!(page.contains("aspen_writes_total 0"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("actor", "a\"b\\c\nd"), r#"{actor="a\"b\\c\nd"}"#);
    }
}
