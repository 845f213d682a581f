//! The operator's side: connect to a node's control port as a ractor node of one's own, find
//! its NodeControl actor, and call it.
//!
//! Connecting is three steps, each bounded by the caller's timeout (at most
//! `CONTROL_CONNECT_TIMEOUT_MS_MAX`): start a client NodeServer under a unique name, open a
//! TCP session to the node, and wait until the node's NodeControl actor shows up in the
//! process group [`node_control_group`] as a remote member. A session that closes before its
//! cookie handshake completes means the node refused the cookie.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{ActorCell, ActorId, ActorRef, ActorStatus, RpcReplyPort};
use ractor_cluster::node::NodeServerSessionInformation;
use ractor_cluster::{NodeEventSubscription, NodeServerMessage};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::error::ControlError;
use super::node_server::{spawn_node_server, stop_node_server};
use super::protocol::{ControlReply, NodeControlMessage, node_control_group};
use super::report::ChildStatus;
use crate::limits::{ACTOR_CALL_TIMEOUT_MS_MAX, CONTROL_CONNECT_TIMEOUT_MS_MAX};

/// How often the connect loop looks at the process group. Short, because the group fills
/// within milliseconds of the handshake; the loop as a whole is bounded by the timeout.
const GROUP_POLL_INTERVAL_MS: u64 = 10;

/// A connection to one node's NodeControl actor. Call [`RemoteNodeControl::close`] when done;
/// dropping it asks its client NodeServer to stop without waiting.
#[derive(Debug)]
pub struct RemoteNodeControl {
    addr: String,
    node_id: u64,
    control: Mutex<ActorCell>,
    phase: watch::Receiver<SessionPhase>,
    node_server: Option<ActorRef<NodeServerMessage>>,
}

impl RemoteNodeControl {
    /// Connects to node `node_id`'s control port at `addr` (`host:port`) with `cookie`, waiting
    /// at most `timeout` (capped at `CONTROL_CONNECT_TIMEOUT_MS_MAX`) for its NodeControl actor.
    pub async fn connect(
        addr: &str,
        cookie: &str,
        node_id: u64,
        timeout: Duration,
    ) -> Result<Self, ControlError> {
        let timeout = timeout.min(Duration::from_millis(CONTROL_CONNECT_TIMEOUT_MS_MAX));
        let deadline = tokio::time::Instant::now() + timeout;
        // Several operators may run in one process (tests, the lab), and ractor_cluster refuses
        // two sessions from nodes of the same name: the suffix keeps names apart.
        let name = format!("aspen-operator-{node_id}-{:016x}", rand::random::<u64>());
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let node_server = spawn_node_server(name, "localhost", loopback, 0, cookie).await?;
        let found = find_control(&node_server, addr, node_id, deadline, timeout).await;
        match found {
            Ok((control, phase)) => Ok(Self {
                addr: addr.to_string(),
                node_id,
                control: Mutex::new(control),
                phase,
                node_server: Some(node_server),
            }),
            Err(error) => {
                stop_node_server(&node_server).await;
                Err(error)
            }
        }
    }

    /// The node's supervised actors, sorted by role name.
    pub async fn list_actors(&self) -> Result<Vec<ChildStatus>, ControlError> {
        let report = self.call(Resend::Safe, NodeControlMessage::ListActors).await?;
        if report.node_id != self.node_id {
            return Err(ControlError::Failed {
                reason: format!(
                    "{} answered as node {}, not node {}",
                    self.addr, report.node_id, self.node_id
                ),
            });
        }
        Ok(report.children)
    }

    /// Kills the node's actor with role `name` (`"raft"`), for its supervisor to restart.
    pub async fn crash_actor(&self, name: &str) -> Result<(), ControlError> {
        let request = |reply| NodeControlMessage::CrashActor(name.to_string(), reply);
        self.call(Resend::Unsafe, request).await
    }

    /// Closes the session and stops the client NodeServer, within `SHUTDOWN_TIMEOUT_MS_MAX`.
    pub async fn close(mut self) {
        if let Some(node_server) = self.node_server.take() {
            stop_node_server(&node_server).await;
        }
    }

