//! NAT for what has no ports of its own, as Linux's namespaces do it:
//! IPv4 fragments are reassembled before conntrack (`nf_defrag_ipv4`), so
//! every fragment of a datagram is tracked and translated as its datagram
//! (floating IP and central SNAT, both directions); protocols without
//! ports (GRE, ESP, PIM, …) are tracked and translated by address
//! (netfilter's generic handler), and ICMP errors about them are
//! translated back. No tenant address leaves on the external network.
//!
//! Each test sends frames into the host of the spec's topology that the
//! walk crosses (`host::Host`) and reassembles, checks and compares what
//! comes out.

mod host;

use devtools::traffic::TrafficScenario;
use host::{
    icmp_error_frame, ipv4_addrs, l3_offset, quote_of, quoted_addrs, tenant, Host, Outputs,
};
use pipeline::drop::DropReason;
use pipeline::key::{Field, FlowKey};
use pipeline::packet::parse;
use pipeline::packet::synth::{fragments, frame_from_key};
use pipeline::wire::checksum::{fold, sum_words};
use pipeline::wire::ipv4::pseudo_header_sum;
use pipeline::wire::{ipproto, Ipv4Packet, UdpPacket};
use std::net::Ipv4Addr;

const SEC: u64 = 1_000_000_000;

/// A UDP datagram of `payload` bytes (a non-zero pattern, checksum right)
/// with the link, addresses and ports of `like`, IP id `id`.
fn big_udp(like: &[u8], payload: usize, id: u16) -> Vec<u8> {
    let k = parse(like, 0).expect("frame").key;
    assert_eq!(k.nw_proto(), ipproto::UDP, "the scenario's frames are UDP");
    let mut f = frame_from_key(&k, payload);
    let l3 = l3_offset(&f);
    let udp_at = l3 + 20;
    for (i, b) in f[udp_at + 8..udp_at + 8 + payload].iter_mut().enumerate() {
        *b = (i * 13 + 1) as u8;
    }
    let mut ip = Ipv4Packet::new_checked(&mut f[l3..]).expect("ipv4");
    ip.set_ident(id);
    ip.set_flags_frag(0);
    ip.fill_checksum();
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    UdpPacket::new_checked(&mut f[udp_at..udp_at + 8 + payload])
        .expect("udp")
        .fill_checksum(src, dst);
    f
}

/// A datagram put back together from its fragments: addresses, protocol
/// and payload (offset order); panics on holes, overlaps, bad IP header
/// checksums or mixed datagrams.
struct Reassembled {
    src: u32,
    dst: u32,
    proto: u8,
    payload: Vec<u8>,
}

fn reassemble(frames: &[&Vec<u8>]) -> Reassembled {
    let mut parts: Vec<(usize, Vec<u8>, bool)> = Vec::new();
    let mut id = None;
    for f in frames {
        let ip = Ipv4Packet::new_checked(&f[l3_offset(f)..]).expect("ipv4");
        assert!(ip.verify_checksum(), "IP header checksum of every fragment");
        let this = (ip.src_addr(), ip.dst_addr(), ip.protocol(), ip.ident());
        assert_eq!(*id.get_or_insert(this), this, "one datagram");
        parts.push((
            ip.fragment_offset() as usize * 8,
            ip.payload().to_vec(),
            ip.more_fragments(),
        ));
    }
    parts.sort_by_key(|p| p.0);
    let mut payload = Vec::new();
    for (ofs, bytes, _) in &parts {
        assert_eq!(*ofs, payload.len(), "no hole, no overlap");
        payload.extend_from_slice(bytes);
    }
    assert!(!parts.last().expect("fragments").2, "ends with the last");
    let (src, dst, proto, _) = id.expect("fragments");
    Reassembled {
        src,
        dst,
        proto,
        payload,
    }
}

