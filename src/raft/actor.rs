//! The RaftActor: owns the lifecycle of the node's openraft instance and serves the control
//! plane.
//!
//! On start it builds a Raft instance over the node's redb store and network (shutting down the
//! instance a crashed predecessor left behind), publishes it in the [`SharedRaft`] slot, and
//! shuts it down again when it stops. Control messages are decoded here and run as tasks, so a
//! slow membership change never blocks a metrics query; the data path does not go through this
//! mailbox at all (see `KvClient`).

use openraft::async_runtime::watch::WatchReceiver;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorMessage;
use tokio_util::task::AbortOnDropHandle;

use super::control::{self, MemberResolver};
use super::election::{self, ElectionWindow};
use super::network::IrpcRaftNetworkFactory;
use super::{AspenRaft, RaftMetrics, SharedRaft};
use crate::api::{
    AddLearnerRequest, ChangeMembershipRequest, ClusterState, ControlPlaneError, InitRequest,
    RemoveNodeRequest,
};
use crate::limits::SHUTDOWN_TIMEOUT_MS_MAX;
use crate::storage::RedbStore;

/// A control-plane reply.
pub type ControlReply = RpcReplyPort<Result<ClusterState, ControlPlaneError>>;

/// Messages the RaftActor handles. Each request carries its reply port.
#[derive(RactorMessage)]
pub enum RaftActorMessage {
    /// Initialize the cluster.
    Init(InitRequest, ControlReply),
    /// Add a learner and wait for it to catch up.
    AddLearner(AddLearnerRequest, ControlReply),
    /// Replace the voter set.
    ChangeMembership(ChangeMembershipRequest, ControlReply),
    /// Remove a node from the membership entirely.
    RemoveNode(RemoveNodeRequest, ControlReply),
    /// The membership as this node has it.
    CurrentState(ControlReply),
    /// The current Raft metrics.
    Metrics(RpcReplyPort<RaftMetrics>),
}

/// What the RaftActor needs to (re)build the Raft instance.
#[derive(Clone)]
pub struct RaftActorArgs {
    /// This node's id.
    pub node_id: u64,
    /// openraft's configuration (timeouts, batching, snapshot policy).
    pub raft_config: Arc<openraft::Config>,
    /// The node's open database.
    pub store: RedbStore,
    /// The Raft network.
    pub network: IrpcRaftNetworkFactory,
    /// Where the running instance is published for the data path.
    pub shared: SharedRaft,
    /// Resolves node addresses for the control plane.
    pub resolver: MemberResolver,
}

/// The RaftActor's state: its arguments and the instance it runs.
pub struct RaftActorState {
    resolver: MemberResolver,
    shared: SharedRaft,
    raft: AspenRaft,
    /// The instance's election timer; dropping the state (also when the actor crashed) stops it.
    _election_timer: AbortOnDropHandle<()>,
}

/// The RaftActor.
pub struct RaftActor;

async fn shutdown_raft(raft: AspenRaft) {
    let bound = Duration::from_millis(SHUTDOWN_TIMEOUT_MS_MAX);
    match tokio::time::timeout(bound, raft.shutdown()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "raft shutdown failed"),
        Err(_) => tracing::warn!("raft shutdown did not finish within {bound:?}"),
    }
}

impl Actor for RaftActor {
    type Msg = RaftActorMessage;
    type State = RaftActorState;
    type Arguments = RaftActorArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: RaftActorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        // A predecessor that crashed did not run post_stop: its instance still holds the log
        // store, so it must stop before a new one opens the same tables.
        if let Some(previous) = args.shared.take() {
            tracing::info!(
                node_id = args.node_id,
                "stopping the Raft instance of a crashed RaftActor"
            );
            shutdown_raft(previous).await;
        }
        // Commits the previous instance started finish on the blocking pool even after it
        // stopped; the new instance must read its starting state after them.
        let bound = Duration::from_millis(SHUTDOWN_TIMEOUT_MS_MAX);
        if !args.store.wait_idle(bound).await {
            return Err(format!("storage calls still running {bound:?} after Raft stopped").into());
        }
        let raft = openraft::Raft::new(
            args.node_id,
            args.raft_config.clone(),
            args.network.clone(),
            args.store.log_store(),
            args.store.state_machine(),
        )
        .await?;
        args.shared.set(raft.clone(), args.store.reader());
        let window = ElectionWindow::of(&args.raft_config);
        let timer = tokio::spawn(election::run(raft.clone(), args.shared.clone(), window));
        tracing::info!(node_id = args.node_id, "Raft instance started");
        Ok(RaftActorState {
            resolver: args.resolver,
            shared: args.shared,
            raft,
            _election_timer: AbortOnDropHandle::new(timer),
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.shared.take();
        shutdown_raft(state.raft.clone()).await;
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RaftActorMessage::Init(request, reply) => on_init(state, request, reply),
            RaftActorMessage::AddLearner(request, reply) => on_add_learner(state, request, reply),
            RaftActorMessage::ChangeMembership(request, reply) => {
                on_change_membership(state, request, reply)
            }
            RaftActorMessage::RemoveNode(request, reply) => {
                let raft = state.raft.clone();
                tokio::spawn(async move {
                    let _ = reply.send(control::remove_node(&raft, request).await);
                });
            }
            RaftActorMessage::CurrentState(reply) => {
                let _ = reply.send(control::current_state(&state.raft));
            }
            RaftActorMessage::Metrics(reply) => {
                let _ = reply.send(state.raft.metrics().borrow_watched().clone());
            }
        }
        Ok(())
    }
}

// Control requests run as tasks: a membership change can take as long as a learner needs to
// catch up, and the actor must stay responsive meanwhile. openraft itself serializes
// membership changes.
fn on_init(state: &RaftActorState, request: InitRequest, reply: ControlReply) {
    let (raft, resolver) = (state.raft.clone(), state.resolver.clone());
    tokio::spawn(async move {
        let _ = reply.send(control::init(&raft, &resolver, request).await);
    });
}

fn on_add_learner(state: &RaftActorState, request: AddLearnerRequest, reply: ControlReply) {
    let (raft, resolver) = (state.raft.clone(), state.resolver.clone());
    tokio::spawn(async move {
        let _ = reply.send(control::add_learner(&raft, &resolver, request).await);
    });
}

fn on_change_membership(
    state: &RaftActorState,
    request: ChangeMembershipRequest,
    reply: ControlReply,
) {
    let raft = state.raft.clone();
    tokio::spawn(async move {
        let _ = reply.send(control::change_membership(&raft, request).await);
    });
}
