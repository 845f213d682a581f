//! The Network actor of a `netns` run: it owns the run's [`NetnsTopology`] (one namespace per
//! node on a bridge), adds a namespace for each node the run starts, puts network faults in
//! force, heals them, and tears the topology down when it stops.
//!
//! Every call into the topology runs `ip` or `nft` and blocks, so the actor moves the topology
//! onto a blocking thread for the call and back into its state afterwards. Selectors
//! (`"leader"`, `"random_follower"`) are resolved by the caller, which knows the cluster; the
//! actor sees only node indexes. Whether a fault leaves the leader without a majority is a
//! plain function of the conditions ([`leader_cut_off`]), for the failover check.

use std::net::Ipv4Addr;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::network::{Conditions, NetnsTopology, NetworkError};
use crate::scenario::{
    DelayFault, IsolateFault, LossFault, NetworkFault, NodeIndex, NodeSelector, OneWayFault,
};

/// Where a node of a `netns` run lives.
#[derive(Debug, Clone)]
pub(super) struct NodeNetwork {
    /// The node's address: its sockets bind to it, and the lab and its peers reach it there.
    pub(super) address: Ipv4Addr,
    /// The argv that runs a program inside its namespace (`ip netns exec <ns>`).
    pub(super) command_prefix: Vec<String>,
}

/// Messages of the Network actor.
pub(super) enum NetworkMsg {
    /// Add a namespace for the next node; answers where it lives.
    AddNode(RpcReplyPort<Result<NodeNetwork, String>>),
    /// Put a fault (its selectors resolved to indexes) in force among the member `nodes`, in
    /// the order bridge and majorities ring use; answers the conditions now in force.
    Fault(NetworkFault, Vec<NodeIndex>, RpcReplyPort<Result<Conditions, String>>),
    /// Remove every fault; answers whether any was in force.
    Heal(RpcReplyPort<Result<bool, String>>),
}
impl ractor::Message for NetworkMsg {}

/// The actor owning a run's network.
pub(super) struct Network;

impl Actor for Network {
    type Msg = NetworkMsg;
    /// `None` only while a blocking call has the topology, or after teardown.
    type State = Option<NetnsTopology>;
    type Arguments = NetnsTopology;

    async fn pre_start(
        &self,
        _myself: ActorRef<NetworkMsg>,
        topology: NetnsTopology,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(Some(topology))
    }

    async fn handle(
        &self,
        _myself: ActorRef<NetworkMsg>,
        message: NetworkMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            NetworkMsg::AddNode(reply) => {
                let added = blocking(state, |topology| {
                    let node = topology.add_node()?;
                    let address = topology.node_address(node).expect("the node was just added");
                    let command_prefix =
                        topology.command_prefix(node).expect("the node was just added");
                    Ok(NodeNetwork { address, command_prefix })
                })
                .await;
                let _ = reply.send(added);
            }
            NetworkMsg::Fault(fault, nodes, reply) => {
                let applied =
                    blocking(state, move |topology| {
                        let next =
                            topology.conditions().with_fault(&fault, &nodes, |selector| {
                                match selector {
                                    NodeSelector::Index(index) => Ok(index),
                                    other => {
                                        Err(NetworkError::invalid(format!("{other} is unresolved")))
                                    }
                                }
                            })?;
                        topology.apply(&next)?;
                        Ok(next)
                    })
                    .await;
                let _ = reply.send(applied);
            }
            NetworkMsg::Heal(reply) => {
                let healed = blocking(state, |topology| {
                    let faulty = !topology.conditions().is_healthy();
                    topology.heal()?;
                    Ok(faulty)
                })
                .await;
                let _ = reply.send(healed);
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<NetworkMsg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(topology) = state.take() {
            let id = topology.run_id().to_string();
            let removed = tokio::task::spawn_blocking(move || topology.teardown()).await;
            match removed {
                Ok(Ok(())) => {}
                Ok(Err(error)) => eprintln!("aspen-lab: network {id} teardown: {error}"),
                Err(error) => eprintln!("aspen-lab: network {id} teardown: {error}"),
            }
        }
        Ok(())
    }
}

/// Runs `call` on the topology on a blocking thread, and puts the topology back.
async fn blocking<T: Send + 'static>(
    state: &mut Option<NetnsTopology>,
    call: impl FnOnce(&mut NetnsTopology) -> Result<T, NetworkError> + Send + 'static,
) -> Result<T, String> {
    let Some(mut topology) = state.take() else {
        return Err("the network was torn down".into());
    };
    let joined = tokio::task::spawn_blocking(move || {
        let result = call(&mut topology);
        (topology, result)
    })
    .await;
    match joined {
        Ok((topology, result)) => {
            *state = Some(topology);
            result.map_err(|error| error.to_string())
        }
        // The thread panicked and the topology went with it; its Drop removed the network.
        Err(error) => Err(format!("the network call panicked: {error}")),
    }
}

