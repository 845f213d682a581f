//! The scenario model: what a lab run does, read from a JSON file.
//!
//! A scenario names a cluster (`nodes`, `node_settings`, `network`), a script of `steps` run in
//! order, and the `checks` that judge the run at the end. Parsing goes through
//! `serde_path_to_error`, so a type error names its field (`steps[3].fault.node`); then
//! [`validate`] checks what types cannot say: node indexes below the node count (which grows
//! with `add_node`), bounded durations and timeouts (see `crate::limits`), a bootstrap before
//! any step that needs a cluster, and checks that have something to judge.
//! `scenarios/schema.json` describes the same format for editors, and `scenarios/README.md`
//! documents every field.
//!
//! The pieces: `model` (the scenario and its settings), `step` (the steps and their fields),
//! `node_selector` (which node a step targets: an index or a role), `network` (network faults),
//! `validate` (parsing and the checks; its `walk` judges each step by the steps before it) and
//! `load` (finding and reading scenario files).
//!
//! Caveats:
//! - Validation does not simulate faults: it does not know that a `resume` needs a paused node,
//!   nor which node `"leader"` will be. The runner reports such mistakes when it runs the step.
//! - Nodes are named by index from 0; node index `i` runs with Raft node id `i + 1`.
//! - Network faults ([`NetworkFault`], the `network_fault` step and a nemesis's
//!   `network_faults`) are checked by [`check_network_fault`] against the nodes that exist, but
//!   whether the machine can apply them (root, nftables, tc netem for delay) is only known when
//!   the runner starts the scenario, which skips it if not.

mod load;
mod model;
mod network;
mod node_selector;
mod step;
mod validate;

#[cfg(test)]
mod tests;

pub use load::{SCHEMA_FILE_NAME, ScenarioFileError, expand_paths, load_scenario, scenario_files};
pub use model::{CheckKind, Discovery, Network, NodeIndex, NodeSettings, Scenario};
pub use network::{
    DelayFault, IsolateFault, LossFault, NetworkFault, NetworkFaultKind, OneWayFault, SplitFault,
    check_network_fault,
};
pub use node_selector::NodeSelector;
pub use step::{
    ActorName, CheckStep, FaultKind, FaultStep, Mix, NemesisStep, ReadStep, RemoveNodeStep, Step,
    WaitCondition, WaitForStep, WaitStep, WorkloadStep, WriteStep,
};
pub use validate::{FieldError, NodeScope, parse_scenario, validate};
