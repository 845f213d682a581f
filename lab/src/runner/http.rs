//! Talking to a node's HTTP API from the lab: one blocking request with a timeout, sorted into
//! what the lab needs to know (answered, refused before sending, or lost in flight), and the
//! few metrics the runner reads (Raft's JSON metrics, and counters of the Prometheus page).

use std::time::Duration;

use serde_json::Value;

use super::STATUS_TIMEOUT;

/// A blocking HTTP agent with a timeout.
pub(super) fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// How a request ended.
pub(super) enum Reply {
    /// 2xx with its body.
    Ok(Value),
    /// An error answer: status and kind.
    Error(u16, String),
    /// No answer: connection refused (the request was never sent).
    Refused,
    /// No answer in time, or the connection broke.
    Lost(String),
}

pub(super) fn request(agent: &ureq::Agent, http: &str, path: &str, body: Option<&Value>) -> Reply {
    let url = format!("http://{http}{path}");
    let response = match body {
        Some(body) => agent.post(&url).send_json(body),
        None => agent.get(&url).call(),
    };
    match response {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let text = response.body_mut().read_to_string().unwrap_or_default();
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if (200..300).contains(&status) {
                Reply::Ok(value)
            } else {
                let kind = value.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
                Reply::Error(status, kind)
            }
        }
        Err(ureq::Error::ConnectionFailed) => Reply::Refused,
        Err(ureq::Error::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Reply::Refused
        }
        Err(e) => Reply::Lost(e.to_string()),
    }
}

pub(super) async fn request_async(
    http: String,
    path: &'static str,
    body: Option<Value>,
    timeout: Duration,
) -> Reply {
    tokio::task::spawn_blocking(move || request(&agent(timeout), &http, path, body.as_ref()))
        .await
        .unwrap_or_else(|e| Reply::Lost(e.to_string()))
}

/// Raft metrics of one node, if it answers.
pub(super) async fn metrics(http: Option<String>) -> Option<Value> {
    match request_async(http?, "/raft-metrics", None, STATUS_TIMEOUT).await {
        Reply::Ok(value) => Some(value),
        _ => None,
    }
}

pub(super) fn leader_of(metrics: &Value) -> Option<u64> {
    metrics.get("current_leader")?.as_u64()
}

pub(super) fn applied_of(metrics: &Value) -> Option<u64> {
    let applied = metrics.get("last_applied")?;
    applied.get("index").and_then(Value::as_u64).or_else(|| applied.as_u64())
}

/// The node's Prometheus page (`GET /metrics`), if it answers.
pub(super) async fn metrics_page(http: Option<String>) -> Option<String> {
    let http = http?;
    tokio::task::spawn_blocking(move || {
        let mut response =
            agent(STATUS_TIMEOUT).get(format!("http://{http}/metrics")).call().ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.body_mut().read_to_string().ok()
    })
    .await
    .ok()
    .flatten()
}

/// The value of one series (`name` or `name{labels}`, written exactly as the page does) of a
/// Prometheus text page, for counters and gauges that hold whole numbers.
pub(super) fn metric_value(page: &str, series: &str) -> Option<u64> {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::metric_value;

    #[test]
    fn a_series_is_read_by_its_exact_name_and_labels() {
        let page = "# HELP aspen_rpc_refused_connections_total Raft RPC connections refused.\n\
                    # TYPE aspen_rpc_refused_connections_total counter\n\
                    aspen_rpc_refused_connections_total 6\n\
                    aspen_rpc_refused_connections_total_other 9\n\
                    aspen_gossip_messages_dropped_total{reason=\"wrong_topic\"} 12\n";
        assert_eq!(metric_value(page, "aspen_rpc_refused_connections_total"), Some(6));
        let wrong_topic = r#"aspen_gossip_messages_dropped_total{reason="wrong_topic"}"#;
        assert_eq!(metric_value(page, wrong_topic), Some(12));
        assert_eq!(metric_value(page, "aspen_gossip_messages_dropped_total"), None);
        assert_eq!(metric_value(page, "aspen_missing_total"), None);
    }
}
