//! A small blocking HTTP client for one node's API.
//!
//! One request per call, JSON in and out, every call bounded by `limits::CLI_REQUEST_TIMEOUT_MS_MAX`.
//! An answer outside 2xx is decoded as the API's error body `{"error": "...", "kind": "..."}`
//! and becomes [`ClientError::Server`], so the caller can print the server's own sentence and
//! pick an exit code from its kind.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::cli::ExitStatus;
use crate::limits::{CLI_REQUEST_TIMEOUT_MS_MAX, CLI_RESPONSE_BYTES_MAX};

/// Why a request failed, grouped by what the caller does with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// The command line was wrong (a bad `--node` URL, an argument the server cannot take).
    #[error("{reason}")]
    Usage {
        /// What is wrong.
        reason: String,
    },
    /// The node could not be reached or did not answer in time.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// The URL that was called.
        url: String,
        /// The transport error.
        reason: String,
    },
    /// The node answered with an error.
    #[error("{message}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The error kind (`not_found`, `cas_failed`, ...), empty if the body had none.
        kind: String,
        /// The server's sentence.
        message: String,
        /// The whole error body, for `--json`.
        body: Value,
    },
    /// The node answered with something that is not what the API promises.
    #[error("unexpected answer from the node: {reason}")]
    BadAnswer {
        /// What did not decode.
        reason: String,
    },
}

impl ClientError {
    /// The exit code for this error.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            ClientError::Usage { .. } => ExitStatus::Usage,
            ClientError::Server { kind, .. } if kind == "not_found" => ExitStatus::NotFound,
            ClientError::Server { kind, .. } if kind == "cas_failed" => ExitStatus::CasMismatch,
            _ => ExitStatus::Error,
        }
    }
}

/// A client of one node.
#[derive(Debug, Clone)]
pub struct NodeClient {
    base: String,
    agent: ureq::Agent,
}

impl NodeClient {
    /// A client for the node at `url` (`http://host:port`; a bare `host:port` means http).
    pub fn new(url: &str) -> Result<Self, ClientError> {
        let base = normalize_base_url(url)?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_millis(CLI_REQUEST_TIMEOUT_MS_MAX)))
            .build();
        Ok(Self { base, agent: config.into() })
    }

    /// The node's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET path`, decoded as JSON.
    pub fn get_json(&self, path: &str) -> Result<Value, ClientError> {
        let text = self.get_text(path)?;
        decode_json(&text)
    }

    /// `GET path` as text (for Prometheus metrics).
    pub fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let url = format!("{}{path}", self.base);
        let response = self.agent.get(&url).call();
        self.finish(&url, response)
    }

    /// `POST path` with a JSON body, decoded as JSON.
    pub fn post_json(&self, path: &str, body: &impl Serialize) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let response = self.agent.post(&url).send_json(body);
        let text = self.finish(&url, response)?;
        decode_json(&text)
    }

    fn finish(
        &self,
        url: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<String, ClientError> {
        let unreachable = |e: ureq::Error| ClientError::Unreachable {
            url: url.to_string(),
            reason: e.to_string(),
        };
        let mut response = response.map_err(unreachable)?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(CLI_RESPONSE_BYTES_MAX)
            .read_to_string()
            .map_err(unreachable)?;
        if (200..300).contains(&status) { Ok(text) } else { Err(server_error(status, &text)) }
    }
}

/// `http://host:port` without a trailing slash; refuses other schemes.
pub fn normalize_base_url(url: &str) -> Result<String, ClientError> {
    let url = url.trim().trim_end_matches('/');
    let with_scheme = if url.contains("://") { url.to_string() } else { format!("http://{url}") };
    if !with_scheme.starts_with("http://") {
        return Err(ClientError::Usage {
            reason: format!("--node {url:?}: only http:// is supported (the node API has no TLS)"),
        });
    }
    if with_scheme.len() <= "http://".len() {
        return Err(ClientError::Usage { reason: format!("--node {url:?}: no host") });
    }
    Ok(with_scheme)
}

/// The API's error body as a [`ClientError::Server`]; a body that is not the API's JSON keeps
/// its text as the message.
pub fn server_error(status: u16, text: &str) -> ClientError {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let message =
        body.get("error").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| match text
            .trim()
        {
            "" => format!("the node answered HTTP {status}"),
            other => format!("the node answered HTTP {status}: {other}"),
        });
    let kind = body.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
    ClientError::Server { status, kind, message, body }
}

fn decode_json(text: &str) -> Result<Value, ClientError> {
    serde_json::from_str(text).map_err(|e| ClientError::BadAnswer { reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    /// Serves one canned answer per connection, for as many connections as there are answers.
    fn serve(answers: Vec<(u16, &'static str)>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for (status, body) in answers {
                let (mut stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                }
                let mut request_body = vec![0; length];
                reader.read_exact(&mut request_body).unwrap();
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(answer.as_bytes()).unwrap();
            }
        });
        format!("http://{addr}")
    }

    #[test]
    fn answers_and_errors_decode_with_their_exit_codes() {
        let url = serve(vec![
            (200, r#"{"key":"a","value":"1"}"#),
            (404, r#"{"error":"key not found: b","kind":"not_found"}"#),
            (409, r#"{"error":"compare-and-swap failed on a","kind":"cas_failed","current":"1"}"#),
            (503, "overloaded"),
        ]);
        let client = NodeClient::new(&url).unwrap();
        let read = client.post_json("/read", &serde_json::json!({"key": "a"})).unwrap();
        assert_eq!(read["value"], "1");
        let missing = client.post_json("/read", &serde_json::json!({"key": "b"})).unwrap_err();
        assert_eq!(missing.exit_status(), ExitStatus::NotFound);
        assert_eq!(missing.to_string(), "key not found: b");
        let cas = client.post_json("/write", &serde_json::json!({})).unwrap_err();
        assert_eq!(cas.exit_status(), ExitStatus::CasMismatch);
        let ClientError::Server { body, .. } = &cas else { panic!() };
        assert_eq!(body["current"], "1");
        let plain = client.get_json("/health").unwrap_err();
        assert_eq!(plain.exit_status(), ExitStatus::Error);
        assert!(plain.to_string().contains("503: overloaded"), "{plain}");
    }

    #[test]
    fn an_unreachable_node_is_an_error_naming_the_url() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let client = NodeClient::new(&format!("127.0.0.1:{port}")).unwrap();
        let error = client.get_json("/health").unwrap_err();
        assert!(matches!(error, ClientError::Unreachable { .. }), "{error:?}");
        assert!(error.to_string().contains(&format!("http://127.0.0.1:{port}/health")));
        assert_eq!(error.exit_status(), ExitStatus::Error);
    }

    #[test]
    fn node_urls_are_normalized() {
        assert_eq!(normalize_base_url("127.0.0.1:8080/").unwrap(), "http://127.0.0.1:8080");
        assert_eq!(normalize_base_url("http://h:1").unwrap(), "http://h:1");
        let error = normalize_base_url("https://h:1").unwrap_err();
        assert_eq!(error.exit_status(), ExitStatus::Usage);
    }
}
