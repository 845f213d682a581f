//! Cluster tickets: one copy-pasteable string (`aspen…`) that tells a new node which cluster to
//! join and where a few of its members are.
//!
//! A [`ClusterTicket`] carries the cluster's gossip topic (a keyed hash of the cookie, see
//! [`cluster_topic`]) and up to `TICKET_BOOTSTRAP_PEERS_MAX` bootstrap peers, each a Raft node
//! id with its iroh endpoint address. It implements [`iroh_tickets::Ticket`]: the bytes are a
//! postcard-encoded, versioned wire enum, and the string form is `aspen` followed by lowercase
//! base32, like iroh's own endpoint tickets. A node serves its ticket at `GET /cluster-ticket`;
//! `aspen-node --ticket` adds the bootstrap peers to the peer book.
//!
//! Caveats:
//! - The topic is a hash of the cookie, never the cookie itself, but a short or guessable cookie
//!   can be found offline from a ticket by trying candidates: use a long random cookie and
//!   share tickets only with operators who may know it anyway.
//! - A ticket is a snapshot: the addresses in it age as nodes move or restart on new ports.
//! - Nothing in a ticket is signed; it says where to look, and the Raft access policy and the
//!   cookie still decide who may talk to whom.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use iroh::{EndpointAddr, EndpointId, TransportAddr};
use iroh_tickets::{ParseError, Ticket};
use serde::{Deserialize, Serialize};

use crate::api::NodeId;
use crate::limits::TICKET_BOOTSTRAP_PEERS_MAX;

/// The context string of the topic derivation. Fixed forever: changing it changes every
/// cluster's topic.
const TOPIC_CONTEXT: &str = "aspen 2026-11 cluster gossip topic v1";

/// The 32-byte gossip topic of the cluster whose cookie is `cookie`: a BLAKE3 key derivation,
/// so that nodes with the same cookie meet on the same topic without the ticket revealing the
/// cookie.
pub fn cluster_topic(cookie: &str) -> [u8; 32] {
    blake3::derive_key(TOPIC_CONTEXT, cookie.as_bytes())
}

/// Which cluster to join and where some of its members are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTicket {
    topic: [u8; 32],
    bootstrap: Vec<(NodeId, EndpointAddr)>,
}

/// Why a ticket could not be made or read. Every message is a sentence an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// The string does not start with `aspen`.
    #[error("a cluster ticket starts with \"aspen\", but this one starts with {found:?}")]
    WrongPrefix {
        /// The first characters of what was given.
        found: String,
    },
    /// The part after `aspen` is not base32.
    #[error("the ticket is not valid base32 after \"aspen\" ({reason}); was it copied whole?")]
    Base32 {
        /// The decoder's complaint.
        reason: String,
    },
    /// The bytes do not decode: cut short, corrupted, or written by an unknown version.
    #[error(
        "the ticket is truncated or corrupt, or was made by a newer version of Aspen ({reason})"
    )]
    Corrupt {
        /// The decoder's complaint.
        reason: String,
    },
    /// The ticket decodes but breaks a rule (too many peers, a node twice).
    #[error("the ticket is not acceptable: {reason}")]
    Invalid {
        /// The rule it breaks.
        reason: String,
    },
}

/// The wire format, versioned so that a later format can be told apart from a broken ticket.
/// Variants are only ever added at the end.
#[derive(Serialize, Deserialize)]
enum WireFormat {
    V1(WireV1),
}

#[derive(Serialize, Deserialize)]
struct WireV1 {
    topic: [u8; 32],
    bootstrap: Vec<WirePeer>,
}

/// A peer spelled out field by field rather than as an `EndpointAddr`, so that a change in
/// iroh's own serialization cannot change the ticket format.
#[derive(Serialize, Deserialize)]
struct WirePeer {
    node_id: NodeId,
    endpoint_id: EndpointId,
    addrs: BTreeSet<TransportAddr>,
}

impl ClusterTicket {
    /// A ticket for `topic` with these bootstrap peers. Refuses more than
    /// `TICKET_BOOTSTRAP_PEERS_MAX` peers and a node id named twice.
    pub fn new(
        topic: [u8; 32],
        bootstrap: Vec<(NodeId, EndpointAddr)>,
    ) -> Result<Self, TicketError> {
        check_peers(&bootstrap)?;
        Ok(Self { topic, bootstrap })
    }

