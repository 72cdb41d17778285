//! One pass over the headers: frame → (`FlowKey`, `Layout`).
//!
//! What is extracted follows OVS's `flow_extract` for the fields the key
//! has: one 802.1Q tag (as `vlan_tci` with the CFI bit marking "tagged"),
//! ARP for Ethernet/IPv4, IPv4 with fragment bits (transport ports only on
//! first fragments), TCP/UDP ports and TCP flags, ICMP type/code and the
//! echo identifier, IPv6 next header/hop limit and the ND target. Frames
//! whose headers are cut short or inconsistent are rejected with the
//! `DropReason` naming the header.

use super::views::{icmp_is_echo, Arp, Ethernet, Icmp, Ipv4, Ipv6, Tcp, Udp, VlanTag};
use super::{Layout, PacketBuf, L3, L4};
use crate::drop::DropReason;
use crate::key::{ethertype, ipproto, Field, FlowKey, FRAG_ANY, FRAG_LATER, VLAN_CFI};

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
#[inline]
pub fn parse_into(pkt: &mut PacketBuf) -> Result<FlowKey, DropReason> {
    let p = parse(pkt.data(), pkt.in_port)?;
    pkt.layout = p.layout;
    Ok(p.key)
}

/// Parses a frame that arrived on `in_port`.
#[inline]
pub fn parse(frame: &[u8], in_port: u32) -> Result<Parsed, DropReason> {
    let mut key = FlowKey::ZERO;
    let mut layout = Layout::default();
    key.set(Field::InPort, in_port as u64);

    let eth = Ethernet::new(frame).ok_or(DropReason::EthTruncated)?;
    key.set(Field::DlDst, eth.dst().to_u64());
    key.set(Field::DlSrc, eth.src().to_u64());
    let mut ofs = Ethernet::LEN;
    let mut dl_type = eth.ethertype();
    if dl_type == ethertype::VLAN {
        let tag = VlanTag::new(frame.get(Ethernet::LEN..).unwrap_or(&[]))
            .ok_or(DropReason::VlanTruncated)?;
        key.set(Field::VlanTci, (tag.tci() | VLAN_CFI) as u64);
        dl_type = tag.inner_ethertype();
        ofs = Ethernet::LEN + VlanTag::LEN;
        layout.vlan = true;
    }
    if dl_type < 0x0600 {
        dl_type = DL_TYPE_NONE;
    }
    key.set(Field::DlType, dl_type as u64);
    let l3 = frame.get(ofs..).unwrap_or(&[]);
    layout.l3_ofs = ofs as u16;

    match dl_type {
        ethertype::IPV4 => parse_ipv4(l3, ofs, &mut key, &mut layout)?,
        ethertype::ARP => {
            let arp = Arp::new(l3).ok_or(DropReason::ArpMalformed)?;
            if !arp.is_ethernet_ipv4() {
                return Err(DropReason::ArpMalformed);
            }
            layout.l3 = L3::Arp;
            let op = arp.op();
            if op <= 0xff {
                key.set(Field::NwProto, op as u64);
            }
            key.set(Field::NwSrc, arp.spa() as u64);
            key.set(Field::NwDst, arp.tpa() as u64);
            key.set(Field::ArpSha, arp.sha().to_u64());
            key.set(Field::ArpTha, arp.tha().to_u64());
        }
        ethertype::IPV6 => parse_ipv6(l3, ofs, &mut key, &mut layout)?,
        _ => {}
    }
    Ok(Parsed { key, layout })
}

