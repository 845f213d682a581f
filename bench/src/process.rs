//! Node processes the benchmark did not start: find them, SIGKILL one, start it again.
//!
//! The failover test kills the leader's `aspen-node` process and restarts it the way it was
//! started. Before the kill it reads the process's executable, arguments and working directory
//! from `/proc/<pid>`, so a node started by `scripts/bench.sh`, by hand or by any other tool
//! comes back with the same data dir and ports, without the benchmark having to know its
//! flags. The restarted process is not waited for: it belongs to the cluster, and outlives the
//! benchmark (its pid is reported, and written to the cluster dir if there is one).
//!
//! Caveats:
//! - Linux only (`/proc`).
//! - A pid is only ever signalled after checking that its executable is named `aspen-node`, so
//!   a stale pid file that now names another process is refused, not killed.
//! - The restarted node inherits the benchmark's environment, not the original one's.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cpu::read_small;

/// The executable every signalled process must have.
pub const NODE_EXECUTABLE: &str = "aspen-node";

/// How to start a node process again.
#[derive(Debug, Clone, PartialEq)]
pub struct Relaunch {
    /// The executable.
    pub exe: PathBuf,
    /// Its arguments (without argv[0]).
    pub args: Vec<OsString>,
    /// Its working directory.
    pub cwd: PathBuf,
}

impl Relaunch {
    /// Reads how `pid` was started, and checks that it is an `aspen-node`.
    pub fn capture(pid: i32) -> Result<Self, String> {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
            .map_err(|e| format!("process {pid}: cannot read its executable: {e}"))?;
        // A binary rebuilt while the node ran shows as "path (deleted)"; the new one is at path.
        let exe_text = exe.to_string_lossy();
        let exe = PathBuf::from(exe_text.strip_suffix(" (deleted)").unwrap_or(&exe_text));
        let name = exe.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name != NODE_EXECUTABLE {
            return Err(format!(
                "process {pid} runs {}, not {NODE_EXECUTABLE}: refusing to signal it",
                exe.display()
            ));
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map_err(|e| format!("process {pid}: cannot read its arguments: {e}"))?;
        let args = split_cmdline(&cmdline).into_iter().skip(1).collect();
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"))
            .map_err(|e| format!("process {pid}: cannot read its working directory: {e}"))?;
        Ok(Self { exe, args, cwd })
    }

    /// Starts the process again, appending its stdout and stderr to `log` (or discarding
    /// them), and returns its pid.
    pub fn spawn(&self, log: Option<&Path>) -> Result<u32, String> {
        let output = |log: Option<&Path>| -> Result<Stdio, String> {
            let Some(path) = log else { return Ok(Stdio::null()) };
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(Stdio::from(file))
        };
        let child = Command::new(&self.exe)
            .args(&self.args)
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(output(log)?)
            .stderr(output(log)?)
            .spawn()
            .map_err(|e| format!("restart {}: {e}", self.exe.display()))?;
        Ok(child.id())
    }

    /// The `--node-id` among the arguments, if given there.
    pub fn node_id(&self) -> Option<u64> {
        let args: Vec<String> =
            self.args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        args.iter().enumerate().find_map(|(i, arg)| match arg.strip_prefix("--node-id") {
            Some(rest) if rest.starts_with('=') => rest[1..].parse().ok(),
            Some("") => args.get(i + 1)?.parse().ok(),
            _ => None,
        })
    }
}

fn split_cmdline(cmdline: &[u8]) -> Vec<OsString> {
    cmdline
        .split(|b| *b == 0)
        .filter(|part| !part.is_empty())
        .map(|part| OsString::from_vec(part.to_vec()))
        .collect()
}

/// SIGKILL to `pid`, after checking that it is an `aspen-node`.
pub fn kill9(pid: i32) -> Result<(), String> {
    Relaunch::capture(pid)?;
    // SAFETY: kill(2) has no memory effects; the pid was just checked to be an aspen-node.
    let result = unsafe { libc::kill(pid, libc::SIGKILL) };
    if result != 0 {
        return Err(format!("kill -9 {pid}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Waits up to `timeout` for `pid` to be gone or a zombie (its sockets are closed then).
pub fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let stat = read_small(Path::new(&format!("/proc/{pid}/stat")));
        let gone = match &stat {
            Err(_) => true,
            Ok(text) => {
                text.rfind(')').is_some_and(|at| text[at + 1..].trim_start().starts_with('Z'))
            }
        };
        if gone {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_found_in_either_flag_form() {
        let relaunch = |args: &[&str]| Relaunch {
            exe: "aspen-node".into(),
            args: args.iter().map(OsString::from).collect(),
            cwd: "/".into(),
        };
        assert_eq!(relaunch(&["--node-id=3", "--data-dir=x"]).node_id(), Some(3));
        assert_eq!(relaunch(&["--data-dir", "x", "--node-id", "2"]).node_id(), Some(2));
        assert_eq!(relaunch(&["--data-dir", "x"]).node_id(), None);
        assert_eq!(split_cmdline(b"a\0--b\0c\0"), vec!["a", "--b", "c"]);
    }

    #[test]
    fn a_process_that_is_not_a_node_is_never_signalled() {
        let error = kill9(std::process::id() as i32).unwrap_err();
        assert!(error.contains("refusing to signal"), "{error}");
    }
}
