//! Signed gossip announcements: "in cluster T, node N is at endpoint address A and serves its
//! API at H, as of time S", signed with the endpoint's own secret key.
//!
//! iroh-gossip does not authenticate a message's author (the peer that delivers it may only be
//! forwarding it), so each announcement carries an ed25519 signature by the endpoint it names:
//! a node can only speak for itself. The signed body names the cluster's topic, so that an
//! announcement recorded in one cluster is refused in another. The [`ReplayGuard`] drops an
//! announcement that is not newer than the last one accepted from the same endpoint, or whose
//! timestamp is too old or too far in the future, so a recorded message cannot be played back
//! later to move a node's address.
//!
//! The wire form is a versioned enum ([`SignedAnnouncement`]) around the postcard bytes of the
//! body; decoding is strict (no trailing bytes), and the signature covers a fixed context
//! string followed by the body, so that these signatures cannot be mistaken for anything else
//! the endpoint key signs.
//!
//! Caveats:
//! - Timestamps are wall-clock milliseconds; nodes whose clocks differ by more than
//!   `ANNOUNCEMENT_CLOCK_SKEW_MS_MAX` drop each other's announcements (and count it).
//! - The announcement says nothing about cluster membership: it only feeds the peer book, and
//!   Raft decides who is a member. It proves who holds the endpoint key, not that the endpoint
//!   is the node id it claims; see `gossip` for how claims are bounded.

use std::collections::{BTreeMap, BTreeSet};

use iroh::{EndpointAddr, EndpointId, SecretKey, Signature, TransportAddr};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::api::NodeId;
use crate::limits::{
    ANNOUNCEMENT_ADDRS_MAX, ANNOUNCEMENT_AGE_MS_MAX, ANNOUNCEMENT_API_ADDR_BYTES_MAX,
    ANNOUNCEMENT_BYTES_MAX, ANNOUNCEMENT_CLOCK_SKEW_MS_MAX, PEERS_MAX,
};

/// Signed before the body. Fixed forever for format 2.
const SIGNING_CONTEXT: &[u8] = b"aspen 2026-11 gossip announcement v2\0";

/// What a node says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// The cluster's gossip topic (see `cluster_topic`): binds the announcement to a cluster.
    pub topic: [u8; 32],
    /// The announcing node's Raft id.
    pub node_id: NodeId,
    /// Where its endpoint is reached; `endpoint_addr.id` is the key that must have signed.
    pub endpoint_addr: EndpointAddr,
    /// Where its HTTP API is served (`host:port`), when it serves one on a usable address.
    pub api_addr: Option<String>,
    /// When it was made, in milliseconds since the Unix epoch.
    pub timestamp_unix_ms: u64,
}

/// The wire form: the postcard bytes of an announcement body and their signature. Versioned so
/// that a later format can be told apart; variants are only ever added at the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignedAnnouncement {
    /// Format 1 (no topic, no API address). Never sent by a released node; refused, because it
    /// does not say which cluster it belongs to.
    V1 {
        /// `postcard` encoding of the format 1 body.
        body: Vec<u8>,
        /// ed25519 signature of `body`.
        signature: Signature,
    },
    /// Format 2.
    V2 {
        /// `postcard` encoding of the body.
        body: Vec<u8>,
        /// ed25519 signature of `SIGNING_CONTEXT` followed by `body`, by the announced endpoint.
        signature: Signature,
    },
}

/// The body of format 2, spelled out field by field rather than as an `EndpointAddr`, so that a
/// change in iroh's own serialization of that type cannot change the format.
#[derive(Serialize, Deserialize)]
struct BodyV2 {
    topic: [u8; 32],
    node_id: NodeId,
    endpoint_id: EndpointId,
    addrs: BTreeSet<TransportAddr>,
    api_addr: Option<String>,
    timestamp_unix_ms: u64,
}

