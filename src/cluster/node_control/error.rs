//! Errors of the control port, grouped by what the caller does about them.

use serde::{Deserialize, Serialize};

/// Why a control-port operation failed. It travels over the wire too (a node answers a remote
/// request with one), hence the serde derives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ControlError {
    /// The input cannot work as given (an address that does not resolve, an empty cookie); fix
    /// it and try again.
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong with it.
        reason: String,
    },
    /// The node could not be reached, or did not answer in time; it may be down, restarting or
    /// partitioned away. Retrying later may work.
    #[error("node unreachable: {reason}")]
    Unreachable {
        /// What was tried and what happened.
        reason: String,
    },
    /// The node closed the session before the cookie handshake completed, which in practice
    /// means the cookies differ. Retrying with the same cookie will not help.
    #[error("authentication with {addr} failed: the node refused the cookie")]
    AuthenticationFailed {
        /// The address of the node that refused.
        addr: String,
    },
    /// The node supervises no actor with this role name.
    #[error("no actor named {name}")]
    NoSuchActor {
        /// The role name asked for.
        name: String,
    },
    /// The node supervises this actor but it does not run right now (its supervisor is
    /// restarting it, or gave up); ask again shortly.
    #[error("actor {name} is not running")]
    NotRunning {
        /// The role name asked for.
        name: String,
    },
    /// Anything else: the control server could not start, a reply could not be decoded.
    #[error("control failed: {reason}")]
    Failed {
        /// What happened.
        reason: String,
    },
}
