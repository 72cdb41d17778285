//! ICMP (RFC 792) and the ICMPv6 (RFC 4443) messages the pipeline reads,
//! which share the first 8 bytes' layout: type, code, checksum, and 4
//! bytes whose meaning the type gives (echo: identifier and sequence).
//!
//! `IcmpPacket` views a message; `update_*` setters patch the checksum
//! incrementally, `fill_checksum` sums the whole message (ICMPv4, whose
//! checksum has no pseudo-header). `IcmpRepr` is the 8-byte header as
//! values, written with `emit`.

use super::bytes::{
    fixed, read_bytes, read_u16, read_u8, slice, slice_mut, write_bytes, write_u16, write_u8,
};
use super::checksum;

/// ICMPv4 message types.
pub mod types {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACHABLE: u8 = 3;
    pub const SOURCE_QUENCH: u8 = 4;
    pub const REDIRECT: u8 = 5;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAMETER_PROBLEM: u8 = 12;
}

/// ICMPv4 codes, by the type they go with.
pub mod codes {
    /// `DEST_UNREACHABLE`: no route to the network.
    pub const NET_UNREACHABLE: u8 = 0;
    /// `TIME_EXCEEDED`: the TTL ran out in transit.
    pub const TTL_EXPIRED: u8 = 0;
}

/// ICMPv6 message types.
pub mod types_v6 {
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;
}

/// An echo request or reply: its identifier names a "connection".
#[inline(always)]
pub fn is_echo(t: u8) -> bool {
    matches!(t, types::ECHO_REPLY | types::ECHO_REQUEST)
}

/// An error, which quotes the packet that caused it.
#[inline(always)]
pub fn is_error(t: u8) -> bool {
    matches!(
        t,
        types::DEST_UNREACHABLE
            | types::SOURCE_QUENCH
            | types::REDIRECT
            | types::TIME_EXCEEDED
            | types::PARAMETER_PROBLEM
    )
}

/// An ICMPv6 neighbour solicitation or advertisement (carries a target).
#[inline(always)]
pub fn is_neighbor_discovery(t: u8) -> bool {
    matches!(t, types_v6::NEIGHBOR_SOLICIT | types_v6::NEIGHBOR_ADVERT)
}

/// Field ranges, from the start of the message.
pub mod field {
    use core::ops::{Range, RangeFrom};
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    /// Echo: identifier.
    pub const IDENT: Range<usize> = 4..6;
    /// Echo: sequence number.
    pub const SEQ_NUM: Range<usize> = 6..8;
    /// Errors: the quoted packet; echo: the data.
    pub const PAYLOAD: RangeFrom<usize> = 8..;
    /// ICMPv6 neighbour discovery: the target address.
    pub const ND_TARGET: Range<usize> = 8..24;
}

pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// An ICMP message, over a buffer of at least `HEADER_LEN` bytes.
#[derive(Clone, Copy, Debug)]
pub struct IcmpPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Option<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return None;
        }
        Some(IcmpPacket { buffer })
    }

    /// The fixed header (`new_checked` guaranteed its length).
    #[inline(always)]
    fn header_bytes(&self) -> &[u8; HEADER_LEN] {
        fixed(self.buffer.as_ref())
    }

    #[inline(always)]
    pub fn msg_type(&self) -> u8 {
        read_u8(self.header_bytes(), field::TYPE)
    }

    #[inline(always)]
    pub fn code(&self) -> u8 {
        read_u8(self.header_bytes(), field::CODE)
    }

    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        read_u16(self.header_bytes(), field::CHECKSUM)
    }

    /// The echo identifier (the bytes are there whatever the type).
    #[inline(always)]
    pub fn identifier(&self) -> u16 {
        read_u16(self.header_bytes(), field::IDENT)
    }

    #[inline(always)]
    pub fn sequence(&self) -> u16 {
        read_u16(self.header_bytes(), field::SEQ_NUM)
    }

    /// The neighbour discovery target, if the buffer holds one.
    #[inline(always)]
    pub fn nd_target(&self) -> Option<[u8; 16]> {
        let b = self.buffer.as_ref();
        (b.len() >= field::ND_TARGET.end).then(|| read_bytes(b, field::ND_TARGET))
    }

    /// A neighbour discovery message's link-layer address option of
    /// `kind` (1: source, in a solicitation; 2: target, in an
    /// advertisement), if it carries one; the options after the target
    /// are walked with their lengths checked (a zero length ends them).
    pub fn nd_link_layer(&self, kind: u8) -> Option<[u8; 6]> {
        let b = self.buffer.as_ref();
        let mut at = field::ND_TARGET.end;
        while at + 2 <= b.len() {
            let (t, units) = (b[at], b[at + 1] as usize);
            if units == 0 || at + units * 8 > b.len() {
                return None;
            }
            if t == kind && units == 1 {
                let mut mac = [0u8; 6];
                mac.copy_from_slice(&b[at + 2..at + 8]);
                return Some(mac);
            }
            at += units * 8;
        }
        None
    }

    /// The ICMPv4 checksum verifies over the whole buffer.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.buffer.as_ref()) == 0
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> IcmpPacket<&'a T> {
    /// Everything after the 8-byte header in the buffer.
    #[inline(always)]
    pub fn payload(&self) -> &'a [u8] {
        let b = T::as_ref(self.buffer);
        slice(b, HEADER_LEN..b.len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    #[inline(always)]
    pub fn set_msg_type(&mut self, t: u8) {
        write_u8(self.buffer.as_mut(), field::TYPE, t)
    }

    #[inline(always)]
    pub fn set_code(&mut self, c: u8) {
        write_u8(self.buffer.as_mut(), field::CODE, c)
    }

    #[inline(always)]
    pub fn set_checksum(&mut self, c: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, c)
    }

    #[inline(always)]
    pub fn set_identifier(&mut self, id: u16) {
        write_u16(self.buffer.as_mut(), field::IDENT, id)
    }

    #[inline(always)]
    pub fn set_sequence(&mut self, s: u16) {
        write_u16(self.buffer.as_mut(), field::SEQ_NUM, s)
    }

    /// Writes the target; nothing if the buffer is too short for one.
    pub fn set_nd_target(&mut self, t: [u8; 16]) {
        write_bytes(self.buffer.as_mut(), field::ND_TARGET, t)
    }

    #[inline(always)]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let b = self.buffer.as_mut();
        let end = b.len();
        slice_mut(b, HEADER_LEN..end)
    }

    /// Sets the type, patching the checksum.
    #[inline(always)]
    pub fn update_msg_type(&mut self, t: u8) {
        let old = self.msg_type();
        self.set_msg_type(t);
        // The type is the high byte of its word.
        let c = checksum::update(self.checksum(), (old as u16) << 8, (t as u16) << 8);
        self.set_checksum(c);
    }

    /// Sets the code, patching the checksum.
    #[inline(always)]
    pub fn update_code(&mut self, code: u8) {
        let old = self.code();
        self.set_code(code);
        let c = checksum::update(self.checksum(), old as u16, code as u16);
        self.set_checksum(c);
    }

    /// Sets the echo identifier, patching the checksum.
    #[inline(always)]
    pub fn update_identifier(&mut self, id: u16) {
        let old = self.identifier();
        self.set_identifier(id);
        self.set_checksum(checksum::update(self.checksum(), old, id));
    }

    /// Computes and stores the ICMPv4 checksum over the whole buffer
    /// (which must be exactly the message).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// The 8-byte header as values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpRepr {
    pub msg_type: u8,
    pub code: u8,
    /// Echo identifier; zero (unused) for errors.
    pub identifier: u16,
    /// Echo sequence number; zero (unused) for errors.
    pub sequence: u16,
}

