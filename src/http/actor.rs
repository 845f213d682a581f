//! The HttpActor: brings the node's HTTP server up under the NodeSupervisor.
//!
//! It binds in `pre_start`, so that a port already taken fails the node's start (or the
//! restart) with the reason, and it fails when the server ends on its own, so that its
//! supervisor starts it again on the same address. The server itself lives in the node's
//! [`HttpServerSlot`]: a new instance of the actor replaces what an earlier one left there, and
//! the node's `BootstrapHandle::shutdown` stops it after every actor is down. That is why there
//! is no `post_stop` here: when the supervisor gives up and stops its children, the server stays
//! up to answer `/health` with 503 and the reason until the node is shut down.

use std::net::SocketAddr;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster::RactorMessage;

use super::routes::router;
use super::server::HttpServerSlot;
use super::state::HttpState;

/// Messages the HttpActor handles.
#[derive(RactorMessage)]
pub enum HttpActorMessage {
    /// The server ended without being asked to (its accept loop gave up); the actor fails so
    /// that its supervisor restarts it, which binds again.
    ServerExited {
        /// Why it ended.
        reason: String,
    },
}

/// What the HttpActor starts from.
#[derive(Clone)]
pub struct HttpActorArgs {
    /// The configured listen address (`config.http_addr`; port 0 lets the OS choose).
    pub listen_addr: SocketAddr,
    /// What the handlers read.
    pub state: HttpState,
    /// Where the running server is kept.
    pub server: HttpServerSlot,
}

/// The HttpActor.
pub struct HttpActor;

impl Actor for HttpActor {
    type Msg = HttpActorMessage;
    type State = HttpActorArgs;
    type Arguments = HttpActorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: HttpActorArgs,
    ) -> Result<HttpActorArgs, ActorProcessingErr> {
        let on_exit = move |reason| {
            // An actor that is gone has been replaced, and its replacement serves.
            let _ = myself.cast(HttpActorMessage::ServerExited { reason });
        };
        let app = router(args.state.clone());
        let addr = args.server.local_addr().unwrap_or(args.listen_addr);
        args.server
            .start(args.listen_addr, app, on_exit)
            .await
            .map_err(|error| format!("cannot listen for HTTP on {addr}: {error}"))?;
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        _state: &mut HttpActorArgs,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            HttpActorMessage::ServerExited { reason } => on_server_exited(reason),
        }
    }
}

fn on_server_exited(reason: String) -> Result<(), ActorProcessingErr> {
    Err(format!("the HTTP server stopped on its own: {reason}").into())
}
