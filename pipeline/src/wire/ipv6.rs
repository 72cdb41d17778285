//! IPv6 (RFC 8200), as far as the pipeline reads it: the fixed 40-byte
//! header (no extension headers are followed).
//!
//! `Ipv6Packet` views it; `Ipv6Repr` is the header as values, written with
//! `emit` (flow label zero).

use super::bytes::{
    fixed, read_bytes, read_u16, read_u32, read_u8, slice, write_bytes, write_u16, write_u32,
    write_u8,
};

/// Field ranges, from the start of the header.
pub mod field {
    use core::ops::Range;
    /// Version (4 bits), traffic class (8), flow label (20).
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Range<usize> = 8..24;
    pub const DST_ADDR: Range<usize> = 24..40;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// An IPv6 header, over a buffer of at least `HEADER_LEN` bytes.
#[derive(Clone, Copy, Debug)]
pub struct Ipv6Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Option<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return None;
        }
        Some(Ipv6Packet { buffer })
    }

    /// The fixed header (`new_checked` guaranteed its length).
    #[inline(always)]
    fn header_bytes(&self) -> &[u8; HEADER_LEN] {
        fixed(self.buffer.as_ref())
    }

    #[inline(always)]
    pub fn version(&self) -> u8 {
        (read_u32(self.header_bytes(), field::VER_TC_FLOW) >> 28) as u8
    }

    #[inline(always)]
    pub fn traffic_class(&self) -> u8 {
        (read_u32(self.header_bytes(), field::VER_TC_FLOW) >> 20) as u8
    }

    /// Bytes after the fixed header.
    #[inline(always)]
    pub fn payload_len(&self) -> usize {
        read_u16(self.header_bytes(), field::PAYLOAD_LEN) as usize
    }

    #[inline(always)]
    pub fn next_header(&self) -> u8 {
        read_u8(self.header_bytes(), field::NEXT_HEADER)
    }

    #[inline(always)]
    pub fn hop_limit(&self) -> u8 {
        read_u8(self.header_bytes(), field::HOP_LIMIT)
    }

    pub fn src_addr(&self) -> [u8; 16] {
        read_bytes(self.header_bytes(), field::SRC_ADDR)
    }

    pub fn dst_addr(&self) -> [u8; 16] {
        read_bytes(self.header_bytes(), field::DST_ADDR)
    }

    /// Version 6, and the payload length within the buffer.
    #[inline(always)]
    pub fn is_consistent(&self) -> bool {
        self.version() == 6 && HEADER_LEN + self.payload_len() <= self.buffer.as_ref().len()
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv6Packet<&'a T> {
    /// The payload the header's length delimits; empty unless
    /// `is_consistent`.
    #[inline(always)]
    pub fn payload(&self) -> &'a [u8] {
        slice(
            T::as_ref(self.buffer),
            HEADER_LEN..HEADER_LEN + self.payload_len(),
        )
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Version 6, `tc`, flow label 0.
    pub fn set_version_and_traffic_class(&mut self, tc: u8) {
        let v = 6 << 28 | (tc as u32) << 20;
        write_u32(self.buffer.as_mut(), field::VER_TC_FLOW, v)
    }

    pub fn set_payload_len(&mut self, len: u16) {
        write_u16(self.buffer.as_mut(), field::PAYLOAD_LEN, len)
    }

    pub fn set_next_header(&mut self, nh: u8) {
        write_u8(self.buffer.as_mut(), field::NEXT_HEADER, nh)
    }

    pub fn set_hop_limit(&mut self, h: u8) {
        write_u8(self.buffer.as_mut(), field::HOP_LIMIT, h)
    }

    pub fn set_src_addr(&mut self, a: [u8; 16]) {
        write_bytes(self.buffer.as_mut(), field::SRC_ADDR, a)
    }

    pub fn set_dst_addr(&mut self, a: [u8; 16]) {
        write_bytes(self.buffer.as_mut(), field::DST_ADDR, a)
    }
}

/// An IPv6 fixed header as values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Repr {
    pub traffic_class: u8,
    pub next_header: u8,
    pub hop_limit: u8,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub payload_len: usize,
}

impl Ipv6Repr {
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Ipv6Packet<T>) {
        p.set_version_and_traffic_class(self.traffic_class);
        p.set_payload_len(self.payload_len as u16);
        p.set_next_header(self.next_header);
        p.set_hop_limit(self.hop_limit);
        p.set_src_addr(self.src);
        p.set_dst_addr(self.dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ip::ipproto;

    fn link_local(host: u8) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[0] = 0xfe;
        a[1] = 0x80;
        a[15] = host;
        a
    }

    #[test]
    fn emit_and_getters_round_trip() {
        let mut b = [0u8; 48];
        let repr = Ipv6Repr {
            traffic_class: 0xb8,
            next_header: ipproto::UDP,
            hop_limit: 255,
            src: link_local(1),
            dst: link_local(2),
            payload_len: 8,
        };
        repr.emit(&mut Ipv6Packet::new_checked(&mut b[..]).unwrap());
        assert_eq!(b[..8], [0x6b, 0x80, 0, 0, 0, 8, 17, 255]);
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.version(), p.traffic_class()), (6, 0xb8));
        assert_eq!(
            (p.payload_len(), p.next_header(), p.hop_limit()),
            (8, 17, 255)
        );
        assert_eq!((p.src_addr(), p.dst_addr()), (link_local(1), link_local(2)));
        assert!(p.is_consistent());
        assert_eq!(p.payload().len(), 8);
        assert!(!Ipv6Packet::new_checked(&b[..47]).unwrap().is_consistent());
        assert!(Ipv6Packet::new_checked(&b[..39]).is_none());
    }
}
