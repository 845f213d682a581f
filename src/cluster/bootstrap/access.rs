//! Who may call Raft RPC: the access policy the Raft RPC server asks on every request. Apart
//! because it is the node's one security rule about peers, and should be found and read alone.

use openraft::async_runtime::watch::WatchReceiver;
use std::sync::Arc;

use crate::discovery::PeerBook;
use crate::raft::SharedRaft;
use crate::raft::network::AccessPolicy;

/// Only members and learners of the cluster, and peers an operator named (manually or in a
/// ticket), may call Raft RPC. A peer known only from gossip may not: anyone who knows the
/// topic can announce itself.
pub(super) fn access_policy(peers: PeerBook, shared: SharedRaft) -> AccessPolicy {
    Arc::new(move |endpoint_id| {
        if peers.is_operator_named(endpoint_id) {
            return true;
        }
        let Some(raft) = shared.get() else {
            return false;
        };
        // The server asks on every request: take only the membership (an Arc), not a copy of
        // all the metrics, and do not hold the watch while looking.
        let membership_config = raft.metrics().borrow_watched().membership_config.clone();
        membership_config.membership().nodes().any(|(_, info)| {
            info.endpoint_addr.as_ref().is_some_and(|addr| addr.id == *endpoint_id)
        })
    })
}
