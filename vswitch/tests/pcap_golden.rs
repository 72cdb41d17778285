//! pcap in → out golden files: a capture of what vm1 sends on compute1
//! (ARP, same-network, other-host, routed, TTL-expiring and truncated
//! frames) is replayed through the daemon; what every port sends is
//! compared with the committed captures in `tests/golden/pcap/`, and the
//! behaviour the spec names is checked on them (VLAN on the fabric, TTL
//! and gateway source MAC after routing, ARP reply and ICMP error to vm1).
//!
//! `UPDATE_GOLDEN=1 cargo test -p vswitch --test pcap_golden` rewrites
//! the golden files (review the diff with tcpdump -r / tshark -r).

use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};
use pipeline::key::{Field, FlowKey};
use pipeline::packet::synth::frame_from_key;
use pipeline::wire::{ethertype, ipproto};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vswitch::config::DaemonConfig;
use vswitch::daemon::Daemon;

const VM1_MAC: u64 = 0xfa163e010011;
const VM2_MAC: u64 = 0xfa163e010012;
const VM3_MAC: u64 = 0xfa163e010013;
const QR_S1_MAC: u64 = 0xfa163eaa0101;
const QR_S2_MAC: [u8; 6] = [0xfa, 0x16, 0x3e, 0xaa, 0x02, 0x01];
const VM1: u64 = 0x0a01000b;
const OUTPUTS: [&str; 4] = ["qvo-vm1", "qvo-vm2", "qvo-vm4", "eth1"];

fn ip_frame(dst_mac: u64, dst: u64, proto: u8, ttl: u64, port: u64) -> Vec<u8> {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::IPV4 as u64);
    k.set(Field::DlSrc, VM1_MAC);
    k.set(Field::DlDst, dst_mac);
    k.set(Field::NwProto, proto as u64);
    k.set(Field::NwSrc, VM1);
    k.set(Field::NwDst, dst);
    k.set(Field::NwTtl, ttl);
    if proto == ipproto::ICMP {
        k.set(Field::TpSrc, 8);
    } else {
        k.set(Field::TpSrc, 40000);
        k.set(Field::TpDst, port);
    }
    frame_from_key(&k, 16)
}

fn arp_request(target: u64) -> Vec<u8> {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::ARP as u64);
    k.set(Field::DlSrc, VM1_MAC);
    k.set(Field::DlDst, 0xffff_ffff_ffff);
    k.set(Field::NwProto, 1);
    k.set(Field::NwSrc, VM1);
    k.set(Field::NwDst, target);
    k.set(Field::ArpSha, VM1_MAC);
    frame_from_key(&k, 0)
}

/// What vm1 sends, in order.
fn input() -> Vec<Vec<u8>> {
    vec![
        arp_request(0x0a01000c),                                    // who-has vm2
        ip_frame(VM2_MAC, 0x0a01000c, ipproto::UDP, 64, 1),         // to vm2 (not learned: flood)
        ip_frame(VM3_MAC, 0x0a01000d, ipproto::UDP, 64, 2),         // to vm3 on compute2
        arp_request(0x0a010001),                                    // who-has the gateway
        ip_frame(QR_S1_MAC, 0x0a02000e, ipproto::UDP, 64, 3),       // routed to vm4
        ip_frame(QR_S1_MAC, 0x0a02000e, ipproto::ICMP, 64, 0),      // ping vm4
        ip_frame(QR_S1_MAC, 0x0a02000e, ipproto::UDP, 1, 4),        // TTL expires in the router
        vec![0xfa, 0x16, 0x3e, 0x01, 0x00, 0x12, 0xfa, 0x16, 0x3e], // truncated
    ]
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/pcap")
}

fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut w = PcapWriter::new(std::fs::File::create(path).expect("create")).expect("pcap");
    for (i, f) in frames.iter().enumerate() {
        w.write_packet(&PcapPacket::new(
            Duration::from_millis(i as u64),
            f.len() as u32,
            f,
        ))
        .expect("write");
    }
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

