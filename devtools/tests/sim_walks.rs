//! The spec's packet walks (§8.1–8.5) on the multi-host simulation of its
//! example lab: two compute nodes, a network node, the physical VLAN trunk.
//! Each test asserts the per-host steps and the frames on the wire.
#![deny(unsafe_code)]

use devtools::sim::{Segment, Sim};
use pipeline::key::{Field, FlowKey, Mac};
use pipeline::wire::{ethertype, ipproto};
use std::net::Ipv4Addr;

fn sim() -> Sim {
    let t = devtools::spec::topology().unwrap_or_else(|e| panic!("{e}"));
    Sim::new(&t).unwrap_or_else(|e| panic!("{e}"))
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("ip")
}

fn mac(s: &str) -> Mac {
    s.parse().expect("mac")
}

const VM1: &str = "fa:16:3e:01:00:11";
const VM3: &str = "fa:16:3e:01:00:13";
const VM4: &str = "fa:16:3e:02:00:14";
const VM5: &str = "fa:16:3e:02:00:15";
const GW1: &str = "fa:16:3e:aa:01:01";
const GW2: &str = "fa:16:3e:aa:02:01";
const DVR_C1: &str = "fa:16:3f:00:00:c1";
const DVR_C2: &str = "fa:16:3f:00:00:c2";

/// ICMP frames seen on the fabric.
fn icmp_on_wire(s: &Sim) -> Vec<FlowKey> {
    s.wire
        .iter()
        .filter(|w| {
            w.segment == Segment::Fabric
                && w.key.dl_type() == ethertype::IPV4
                && w.key.nw_proto() == ipproto::ICMP
        })
        .map(|w| w.key)
        .collect()
}

fn echo_replies(s: &Sim, vm: &str) -> Vec<FlowKey> {
    s.endpoint(vm)
        .expect("vm")
        .received
        .iter()
        .filter(|k| {
            k.dl_type() == ethertype::IPV4 && k.nw_proto() == ipproto::ICMP && k.tp_src() == 0
        })
        .copied()
        .collect()
}

/// Table paths of every host traversal, as "host: br-int 0 p10, ..." lines.
fn paths(s: &Sim) -> Vec<String> {
    s.steps
        .iter()
        .map(|st| format!("{}: {}", st.host, st.trace.table_path().join(", ")))
        .collect()
}

#[test]
fn s8_1_arp_for_the_gateway_is_answered_on_the_host_and_never_reaches_the_wire() {
    let mut s = sim();
    s.arp("vm1", ip("10.1.0.1")).expect("run");
    let got: Vec<_> = s
        .endpoint("vm1")
        .expect("vm1")
        .received
        .iter()
        .filter(|k| k.is_arp())
        .copied()
        .collect();
    assert_eq!(got.len(), 1, "{}", s.render_steps());
    let reply = got[0];
    assert_eq!(reply.nw_proto(), 2, "ARP reply");
    assert_eq!(
        Mac::from_u64(reply.get(Field::ArpSha)),
        mac(GW1),
        "qr-s1 answers with the gateway MAC"
    );
    assert_eq!(reply.nw_src(), u32::from(ip("10.1.0.1")));
    // The request was flooded to br-vlan and dropped in its table 1; nothing left compute1.
    assert!(s.wire.is_empty(), "frames on the wire: {:?}", s.wire);
    let first = &s.steps[0];
    assert_eq!(first.host, "compute1");
    let path = first.trace.table_path();
    for step in [
        "br-int 0 p10",
        "br-int 24 p2",
        "br-int 25 p2",
        "br-int 60 p3",
        "br-vlan 1 p3",
    ] {
        assert!(
            path.iter().any(|p| p == step),
            "{step} missing from {path:?}"
        );
    }
    assert!(
        first
            .trace
            .render()
            .contains("reply 10.1.0.1 is-at fa:16:3e:aa:01:01"),
        "{}",
        first.trace.render()
    );
}

