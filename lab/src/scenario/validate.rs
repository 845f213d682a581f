//! Parsing a scenario with errors that name the field, and the semantic checks that JSON types
//! alone cannot express (node indexes below the node count, bounded durations, ...).

use std::collections::BTreeMap;
use std::fmt;

use super::model::{CheckKind, Discovery, Network, NodeIndex, NodeSettings, Scenario};
use super::network::{NetworkFault, NetworkFaultKind, check_network_fault};
use super::step::{
    FaultKind, FaultStep, NemesisStep, NodeSelector, ReadStep, Step, WorkloadStep, WriteStep,
};
use crate::limits;

/// One problem in a scenario, at a path such as `steps[3].fault.node`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Where the problem is, in JSON path notation.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl FieldError {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.path, self.message)
    }
}

/// Parses and validates a scenario. A JSON or type error yields one error at its path; a
/// scenario that parses yields every semantic error at once.
pub fn parse_scenario(text: &str) -> Result<Scenario, Vec<FieldError>> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let scenario: Scenario = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| vec![syntax_error(error.path().to_string(), error.inner())])?;
    deserializer.end().map_err(|error| vec![syntax_error(".".into(), &error)])?;
    validate(&scenario)?;
    Ok(scenario)
}

/// Turns a serde_json error into a field error, moving its location to the end.
fn syntax_error(path: String, error: &serde_json::Error) -> FieldError {
    let text = error.to_string();
    let message = match text.rfind(" at line ") {
        Some(cut) => format!("{} (line {}, column {})", &text[..cut], error.line(), error.column()),
        None => text,
    };
    let path = if path == "." || path.is_empty() { "scenario".to_string() } else { path };
    FieldError::new(path, message)
}

/// Checks what the types cannot: counts, bounds, node indexes, and the order of steps.
pub fn validate(scenario: &Scenario) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    let description = scenario.description.trim();
    if description.is_empty() {
        errors.push(FieldError::new("description", "must say what the scenario shows"));
    } else if description.len() > limits::DESCRIPTION_BYTES_MAX {
        let max = limits::DESCRIPTION_BYTES_MAX;
        errors.push(FieldError::new("description", format!("longer than {max} bytes")));
    }
    if !(1..=limits::NODES_MAX).contains(&scenario.nodes) {
        let message = format!("expected 1 to {} nodes, got {}", limits::NODES_MAX, scenario.nodes);
        errors.push(FieldError::new("nodes", message));
    }
    check_node_settings(&scenario.node_settings, &mut errors);
    if scenario.node_settings.discovery == Discovery::Mdns && scenario.network != Network::Netns {
        let message = "\"mdns\" needs \"network\": \"netns\" (loopback carries no multicast)";
        errors.push(FieldError::new("node_settings.discovery", message));
    }
    if scenario.steps.is_empty() {
        errors.push(FieldError::new("steps", "a scenario needs at least one step"));
    } else if scenario.steps.len() > limits::STEPS_MAX {
        errors.push(FieldError::new("steps", format!("more than {} steps", limits::STEPS_MAX)));
    }
    let nodes = scenario.nodes.min(limits::NODES_MAX);
    let mut walk = StepWalk::new(nodes, scenario.network, scenario.node_settings.discovery);
    for (index, step) in scenario.steps.iter().enumerate() {
        walk.step(index, step);
    }
    errors.append(&mut walk.errors);
    check_final_checks(scenario, &walk, &mut errors);
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Mirrors the node's own configuration checks, so that a run does not fail at startup.
fn check_node_settings(settings: &NodeSettings, errors: &mut Vec<FieldError>) {
    let path = |field: &str| format!("node_settings.{field}");
    if settings.heartbeat_interval_ms < limits::HEARTBEAT_INTERVAL_MS_MIN {
        let min = limits::HEARTBEAT_INTERVAL_MS_MIN;
        errors.push(FieldError::new(path("heartbeat_interval_ms"), format!("below {min} ms")));
    }
    if settings.heartbeat_interval_ms >= settings.election_timeout_min_ms {
        let message = "must be less than election_timeout_min_ms";
        errors.push(FieldError::new(path("heartbeat_interval_ms"), message));
    }
    if settings.election_timeout_min_ms >= settings.election_timeout_max_ms {
        let message = "must be less than election_timeout_max_ms";
        errors.push(FieldError::new(path("election_timeout_min_ms"), message));
    }
    if settings.election_timeout_max_ms > limits::ELECTION_TIMEOUT_MS_MAX {
        let max = limits::ELECTION_TIMEOUT_MS_MAX;
        errors.push(FieldError::new(path("election_timeout_max_ms"), format!("above {max} ms")));
    }
    if settings.snapshot_after_entries == 0 {
        errors.push(FieldError::new(path("snapshot_after_entries"), "must be at least 1"));
    }
}

