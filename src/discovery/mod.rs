//! How a node learns where its peers are.
//!
//! Every method feeds one [`PeerBook`] per node; the Raft network dials from it and the Raft
//! RPC server checks callers against it. Today the book is filled by the operator (manual
//! peers: `--peers`, `add_peer`, `POST /add-peer`, the bootstrap peers of a cluster ticket) and
//! from the replicated Raft membership.
//!
//! A [`ClusterTicket`] (`aspen…`, served at `GET /cluster-ticket`) packs the cluster's gossip
//! topic and a few members' endpoint addresses into one string for a joining node.
//!
//! Caveats:
//! - Gossip, mDNS and DNS/pkarr are not wired yet: the configuration fields exist
//!   (`IrohConfig`) and signed [`Announcement`]s are ready for gossip, but a node learns peers
//!   only from the operator, a ticket's bootstrap peers, or the Raft membership.

mod actor;
mod announcement;
mod manual;
mod peer_book;
mod ticket;

pub use actor::{DiscoveryActor, DiscoveryActorArgs, DiscoveryActorMessage};
pub use announcement::{Announcement, AnnouncementError, ReplayGuard, SignedAnnouncement};
pub use manual::{endpoint_to_string, parse_endpoint, parse_peer};
pub use peer_book::{PeerBook, PeerBookFull, PeerEntry, PeerSource};
pub use ticket::{ClusterTicket, TicketError, cluster_topic};
