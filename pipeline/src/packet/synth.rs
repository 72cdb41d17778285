//! Building frames from flow keys: what `trace`, the simulator, tests and
//! benchmarks use to turn "a packet with these fields" into bytes.
//!
//! The frame carries exactly the key's header fields (unset TTL becomes
//! 64), `payload_len` zero bytes after the headers, valid checksums, and is
//! padded to the 60-byte Ethernet minimum.
//!
//! Design: the frame's length is worked out first (each header's
//! `HEADER_LEN`), then each header is emitted into its view over a zeroed
//! buffer of exactly that length, transport checksums last. IPv6 frames
//! carry no transport checksums and a zero UDP length (the key has no IPv6
//! addresses to sum), as the flow key needs only their ports and types.

use crate::key::{Field, FlowKey, Mac, FRAG_ANY, FRAG_LATER, VLAN_CFI};
use crate::wire::VlanTag;
use crate::wire::{arp, ethernet, icmp, ipv4, ipv6, tcp, udp, vlan};
use crate::wire::{ethertype, ipproto, ArpPacket, ArpRepr, EthernetFrame, IcmpPacket, IcmpRepr};
use crate::wire::{Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, TcpPacket, TcpRepr, UdpPacket};

/// Minimum Ethernet frame without FCS.
pub const MIN_FRAME: usize = 60;

/// TTL (hop limit) of a key that leaves it unset.
const DEFAULT_TTL: u8 = 64;

/// The fragment offset (in 8-byte units) given to a later fragment: 1480.
const LATER_FRAGMENT_OFFSET: u16 = 185;

/// IPv6 addresses: a link-local pair (the key has no IPv6 addresses).
const SRC_V6: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const DST_V6: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// A frame whose parse gives back `key`'s packet fields.
pub fn frame_from_key(key: &FlowKey, payload_len: usize) -> Vec<u8> {
    let tci = key.vlan_tci();
    let tagged = tci & VLAN_CFI != 0;
    let l2_len = ethernet::HEADER_LEN + if tagged { vlan::HEADER_LEN } else { 0 };
    let dl_type = key.dl_type();
    let l3_len = match dl_type {
        ethertype::ARP => arp::HEADER_LEN,
        ethertype::IPV4 => ipv4::HEADER_LEN + ipv4_payload_len(key, payload_len),
        ethertype::IPV6 => ipv6::HEADER_LEN + l4_len(key, key.nw_proto()) + payload_len,
        _ => payload_len,
    };
    let mut f = vec![0u8; (l2_len + l3_len).max(MIN_FRAME)];
    if let Some(mut eth) = EthernetFrame::new_checked(&mut f[..]) {
        eth.set_dst(key.dl_dst());
        eth.set_src(key.dl_src());
        if let Some(tpid) = key.vlan_tpid() {
            eth.set_ethertype(tpid);
            if let Some(mut tag) = VlanTag::new_checked(eth.payload_mut()) {
                tag.set_tci(tci & !VLAN_CFI);
                tag.set_inner_ethertype(dl_type);
            }
        } else {
            eth.set_ethertype(dl_type);
        }
    }
    let l3 = f.get_mut(l2_len..l2_len + l3_len).unwrap_or(&mut []);
    match dl_type {
        ethertype::ARP => {
            if let Some(mut p) = ArpPacket::new_checked(l3) {
                ArpRepr {
                    op: key.nw_proto() as u16,
                    sha: Mac::from_u64(key.get(Field::ArpSha)),
                    spa: key.nw_src(),
                    tha: Mac::from_u64(key.get(Field::ArpTha)),
                    tpa: key.nw_dst(),
                }
                .emit(&mut p);
            }
        }
        ethertype::IPV4 => emit_ipv4(l3, key),
        ethertype::IPV6 => emit_ipv6(l3, key),
        _ => {}
    }
    f
}

/// A later fragment carries no transport header.
fn is_later_fragment(key: &FlowKey) -> bool {
    key.get(Field::NwFrag) as u8 & FRAG_LATER != 0
}

fn ipv4_payload_len(key: &FlowKey, payload_len: usize) -> usize {
    let l4 = if is_later_fragment(key) {
        0
    } else {
        l4_len(key, key.nw_proto())
    };
    l4 + payload_len
}

fn ttl(key: &FlowKey) -> u8 {
    match key.nw_ttl() {
        0 => DEFAULT_TTL,
        t => t,
    }
}

/// Length of the transport header `frame_from_key` writes for `proto`.
fn l4_len(key: &FlowKey, proto: u8) -> usize {
    match proto {
        ipproto::TCP => tcp::HEADER_LEN,
        ipproto::UDP => udp::HEADER_LEN,
        ipproto::ICMP => icmp::HEADER_LEN,
        ipproto::ICMPV6 if is_nd(key) => {
            icmp::field::ND_TARGET.end + if nd_option(key).is_some() { 8 } else { 0 }
        }
        ipproto::ICMPV6 => icmp::HEADER_LEN,
        _ => 0,
    }
}

