//! What a router instance refuses before it routes, as Linux's namespaces
//! do: martian sources and destinations, multicast it does not forward,
//! IPv4 headers with a bad checksum; and what conntrack calls invalid (a
//! TCP/UDP checksum already wrong) is not translated, and not let out
//! untranslated where a NAT would have applied (spec §7: "an
//! implementation may drop such packets instead"), nor is an ICMP error
//! about no connection; an error the router itself sends about a
//! translated packet quotes it as its sender sent it.
//!
//! Each test sends frames into the host of the spec's topology that the
//! walk crosses (compute1's qrouter and fip namespace, network1's snat
//! namespace) through its datapath, warm as traffic.rs leaves it, and
//! checks where they went and under which reason they were dropped.

mod host;

use devtools::traffic::TrafficScenario;
use host::{
    icmp_error_frame, ipv4_addrs, l3_offset, quote_of, quoted_addrs, readdress, tenant, Host,
};
use pipeline::drop::DropReason;
use pipeline::key::Field;
use pipeline::packet::parse;
use pipeline::wire::{ipproto, UdpPacket};
use std::net::Ipv4Addr;

#[test]
fn multicast_and_loopback_destinations_from_a_vm_are_not_routed() {
    for s in [TrafficScenario::FipEgress, TrafficScenario::SnatEgress] {
        let (mut h, frames) = Host::for_scenario(s);
        for (dst, reason) in [
            (
                Ipv4Addr::new(224, 0, 0, 13),
                DropReason::MulticastNotForwarded,
            ),
            (
                Ipv4Addr::new(239, 1, 2, 3),
                DropReason::MulticastNotForwarded,
            ),
            (Ipv4Addr::new(127, 0, 0, 1), DropReason::MartianDestination),
            (Ipv4Addr::new(0, 1, 2, 3), DropReason::MartianDestination),
        ] {
            let before = h.drops(reason);
            let f = readdress(&frames[0], None, Some(dst));
            let out = h.send(s.in_port(), &[f]);
            assert!(
                out.iter().all(|(p, _)| p != "eth2"),
                "{} to {dst}: nothing leaves eth2, got {out:?}",
                s.name()
            );
            assert_eq!(
                h.drops(reason),
                before + 1,
                "{} to {dst}: {reason}",
                s.name()
            );
        }
    }
}

#[test]
fn martian_sources_from_outside_reach_no_vm() {
    let (mut h, frames) = Host::for_scenario(TrafficScenario::FipIngress);
    for src in [
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::new(0, 0, 0, 7),
        Ipv4Addr::new(224, 0, 0, 5),
        Ipv4Addr::BROADCAST,
    ] {
        let before = h.drops(DropReason::MartianSource);
        let f = readdress(&frames[0], Some(src), None);
        let out = h.send("eth2", &[f]);
        assert!(
            out.iter().all(|(p, _)| !p.starts_with("qvo-")),
            "from {src}: no VM gets it, got {out:?}"
        );
        assert_eq!(h.drops(DropReason::MartianSource), before + 1, "from {src}");
    }
    // A well-formed one still goes through.
    let out = h.send("eth2", &[frames[0].clone()]);
    assert!(out.iter().any(|(p, _)| p == "qvo-vm1"), "{out:?}");
}

#[test]
fn a_bad_ipv4_header_checksum_is_dropped_before_routing_not_when_switched() {
    let (mut h, frames) = Host::for_scenario(TrafficScenario::FipEgress);
    let mut bad = frames[0].clone();
    let o = l3_offset(&bad);
    bad[o + 10] ^= 0x5a; // the header checksum
    let out = h.send("qvo-vm1", &[bad]);
    assert!(out.is_empty(), "not routed: {out:?}");
    assert_eq!(h.drops(DropReason::Ipv4BadChecksum), 1);
    // Switched (vm1 to vm3, same network): a bridge does not look at it.
    let (mut h, frames) = Host::for_scenario(TrafficScenario::L2Egress);
    let mut bad = frames[0].clone();
    let o = l3_offset(&bad);
    bad[o + 10] ^= 0x5a;
    let out = h.send("qvo-vm1", std::slice::from_ref(&bad));
    assert_eq!(out.len(), 1, "switched as it is");
    assert_eq!(h.drops(DropReason::Ipv4BadChecksum), 0);
}

