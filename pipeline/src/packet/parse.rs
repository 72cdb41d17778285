//! One pass over the headers: frame → (`FlowKey`, `Layout`).
//!
//! What is extracted follows OVS's `flow_extract` for the fields the key
//! has: one VLAN tag, 802.1Q (0x8100) or 802.1ad (0x88a8), as `vlan_tci`
//! with the CFI bit marking "tagged" and its TPID in `vlan_tpid` (OVS's
//! default `vlan-limit` of 1: a second tag is not parsed, `dl_type` is its
//! TPID and nothing after it is read), ARP for Ethernet/IPv4, IPv4 with
//! fragment bits (transport ports only on first fragments), TCP/UDP ports
//! and TCP flags, ICMP type/code and the echo identifier, IPv6 next
//! header/hop limit and the ND target. Frames whose headers are cut short
//! or inconsistent are rejected with the `DropReason` naming the header.

use super::buf::PacketBuf;
use super::layout::{Layout, L3, L4};
use crate::drop::DropReason;
use crate::key::{Field, FlowKey, FRAG_ANY, FRAG_LATER, VLAN_CFI, VLAN_TPID_8021AD};
use crate::wire::{ethernet, icmp, ipv4, ipv6, vlan};
use crate::wire::{ethertype, ipproto};
use crate::wire::{ArpPacket, EthernetFrame, IcmpPacket, Ipv4Packet, Ipv6Packet, TcpPacket};
use crate::wire::{UdpPacket, VlanTag};

/// Ethertype OVS assigns to 802.3 (length-field) frames.
const DL_TYPE_NONE: u16 = 0x05ff;

/// A parsed frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub key: FlowKey,
    pub layout: Layout,
}

/// Parses the frame held in `pkt` (its `in_port` included), records the
/// layout in the buffer and returns the key.
#[inline(always)]
pub fn parse_into(pkt: &mut PacketBuf) -> Result<FlowKey, DropReason> {
    let p = parse(pkt.data(), pkt.in_port)?;
    pkt.layout = p.layout;
    Ok(p.key)
}

/// The key words being filled, kept in registers (field positions as in
/// `key::Field::position`; a unit test checks the two agree).
#[derive(Default)]
struct Words {
    /// in_port | dl_type << 32 | vlan_tci << 48
    w0: u64,
    /// dl_dst | nw_proto << 48 | nw_tos << 56
    w1: u64,
    /// dl_src | nw_ttl << 48 | nw_frag << 56
    w2: u64,
    /// nw_src | nw_dst << 32
    w3: u64,
    /// tp_src | tp_dst << 16 | tcp_flags << 32
    w4: u64,
    /// arp_sha | vlan_tpid << 56
    w5: u64,
    /// arp_tha | icmp_id << 48
    w6: u64,
    w7: u64,
    w8: u64,
}

impl Words {
    #[inline(always)]
    fn into_key(self) -> FlowKey {
        let mut k = FlowKey::ZERO;
        k.w[0] = self.w0;
        k.w[1] = self.w1;
        k.w[2] = self.w2;
        k.w[3] = self.w3;
        k.w[4] = self.w4;
        k.w[5] = self.w5;
        k.w[6] = self.w6;
        k.w[7] = self.w7;
        k.w[8] = self.w8;
        k
    }
}

#[inline(always)]
fn mac_word(m: crate::key::Mac) -> u64 {
    m.to_u64()
}

