//! The walk through a scenario's steps: what the steps so far have done to the cluster (nodes
//! added and removed, a bootstrap, faults, history, an intruder), and the checks of each step
//! against it. Kept apart from the entry points because it is the bulk of validation and the
//! part that grows with every new step kind.

use std::fmt;

use super::{FieldError, NodeScope};
use crate::limits;
use crate::scenario::model::{CheckKind, Discovery, Network};
use crate::scenario::network::{NetworkFault, NetworkFaultKind, check_network_fault};
use crate::scenario::node_selector::NodeSelector;
use crate::scenario::step::{
    FaultKind, FaultStep, NemesisStep, ReadStep, Step, WorkloadStep, WriteStep,
};

/// What the steps so far have done to the cluster, to judge the next step.
pub(super) struct StepWalk {
    /// The nodes that exist.
    scope: NodeScope,
    /// How the nodes are connected: network faults need `netns`.
    network: Network,
    /// How the nodes find each other: the intruder needs `gossip`.
    discovery: Discovery,
    /// The `bootstrap` step, once seen.
    bootstrap: Option<usize>,
    /// Whether some step records operations in the history.
    pub(super) records_history: bool,
    /// Whether some step injects a fault that can take a leader down.
    pub(super) injects_faults: bool,
    /// The `intruder` step, once seen.
    pub(super) intruder: Option<usize>,
    /// Problems found so far.
    pub(super) errors: Vec<FieldError>,
}

impl StepWalk {
    pub(super) fn new(nodes: u32, network: Network, discovery: Discovery) -> Self {
        Self {
            scope: NodeScope::new(nodes),
            network,
            discovery,
            bootstrap: None,
            records_history: false,
            injects_faults: false,
            intruder: None,
            errors: Vec::new(),
        }
    }

