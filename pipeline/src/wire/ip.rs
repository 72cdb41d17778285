//! What IPv4 and IPv6 share: the protocol numbers of `protocol` /
//! `next_header`, and the transport ports both TCP and UDP start with
//! (`L4Ports`, for headers only partly present, as in an ICMP quote).

use super::bytes::{fixed, read_u16, write_u16};

/// IP protocol numbers the pipeline knows by name.
pub mod ipproto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
}

/// Field ranges of `L4Ports`, from the start of the transport header.
pub mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
}

/// Bytes `L4Ports` needs.
pub const PORTS_LEN: usize = field::DST_PORT.end;

/// The ports at the start of a TCP or UDP header, which sit at the same
/// place in both: what an ICMP error is sure to quote of a transport
/// header (it quotes 8 bytes, less than a TCP header).
#[derive(Clone, Copy, Debug)]
pub struct L4Ports<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> L4Ports<T> {
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Option<Self> {
        if buffer.as_ref().len() < PORTS_LEN {
            return None;
        }
        Some(L4Ports { buffer })
    }

    #[inline(always)]
    fn header_bytes(&self) -> &[u8; PORTS_LEN] {
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
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> L4Ports<T> {
    #[inline(always)]
    pub fn set_src_port(&mut self, p: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, p)
    }

    #[inline(always)]
    pub fn set_dst_port(&mut self, p: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_read_and_write_with_four_bytes() {
        let mut b = [0x13, 0x88, 0x00, 0x35];
        let p = L4Ports::new_checked(&b[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (5000, 53));
        let mut p = L4Ports::new_checked(&mut b[..]).unwrap();
        p.set_src_port(1);
        p.set_dst_port(2);
        assert_eq!(b, [0, 1, 0, 2]);
        assert!(L4Ports::new_checked(&b[..3]).is_none());
    }
}
