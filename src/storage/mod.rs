//! Storage: the Raft log and vote, and the state machine of a node, in two redb databases.
//!
//! [`RedbStore::open`] opens (or creates) `aspen.redb` (the log database) and `state.redb` (the
//! state database) in the node's data dir, beside the snapshot file `snapshot.bin`, or two
//! in-memory databases without one, and stamps the node id in both. Two databases, because redb commits a whole database at once: apart, a
//! durable log commit writes only log pages, and an apply never waits for the log's fsync
//! (`store` says more; bench/README.md has the measurements). From the open store come:
//!
//! - [`RedbLogStore`]: openraft's `RaftLogStorage` (and its log reader), on the log database.
//!   Entries live in the `log` table by index; vote, committed and last purged ids in the `meta`
//!   table. `append` returns as soon as the entries are readable (in an in-memory pending tail)
//!   and the log writer thread (`log_writer`) makes them durable, every append queued behind the
//!   first in one transaction, before openraft hears they are flushed. Truncate, purge and vote
//!   run on that thread too, in order.
//! - [`RedbStateMachine`]: openraft's `RaftStateMachine` and snapshot builder, on the state
//!   database. `apply` batches the entries the stream has ready into one transaction (not
//!   fsynced: the log already holds the entries durably) that changes the `kv` table (through
//!   [`crate::api::apply::apply_command`], shared with the deterministic backend) and records
//!   `last_applied` and the membership, then answers every client. A clean close and every
//!   `STATE_DURABLE_AFTER_ENTRIES`-th entry commit it durably. The current snapshot is a file of
//!   its own, `snapshot.bin`, written without any lock an apply needs (`snapshot`).
//! - [`StateReader`]: local reads (`get`, `scan`, [`StateDigest`]) for the data path.
//! - `StorageActor`: the supervised actor that reports the databases' health and size.
//!
//! The handles share the databases and keep no state of their own, so a RaftActor restarted by
//! its supervisor creates them again and finds every committed write (it first waits until no
//! storage call and no queued log write is left). redb calls block on the disk; the async
//! trait methods run them on tokio's blocking pool or the log writer thread, except two that
//! cannot wait for a disk and cost less than a hop to another thread: a point read, and a small
//! apply taken while no other write transaction is open on the state database (the write gate,
//! see `store`).
//!
//! Caveats:
//! - A snapshot is built and installed in memory as one postcard blob (bounded by
//!   `SNAPSHOT_BYTES_MAX`); a state machine of many gigabytes would need a streamed format.
//! - The digest is a 64-bit FNV-1a hash: it detects divergent replicas, it does not
//!   authenticate them.
//! - `save_committed` is kept in memory until the next append batch (or a clean close) writes
//!   it, and `apply` is not fsynced; a crash may roll the state machine back to its last
//!   durable commit, and openraft then installs the snapshot if it is newer and applies the
//!   missing entries again from the log (which is purged only behind a durable snapshot file). It may also leave the state machine ahead of this
//!   node's own log, which openraft resolves by purging the log up to `last_applied`. Never a
//!   loss of an acknowledged write: those are durable in a quorum's logs before they are
//!   applied.
//! - A data dir of the first layout (everything in `aspen.redb`) has its state moved into
//!   `state.redb` and `snapshot.bin` when it is opened; a data dir with one of the two files missing while the other
//!   needs it is refused as corrupt.
//! - There is no compaction of the database files: redb reuses freed pages, but a file does
//!   not shrink after a purge.

mod actor;
mod error;
mod log_store;
mod log_writer;
mod reader;
mod schema;
mod snapshot;
mod state_machine;
mod store;

#[cfg(test)]
mod tests;

pub use actor::{StorageActor, StorageActorMessage};
pub use error::StorageError;
pub use log_store::RedbLogStore;
pub use reader::{StateDigest, StateReader};
pub use snapshot::SNAPSHOT_FILE_NAME;
pub use state_machine::RedbStateMachine;
pub use store::{DATABASE_FILE_NAME, DatabaseReleaseWatch, RedbStore, STATE_DATABASE_FILE_NAME};
