//! The NodeControl wire protocol: its message enum, its reply encoding and the names under which
//! a node's NodeControl actor is found.
//!
//! ractor_cluster numbers nothing: a remote call carries the variant's name and each argument as
//! bytes of ractor's `BytesConvertable`. Replies are JSON inside [`ControlReply`], so that a
//! newer node can add fields to [`NodeReport`] without breaking older operators, and a reply
//! that does not decode becomes an error instead of a panic in ractor's decoder.

use ractor::{BytesConvertable, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ControlError;
use super::report::NodeReport;

/// The process-group name a node's NodeControl actor joins. ractor_cluster mirrors process
/// groups to connected nodes, which is how an operator finds the actor; the node id keeps the
/// groups of several nodes in one process apart.
pub fn node_control_group(node_id: u64) -> String {
    format!("aspen.node_control.{node_id}")
}

/// The process-global actor name of a node's NodeControl actor (`aspen-{node_id}-node-control`),
/// the same as the NodeSupervisor gives its `node-control` child.
pub fn node_control_actor_name(node_id: u64) -> String {
    format!("aspen-{node_id}-node-control")
}

/// Requests to a node's NodeControl actor, local or over ractor_cluster. Every request carries
/// its reply port; a remote caller learns the outcome from the [`ControlReply`].
///
/// Variant names are the wire tags: rename one only when every node and operator is upgraded.
#[derive(RactorClusterMessage)]
pub enum NodeControlMessage {
    /// List the node's supervised actors with their restart counts.
    #[rpc]
    ListActors(RpcReplyPort<ControlReply<NodeReport>>),
    /// Kill the supervised actor with this role name (`"raft"`), so that its supervisor
    /// restarts it. Answers once the kill signal is sent, not once the actor is back.
    #[rpc]
    CrashActor(String, RpcReplyPort<ControlReply<()>>),
}

/// The outcome of a control request as it crosses the wire, encoded as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlReply<T>(pub Result<T, ControlError>);

impl<T: Serialize + DeserializeOwned> BytesConvertable for ControlReply<T> {
    fn into_bytes(self) -> Vec<u8> {
        // Serializing plain structs and strings to JSON cannot fail; should a future field make
        // it fail, the caller still gets an answer that says so.
        serde_json::to_vec(&self.0).unwrap_or_else(|error| {
            let reason = format!("the node could not encode its reply: {error}");
            let failed: Result<(), ControlError> = Err(ControlError::Failed { reason });
            serde_json::to_vec(&failed).unwrap_or_default()
        })
    }

    fn from_bytes(bytes: Vec<u8>) -> Self {
        let decoded = serde_json::from_slice(&bytes).unwrap_or_else(|error| {
            Err(ControlError::Failed {
                reason: format!("undecodable reply from the node: {error}"),
            })
        });
        Self(decoded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::node_control::ChildStatus;

    #[test]
    fn replies_round_trip_and_garbage_becomes_an_error() {
        let report = NodeReport {
            node_id: 3,
            children: vec![ChildStatus {
                name: "raft".into(),
                actor_name: "aspen-3-raft".into(),
                restarts: 2,
                running: true,
            }],
        };
        let reply = ControlReply(Ok(report));
        assert_eq!(ControlReply::from_bytes(reply.clone().into_bytes()), reply);

        let missing: ControlReply<()> =
            ControlReply(Err(ControlError::NoSuchActor { name: "nope".into() }));
        assert_eq!(ControlReply::from_bytes(missing.clone().into_bytes()), missing);

        let garbage = ControlReply::<NodeReport>::from_bytes(b"\xff not json".to_vec());
        assert!(matches!(garbage.0, Err(ControlError::Failed { .. })), "{garbage:?}");
    }
}
