//! Tests of the plain halves together: what an [`Announcer`] makes, and what a [`Receiver`]
//! accepts from it or drops, by reason, without a network. In their own file because they
//! drive both halves and share one helper.

use iroh::{EndpointAddr, SecretKey, TransportAddr};

use super::{Announcer, DropReason, Receiver};
use crate::discovery::{Announcement, PeerBook, PeerSource, SignedAnnouncement, cluster_topic};
use crate::limits::ANNOUNCEMENT_ADDRS_MAX;

fn endpoint(seed: u8, port: u16) -> (SecretKey, EndpointAddr) {
    let key = SecretKey::from_bytes(&[seed; 32]);
    let mut addr = EndpointAddr::new(key.public());
    addr.addrs.insert(TransportAddr::Ip(([127, 0, 0, 1], port).into()));
    (key, addr)
}

#[test]
fn announcements_move_forward_and_leave_out_unusable_api_addresses() {
    let (_, addr) = endpoint(1, 4000);
    let mut announcer = Announcer::new(1, [0; 32]);
    let first = announcer.next(&addr, Some(([127, 0, 0, 1], 80).into()), 1_000);
    let second = announcer.next(&addr, Some(([0, 0, 0, 0], 80).into()), 1_000);
    assert_eq!((first.timestamp_unix_ms, second.timestamp_unix_ms), (1_000, 1_001));
    assert_eq!(first.api_addr.as_deref(), Some("127.0.0.1:80"));
    assert_eq!(second.api_addr, None);
    let mut many = addr.clone();
    for port in 0..40 {
        many.addrs.insert(TransportAddr::Ip(([10, 0, 0, 1], port).into()));
    }
    assert_eq!(announcer.next(&many, None, 0).endpoint_addr.addrs.len(), ANNOUNCEMENT_ADDRS_MAX);
}

#[test]
fn a_valid_announcement_enters_the_book_and_bad_ones_are_dropped_by_reason() {
    let topic = cluster_topic("cookie");
    let (own_key, own) = endpoint(1, 4001);
    let (peer_key, peer) = endpoint(2, 4002);
    let (_, member) = endpoint(3, 4003);
    let book = PeerBook::new();
    let mut receiver = Receiver::new(1, own.id, topic);
    let members = [(1, own.id), (3, member.id)];
    let mut peer_announcer = Announcer::new(2, topic);
    let on = |bytes: &[u8], receiver: &mut Receiver| {
        receiver.on_message(bytes, 1_000_000, &book, &members)
    };

    let valid = peer_announcer.next(&peer, Some(([127, 0, 0, 1], 8082).into()), 999_000);
    let accepted = on(&valid.sign(&peer_key), &mut receiver).unwrap().unwrap();
    assert_eq!(accepted.node_id, 2);
    let entry = book.list().into_iter().find(|e| e.node_id == 2).unwrap();
    assert_eq!(
        (entry.source, entry.api_addr.as_deref()),
        (PeerSource::Gossip, Some("127.0.0.1:8082"))
    );

    assert_eq!(on(&valid.sign(&peer_key), &mut receiver), Err(DropReason::Replayed));
    let older = Announcement { timestamp_unix_ms: 998_000, ..valid.clone() };
    assert_eq!(on(&older.sign(&peer_key), &mut receiver), Err(DropReason::Replayed));
    let stale = Announcer::new(2, topic).next(&peer, None, 1);
    assert_eq!(on(&stale.sign(&peer_key), &mut receiver), Err(DropReason::Stale));
    let foreign = Announcer::new(2, cluster_topic("other")).next(&peer, None, 999_500);
    assert_eq!(on(&foreign.sign(&peer_key), &mut receiver), Err(DropReason::WrongTopic));
    assert_eq!(on(b"junk", &mut receiver), Err(DropReason::Malformed));
    // A claim about the peer signed by another key.
    let claim = peer_announcer.next(&peer, None, 999_600);
    let Ok(SignedAnnouncement::V2 { body, .. }) = postcard::from_bytes(&claim.sign(&peer_key))
    else {
        panic!("format 2")
    };
    let signature = own_key.sign(&body);
    let forged = postcard::to_stdvec(&SignedAnnouncement::V2 { body, signature }).unwrap();
    assert_eq!(on(&forged, &mut receiver), Err(DropReason::BadSignature));

    // The peer claims node 3, a member at another endpoint, or this node's own id.
    for (claimed, timestamp) in [(3, 999_900), (1, 999_901)] {
        let claim = Announcer::new(claimed, topic).next(&peer, None, timestamp);
        assert_eq!(on(&claim.sign(&peer_key), &mut receiver), Err(DropReason::Conflict));
    }
    // This node's own announcement is ignored, neither counted nor added.
    let own_announcement = Announcer::new(1, topic).next(&own, None, 999_999);
    assert_eq!(on(&own_announcement.sign(&own_key), &mut receiver), Ok(None));
    assert_eq!(book.len(), 1);
}
