//! The control plane on a Raft node: init, add learner, change membership, current state.
//!
//! Plain async functions over a Raft handle, so that the RaftActor stays a thin shell and the
//! logic can be read in one place. Node addresses are resolved here: a `ClusterNode` names its
//! iroh endpoint in `raft_addr`, or the endpoint is taken from the peer book (or is this node's
//! own), and the result is stored in the Raft membership so that every node knows it.

use openraft::async_runtime::watch::WatchReceiver;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use iroh::EndpointAddr;
use openraft::ChangeMembers;
use openraft::error::{InitializeError, RaftError};

use super::errors::control_error;
use super::{AspenRaft, RaftMemberInfo, RaftMetrics};
use crate::api::{
    AddLearnerRequest, ChangeMembershipRequest, ClusterNode, ClusterState, ControlPlaneError,
    InitRequest, NodeId, RemoveNodeRequest, validate,
};
use crate::discovery::{PeerBook, endpoint_to_string, parse_endpoint};
use crate::limits::{CONTROL_REQUEST_TIMEOUT_MS_MAX, MEMBERSHIP_SETTLE_MS_MAX};

/// What the control plane needs to know about this node to resolve addresses.
#[derive(Debug, Clone)]
pub struct MemberResolver {
    /// This node's id.
    pub node_id: NodeId,
    /// This node's own endpoint address.
    pub own_endpoint: EndpointAddr,
    /// The peer book.
    pub peers: PeerBook,
}

impl MemberResolver {
    /// The membership record for `node`: its endpoint from `raft_addr`, else this node's own
    /// (for itself), else the peer book; its API address from `addr`, else the peer book (as
    /// the node announced it).
    pub fn member_info(&self, node: &ClusterNode) -> Result<RaftMemberInfo, ControlPlaneError> {
        let endpoint_addr = match &node.raft_addr {
            Some(text) => parse_endpoint(text)
                .map_err(|reason| invalid(format!("raft_addr of node {}: {reason}", node.id)))?,
            None if node.id == self.node_id => self.own_endpoint.clone(),
            None => self.peers.get(node.id).ok_or_else(|| {
                invalid(format!(
                    "no endpoint known for node {}: give raft_addr or add the peer first",
                    node.id
                ))
            })?,
        };
        let api_addr = match node.addr.as_str() {
            "" => self.peers.api_addr(node.id).unwrap_or_default(),
            addr => addr.to_owned(),
        };
        Ok(RaftMemberInfo { api_addr, endpoint_addr: Some(endpoint_addr) })
    }
}

fn invalid(reason: String) -> ControlPlaneError {
    ControlPlaneError::InvalidRequest { reason }
}

fn timeout() -> Duration {
    Duration::from_millis(CONTROL_REQUEST_TIMEOUT_MS_MAX)
}

fn timed_out(what: &str) -> ControlPlaneError {
    ControlPlaneError::Failed {
        reason: format!("{what} did not finish within {CONTROL_REQUEST_TIMEOUT_MS_MAX} ms"),
    }
}

/// The replicated membership as the API shows it.
pub fn cluster_state(metrics: &RaftMetrics) -> ClusterState {
    let membership = metrics.membership_config.membership();
    let members: BTreeSet<NodeId> = membership.voter_ids().collect();
    let nodes: Vec<ClusterNode> = membership
        .nodes()
        .map(|(id, info)| ClusterNode {
            id: *id,
            addr: info.api_addr.clone(),
            raft_addr: info.endpoint_addr.as_ref().map(endpoint_to_string),
        })
        .collect();
    let learners = nodes.iter().map(|n| n.id).filter(|id| !members.contains(id)).collect();
    ClusterState { nodes, members: members.into_iter().collect(), learners }
}

/// True once this node has any membership, from `init` or from a leader's log.
pub fn is_initialized(metrics: &RaftMetrics) -> bool {
    metrics.membership_config.membership().nodes().next().is_some()
}

