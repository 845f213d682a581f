//! A run's network: one namespace per node on a bridge, and one veth from the host.
//!
//! ```text
//!  host (root namespace)          aspl-<id>-lab                 aspl-<id>-n<i>
//!  aspl-<id> 10.213.c.1/24 ══ uplink ─┐
//!                                     br0 ─ n0 ══ eth0 10.213.c.10/24  (node 0)
//!                                         ─ n1 ══ eth0 10.213.c.11/24  (node 1) ...
//! ```
//!
//! Everything is one layer-2 segment: the host's end of the lab veth carries the lab address,
//! so the lab (in the root namespace) reaches every node directly through the connected route
//! of that one interface, and nothing on the host forwards or routes. Each node namespace has
//! `lo` and `eth0` only, with no IPv6 address, so its node can only talk over the bridge.
//! Faults are applied inside the node namespaces ([`super::faults`]); the lab namespace holds
//! no rules.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::command::{NetworkError, in_namespace, ip, support};
use super::faults::{AddressMap, Conditions, Delay, netem_args, nft_heal, nft_ruleset};
use super::names::{BRIDGE, NODE_DEVICE, RunId, UPLINK};
use super::stale::{FileLock, cleanup_stale, register, remove_set, unregister};
use super::subnet::{Subnet, choose_subnet, taken_prefixes};
use crate::limits;
use crate::scenario::NodeIndex;

/// The namespaces, bridge and veths of one run; removed when dropped (or by [`teardown`]).
///
/// [`teardown`]: NetnsTopology::teardown
#[derive(Debug)]
pub struct NetnsTopology {
    id: RunId,
    subnet: Subnet,
    /// Nodes added so far; node `i` exists for every `i < nodes`.
    nodes: u32,
    /// The run's ownership of its names; `None` once torn down.
    owner: Option<FileLock>,
    /// The nftables script last applied in each node's namespace.
    rules: BTreeMap<NodeIndex, String>,
    /// The delay in force on each node's device.
    delays: BTreeMap<NodeIndex, Delay>,
    /// The conditions last applied in full.
    conditions: Conditions,
}

impl NetnsTopology {
    /// Builds a network for `nodes` nodes, after removing what dead runs left behind. Fails
    /// with `Unsupported` (skip the scenario) on a machine that cannot do it. Whatever was
    /// built is removed again if a later step fails.
    pub fn create(nodes: u32) -> Result<NetnsTopology, NetworkError> {
        support()?;
        if nodes > limits::NODES_MAX {
            return Err(NetworkError::invalid(format!("at most {} nodes", limits::NODES_MAX)));
        }
        if let Err(error) = cleanup_stale() {
            // Another run's leftovers do not stop this run: its names and subnet are its own.
            eprintln!("aspen-lab: could not remove a stale network: {error}");
        }
        let id = RunId::next();
        let owner = FileLock::owner(&id)?;
        let allocation = FileLock::allocation()?;
        // Concurrent runs start their search at different /24s of the first range.
        let hint = usize::from_str_radix(id.as_str(), 16).unwrap_or(0) % 256;
        let subnet = free_subnet(hint)?;
        register(&id);
        let mut topology = NetnsTopology {
            id,
            subnet,
            nodes: 0,
            owner: Some(owner),
            rules: BTreeMap::new(),
            delays: BTreeMap::new(),
            conditions: Conditions::default(),
        };
        // From here on, dropping `topology` removes whatever the next lines built.
        topology.create_lab()?;
        // The host address, and with it the subnet's route, exists now: other runs see it.
        drop(allocation);
        for _ in 0..nodes {
            topology.add_node()?;
        }
        Ok(topology)
    }

