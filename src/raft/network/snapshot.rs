//! Splitting a snapshot into chunks and putting it back together, with no I/O, so that the
//! bounds are tested without a network.
//!
//! The sender checks the whole snapshot against `SNAPSHOT_BYTES_MAX` and cuts it into chunks of
//! at most `SNAPSHOT_CHUNK_BYTES_MAX`; the receiver is told the total up front, refuses a total
//! over the limit before buffering anything, refuses any chunk over the chunk limit or past the
//! declared total, and accepts the result only when exactly the declared bytes arrived.

use crate::limits::{SNAPSHOT_BYTES_MAX, SNAPSHOT_CHUNK_BYTES_MAX};

/// Why a snapshot transfer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotTransferError {
    /// The snapshot is larger than `SNAPSHOT_BYTES_MAX`.
    #[error("snapshot of {bytes} bytes is over the limit of {SNAPSHOT_BYTES_MAX} bytes")]
    TooLarge {
        /// Its size.
        bytes: u64,
    },
    /// One chunk is larger than `SNAPSHOT_CHUNK_BYTES_MAX`.
    #[error(
        "snapshot chunk of {bytes} bytes is over the limit of {SNAPSHOT_CHUNK_BYTES_MAX} bytes"
    )]
    ChunkTooLarge {
        /// The chunk's size.
        bytes: usize,
    },
    /// More bytes arrived than the header declared.
    #[error("snapshot overran its declared size of {declared} bytes")]
    Overrun {
        /// The size the header declared.
        declared: u64,
    },
    /// The stream ended before the declared size was reached.
    #[error("snapshot ended after {received} of {declared} bytes")]
    Truncated {
        /// The bytes that arrived.
        received: u64,
        /// The size the header declared.
        declared: u64,
    },
}

/// Checks a snapshot's size and cuts it into the chunks to send, in order.
pub fn snapshot_chunks(data: &[u8]) -> Result<std::slice::Chunks<'_, u8>, SnapshotTransferError> {
    check_snapshot_size(data.len() as u64)?;
    Ok(data.chunks(SNAPSHOT_CHUNK_BYTES_MAX))
}

/// Refuses a snapshot of more than `SNAPSHOT_BYTES_MAX` bytes.
pub fn check_snapshot_size(bytes: u64) -> Result<(), SnapshotTransferError> {
    if bytes > SNAPSHOT_BYTES_MAX {
        return Err(SnapshotTransferError::TooLarge { bytes });
    }
    Ok(())
}

/// Reassembles a snapshot from its chunks, within the bounds above.
#[derive(Debug)]
pub struct SnapshotAssembler {
    declared: u64,
    data: Vec<u8>,
}

impl SnapshotAssembler {
    /// Starts a snapshot whose header declares `declared_bytes`.
    pub fn new(declared_bytes: u64) -> Result<Self, SnapshotTransferError> {
        check_snapshot_size(declared_bytes)?;
        // Grow as bytes arrive rather than trusting the declared size with an allocation: a
        // peer that declares 1 GiB and sends nothing costs nothing.
        Ok(Self { declared: declared_bytes, data: Vec::new() })
    }

    /// Appends the next chunk.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), SnapshotTransferError> {
        if chunk.len() > SNAPSHOT_CHUNK_BYTES_MAX {
            return Err(SnapshotTransferError::ChunkTooLarge { bytes: chunk.len() });
        }
        if self.data.len() as u64 + chunk.len() as u64 > self.declared {
            return Err(SnapshotTransferError::Overrun { declared: self.declared });
        }
        self.data.extend_from_slice(chunk);
        Ok(())
    }

    /// The bytes received so far.
    pub fn received_bytes(&self) -> u64 {
        self.data.len() as u64
    }

    /// The snapshot, once exactly the declared bytes have arrived.
    pub fn finish(self) -> Result<Vec<u8>, SnapshotTransferError> {
        let received = self.data.len() as u64;
        if received != self.declared {
            return Err(SnapshotTransferError::Truncated { received, declared: self.declared });
        }
        Ok(self.data)
    }
}
