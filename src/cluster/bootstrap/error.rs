//! [`BootstrapError`]: why a node could not start or stop cleanly. Apart from the code that
//! starts and stops the node, since both return it.

use crate::cluster::config::ConfigError;
use crate::cluster::iroh_manager::IrohError;
use crate::cluster::node_control::ControlError;
use crate::storage::StorageError;

/// Why a node could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The configuration is invalid; nothing was started.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database could not be opened (or belongs to another node).
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The iroh endpoint could not start.
    #[error(transparent)]
    Iroh(#[from] IrohError),
    /// The ractor_cluster control server could not start.
    #[error("control server: {0}")]
    Control(#[from] ControlError),
    /// An actor failed to start or stop.
    #[error("actor: {reason}")]
    Actor {
        /// What happened.
        reason: String,
    },
    /// The data directory could not be used.
    #[error("data dir: {reason}")]
    DataDir {
        /// What happened.
        reason: String,
    },
}
