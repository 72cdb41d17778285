//! Source NAT under one cached walk: the snat namespace of network1 sends
//! every connection of a walk through one megaflow, yet each packet leaves
//! with its own connection's port. Two VMs using the same source port
//! towards the same server get distinct ports on the outside.

use pipeline::key::{ethertype, ipproto, Field, FlowKey, VLAN_CFI};
use pipeline::packet::synth::frame_from_key;
use std::time::{Duration, Instant};
use vswitch::config::DaemonConfig;
use vswitch::daemon::Daemon;
use vswitch::traffic::{self, FrameSize, Scenario};

/// vm on net1 (routed on compute2) → 198.51.100.7:53, as it reaches network1.
fn egress(src: [u8; 4], sport: u16) -> Vec<u8> {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::IPV4 as u64);
    k.set(Field::DlSrc, 0xfa163f0000c2); // compute2's DVR MAC
    k.set(Field::DlDst, 0xfa163ebb0103); // sg-s1
    k.set(Field::VlanTci, (101 | VLAN_CFI) as u64);
    k.set(Field::NwProto, ipproto::UDP as u64);
    k.set(Field::NwSrc, u32::from_be_bytes(src) as u64);
    k.set(Field::NwDst, u32::from_be_bytes([198, 51, 100, 7]) as u64);
    k.set(Field::NwTtl, 63);
    k.set(Field::TpSrc, sport as u64);
    k.set(Field::TpDst, 53);
    frame_from_key(&k, 18)
}

#[test]
fn connections_sharing_a_megaflow_leave_with_their_own_ports() {
    let dir = std::env::temp_dir().join(format!("vswitch-natports-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let text = format!(
        "host = \"network1\"\ntopology = \"unused\"\nsocket = \"{}\"\nlog_level = \"warn\"\nidle_sleep_us = 20\n\
         [[ports]]\nname = \"eth1\"\nbackend = \"ring\"\n[[ports]]\nname = \"eth2\"\nbackend = \"ring\"\n",
        dir.join("unused.sock").display()
    );
    let cfg: DaemonConfig = toml::from_str(&text).expect("config");
    let t = vswitch::lab::topology().expect("topology");
    let d = Daemon::start_with(&cfg, t.clone()).expect("daemon");
    // The upstream router resolved, as in steady state.
    let warm =
        traffic::generate(&t, Scenario::SnatEgress, 1, FrameSize::Fixed(64), 1).expect("traffic");
    for (port, frames) in &warm.warmup {
        d.process_local(port, frames).expect("warm-up");
    }
    let eth1 = d.ring("eth1").expect("eth1");
    let eth2 = d.ring("eth2").expect("eth2");
    let sources = [[10, 1, 0, 13], [10, 1, 0, 77], [10, 1, 0, 78]];
    for s in &sources {
        assert!(eth1.inject(egress(*s, 5000)));
        // And a second packet of each connection.
        assert!(eth1.inject(egress(*s, 5000)));
    }
    // More connections of the same sources, on ports nobody else uses.
    for s in &sources {
        assert!(eth1.inject(egress(*s, 6000 + s[3] as u16)));
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
