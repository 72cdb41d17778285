//! IPv4 (RFC 791): the header the router and NAT read and rewrite.
//!
//! `Ipv4Packet` views a datagram whose buffer may run past it (Ethernet
//! padding): `new_checked` guarantees the fixed 20-byte header, and
//! `is_consistent` says whether the header's own lengths fit the buffer,
//! after which `header` and `payload` are exactly the datagram's parts.
//! `set_*` write one field; `update_*` also patch the header checksum
//! incrementally, as a rewrite must. `Ipv4Repr` is a header without
//! options as values, written with `emit` (checksum filled in).

use super::bytes::{
    fixed, read_u16, read_u32, read_u8, slice, slice_mut, write_u16, write_u32, write_u8,
};
use super::checksum;

/// Field ranges, from the start of the header.
pub mod field {
    use core::ops::Range;
    /// Version (high 4 bits) and header length in 32-bit words (low 4).
    pub const VER_IHL: usize = 0;
    /// DSCP (high 6 bits) and ECN (low 2).
    pub const TOS: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    /// Flags (high 3 bits) and fragment offset in 8-byte units (low 13).
    pub const FLAGS_FRAG: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// Length of a header without options (the least there is).
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// `FLAGS_FRAG` bits.
pub const DONT_FRAGMENT: u16 = 0x4000;
pub const MORE_FRAGMENTS: u16 = 0x2000;
pub const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// `TOS` bits.
pub const DSCP_MASK: u8 = 0xfc;
pub const ECN_MASK: u8 = 0x03;

/// One's-complement sum (unfolded) of the pseudo-header TCP and UDP
/// checksums cover: addresses, protocol, transport length.
#[inline]
pub fn pseudo_header_sum(src: u32, dst: u32, protocol: u8, len: u16) -> u64 {
    (src >> 16) as u64
        + (src & 0xffff) as u64
        + (dst >> 16) as u64
        + (dst & 0xffff) as u64
        + protocol as u64
        + len as u64
}

/// An IPv4 header, over a buffer of at least `HEADER_LEN` bytes.
#[derive(Clone, Copy, Debug)]
pub struct Ipv4Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Option<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return None;
        }
        Some(Ipv4Packet { buffer })
    }

    /// The fixed header (`new_checked` guaranteed its length).
    #[inline(always)]
    fn header_bytes(&self) -> &[u8; HEADER_LEN] {
        fixed(self.buffer.as_ref())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline(always)]
    pub fn version(&self) -> u8 {
        read_u8(self.header_bytes(), field::VER_IHL) >> 4
    }

    /// Header length in bytes.
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        ((read_u8(self.header_bytes(), field::VER_IHL) & 0x0f) as usize) * 4
    }

    #[inline(always)]
    pub fn tos(&self) -> u8 {
        read_u8(self.header_bytes(), field::TOS)
    }

    /// Datagram length in bytes (header and payload).
    #[inline(always)]
    pub fn total_len(&self) -> usize {
        read_u16(self.header_bytes(), field::LENGTH) as usize
    }

    #[inline(always)]
    pub fn ident(&self) -> u16 {
        read_u16(self.header_bytes(), field::IDENT)
    }

    /// Flags and fragment offset as stored.
    #[inline(always)]
    pub fn flags_frag(&self) -> u16 {
        read_u16(self.header_bytes(), field::FLAGS_FRAG)
    }

    #[inline(always)]
    pub fn dont_fragment(&self) -> bool {
        self.flags_frag() & DONT_FRAGMENT != 0
    }

    #[inline(always)]
    pub fn more_fragments(&self) -> bool {
        self.flags_frag() & MORE_FRAGMENTS != 0
    }

    /// Fragment offset in 8-byte units.
    #[inline(always)]
    pub fn fragment_offset(&self) -> u16 {
        self.flags_frag() & FRAG_OFFSET_MASK
    }

    #[inline(always)]
    pub fn ttl(&self) -> u8 {
        read_u8(self.header_bytes(), field::TTL)
    }

    #[inline(always)]
    pub fn protocol(&self) -> u8 {
        read_u8(self.header_bytes(), field::PROTOCOL)
    }

    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        read_u16(self.header_bytes(), field::CHECKSUM)
    }

    #[inline(always)]
    pub fn src_addr(&self) -> u32 {
        read_u32(self.header_bytes(), field::SRC_ADDR)
    }

    #[inline(always)]
    pub fn dst_addr(&self) -> u32 {
        read_u32(self.header_bytes(), field::DST_ADDR)
    }

    /// Version 4, and header length ≤ total length ≤ buffer length, with
    /// the header at least `HEADER_LEN`.
    #[inline(always)]
    pub fn is_consistent(&self) -> bool {
        let (hlen, total) = (self.header_len(), self.total_len());
        let len = self.buffer.as_ref().len();
        self.version() == 4 && hlen >= HEADER_LEN && hlen <= len && total >= hlen && total <= len
    }

    /// The header, options included (what the checksum covers); empty if
    /// the header length exceeds the buffer.
    #[inline(always)]
    pub fn header(&self) -> &[u8] {
        slice(self.buffer.as_ref(), 0..self.header_len())
    }

    /// The header checksum verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        let h = self.header();
        // The common header, without options: five words of a known
        // count (the sum unrolls).
        match <&[u8; HEADER_LEN]>::try_from(h) {
            Ok(fixed) => checksum::checksum(fixed) == 0,
            Err(_) => checksum::checksum(h) == 0,
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv4Packet<&'a T> {
    /// The payload the header's lengths delimit (padding excluded); empty
    /// unless `is_consistent`.
    #[inline(always)]
    pub fn payload(&self) -> &'a [u8] {
        slice(T::as_ref(self.buffer), self.header_len()..self.total_len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Version 4 and a header of `len` bytes (a multiple of 4, ≤ 60).
    #[inline(always)]
    pub fn set_header_len(&mut self, len: usize) {
        write_u8(
            self.buffer.as_mut(),
            field::VER_IHL,
            0x40 | (len / 4) as u8 & 0x0f,
        )
    }

    #[inline(always)]
    pub fn set_tos(&mut self, tos: u8) {
        write_u8(self.buffer.as_mut(), field::TOS, tos)
    }

    #[inline(always)]
    pub fn set_total_len(&mut self, len: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, len)
    }

    #[inline(always)]
    pub fn set_ident(&mut self, ident: u16) {
        write_u16(self.buffer.as_mut(), field::IDENT, ident)
    }

    #[inline(always)]
    pub fn set_flags_frag(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::FLAGS_FRAG, v)
    }

    #[inline(always)]
    pub fn set_ttl(&mut self, ttl: u8) {
        write_u8(self.buffer.as_mut(), field::TTL, ttl)
    }

    #[inline(always)]
    pub fn set_protocol(&mut self, p: u8) {
        write_u8(self.buffer.as_mut(), field::PROTOCOL, p)
    }

    #[inline(always)]
    pub fn set_checksum(&mut self, c: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, c)
    }

    #[inline(always)]
    pub fn set_src_addr(&mut self, a: u32) {
        write_u32(self.buffer.as_mut(), field::SRC_ADDR, a)
    }

    #[inline(always)]
    pub fn set_dst_addr(&mut self, a: u32) {
        write_u32(self.buffer.as_mut(), field::DST_ADDR, a)
    }

    /// Computes and stores the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.header());
        self.set_checksum(c);
    }

    /// The payload the header's lengths delimit, writable.
    #[inline(always)]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..self.total_len();
        slice_mut(self.buffer.as_mut(), range)
    }

    /// Sets the source address, patching the header checksum; returns the
    /// old address (for the transport's pseudo-header checksum).
    #[inline(always)]
    pub fn update_src_addr(&mut self, a: u32) -> u32 {
        let old = self.src_addr();
        self.set_src_addr(a);
        self.set_checksum(checksum::update32(self.checksum(), old, a));
        old
    }

    /// `update_src_addr` for the destination.
    #[inline(always)]
    pub fn update_dst_addr(&mut self, a: u32) -> u32 {
        let old = self.dst_addr();
        self.set_dst_addr(a);
        self.set_checksum(checksum::update32(self.checksum(), old, a));
        old
    }

    /// Sets the TTL, patching the header checksum.
    #[inline(always)]
    pub fn update_ttl(&mut self, ttl: u8) {
        let old = self.ttl();
        self.set_ttl(ttl);
        // TTL is the high byte of its word.
        let c = checksum::update(self.checksum(), (old as u16) << 8, (ttl as u16) << 8);
        self.set_checksum(c);
    }

    /// Sets the TOS byte, patching the header checksum.
    #[inline(always)]
    pub fn update_tos(&mut self, tos: u8) {
        let old = self.tos();
        self.set_tos(tos);
        // TOS is the low byte of its word.
        let c = checksum::update(self.checksum(), old as u16, tos as u16);
        self.set_checksum(c);
    }
}