    /// Nodes still members of the cluster.
    fn live(&self) -> u32 {
        self.scope.live()
    }

    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(path, message));
    }

    pub(super) fn step(&mut self, index: usize, step: &Step) {
        let path = format!("steps[{index}].{}", step.kind());
        let needs_cluster =
            !matches!(step, Step::Bootstrap | Step::Wait(_) | Step::WaitFor(_) | Step::Check(_));
        if needs_cluster && self.bootstrap.is_none() {
            self.error(&path, "needs a bootstrap step before it");
        }
        match step {
            Step::Bootstrap => self.on_bootstrap(index, path),
            Step::Write(write) => self.on_write(&path, write),
            Step::Read(read) => self.on_read(&path, read),
            Step::Wait(wait) => {
                check_range(&mut self.errors, format!("{path}.ms"), wait.ms, 1, limits::WAIT_MS_MAX)
            }
            Step::WaitFor(wait_for) => {
                let max = limits::WAIT_FOR_TIMEOUT_MS_MAX;
                check_range(
                    &mut self.errors,
                    format!("{path}.timeout_ms"),
                    wait_for.timeout_ms,
                    1,
                    max,
                )
            }
            Step::Fault(fault) => self.on_fault(&path, fault),
            Step::Workload(workload) => self.on_workload(&path, workload),
            Step::Nemesis(nemesis) => self.on_nemesis(&path, nemesis),
            Step::AddNode => self.on_add_node(path),
            Step::RemoveNode(remove) => self.on_remove_node(index, &path, remove.node),
            Step::Heal => {}
            Step::Check(check) => self.on_check(&path, &check.checks),
            Step::NetworkFault(fault) => self.on_network_fault(&path, fault),
            Step::Intruder => self.on_intruder(index, path),
        }
    }

    fn on_check(&mut self, path: &str, checks: &[CheckKind]) {
        if checks.is_empty() {
            self.error(format!("{path}.checks"), "names no check");
        }
        for (index, check) in checks.iter().enumerate() {
            if *check == CheckKind::NoIntruder && self.intruder.is_none() {
                let message = "no_intruder needs an intruder step before it";
                self.error(format!("{path}.checks[{index}]"), message);
            }
        }
    }

    /// One intruder per run, and only under gossip discovery: it tries to get in through the
    /// cluster's gossip, which the other discovery methods turn off (`--disable-gossip`).
    fn on_intruder(&mut self, index: usize, path: String) {
        if self.discovery != Discovery::Gossip {
            let discovery = serde_json::to_string(&self.discovery).unwrap_or_default();
            let needed = r#"needs "node_settings": {"discovery": "gossip"}"#;
            self.error(&path, format!("{needed} (node_settings.discovery is {discovery})"));
        }
        match self.intruder {
            Some(first) => self.error(path, format!("the intruder was started by steps[{first}]")),
            None => self.intruder = Some(index),
        }
    }

    fn on_network_fault(&mut self, path: &str, fault: &NetworkFault) {
        self.injects_faults |= fault.is_partition();
        self.errors.extend(check_network_fault(path, fault, self.network, &self.scope));
    }

    fn on_bootstrap(&mut self, index: usize, path: String) {
        match self.bootstrap {
            Some(first) => {
                self.error(path, format!("the cluster was bootstrapped by steps[{first}]"))
            }
            None => self.bootstrap = Some(index),
        }
    }

    fn on_write(&mut self, path: &str, write: &WriteStep) {
        self.records_history = true;
        self.check_key(format!("{path}.key"), &write.key);
        if write.value.len() > limits::VALUE_BYTES_MAX {
            let max = limits::VALUE_BYTES_MAX;
            self.error(format!("{path}.value"), format!("longer than {max} bytes"));
        }
    }

    fn on_read(&mut self, path: &str, read: &ReadStep) {
        self.records_history = true;
        self.check_key(format!("{path}.key"), &read.key);
        if let Some(Some(value)) = &read.expect
            && value.len() > limits::VALUE_BYTES_MAX
        {
            let max = limits::VALUE_BYTES_MAX;
            self.error(format!("{path}.expect"), format!("longer than {max} bytes"));
        }
    }

    fn check_key(&mut self, path: String, key: &str) {
        if key.is_empty() {
            self.error(path, "must not be empty");
        } else if key.len() > limits::KEY_BYTES_MAX {
            self.error(path, format!("longer than {} bytes", limits::KEY_BYTES_MAX));
        }
    }

    fn on_fault(&mut self, path: &str, fault: &FaultStep) {
        self.injects_faults |= !fault.kind.is_recovery();
        self.check_node(format!("{path}.node"), fault.node);
        if fault.actor.is_some() && fault.kind != FaultKind::CrashActor {
            self.error(format!("{path}.actor"), "only a crash_actor fault names an actor");
        }
        if fault.kind == FaultKind::WipeAndRejoin && self.live() < 3 {
            let message = "wipe_and_rejoin needs 3 or more nodes, so that a quorum remains";
            self.error(format!("{path}.kind"), message);
        }
    }

    /// Checks that `node` names a node that exists and was not removed.
    fn check_node(&mut self, path: String, node: NodeSelector) {
        self.errors.extend(self.scope.check_node(path, node));
    }

    fn on_workload(&mut self, path: &str, workload: &WorkloadStep) {
        self.records_history = true;
        let errors = &mut self.errors;
        let field = |name: &str| format!("{path}.{name}");
        check_range(errors, field("clients"), workload.clients, 1, limits::WORKLOAD_CLIENTS_MAX);
        let duration_max = limits::RUN_DURATION_MS_MAX;
        check_range(errors, field("duration_ms"), workload.duration_ms, 1, duration_max);
        let rate_max = limits::WORKLOAD_RATE_PER_S_MAX;
        check_range(errors, field("rate_per_s"), workload.rate_per_s, 1, rate_max);
        check_range(errors, field("keys"), workload.keys, 1, limits::WORKLOAD_KEYS_MAX);
        let mix = workload.mix;
        for (name, weight) in [("read", mix.read), ("write", mix.write), ("cas", mix.cas)] {
            check_range(errors, field(&format!("mix.{name}")), weight, 0, limits::MIX_WEIGHT_MAX);
        }
        if mix.read + mix.write + mix.cas == 0 {
            self.error(field("mix"), "the weights of read, write and cas must not all be 0");
        }
    }

    fn on_nemesis(&mut self, path: &str, nemesis: &NemesisStep) {
        self.injects_faults = true;
        let interval_path = format!("{path}.interval_ms");
        let (interval_min, duration_max) =
            (limits::NEMESIS_INTERVAL_MS_MIN, limits::RUN_DURATION_MS_MAX);
        check_range(
            &mut self.errors,
            interval_path,
            nemesis.interval_ms,
            interval_min,
            duration_max,
        );
        let duration_path = format!("{path}.duration_ms");
        let duration_min = nemesis.interval_ms.max(interval_min);
        check_range(
            &mut self.errors,
            duration_path,
            nemesis.duration_ms,
            duration_min,
            duration_max,
        );
        if nemesis.faults.is_empty() && nemesis.network_faults.is_empty() {
            self.error(format!("{path}.faults"), "names no fault kind");
        }
        self.on_nemesis_network(path, &nemesis.network_faults);
        for (index, kind) in nemesis.faults.iter().enumerate() {
            let fault_path = format!("{path}.faults[{index}]");
            if kind.is_recovery() {
                self.error(
                    fault_path,
                    format!("{kind} is a recovery: the nemesis schedules it itself"),
                );
            } else if *kind == FaultKind::WipeAndRejoin && self.live() < 3 {
                self.error(
                    fault_path,
                    "wipe_and_rejoin needs 3 or more nodes, so that a quorum remains",
                );
            }
        }
    }

    /// The network fault kinds a nemesis draws from: netns only, no `heal` (the nemesis heals
    /// each fault itself), and enough nodes for each kind.
    fn on_nemesis_network(&mut self, path: &str, kinds: &[NetworkFaultKind]) {
        if !kinds.is_empty() && self.network != Network::Netns {
            let message = r#"network faults need "network": "netns""#;
            self.error(format!("{path}.network_faults"), message);
        }
        for (index, kind) in kinds.iter().enumerate() {
            let fault_path = format!("{path}.network_faults[{index}]");
            let needed = match kind {
                NetworkFaultKind::Heal => {
                    self.error(fault_path, "heal is a recovery: the nemesis schedules it itself");
                    continue;
                }
                NetworkFaultKind::Bridge => 3,
                NetworkFaultKind::MajoritiesRing => 4,
                NetworkFaultKind::Isolate | NetworkFaultKind::Split | NetworkFaultKind::OneWay => 2,
                NetworkFaultKind::Delay | NetworkFaultKind::Loss => 1,
            };
            if self.live() < needed {
                self.error(fault_path, format!("{kind} needs {needed} or more nodes"));
            }
        }
    }

    fn on_add_node(&mut self, path: String) {
        if self.scope.started >= limits::NODES_MAX {
            self.error(
                path,
                format!("the scenario would have more than {} nodes", limits::NODES_MAX),
            );
        } else {
            self.scope.started += 1;
        }
    }

    fn on_remove_node(&mut self, index: usize, path: &str, node: NodeSelector) {
        self.check_node(format!("{path}.node"), node);
        if self.live() <= 1 {
            self.error(format!("{path}.node"), "would remove the last node");
            return;
        }
        match node {
            NodeSelector::Index(removed) if removed < self.scope.started => {
                self.scope.removed.entry(removed).or_insert(index);
            }
            NodeSelector::Index(_) => {}
            NodeSelector::Leader | NodeSelector::RandomFollower => self.scope.removed_by_role += 1,
        }
    }
}

/// Records an error unless `min <= value <= max`.
fn check_range<T: PartialOrd + fmt::Display>(
    errors: &mut Vec<FieldError>,
    path: String,
    value: T,
    min: T,
    max: T,
) {
    if value < min || value > max {
        errors.push(FieldError::new(path, format!("expected {min} to {max}, got {value}")));
    }
}
