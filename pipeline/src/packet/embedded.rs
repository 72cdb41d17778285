//! The packet quoted inside an ICMP error (RFC 792: its IPv4 header and at
//! least 8 bytes of payload), read and rewritten so that NAT can translate
//! errors back to the address the offending packet really came from.
//!
//! Design: the quote is read through the same views as any packet (`wire`):
//! the outer ICMP message, the quoted IPv4 header, and of its transport
//! only what 8 bytes are sure to hold (ports, or the echo identifier).
//! `quote_offsets` checks all of that once; the rewrite recomputes the
//! quoted IP header's checksum and the ICMP checksum in full (both are
//! short) and patches a quoted UDP checksum incrementally.

use super::buf::PacketBuf;
use super::layout::{L3, L4};
use crate::drop::DropReason;
use crate::wire::bytes::rest_mut;
use crate::wire::{icmp, ipproto};
use crate::wire::{IcmpPacket, Ipv4Packet, L4Ports, UdpPacket};

/// Bytes of the quoted packet's payload an error is sure to hold.
const QUOTED_PAYLOAD: usize = 8;

/// The 5-tuple of a quoted packet (ICMP echo: `sport` is the identifier).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Embedded {
    pub proto: u8,
    pub src: u32,
    pub dst: u32,
    pub sport: u16,
    pub dport: u16,
}

/// Offsets (from the frame start) of the quoted IPv4 header and its
/// payload, if the frame is an ICMP error quoting an IPv4 header and 8
/// bytes after it.
fn quote_offsets(pkt: &PacketBuf) -> Option<(usize, usize)> {
    if pkt.layout.l3 != L3::Ipv4 || pkt.layout.l4 != L4::Icmp {
        return None;
    }
    let l4 = pkt.layout.l4_ofs as usize;
    let msg = IcmpPacket::new_checked(pkt.data().get(l4..)?)?;
    if !icmp::is_error(msg.msg_type()) {
        return None;
    }
    let quote = msg.payload();
    let ip = Ipv4Packet::new_checked(quote)?;
    let ihl = ip.header_len();
    if ip.version() != 4
        || ihl < crate::wire::ipv4::HEADER_LEN
        || quote.len() < ihl + QUOTED_PAYLOAD
    {
        return None;
    }
    let at = l4 + icmp::HEADER_LEN;
    Some((at, at + ihl))
}

/// The tuple of the packet an ICMP error quotes, if the frame is one.
pub fn icmp_embedded(pkt: &PacketBuf) -> Option<Embedded> {
    let (ip, l4) = quote_offsets(pkt)?;
    read_quote(pkt.data(), ip, l4)
}

/// The tuple of the quote whose IPv4 header is at `ip` and transport at
/// `l4` (offsets `quote_offsets` checked).
fn read_quote(d: &[u8], ip: usize, l4: usize) -> Option<Embedded> {
    let hdr = Ipv4Packet::new_checked(d.get(ip..)?)?;
    let proto = hdr.protocol();
    let (sport, dport) = match proto {
        ipproto::TCP | ipproto::UDP => {
            let ports = L4Ports::new_checked(d.get(l4..)?)?;
            (ports.src_port(), ports.dst_port())
        }
        ipproto::ICMP => (IcmpPacket::new_checked(d.get(l4..)?)?.identifier(), 0),
        _ => (0, 0),
    };
    Some(Embedded {
        proto,
        src: hdr.src_addr(),
        dst: hdr.dst_addr(),
        sport,
        dport,
    })
}

/// Rewrites the quoted packet's tuple to `e`, fixing the quoted IP header
/// checksum, the quoted UDP checksum (when in use) and the ICMP checksum.
pub fn rewrite_embedded(pkt: &mut PacketBuf, e: &Embedded) -> Result<(), DropReason> {
    let (ip, l4) = quote_offsets(pkt).ok_or(DropReason::RewriteNoHeader)?;
    let icmp_ofs = pkt.layout.l4_ofs as usize;
    let l3 = pkt.layout.l3_ofs as usize;
    let d = pkt.data_mut();
    let old = read_quote(d, ip, l4).ok_or(DropReason::RewriteNoHeader)?;
    let no_header = || DropReason::RewriteNoHeader;

    let mut hdr = Ipv4Packet::new_checked(rest_mut(d, ip)).ok_or_else(no_header)?;
    hdr.set_src_addr(e.src);
    hdr.set_dst_addr(e.dst);
    match old.proto {
        ipproto::TCP | ipproto::UDP => {
            let mut ports = L4Ports::new_checked(rest_mut(d, l4)).ok_or_else(no_header)?;
            ports.set_src_port(e.sport);
            ports.set_dst_port(e.dport);
        }
        ipproto::ICMP => IcmpPacket::new_checked(rest_mut(d, l4))
            .ok_or_else(no_header)?
            .set_identifier(e.sport),
        _ => {}
    }
    // The quoted IP header checksum: recomputed over the quoted header.
    Ipv4Packet::new_checked(rest_mut(d, ip))
        .ok_or_else(no_header)?
        .fill_checksum();
    // A quoted UDP checksum: patched for the changed pseudo-header and ports.
    if old.proto == ipproto::UDP {
        let changes = [
            ((old.src >> 16) as u16, (e.src >> 16) as u16),
            (old.src as u16, e.src as u16),
            ((old.dst >> 16) as u16, (e.dst >> 16) as u16),
            (old.dst as u16, e.dst as u16),
            (old.sport, e.sport),
            (old.dport, e.dport),
        ];
        UdpPacket::new_checked(rest_mut(d, l4))
            .ok_or_else(no_header)?
            .update_checksum_words(&changes);
    }
    // The ICMP checksum covers the whole message: recompute it.
    let total = Ipv4Packet::new_checked(rest_mut(d, l3))
        .ok_or_else(no_header)?
        .total_len();
    let end = (l3 + total).min(d.len());
    let msg = d.get_mut(icmp_ofs..end).ok_or_else(no_header)?;
    IcmpPacket::new_checked(msg)
        .ok_or_else(no_header)?
        .fill_checksum();
    Ok(())
}