/// An ICMPv6 neighbour solicitation or advertisement (with a target).
fn is_nd(key: &FlowKey) -> bool {
    u8::try_from(key.tp_src()).is_ok_and(icmp::is_neighbor_discovery)
}

/// Writes the transport header for `key` at the start of `l4`, checksum
/// (and UDP length) zero.
fn emit_l4(l4: &mut [u8], key: &FlowKey, proto: u8) {
    match proto {
        ipproto::TCP => {
            if let Some(mut p) = TcpPacket::new_checked(l4) {
                TcpRepr {
                    src_port: key.tp_src(),
                    dst_port: key.tp_dst(),
                    seq_number: 1,
                    ack_number: 0,
                    flags: key.get(Field::TcpFlags) as u16,
                    window: 0xffff,
                }
                .emit(&mut p);
            }
        }
        ipproto::UDP => {
            if let Some(mut p) = UdpPacket::new_checked(l4) {
                p.set_src_port(key.tp_src());
                p.set_dst_port(key.tp_dst());
            }
        }
        ipproto::ICMP | ipproto::ICMPV6 => {
            if let Some(mut p) = IcmpPacket::new_checked(&mut *l4) {
                IcmpRepr {
                    msg_type: key.tp_src() as u8,
                    code: key.tp_dst() as u8,
                    identifier: key.get(Field::IcmpId) as u16,
                    sequence: 1,
                }
                .emit(&mut p);
                if proto == ipproto::ICMPV6 && is_nd(key) {
                    let hi = key.get(Field::NdTargetHi) as u128;
                    let lo = key.get(Field::NdTargetLo) as u128;
                    p.set_nd_target((hi << 64 | lo).to_be_bytes());
                }
            }
            let at = icmp::field::ND_TARGET.end;
            if let (Some((kind, mac)), Some(opt)) = (
                nd_option(key).filter(|_| proto == ipproto::ICMPV6),
                l4.get_mut(at..at + 8),
            ) {
                opt[0] = kind;
                opt[1] = 1;
                opt[2..8].copy_from_slice(&Mac::from_u64(mac).0);
            }
        }
        _ => {}
    }
}

/// Writes the IPv4 datagram (`l3` is exactly its length).
fn emit_ipv4(l3: &mut [u8], key: &FlowKey) {
    let payload_len = l3.len().saturating_sub(ipv4::HEADER_LEN);
    let Some(mut ip) = Ipv4Packet::new_checked(l3) else {
        return;
    };
    let proto = key.nw_proto();
    let frag = key.get(Field::NwFrag) as u8;
    let later = is_later_fragment(key);
    let flags_frag = match (frag & FRAG_ANY != 0, later) {
        (_, true) => LATER_FRAGMENT_OFFSET,
        (true, false) => ipv4::MORE_FRAGMENTS,
        _ => ipv4::DONT_FRAGMENT,
    };
    let (src, dst) = (key.nw_src(), key.nw_dst());
    Ipv4Repr {
        tos: key.get(Field::NwTos) as u8,
        flags_frag,
        ttl: ttl(key),
        protocol: proto,
        src,
        dst,
        payload_len,
    }
    .emit(&mut ip);
    if later {
        return;
    }
    let l4 = ip.payload_mut();
    emit_l4(l4, key, proto);
    match proto {
        ipproto::TCP => {
            if let Some(mut p) = TcpPacket::new_checked(l4) {
                p.fill_checksum(src, dst);
            }
        }
        ipproto::UDP => {
            let len = l4.len() as u16;
            if let Some(mut p) = UdpPacket::new_checked(l4) {
                p.set_length(len);
                p.fill_checksum(src, dst);
            }
        }
        ipproto::ICMP => {
            if let Some(mut p) = IcmpPacket::new_checked(l4) {
                p.fill_checksum();
            }
        }
        _ => {}
    }
}

/// Writes the IPv6 packet (`l3` is exactly its length).
/// The key's IPv6 address in `hi`/`lo`, or `default` when it has none.
fn v6_or(key: &FlowKey, hi: Field, lo: Field, default: [u8; 16]) -> [u8; 16] {
    let a = (key.get(hi) as u128) << 64 | key.get(lo) as u128;
    if a == 0 {
        default
    } else {
        a.to_be_bytes()
    }
}

