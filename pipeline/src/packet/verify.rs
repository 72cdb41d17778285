//! Checksum verification of a parsed packet, for the stages that must
//! refuse what does not sum: a router's IPv4 input (the header, as Linux's
//! `ip_rcv`) and conntrack (the transport checksum, as Linux's
//! `nf_conntrack_checksum`). Bridges never look.
//!
//! Both read the packet through its layout (`parse_into` set it; rewrites
//! keep it), so a frame too short for what the layout says simply does not
//! verify.

use super::buf::PacketBuf;
use super::layout::{L3, L4};
use crate::wire::{IcmpPacket, Ipv4Packet, TcpPacket, UdpPacket};

/// The IPv4 header's checksum sums to zero. A packet that is not IPv4
/// verifies (nothing to check).
#[inline]
pub fn ipv4_header_ok(pkt: &PacketBuf) -> bool {
    if pkt.layout.l3 != L3::Ipv4 {
        return true;
    }
    pkt.data()
        .get(pkt.layout.l3_ofs as usize..)
        .and_then(Ipv4Packet::new_checked)
        .is_some_and(|ip| ip.verify_checksum())
}

/// The TCP, UDP (0: none) or ICMP checksum of an IPv4 packet verifies
/// over the whole transport segment. A fragment verifies (its segment is
/// not whole here; a reassembled datagram is checked whole), and so does
/// anything that is not TCP, UDP or ICMP over IPv4.
pub fn l4_ok(pkt: &PacketBuf) -> bool {
    if pkt.layout.l3 != L3::Ipv4 || pkt.layout.l4 == L4::None {
        return true;
    }
    let Some(ip) = pkt
        .data()
        .get(pkt.layout.l3_ofs as usize..)
        .and_then(Ipv4Packet::new_checked)
    else {
        return false;
    };
    if ip.more_fragments() || ip.fragment_offset() != 0 {
        return true;
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let start = pkt.layout.l4_ofs as usize;
    let end = pkt.layout.l3_ofs as usize + ip.total_len();
    let Some(segment) = pkt.data().get(start..end) else {
        return false;
    };
    match pkt.layout.l4 {
        L4::Tcp => TcpPacket::new_checked(segment).is_some_and(|t| t.verify_checksum(src, dst)),
        L4::Udp => UdpPacket::new_checked(segment).is_some_and(|u| u.verify_checksum(src, dst)),
        L4::Icmp => IcmpPacket::new_checked(segment).is_some_and(|i| i.verify_checksum()),
        L4::None | L4::Icmpv6 => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{Field, FlowKey};
    use crate::packet::parse_into;
    use crate::packet::synth::frame_from_key;
    use crate::wire::{ethertype, ipproto};

    fn packet(proto: u8) -> PacketBuf {
        let mut k = FlowKey::ZERO;
        k.set(Field::DlType, ethertype::IPV4 as u64);
        k.set(Field::NwSrc, 0x0a01_000b);
        k.set(Field::NwDst, 0xc633_6407);
        k.set(Field::NwProto, proto as u64);
        k.set(Field::TpSrc, if proto == ipproto::ICMP { 8 } else { 1000 });
        k.set(Field::TpDst, 53);
        let mut p = PacketBuf::new(2048);
        p.set_data(&frame_from_key(&k, 30)).expect("fits");
        parse_into(&mut p).expect("parses");
        p
    }

    #[test]
    fn good_packets_verify_and_a_flipped_byte_does_not() {
        for proto in [ipproto::TCP, ipproto::UDP, ipproto::ICMP] {
            let mut p = packet(proto);
            assert!(ipv4_header_ok(&p) && l4_ok(&p), "{proto}");
            let l3 = p.layout.l3_ofs as usize;
            p.data_mut()[l3 + 10] ^= 1;
            assert!(!ipv4_header_ok(&p), "{proto}: header");
            let mut p = packet(proto);
            let end = p.len() - 20; // inside the payload
            p.data_mut()[end] ^= 1;
            assert!(ipv4_header_ok(&p) && !l4_ok(&p), "{proto}: transport");
        }
    }

    #[test]
    fn a_udp_datagram_without_checksum_verifies() {
        let mut p = packet(ipproto::UDP);
        let l4 = p.layout.l4_ofs as usize;
        p.data_mut()[l4 + 6] = 0;
        p.data_mut()[l4 + 7] = 0;
        assert!(l4_ok(&p));
    }
}
