//! DPDK ports (feature `dpdk`) on virtual devices, without hugepages:
//! the daemon forwarding vm1 -> vm2 between net_pcap devices, and the
//! binding itself on net_pcap (frames in and out unchanged, in order) and
//! net_null (bursts counted). EAL can be initialised once per process, so
//! everything runs in one test with one set of EAL arguments.
//!
//! `cargo test -p vswitch --features dpdk --test dpdk`

#![cfg(feature = "dpdk")]

mod frames;
use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};
use pipeline::packet::PacketPool;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use vswitch::config::DaemonConfig;
use vswitch::daemon::Daemon;
use vswitch::io::{RxQueue, TxQueue};

fn frame(seq: u16) -> Vec<u8> {
    frames::vm1_to_vm2(seq, 8 + (seq % 50) as usize)
}

fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut w = PcapWriter::new(std::fs::File::create(path).expect("create")).expect("pcap");
    for (i, f) in frames.iter().enumerate() {
        w.write_packet(&PcapPacket::new(
            Duration::from_micros(i as u64),
            f.len() as u32,
            f,
        ))
        .expect("write");
    }
}

/// Equal frame lists, reported by count and first difference.
fn same(got: &[Vec<u8>], want: &[Vec<u8>], what: &str) {
    let first = got.iter().zip(want).position(|(a, b)| a != b);
    assert!(
        got.len() == want.len() && first.is_none(),
        "{what}: {} frames, {} expected; first difference at {first:?}",
        got.len(),
        want.len()
    );
}

fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut r = PcapReader::new(f).expect("pcap");
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        out.push(p.expect("packet").data.into_owned());
    }
    out
}

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// EAL starts once per process, so every DPDK check shares this one test.
#[test]
fn dpdk_virtual_devices_carry_the_switch_traffic() {
    let tmp = TempDir(std::env::temp_dir().join(format!("vswitch-dpdk-{}", std::process::id())));
    std::fs::create_dir_all(&tmp.0).expect("tmp");
    let sent: Vec<Vec<u8>> = (0..100).map(frame).collect();
    // First a frame longer than an mbuf holds (it arrives chained).
    let mut vm1_in = vec![frame(100)];
    vm1_in[0].resize(3000, 0);
    vm1_in.extend(sent.iter().cloned());
    write_pcap(&tmp.0.join("vm1-in.pcap"), &vm1_in);
    write_pcap(&tmp.0.join("empty.pcap"), &[]);
    let direct: Vec<Vec<u8>> = (1000..1040).map(frame).collect();
    write_pcap(&tmp.0.join("direct-in.pcap"), &direct);

    the_daemon_floods_vm1s_frames_to_vm2_and_the_uplink(&tmp, &sent);
    let mut pool = PacketPool::new(256, 9018);
    net_pcap_receives_and_sends_frames_unchanged_in_order(&tmp, &direct, &mut pool);
    let (mut null_rx, null_tx) =
        vswitch::io::dpdk::open("net_null1", 1, 1, 511, &pipeline::rss::SYMMETRIC_KEY)
            .expect("net_null1");
    net_null_swallows_and_produces_bursts(&mut null_rx[0], &null_tx, &sent, &mut pool);
    a_frame_longer_than_an_mbuf_is_refused_as_too_long(&null_tx, &sent, &mut pool);
    drop((null_rx, null_tx));
    errors_name_the_device();
}