impl Reassembled {
    fn udp_ok(&self) -> bool {
        assert_eq!(self.proto, ipproto::UDP);
        let pseudo = pseudo_header_sum(self.src, self.dst, ipproto::UDP, self.payload.len() as u16);
        fold(sum_words(&self.payload, pseudo)) == 0xffff
    }

    fn ports(&self) -> (u16, u16) {
        let p = &self.payload;
        (
            u16::from_be_bytes([p[0], p[1]]),
            u16::from_be_bytes([p[2], p[3]]),
        )
    }
}

/// The frames that came out on `port`.
fn on<'a>(out: &'a [(String, Vec<u8>)], port: &str) -> Vec<&'a Vec<u8>> {
    out.iter()
        .filter(|(p, _)| p == port)
        .map(|(_, f)| f)
        .collect()
}

fn ip_len(frame: &[u8]) -> usize {
    Ipv4Packet::new_checked(&frame[l3_offset(frame)..])
        .expect("ipv4")
        .total_len()
}

#[test]
fn every_fragment_of_a_vms_datagram_leaves_translated_in_any_order() {
    for s in [TrafficScenario::SnatEgress, TrafficScenario::FipEgress] {
        let (mut h, frames) = Host::for_scenario(s);
        // The unfragmented packet's translation, for comparison.
        let plain = h.send(s.in_port(), &[frames[0].clone()]);
        let (public, _) = ipv4_addrs(on(&plain, "eth2")[0]).expect("ipv4");
        assert!(!tenant(public));
        for (n, order) in [[0usize, 1, 2], [2, 0, 1]].iter().enumerate() {
            let whole = big_udp(&frames[0], 3000, 100 + n as u16);
            let frags = fragments(&whole, 1480);
            assert_eq!(frags.len(), 3);
            let sent: Vec<Vec<u8>> = order.iter().map(|i| frags[*i].clone()).collect();
            // One burst each: the datagram is whole with the third.
            let mut out = Outputs::default();
            for f in &sent {
                out.extend(h.send(s.in_port(), std::slice::from_ref(f)));
            }
            let ext = on(&out, "eth2");
            assert_eq!(
                ext.len(),
                3,
                "{} {order:?}: all three out: {out:?}",
                s.name()
            );
            for f in &ext {
                let (src, dst) = ipv4_addrs(f).expect("ipv4");
                assert_eq!(
                    src,
                    public,
                    "{} {order:?}: from the public address",
                    s.name()
                );
                assert!(!tenant(dst));
            }
            // Offsets in order, none bigger than what came in.
            let offsets: Vec<u16> = ext
                .iter()
                .map(|f| {
                    Ipv4Packet::new_checked(&f[l3_offset(f)..])
                        .expect("ipv4")
                        .fragment_offset()
                })
                .collect();
            assert_eq!(offsets, vec![0, 185, 370], "first fragment first");
            let biggest_in = frags.iter().map(|f| ip_len(f)).max();
            assert!(ext.iter().map(|f| ip_len(f)).max() <= biggest_in);
            let d = reassemble(&ext);
            assert!(d.udp_ok(), "{}: the UDP checksum of the datagram", s.name());
            let dport = parse(&frames[0], 0).expect("frame").key.tp_dst();
            assert_eq!(d.ports().1, dport);
            assert_eq!(
                d.payload[8..],
                reassemble(&frags.iter().collect::<Vec<_>>()).payload[8..],
                "the data as sent"
            );
        }
        let st = h.sw.conntrack.stats();
        assert_eq!(st.defrag.reassembled, 2);
        assert_eq!((st.defrag.pending, st.defrag.held_bytes), (0, 0));
    }
}