#[test]
fn s8_2_same_network_same_host_stays_on_br_int() {
    let mut s = sim();
    s.ping("vm1", ip("10.1.0.12"), 1).expect("run");
    assert_eq!(echo_replies(&s, "vm1").len(), 1, "{}", s.render_steps());
    assert!(
        icmp_on_wire(&s).is_empty(),
        "ICMP never leaves compute1: {:?}",
        icmp_on_wire(&s)
    );
    // The echo request: br-int 0 p9 -> 25 -> 60 NORMAL -> qvo-vm2, nothing else.
    let req = s
        .steps
        .iter()
        .find(|st| st.trace.input.contains("icmp") && st.trace.input.contains("icmp_type=8"))
        .expect("request step");
    assert_eq!(
        req.trace.table_path(),
        ["br-int 0 p9", "br-int 25 p2", "br-int 60 p3"]
    );
    let outs: Vec<&str> = req.trace.outputs().iter().map(|(p, _)| *p).collect();
    assert_eq!(outs, ["qvo-vm2"]);
}

#[test]
fn s8_3_same_network_other_host_crosses_the_trunk_with_the_segmentation_vlan() {
    let mut s = sim();
    s.ping("vm1", ip("10.1.0.13"), 2).expect("run");
    assert_eq!(echo_replies(&s, "vm1").len(), 1, "{}", s.render_steps());
    let wire = icmp_on_wire(&s);
    assert_eq!(wire.len(), 2, "request and reply");
    let (req, rep) = (wire[0], wire[1]);
    assert_eq!(
        (req.vlan_vid(), req.dl_src(), req.dl_dst()),
        (Some(101), mac(VM1), mac(VM3))
    );
    assert_eq!(
        (rep.vlan_vid(), rep.dl_src(), rep.dl_dst()),
        (Some(101), mac(VM3), mac(VM1))
    );
    assert_eq!(req.nw_ttl(), 64, "switched, not routed");
    // Egress on compute1: br-vlan 0 -> 1 -> 2 (1 -> 101); ingress on compute2: br-vlan 0 -> 3, br-int 0 (101 -> 4).
    let p = paths(&s).join("\n");
    assert!(p.contains("compute1: br-int 0 p9, br-int 25 p2, br-int 60 p3, br-vlan 0 p2, br-vlan 1 p0, br-vlan 2 p4"), "{p}");
    assert!(
        p.contains("compute2: br-vlan 0 p1, br-vlan 3 p1, br-int 0 p3, br-int 60 p3"),
        "{p}"
    );
}

#[test]
fn s8_4_different_networks_same_host_route_through_the_local_qrouter() {
    let mut s = sim();
    // vm4 has spoken (ARP for its gateway), so br-int knows its port; before
    // that, NORMAL floods the routed frame in VLAN 2 like OVS would.
    s.arp("vm4", ip("10.2.0.1")).expect("run");
    s.clear_records();
    s.ping("vm1", ip("10.2.0.14"), 3).expect("run");
    assert_eq!(
        echo_replies(&s, "vm1").len(),
        1,
        "{}\n{:?}",
        s.render_steps(),
        s.datapath.counters.drops.nonzero()
    );
    assert!(icmp_on_wire(&s).is_empty(), "{:?}", icmp_on_wire(&s));
    let at_vm4: Vec<_> = s
        .endpoint("vm4")
        .expect("vm4")
        .received
        .iter()
        .filter(|k| k.nw_proto() == ipproto::ICMP)
        .copied()
        .collect();
    assert_eq!(at_vm4.len(), 1);
    let k = at_vm4[0];
    assert_eq!(k.dl_src(), mac(GW2), "routed out of qr-s2");
    assert_eq!(k.nw_ttl(), 63, "one router hop");
    let text = s.render_steps();
    if std::env::var_os("SHOW").is_some() {
        println!("{text}");
    }
    for step in [
        "in qr-s1",
        "rule 32766: lookup 254",
        "route 10.2.0.0/24 dev qr-s2",
        "neighbour 10.2.0.14 dev qr-s2 lladdr fa:16:3e:02:00:14",
        "out qr-s2",
    ] {
        assert!(text.contains(step), "{step} missing:\n{text}");
    }
}

