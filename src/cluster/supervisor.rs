//! The NodeSupervisor: the root of a node's actor tree.
//!
//! It starts the node's actors in order (storage, raft, discovery, node control, http),
//! restarts one that exits unexpectedly, and gives up when one child needs more than
//! `ACTOR_RESTARTS_MAX` restarts within `ACTOR_RESTART_WINDOW_MS`: then it stops every child and
//! itself and publishes the reason in the node's [`NodeStatus`], because a child that keeps
//! failing points at a bug or a broken environment that restarting will not mend. ractor's
//! default would stop the supervisor on the first child exit; this policy is written once, here.
//! (The HTTP server the HttpActor started stays up after that, to report the reason; see
//! [`crate::http`].)

use std::time::{Duration, Instant};

use ractor::{
    Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr, SupervisionEvent,
};
use ractor_cluster::RactorMessage;
use tokio::sync::watch;

use super::node_control::{NodeControl, NodeControlArgs, SupervisionReport};
use super::restart_policy::{RestartDecision, RestartIntensity};
use crate::discovery::{DiscoveryActor, DiscoveryActorArgs};
use crate::http::{HttpActor, HttpActorArgs};
use crate::limits::{ACTOR_RESTART_WINDOW_MS, ACTOR_RESTARTS_MAX, SHUTDOWN_TIMEOUT_MS_MAX};
use crate::raft::{RaftActor, RaftActorArgs};
use crate::storage::{RedbStore, StorageActor};

/// Whether a node is running, and if it stopped, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeStatus {
    /// Every actor is up (or being restarted).
    Running,
    /// The node stopped: `error` is `None` after a requested shutdown, or says why the
    /// supervisor gave up.
    Stopped {
        /// Why the node stopped on its own.
        error: Option<String>,
    },
}

/// One supervised child: what it is and how to start it again.
#[derive(Clone)]
pub enum ChildSpec {
    /// The StorageActor over the node's open database.
    Storage(RedbStore),
    /// The RaftActor.
    Raft(RaftActorArgs),
    /// The DiscoveryActor.
    Discovery(DiscoveryActorArgs),
    /// The NodeControl actor, for operators over ractor_cluster.
    NodeControl(NodeControlArgs),
    /// The HttpActor, which serves the HTTP API; started last, once there is something to
    /// serve.
    Http(HttpActorArgs),
}

impl ChildSpec {
    /// The child's role, the suffix of its actor name.
    pub fn role(&self) -> &'static str {
        match self {
            ChildSpec::Storage(_) => "storage",
            ChildSpec::Raft(_) => "raft",
            ChildSpec::Discovery(_) => "discovery",
            ChildSpec::NodeControl(_) => "node-control",
            ChildSpec::Http(_) => "http",
        }
    }

    /// Releases what a child that was killed (and so ran no `post_stop`) left behind. Only the
    /// RaftActor leaves something: its Raft instance, still running in the shared slot.
    async fn clean_up_after_exit(&self) {
        if let ChildSpec::Raft(args) = self
            && let Some(raft) = args.shared.take()
        {
            let bound = Duration::from_millis(SHUTDOWN_TIMEOUT_MS_MAX);
            if tokio::time::timeout(bound, raft.shutdown()).await.is_err() {
                tracing::warn!("raft shutdown did not finish within {bound:?}");
            }
        }
    }

    async fn spawn(&self, name: String, supervisor: ActorCell) -> Result<ActorCell, SpawnErr> {
        let cell = match self {
            ChildSpec::Storage(store) => {
                Actor::spawn_linked(Some(name), StorageActor, store.clone(), supervisor)
                    .await?
                    .0
                    .get_cell()
            }
            ChildSpec::Raft(args) => {
                Actor::spawn_linked(Some(name), RaftActor, args.clone(), supervisor)
                    .await?
                    .0
                    .get_cell()
            }
            ChildSpec::Discovery(args) => {
                Actor::spawn_linked(Some(name), DiscoveryActor, args.clone(), supervisor)
                    .await?
                    .0
                    .get_cell()
            }
            ChildSpec::NodeControl(args) => {
                Actor::spawn_linked(Some(name), NodeControl, args.clone(), supervisor)
                    .await?
                    .0
                    .get_cell()
            }
            ChildSpec::Http(args) => {
                Actor::spawn_linked(Some(name), HttpActor, args.clone(), supervisor)
                    .await?
                    .0
                    .get_cell()
            }
        };
        Ok(cell)
    }
}

/// The process-global actor name of a node's child: `aspen-<node_id>-<role>`. Names carry the
/// node id because ractor's registry is per process and tests run several nodes in one.
pub fn actor_name(node_id: u64, role: &str) -> String {
    format!("aspen-{node_id}-{role}")
}

/// Messages the NodeSupervisor handles.
#[derive(RactorMessage)]
pub enum NodeSupervisorMessage {
    /// Stop every child (in reverse start order) and then the supervisor.
    Shutdown(RpcReplyPort<()>),
}

