//! In-place header rewrites with incremental checksum updates.
//!
//! A `Rewrite` is one header change the slow path decided on; the fast path
//! replays the list on each packet. Each goes through the header's view
//! (`wire`) at the offset `pkt.layout` recorded, and the views' `update_*`
//! setters patch checksums with RFC 1624's `HC' = ~(~HC + ~m + m')`, so no
//! rewrite reads the payload. A rewrite that needs a header the packet
//! lacks fails with `RewriteNoHeader` (the packet is dropped and counted),
//! never a panic.

use super::buf::{PacketBuf, NAT_SPORT_SET};
use super::layout::{L3, L4};
use crate::drop::DropReason;
use crate::key::Mac;
use crate::wire::bytes::rest_mut;
use crate::wire::{ethernet, ipv4, vlan};
use crate::wire::{
    ArpPacket, EthernetFrame, IcmpPacket, Ipv4Packet, TcpPacket, UdpPacket, VlanTag,
};

/// One header change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rewrite {
    EthSrc(Mac),
    EthDst(Mac),
    /// Both addresses at once (a program's adjacent `EthDst` and `EthSrc`
    /// fused: one write of the first 12 bytes).
    EthAddrs {
        dst: Mac,
        src: Mac,
    },
    /// Push a VLAN tag in front of any the frame has: 802.1Q or 802.1ad
    /// as `tpid` says (`tci` as on the wire: PCP, DEI, VID).
    VlanPush {
        tpid: u16,
        tci: u16,
    },
    /// Replace the TCI of the (outer) tag; its TPID stays.
    VlanSetTci(u16),
    /// Pop the outer tag, whatever its TPID (an inner one stays).
    VlanPop,
    /// A push then both addresses (`VlanPush` followed by `EthAddrs`,
    /// fused: the addresses are written where they go, never moved).
    VlanPushEth {
        dst: Mac,
        src: Mac,
        tpid: u16,
        tci: u16,
    },
    /// IPv4 source (on ARP: the sender protocol address).
    Ipv4Src(u32),
    /// IPv4 destination (on ARP: the target protocol address).
    Ipv4Dst(u32),
    /// DSCP bits (ECN is kept).
    Ipv4Tos(u8),
    Ipv4Ttl(u8),
    Ipv4DecTtl,
    /// TCP/UDP source port; on ICMP the type.
    L4Src(u16),
    /// TCP/UDP destination port; on ICMP the code.
    L4Dst(u16),
    /// ICMP echo identifier.
    IcmpId(u16),
    /// The source port (ICMP: echo id) the packet's connection chose
    /// (`PacketBuf::nat_sport`); nothing when it has none.
    NatSrcPort,
    ArpOp(u16),
    ArpSha(Mac),
    ArpTha(Mac),
}

/// The bytes of `d` from `ofs` on (a header's offset in the layout).
#[inline(always)]
fn from(d: &mut [u8], ofs: u16) -> &mut [u8] {
    rest_mut(d, ofs as usize)
}

/// A view, or `RewriteNoHeader` when its header does not fit.
#[inline(always)]
fn need<V>(view: Option<V>) -> Result<V, DropReason> {
    view.ok_or(DropReason::RewriteNoHeader)
}

#[inline(always)]
fn ethernet(pkt: &mut PacketBuf) -> Result<EthernetFrame<&mut [u8]>, DropReason> {
    need(EthernetFrame::new_checked(pkt.data_mut()))
}

/// The IPv4 header of a packet whose layout has one.
#[inline(always)]
fn ipv4(pkt: &mut PacketBuf) -> Result<Ipv4Packet<&mut [u8]>, DropReason> {
    if pkt.layout.l3 != L3::Ipv4 {
        return Err(DropReason::RewriteNoHeader);
    }
    let l3 = pkt.layout.l3_ofs;
    need(Ipv4Packet::new_checked(from(pkt.data_mut(), l3)))
}

#[inline(always)]
fn arp(pkt: &mut PacketBuf) -> Result<ArpPacket<&mut [u8]>, DropReason> {
    let l3 = pkt.layout.l3_ofs;
    need(ArpPacket::new_checked(from(pkt.data_mut(), l3)))
}

/// Rewrites an IPv4 address (`dst` or source), patching the header
/// checksum and the transport's pseudo-header checksum.
#[inline(always)]
fn set_ipv4_addr(pkt: &mut PacketBuf, dst: bool, addr: u32) -> Result<(), DropReason> {
    let lay = pkt.layout;
    let d = pkt.data_mut();
    let mut ip = need(Ipv4Packet::new_checked(from(d, lay.l3_ofs)))?;
    let old = if dst {
        ip.update_dst_addr(addr)
    } else {
        ip.update_src_addr(addr)
    };
    match lay.l4 {
        L4::Tcp => {
            need(TcpPacket::new_checked(from(d, lay.l4_ofs)))?.update_pseudo_header_addr(old, addr)
        }
        L4::Udp => {
            need(UdpPacket::new_checked(from(d, lay.l4_ofs)))?.update_pseudo_header_addr(old, addr)
        }
        // ICMPv4's checksum has no pseudo-header.
        L4::Icmp | L4::Icmpv6 | L4::None => {}
    }
    Ok(())
}

