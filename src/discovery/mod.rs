//! How a node learns where its peers are.
//!
//! Every method feeds one [`PeerBook`] per node; the Raft network dials from it and the Raft
//! RPC server checks callers against it. Today the book is filled by the operator (manual
//! peers: `--peers`, `add_peer`) and from the replicated Raft membership.
//!
//! Caveats:
//! - Gossip announcements, tickets, mDNS and DNS/pkarr are not wired yet: the configuration
//!   fields exist (`IrohConfig`), but a node only learns peers manually or from the membership.

mod actor;
mod manual;
mod peer_book;

pub use actor::{DiscoveryActor, DiscoveryActorArgs, DiscoveryActorMessage};
pub use manual::{endpoint_to_string, parse_endpoint, parse_peer};
pub use peer_book::{PeerBook, PeerBookFull, PeerEntry, PeerSource};
