//! Which nodes a test talks to, which processes it accounts CPU to, and who leads.
//!
//! Nodes come from `--endpoints` (HTTP addresses), their processes from `--pids` (`PID` or
//! `ID=PID`, comma-separated), or both from `--cluster-dir`, the directory `scripts/bench.sh`
//! writes:
//!
//! ```text
//! <cluster-dir>/node-<id>.url   http://127.0.0.1:<port>  (the node's HTTP API)
//! <cluster-dir>/node-<id>.pid   <pid>                    (rewritten when failover restarts it)
//! <cluster-dir>/node-<id>.log   the node's output (a restarted node appends to it)
//! ```
//!
//! Flags win over the directory. The leader is whoever the first answering node names in its
//! `/raft-metrics` (`current_leader`), and how far a node has applied the log is its
//! `last_applied` there: a serializable read waits for every node to have applied the keys it
//! reads, since each node answers it from its own state.
//!
//! Caveats:
//! - A pid given without its node id gets the id from the process's `--node-id` argument; a
//!   node configured only through a config file or `ASPEN_NODE_ID` needs `ID=PID`.
//! - Waiting for the nodes to apply waits for the most advanced of the endpoints given: when
//!   they leave the leader out, writes it applied that none of them has are not waited for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::client::{Connection, HttpVersion};
use crate::cpu::read_small;
use crate::limits::{CATCH_UP_POLL_INTERVAL_MS, ENDPOINTS_MAX};
use crate::process::Relaunch;

/// The nodes of a test.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Targets {
    /// HTTP addresses, in the order given (sorted by node id when read from a cluster dir).
    pub endpoints: Vec<String>,
    /// Node processes: pid by node id where known.
    pub pids: Vec<NodePid>,
    /// The cluster dir, if one was given.
    pub cluster_dir: Option<PathBuf>,
}

/// One node process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodePid {
    /// The node's Raft id, if known.
    pub node_id: Option<u64>,
    /// Its process id.
    pub pid: i32,
}

impl Targets {
    /// Endpoints and pids from the flags, completed from `cluster_dir`.
    pub fn resolve(
        endpoints: &[String],
        pids: &[String],
        cluster_dir: Option<&Path>,
    ) -> Result<Self, String> {
        let mut targets =
            Targets { cluster_dir: cluster_dir.map(Path::to_path_buf), ..Default::default() };
        let (dir_endpoints, dir_pids) = match cluster_dir {
            Some(dir) => read_cluster_dir(dir)?,
            None => (Vec::new(), Vec::new()),
        };
        targets.endpoints = if endpoints.is_empty() { dir_endpoints } else { endpoints.to_vec() };
        targets.pids = if pids.is_empty() { dir_pids } else { parse_pids(pids)? };
        if targets.endpoints.is_empty() {
            return Err("no endpoints: give --endpoints or --cluster-dir".into());
        }
        if targets.endpoints.len() > ENDPOINTS_MAX {
            return Err(format!("more than {ENDPOINTS_MAX} endpoints (ENDPOINTS_MAX)"));
        }
        Ok(targets)
    }

    /// Every pid, for CPU accounting.
    pub fn pid_list(&self) -> Vec<i32> {
        self.pids.iter().map(|p| p.pid).collect()
    }

    /// The pid of node `node_id`: given as `ID=PID`, or found in a process's `--node-id`.
    pub fn pid_of(&self, node_id: u64) -> Option<i32> {
        self.pids.iter().find_map(|p| match p.node_id {
            Some(id) => (id == node_id).then_some(p.pid),
            None => {
                let id = Relaunch::capture(p.pid).ok()?.node_id()?;
                (id == node_id).then_some(p.pid)
            }
        })
    }

