//! openraft's own storage test suite (about 45 cases: log state, vote, purge, truncate, apply,
//! snapshots, initial state on restart) against Aspen's redb log store and state machine, once
//! on a database file and once in memory.

use aspen::raft::AspenTypeConfig;
use aspen::storage::{RedbLogStore, RedbStateMachine, RedbStore};
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::{ErrorSubject, ErrorVerb, StorageError};
use tempfile::TempDir;

/// The suite's stores use node id 0.
const NODE_ID: u64 = 0;

type BuildResult<G> = Result<(G, RedbLogStore, RedbStateMachine), StorageError<AspenTypeConfig>>;

fn open_failed(error: aspen::storage::StorageError) -> StorageError<AspenTypeConfig> {
    StorageError::from_io_error(ErrorSubject::Store, ErrorVerb::Read, error.into())
}

/// A fresh database file in its own temporary directory, removed when the guard drops.
struct FileStoreBuilder;

impl StoreBuilder<AspenTypeConfig, RedbLogStore, RedbStateMachine, TempDir> for FileStoreBuilder {
    async fn build(&self) -> BuildResult<TempDir> {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let store = RedbStore::open(Some(dir.path()), NODE_ID).map_err(open_failed)?;
        Ok((dir, store.log_store(), store.state_machine()))
    }
}

/// A fresh in-memory database.
struct MemoryStoreBuilder;

impl StoreBuilder<AspenTypeConfig, RedbLogStore, RedbStateMachine> for MemoryStoreBuilder {
    async fn build(&self) -> BuildResult<()> {
        let store = RedbStore::open(None, NODE_ID).map_err(open_failed)?;
        Ok(((), store.log_store(), store.state_machine()))
    }
}

#[tokio::test]
async fn openraft_suite_on_a_database_file() {
    Suite::test_all(FileStoreBuilder).await.expect("openraft storage suite on a file");
}

#[tokio::test]
async fn openraft_suite_in_memory() {
    Suite::test_all(MemoryStoreBuilder).await.expect("openraft storage suite in memory");
}
