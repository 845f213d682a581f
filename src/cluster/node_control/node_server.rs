//! The node's ractor_cluster `NodeServer`: the cookie-authenticated port through which other
//! ractor nodes (operators, the lab) reach the NodeControl actor. Also the start and stop
//! helpers the operator client uses for its own, client-side NodeServer.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorRef};
use ractor_cluster::{NodeServer, NodeServerMessage, NodeSessionMessage};

use super::error::ControlError;
use crate::limits::SHUTDOWN_TIMEOUT_MS_MAX;

/// A running control server. Dropping it does not stop it: call [`ControlServer::stop`].
#[derive(Debug)]
pub struct ControlServer {
    node_server: ActorRef<NodeServerMessage>,
    port: u16,
}

impl ControlServer {
    /// The TCP port the server listens on (the chosen one when it was started with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The ractor_cluster NodeServer actor, e.g. to `client_connect` it to other nodes.
    pub fn node_server(&self) -> &ActorRef<NodeServerMessage> {
        &self.node_server
    }

    /// Closes every session and the listener, within `SHUTDOWN_TIMEOUT_MS_MAX`.
    pub async fn stop(&self) {
        stop_node_server(&self.node_server).await;
    }
}

/// Starts node `node_id`'s control server on `host:port`, authenticating peers with `cookie`.
/// Port 0 picks a free port, reported by [`ControlServer::port`].
///
/// The NodeControl actor is not started here: the node's supervisor spawns it (see
/// [`super::NodeControlArgs`]), so that it is restarted like the node's other actors.
pub async fn start_control_server(
    host: &str,
    port: u16,
    cookie: &str,
    node_id: u64,
) -> Result<ControlServer, ControlError> {
    if cookie.is_empty() {
        return Err(ControlError::InvalidRequest {
            reason: "the cluster cookie is empty; the control port would accept anyone".into(),
        });
    }
    let ip = resolve_host(host).await?;
    let port = if port == 0 { free_port(ip)? } else { port };
    let name = format!("aspen-node-{node_id}");
    let node_server = spawn_node_server(name, host, ip, port, cookie).await?;
    tracing::info!(node_id, %ip, port, "ractor_cluster control server listening");
    Ok(ControlServer { node_server, port })
}

/// Starts a NodeServer named `name` listening on `ip:port`; `hostname` is what it tells peers.
pub(crate) async fn spawn_node_server(
    name: String,
    hostname: &str,
    ip: IpAddr,
    port: u16,
    cookie: &str,
) -> Result<ActorRef<NodeServerMessage>, ControlError> {
    let server = NodeServer::new(port, cookie.to_string(), name, hostname.to_string(), None, None)
        .with_listen_addr(ip);
    // The listener binds in the NodeServer's `pre_start`, so a busy port fails the spawn here.
    match Actor::spawn(None, server, ()).await {
        Ok((node_server, _)) => Ok(node_server),
        Err(error) => Err(ControlError::Failed {
            reason: format!("could not listen on {}: {error}", SocketAddr::new(ip, port)),
        }),
    }
}

/// The IP address `host` names: a literal address, or the first one a lookup returns.
pub(crate) async fn resolve_host(host: &str) -> Result<IpAddr, ControlError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    let invalid = |reason: String| ControlError::InvalidRequest { reason };
    let mut addresses = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|error| invalid(format!("cannot resolve host {host:?}: {error}")))?;
    addresses
        .next()
        .map(|address| address.ip())
        .ok_or_else(|| invalid(format!("host {host:?} resolves to no address")))
}

/// A port that is free on `ip` right now. ractor_cluster binds port 0 itself but does not tell
/// its owner which port it got (and would pick another one if its listener restarted), so the
/// port is chosen here. Small race: another process may take the port between this listener's
/// drop and the NodeServer's bind; the spawn then fails with a clear error and the caller may
/// retry.
fn free_port(ip: IpAddr) -> Result<u16, ControlError> {
    let probe = std::net::TcpListener::bind(SocketAddr::new(ip, 0)).map_err(|error| {
        ControlError::Failed { reason: format!("could not find a free port on {ip}: {error}") }
    })?;
    let port = probe.local_addr().map(|address| address.port());
    drop(probe);
    port.map_err(|error| ControlError::Failed { reason: format!("no local address: {error}") })
}

/// Stops a NodeServer and everything under it, bounded by `SHUTDOWN_TIMEOUT_MS_MAX`.
///
/// ractor does not stop an actor's children when the actor stops, so each session is stopped
/// on its own: gracefully, because its TCP actor closes the socket in `post_stop`, which in
/// turn ends the reader blocked on it. The NodeServer is then killed, which takes its listener
/// (blocked in `accept`, so it would never see a stop) and any straggler with it.
pub(crate) async fn stop_node_server(node_server: &ActorRef<NodeServerMessage>) {
    let bound = Duration::from_millis(SHUTDOWN_TIMEOUT_MS_MAX);
    let mut subtree: Vec<ActorCell> = node_server
        .get_children()
        .into_iter()
        .filter(|child| child.is_message_type_of::<NodeSessionMessage>() == Some(true))
        .collect();
    // Sessions, then their TCP actors and remote-actor proxies, then the TCP readers and writers.
    let mut next = 0;
    while next < subtree.len() {
        let children = subtree[next].get_children();
        subtree.extend(children);
        next += 1;
    }
    for cell in &subtree {
        cell.stop(None);
    }
    let deadline = tokio::time::Instant::now() + bound;
    for cell in &subtree {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if cell.wait(Some(left)).await.is_err() {
            cell.kill();
        }
    }
    if node_server.kill_and_wait(Some(bound)).await.is_err() {
        tracing::warn!("the ractor_cluster node server did not stop within {bound:?}");
    }
}
