//! Packets a router originates: ICMP errors quoting the packet that caused
//! them, and ARP requests. Built into a pooled buffer by emitting each
//! header's `*Repr` into its view (`wire`); the key of each is given by
//! `key` so the slow path can walk it before any exists.

use super::buf::PacketBuf;
use super::layout::L3;
use super::parse::parse_into;
use crate::drop::DropReason;
use crate::key::{Field, FlowKey, Mac};
use crate::wire::{arp, ethernet, icmp, ipv4};
use crate::wire::{ethertype, ipproto, ArpPacket, ArpRepr, EthernetFrame, EthernetRepr};
use crate::wire::{IcmpPacket, IcmpRepr, Ipv4Packet, Ipv4Repr};
use std::net::Ipv4Addr;

/// TOS Linux gives ICMP errors (IPTOS_PREC_INTERNETCONTROL).
pub const ICMP_ERROR_TOS: u8 = 0xc0;
/// TTL of locally originated packets.
pub const LOCAL_TTL: u8 = 64;
/// Payload bytes of the offending packet an ICMP error quotes after its
/// IP header (RFC 792).
const QUOTED_PAYLOAD: usize = 8;
/// The longest quote: an IPv4 header with the most options, and the payload.
const MAX_QUOTE: usize = 60 + QUOTED_PAYLOAD;

/// An ICMP error to send back to the source of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IcmpError {
    pub icmp_type: u8,
    pub code: u8,
    /// The router address it comes from.
    pub src: Ipv4Addr,
    /// The offending packet's source.
    pub dst: Ipv4Addr,
    pub eth_src: Mac,
    pub eth_dst: Mac,
}

/// An ARP request from a router interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArpRequest {
    pub eth_src: Mac,
    pub spa: Ipv4Addr,
    pub tpa: Ipv4Addr,
}

impl IcmpError {
    /// The key of the error packet.
    pub fn key(&self) -> FlowKey {
        let mut k = FlowKey::ZERO;
        k.set(Field::DlType, ethertype::IPV4 as u64);
        k.set(Field::DlSrc, self.eth_src.to_u64());
        k.set(Field::DlDst, self.eth_dst.to_u64());
        k.set(Field::NwSrc, u32::from(self.src) as u64);
        k.set(Field::NwDst, u32::from(self.dst) as u64);
        k.set(Field::NwProto, ipproto::ICMP as u64);
        k.set(Field::NwTos, ICMP_ERROR_TOS as u64);
        k.set(Field::NwTtl, LOCAL_TTL as u64);
        k.set(Field::TpSrc, self.icmp_type as u64);
        k.set(Field::TpDst, self.code as u64);
        k
    }

    /// Writes the error, quoting `orig` (its IPv4 header and up to 8 bytes
    /// of payload, RFC 792), into `out`.
    pub fn build(&self, orig: &PacketBuf, out: &mut PacketBuf) -> Result<(), DropReason> {
        if orig.layout.l3 != L3::Ipv4 {
            return Err(DropReason::RewriteNoHeader);
        }
        let no_header = || DropReason::RewriteNoHeader;
        let l3 = orig
            .data()
            .get(orig.layout.l3_ofs as usize..)
            .unwrap_or(&[]);
        let ip = Ipv4Packet::new_checked(l3).ok_or_else(no_header)?;
        let quote_len = (ip.header_len() + QUOTED_PAYLOAD)
            .min(ip.total_len())
            .min(l3.len());
        let quote = l3.get(..quote_len).ok_or_else(no_header)?;
        const HEADERS: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN + icmp::HEADER_LEN;
        let mut f = [0u8; HEADERS + MAX_QUOTE];
        let frame = f.get_mut(..HEADERS + quote.len()).ok_or_else(no_header)?;
        let mut eth = EthernetFrame::new_checked(&mut *frame).ok_or_else(no_header)?;
        EthernetRepr {
            src: self.eth_src,
            dst: self.eth_dst,
            ethertype: ethertype::IPV4,
        }
        .emit(&mut eth);
        let mut ip = Ipv4Packet::new_checked(eth.payload_mut()).ok_or_else(no_header)?;
        Ipv4Repr {
            tos: ICMP_ERROR_TOS,
            flags_frag: ipv4::DONT_FRAGMENT,
            ttl: LOCAL_TTL,
            protocol: ipproto::ICMP,
            src: u32::from(self.src),
            dst: u32::from(self.dst),
            payload_len: icmp::HEADER_LEN + quote.len(),
        }
        .emit(&mut ip);
        let mut msg = IcmpPacket::new_checked(ip.payload_mut()).ok_or_else(no_header)?;
        IcmpRepr {
            msg_type: self.icmp_type,
            code: self.code,
            identifier: 0,
            sequence: 0,
        }
        .emit(&mut msg);
        for (to, from) in msg.payload_mut().iter_mut().zip(quote) {
            *to = *from;
        }
        msg.fill_checksum();
        out.set_data(frame)?;
        parse_into(out).map(|_| ())
    }
}

