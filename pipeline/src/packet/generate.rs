//! Packets a router originates: ICMP errors quoting the packet that caused
//! them, and ARP requests. Built into a pooled buffer; the key of each is
//! given by `*_key` so the slow path can walk it before any exists.

use super::rewrite::checksum;
use super::{PacketBuf, L3};
use crate::drop::DropReason;
use crate::key::{ethertype, ipproto, Field, FlowKey, Mac};
use std::net::Ipv4Addr;

/// TOS Linux gives ICMP errors (IPTOS_PREC_INTERNETCONTROL).
pub const ICMP_ERROR_TOS: u8 = 0xc0;
/// TTL of locally originated packets.
pub const LOCAL_TTL: u8 = 64;

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
        let d = orig.data();
        let l3 = orig.layout.l3_ofs as usize;
        let ip = d.get(l3..).ok_or(DropReason::RewriteNoHeader)?;
        let hlen = ((ip.first().copied().unwrap_or(0) & 0x0f) as usize) * 4;
        let total = ip
            .get(2..4)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]) as usize);
        let quote_len = (hlen + 8).min(total).min(ip.len());
        let quote = ip.get(..quote_len).ok_or(DropReason::RewriteNoHeader)?;
        let mut f = [0u8; 14 + 20 + 8 + 60 + 8];
        let len = 14 + 20 + 8 + quote.len();
        f[0..6].copy_from_slice(&self.eth_dst.0);
        f[6..12].copy_from_slice(&self.eth_src.0);
        f[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
        let h = &mut f[14..34];
        h[0] = 0x45;
        h[1] = ICMP_ERROR_TOS;
        h[2..4].copy_from_slice(&((len - 14) as u16).to_be_bytes());
        h[6] = 0x40;
        h[8] = LOCAL_TTL;
        h[9] = ipproto::ICMP;
        h[12..16].copy_from_slice(&self.src.octets());
        h[16..20].copy_from_slice(&self.dst.octets());
        let c = checksum(h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        f[34] = self.icmp_type;
        f[35] = self.code;
        f[42..42 + quote.len()].copy_from_slice(quote);
        let c = checksum(&f[34..len]);
        f[36..38].copy_from_slice(&c.to_be_bytes());
        out.set_data(&f[..len])?;
        super::parse_into(out).map(|_| ())
    }
}

impl ArpRequest {
    pub fn key(&self) -> FlowKey {
        let mut k = FlowKey::ZERO;
        k.set(Field::DlType, ethertype::ARP as u64);
        k.set(Field::DlSrc, self.eth_src.to_u64());
        k.set(Field::DlDst, Mac::BROADCAST.to_u64());
        k.set(Field::NwProto, 1);
        k.set(Field::NwSrc, u32::from(self.spa) as u64);
        k.set(Field::NwDst, u32::from(self.tpa) as u64);
        k.set(Field::ArpSha, self.eth_src.to_u64());
        k
    }

    pub fn build(&self, out: &mut PacketBuf) -> Result<(), DropReason> {
        let mut f = [0u8; 60];
        f[0..6].copy_from_slice(&Mac::BROADCAST.0);
        f[6..12].copy_from_slice(&self.eth_src.0);
        f[12..14].copy_from_slice(&ethertype::ARP.to_be_bytes());
        f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        f[22..28].copy_from_slice(&self.eth_src.0);
        f[28..32].copy_from_slice(&self.spa.octets());
        f[38..42].copy_from_slice(&self.tpa.octets());
        out.set_data(&f)?;
        super::parse_into(out).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
