//! Anti-spoofing end to end, on the multi-host simulation of the spec's
//! lab: a VM that sends with another VM's MAC, poisons ARP for its gateway
//! or for a floating IP it does not own, or sends tagged frames, reaches
//! nobody (no endpoint receives it, no host learns from it).
#![deny(unsafe_code)]

use devtools::sim::{Segment, Sim};
use devtools::spec;
use pipeline::key::{Field, FlowKey, Mac, VLAN_CFI};
use pipeline::wire::{ethertype, ipproto};
use std::net::Ipv4Addr;

const VM1: &str = "fa:16:3e:01:00:11";
const VM2: &str = "fa:16:3e:01:00:12";
const VM3: &str = "fa:16:3e:01:00:13";
const VM4: &str = "fa:16:3e:02:00:14";

/// The spec's example with its upstream router (the external subnet's
/// gateway) and the external host behind it.
fn sim() -> Sim {
    let t = spec::topology().expect("valid");
    let mut s = Sim::new(&t).expect("sim");
    let ext = spec::external_subnet(&t).expect("external subnet");
    s.add_external_station(
        "upstream",
        spec::UPSTREAM_MAC,
        ext.gateway_ip,
        24,
        vec![spec::EXTERNAL_HOST],
    );
    // Everyone has spoken once: MACs learned, gateways resolved.
    for (vm, dst) in [
        ("vm1", "10.1.0.13"),
        ("vm2", "10.1.0.11"),
        ("vm3", "10.1.0.12"),
        ("vm4", "10.2.0.15"),
        ("vm5", "10.1.0.11"),
    ] {
        s.ping(vm, ip(dst), 1).expect("run");
    }
    s.clear_records();
    s
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("ip")
}

fn mac(s: &str) -> Mac {
    s.parse().expect("mac")
}

/// Nothing but the sender saw anything: no endpoint received a frame and
/// no frame crossed a physical segment.
fn reached_nobody(s: &Sim, sender: &str) {
    for e in &s.endpoints {
        if e.name != sender {
            assert!(
                e.received.is_empty(),
                "{} received {:?}\n{}",
                e.name,
                e.received,
                s.render_steps()
            );
        }
    }
    assert!(s.wire.is_empty(), "{:?}\n{}", s.wire, s.render_steps());
}

fn icmp(src_mac: &str, dst_mac: &str, src: &str, dst: &str) -> FlowKey {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::IPV4 as u64);
    k.set(Field::DlSrc, mac(src_mac).to_u64());
    k.set(Field::DlDst, mac(dst_mac).to_u64());
    k.set(Field::NwSrc, u32::from(ip(src)) as u64);
    k.set(Field::NwDst, u32::from(ip(dst)) as u64);
    k.set(Field::NwProto, ipproto::ICMP as u64);
    k.set(Field::NwTtl, 64);
    k.set(Field::TpSrc, 8);
    k
}

fn arp(sha: &str, op: u64, spa: &str, tpa: &str, dst_mac: &str) -> FlowKey {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::ARP as u64);
    k.set(Field::DlSrc, mac(sha).to_u64());
    k.set(Field::DlDst, mac(dst_mac).to_u64());
    k.set(Field::NwProto, op);
    k.set(Field::NwSrc, u32::from(ip(spa)) as u64);
    k.set(Field::NwDst, u32::from(ip(tpa)) as u64);
    k.set(Field::ArpSha, mac(sha).to_u64());
    k
}

#[test]
fn a_vm_sending_with_another_vms_mac_reaches_nobody() {
    let mut s = sim();
    // vm2 (compute1) as vm1, to vm3 on the other host and to vm1's neighbour.
    s.send_frame("vm2", &icmp(VM1, VM3, "10.1.0.11", "10.1.0.13"))
        .expect("run");
    s.send_frame("vm2", &icmp(VM1, VM1, "10.1.0.11", "10.1.0.11"))
        .expect("run");
    reached_nobody(&s, "vm2");
    // vm1's MAC is still where it was: vm3 reaches vm1, not vm2.
    s.ping("vm3", ip("10.1.0.11"), 2).expect("run");
    assert!(s.endpoint("vm2").expect("vm2").received.is_empty());
    assert!(!s.endpoint("vm1").expect("vm1").received.is_empty());
}

