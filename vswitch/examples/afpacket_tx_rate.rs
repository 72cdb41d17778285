//! AF_PACKET transmit rate on a veth pair this example creates (root
//! only): bursts of 32 64-byte frames, flushed per burst as the daemon's
//! workers do. Prints Mpps. The pair is deleted at the end.
//!
//! `sudo cargo run --release -p vswitch --example afpacket_tx_rate [FRAMES]`

use std::process::Command;
use std::time::Instant;
use vswitch::io::TxQueue;

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

struct Veth(&'static str);
impl Drop for Veth {
    fn drop(&mut self) {
        ip(&["link", "del", self.0]);
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    if !vswitch::os::is_root() {
        eprintln!("afpacket_tx_rate: needs root (creates a veth pair)");
        return;
    }
    let a = "vsrate0";
    ip(&["link", "del", a]);
    assert!(ip(&[
        "link", "add", a, "type", "veth", "peer", "name", "vsrate1"
    ]));
    let _guard = Veth(a);
    assert!(ip(&["link", "set", a, "up"]));
    assert!(ip(&["link", "set", "vsrate1", "up"]));
    let (_rx, tx) = vswitch::io::afpacket::open(a, None).expect("open");
    let mut frame = vec![0u8; 64];
    frame[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    frame[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    frame[12..14].copy_from_slice(&[0x88, 0xb5]);
    let t0 = Instant::now();
    let mut i = 0;
    while i < n {
        for _ in 0..32 {
            tx.send(&frame);
        }
        tx.flush();
        i += 32;
    }
    let el = t0.elapsed().as_secs_f64();
    let s = &tx.stats;
    println!(
        "AF_PACKET tx on veth: {:.2} Mpps offered ({} sent, {} errors) in {:.2} s",
        i as f64 / el / 1e6,
        s.tx_packets.load(std::sync::atomic::Ordering::Relaxed),
        s.tx_errors.load(std::sync::atomic::Ordering::Relaxed),
        el
    );
}