/// An IPv4 header without options, as values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub tos: u8,
    /// Flags and fragment offset, as stored (`DONT_FRAGMENT`, ...).
    pub flags_frag: u16,
    pub ttl: u8,
    pub protocol: u8,
    pub src: u32,
    pub dst: u32,
    /// Bytes after the header.
    pub payload_len: usize,
}

impl Ipv4Repr {
    /// Writes the header (identification 0) with its checksum.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Ipv4Packet<T>) {
        p.set_header_len(HEADER_LEN);
        p.set_tos(self.tos);
        p.set_total_len((HEADER_LEN + self.payload_len) as u16);
        p.set_ident(0);
        p.set_flags_frag(self.flags_frag);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_addr(self.src);
        p.set_dst_addr(self.dst);
        p.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ip::ipproto;

    /// Wikipedia's example header: UDP, 0x73 bytes, DF, TTL 64,
    /// 192.168.0.1 -> 192.168.0.199, checksum 0xb861.
    const HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    #[test]
    fn getters_read_a_known_header() {
        let p = Ipv4Packet::new_checked(&HEADER[..]).unwrap();
        assert_eq!((p.version(), p.header_len(), p.total_len()), (4, 20, 0x73));
        assert!(p.dont_fragment() && !p.more_fragments());
        assert_eq!(
            (p.fragment_offset(), p.ttl(), p.protocol()),
            (0, 64, ipproto::UDP)
        );
        assert_eq!(p.checksum(), 0xb861);
        assert!(p.verify_checksum());
        assert_eq!((p.src_addr(), p.dst_addr()), (0xc0a80001, 0xc0a800c7));
        // The total length runs past this buffer.
        assert!(!p.is_consistent());
        assert_eq!(p.payload(), &[] as &[u8]);
    }

