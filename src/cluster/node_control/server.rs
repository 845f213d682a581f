//! The NodeControl actor: a node's answer to operators who reach it over ractor_cluster.
//!
//! It reads the node's [`SupervisionReport`] and kills supervised actors on request. It holds no
//! state of its own beyond the report, so its supervisor may restart it at any time; on start it
//! joins the process group [`node_control_group`], which ractor_cluster mirrors to connected
//! nodes.

use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr};

use super::error::ControlError;
use super::protocol::{
    ControlReply, NodeControlMessage, node_control_actor_name, node_control_group,
};
use super::report::{NodeReport, SupervisionReport};

/// How long NodeControl lives on after agreeing to crash itself, in milliseconds: long enough
/// for its answer to cross a loaded loopback or LAN session, short next to any restart window.
const SELF_CRASH_DELAY_MS: u64 = 200;

/// The NodeControl actor. Spawn it with [`NodeControlArgs`] under the node's supervisor, named
/// [`node_control_actor_name`], or with [`spawn_node_control`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeControl;

/// What the NodeControl actor starts from.
#[derive(Debug, Clone)]
pub struct NodeControlArgs {
    /// The node's supervision report: what it lists and where it looks up actors to crash.
    pub report: SupervisionReport,
}

/// The NodeControl actor's state.
#[derive(Debug)]
pub struct NodeControlState {
    report: SupervisionReport,
}

impl Actor for NodeControl {
    type Msg = NodeControlMessage;
    type State = NodeControlState;
    type Arguments = NodeControlArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: NodeControlArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        // ractor removes a stopped actor from its groups itself, so there is no matching leave.
        let group = node_control_group(args.report.node_id());
        ractor::pg::join(group, vec![myself.get_cell()]);
        Ok(NodeControlState { report: args.report })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            NodeControlMessage::ListActors(reply) => on_list_actors(state, reply),
            NodeControlMessage::CrashActor(name, reply) => {
                on_crash_actor(&myself.get_cell(), state, &name, reply)
            }
        }
        Ok(())
    }
}

fn on_list_actors(state: &NodeControlState, reply: RpcReplyPort<ControlReply<NodeReport>>) {
    // A caller that gave up waiting is not an error of this node.
    let _ = reply.send(ControlReply(Ok(state.report.snapshot())));
}

fn on_crash_actor(
    myself: &ActorCell,
    state: &NodeControlState,
    name: &str,
    reply: RpcReplyPort<ControlReply<()>>,
) {
    let target = match find_running_child(&state.report, name) {
        Ok(target) => target,
        Err(error) => {
            let _ = reply.send(ControlReply(Err(error)));
            return;
        }
    };
    tracing::warn!(actor = ?target.get_name(), "killing actor on an operator's request");
    if target.get_id() == myself.get_id() {
        // A remote caller's reply travels through conversion tasks and the session, while the
        // news of this actor's death makes the session drop the caller's pending request: answer
        // first, and die a moment later so that the answer wins the race.
        let _ = reply.send(ControlReply(Ok(())));
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(SELF_CRASH_DELAY_MS)).await;
            target.kill();
        });
        return;
    }
    target.kill();
    let _ = reply.send(ControlReply(Ok(())));
}

/// The running actor behind the role `name`, found in the report and then in ractor's registry.
fn find_running_child(report: &SupervisionReport, name: &str) -> Result<ActorCell, ControlError> {
    let Some(child) = report.child(name) else {
        return Err(ControlError::NoSuchActor { name: name.to_string() });
    };
    ractor::registry::where_is(child.actor_name)
        .ok_or_else(|| ControlError::NotRunning { name: name.to_string() })
}

/// Spawns a NodeControl actor for `report`'s node, named [`node_control_actor_name`], linked to
/// `supervisor` when one is given. For nodes whose supervisor does not spawn it itself, and for
/// tests.
pub async fn spawn_node_control(
    report: SupervisionReport,
    supervisor: Option<ActorCell>,
) -> Result<ActorRef<NodeControlMessage>, SpawnErr> {
    let name = node_control_actor_name(report.node_id());
    let args = NodeControlArgs { report };
    let (actor, _) = match supervisor {
        Some(supervisor) => Actor::spawn_linked(Some(name), NodeControl, args, supervisor).await?,
        None => Actor::spawn(Some(name), NodeControl, args).await?,
    };
    Ok(actor)
}