#[inline(always)]
fn parse_ipv4(
    l3: &[u8],
    ofs: usize,
    key: &mut FlowKey,
    layout: &mut Layout,
) -> Result<(), DropReason> {
    let ip = Ipv4::new(l3).ok_or(DropReason::Ipv4Malformed)?;
    let hlen = ip.header_len();
    if ip.version() != 4
        || hlen < Ipv4::MIN_LEN
        || hlen > l3.len()
        || ip.total_len() < hlen
        || ip.total_len() > l3.len()
    {
        return Err(DropReason::Ipv4Malformed);
    }
    layout.l3 = L3::Ipv4;
    let proto = ip.protocol();
    key.set(Field::NwSrc, ip.src() as u64);
    key.set(Field::NwDst, ip.dst() as u64);
    key.set(Field::NwProto, proto as u64);
    key.set(Field::NwTos, (ip.tos() & 0xfc) as u64);
    key.set(Field::NwTtl, ip.ttl() as u64);
    let later = ip.fragment_offset() != 0;
    if later || ip.more_fragments() {
        key.set(
            Field::NwFrag,
            (FRAG_ANY | if later { FRAG_LATER } else { 0 }) as u64,
        );
    }
    if later {
        return Ok(());
    }
    // The transport header lies within the IP datagram (not its padding).
    let l4 = l3.get(hlen..ip.total_len()).unwrap_or(&[]);
    layout.l4_ofs = (ofs + hlen) as u16;
    parse_l4(proto, l4, key, layout)
}

#[inline(always)]
fn parse_l4(
    proto: u8,
    l4: &[u8],
    key: &mut FlowKey,
    layout: &mut Layout,
) -> Result<(), DropReason> {
    match proto {
        ipproto::TCP => {
            let tcp = Tcp::new(l4).ok_or(DropReason::L4Truncated)?;
            let (s, d) = tcp.ports();
            key.set(Field::TpSrc, s as u64);
            key.set(Field::TpDst, d as u64);
            key.set(Field::TcpFlags, tcp.flags() as u64);
            layout.l4 = L4::Tcp;
        }
        ipproto::UDP => {
            let udp = Udp::new(l4).ok_or(DropReason::L4Truncated)?;
            let (s, d) = udp.ports();
            key.set(Field::TpSrc, s as u64);
            key.set(Field::TpDst, d as u64);
            layout.l4 = L4::Udp;
        }
        ipproto::ICMP => {
            let icmp = Icmp::new(l4).ok_or(DropReason::L4Truncated)?;
            key.set(Field::TpSrc, icmp.icmp_type() as u64);
            key.set(Field::TpDst, icmp.code() as u64);
            if icmp_is_echo(icmp.icmp_type()) {
                key.set(Field::IcmpId, icmp.identifier() as u64);
            }
            layout.l4 = L4::Icmp;
        }
        _ => {}
    }
    Ok(())
}

fn parse_ipv6(
    l3: &[u8],
    ofs: usize,
    key: &mut FlowKey,
    layout: &mut Layout,
) -> Result<(), DropReason> {
    let ip = Ipv6::new(l3).ok_or(DropReason::Ipv6Malformed)?;
    if ip.version() != 6 || Ipv6::LEN + ip.payload_len() > l3.len() {
        return Err(DropReason::Ipv6Malformed);
    }
    layout.l3 = L3::Ipv6;
    let nh = ip.next_header();
    key.set(Field::NwProto, nh as u64);
    key.set(Field::NwTos, (ip.traffic_class() & 0xfc) as u64);
    key.set(Field::NwTtl, ip.hop_limit() as u64);
    let l4 = l3
        .get(Ipv6::LEN..Ipv6::LEN + ip.payload_len())
        .unwrap_or(&[]);
    layout.l4_ofs = (ofs + Ipv6::LEN) as u16;
    match nh {
        ipproto::ICMPV6 => {
            let icmp = Icmp::new(l4).ok_or(DropReason::L4Truncated)?;
            key.set(Field::TpSrc, icmp.icmp_type() as u64);
            key.set(Field::TpDst, icmp.code() as u64);
            layout.l4 = L4::Icmpv6;
            // Neighbour solicitation / advertisement carry a target address.
            if matches!(icmp.icmp_type(), 135 | 136) {
                let target = l4
                    .get(8..24)
                    .and_then(|t| <[u8; 16]>::try_from(t).ok())
                    .ok_or(DropReason::L4Truncated)?;
                let v = u128::from_be_bytes(target);
                key.set(Field::NdTargetHi, (v >> 64) as u64);
                key.set(Field::NdTargetLo, v as u64);
            }
        }
        ipproto::TCP | ipproto::UDP => parse_l4(nh, l4, key, layout)?,
        _ => {}
    }
    Ok(())
}
