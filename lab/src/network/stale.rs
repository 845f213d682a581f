//! Who owns a set of namespaces, removing a set, and finding the sets of dead runs.
//!
//! A run holds an exclusive `flock` on `/run/aspen-lab/netns-<id>.lock` for as long as its
//! topology lives. The kernel drops the lock when the process dies, however it dies (`kill -9`
//! included), so [`cleanup_stale`] tells a live run's set from a dead one's by trying to take
//! the lock: it removes only the sets whose lock it gets. Lock files are opened close-on-exec,
//! so node processes started inside the namespaces do not inherit, and keep, the lock.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::command::{NetworkError, ip};
use super::names::{NAME_PREFIX, RunId};
use crate::limits;

/// Where lock files live: `/run` is a tmpfs, emptied at boot like the namespaces themselves.
const LOCK_DIR: &str = "/run/aspen-lab";

/// The lock that serializes subnet choice between runs on one machine.
const ALLOCATION_LOCK: &str = "subnet.lock";

/// How often a run waiting for the allocation lock tries again.
const LOCK_RETRY: Duration = Duration::from_millis(20);

/// Run ids of this process whose sets are not torn down yet, for [`teardown_all`].
static LIVE: Mutex<BTreeSet<RunId>> = Mutex::new(BTreeSet::new());

/// An exclusive `flock` on a lock file, released when dropped.
#[derive(Debug)]
pub(crate) struct FileLock {
    /// Kept open: closing the file releases the lock.
    _file: File,
    path: PathBuf,
}

impl FileLock {
    /// Takes the lock on `name` in the lock directory if it is free; `None` if another open
    /// file (another process, or this one) holds it.
    fn try_take(name: &str) -> Result<Option<FileLock>, NetworkError> {
        let path = Path::new(LOCK_DIR).join(name);
        let error =
            |detail: String| NetworkError::Lock { path: path.display().to_string(), detail };
        std::fs::create_dir_all(LOCK_DIR).map_err(|e| error(e.to_string()))?;
        // std opens files close-on-exec.
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| error(e.to_string()))?;
        // SAFETY: flock(2) on a file descriptor this function owns.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if locked {
            return Ok(Some(FileLock { _file: file, path }));
        }
        match std::io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(None),
            e => Err(error(e.to_string())),
        }
    }

    /// The lock of run `id`, which must be free: run ids are unique among live processes.
    pub(crate) fn owner(id: &RunId) -> Result<FileLock, NetworkError> {
        let name = owner_lock_name(id);
        FileLock::try_take(&name)?.ok_or_else(|| NetworkError::Lock {
            path: format!("{LOCK_DIR}/{name}"),
            detail: "held by another process".into(),
        })
    }

    /// The allocation lock, waiting up to `NETWORK_LOCK_WAIT_MS_MAX` for another run to finish
    /// choosing its subnet.
    pub(crate) fn allocation() -> Result<FileLock, NetworkError> {
        let deadline = Instant::now() + Duration::from_millis(limits::NETWORK_LOCK_WAIT_MS_MAX);
        loop {
            if let Some(lock) = FileLock::try_take(ALLOCATION_LOCK)? {
                return Ok(lock);
            }
            if Instant::now() >= deadline {
                return Err(NetworkError::Lock {
                    path: format!("{LOCK_DIR}/{ALLOCATION_LOCK}"),
                    detail: "still held by another run after the wait limit".into(),
                });
            }
            std::thread::sleep(LOCK_RETRY);
        }
    }

    /// Deletes the lock file, then releases the lock. Deleting first means no other process can
    /// take the lock on a file that is about to disappear.
    pub(crate) fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn owner_lock_name(id: &RunId) -> String {
    format!("netns-{id}.lock")
}

/// Records that this process owns the set of `id`.
pub(crate) fn register(id: &RunId) {
    LIVE.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone());
}

/// Records that the set of `id` is gone.
pub(crate) fn unregister(id: &RunId) {
    LIVE.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
}

/// The namespaces on this machine whose names start with `prefix`.
fn namespaces_with(prefix: &str) -> Result<Vec<String>, NetworkError> {
    // `ip netns list` prints `name` or `name (id: 3)`, one per line.
    let list = ip(&["netns", "list"])?;
    let names = list.lines().filter_map(|line| line.split_whitespace().next());
    Ok(names.filter(|name| name.starts_with(prefix)).map(str::to_string).collect())
}