/// Checks that the end-of-run checks have something to judge.
fn check_final_checks(scenario: &Scenario, walk: &StepWalk, errors: &mut Vec<FieldError>) {
    let mut seen = BTreeMap::new();
    for (index, check) in scenario.checks.iter().enumerate() {
        let path = format!("checks[{index}]");
        if let Some(first) = seen.insert(*check, index) {
            errors.push(FieldError::new(
                path,
                format!("{check} is already listed at checks[{first}]"),
            ));
            continue;
        }
        let needs_history = matches!(
            check,
            CheckKind::Linearizability | CheckKind::Durability | CheckKind::Liveness
        );
        if needs_history && !walk.records_history {
            let message = format!("{check} needs a workload, write or read step to judge");
            errors.push(FieldError::new(path, message));
        } else if *check == CheckKind::Failover && !walk.injects_faults {
            errors.push(FieldError::new(path, "failover needs a fault or nemesis step"));
        } else if *check == CheckKind::NoIntruder && walk.intruder.is_none() {
            errors.push(FieldError::new(path, "no_intruder needs an intruder step to judge"));
        }
    }
}

/// The nodes that exist at one point of a script, to check the node a step names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeScope {
    /// Nodes started so far: the initial ones plus one per `add_node`.
    started: u32,
    /// Removed node indexes, with the step that removed them.
    removed: BTreeMap<NodeIndex, usize>,
    /// Nodes removed through a role (`"leader"`), whose index is unknown until the run.
    removed_by_role: u32,
}

impl NodeScope {
    /// A cluster of `nodes` nodes, none removed.
    pub fn new(nodes: u32) -> Self {
        Self { started: nodes, removed: BTreeMap::new(), removed_by_role: 0 }
    }

    /// Nodes still members of the cluster.
    pub fn live(&self) -> u32 {
        self.started.saturating_sub(self.removed.len() as u32 + self.removed_by_role)
    }

    /// The indexes started and not removed by index, in order (nodes removed through a role may
    /// be among them).
    pub fn indexes(&self) -> impl Iterator<Item = NodeIndex> + '_ {
        (0..self.started).filter(|index| !self.removed.contains_key(index))
    }

    /// The problem with naming `node` at `path`, if any: an index that does not exist or was
    /// removed, or a role with too few nodes to fill it.
    pub fn check_node(&self, path: String, node: NodeSelector) -> Option<FieldError> {
        match node {
            NodeSelector::Index(index) if index >= self.started => {
                let message = format!(
                    r#"expected a node index below {}, "leader" or "random_follower""#,
                    self.started
                );
                Some(FieldError::new(path, message))
            }
            NodeSelector::Index(index) => self.removed.get(&index).map(|step| {
                FieldError::new(path, format!("node {index} was removed by steps[{step}]"))
            }),
            NodeSelector::RandomFollower if self.live() < 2 => {
                Some(FieldError::new(path, r#""random_follower" needs 2 or more nodes"#))
            }
            NodeSelector::Leader | NodeSelector::RandomFollower => None,
        }
    }
}

/// What the steps so far have done to the cluster, to judge the next step.
struct StepWalk {
    /// The nodes that exist.
    scope: NodeScope,
    /// How the nodes are connected: network faults need `netns`.
    network: Network,
    /// How the nodes find each other: the intruder needs `gossip`.
    discovery: Discovery,
    /// The `bootstrap` step, once seen.
    bootstrap: Option<usize>,
    /// Whether some step records operations in the history.
    records_history: bool,
    /// Whether some step injects a fault that can take a leader down.
    injects_faults: bool,
    /// The `intruder` step, once seen.
    intruder: Option<usize>,
    /// Problems found so far.
    errors: Vec<FieldError>,
}

impl StepWalk {
    fn new(nodes: u32, network: Network, discovery: Discovery) -> Self {
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

    fn step(&mut self, index: usize, step: &Step) {
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
