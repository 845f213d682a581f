//! The pure half of the network layer: partitions, the generated nftables and tc text, subnet
//! choice and names. The real packets are tested in `lab/tests/netns.rs`.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use super::*;
use crate::scenario::{
    DelayFault, IsolateFault, LossFault, NetworkFault, NodeIndex, NodeSelector, SplitFault,
};

fn cut_links(partition: &Partition) -> Vec<(NodeIndex, NodeIndex)> {
    partition.links().map(|link| (link.from, link.to)).collect()
}

/// Lab at .1, nodes 0..count at .10 and up, as a topology lays them out.
fn addresses(count: u32) -> AddressMap {
    let subnet = Subnet::new(10, 213, 5);
    let nodes = (0..count).map(|n| (n, subnet.node_address(n).unwrap())).collect();
    AddressMap { lab: subnet.lab_address(), nodes }
}

fn conditions(partition: Partition) -> Conditions {
    Conditions { partition, ..Conditions::default() }
}

#[test]
fn isolate_cuts_one_node_from_every_other_both_ways() {
    let partition = Partition::isolate(0, &[0, 1, 2]);
    assert_eq!(cut_links(&partition), [(0, 1), (0, 2), (1, 0), (2, 0)]);
    assert!(!partition.is_cut(1, 2) && !partition.is_cut(2, 1));
}

#[test]
fn split_cuts_every_pair_across_groups_and_refuses_a_node_twice() {
    let partition = Partition::split(&[vec![0, 1], vec![2, 3, 4]]).unwrap();
    for a in 0..5 {
        for b in 0..5 {
            let across = (a < 2) != (b < 2);
            assert_eq!(partition.is_cut(a, b), across, "{a} -> {b}");
        }
    }
    let error = Partition::split(&[vec![0, 1], vec![1, 2]]).unwrap_err();
    assert_eq!(error.to_string(), "node 1 is in two groups");
}

#[test]
fn one_way_cuts_a_single_direction() {
    let partition = Partition::one_way(0, 1).unwrap();
    assert_eq!(cut_links(&partition), [(0, 1)]);
    assert!(Partition::one_way(2, 2).is_err());
}

#[test]
fn bridge_keeps_the_middle_node_in_touch_with_both_halves() {
    let partition = Partition::bridge(&[0, 1, 2, 3, 4]).unwrap();
    let halves = Partition::split(&[vec![0, 1], vec![3, 4]]).unwrap();
    assert_eq!(partition, halves);
    assert!((0..5).all(|n| !partition.is_cut(2, n) && !partition.is_cut(n, 2)));
    // The order given decides who bridges: here node 4 is in the middle.
    let reordered = Partition::bridge(&[0, 1, 4, 2, 3]).unwrap();
    assert!((0..5).all(|n| !reordered.is_cut(4, n)));
    assert!(Partition::bridge(&[0, 1]).is_err());
}

#[test]
fn majorities_ring_gives_each_node_its_own_majority() {
    for count in 4..=9u32 {
        let nodes: Vec<NodeIndex> = (0..count).collect();
        let partition = Partition::majorities_ring(&nodes).unwrap();
        let mut views = BTreeSet::new();
        for node in &nodes {
            let sees: BTreeSet<NodeIndex> =
                nodes.iter().copied().filter(|o| !partition.is_cut(*o, *node)).collect();
            assert!(sees.len() as u32 > count / 2, "{count} nodes: node {node} sees {sees:?}");
            assert!(views.insert(sees), "{count} nodes: two nodes see the same majority");
            for other in &nodes {
                let symmetric = partition.is_cut(*node, *other) == partition.is_cut(*other, *node);
                assert!(symmetric, "{count} nodes: {node} and {other}");
            }
        }
    }
    // Five nodes in a ring: each keeps its two neighbours.
    let five = Partition::majorities_ring(&[0, 1, 2, 3, 4]).unwrap();
    let pairs: Vec<_> = cut_links(&five).into_iter().filter(|(a, b)| a < b).collect();
    assert_eq!(pairs, [(0, 2), (0, 3), (1, 3), (1, 4), (2, 4)]);
    assert!(Partition::majorities_ring(&[0, 1, 2]).is_err());
}

#[test]
fn the_ruleset_of_an_isolated_node_drops_its_peers_and_accepts_the_lab() {
    let rules = nft_ruleset(0, &conditions(Partition::isolate(0, &[0, 1, 2])), &addresses(3));
    assert_eq!(
        rules,
        "add table inet aspen_lab
delete table inet aspen_lab
table inet aspen_lab {
    chain input {
        type filter hook input priority 0; policy accept;
        ip saddr 10.213.5.1 accept
        ip saddr { 10.213.5.11, 10.213.5.12 } drop
        meta nfproto ipv6 iifname != \"lo\" drop
    }
}
"
    );
    let peer = nft_ruleset(1, &conditions(Partition::isolate(0, &[0, 1, 2])), &addresses(3));
    assert!(peer.contains("ip saddr { 10.213.5.10 } drop\n"), "{peer}");
}

