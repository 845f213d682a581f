//! How a node learns where its peers are.
//!
//! Every method feeds one [`PeerBook`] per node; the Raft network dials from it, the control
//! plane takes a learner's endpoint and API address from it when only the node id is given,
//! and the Raft RPC server checks callers against it. The book is filled by:
//! - the operator: manual peers (`--peers`, `add_peer`, `POST /add-peer`), by endpoint id
//!   alone or with addresses;
//! - a [`ClusterTicket`] (`aspen…`, served at `GET /cluster-ticket`, given with `--ticket`):
//!   the cluster's gossip topic and a few members' endpoint addresses in one string;
//! - gossip ([`gossip`]): every node broadcasts a signed [`Announcement`] of itself on the
//!   topic derived from the cookie, and verified announcements enter the book with source
//!   `Gossip` (unless `--disable-gossip`);
//! - mDNS ([`mdns`]): nodes on one LAN advertise their endpoint and node id under a service
//!   name derived from the cookie; what is heard enters the book with source `Mdns` (unless
//!   `--disable-mdns`, and never on a loopback host);
//! - DNS ([`dns`]): with `--enable-pkarr` a node publishes its addresses to a pkarr relay;
//!   with `--enable-dns-discovery` a node locates the peers it knows by endpoint id alone at
//!   the DNS server that serves those records, and records their addresses with source `Dns`.
//!
//! mDNS and DNS are also registered on the iroh endpoint as address lookups, so a dial by
//! endpoint id alone (Raft, gossip) is resolved through them too. The relay (`--relay-url`) is
//! not a discovery method but a path: it is configured on the endpoint
//! (`IrohEndpointManager`), and peers that know a node's relay reach it through there.
//!
//! The [`DiscoveryActor`] runs gossip, the mDNS listener and the DNS locator under the node's
//! supervisor.
//!
//! Caveats:
//! - Nothing public is asked unless named: DNS discovery asks the configured server alone,
//!   pkarr publishes to the configured relay alone. A method that cannot run (mDNS without
//!   multicast, DNS or pkarr without a URL) logs one warning at startup and the others go on;
//!   a pkarr relay that stops answering is retried, and iroh logs each failed attempt.
//! - Gossip needs one reachable peer to join through (a ticket's bootstrap peers, a manual
//!   peer, or a peer mDNS or DNS found); a node with none waits for others to join it.
//! - A peer known only from gossip may not call Raft RPC until the membership (or the
//!   operator) names it: an announcement is a claim anyone who knows the topic can make. An
//!   mDNS record carries a proof that its node holds the cookie (a keyed hash of its endpoint
//!   id and node id, see [`mdns`]); a peer whose proof checks may call Raft RPC, so nodes on
//!   one LAN form a cluster with nothing typed in.
//! - DNS answers where an endpoint is, never which node it is: such peers are named by the
//!   operator first.

mod actor;
mod announcement;
pub mod dns;
pub mod gossip;
mod gossip_counters;
mod manual;
pub mod mdns;
mod peer_book;
mod ticket;

pub use actor::{
    DiscoveryActor, DiscoveryActorArgs, DiscoveryActorMessage, DiscoveryState, MdnsArgs,
};
pub use announcement::{Announcement, AnnouncementError, ReplayGuard, SignedAnnouncement};
pub use dns::{DnsDiscoveryUrl, parse_dns_discovery_url, parse_pkarr_relay_url};
pub use gossip::{DropReason, GossipArgs, GossipCounters, GossipCounts, MembersView};
pub use manual::{endpoint_to_string, parse_endpoint, parse_peer};
pub use peer_book::{PeerBook, PeerBookFull, PeerEntry, PeerRefused, PeerSource};
pub use ticket::{ClusterTicket, TicketError, cluster_topic};
