//! The node's configuration turned into openraft's: the election timeouts openraft must be
//! given for elections to start inside the node's range, and the validated `openraft::Config`.
//! Apart because it is plain arithmetic with tests of its own, and needs no running part.

use std::sync::Arc;

use super::BootstrapError;
use crate::cluster::config::{ClusterBootstrapConfig, ConfigError};
use crate::limits::{APPEND_ENTRIES_ENTRIES_MAX, SNAPSHOT_TIMEOUT_MS_MAX};

/// openraft's election timeouts for the node's: a follower that hears from no leader for a
/// random time between `election_timeout_min_ms` and `election_timeout_max_ms` starts an
/// election, as in Raft and etcd.
///
/// openraft counts its election timeout only after a leader lease that it sets to its own
/// `election_timeout_max` (engine_config.rs: `leader_lease = election_timeout_max`; a
/// follower refuses votes while that lease holds). Given the node's values as they are, a
/// follower would wait `max + random(min, max)`: 3 to 4 s for 1000–2000 ms. So openraft gets
/// half the largest timeout as its own largest (the lease), and as its smallest what is left of
/// the node's smallest (at least one heartbeat interval and a millisecond): elections then
/// start between `max / 2 + that` and `max`, inside the node's range. When the halves do not
/// fit above the heartbeat interval, openraft gets the node's values unchanged (slower).
///
/// openraft's own timer is off: Aspen's (`raft::election`) draws from that same window,
/// `ElectionWindow::of`, but again at every term. openraft keeps the lease.
pub(crate) fn openraft_election_timeouts(
    heartbeat_ms: u64,
    min_ms: u64,
    max_ms: u64,
) -> (u64, u64) {
    let lease = max_ms / 2;
    let smallest = min_ms.saturating_sub(lease).max(heartbeat_ms + 1);
    if smallest < lease { (smallest, lease) } else { (min_ms, max_ms) }
}

/// openraft's configuration for the node's.
///
/// Pre-Vote is on: a follower whose election timer fires first asks the others whether they
/// would vote for it before it raises its term. Without it, after a leader dies the survivor
/// with the shorter log often times out first, raises its term and votes for itself; the other
/// survivor refuses it (its log is longer) but, timing out a moment later in that same term,
/// finds the first one's vote taken, and the cluster waits a whole further election timeout
/// (seen in the failover benchmark: 0.7 s instead of 0.5 s at 300–600 ms). With Pre-Vote the
/// stale candidate gives up without taking a term, and the survivor with the longer log wins at
/// its first timeout. It also keeps a node that was cut off from raising terms and deposing a
/// healthy leader when it comes back.
pub(super) fn raft_config(
    config: &ClusterBootstrapConfig,
) -> Result<Arc<openraft::Config>, BootstrapError> {
    let (election_timeout_min, election_timeout_max) = openraft_election_timeouts(
        config.heartbeat_interval_ms,
        config.election_timeout_min_ms,
        config.election_timeout_max_ms,
    );
    let raft_config = openraft::Config {
        cluster_name: "aspen".into(),
        heartbeat_interval: config.heartbeat_interval_ms,
        election_timeout_min,
        election_timeout_max,
        max_payload_entries: APPEND_ENTRIES_ENTRIES_MAX,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.snapshot_after_entries),
        max_in_snapshot_log_to_keep: config.logs_kept_after_snapshot,
        install_snapshot_timeout: SNAPSHOT_TIMEOUT_MS_MAX,
        enable_pre_vote: Some(true),
        // Aspen's own election timer (`raft::election`) starts elections: openraft's draws a
        // node's timeout again only when that node campaigns.
        enable_elect: false,
        ..Default::default()
    };
    let validated = raft_config.validate().map_err(|e| {
        BootstrapError::Config(ConfigError {
            field: "election_timeout_min_ms",
            reason: e.to_string(),
        })
    })?;
    Ok(Arc::new(validated))
}

#[cfg(test)]
mod tests {
    use super::openraft_election_timeouts;

    /// When openraft's follower starts an election after it last heard from its leader: its
    /// lease (its largest timeout) plus a timeout drawn between its smallest and largest.
    fn election_window(heartbeat: u64, min: u64, max: u64) -> (u64, u64) {
        let (smallest, largest) = openraft_election_timeouts(heartbeat, min, max);
        (largest + smallest, 2 * largest)
    }

    #[test]
    fn elections_start_inside_the_configured_range() {
        // The benchmark's and etcd's setting, the lab's fast one, and the defaults.
        assert_eq!(openraft_election_timeouts(100, 1000, 2000), (101, 1000));
        assert_eq!(election_window(100, 1000, 2000), (1101, 2000));
        assert_eq!(election_window(100, 500, 1000), (601, 1000));
        assert_eq!(election_window(500, 1500, 3000), (2001, 3000));
        assert_eq!(election_window(50, 1400, 2000), (1400, 2000));
    }

    #[test]
    fn timeouts_too_close_to_the_heartbeat_are_passed_on_unchanged() {
        assert_eq!(openraft_election_timeouts(100, 110, 200), (110, 200));
    }

    #[test]
    fn every_valid_setting_gives_a_valid_openraft_config_inside_the_range() {
        for heartbeat in [10, 50, 100, 250, 500] {
            for min in (heartbeat + 1..=4000).step_by(97) {
                for max in (min + 1..=8000).step_by(211) {
                    let (smallest, largest) = openraft_election_timeouts(heartbeat, min, max);
                    assert!(heartbeat < smallest && smallest < largest, "{heartbeat} {min} {max}");
                    if (smallest, largest) != (min, max) {
                        let (first, last) = election_window(heartbeat, min, max);
                        assert!(min <= first && last <= max, "{heartbeat} {min} {max}");
                    }
                }
            }
        }
    }
}
