//! The checks other than linearizability, on small synthetic runs.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::history::{
    Event, EventKind, Events, History, ManualClock, OpFunction, OpType, OpValue, Recorder,
};

/// Builds a history from `(time_ms, process, action)` steps: `w:v` / `r` / `cas:e:n` invoke on
/// key `k` via node `process % 3`, `ok`, `ok:v` (a read's value), `fail`, `info` complete.
fn history(steps: &[(u64, u64, &str)]) -> History {
    let clock = ManualClock::default();
    let mut recorder = Recorder::new(clock.clone());
    for (time_ms, process, action) in steps {
        clock.set_ns(time_ms * 1_000_000);
        let node = Some((*process % 3) as u32);
        let parts: Vec<&str> = action.split(':').collect();
        let result = match parts.as_slice() {
            ["w", value] => recorder.invoke(
                *process,
                OpFunction::Write,
                "k",
                OpValue::Value(value.to_string()),
                node,
            ),
            ["r"] => recorder.invoke(*process, OpFunction::Read, "k", OpValue::Absent, node),
            ["cas", expected, new] => {
                let value =
                    OpValue::Cas { expected: Some(expected.to_string()), new: new.to_string() };
                recorder.invoke(*process, OpFunction::Cas, "k", value, node)
            }
            ["ok"] => recorder.complete(*process, OpType::Ok, None),
            ["ok", value] => recorder.complete(*process, OpType::Ok, Some(value.to_string())),
            ["fail"] => recorder.complete(*process, OpType::Fail, None),
            ["info"] => recorder.complete(*process, OpType::Info, None),
            _ => panic!("bad step {action}"),
        };
        result.unwrap_or_else(|error| panic!("{action}: {error}"));
    }
    recorder.into_history()
}

fn event(time_ms: u64, kind: EventKind, node: u32, detail: &str) -> Event {
    Event { time_ns: time_ms * 1_000_000, kind, node: Some(node), detail: detail.into() }
}

#[test]
fn durability_passes_when_acknowledged_writes_are_read_or_replaced() {
    let verdict = check_durability(&history(&[
        (0, 0, "w:1"),
        (1, 1, "w:2"), // concurrent with write 1, so either may win
        (2, 0, "ok"),
        (3, 1, "ok"),
        (4, 2, "w:3"),
        (5, 2, "info"), // may have happened after both
        (10, 0, "r"),
        (11, 0, "ok:3"),
    ]));
    assert_eq!(verdict.outcome, Outcome::Pass, "{verdict}");
    assert_eq!(verdict.reason, "all 2 acknowledged writes are readable at the end");
}

#[test]
fn durability_names_a_lost_write_by_key_value_and_node() {
    let verdict = check_durability(&history(&[
        (0, 0, "w:1"),
        (1, 0, "ok"),
        (2, 1, "w:2"),
        (3, 1, "ok"),
        (10, 2, "r"),
        (11, 2, "ok:1"),
    ]));
    assert_eq!(verdict.outcome, Outcome::Fail);
    assert_eq!(
        verdict.reason,
        "key \"k\": write of \"2\" acknowledged by node 1 at 0.003 s is lost: the final read on \
         node 2 at 0.010 s found \"1\", which no operation that may follow the write wrote"
    );
    let absent =
        check_durability(&history(&[(0, 0, "w:1"), (1, 0, "ok"), (5, 1, "r"), (6, 1, "ok")]));
    assert!(absent.reason.contains("found the key absent"), "{absent}");
    let no_final_read =
        check_durability(&history(&[(0, 0, "r"), (1, 0, "ok"), (2, 0, "w:1"), (3, 0, "ok")]));
    assert_eq!(no_final_read.outcome, Outcome::Unknown, "{no_final_read}");
}

