//! The slot that holds a node's current Raft handle.
//!
//! The RaftActor owns the lifecycle of the openraft instance: it builds it when it starts and
//! shuts it down when it stops or is restarted by its supervisor. Everything on the data path
//! (clients, the RPC server) reads the current handle from this slot and calls openraft
//! directly, so that many requests are in flight at once instead of queueing behind one mailbox.

use std::sync::{Arc, RwLock};

use super::AspenRaft;

/// A shared, replaceable Raft handle; clones share the slot.
#[derive(Clone, Default)]
pub struct SharedRaft {
    slot: Arc<RwLock<Option<AspenRaft>>>,
}

impl std::fmt::Debug for SharedRaft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedRaft")
            .field("running", &self.get().is_some())
            .finish()
    }
}

impl SharedRaft {
    /// An empty slot.
    pub fn new() -> Self {
        Self::default()
    }

    /// The running Raft handle, or `None` while the RaftActor is (re)starting or stopped.
    pub fn get(&self) -> Option<AspenRaft> {
        self.slot.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts a new handle in the slot and returns the one it replaces.
    pub fn set(&self, raft: AspenRaft) -> Option<AspenRaft> {
        self.slot
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .replace(raft)
    }

    /// Empties the slot and returns what it held.
    pub fn take(&self) -> Option<AspenRaft> {
        self.slot.write().unwrap_or_else(|e| e.into_inner()).take()
    }
}
