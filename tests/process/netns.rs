//! Network namespaces for tests that need more than loopback (a relay between unrouted
//! networks, multicast on a bridge). Needs root and `ip`; [`unsupported`] says why a test must
//! be skipped otherwise.
//!
//! Every namespace and host link is owned by a [`Netns`] guard that deletes them when dropped,
//! also when the test panics. Names start with a prefix and the test process's id, so that two
//! runs (or the lab, whose names start with `aspl`) never collide; they stay within the
//! 15 characters Linux allows for an interface name. Subnets are /24s of 10.231.0.0/16 that no
//! host route or address overlaps.

use std::net::Ipv4Addr;
use std::process::Command;

/// Why namespace tests cannot run here, or `None` when they can.
pub fn unsupported() -> Option<String> {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("creating network namespaces needs root".into());
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(format!(
            "`ip netns list` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(error) => Some(format!("cannot run `ip`: {error}")),
    }
}

/// Runs `ip <args>`; panics with its stderr when it fails.
pub fn ip(args: &[&str]) {
    let output = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        output.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

/// Runs `ip <args>` and says whether it succeeded.
pub fn ip_succeeds(args: &[&str]) -> bool {
    Command::new("ip").args(args).output().is_ok_and(|output| output.status.success())
}

/// The namespaces and host links of one test; all deleted when dropped.
pub struct Netns {
    /// `<prefix><pid>`: the start of every name this guard owns.
    pub prefix: String,
    namespaces: Vec<String>,
    host_links: Vec<String>,
}

impl Netns {
    /// A guard whose names start with `prefix` (5 characters, e.g. `asprl`) and the pid.
    pub fn new(prefix: &str) -> Self {
        assert!(prefix.len() <= 5, "{prefix}: the names must stay within 15 characters");
        Self {
            prefix: format!("{prefix}{}", std::process::id()),
            namespaces: Vec::new(),
            host_links: Vec::new(),
        }
    }

    /// Creates namespace `<prefix><suffix>` with loopback up, and returns its name.
    pub fn add_namespace(&mut self, suffix: &str) -> String {
        let name = format!("{}{suffix}", self.prefix);
        ip(&["netns", "add", &name]);
        self.namespaces.push(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        name
    }

    /// Creates a veth pair: `<prefix><suffix>` in the host namespace and `peer` in
    /// `namespace`; returns the host end's name.
    pub fn add_host_link(&mut self, suffix: &str, namespace: &str, peer: &str) -> String {
        let name = format!("{}{suffix}", self.prefix);
        assert!(name.len() <= 15, "interface name {name} is longer than 15 characters");
        ip(&["link", "add", &name, "type", "veth", "peer", "name", peer, "netns", namespace]);
        self.host_links.push(name.clone());
        name
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a host end deletes its peer; deleting a namespace deletes its links.
        for link in self.host_links.drain(..) {
            let _ = Command::new("ip").args(["link", "del", &link]).output();
        }
        for namespace in self.namespaces.drain(..) {
            let _ = Command::new("ip").args(["netns", "del", &namespace]).output();
        }
    }
}

/// `count` /24 subnets of 10.231.0.0/16 that overlap no host route or address, as their first
/// three octets; starting at an offset from the pid so that parallel runs pick different ones.
pub fn free_subnets(count: usize) -> Vec<[u8; 3]> {
    let routes = Command::new("ip").args(["-4", "route", "show", "table", "all"]).output();
    let addresses = Command::new("ip").args(["-4", "addr"]).output();
    let taken: String = [routes, addresses]
        .into_iter()
        .filter_map(Result::ok)
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .collect();
    let start = std::process::id() as usize % 256;
    let free: Vec<[u8; 3]> = (0..256)
        .map(|i| [10, 231, ((start + i) % 256) as u8])
        .filter(|[a, b, c]| !taken.contains(&format!("{a}.{b}.{c}.")))
        .take(count)
        .collect();
    assert_eq!(free.len(), count, "no {count} free /24s in 10.231.0.0/16");
    free
}

/// Host `host` of `subnet`.
pub fn address(subnet: [u8; 3], host: u8) -> Ipv4Addr {
    Ipv4Addr::new(subnet[0], subnet[1], subnet[2], host)
}