/// The link-layer option a neighbour discovery message of `key` carries:
/// (option type, MAC): the source's in a solicitation (`nd_sll`), the
/// target's in an advertisement (`nd_tll`), when the key has one.
fn nd_option(key: &FlowKey) -> Option<(u8, u64)> {
    let (kind, field) = match key.tp_src() as u8 {
        icmp::types_v6::NEIGHBOR_SOLICIT => (1, Field::ArpSha),
        icmp::types_v6::NEIGHBOR_ADVERT => (2, Field::ArpTha),
        _ => return None,
    };
    let mac = key.get(field);
    (mac != 0).then_some((kind, mac))
}

fn emit_ipv6(l3: &mut [u8], key: &FlowKey) {
    let payload_len = l3.len().saturating_sub(ipv6::HEADER_LEN);
    let Some(mut ip) = Ipv6Packet::new_checked(&mut *l3) else {
        return;
    };
    let nh = key.nw_proto();
    Ipv6Repr {
        traffic_class: key.get(Field::NwTos) as u8,
        next_header: nh,
        hop_limit: ttl(key),
        src: v6_or(key, Field::Ipv6SrcHi, Field::Ipv6SrcLo, SRC_V6),
        dst: v6_or(key, Field::Ipv6DstHi, Field::Ipv6DstLo, DST_V6),
        payload_len,
    }
    .emit(&mut ip);
    if let Some(l4) = l3.get_mut(ipv6::HEADER_LEN..) {
        emit_l4(l4, key, nh);
    }
}

/// `frame` (Ethernet, optionally 802.1Q, then IPv4) split into IPv4
/// fragments of at most `max_payload` payload bytes each (rounded down to
/// a multiple of 8, at least 8), as a host with that MTU would send it:
/// each fragment repeats the link and IP headers, with its offset, "more
/// fragments" and total length set and the don't-fragment bit cleared.
/// A frame that is not IPv4, or already fits, comes back whole.
pub fn fragments(frame: &[u8], max_payload: usize) -> Vec<Vec<u8>> {
    let l3 = if frame.get(12..14) == Some(&ethertype::VLAN.to_be_bytes()) {
        ethernet::HEADER_LEN + vlan::HEADER_LEN
    } else {
        ethernet::HEADER_LEN
    };
    let Some(ip) = frame.get(l3..).and_then(Ipv4Packet::new_checked) else {
        return vec![frame.to_vec()];
    };
    let step = (max_payload / 8).max(1) * 8;
    let (ihl, payload) = (ip.header_len(), ip.payload());
    let base = ip.fragment_offset() as usize * 8;
    let last_more = ip.more_fragments();
    if !ip.is_consistent() || payload.len() <= step {
        return vec![frame.to_vec()];
    }
    payload
        .chunks(step)
        .enumerate()
        .map(|(i, chunk)| {
            let mut f = frame[..l3 + ihl].to_vec();
            f.extend_from_slice(chunk);
            let more = (i + 1) * step < payload.len() || last_more;
            if let Some(mut h) = Ipv4Packet::new_checked(&mut f[l3..]) {
                let offset = ((base + i * step) / 8) as u16;
                h.set_flags_frag(offset | if more { ipv4::MORE_FRAGMENTS } else { 0 });
                h.set_total_len((ihl + chunk.len()) as u16);
                h.fill_checksum();
            }
            f.resize(f.len().max(MIN_FRAME), 0);
            f
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::parse;

    #[test]
    fn synthesised_frames_parse_back_to_their_key() {
        let mut k = FlowKey::ZERO;
        k.set(Field::DlType, ethertype::IPV4 as u64);
        k.set(Field::DlSrc, 0xfa163e010011);
        k.set(Field::DlDst, 0xfa163e010012);
        k.set(Field::VlanTci, (VLAN_CFI | 101) as u64);
        k.set(Field::NwProto, ipproto::UDP as u64);
        k.set(Field::NwSrc, 0x0a01000b);
        k.set(Field::NwDst, 0x0a01000c);
        k.set(Field::NwTtl, 64);
        k.set(Field::TpSrc, 1000);
        k.set(Field::TpDst, 53);
        k.set(Field::InPort, 3);
        let p = parse(&frame_from_key(&k, 10), 3).unwrap();
        assert_eq!(p.key, k);
        k.set(Field::NwProto, ipproto::ICMP as u64);
        k.set(Field::TpSrc, 8);
        k.set(Field::TpDst, 0);
        k.set(Field::IcmpId, 77);
        let p = parse(&frame_from_key(&k, 0), 3).unwrap();
        assert_eq!(p.key, k);
        // In an 802.1ad tag.
        k.set_vlan(Some((ethertype::QINQ, 101)));
        let f = frame_from_key(&k, 0);
        assert_eq!(f[12..16], [0x88, 0xa8, 0x00, 0x65]);
        assert_eq!(parse(&f, 3).unwrap().key, k);
    }
}
