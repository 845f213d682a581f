//! What a test prints: a human table and one JSON line.
//!
//! Every test ends in one [`TestReport`]: throughput, latency percentiles, errors, and the CPU
//! the node processes (and the benchmark itself) spent per operation. When the run knows the
//! machine's floor (measured with `--floor-dir`, or read back with `--floor` from the JSON
//! lines `aspen-bench floor` wrote), each figure is also given as a ratio to it:
//! `latency / floor` for the percentiles, and `ops/s × floor` for throughput (1.0 means as
//! many operations per second as one client doing nothing but the floor back to back).

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::floor::Floor;
use crate::stats::LatencySummary;

/// The result of one test, serialized as one JSON line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestReport {
    /// `put`, `get`, `mixed`, `failover`, `idle`, `floor-fsync`, `floor-udp` or `floor-redb`.
    pub test: String,
    /// For `get`: `linearizable` or `serializable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<String>,
    /// Client threads.
    pub clients: usize,
    /// HTTP connections.
    pub conns: usize,
    /// The HTTP version the clients spoke (1 or 2), for the tests that talk to nodes. Over
    /// HTTP/2 up to `clients` requests are in flight, over HTTP/1.1 up to `conns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<u8>,
    /// Node endpoints the connections were spread over.
    pub endpoints: usize,
    /// Key size in bytes.
    pub key_bytes: usize,
    /// Value size in bytes.
    pub value_bytes: usize,
    /// Acknowledged operations.
    pub ops: u64,
    /// Failed operations.
    pub errors: u64,
    /// Wall-clock seconds of the timed phase.
    pub seconds: f64,
    /// Acknowledged operations per second.
    pub ops_per_s: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 90th percentile latency.
    pub p90_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    /// Largest latency.
    pub max_ms: f64,
    /// CPU seconds (user + system) all node processes used per operation, if their pids were
    /// given and all of them lived through the test.
    pub node_cpu_s_per_op: Option<f64>,
    /// CPU seconds the benchmark itself used per operation; for `floor-redb`, per durable
    /// commit (the commits are the benchmark's own work).
    pub client_cpu_s_per_op: Option<f64>,
    /// The floor latency this test is compared with (write or read floor), if known.
    pub floor_ms: Option<f64>,
    /// Each figure as a ratio to the floor, if known.
    pub floor_ratio: Option<FloorRatio>,
    /// The failover figures, for `failover` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<FailoverFigures>,
    /// The idle figures, for `idle` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<IdleFigures>,
}

/// What the node processes use with no load.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IdleFigures {
    /// CPU seconds per second of all node processes together (1.0 is one core busy).
    pub node_cpu_cores: f64,
    /// Resident memory of each node process at the end, in MiB, in pid order.
    pub node_rss_mib: Vec<f64>,
}

/// Figures divided by the floor latency (throughput multiplied by it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct FloorRatio {
    /// `ops_per_s × floor_s`.
    pub ops_per_s: f64,
    /// `p50 / floor`.
    pub p50: f64,
    /// `p90 / floor`.
    pub p90: f64,
    /// `p99 / floor`.
    pub p99: f64,
    /// `max / floor`.
    pub max: f64,
}

/// What the failover test measured besides the writes' latencies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FailoverFigures {
    /// The node that led and was killed.
    pub old_leader: u64,
    /// The node a survivor named as leader afterwards.
    pub new_leader: Option<u64>,
    /// From SIGKILL to a survivor naming a new leader.
    pub new_leader_ms: Option<f64>,
    /// From SIGKILL to the first acknowledgement of a write sent after it.
    pub first_ack_ms: Option<f64>,
    /// From restarting the killed node to its `/health` answering 200.
    pub restart_ready_ms: Option<f64>,
    /// The pid of the restarted node (it outlives the benchmark).
    pub restarted_pid: Option<u32>,
}

impl TestReport {
    /// Fills in the latency figures, throughput and errors of `summary` over `seconds`.
    pub fn set_latencies(&mut self, summary: &LatencySummary, errors: u64, seconds: f64) {
        self.ops = summary.count;
        self.errors = errors;
        self.seconds = seconds;
        self.ops_per_s = if seconds > 0.0 { summary.count as f64 / seconds } else { 0.0 };
        self.p50_ms = summary.p50_ms;
        self.p90_ms = summary.p90_ms;
        self.p99_ms = summary.p99_ms;
        self.max_ms = summary.max_ms;
    }

