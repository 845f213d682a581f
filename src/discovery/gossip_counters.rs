//! Counters of gossip discovery, for the node's metrics: announcements sent and accepted, and
//! messages dropped, by reason. Relaxed atomics: they are statistics, never used to decide
//! anything.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a gossip message was dropped (see `gossip` for each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DropReason {
    /// Not an announcement, or over a limit.
    Malformed,
    /// Not signed by the endpoint it names.
    BadSignature,
    /// Signed for another cluster's topic.
    WrongTopic,
    /// Not newer than one already accepted from the same endpoint.
    Replayed,
    /// Too old, or too far in the future.
    Stale,
    /// Claims a node id or an endpoint bound to another peer.
    Conflict,
    /// The peer book takes no more peers from gossip.
    Full,
}

impl DropReason {
    /// Every reason, in the order the metrics show them.
    pub const ALL: [DropReason; 7] = [
        DropReason::Malformed,
        DropReason::BadSignature,
        DropReason::WrongTopic,
        DropReason::Replayed,
        DropReason::Stale,
        DropReason::Conflict,
        DropReason::Full,
    ];

    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::BadSignature => "bad_signature",
            DropReason::WrongTopic => "wrong_topic",
            DropReason::Replayed => "replayed",
            DropReason::Stale => "stale",
            DropReason::Conflict => "conflict",
            DropReason::Full => "full",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    accepted: AtomicU64,
    lagged: AtomicU64,
    dropped: [AtomicU64; DropReason::ALL.len()],
}

/// Live gossip counters of one node; clones share them.
#[derive(Debug, Clone, Default)]
pub struct GossipCounters {
    inner: Arc<Counters>,
}

/// A copy of the gossip counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GossipCounts {
    /// Announcements of this node handed to gossip.
    pub sent: u64,
    /// Announcements of peers accepted into the peer book.
    pub accepted: u64,
    /// Times the receiver fell behind and missed messages.
    pub lagged: u64,
    /// Messages dropped, per reason, in the order of [`DropReason::ALL`].
    pub dropped: Vec<(DropReason, u64)>,
}

impl GossipCounts {
    /// Messages dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped.iter().find(|(r, _)| *r == reason).map_or(0, |(_, count)| *count)
    }
}

impl GossipCounters {
    /// Counts one announcement sent.
    pub fn record_sent(&self) {
        self.inner.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one announcement accepted.
    pub fn record_accepted(&self) {
        self.inner.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one lag of the receiver.
    pub fn record_lagged(&self) {
        self.inner.lagged.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one message dropped for `reason`.
    pub fn record_drop(&self, reason: DropReason) {
        self.inner.dropped[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> GossipCounts {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        GossipCounts {
            sent: load(&self.inner.sent),
            accepted: load(&self.inner.accepted),
            lagged: load(&self.inner.lagged),
            dropped: DropReason::ALL
                .iter()
                .map(|reason| (*reason, load(&self.inner.dropped[reason.index()])))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_counted_by_reason() {
        let counters = GossipCounters::default();
        counters.record_drop(DropReason::Replayed);
        counters.record_drop(DropReason::Replayed);
        counters.clone().record_drop(DropReason::BadSignature);
        counters.record_sent();
        let counts = counters.snapshot();
        assert_eq!(counts.dropped(DropReason::Replayed), 2);
        assert_eq!(counts.dropped(DropReason::BadSignature), 1);
        assert_eq!(counts.dropped(DropReason::Stale), 0);
        assert_eq!((counts.sent, counts.accepted), (1, 0));
        assert_eq!(counts.dropped.len(), DropReason::ALL.len());
    }
}
