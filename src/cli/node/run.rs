//! Running a node as a process: start it, announce it, stop it on a signal.
//!
//! The signal handlers are installed before the node starts, so a SIGTERM that arrives while
//! the node boots is not lost: it stops the node as soon as it is up. The first SIGTERM or
//! SIGINT starts a graceful shutdown bounded by `SHUTDOWN_TIMEOUT_MS_MAX`; a second one ends
//! the process at once, for an operator who does not want to wait. If the node stops on its
//! own (its supervisor gave up), the reason is printed and the process exits with 1.

use std::io::Write;
use std::time::Duration;

use crate::cluster::{BootstrapError, BootstrapHandle, NodeStatus, bootstrap_node};
use crate::limits::SHUTDOWN_TIMEOUT_MS_MAX;
use crate::storage::StorageError;
use crate::{ClusterBootstrapConfig, cli::ExitStatus};

use super::ready::ReadyLine;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), so stdout carries only the ready
/// line. Colours only on a terminal: the lab and the tests keep logs in files.
pub fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Starts the node, prints the ready line, and runs until a signal or until the node stops.
/// Errors are printed to stderr as one line prefixed with `aspen-node: `.
pub async fn run_node(config: ClusterBootstrapConfig) -> ExitStatus {
    let mut signals = match Signals::install() {
        Ok(signals) => signals,
        Err(error) => return fail(ExitStatus::Error, &format!("cannot handle signals: {error}")),
    };
    if config.data_dir.is_none() {
        tracing::warn!("no --data-dir: the node keeps its state in memory and loses it at exit");
    }
    let handle = match bootstrap_node(config).await {
        Ok(handle) => handle,
        Err(error) => {
            let (status, line) = describe_bootstrap_error(&error);
            return fail(status, &line);
        }
    };
    // A reader that went away must not take the node down: `println!` would panic.
    if let Err(error) = writeln!(std::io::stdout(), "{}", ready_line(&handle)) {
        tracing::warn!("could not print the ready line: {error}");
    }
    let stopped_on_its_own = tokio::select! {
        signal = signals.recv() => {
            tracing::info!("{signal} received: shutting down (send it again to exit at once)");
            None
        }
        status = wait_until_stopped(&handle) => Some(status),
    };
    let shutdown = shutdown(handle, &mut signals).await;
    match stopped_on_its_own {
        Some(NodeStatus::Stopped { error: Some(reason) }) => {
            fail(ExitStatus::Error, &format!("the node stopped: {reason}"))
        }
        _ => shutdown,
    }
}

/// The ready line of a running node.
pub fn ready_line(handle: &BootstrapHandle) -> ReadyLine {
    ReadyLine {
        node_id: handle.node_id,
        http_addr: handle.http_addr(),
        endpoint_id: handle.iroh_manager.endpoint_id(),
        ractor_port: handle.ractor_port(),
        endpoint_addr: handle.iroh_manager.node_addr().clone(),
    }
}

/// Stops the node within the bound, or at once on a second signal.
async fn shutdown(handle: BootstrapHandle, signals: &mut Signals) -> ExitStatus {
    let bound = Duration::from_millis(SHUTDOWN_TIMEOUT_MS_MAX);
    tokio::select! {
        result = tokio::time::timeout(bound, handle.shutdown()) => match result {
            Ok(Ok(())) => {
                tracing::info!("node stopped cleanly");
                ExitStatus::Ok
            }
            Ok(Err(error)) => fail(ExitStatus::Error, &format!("unclean shutdown: {error}")),
            Err(_) => fail(
                ExitStatus::Error,
                &format!("shutdown did not finish within {SHUTDOWN_TIMEOUT_MS_MAX} ms"),
            ),
        },
        signal = signals.recv() => {
            fail(ExitStatus::Error, &format!("second {signal}: exiting without a clean shutdown"))
        }
    }
}

/// Waits (without bound: this is the node's whole life) until the node reports `Stopped`.
async fn wait_until_stopped(handle: &BootstrapHandle) -> NodeStatus {
    const CHECK_INTERVAL: Duration = Duration::from_secs(3600);
    loop {
        if let Some(status) = handle.wait_stopped(CHECK_INTERVAL).await {
            return status;
        }
    }
}

fn fail(status: ExitStatus, line: &str) -> ExitStatus {
    eprintln!("aspen-node: {line}");
    status
}

/// The exit status and the one line for a node that could not start. A configuration the
/// node refuses, or a data dir that belongs to another node, is an operator's mistake (2);
/// anything else is a failure of the environment (1).
pub fn describe_bootstrap_error(error: &BootstrapError) -> (ExitStatus, String) {
    let line = |text: String| text.replace('\n', " ");
    match error {
        BootstrapError::Config(config) => (ExitStatus::Usage, line(config.to_string())),
        BootstrapError::Storage(StorageError::NodeIdMismatch { stored, given }) => (
            ExitStatus::Usage,
            format!(
                "the data dir belongs to node {stored}, not to node {given}: start it with \
                 --node-id {stored}, or give node {given} another --data-dir"
            ),
        ),
        other => (ExitStatus::Error, line(format!("cannot start the node: {other}"))),
    }
}

/// SIGTERM and SIGINT as one stream.
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// The name of the next signal received.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_foreign_data_dir_is_a_usage_error_with_advice() {
        let error = BootstrapError::Storage(StorageError::NodeIdMismatch { stored: 1, given: 2 });
        let (status, line) = describe_bootstrap_error(&error);
        assert_eq!(status, ExitStatus::Usage);
        assert!(line.contains("belongs to node 1") && line.contains("--node-id 1"), "{line}");
        let error = BootstrapError::Actor { reason: "boom".into() };
        assert_eq!(describe_bootstrap_error(&error).0, ExitStatus::Error);
    }
}
