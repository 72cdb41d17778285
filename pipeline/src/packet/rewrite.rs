//! In-place header rewrites with incremental checksum updates.
//!
//! A `Rewrite` is one header change the slow path decided on; the fast path
//! replays the list on each packet. Checksums are patched with RFC 1624's
//! `HC' = ~(~HC + ~m + m')` so no rewrite reads the payload. A rewrite that
//! needs a header the packet lacks fails with `RewriteNoHeader` (the packet
//! is dropped and counted), never a panic.

use super::{PacketBuf, L3, L4};
use crate::drop::DropReason;
use crate::key::Mac;

/// One header change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rewrite {
    EthSrc(Mac),
    EthDst(Mac),
    /// Push an 802.1Q tag (`tci` as on the wire: PCP, DEI, VID).
    VlanPush {
        tpid: u16,
        tci: u16,
    },
    /// Replace the TCI of the existing tag.
    VlanSetTci(u16),
    VlanPop,
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

/// The Internet checksum (RFC 1071) of `data`, ready to store.
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum_words(data, 0))
}

/// One's-complement sum of `data` as big-endian 16-bit words, added to `acc`.
pub(crate) fn sum_words(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        if let [a, b] = c {
            acc += u16::from_be_bytes([*a, *b]) as u64;
        }
    }
    if let [last] = chunks.remainder() {
        acc += (*last as u64) << 8;
    }
    acc
}

/// Folds a wide one's-complement sum to 16 bits.
pub(crate) fn fold(mut s: u64) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// RFC 1624 eqn. 3: the checksum after one 16-bit word changed.
#[inline(always)]
fn csum_update(csum: u16, old: u16, new: u16) -> u16 {
    let s = (!csum as u64) + (!old as u64 & 0xffff) + new as u64;
    !fold(s)
}

#[inline(always)]
fn csum_update32(csum: u16, old: u32, new: u32) -> u16 {
    let c = csum_update(csum, (old >> 16) as u16, (new >> 16) as u16);
    csum_update(c, old as u16, new as u16)
}

#[inline(always)]
fn rd16(d: &[u8], o: usize) -> Result<u16, DropReason> {
    d.get(o..o + 2)
        .and_then(|s| s.first_chunk::<2>())
        .map(|b| u16::from_be_bytes(*b))
        .ok_or(DropReason::RewriteNoHeader)
}

#[inline(always)]
fn wr16(d: &mut [u8], o: usize, v: u16) -> Result<(), DropReason> {
    d.get_mut(o..o + 2)
        .ok_or(DropReason::RewriteNoHeader)?
        .copy_from_slice(&v.to_be_bytes());
    Ok(())
}

#[inline(always)]
fn rd32(d: &[u8], o: usize) -> Result<u32, DropReason> {
    d.get(o..o + 4)
        .and_then(|s| s.first_chunk::<4>())
        .map(|b| u32::from_be_bytes(*b))
        .ok_or(DropReason::RewriteNoHeader)
}

#[inline(always)]
fn wr32(d: &mut [u8], o: usize, v: u32) -> Result<(), DropReason> {
    d.get_mut(o..o + 4)
        .ok_or(DropReason::RewriteNoHeader)?
        .copy_from_slice(&v.to_be_bytes());
    Ok(())
}

#[inline(always)]
fn wr_mac(d: &mut [u8], o: usize, m: Mac) -> Result<(), DropReason> {
    d.get_mut(o..o + 6)
        .ok_or(DropReason::RewriteNoHeader)?
        .copy_from_slice(&m.0);
    Ok(())
}

/// Offset of the transport checksum, if the transport has one to patch
/// for a pseudo-header change (`with_pseudo`) or any change.
fn l4_csum_ofs(l4: L4, with_pseudo: bool) -> Option<usize> {
    match l4 {
        L4::Tcp => Some(16),
        L4::Udp => Some(6),
        L4::Icmp if !with_pseudo => Some(2),
        L4::Icmpv6 => Some(2),
        _ => None,
    }
}

/// Patches the transport checksum at `l4 + ofs` for a word change.
fn patch_l4_csum(
    d: &mut [u8],
    l4: L4,
    at: usize,
    old: u32,
    new: u32,
    wide: bool,
) -> Result<(), DropReason> {
    let c = rd16(d, at)?;
    if l4 == L4::Udp && c == 0 {
        return Ok(()); // no checksum in use
    }
    let mut n = if wide {
        csum_update32(c, old, new)
    } else {
        csum_update(c, old as u16, new as u16)
    };
    if l4 == L4::Udp && n == 0 {
        n = 0xffff;
    }
    wr16(d, at, n)
}

