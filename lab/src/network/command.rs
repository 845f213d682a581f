//! Running `ip`, `nft` and `tc`, each with a deadline, and the errors of the network layer.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::limits;

/// Why the network layer could not do what it was asked.
///
/// Grouped by what the caller does: skip the scenario (`Unsupported`), report a failed run
/// (`Command`, `Lock`), or fix what it asked for (`Invalid`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    /// This machine cannot run namespaced networks (not Linux, not root, a tool or a kernel
    /// feature missing); scenarios that need them are skipped with this reason.
    #[error("{reason}")]
    Unsupported {
        /// One line that says what is missing.
        reason: String,
    },
    /// A command failed or did not finish in time.
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// Its standard error, or why it did not run.
        detail: String,
    },
    /// A lock or lock file of the network layer could not be used.
    #[error("{path}: {detail}")]
    Lock {
        /// The lock file.
        path: String,
        /// What went wrong.
        detail: String,
    },
    /// A request these nodes cannot meet: a fault with too few nodes or a node in two groups,
    /// a node past the limit.
    #[error("{reason}")]
    Invalid {
        /// What is wrong with it.
        reason: String,
    },
}

impl NetworkError {
    /// An `Invalid` with this reason.
    pub fn invalid(reason: impl Into<String>) -> Self {
        NetworkError::Invalid { reason: reason.into() }
    }
}

/// Runs `program args…` (with `stdin` written to its input, if any) and returns its standard
/// output; fails with its standard error when it exits non-zero or outlives
/// `NETWORK_COMMAND_MS_MAX`.
pub(crate) fn run(
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, NetworkError> {
    let command =
        std::iter::once(program).chain(args.iter().copied()).collect::<Vec<_>>().join(" ");
    let failed = |detail: String| NetworkError::Command { command: command.clone(), detail };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| failed(format!("cannot start {program}: {error}")))?;
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        // The texts are a few kilobytes at most, well under a pipe's buffer, so this cannot
        // block on a child that does not read.
        input.write_all(text.as_bytes()).map_err(|error| failed(format!("stdin: {error}")))?;
    }
    let pid = child.id();
    // `wait_with_output` drains both pipes while it waits, so a chatty child cannot block on a
    // full pipe; it runs on a thread so that this one can keep the deadline.
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    let timeout = Duration::from_millis(limits::NETWORK_COMMAND_MS_MAX);
    let output = match receiver.recv_timeout(timeout) {
        Ok(output) => output.map_err(|error| failed(error.to_string()))?,
        Err(_) => {
            // SAFETY: kill(2) on our own child, which the waiting thread has not reaped yet (it
            // would have sent its output), so the pid still names it.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            return Err(failed(format!("no answer within {timeout:?}; killed")));
        }
    };
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        Err(failed(if stderr.is_empty() { output.status.to_string() } else { stderr }))
    }
}

/// Runs `ip args…`.
pub(crate) fn ip(args: &[&str]) -> Result<String, NetworkError> {
    run("ip", args, None)
}

/// Runs `program args…` inside the network namespace `namespace` (`ip netns exec`).
pub(crate) fn in_namespace(
    namespace: &str,
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, NetworkError> {
    let mut full = vec!["netns", "exec", namespace, program];
    full.extend_from_slice(args);
    run("ip", &full, stdin)
}

/// Whether this machine can build namespaced networks: Linux, root, `ip` and `nft`. The error
/// is one line that says what is missing, for a skip message. (`tc` is only needed by the delay
/// fault and checked when a topology is asked for it.)
pub fn support() -> Result<(), NetworkError> {
    let unsupported = |reason: String| Err(NetworkError::Unsupported { reason });
    if !cfg!(target_os = "linux") {
        return unsupported("network namespaces need Linux".into());
    }
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if uid != 0 {
        return unsupported(format!("network namespaces need root (running as uid {uid})"));
    }
    if run("ip", &["-V"], None).is_err() {
        return unsupported("`ip` (iproute2) is not installed".into());
    }
    if run("nft", &["--version"], None).is_err() {
        return unsupported("`nft` (nftables) is not installed".into());
    }
    Ok(())
}
