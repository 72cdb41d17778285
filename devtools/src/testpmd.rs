//! The replay benchmark's I/O floor: DPDK's own `testpmd` forwarding the
//! same capture in `io` mode (received, sent, nothing looked at) from
//! `net_pcap` (`infinite_rx=1`) to `net_null`, on the core the switches'
//! workers use, without hugepages. What a switch costs above this is its
//! switching cost.
//!
//! Debian's `dpdk-dev` ships it as `dpdk-testpmd` (`VSWITCH_BENCH_TESTPMD`
//! overrides); DPDK needs root.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Debian's binary.
pub const DEFAULT_BINARY: &str = "/usr/bin/dpdk-testpmd";

/// coreutils' `stdbuf`.
const STDBUF: &str = "/usr/bin/stdbuf";

#[derive(Debug, thiserror::Error)]
pub enum TestpmdError {
    #[error("dpdk-testpmd is not installed (or not root)")]
    NotInstalled,
    #[error("running {bin}: {source}")]
    Spawn {
        bin: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("dpdk-testpmd reported no forwarding rate; its output:\n{0}")]
    NoRate(String),
}

/// The testpmd binary to run, if installed and we are root.
pub fn binary() -> Option<PathBuf> {
    crate::shipped::installed("VSWITCH_BENCH_TESTPMD", DEFAULT_BINARY)
        .filter(|_| Path::new(STDBUF).exists())
}

/// Forwards `pcap` (of `frames` frames) for `seconds` after settling, on
/// `core` (the main lcore is `main_core`); returns the rate out
/// of the `net_null` port, in Mpps.
pub fn io_floor(
    bin: &Path,
    pcap: &Path,
    frames: usize,
    main_core: usize,
    core: usize,
    seconds: f64,
) -> Result<f64, TestpmdError> {
    let (mbufs, mem_mb) = capture_pool(frames, 0);
    let cores = if main_core == core {
        format!("{core}")
    } else {
        format!("{main_core},{core}")
    };
    // Line-buffered (coreutils' stdbuf): testpmd re-raises SIGINT after
    // its totals, which would lose a pipe's buffer; the periodic blocks are
    // what is read.
    let mut child = Command::new(STDBUF)
        .arg("-oL")
        .arg(bin)
        .args([
            "--no-huge",
            "--no-shconf",
            "--no-pci",
            "--no-telemetry",
            "-m",
            &mem_mb.to_string(),
            "-l",
            &cores,
            "--log-level",
            "error",
            &format!("--vdev=net_pcap0,rx_pcap={},infinite_rx=1", pcap.display()),
            "--vdev=net_null0,no-rx=1",
            "--",
            "--forward-mode=io",
            "--auto-start",
            "--stats-period",
            "1",
            &format!("--total-num-mbufs={mbufs}"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| TestpmdError::Spawn {
            bin: bin.to_path_buf(),
            source,
        })?;
    // testpmd loads the capture, then reports a rate each second (the
    // first report has no rate yet).
    std::thread::sleep(Duration::from_secs_f64(2.5 + seconds.max(1.0)));
    // SIGINT: testpmd stops forwarding, prints its totals and exits.
    let _ = vswitch::os::send_signal(child.id(), libc::SIGINT);
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    let _ = child.wait();
    rate_of(&out).ok_or(TestpmdError::NoRate(out))
}

/// The mbufs and the EAL memory (MiB, no hugepages) for a `net_pcap`
/// capture of `frames` frames held in mbufs (`infinite_rx`) with room for
/// the rings, plus `other_mbufs` for other ports' pools.
pub fn capture_pool(frames: usize, other_mbufs: usize) -> (usize, usize) {
    let mbufs = frames + 16_384;
    (mbufs, 256 + (mbufs + other_mbufs) * 2_300 / (1 << 20))
}

/// The highest transmit rate port 1 (`net_null`) reported in a periodic
/// statistics block, in Mpps (the settling second reports less).
fn rate_of(out: &str) -> Option<f64> {
    let mut port = None;
    let mut best: Option<f64> = None;
    for l in out.lines() {
        if let Some(rest) = l.split("NIC statistics for port").nth(1) {
            port = rest
                .split_whitespace()
                .next()
                .and_then(|p| p.parse::<u32>().ok());
        }
        if port == Some(1) {
            if let Some(v) = l.trim().strip_prefix("Tx-pps:") {
                let pps: f64 = v.split_whitespace().next()?.parse().ok()?;
                best = Some(best.map_or(pps, |b: f64| b.max(pps)));
            }
        }
    }
    best.filter(|&b| b > 0.0).map(|b| b / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_the_null_ports_best_transmit_rate() {
        let out = "  ######################## NIC statistics for port 0  ########################\n  Rx-pps:     42781392          Rx-bps:  20535068536\n  Tx-pps:            0          Tx-bps:            0\n  ######################## NIC statistics for port 1  ########################\n  Rx-pps:            0          Rx-bps:            0\n  Tx-pps:     30000000          Tx-bps:  1\n  ######################## NIC statistics for port 1  ########################\n  Tx-pps:     33400000          Tx-bps:  1\n";
        assert_eq!(rate_of(out), Some(33.4));
        assert_eq!(rate_of("nothing"), None);
    }
}
