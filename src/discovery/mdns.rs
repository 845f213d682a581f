//! mDNS discovery: nodes on one LAN find each other without any address typed in.
//!
//! How the pieces fit:
//! - [`start_mdns`] registers an `iroh-mdns-address-lookup` service on the endpoint. It
//!   advertises the endpoint's direct addresses by multicast under a service name derived
//!   from the cookie ([`mdns_service_name`]), so two clusters on one LAN never see each
//!   other, and the service name does not reveal the cookie. iroh also asks it when it dials
//!   an endpoint id whose addresses nobody gave.
//! - The endpoint's user data (published with the addresses) carries the node id
//!   ([`node_user_data`]), because an mDNS record names an endpoint, not a Raft node, and a
//!   proof that the node holds the cluster cookie: a keyed hash (key derived from the cookie)
//!   of its endpoint id and node id. A peer whose proof checks is trusted like one an operator
//!   named: it may call Raft RPC before the membership names it, so that nodes on one LAN
//!   form a cluster with no peers and no ticket. The proof is bound to the endpoint id, whose
//!   key QUIC checks on every connection, so copying a record does not let a stranger in.
//! - An [`MdnsTask`] (owned by the DiscoveryActor) listens to the service's discoveries and
//!   records each peer with source `Mdns`.
//!
//! Caveats:
//! - Multicast needs a real link or bridge: loopback does not carry it, and many cloud
//!   networks drop it. Where the service cannot start, the node logs one warning and goes on
//!   with its other discovery methods.
//! - An mDNS record is a claim: it never rebinds a node id the book holds for another
//!   endpoint, and a record without a valid cookie proof may not call Raft RPC until the
//!   membership (or the operator) names it. The dialled endpoint still proves its key, so a
//!   false record can delay a connection, not fake a peer.
//! - Like the service name, the proof lets anyone on the LAN test guesses of the cookie
//!   offline: cookies must be long and random.
//! - Expired records are not removed from the book; `last_seen_unix_ms` tells their age.

use std::time::Duration;

use futures::StreamExt;
use iroh::endpoint_info::UserData;
use iroh::{Endpoint, EndpointAddr, EndpointId};
use iroh_mdns_address_lookup::{DiscoveryEvent, MdnsAddressLookup};
use tokio::task::JoinHandle;

use super::PeerBook;
use crate::api::NodeId;
use crate::limits::{ANNOUNCEMENT_ADDRS_MAX, GOSSIP_RESUBSCRIBE_BACKOFF_MS, MDNS_CADENCE_MS};

/// The key-derivation context of the service name; versioned with the record format.
const SERVICE_CONTEXT: &str = "aspen mdns service v1";

/// The key-derivation context of the cookie proof in a record.
const PROOF_CONTEXT: &str = "aspen mdns cookie proof v1";

/// The prefix of the user data that carries the node id.
const NODE_ID_PREFIX: &str = "aspen-node-id=";

/// What separates the node id from the cookie proof in the user data.
const PROOF_SEPARATOR: &str = ";proof=";

/// Hex characters of the proof (128 bits of the keyed hash).
const PROOF_HEX_LEN: usize = 32;

/// The key of the cookie proofs of the cluster with `cookie`.
pub fn proof_key(cookie: &str) -> [u8; 32] {
    blake3::derive_key(PROOF_CONTEXT, cookie.as_bytes())
}

/// The proof that the node `node_id` at `endpoint` holds the cookie behind `key`.
fn proof(key: &[u8; 32], endpoint: &EndpointId, node_id: NodeId) -> String {
    let mut hasher = blake3::Hasher::new_keyed(key);
    hasher.update(endpoint.as_bytes());
    hasher.update(&node_id.to_le_bytes());
    hex::encode(hasher.finalize().as_bytes())[..PROOF_HEX_LEN].to_string()
}