#[test]
fn a_vm_sending_with_another_vms_ip_reaches_nobody() {
    let mut s = sim();
    // vm2 with its own MAC but vm1's address: to vm3 (same network, other
    // host), to vm4 (routed), to the outside.
    s.send_frame("vm2", &icmp(VM2, VM3, "10.1.0.11", "10.1.0.13"))
        .expect("run");
    s.send_frame(
        "vm2",
        &icmp(VM2, "fa:16:3e:aa:01:01", "10.1.0.11", "10.2.0.14"),
    )
    .expect("run");
    let outside = spec::EXTERNAL_HOST.to_string();
    s.send_frame(
        "vm2",
        &icmp(VM2, "fa:16:3e:aa:01:01", "10.1.0.11", &outside),
    )
    .expect("run");
    // An address of no VM at all.
    s.send_frame("vm2", &icmp(VM2, VM3, "10.1.0.200", "10.1.0.13"))
        .expect("run");
    reached_nobody(&s, "vm2");
    // Its own address still works.
    s.ping("vm2", ip("10.1.0.13"), 9).expect("run");
    assert!(!s.endpoint("vm3").expect("vm3").received.is_empty());
}

#[test]
fn arp_poisoning_the_gateway_reaches_nobody() {
    let mut s = sim();
    // "10.1.0.1 is-at vm2", broadcast and to vm1.
    s.send_frame(
        "vm2",
        &arp(VM2, 2, "10.1.0.1", "10.1.0.11", "ff:ff:ff:ff:ff:ff"),
    )
    .expect("run");
    s.send_frame("vm2", &arp(VM2, 2, "10.1.0.1", "10.1.0.11", VM1))
        .expect("run");
    // And as a request (gratuitous ARP).
    s.send_frame(
        "vm2",
        &arp(VM2, 1, "10.1.0.1", "10.1.0.1", "ff:ff:ff:ff:ff:ff"),
    )
    .expect("run");
    reached_nobody(&s, "vm2");
}

#[test]
fn a_floating_ip_cannot_be_claimed_by_a_vm_that_does_not_own_it() {
    let mut s = sim();
    // vm2 announces vm1's floating IP, and sends from it to the outside.
    s.send_frame(
        "vm2",
        &arp(VM2, 2, "203.0.113.101", "203.0.113.1", "ff:ff:ff:ff:ff:ff"),
    )
    .expect("run");
    reached_nobody(&s, "vm2");
    let outside = spec::EXTERNAL_HOST.to_string();
    s.send_frame(
        "vm2",
        &icmp(VM2, "fa:16:3e:aa:01:01", "203.0.113.101", &outside),
    )
    .expect("run");
    assert!(
        s.wire
            .iter()
            .all(|w| w.segment != Segment::External
                || w.key.nw_src() != u32::from(ip("203.0.113.101"))),
        "{:?}",
        s.wire
    );
    assert!(s
        .endpoint("upstream")
        .expect("upstream")
        .received
        .is_empty());
    // The owner still uses it.
    s.clear_records();
    s.ping("vm1", spec::EXTERNAL_HOST, 3).expect("run");
    let up = s.endpoint("upstream").expect("upstream");
    assert!(
        up.received
            .iter()
            .any(|k| k.is_ipv4() && k.nw_src() == u32::from(ip("203.0.113.101"))),
        "{}",
        s.render_steps()
    );
}

#[test]
fn tagged_frames_from_a_vm_reach_nobody() {
    let mut s = sim();
    // Tagged with the other network's segmentation id, with a local VLAN,
    // and with its own network's id: a VM port is an access port.
    for vlan in [102u16, 2, 101, 1] {
        let mut k = icmp(VM1, VM4, "10.1.0.11", "10.2.0.14");
        k.set(Field::VlanTci, (vlan | VLAN_CFI) as u64);
        s.send_frame("vm1", &k).expect("run");
        let mut k = icmp(VM1, VM3, "10.1.0.11", "10.1.0.13");
        k.set(Field::VlanTci, (vlan | VLAN_CFI) as u64);
        s.send_frame("vm1", &k).expect("run");
    }
    reached_nobody(&s, "vm1");
}
