//! AF_XDP ports (feature `af-xdp`, root): copy mode on a veth pair the test
//! creates and deletes. Frames sent by the peer arrive through our XDP
//! program and the socket unchanged; frames sent on the socket arrive at
//! the peer; the program is gone from the interface after the port closes;
//! the daemon switches vm1 -> vm2 between AF_XDP ports. Frames longer than
//! a UMEM frame are counted under `frame_too_long`, received (our program
//! drops them) or sent (refused).
//!
//! `sudo cargo test -p vswitch --features af-xdp --test afxdp`

#![cfg(all(target_os = "linux", feature = "af-xdp"))]

mod frames;

use pipeline::packet::PacketPool;
use std::process::Command;
use std::time::{Duration, Instant};
use vswitch::io::{afpacket, afxdp, RxQueue, TxQueue};

use vswitch::os::is_root;

/// A veth pair, deleted on drop (even when the test fails).
struct Veth(String, String);

impl Veth {
    fn new(tag: &str) -> Option<Veth> {
        let base = format!("vsx{}{tag}", std::process::id() % 100_000);
        let (a, b) = (format!("{base}a"), format!("{base}b"));
        let ok = Command::new("ip")
            .args(["link", "add", &a, "type", "veth", "peer", "name", &b])
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
        let v = Veth(a, b);
        for n in [&v.0, &v.1] {
            let _ = Command::new("sysctl")
                .args(["-qw", &format!("net.ipv6.conf.{n}.disable_ipv6=1")])
                .status();
            Command::new("ip")
                .args(["link", "set", n, "up"])
                .status()
                .ok()?;
        }
        Some(v)
    }
}