/// What the NodeSupervisor starts from.
pub struct NodeSupervisorArgs {
    /// The node's id.
    pub node_id: u64,
    /// The children, in start order.
    pub children: Vec<ChildSpec>,
    /// Where restarts are recorded for operators.
    pub report: SupervisionReport,
    /// Where the node's status is published.
    pub status: watch::Sender<NodeStatus>,
}

struct Child {
    spec: ChildSpec,
    name: String,
    cell: Option<ActorCell>,
    intensity: RestartIntensity,
}

/// The NodeSupervisor's state.
pub struct NodeSupervisorState {
    children: Vec<Child>,
    report: SupervisionReport,
    status: watch::Sender<NodeStatus>,
    stopping: bool,
}

/// The NodeSupervisor.
pub struct NodeSupervisor;

impl Actor for NodeSupervisor {
    type Msg = NodeSupervisorMessage;
    type State = NodeSupervisorState;
    type Arguments = NodeSupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: NodeSupervisorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let window = Duration::from_millis(ACTOR_RESTART_WINDOW_MS);
        let mut state = NodeSupervisorState {
            children: Vec::new(),
            report: args.report,
            status: args.status,
            stopping: false,
        };
        for spec in args.children {
            let name = actor_name(args.node_id, spec.role());
            let cell = match spec.spawn(name.clone(), myself.get_cell()).await {
                Ok(cell) => cell,
                Err(error) => {
                    stop_children(&mut state).await;
                    return Err(
                        format!("could not start the {} actor: {error}", spec.role()).into()
                    );
                }
            };
            state.report.set_child(spec.role(), &name);
            state.children.push(Child {
                spec,
                name,
                cell: Some(cell),
                intensity: RestartIntensity::new(ACTOR_RESTARTS_MAX, window),
            });
        }
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        stop_children(state).await;
        state.status.send_if_modified(|status| {
            let running = *status == NodeStatus::Running;
            if running {
                *status = NodeStatus::Stopped { error: None };
            }
            running
        });
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            NodeSupervisorMessage::Shutdown(reply) => {
                stop_children(state).await;
                let _ = reply.send(());
                myself.stop(None);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, why) = match event {
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".into()))
            }
            SupervisionEvent::ActorFailed(cell, error) => (cell, format!("failed: {error}")),
            _ => return Ok(()),
        };
        if state.stopping {
            return Ok(());
        }
        let id = cell.get_id();
        let Some(index) =
            state.children.iter().position(|c| c.cell.as_ref().is_some_and(|c| c.get_id() == id))
        else {
            return Ok(());
        };
        on_child_exit(&myself, state, index, why).await;
        Ok(())
    }
}

/// Restarts child `index` until it starts or its restart intensity is spent.
async fn on_child_exit(
    myself: &ActorRef<NodeSupervisorMessage>,
    state: &mut NodeSupervisorState,
    index: usize,
    mut why: String,
) {
    loop {
        let child = &mut state.children[index];
        child.cell = None;
        let role = child.spec.role();
        state.report.set_running(role, false);
        match child.intensity.on_exit(Instant::now()) {
            RestartDecision::GiveUp { restarts } => {
                let error = format!(
                    "the {role} actor exited again after {restarts} restarts within {} s \
                     ({why}); the node stops",
                    ACTOR_RESTART_WINDOW_MS / 1000
                );
                tracing::error!("{error}");
                // Publish the stop only once every child is down, so that whoever sees it can
                // rely on the node serving nothing any more.
                state.children[index].spec.clean_up_after_exit().await;
                stop_children(state).await;
                let _ = state.status.send(NodeStatus::Stopped { error: Some(error.clone()) });
                myself.stop(Some(error));
                return;
            }
            RestartDecision::Restart { restarts } => {
                tracing::warn!(actor = %child.name, restarts, "actor {why}; restarting it");
                state.report.record_restart(role);
                match child.spec.spawn(child.name.clone(), myself.get_cell()).await {
                    Ok(cell) => {
                        child.cell = Some(cell);
                        state.report.set_running(role, true);
                        return;
                    }
                    Err(error) => why = format!("restart failed: {error}"),
                }
            }
        }
    }
}

/// Stops the children in reverse start order, each within a bound.
async fn stop_children(state: &mut NodeSupervisorState) {
    state.stopping = true;
    let bound = Duration::from_millis(SHUTDOWN_TIMEOUT_MS_MAX);
    for child in state.children.iter_mut().rev() {
        if let Some(cell) = child.cell.take() {
            if let Err(error) = cell.stop_and_wait(None, Some(bound)).await {
                tracing::warn!(actor = %child.name, %error, "actor did not stop in time; killing it");
                cell.kill();
            }
            state.report.set_running(child.spec.role(), false);
        }
    }
}
