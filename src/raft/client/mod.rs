//! The clients a program uses on a node: [`RaftControlClient`] (the control plane) and
//! [`KvClient`] (the data plane), both made from the node's [`RaftActorHandle`].
//!
//! The control client sends messages to the RaftActor, found by its node-prefixed name on every
//! call, so it keeps working after the actor was restarted by its supervisor. The KV client
//! calls the running Raft instance directly from the caller's task, so that many writes are in
//! flight at once and openraft can batch them; when this node is not the leader it forwards the
//! request to the leader over the Raft RPC protocol.
//!
//! - `handle`: [`RaftActorHandle`], the node's backend (Raft or the deterministic one) and its
//!   data-path counters, shared by both clients;
//! - `control`: [`RaftControlClient`], calls to the RaftActor with a bounded wait;
//! - `kv`: [`KvClient`], local calls, forwarding to the leader and the retries while leadership
//!   settles.

mod control;
mod handle;
mod kv;

pub use control::RaftControlClient;
pub use handle::RaftActorHandle;
pub use kv::KvClient;
