//! Building frames from flow keys: what `trace`, the simulator, tests and
//! benchmarks use to turn "a packet with these fields" into bytes.
//!
//! The frame carries exactly the key's header fields (unset TTL becomes
//! 64), `payload_len` zero bytes after the headers, valid checksums, and is
//! padded to the 60-byte Ethernet minimum.

use super::rewrite::{checksum, fold, sum_words};
use crate::key::{ethertype, ipproto, Field, FlowKey, FRAG_ANY, FRAG_LATER, VLAN_CFI};

/// Minimum Ethernet frame without FCS.
pub const MIN_FRAME: usize = 60;

/// A frame whose parse gives back `key`'s packet fields.
pub fn frame_from_key(key: &FlowKey, payload_len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(64 + payload_len);
    f.extend_from_slice(&key.dl_dst().0);
    f.extend_from_slice(&key.dl_src().0);
    let tci = key.vlan_tci();
    if tci & VLAN_CFI != 0 {
        f.extend_from_slice(&ethertype::VLAN.to_be_bytes());
        f.extend_from_slice(&(tci & !VLAN_CFI).to_be_bytes());
    }
    let dl_type = key.dl_type();
    f.extend_from_slice(&dl_type.to_be_bytes());
    match dl_type {
        ethertype::ARP => {
            f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4]);
            f.extend_from_slice(&(key.nw_proto() as u16).to_be_bytes());
            f.extend_from_slice(&crate::key::Mac::from_u64(key.get(Field::ArpSha)).0);
            f.extend_from_slice(&key.nw_src().to_be_bytes());
            f.extend_from_slice(&crate::key::Mac::from_u64(key.get(Field::ArpTha)).0);
            f.extend_from_slice(&key.nw_dst().to_be_bytes());
        }
        ethertype::IPV4 => ipv4(&mut f, key, payload_len),
        ethertype::IPV6 => ipv6(&mut f, key, payload_len),
        _ => f.resize(f.len() + payload_len, 0),
    }
    if f.len() < MIN_FRAME {
        f.resize(MIN_FRAME, 0);
    }
    f
}

/// The transport header for `key` (checksum left zero).
fn l4_header(key: &FlowKey, proto: u8) -> Vec<u8> {
    let mut h = Vec::new();
    match proto {
        ipproto::TCP => {
            h.extend_from_slice(&key.tp_src().to_be_bytes());
            h.extend_from_slice(&key.tp_dst().to_be_bytes());
            h.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
            let flags = key.get(Field::TcpFlags) as u16 & 0x0fff;
            h.extend_from_slice(&((5u16 << 12) | flags).to_be_bytes());
            h.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
        }
        ipproto::UDP => {
            h.extend_from_slice(&key.tp_src().to_be_bytes());
            h.extend_from_slice(&key.tp_dst().to_be_bytes());
            h.extend_from_slice(&[0, 0, 0, 0]);
        }
        ipproto::ICMP | ipproto::ICMPV6 => {
            h.push(key.tp_src() as u8);
            h.push(key.tp_dst() as u8);
            h.extend_from_slice(&[0, 0]);
            h.extend_from_slice(&(key.get(Field::IcmpId) as u16).to_be_bytes());
            h.extend_from_slice(&[0, 1]);
            if proto == ipproto::ICMPV6 && matches!(key.tp_src(), 135 | 136) {
                h.extend_from_slice(&key.get(Field::NdTargetHi).to_be_bytes());
                h.extend_from_slice(&key.get(Field::NdTargetLo).to_be_bytes());
            }
        }
        _ => {}
    }
    h
}

fn ipv4(f: &mut Vec<u8>, key: &FlowKey, payload_len: usize) {
    let proto = key.nw_proto();
    let frag = key.get(Field::NwFrag) as u8;
    let later = frag & FRAG_LATER != 0;
    let mut l4 = if later {
        Vec::new()
    } else {
        l4_header(key, proto)
    };
    l4.resize(l4.len() + payload_len, 0);
    let total = 20 + l4.len();
    let ttl = if key.nw_ttl() == 0 { 64 } else { key.nw_ttl() };
    let flags_frag: u16 = match (frag & FRAG_ANY != 0, later) {
        (_, true) => 185, // a later fragment at offset 1480
        (true, false) => 0x2000,
        _ => 0x4000, // don't fragment
    };
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[1] = key.get(Field::NwTos) as u8;
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip[6..8].copy_from_slice(&flags_frag.to_be_bytes());
    ip[8] = ttl;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&key.nw_src().to_be_bytes());
    ip[16..20].copy_from_slice(&key.nw_dst().to_be_bytes());
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    if !later {
        let csum_at = match proto {
            ipproto::TCP => Some(16),
            ipproto::UDP => Some(6),
            ipproto::ICMP => Some(2),
            _ => None,
        };
        if proto == ipproto::UDP {
            let n = l4.len() as u16;
            l4[4..6].copy_from_slice(&n.to_be_bytes());
        }
        if let Some(at) = csum_at {
            let c = if proto == ipproto::ICMP {
                checksum(&l4)
            } else {
                let mut pseudo = [0u8; 12];
                pseudo[0..4].copy_from_slice(&key.nw_src().to_be_bytes());
                pseudo[4..8].copy_from_slice(&key.nw_dst().to_be_bytes());
                pseudo[9] = proto;
                pseudo[10..12].copy_from_slice(&(l4.len() as u16).to_be_bytes());
                let c = !fold(sum_words(&l4, sum_words(&pseudo, 0)));
                if c == 0 && proto == ipproto::UDP {
                    0xffff
                } else {
                    c
                }
            };
            l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
        }
    }
    f.extend_from_slice(&ip);
    f.extend_from_slice(&l4);
}

fn ipv6(f: &mut Vec<u8>, key: &FlowKey, payload_len: usize) {
    let nh = key.nw_proto();
    let mut l4 = l4_header(key, nh);
    l4.resize(l4.len() + payload_len, 0);
    let tc = key.get(Field::NwTos) as u8;
    let hop = if key.nw_ttl() == 0 { 64 } else { key.nw_ttl() };
    f.push(0x60 | (tc >> 4));
    f.push(tc << 4);
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    f.push(nh);
    f.push(hop);
    // Addresses: link-local unspecified-host pair (the key has no IPv6 addresses).
    f.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    f.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    f.extend_from_slice(&l4);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::parse;

    #[test]
    fn synthesised_frames_parse_back_to_their_key() {
        let mut k = FlowKey::ZERO;
        k.set(Field::DlType, ethertype::IPV4 as u64);
        k.set(Field::DlSrc, 0xfa163e010011);
        k.set(Field::DlDst, 0xfa163e010012);
        k.set(Field::VlanTci, (VLAN_CFI | 101) as u64);
        k.set(Field::NwProto, ipproto::UDP as u64);
        k.set(Field::NwSrc, 0x0a01000b);
        k.set(Field::NwDst, 0x0a01000c);
        k.set(Field::NwTtl, 64);
        k.set(Field::TpSrc, 1000);
        k.set(Field::TpDst, 53);
        k.set(Field::InPort, 3);
        let p = parse(&frame_from_key(&k, 10), 3).unwrap();
        assert_eq!(p.key, k);
        k.set(Field::NwProto, ipproto::ICMP as u64);
        k.set(Field::TpSrc, 8);
        k.set(Field::TpDst, 0);
        k.set(Field::IcmpId, 77);
        let p = parse(&frame_from_key(&k, 0), 3).unwrap();
        assert_eq!(p.key, k);
    }
}
