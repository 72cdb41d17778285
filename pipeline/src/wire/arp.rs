//! ARP for Ethernet and IPv4 (RFC 826), the only kind the pipeline reads.
//!
//! `ArpPacket` views the 28 bytes; `ArpRepr` is a request or reply as
//! values (hardware and protocol types are implied), written with `emit`.

use super::bytes::{
    fixed, read_mac, read_u16, read_u32, read_u8, write_mac, write_u16, write_u32, write_u8,
};
use super::ethernet::ethertype;
use super::mac::Mac;

/// Operation codes.
pub mod op {
    pub const REQUEST: u16 = 1;
    pub const REPLY: u16 = 2;
}

/// Hardware type of Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;

/// Field ranges, from the start of the ARP header.
pub mod field {
    use core::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const HEADER_LEN: usize = field::TPA.end;

/// An ARP packet, over a buffer of at least `HEADER_LEN` bytes.
#[derive(Clone, Copy, Debug)]
pub struct ArpPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Option<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return None;
        }
        Some(ArpPacket { buffer })
    }

    /// The fixed header (`new_checked` guaranteed its length).
    #[inline(always)]
    fn header_bytes(&self) -> &[u8; HEADER_LEN] {
        fixed(self.buffer.as_ref())
    }

    #[inline(always)]
    pub fn hardware_type(&self) -> u16 {
        read_u16(self.header_bytes(), field::HTYPE)
    }

    #[inline(always)]
    pub fn protocol_type(&self) -> u16 {
        read_u16(self.header_bytes(), field::PTYPE)
    }

    #[inline(always)]
    pub fn hardware_len(&self) -> u8 {
        read_u8(self.header_bytes(), field::HLEN)
    }

    #[inline(always)]
    pub fn protocol_len(&self) -> u8 {
        read_u8(self.header_bytes(), field::PLEN)
    }

    /// Hardware type Ethernet, protocol IPv4, address lengths 6 and 4.
    #[inline(always)]
    pub fn is_ethernet_ipv4(&self) -> bool {
        self.hardware_type() == HTYPE_ETHERNET
            && self.protocol_type() == ethertype::IPV4
            && self.hardware_len() == 6
            && self.protocol_len() == 4
    }

    #[inline(always)]
    pub fn op(&self) -> u16 {
        read_u16(self.header_bytes(), field::OPER)
    }

    /// Sender hardware address.
    #[inline(always)]
    pub fn sha(&self) -> Mac {
        read_mac(self.header_bytes(), field::SHA)
    }

    /// Sender protocol address.
    #[inline(always)]
    pub fn spa(&self) -> u32 {
        read_u32(self.header_bytes(), field::SPA)
    }

    /// Target hardware address.
    #[inline(always)]
    pub fn tha(&self) -> Mac {
        read_mac(self.header_bytes(), field::THA)
    }

    /// Target protocol address.
    #[inline(always)]
    pub fn tpa(&self) -> u32 {
        read_u32(self.header_bytes(), field::TPA)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Writes the fixed part for Ethernet/IPv4 (types and lengths).
    #[inline(always)]
    pub fn set_ethernet_ipv4(&mut self) {
        let b = self.buffer.as_mut();
        write_u16(b, field::HTYPE, HTYPE_ETHERNET);
        write_u16(b, field::PTYPE, ethertype::IPV4);
        write_u8(b, field::HLEN, 6);
        write_u8(b, field::PLEN, 4);
    }

    #[inline(always)]
    pub fn set_op(&mut self, op: u16) {
        write_u16(self.buffer.as_mut(), field::OPER, op)
    }

    #[inline(always)]
    pub fn set_sha(&mut self, m: Mac) {
        write_mac(self.buffer.as_mut(), field::SHA, m)
    }

    #[inline(always)]
    pub fn set_spa(&mut self, a: u32) {
        write_u32(self.buffer.as_mut(), field::SPA, a)
    }

    #[inline(always)]
    pub fn set_tha(&mut self, m: Mac) {
        write_mac(self.buffer.as_mut(), field::THA, m)
    }

    #[inline(always)]
    pub fn set_tpa(&mut self, a: u32) {
        write_u32(self.buffer.as_mut(), field::TPA, a)
    }
}

/// An Ethernet/IPv4 ARP packet as values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpRepr {
    pub op: u16,
    pub sha: Mac,
    pub spa: u32,
    pub tha: Mac,
    pub tpa: u32,
}

impl ArpRepr {
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut ArpPacket<T>) {
        p.set_ethernet_ipv4();
        p.set_op(self.op);
        p.set_sha(self.sha);
        p.set_spa(self.spa);
        p.set_tha(self.tha);
        p.set_tpa(self.tpa);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// vm1 asks for its gateway (spec §8.1), as on the wire.
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0xfa, 0x16, 0x3e, 0x01, 0x00, 0x11, 10, 1,
        0, 11, 0, 0, 0, 0, 0, 0, 10, 1, 0, 1,
    ];

    #[test]
    fn getters_read_a_request() {
        let p = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        assert!(p.is_ethernet_ipv4());
        assert_eq!(p.op(), op::REQUEST);
        assert_eq!(p.sha(), Mac([0xfa, 0x16, 0x3e, 0x01, 0x00, 0x11]));
        assert_eq!(p.spa(), 0x0a01000b);
        assert_eq!(p.tha(), Mac::ZERO);
        assert_eq!(p.tpa(), 0x0a010001);
        assert!(ArpPacket::new_checked(&REQUEST[..27]).is_none());
    }

    #[test]
    fn emit_writes_the_same_bytes_and_setters_round_trip() {
        let mut buf = [0u8; 28];
        let mut p = ArpPacket::new_checked(&mut buf[..]).unwrap();
        ArpRepr {
            op: op::REQUEST,
            sha: Mac([0xfa, 0x16, 0x3e, 0x01, 0x00, 0x11]),
            spa: 0x0a01000b,
            tha: Mac::ZERO,
            tpa: 0x0a010001,
        }
        .emit(&mut p);
        assert_eq!(buf, REQUEST);
        let mut p = ArpPacket::new_checked(&mut buf[..]).unwrap();
        p.set_op(op::REPLY);
        p.set_tha(Mac::BROADCAST);
        p.set_spa(7);
        assert_eq!((p.op(), p.tha(), p.spa()), (op::REPLY, Mac::BROADCAST, 7));
        p.set_sha(Mac::ZERO);
        p.set_tpa(0);
        assert!(p.sha() == Mac::ZERO && p.tpa() == 0);
    }
}
