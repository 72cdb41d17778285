//! AF_PACKET ports on veth pairs this test creates (and always deletes).
//! Needs root (CAP_NET_ADMIN/CAP_NET_RAW); skipped with a message otherwise.
//! The daemon test also sends frames too long to receive (over 9,018
//! bytes) and to send (over the output link's MTU): each is counted
//! under `frame_too_long`.

#![cfg(target_os = "linux")]

mod frames;

use pipeline::packet::PacketPool;
use std::process::Command;
use std::time::{Duration, Instant};
use vswitch::io::afpacket;
use vswitch::io::{RxQueue, TxQueue};

use vswitch::os::is_root;

/// A veth pair, deleted on drop (even when the test fails).
struct Veth(String, String);

impl Veth {
    fn new(tag: &str) -> Option<Veth> {
        let base = format!("vsw{}{tag}", std::process::id() % 100_000);
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

/// compute1's daemon with vm1's port on `vm1`'s first end and vm2's on
/// `vm2`'s (AF_PACKET); the VMs' sides are the second ends.
fn vm1_vm2_daemon(vm1: &Veth, vm2: &Veth) -> vswitch::daemon::Daemon {
    let topo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../config/topologies/spec-example.toml");
    let cfg: vswitch::config::DaemonConfig = toml::from_str(&format!(
        "host = \"compute1\"\ntopology = \"{}\"\nidle_sleep_us = 20\n[[workers]]\n\
         [[ports]]\nname = \"qvo-vm1\"\nbackend = \"af-packet\"\ninterface = \"{}\"\n\
         [[ports]]\nname = \"qvo-vm2\"\nbackend = \"af-packet\"\ninterface = \"{}\"\n",
        topo.display(),
        vm1.0,
        vm2.0
    ))
    .expect("config");
    vswitch::daemon::Daemon::start(&cfg).expect("start")
}

const ETHERTYPE: [u8; 2] = [0x88, 0xb5]; // local experimental

fn frame(seq: u8, vlan: Option<u16>) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0xbb, 0x02, 0, 0, 0, 0, 0xaa];
    if let Some(v) = vlan {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&v.to_be_bytes());
    }
    f.extend_from_slice(&ETHERTYPE);
    f.push(seq);
    f.resize(60, 0);
    f
}