#[test]
fn a_bad_transport_checksum_is_not_translated_nor_let_out_untranslated() {
    for s in [TrafficScenario::SnatEgress, TrafficScenario::FipEgress] {
        let (mut h, frames) = Host::for_scenario(s);
        // A new connection (another source port) with a wrong UDP checksum.
        let mut k = parse(&frames[0], 0).expect("frame").key;
        k.set(Field::TpSrc, 40_001);
        let mut bad = pipeline::packet::synth::frame_from_key(&k, 18);
        let o = l3_offset(&bad);
        let ihl = (bad[o] & 0x0f) as usize * 4;
        {
            let mut udp = UdpPacket::new_checked(&mut bad[o + ihl..]).expect("udp");
            let c = udp.checksum();
            udp.set_checksum(c ^ 0x1234);
        }
        assert_eq!(k.nw_proto(), ipproto::UDP);
        let invalid = h.sw.conntrack.stats().invalid;
        let conns = h.sw.conntrack.len();
        let out = h.send(s.in_port(), &[bad]);
        for (p, f) in &out {
            if p == "eth2" {
                let (src, dst) = ipv4_addrs(f).expect("ipv4");
                assert!(
                    !tenant(src) && !tenant(dst),
                    "{}: a tenant address on the external network: {src} -> {dst}",
                    s.name()
                );
            }
        }
        assert_eq!(
            h.sw.conntrack.len(),
            conns,
            "{}: no connection for it",
            s.name()
        );
        assert!(
            h.sw.conntrack.stats().invalid > invalid,
            "{}: counted invalid",
            s.name()
        );
    }
}

#[test]
fn an_icmp_error_from_a_vm_about_no_connection_does_not_leave_untranslated() {
    for s in [TrafficScenario::SnatEgress, TrafficScenario::FipEgress] {
        let (mut h, frames) = Host::for_scenario(s);
        let k = parse(&frames[0], 0).expect("frame").key;
        // "Port unreachable" about a datagram from the outside host to
        // the VM on ports no connection uses.
        let mut about = k;
        about.set(Field::NwSrc, k.nw_dst() as u64);
        about.set(Field::NwDst, k.nw_src() as u64);
        about.set(Field::TpSrc, 7_777);
        about.set(Field::TpDst, 5_555);
        let quoted = quote_of(&pipeline::packet::synth::frame_from_key(&about, 8));
        let err = icmp_error_frame(&k, 3, 3, &quoted);
        let invalid = h.sw.conntrack.stats().invalid;
        let dropped = h.drops(DropReason::CtInvalid);
        let out = h.send(s.in_port(), &[err]);
        for (p, f) in &out {
            if p == "eth2" {
                let (src, dst) = ipv4_addrs(f).expect("ipv4");
                assert!(
                    !tenant(src) && !tenant(dst),
                    "{}: a tenant address on the external network: {src} -> {dst}",
                    s.name()
                );
            }
        }
        assert!(
            h.sw.conntrack.stats().invalid > invalid,
            "{}: counted invalid",
            s.name()
        );
        assert_eq!(h.drops(DropReason::CtInvalid), dropped + 1, "{}", s.name());
    }
}

#[test]
fn a_routers_icmp_error_about_a_translated_reply_quotes_what_its_sender_sent() {
    // A reply to vm3's SNATed flow whose TTL runs out in the snat
    // namespace, after conntrack gave it vm3's address back: the time
    // exceeded sent to the outside host quotes the packet as that host
    // sent it (to 203.0.113.10), as Linux's conntrack translates a
    // locally generated error related to a connection.
    let (mut h, frames) = Host::for_scenario(TrafficScenario::SnatReply);
    let mut reply = frames[0].clone();
    let o = l3_offset(&reply);
    reply[o + 8] = 1; // TTL
    reply[o + 10..o + 12].copy_from_slice(&[0, 0]);
    let sum = pipeline::wire::checksum::checksum(&reply[o..o + 20]);
    reply[o + 10..o + 12].copy_from_slice(&sum.to_be_bytes());
    let (sent_src, sent_dst) = ipv4_addrs(&reply).expect("ipv4");
    let out = h.send("eth2", &[reply]);
    let errors: Vec<&Vec<u8>> = out
        .iter()
        .filter(|(p, _)| p == "eth2")
        .map(|(_, f)| f)
        .collect();
    assert_eq!(errors.len(), 1, "one time exceeded back out eth2: {out:?}");
    let err = errors[0];
    let o = l3_offset(err);
    assert_eq!(err[o + 9], ipproto::ICMP);
    assert_eq!(err[o + 20], 11, "time exceeded");
    let (src, dst) = ipv4_addrs(err).expect("ipv4");
    assert!(
        !tenant(src),
        "from the router's external address, not {src}"
    );
    assert_eq!(dst, sent_src);
    assert_eq!(
        quoted_addrs(err),
        (sent_src, sent_dst),
        "the quoted packet is the one the outside host sent"
    );
    let icmp = &err[o + 20..o + 20 + 8 + 28];
    assert_eq!(pipeline::wire::checksum::checksum(icmp), 0, "ICMP checksum");
    assert!(out.iter().all(|(p, _)| !p.starts_with("qvo-")), "{out:?}");
}
