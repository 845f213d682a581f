//! The storage error, grouped by how a caller reacts to it.

use std::io;

/// Why a storage operation failed.
///
/// The variants are grouped by what the caller should do: `NodeIdMismatch` is an operator
/// mistake (wrong data dir) and must not be retried; `Corrupt` means the bytes on disk or in a
/// snapshot cannot be trusted; `LimitExceeded` is an input over a bound; `Io` is an environment
/// failure (disk, lock, cancelled task) that a supervisor restart may cure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The database was created for another node: the data dir belongs to someone else.
    #[error("database belongs to node {stored}, not to node {given}")]
    NodeIdMismatch {
        /// The node id stamped in the database.
        stored: u64,
        /// The node id this process was started with.
        given: u64,
    },
    /// Stored or received bytes do not decode or contradict each other.
    #[error("corrupt storage: {reason}")]
    Corrupt {
        /// What does not decode or does not match.
        reason: String,
    },
    /// An input is over one of the bounds in `crate::limits`.
    #[error("storage limit exceeded: {reason}")]
    LimitExceeded {
        /// Which limit, and by how much.
        reason: String,
    },
    /// The database or the file system failed; retrying after a restart may help.
    #[error("storage I/O failed: {reason}")]
    Io {
        /// The underlying error, as text (redb's errors are not `Clone`).
        reason: String,
    },
}

impl StorageError {
    /// A decoding failure of the thing named `what`.
    pub(crate) fn corrupt(what: &str, error: impl std::fmt::Display) -> Self {
        Self::Corrupt { reason: format!("{what}: {error}") }
    }

    fn from_redb(error: redb::Error) -> Self {
        match error {
            redb::Error::Corrupted(reason) => Self::Corrupt { reason },
            other => Self::Io { reason: other.to_string() },
        }
    }
}

/// Every redb error type becomes `Corrupt` or `Io` through `redb::Error`, which knows them all.
macro_rules! from_redb_errors {
    ($($error:ty),* $(,)?) => {
        $(impl From<$error> for StorageError {
            fn from(error: $error) -> Self {
                Self::from_redb(error.into())
            }
        })*
    };
}

from_redb_errors!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError,
);

impl From<io::Error> for StorageError {
    fn from(error: io::Error) -> Self {
        Self::Io { reason: error.to_string() }
    }
}

/// openraft's storage traits speak `io::Error`; the kind keeps the caller's reaction visible.
impl From<StorageError> for io::Error {
    fn from(error: StorageError) -> Self {
        let kind = match &error {
            StorageError::NodeIdMismatch { .. } | StorageError::LimitExceeded { .. } => {
                io::ErrorKind::InvalidInput
            }
            StorageError::Corrupt { .. } => io::ErrorKind::InvalidData,
            StorageError::Io { .. } => io::ErrorKind::Other,
        };
        io::Error::new(kind, error)
    }
}