#[test]
fn failover_measures_new_leader_and_first_write_after_a_leader_loss() {
    let events = Events::from_events(vec![
        event(0, EventKind::Leader, 0, "term 1"),
        event(100, EventKind::FaultStart, 1, "kill"), // a follower: not a leader loss
        event(1_000, EventKind::FaultStart, 0, "kill"),
        event(2_500, EventKind::Leader, 2, "term 2"),
    ]);
    let history =
        history(&[(1_100, 1, "w:1"), (1_200, 1, "fail"), (1_300, 1, "w:2"), (3_000, 1, "ok")]);
    let verdict = check_failover(&history, &events, 5_000);
    assert_eq!(verdict.outcome, Outcome::Pass, "{verdict}");
    assert_eq!(
        verdict.reason,
        "leader node 0 lost at 1.000 s (kill): node 2 led after 1.500 s, writes resumed after 2.000 s"
    );
    let slow = check_failover(&history, &events, 1_800);
    assert_eq!(slow.outcome, Outcome::Fail);
    assert!(slow.reason.ends_with("over the bound of 1800 ms"), "{slow}");
    let no_leader = Events::from_events(events.events()[..3].to_vec());
    let verdict = check_failover(&history, &no_leader, 5_000);
    assert_eq!(verdict.reason, "leader node 0 lost at 1.000 s (kill): no new leader was observed");
    let follower_only = Events::from_events(events.events()[..2].to_vec());
    assert_eq!(check_failover(&history, &follower_only, 5_000).outcome, Outcome::Unknown);
}

#[test]
fn liveness_needs_a_success_soon_after_the_last_heal() {
    let events = Events::from_events(vec![
        event(1_000, EventKind::FaultStart, 0, "pause"),
        event(2_000, EventKind::FaultEnd, 0, "resume"),
    ]);
    let good = history(&[(2_100, 0, "r"), (2_400, 0, "ok:1")]);
    let verdict = check_liveness(&good, &events, &[0, 1, 2], 1_000);
    assert_eq!(verdict.outcome, Outcome::Pass, "{verdict}");
    assert_eq!(
        verdict.reason,
        "the first operation after the last fault healed at 2.000 s succeeded via node 0 after 0.400 s"
    );
    let stuck = history(&[(2_100, 0, "w:1"), (9_000, 0, "info")]);
    assert_eq!(check_liveness(&stuck, &events, &[0, 1, 2], 1_000).outcome, Outcome::Fail);
    let late = history(&[(2_100, 0, "w:1"), (9_000, 0, "ok")]);
    assert!(
        check_liveness(&late, &events, &[0, 1, 2], 1_000)
            .reason
            .ends_with("over the bound of 1000 ms")
    );
}

#[test]
fn liveness_after_a_heal_needs_a_write_and_a_read_on_every_node_and_names_the_one_missing() {
    let start = |time_ms: u64, node| Event {
        time_ns: time_ms * 1_000_000,
        kind: EventKind::NodeStart,
        node: Some(node),
        detail: String::new(),
    };
    let heal = Event {
        time_ns: 2_000_000_000,
        kind: EventKind::FaultEnd,
        node: None,
        detail: crate::history::NETWORK_HEAL.into(),
    };
    let partition = event(1_000, EventKind::FaultStart, 2, "isolate node 2");
    let events = Events::from_events(vec![start(0, 0), start(0, 1), start(0, 2), partition, heal]);
    // Node `process % 3`: processes 3, 4, 5 write on nodes 0, 1, 2; 6, 7, 8 read on them.
    let mut steps = Vec::new();
    for process in 3..9 {
        let action = if process < 6 { "w:1" } else { "r" };
        steps.push((2_100 + process * 10, process, action));
    }
    for process in 3..9 {
        steps.push((2_500 + process * 10, process, if process < 6 { "ok" } else { "ok:1" }));
    }
    let verdict = check_liveness(&history(&steps), &events, &[0, 1, 2], 1_000);
    assert_eq!(verdict.outcome, Outcome::Pass, "{verdict}");
    assert_eq!(
        verdict.reason,
        "after the heal at 2.000 s: 3 nodes wrote and read, the last after 0.580 s"
    );
    // Node 2's read fails: the verdict names node 2.
    let last = steps.len() - 1;
    steps[last].2 = "fail";
    let verdict = check_liveness(&history(&steps), &events, &[0, 1, 2], 1_000);
    assert_eq!(verdict.outcome, Outcome::Fail, "{verdict}");
    assert_eq!(
        verdict.reason,
        "after the heal at 2.000 s, node 2: no successful read within 1000 ms"
    );
    // A node that is not a member at the end is not required.
    let verdict = check_liveness(&history(&steps), &events, &[0, 1], 1_000);
    assert_eq!(verdict.outcome, Outcome::Pass, "{verdict}");
}

