//! Turning openraft's errors into Aspen's API errors, grouped by how the caller reacts.

use openraft::error::{ClientWriteError, ForwardToLeader, LinearizableReadError, RaftError};

use super::AspenTypeConfig;
use crate::api::{ControlPlaneError, KeyValueStoreError};

/// Maps a client-write error of a data-plane request.
pub(crate) fn write_error(
    error: RaftError<AspenTypeConfig, ClientWriteError<AspenTypeConfig>>,
) -> KeyValueStoreError {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => not_leader_kv(&forward),
        RaftError::APIError(ClientWriteError::LogEntryDiscarded(_)) => KeyValueStoreError::Failed {
            reason: "leader changed while the write was in flight; it may or may not be applied"
                .into(),
        },
        other => KeyValueStoreError::Failed { reason: other.to_string() },
    }
}

/// Maps a linearizable-read error.
pub(crate) fn read_error(
    error: RaftError<AspenTypeConfig, LinearizableReadError<AspenTypeConfig>>,
) -> KeyValueStoreError {
    match error {
        RaftError::APIError(LinearizableReadError::ForwardToLeader(forward)) => {
            not_leader_kv(&forward)
        }
        other => KeyValueStoreError::Failed { reason: other.to_string() },
    }
}

fn not_leader_kv(forward: &ForwardToLeader<AspenTypeConfig>) -> KeyValueStoreError {
    KeyValueStoreError::NotLeader {
        leader: forward.leader_id,
        leader_addr: forward.leader_node.as_ref().map(|node| node.api_addr.clone()),
    }
}

/// Maps a client-write error of a control-plane request (add learner, change membership).
pub(crate) fn control_error(
    error: RaftError<AspenTypeConfig, ClientWriteError<AspenTypeConfig>>,
    initialized: bool,
) -> ControlPlaneError {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
            if !initialized {
                return ControlPlaneError::NotInitialized;
            }
            ControlPlaneError::NotLeader {
                leader: forward.leader_id,
                leader_addr: forward.leader_node.as_ref().map(|node| node.api_addr.clone()),
            }
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(change)) => {
            ControlPlaneError::InvalidRequest { reason: change.to_string() }
        }
        other => ControlPlaneError::Failed { reason: other.to_string() },
    }
}