#[test]
fn s8_5_different_networks_other_host_carry_the_dvr_mac_on_the_wire() {
    let mut s = sim();
    s.ping("vm1", ip("10.2.0.15"), 4).expect("run");
    assert_eq!(echo_replies(&s, "vm1").len(), 1, "{}", s.render_steps());
    let wire = icmp_on_wire(&s);
    assert_eq!(wire.len(), 2, "{wire:?}");
    let (req, rep) = (wire[0], wire[1]);
    // Routed on compute1 into net2 (VLAN 102), source rewritten to compute1's DVR MAC.
    assert_eq!(
        (req.vlan_vid(), req.dl_src(), req.dl_dst(), req.nw_ttl()),
        (Some(102), mac(DVR_C1), mac(VM5), 63)
    );
    // The reply is routed on compute2 into net1 (VLAN 101) with compute2's DVR MAC.
    assert_eq!(
        (rep.vlan_vid(), rep.dl_src(), rep.dl_dst(), rep.nw_ttl()),
        (Some(101), mac(DVR_C2), mac(VM1), 63)
    );
    // Delivered with the gateway MAC restored, straight from br-int table 60.
    let at_vm5: Vec<_> = s
        .endpoint("vm5")
        .expect("vm5")
        .received
        .iter()
        .filter(|k| k.nw_proto() == ipproto::ICMP)
        .copied()
        .collect();
    assert_eq!(at_vm5[0].dl_src(), mac(GW2));
    let p = paths(&s).join("\n");
    assert!(
        p.contains("compute2: br-vlan 0 p1, br-vlan 3 p2, br-int 0 p4, br-int 2 p4, br-int 60 p4"),
        "{p}"
    );
}

#[test]
fn gateway_macs_never_appear_on_the_fabric_and_no_mac_flaps() {
    let mut s = sim();
    for (vm, dst) in [
        ("vm1", "10.2.0.15"),
        ("vm3", "10.2.0.14"),
        ("vm5", "10.1.0.11"),
        ("vm4", "10.1.0.13"),
    ] {
        s.ping(vm, ip(dst), 9).expect("run");
        assert_eq!(
            echo_replies(&s, vm).len(),
            1,
            "{vm} -> {dst}\n{}",
            s.render_steps()
        );
        s.clear_records();
    }
    for gw in [GW1, GW2] {
        assert!(
            s.fabric_sources(mac(gw)).is_empty(),
            "{gw} seen as a source on the fabric: {:?}",
            s.fabric_sources(mac(gw))
        );
    }
    for dvr in [DVR_C1, DVR_C2] {
        for (vlan, from) in s.fabric_sources(mac(dvr)) {
            assert_eq!(from.len(), 1, "{dvr} in VLAN {vlan:?} seen from {from:?}");
        }
    }
}

#[test]
fn a_vm_cannot_reach_another_network_except_through_its_router() {
    let mut s = sim();
    // Let vm4's MAC be learned everywhere first.
    s.ping("vm4", ip("10.2.0.15"), 5).expect("run");
    s.clear_records();
    // vm1 addresses vm4's MAC directly, bypassing the gateway.
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::IPV4 as u64);
    k.set(Field::DlSrc, mac(VM1).to_u64());
    k.set(Field::DlDst, mac(VM4).to_u64());
    k.set(Field::NwSrc, u32::from(ip("10.1.0.11")) as u64);
    k.set(Field::NwDst, u32::from(ip("10.2.0.14")) as u64);
    k.set(Field::NwProto, ipproto::ICMP as u64);
    k.set(Field::NwTtl, 64);
    k.set(Field::TpSrc, 8);
    s.send_frame("vm1", &k).expect("run");
    assert!(
        s.endpoint("vm4").expect("vm4").received.is_empty(),
        "{}",
        s.render_steps()
    );
    assert!(s.endpoint("vm5").expect("vm5").received.is_empty());
    // On the wire it could only appear in net1's VLAN, never in net2's.
    assert!(
        s.wire.iter().all(|w| w.key.vlan_vid() != Some(102)),
        "{:?}",
        s.wire
    );
}