    /// Sends `request` to NodeControl, all within `ACTOR_CALL_TIMEOUT_MS_MAX`. When the actor
    /// stopped before answering (crashed, and restarted under a new id), a request that is
    /// `Resend::Safe` goes once more to its successor.
    async fn call<T: Serialize + DeserializeOwned + Send + 'static>(
        &self,
        resend: Resend,
        request: impl Fn(RpcReplyPort<ControlReply<T>>) -> NodeControlMessage,
    ) -> Result<T, ControlError> {
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(ACTOR_CALL_TIMEOUT_MS_MAX);
        for _attempt in 0..2 {
            let control = self.control(deadline).await?;
            if let Some(result) = self.call_once(&control, &request, deadline).await {
                return result;
            }
            if resend == Resend::Unsafe {
                break;
            }
        }
        Err(ControlError::Unreachable {
            reason: format!(
                "the NodeControl at {} stopped before answering; the request may or may not have \
                 taken effect",
                self.addr
            ),
        })
    }

    /// One request to `control`; `None` when it was dropped unanswered (the actor is gone).
    async fn call_once<T: Serialize + DeserializeOwned + Send + 'static>(
        &self,
        control: &ActorCell,
        request: &impl Fn(RpcReplyPort<ControlReply<T>>) -> NodeControlMessage,
        deadline: tokio::time::Instant,
    ) -> Option<Result<T, ControlError>> {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let unreachable = |reason: String| Some(Err(ControlError::Unreachable { reason }));
        match ractor::rpc::call(control, request, Some(left)).await {
            Ok(CallResult::Success(ControlReply(result))) => Some(result),
            Ok(CallResult::SenderError) => None,
            Ok(CallResult::Timeout) => unreachable(format!(
                "{} did not answer within {ACTOR_CALL_TIMEOUT_MS_MAX} ms",
                self.addr
            )),
            // Sending fails when the proxy stopped in the meantime: the actor is gone.
            Err(_) if !is_alive(control) => None,
            Err(error) => unreachable(format!("the session to {} is closed: {error}", self.addr)),
        }
    }

    /// The NodeControl proxy to call: the one found on connect or, once that actor has stopped
    /// (crashed and restarted by its supervisor, under a new id), its successor, waited for
    /// until `deadline`.
    async fn control(&self, deadline: tokio::time::Instant) -> Result<ActorCell, ControlError> {
        if let SessionPhase::Closed { .. } = *self.phase.borrow() {
            return Err(ControlError::Unreachable {
                reason: format!("the session to {} is closed", self.addr),
            });
        }
        let current = self.lock_control().clone();
        if is_alive(&current) {
            return Ok(current);
        }
        let Some(node_server) = self.node_server.as_ref() else {
            return Err(ControlError::Failed { reason: "the connection is closed".into() });
        };
        let group = node_control_group(self.node_id);
        loop {
            if let Some(found) = own_member(&group, node_server) {
                *self.lock_control() = found.clone();
                return Ok(found);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ControlError::Unreachable {
                    reason: format!(
                        "the NodeControl of node {} at {} stopped and no successor appeared",
                        self.node_id, self.addr
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(GROUP_POLL_INTERVAL_MS)).await;
        }
    }

    /// The lock guards a plain handle replaced whole, so a poisoned lock holds nothing broken.
    fn lock_control(&self) -> MutexGuard<'_, ActorCell> {
        self.control.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether a request may go again to a restarted NodeControl when the first one's fate is
/// unknown: a listing may, a crash may not (it could kill the restarted actor a second time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resend {
    Safe,
    Unsafe,
}

impl Drop for RemoteNodeControl {
    fn drop(&mut self) {
        // Killing takes the whole client tree down at once; `close` does it gracefully.
        if let Some(node_server) = self.node_server.take() {
            node_server.kill();
        }
    }
}

/// Connects `node_server` to `addr` and waits until `deadline` for node `node_id`'s NodeControl.
async fn find_control(
    node_server: &ActorRef<NodeServerMessage>,
    addr: &str,
    node_id: u64,
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> Result<(ActorCell, watch::Receiver<SessionPhase>), ControlError> {
    let (phase_tx, mut phase) = watch::channel(SessionPhase::Connecting);
    // Subscribing before connecting: the NodeServer handles its mailbox in order, so no event
    // of the new session can be missed.
    let subscription = Box::new(PhaseTracker(phase_tx));
    let id = "aspen-remote-node-control".to_string();
    let subscribe = NodeServerMessage::SubscribeToEvents { id, subscription };
    node_server
        .cast(subscribe)
        .map_err(|error| ControlError::Failed { reason: error.to_string() })?;

    let unreachable = |reason: String| ControlError::Unreachable { reason };
    let connect = ractor_cluster::client_connect(node_server, addr);
    match tokio::time::timeout_at(deadline, connect).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Err(unreachable(format!("cannot connect to {addr}: {error}"))),
        Err(_) => {
            return Err(unreachable(format!("no TCP connection to {addr} within {timeout:?}")));
        }
    }
    let group = node_control_group(node_id);
    let poll = Duration::from_millis(GROUP_POLL_INTERVAL_MS);
    loop {
        let current = *phase.borrow_and_update();
        match current {
            SessionPhase::Closed { authenticated: false } => {
                return Err(ControlError::AuthenticationFailed { addr: addr.to_string() });
            }
            SessionPhase::Closed { authenticated: true } => {
                return Err(unreachable(format!("{addr} closed the session")));
            }
            SessionPhase::Connecting | SessionPhase::Authenticated => {}
        }
        if let Some(control) = own_member(&group, node_server) {
            return Ok((control, phase));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(unreachable(format!(
                "no NodeControl of node {node_id} visible after {} ms: wrong cookie, wrong node \
                 id or unreachable",
                timeout.as_millis()
            )));
        }
        // Wake on a session event or after the poll interval, whichever comes first.
        let _ = tokio::time::timeout(poll, phase.changed()).await;
    }
}

/// The remote member of `group` that `node_server`'s own session brought in, if any.
///
/// Process groups are process-global, so a remote member may have come through another session
/// of this process: another operator's, or, when nodes share the process, a node's own. Only a
/// proxy under our session proves that the node we authenticated to exposes the actor. Proxies
/// are the session's children; ractor's group keeps one member per id, and proxies of different
/// sessions can share an id, so the group is asked for ids and our session for the proxy.
fn own_member(group: &str, node_server: &ActorRef<NodeServerMessage>) -> Option<ActorCell> {
    let remote_ids: Vec<ActorId> = ractor::pg::get_members(&group.to_string())
        .into_iter()
        .map(|member| member.get_id())
        .filter(|id| !id.is_local())
        .collect();
    node_server
        .get_children()
        .into_iter()
        .flat_map(|session| session.get_children())
        .find(|proxy| remote_ids.contains(&proxy.get_id()) && is_alive(proxy))
}

fn is_alive(actor: &ActorCell) -> bool {
    !matches!(actor.get_status(), ActorStatus::Stopping | ActorStatus::Stopped)
}

/// Where the client's one session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionPhase {
    Connecting,
    Authenticated,
    Closed { authenticated: bool },
}

/// Feeds the client NodeServer's session events into a watch channel.
struct PhaseTracker(watch::Sender<SessionPhase>);

impl NodeEventSubscription for PhaseTracker {
    fn node_session_opened(&self, _session: NodeServerSessionInformation) {}

    fn node_session_authenticated(&self, _session: NodeServerSessionInformation) {
        self.0.send_replace(SessionPhase::Authenticated);
    }

    fn node_session_disconnected(&self, _session: NodeServerSessionInformation) {
        self.0.send_modify(|phase| {
            let authenticated = *phase == SessionPhase::Authenticated;
            *phase = SessionPhase::Closed { authenticated };
        });
    }
}
