//! The slot that holds a node's running Raft instance and the reader of its state machine.
//!
//! The RaftActor owns the lifecycle of the openraft instance: it builds it when it starts and
//! empties this slot and shuts the instance down when it stops or is restarted by its
//! supervisor. Everything on the data path (clients, the RPC server) reads the current instance
//! from this slot and calls openraft directly, so that many requests are in flight at once
//! instead of queueing behind one mailbox. Because clients hold only the slot, a client kept
//! after the node shut down holds no database handle: the data dir can be opened again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use super::AspenRaft;
use super::election::LeaderContact;
use crate::storage::StateReader;

/// A shared, replaceable Raft instance; clones share the slot.
///
/// It also carries what outlives an instance: when this node last heard from a leader (the
/// RPC server records it, the election timer reads it) and whether the timer may start
/// elections.
#[derive(Clone)]
pub struct SharedRaft {
    slot: Arc<RwLock<Option<(AspenRaft, StateReader)>>>,
    contact: Arc<LeaderContact>,
    elections: Arc<AtomicBool>,
}

impl Default for SharedRaft {
    fn default() -> Self {
        Self {
            slot: Arc::default(),
            contact: Arc::default(),
            elections: Arc::new(AtomicBool::new(true)),
        }
    }
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

    /// When this node last heard from a leader.
    pub fn contact(&self) -> Arc<LeaderContact> {
        self.contact.clone()
    }

    /// Whether this node starts elections on its own when it hears from no leader (on by
    /// default). Off, it still votes, and still campaigns when a node with a shorter log asks
    /// it for a pre-vote.
    pub fn set_elections(&self, enabled: bool) {
        self.elections.store(enabled, Ordering::Relaxed);
    }

    /// See [`SharedRaft::set_elections`].
    pub fn elections_enabled(&self) -> bool {
        self.elections.load(Ordering::Relaxed)
    }

    /// Empties the slot and returns the instance it held.
    pub fn take(&self) -> Option<AspenRaft> {
        self.slot.write().unwrap_or_else(|e| e.into_inner()).take().map(|(raft, _)| raft)
    }
}
