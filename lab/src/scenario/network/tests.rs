//! Network faults in scenario files: the JSON forms, errors that name their path, and the
//! checks against the network mode and the nodes that exist.

use super::*;

/// Parses one network fault as a scenario step holds it, or the error's path and message.
fn parse(text: &str) -> Result<NetworkFault, (String, String)> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| (error.path().to_string(), error.inner().to_string()))
}

fn errors(text: &str, network: Network, nodes: u32) -> Vec<String> {
    let fault = parse(text).expect("parses");
    let scope = NodeScope::new(nodes);
    let found = check_network_fault("steps[2].network_fault", &fault, network, &scope);
    found.iter().map(ToString::to_string).collect()
}

const EVERY_KIND: [&str; 8] = [
    r#"{"isolate": {"node": "leader"}}"#,
    r#"{"split": {"groups": [[0, 1], [2]]}}"#,
    r#"{"one_way": {"from": 0, "to": "leader"}}"#,
    r#""bridge""#,
    r#""majorities_ring""#,
    r#"{"delay": {"ms": 100, "jitter_ms": 20, "node": 1}}"#,
    r#"{"loss": {"percent": 10}}"#,
    r#""heal""#,
];

#[test]
fn every_kind_parses_round_trips_and_names_itself() {
    let mut kinds = Vec::new();
    for text in EVERY_KIND {
        let fault = parse(text).unwrap_or_else(|error| panic!("{text}: {error:?}"));
        let again = serde_json::to_string(&fault).expect("serializes");
        assert_eq!(parse(&again).expect("reparses"), fault, "{text}");
        assert!(fault.to_string().starts_with(fault.kind().name()), "{fault}");
        assert_eq!(NetworkFaultKind::from_name(fault.kind().name()), Some(fault.kind()));
        kinds.push(fault.kind());
    }
    assert_eq!(kinds, NetworkFaultKind::ALL, "one of each kind, in declaration order");
    let partitions: Vec<&str> =
        kinds.iter().filter(|kind| kind.is_partition()).map(|kind| kind.name()).collect();
    assert_eq!(partitions, ["isolate", "split", "one_way", "bridge", "majorities_ring"]);
}

#[test]
fn a_delay_without_jitter_or_node_is_steady_and_everywhere() {
    let fault = parse(r#"{"delay": {"ms": 50}}"#).expect("parses");
    assert_eq!(fault, NetworkFault::Delay(DelayFault { ms: 50, jitter_ms: 0, node: None }));
    assert_eq!(fault.to_string(), "delay 50±0 ms on every node");
    let loss = parse(r#"{"loss": {"percent": 5, "node": "random_follower"}}"#).expect("parses");
    assert_eq!(loss.to_string(), "loss 5% on a random follower");
}

#[test]
fn type_errors_name_the_path() {
    let (path, message) = parse(r#"{"isolate": {"node": "boss"}}"#).unwrap_err();
    assert_eq!(path, "isolate.node");
    assert!(message.contains(r#"expected a node index, "leader" or "random_follower""#));
    let (path, message) = parse(r#"{"delay": {"ms": 5, "jiter_ms": 1}}"#).unwrap_err();
    assert_eq!(path, "delay.jiter_ms");
    assert!(message.starts_with("unknown field `jiter_ms`"), "{message}");
    let (_, message) = parse(r#""partition""#).unwrap_err();
    assert!(message.starts_with("unknown variant `partition`"), "{message}");
    let (path, _) = parse(r#"{"split": {"groups": [[0], [-1]]}}"#).unwrap_err();
    assert_eq!(path, "split.groups[1][0]");
}

#[test]
fn valid_faults_pass_on_a_netns_cluster_of_five() {
    for text in EVERY_KIND {
        let split_of_five = text.replace("[[0, 1], [2]]", "[[0, 1], [2, 3, 4]]");
        assert_eq!(errors(&split_of_five, Network::Netns, 5), Vec::<String>::new(), "{text}");
    }
}

#[test]
fn network_faults_need_the_netns_network() {
    assert_eq!(
        errors(r#""heal""#, Network::Loopback, 3),
        [r#"steps[2].network_fault: network faults need "network": "netns""#]
    );
}

#[test]
fn a_split_puts_every_node_in_exactly_one_group() {
    assert_eq!(
        errors(r#"{"split": {"groups": [[0, 1], [1], [], [7]]}}"#, Network::Netns, 4),
        [
            "steps[2].network_fault.split.groups[1][0]: node 1 is already in groups[0]",
            "steps[2].network_fault.split.groups[2]: is empty",
            r#"steps[2].network_fault.split.groups[3][0]: expected a node index below 4, "leader" or "random_follower""#,
            "steps[2].network_fault.split.groups: node 2 is in no group",
            "steps[2].network_fault.split.groups: node 3 is in no group",
        ]
    );
    assert_eq!(
        errors(r#"{"split": {"groups": [[0, 1, 2]]}}"#, Network::Netns, 3),
        ["steps[2].network_fault.split.groups: needs 2 or more groups"]
    );
}

#[test]
fn bounds_and_node_counts_are_checked() {
    let netns = |text: &str, nodes| errors(text, Network::Netns, nodes);
    assert_eq!(
        netns(r#"{"delay": {"ms": 0, "jitter_ms": 5, "node": 3}}"#, 3),
        [
            r#"steps[2].network_fault.delay.node: expected a node index below 3, "leader" or "random_follower""#,
            "steps[2].network_fault.delay.ms: expected 1 to 10000, got 0",
            "steps[2].network_fault.delay.jitter_ms: expected at most ms (0), got 5",
        ]
    );
    assert_eq!(
        netns(r#"{"loss": {"percent": 101}}"#, 3),
        ["steps[2].network_fault.loss.percent: expected 1 to 100, got 101"]
    );
    assert_eq!(
        netns(r#"{"one_way": {"from": "leader", "to": "leader"}}"#, 3),
        ["steps[2].network_fault.one_way.to: must differ from `from`"]
    );
    assert_eq!(netns(r#""bridge""#, 2), ["steps[2].network_fault.bridge: needs 3 or more nodes"]);
    assert_eq!(
        netns(r#""majorities_ring""#, 3),
        ["steps[2].network_fault.majorities_ring: needs 4 or more nodes (with 3, every node \
             sees every other)"]
    );
    assert_eq!(
        netns(r#"{"isolate": {"node": "random_follower"}}"#, 1),
        [r#"steps[2].network_fault.isolate.node: "random_follower" needs 2 or more nodes"#]
    );
}

#[test]
fn the_schema_describes_every_network_fault_with_the_same_bounds() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema.json")).expect("JSON");
    let text = schema["$defs"]["network_fault"].to_string();
    for kind in NetworkFaultKind::ALL {
        assert!(text.contains(&format!("\"{}\"", kind.name())), "schema lacks {kind}");
    }
    assert!(text.contains(&format!("\"maximum\":{}", limits::NETWORK_DELAY_MS_MAX)));
    assert!(text.contains(&format!("\"maximum\":{}", limits::NETWORK_LOSS_PERCENT_MAX)));
    assert_eq!(schema["$defs"]["network_fault_step"]["required"][0], "network_fault");
}