#[test]
fn ttl_expiring_in_the_qrouter_returns_time_exceeded_from_the_gateway() {
    let mut s = sim();
    s.arp("vm1", ip("10.1.0.1")).expect("run");
    s.clear_records();
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::IPV4 as u64);
    k.set(Field::DlSrc, mac(VM1).to_u64());
    k.set(Field::DlDst, mac(GW1).to_u64());
    k.set(Field::NwSrc, u32::from(ip("10.1.0.11")) as u64);
    k.set(Field::NwDst, u32::from(ip("10.2.0.14")) as u64);
    k.set(Field::NwProto, ipproto::UDP as u64);
    k.set(Field::NwTtl, 1);
    k.set(Field::TpSrc, 33434);
    k.set(Field::TpDst, 33435);
    s.send_frame("vm1", &k).expect("run");
    let got: Vec<_> = s
        .endpoint("vm1")
        .expect("vm1")
        .received
        .iter()
        .filter(|k| k.nw_proto() == ipproto::ICMP)
        .copied()
        .collect();
    assert_eq!(got.len(), 1, "{}", s.render_steps());
    let e = got[0];
    assert_eq!(
        (e.tp_src(), e.tp_dst()),
        (11, 0),
        "time exceeded in transit"
    );
    assert_eq!(
        e.nw_src(),
        u32::from(ip("10.1.0.1")),
        "from the gateway address of the incoming subnet"
    );
    assert_eq!(e.dl_src(), mac(GW1));
    assert!(
        s.endpoint("vm4").expect("vm4").received.is_empty(),
        "not forwarded"
    );
    let text = s.render_steps();
    assert!(
        text.contains("TTL 1: ICMP time exceeded")
            && text.contains("ICMP type 11 code 0 from 10.1.0.1 to 10.1.0.11 out qr-s1"),
        "{text}"
    );
}

#[test]
fn a_next_hop_without_a_static_entry_is_resolved_by_arp_and_the_held_packet_released() {
    // vm1 has a floating IP: its traffic leaves through rfp-r1 to the fip
    // namespace, whose default route points at the external gateway
    // 203.0.113.1, which no agent programs as a neighbour.
    let mut s = sim();
    let upstream = mac("52:54:00:00:00:01");
    s.add_external_station(
        "upstream",
        upstream,
        ip("203.0.113.1"),
        24,
        vec![ip("198.51.100.1")],
    );
    s.arp("vm1", ip("10.1.0.1")).expect("run");
    s.clear_records();
    s.ping("vm1", ip("198.51.100.1"), 7).expect("run");
    let ext: Vec<FlowKey> = s
        .wire
        .iter()
        .filter(|w| w.segment == Segment::External)
        .map(|w| w.key)
        .collect();
    assert!(ext.len() >= 3, "{ext:?}\n{}", s.render_steps());
    // 1. fip-ext-net asks for the gateway from fg-c1.
    assert!(ext[0].is_arp() && ext[0].nw_proto() == 1, "{:?}", ext[0]);
    assert_eq!(ext[0].dl_src(), mac("fa:16:3e:dd:00:21"));
    assert_eq!(ext[0].nw_dst(), u32::from(ip("203.0.113.1")));
    assert_eq!(ext[0].nw_src(), u32::from(ip("203.0.113.21")));
    // 2. the upstream router answers; 3. the held echo request leaves, addressed to it.
    assert!(ext[1].is_arp() && ext[1].nw_proto() == 2);
    let req = ext[2];
    assert_eq!((req.nw_proto(), req.tp_src()), (ipproto::ICMP, 8));
    assert_eq!(
        (req.dl_src(), req.dl_dst()),
        (mac("fa:16:3e:dd:00:21"), upstream)
    );
    assert_eq!(req.nw_ttl(), 62, "two router hops: qrouter and fip");
    let text = s.render_steps();
    assert!(
        text.contains("neighbour 203.0.113.1 dev fg-c1: INCOMPLETE, packet held"),
        "{text}"
    );
    assert!(text.contains("REACHABLE (held packets released)"), "{text}");
    // The next packet uses the learned entry: no second ARP.
    s.clear_records();
    s.ping("vm1", ip("198.51.100.1"), 8).expect("run");
    let arps = s
        .wire
        .iter()
        .filter(|w| w.segment == Segment::External && w.key.is_arp())
        .count();
    assert_eq!(arps, 0, "{}", s.render_steps());
    assert!(s
        .render_steps()
        .contains("neighbour 203.0.113.1 dev fg-c1 lladdr 52:54:00:00:00:01 REACHABLE"));
}

