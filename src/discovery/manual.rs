//! Manual peers: `"<node_id>@<endpoint_id>"` or `"<node_id>@<endpoint address JSON>"`.
//!
//! An endpoint id alone names a peer but not where it is: with no relay and no address lookup
//! configured, the node can only dial it once another method supplies its addresses. The JSON
//! form (`{"id": "...", "addrs": [{"Ip": "127.0.0.1:1234"}]}`, as printed by `node_addr()`)
//! carries the addresses and works offline on its own.

use iroh::{EndpointAddr, EndpointId};

use crate::api::NodeId;

/// Parses one manual peer specification.
pub fn parse_peer(spec: &str) -> Result<(NodeId, EndpointAddr), String> {
    let (id, addr) = spec
        .split_once('@')
        .ok_or_else(|| format!("peer {spec:?} must look like <node_id>@<endpoint>"))?;
    let node_id: NodeId =
        id.trim().parse().map_err(|_| format!("peer {spec:?}: {id:?} is not a node id"))?;
    Ok((node_id, parse_endpoint(addr.trim()).map_err(|e| format!("peer {spec:?}: {e}"))?))
}

/// Parses an endpoint given as an endpoint id or as endpoint address JSON.
pub fn parse_endpoint(text: &str) -> Result<EndpointAddr, String> {
    if text.starts_with('{') {
        return serde_json::from_str(text).map_err(|e| format!("bad endpoint address JSON: {e}"));
    }
    let id: EndpointId = text.parse().map_err(|e| format!("bad endpoint id {text:?}: {e}"))?;
    Ok(EndpointAddr::new(id))
}

/// Renders an endpoint address as the JSON `parse_endpoint` reads.
pub fn endpoint_to_string(addr: &EndpointAddr) -> String {
    serde_json::to_string(addr).unwrap_or_else(|_| addr.id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_parse_and_round_trip() {
        let key = iroh::SecretKey::from_bytes(&[7; 32]);
        let mut addr = EndpointAddr::new(key.public());
        addr.addrs.insert(iroh::TransportAddr::Ip("127.0.0.1:4000".parse().unwrap()));
        let json = endpoint_to_string(&addr);
        assert_eq!(parse_peer(&format!("2@{json}")).unwrap(), (2, addr.clone()));
        let (id, bare) = parse_peer(&format!("3@{}", key.public())).unwrap();
        assert_eq!((id, bare.id), (3, key.public()));
        assert!(bare.addrs.is_empty());
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        assert!(parse_peer("no-at-sign").unwrap_err().contains("<node_id>@"));
        assert!(parse_peer("x@abc").unwrap_err().contains("not a node id"));
        assert!(parse_peer("2@abc").unwrap_err().contains("bad endpoint id"));
        assert!(parse_peer("2@{bad json").unwrap_err().contains("JSON"));
    }
}
