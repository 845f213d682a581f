//! The Nemesis actor: executes a `nemesis` step's seeded fault schedule.
//!
//! The schedule is computed up front from the step's seed and the members at that moment
//! ([`schedule`]), so the same scenario and seed give the same faults at the same times. Each
//! action is delivered to the actor as a timed message and executed in order; a fault that
//! cannot apply (its node is already down, say) is recorded as a `note` event and skipped.
//! Healing a network fault is a heal: the runner then sends a write and a read to every node
//! (liveness.rs), before the next action.
//! Stopping the actor (a `heal` step, or the end of the script) lets the action in progress
//! finish, so no fault is left half done; the heal that follows recovers what is still broken.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::cluster::Cluster;
use super::liveness::probe_every_node;
use super::progress::log;
use crate::history::EventKind;
use crate::nemesis::{NemesisAction, ScheduledFault, schedule};
use crate::scenario::{NemesisStep, NodeIndex};

/// The Nemesis actor of one `nemesis` step.
pub(super) struct Nemesis;

/// What a Nemesis actor runs.
pub(super) struct NemesisArgs {
    /// The cluster to hurt.
    pub(super) cluster: Arc<Cluster>,
    /// The step.
    pub(super) step: NemesisStep,
    /// The step's seed.
    pub(super) seed: u64,
}

/// "Execute the schedule's action at this position."
pub(super) struct Act(usize);
impl ractor::Message for Act {}

pub(super) struct NemesisState {
    cluster: Arc<Cluster>,
    plan: Vec<ScheduledFault>,
    /// The node each injected fault hit, for its recovery.
    hit: Vec<Option<NodeIndex>>,
}

impl Actor for Nemesis {
    type Msg = Act;
    type State = NemesisState;
    type Arguments = NemesisArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Act>,
        args: NemesisArgs,
    ) -> Result<NemesisState, ActorProcessingErr> {
        let plan = schedule(args.seed, &args.step, &args.cluster.members());
        let hit = vec![None; plan.len()];
        Ok(NemesisState { cluster: args.cluster, plan, hit })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Act>,
        state: &mut NemesisState,
    ) -> Result<(), ActorProcessingErr> {
        for (position, action) in state.plan.iter().enumerate() {
            myself.send_after(Duration::from_millis(action.time_ms), move || Act(position));
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Act>,
        Act(position): Act,
        state: &mut NemesisState,
    ) -> Result<(), ActorProcessingErr> {
        let Some(action) = state.plan.get(position) else { return Ok(()) };
        let cluster = &state.cluster;
        log(format!("nemesis: {action}"));
        let result = match &action.action {
            NemesisAction::Inject { kind, node, actor } => match cluster.resolve(*node) {
                Ok(index) => {
                    let result = cluster.any_fault(*kind, index, actor.map(|a| a.name())).await;
                    if result.is_ok() {
                        state.hit[position] = Some(index);
                    }
                    result
                }
                Err(error) => Err(error),
            },
            NemesisAction::Recover { kind, of } => match state.hit.get(*of).copied().flatten() {
                Some(index) => cluster.fault(*kind, index, None).await,
                None => Ok(()),
            },
            NemesisAction::Network { fault } => cluster.network_fault(fault).await,
            NemesisAction::HealNetwork { .. } => match cluster.heal_network().await {
                Ok(true) => {
                    probe_every_node(cluster).await;
                    Ok(())
                }
                Ok(false) => Ok(()),
                Err(error) => Err(error),
            },
        };
        if let Err(error) = result {
            log(format!("nemesis: skipped: {error:#}"));
            cluster.event(EventKind::Note, None, format!("nemesis skipped: {error:#}"));
        }
        Ok(())
    }
}