#[test]
fn every_fragment_from_outside_reaches_the_vm_translated() {
    for (s, vm_port) in [
        (TrafficScenario::FipIngress, "qvo-vm1"),
        (TrafficScenario::SnatReply, "eth1"),
    ] {
        let (mut h, frames) = Host::for_scenario(s);
        let plain = h.send(s.in_port(), &[frames[0].clone()]);
        let delivered = on(&plain, vm_port);
        assert_eq!(delivered.len(), 1, "{}: {plain:?}", s.name());
        let (_, vm_addr) = ipv4_addrs(delivered[0]).expect("ipv4");
        assert!(tenant(vm_addr));
        let frags = fragments(&big_udp(&frames[0], 4000, 7), 1480);
        assert_eq!(frags.len(), 3);
        let mut out = Outputs::default();
        for f in frags.iter().rev() {
            out.extend(h.send(s.in_port(), std::slice::from_ref(f)));
        }
        let got = on(&out, vm_port);
        assert_eq!(got.len(), 3, "{}: all three in: {out:?}", s.name());
        assert_eq!(h.drops(DropReason::NoRoute), 0, "{}", s.name());
        let d = reassemble(&got);
        assert_eq!(Ipv4Addr::from(d.dst), vm_addr, "{}", s.name());
        assert!(d.udp_ok(), "{}: UDP checksum", s.name());
        let sent = parse(&frames[0], 0).expect("frame").key;
        let plain_port = parse(delivered[0], 0).expect("frame").key.tp_dst();
        assert_eq!(d.ports(), (sent.tp_src(), plain_port), "{}", s.name());
    }
}

#[test]
fn a_datagram_never_completed_is_dropped_after_the_reassembly_timeout() {
    let s = TrafficScenario::FipEgress;
    let (mut h, frames) = Host::for_scenario(s);
    let frags = fragments(&big_udp(&frames[0], 3000, 9), 1480);
    let out = h.send(s.in_port(), &frags[..2]);
    assert!(out.is_empty(), "held: {out:?}");
    assert_eq!(h.sw.conntrack.stats().defrag.pending, 1);
    h.wait(31 * SEC);
    // Any traffic runs the workers' upkeep.
    let _ = h.send(s.in_port(), &[frames[0].clone()]);
    assert_eq!(h.drops(DropReason::FragTimeout), 2);
    assert_eq!(h.sw.conntrack.stats().defrag.pending, 0);
    // Its last fragment alone now waits for a datagram that is gone.
    let out = h.send(s.in_port(), &frags[2..]);
    assert!(out.is_empty(), "{out:?}");
}

/// A packet of protocol `proto` with `payload` bytes after the IP header,
/// with the link and addresses of `like`.
fn portless(like: &[u8], proto: u8, payload: usize) -> Vec<u8> {
    let mut k = parse(like, 0).expect("frame").key;
    k.set(Field::NwProto, proto as u64);
    k.set(Field::TpSrc, 0);
    k.set(Field::TpDst, 0);
    frame_from_key(&k, payload)
}

/// `frame` sent back: addresses and MACs swapped.
fn answer(frame: &[u8]) -> FlowKey {
    let mut k = parse(frame, 0).expect("frame").key;
    let (s, d) = (k.nw_src(), k.nw_dst());
    k.set(Field::NwSrc, d as u64);
    k.set(Field::NwDst, s as u64);
    let (ms, md) = (k.get(Field::DlSrc), k.get(Field::DlDst));
    k.set(Field::DlSrc, md);
    k.set(Field::DlDst, ms);
    k.set(Field::NwTtl, 64);
    k
}

/// The scenario of the answers to `s`'s packets.
fn replies_to(s: TrafficScenario) -> TrafficScenario {
    match s {
        TrafficScenario::SnatEgress => TrafficScenario::SnatReply,
        TrafficScenario::FipEgress => TrafficScenario::FipIngress,
        other => other,
    }
}

const GRE: u8 = 47;
const ESP: u8 = 50;
const PIM: u8 = 103;
const VRRP: u8 = 112;