    #[test]
    fn short_buffers_are_refused_and_lengths_checked() {
        assert!(Ipv4Packet::new_checked(&HEADER[..19]).is_none());
        let mut b = HEADER.to_vec();
        b.resize(0x73 + 4, 0); // Ethernet padding after the datagram
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(p.is_consistent());
        assert_eq!(p.payload().len(), 0x73 - 20);
        b[0] = 0x44; // IHL below 5
        assert!(!Ipv4Packet::new_checked(&b[..]).unwrap().is_consistent());
        b[0] = 0x4f; // IHL 15: 60 bytes, fits; total 0x73 >= 60
        assert!(Ipv4Packet::new_checked(&b[..]).unwrap().is_consistent());
        b[0] = 0x65;
        assert!(!Ipv4Packet::new_checked(&b[..]).unwrap().is_consistent());
    }

    #[test]
    fn emit_reproduces_the_known_header() {
        let mut b = [0u8; 20];
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        Ipv4Repr {
            tos: 0,
            flags_frag: DONT_FRAGMENT,
            ttl: 64,
            protocol: ipproto::UDP,
            src: 0xc0a80001,
            dst: 0xc0a800c7,
            payload_len: 0x73 - 20,
        }
        .emit(&mut p);
        assert_eq!(b, HEADER);
    }

    #[test]
    fn updates_keep_the_checksum_valid() {
        let mut b = HEADER;
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        assert_eq!(p.update_src_addr(0x0a000001), 0xc0a80001);
        assert_eq!(p.update_dst_addr(0xcb00710a), 0xc0a800c7);
        p.update_ttl(63);
        p.update_tos(0xb8 | (p.tos() & ECN_MASK));
        assert!(p.verify_checksum());
        assert_eq!(
            (p.src_addr(), p.dst_addr(), p.ttl(), p.tos()),
            (0x0a000001, 0xcb00710a, 63, 0xb8)
        );
        p.set_ident(7);
        p.set_flags_frag(MORE_FRAGMENTS | 3);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert!(p.more_fragments() && p.fragment_offset() == 3 && p.ident() == 7);
    }
}
