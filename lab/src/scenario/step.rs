//! The steps of a scenario script and the values they take.
//!
//! A step is written as a one-field object named after its kind (`{"write": {...}}`), or as a
//! bare string for the kinds that take no fields (`"bootstrap"`, `"add_node"`, `"heal"`,
//! `"intruder"`).
//! Network faults (`network_fault`) are described in [`super::network`].
//! Which node a step targets ([`NodeSelector`]) is in [`super::node_selector`].

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::model::CheckKind;
use super::network::{NetworkFault, NetworkFaultKind};
use super::node_selector::NodeSelector;

/// One step of a scenario script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Form the cluster: init node 0, add the others as learners, then promote them to voters.
    Bootstrap,
    /// Write one key through the cluster and require the write to be acknowledged.
    Write(WriteStep),
    /// Read one key (linearizably) and optionally require a value.
    Read(ReadStep),
    /// Pause the script for a fixed time.
    Wait(WaitStep),
    /// Pause the script until a condition holds, failing the run after a timeout.
    WaitFor(WaitForStep),
    /// Inject one fault into one node.
    Fault(FaultStep),
    /// Run concurrent clients issuing reads, writes and CAS, recording a history.
    Workload(WorkloadStep),
    /// Start a seeded random schedule of faults in the background; the next step starts at once.
    Nemesis(NemesisStep),
    /// Start one more node and join it to the cluster as a voter; it takes the next node index.
    AddNode,
    /// Remove a node from the membership and stop its process; its index is not reused.
    RemoveNode(RemoveNodeStep),
    /// Stop a running nemesis and recover every fault still in effect, the network's too.
    Heal,
    /// Run checks now, in the middle of the script.
    Check(CheckStep),
    /// Cut, slow or thin the links between nodes (`"network": "netns"` only).
    NetworkFault(NetworkFault),
    /// Start a stranger (`"discovery": "gossip"` only): one more `aspen-node` with another
    /// cookie and node id that knows the cluster's ticket and tries to get in, for the rest of
    /// the run. The `no_intruder` check judges it.
    Intruder,
}

impl Step {
    /// Every step kind, as written in scenario files.
    pub const KINDS: [&'static str; 14] = [
        "bootstrap",
        "write",
        "read",
        "wait",
        "wait_for",
        "fault",
        "workload",
        "nemesis",
        "add_node",
        "remove_node",
        "heal",
        "check",
        "network_fault",
        "intruder",
    ];

    /// The step's kind, as written in scenario files.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Bootstrap => "bootstrap",
            Step::Write(_) => "write",
            Step::Read(_) => "read",
            Step::Wait(_) => "wait",
            Step::WaitFor(_) => "wait_for",
            Step::Fault(_) => "fault",
            Step::Workload(_) => "workload",
            Step::Nemesis(_) => "nemesis",
            Step::AddNode => "add_node",
            Step::RemoveNode(_) => "remove_node",
            Step::Heal => "heal",
            Step::Check(_) => "check",
            Step::NetworkFault(_) => "network_fault",
            Step::Intruder => "intruder",
        }
    }
}

/// Fields of a `write` step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteStep {
    /// The key to write.
    pub key: String,
    /// The value to write.
    pub value: String,
}

/// Fields of a `read` step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadStep {
    /// The key to read.
    pub key: String,
    /// What the read must return: absent means "anything", `null` means "the key is absent",
    /// a string means that value.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub expect: Option<Option<String>>,
}

/// Tells a field that is present (even as `null`) from one that is missing.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// Fields of a `wait` step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitStep {
    /// How long to wait, in milliseconds (at most 60000).
    pub ms: u64,
}

/// Fields of a `wait_for` step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitForStep {
    /// The condition to wait for.
    pub condition: WaitCondition,
    /// How long to wait before the run fails, in milliseconds.
    pub timeout_ms: u64,
}

/// A cluster condition a `wait_for` step waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitCondition {
    /// Some node reports itself leader and the others agree.
    Leader,
    /// Every running node has every other running node in its peer book.
    AllNodesKnowEachOther,
    /// Every running node has applied the leader's last log index.
    Replicated,
    /// The leader has built a snapshot and purged its log up to it, so that a node joining now
    /// can only catch up through the snapshot.
    LogPurged,
}

/// Fields of a `fault` step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultStep {
    /// What to do to the node.
    pub kind: FaultKind,
    /// Which node.
    pub node: NodeSelector,
    /// Which actor, for `crash_actor` only (default `raft`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<ActorName>,
}

impl FaultStep {
    /// The actor a `crash_actor` fault crashes (`raft` unless named); `None` for other kinds.
    pub fn crashed_actor(&self) -> Option<ActorName> {
        (self.kind == FaultKind::CrashActor).then(|| self.actor.unwrap_or(ActorName::Raft))
    }
}