impl Veth {
    /// Sets both ends' MTU.
    fn mtu(&self, mtu: u32) {
        for n in [&self.0, &self.1] {
            let ok = Command::new("ip")
                .args(["link", "set", n, "mtu", &mtu.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "mtu {mtu} on {n}");
        }
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

fn udp(sport: u16, payload: usize) -> Vec<u8> {
    frames::vm1_to_vm2_udp(sport, 53, payload)
}

fn xdp_attached(ifname: &str) -> bool {
    let out = Command::new("ip")
        .args(["-d", "link", "show", "dev", ifname])
        .output()
        .expect("ip");
    String::from_utf8_lossy(&out.stdout).contains("xdp")
}

/// Receives until `want` frames among `expect` arrived or `wait` passed.
fn receive(rx: &mut dyn RxQueue, expect: &[Vec<u8>], wait: Duration) -> Vec<Vec<u8>> {
    let mut pool = PacketPool::new(512, 2048);
    let mut got = Vec::new();
    let mut burst = Vec::new();
    let deadline = Instant::now() + wait;
    while got.len() < expect.len() && Instant::now() < deadline {
        rx.rx_burst(&mut pool, &mut burst, 32);
        for b in burst.drain(..) {
            if expect.iter().any(|f| f.as_slice() == b.data()) {
                got.push(b.data().to_vec());
            }
            pool.put(b);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    got
}

#[test]
fn af_xdp_receives_and_sends_on_a_veth_and_detaches_on_close() {
    if !is_root() {
        eprintln!("skipped: AF_XDP needs root");
        return;
    }
    let Some(v) = Veth::new("x") else {
        eprintln!("skipped: cannot create a veth pair here");
        return;
    };
    let (mut xrx, xtx) = match afxdp::open(&v.0, 0) {
        Ok(p) => p,
        Err(e) => panic!("AF_XDP on {}: {e}", v.0),
    };
    assert!(xdp_attached(&v.0), "our program is attached");
    let (mut prx, ptx) = afpacket::open(&v.1, None).expect("peer");
    // Peer -> AF_XDP.
    let frames: Vec<Vec<u8>> = (0..40).map(|i| udp(1000 + i, 8 + i as usize)).collect();
    for f in &frames {
        assert!(ptx.send(f));
    }
    ptx.flush();
    let got = receive(&mut xrx, &frames, Duration::from_secs(5));
    assert_eq!(got, frames, "every frame, unchanged and in order");
    assert_eq!(
        xrx.stats()
            .rx_packets
            .load(std::sync::atomic::Ordering::Relaxed),
        40
    );
    // AF_XDP -> peer, more than one ring's worth of UMEM frames over time.
    let out: Vec<Vec<u8>> = (0..3000)
        .map(|i| udp(5000 + (i % 1000) as u16, 8 + (i / 1000) as usize))
        .collect();
    // The peer reads as the frames come (its ring would overflow otherwise).
    let mut sent = Vec::new();
    let mut got = Vec::new();
    let mut pool = PacketPool::new(512, 2048);
    let mut burst = Vec::new();
    let mut drain = |prx: &mut afpacket::AfPacketRx, got: &mut Vec<Vec<u8>>| {
        while prx.rx_burst(&mut pool, &mut burst, 32) > 0 {
            for b in burst.drain(..) {
                if b.len() > 14 && b.data()[12..14] == [8, 0] {
                    got.push(b.data().to_vec());
                }
                pool.put(b);
            }
        }
    };
    for chunk in out.chunks(32) {
        for f in chunk {
            if xtx.send(f) {
                sent.push(f.clone());
            }
        }
        xtx.flush();
        std::thread::sleep(Duration::from_micros(200));
        drain(&mut prx, &mut got);
    }
    assert!(
        sent.len() >= 2900,
        "the transmit frames are reclaimed and reused: {}",
        sent.len()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < sent.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
        drain(&mut prx, &mut got);
    }
    assert_eq!(got.len(), sent.len(), "everything sent arrives at the peer");
    assert!(got == sent, "unchanged and in order");
    // Without a flush nothing is kicked: once the transmit frames are all
    // in the ring, the next frame is refused and counted.
    let before = xtx
        .stats()
        .tx_ring_full
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut queued = 0;
    while xtx.send(&out[0]) {
        queued += 1;
        assert!(queued <= 4096, "the ring must fill up");
    }
    assert!(queued > 0);
    assert_eq!(
        xtx.stats()
            .tx_ring_full
            .load(std::sync::atomic::Ordering::Relaxed),
        before + 1
    );
    xtx.flush();
    // A frame longer than a UMEM frame is refused as too long (the worker
    // counts it under `frame_too_long`), the next one is sent.
    let mut pool = PacketPool::new(4, 9018);
    let mut bufs = Vec::new();
    for f in [udp(6000, 3000 - 42), udp(6001, 8)] {
        let mut b = pool.get().expect("buffer");
        b.set_data(&f).expect("fits a buffer");
        bufs.push(b);
    }
    let sent = xtx.send_bufs(&mut bufs, &mut pool);
    xtx.flush();
    assert_eq!((sent.frames, sent.too_long), (1, 1), "{sent:?}");
    assert_eq!(pool.available(), 4, "both buffers back in the pool");
    drop(xrx);
    drop(xtx);
    assert!(
        !xdp_attached(&v.0),
        "the program is detached when the port closes"
    );
    // The same queue opens again at once (the kernel frees it lazily).
    let (_r, _t) = afxdp::open(&v.0, 0).expect("reopen the same queue");
    assert!(xdp_attached(&v.0));
}

#[test]
fn the_daemon_switches_between_af_xdp_ports() {
    if !is_root() {
        eprintln!("skipped: AF_XDP needs root");
        return;
    }
    let (Some(p1), Some(p2)) = (Veth::new("y"), Veth::new("z")) else {
        eprintln!("skipped: cannot create veth pairs here");
        return;
    };
    let topo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../config/topologies/spec-example.toml");
    let cfg: vswitch::config::DaemonConfig = toml::from_str(&format!(
        "host = \"compute1\"\ntopology = \"{}\"\nidle_sleep_us = 20\n[[workers]]\n\
         [[ports]]\nname = \"qvo-vm1\"\nbackend = \"af-xdp\"\ninterface = \"{}\"\n\
         [[ports]]\nname = \"qvo-vm2\"\nbackend = \"af-xdp\"\ninterface = \"{}\"\n",
        topo.display(),
        p1.0,
        p2.0
    ))
    .expect("config");
    let d = vswitch::daemon::Daemon::start(&cfg).expect("start");
    let (_, vm1_tx) = afpacket::open(&p1.1, None).expect("vm1 end");
    let (mut vm2_rx, _) = afpacket::open(&p2.1, None).expect("vm2 end");
    let frames: Vec<Vec<u8>> = (0..50).map(|i| udp(2000 + i, 8)).collect();
    for f in &frames {
        assert!(vm1_tx.send(f));
    }
    vm1_tx.flush();
    let got = receive(&mut vm2_rx, &frames, Duration::from_secs(5));
    assert_eq!(got, frames, "vm1's frames reach vm2 through br-int");

    // Frames longer than a UMEM frame holds (1,792 bytes after the XDP
    // headroom) are dropped by our XDP program and counted under
    // `frame_too_long`; one of exactly 1,792 bytes goes through. The
    // links take jumbo frames.
    p1.mtu(9500);
    p2.mtu(9500);
    let fits = udp(3000, afxdp::RX_FRAME_MAX as usize - 42);
    for f in [
        udp(3001, afxdp::RX_FRAME_MAX as usize + 1 - 42),
        udp(3002, 9200 - 42),
        fits.clone(),
    ] {
        assert!(vm1_tx.send(&f));
    }
    vm1_tx.flush();
    let got = receive(
        &mut vm2_rx,
        std::slice::from_ref(&fits),
        Duration::from_secs(5),
    );
    assert_eq!(got.len(), 1, "a frame of {} bytes reaches vm2", fits.len());
    let counted = |d: &vswitch::daemon::Daemon| d.shared.drops("frame_too_long");
    let deadline = Instant::now() + Duration::from_secs(5);
    while counted(&d) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let ports = d.shared.port_counters();
    let vm1 = ports
        .iter()
        .find(|(n, _, _)| n == "qvo-vm1")
        .expect("vm1")
        .2;
    assert_eq!(counted(&d), 2, "{ports:?}");
    assert_eq!(vm1.rx_dropped, 2, "{ports:?}");
    d.stop();
    assert!(
        !xdp_attached(&p1.0) && !xdp_attached(&p2.0),
        "programs removed at stop"
    );
}

mod dbhost;

/// An Open_vSwitch interface of type `afxdp` (OVS's userspace datapath
/// name for it) is bound as an AF_XDP port on its device, and the switch
/// lists `afxdp` among its interface types.
#[test]
fn an_afxdp_interface_in_the_database_is_an_af_xdp_port() {
    if !is_root() {
        eprintln!("skipped: needs root (veth, XDP)");
        return;
    }
    let Some(db) = dbhost::server("afxdp") else {
        return;
    };
    let Some(v) = Veth::new("d") else {
        eprintln!("skipped: cannot create a veth pair");
        return;
    };
    let node = dbhost::node(&db, None);
    dbhost::vsctl(&db, &["add-br", "br0"]);
    dbhost::add_port(&db, "br0", &v.0, &[], &["type=afxdp"]);
    let shared = node.daemon.shared.clone();
    dbhost::until("the AF_XDP binding", || {
        shared.bindings().iter().any(|b| {
            b.port == v.0
                && matches!(&b.backend, vswitch::config::Backend::AfXdp { interface: Some(i), queue: 0 } if *i == v.0)
        })
    });
    let types = dbhost::vsctl(&db, &["get", "Open_vSwitch", ".", "iface_types"]);
    assert!(types.contains("afxdp"), "{types}");
    drop(shared);
    node.stop();
}