#[test]
fn no_route_in_the_fip_namespace_answers_destination_unreachable() {
    let mut s = sim();
    let upstream = mac("52:54:00:00:00:01");
    s.add_external_station(
        "upstream",
        upstream,
        ip("203.0.113.1"),
        24,
        vec![ip("198.51.100.1")],
    );
    // Resolve 203.0.113.1 in fip-ext-net first (vm1's traffic leaves through it).
    s.ping("vm1", ip("198.51.100.1"), 7).expect("run");
    s.clear_records();
    // The upstream router sends fg-c1 a packet for an address the fip
    // namespace has no route to (its main table has no default route).
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::IPV4 as u64);
    k.set(Field::DlSrc, upstream.to_u64());
    k.set(Field::DlDst, mac("fa:16:3e:dd:00:21").to_u64());
    k.set(Field::NwSrc, u32::from(ip("203.0.113.1")) as u64);
    k.set(Field::NwDst, u32::from(ip("192.0.2.99")) as u64);
    k.set(Field::NwProto, ipproto::UDP as u64);
    k.set(Field::NwTtl, 64);
    k.set(Field::TpSrc, 1000);
    k.set(Field::TpDst, 2000);
    s.send_frame("upstream", &k).expect("run");
    let got: Vec<_> = s
        .endpoint("upstream")
        .expect("upstream")
        .received
        .iter()
        .filter(|k| k.nw_proto() == ipproto::ICMP)
        .copied()
        .collect();
    assert_eq!(got.len(), 1, "{}", s.render_steps());
    assert_eq!(
        (got[0].tp_src(), got[0].tp_dst()),
        (3, 0),
        "destination (network) unreachable"
    );
    assert_eq!(got[0].nw_src(), u32::from(ip("203.0.113.21")));
    assert_eq!(got[0].nw_dst(), u32::from(ip("203.0.113.1")));
}

fn with_upstream() -> (Sim, Mac) {
    let mut s = sim();
    let upstream = mac("52:54:00:00:00:01");
    s.add_external_station(
        "upstream",
        upstream,
        ip("203.0.113.1"),
        24,
        vec![ip("198.51.100.1")],
    );
    (s, upstream)
}

fn external_icmp(s: &Sim) -> Vec<FlowKey> {
    s.wire
        .iter()
        .filter(|w| {
            w.segment == Segment::External && w.key.nw_proto() == ipproto::ICMP && w.key.is_ipv4()
        })
        .map(|w| w.key)
        .collect()
}

#[test]
fn s8_6_vm_without_floating_ip_reaches_outside_through_central_snat() {
    let (mut s, _) = with_upstream();
    s.ping("vm3", ip("198.51.100.1"), 11).expect("run");
    assert_eq!(echo_replies(&s, "vm3").len(), 1, "{}", s.render_steps());
    let ext = external_icmp(&s);
    assert_eq!(ext.len(), 2, "{ext:?}");
    if std::env::var_os("SHOW").is_some() {
        println!("{}", s.render_steps());
    }
    // Leaves network1's qg-r1 SNATed to the router's gateway address.
    assert_eq!(ext[0].nw_src(), u32::from(ip("203.0.113.10")));
    assert_eq!(ext[0].dl_src(), mac("fa:16:3e:cc:00:10"), "qg-r1's MAC");
    assert_eq!(ext[1].nw_dst(), u32::from(ip("203.0.113.10")));
    // The reply reaches vm3 with its own address restored, from the gateway.
    let r = echo_replies(&s, "vm3")[0];
    assert_eq!(r.nw_dst(), u32::from(ip("10.1.0.13")));
    assert_eq!(r.nw_src(), u32::from(ip("198.51.100.1")));
    let hosts: Vec<&str> = s.steps.iter().map(|st| st.host.as_str()).collect();
    assert!(hosts.contains(&"network1"), "{hosts:?}");
    let text = s.render_steps();
    assert!(text.contains("[snat-R1] conntrack zone"), "{text}");
    assert!(text.contains("SNAT --to-source 203.0.113.10"), "{text}");
    assert!(
        text.contains("POSTROUTING: source NAT to 203.0.113.10"),
        "{text}"
    );
    // compute2 sends it to the SNAT port across the fabric with its DVR MAC.
    assert!(s.wire.iter().any(|w| w.segment == Segment::Fabric
        && w.key.dl_src() == mac(DVR_C2)
        && w.key.dl_dst() == mac("fa:16:3e:bb:01:03")));
}

