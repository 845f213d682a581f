//! The machine's floor: what one durable append, one durable redb commit and one loopback round
//! trip cost here.
//!
//! A replicated write cannot be faster than one fsync on the leader plus one network round trip
//! to a follower (whose own fsync overlaps the leader's in the best case), and a linearizable
//! read not faster than one round trip (ReadIndex asks a majority). Measuring both in the same
//! run, on the same disk and the same loaded CPUs as the cluster, lets a result be stated as a
//! multiple of the floor, which compares across machines far better than milliseconds do.
//!
//! - fsync: append [`FLOOR_APPEND_BYTES`] to a file in the given directory and `fdatasync` it
//!   (`File::sync_data`), the way a log appends; the file grows, as a log does.
//! - UDP: send 64 bytes to an echo thread on loopback and wait for them to come back (iroh's
//!   QUIC runs over UDP).
//! - redb: commit one [`FLOOR_REDB_VALUE_BYTES`] value under a new `u64` key, durably, in a
//!   fresh database in the given directory: what one Raft log batch costs a node, since the
//!   node's log lives in redb and a durable commit writes several pages and fsyncs. Its wall
//!   latency and this process's CPU per commit are both reported.
//!
//! Caveats:
//! - The floor is a lower bound, not a model: it leaves out serialization, scheduling and the
//!   HTTP hop from the benchmark to the node (a TCP loopback round trip, close to the UDP one).
//! - The write floor ([`Floor::write_ms`]) stays one fsync and one round trip; the redb commit
//!   is reported beside it, not added to it, so that ratios stay comparable with earlier runs.
//! - The redb CPU figure is the whole process's (`getrusage`), so it is only the commits' own
//!   while nothing else in the process works; during `floor` nothing else does.
//! - The redb database is small and fresh, and a node's has its state machine and a longer log
//!   in it; a deeper B-tree writes a few more pages per commit.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use redb::{Database, TableDefinition};

use crate::cpu::own_cpu_seconds;
use crate::limits::{
    FLOOR_APPEND_BYTES, FLOOR_DURATION_MS_MAX, FLOOR_FILE_BYTES_MAX, FLOOR_REDB_KEYS_MAX,
    FLOOR_REDB_VALUE_BYTES, FLOOR_UDP_TIMEOUT_MS,
};
use crate::stats::{LatencySummary, nanos};

/// The one table of the redb floor's database, keyed as the node's log is (by a `u64` index).
const FLOOR_TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("floor");

/// The floor figures the other tests compare with, as medians in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Floor {
    /// p50 of a 4 KiB append + fdatasync.
    pub fsync_ms: f64,
    /// p50 of a loopback UDP round trip.
    pub udp_ms: f64,
}

impl Floor {
    /// The least a replicated write can take: one fsync and one round trip.
    pub fn write_ms(&self) -> f64 {
        self.fsync_ms + self.udp_ms
    }

    /// The least a linearizable read can take: one round trip.
    pub fn read_ms(&self) -> f64 {
        self.udp_ms
    }
}

/// `samples` appends of 4 KiB, each followed by fdatasync, in a fresh file in `dir` (removed
/// afterwards), and the time they took. Stops early after `FLOOR_DURATION_MS_MAX`.
pub fn measure_fsync(dir: &Path, samples: u64) -> std::io::Result<(LatencySummary, Duration)> {
    let path = dir.join(format!(".aspen-bench-floor-{}", std::process::id()));
    let started = Instant::now();
    let result = fsync_samples(&path, samples);
    let elapsed = started.elapsed();
    let _ = std::fs::remove_file(&path);
    let mut latencies = result?;
    Ok((LatencySummary::from_nanos(&mut latencies), elapsed))
}

fn fsync_samples(path: &Path, samples: u64) -> std::io::Result<Vec<u64>> {
    let mut file: File = OpenOptions::new().create_new(true).read(true).write(true).open(path)?;
    let block = vec![0xA5u8; FLOOR_APPEND_BYTES];
    let deadline = Instant::now() + Duration::from_millis(FLOOR_DURATION_MS_MAX);
    let mut latencies = Vec::with_capacity(samples as usize);
    let mut length = 0u64;
    for _ in 0..samples {
        if Instant::now() >= deadline {
            break;
        }
        if length + FLOOR_APPEND_BYTES as u64 > FLOOR_FILE_BYTES_MAX {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            file.sync_all()?;
            length = 0;
        }
        let begin = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        latencies.push(nanos(begin.elapsed()));
        length += FLOOR_APPEND_BYTES as u64;
    }
    Ok(latencies)
}

/// What the redb floor measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RedbFloor {
    /// Wall latency of each write transaction, from `begin_write` to the end of `commit`.
    pub latencies: LatencySummary,
    /// Wall time of the whole loop.
    pub elapsed: Duration,
    /// User + system CPU seconds this process used over the loop, divided by the commits.
    pub cpu_s_per_commit: f64,
}

