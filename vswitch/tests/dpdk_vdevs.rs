//! The other virtual devices the DPDK binding runs on without hugepages:
//! net_ring (a loopback ring), net_memif (a server and a client in this
//! process, over a unix socket) and net_af_packet (on a veth pair the test
//! creates; root only, like the kernel side needs).
//!
//! `cargo test -p vswitch --features dpdk --test dpdk_vdevs`

#![cfg(feature = "dpdk")]

use pipeline::packet::PacketPool;
use std::process::Command;
use std::time::{Duration, Instant};
use vswitch::io::{RxQueue, TxQueue};

fn frame(i: u8) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f[14] = i;
    f
}

use vswitch::os::is_root;

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Veth(String);
impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

/// Sends `frames` on `tx` and receives them on `rx` (other frames ignored).
fn round_trip(tx: &dyn TxQueue, rx: &mut dyn RxQueue, frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut pool = PacketPool::new(256, 2048);
    let mut got = Vec::new();
    let mut burst = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sent = false;
    while got.len() < frames.len() && Instant::now() < deadline {
        if !sent {
            let n = tx.send_burst(&mut frames.iter().map(|f| f.as_slice()));
            tx.flush();
            sent = n == frames.len();
        }
        rx.rx_burst(&mut pool, &mut burst, 32);
        for b in burst.drain(..) {
            if frames.iter().any(|f| f.as_slice() == b.data()) {
                got.push(b.data().to_vec());
            }
            pool.put(b);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    got
}

/// Sends a probe frame every few milliseconds until `rx` sees one: the
/// link is up (memif connects over its socket in the background).
fn wait_link(tx: &dyn TxQueue, rx: &mut dyn RxQueue) -> bool {
    let probe = frame(0xff);
    let mut pool = PacketPool::new(64, 2048);
    let mut burst = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        tx.send(&probe);
        tx.flush();
        std::thread::sleep(Duration::from_millis(5));
        rx.rx_burst(&mut pool, &mut burst, 32);
        let seen = burst.iter().any(|b| b.data() == probe.as_slice());
        for b in burst.drain(..) {
            pool.put(b);
        }
        if seen {
            // Let late probes drain.
            std::thread::sleep(Duration::from_millis(20));
            while rx.rx_burst(&mut pool, &mut burst, 32) > 0 {
                for b in burst.drain(..) {
                    pool.put(b);
                }
            }
            return true;
        }
    }
    false
}

#[test]
fn net_ring_memif_and_af_packet_carry_frames() {
    let dir = std::env::temp_dir().join(format!("vswitch-dpdk-vdev-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let dir = TempDir(dir);
    let sock = dir.0.join("memif.sock");
    let mut args: Vec<String> = [
        "--no-huge",
        "--no-shconf",
        "--no-pci",
        "--no-telemetry",
        "-m",
        "256",
        "-l",
        "0",
        "--log-level",
        "warning",
        "--vdev=net_ring0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!(
        "--vdev=net_memif0,role=server,socket={}",
        sock.display()
    ));
    args.push(format!(
        "--vdev=net_memif1,role=client,socket={}",
        sock.display()
    ));
    let veth = if is_root() {
        let a = format!("vsd{}a", std::process::id() % 100_000);
        let b = format!("vsd{}b", std::process::id() % 100_000);
        let ok = Command::new("ip")
            .args(["link", "add", &a, "type", "veth", "peer", "name", &b])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            for n in [&a, &b] {
                let _ = Command::new("ip").args(["link", "set", n, "up"]).status();
            }
            args.push(format!("--vdev=net_af_packet0,iface={a}"));
            args.push(format!("--vdev=net_af_packet1,iface={b}"));
            Some(Veth(a))
        } else {
            None
        }
    } else {
        eprintln!("net_af_packet part skipped: needs root (veth pair)");
        None
    };
    vswitch::io::dpdk::eal_init(&args).expect("EAL");

    // net_ring0: what is sent comes back on the same port.
    let (mut rx, tx) =
        vswitch::io::dpdk::open("net_ring0", 1, 1, 511, &pipeline::rss::SYMMETRIC_KEY)
            .expect("net_ring0");
    let frames: Vec<Vec<u8>> = (0..20).map(frame).collect();
    assert_eq!(
        round_trip(&tx, &mut rx[0], &frames),
        frames,
        "net_ring loopback"
    );

    // net_memif: server and client connect; frames cross both ways.
    let (mut srx, stx) =
        vswitch::io::dpdk::open("net_memif0", 1, 1, 511, &pipeline::rss::SYMMETRIC_KEY)
            .expect("memif server");
    let (mut crx, ctx) =
        vswitch::io::dpdk::open("net_memif1", 1, 1, 511, &pipeline::rss::SYMMETRIC_KEY)
            .expect("memif client");
    assert!(wait_link(&ctx, &mut srx[0]), "memif connects");
    assert!(wait_link(&stx, &mut crx[0]), "memif connects both ways");
    assert_eq!(
        round_trip(&ctx, &mut srx[0], &frames),
        frames,
        "memif client -> server"
    );
    let back: Vec<Vec<u8>> = (100..110).map(frame).collect();
    assert_eq!(
        round_trip(&stx, &mut crx[0], &back),
        back,
        "memif server -> client"
    );

    // net_af_packet on a veth pair.
    if veth.is_some() {
        let (mut arx, _atx) =
            vswitch::io::dpdk::open("net_af_packet0", 1, 1, 511, &pipeline::rss::SYMMETRIC_KEY)
                .expect("af_packet a");
        let (_brx, btx) =
            vswitch::io::dpdk::open("net_af_packet1", 1, 1, 511, &pipeline::rss::SYMMETRIC_KEY)
                .expect("af_packet b");
        assert!(wait_link(&btx, &mut arx[0]), "af_packet link");
        assert_eq!(
            round_trip(&btx, &mut arx[0], &frames),
            frames,
            "net_af_packet over veth"
        );
    }
    drop(veth);
}
