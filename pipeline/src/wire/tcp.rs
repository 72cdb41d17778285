//! TCP (RFC 9293), as far as a switch reads and rewrites it: ports, flags
//! and the checksum.
//!
//! `TcpPacket` views a segment; `update_*` setters patch the checksum
//! incrementally. `TcpRepr` is the fixed header as values, written with
//! `emit`; `fill_checksum` then covers the payload, so it comes last.

use super::bytes::{fixed, read_u16, read_u32, read_u8, write_u16, write_u32};
use super::checksum;
use super::ip::ipproto;
use super::ipv4::pseudo_header_sum;

/// Field ranges, from the start of the header.
pub mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
    pub const ACK_NUM: Range<usize> = 8..12;
    /// Data offset in 32-bit words (high 4 bits) and the 12 flag bits.
    pub const FLAGS: Range<usize> = 12..14;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = field::URGENT.end;

/// The flag bits of `FLAGS` (NS..FIN), as OVS's `tcp_flags`.
pub const FLAGS_MASK: u16 = 0x0fff;

/// A TCP header, over a buffer of at least `HEADER_LEN` bytes.
#[derive(Clone, Copy, Debug)]
pub struct TcpPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Option<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return None;
        }
        Some(TcpPacket { buffer })
    }

    /// The fixed header (`new_checked` guaranteed its length).
    #[inline(always)]
    fn header_bytes(&self) -> &[u8; HEADER_LEN] {
        fixed(self.buffer.as_ref())
    }

    #[inline(always)]
    pub fn src_port(&self) -> u16 {
        read_u16(self.header_bytes(), field::SRC_PORT)
    }

    #[inline(always)]
    pub fn dst_port(&self) -> u16 {
        read_u16(self.header_bytes(), field::DST_PORT)
    }

    #[inline(always)]
    pub fn seq_number(&self) -> u32 {
        read_u32(self.header_bytes(), field::SEQ_NUM)
    }

    #[inline(always)]
    pub fn ack_number(&self) -> u32 {
        read_u32(self.header_bytes(), field::ACK_NUM)
    }

    /// Header length in bytes (the data offset).
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        ((read_u8(self.header_bytes(), field::FLAGS.start) >> 4) as usize) * 4
    }

    /// The 12 flag bits (NS..FIN).
    #[inline(always)]
    pub fn flags(&self) -> u16 {
        read_u16(self.header_bytes(), field::FLAGS) & FLAGS_MASK
    }

    #[inline(always)]
    pub fn window(&self) -> u16 {
        read_u16(self.header_bytes(), field::WINDOW)
    }

    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        read_u16(self.header_bytes(), field::CHECKSUM)
    }

    /// The checksum verifies against the IPv4 pseudo-header; the buffer
    /// must be exactly the segment.
    #[inline]
    pub fn verify_checksum(&self, src: u32, dst: u32) -> bool {
        let b = self.buffer.as_ref();
        let pseudo = pseudo_header_sum(src, dst, ipproto::TCP, b.len() as u16);
        checksum::fold(checksum::sum_words(b, pseudo)) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    #[inline(always)]
    pub fn set_src_port(&mut self, p: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, p)
    }

    #[inline(always)]
    pub fn set_dst_port(&mut self, p: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, p)
    }

    pub fn set_seq_number(&mut self, n: u32) {
        write_u32(self.buffer.as_mut(), field::SEQ_NUM, n)
    }

    pub fn set_ack_number(&mut self, n: u32) {
        write_u32(self.buffer.as_mut(), field::ACK_NUM, n)
    }

    /// Header length (a multiple of 4, ≤ 60) and flags, which share a word.
    pub fn set_header_len_and_flags(&mut self, len: usize, flags: u16) {
        let v = ((len / 4) as u16) << 12 | flags & FLAGS_MASK;
        write_u16(self.buffer.as_mut(), field::FLAGS, v)
    }

    pub fn set_window(&mut self, w: u16) {
        write_u16(self.buffer.as_mut(), field::WINDOW, w)
    }

    #[inline(always)]
    pub fn set_checksum(&mut self, c: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, c)
    }

    pub fn set_urgent(&mut self, u: u16) {
        write_u16(self.buffer.as_mut(), field::URGENT, u)
    }

    /// Sets the source port, patching the checksum.
    #[inline(always)]
    pub fn update_src_port(&mut self, p: u16) {
        let old = self.src_port();
        self.set_src_port(p);
        self.set_checksum(checksum::update(self.checksum(), old, p));
    }

    /// Sets the destination port, patching the checksum.
    #[inline(always)]
    pub fn update_dst_port(&mut self, p: u16) {
        let old = self.dst_port();
        self.set_dst_port(p);
        self.set_checksum(checksum::update(self.checksum(), old, p));
    }

    /// Patches the checksum for an IP address in the pseudo-header that
    /// changed from `old` to `new`.
    #[inline(always)]
    pub fn update_pseudo_header_addr(&mut self, old: u32, new: u32) {
        self.set_checksum(checksum::update32(self.checksum(), old, new));
    }

    /// Computes and stores the checksum over the whole buffer (which must
    /// be exactly the segment) and the IPv4 pseudo-header.
    pub fn fill_checksum(&mut self, src: u32, dst: u32) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let pseudo = pseudo_header_sum(src, dst, ipproto::TCP, b.len() as u16);
        let c = !checksum::fold(checksum::sum_words(b, pseudo));
        self.set_checksum(c);
    }
}