/// True when `claimed` is the proof for `node_id` at `endpoint` under `key`.
pub fn proof_holds(key: &[u8; 32], endpoint: &EndpointId, node_id: NodeId, claimed: &str) -> bool {
    let expected = proof(key, endpoint, node_id);
    // Both are ASCII hex of one length: compare without an early exit.
    expected.len() == claimed.len()
        && expected.bytes().zip(claimed.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// The mDNS service name of the cluster with `cookie`: `aspen` and 10 hex characters of a key
/// derived from the cookie (15 characters, the longest DNS-SD service name).
pub fn mdns_service_name(cookie: &str) -> String {
    let key = blake3::derive_key(SERVICE_CONTEXT, cookie.as_bytes());
    format!("aspen{}", &hex::encode(key)[..10])
}

/// The user data that tells which node an endpoint is, with its cookie proof.
pub fn node_user_data(node_id: NodeId, endpoint: &EndpointId, cookie: &str) -> UserData {
    let proof = proof(&proof_key(cookie), endpoint, node_id);
    let text = format!("{NODE_ID_PREFIX}{node_id}{PROOF_SEPARATOR}{proof}");
    // At most 14 + 20 + 7 + 32 characters: far below UserData::MAX_LENGTH.
    UserData::try_from(text).expect("a node id and a proof fit in the user data")
}

/// The node id and the cookie proof (if any) in an endpoint's user data, if it is an Aspen
/// node's.
pub fn parse_node_user_data(user_data: &UserData) -> Option<(NodeId, Option<String>)> {
    let rest = user_data.as_ref().strip_prefix(NODE_ID_PREFIX)?;
    match rest.split_once(PROOF_SEPARATOR) {
        Some((id, proof)) => Some((id.parse().ok()?, Some(proof.to_string()))),
        None => Some((rest.parse().ok()?, None)),
    }
}

/// Starts advertising and listening on the LAN, and registers the service on the endpoint.
pub fn start_mdns(endpoint: &Endpoint, cookie: &str) -> Result<MdnsAddressLookup, String> {
    let lookup = MdnsAddressLookup::builder()
        .service_name(mdns_service_name(cookie))
        .discovery_cadence(Duration::from_millis(MDNS_CADENCE_MS))
        .build(endpoint.id())
        .map_err(|e| format!("{e:#}"))?;
    endpoint.address_lookup().map_err(|e| format!("{e:#}"))?.add(lookup.clone());
    Ok(lookup)
}

/// Records the peers mDNS discovers; stops when dropped.
#[derive(Debug)]
pub struct MdnsTask {
    handle: JoinHandle<()>,
}

impl Drop for MdnsTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Starts recording what `lookup` discovers into `peers`, skipping `own_endpoint`.
/// Records with a proof that holds under `key` are trusted.
pub fn spawn(
    lookup: MdnsAddressLookup,
    own_endpoint: EndpointId,
    key: [u8; 32],
    peers: PeerBook,
) -> MdnsTask {
    MdnsTask { handle: tokio::spawn(listen_forever(lookup, own_endpoint, key, peers)) }
}

async fn listen_forever(
    lookup: MdnsAddressLookup,
    own_endpoint: EndpointId,
    key: [u8; 32],
    peers: PeerBook,
) {
    loop {
        let mut events = lookup.subscribe().await;
        while let Some(event) = events.next().await {
            if let DiscoveryEvent::Discovered { endpoint_info, .. } = event {
                let claim = endpoint_info.user_data().and_then(parse_node_user_data);
                let addr = bounded(endpoint_info.into_endpoint_addr());
                let claim = claim.map(|(node_id, proof)| {
                    let proven = proof.is_some_and(|p| proof_holds(&key, &addr.id, node_id, &p));
                    (node_id, proven)
                });
                on_discovered(&peers, own_endpoint, claim, addr);
            }
        }
        // The service stopped sending (it restarted); subscribe again after a pause.
        tokio::time::sleep(Duration::from_millis(GOSSIP_RESUBSCRIBE_BACKOFF_MS)).await;
    }
}

/// At most `ANNOUNCEMENT_ADDRS_MAX` addresses, as for a gossip announcement.
fn bounded(mut addr: EndpointAddr) -> EndpointAddr {
    addr.addrs = addr.addrs.into_iter().take(ANNOUNCEMENT_ADDRS_MAX).collect();
    addr
}

/// Records one discovered endpoint, if it says which node it is.
fn on_discovered(
    peers: &PeerBook,
    own_endpoint: EndpointId,
    claim: Option<(NodeId, bool)>,
    addr: EndpointAddr,
) {
    if addr.id == own_endpoint {
        return;
    }
    let Some((node_id, proven)) = claim else {
        tracing::debug!(endpoint = %addr.id, "mDNS record without a node id ignored");
        return;
    };
    match peers.add_mdns(node_id, addr.clone(), proven) {
        Ok(()) => tracing::debug!(node_id, endpoint = %addr.id, "peer discovered by mDNS"),
        Err(refused) => {
            tracing::debug!(node_id, endpoint = %addr.id, %refused, "mDNS peer refused")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_name_depends_on_the_cookie_only() {
        let name = mdns_service_name("cookie-a");
        assert_eq!(name.len(), 15);
        assert!(name.starts_with("aspen") && !name.contains("cookie"));
        assert_eq!(name, mdns_service_name("cookie-a"));
        assert_ne!(name, mdns_service_name("cookie-b"));
    }

    #[test]
    fn user_data_carries_the_node_id_and_a_proof_bound_to_the_endpoint_and_cookie() {
        let endpoint = iroh::SecretKey::from_bytes(&[3; 32]).public();
        let other = iroh::SecretKey::from_bytes(&[4; 32]).public();
        let (node_id, proof) = parse_node_user_data(&node_user_data(42, &endpoint, "c")).unwrap();
        let proof = proof.unwrap();
        assert_eq!(node_id, 42);
        assert!(proof_holds(&proof_key("c"), &endpoint, 42, &proof));
        assert!(!proof_holds(&proof_key("other cookie"), &endpoint, 42, &proof));
        assert!(!proof_holds(&proof_key("c"), &other, 42, &proof), "copied to another endpoint");
        assert!(!proof_holds(&proof_key("c"), &endpoint, 43, &proof), "another node id");
        assert!(!proof_holds(&proof_key("c"), &endpoint, 42, "00"));
        assert_eq!(parse_node_user_data(&"aspen-node-id=7".parse().unwrap()), Some((7, None)));
        assert_eq!(parse_node_user_data(&"other".parse().unwrap()), None);
    }

    #[test]
    fn discoveries_enter_the_book_except_our_own_and_only_proven_ones_are_trusted() {
        let peers = PeerBook::new();
        let own = iroh::SecretKey::from_bytes(&[1; 32]).public();
        let other = iroh::SecretKey::from_bytes(&[2; 32]).public();
        let third = iroh::SecretKey::from_bytes(&[5; 32]).public();
        on_discovered(&peers, own, Some((1, true)), EndpointAddr::new(own));
        on_discovered(&peers, own, None, EndpointAddr::new(other));
        assert!(peers.is_empty());
        on_discovered(&peers, own, Some((2, false)), EndpointAddr::new(other));
        assert_eq!(peers.list()[0].source, super::super::PeerSource::Mdns);
        assert!(!peers.is_operator_named(&other), "no proof: not trusted");
        on_discovered(&peers, own, Some((3, true)), EndpointAddr::new(third));
        assert!(peers.is_operator_named(&third), "a valid proof: trusted");
    }
}
