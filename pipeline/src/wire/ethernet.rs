//! Ethernet II: destination, source, ethertype.
//!
//! `EthernetFrame` views a frame (its buffer runs to the frame's end, so
//! `payload` is everything after the 14-byte header, padding included);
//! `EthernetRepr` is the header as plain values, written with `emit`.

use super::bytes::{fixed, read_mac, read_u16, slice, slice_mut, write_mac, write_u16};
pub use super::mac::Mac;

/// Ethertypes the pipeline knows by name.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    /// 802.1Q VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service tag (QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;
    pub const IPV6: u16 = 0x86dd;
    /// Smaller values in the ethertype field are 802.3 lengths, not types.
    pub const MIN_TYPE: u16 = 0x0600;
}

/// Field ranges, from the start of the frame.
pub mod field {
    use core::ops::{Range, RangeFrom};
    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    /// Both addresses (what moves when a VLAN tag is pushed or popped).
    pub const ADDRESSES: Range<usize> = 0..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const PAYLOAD: RangeFrom<usize> = 14..;
}

/// Length of the Ethernet II header.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// A frame's Ethernet header, over a buffer of at least `HEADER_LEN` bytes.
#[derive(Clone, Copy, Debug)]
pub struct EthernetFrame<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// The view, if `buffer` holds a whole header.
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Option<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return None;
        }
        Some(EthernetFrame { buffer })
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
    pub fn dst(&self) -> Mac {
        read_mac(self.header_bytes(), field::DESTINATION)
    }

    #[inline(always)]
    pub fn src(&self) -> Mac {
        read_mac(self.header_bytes(), field::SOURCE)
    }

    #[inline(always)]
    pub fn ethertype(&self) -> u16 {
        read_u16(self.header_bytes(), field::ETHERTYPE)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> EthernetFrame<&'a T> {
    /// Everything after the header.
    #[inline(always)]
    pub fn payload(&self) -> &'a [u8] {
        let b = T::as_ref(self.buffer);
        slice(b, HEADER_LEN..b.len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    #[inline(always)]
    pub fn set_dst(&mut self, m: Mac) {
        write_mac(self.buffer.as_mut(), field::DESTINATION, m)
    }

    #[inline(always)]
    pub fn set_src(&mut self, m: Mac) {
        write_mac(self.buffer.as_mut(), field::SOURCE, m)
    }

    #[inline(always)]
    pub fn set_ethertype(&mut self, t: u16) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE, t)
    }

    #[inline(always)]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let b = self.buffer.as_mut();
        let end = b.len();
        slice_mut(b, HEADER_LEN..end)
    }
}

/// An Ethernet II header as values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EthernetRepr {
    pub src: Mac,
    pub dst: Mac,
    pub ethertype: u16,
}

impl EthernetRepr {
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut EthernetFrame<T>) {
        frame.set_dst(self.dst);
        frame.set_src(self.src);
        frame.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: [u8; 16] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfa, 0x16, 0x3e, 0x01, 0x00, 0x11, 0x08, 0x06, 0xab,
        0xcd,
    ];

    #[test]
    fn getters_read_the_header() {
        let f = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst(), Mac::BROADCAST);
        assert_eq!(f.src(), Mac([0xfa, 0x16, 0x3e, 0x01, 0x00, 0x11]));
        assert_eq!(f.ethertype(), ethertype::ARP);
        assert_eq!(f.payload(), &[0xab, 0xcd]);
    }

    #[test]
    fn short_buffers_are_refused() {
        assert!(EthernetFrame::new_checked(&FRAME[..13]).is_none());
        let f = EthernetFrame::new_checked(&FRAME[..14]).unwrap();
        assert_eq!(f.payload(), &[] as &[u8]);
    }

    #[test]
    fn emit_and_setters_round_trip() {
        let mut buf = [0u8; 14];
        let mut f = EthernetFrame::new_checked(&mut buf[..]).unwrap();
        let repr = EthernetRepr {
            dst: Mac::BROADCAST,
            src: Mac([0xfa, 0x16, 0x3e, 0x01, 0x00, 0x11]),
            ethertype: ethertype::ARP,
        };
        repr.emit(&mut f);
        assert_eq!(buf, FRAME[..14]);
        let mut f = EthernetFrame::new_checked(&mut buf[..]).unwrap();
        f.set_ethertype(ethertype::IPV6);
        f.set_src(Mac([1, 2, 3, 4, 5, 6]));
        assert_eq!((f.ethertype(), f.src()), (0x86dd, Mac([1, 2, 3, 4, 5, 6])));
    }
}