/// Rewrites a TCP/UDP port (`dst` or source), patching the checksum.
#[inline(always)]
fn set_port(pkt: &mut PacketBuf, dst: bool, port: u16) -> Result<(), DropReason> {
    let lay = pkt.layout;
    let l4 = from(pkt.data_mut(), lay.l4_ofs);
    match lay.l4 {
        L4::Tcp => {
            let mut tcp = need(TcpPacket::new_checked(l4))?;
            if dst {
                tcp.update_dst_port(port)
            } else {
                tcp.update_src_port(port)
            }
        }
        L4::Udp => {
            let mut udp = need(UdpPacket::new_checked(l4))?;
            if dst {
                udp.update_dst_port(port)
            } else {
                udp.update_src_port(port)
            }
        }
        _ => return Err(DropReason::RewriteNoHeader),
    }
    Ok(())
}

/// Changes the ICMP (or ICMPv6) header with `f`, an `update_*` setter.
#[inline(always)]
fn set_icmp(
    pkt: &mut PacketBuf,
    f: impl FnOnce(&mut IcmpPacket<&mut [u8]>),
) -> Result<(), DropReason> {
    let lay = pkt.layout;
    let d = pkt.data_mut();
    let mut msg = need(IcmpPacket::new_checked(from(d, lay.l4_ofs)))?;
    f(&mut msg);
    if lay.l4 == L4::Icmp && msg.checksum() == 0 {
        // The incremental form cannot tell a message whose words are all
        // zero (checksum 0xffff) from one whose sum is negative zero
        // (checksum 0): settle this rare case by summing the message.
        let total = need(Ipv4Packet::new_checked(from(d, lay.l3_ofs)))?.total_len();
        let end = (lay.l3_ofs as usize + total).min(d.len());
        let whole = d
            .get_mut(lay.l4_ofs as usize..end)
            .ok_or(DropReason::RewriteNoHeader)?;
        need(IcmpPacket::new_checked(whole))?.fill_checksum();
    }
    Ok(())
}

/// Moves the two addresses (12 bytes) from offset `from` to `to`: one
/// fixed-size copy through registers, not a call to `memmove`.
#[inline(always)]
fn move_addresses(d: &mut [u8], from: usize, to: usize) -> Result<(), DropReason> {
    const N: usize = ethernet::field::ADDRESSES.end;
    let addrs: [u8; N] = d
        .get(from..from + N)
        .and_then(|s| s.try_into().ok())
        .ok_or(DropReason::RewriteNoHeader)?;
    d.get_mut(to..to + N)
        .ok_or(DropReason::RewriteNoHeader)?
        .copy_from_slice(&addrs);
    Ok(())
}

/// Pushes a tag with TPID `tpid`: the addresses move `vlan::HEADER_LEN`
/// bytes into the headroom (or, with `addrs`, are written there), and the
/// tag goes where they were.
#[inline(always)]
fn vlan_push(
    pkt: &mut PacketBuf,
    tpid: u16,
    tci: u16,
    addrs: Option<(Mac, Mac)>,
) -> Result<(), DropReason> {
    if pkt.len() < ethernet::HEADER_LEN {
        return Err(DropReason::RewriteNoHeader);
    }
    pkt.push_front(vlan::HEADER_LEN)?;
    let d = pkt.data_mut();
    if addrs.is_none() {
        move_addresses(d, vlan::HEADER_LEN, 0)?;
    }
    let mut eth = need(EthernetFrame::new_checked(d))?;
    if let Some((dst, src)) = addrs {
        eth.set_dst(dst);
        eth.set_src(src);
    }
    eth.set_ethertype(tpid);
    need(VlanTag::new_checked(eth.payload_mut()))?.set_tci(tci);
    // Offsets first: a word read of the layout right after a byte write
    // into it stalls on store forwarding.
    pkt.layout.shift(vlan::HEADER_LEN as i16);
    pkt.layout.vlan = true;
    Ok(())
}

/// Pops the outer tag: the addresses move over it.
#[inline(always)]
fn vlan_pop(pkt: &mut PacketBuf) -> Result<(), DropReason> {
    if !pkt.layout.vlan || pkt.len() < ethernet::HEADER_LEN + vlan::HEADER_LEN {
        return Err(DropReason::RewriteNoHeader);
    }
    move_addresses(pkt.data_mut(), 0, vlan::HEADER_LEN)?;
    pkt.pull_front(vlan::HEADER_LEN)?;
    pkt.layout.shift(-(vlan::HEADER_LEN as i16));
    pkt.layout.vlan = false;
    Ok(())
}