#[test]
fn replayed_capture_matches_the_golden_outputs() {
    let tmp = TempDir(std::env::temp_dir().join(format!("vswitch-golden-{}", std::process::id())));
    std::fs::create_dir_all(&tmp.0).expect("tmp");
    let frames = input();
    let input_path = tmp.0.join("in.pcap");
    write_pcap(&input_path, &frames);
    let topo =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/topologies/spec-example.toml");
    let mut text = format!(
        "host = \"compute1\"\ntopology = \"{}\"\nidle_sleep_us = 20\n[[workers]]\n\
         [[ports]]\nname = \"qvo-vm1\"\nbackend = \"pcap\"\nrx = \"{}\"\ntx = \"{}\"\n",
        topo.display(),
        input_path.display(),
        tmp.0.join("qvo-vm1.pcap").display()
    );
    for p in &OUTPUTS[1..] {
        text.push_str(&format!(
            "[[ports]]\nname = \"{p}\"\nbackend = \"pcap\"\ntx = \"{}\"\n",
            tmp.0.join(format!("{p}.pcap")).display()
        ));
    }
    let cfg: DaemonConfig = toml::from_str(&text).expect("config");
    let d = Daemon::start(&cfg).expect("start");
    // Every frame received (the truncated one dropped), then settle.
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let r = d.shared.reports[0].lock().expect("report").rx_packets;
        if r >= frames.len() as u64 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    let drops = d.shared.reports[0].lock().expect("report").drops.clone();
    d.stop();
    assert!(
        drops.iter().any(|(r, n)| *r == "eth_truncated" && *n == 1),
        "the truncated frame is dropped by name: {drops:?}"
    );

    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let golden = golden_dir();
    if update {
        std::fs::create_dir_all(&golden).expect("golden dir");
        write_pcap(&golden.join("in.pcap"), &frames);
    }
    assert_eq!(
        read_pcap(&golden.join("in.pcap")),
        frames,
        "the input is the committed one"
    );
    let mut out = std::collections::HashMap::new();
    for p in OUTPUTS {
        let got = read_pcap(&tmp.0.join(format!("{p}.pcap")));
        let path = golden.join(format!("{p}.pcap"));
        if update {
            write_pcap(&path, &got);
        }
        assert_eq!(
            got,
            read_pcap(&path),
            "{p}: output differs from {}",
            path.display()
        );
        out.insert(p, got);
    }

    // What the spec says about these outputs.
    let vm1 = &out["qvo-vm1"];
    assert!(
        vm1.iter().any(|f| f[12..14] == [0x08, 0x06]
            && f[20..22] == [0, 2]
            && f[6..12] == QR_S1_MAC.to_be_bytes()[2..]),
        "the gateway answers vm1's ARP"
    );
    assert!(
        vm1.iter()
            .any(|f| f[12..14] == [0x08, 0x00] && f[23] == ipproto::ICMP && f[34] == 11),
        "time exceeded comes back to vm1"
    );
    assert!(out["qvo-vm2"]
        .iter()
        .any(|f| f[12..14] == [0x08, 0x00] && f[30..34] == [10, 1, 0, 12]));
    let routed: Vec<&Vec<u8>> = out["qvo-vm4"]
        .iter()
        .filter(|f| f[12..14] == [0x08, 0x00])
        .collect();
    assert_eq!(routed.len(), 2, "the datagram and the ping reach vm4");
    for f in routed {
        assert_eq!(f[22], 63, "TTL decremented once");
        assert_eq!(f[6..12], QR_S2_MAC, "source is net2's gateway MAC");
    }
    assert!(
        out["eth1"].iter().all(|f| f[12..14] == [0x81, 0x00]),
        "everything on the fabric is VLAN-tagged"
    );
    assert!(
        out["eth1"]
            .iter()
            .any(|f| f[14..16] == [0, 101] && f[34..38] == [10, 1, 0, 13]),
        "vm3's datagram leaves in net1's VLAN 101"
    );
}
