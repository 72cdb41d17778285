//! A VLAN tag: the 4 bytes that follow an ethertype that is a TPID, either
//! an 802.1Q customer tag (`ethertype::VLAN`, 0x8100) or an 802.1ad service
//! tag (`ethertype::QINQ`, 0x88a8, the outer tag of QinQ): the TCI, then the
//! ethertype of what the tag carries (itself a TPID when tags are stacked).
//! The two have the same layout; only the TPID before them differs.
//!
//! `VlanTag` views them (its buffer is the Ethernet payload); a tag is
//! pushed or popped by moving the 12 address bytes by `HEADER_LEN`.

use super::bytes::{fixed, read_u16, slice, write_u16};
use super::ethernet::ethertype;

/// Whether an ethertype is a TPID: a tag (802.1Q or 802.1ad) follows it.
#[inline(always)]
pub const fn is_tpid(t: u16) -> bool {
    t == ethertype::VLAN || t == ethertype::QINQ
}

/// Field ranges, from the start of the tag (after the outer ethertype).
pub mod field {
    use core::ops::{Range, RangeFrom};
    /// Tag control information: PCP (3 bits), DEI (1), VID (12).
    pub const TCI: Range<usize> = 0..2;
    pub const ETHERTYPE: Range<usize> = 2..4;
    pub const PAYLOAD: RangeFrom<usize> = 4..;
}

/// Bytes a tag adds to a frame.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// A VLAN tag (802.1Q or 802.1ad), over a buffer of at least `HEADER_LEN` bytes.
#[derive(Clone, Copy, Debug)]
pub struct VlanTag<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VlanTag<T> {
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Option<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return None;
        }
        Some(VlanTag { buffer })
    }

    /// The fixed header (`new_checked` guaranteed its length).
    #[inline(always)]
    fn header_bytes(&self) -> &[u8; HEADER_LEN] {
        fixed(self.buffer.as_ref())
    }

    #[inline(always)]
    pub fn tci(&self) -> u16 {
        read_u16(self.header_bytes(), field::TCI)
    }

    /// The ethertype of the tagged payload.
    #[inline(always)]
    pub fn inner_ethertype(&self) -> u16 {
        read_u16(self.header_bytes(), field::ETHERTYPE)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> VlanTag<&'a T> {
    #[inline(always)]
    pub fn payload(&self) -> &'a [u8] {
        let b = T::as_ref(self.buffer);
        slice(b, HEADER_LEN..b.len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VlanTag<T> {
    #[inline(always)]
    pub fn set_tci(&mut self, tci: u16) {
        write_u16(self.buffer.as_mut(), field::TCI, tci)
    }

    #[inline(always)]
    pub fn set_inner_ethertype(&mut self, t: u16) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE, t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getters_setters_and_length_check() {
        let mut b = [0xa0, 0x65, 0x08, 0x00, 0x45];
        let t = VlanTag::new_checked(&b[..]).unwrap();
        assert_eq!((t.tci(), t.inner_ethertype()), (0xa065, 0x0800));
        assert_eq!(t.payload(), &[0x45]);
        let mut t = VlanTag::new_checked(&mut b[..]).unwrap();
        t.set_tci(101);
        t.set_inner_ethertype(0x0806);
        assert_eq!(b[..4], [0x00, 0x65, 0x08, 0x06]);
        assert!(VlanTag::new_checked(&b[..3]).is_none());
    }

    #[test]
    fn tpids_are_802_1q_and_802_1ad() {
        assert!(is_tpid(0x8100) && is_tpid(0x88a8));
        assert!(!is_tpid(0x0800) && !is_tpid(0x9100) && !is_tpid(0x88a9));
    }
}