/// True while this node has never been part of a cluster: no membership, no log, no vote. A
/// node that has heard from a leader (a term, a log entry) but not yet recorded the membership
/// is joining, not uninitialized: its clients should wait for the leader instead.
pub fn never_joined(metrics: &RaftMetrics) -> bool {
    !is_initialized(metrics) && metrics.current_term == 0 && metrics.last_log_index.is_none()
}

/// Initializes the cluster with `request.initial_members`.
pub async fn init(
    raft: &AspenRaft,
    resolver: &MemberResolver,
    request: InitRequest,
) -> Result<ClusterState, ControlPlaneError> {
    validate::init(&request).map_err(invalid)?;
    if !request.initial_members.iter().any(|node| node.id == resolver.node_id) {
        return Err(invalid(format!(
            "initial_members must include this node ({})",
            resolver.node_id
        )));
    }
    let mut members = BTreeMap::new();
    for node in &request.initial_members {
        members.insert(node.id, resolver.member_info(node)?);
    }
    match tokio::time::timeout(timeout(), raft.initialize(members)).await {
        Err(_) => return Err(timed_out("init")),
        Ok(Err(RaftError::APIError(InitializeError::NotAllowed(_)))) => {
            return Err(invalid("cluster is already initialized".into()));
        }
        Ok(Err(error)) => {
            return Err(ControlPlaneError::Failed { reason: error.to_string() });
        }
        Ok(Ok(())) => {}
    }
    // `initialize` returns once the membership entry is in the log; wait until it is visible in
    // the metrics so that `current_state` right after `init` shows it.
    let wait = raft.wait(Some(timeout()));
    let metrics = wait
        .metrics(is_initialized, "membership after init")
        .await
        .map_err(|e| ControlPlaneError::Failed { reason: e.to_string() })?;
    Ok(cluster_state(&metrics))
}

/// The metrics once the last membership change is applied (so committed), waiting at most
/// `MEMBERSHIP_SETTLE_MS_MAX`. openraft refuses a membership change while the previous one is
/// uncommitted, which right after `init` (whose membership entry is appended before it is
/// committed) would turn a correct `init` + `add_learner` sequence into a spurious error. If
/// the wait times out (no quorum), openraft's own answer is returned by the change itself.
async fn settled_metrics(raft: &AspenRaft) -> RaftMetrics {
    let settled =
        |m: &RaftMetrics| m.membership_config.log_id().as_ref() <= m.last_applied.as_ref();
    let wait = raft.wait(Some(Duration::from_millis(MEMBERSHIP_SETTLE_MS_MAX)));
    match wait.metrics(settled, "the last membership change applied").await {
        Ok(metrics) => metrics,
        Err(_) => raft.metrics().borrow_watched().clone(),
    }
}

/// Adds `request.learner` and waits until it has caught up.
pub async fn add_learner(
    raft: &AspenRaft,
    resolver: &MemberResolver,
    request: AddLearnerRequest,
) -> Result<ClusterState, ControlPlaneError> {
    validate::nodes(std::slice::from_ref(&request.learner)).map_err(invalid)?;
    let metrics = settled_metrics(raft).await;
    let initialized = is_initialized(&metrics);
    if !initialized {
        return Err(ControlPlaneError::NotInitialized);
    }
    if metrics.membership_config.membership().voter_ids().any(|id| id == request.learner.id) {
        return Err(invalid(format!("node {} is already a voter", request.learner.id)));
    }
    let info = resolver.member_info(&request.learner)?;
    let id = request.learner.id;
    // openraft's own wait ends once the learner lags by less than `replication_lag_threshold`
    // entries, which a small log always does, even when the learner is unreachable. Wait
    // instead until the learner has acknowledged the entry that added it.
    let deadline = tokio::time::Instant::now() + timeout();
    let added = match tokio::time::timeout(timeout(), raft.add_learner(id, info, false)).await {
        Err(_) => return Err(timed_out("add_learner")),
        Ok(Err(error)) => return Err(control_error(error, initialized)),
        Ok(Ok(added)) => added.log_id,
    };
    let wait = raft.wait(Some(deadline.saturating_duration_since(tokio::time::Instant::now())));
    let caught_up = |metrics: &RaftMetrics| {
        let matched = metrics.replication.as_ref().and_then(|r| r.get(&id).cloned().flatten());
        metrics.replication.is_none() || matched.is_some_and(|m| m >= added)
    };
    if wait.metrics(caught_up, "learner caught up").await.is_err() {
        return Err(ControlPlaneError::Failed {
            reason: format!(
                "node {id} was added as a learner but has not caught up within \
                 {CONTROL_REQUEST_TIMEOUT_MS_MAX} ms: check that it runs, that this node can \
                 reach its endpoint, and that it knows the cluster (--peers or --ticket)"
            ),
        });
    }
    current_state(raft)
}