/// `samples` durable redb commits of one value each, in a fresh database in a temp dir inside
/// `dir` (removed afterwards, also on an error), and what they cost. Stops early after
/// `FLOOR_DURATION_MS_MAX`.
pub fn measure_redb(dir: &Path, samples: u64) -> std::io::Result<RedbFloor> {
    let temp_dir = dir.join(format!(".aspen-bench-floor-redb-{}", std::process::id()));
    std::fs::create_dir(&temp_dir)?;
    let result = redb_samples(&temp_dir.join("floor.redb"), samples);
    let removed = std::fs::remove_dir_all(&temp_dir);
    let floor = result.map_err(std::io::Error::other)?;
    // A measurement that leaves its database behind says so rather than filling the disk
    // silently over repeated runs.
    removed?;
    Ok(floor)
}

fn redb_samples(path: &Path, samples: u64) -> Result<RedbFloor, redb::Error> {
    let database = Database::create(path)?;
    // The table exists before the first timed commit, as the node's log table does.
    let setup = database.begin_write()?;
    setup.open_table(FLOOR_TABLE)?;
    setup.commit()?;
    let value = vec![0xA5u8; FLOOR_REDB_VALUE_BYTES];
    let deadline = Instant::now() + Duration::from_millis(FLOOR_DURATION_MS_MAX);
    let mut latencies = Vec::with_capacity(samples as usize);
    let cpu_before = own_cpu_seconds();
    let started = Instant::now();
    for index in 0..samples {
        if Instant::now() >= deadline {
            break;
        }
        let begin = Instant::now();
        // The default durability is `Durability::Immediate`, as for the node's log appends.
        let transaction = database.begin_write()?;
        transaction
            .open_table(FLOOR_TABLE)?
            .insert(index % FLOOR_REDB_KEYS_MAX, value.as_slice())?;
        transaction.commit()?;
        latencies.push(nanos(begin.elapsed()));
    }
    let elapsed = started.elapsed();
    let cpu_s = own_cpu_seconds() - cpu_before;
    let cpu_s_per_commit = cpu_s / latencies.len().max(1) as f64;
    let latencies = LatencySummary::from_nanos(&mut latencies);
    Ok(RedbFloor { latencies, elapsed, cpu_s_per_commit })
}

/// `samples` round trips of 64 bytes to an echo thread on 127.0.0.1, and the time they took.
/// Stops early after `FLOOR_DURATION_MS_MAX`; a datagram lost for `FLOOR_UDP_TIMEOUT_MS` ends
/// the measurement with an error.
pub fn measure_udp(samples: u64) -> std::io::Result<(LatencySummary, Duration)> {
    let echo = UdpSocket::bind("127.0.0.1:0")?;
    let client = UdpSocket::bind("127.0.0.1:0")?;
    let timeout = Some(Duration::from_millis(FLOOR_UDP_TIMEOUT_MS));
    echo.set_read_timeout(timeout)?;
    client.set_read_timeout(timeout)?;
    client.connect(echo.local_addr()?)?;
    let echo_thread = std::thread::spawn(move || {
        let mut buffer = [0u8; 64];
        // Bounded by the client's datagrams: ends on the empty datagram the client sends when
        // it is done, or on the first read timeout if that one is lost.
        while let Ok((size, from)) = echo.recv_from(&mut buffer) {
            if size == 0 || echo.send_to(&buffer[..size], from).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_millis(FLOOR_DURATION_MS_MAX);
    let payload = [7u8; 64];
    let mut answer = [0u8; 64];
    let mut latencies = Vec::with_capacity(samples as usize);
    let mut result = Ok(());
    let started = Instant::now();
    for _ in 0..samples {
        if Instant::now() >= deadline {
            break;
        }
        let begin = Instant::now();
        if let Err(error) = client.send(&payload).and_then(|_| client.recv(&mut answer)) {
            result = Err(error);
            break;
        }
        latencies.push(nanos(begin.elapsed()));
    }
    let elapsed = started.elapsed();
    let _ = client.send(&[]);
    let _ = echo_thread.join();
    result?;
    Ok((LatencySummary::from_nanos(&mut latencies), elapsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_floors_measure_something_and_leave_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let (fsync, elapsed) = measure_fsync(dir.path(), 20).unwrap();
        assert!(elapsed.as_secs_f64() * 1000.0 >= fsync.p50_ms * 10.0);
        assert_eq!(fsync.count, 20);
        assert!(fsync.p50_ms > 0.0 && fsync.max_ms >= fsync.p50_ms);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the file is removed");
        let (udp, _) = measure_udp(200).unwrap();
        assert_eq!(udp.count, 200);
        assert!(udp.p50_ms > 0.0 && udp.p50_ms < 1000.0);
        let floor = Floor { fsync_ms: fsync.p50_ms, udp_ms: udp.p50_ms };
        assert!(floor.write_ms() > floor.read_ms());
    }

    #[test]
    fn the_redb_floor_commits_every_sample_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let redb = measure_redb(dir.path(), 20).unwrap();
        assert_eq!(redb.latencies.count, 20);
        let latencies = redb.latencies;
        assert!(latencies.p50_ms > 0.0 && latencies.max_ms >= latencies.p50_ms, "{latencies:?}");
        assert!(redb.elapsed.as_secs_f64() * 1000.0 >= latencies.p50_ms * 10.0);
        assert!(redb.cpu_s_per_commit > 0.0, "a commit costs some CPU: {redb:?}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the database is removed");
    }

    #[test]
    fn the_redb_floor_fails_in_a_missing_dir() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        assert!(measure_redb(&missing, 5).is_err());
        assert!(!missing.exists(), "nothing is created");
    }
}