    /// The ticket a node hands out: itself first among equals, plus other members known to it,
    /// sorted by node id and cut to `TICKET_BOOTSTRAP_PEERS_MAX` (this node always stays in).
    pub fn for_node(
        topic: [u8; 32],
        own: (NodeId, EndpointAddr),
        members: impl IntoIterator<Item = (NodeId, EndpointAddr)>,
    ) -> Self {
        let others: BTreeMap<NodeId, EndpointAddr> =
            members.into_iter().filter(|(id, _)| *id != own.0).collect();
        let mut bootstrap: Vec<_> =
            others.into_iter().take(TICKET_BOOTSTRAP_PEERS_MAX - 1).collect();
        bootstrap.push(own);
        bootstrap.sort_by_key(|(id, _)| *id);
        Self { topic, bootstrap }
    }

    /// The cluster's gossip topic.
    pub fn topic(&self) -> [u8; 32] {
        self.topic
    }

    /// The bootstrap peers, as `(node id, endpoint address)`.
    pub fn bootstrap(&self) -> &[(NodeId, EndpointAddr)] {
        &self.bootstrap
    }

    fn to_wire(&self) -> WireFormat {
        let bootstrap = self
            .bootstrap
            .iter()
            .map(|(node_id, addr)| WirePeer {
                node_id: *node_id,
                endpoint_id: addr.id,
                addrs: addr.addrs.clone(),
            })
            .collect();
        WireFormat::V1(WireV1 { topic: self.topic, bootstrap })
    }

    fn from_wire(wire: WireFormat) -> Result<Self, PeerRule> {
        let WireFormat::V1(v1) = wire;
        let bootstrap: Vec<_> = v1
            .bootstrap
            .into_iter()
            .map(|peer| (peer.node_id, EndpointAddr { id: peer.endpoint_id, addrs: peer.addrs }))
            .collect();
        check_peers(&bootstrap)?;
        Ok(Self { topic: v1.topic, bootstrap })
    }
}

/// A rule about bootstrap peers that a ticket breaks.
#[derive(Debug)]
enum PeerRule {
    TooMany(usize),
    Twice(NodeId),
}

impl PeerRule {
    /// The short form `iroh_tickets::ParseError` can carry.
    fn short(&self) -> &'static str {
        match self {
            PeerRule::TooMany(_) => "too many bootstrap peers",
            PeerRule::Twice(_) => "a node id appears twice",
        }
    }
}

impl From<PeerRule> for TicketError {
    fn from(rule: PeerRule) -> Self {
        let reason = match rule {
            PeerRule::TooMany(count) => format!(
                "it names {count} bootstrap peers, more than the limit of {TICKET_BOOTSTRAP_PEERS_MAX}"
            ),
            PeerRule::Twice(id) => format!("it names node {id} twice"),
        };
        TicketError::Invalid { reason }
    }
}

fn check_peers(bootstrap: &[(NodeId, EndpointAddr)]) -> Result<(), PeerRule> {
    if bootstrap.len() > TICKET_BOOTSTRAP_PEERS_MAX {
        return Err(PeerRule::TooMany(bootstrap.len()));
    }
    let mut seen = BTreeSet::new();
    match bootstrap.iter().find(|(id, _)| !seen.insert(*id)) {
        Some((id, _)) => Err(PeerRule::Twice(*id)),
        None => Ok(()),
    }
}

impl Ticket for ClusterTicket {
    const KIND: &'static str = "aspen";

    fn encode_bytes(&self) -> Vec<u8> {
        // Serializing plain structs into a Vec cannot fail.
        postcard::to_stdvec(&self.to_wire()).expect("a cluster ticket always serializes")
    }

    fn decode_bytes(bytes: &[u8]) -> Result<Self, ParseError> {
        let wire: WireFormat = postcard::from_bytes(bytes)?;
        Self::from_wire(wire).map_err(|rule| ParseError::verification_failed(rule.short()))
    }
}

impl fmt::Display for ClusterTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode_string())
    }
}

impl FromStr for ClusterTicket {
    type Err = TicketError;

    fn from_str(text: &str) -> Result<Self, TicketError> {
        let text = text.trim();
        let Some(rest) = text.strip_prefix(Self::KIND) else {
            return Err(TicketError::WrongPrefix { found: text.chars().take(8).collect() });
        };
        let bytes = decode_base32(rest)?;
        let wire: WireFormat = postcard::from_bytes(&bytes)
            .map_err(|error| TicketError::Corrupt { reason: error.to_string() })?;
        Ok(Self::from_wire(wire)?)
    }
}