/// The daemon: vm1, vm2 and the uplink on net_pcap devices (and, in its
/// EAL arguments, two more devices for the binding's own checks). (Not
/// net_null for the uplink: its receive side hands out mbufs with
/// whatever they held before, which would be frames this switch sent.)
/// vm1's 100 frames, vm2 not learned yet, are flooded to vm2 and the
/// uplink; the 3,000-byte frame before them is dropped and counted under
/// `frame_too_long` and in vm1's `rx_dropped`.
fn the_daemon_floods_vm1s_frames_to_vm2_and_the_uplink(tmp: &TempDir, sent: &[Vec<u8>]) {
    let p = |n: &str| tmp.0.join(n).display().to_string();
    let topo =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/topologies/spec-example.toml");
    let text = format!(
        r#"host = "compute1"
topology = "{}"
idle_sleep_us = 20
[[workers]]
[[ports]]
name = "qvo-vm1"
backend = "dpdk"
device = "net_pcap0"
devargs = "rx_pcap={},tx_pcap={}"
[[ports]]
name = "qvo-vm2"
backend = "dpdk"
device = "net_pcap1"
devargs = "rx_pcap={},tx_pcap={}"
[[ports]]
name = "eth1"
backend = "dpdk"
device = "net_pcap3"
devargs = "rx_pcap={},tx_pcap={}"
[dpdk]
eal_args = ["--no-huge", "--no-shconf", "--no-pci", "--no-telemetry", "-m", "256", "-l", "0",
            "--log-level", "warning", "--vdev=net_pcap2,rx_pcap={},tx_pcap={}", "--vdev=net_null1"]
mbufs = 2047
"#,
        topo.display(),
        p("vm1-in.pcap"),
        p("vm1-out.pcap"),
        p("empty.pcap"),
        p("vm2-out.pcap"),
        p("empty.pcap"),
        p("eth1-out.pcap"),
        p("direct-in.pcap"),
        p("direct-out.pcap"),
    );
    let cfg: DaemonConfig = toml::from_str(&text).expect("config");
    let d = Daemon::start(&cfg).expect("daemon with DPDK ports");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if d.shared.reports[0].lock().expect("report").rx_packets >= 100 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    let ports = d.shared.port_counters();
    let drops = d.shared.reports[0].lock().expect("report").drops.clone();
    d.stop(); // closes the devices: net_pcap writes its files out
    let vm1 = ports
        .iter()
        .find(|(n, _, _)| n == "qvo-vm1")
        .expect("vm1")
        .2;
    assert_eq!((vm1.rx_packets, vm1.rx_dropped), (100, 1), "{ports:?}");
    assert!(
        drops.iter().any(|(r, n)| r == "frame_too_long" && *n == 1),
        "{drops:?}"
    );
    // vm2 is not learned yet: NORMAL floods to vm2 and the uplink.
    let got = read_pcap(&tmp.0.join("vm2-out.pcap"));
    same(&got, sent, "vm2 receives vm1's frames unchanged, in order");
    let eth1 = ports.iter().find(|(n, _, _)| n == "eth1").expect("eth1").2;
    assert_eq!(eth1.tx_packets, 100, "flooded to the uplink too");
    let up = read_pcap(&tmp.0.join("eth1-out.pcap"));
    assert_eq!(up.len(), 100);
    assert!(
        up.iter().all(|f| f[12..16] == [0x81, 0x00, 0x00, 101]),
        "VLAN 101 on the fabric"
    );
}