/// Parses a frame that arrived on `in_port`.
///
/// The layout's parts are kept in locals and the `Layout` is built once
/// at the end: a struct filled a field at a time on the stack and then
/// read whole stalls on store forwarding.
#[inline(always)]
pub fn parse(frame: &[u8], in_port: u32) -> Result<Parsed, DropReason> {
    let mut w = Words::default();

    let eth = EthernetFrame::new_checked(frame).ok_or(DropReason::EthTruncated)?;
    w.w1 = mac_word(eth.dst());
    w.w2 = mac_word(eth.src());
    let mut ofs = ethernet::HEADER_LEN;
    let mut l3 = eth.payload();
    let mut dl_type = eth.ethertype();
    let mut tci = 0u16;
    let mut tagged = false;
    if vlan::is_tpid(dl_type) {
        let tag = VlanTag::new_checked(l3).ok_or(DropReason::VlanTruncated)?;
        if dl_type == ethertype::QINQ {
            w.w5 = VLAN_TPID_8021AD << 56;
        }
        tci = tag.tci() | VLAN_CFI;
        dl_type = tag.inner_ethertype();
        l3 = tag.payload();
        ofs += vlan::HEADER_LEN;
        tagged = true;
    }
    if dl_type < ethertype::MIN_TYPE {
        dl_type = DL_TYPE_NONE;
    }
    w.w0 = in_port as u64 | (dl_type as u64) << 32 | (tci as u64) << 48;
    let layout = |l3: L3, (l4, l4_ofs): (L4, u16)| Layout {
        vlan: tagged,
        l3,
        l3_ofs: ofs as u16,
        l4,
        l4_ofs,
    };

    let layout = match dl_type {
        ethertype::IPV4 => layout(L3::Ipv4, parse_ipv4(l3, ofs, &mut w)?),
        ethertype::ARP => {
            let arp = ArpPacket::new_checked(l3).ok_or(DropReason::ArpMalformed)?;
            if !arp.is_ethernet_ipv4() {
                return Err(DropReason::ArpMalformed);
            }
            let op = arp.op();
            if op <= 0xff {
                w.w1 |= (op as u64) << 48;
            }
            w.w3 = arp.spa() as u64 | (arp.tpa() as u64) << 32;
            w.w5 |= mac_word(arp.sha());
            w.w6 = mac_word(arp.tha());
            layout(L3::Arp, (L4::None, 0))
        }
        ethertype::IPV6 => {
            let mut key = w.into_key();
            let l4 = parse_ipv6(l3, ofs, &mut key)?;
            return Ok(Parsed {
                key,
                layout: layout(L3::Ipv6, l4),
            });
        }
        _ => layout(L3::None, (L4::None, 0)),
    };
    Ok(Parsed {
        key: w.into_key(),
        layout,
    })
}

/// The IPv4 header and what follows into the key words; returns the
/// transport header's kind and offset (none on later fragments).
#[inline(always)]
fn parse_ipv4(l3: &[u8], ofs: usize, w: &mut Words) -> Result<(L4, u16), DropReason> {
    let ip = Ipv4Packet::new_checked(l3).ok_or(DropReason::Ipv4Malformed)?;
    if !ip.is_consistent() {
        return Err(DropReason::Ipv4Malformed);
    }
    let proto = ip.protocol();
    let later = ip.fragment_offset() != 0;
    let frag = if later {
        FRAG_ANY | FRAG_LATER
    } else if ip.more_fragments() {
        FRAG_ANY
    } else {
        0
    };
    w.w1 |= (proto as u64) << 48 | ((ip.tos() & ipv4::DSCP_MASK) as u64) << 56;
    w.w2 |= (ip.ttl() as u64) << 48 | (frag as u64) << 56;
    w.w3 = ip.src_addr() as u64 | (ip.dst_addr() as u64) << 32;
    if later {
        return Ok((L4::None, 0));
    }
    // The transport header lies within the IP datagram (not its padding).
    let l4 = ip.payload();
    let l4_ofs = (ofs + ip.header_len()) as u16;
    let kind = match proto {
        ipproto::TCP => {
            let tcp = TcpPacket::new_checked(l4).ok_or(DropReason::L4Truncated)?;
            let (s, d) = (tcp.src_port(), tcp.dst_port());
            w.w4 = s as u64 | (d as u64) << 16 | (tcp.flags() as u64) << 32;
            L4::Tcp
        }
        ipproto::UDP => {
            let udp = UdpPacket::new_checked(l4).ok_or(DropReason::L4Truncated)?;
            let (s, d) = (udp.src_port(), udp.dst_port());
            w.w4 = s as u64 | (d as u64) << 16;
            L4::Udp
        }
        ipproto::ICMP => {
            let msg = IcmpPacket::new_checked(l4).ok_or(DropReason::L4Truncated)?;
            w.w4 = msg.msg_type() as u64 | (msg.code() as u64) << 16;
            if icmp::is_echo(msg.msg_type()) {
                w.w6 |= (msg.identifier() as u64) << 48;
            }
            L4::Icmp
        }
        _ => L4::None,
    };
    Ok((kind, l4_ofs))
}

