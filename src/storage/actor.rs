//! The StorageActor: owns the lifecycle of the node's redb databases (the log, the state).
//!
//! The databases are opened once per process by `bootstrap_node` (redb locks the files), and
//! the actor keeps a handle to them: it answers health and disk-usage queries, so that a failing
//! disk shows up as a failed actor under the node's supervisor rather than as a silent error
//! deep in the Raft log store.

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorMessage;

use super::{RedbStore, StorageError};

/// Messages the StorageActor handles.
#[derive(RactorMessage)]
pub enum StorageActorMessage {
    /// Checks that both databases answer a read transaction.
    Health(RpcReplyPort<Result<(), StorageError>>),
    /// The size of both database files in bytes (0 in memory).
    DiskUsage(RpcReplyPort<u64>),
}

/// The StorageActor.
pub struct StorageActor;

impl Actor for StorageActor {
    type Msg = StorageActorMessage;
    type State = RedbStore;
    type Arguments = RedbStore;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        store: RedbStore,
    ) -> Result<RedbStore, ActorProcessingErr> {
        // Starting on a database that does not answer would hide the failure until the first
        // write; fail now so the supervisor sees it.
        store.check_health()?;
        Ok(store)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        store: &mut RedbStore,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            StorageActorMessage::Health(reply) => {
                let _ = reply.send(store.check_health());
            }
            StorageActorMessage::DiskUsage(reply) => {
                let _ = reply.send(store.disk_usage_bytes());
            }
        }
        Ok(())
    }
}
