//! The harness checked on frames made here, so that it runs without the
//! captures: re-addressing keeps checksums as right or wrong as they were,
//! and each invariant flags what breaks it and nothing else.

use super::cast::Cast;
use super::frame;
use super::host::Outcome;
use super::invariants::{check, Invariant};
use super::roles::{self, Role, EXTERNAL, VM1_PORT};
use pipeline::key::{Field, FlowKey, Mac};
use pipeline::packet::synth::frame_from_key;
use pipeline::wire::{ethertype, ipproto, Ipv4Packet, TcpPacket, UdpPacket};
use std::net::Ipv4Addr;

fn cast() -> Cast {
    Cast::of(&devtools::spec::topology().expect("the spec's topology"))
}

/// A frame as a capture might hold it: from 10.40.2.3 to 192.0.2.9.
fn captured(proto: u8) -> Vec<u8> {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::IPV4 as u64);
    k.set(Field::DlSrc, 0x0200_0000_0001);
    k.set(Field::DlDst, 0x0200_0000_0002);
    k.set(Field::NwProto, proto as u64);
    k.set(Field::NwSrc, u32::from(Ipv4Addr::new(10, 40, 2, 3)) as u64);
    k.set(Field::NwDst, u32::from(Ipv4Addr::new(192, 0, 2, 9)) as u64);
    k.set(Field::NwTtl, 64);
    k.set(Field::TpSrc, 33000);
    k.set(Field::TpDst, 53);
    frame_from_key(&k, 40)
}

/// Whether the IPv4 header and the TCP or UDP checksums verify.
fn checksums_right(f: &[u8]) -> (bool, bool) {
    let ip = frame::ipv4(f).expect("IPv4");
    let (src, dst, l4) = (ip.src_addr(), ip.dst_addr(), ip.payload());
    let l4_right = match ip.protocol() {
        ipproto::TCP => TcpPacket::new_checked(l4).is_some_and(|t| t.verify_checksum(src, dst)),
        _ => UdpPacket::new_checked(l4).is_some_and(|u| u.verify_checksum(src, dst)),
    };
    (ip.verify_checksum(), l4_right)
}

fn corrupt_checksums(f: &mut [u8]) {
    let l3 = frame::layers(f).expect("Ethernet").l3;
    f[l3 + 10] ^= 0x5a; // the IPv4 header checksum
    let ihl = Ipv4Packet::new_checked(&f[l3..])
        .expect("IPv4")
        .header_len();
    let at = l3 + ihl + if f[l3 + 9] == ipproto::TCP { 16 } else { 6 };
    f[at] ^= 0x5a; // the TCP or UDP checksum
}

#[test]
fn re_addressing_keeps_checksums_as_right_or_wrong_as_they_were() {
    let c = cast();
    for proto in [ipproto::TCP, ipproto::UDP] {
        let good = captured(proto);
        assert_eq!(checksums_right(&good), (true, true));
        let mut bad = good.clone();
        corrupt_checksums(&mut bad);
        assert_eq!(checksums_right(&bad), (false, false));
        for role in roles::ALL {
            let (g, b) = (role.input(&c, &good), role.input(&c, &bad));
            assert_eq!(checksums_right(&g), (true, true), "{}", role.name());
            assert_eq!(checksums_right(&b), (false, false), "{}", role.name());
        }
        let (g, b) = (roles::snat_mirror(&c, &good), roles::snat_mirror(&c, &bad));
        assert_eq!(checksums_right(&g), (true, true), "the SNAT mirror");
        assert_eq!(checksums_right(&b), (false, false), "the SNAT mirror");
    }
}

#[test]
fn roles_put_frames_in_role_and_nothing_from_outside_is_a_tenant_address() {
    let c = cast();
    let f = captured(ipproto::UDP);
    let addrs = |f: &[u8]| {
        let ip = frame::ipv4(f).expect("IPv4");
        (Ipv4Addr::from(ip.src_addr()), Ipv4Addr::from(ip.dst_addr()))
    };
    let routed = Role::RoutedToVm4.input(&c, &f);
    assert_eq!(frame::eth_src(&routed), Some(c.vm1.0));
    assert_eq!(frame::eth_dst(&routed), Some(c.gw1.0));
    assert_eq!(addrs(&routed), (c.vm1.1, c.vm4.1));
    let fip_in = Role::FipIn.input(&c, &f);
    assert_eq!(frame::eth_dst(&fip_in), Some(c.fg_c1.0));
    assert_eq!(addrs(&fip_in), (Ipv4Addr::new(198, 51, 100, 3), c.fip));
    let snat = Role::SnatEgress.input(&c, &f);
    assert_eq!(frame::layers(&snat).map(|l| l.tags), Some(1));
    assert_eq!(addrs(&snat), (c.vm3.1, Ipv4Addr::new(192, 0, 2, 9)));
    let mirror = roles::snat_mirror(&c, &f);
    assert_eq!(addrs(&mirror), (c.vm3.1, Ipv4Addr::new(198, 51, 100, 3)));
    assert_eq!(frame::flow_ids(&mirror), Some((ipproto::UDP, 53, 33000)));
    assert_eq!(Role::VmSpoofer.input(&c, &f), f);
}