impl ArpRequest {
    pub fn key(&self) -> FlowKey {
        let mut k = FlowKey::ZERO;
        k.set(Field::DlType, ethertype::ARP as u64);
        k.set(Field::DlSrc, self.eth_src.to_u64());
        k.set(Field::DlDst, Mac::BROADCAST.to_u64());
        k.set(Field::NwProto, arp::op::REQUEST as u64);
        k.set(Field::NwSrc, u32::from(self.spa) as u64);
        k.set(Field::NwDst, u32::from(self.tpa) as u64);
        k.set(Field::ArpSha, self.eth_src.to_u64());
        k
    }

    pub fn build(&self, out: &mut PacketBuf) -> Result<(), DropReason> {
        let mut f = [0u8; super::synth::MIN_FRAME];
        let mut eth = EthernetFrame::new_checked(&mut f[..]).ok_or(DropReason::RewriteNoHeader)?;
        EthernetRepr {
            src: self.eth_src,
            dst: Mac::BROADCAST,
            ethertype: ethertype::ARP,
        }
        .emit(&mut eth);
        let mut arp =
            ArpPacket::new_checked(eth.payload_mut()).ok_or(DropReason::RewriteNoHeader)?;
        ArpRepr {
            op: arp::op::REQUEST,
            sha: self.eth_src,
            spa: u32::from(self.spa),
            tha: Mac::ZERO,
            tpa: u32::from(self.tpa),
        }
        .emit(&mut arp);
        out.set_data(&f)?;
        parse_into(out).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::checksum;
    use crate::packet::synth::frame_from_key;

    #[test]
    fn generated_packets_parse_to_their_keys_with_valid_checksums() {
        let mut k = FlowKey::ZERO;
        k.set(Field::DlType, ethertype::IPV4 as u64);
        k.set(Field::NwProto, ipproto::UDP as u64);
        k.set(Field::NwSrc, 0x0a01000b);
        k.set(Field::NwDst, 0x0a02000e);
        k.set(Field::NwTtl, 1);
        k.set(Field::TpSrc, 5000);
        k.set(Field::TpDst, 53);
        let mut orig = PacketBuf::new(2048);
        orig.set_data(&frame_from_key(&k, 100)).unwrap();
        crate::packet::parse_into(&mut orig).unwrap();
        let e = IcmpError {
            icmp_type: 11,
            code: 0,
            src: Ipv4Addr::new(10, 1, 0, 1),
            dst: Ipv4Addr::new(10, 1, 0, 11),
            eth_src: Mac([0xfa, 0x16, 0x3e, 0xaa, 1, 1]),
            eth_dst: Mac([0xfa, 0x16, 0x3e, 1, 0, 0x11]),
        };
        let mut out = PacketBuf::new(2048);
        e.build(&orig, &mut out).unwrap();
        let got = crate::packet::parse(out.data(), 0).unwrap().key;
        assert_eq!(got, e.key());
        let d = out.data();
        assert_eq!(checksum(&d[14..34]), 0);
        assert_eq!(checksum(&d[34..]), 0);
        assert_eq!(d.len(), 14 + 20 + 8 + 28, "IP header + 8 bytes quoted");
        assert_eq!(
            &d[42..62],
            &orig.data()[14..34],
            "quotes the original header"
        );

        let a = ArpRequest {
            eth_src: e.eth_src,
            spa: e.src,
            tpa: Ipv4Addr::new(10, 1, 0, 99),
        };
        a.build(&mut out).unwrap();
        assert_eq!(crate::packet::parse(out.data(), 0).unwrap().key, a.key());
    }
}