/// `fault` with every selector replaced by the index `resolve` gives it.
pub(super) fn resolve_fault(
    fault: &NetworkFault,
    mut resolve: impl FnMut(NodeSelector) -> anyhow::Result<NodeIndex>,
) -> anyhow::Result<NetworkFault> {
    let mut index = |selector| resolve(selector).map(NodeSelector::Index);
    Ok(match fault {
        NetworkFault::Isolate(isolate) => {
            NetworkFault::Isolate(IsolateFault { node: index(isolate.node)? })
        }
        NetworkFault::OneWay(one_way) => {
            // The receiver is drawn after the sender, so a random follower is never the sender
            // when the sender is the leader.
            let from = index(one_way.from)?;
            NetworkFault::OneWay(OneWayFault { from, to: index(one_way.to)? })
        }
        NetworkFault::Delay(delay) => NetworkFault::Delay(DelayFault {
            node: delay.node.map(&mut index).transpose()?,
            ..*delay
        }),
        NetworkFault::Loss(loss) => {
            NetworkFault::Loss(LossFault { node: loss.node.map(&mut index).transpose()?, ..*loss })
        }
        other => other.clone(),
    })
}

/// Whether `leader` can no longer exchange packets both ways with a majority of `members`
/// (itself included) under `conditions`: then it cannot commit, and the rest elect another.
pub(super) fn leader_cut_off(
    conditions: &Conditions,
    leader: NodeIndex,
    members: &[NodeIndex],
) -> bool {
    let partition = &conditions.partition;
    let reached = members
        .iter()
        .filter(|m| {
            **m == leader || (!partition.is_cut(leader, **m) && !partition.is_cut(**m, leader))
        })
        .count();
    reached * 2 <= members.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::Partition;
    use crate::scenario::SplitFault;

    fn conditions(partition: Partition) -> Conditions {
        Conditions { partition, ..Conditions::default() }
    }

    #[test]
    fn a_leader_is_cut_off_when_it_exchanges_packets_with_no_majority() {
        let members = [0, 1, 2, 3, 4];
        let isolated = conditions(Partition::isolate(0, &members));
        assert!(leader_cut_off(&isolated, 0, &members));
        assert!(!leader_cut_off(&isolated, 1, &members), "the others are a majority");
        let split = conditions(Partition::split(&[vec![0, 1], vec![2, 3, 4]]).unwrap());
        assert!(leader_cut_off(&split, 1, &members));
        assert!(!leader_cut_off(&split, 3, &members));
        // One direction cut is enough to lose a follower, not a majority.
        let one_way = conditions(Partition::one_way(0, 1).unwrap());
        assert!(!leader_cut_off(&one_way, 0, &members));
        assert!(!leader_cut_off(&Conditions::default(), 0, &members));
    }

    #[test]
    fn selectors_are_resolved_and_the_rest_is_kept() {
        let leader = |selector| match selector {
            NodeSelector::Leader => Ok(2),
            NodeSelector::RandomFollower => Ok(0),
            NodeSelector::Index(index) => Ok(index),
        };
        let isolate = NetworkFault::Isolate(IsolateFault { node: NodeSelector::Leader });
        let resolved = resolve_fault(&isolate, leader).unwrap();
        assert_eq!(resolved, NetworkFault::Isolate(IsolateFault { node: NodeSelector::Index(2) }));
        let loss = NetworkFault::Loss(LossFault { percent: 20, node: None });
        assert_eq!(resolve_fault(&loss, leader).unwrap(), loss);
        let split = NetworkFault::Split(SplitFault { groups: vec![vec![0], vec![1, 2]] });
        assert_eq!(resolve_fault(&split, leader).unwrap(), split);
        let nobody = |_| anyhow::bail!("no leader is known");
        assert!(resolve_fault(&isolate, nobody).is_err());
    }
}