impl IcmpRepr {
    /// Writes the header, checksum zero (fill it once the payload is in
    /// place).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut IcmpPacket<T>) {
        p.set_msg_type(self.msg_type);
        p.set_code(self.code);
        p.set_checksum(0);
        p.set_identifier(self.identifier);
        p.set_sequence(self.sequence);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo request, id 0x1234, seq 7, data "hi". Checksum by hand:
    /// 0800+1234+0007+6869 = 0x82a4, checksum 0x7d5b.
    const ECHO: [u8; 10] = [8, 0, 0x7d, 0x5b, 0x12, 0x34, 0, 7, b'h', b'i'];

    #[test]
    fn getters_and_the_known_checksum() {
        let p = IcmpPacket::new_checked(&ECHO[..]).unwrap();
        assert_eq!((p.msg_type(), p.code()), (types::ECHO_REQUEST, 0));
        assert_eq!((p.identifier(), p.sequence()), (0x1234, 7));
        assert_eq!(p.payload(), b"hi");
        assert_eq!(p.checksum(), 0x7d5b);
        assert!(p.verify_checksum());
        assert_eq!(p.nd_target(), None);
        assert!(IcmpPacket::new_checked(&ECHO[..7]).is_none());
        assert!(is_echo(p.msg_type()) && !is_error(p.msg_type()));
        assert!(is_error(types::TIME_EXCEEDED) && is_neighbor_discovery(136));
    }

    #[test]
    fn emit_and_updates_keep_the_checksum_valid() {
        let mut b = [0u8; 10];
        b[8..].copy_from_slice(b"hi");
        let mut p = IcmpPacket::new_checked(&mut b[..]).unwrap();
        IcmpRepr {
            msg_type: types::ECHO_REQUEST,
            code: 0,
            identifier: 0x1234,
            sequence: 7,
        }
        .emit(&mut p);
        p.fill_checksum();
        assert_eq!(b, ECHO);
        let mut p = IcmpPacket::new_checked(&mut b[..]).unwrap();
        p.update_msg_type(types::ECHO_REPLY);
        p.update_code(3);
        p.update_identifier(61000);
        assert_eq!((p.msg_type(), p.code(), p.identifier()), (0, 3, 61000));
        assert!(p.verify_checksum());
        p.set_sequence(9);
        assert_eq!(p.sequence(), 9);
    }

    #[test]
    fn neighbor_discovery_target() {
        let mut b = [0u8; 24];
        let mut p = IcmpPacket::new_checked(&mut b[..]).unwrap();
        p.set_msg_type(types_v6::NEIGHBOR_SOLICIT);
        p.set_nd_target([0xfe; 16]);
        assert_eq!(p.nd_target(), Some([0xfe; 16]));
        assert_eq!(IcmpPacket::new_checked(&b[..23]).unwrap().nd_target(), None);
    }
}