    /// Sets the floor this test compares with and the ratios to it.
    pub fn set_floor(&mut self, floor_ms: f64) {
        if floor_ms <= 0.0 {
            return;
        }
        self.floor_ms = Some(floor_ms);
        self.floor_ratio = Some(FloorRatio {
            ops_per_s: self.ops_per_s * floor_ms / 1000.0,
            p50: self.p50_ms / floor_ms,
            p90: self.p90_ms / floor_ms,
            p99: self.p99_ms / floor_ms,
            max: self.max_ms / floor_ms,
        });
    }

    /// The JSON line.
    pub fn json_line(&self) -> String {
        serde_json::to_string(self).expect("a report serializes")
    }

    /// The human table: a header, the figures, and the floor ratios if known.
    pub fn table(&self) -> String {
        let name = match &self.consistency {
            Some(consistency) => format!("{} ({consistency})", self.test),
            None => self.test.clone(),
        };
        let micros = |s: Option<f64>| s.map_or("-".to_string(), |s| format!("{:.1}", s * 1e6));
        let http = match self.http {
            Some(1) => "1.1".to_string(),
            Some(version) => version.to_string(),
            None => "-".to_string(),
        };
        let mut text = format!(
            "{:<24} {:>7} {:>5} {:>4} {:>8} {:>6} {:>9} {:>8} {:>8} {:>8} {:>8} {:>12} {:>12}\n",
            "test",
            "clients",
            "conns",
            "http",
            "ops",
            "errors",
            "ops/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "node µs/op",
            "bench µs/op"
        );
        text += &format!(
            "{:<24} {:>7} {:>5} {:>4} {:>8} {:>6} {:>9.1} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>12} \
             {:>12}\n",
            name,
            self.clients,
            self.conns,
            http,
            self.ops,
            self.errors,
            self.ops_per_s,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.max_ms,
            micros(self.node_cpu_s_per_op),
            micros(self.client_cpu_s_per_op),
        );
        if let (Some(floor), Some(ratio)) = (self.floor_ms, self.floor_ratio) {
            text += &format!(
                "{:<24} {:>7} {:>5} {:>4} {:>8} {:>6} {:>8.2}x {:>7.1}x {:>7.1}x {:>7.1}x {:>7.1}x\n",
                format!("  × floor {floor:.3} ms"),
                "",
                "",
                "",
                "",
                "",
                ratio.ops_per_s,
                ratio.p50,
                ratio.p90,
                ratio.p99,
                ratio.max
            );
        }
        text += &self.extra_lines();
        text
    }

    /// The idle and failover sentences, for the tests that have them.
    fn extra_lines(&self) -> String {
        let mut text = String::new();
        if let Some(idle) = &self.idle {
            let rss: Vec<String> = idle.node_rss_mib.iter().map(|m| format!("{m:.1}")).collect();
            text += &format!(
                "idle for {:.1} s: the nodes used {:.1} % of one core; resident memory per node: \
                 {} MiB\n",
                self.seconds,
                idle.node_cpu_cores * 100.0,
                rss.join(", ")
            );
        }
        if let Some(failover) = &self.failover {
            let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} ms"));
            text += &format!(
                "killed leader {} -> new leader {}: new leader after {}, first acknowledged write \
                 after {}; restarted node ready after {}\n",
                failover.old_leader,
                failover.new_leader.map_or("-".to_string(), |id| id.to_string()),
                ms(failover.new_leader_ms),
                ms(failover.first_ack_ms),
                ms(failover.restart_ready_ms),
            );
        }
        text
    }
}

/// Prints the table and the JSON line to stdout, and appends the line to `json_out` if given.
pub fn emit(report: &TestReport, json_out: Option<&Path>) -> std::io::Result<()> {
    let line = report.json_line();
    print!("{}", report.table());
    println!("{line}");
    append_line(json_out, &line)
}

fn append_line(path: Option<&Path>, line: &str) -> std::io::Result<()> {
    let Some(path) = path else { return Ok(()) };
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    writeln!(file, "{line}")
}