#[test]
fn one_way_rules_live_in_the_receiver_only() {
    let one_way = conditions(Partition::one_way(0, 1).unwrap());
    assert_eq!(nft_ruleset(0, &one_way, &addresses(3)), nft_heal());
    assert_eq!(nft_ruleset(2, &one_way, &addresses(3)), nft_heal());
    assert!(nft_ruleset(1, &one_way, &addresses(3)).contains("ip saddr { 10.213.5.10 } drop"));
}

#[test]
fn no_rule_ever_drops_the_lab() {
    let nodes: Vec<NodeIndex> = (0..5).collect();
    let partitions = [
        Partition::isolate(2, &nodes),
        Partition::split(&[vec![0, 1], vec![2, 3, 4]]).unwrap(),
        Partition::one_way(3, 4).unwrap(),
        Partition::bridge(&nodes).unwrap(),
        Partition::majorities_ring(&nodes).unwrap(),
    ];
    let map = addresses(5);
    for partition in partitions {
        let mut conditions = conditions(partition);
        conditions.loss_percent.extend(nodes.iter().map(|n| (*n, 30)));
        for receiver in &nodes {
            let rules = nft_ruleset(*receiver, &conditions, &map);
            let lines: Vec<&str> = rules.lines().filter(|l| l.contains(" drop")).collect();
            assert!(!lines.is_empty());
            for line in &lines {
                assert!(!line.contains("10.213.5.1 ") && !line.contains("10.213.5.1,"), "{line}");
            }
            let accept = rules.find("ip saddr 10.213.5.1 accept").expect("the lab is accepted");
            assert!(rules.find(" drop").is_some_and(|drop| accept < drop), "{rules}");
        }
    }
}

#[test]
fn loss_drops_a_share_of_what_the_lossy_node_sends() {
    let mut lossy = Conditions::default();
    lossy.loss_percent.insert(2, 10);
    let rules = nft_ruleset(0, &lossy, &addresses(3));
    assert!(rules.contains("        ip saddr 10.213.5.12 numgen random mod 100 < 10 drop\n"));
    assert_eq!(nft_ruleset(2, &lossy, &addresses(3)), nft_heal(), "its own packets arrive");
    // Total loss is a plain drop: nft refuses `numgen random mod 100 < 100`.
    lossy.loss_percent.insert(1, 100);
    let total = nft_ruleset(0, &lossy, &addresses(3));
    assert!(total.contains("ip saddr { 10.213.5.11 } drop\n"), "{total}");
    lossy.loss_percent.remove(&1);
    // A cut link drops everything; no loss rule on top.
    lossy.partition = Partition::isolate(2, &[0, 1, 2]);
    let both = nft_ruleset(0, &lossy, &addresses(3));
    assert!(both.contains("{ 10.213.5.12 } drop") && !both.contains("numgen"), "{both}");
}

#[test]
fn netem_arguments_set_and_remove_a_delay() {
    let delay = Delay { ms: 100, jitter_ms: 20 };
    assert_eq!(
        netem_args(Some(delay)).join(" "),
        "qdisc replace dev eth0 root netem delay 100ms 20ms"
    );
    let steady = Delay { ms: 50, jitter_ms: 0 };
    assert_eq!(netem_args(Some(steady)).join(" "), "qdisc replace dev eth0 root netem delay 50ms");
    assert_eq!(netem_args(None).join(" "), "qdisc del dev eth0 root");
}