#[test]
fn a_partition_that_isolates_the_leader_is_a_leader_loss() {
    let events = Events::from_events(vec![
        event(500, EventKind::Leader, 0, "term 1"),
        event(1_000, EventKind::FaultStart, 0, "isolate the leader"),
        event(2_000, EventKind::Leader, 1, "term 2"),
    ]);
    let history = history(&[(1_100, 1, "w:1"), (2_200, 1, "ok")]);
    let verdict = check_failover(&history, &events, 5_000);
    assert_eq!(verdict.outcome, Outcome::Pass, "{verdict}");
    assert!(
        verdict.reason.starts_with("leader node 0 lost at 1.000 s (isolate the leader)"),
        "{verdict}"
    );
    let follower = Events::from_events(vec![
        event(500, EventKind::Leader, 0, "term 1"),
        event(1_000, EventKind::FaultStart, 2, "isolate node 2"),
    ]);
    assert_eq!(check_failover(&history, &follower, 5_000).outcome, Outcome::Unknown);
}

#[test]
fn replication_names_the_node_and_key_that_differ() {
    let state = |node, digest: &str, value: &str| NodeState {
        node,
        digest: Some(digest.into()),
        values: Some(BTreeMap::from([
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), value.to_string()),
        ])),
    };
    let same = [state(0, "d1", "2"), state(1, "d1", "2"), state(2, "d1", "2")];
    assert_eq!(check_replication(&same).outcome, Outcome::Pass);
    let differs = [state(0, "d1", "2"), state(1, "d2", "3"), state(2, "d1", "2")];
    let verdict = check_replication(&differs);
    assert_eq!(verdict.outcome, Outcome::Fail);
    assert_eq!(
        verdict.reason,
        "node 1 differs from nodes 0, 2: key \"b\" is \"3\" on node 1 and \"2\" on node 0"
    );
    let silent = [state(0, "d1", "2"), NodeState { node: 1, digest: None, values: None }];
    assert_eq!(check_replication(&silent).reason, "node 1 did not report a state digest");
    let no_values = [
        NodeState { node: 0, digest: Some("x".into()), values: None },
        NodeState { node: 1, digest: Some("y".into()), values: None },
    ];
    assert_eq!(check_replication(&no_values).reason, "node 1 reports digest y, node 0 report x");
}

#[test]
fn discovery_names_the_missing_peers() {
    let peers = |node, known: &[u32]| NodePeers {
        node,
        known: Some(known.iter().copied().collect::<BTreeSet<_>>()),
    };
    assert_eq!(
        check_discovery(&[peers(0, &[1, 2]), peers(1, &[0, 2]), peers(2, &[0, 1])]).outcome,
        Outcome::Pass
    );
    let verdict =
        check_discovery(&[peers(0, &[1]), peers(1, &[0, 2]), NodePeers { node: 2, known: None }]);
    assert_eq!(verdict.reason, "node 0 does not know node 2\nnode 2 did not report its peers");
}

#[test]
fn the_overall_outcome_is_the_worst_one() {
    let pass = CheckVerdict::pass(crate::scenario::CheckKind::Discovery, "fine");
    let unknown = CheckVerdict::unknown(crate::scenario::CheckKind::Liveness, "no data");
    let fail = CheckVerdict::fail(crate::scenario::CheckKind::Durability, "lost");
    assert_eq!(overall(&[]), Outcome::Pass);
    assert_eq!(overall(&[pass.clone(), unknown.clone()]), Outcome::Unknown);
    assert_eq!(overall(&[unknown, fail, pass]), Outcome::Fail);
}

