//! The shapes of the API's request and result types, for the OpenAPI document.
//!
//! The types themselves live in [`crate::api`], which knows nothing of HTTP and does not depend
//! on utoipa; these mirrors describe their JSON form under the same names. They are never
//! built: the tests below serialize a value of each real type and check it against its mirror,
//! so that the document cannot drift from what the server really sends and accepts.

#![allow(dead_code)]

use utoipa::ToSchema;

/// A node as the control plane sees it.
#[derive(ToSchema)]
pub struct ClusterNode {
    /// The node's Raft id.
    id: u64,
    /// Where the node's API is served (for example its HTTP address); absent or empty when
    /// adding a learner means "as the peer announced it".
    #[schema(required = false)]
    addr: String,
    /// The node's iroh endpoint: an endpoint id, or endpoint address JSON; absent or `null`
    /// means "look it up in the peer book".
    raft_addr: Option<String>,
}

/// Create a new cluster with these voting members.
#[derive(ToSchema)]
pub struct InitRequest {
    /// The first voters; the node receiving the request must be one of them.
    initial_members: Vec<ClusterNode>,
}

/// Add a non-voting learner that receives the log.
#[derive(ToSchema)]
pub struct AddLearnerRequest {
    /// The node to add.
    learner: ClusterNode,
}

/// Replace the set of voters; every id must already be a member or a learner.
#[derive(ToSchema)]
pub struct ChangeMembershipRequest {
    /// The new voters.
    members: Vec<u64>,
}

/// Remove a node from the membership entirely; a voter is not kept as a learner.
#[derive(ToSchema)]
pub struct RemoveNodeRequest {
    /// The node to remove.
    node_id: u64,
}

/// The cluster's membership as replicated through Raft.
#[derive(ToSchema)]
pub struct ClusterState {
    /// Every node known to the membership (voters and learners), sorted by id.
    nodes: Vec<ClusterNode>,
    /// The voting members, sorted.
    members: Vec<u64>,
    /// The learners, sorted.
    learners: Vec<u64>,
}

/// A change to the key-value state, applied atomically through the Raft log.
#[derive(ToSchema)]
pub enum WriteCommand {
    /// Set one key to a value.
    Set {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Set several keys at once; all or none are applied.
    SetMulti {
        /// `[key, value]` pairs, applied in order.
        pairs: Vec<(String, String)>,
    },
    /// Remove a key (removing a missing key succeeds).
    Delete {
        /// The key.
        key: String,
    },
    /// Set `key` to `new_value` only if its value is `expected` (`null`: only if absent).
    CompareAndSwap {
        /// The key.
        key: String,
        /// The value the key must have now, or `null` for "absent".
        expected: Option<String>,
        /// The value to set.
        new_value: String,
    },
}

/// A write to apply.
#[derive(ToSchema)]
pub struct WriteRequest {
    /// What to change.
    command: WriteCommand,
}

/// What a successful write reports.
#[derive(ToSchema)]
pub struct WriteResult {
    /// The command that was applied.
    command: WriteCommand,
    /// The Raft log index at which it was applied.
    log_index: u64,
}

/// Read one key; linearizably unless `consistency` says `serializable`.
#[derive(ToSchema)]
pub struct ReadRequest {
    /// The key.
    key: String,
    /// How fresh the answer must be; `linearizable` when absent.
    #[schema(required = false)]
    consistency: ReadConsistency,
}

/// How fresh a read must be, as in etcd.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ReadConsistency {
    /// Reflects every write acknowledged before the read began (a ReadIndex round through the
    /// leader; a follower forwards the read).
    Linearizable,
    /// Answered by the receiving node from what it has applied, with no round trip; may miss
    /// recent writes, never sees an uncommitted one.
    Serializable,
}

/// The value of a key.
#[derive(ToSchema)]
pub struct ReadResult {
    /// The key that was read.
    key: String,
    /// Its value.
    value: String,
}

/// List keys that start with a prefix, in key order, linearizably.
#[derive(ToSchema)]
pub struct ScanRequest {
    /// The prefix; empty or absent lists every key.
    #[schema(default = "")]
    prefix: Option<String>,
    /// Most entries to return (default 1000, at most 10000).
    limit: Option<u32>,
}

/// The result of a scan.
#[derive(ToSchema)]
pub struct ScanResult {
    /// `[key, value]` pairs, in key order.
    entries: Vec<(String, String)>,
    /// True when more keys match than the limit allowed to return.
    truncated: bool,
}

/// How a peer became known.
#[derive(ToSchema)]
pub enum PeerSource {
    /// Given by an operator.
    Manual,
    /// Taken from the replicated Raft membership.
    Membership,
    /// A bootstrap peer of the node's cluster ticket.
    Ticket,
    /// A signed gossip announcement by the peer itself.
    Gossip,
    /// An mDNS record on the local network, under the service name derived from the cookie.
    Mdns,
    /// A DNS lookup of the peer's endpoint id at the configured DNS discovery server.
    Dns,
}

/// One known peer.
#[derive(ToSchema)]
pub struct PeerEntry {
    /// The peer's Raft node id.
    node_id: u64,
    /// Its iroh endpoint address: `{"id": "<endpoint id>", "addrs": [...]}`.
    #[schema(value_type = Object)]
    endpoint_addr: (),
    /// How the addresses above became known.
    source: PeerSource,
    /// Where its HTTP API is served (`host:port`), as it announced; absent when unknown.
    api_addr: Option<String>,
    /// True when an operator named the peer (manually or in a ticket): it may call Raft RPC
    /// before the membership names it.
    operator_named: bool,
    /// When it was last added or confirmed, in milliseconds since the Unix epoch.
    last_seen_unix_ms: u64,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde::Serialize;
    use serde_json::Value;
    use utoipa::PartialSchema;