/// The binding itself on net_pcap2: every frame received unchanged, in
/// order; sent back out; written to the output file at close.
fn net_pcap_receives_and_sends_frames_unchanged_in_order(
    tmp: &TempDir,
    direct: &[Vec<u8>],
    pool: &mut PacketPool,
) {
    let (mut rx, tx) =
        vswitch::io::dpdk::open("net_pcap2", 1, 1, 511, &pipeline::rss::SYMMETRIC_KEY)
            .expect("net_pcap2");
    let mut bufs = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while bufs.len() < direct.len() && Instant::now() < deadline {
        rx[0].rx_burst(pool, &mut bufs, 32);
    }
    let frames: Vec<Vec<u8>> = bufs.iter().map(|b| b.data().to_vec()).collect();
    same(&frames, direct, "net_pcap2 receive");
    // Received frames stay in their mbufs (lent, no copy) ...
    assert!(bufs.iter().all(|b| b
        .lender()
        .is_some_and(|(l, _)| l.id == vswitch::io::dpdk::DPDK_LENDER.id)));
    // ... and leave as those mbufs; a buffer of ours among them (a copy
    // of the first frame, in the middle) is copied into an mbuf, in order.
    let copy = pool.copy_of(&bufs[0]).expect("a pooled copy");
    assert!(copy.lender().is_none());
    bufs.insert(20, copy);
    let mut want = direct.to_vec();
    want.insert(20, direct[0].clone());
    let free_before = pool.available();
    let out = tx.send_bufs(&mut bufs, pool);
    tx.flush();
    assert!(bufs.is_empty());
    assert_eq!(
        pool.available(),
        free_before + 1,
        "the copy is back in the pool"
    );
    assert_eq!(out.frames, want.len() as u64);
    assert_eq!(out.bytes, want.iter().map(|f| f.len() as u64).sum::<u64>());
    assert_eq!(tx.counters().tx.load(Ordering::Relaxed), want.len() as u64);
    assert_eq!(tx.counters().tx_dropped.load(Ordering::Relaxed), 0);
    let stats = tx.device_stats().expect("stats");
    assert_eq!(stats.ipackets, direct.len() as u64);
    assert_eq!(stats.opackets, want.len() as u64);
    drop(rx);
    drop(tx);
    same(
        &read_pcap(&tmp.0.join("direct-out.pcap")),
        &want,
        "net_pcap2 transmit",
    );
}

/// net_null1: the device swallows what it is sent and produces frames on
/// receive; counters add up.
fn net_null_swallows_and_produces_bursts(
    rx: &mut vswitch::io::dpdk::DpdkRx,
    tx: &vswitch::io::dpdk::DpdkTx,
    sent: &[Vec<u8>],
    pool: &mut PacketPool,
) {
    for f in &sent[..64] {
        assert!(tx.send(f));
    }
    tx.flush();
    assert_eq!(tx.counters().tx.load(Ordering::Relaxed), 64);
    let mut bufs = Vec::new();
    let n = rx.rx_burst(pool, &mut bufs, 32);
    assert_eq!(n, 32, "net_null always has a burst to give");
    assert_eq!(bufs.len(), 32);
    assert_eq!(rx.counters().rx.load(Ordering::Relaxed), 32);
    let stats = rx.device_stats().expect("stats");
    assert_eq!(stats.opackets, 64);
    for b in bufs.drain(..) {
        pool.put(b);
    }
}

/// A frame of ours longer than an mbuf's 2,048 bytes cannot be copied
/// into one: refused as too long (the worker counts it under
/// `frame_too_long`), the next one sent (net_null1 again).
fn a_frame_longer_than_an_mbuf_is_refused_as_too_long(
    tx: &vswitch::io::dpdk::DpdkTx,
    sent: &[Vec<u8>],
    pool: &mut PacketPool,
) {
    let dropped = tx.counters().tx_dropped.load(Ordering::Relaxed);
    let mut long = sent[0].clone();
    long.resize(3000, 0);
    let mut bufs = Vec::new();
    for f in [&long, &sent[1]] {
        let mut b = pool.get().expect("buffer");
        b.set_data(f).expect("fits a buffer");
        bufs.push(b);
    }
    let free = pool.available();
    let out = tx.send_bufs(&mut bufs, pool);
    assert_eq!((out.frames, out.too_long), (1, 1), "{out:?}");
    assert_eq!(pool.available(), free + 2, "both buffers back in the pool");
    assert_eq!(
        tx.counters().tx_dropped.load(Ordering::Relaxed),
        dropped + 1
    );
}

/// A device that is not there, and a second EAL init: errors that say so.
fn errors_name_the_device() {
    let Err(e) = vswitch::io::dpdk::open("net_nope9", 1, 1, 511, &pipeline::rss::SYMMETRIC_KEY)
    else {
        panic!("net_nope9 opened");
    };
    let e = e.to_string();
    assert!(e.contains("net_nope9"), "{e}");
    let e = vswitch::io::dpdk::eal_init(&["--no-huge".to_string()])
        .expect_err("second init")
        .to_string();
    assert!(e.contains("already initialised"), "{e}");
}