    /// Records that node `node_id` now runs as `pid` (in memory, and in the cluster dir).
    pub fn replace_pid(&mut self, node_id: u64, old: i32, pid: i32) -> Result<(), String> {
        for entry in &mut self.pids {
            if entry.pid == old {
                *entry = NodePid { node_id: Some(node_id), pid };
            }
        }
        if let Some(dir) = &self.cluster_dir {
            let path = dir.join(format!("node-{node_id}.pid"));
            std::fs::write(&path, format!("{pid}\n"))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// Where node `node_id`'s output goes, if there is a cluster dir.
    pub fn log_path(&self, node_id: u64) -> Option<PathBuf> {
        self.cluster_dir.as_ref().map(|dir| dir.join(format!("node-{node_id}.log")))
    }
}

/// `PID` or `ID=PID` items.
pub fn parse_pids(items: &[String]) -> Result<Vec<NodePid>, String> {
    items
        .iter()
        .map(|item| {
            let bad = || format!("--pids: {item:?} is not PID or ID=PID");
            match item.split_once('=') {
                Some((id, pid)) => Ok(NodePid {
                    node_id: Some(id.trim().parse().map_err(|_| bad())?),
                    pid: pid.trim().parse().map_err(|_| bad())?,
                }),
                None => Ok(NodePid { node_id: None, pid: item.trim().parse().map_err(|_| bad())? }),
            }
        })
        .collect()
}

/// The endpoints (sorted by node id) and pids a cluster dir lists.
pub fn read_cluster_dir(dir: &Path) -> Result<(Vec<String>, Vec<NodePid>), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut urls = BTreeMap::new();
    let mut pids = BTreeMap::new();
    for entry in entries.take(4 * ENDPOINTS_MAX + 64) {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let Some((id, extension)) =
            name.strip_prefix("node-").and_then(|rest| rest.split_once('.'))
        else {
            continue;
        };
        let Ok(id) = id.parse::<u64>() else { continue };
        match extension {
            "url" => {
                urls.insert(id, read_small(&path)?.trim().to_string());
            }
            "pid" => {
                let text = read_small(&path)?;
                let pid =
                    text.trim().parse().map_err(|_| format!("{}: not a pid", path.display()))?;
                pids.insert(id, NodePid { node_id: Some(id), pid });
            }
            _ => {}
        }
    }
    Ok((urls.into_values().collect(), pids.into_values().collect()))
}

/// The node id behind each endpoint (`GET /node-info`), in endpoint order.
pub fn node_ids(
    endpoints: &[String],
    timeout: Duration,
    http: HttpVersion,
) -> Result<Vec<u64>, String> {
    endpoints
        .iter()
        .map(|endpoint| {
            let info = Connection::new(endpoint, timeout, http)
                .and_then(|c| c.get_json("/node-info"))
                .map_err(|e| format!("{endpoint}: {e}"))?;
            info.get("node_id").and_then(Value::as_u64).ok_or(format!("{endpoint}: no node_id"))
        })
        .collect()
}

/// The leader named by the first of `connections` that names one.
pub fn current_leader(connections: &[Connection]) -> Option<u64> {
    connections.iter().find_map(leader_named_by)
}

/// The leader `connection`'s node names in its `/raft-metrics`, if any.
pub fn leader_named_by(connection: &Connection) -> Option<u64> {
    connection.get_json("/raft-metrics").ok()?.get("current_leader")?.as_u64()
}

/// The index of the last log entry `connection`'s node applied (`/raft-metrics`'s
/// `last_applied`), if it answers and applied any.
fn last_applied(connection: &Connection) -> Option<u64> {
    connection.get_json("/raft-metrics").ok()?.get("last_applied")?.get("index")?.as_u64()
}

/// Waits until every node of `connections` has applied as far as the most advanced of them had
/// when the wait began, for at most `wait_max`, and returns that index. An acknowledged write
/// is applied on the leader, so with the leader among them every node then holds every write
/// acknowledged before the call.
pub fn wait_until_applied(connections: &[Connection], wait_max: Duration) -> Result<u64, String> {
    let target = connections
        .iter()
        .filter_map(last_applied)
        .max()
        .ok_or("no endpoint told its last applied index (GET /raft-metrics)")?;
    let deadline = Instant::now() + wait_max;
    for connection in connections {
        loop {
            let applied = last_applied(connection);
            if applied.is_some_and(|index| index >= target) {
                break;
            }
            if Instant::now() >= deadline {
                let told = applied.map_or("no answer to GET /raft-metrics".to_string(), |index| {
                    format!("applied up to index {index}")
                });
                return Err(format!(
                    "{}: {told}, not {target}, after {} ms",
                    connection.base_url(),
                    wait_max.as_millis()
                ));
            }
            std::thread::sleep(Duration::from_millis(CATCH_UP_POLL_INTERVAL_MS));
        }
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::client::test_server::{JSON_ERROR, TestServer};

    /// `/raft-metrics` as openraft writes it, trimmed to what the benchmark reads.
    fn metrics(applied: u64) -> String {
        format!(
            r#"{{"current_leader":1,"last_applied":{{"leader_id":{{"term":2,"node_id":1}},"index":{applied}}}}}"#
        )
    }

    fn connections(servers: &[&TestServer]) -> Vec<Connection> {
        let connect =
            |s: &&TestServer| Connection::new(&s.url, Duration::from_secs(5), HttpVersion::Http2);
        servers.iter().map(|s| connect(s).unwrap()).collect()
    }

    #[test]
    fn the_wait_for_applied_entries_ends_once_every_node_caught_up() {
        let ahead = TestServer::answering(|_| (200, metrics(12)));
        // Applied 9 when first asked, then one more entry per question, up to 12.
        let asked = Arc::new(AtomicU64::new(0));
        let behind = TestServer::answering(move |_| {
            (200, metrics(9 + asked.fetch_add(1, Ordering::SeqCst).min(3)))
        });
        let waited = wait_until_applied(&connections(&[&behind, &ahead]), Duration::from_secs(10));
        assert_eq!(waited, Ok(12));
        assert_eq!(behind.requests(), 4, "asked for the target, then until it applied 12");
        assert_eq!(ahead.requests(), 2, "asked for the target, then once: already there");
    }

    #[test]
    fn a_node_that_stays_behind_fails_the_wait_naming_it() {
        let ahead = TestServer::answering(|_| (200, metrics(12)));
        let stuck = TestServer::answering(|_| (200, metrics(3)));
        let error = wait_until_applied(&connections(&[&ahead, &stuck]), Duration::from_millis(200))
            .unwrap_err();
        assert!(error.contains(&stuck.url), "{error}");
        assert!(error.contains("applied up to index 3, not 12, after 200 ms"), "{error}");
        let silent = TestServer::answering(|_| (503, JSON_ERROR.to_owned()));
        let error = wait_until_applied(&connections(&[&silent]), Duration::from_secs(1));
        assert!(error.unwrap_err().contains("/raft-metrics"));
    }

    #[test]
    fn pids_take_both_forms_and_refuse_garbage() {
        let pids = parse_pids(&["1=100".into(), "200".into()]).unwrap();
        assert_eq!(pids[0], NodePid { node_id: Some(1), pid: 100 });
        assert_eq!(pids[1], NodePid { node_id: None, pid: 200 });
        assert!(parse_pids(&["x=1".into()]).unwrap_err().contains("ID=PID"));
    }

    #[test]
    fn a_cluster_dir_gives_endpoints_and_pids_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        for (id, port, pid) in [(2, 8002, 22), (1, 8001, 11), (10, 8010, 1010)] {
            std::fs::write(dir.path().join(format!("node-{id}.url")), format!("http://h:{port}\n"))
                .unwrap();
            std::fs::write(dir.path().join(format!("node-{id}.pid")), format!("{pid}\n")).unwrap();
        }
        std::fs::write(dir.path().join("node-1.log"), "log").unwrap();
        let mut targets = Targets::resolve(&[], &[], Some(dir.path())).unwrap();
        assert_eq!(targets.endpoints, vec!["http://h:8001", "http://h:8002", "http://h:8010"]);
        assert_eq!(targets.pid_list(), vec![11, 22, 1010]);
        assert_eq!(targets.pid_of(2), Some(22));
        targets.replace_pid(2, 22, 33).unwrap();
        assert_eq!(targets.pid_of(2), Some(33));
        assert_eq!(std::fs::read_to_string(dir.path().join("node-2.pid")).unwrap(), "33\n");
        let flags = Targets::resolve(&["h:1".into()], &["5".into()], Some(dir.path())).unwrap();
        assert_eq!((flags.endpoints.len(), flags.pid_list()), (1, vec![5]));
        assert!(Targets::resolve(&[], &[], None).is_err());
    }
}