/// A TCP header without options, as values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq_number: u32,
    pub ack_number: u32,
    /// The 12 flag bits.
    pub flags: u16,
    pub window: u16,
}

impl TcpRepr {
    /// Writes the header, checksum zero (fill it once the payload is in
    /// place).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut TcpPacket<T>) {
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_seq_number(self.seq_number);
        p.set_ack_number(self.ack_number);
        p.set_header_len_and_flags(HEADER_LEN, self.flags);
        p.set_window(self.window);
        p.set_checksum(0);
        p.set_urgent(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SYN from 10.0.0.1:1 to 10.0.0.2:2, seq 1, window 0xffff, no
    /// payload. Checksum by hand: pseudo-header 0a00+0001+0a00+0002+0006+
    /// 0014 = 0x141d; header 0001+0002+0000+0001+0000+0000+5002+ffff =
    /// 0x15005 -> 0x5006; sum 0x6423, checksum 0x9bdc.
    const SYN: [u8; 20] = [
        0, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0x9b, 0xdc, 0, 0,
    ];
    const SRC: u32 = 0x0a000001;
    const DST: u32 = 0x0a000002;

    #[test]
    fn getters_and_the_known_checksum() {
        let p = TcpPacket::new_checked(&SYN[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (1, 2));
        assert_eq!((p.seq_number(), p.ack_number()), (1, 0));
        assert_eq!((p.header_len(), p.flags(), p.window()), (20, 0x002, 0xffff));
        assert!(p.verify_checksum(SRC, DST));
        assert!(TcpPacket::new_checked(&SYN[..19]).is_none());
    }

    #[test]
    fn emit_and_updates_keep_the_checksum_valid() {
        let mut b = [0u8; 20];
        let mut p = TcpPacket::new_checked(&mut b[..]).unwrap();
        TcpRepr {
            src_port: 1,
            dst_port: 2,
            seq_number: 1,
            ack_number: 0,
            flags: 0x002,
            window: 0xffff,
        }
        .emit(&mut p);
        p.fill_checksum(SRC, DST);
        assert_eq!(b, SYN);
        let mut p = TcpPacket::new_checked(&mut b[..]).unwrap();
        p.update_src_port(40000);
        p.update_dst_port(8080);
        p.update_pseudo_header_addr(DST, 0x0a01000d);
        assert_eq!((p.src_port(), p.dst_port()), (40000, 8080));
        assert!(p.verify_checksum(SRC, 0x0a01000d));
    }
}