#[test]
fn protocols_without_ports_are_translated_by_address_both_ways() {
    for (s, reply_to) in [
        (TrafficScenario::SnatEgress, "eth1"),
        (TrafficScenario::FipEgress, "qvo-vm1"),
    ] {
        for proto in [GRE, ESP, PIM] {
            // Warm for the replies too (the VM's neighbour entry).
            let (mut h, mut frames) = Host::for_scenarios(&[s, replies_to(s)]);
            let frames = frames.remove(0);
            let (vm, _) = ipv4_addrs(&frames[0]).expect("ipv4");
            let out = h.send(s.in_port(), &[portless(&frames[0], proto, 24)]);
            let ext = on(&out, "eth2");
            assert_eq!(ext.len(), 1, "{} proto {proto}: {out:?}", s.name());
            let (src, _) = ipv4_addrs(ext[0]).expect("ipv4");
            assert!(!tenant(src), "{} proto {proto}: from {src}", s.name());
            let ip = Ipv4Packet::new_checked(&ext[0][l3_offset(ext[0])..]).expect("ipv4");
            assert!(ip.verify_checksum());
            assert_eq!(ip.protocol(), proto);
            // The peer's answer comes back to the VM.
            let back = frame_from_key(&answer(ext[0]), 24);
            let out = h.send("eth2", &[back]);
            let got = on(&out, reply_to);
            assert_eq!(got.len(), 1, "{} proto {proto} back: {out:?}", s.name());
            assert_eq!(ipv4_addrs(got[0]).expect("ipv4").1, vm);
            // So does an ICMP error about what the VM sent, its quote
            // translated back to the VM's address.
            let err = icmp_error_frame(&answer(ext[0]), 3, 1, &quote_of(ext[0]));
            let out = h.send("eth2", &[err]);
            let got = on(&out, reply_to);
            assert_eq!(got.len(), 1, "{} proto {proto} error: {out:?}", s.name());
            assert_eq!(ipv4_addrs(got[0]).expect("ipv4").1, vm);
            assert_eq!(
                quoted_addrs(got[0]).0,
                vm,
                "{} proto {proto}: {:02x?}",
                s.name(),
                got[0]
            );
        }
    }
}

#[test]
fn no_tenant_address_leaves_on_the_external_network_whatever_the_protocol() {
    for s in [TrafficScenario::SnatEgress, TrafficScenario::FipEgress] {
        let (mut h, frames) = Host::for_scenario(s);
        for proto in [GRE, ESP, PIM, VRRP, 4, 41, 132, 253] {
            let mut f = portless(&frames[0], proto, 40);
            if proto == VRRP {
                // VRRP goes to its group: not forwarded by a router.
                let o = l3_offset(&f);
                f[o + 16..o + 20].copy_from_slice(&[224, 0, 0, 18]);
                let mut ip = Ipv4Packet::new_checked(&mut f[o..]).expect("ipv4");
                ip.fill_checksum();
            }
            let out = h.send(s.in_port(), &[f]);
            for f in on(&out, "eth2") {
                let (src, dst) = ipv4_addrs(f).expect("ipv4");
                assert!(
                    !tenant(src) && !tenant(dst),
                    "{} proto {proto}: {src} -> {dst}",
                    s.name()
                );
            }
        }
        assert_eq!(h.drops(DropReason::MulticastNotForwarded), 1);
    }
}

#[test]
fn a_trace_of_a_fragment_says_it_waits_for_its_datagram() {
    let s = TrafficScenario::FipEgress;
    let (h, frames) = Host::for_scenario(s);
    let frags = fragments(&big_udp(&frames[0], 3000, 21), 1480);
    let later = pipeline::xlate::trace::trace_frame(&h.sw, s.in_port(), &frags[1], 0)
        .expect("trace")
        .render();
    assert!(
        later.contains("a later fragment, held until its datagram is whole"),
        "{later}"
    );
    // The first fragment is followed as its datagram: translated.
    let first = pipeline::xlate::trace::trace_frame(&h.sw, s.in_port(), &frags[0], 0)
        .expect("trace")
        .render();
    assert!(first.contains("POSTROUTING: source NAT to"), "{first}");
}