    /// The lab namespace with its bridge, and the host's veth into it.
    fn create_lab(&self) -> Result<(), NetworkError> {
        let lab = self.id.lab_namespace();
        let host = self.id.host_link();
        let lab_address = format!("{}/24", self.subnet.lab_address());
        ip(&["netns", "add", &lab])?;
        ip(&["-n", &lab, "link", "set", "lo", "up"])?;
        ip(&["-n", &lab, "link", "add", BRIDGE, "type", "bridge"])?;
        ip(&["-n", &lab, "link", "set", BRIDGE, "up"])?;
        ip(&["link", "add", &host, "type", "veth", "peer", "name", UPLINK, "netns", &lab])?;
        ip(&["-n", &lab, "link", "set", UPLINK, "master", BRIDGE, "up"])?;
        // No IPv6 link-local address: the host end serves the lab's IPv4 subnet only.
        ip(&["link", "set", &host, "addrgenmode", "none"])?;
        ip(&["addr", "add", &lab_address, "dev", &host])?;
        ip(&["link", "set", &host, "up"])?;
        Ok(())
    }

    /// Adds one more node (a namespace on the bridge) and returns its index.
    pub fn add_node(&mut self) -> Result<NodeIndex, NetworkError> {
        let node = self.nodes;
        if node >= limits::NODES_MAX {
            return Err(NetworkError::invalid(format!("at most {} nodes", limits::NODES_MAX)));
        }
        let address = self.subnet.node_address(node).expect("NODES_MAX fits in a /24");
        let (lab, namespace) = (self.id.lab_namespace(), self.id.node_namespace(node));
        let port = RunId::bridge_port(node);
        ip(&["netns", "add", &namespace])?;
        ip(&["-n", &namespace, "link", "set", "lo", "up"])?;
        // The pair is made with its node end directly in the node's namespace.
        let peer = ["peer", "name", NODE_DEVICE, "netns", &namespace];
        let mut add = vec!["-n", &lab, "link", "add", &port, "type", "veth"];
        add.extend(peer);
        ip(&add)?;
        ip(&["-n", &lab, "link", "set", &port, "master", BRIDGE, "up"])?;
        // No IPv6 address: nodes talk IPv4 only, the protocol the fault rules match on.
        ip(&["-n", &namespace, "link", "set", NODE_DEVICE, "addrgenmode", "none"])?;
        let cidr = format!("{address}/24");
        ip(&["-n", &namespace, "addr", "add", &cidr, "dev", NODE_DEVICE])?;
        ip(&["-n", &namespace, "link", "set", NODE_DEVICE, "up"])?;
        // Multicast (mDNS) leaves through the bridge; no default route, so nothing else does.
        ip(&["-n", &namespace, "route", "add", "224.0.0.0/4", "dev", NODE_DEVICE])?;
        self.rules.insert(node, nft_heal());
        self.nodes += 1;
        Ok(node)
    }

    /// The run id shared by this topology's names.
    pub fn run_id(&self) -> &RunId {
        &self.id
    }

    /// The run's /24.
    pub fn subnet(&self) -> Subnet {
        self.subnet
    }

    /// Nodes in the topology; their indexes are `0..nodes()`.
    pub fn nodes(&self) -> u32 {
        self.nodes
    }

    /// The lab's address, from which it reaches the nodes.
    pub fn lab_address(&self) -> Ipv4Addr {
        self.subnet.lab_address()
    }

    /// Node `node`'s address, if the node exists. Its HTTP API and control port should listen
    /// on it (or on `0.0.0.0`): ports are per namespace, so every node may use the same ones.
    pub fn node_address(&self, node: NodeIndex) -> Option<Ipv4Addr> {
        (node < self.nodes).then(|| self.subnet.node_address(node)).flatten()
    }

    /// The lab's and every node's address.
    pub fn addresses(&self) -> AddressMap {
        let nodes = (0..self.nodes).filter_map(|n| Some((n, self.node_address(n)?))).collect();
        AddressMap { lab: self.lab_address(), nodes }
    }

    /// The namespace of node `node`, if the node exists.
    pub fn node_namespace(&self, node: NodeIndex) -> Option<String> {
        (node < self.nodes).then(|| self.id.node_namespace(node))
    }

    /// The argv that runs a program inside node `node`'s namespace: `ip netns exec <ns>`,
    /// followed by the program and its arguments. `ip` execs the program in place, so the pid
    /// of the spawned process is the program's own, for signals.
    pub fn command_prefix(&self, node: NodeIndex) -> Option<Vec<String>> {
        let namespace = self.node_namespace(node)?;
        Some(vec!["ip".into(), "netns".into(), "exec".into(), namespace])
    }

