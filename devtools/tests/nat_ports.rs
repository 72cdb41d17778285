//! Source NAT under one cached walk: the snat namespace of network1 sends
//! every connection of a walk through one megaflow, yet each packet leaves
//! with its own connection's port. Two VMs using the same source port
//! towards the same server get distinct ports on the outside.
#![deny(unsafe_code)]

use devtools::spec;
use devtools::traffic::{self, FrameSize, TrafficScenario};
use pipeline::key::{Field, FlowKey, Mac, VLAN_CFI};
use pipeline::packet::synth::frame_from_key;
use pipeline::wire::{ethertype, ipproto};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use topology::Topology;
use vswitch::config::DaemonConfig;
use vswitch::daemon::Daemon;

/// The addresses of the spec's topology the frames here are made of.
struct Cast {
    /// compute2's DVR MAC: the source of what compute2 routed.
    dvr_c2: Mac,
    /// The snat namespace's port on subnet1 (sg-s1).
    sg_s1: Mac,
    /// The router's gateway port (qg-r1): its MAC and address.
    qg: (Mac, Ipv4Addr),
}

fn cast(t: &Topology) -> Cast {
    let r1 = t.router("R1").expect("R1");
    let gw = r1.gateway.as_ref().expect("R1's gateway");
    let s1 = r1
        .interfaces
        .iter()
        .find(|i| i.subnet == "subnet1")
        .expect("R1 on subnet1");
    Cast {
        dvr_c2: t.host("compute2").expect("compute2").dvr_mac,
        sg_s1: s1.snat_mac.expect("sg-s1"),
        qg: (gw.mac, gw.ip),
    }
}

/// vm on net1 (routed on compute2) → the external host, port 53, as it
/// reaches network1.
fn egress(c: &Cast, src: [u8; 4], sport: u16) -> Vec<u8> {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::IPV4 as u64);
    k.set(Field::DlSrc, c.dvr_c2.to_u64());
    k.set(Field::DlDst, c.sg_s1.to_u64());
    k.set(Field::VlanTci, (101 | VLAN_CFI) as u64);
    k.set(Field::NwProto, ipproto::UDP as u64);
    k.set(Field::NwSrc, u32::from_be_bytes(src) as u64);
    k.set(Field::NwDst, spec::EXTERNAL_HOST.to_bits() as u64);
    k.set(Field::NwTtl, 63);
    k.set(Field::TpSrc, sport as u64);
    k.set(Field::TpDst, 53);
    frame_from_key(&k, 18)
}

