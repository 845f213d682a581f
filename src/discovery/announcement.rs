//! Signed gossip announcements: "node N is at endpoint address A, as of time T", signed with the
//! endpoint's own secret key.
//!
//! iroh-gossip does not authenticate a message's author (the peer that delivers it may only be
//! forwarding it), so each announcement carries an ed25519 signature by the endpoint it names:
//! a node can only speak for itself. The [`ReplayGuard`] drops an announcement that is not newer
//! than the last one accepted from the same endpoint, or whose timestamp is too old or too far
//! in the future, so a recorded message cannot be played back later to move a node's address.
//!
//! Caveats:
//! - Timestamps are wall-clock milliseconds; nodes whose clocks differ by more than
//!   `ANNOUNCEMENT_CLOCK_SKEW_MS_MAX` drop each other's announcements (and count it).
//! - The announcement says nothing about cluster membership: it only feeds the peer book, and
//!   Raft decides who is a member.

use std::collections::BTreeMap;

use iroh::{EndpointAddr, EndpointId, SecretKey, Signature};
use serde::{Deserialize, Serialize};

use crate::api::NodeId;
use crate::limits::{
    ANNOUNCEMENT_AGE_MS_MAX, ANNOUNCEMENT_BYTES_MAX, ANNOUNCEMENT_CLOCK_SKEW_MS_MAX, PEERS_MAX,
};

/// What a node says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    /// The announcing node's Raft id.
    pub node_id: NodeId,
    /// Where its endpoint is reached; `endpoint_addr.id` is the key that must have signed.
    pub endpoint_addr: EndpointAddr,
    /// When it was made, in milliseconds since the Unix epoch.
    pub timestamp_unix_ms: u64,
}

/// The wire form: the postcard bytes of an [`Announcement`] and their signature. Versioned so
/// that a later format can be told apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignedAnnouncement {
    /// Format 1.
    V1 {
        /// `postcard` encoding of the announcement.
        body: Vec<u8>,
        /// ed25519 signature of `body` by `endpoint_addr.id`.
        signature: Signature,
    },
}

/// Why an announcement was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnouncementError {
    /// Not an announcement (bad encoding, or over `ANNOUNCEMENT_BYTES_MAX`).
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

impl Announcement {
    /// Signs this announcement with `secret_key`, which must be the key of `endpoint_addr.id`
    /// (asserted: signing for another endpoint is a bug).
    pub fn sign(&self, secret_key: &SecretKey) -> Vec<u8> {
        assert_eq!(secret_key.public(), self.endpoint_addr.id, "a node signs only for itself");
        let body = postcard::to_stdvec(self).expect("an announcement always encodes");
        let signature = secret_key.sign(&body);
        postcard::to_stdvec(&SignedAnnouncement::V1 { body, signature })
            .expect("a signed announcement always encodes")
    }

    /// Decodes `bytes` and checks the signature; says nothing yet about freshness.
    pub fn verify(bytes: &[u8]) -> Result<Announcement, AnnouncementError> {
        let malformed = |reason: String| AnnouncementError::Malformed { reason };
        if bytes.len() > ANNOUNCEMENT_BYTES_MAX {
            return Err(malformed(format!(
                "{} bytes, more than {ANNOUNCEMENT_BYTES_MAX}",
                bytes.len()
            )));
        }
        let SignedAnnouncement::V1 { body, signature } =
            postcard::from_bytes(bytes).map_err(|e| malformed(e.to_string()))?;
        let announcement: Announcement =
            postcard::from_bytes(&body).map_err(|e| malformed(e.to_string()))?;
        let endpoint = announcement.endpoint_addr.id;
        endpoint
            .verify(&body, &signature)
            .map_err(|_| AnnouncementError::BadSignature { endpoint })?;
        Ok(announcement)
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
        let age_ms = now_unix_ms as i64 - announcement.timestamp_unix_ms as i64;
        if age_ms > ANNOUNCEMENT_AGE_MS_MAX as i64
            || -age_ms > ANNOUNCEMENT_CLOCK_SKEW_MS_MAX as i64
        {
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

    fn announcement(key: &SecretKey, timestamp_unix_ms: u64) -> Announcement {
        let mut endpoint_addr = EndpointAddr::new(key.public());
        endpoint_addr.addrs.insert(iroh::TransportAddr::Ip("127.0.0.1:4000".parse().unwrap()));
        Announcement { node_id: 2, endpoint_addr, timestamp_unix_ms }
    }

    #[test]
    fn a_signed_announcement_verifies() {
        let key = SecretKey::from_bytes(&[1; 32]);
        let original = announcement(&key, 1_000);
        assert_eq!(Announcement::verify(&original.sign(&key)), Ok(original));
    }

    #[test]
    fn an_announcement_signed_by_another_key_is_dropped() {
        let (victim, forger) = (SecretKey::from_bytes(&[1; 32]), SecretKey::from_bytes(&[2; 32]));
        // The forger signs a claim about the victim's endpoint with its own key.
        let claim = announcement(&victim, 1_000);
        let body = postcard::to_stdvec(&claim).unwrap();
        let signature = forger.sign(&body);
        let bytes = postcard::to_stdvec(&SignedAnnouncement::V1 { body, signature }).unwrap();
        assert_eq!(
            Announcement::verify(&bytes),
            Err(AnnouncementError::BadSignature { endpoint: victim.public() })
        );
    }

    #[test]
    fn a_tampered_body_is_dropped_and_garbage_is_malformed() {
        let key = SecretKey::from_bytes(&[1; 32]);
        let mut bytes = announcement(&key, 1_000).sign(&key);
        let middle = bytes.len() / 3;
        bytes[middle] ^= 0x01;
        assert!(Announcement::verify(&bytes).is_err());
        assert!(matches!(Announcement::verify(b"junk"), Err(AnnouncementError::Malformed { .. })));
        let huge = vec![0u8; ANNOUNCEMENT_BYTES_MAX + 1];
        assert!(matches!(Announcement::verify(&huge), Err(AnnouncementError::Malformed { .. })));
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
