//! The one line `aspen-node` prints to stdout once the node is up.
//!
//! Tests and the lab start a node with `--http-addr 127.0.0.1:0` and learn the bound address,
//! the endpoint id and the control port from this line, so that nobody has to guess ports or
//! scrape logs:
//!
//! ```text
//! aspen-node ready node_id=1 http=127.0.0.1:41234 endpoint_id=ae58… ractor_port=40111 \
//!     endpoint_addr={"id":"ae58…","addrs":[…]}
//! ```
//!
//! It is one line (wrapped here). The fields are `key=value` pairs separated by single
//! spaces; `endpoint_addr` comes last and is compact JSON (the form `--peers ID@JSON` and
//! `POST /add-peer` take).

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use iroh::{EndpointAddr, EndpointId};

use crate::api::NodeId;
use crate::discovery::{endpoint_to_string, parse_endpoint};

/// The words the line starts with.
pub const READY_PREFIX: &str = "aspen-node ready";

/// What a started node announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyLine {
    /// The node's Raft id.
    pub node_id: NodeId,
    /// The address the HTTP API is bound to.
    pub http_addr: SocketAddr,
    /// The node's iroh endpoint id.
    pub endpoint_id: EndpointId,
    /// The ractor_cluster control port.
    pub ractor_port: u16,
    /// The node's iroh endpoint address (id and direct addresses).
    pub endpoint_addr: EndpointAddr,
}

impl fmt::Display for ReadyLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{READY_PREFIX} node_id={} http={} endpoint_id={} ractor_port={} endpoint_addr={}",
            self.node_id,
            self.http_addr,
            self.endpoint_id,
            self.ractor_port,
            endpoint_to_string(&self.endpoint_addr)
        )
    }
}

impl FromStr for ReadyLine {
    type Err = String;

    fn from_str(line: &str) -> Result<Self, String> {
        let rest = line
            .trim()
            .strip_prefix(READY_PREFIX)
            .ok_or_else(|| format!("not a ready line: {line:?}"))?;
        let (head, endpoint_addr) = rest
            .split_once(" endpoint_addr=")
            .ok_or_else(|| format!("ready line without endpoint_addr: {line:?}"))?;
        let mut node_id = None;
        let mut http_addr = None;
        let mut endpoint_id = None;
        let mut ractor_port = None;
        for pair in head.split_whitespace() {
            let (key, value) = pair.split_once('=').ok_or_else(|| format!("bad field {pair:?}"))?;
            let bad = |e: &dyn fmt::Display| format!("bad {key} {value:?}: {e}");
            match key {
                "node_id" => node_id = Some(value.parse().map_err(|e| bad(&e))?),
                "http" => http_addr = Some(value.parse().map_err(|e| bad(&e))?),
                "endpoint_id" => endpoint_id = Some(value.parse().map_err(|e| bad(&e))?),
                "ractor_port" => ractor_port = Some(value.parse().map_err(|e| bad(&e))?),
                _ => {} // Later versions may add fields; old readers skip them.
            }
        }
        let missing = |name: &str| format!("ready line without {name}: {line:?}");
        Ok(ReadyLine {
            node_id: node_id.ok_or_else(|| missing("node_id"))?,
            http_addr: http_addr.ok_or_else(|| missing("http"))?,
            endpoint_id: endpoint_id.ok_or_else(|| missing("endpoint_id"))?,
            ractor_port: ractor_port.ok_or_else(|| missing("ractor_port"))?,
            endpoint_addr: parse_endpoint(endpoint_addr.trim())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_round_trips() {
        let key = iroh::SecretKey::from_bytes(&[9; 32]);
        let mut endpoint_addr = EndpointAddr::new(key.public());
        endpoint_addr.addrs.insert(iroh::TransportAddr::Ip("127.0.0.1:4000".parse().unwrap()));
        let ready = ReadyLine {
            node_id: 3,
            http_addr: "127.0.0.1:8081".parse().unwrap(),
            endpoint_id: key.public(),
            ractor_port: 4100,
            endpoint_addr,
        };
        let line = ready.to_string();
        assert!(line.starts_with("aspen-node ready node_id=3 http=127.0.0.1:8081 endpoint_id="));
        assert!(!line.contains('\n'));
        assert_eq!(line.parse::<ReadyLine>().unwrap(), ready);
    }

    #[test]
    fn other_lines_are_refused() {
        assert!("hello".parse::<ReadyLine>().is_err());
        assert!(
            "aspen-node ready node_id=1"
                .parse::<ReadyLine>()
                .unwrap_err()
                .contains("endpoint_addr")
        );
    }
}
