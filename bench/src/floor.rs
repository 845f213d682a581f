//! The machine's floor: what one durable append and one loopback round trip cost here.
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
//!
//! Caveats:
//! - The floor is a lower bound, not a model: it leaves out serialization, scheduling and the
//!   HTTP hop from the benchmark to the node (a TCP loopback round trip, close to the UDP one).

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::limits::{
    FLOOR_APPEND_BYTES, FLOOR_DURATION_MS_MAX, FLOOR_FILE_BYTES_MAX, FLOOR_UDP_TIMEOUT_MS,
};
use crate::stats::{LatencySummary, nanos};

/// Both floor figures of a run, as medians in milliseconds.
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
}
