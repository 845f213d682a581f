//! The data path on this node: a write or linearizable read executed here, as leader.
//!
//! `KvClient` calls these first and forwards to the leader when they answer `NotLeader`; the
//! Raft RPC server calls them for requests forwarded to this node, and never forwards again, so
//! a request crosses the network at most once.

use openraft::async_runtime::watch::WatchReceiver;
use std::time::Duration;

use openraft::ReadPolicy;

use super::errors::{read_error, write_error};
use super::network::LocalRequests;
use super::{AspenRaft, SharedRaft};
use crate::api::{
    KeyValueStoreError, ReadConsistency, ReadRequest, ReadResult, ScanRequest, ScanResult,
    WriteCommand, WriteOutcome, WriteRequest, WriteResult, validate,
};
use crate::limits::CLIENT_REQUEST_TIMEOUT_MS_MAX;
use crate::storage::StateReader;

fn invalid(reason: String) -> KeyValueStoreError {
    KeyValueStoreError::InvalidRequest { reason }
}

fn request_timeout() -> Duration {
    Duration::from_millis(CLIENT_REQUEST_TIMEOUT_MS_MAX)
}

fn timed_out(what: &str) -> KeyValueStoreError {
    KeyValueStoreError::Failed {
        reason: format!(
            "{what} did not finish within {CLIENT_REQUEST_TIMEOUT_MS_MAX} ms (no quorum?); \
             it may or may not have been applied"
        ),
    }
}

fn not_initialized_or(raft: &AspenRaft, error: KeyValueStoreError) -> KeyValueStoreError {
    match error {
        KeyValueStoreError::NotLeader { leader: None, .. }
            if super::control::never_joined(&raft.metrics().borrow_watched()) =>
        {
            KeyValueStoreError::NotInitialized
        }
        other => other,
    }
}

/// Proposes `request` through this node's Raft; `NotLeader` when this node is not the leader.
pub async fn write(
    raft: &AspenRaft,
    request: WriteRequest,
) -> Result<WriteResult, KeyValueStoreError> {
    validate::write_command(&request.command).map_err(invalid)?;
    let command = request.command;
    let response = tokio::time::timeout(request_timeout(), raft.client_write(command.clone()))
        .await
        .map_err(|_| timed_out("write"))?
        .map_err(|error| not_initialized_or(raft, write_error(error)))?;
    match response.data {
        WriteOutcome::Applied => Ok(WriteResult { command, log_index: response.log_id.index }),
        WriteOutcome::CompareAndSwapMismatch { current } => match command {
            WriteCommand::CompareAndSwap { key, .. } => {
                Err(KeyValueStoreError::CompareAndSwapFailed { key, current })
            }
            other => Err(KeyValueStoreError::Failed {
                reason: format!("state machine reported a CAS mismatch for {other}"),
            }),
        },
    }
}

/// Confirms leadership with a read index and waits until this node has applied up to it, so
/// a read that follows sees every write acknowledged before it began.
async fn linearize(raft: &AspenRaft) -> Result<(), KeyValueStoreError> {
    tokio::time::timeout(request_timeout(), raft.ensure_linearizable(ReadPolicy::ReadIndex))
        .await
        .map_err(|_| timed_out("linearizable read"))?
        .map_err(|error| not_initialized_or(raft, read_error(error)))?;
    Ok(())
}

fn storage_failed(error: crate::storage::StorageError) -> KeyValueStoreError {
    KeyValueStoreError::Failed { reason: error.to_string() }
}

/// Reads one key on this node: linearizably as leader (`NotLeader` on a follower), or, for a
/// serializable read, from what this node has applied, whatever its role.
pub async fn read(
    raft: &AspenRaft,
    reader: &StateReader,
    request: ReadRequest,
) -> Result<ReadResult, KeyValueStoreError> {
    validate::key(&request.key).map_err(invalid)?;
    match request.consistency {
        ReadConsistency::Linearizable => linearize(raft).await?,
        ReadConsistency::Serializable => {
            // A node that never joined a cluster has nothing to serve, not an empty store.
            if super::control::never_joined(&raft.metrics().borrow_watched()) {
                return Err(KeyValueStoreError::NotInitialized);
            }
        }
    }
    match reader.get(&request.key).await.map_err(storage_failed)? {
        Some(value) => Ok(ReadResult { key: request.key, value }),
        None => Err(KeyValueStoreError::NotFound { key: request.key }),
    }
}

/// Scans a prefix linearizably on this node, as leader.
pub async fn scan(
    raft: &AspenRaft,
    reader: &StateReader,
    request: ScanRequest,
) -> Result<ScanResult, KeyValueStoreError> {
    let limit = validate::scan(&request).map_err(invalid)?;
    linearize(raft).await?;
    let (entries, truncated) = reader.scan(&request.prefix, limit).await.map_err(storage_failed)?;
    Ok(ScanResult { entries, truncated })
}

/// Executes forwarded requests on this node (see the module docs).
#[derive(Clone)]
pub struct LocalKv {
    /// The node's Raft slot.
    pub shared: SharedRaft,
}

impl LocalKv {
    fn raft(&self) -> Result<AspenRaft, KeyValueStoreError> {
        self.shared.get().ok_or_else(restarting)
    }

    fn raft_and_reader(&self) -> Result<(AspenRaft, StateReader), KeyValueStoreError> {
        self.shared.get_with_reader().ok_or_else(restarting)
    }
}

/// The error while the RaftActor is (re)starting.
pub fn restarting() -> KeyValueStoreError {
    KeyValueStoreError::Failed { reason: "the node's Raft is restarting; retry".into() }
}

#[async_trait::async_trait]
impl LocalRequests for LocalKv {
    async fn write(&self, request: WriteRequest) -> Result<WriteResult, KeyValueStoreError> {
        write(&self.raft()?, request).await
    }

    async fn read(&self, request: ReadRequest) -> Result<ReadResult, KeyValueStoreError> {
        let (raft, reader) = self.raft_and_reader()?;
        read(&raft, &reader, request).await
    }

    async fn scan(&self, request: ScanRequest) -> Result<ScanResult, KeyValueStoreError> {
        let (raft, reader) = self.raft_and_reader()?;
        scan(&raft, &reader, request).await
    }
}