#[test]
fn s8_7_vm_with_floating_ip_leaves_from_its_own_host_as_the_floating_ip() {
    let (mut s, upstream) = with_upstream();
    s.ping("vm1", ip("198.51.100.1"), 12).expect("run");
    assert_eq!(echo_replies(&s, "vm1").len(), 1, "{}", s.render_steps());
    let ext = external_icmp(&s);
    assert_eq!(ext.len(), 2, "{ext:?}");
    assert_eq!(
        ext[0].nw_src(),
        u32::from(ip("203.0.113.101")),
        "SNATed to the floating IP"
    );
    assert_eq!(
        (ext[0].dl_src(), ext[0].dl_dst()),
        (mac("fa:16:3e:dd:00:21"), upstream),
        "out of compute1's fg-c1"
    );
    // The ICMP packets are handled by compute1 only (the upstream's ARP
    // broadcast for the floating IP reaches every host's eth2 and is
    // answered by compute1's fip namespace alone).
    assert!(
        s.steps
            .iter()
            .filter(|st| st.trace.input.contains("icmp"))
            .all(|st| st.host == "compute1"),
        "never through the network node"
    );
    assert!(
        s.wire.iter().all(|w| w.segment == Segment::External),
        "nothing on the tenant fabric"
    );
    let text = s.render_steps();
    assert!(
        text.contains("float-snat -s 10.1.0.11/32 -j SNAT --to-source 203.0.113.101"),
        "{text}"
    );
}

#[test]
fn s8_8_the_outside_reaches_a_vm_by_its_floating_ip() {
    let (mut s, _) = with_upstream();
    s.ping("upstream", ip("203.0.113.101"), 13).expect("run");
    let got = echo_replies(&s, "upstream");
    assert_eq!(got.len(), 1, "{}", s.render_steps());
    assert_eq!(
        got[0].nw_src(),
        u32::from(ip("203.0.113.101")),
        "the reply comes from the floating IP"
    );
    let at_vm1: Vec<_> = s
        .endpoint("vm1")
        .expect("vm1")
        .received
        .iter()
        .filter(|k| k.nw_proto() == ipproto::ICMP)
        .copied()
        .collect();
    assert_eq!(at_vm1.len(), 1);
    assert_eq!(
        at_vm1[0].nw_dst(),
        u32::from(ip("10.1.0.11")),
        "DNATed to the fixed IP"
    );
    assert_eq!(at_vm1[0].dl_src(), mac(GW1));
    let text = s.render_steps();
    assert!(text.contains("DNAT --to-destination 10.1.0.11"), "{text}");
    // The upstream router ARPed for the floating IP; fip-ext-net proxy-answered on fg-c1 (§6.5).
    assert!(
        text.contains("proxy reply 203.0.113.101 is-at fa:16:3e:dd:00:21"),
        "{text}"
    );
}

/// A UDP datagram from `vm` to `dst`:53.
fn udp_from(s: &Sim, vm: &str, dst: &str, gw_mac: &str) -> FlowKey {
    let e = s.endpoint(vm).expect("vm");
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::IPV4 as u64);
    k.set(Field::DlSrc, e.mac.to_u64());
    k.set(Field::DlDst, mac(gw_mac).to_u64());
    k.set(Field::NwSrc, u32::from(e.ip) as u64);
    k.set(Field::NwDst, u32::from(ip(dst)) as u64);
    k.set(Field::NwProto, ipproto::UDP as u64);
    k.set(Field::NwTtl, 64);
    k.set(Field::TpSrc, 40000);
    k.set(Field::TpDst, 53);
    k
}

