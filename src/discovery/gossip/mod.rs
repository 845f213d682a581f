//! Gossip discovery: every node of a cluster announces itself on the cluster's iroh-gossip
//! topic, and every node that hears a valid announcement records the peer in its peer book.
//!
//! How the pieces fit:
//! - `bootstrap_node` spawns one `iroh_gossip::Gossip` per node and registers it under
//!   `iroh_gossip::ALPN` on the node's router, next to Raft RPC. It also registers a
//!   `MemoryLookup` on the endpoint, because gossip dials peers by endpoint id alone and the
//!   offline endpoint has no other way to find their addresses.
//! - The DiscoveryActor owns a [`GossipTask`] (spawned by [`spawn`]; aborted when the actor
//!   stops or crashes, and started again by its restart). The task subscribes to the topic
//!   [`cluster_topic`](super::cluster_topic) derives from the cookie, with every peer the book
//!   already knows (ticket bootstrap peers, manual peers) as bootstrap endpoints, and then:
//!   - every `interval`, and at once when a neighbour comes up, broadcasts this node's
//!     [`Announcement`](super::Announcement) (node id, endpoint address, HTTP API address, timestamp), signed with
//!     the endpoint's secret key;
//!   - for every message received, [`Receiver::on_message`] verifies it and, if valid, adds the
//!     peer to the book with source `Gossip` (the Raft network dials from there, and a learner
//!     can then be added by node id alone);
//!   - every `interval`, joins peers the book learned since (e.g. `POST /add-peer`).
//! - Every message dropped is counted by reason in [`GossipCounters`], shown at `/metrics`.
//!
//! Dropped, and why: not an announcement or over a limit (`malformed`), not signed by the
//! endpoint it names (`bad_signature`), signed for another cluster (`wrong_topic`), not newer
//! than one already accepted from that endpoint (`replayed`), too old or from the future
//! (`stale`), claiming a node id bound to another endpoint or an endpoint bound to another
//! node id, in the Raft membership or the peer book (`conflict`), and more gossip-only peers
//! than `GOSSIP_PEERS_MAX` (`full`).
//!
//! Nothing here waits on the network: subscribing returns at once (the join goes on in the
//! background), every command to the gossip actor is bounded by
//! `GOSSIP_COMMAND_TIMEOUT_MS_MAX`, and a node with no reachable peer simply hears nothing.
//!
//! Caveats:
//! - A peer learned by gossip may not call this node's Raft RPC until the membership names it:
//!   knowing the topic lets anyone announce itself, so the announcement is a claim, not a
//!   credential.
//! - The first endpoint to claim a node id on the topic holds it in every peer book that has
//!   no other word for it (operator, ticket, membership). Anyone who knows the topic (from a
//!   ticket, or the cookie) can claim free ids; check `GET /peers` before adding a learner by
//!   id where that matters, or name its endpoint (`raft_addr`). A node that returns under the
//!   same id with a new key must be named again by the operator (`POST /add-peer`).
//! - A node bound to an unspecified address (`0.0.0.0`) announces no API address, since
//!   clients could not use it.
//! - Joining needs one reachable peer (a ticket's bootstrap peers, manual peers); mDNS,
//!   DNS/pkarr and relays are other methods, not part of this module.
//!
//! The code is split by side, so that the rules are tested without tokio or a network:
//! - `announcer`: [`Announcer`], what this node announces (plain state, no I/O);
//! - `receiver`: [`Receiver`], what this node accepts from others and why it drops the rest
//!   (plain state, no I/O);
//! - `task`: [`GossipArgs`], [`spawn`] and [`GossipTask`], the I/O shell that subscribes,
//!   broadcasts and feeds received messages to the receiver;
//! - `tests`: the two plain halves driven against each other.
//!
//! The drop counters ([`GossipCounters`]) live in the sibling `gossip_counters`.

mod announcer;
mod receiver;
mod task;

#[cfg(test)]
mod tests;

pub use super::gossip_counters::{DropReason, GossipCounters, GossipCounts};
pub use announcer::Announcer;
pub use receiver::Receiver;
pub use task::{GossipArgs, GossipTask, MembersView, spawn};