#[test]
fn faults_change_the_conditions_and_heal_clears_them() {
    let nodes = [0, 1, 2];
    let leader_is_1 = |selector| match selector {
        NodeSelector::Leader => Ok(1),
        NodeSelector::Index(index) => Ok(index),
        NodeSelector::RandomFollower => Err(NetworkError::invalid("no follower")),
    };
    let isolate = NetworkFault::Isolate(IsolateFault { node: NodeSelector::Leader });
    let state = Conditions::default().with_fault(&isolate, &nodes, leader_is_1).unwrap();
    assert_eq!(state.partition, Partition::isolate(1, &nodes));
    let delay = NetworkFault::Delay(DelayFault { ms: 80, jitter_ms: 10, node: None });
    let state = state.with_fault(&delay, &nodes, leader_is_1).unwrap();
    assert_eq!(state.delay.len(), 3, "every node");
    assert_eq!(state.partition, Partition::isolate(1, &nodes), "a delay keeps the partition");
    let split = NetworkFault::Split(SplitFault { groups: vec![vec![0], vec![1, 2]] });
    let state = state.with_fault(&split, &nodes, leader_is_1).unwrap();
    assert_eq!(state.partition, Partition::split(&[vec![0], vec![1, 2]]).unwrap());
    assert_eq!(state.delay.len(), 3, "a partition keeps the delay");
    let loss = NetworkFault::Loss(LossFault { percent: 5, node: Some(NodeSelector::Index(2)) });
    let state = state.with_fault(&loss, &nodes, leader_is_1).unwrap();
    assert_eq!(state.loss_percent.into_iter().collect::<Vec<_>>(), [(2, 5)]);
    let healed = Conditions::default().with_fault(&NetworkFault::Heal, &nodes, leader_is_1);
    assert!(healed.unwrap().is_healthy());
    let follower = NetworkFault::Isolate(IsolateFault { node: NodeSelector::RandomFollower });
    let error = Conditions::default().with_fault(&follower, &nodes, leader_is_1).unwrap_err();
    assert_eq!(error.to_string(), "no follower");
    let ring = Conditions::default().with_fault(&NetworkFault::MajoritiesRing, &nodes, leader_is_1);
    assert!(ring.is_err(), "three nodes cannot form a majorities ring");
}

#[test]
fn a_subnet_avoids_every_route_and_address_of_the_host() {
    let routes = "default via 192.0.2.1 dev eth0
192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.2
10.213.7.0/24 dev aspl-00001200 proto kernel scope link src 10.213.7.1
local 127.0.0.0/8 dev lo table local proto kernel scope host src 127.0.0.1
broadcast 10.213.8.255 dev eth1 table local proto kernel scope link src 10.213.8.1
unreachable 10.213.9.0/24
";
    let addresses = "4: eth0    inet 10.213.10.5/16 brd 10.213.255.255 scope global eth0";
    let taken = taken_prefixes(routes, addresses);
    assert!(taken.contains(&(Ipv4Addr::new(10, 213, 7, 0), 24)));
    assert!(taken.contains(&(Ipv4Addr::new(10, 213, 8, 255), 32)));
    assert!(taken.contains(&(Ipv4Addr::new(10, 213, 9, 0), 24)));
    assert!(!taken.iter().any(|(_, length)| *length == 0), "default routes are left out");
    // Without the address: the first free /24 from the hint on.
    assert_eq!(choose_subnet(&taken[..5], 7), Some(Subnet::new(10, 213, 10)));
    // The address's /16 covers all of 10.213: the next range is used.
    assert_eq!(choose_subnet(&taken, 7), Some(Subnet::new(172, 29, 0)));
    let everything = [(Ipv4Addr::new(0, 0, 0, 0), 1), (Ipv4Addr::new(128, 0, 0, 0), 1)];
    assert_eq!(choose_subnet(&everything, 0), None);
    let subnet = Subnet::new(10, 213, 9);
    assert_eq!(subnet.lab_address(), Ipv4Addr::new(10, 213, 9, 1));
    assert_eq!(subnet.node_address(0), Some(Ipv4Addr::new(10, 213, 9, 10)));
    assert_eq!(subnet.node_address(244), Some(Ipv4Addr::new(10, 213, 9, 254)));
    assert_eq!(subnet.node_address(245), None);
    assert_eq!(subnet.to_string(), "10.213.9.0/24");
}

#[test]
fn names_carry_the_prefix_and_the_run_id_and_fit_the_kernel_limit() {
    let id = RunId::next();
    assert_eq!(id.as_str().len(), 8);
    let host = id.host_link();
    assert!(host.starts_with(NAME_PREFIX) && host.len() <= 15, "{host}");
    for name in [host, id.lab_namespace(), id.node_namespace(8)] {
        assert_eq!(RunId::of_name(&name), Some(id.clone()), "{name}");
    }
    assert!(id.node_namespace(3).starts_with(&id.namespace_prefix()));
    assert_ne!(RunId::next(), id, "each topology of a process has its own id");
    for foreign in ["eth0", "aspl-proto", "aspl-0012AB03", "aspl-12ab", "aspen-0012ab03"] {
        assert_eq!(RunId::of_name(foreign), None, "{foreign}");
    }
}

#[test]
fn a_topology_can_move_to_the_thread_or_actor_that_owns_the_run() {
    fn send<T: Send>() {}
    send::<NetnsTopology>();
}
