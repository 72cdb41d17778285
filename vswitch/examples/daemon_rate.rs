//! Packet rate of one daemon worker: vm1 -> vm2 on compute1 (same network,
//! same host), vm1's port replaying a capture from memory in a loop, vm2's
//! port an in-memory ring drained by this thread. Prints Mpps and the
//! worker's busy ns and cycles per packet (from pmd-stats).
//!
//! `cargo run --release -p vswitch --example daemon_rate [SECONDS]`

#[path = "../tests/frames/mod.rs"]
mod frames;

use pcap_file::pcap::{PcapPacket, PcapWriter};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use vswitch::config::DaemonConfig;
use vswitch::daemon::Daemon;

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let dir = std::env::temp_dir().join(format!("vswitch-rate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let input = dir.join("vm1.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&input).expect("pcap")).expect("writer");
    // 64 flows, 64-byte frames.
    for i in 0..64u64 {
        let f = frames::vm1_to_vm2_udp(1000 + i as u16, 53, 18);
        w.write_packet(&PcapPacket::new(Duration::ZERO, f.len() as u32, &f))
            .expect("write");
    }
    drop(w);
    let topo =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/topologies/spec-example.toml");
    let text = format!(
        "host = \"compute1\"\ntopology = \"{}\"\nidle_sleep_us = 0\n[[workers]]\n\
         [[ports]]\nname = \"qvo-vm1\"\nbackend = \"pcap\"\nrx = \"{}\"\nlooped = true\n\
         [[ports]]\nname = \"qvo-vm2\"\nbackend = \"ring\"\ndepth = 65536\n",
        topo.display(),
        input.display()
    );
    let cfg: DaemonConfig = toml::from_str(&text).expect("config");
    let d = Daemon::start(&cfg).expect("daemon");
    let vm2 = d.ring("qvo-vm2").expect("ring");
    std::thread::sleep(Duration::from_millis(300));
    let read = |d: &Daemon| {
        let r = d.shared.reports[0].lock().expect("report").clone();
        (r.rx_packets, r.busy_ns, r.busy_cycles)
    };
    let (rx0, ns0, cy0) = read(&d);
    let t0 = Instant::now();
    let mut delivered = 0usize;
    while t0.elapsed().as_secs_f64() < secs {
        delivered += vm2.collect().len();
        std::thread::sleep(Duration::from_millis(1));
    }
    let (rx1, ns1, cy1) = read(&d);
    let el = t0.elapsed().as_secs_f64();
    d.stop();
    let _ = std::fs::remove_dir_all(&dir);
    let n = (rx1 - rx0) as f64;
    println!(
        "daemon worker, vm1 -> vm2 (64 B, 64 flows): {:.2} Mpps received, {:.2} Mpps delivered, busy {:.1} ns/packet, {:.1} cycles/packet",
        n / el / 1e6,
        delivered as f64 / el / 1e6,
        (ns1 - ns0) as f64 / n,
        (cy1 - cy0) as f64 / n
    );
}