/// Replaces the voter set; removed voters stay as learners.
pub async fn change_membership(
    raft: &AspenRaft,
    request: ChangeMembershipRequest,
) -> Result<ClusterState, ControlPlaneError> {
    validate::change_membership(&request).map_err(invalid)?;
    let metrics = settled_metrics(raft).await;
    let initialized = is_initialized(&metrics);
    if !initialized {
        return Err(ControlPlaneError::NotInitialized);
    }
    let membership = metrics.membership_config.membership();
    if let Some(unknown) = request.members.iter().find(|id| membership.get_node(id).is_none()) {
        return Err(invalid(format!(
            "node {unknown} is neither a member nor a learner: add it as a learner first"
        )));
    }
    let voters: BTreeSet<NodeId> = request.members.into_iter().collect();
    let result = tokio::time::timeout(timeout(), raft.change_membership(voters, true)).await;
    match result {
        Err(_) => Err(timed_out("change_membership")),
        Ok(Err(error)) => Err(control_error(error, initialized)),
        Ok(Ok(_)) => current_state(raft),
    }
}

/// Removes `request.node_id` from the membership entirely: a voter is dropped from the voter set
/// without being kept as a learner, a learner is dropped from the nodes. Once removed, the
/// leader stops replicating to it, so the node may come back later (even under the same id
/// with an empty log) by being added as a learner again.
pub async fn remove_node(
    raft: &AspenRaft,
    request: RemoveNodeRequest,
) -> Result<ClusterState, ControlPlaneError> {
    let metrics = settled_metrics(raft).await;
    let initialized = is_initialized(&metrics);
    if !initialized {
        return Err(ControlPlaneError::NotInitialized);
    }
    let id = request.node_id;
    let membership = metrics.membership_config.membership();
    if membership.get_node(&id).is_none() {
        return Err(invalid(format!("node {id} is neither a member nor a learner")));
    }
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let change = if voters.contains(&id) {
        if voters.len() == 1 {
            return Err(invalid(format!("node {id} is the last voter and cannot be removed")));
        }
        ChangeMembers::RemoveVoters(BTreeSet::from([id]))
    } else {
        ChangeMembers::RemoveNodes(BTreeSet::from([id]))
    };
    let result = tokio::time::timeout(timeout(), raft.change_membership(change, false)).await;
    match result {
        Err(_) => Err(timed_out("remove_node")),
        Ok(Err(error)) => Err(control_error(error, initialized)),
        Ok(Ok(_)) => current_state(raft),
    }
}

/// The membership as this node has it.
pub fn current_state(raft: &AspenRaft) -> Result<ClusterState, ControlPlaneError> {
    let metrics = raft.metrics().borrow_watched().clone();
    if !is_initialized(&metrics) {
        return Err(ControlPlaneError::NotInitialized);
    }
    Ok(cluster_state(&metrics))
}