/// A fault the lab can inject into one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// `kill -9` the node's process.
    Kill,
    /// `SIGTERM` the node's process and let it shut down.
    Terminate,
    /// `SIGSTOP` the node's process.
    Pause,
    /// `SIGCONT` a paused node.
    Resume,
    /// Start a killed or terminated node again on its data directory.
    Restart,
    /// Kill the node, delete its data directory, start it afresh and join it again.
    WipeAndRejoin,
    /// Crash one supervised actor of the node over ractor_cluster; its supervisor restarts it.
    CrashActor,
}

impl FaultKind {
    /// The kind's name as written in scenario files and in events.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Terminate => "terminate",
            FaultKind::Pause => "pause",
            FaultKind::Resume => "resume",
            FaultKind::Restart => "restart",
            FaultKind::WipeAndRejoin => "wipe_and_rejoin",
            FaultKind::CrashActor => "crash_actor",
        }
    }

    /// The kind with this name.
    pub fn from_name(name: &str) -> Option<FaultKind> {
        ALL_FAULT_KINDS.into_iter().find(|kind| kind.name() == name)
    }

    /// The fault that undoes this one, for faults that leave a node down until undone.
    pub fn recovery(self) -> Option<FaultKind> {
        match self {
            FaultKind::Kill | FaultKind::Terminate => Some(FaultKind::Restart),
            FaultKind::Pause => Some(FaultKind::Resume),
            _ => None,
        }
    }

    /// Whether this kind undoes another fault rather than causing one.
    pub fn is_recovery(self) -> bool {
        matches!(self, FaultKind::Resume | FaultKind::Restart)
    }
}

/// Every fault kind, in declaration order.
const ALL_FAULT_KINDS: [FaultKind; 7] = [
    FaultKind::Kill,
    FaultKind::Terminate,
    FaultKind::Pause,
    FaultKind::Resume,
    FaultKind::Restart,
    FaultKind::WipeAndRejoin,
    FaultKind::CrashActor,
];

impl fmt::Display for FaultKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// A supervised actor of a node that `crash_actor` can crash (the node's supervisor names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorName {
    /// The RaftActor, owner of the openraft instance.
    Raft,
    /// The StorageActor, owner of the redb databases.
    Storage,
    /// The DiscoveryActor, owner of the peer book.
    Discovery,
}

impl ActorName {
    /// Every actor that can be crashed.
    pub const ALL: [ActorName; 3] = [ActorName::Raft, ActorName::Storage, ActorName::Discovery];

    /// The actor's role name, as the node's NodeControl expects it.
    pub fn name(self) -> &'static str {
        match self {
            ActorName::Raft => "raft",
            ActorName::Storage => "storage",
            ActorName::Discovery => "discovery",
        }
    }
}

/// Fields of a `workload` step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadStep {
    /// Concurrent clients, each a Jepsen "process" that has one operation in flight at a time.
    pub clients: u32,
    /// How long the workload runs, in milliseconds.
    pub duration_ms: u64,
    /// Operations started per second over all clients.
    pub rate_per_s: u32,
    /// Distinct keys the clients touch.
    pub keys: u32,
    /// Relative weights of reads, writes and CAS.
    pub mix: Mix,
    /// Run in the background: the next step starts at once, so that faults and membership
    /// changes happen while the clients run. The script waits for every background workload
    /// before its end (default false: the step ends when the workload does).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub background: bool,
}

/// Relative weights of the operation kinds in a workload; a missing kind weighs 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mix {
    /// Weight of linearizable reads.
    pub read: u32,
    /// Weight of plain writes.
    pub write: u32,
    /// Weight of compare-and-swap writes.
    pub cas: u32,
}

/// Fields of a `nemesis` step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NemesisStep {
    /// How long the schedule runs, in milliseconds; every fault is healed before it ends.
    pub duration_ms: u64,
    /// Length of one fault cycle, in milliseconds: a fault, then its recovery, within it.
    pub interval_ms: u64,
    /// The process fault kinds to draw from. Recoveries (`restart`, `resume`) are scheduled by
    /// the nemesis itself and may not be listed.
    #[serde(default)]
    pub faults: Vec<FaultKind>,
    /// The network fault kinds to draw from (`"network": "netns"` only). `heal` is scheduled
    /// by the nemesis itself and may not be listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_faults: Vec<NetworkFaultKind>,
}

/// Fields of a `remove_node` step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveNodeStep {
    /// The node to remove.
    pub node: NodeSelector,
}

/// Fields of a `check` step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckStep {
    /// The checks to run now.
    pub checks: Vec<CheckKind>,
}
