//! The network of a `netns` run: one network namespace per node on a bridge, and the faults
//! that cut, slow or thin the links between nodes.
//!
//! How the pieces fit:
//!
//! - [`NetnsTopology::create`] builds a run's network (see [`netns`] for the picture): a lab
//!   namespace with a bridge, one namespace per node joined to the bridge by a veth, and one
//!   veth from the host into the lab namespace, which carries the lab's address. The lab, in
//!   the root namespace, reaches each node at [`NetnsTopology::node_address`]; the runner starts
//!   each node with [`NetnsTopology::command_prefix`] (`ip netns exec <ns>`).
//! - Names carry a common prefix and the run id (`aspl-<id>-n2`), and the run holds a lock file
//!   while it lives, so that [`cleanup_stale`] removes what a killed run left and nothing of a
//!   live one. Dropping the topology removes everything it made; [`teardown_all`] does the same
//!   for every topology of the process, for Ctrl-C.
//! - [`faults`] is pure: a scenario's [`NetworkFault`](crate::scenario::NetworkFault) changes the
//!   [`Conditions`] (a [`Partition`] of cut links, loss and delay), and [`nft_ruleset`] and
//!   [`netem_args`] turn them into the text and arguments that [`NetnsTopology::apply`] runs in
//!   each node namespace. Healing deletes the lab's nftables table (`inet aspen_lab`) and the
//!   netem qdiscs.
//! - [`support`] says whether the machine can do any of this (Linux, root, `ip`, `nft`), in one
//!   line a runner prints when it skips a scenario.
//!
//! Caveats:
//! - Every call is blocking (it runs `ip`, `nft` or `tc`, each bounded by
//!   `NETWORK_COMMAND_MS_MAX`); an async caller uses `spawn_blocking`.
//! - Partitions and loss apply to node-to-node traffic only: rules match node addresses as
//!   sources and accept the lab's first. Delay is a netem qdisc on the node's device, so it also
//!   slows the node's answers to the lab; a round trip between two delayed nodes gets the delay
//!   twice.
//! - Loss is an nftables rule (`numgen random`), not netem, so it works on kernels without
//!   `sch_netem`; delay needs netem, and [`NetnsTopology::netem_available`] says whether the
//!   kernel has it.
//! - IPv4 only: node namespaces get no IPv6 address, and the rules drop IPv6 between nodes.
//! - Removing a namespace kills the processes still inside it; the runner should stop its nodes
//!   first, so that their exits are the ones it expects.

mod command;
pub mod faults;
mod names;
pub mod netns;
mod stale;
mod subnet;

#[cfg(test)]
mod tests;

pub use command::{NetworkError, support};
pub use faults::{
    AddressMap, Conditions, Delay, Link, NFT_TABLE, Partition, netem_args, nft_heal, nft_ruleset,
};
pub use names::{NAME_PREFIX, RunId};
pub use netns::NetnsTopology;
pub use stale::{cleanup_stale, teardown_all};
pub use subnet::{Subnet, choose_subnet, taken_prefixes};