/// Why an announcement was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnouncementError {
    /// Not an announcement (bad encoding, an unknown or refused format, over a limit).
    #[error("malformed announcement: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// The signature is not by the endpoint the announcement names.
    #[error("announcement for endpoint {endpoint} is not signed by it")]
    BadSignature {
        /// The endpoint it claims to speak for.
        endpoint: EndpointId,
    },
    /// Signed, but for another cluster's topic.
    #[error("announcement from endpoint {endpoint} belongs to another cluster")]
    WrongTopic {
        /// The endpoint.
        endpoint: EndpointId,
    },
    /// Not newer than the last one accepted from this endpoint.
    #[error("replayed announcement from endpoint {endpoint}")]
    Replayed {
        /// The endpoint.
        endpoint: EndpointId,
    },
    /// Too old or too far in the future.
    #[error("stale announcement from endpoint {endpoint} ({age_ms} ms from now)")]
    Stale {
        /// The endpoint.
        endpoint: EndpointId,
        /// How far its timestamp is from now, in milliseconds (negative: in the future).
        age_ms: i64,
    },
}

fn malformed(reason: impl Into<String>) -> AnnouncementError {
    AnnouncementError::Malformed { reason: reason.into() }
}

/// Decodes `bytes` as exactly one `T`: trailing bytes are refused, so that one signed body has
/// one encoding.
fn decode_exact<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AnnouncementError> {
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(|e| malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(malformed(format!("{} trailing bytes", rest.len())));
    }
    Ok(value)
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    SignedAnnouncement::signing_input(body)
}

impl SignedAnnouncement {
    /// The bytes a format 2 signature covers: a fixed context string, then `body`. Public so
    /// that other implementations (and tests playing an attacker) can build them.
    pub fn signing_input(body: &[u8]) -> Vec<u8> {
        [SIGNING_CONTEXT, body].concat()
    }
}

impl Announcement {
    /// Signs this announcement with `secret_key`, which must be the key of `endpoint_addr.id`
    /// (asserted: signing for another endpoint is a bug). The caller keeps it within the
    /// limits (`ANNOUNCEMENT_ADDRS_MAX`, `ANNOUNCEMENT_API_ADDR_BYTES_MAX`); receivers drop one
    /// that is not.
    pub fn sign(&self, secret_key: &SecretKey) -> Vec<u8> {
        assert_eq!(secret_key.public(), self.endpoint_addr.id, "a node signs only for itself");
        let body = postcard::to_stdvec(&BodyV2 {
            topic: self.topic,
            node_id: self.node_id,
            endpoint_id: self.endpoint_addr.id,
            addrs: self.endpoint_addr.addrs.clone(),
            api_addr: self.api_addr.clone(),
            timestamp_unix_ms: self.timestamp_unix_ms,
        })
        .expect("an announcement always encodes");
        let signature = secret_key.sign(&signed_message(&body));
        postcard::to_stdvec(&SignedAnnouncement::V2 { body, signature })
            .expect("a signed announcement always encodes")
    }

    /// Decodes `bytes`, checks the limits, the signature and that it belongs to `topic`; says
    /// nothing yet about freshness (see [`ReplayGuard`]).
    pub fn verify(bytes: &[u8], topic: &[u8; 32]) -> Result<Announcement, AnnouncementError> {
        if bytes.len() > ANNOUNCEMENT_BYTES_MAX {
            return Err(malformed(format!(
                "{} bytes, more than {ANNOUNCEMENT_BYTES_MAX}",
                bytes.len()
            )));
        }
        let (body, signature) = match decode_exact(bytes)? {
            SignedAnnouncement::V1 { .. } => {
                return Err(malformed("format 1 names no cluster and is not accepted"));
            }
            SignedAnnouncement::V2 { body, signature } => (body, signature),
        };
        let decoded: BodyV2 = decode_exact(&body)?;
        if decoded.addrs.len() > ANNOUNCEMENT_ADDRS_MAX {
            return Err(malformed(format!(
                "{} addresses, more than {ANNOUNCEMENT_ADDRS_MAX}",
                decoded.addrs.len()
            )));
        }
        if decoded.api_addr.as_ref().is_some_and(|a| a.len() > ANNOUNCEMENT_API_ADDR_BYTES_MAX) {
            return Err(malformed(format!(
                "API address longer than {ANNOUNCEMENT_API_ADDR_BYTES_MAX} bytes"
            )));
        }
        let endpoint = decoded.endpoint_id;
        endpoint
            .verify(&signed_message(&body), &signature)
            .map_err(|_| AnnouncementError::BadSignature { endpoint })?;
        if decoded.topic != *topic {
            return Err(AnnouncementError::WrongTopic { endpoint });
        }
        Ok(Announcement {
            topic: decoded.topic,
            node_id: decoded.node_id,
            endpoint_addr: EndpointAddr { id: endpoint, addrs: decoded.addrs },
            api_addr: decoded.api_addr,
            timestamp_unix_ms: decoded.timestamp_unix_ms,
        })
    }
}

