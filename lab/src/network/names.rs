//! Names of a run's namespaces and interfaces, and the run id they share.
//!
//! Every name a run creates on the host starts with [`NAME_PREFIX`] followed by the run id, so
//! that the next run finds what a killed run left behind: namespaces `aspl-<id>-lab` and
//! `aspl-<id>-n<i>`, and the one host interface `aspl-<id>`. Interfaces inside the namespaces
//! need no prefix: each namespace has its own name space for links.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::scenario::NodeIndex;

/// The prefix of every namespace and host interface the lab creates.
pub const NAME_PREFIX: &str = "aspl-";

/// Hex digits of a run id: six for the process id (Linux pids stay below 2^22) and two for a
/// counter within the process. `aspl-` and eight digits make 13 characters, under the kernel's
/// 15-character limit on interface names.
const RUN_ID_DIGITS: usize = 8;

/// The bridge in the lab namespace.
pub(crate) const BRIDGE: &str = "br0";
/// The lab namespace's end of the host's veth, a port of the bridge.
pub(crate) const UPLINK: &str = "uplink";
/// A node's end of its veth, inside the node's namespace.
pub(crate) const NODE_DEVICE: &str = "eth0";

/// Identifies one topology among those alive on the machine: unique among live processes
/// (it holds the pid), and within a process (a counter).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(String);

impl RunId {
    /// A fresh id for a topology of this process.
    pub(crate) fn next() -> RunId {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        RunId(format!("{:06x}{:02x}", std::process::id() & 0xff_ffff, count & 0xff))
    }

    /// The run id in a name the lab created (`aspl-0012ab03-n2`, `aspl-0012ab03`), if it is one.
    pub fn of_name(name: &str) -> Option<RunId> {
        let rest = name.strip_prefix(NAME_PREFIX)?;
        let id = rest.split('-').next()?;
        let valid = id.len() == RUN_ID_DIGITS
            && id.bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
        valid.then(|| RunId(id.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The namespace holding the bridge.
    pub fn lab_namespace(&self) -> String {
        format!("{NAME_PREFIX}{}-lab", self.0)
    }

    /// The namespace of node `node`.
    pub fn node_namespace(&self, node: NodeIndex) -> String {
        format!("{NAME_PREFIX}{}-n{node}", self.0)
    }

    /// The prefix shared by every namespace of this run.
    pub fn namespace_prefix(&self) -> String {
        format!("{NAME_PREFIX}{}-", self.0)
    }

    /// The host's end of the veth into the lab namespace: the only interface the lab adds to
    /// the host.
    pub fn host_link(&self) -> String {
        format!("{NAME_PREFIX}{}", self.0)
    }

    /// The bridge port of node `node`'s veth, in the lab namespace.
    pub(crate) fn bridge_port(node: NodeIndex) -> String {
        format!("n{node}")
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}