/// The names of the host's interfaces that start with `prefix`.
fn host_links_with(prefix: &str) -> Result<Vec<String>, NetworkError> {
    // `ip -o link show` prints `5: aspl-0012ab03@if3: <...> ...`, one link per line.
    let list = ip(&["-o", "link", "show"])?;
    let names = list.lines().filter_map(|line| line.split_whitespace().nth(1));
    let names = names.map(|name| name.trim_end_matches(':').split('@').next().unwrap_or(name));
    Ok(names.filter(|name| name.starts_with(prefix)).map(str::to_string).collect())
}

/// Removes every namespace and the host interface of run `id`, killing any process still
/// inside its namespaces. Tries everything and returns the problems met; what is already gone
/// is not a problem.
pub(crate) fn remove_set(id: &RunId) -> Vec<NetworkError> {
    let mut errors = Vec::new();
    let namespaces = namespaces_with(&id.namespace_prefix()).unwrap_or_else(|error| {
        errors.push(error);
        Vec::new()
    });
    for namespace in &namespaces {
        kill_processes_in(namespace, &mut errors);
    }
    // Deleting the host's end deletes its peer in the lab namespace at once; namespaces go
    // away asynchronously, and the host's end with them only later.
    match host_links_with(&id.host_link()) {
        Ok(links) if links.contains(&id.host_link()) => {
            errors.extend(ip(&["link", "del", &id.host_link()]).err());
        }
        Ok(_) => {}
        Err(error) => errors.push(error),
    }
    for namespace in &namespaces {
        errors.extend(ip(&["netns", "del", namespace]).err());
    }
    errors
}

/// Kills (SIGKILL) every process in `namespace` but this one: the nodes of a run that ends.
fn kill_processes_in(namespace: &str, errors: &mut Vec<NetworkError>) {
    let pids = match ip(&["netns", "pids", namespace]) {
        Ok(pids) => pids,
        Err(error) => return errors.push(error),
    };
    let me = std::process::id() as i32;
    for pid in pids.lines().filter_map(|line| line.trim().parse::<i32>().ok()) {
        if pid != me {
            // SAFETY: kill(2) has no memory-safety preconditions; the pid was read from the
            // namespace just now, and a process of a removed namespace must not outlive it.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// The run ids that have a namespace, a host interface or a lock file on this machine.
fn run_ids_on_machine() -> Result<BTreeSet<RunId>, NetworkError> {
    let mut ids = BTreeSet::new();
    let names = namespaces_with(NAME_PREFIX)?.into_iter().chain(host_links_with(NAME_PREFIX)?);
    ids.extend(names.filter_map(|name| RunId::of_name(&name)));
    if let Ok(entries) = std::fs::read_dir(LOCK_DIR) {
        let files = entries.filter_map(|entry| entry.ok()?.file_name().into_string().ok());
        let lock_ids = files.filter_map(|file| {
            let id = file.strip_prefix("netns-")?.strip_suffix(".lock")?;
            RunId::of_name(&format!("{NAME_PREFIX}{id}"))
        });
        ids.extend(lock_ids);
    }
    Ok(ids)
}

/// Removes the namespaces, host interface and lock file of every run on this machine whose
/// process is gone (a run killed before it could clean up), and returns their ids. Sets of live
/// runs, in this process or another, are left alone.
pub fn cleanup_stale() -> Result<Vec<RunId>, NetworkError> {
    let mut removed = Vec::new();
    let mut errors = Vec::new();
    for id in run_ids_on_machine()? {
        let Some(lock) = FileLock::try_take(&owner_lock_name(&id))? else { continue };
        let problems = remove_set(&id);
        if problems.is_empty() {
            lock.remove();
            removed.push(id);
        } else {
            errors.extend(problems);
        }
    }
    match errors.into_iter().next() {
        Some(error) => Err(error),
        None => Ok(removed),
    }
}

/// Removes every set this process still owns: for Ctrl-C and other abrupt ends, when the
/// topologies' own teardown may not run. Returns the problems met. The topologies' later
/// teardown then finds nothing left to do.
pub fn teardown_all() -> Vec<NetworkError> {
    let ids: Vec<RunId> = LIVE.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect();
    let mut errors = Vec::new();
    for id in ids {
        let problems = remove_set(&id);
        if problems.is_empty() {
            unregister(&id);
        }
        errors.extend(problems);
    }
    errors
}