/// Remembers the newest accepted announcement per endpoint, bounded by `PEERS_MAX` endpoints.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    newest: BTreeMap<EndpointId, u64>,
}

impl ReplayGuard {
    /// An empty guard.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts `announcement` if it is fresh at `now_unix_ms` and newer than any accepted from
    /// the same endpoint, and remembers it.
    pub fn admit(
        &mut self,
        announcement: &Announcement,
        now_unix_ms: u64,
    ) -> Result<(), AnnouncementError> {
        let endpoint = announcement.endpoint_addr.id;
        let age_ms = i128::from(now_unix_ms) - i128::from(announcement.timestamp_unix_ms);
        if age_ms > i128::from(ANNOUNCEMENT_AGE_MS_MAX)
            || -age_ms > i128::from(ANNOUNCEMENT_CLOCK_SKEW_MS_MAX)
        {
            let age_ms = age_ms.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
            return Err(AnnouncementError::Stale { endpoint, age_ms });
        }
        if self
            .newest
            .get(&endpoint)
            .is_some_and(|newest| announcement.timestamp_unix_ms <= *newest)
        {
            return Err(AnnouncementError::Replayed { endpoint });
        }
        if !self.newest.contains_key(&endpoint) && self.newest.len() >= PEERS_MAX {
            // Forget the endpoint heard from longest ago: a bound on memory, and an endpoint
            // that comes back is simply heard afresh (its timestamps still only move forward
            // within ANNOUNCEMENT_AGE_MS_MAX).
            if let Some(oldest) = self.newest.iter().min_by_key(|(_, ts)| **ts).map(|(id, _)| *id) {
                self.newest.remove(&oldest);
            }
        }
        self.newest.insert(endpoint, announcement.timestamp_unix_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: [u8; 32] = [7; 32];

    fn announcement(key: &SecretKey, timestamp_unix_ms: u64) -> Announcement {
        let mut endpoint_addr = EndpointAddr::new(key.public());
        endpoint_addr.addrs.insert(TransportAddr::Ip("127.0.0.1:4000".parse().unwrap()));
        Announcement {
            topic: TOPIC,
            node_id: 2,
            endpoint_addr,
            api_addr: Some("127.0.0.1:8080".into()),
            timestamp_unix_ms,
        }
    }

    /// The wire bytes of `claim` signed by `signer`, whoever it claims to be.
    fn forged(claim: &Announcement, signer: &SecretKey) -> Vec<u8> {
        let body = postcard::to_stdvec(&BodyV2 {
            topic: claim.topic,
            node_id: claim.node_id,
            endpoint_id: claim.endpoint_addr.id,
            addrs: claim.endpoint_addr.addrs.clone(),
            api_addr: claim.api_addr.clone(),
            timestamp_unix_ms: claim.timestamp_unix_ms,
        })
        .unwrap();
        let signature = signer.sign(&signed_message(&body));
        postcard::to_stdvec(&SignedAnnouncement::V2 { body, signature }).unwrap()
    }

    #[test]
    fn a_signed_announcement_verifies() {
        let key = SecretKey::from_bytes(&[1; 32]);
        let original = announcement(&key, 1_000);
        assert_eq!(Announcement::verify(&original.sign(&key), &TOPIC), Ok(original));
    }

    #[test]
    fn an_announcement_signed_by_another_key_is_dropped() {
        let (victim, forger) = (SecretKey::from_bytes(&[1; 32]), SecretKey::from_bytes(&[2; 32]));
        let bytes = forged(&announcement(&victim, 1_000), &forger);
        assert_eq!(
            Announcement::verify(&bytes, &TOPIC),
            Err(AnnouncementError::BadSignature { endpoint: victim.public() })
        );
        // The victim's own signature over the body alone (no context) does not verify either.
        let claim = announcement(&victim, 1_000);
        let SignedAnnouncement::V2 { body, .. } =
            postcard::from_bytes(&claim.sign(&victim)).unwrap()
        else {
            panic!("format 2")
        };
        let signature = victim.sign(&body);
        let bytes = postcard::to_stdvec(&SignedAnnouncement::V2 { body, signature }).unwrap();
        assert!(matches!(
            Announcement::verify(&bytes, &TOPIC),
            Err(AnnouncementError::BadSignature { .. })
        ));
    }

    #[test]
    fn another_clusters_announcement_is_dropped() {
        let key = SecretKey::from_bytes(&[1; 32]);
        let bytes = announcement(&key, 1_000).sign(&key);
        assert_eq!(
            Announcement::verify(&bytes, &[8; 32]),
            Err(AnnouncementError::WrongTopic { endpoint: key.public() })
        );
    }

    #[test]
    fn tampered_trailing_old_format_and_oversized_inputs_are_malformed() {
        let key = SecretKey::from_bytes(&[1; 32]);
        let mut bytes = announcement(&key, 1_000).sign(&key);
        let middle = bytes.len() / 3;
        bytes[middle] ^= 0x01;
        assert!(Announcement::verify(&bytes, &TOPIC).is_err());
        let is_malformed = |bytes: &[u8]| {
            matches!(Announcement::verify(bytes, &TOPIC), Err(AnnouncementError::Malformed { .. }))
        };
        assert!(is_malformed(b"junk"));
        assert!(is_malformed(&vec![0u8; ANNOUNCEMENT_BYTES_MAX + 1]));
        let mut trailing = announcement(&key, 1_000).sign(&key);
        trailing.push(0);
        assert!(is_malformed(&trailing), "one body, one encoding");
        let v1 = SignedAnnouncement::V1 { body: vec![1, 2, 3], signature: key.sign(&[1, 2, 3]) };
        assert!(is_malformed(&postcard::to_stdvec(&v1).unwrap()));
        let mut many = announcement(&key, 1_000);
        for port in 0..=ANNOUNCEMENT_ADDRS_MAX as u16 {
            many.endpoint_addr.addrs.insert(TransportAddr::Ip(([10, 0, 0, 1], port).into()));
        }
        assert!(is_malformed(&many.sign(&key)));
        let long = Announcement {
            api_addr: Some("x".repeat(ANNOUNCEMENT_API_ADDR_BYTES_MAX + 1)),
            ..announcement(&key, 1_000)
        };
        assert!(is_malformed(&long.sign(&key)));
    }

    #[test]
    fn replays_and_stale_announcements_are_dropped() {
        let key = SecretKey::from_bytes(&[1; 32]);
        let now = 10_000_000;
        let mut guard = ReplayGuard::new();
        guard.admit(&announcement(&key, now - 10), now).unwrap();
        let replay = guard.admit(&announcement(&key, now - 10), now);
        assert_eq!(replay, Err(AnnouncementError::Replayed { endpoint: key.public() }));
        assert!(guard.admit(&announcement(&key, now - 20), now).is_err(), "older than accepted");
        guard.admit(&announcement(&key, now), now).unwrap();
        let old = announcement(&key, now - ANNOUNCEMENT_AGE_MS_MAX - 1);
        assert!(matches!(guard.admit(&old, now), Err(AnnouncementError::Stale { .. })));
        let future = announcement(&key, now + ANNOUNCEMENT_CLOCK_SKEW_MS_MAX + 1);
        assert!(matches!(guard.admit(&future, now), Err(AnnouncementError::Stale { .. })));
        let far_future = announcement(&key, u64::MAX);
        assert!(matches!(guard.admit(&far_future, now), Err(AnnouncementError::Stale { .. })));
    }

    #[test]
    fn the_guard_is_bounded() {
        let now = 10_000_000;
        let mut guard = ReplayGuard::new();
        for seed in 0..=PEERS_MAX as u32 {
            let mut bytes = [0u8; 32];
            bytes[..4].copy_from_slice(&seed.to_le_bytes());
            let key = SecretKey::from_bytes(&bytes);
            guard.admit(&announcement(&key, now - 1000 + seed as u64 % 1000), now).unwrap();
        }
        assert_eq!(guard.newest.len(), PEERS_MAX);
    }
}