fn sent(port: &str, f: Vec<u8>) -> Outcome {
    Outcome {
        outputs: vec![(port.to_string(), f)],
        ..Outcome::default()
    }
}

fn broken(c: &Cast, in_port: &str, input: &[u8], out: &Outcome) -> Vec<Invariant> {
    check(c, in_port, input, out)
        .into_iter()
        .map(|f| f.invariant)
        .collect()
}

#[test]
fn each_invariant_flags_what_breaks_it_and_nothing_else() {
    let c = cast();
    let vm = Role::VmToGateway.input(&c, &captured(ipproto::TCP));
    // Nothing came out and nothing was counted.
    assert_eq!(
        broken(&c, VM1_PORT, &vm, &Outcome::default()),
        [Invariant::Accounted]
    );
    // Forwarded as it came: nothing to say.
    assert!(broken(&c, VM1_PORT, &vm, &sent("qvo-vm2", vm.clone())).is_empty());
    // Out of eth2 with vm1's address.
    assert_eq!(
        broken(&c, VM1_PORT, &vm, &sent(EXTERNAL, vm.clone())),
        [Invariant::NoTenantAddressOutside]
    );
    // ...unless it came in from there with it.
    let ext = captured(ipproto::TCP);
    assert!(broken(&c, EXTERNAL, &ext, &sent(EXTERNAL, ext.clone())).is_empty());
    // Tagged out of a VM port.
    let mut tagged = vm.clone();
    frame::push_vlan(&mut tagged, 7);
    assert_eq!(
        broken(&c, VM1_PORT, &vm, &sent("qvo-vm2", tagged)),
        [Invariant::NoTagLeak]
    );
    // Another VM's MAC from vm1's port, sent on.
    let mut spoofed = vm.clone();
    frame::set_macs(&mut spoofed, Some(Mac::from_u64(0x0200_0000_0009)), None);
    assert_eq!(
        broken(&c, VM1_PORT, &spoofed, &sent("qvo-vm2", spoofed.clone())),
        [Invariant::NoSpoofedSource]
    );
    // Routed (TTL 63) with the TCP checksum left as it was.
    let mut routed = vm.clone();
    let l3 = frame::layers(&routed).expect("Ethernet").l3;
    Ipv4Packet::new_checked(&mut routed[l3..])
        .expect("IPv4")
        .update_ttl(63);
    assert!(broken(&c, VM1_PORT, &vm, &sent("qvo-vm4", routed.clone())).is_empty());
    routed[l3 + 20 + 16] ^= 1;
    assert_eq!(
        broken(&c, VM1_PORT, &vm, &sent("qvo-vm4", routed)),
        [Invariant::WellFormed]
    );
}

/// A port-unreachable error from 192.0.2.9 to 10.40.2.3 quoting the UDP
/// datagram 10.40.2.3 sent it, checksums right.
fn captured_error() -> Vec<u8> {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::IPV4 as u64);
    k.set(Field::NwProto, ipproto::ICMP as u64);
    k.set(Field::NwSrc, u32::from(Ipv4Addr::new(192, 0, 2, 9)) as u64);
    k.set(Field::NwDst, u32::from(Ipv4Addr::new(10, 40, 2, 3)) as u64);
    k.set(Field::NwTtl, 64);
    k.set(Field::TpSrc, 3);
    k.set(Field::TpDst, 3);
    let quote = captured(ipproto::UDP);
    let quote = &quote[14..14 + 28];
    let mut f = frame_from_key(&k, quote.len());
    let l4 = 14 + 20;
    f[l4 + 8..l4 + 8 + quote.len()].copy_from_slice(quote);
    let mut m =
        pipeline::wire::IcmpPacket::new_checked(&mut f[l4..14 + 20 + 8 + 28]).expect("ICMP");
    m.fill_checksum();
    f
}

#[test]
fn an_icmp_errors_quote_is_re_addressed_with_it_and_checksums_stay_right() {
    let c = cast();
    let f = Role::FipOut.input(&c, &captured_error());
    let ip = frame::ipv4(&f).expect("IPv4");
    let icmp = pipeline::wire::IcmpPacket::new_checked(ip.payload()).expect("ICMP");
    assert!(icmp.verify_checksum());
    let q = frame::quoted(&f).expect("a quote");
    assert!(q.verify_checksum());
    assert_eq!(
        (Ipv4Addr::from(q.src_addr()), Ipv4Addr::from(q.dst_addr())),
        (c.external_host, c.vm1.1),
        "the quote is of the packet the error answers"
    );
}