/// The floor from JSON lines that `aspen-bench floor` wrote (other lines are skipped, and so is
/// `floor-redb`: the write floor is one fsync and one round trip).
pub fn load_floor(path: &Path) -> Result<Floor, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut fsync_ms = None;
    let mut udp_ms = None;
    for line in text.lines().filter(|line| line.starts_with('{')) {
        let Ok(report) = serde_json::from_str::<TestReport>(line) else { continue };
        match report.test.as_str() {
            "floor-fsync" => fsync_ms = Some(report.p50_ms),
            "floor-udp" => udp_ms = Some(report.p50_ms),
            _ => {}
        }
    }
    match (fsync_ms, udp_ms) {
        (Some(fsync_ms), Some(udp_ms)) => Ok(Floor { fsync_ms, udp_ms }),
        _ => Err(format!("{}: no floor-fsync and floor-udp lines", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_divide_latencies_and_multiply_throughput() {
        let mut report = TestReport {
            test: "put".into(),
            clients: 1,
            conns: 1,
            http: Some(2),
            ..Default::default()
        };
        let summary =
            LatencySummary { count: 1000, p50_ms: 0.8, p90_ms: 1.0, p99_ms: 2.0, max_ms: 4.0 };
        report.set_latencies(&summary, 0, 0.5);
        assert_eq!(report.ops_per_s, 2000.0);
        report.set_floor(0.2);
        let ratio = report.floor_ratio.unwrap();
        assert!((ratio.p50 - 4.0).abs() < 1e-9 && (ratio.max - 20.0).abs() < 1e-9);
        assert!((ratio.ops_per_s - 0.4).abs() < 1e-9);
        let line = report.json_line();
        let back: TestReport = serde_json::from_str(&line).unwrap();
        assert_eq!(back, report);
        assert!(report.table().contains("× floor 0.200 ms"), "{}", report.table());
        assert!(line.contains(r#""http":2"#), "{line}");
        let header = report.table().lines().next().unwrap_or_default().to_string();
        assert!(header.contains(" conns http "), "{header}");
    }

    #[test]
    fn a_read_names_its_consistency_in_the_table_and_the_json_line() {
        let report = TestReport {
            test: "get".into(),
            consistency: Some("serializable".into()),
            ..Default::default()
        };
        let table = report.table();
        let row = table.lines().nth(1).unwrap_or_default();
        assert!(row.starts_with("get (serializable) "), "{table}");
        let line = report.json_line();
        assert!(line.contains(r#""consistency":"serializable""#), "{line}");
        let put = TestReport { test: "put".into(), ..Default::default() };
        assert!(!put.json_line().contains("consistency"), "{}", put.json_line());
    }

    #[test]
    fn the_floor_is_read_back_from_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("floor.jsonl");
        let mut fsync = TestReport { test: "floor-fsync".into(), ..Default::default() };
        fsync.p50_ms = 0.16;
        let mut udp = TestReport { test: "floor-udp".into(), ..Default::default() };
        udp.p50_ms = 0.05;
        let text = format!("table text\n{}\n{}\n", fsync.json_line(), udp.json_line());
        std::fs::write(&path, text).unwrap();
        let floor = load_floor(&path).unwrap();
        assert_eq!(floor, Floor { fsync_ms: 0.16, udp_ms: 0.05 });
        std::fs::write(&path, fsync.json_line()).unwrap();
        assert!(load_floor(&path).is_err());
    }

    #[test]
    fn a_floor_redb_line_leaves_the_floor_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("floor.jsonl");
        let line = |test: &str, p50_ms: f64| {
            let mut report = TestReport { test: test.into(), ..Default::default() };
            report.p50_ms = p50_ms;
            report.client_cpu_s_per_op = Some(120e-6);
            report.json_line()
        };
        let redb = line("floor-redb", 0.25);
        let fsync = line("floor-fsync", 0.16);
        let udp = line("floor-udp", 0.05);
        for order in [[&fsync, &udp, &redb], [&redb, &fsync, &udp]] {
            let text = order.map(|line| format!("{line}\n")).concat();
            std::fs::write(&path, text).unwrap();
            let floor = load_floor(&path).unwrap();
            assert_eq!(floor, Floor { fsync_ms: 0.16, udp_ms: 0.05 });
            assert!((floor.write_ms() - 0.21).abs() < 1e-9, "{floor:?}");
        }
        std::fs::write(&path, format!("{fsync}\n{redb}\n")).unwrap();
        assert!(load_floor(&path).is_err(), "floor-redb does not stand in for floor-udp");
    }
}
