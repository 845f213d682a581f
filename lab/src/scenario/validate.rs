//! Parsing a scenario with errors that name the field, and the semantic checks that JSON types
//! alone cannot express (node indexes below the node count, bounded durations, ...).
//!
//! The walk through the steps, which judges each step by what the steps before it did to the
//! cluster, is in `walk`; this file holds the entry points, the checks of the scenario's own
//! fields, and [`NodeScope`] (shared with the network fault checks).

use std::collections::BTreeMap;
use std::fmt;

use super::model::{CheckKind, Discovery, Network, NodeIndex, NodeSettings, Scenario};
use super::node_selector::NodeSelector;
use crate::limits;

mod walk;

use walk::StepWalk;

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