/// Decodes the base32 part through iroh_tickets' own decoder (which owns the alphabet), so
/// that reading and writing always agree.
fn decode_base32(rest: &str) -> Result<Vec<u8>, TicketError> {
    /// Raw bytes under the ticket's kind: lets `decode_string` do the base32 step alone.
    struct RawBytes(Vec<u8>);
    impl Ticket for RawBytes {
        const KIND: &'static str = ClusterTicket::KIND;
        fn encode_bytes(&self) -> Vec<u8> {
            self.0.clone()
        }
        fn decode_bytes(bytes: &[u8]) -> Result<Self, ParseError> {
            Ok(Self(bytes.to_vec()))
        }
    }
    let prefixed = format!("{}{rest}", ClusterTicket::KIND);
    match RawBytes::decode_string(&prefixed) {
        Ok(RawBytes(bytes)) => Ok(bytes),
        Err(error) => Err(TicketError::Base32 { reason: error.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(seed: u8, port: u16) -> EndpointAddr {
        let key = iroh::SecretKey::from_bytes(&[seed; 32]);
        let mut addr = EndpointAddr::new(key.public());
        addr.addrs.insert(TransportAddr::Ip(([127, 0, 0, 1], port).into()));
        addr
    }

    fn ticket_of(count: u64) -> ClusterTicket {
        let peers = (1..=count).map(|id| (id, addr(id as u8, 4000 + id as u16))).collect();
        ClusterTicket::new(cluster_topic("cookie"), peers).unwrap()
    }

    #[test]
    fn a_ticket_round_trips_through_its_string() {
        let ticket = ticket_of(3);
        let text = ticket.to_string();
        assert!(text.starts_with("aspen"), "{text}");
        assert!(text[5..].chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        assert_eq!(text.parse::<ClusterTicket>().unwrap(), ticket);
        assert_eq!(ClusterTicket::decode_string(&text).unwrap(), ticket);
        assert_eq!(format!(" {text}\n").parse::<ClusterTicket>().unwrap(), ticket);
    }

    #[test]
    fn the_topic_hides_the_cookie_and_depends_on_it() {
        let topic = cluster_topic("secret-cookie");
        assert_eq!(topic, cluster_topic("secret-cookie"));
        assert_ne!(topic, cluster_topic("other-cookie"));
        assert!(!topic.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn bad_strings_are_refused_with_sentences() {
        let text = ticket_of(2).to_string();
        let wrong_kind = format!("endpoint{}", &text[5..]);
        let cases: Vec<(String, &str)> = vec![
            (wrong_kind, "starts with \"aspen\""),
            (String::new(), "starts with \"aspen\""),
            ("aspen!!!!".into(), "not valid base32"),
            ("aspen1".into(), "not valid base32"),
            // 8 base32 characters are 5 whole bytes: still base32, but cut short.
            (text[..text.len() - 8].to_string(), "truncated or corrupt"),
            ("aspen".into(), "truncated or corrupt"),
        ];
        for (input, expected) in cases {
            let error = input.parse::<ClusterTicket>().unwrap_err().to_string();
            assert!(error.contains(expected), "{input:?}: {error}");
        }
    }

    #[test]
    fn more_than_the_limit_of_peers_is_refused_or_cut() {
        let max = TICKET_BOOTSTRAP_PEERS_MAX as u64;
        assert_eq!(ticket_of(max).bootstrap().len(), TICKET_BOOTSTRAP_PEERS_MAX);
        let over: Vec<_> = (1..=max + 1).map(|id| (id, addr(id as u8, 1))).collect();
        let error = ClusterTicket::new([0; 32], over.clone()).unwrap_err();
        assert!(error.to_string().contains("more than the limit of 16"), "{error}");

        // A node's own ticket keeps the node and the lowest other ids, sorted.
        let own = (max + 5, addr(99, 1));
        let ticket = ClusterTicket::for_node([0; 32], own.clone(), over.clone());
        let ids: Vec<_> = ticket.bootstrap().iter().map(|(id, _)| *id).collect();
        let mut expected: Vec<_> = (1..max).collect();
        expected.push(max + 5);
        assert_eq!(ids, expected);

        // A crafted ticket with too many peers does not decode.
        let crafted = ClusterTicket { topic: [0; 32], bootstrap: over };
        let error = crafted.to_string().parse::<ClusterTicket>().unwrap_err();
        assert!(error.to_string().contains("more than the limit"), "{error}");
        assert!(ClusterTicket::decode_bytes(&crafted.encode_bytes()).is_err());
    }

    #[test]
    fn a_node_named_twice_is_refused() {
        let error = ClusterTicket::new([0; 32], vec![(1, addr(1, 1)), (1, addr(2, 2))]);
        assert!(error.unwrap_err().to_string().contains("node 1 twice"));
    }
}