    use crate::api;

    /// The property names an object schema (or any `oneOf` branch of it) declares, and the
    /// names it requires.
    fn declared<S: PartialSchema>() -> (BTreeSet<String>, BTreeSet<String>) {
        let schema = serde_json::to_value(S::schema()).unwrap();
        let branches = match schema.get("oneOf") {
            Some(Value::Array(branches)) => branches.clone(),
            _ => vec![schema],
        };
        let (mut properties, mut required) = (BTreeSet::new(), BTreeSet::new());
        for branch in branches {
            if let Some(Value::Object(map)) = branch.get("properties") {
                properties.extend(map.keys().cloned());
            }
            if let Some(Value::Array(names)) = branch.get("required") {
                required.extend(names.iter().filter_map(|n| n.as_str().map(str::to_owned)));
            }
        }
        (properties, required)
    }

    /// Every field the real value sends is declared, and every declared-required field is sent.
    fn assert_mirrors<S: PartialSchema>(real: impl Serialize, what: &str) {
        let value = serde_json::to_value(real).unwrap();
        let sent: BTreeSet<String> = value.as_object().unwrap().keys().cloned().collect();
        let (properties, required) = declared::<S>();
        assert!(sent.is_subset(&properties), "{what}: sends {sent:?}, declares {properties:?}");
        assert!(required.is_subset(&sent), "{what}: requires {required:?}, sends {sent:?}");
    }

    #[test]
    fn the_mirrors_match_the_real_types() {
        let node = api::ClusterNode::new(1, "127.0.0.1:8080", Some("abc"));
        let set = api::WriteCommand::Set { key: "k".into(), value: "v".into() };
        assert_mirrors::<super::ClusterNode>(&node, "ClusterNode");
        assert_mirrors::<super::InitRequest>(
            api::InitRequest { initial_members: vec![node.clone()] },
            "InitRequest",
        );
        assert_mirrors::<super::AddLearnerRequest>(
            api::AddLearnerRequest { learner: node.clone() },
            "AddLearnerRequest",
        );
        assert_mirrors::<super::ChangeMembershipRequest>(
            api::ChangeMembershipRequest { members: vec![1] },
            "ChangeMembershipRequest",
        );
        assert_mirrors::<super::RemoveNodeRequest>(
            api::RemoveNodeRequest { node_id: 2 },
            "RemoveNodeRequest",
        );
        assert_mirrors::<super::ClusterState>(api::ClusterState::default(), "ClusterState");
        assert_mirrors::<super::WriteRequest>(
            api::WriteRequest { command: set.clone() },
            "WriteRequest",
        );
        assert_mirrors::<super::WriteResult>(
            api::WriteResult { command: set.clone(), log_index: 1 },
            "WriteResult",
        );
        assert_mirrors::<super::ReadRequest>(api::ReadRequest::new("k"), "ReadRequest");
        assert_mirrors::<super::ReadRequest>(api::ReadRequest::serializable("k"), "ReadRequest");
        assert_eq!(
            serde_json::to_value(api::ReadRequest::serializable("k")).unwrap()["consistency"],
            "serializable",
            "the consistency names in the document are the ones sent"
        );
        assert_mirrors::<super::ReadResult>(
            api::ReadResult { key: "k".into(), value: "v".into() },
            "ReadResult",
        );
        assert_mirrors::<super::ScanRequest>(
            api::ScanRequest { prefix: "p".into(), limit: Some(1) },
            "ScanRequest",
        );
        assert_mirrors::<super::ScanResult>(
            api::ScanResult { entries: vec![("k".into(), "v".into())], truncated: false },
            "ScanResult",
        );
        let key = iroh::SecretKey::from_bytes(&[1; 32]);
        let entry = crate::discovery::PeerEntry {
            node_id: 2,
            endpoint_addr: iroh::EndpointAddr::new(key.public()),
            source: crate::discovery::PeerSource::Gossip,
            api_addr: Some("127.0.0.1:8080".into()),
            operator_named: false,
            last_seen_unix_ms: 0,
        };
        assert_mirrors::<super::PeerEntry>(&entry, "PeerEntry");
    }

    #[test]
    fn every_write_command_variant_is_declared() {
        let (variants, _) = declared::<super::WriteCommand>();
        let commands = [
            api::WriteCommand::Set { key: "k".into(), value: "v".into() },
            api::WriteCommand::SetMulti { pairs: vec![("k".into(), "v".into())] },
            api::WriteCommand::Delete { key: "k".into() },
            api::WriteCommand::CompareAndSwap {
                key: "k".into(),
                expected: None,
                new_value: "v".into(),
            },
        ];
        for command in commands {
            let value = serde_json::to_value(&command).unwrap();
            let (name, fields) = value.as_object().unwrap().iter().next().unwrap();
            assert!(variants.contains(name), "{name} not in {variants:?}");
            let schema = serde_json::to_value(<super::WriteCommand as PartialSchema>::schema());
            let text = schema.unwrap().to_string();
            for field in fields.as_object().unwrap().keys() {
                assert!(text.contains(&format!("\"{field}\"")), "{name}.{field}");
            }
        }
    }
}