#[test]
fn icmp_errors_about_snated_packets_are_related_and_translated_back() {
    let (mut s, _) = with_upstream();
    // vm3 has no floating IP: its datagram leaves network1 SNATed to
    // 203.0.113.10; the upstream router answers port unreachable to that
    // address, quoting the translated datagram.
    s.arp("vm3", ip("10.1.0.1")).expect("run");
    s.clear_records();
    let k = udp_from(&s, "vm3", "198.51.100.1", GW1);
    s.send_frame("vm3", &k).expect("run");
    let errs: Vec<FlowKey> = s
        .endpoint("vm3")
        .expect("vm3")
        .received
        .iter()
        .filter(|k| k.is_ipv4() && k.nw_proto() == ipproto::ICMP)
        .copied()
        .collect();
    assert_eq!(errs.len(), 1, "{}", s.render_steps());
    assert_eq!(
        (errs[0].tp_src(), errs[0].tp_dst()),
        (3, 3),
        "port unreachable"
    );
    assert_eq!(
        errs[0].nw_dst(),
        u32::from(ip("10.1.0.13")),
        "outer destination translated back"
    );
    // On the external wire the error was addressed to the SNAT address.
    let on_wire = s
        .wire
        .iter()
        .find(|w| {
            w.segment == Segment::External && w.key.is_ipv4() && w.key.nw_proto() == ipproto::ICMP
        })
        .expect("error on the wire");
    assert_eq!(on_wire.key.nw_dst(), u32::from(ip("203.0.113.10")));
    let text = s.render_steps();
    assert!(text.contains("ICMP error, looked up as related"), "{text}");
}

#[test]
fn quoted_packet_inside_the_error_is_translated_too() {
    use pipeline::packet::embedded::{icmp_embedded, Embedded};
    // The same walk, looking at the bytes vm3 receives.
    let (mut s, _) = with_upstream();
    s.arp("vm3", ip("10.1.0.1")).expect("run");
    s.clear_records();
    let k = udp_from(&s, "vm3", "198.51.100.1", GW1);
    s.send_frame("vm3", &k).expect("run");
    let frame = s
        .endpoint_frames("vm3")
        .into_iter()
        .rev()
        .find(|f| f.len() > 42 && f[23] == 1)
        .expect("icmp frame");
    let mut pkt = pipeline::packet::PacketBuf::new(2048);
    pkt.set_data(&frame).expect("fits");
    pipeline::packet::parse_into(&mut pkt).expect("parses");
    let e = icmp_embedded(&pkt).expect("quotes a packet");
    assert_eq!(
        e,
        Embedded {
            proto: ipproto::UDP,
            src: u32::from(ip("10.1.0.13")),
            dst: u32::from(ip("198.51.100.1")),
            sport: 40000,
            dport: 53
        },
        "vm3 sees its own datagram quoted"
    );
    // Checksums: outer ICMP over the message, quoted IP header.
    let d = pkt.data();
    assert_eq!(pipeline::packet::checksum(&d[34..]), 0, "ICMP checksum");
    assert_eq!(
        pipeline::packet::checksum(&d[42..62]),
        0,
        "quoted IP header checksum"
    );
}

fn syn_acks(s: &Sim, who: &str) -> usize {
    s.endpoint(who)
        .expect("endpoint")
        .received
        .iter()
        .filter(|k| {
            k.is_ipv4()
                && k.nw_proto() == ipproto::TCP
                && k.get(Field::TcpFlags) as u16 & 0x12 == 0x12
        })
        .count()
}

