//! The slot that holds a node's running Raft instance and the reader of its state machine.
//!
//! The RaftActor owns the lifecycle of the openraft instance: it builds it when it starts and
//! empties this slot and shuts the instance down when it stops or is restarted by its
//! supervisor. Everything on the data path (clients, the RPC server) reads the current instance
//! from this slot and calls openraft directly, so that many requests are in flight at once
//! instead of queueing behind one mailbox. Because clients hold only the slot, a client kept
//! after the node shut down holds no database handle: the data dir can be opened again.

use std::sync::{Arc, RwLock};

use super::AspenRaft;
use crate::storage::StateReader;

/// A shared, replaceable Raft instance; clones share the slot.
#[derive(Clone, Default)]
pub struct SharedRaft {
    slot: Arc<RwLock<Option<(AspenRaft, StateReader)>>>,
}

impl std::fmt::Debug for SharedRaft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedRaft").field("running", &self.get().is_some()).finish()
    }
}

impl SharedRaft {
    /// An empty slot.
    pub fn new() -> Self {
        Self::default()
    }

    /// The running Raft instance, or `None` while the RaftActor is (re)starting or stopped.
    pub fn get(&self) -> Option<AspenRaft> {
        self.slot.read().unwrap_or_else(|e| e.into_inner()).as_ref().map(|(raft, _)| raft.clone())
    }

    /// The running instance with the reader of its state machine.
    pub fn get_with_reader(&self) -> Option<(AspenRaft, StateReader)> {
        self.slot.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts a new instance in the slot and returns the one it replaces.
    pub fn set(&self, raft: AspenRaft, reader: StateReader) -> Option<AspenRaft> {
        let mut slot = self.slot.write().unwrap_or_else(|e| e.into_inner());
        slot.replace((raft, reader)).map(|(raft, _)| raft)
    }

    /// Empties the slot and returns the instance it held.
    pub fn take(&self) -> Option<AspenRaft> {
        self.slot.write().unwrap_or_else(|e| e.into_inner()).take().map(|(raft, _)| raft)
    }
}
