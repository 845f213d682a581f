//! Choosing a run's /24: one no route or address of the host overlaps.
//!
//! The host's end of the lab veth carries the lab address of the subnet, and that adds a
//! connected route to the host. The subnet must therefore overlap nothing the host already
//! routes (its own networks, another run's subnet), or the lab would shadow part of the host's
//! network. Candidates come from two private ranges that are rarely used: 10.213.0.0/16, then
//! 172.29.0.0/16.

use std::net::Ipv4Addr;

use crate::scenario::NodeIndex;

/// The ranges subnets are taken from, as their first two octets.
const RANGES: [[u8; 2]; 2] = [[10, 213], [172, 29]];

/// Host part of a node's address: node `i` is `.(10 + i)`, so the first node reads `.10`.
const NODE_HOST_FIRST: u8 = 10;

/// Route types that `ip route show table all` prints before the destination.
const ROUTE_TYPES: [&str; 10] = [
    "unicast",
    "local",
    "broadcast",
    "multicast",
    "anycast",
    "blackhole",
    "unreachable",
    "prohibit",
    "throw",
    "nat",
];

/// A /24 network of one run: the lab at `.1`, node `i` at `.(10 + i)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet {
    /// The first three octets.
    prefix: [u8; 3],
}

impl Subnet {
    /// The subnet `a.b.c.0/24`.
    pub fn new(a: u8, b: u8, c: u8) -> Subnet {
        Subnet { prefix: [a, b, c] }
    }

    /// The network address (`.0`).
    pub fn network(&self) -> Ipv4Addr {
        let [a, b, c] = self.prefix;
        Ipv4Addr::new(a, b, c, 0)
    }

    /// The lab's address, on the host's end of the lab veth.
    pub fn lab_address(&self) -> Ipv4Addr {
        let [a, b, c] = self.prefix;
        Ipv4Addr::new(a, b, c, 1)
    }

    /// Node `node`'s address; `None` past the end of the /24.
    pub fn node_address(&self, node: NodeIndex) -> Option<Ipv4Addr> {
        let host = u8::try_from(node).ok()?.checked_add(NODE_HOST_FIRST)?;
        (host < 255).then(|| {
            let [a, b, c] = self.prefix;
            Ipv4Addr::new(a, b, c, host)
        })
    }

    /// Whether this subnet and `prefix/length` share an address.
    pub fn overlaps(&self, prefix: Ipv4Addr, length: u8) -> bool {
        let shorter = length.min(24);
        let mask = if shorter == 0 { 0 } else { u32::MAX << (32 - u32::from(shorter)) };
        (u32::from(self.network()) & mask) == (u32::from(prefix) & mask)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}/24", self.network())
    }
}

/// The first subnet that overlaps none of `taken`, trying the candidates in order (10.213.0.0/24
/// to 10.213.255.0/24, then 172.29.0.0/24 on) from candidate `hint` on, wrapping around. `None`
/// when every candidate is taken.
pub fn choose_subnet(taken: &[(Ipv4Addr, u8)], hint: usize) -> Option<Subnet> {
    let candidates = RANGES.len() * 256;
    (0..candidates)
        .map(|offset| (hint + offset) % candidates)
        .map(|candidate| {
            let [a, b] = RANGES[candidate / 256];
            Subnet::new(a, b, (candidate % 256) as u8)
        })
        .find(|subnet| !taken.iter().any(|(prefix, length)| subnet.overlaps(*prefix, *length)))
}

/// The IPv4 destinations in the output of `ip -4 -o route show table all` and the networks in
/// that of `ip -4 -o addr show`. Default routes are left out: they overlap everything and
/// shadow nothing.
pub fn taken_prefixes(routes: &str, addresses: &str) -> Vec<(Ipv4Addr, u8)> {
    let mut taken = Vec::new();
    for line in routes.lines() {
        let mut words = line.split_whitespace();
        let mut destination = words.next();
        if destination.is_some_and(|word| ROUTE_TYPES.contains(&word)) {
            destination = words.next();
        }
        taken.extend(destination.and_then(parse_prefix));
    }
    for line in addresses.lines() {
        let mut words = line.split_whitespace().skip_while(|word| *word != "inet");
        taken.extend(words.nth(1).and_then(parse_prefix));
    }
    taken
}

/// `a.b.c.d/len` or `a.b.c.d` (a /32); `None` for anything else, `default` included.
fn parse_prefix(text: &str) -> Option<(Ipv4Addr, u8)> {
    let (address, length) = match text.split_once('/') {
        Some((address, length)) => (address, length.parse().ok().filter(|l: &u8| *l <= 32)?),
        None => (text, 32),
    };
    Some((address.parse().ok()?, length))
}
