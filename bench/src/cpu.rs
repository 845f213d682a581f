//! CPU time of processes, the node processes' (from `/proc/<pid>/stat`) and this one's
//! (`getrusage`), and the node processes' resident memory (`/proc/<pid>/status`).
//!
//! A test reads the user + system time of every node process before and after its timed phase;
//! the difference divided by the operation count is the CPU one operation costs the whole
//! cluster (the "µs of CPU per put across the 3 members"). On a 2-core machine the
//! benchmark's own CPU competes with the nodes', so it is reported too.
//!
//! Caveats:
//! - `/proc` counts in clock ticks (usually 10 ms), so a test needs a few seconds of work for
//!   the figure to mean anything; 20,000 operations are plenty.
//! - Linux only. Elsewhere the figures are absent, never invented.
//! - A process that exits during the test (the failover test kills one) takes its CPU time with
//!   it; such a test reports no node CPU figure.

use std::path::Path;

use crate::limits::SMALL_FILE_BYTES_MAX;

/// User + system CPU seconds the process `pid` has used so far, from `/proc/<pid>/stat`.
pub fn process_cpu_seconds(pid: i32) -> Result<f64, String> {
    let path = format!("/proc/{pid}/stat");
    let text = read_small(Path::new(&path))?;
    let ticks = parse_stat_ticks(&text).ok_or_else(|| format!("{path}: unexpected format"))?;
    Ok(ticks as f64 / clock_ticks_per_second())
}

/// The sum of [`process_cpu_seconds`] over `pids`; `None` if there are no pids or one of them
/// cannot be read (a process that is gone).
pub fn processes_cpu_seconds(pids: &[i32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|pid| process_cpu_seconds(*pid).ok()).sum()
}

/// Resident memory of the process `pid` in bytes (`VmRSS` of `/proc/<pid>/status`).
pub fn process_rss_bytes(pid: i32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let text = read_small(Path::new(&path))?;
    let kib = text
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .ok_or_else(|| format!("{path}: no VmRSS"))?;
    Ok(kib * 1024)
}

/// User + system CPU seconds this process has used so far.
pub fn own_cpu_seconds() -> f64 {
    // SAFETY: getrusage(2) writes into the zeroed struct we own; RUSAGE_SELF is always valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line, in clock ticks. The command
/// name (field 2) is in parentheses and may itself contain spaces and parentheses, so the
/// fields are counted from the last `)`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // After the name, field 3 (state) comes first: utime is the 12th field from here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf(3) has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// Reads a small file (from `/proc` or a cluster dir), refusing anything over
/// `SMALL_FILE_BYTES_MAX`.
pub fn read_small(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut text = String::new();
    file.take(SMALL_FILE_BYTES_MAX)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "4242 (aspen (node) x) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 75 0 0 20 0 \
                    9 0 1000 2000000 500 18446744073709551615";
        assert_eq!(parse_stat_ticks(line), Some(325));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        let pid = std::process::id() as i32;
        let mut spin = 0u64;
        for i in 0..5_000_000u64 {
            spin = spin.wrapping_mul(31).wrapping_add(i);
        }
        assert!(spin != 1, "keep the loop");
        assert!(process_cpu_seconds(pid).unwrap() >= 0.0);
        assert!(own_cpu_seconds() > 0.0);
        assert!(process_rss_bytes(pid).unwrap() > 1024 * 1024);
        assert_eq!(processes_cpu_seconds(&[]), None);
    }
}