fn receive(
    rx: &mut afpacket::AfPacketRx,
    pool: &mut PacketPool,
    want: usize,
    wait: Duration,
) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let deadline = Instant::now() + wait;
    let mut burst = Vec::new();
    while got.len() < want && Instant::now() < deadline {
        rx.rx_burst(pool, &mut burst, 32);
        for b in burst.drain(..) {
            let d = b.data().to_vec();
            pool.put(b);
            let et = if d.len() > 17 && d[12..14] == [0x81, 0x00] {
                &d[16..18]
            } else {
                &d[12..14]
            };
            if et == ETHERTYPE {
                got.push(d);
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    got
}

#[test]
fn frames_cross_a_veth_pair_both_ways_with_vlan_tags_intact() {
    if !is_root() {
        eprintln!("skipped: AF_PACKET on veth needs root");
        return;
    }
    let Some(v) = Veth::new("x") else {
        eprintln!("skipped: cannot create a veth pair here");
        return;
    };
    let (mut rx_a, tx_a) = afpacket::open(&v.0, None).expect("open a");
    let (mut rx_b, tx_b) = afpacket::open(&v.1, None).expect("open b");
    let mut pool = PacketPool::new(256, 2048);
    for i in 0..50 {
        assert!(tx_b.send(&frame(i, None)));
    }
    tx_b.flush(); // frames leave at the end of a burst
    let got = receive(&mut rx_a, &mut pool, 50, Duration::from_secs(5));
    assert_eq!(got.len(), 50);
    assert!(
        got.iter().enumerate().all(|(i, f)| f[14] == i as u8),
        "in order, unchanged"
    );
    // Tagged frames keep their tag (the kernel strips it into metadata; we put it back).
    assert!(tx_a.send(&frame(7, Some(101))));
    tx_a.flush();
    let got = receive(&mut rx_b, &mut pool, 1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0][12..16], &[0x81, 0x00, 0x00, 101]);
    // Our own transmissions are not received back on the sending socket.
    assert!(receive(&mut rx_a, &mut pool, 1, Duration::from_millis(300)).is_empty());
}

#[test]
fn the_daemon_switches_between_af_packet_ports() {
    if !is_root() {
        eprintln!("skipped: AF_PACKET on veth needs root");
        return;
    }
    let (Some(p1), Some(p2)) = (Veth::new("y"), Veth::new("z")) else {
        eprintln!("skipped: cannot create veth pairs here");
        return;
    };
    let d = vm1_vm2_daemon(&p1, &p2);
    // The VMs' ends: p1.1 is vm1's NIC, p2.1 is vm2's.
    let (_, vm1_tx) = afpacket::open(&p1.1, None).expect("vm1 end");
    let (mut vm2_rx, _) = afpacket::open(&p2.1, None).expect("vm2 end");
    let f = frames::vm1_to_vm2(2000, 8);
    for _ in 0..20 {
        assert!(vm1_tx.send(&f));
    }
    vm1_tx.flush();
    let mut pool = PacketPool::new(256, 2048);
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut burst = Vec::new();
    while got < 20 && Instant::now() < deadline {
        vm2_rx.rx_burst(&mut pool, &mut burst, 32);
        for b in burst.drain(..) {
            if b.data() == f.as_slice() {
                got += 1;
            }
            pool.put(b);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(got, 20, "vm1's frames reach vm2 through br-int");

    // Oversize frames are counted, under `frame_too_long`: on receive, a
    // 9,200-byte frame (vm1's link takes jumbo frames; a buffer holds
    // 9,018 bytes); on transmit, a 1,600-byte frame for vm2, whose link
    // has an MTU of 1,500 (the kernel refuses it).
    p1.mtu(9500);
    let mut big = f.clone();
    big.resize(9200, 0);
    let mut jumbo = f.clone();
    jumbo.resize(1600, 0);
    for frame in [&big, &jumbo] {
        assert!(vm1_tx.send(frame));
    }
    vm1_tx.flush();
    let counted = |d: &vswitch::daemon::Daemon| d.shared.drops("frame_too_long");
    let deadline = Instant::now() + Duration::from_secs(5);
    while counted(&d) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let ports = d.shared.port_counters();
    let port = |name: &str| ports.iter().find(|(n, _, _)| n == name).expect(name).2;
    assert_eq!(counted(&d), 2, "{ports:?}");
    assert_eq!(port("qvo-vm1").rx_dropped, 1, "{ports:?}");
    assert_eq!(port("qvo-vm2").tx_dropped, 1, "{ports:?}");
    d.stop();
}

#[test]
fn two_workers_share_one_interface_through_a_fanout_group() {
    if !is_root() {
        eprintln!("skipped: AF_PACKET on veth needs root");
        return;
    }
    let (Some(p1), Some(p2)) = (Veth::new("f"), Veth::new("g")) else {
        eprintln!("skipped: cannot create veth pairs here");
        return;
    };
    let topo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../config/topologies/spec-example.toml");
    // vm1's interface with two receive queues (sockets of one fanout
    // group), one per worker.
    let cfg: vswitch::config::DaemonConfig = toml::from_str(&format!(
        "host = \"compute1\"\ntopology = \"{}\"\nidle_sleep_us = 20\n[[workers]]\n[[workers]]\n\
         [[ports]]\nname = \"qvo-vm1\"\nbackend = \"af-packet\"\ninterface = \"{}\"\nqueues = 2\n\
         [[ports]]\nname = \"qvo-vm2\"\nbackend = \"af-packet\"\ninterface = \"{}\"\n",
        topo.display(),
        p1.0,
        p2.0
    ))
    .expect("config");
    let d = vswitch::daemon::Daemon::start(&cfg).expect("start");
    let (_, vm1_tx) = afpacket::open(&p1.1, None).expect("vm1 end");
    let (mut vm2_rx, _) = afpacket::open(&p2.1, None).expect("vm2 end");
    // 64 flows (source ports), 4 datagrams each.
    const FLOWS: u16 = 64;
    const EACH: u16 = 4;
    let mut sent = Vec::new();
    for round in 0..EACH {
        for flow in 0..FLOWS {
            // The round is the payload length (20..23 bytes): same 5-tuple.
            let f = frames::vm1_to_vm2_udp(10_000 + flow, 7, 20 + round as usize);
            assert!(vm1_tx.send(&f));
            sent.push(f);
        }
        vm1_tx.flush();
    }
    let mut pool = PacketPool::new(512, 2048);
    let mut got: Vec<Vec<u8>> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut burst = Vec::new();
    while got.len() < sent.len() && Instant::now() < deadline {
        vm2_rx.rx_burst(&mut pool, &mut burst, 32);
        for b in burst.drain(..) {
            if sent.iter().any(|f| f.as_slice() == b.data()) {
                got.push(b.data().to_vec());
            }
            pool.put(b);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(100));
    vm2_rx.rx_burst(&mut pool, &mut burst, 32);
    got.extend(
        burst
            .drain(..)
            .filter(|b| sent.iter().any(|f| f.as_slice() == b.data()))
            .map(|b| b.data().to_vec()),
    );
    // Every datagram exactly once (the fanout gives each packet to one
    // socket), and per flow in order (a flow hashes to one socket).
    assert_eq!(got.len(), sent.len(), "each frame delivered exactly once");
    let mut sorted = got.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), sent.len(), "no duplicates");
    for flow in 0..FLOWS {
        let sport = (10_000 + flow).to_be_bytes();
        let rounds: Vec<u8> = got
            .iter()
            .filter(|f| f[34..36] == sport)
            .map(|f| (u16::from_be_bytes([f[38], f[39]]) - 28) as u8)
            .collect();
        assert_eq!(
            rounds,
            (0..EACH as u8).collect::<Vec<_>>(),
            "flow {flow} in order"
        );
    }
    // Both workers took a share (reports are published when idle).
    let deadline = Instant::now() + Duration::from_secs(10);
    let total = || {
        d.shared
            .reports
            .iter()
            .map(|w| w.lock().expect("report").rx_packets)
            .sum::<u64>()
    };
    while total() < sent.len() as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    for w in &d.shared.reports {
        let r = w.lock().expect("report");
        assert!(r.rx_queues >= 1, "worker {} owns a queue of vm1", r.worker);
        assert!(
            r.rx_packets > 0,
            "worker {} received part of the flows",
            r.worker
        );
    }
    d.stop();
}

#[test]
fn a_fanout_group_gives_each_frame_to_one_socket_and_a_flow_to_the_same_one() {
    if !is_root() {
        eprintln!("skipped: AF_PACKET on veth needs root");
        return;
    }
    let Some(v) = Veth::new("h") else {
        eprintln!("skipped: cannot create a veth pair here");
        return;
    };
    let group = (std::process::id() % 60_000) as u16 + 1;
    let (mut a, _) = afpacket::open(&v.0, Some(group)).expect("socket a");
    let (mut b, _) = afpacket::open(&v.0, Some(group)).expect("socket b");
    let (_, tx) = afpacket::open(&v.1, None).expect("sender");
    let mut pool = PacketPool::new(1024, 2048);
    let mut sent = Vec::new();
    for round in 0..4u16 {
        for flow in 0..32u16 {
            // The round is the payload length (20..23 bytes): same 5-tuple.
            let f = frames::vm1_to_vm2_udp(20_000 + flow, 7, 20 + round as usize);
            assert!(tx.send(&f));
            sent.push(f);
        }
        tx.flush();
    }
    let take = |rx: &mut afpacket::AfPacketRx, pool: &mut PacketPool| {
        let mut got = Vec::new();
        let mut burst = Vec::new();
        let deadline = Instant::now() + Duration::from_millis(300);
        while Instant::now() < deadline {
            rx.rx_burst(pool, &mut burst, 32);
            for x in burst.drain(..) {
                if sent.iter().any(|f| f.as_slice() == x.data()) {
                    got.push(x.data().to_vec());
                }
                pool.put(x);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        got
    };
    let got_a = take(&mut a, &mut pool);
    let got_b = take(&mut b, &mut pool);
    assert_eq!(
        got_a.len() + got_b.len(),
        sent.len(),
        "each frame to exactly one socket"
    );
    assert!(
        !got_a.is_empty() && !got_b.is_empty(),
        "both sockets get flows"
    );
    for flow in 0..32u16 {
        let sport = (20_000 + flow).to_be_bytes();
        let round = |f: &Vec<u8>| (u16::from_be_bytes([f[38], f[39]]) - 28) as u8;
        let ra: Vec<u8> = got_a
            .iter()
            .filter(|f| f[34..36] == sport)
            .map(round)
            .collect();
        let rb: Vec<u8> = got_b
            .iter()
            .filter(|f| f[34..36] == sport)
            .map(round)
            .collect();
        assert!(
            (ra == [0, 1, 2, 3] && rb.is_empty()) || (rb == [0, 1, 2, 3] && ra.is_empty()),
            "flow {flow} stays on one socket, in order: a {ra:?} b {rb:?}"
        );
    }
}

/// vm2's device deleted while bound (a hard reboot or a migration does it
/// to a VM's tap): its frames are dropped under `device_missing` and
/// counted on the port; created again with the same name, it is bound
/// again without anyone asking, and vm1's frames reach it.
#[test]
fn a_deleted_device_created_again_is_bound_again() {
    if !is_root() {
        eprintln!("skipped: AF_PACKET on veth needs root");
        return;
    }
    let (Some(p1), Some(p2)) = (Veth::new("r"), Veth::new("s")) else {
        eprintln!("skipped: cannot create veth pairs here");
        return;
    };
    let d = vm1_vm2_daemon(&p1, &p2);
    let (_, vm1_tx) = afpacket::open(&p1.1, None).expect("vm1 end");
    let f = frames::vm1_to_vm2(2000, 8);
    let send = |n: usize| {
        for _ in 0..n {
            assert!(vm1_tx.send(&f));
        }
        vm1_tx.flush();
    };
    let until = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let bound =
        |d: &vswitch::daemon::Daemon| d.shared.bindings().iter().any(|b| b.port == "qvo-vm2");
    assert!(bound(&d));
    let names = (p2.0.clone(), p2.1.clone());
    drop(p2);
    until("the port to let go of its device", &|| !bound(&d));
    send(10);
    until("the drops", &|| d.shared.drops("device_missing") >= 10);
    let ports = d.shared.port_counters();
    let vm2 = ports
        .iter()
        .find(|(n, _, _)| n == "qvo-vm2")
        .expect("qvo-vm2")
        .2;
    assert_eq!(vm2.tx_packets, 0, "{ports:?}");
    assert!(vm2.tx_dropped >= 10, "{ports:?}");

    let p2 = Veth::new("s").expect("the same veth again");
    assert_eq!((p2.0.clone(), p2.1.clone()), names);
    until("the port to be bound again", &|| bound(&d));
    let (mut vm2_rx, _) = afpacket::open(&p2.1, None).expect("vm2 end");
    let mut pool = PacketPool::new(256, 2048);
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut burst = Vec::new();
    while got < 5 && Instant::now() < deadline {
        send(1);
        vm2_rx.rx_burst(&mut pool, &mut burst, 32);
        for b in burst.drain(..) {
            if b.data() == f.as_slice() {
                got += 1;
            }
            pool.put(b);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(got >= 5, "vm1's frames reach vm2's new device ({got})");
    d.stop();
}