/// TCP/UDP ports into the key (IPv6 path).
fn parse_ports(proto: u8, l4: &[u8], key: &mut FlowKey) -> Result<L4, DropReason> {
    Ok(match proto {
        ipproto::TCP => {
            let tcp = TcpPacket::new_checked(l4).ok_or(DropReason::L4Truncated)?;
            key.set(Field::TpSrc, tcp.src_port() as u64);
            key.set(Field::TpDst, tcp.dst_port() as u64);
            key.set(Field::TcpFlags, tcp.flags() as u64);
            L4::Tcp
        }
        ipproto::UDP => {
            let udp = UdpPacket::new_checked(l4).ok_or(DropReason::L4Truncated)?;
            key.set(Field::TpSrc, udp.src_port() as u64);
            key.set(Field::TpDst, udp.dst_port() as u64);
            L4::Udp
        }
        _ => L4::None,
    })
}

/// The IPv6 header and what follows into `key`; returns the transport
/// header's kind and offset.
fn parse_ipv6(l3: &[u8], ofs: usize, key: &mut FlowKey) -> Result<(L4, u16), DropReason> {
    let ip = Ipv6Packet::new_checked(l3).ok_or(DropReason::Ipv6Malformed)?;
    if !ip.is_consistent() {
        return Err(DropReason::Ipv6Malformed);
    }
    let nh = ip.next_header();
    key.set(Field::NwProto, nh as u64);
    key.set(Field::NwTos, (ip.traffic_class() & ipv4::DSCP_MASK) as u64);
    key.set(Field::NwTtl, ip.hop_limit() as u64);
    let (src, dst) = (
        u128::from_be_bytes(ip.src_addr()),
        u128::from_be_bytes(ip.dst_addr()),
    );
    key.set(Field::Ipv6SrcHi, (src >> 64) as u64);
    key.set(Field::Ipv6SrcLo, src as u64);
    key.set(Field::Ipv6DstHi, (dst >> 64) as u64);
    key.set(Field::Ipv6DstLo, dst as u64);
    let l4 = ip.payload();
    let l4_ofs = (ofs + ipv6::HEADER_LEN) as u16;
    let kind = match nh {
        ipproto::ICMPV6 => {
            let msg = IcmpPacket::new_checked(l4).ok_or(DropReason::L4Truncated)?;
            key.set(Field::TpSrc, msg.msg_type() as u64);
            key.set(Field::TpDst, msg.code() as u64);
            // Neighbour solicitation / advertisement carry a target address.
            if icmp::is_neighbor_discovery(msg.msg_type()) {
                let target = msg.nd_target().ok_or(DropReason::L4Truncated)?;
                let v = u128::from_be_bytes(target);
                key.set(Field::NdTargetHi, (v >> 64) as u64);
                key.set(Field::NdTargetLo, v as u64);
                // Their link-layer address options: `nd_sll` in a
                // solicitation, `nd_tll` in an advertisement (in the ARP
                // address fields, as Open vSwitch keeps them).
                let (kind, field) = if msg.msg_type() == icmp::types_v6::NEIGHBOR_SOLICIT {
                    (1, Field::ArpSha)
                } else {
                    (2, Field::ArpTha)
                };
                if let Some(mac) = msg.nd_link_layer(kind) {
                    key.set(field, crate::key::Mac(mac).to_u64());
                }
            }
            L4::Icmpv6
        }
        ipproto::TCP | ipproto::UDP => parse_ports(nh, l4, key)?,
        _ => L4::None,
    };
    Ok((kind, l4_ofs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_layout_agrees_with_field_positions() {
        let pos = |f: Field| f.position();
        assert_eq!(pos(Field::InPort), (0, 0, 32));
        assert_eq!(pos(Field::DlType), (0, 32, 16));
        assert_eq!(pos(Field::VlanTci), (0, 48, 16));
        assert_eq!(pos(Field::DlDst), (1, 0, 48));
        assert_eq!(pos(Field::NwProto), (1, 48, 8));
        assert_eq!(pos(Field::NwTos), (1, 56, 8));
        assert_eq!(pos(Field::DlSrc), (2, 0, 48));
        assert_eq!(pos(Field::NwTtl), (2, 48, 8));
        assert_eq!(pos(Field::NwFrag), (2, 56, 8));
        assert_eq!(pos(Field::NwSrc), (3, 0, 32));
        assert_eq!(pos(Field::NwDst), (3, 32, 32));
        assert_eq!(pos(Field::TpSrc), (4, 0, 16));
        assert_eq!(pos(Field::TpDst), (4, 16, 16));
        assert_eq!(pos(Field::TcpFlags), (4, 32, 16));
        assert_eq!(pos(Field::ArpSha), (5, 0, 48));
        assert_eq!(pos(Field::VlanTpid), (5, 56, 8));
        assert_eq!(pos(Field::ArpTha), (6, 0, 48));
        assert_eq!(pos(Field::IcmpId), (6, 48, 16));
    }

    /// An ICMP echo from 10.1.0.13 to 10.1.0.11 behind `tags` (TPID, TCI).
    fn tagged_icmp(tags: &[(u16, u16)]) -> Vec<u8> {
        let mut f = vec![0xfa, 0x16, 0x3e, 1, 0, 0x11, 0xfa, 0x16, 0x3e, 1, 0, 0x13];
        for (tpid, tci) in tags {
            f.extend(tpid.to_be_bytes());
            f.extend(tci.to_be_bytes());
        }
        f.extend([0x08, 0x00, 0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0]);
        f.extend([10, 1, 0, 13, 10, 1, 0, 11, 8, 0, 0, 0, 0, 1, 0, 1]);
        f
    }

    #[test]
    fn an_s_tag_is_the_frames_vlan_with_its_tpid() {
        let p = parse(&tagged_icmp(&[(0x88a8, 0x6065)]), 6).unwrap();
        assert_eq!(p.key.vlan_tci(), 0x7065);
        assert_eq!(p.key.vlan_tpid(), Some(0x88a8));
        assert_eq!(p.key.dl_type(), 0x0800);
        assert_eq!(p.key.nw_src(), 0x0a01000d);
        assert!(p.layout.vlan);
        assert_eq!((p.layout.l3, p.layout.l3_ofs), (L3::Ipv4, 18));
        let c = parse(&tagged_icmp(&[(0x8100, 0x6065)]), 6).unwrap();
        assert_eq!(c.key.vlan_tpid(), Some(0x8100));
        assert_eq!(c.key.get(Field::VlanTpid), 0);
        // The TPID is the only difference between the two keys.
        let mut c_as_s = c.key;
        c_as_s.set(Field::VlanTpid, VLAN_TPID_8021AD);
        assert_eq!(c_as_s, p.key);
    }

    #[test]
    fn a_second_tag_is_payload_as_with_vlan_limit_1() {
        for (outer, inner) in [(0x88a8, 0x8100), (0x8100, 0x8100), (0x8100, 0x88a8)] {
            let p = parse(&tagged_icmp(&[(outer, 101), (inner, 7)]), 1).unwrap();
            assert_eq!(p.key.vlan_vid(), Some(101));
            assert_eq!(p.key.vlan_tpid(), Some(outer));
            assert_eq!(p.key.dl_type(), inner, "the inner tag's TPID");
            assert_eq!(
                (p.key.nw_src(), p.key.nw_proto()),
                (0, 0),
                "nothing inside is read"
            );
            assert_eq!((p.layout.l3, p.layout.l3_ofs), (L3::None, 18));
        }
    }

    #[test]
    fn an_arp_inside_an_s_tag_keeps_the_tpid_beside_its_sender_mac() {
        let mut f = vec![0xff; 6];
        f.extend([0xfa, 0x16, 0x3e, 1, 0, 0x11, 0x88, 0xa8, 0, 0, 0x08, 0x06]);
        f.extend([
            0, 1, 8, 0, 6, 4, 0, 1, 0xfa, 0x16, 0x3e, 1, 0, 0x11, 10, 1, 0, 99,
        ]);
        f.extend([0, 0, 0, 0, 0, 0, 10, 1, 0, 1]);
        let p = parse(&f, 6).unwrap();
        assert_eq!(p.key.vlan_tpid(), Some(0x88a8));
        assert_eq!(p.key.dl_type(), 0x0806);
        assert_eq!(p.key.get(Field::ArpSha), 0xfa163e010011);
        assert_eq!(p.key.nw_src(), 0x0a010063);
    }
}
