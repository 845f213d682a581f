//! Each `aspen` command as HTTP requests to the node, and what came back.
//!
//! A command returns an [`Outcome`]: the node's JSON as it was (printed by `--json`) and a
//! typed [`View`] for the human rendering in [`super::output`].

use serde_json::{Value, json};

use crate::api::{
    AddLearnerRequest, ChangeMembershipRequest, ClusterNode, ClusterState, InitRequest, NodeId,
    ReadRequest, ReadResult, RemoveNodeRequest, ScanRequest, ScanResult, WriteCommand,
    WriteRequest, WriteResult,
};
use crate::discovery::parse_endpoint;

use super::args::{ClusterCommand, Command, KvCommand, NodeCommand};
use super::http::{ClientError, NodeClient};

/// What a command produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The node's answer, for `--json`.
    pub json: Value,
    /// The same answer, typed, for people.
    pub view: View,
}

/// The human-readable shapes of answers.
#[derive(Debug, Clone, PartialEq)]
pub enum View {
    /// A write was applied.
    Written(WriteResult),
    /// The value of a key.
    Value(ReadResult),
    /// The entries of a scan.
    Scan(ScanResult),
    /// The membership, and the leader if the node knows it.
    Cluster {
        /// The replicated membership.
        state: ClusterState,
        /// The current leader.
        leader: Option<NodeId>,
    },
    /// One line of text.
    Line(String),
    /// An object shown as `key: value` lines.
    Fields(Value),
    /// The node's peer list.
    Peers(Value),
    /// Text passed through (Prometheus metrics).
    Text(String),
}

/// Runs `command` against the node. `json` picks the JSON flavour where the two differ
/// (`node metrics`).
pub fn execute(client: &NodeClient, command: &Command, json: bool) -> Result<Outcome, ClientError> {
    match command {
        Command::Kv(kv) => execute_kv(client, kv),
        Command::Cluster(cluster) => execute_cluster(client, cluster),
        Command::Node(node) => execute_node(client, node, json),
    }
}

fn execute_kv(client: &NodeClient, command: &KvCommand) -> Result<Outcome, ClientError> {
    let write = |command: WriteCommand| -> Result<Outcome, ClientError> {
        let answer = client.post_json("/write", &WriteRequest { command })?;
        Ok(Outcome { view: View::Written(decode(&answer)?), json: answer })
    };
    match command {
        KvCommand::Put { key, value } => {
            write(WriteCommand::Set { key: key.clone(), value: value.clone() })
        }
        KvCommand::Delete { key } => write(WriteCommand::Delete { key: key.clone() }),
        KvCommand::Cas { key, expected, expect_absent, new_value } => {
            write(WriteCommand::CompareAndSwap {
                key: key.clone(),
                expected: if *expect_absent { None } else { expected.clone() },
                new_value: new_value.clone(),
            })
        }
        KvCommand::PutMulti { pairs } => write(WriteCommand::SetMulti { pairs: pairs.clone() }),
        KvCommand::Get { key, serializable } => {
            let request = if *serializable {
                ReadRequest::serializable(key.clone())
            } else {
                ReadRequest::new(key.clone())
            };
            let answer = client.post_json("/read", &request)?;
            Ok(Outcome { view: View::Value(decode(&answer)?), json: answer })
        }
        KvCommand::Scan { prefix, limit } => {
            let request = ScanRequest { prefix: prefix.clone().unwrap_or_default(), limit: *limit };
            let answer = client.post_json("/scan", &request)?;
            Ok(Outcome { view: View::Scan(decode(&answer)?), json: answer })
        }
    }
}

fn execute_cluster(client: &NodeClient, command: &ClusterCommand) -> Result<Outcome, ClientError> {
    let answer = match command {
        ClusterCommand::Init { members } => {
            let request = init_request(client, members)?;
            client.post_json("/init", &request)?
        }
        ClusterCommand::AddLearner { id, addr, raft_addr } => {
            let learner = ClusterNode {
                id: *id,
                addr: addr.clone().unwrap_or_default(),
                raft_addr: raft_addr.clone(),
            };
            client.post_json("/add-learner", &AddLearnerRequest { learner })?
        }
        ClusterCommand::ChangeMembership { members } => client.post_json(
            "/change-membership",
            &ChangeMembershipRequest { members: members.clone() },
        )?,
        ClusterCommand::RemoveNode { id } => {
            client.post_json("/remove-node", &RemoveNodeRequest { node_id: *id })?
        }
        ClusterCommand::Status => client.get_json("/cluster/state")?,
        ClusterCommand::Ticket => {
            let answer = client.get_json("/cluster-ticket")?;
            let ticket = string_field(&answer, "ticket")?;
            return Ok(Outcome { view: View::Line(ticket), json: answer });
        }
    };
    cluster_outcome(client, answer)
}

