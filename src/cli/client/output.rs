//! How `aspen` prints answers and errors.
//!
//! Human output is short and plain, like etcdctl's: `kv get` prints the value alone (so
//! `$(aspen kv get k)` works), writes print `OK`, scans print `key=value` lines, the cluster
//! is a small table. Notes that are not the answer (a truncated scan) go to stderr so that
//! stdout stays the answer. `--json` prints the node's JSON as one line; on a server error it
//! prints the error body (`{"error", "kind", ...}`) to stdout too, so a script can read, say,
//! the `current` value of a failed compare-and-swap.

use std::fmt::Write as _;

use serde_json::Value;

use super::commands::{Outcome, View};
use super::http::ClientError;

/// What to print.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Printed {
    /// For stdout (no trailing newline; empty prints nothing).
    pub stdout: String,
    /// For stderr (no trailing newline; empty prints nothing).
    pub stderr: String,
}

/// The rendering of a successful answer.
pub fn render_outcome(outcome: &Outcome, json: bool) -> Printed {
    if json {
        return Printed { stdout: outcome.json.to_string(), stderr: String::new() };
    }
    match &outcome.view {
        View::Written(result) => Printed::out(format!("OK (log index {})", result.log_index)),
        View::Value(read) => Printed::out(read.value.clone()),
        View::Scan(scan) => {
            let lines: Vec<String> = scan.entries.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let note = if scan.truncated {
                format!("({} entries shown; more keys match: raise --limit)", scan.entries.len())
            } else {
                String::new()
            };
            Printed { stdout: lines.join("\n"), stderr: note }
        }
        View::Cluster { state, leader } => Printed::out(render_cluster(state, *leader)),
        View::Line(line) => Printed::out(line.clone()),
        View::Fields(value) => Printed::out(render_fields(value)),
        View::Peers(value) => Printed::out(render_peers(value)),
        View::Text(text) => Printed::out(text.trim_end().to_string()),
    }
}

/// The rendering of a failure: the server's sentence on stderr, and with `--json` the server's
/// error body on stdout.
pub fn render_error(error: &ClientError, json: bool) -> Printed {
    let stdout = match error {
        ClientError::Server { body, .. } if json && !body.is_null() => body.to_string(),
        _ => String::new(),
    };
    Printed { stdout, stderr: format!("aspen: {error}") }
}

impl Printed {
    fn out(stdout: String) -> Self {
        Self { stdout, stderr: String::new() }
    }
}

/// `ID  ROLE  ADDR  ENDPOINT` rows, then the leader.
fn render_cluster(state: &crate::api::ClusterState, leader: Option<u64>) -> String {
    let mut text = format!("{:<6} {:<8} {:<22} {}\n", "ID", "ROLE", "ADDR", "ENDPOINT");
    for node in &state.nodes {
        let role = if state.members.contains(&node.id) { "voter" } else { "learner" };
        let role = if leader == Some(node.id) { "leader" } else { role };
        let endpoint = node.raft_addr.as_deref().map(endpoint_id_of).unwrap_or("-".into());
        let addr = if node.addr.is_empty() { "-" } else { &node.addr };
        let _ = writeln!(text, "{:<6} {:<8} {:<22} {}", node.id, role, addr, endpoint);
    }
    match leader {
        Some(id) => {
            let _ = write!(text, "leader: {id}");
        }
        None => text.push_str("leader: unknown"),
    }
    text
}

/// The endpoint id of an endpoint given as an id or as address JSON (shorter to read).
fn endpoint_id_of(raft_addr: &str) -> String {
    crate::discovery::parse_endpoint(raft_addr)
        .map(|addr| addr.id.to_string())
        .unwrap_or_else(|_| raft_addr.to_string())
}

/// `key: value` lines; strings unquoted, everything else as compact JSON.
fn render_fields(value: &Value) -> String {
    let Value::Object(object) = value else { return value.to_string() };
    let lines: Vec<String> = object
        .iter()
        .map(|(key, value)| match value {
            Value::String(text) => format!("{key}: {text}"),
            other => format!("{key}: {other}"),
        })
        .collect();
    lines.join("\n")
}

/// One peer per line when the answer is a list of peers (or `{"peers": [...]}`), else the
/// JSON as it is.
fn render_peers(value: &Value) -> String {
    let list = match value {
        Value::Array(list) => list,
        Value::Object(object) => match object.get("peers") {
            Some(Value::Array(list)) => list,
            _ => return render_fields(value),
        },
        other => return other.to_string(),
    };
    if list.is_empty() {
        return "(no peers)".into();
    }
    let lines: Vec<String> = list
        .iter()
        .map(|peer| {
            let id = peer.get("node_id").map(Value::to_string).unwrap_or("?".into());
            let source = peer.get("source").and_then(Value::as_str).unwrap_or("");
            let endpoint = peer.get("endpoint_addr").map(Value::to_string).unwrap_or_default();
            format!("{id} {source} {endpoint}").replace("  ", " ")
        })
        .collect();
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{
        ClusterNode, ClusterState, ReadResult, ScanResult, WriteCommand, WriteResult,
    };
    use serde_json::json;

    fn outcome(view: View) -> Outcome {
        Outcome { json: json!({"any": 1}), view }
    }

    #[test]
    fn human_output_is_plain() {
        let read = ReadResult { key: "k".into(), value: "v 1".into() };
        assert_eq!(render_outcome(&outcome(View::Value(read)), false).stdout, "v 1");
        let write = WriteResult { command: WriteCommand::Delete { key: "k".into() }, log_index: 7 };
        assert_eq!(
            render_outcome(&outcome(View::Written(write)), false).stdout,
            "OK (log index 7)"
        );
        let scan = ScanResult { entries: vec![("a".into(), "1".into())], truncated: true };
        let printed = render_outcome(&outcome(View::Scan(scan)), false);
        assert_eq!(printed.stdout, "a=1");
        assert!(printed.stderr.contains("--limit"));
    }

    #[test]
    fn json_output_is_the_nodes_json_on_one_line() {
        let printed = render_outcome(&outcome(View::Line("x".into())), true);
        assert_eq!(printed.stdout, r#"{"any":1}"#);
        let error = ClientError::Server {
            status: 409,
            kind: "cas_failed".into(),
            message: "compare-and-swap failed".into(),
            body: json!({"error": "compare-and-swap failed", "kind": "cas_failed", "current": "1"}),
        };
        let printed = render_error(&error, true);
        assert_eq!(serde_json::from_str::<Value>(&printed.stdout).unwrap()["current"], "1");
        assert_eq!(printed.stderr, "aspen: compare-and-swap failed");
        assert!(render_error(&error, false).stdout.is_empty());
    }

    #[test]
    fn the_cluster_is_a_table_with_the_leader() {
        let state = ClusterState {
            nodes: vec![ClusterNode::new(1, "127.0.0.1:8080", None), ClusterNode::new(2, "", None)],
            members: vec![1],
            learners: vec![2],
        };
        let text = render_cluster(&state, Some(1));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("1") && lines[1].contains("leader"), "{text}");
        assert!(lines[2].contains("learner"), "{text}");
        assert_eq!(lines[3], "leader: 1");
    }

    #[test]
    fn peers_are_one_per_line() {
        let peers = json!([{"node_id": 2, "source": "Manual", "endpoint_addr": {"id": "ab"}}]);
        assert_eq!(render_peers(&peers), r#"2 Manual {"id":"ab"}"#);
        assert_eq!(render_peers(&json!({"peers": []})), "(no peers)");
    }
}
