//! Operator control of a node over ractor_cluster: list its supervised actors, crash one.
//!
//! Each node runs a ractor_cluster `NodeServer` on `host:ractor_port` ([`start_control_server`]),
//! authenticated by the cluster cookie, and a [`NodeControl`] actor that its NodeSupervisor
//! spawns like any other child. NodeControl joins the process group [`node_control_group`];
//! ractor_cluster mirrors process groups to every connected node, so a remote ractor node (an
//! operator, the test suite, the `aspen-lab` fault injector) finds it there and calls it with
//! [`NodeControlMessage`]. [`RemoteNodeControl`] does all of that for the caller.
//!
//! What NodeControl answers comes from the [`SupervisionReport`], which the NodeSupervisor
//! updates as it starts and restarts children; [`NodeControlMessage::CrashActor`] kills the
//! child's actor (found by its process-global name) so that the supervisor must restore it.
//!
//! ```text
//! operator process                               node process
//! RemoteNodeControl ── client NodeServer ──TCP── NodeServer (cookie) ── NodeSession
//!        └── proxy of NodeControl (from pg) ···························· NodeControl ── report
//! ```
//!
//! Caveats:
//! - The session is plain TCP: the cookie authenticates but nothing is encrypted. Keep the
//!   control port on loopback or a trusted network.
//! - Connecting advertises every remotable actor of the operator's process to the node (that is
//!   how ractor_cluster works); operators should not run remotable actors they want to keep
//!   private.
//! - Crashing is a kill (no `post_stop`), not a panic: the supervisor sees the actor terminated,
//!   which it treats like a failure.
//! - Nothing restarts the control NodeServer itself if it dies; the node keeps serving without
//!   an operator port.
//! - ractor_cluster mirrors every process group of a process. When several nodes share one
//!   process (tests, examples), any one node's port exposes all their NodeControl actors; the
//!   operator still asks for the node id it means, and the answer carries that id.
//! - An operator finds NodeControl again after it was crashed and restarted, but a crash request
//!   that NodeControl's own restart cut short is reported as unknown, never sent twice.

mod client;
mod error;
mod node_server;
mod protocol;
mod report;
mod server;

pub use client::RemoteNodeControl;
pub use error::ControlError;
pub use node_server::{ControlServer, start_control_server};
pub use protocol::{ControlReply, NodeControlMessage, node_control_actor_name, node_control_group};
pub use report::{ChildStatus, NodeReport, SupervisionReport};
pub use server::{NodeControl, NodeControlArgs, NodeControlState, spawn_node_control};
