//! The peer book: which iroh endpoint each Raft node id is reached at, and how we learned it.
//!
//! Every discovery method writes here; the Raft network reads from here when it dials a node,
//! the control plane takes a learner's endpoint (and API address) from here when only its node
//! id is given, and the Raft RPC server consults it to decide who may call. It is bounded by
//! `PEERS_MAX`, and by `GOSSIP_PEERS_MAX` for peers that only gossip or mDNS vouches for.
//!
//! Two questions are kept apart:
//! - **Who is node N?** (the binding node id → endpoint id). An operator (manual peers, a
//!   ticket) or the replicated membership may set or change it. Gossip and mDNS may only
//!   claim an id nobody holds yet; a claim for an id bound to another endpoint is refused as a
//!   conflict, because an announcement proves who holds an endpoint key (and an mDNS record
//!   not even that), not which node id it is. DNS never names a node: it only locates an
//!   endpoint the book already binds.
//! - **Where is it now?** (the addresses). A manual entry's addresses are the operator's word
//!   and stay; otherwise the freshest source supplies them: a signed announcement, an mDNS
//!   record or a DNS answer beats the snapshot in a ticket or a membership record.
//!
//! A peer an operator named (manually or through a ticket) stays `operator_named` when gossip
//! later refreshes it; only such peers may call this node's Raft RPC before the membership
//! names them.
//!
//! - `entry`: what the book holds about one peer ([`PeerEntry`]) and where it came from
//!   ([`PeerSource`]), with the ranking of sources the rules above use;
//! - `book`: the [`PeerBook`] itself, the rules for taking in a new word about a peer, and the
//!   errors its writers get ([`PeerBookFull`], [`PeerRefused`]).

mod book;
mod entry;

pub use book::{PeerBook, PeerBookFull, PeerRefused};
pub use entry::{PeerEntry, PeerSource};