/// A member report: peers and membership as `(node id, endpoint id)`, refusals since the
/// intruder started.
fn member(node: u32, known: &[(u64, &str)], refused: u64) -> MemberReport {
    let known: Vec<KnownNode> = known
        .iter()
        .map(|(node_id, endpoint)| KnownNode {
            node_id: *node_id,
            endpoint_id: Some(endpoint.to_string()),
        })
        .collect();
    MemberReport {
        node,
        peers: Some(known.clone()),
        membership: Some(known),
        refused_since_intruder: Some(refused),
    }
}

fn intruder(sent: Option<u64>) -> Intruder {
    Intruder { node_id: 100, endpoint_id: "ee11ee11ee11ee11".into(), announcements_sent: sent }
}

#[test]
fn no_intruder_passes_when_every_member_kept_it_out_and_turned_it_away() {
    let members = [
        member(0, &[(2, "bb"), (3, "cc")], 5),
        member(1, &[(1, "aa"), (3, "cc")], 4),
        member(2, &[(1, "aa"), (2, "bb")], 0),
    ];
    let verdict = check_no_intruder(Some(&intruder(Some(0))), &members);
    assert_eq!(verdict.outcome, Outcome::Pass, "{verdict}");
    assert_eq!(
        verdict.reason,
        "3 members: the intruder (node 100, endpoint ee11ee11ee) is in no peer book and no \
         membership; they refused 9 of its Raft RPC connections (node 0 5, node 1 4, node 2 0); \
         it sent no gossip announcement (no member joins the topic of another cookie)"
    );
}

#[test]
fn no_intruder_fails_when_a_peer_book_or_membership_holds_it_by_id_or_endpoint() {
    let mut by_id = member(0, &[(2, "bb")], 5);
    by_id.peers.as_mut().unwrap().push(KnownNode { node_id: 100, endpoint_id: None });
    let by_endpoint = member(1, &[(1, "aa"), (7, "ee11ee11ee11ee11")], 5);
    let verdict = check_no_intruder(Some(&intruder(Some(3))), &[by_id, by_endpoint]);
    assert_eq!(verdict.outcome, Outcome::Fail, "{verdict}");
    assert_eq!(
        verdict.reason,
        "node 0's peer book holds the intruder (node 100, endpoint ee11ee11ee) as node 100 at \
         endpoint none\n\
         node 1's peer book holds the intruder (node 100, endpoint ee11ee11ee) as node 7 at \
         endpoint ee11ee11ee\n\
         node 1's membership holds the intruder (node 100, endpoint ee11ee11ee) as node 7 at \
         endpoint ee11ee11ee"
    );
    // A sighting fails the check even when another member is silent.
    let silent =
        MemberReport { node: 2, peers: None, membership: None, refused_since_intruder: None };
    let in_membership = member(0, &[(100, "ff")], 0);
    let verdict = check_no_intruder(Some(&intruder(None)), &[in_membership, silent]);
    assert_eq!(verdict.outcome, Outcome::Fail, "{verdict}");
}

#[test]
fn no_intruder_is_undecided_without_evidence_that_the_intruder_reached_the_cluster() {
    let untouched = [member(0, &[(2, "bb")], 0), member(1, &[(1, "aa")], 0)];
    let verdict = check_no_intruder(Some(&intruder(Some(0))), &untouched);
    assert_eq!(verdict.outcome, Outcome::Unknown, "{verdict}");
    assert_eq!(
        verdict.reason,
        "no member refused a Raft RPC connection since the intruder started: no evidence that \
         the intruder (node 100, endpoint ee11ee11ee) reached the cluster"
    );
    let mut silent = member(1, &[(1, "aa")], 3);
    silent.membership = None;
    let verdict = check_no_intruder(Some(&intruder(None)), &[member(0, &[(2, "bb")], 3), silent]);
    assert_eq!(verdict.outcome, Outcome::Unknown, "{verdict}");
    assert_eq!(
        verdict.reason,
        "node 1 did not answer /cluster/state\n\
         the intruder did not answer /metrics: it was not running"
    );
    let verdict = check_no_intruder(None, &untouched);
    assert_eq!(verdict.reason, "no intruder was started");
}
