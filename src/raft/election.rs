//! A follower's election timer, kept by Aspen instead of openraft.
//!
//! A follower that hears from no leader for its election timeout starts an election (a
//! Pre-Vote round first). openraft's own timer draws that timeout when the node starts and
//! draws again only when the node campaigns, so a node that drew a long one and is never
//! elected keeps it for as long as it runs. After a leader fails, the survivors are the nodes
//! that were not elected, so long draws gather among them: the failover benchmark measured a
//! median of 1.56 s where fresh draws give 1.33 s (bench/README.md). Here, as in etcd, the
//! timeout is drawn again at every new term and after every attempt.
//!
//! - [`LeaderContact`]: when this node last heard from a leader, that is, answered its
//!   AppendEntries (a conflict too: the leader is alive) or granted a vote. The Raft RPC
//!   server records it.
//! - [`run`]: the timer, one task per Raft instance; it ends when the instance stops (the
//!   RaftActor also aborts it).
//!
//! openraft's own timer is off (`enable_elect: false` in the node's openraft config); its
//! leader lease is unchanged, so a node still refuses votes while it hears from a live leader,
//! and a pre-vote this timer starts while the node's own lease holds is dropped by openraft
//! without a message. The timeout is drawn from the same window openraft's timer used, so the
//! node's `election_timeout_min_ms`/`max_ms` mean what they meant.
//!
//! Invariants: an attempt is followed by a whole new timeout before the next one, so a node
//! that cannot win never campaigns in a loop; a node that is not a voter never campaigns
//! (openraft also refuses it); the sole voter of a cluster campaigns at once, as openraft's
//! timer did.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use openraft::ServerState;
use openraft::async_runtime::watch::WatchReceiver;
use rand::Rng;
use tokio::time::{Instant, sleep_until};

use super::{AspenRaft, RaftMetrics, SharedRaft};

/// When this node last heard from a leader; shared by the RPC server and the timer.
#[derive(Debug)]
pub struct LeaderContact {
    base: Instant,
    /// Nanoseconds after `base`.
    last: AtomicU64,
}

impl Default for LeaderContact {
    fn default() -> Self {
        Self { base: Instant::now(), last: AtomicU64::new(0) }
    }
}

impl LeaderContact {
    /// Records that this node heard from a leader now.
    pub fn heard(&self) {
        self.heard_at(Instant::now());
    }

    fn heard_at(&self, at: Instant) {
        let nanos = u64::try_from(at.saturating_duration_since(self.base).as_nanos());
        self.last.fetch_max(nanos.unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// When this node last heard from a leader (or when this record was made).
    pub fn last(&self) -> Instant {
        self.base + Duration::from_nanos(self.last.load(Ordering::Relaxed))
    }
}

/// The window election timeouts are drawn from. Its `min` is also how long the timer waits
/// after an attempt, and how often a node with nothing to time (a leader, a learner) looks
/// again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElectionWindow {
    /// The shortest timeout.
    pub min: Duration,
    /// The longest timeout (exclusive).
    pub max: Duration,
}

impl ElectionWindow {
    /// The window openraft's own timer used for `config`: its leader lease (its largest
    /// timeout) plus a timeout between its smallest and largest.
    pub fn of(config: &openraft::Config) -> Self {
        let min = config.election_timeout_max + config.election_timeout_min;
        let max = (2 * config.election_timeout_max).max(min + 1);
        Self { min: Duration::from_millis(min), max: Duration::from_millis(max) }
    }

    fn draw(&self) -> Duration {
        rand::rng().random_range(self.min..self.max)
    }
}

/// What the timer has to do for a node in this state.
#[derive(Debug, PartialEq, Eq)]
enum Duty {
    /// Leading, or not a voter: nothing to time.
    None,
    /// The only voter: campaign at once.
    CampaignNow,
    /// A voter following (or looking for) a leader.
    Follow,
}

fn duty(metrics: &RaftMetrics) -> Duty {
    if metrics.state == ServerState::Leader {
        return Duty::None;
    }
    let membership = metrics.membership_config.membership();
    let mut voters = membership.voter_ids();
    let first = voters.next();
    match (first, voters.next()) {
        (Some(only), None) if only == metrics.id => Duty::CampaignNow,
        _ if membership.voter_ids().any(|id| id == metrics.id) => Duty::Follow,
        _ => Duty::None,
    }
}

/// The timer of `raft` (see the module docs): runs until the instance stops.
pub async fn run(raft: AspenRaft, shared: SharedRaft, window: ElectionWindow) {
    let metrics = raft.metrics();
    let node_id = metrics.borrow_watched().id;
    let contact = shared.contact();
    let mut drawn_for = None;
    let mut timeout = window.draw();
    loop {
        let (term, duty) = {
            let metrics = metrics.borrow_watched();
            if metrics.running_state.is_err() {
                return;
            }
            (metrics.current_term, duty(&metrics))
        };
        if drawn_for != Some(term) {
            drawn_for = Some(term);
            timeout = window.draw();
        }
        let now = Instant::now();
        let due = match duty {
            Duty::None => {
                // Nothing to time; a node that stops leading starts from here.
                contact.heard_at(now);
                now + window.min
            }
            Duty::CampaignNow => now,
            Duty::Follow => contact.last() + timeout,
        };
        if due > now {
            sleep_until(due).await;
            continue;
        }
        if shared.elections_enabled() {
            tracing::info!(node_id, ?timeout, "no leader heard within the timeout: campaigning");
            if raft.trigger().elect(true).await.is_err() {
                return; // the instance stopped
            }
            contact.heard_at(now);
            timeout = window.draw();
        }
        // Give the campaign its time (or, with elections off, wait) before looking again.
        sleep_until(now + window.min).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_the_one_openraft_used_and_draws_stay_inside_it() {
        let config = openraft::Config {
            heartbeat_interval: 100,
            election_timeout_min: 101,
            election_timeout_max: 1000,
            ..Default::default()
        };
        let window = ElectionWindow::of(&config);
        assert_eq!(window.min, Duration::from_millis(1101));
        assert_eq!(window.max, Duration::from_millis(2000));
        for _ in 0..1000 {
            let drawn = window.draw();
            assert!(window.min <= drawn && drawn < window.max, "{drawn:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn contact_only_moves_forward() {
        let contact = LeaderContact::default();
        let start = contact.last();
        tokio::time::advance(Duration::from_millis(50)).await;
        contact.heard();
        let heard = contact.last();
        assert_eq!(heard - start, Duration::from_millis(50));
        contact.heard_at(start);
        assert_eq!(contact.last(), heard, "an older contact does not move it back");
    }
}