/// network1 on in-memory eth1/eth2, the upstream router resolved as in
/// steady state; its scratch directory, and the topology's addresses.
fn network1(tag: &str) -> (Daemon, std::path::PathBuf, Cast) {
    let dir = std::env::temp_dir().join(format!("vswitch-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let text = format!(
        "host = \"network1\"\ntopology = \"unused\"\nsocket = \"{}\"\nlog_level = \"warn\"\nidle_sleep_us = 20\n\
         [[ports]]\nname = \"eth1\"\nbackend = \"ring\"\n[[ports]]\nname = \"eth2\"\nbackend = \"ring\"\n",
        dir.join("unused.sock").display()
    );
    let cfg: DaemonConfig = toml::from_str(&text).expect("config");
    let t = devtools::spec::topology().expect("topology");
    let d = Daemon::start_with(&cfg, t.clone()).expect("daemon");
    let warm = traffic::generate(&t, TrafficScenario::SnatEgress, 1, FrameSize::Fixed(64), 1)
        .expect("traffic");
    for (port, frames) in &warm.warmup {
        d.process_local(port, frames).expect("warm-up");
    }
    (d, dir, cast(&t))
}

#[test]
fn connections_sharing_a_megaflow_leave_with_their_own_ports() {
    let (d, dir, c) = network1("natports");
    let eth1 = d.ring("eth1").expect("eth1");
    let eth2 = d.ring("eth2").expect("eth2");
    let sources = [[10, 1, 0, 13], [10, 1, 0, 77], [10, 1, 0, 78]];
    for s in &sources {
        assert!(eth1.inject(egress(&c, *s, 5000)));
        // And a second packet of each connection.
        assert!(eth1.inject(egress(&c, *s, 5000)));
    }
    // More connections of the same sources, on ports nobody else uses.
    for s in &sources {
        assert!(eth1.inject(egress(&c, *s, 6000 + s[3] as u16)));
    }
    let mut out = Vec::new();
    let start = Instant::now();
    while out.len() < 3 * sources.len() && start.elapsed() < Duration::from_secs(5) {
        out.extend(eth2.collect().into_iter().filter_map(|f| {
            let p = pipeline::packet::parse(&f, 0).ok()?;
            (p.key.nw_proto() == ipproto::UDP).then_some(p.key)
        }));
        std::thread::sleep(Duration::from_millis(5));
    }
    let report = d.shared.reports[0].lock().expect("report").clone();
    d.stop();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.len(), 3 * sources.len(), "{out:?}");
    let (pairs, singles) = out.split_at(2 * sources.len());
    for (k, s) in singles.iter().zip(&sources) {
        assert_eq!(k.nw_src(), u32::from_be_bytes([203, 0, 113, 10]));
        assert_eq!(k.tp_src(), 6000 + s[3] as u16, "a free port is kept");
    }
    let mut ports = Vec::new();
    for pair in pairs.chunks(2) {
        for k in pair {
            assert_eq!(k.nw_src(), u32::from_be_bytes([203, 0, 113, 10]));
            assert_eq!(k.tp_dst(), 53);
        }
        // Both packets of a connection carry its port.
        assert_eq!(pair[0].tp_src(), pair[1].tp_src());
        ports.push(pair[0].tp_src());
    }
    // The first keeps 5000; the others, colliding on the outside, get others.
    assert_eq!(ports[0], 5000);
    let mut uniq = ports.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), sources.len(), "{ports:?}");
    // One walk per source address served its connections: a megaflow
    // before conntrack and one after, not one per connection.
    assert_eq!(
        (report.cache_entries, report.recirc_entries),
        (sources.len(), sources.len()),
        "{report:?}"
    );
}

fn csum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 62, proto, 0, 0];
    h[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let c = csum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

#[test]
fn an_icmp_error_about_no_connection_reaches_nobody() {
    let (d, dir, c) = network1("icmperr");
    let eth1 = d.ring("eth1").expect("eth1");
    let eth2 = d.ring("eth2").expect("eth2");
    let _ = (eth1.collect(), eth2.collect());
    // Port unreachable from the outside "about" a datagram from the
    // router's gateway address, port 7777, to the external host's port 53,
    // that no connection ever sent.
    let (qg_mac, qg_ip) = (c.qg.0, c.qg.1.octets());
    let outside = spec::EXTERNAL_HOST.octets();
    let quoted_udp = [0x1e, 0x61, 0, 53, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let quoted = ipv4(qg_ip, outside, 17, &quoted_udp);
    let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&quoted[..28]);
    let sum = csum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut frame = Vec::new();
    frame.extend_from_slice(&qg_mac.0);
    frame.extend_from_slice(&spec::UPSTREAM_MAC.0);
    frame.extend_from_slice(&ethertype::IPV4.to_be_bytes());
    frame.extend_from_slice(&ipv4(outside, qg_ip, 1, &icmp));
    assert!(eth2.inject(frame));
    let start = Instant::now();
    let mut rx = 0;
    while rx == 0 && start.elapsed() < Duration::from_secs(5) {
        rx = d.shared.reports[0].lock().expect("report").rx_packets;
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    let r = d.shared.reports[0].lock().expect("report").clone();
    let (o1, o2) = (eth1.collect(), eth2.collect());
    d.stop();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(r.rx_packets, 1);
    assert!(o1.is_empty() && o2.is_empty(), "{o1:?} {o2:?}");
    assert_eq!(r.tx_packets, 0, "{r:?}");
    assert!(!r.drops.is_empty(), "dropped under a named reason: {r:?}");
}