/// Rewrites an IPv4 address at `l3 + field` (12 = src, 16 = dst).
fn set_ipv4_addr(pkt: &mut PacketBuf, field: usize, addr: u32) -> Result<(), DropReason> {
    let lay = pkt.layout;
    let l3 = lay.l3_ofs as usize;
    let d = pkt.data_mut();
    let old = rd32(d, l3 + field)?;
    wr32(d, l3 + field, addr)?;
    let c = rd16(d, l3 + 10)?;
    wr16(d, l3 + 10, csum_update32(c, old, addr))?;
    if let Some(o) = l4_csum_ofs(lay.l4, true) {
        patch_l4_csum(d, lay.l4, lay.l4_ofs as usize + o, old, addr, true)?;
    }
    Ok(())
}

/// Rewrites the IPv4 header word at `l3 + ofs` (with the header checksum).
fn set_ipv4_word(
    pkt: &mut PacketBuf,
    ofs: usize,
    f: impl FnOnce(u16) -> Result<u16, DropReason>,
) -> Result<(), DropReason> {
    let l3 = pkt.layout.l3_ofs as usize;
    let d = pkt.data_mut();
    let old = rd16(d, l3 + ofs)?;
    let new = f(old)?;
    wr16(d, l3 + ofs, new)?;
    let c = rd16(d, l3 + 10)?;
    wr16(d, l3 + 10, csum_update(c, old, new))
}

/// Rewrites the transport word at `l4 + ofs` (with the transport checksum).
fn set_l4_word(
    pkt: &mut PacketBuf,
    ofs: usize,
    f: impl FnOnce(u16) -> u16,
) -> Result<(), DropReason> {
    let lay = pkt.layout;
    let l4 = lay.l4_ofs as usize;
    let d = pkt.data_mut();
    let old = rd16(d, l4 + ofs)?;
    let new = f(old);
    wr16(d, l4 + ofs, new)?;
    let Some(o) = l4_csum_ofs(lay.l4, false) else {
        return Ok(());
    };
    patch_l4_csum(d, lay.l4, l4 + o, old as u32, new as u32, false)?;
    if lay.l4 == L4::Icmp && rd16(d, l4 + o)? == 0 {
        // The incremental form cannot tell a message whose words are all
        // zero (checksum 0xffff) from one whose sum is negative zero
        // (checksum 0): settle this rare case by summing the message.
        let l3 = lay.l3_ofs as usize;
        let end = (l3 + rd16(d, l3 + 2)? as usize).min(d.len());
        let msg = d.get(l4..end).ok_or(DropReason::RewriteNoHeader)?;
        let c = !fold(sum_words(msg, 0));
        wr16(d, l4 + o, c)?;
    }
    Ok(())
}