/// The membership answer, with the leader added when the node names one (best effort: the
/// membership is the answer, the leader is a courtesy).
fn cluster_outcome(client: &NodeClient, answer: Value) -> Result<Outcome, ClientError> {
    let state: ClusterState = decode(&answer)?;
    let leader = client
        .get_json("/raft-metrics")
        .ok()
        .and_then(|metrics| metrics.get("current_leader").and_then(Value::as_u64));
    let mut json = answer;
    if let Value::Object(object) = &mut json {
        object.insert("leader".into(), json!(leader));
    }
    Ok(Outcome { json, view: View::Cluster { state, leader } })
}

/// The voters for `cluster init`: the given ones, or the target node alone. The target's own
/// entry gets its HTTP address from `/node-info` when none is given.
fn init_request(
    client: &NodeClient,
    members: &[(NodeId, Option<String>)],
) -> Result<InitRequest, ClientError> {
    let info = client.get_json("/node-info")?;
    let own_id = info
        .get("node_id")
        .and_then(Value::as_u64)
        .ok_or_else(|| ClientError::BadAnswer { reason: "/node-info has no node_id".into() })?;
    let own_addr = info.get("http_addr").and_then(Value::as_str).unwrap_or_default().to_string();
    let members: Vec<(NodeId, Option<String>)> =
        if members.is_empty() { vec![(own_id, None)] } else { members.to_vec() };
    let initial_members = members
        .into_iter()
        .map(|(id, addr)| {
            let addr =
                addr.unwrap_or_else(|| if id == own_id { own_addr.clone() } else { String::new() });
            ClusterNode { id, addr, raft_addr: None }
        })
        .collect();
    Ok(InitRequest { initial_members })
}

fn execute_node(
    client: &NodeClient,
    command: &NodeCommand,
    json: bool,
) -> Result<Outcome, ClientError> {
    match command {
        NodeCommand::Info => {
            let answer = client.get_json("/node-info")?;
            Ok(Outcome { view: View::Fields(answer.clone()), json: answer })
        }
        NodeCommand::Addr => {
            let answer = client.get_json("/node-info")?;
            let addr = answer.get("endpoint_addr").cloned().unwrap_or(Value::Null);
            Ok(Outcome { view: View::Line(addr.to_string()), json: addr })
        }
        NodeCommand::Health => {
            let answer = client.get_json("/health")?;
            let status = answer.get("status").and_then(Value::as_str).unwrap_or("unknown");
            let line = match answer.get("node_id").and_then(Value::as_u64) {
                Some(id) => format!("{status} (node {id})"),
                None => status.to_string(),
            };
            Ok(Outcome { view: View::Line(line), json: answer })
        }
        NodeCommand::Metrics if json => {
            let answer = client.get_json("/raft-metrics")?;
            Ok(Outcome { view: View::Fields(answer.clone()), json: answer })
        }
        NodeCommand::Metrics => {
            let text = client.get_text("/metrics")?;
            Ok(Outcome { json: Value::String(text.clone()), view: View::Text(text) })
        }
        NodeCommand::Peers => {
            let answer = client.get_json("/peers")?;
            Ok(Outcome { view: View::Peers(answer.clone()), json: answer })
        }
        NodeCommand::AddPeer { id, endpoint } => {
            let body = add_peer_body(*id, endpoint)?;
            let answer = client.post_json("/add-peer", &body)?;
            Ok(Outcome { view: View::Line("OK".into()), json: answer })
        }
    }
}

/// `{"node_id": id, "endpoint_addr": <JSON object or endpoint id string>}`, checked first so
/// that a typo is a usage error (exit code 2) and not a server error.
pub fn add_peer_body(id: NodeId, endpoint: &str) -> Result<Value, ClientError> {
    let endpoint = endpoint.trim();
    parse_endpoint(endpoint)
        .map_err(|reason| ClientError::Usage { reason: format!("ENDPOINT: {reason}") })?;
    let endpoint_addr = if endpoint.starts_with('{') {
        serde_json::from_str(endpoint)
            .map_err(|e| ClientError::Usage { reason: format!("ENDPOINT: {e}") })?
    } else {
        Value::String(endpoint.to_string())
    };
    Ok(json!({ "node_id": id, "endpoint_addr": endpoint_addr }))
}

fn decode<T: serde::de::DeserializeOwned>(answer: &Value) -> Result<T, ClientError> {
    serde_json::from_value(answer.clone())
        .map_err(|e| ClientError::BadAnswer { reason: e.to_string() })
}

fn string_field(answer: &Value, field: &str) -> Result<String, ClientError> {
    answer
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ClientError::BadAnswer { reason: format!("no {field:?} in {answer}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_peer_takes_an_id_or_json_and_refuses_typos() {
        let key = iroh::SecretKey::from_bytes(&[3; 32]).public();
        let body = add_peer_body(2, &key.to_string()).unwrap();
        assert_eq!(body["endpoint_addr"], key.to_string());
        let json = format!(r#"{{"id":"{key}","addrs":[]}}"#);
        let body = add_peer_body(2, &json).unwrap();
        assert!(body["endpoint_addr"].is_object());
        let error = add_peer_body(2, "not-an-id").unwrap_err();
        assert_eq!(error.exit_status(), crate::cli::ExitStatus::Usage);
    }
}
