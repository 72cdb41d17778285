//! The packet quoted inside an ICMP error (RFC 792: its IPv4 header and at
//! least 8 bytes of payload), read and rewritten so that NAT can translate
//! errors back to the address the offending packet really came from.

use super::rewrite::{checksum, fold, sum_words};
use super::{PacketBuf, L3, L4};
use crate::drop::DropReason;
use crate::key::ipproto;

/// ICMP types that carry a quoted packet.
pub fn is_icmp_error(t: u8) -> bool {
    matches!(t, 3 | 4 | 5 | 11 | 12)
}

/// The 5-tuple of a quoted packet (ICMP echo: `sport` is the identifier).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Embedded {
    pub proto: u8,
    pub src: u32,
    pub dst: u32,
    pub sport: u16,
    pub dport: u16,
}

/// Offsets (from the frame start) of the quoted IPv4 header and its payload.
fn quote_offsets(pkt: &PacketBuf) -> Option<(usize, usize)> {
    if pkt.layout.l3 != L3::Ipv4 || pkt.layout.l4 != L4::Icmp {
        return None;
    }
    let d = pkt.data();
    let l4 = pkt.layout.l4_ofs as usize;
    if !is_icmp_error(*d.get(l4)?) {
        return None;
    }
    let ip = l4 + 8;
    let ihl = ((*d.get(ip)? & 0x0f) as usize) * 4;
    if *d.get(ip)? >> 4 != 4 || ihl < 20 || d.len() < ip + ihl + 8 {
        return None;
    }
    Some((ip, ip + ihl))
}

fn be16(d: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(o)?, *d.get(o + 1)?]))
}

fn be32(d: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *d.get(o)?,
        *d.get(o + 1)?,
        *d.get(o + 2)?,
        *d.get(o + 3)?,
    ]))
}

/// The tuple of the packet an ICMP error quotes, if the frame is one.
pub fn icmp_embedded(pkt: &PacketBuf) -> Option<Embedded> {
    let (ip, l4) = quote_offsets(pkt)?;
    icmp_embedded_raw(pkt.data(), ip, l4)
}

/// Rewrites the quoted packet's tuple to `e`, fixing the quoted IP header
/// checksum, the quoted UDP checksum (when in use) and the ICMP checksum.
pub fn rewrite_embedded(pkt: &mut PacketBuf, e: &Embedded) -> Result<(), DropReason> {
    let (ip, l4) = quote_offsets(pkt).ok_or(DropReason::RewriteNoHeader)?;
    let icmp = pkt.layout.l4_ofs as usize;
    let l3 = pkt.layout.l3_ofs as usize;
    let d = pkt.data_mut();
    let old = icmp_embedded_raw(d, ip, l4).ok_or(DropReason::RewriteNoHeader)?;
    let put16 = |d: &mut [u8], o: usize, v: u16| -> Result<(), DropReason> {
        d.get_mut(o..o + 2)
            .ok_or(DropReason::RewriteNoHeader)?
            .copy_from_slice(&v.to_be_bytes());
        Ok(())
    };
    let put32 = |d: &mut [u8], o: usize, v: u32| -> Result<(), DropReason> {
        d.get_mut(o..o + 4)
            .ok_or(DropReason::RewriteNoHeader)?
            .copy_from_slice(&v.to_be_bytes());
        Ok(())
    };
    put32(d, ip + 12, e.src)?;
    put32(d, ip + 16, e.dst)?;
    match old.proto {
        ipproto::TCP | ipproto::UDP => {
            put16(d, l4, e.sport)?;
            put16(d, l4 + 2, e.dport)?;
        }
        ipproto::ICMP => put16(d, l4 + 4, e.sport)?,
        _ => {}
    }
    // Quoted IP header checksum, recomputed over the quoted header.
    let ihl = l4 - ip;
    put16(d, ip + 10, 0)?;
    let c = checksum(d.get(ip..ip + ihl).ok_or(DropReason::RewriteNoHeader)?);
    put16(d, ip + 10, c)?;
    // Quoted UDP checksum: incremental over the changed pseudo-header and ports.
    if old.proto == ipproto::UDP {
        let uc = be16(d, l4 + 6).ok_or(DropReason::RewriteNoHeader)?;
        if uc != 0 {
            let mut s = !uc as u64;
            for (o, n) in [
                (old.src >> 16, e.src >> 16),
                (old.src & 0xffff, e.src & 0xffff),
                (old.dst >> 16, e.dst >> 16),
                (old.dst & 0xffff, e.dst & 0xffff),
                (old.sport as u32, e.sport as u32),
                (old.dport as u32, e.dport as u32),
            ] {
                s += (!o as u64 & 0xffff) + n as u64;
            }
            let mut n = !fold(s);
            if n == 0 {
                n = 0xffff;
            }
            put16(d, l4 + 6, n)?;
        }
    }
    // The ICMP checksum covers the whole message: recompute it.
    let total = be16(d, l3 + 2).ok_or(DropReason::RewriteNoHeader)? as usize;
    let end = (l3 + total).min(d.len());
    put16(d, icmp + 2, 0)?;
    let c = !fold(sum_words(
        d.get(icmp..end).ok_or(DropReason::RewriteNoHeader)?,
        0,
    ));
    put16(d, icmp + 2, c)
}

fn icmp_embedded_raw(d: &[u8], ip: usize, l4: usize) -> Option<Embedded> {
    let proto = *d.get(ip + 9)?;
    let (sport, dport) = match proto {
        ipproto::TCP | ipproto::UDP => (be16(d, l4)?, be16(d, l4 + 2)?),
        ipproto::ICMP => (be16(d, l4 + 4)?, 0),
        _ => (0, 0),
    };
    Some(Embedded {
        proto,
        src: be32(d, ip + 12)?,
        dst: be32(d, ip + 16)?,
        sport,
        dport,
    })
}
