//! How a node learns where its peers are.
//!
//! Every method feeds one [`PeerBook`] per node; the Raft network dials from it, the control
//! plane takes a learner's endpoint and API address from it when only the node id is given,
//! and the Raft RPC server checks callers against it. Today the book is filled by:
//! - the operator: manual peers (`--peers`, `add_peer`, `POST /add-peer`);
//! - a [`ClusterTicket`] (`aspen…`, served at `GET /cluster-ticket`, given with `--ticket`):
//!   the cluster's gossip topic and a few members' endpoint addresses in one string;
//! - gossip ([`gossip`]): every node broadcasts a signed [`Announcement`] of itself on the
//!   topic derived from the cookie, and verified announcements enter the book with source
//!   `Gossip` (unless `--disable-gossip`).
//!
//! The [`DiscoveryActor`] runs these under the node's supervisor.
//!
//! Caveats:
//! - mDNS and DNS/pkarr are not wired yet: their configuration fields exist (`IrohConfig`), and
//!   the node says at startup that it does not run them.
//! - Gossip needs one reachable peer to join through (a ticket's bootstrap peers or a manual
//!   peer); a node started with neither waits for others to join it.
//! - A peer known only from gossip may not call Raft RPC until the membership names it.

mod actor;
mod announcement;
pub mod gossip;
mod gossip_counters;
mod manual;
mod peer_book;
mod ticket;

pub use actor::{DiscoveryActor, DiscoveryActorArgs, DiscoveryActorMessage, DiscoveryState};
pub use announcement::{Announcement, AnnouncementError, ReplayGuard, SignedAnnouncement};
pub use gossip::{DropReason, GossipArgs, GossipCounters, GossipCounts, MembersView};
pub use manual::{endpoint_to_string, parse_endpoint, parse_peer};
pub use peer_book::{PeerBook, PeerBookFull, PeerEntry, PeerRefused, PeerSource};
pub use ticket::{ClusterTicket, TicketError, cluster_topic};
