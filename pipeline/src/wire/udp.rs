//! UDP (RFC 768).
//!
//! `UdpPacket` views a datagram; `update_*` setters patch the checksum
//! incrementally and keep UDP's rule that a zero checksum means "none"
//! (left alone) and a computed zero is sent as 0xffff. `UdpRepr` is the
//! header as values, written with `emit`; `fill_checksum` then covers
//! the payload, so it comes last.

use super::bytes::{fixed, read_u16, slice, slice_mut, write_u16};
use super::checksum;
use super::ip::ipproto;
use super::ipv4::pseudo_header_sum;

/// Field ranges, from the start of the header.
pub mod field {
    use core::ops::{Range, RangeFrom};
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
    pub const PAYLOAD: RangeFrom<usize> = 8..;
}

pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// A UDP header, over a buffer of at least `HEADER_LEN` bytes.
#[derive(Clone, Copy, Debug)]
pub struct UdpPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Option<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return None;
        }
        Some(UdpPacket { buffer })
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

    /// Header and payload length, as stored.
    #[inline(always)]
    pub fn length(&self) -> u16 {
        read_u16(self.header_bytes(), field::LENGTH)
    }

    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        read_u16(self.header_bytes(), field::CHECKSUM)
    }

    /// The checksum is absent (zero) or verifies against the IPv4
    /// pseudo-header; the buffer must be exactly the datagram.
    #[inline]
    pub fn verify_checksum(&self, src: u32, dst: u32) -> bool {
        let b = self.buffer.as_ref();
        let pseudo = pseudo_header_sum(src, dst, ipproto::UDP, b.len() as u16);
        self.checksum() == 0 || checksum::fold(checksum::sum_words(b, pseudo)) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> UdpPacket<&'a T> {
    /// Everything after the header in the buffer.
    pub fn payload(&self) -> &'a [u8] {
        let b = T::as_ref(self.buffer);
        slice(b, HEADER_LEN..b.len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    #[inline(always)]
    pub fn set_src_port(&mut self, p: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, p)
    }

    #[inline(always)]
    pub fn set_dst_port(&mut self, p: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, p)
    }

    #[inline(always)]
    pub fn set_length(&mut self, len: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, len)
    }

    #[inline(always)]
    pub fn set_checksum(&mut self, c: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, c)
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let b = self.buffer.as_mut();
        let end = b.len();
        slice_mut(b, HEADER_LEN..end)
    }

    /// Patches the checksum, if one is in use, with `f` (an RFC 1624
    /// update); a result of zero is stored as 0xffff.
    #[inline(always)]
    fn patch_checksum(&mut self, f: impl FnOnce(u16) -> u16) {
        let c = self.checksum();
        if c == 0 {
            return;
        }
        let n = f(c);
        self.set_checksum(if n == 0 { 0xffff } else { n });
    }

    /// Sets the source port, patching the checksum.
    #[inline(always)]
    pub fn update_src_port(&mut self, p: u16) {
        let old = self.src_port();
        self.set_src_port(p);
        self.patch_checksum(|c| checksum::update(c, old, p));
    }

    /// Sets the destination port, patching the checksum.
    #[inline(always)]
    pub fn update_dst_port(&mut self, p: u16) {
        let old = self.dst_port();
        self.set_dst_port(p);
        self.patch_checksum(|c| checksum::update(c, old, p));
    }

    /// Patches the checksum for an IP address in the pseudo-header that
    /// changed from `old` to `new`.
    #[inline(always)]
    pub fn update_pseudo_header_addr(&mut self, old: u32, new: u32) {
        self.patch_checksum(|c| checksum::update32(c, old, new));
    }

    /// Patches the checksum for several 16-bit words of the datagram or
    /// its pseudo-header that changed, `(old, new)` each.
    pub fn update_checksum_words(&mut self, changes: &[(u16, u16)]) {
        self.patch_checksum(|c| checksum::update_words(c, changes));
    }

    /// Computes and stores the checksum over the whole buffer (which must
    /// be exactly the datagram) and the IPv4 pseudo-header.
    pub fn fill_checksum(&mut self, src: u32, dst: u32) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let pseudo = pseudo_header_sum(src, dst, ipproto::UDP, b.len() as u16);
        let c = !checksum::fold(checksum::sum_words(b, pseudo));
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }
}

/// A UDP header as values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpRepr {
    pub src_port: u16,
    pub dst_port: u16,
}

impl UdpRepr {
    /// Writes the header for `payload_len` bytes of payload, checksum zero
    /// (fill it once the payload is in place).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut UdpPacket<T>, payload_len: usize) {
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_length((HEADER_LEN + payload_len) as u16);
        p.set_checksum(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DNS query header from 10.1.0.11:5000 to 10.2.0.14:53 with 4 bytes
    /// of payload; checksum worked out by hand: pseudo-header
    /// 0a01+000b+0a02+000e+0011+000c = 0x1439, header 1388+0035+000c =
    /// 0x13c9, payload 0102+0304 = 0x0406; sum 0x2c08, checksum 0xd3f7.
    const DATAGRAM: [u8; 12] = [0x13, 0x88, 0x00, 0x35, 0x00, 0x0c, 0xd3, 0xf7, 1, 2, 3, 4];
    const SRC: u32 = 0x0a01000b;
    const DST: u32 = 0x0a02000e;

    #[test]
    fn getters_and_the_known_checksum() {
        let p = UdpPacket::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.length()), (5000, 53, 12));
        assert_eq!(p.payload(), &[1, 2, 3, 4]);
        assert!(p.verify_checksum(SRC, DST));
        let mut b = DATAGRAM;
        let mut p = UdpPacket::new_checked(&mut b[..]).unwrap();
        p.fill_checksum(SRC, DST);
        assert_eq!(p.checksum(), 0xd3f7);
        assert!(UdpPacket::new_checked(&DATAGRAM[..7]).is_none());
    }

    #[test]
    fn emit_and_updates_keep_the_checksum_valid() {
        let mut b = [0u8; 12];
        b[8..].copy_from_slice(&[1, 2, 3, 4]);
        let mut p = UdpPacket::new_checked(&mut b[..]).unwrap();
        UdpRepr {
            src_port: 5000,
            dst_port: 53,
        }
        .emit(&mut p, 4);
        p.fill_checksum(SRC, DST);
        assert_eq!(b, DATAGRAM);
        let mut p = UdpPacket::new_checked(&mut b[..]).unwrap();
        p.update_src_port(61000);
        p.update_dst_port(5353);
        p.update_pseudo_header_addr(SRC, 0xcb00710a);
        assert_eq!((p.src_port(), p.dst_port()), (61000, 5353));
        assert!(p.verify_checksum(0xcb00710a, DST));
        p.update_checksum_words(&[(0xcb00, 0x0a01), (0x710a, 0x000b)]);
        assert!(p.verify_checksum(SRC, DST));
    }

    #[test]
    fn a_zero_checksum_means_none_and_stays_zero() {
        let mut b = DATAGRAM;
        b[6..8].copy_from_slice(&[0, 0]);
        let mut p = UdpPacket::new_checked(&mut b[..]).unwrap();
        p.update_src_port(1);
        p.update_pseudo_header_addr(SRC, 1);
        assert_eq!(p.checksum(), 0);
    }
}