    /// The conditions in force.
    pub fn conditions(&self) -> &Conditions {
        &self.conditions
    }

    /// Puts `conditions` in force, replacing the previous ones: nftables rules in every node
    /// namespace whose rules change, and tc netem on every node whose delay changes. Fails with
    /// `Unsupported` when a delay is asked for and the kernel has no netem.
    pub fn apply(&mut self, conditions: &Conditions) -> Result<(), NetworkError> {
        let addresses = self.addresses();
        for node in 0..self.nodes {
            let namespace = self.id.node_namespace(node);
            let rules = nft_ruleset(node, conditions, &addresses);
            if self.rules.get(&node) != Some(&rules) {
                in_namespace(&namespace, "nft", &["-f", "-"], Some(&rules))?;
                self.rules.insert(node, rules);
            }
            let wanted = conditions.delay.get(&node).copied();
            if self.delays.get(&node).copied() != wanted {
                let args = netem_args(wanted);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                in_namespace(&namespace, "tc", &args, None).map_err(netem_error)?;
                match wanted {
                    Some(delay) => self.delays.insert(node, delay),
                    None => self.delays.remove(&node),
                };
            }
        }
        self.conditions = conditions.clone();
        Ok(())
    }

    /// Removes every fault: deletes the lab's nftables table and every netem qdisc.
    pub fn heal(&mut self) -> Result<(), NetworkError> {
        self.apply(&Conditions::default())
    }

    /// Whether the kernel can delay packets (tc netem), tried on a scratch veth pair in the lab
    /// namespace; `Unsupported` with the reason if not.
    pub fn netem_available(&self) -> Result<(), NetworkError> {
        let lab = self.id.lab_namespace();
        ip(&["-n", &lab, "link", "add", "probe0", "type", "veth", "peer", "name", "probe1"])?;
        let tried = in_namespace(
            &lab,
            "tc",
            &["qdisc", "replace", "dev", "probe0", "root", "netem", "delay", "1ms"],
            None,
        );
        let removed = ip(&["-n", &lab, "link", "del", "probe0"]);
        tried.map_err(netem_error)?;
        removed.map(|_| ())
    }

    /// Removes every namespace, veth, bridge and rule of this topology, killing any process
    /// left inside its namespaces. Dropping the topology does the same, printing problems
    /// instead of returning them.
    pub fn teardown(mut self) -> Result<(), NetworkError> {
        self.teardown_in_place()
    }

    fn teardown_in_place(&mut self) -> Result<(), NetworkError> {
        let Some(owner) = self.owner.take() else { return Ok(()) };
        let mut problems = remove_set(&self.id);
        if problems.is_empty() {
            owner.remove();
            unregister(&self.id);
            return Ok(());
        }
        // Keep the lock file, so that the next run's cleanup tries again.
        drop(owner);
        Err(problems.remove(0))
    }
}

impl Drop for NetnsTopology {
    fn drop(&mut self) {
        if let Err(error) = self.teardown_in_place() {
            eprintln!("aspen-lab: network {} teardown: {error}", self.id);
        }
    }
}

/// A /24 that no route or address of the host overlaps.
fn free_subnet(hint: usize) -> Result<Subnet, NetworkError> {
    let routes = ip(&["-4", "-o", "route", "show", "table", "all"])?;
    let addresses = ip(&["-4", "-o", "addr", "show"])?;
    choose_subnet(&taken_prefixes(&routes, &addresses), hint).ok_or_else(|| {
        NetworkError::Unsupported {
            reason: "no free /24 in 10.213.0.0/16 or 172.29.0.0/16 for the lab network".into(),
        }
    })
}

/// Names a missing netem module as the reason it failed.
fn netem_error(error: NetworkError) -> NetworkError {
    match &error {
        NetworkError::Command { detail, .. } if detail.contains("qdisc kind is unknown") => {
            NetworkError::Unsupported {
                reason: "tc netem is not available: this kernel has no sch_netem \
                         (CONFIG_NET_SCH_NETEM)"
                    .into(),
            }
        }
        _ => error,
    }
}