#[test]
fn s8_8_tcp_connections_in_both_directions_through_the_floating_ip() {
    let (mut s, _) = with_upstream();
    // Outside -> floating IP: DNAT to vm1, handshake completes.
    s.tcp_connect("upstream", ip("203.0.113.101"), 40001, 22)
        .expect("run");
    assert_eq!(syn_acks(&s, "upstream"), 1, "{}", s.render_steps());
    // vm1 -> outside: SNAT to the floating IP, handshake completes.
    s.clear_records();
    s.tcp_connect("vm1", ip("198.51.100.1"), 40002, 80)
        .expect("run");
    assert_eq!(syn_acks(&s, "vm1"), 1, "{}", s.render_steps());
    let syn = s
        .wire
        .iter()
        .find(|w| {
            w.segment == Segment::External && w.key.is_ipv4() && w.key.nw_proto() == ipproto::TCP
        })
        .expect("SYN on the wire");
    assert_eq!(syn.key.nw_src(), u32::from(ip("203.0.113.101")));
    // compute1's qrouter zone holds both connections, established.
    let sw = s.switch("compute1").expect("compute1");
    let conns = sw.conntrack.dump(None, None);
    let tcp: Vec<_> = conns
        .iter()
        .filter(|c| c.orig.proto == ipproto::TCP)
        .collect();
    assert_eq!(tcp.len(), 2, "{conns:#?}");
    for c in tcp {
        assert_eq!(format!("{:?}", c.tcp), "Some(Established)", "{c:?}");
        assert!(c.snat || c.dnat);
    }
}

#[test]
fn floating_ip_disassociated_and_reassociated_at_run_time() {
    let with_fip = devtools::spec::topology().expect("valid");
    let (mut s, _) = with_upstream();
    s.ping("vm1", ip("198.51.100.1"), 31).expect("run");
    s.tcp_connect("vm1", ip("198.51.100.1"), 41000, 443)
        .expect("run");
    let zone_conns = |s: &Sim| {
        s.switch("compute1")
            .expect("compute1")
            .conntrack
            .dump(None, Some(ip("203.0.113.101")))
            .len()
    };
    assert_eq!(zone_conns(&s), 2, "ICMP and TCP through the floating IP");

    // Disassociate: the agent drops the FIP's rules, routes, proxy ARP and connections.
    let mut without = with_fip.clone();
    without.floating_ips[0].port = None;
    let deleted = s.apply_topology(&without).expect("apply");
    assert_eq!(deleted, 2);
    assert_eq!(zone_conns(&s), 0);
    s.clear_records();
    s.ping("vm1", ip("198.51.100.1"), 32).expect("run");
    assert_eq!(echo_replies(&s, "vm1").len(), 1, "{}", s.render_steps());
    let out = external_icmp(&s)[0];
    assert_eq!(
        out.nw_src(),
        u32::from(ip("203.0.113.10")),
        "now through the network node's SNAT"
    );
    // The outside can no longer reach vm1 by the old floating IP.
    s.clear_records();
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::ARP as u64);
    k.set(Field::DlSrc, mac("52:54:00:00:00:01").to_u64());
    k.set(Field::DlDst, Mac::BROADCAST.to_u64());
    k.set(Field::NwProto, 1);
    k.set(Field::NwSrc, u32::from(ip("203.0.113.1")) as u64);
    k.set(Field::NwDst, u32::from(ip("203.0.113.101")) as u64);
    k.set(Field::ArpSha, mac("52:54:00:00:00:01").to_u64());
    s.send_frame("upstream", &k).expect("run");
    let answered = s
        .endpoint("upstream")
        .expect("upstream")
        .received
        .iter()
        .any(|k| k.is_arp() && k.nw_proto() == 2);
    assert!(
        !answered,
        "no proxy ARP for a floating IP that is not bound"
    );

    // Re-associate: egress through compute1's fg- again, MAC tables intact.
    s.apply_topology(&with_fip).expect("apply");
    s.clear_records();
    s.ping("vm1", ip("198.51.100.1"), 33).expect("run");
    assert_eq!(echo_replies(&s, "vm1").len(), 1, "{}", s.render_steps());
    assert_eq!(
        external_icmp(&s)[0].nw_src(),
        u32::from(ip("203.0.113.101"))
    );
}
