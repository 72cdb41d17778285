//! The side-by-side run's Open vSwitch model forwards the benchmark's
//! frames as vswitch does: for l2-egress, dvr-egress and snat-egress, the
//! first frame of the capture, traced by `ofproto/trace` in a private
//! OVS-DPDK running the model, leaves by the scenario's port with the
//! MACs, VLAN, addresses and TTL of our own trace.
//!
//! Needs root and Debian's `openvswitch-switch-dpdk` (or
//! `VSWITCH_BENCH_OVS`); skipped with a message otherwise. OVS is stopped
//! and its directory removed even when an assertion fails (drop guards).
//!
//! `cargo test -p vswitch --test ovs_dpdk`
#![deny(unsafe_code)]

use devtools::ovs_dpdk::{self, Session};
use devtools::traffic::{self, TrafficScenario};
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mac(s: &str) -> pipeline::key::Mac {
    s.parse().expect("mac")
}

#[test]
fn the_model_forwards_like_vswitch() {
    let Some(bin) = ovs_dpdk::binary() else {
        eprintln!(
            "skipped: needs root and Open vSwitch with DPDK ({}; VSWITCH_BENCH_OVS overrides)",
            ovs_dpdk::DEFAULT_BINARY
        );
        return;
    };
    let t = devtools::spec::topology().expect("topology");
    let cores = core_affinity::get_core_ids().map_or(1, |c| c.len()).max(1);
    // (scenario, out port, dl_src, dl_dst, VLAN, nw_src, TTL) as the spec's walks say.
    let cases = [
        (
            TrafficScenario::L2Egress,
            "eth1",
            "fa:16:3e:01:00:11",
            "fa:16:3e:01:00:13",
            Some(101),
            Ipv4Addr::new(10, 1, 0, 11),
            64,
        ),
        (
            TrafficScenario::DvrEgress,
            "eth1",
            "fa:16:3f:00:00:c1",
            "fa:16:3e:02:00:15",
            Some(102),
            Ipv4Addr::new(10, 1, 0, 11),
            63,
        ),
        // network1: SNATed to the gateway address, to the upstream router.
        (
            TrafficScenario::SnatEgress,
            "eth2",
            "fa:16:3e:cc:00:10",
            "00:00:5e:00:53:01",
            None,
            Ipv4Addr::new(203, 0, 113, 10),
            62,
        ),
    ];
    for (s, port, src, dst, vlan, nw_src, ttl) in cases {
        let dir = TempDir(std::env::temp_dir().join(format!(
            "vswitch-ovs-test-{}-{}",
            std::process::id(),
            s.name()
        )));
        std::fs::create_dir_all(&dir.0).expect("dir");
        let (sw, tr) = ovs_dpdk::warm_switch(&t, s, 1, 64).expect("warm-up");
        let pcap = dir.0.join("in.pcap");
        traffic::write_pcap(&pcap, &tr.frames).expect("pcap");
        let m = ovs_dpdk::model(
            &sw,
            &t,
            s.host(),
            s.in_port(),
            std::slice::from_ref(&pcap),
            0,
        )
        .expect("model");
        let frame = &tr.frames[0];
        let ours = ovs_dpdk::ours_egress(&sw, s.in_port(), frame).expect("our trace");
        assert_eq!(ours.len(), 1, "{}: {ours:?}", s.name());
        let o = &ours[0];
        assert_eq!(
            (
                o.port.as_str(),
                o.dl_src,
                o.dl_dst,
                o.vlan,
                o.nw_src,
                o.nw_ttl
            ),
            (port, mac(src), mac(dst), vlan, nw_src, ttl),
            "{}: our walk is not the spec's",
            s.name()
        );
        assert_eq!(port, s.out_port());
        let session =
            Session::start(&bin, &m, &dir.0.join("ovs"), cores - 1).expect("OVS-DPDK starts");
        let theirs = session.trace(s.in_port(), frame).expect("ofproto/trace");
        assert_eq!(theirs, ours, "{}: OVS forwards differently", s.name());
        session
            .check(s.in_port(), frame, &ours)
            .unwrap_or_else(|e| panic!("{}: {e}", s.name()));
    }
    the_model_translates_replies_of_the_connections_it_was_preloaded_with(&bin, &t, cores);
}

/// snat-reply: with the warm-up's egress frames sent into Open vSwitch
/// first (`Model::preload`, OpenFlow packet-outs), the replies in the
/// capture all leave by eth1 toward vm3, as ours do. (Run after the
/// other cases, in the same test: two OVS-DPDK at once do not start.)
fn the_model_translates_replies_of_the_connections_it_was_preloaded_with(
    bin: &std::path::Path,
    t: &topology::Topology,
    cores: usize,
) {
    let s = TrafficScenario::SnatReply;
    let dir = TempDir(std::env::temp_dir().join(format!(
        "vswitch-ovs-test-{}-{}",
        std::process::id(),
        s.name()
    )));
    std::fs::create_dir_all(&dir.0).expect("dir");
    let (sw, tr) = ovs_dpdk::warm_switch(t, s, 16, 64).expect("warm-up");
    let ours = ovs_dpdk::ours_egress(&sw, s.in_port(), &tr.frames[0]).expect("our trace");
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(ours[0].port, "eth1");
    assert_eq!(ours[0].nw_ttl, 61);
    let pcap = dir.0.join("in.pcap");
    traffic::write_pcap(&pcap, &tr.frames).expect("pcap");
    let mut m = ovs_dpdk::model(
        &sw,
        t,
        s.host(),
        s.in_port(),
        std::slice::from_ref(&pcap),
        0,
    )
    .expect("model");
    m.preload = tr.warmup.clone();
    let session = Session::start(bin, &m, &dir.0.join("ovs"), cores - 1).expect("OVS-DPDK");
    let r = session.measure(s.out_port(), 0.5).expect("measure");
    assert!(r.rx_packets > 0, "{r:?}");
    assert!(r.delivered > 0.99, "replies reach vm3's port: {r:?}");
}