/// Applies one rewrite to the packet in place, keeping `pkt.layout` true.
#[inline]
pub fn apply(pkt: &mut PacketBuf, r: &Rewrite) -> Result<(), DropReason> {
    apply_inline(pkt, r)
}

/// `apply`, inlined where it is called: the fast path's loop over a run
/// of rewrites (a call per rewrite spills and restores registers).
#[inline(always)]
pub fn apply_inline(pkt: &mut PacketBuf, r: &Rewrite) -> Result<(), DropReason> {
    let lay = pkt.layout;
    match *r {
        Rewrite::NatSrcPort => {
            if pkt.nat_sport & NAT_SPORT_SET == 0 {
                return Ok(());
            }
            let port = pkt.nat_sport as u16;
            match lay.l4 {
                // As `IcmpId` on ICMP, `L4Src` on the others.
                L4::Icmp => set_icmp(pkt, |m| m.update_identifier(port)),
                L4::Tcp | L4::Udp => set_port(pkt, false, port),
                L4::Icmpv6 => set_icmp(pkt, |m| m.update_msg_type(port as u8)),
                L4::None => Err(DropReason::RewriteNoHeader),
            }
        }
        Rewrite::EthDst(m) => {
            ethernet(pkt)?.set_dst(m);
            Ok(())
        }
        Rewrite::EthSrc(m) => {
            ethernet(pkt)?.set_src(m);
            Ok(())
        }
        Rewrite::EthAddrs { dst, src } => {
            let mut eth = ethernet(pkt)?;
            eth.set_dst(dst);
            eth.set_src(src);
            Ok(())
        }
        Rewrite::VlanPush { tpid, tci } => vlan_push(pkt, tpid, tci, None),
        Rewrite::VlanPushEth {
            dst,
            src,
            tpid,
            tci,
        } => vlan_push(pkt, tpid, tci, Some((dst, src))),
        Rewrite::VlanSetTci(tci) => {
            if !lay.vlan {
                return Err(DropReason::RewriteNoHeader);
            }
            need(VlanTag::new_checked(ethernet(pkt)?.payload_mut()))?.set_tci(tci);
            Ok(())
        }
        Rewrite::VlanPop => vlan_pop(pkt),
        Rewrite::Ipv4Src(a) => match lay.l3 {
            L3::Ipv4 => set_ipv4_addr(pkt, false, a),
            L3::Arp => {
                arp(pkt)?.set_spa(a);
                Ok(())
            }
            _ => Err(DropReason::RewriteNoHeader),
        },
        Rewrite::Ipv4Dst(a) => match lay.l3 {
            L3::Ipv4 => set_ipv4_addr(pkt, true, a),
            L3::Arp => {
                arp(pkt)?.set_tpa(a);
                Ok(())
            }
            _ => Err(DropReason::RewriteNoHeader),
        },
        Rewrite::Ipv4Tos(t) => {
            let mut ip = ipv4(pkt)?;
            let tos = (ip.tos() & ipv4::ECN_MASK) | (t & ipv4::DSCP_MASK);
            ip.update_tos(tos);
            Ok(())
        }
        Rewrite::Ipv4Ttl(t) => {
            ipv4(pkt)?.update_ttl(t);
            Ok(())
        }
        Rewrite::Ipv4DecTtl => {
            let mut ip = ipv4(pkt)?;
            match ip.ttl() {
                0 | 1 => Err(DropReason::TtlExceeded),
                ttl => {
                    ip.update_ttl(ttl - 1);
                    Ok(())
                }
            }
        }
        Rewrite::L4Src(v) => match lay.l4 {
            L4::Tcp | L4::Udp => set_port(pkt, false, v),
            L4::Icmp | L4::Icmpv6 => set_icmp(pkt, |m| m.update_msg_type(v as u8)),
            L4::None => Err(DropReason::RewriteNoHeader),
        },
        Rewrite::L4Dst(v) => match lay.l4 {
            L4::Tcp | L4::Udp => set_port(pkt, true, v),
            L4::Icmp | L4::Icmpv6 => set_icmp(pkt, |m| m.update_code(v as u8)),
            L4::None => Err(DropReason::RewriteNoHeader),
        },
        Rewrite::IcmpId(v) => match lay.l4 {
            L4::Icmp => set_icmp(pkt, |m| m.update_identifier(v)),
            _ => Err(DropReason::RewriteNoHeader),
        },
        Rewrite::ArpOp(op) if lay.l3 == L3::Arp => {
            arp(pkt)?.set_op(op);
            Ok(())
        }
        Rewrite::ArpSha(m) if lay.l3 == L3::Arp => {
            arp(pkt)?.set_sha(m);
            Ok(())
        }
        Rewrite::ArpTha(m) if lay.l3 == L3::Arp => {
            arp(pkt)?.set_tha(m);
            Ok(())
        }
        Rewrite::ArpOp(_) | Rewrite::ArpSha(_) | Rewrite::ArpTha(_) => {
            Err(DropReason::RewriteNoHeader)
        }
    }
}