/// Applies one rewrite to the packet in place, keeping `pkt.layout` true.
#[inline]
pub fn apply(pkt: &mut PacketBuf, r: &Rewrite) -> Result<(), DropReason> {
    let lay = pkt.layout;
    match *r {
        Rewrite::NatSrcPort => {
            if pkt.nat_sport & super::NAT_SPORT_SET == 0 {
                return Ok(());
            }
            let port = pkt.nat_sport as u16;
            return match lay.l4 {
                super::L4::Icmp => apply(pkt, &Rewrite::IcmpId(port)),
                _ => apply(pkt, &Rewrite::L4Src(port)),
            };
        }
        Rewrite::EthDst(m) => wr_mac(pkt.data_mut(), 0, m),
        Rewrite::EthSrc(m) => wr_mac(pkt.data_mut(), 6, m),
        Rewrite::VlanPush { tpid, tci } => {
            if pkt.len() < 12 {
                return Err(DropReason::RewriteNoHeader);
            }
            pkt.push_front(4)?;
            let d = pkt.data_mut();
            d.copy_within(4..16, 0);
            wr16(d, 12, tpid)?;
            wr16(d, 14, tci)?;
            pkt.layout.vlan = true;
            pkt.layout.shift(4);
            Ok(())
        }
        Rewrite::VlanSetTci(tci) => {
            if !lay.vlan {
                return Err(DropReason::RewriteNoHeader);
            }
            wr16(pkt.data_mut(), 14, tci)
        }
        Rewrite::VlanPop => {
            if !lay.vlan || pkt.len() < 16 {
                return Err(DropReason::RewriteNoHeader);
            }
            pkt.data_mut().copy_within(0..12, 4);
            pkt.pull_front(4)?;
            pkt.layout.vlan = false;
            pkt.layout.shift(-4);
            Ok(())
        }
        Rewrite::Ipv4Src(a) => match lay.l3 {
            L3::Ipv4 => set_ipv4_addr(pkt, 12, a),
            L3::Arp => wr32(pkt.data_mut(), lay.l3_ofs as usize + 14, a),
            _ => Err(DropReason::RewriteNoHeader),
        },
        Rewrite::Ipv4Dst(a) => match lay.l3 {
            L3::Ipv4 => set_ipv4_addr(pkt, 16, a),
            L3::Arp => wr32(pkt.data_mut(), lay.l3_ofs as usize + 24, a),
            _ => Err(DropReason::RewriteNoHeader),
        },
        Rewrite::Ipv4Tos(t) => {
            if lay.l3 != L3::Ipv4 {
                return Err(DropReason::RewriteNoHeader);
            }
            set_ipv4_word(pkt, 0, |w| Ok((w & 0xff03) | (t & 0xfc) as u16))
        }
        Rewrite::Ipv4Ttl(t) => {
            if lay.l3 != L3::Ipv4 {
                return Err(DropReason::RewriteNoHeader);
            }
            set_ipv4_word(pkt, 8, |w| Ok((w & 0x00ff) | (t as u16) << 8))
        }
        Rewrite::Ipv4DecTtl => {
            if lay.l3 != L3::Ipv4 {
                return Err(DropReason::RewriteNoHeader);
            }
            set_ipv4_word(pkt, 8, |w| {
                if w >> 8 <= 1 {
                    Err(DropReason::TtlExceeded)
                } else {
                    Ok(w - 0x0100)
                }
            })
        }
        Rewrite::L4Src(v) => match lay.l4 {
            L4::Tcp | L4::Udp => set_l4_word(pkt, 0, |_| v),
            L4::Icmp | L4::Icmpv6 => set_l4_word(pkt, 0, |w| (w & 0x00ff) | (v & 0xff) << 8),
            L4::None => Err(DropReason::RewriteNoHeader),
        },
        Rewrite::L4Dst(v) => match lay.l4 {
            L4::Tcp | L4::Udp => set_l4_word(pkt, 2, |_| v),
            L4::Icmp | L4::Icmpv6 => set_l4_word(pkt, 0, |w| (w & 0xff00) | (v & 0xff)),
            L4::None => Err(DropReason::RewriteNoHeader),
        },
        Rewrite::IcmpId(v) => match lay.l4 {
            L4::Icmp => set_l4_word(pkt, 4, |_| v),
            _ => Err(DropReason::RewriteNoHeader),
        },
        Rewrite::ArpOp(op) if lay.l3 == L3::Arp => {
            wr16(pkt.data_mut(), lay.l3_ofs as usize + 6, op)
        }
        Rewrite::ArpSha(m) if lay.l3 == L3::Arp => {
            wr_mac(pkt.data_mut(), lay.l3_ofs as usize + 8, m)
        }
        Rewrite::ArpTha(m) if lay.l3 == L3::Arp => {
            wr_mac(pkt.data_mut(), lay.l3_ofs as usize + 18, m)
        }
        Rewrite::ArpOp(_) | Rewrite::ArpSha(_) | Rewrite::ArpTha(_) => {
            Err(DropReason::RewriteNoHeader)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_update_equals_recompute() {
        let mut hdr = [
            0x45u8, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 1, 0, 11, 10, 1, 0, 12,
        ];
        let c = checksum(&hdr);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&hdr), 0);
        let old = u32::from_be_bytes([hdr[12], hdr[13], hdr[14], hdr[15]]);
        let new = 0xac18_0005u32;
        hdr[12..16].copy_from_slice(&new.to_be_bytes());
        let c2 = csum_update32(c, old, new);
        hdr[10..12].copy_from_slice(&c2.to_be_bytes());
        assert_eq!(checksum(&hdr), 0);
    }
}
