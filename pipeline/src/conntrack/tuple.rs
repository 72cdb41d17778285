//! A connection's identity (zone, protocol, addresses, ports or echo id)
//! in one direction, the direction a packet goes, and how a packet's key
//! gives both.

use crate::wire::{icmp, ipproto};
use std::net::Ipv4Addr;

/// Number of shards of the table (a power of two); a tuple hashes to one.
pub const SHARDS: usize = 64;

/// A connection's identity in one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Tuple {
    pub zone: u16,
    pub proto: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// TCP/UDP source port; ICMP echo identifier.
    pub sport: u16,
    /// TCP/UDP destination port; 0 for ICMP.
    pub dport: u16,
}

impl Tuple {
    /// The tuple of a packet going the other way.
    pub fn reverse(&self) -> Tuple {
        if self.proto == ipproto::ICMP {
            return Tuple {
                src: self.dst,
                dst: self.src,
                ..*self
            };
        }
        Tuple {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            ..*self
        }
    }

    pub(super) fn shard(&self) -> usize {
        let mut h = (u32::from(self.src) as u64) << 32 | u32::from(self.dst) as u64;
        h ^= ((self.sport as u64) << 32 | (self.dport as u64) << 16 | (self.proto as u64) << 8)
            ^ (self.zone as u64) << 48;
        h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        ((h >> 40) as usize) & (SHARDS - 1)
    }
}

/// Which way a packet goes relative to the connection's first packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dir {
    Orig,
    Reply,
}

/// What a packet carries that conntrack reads besides its tuple.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketInfo {
    /// TCP flags (low 9 bits as in the header), 0 for other protocols.
    pub tcp_flags: u16,
    /// ICMP type (for echo: 8 request, 0 reply).
    pub icmp_type: u8,
}

/// The tuple and tracking inputs of a parsed IPv4 packet, in `zone`; None
/// for packets conntrack does not follow (non-IPv4, ICMP other than echo,
/// a later fragment whose datagram was not reassembled: only the first
/// fragment names its ports). A protocol without ports (GRE, ESP, …) is
/// followed by its addresses, ports 0, as netfilter's generic handler does.
#[inline]
pub fn tuple_of(key: &crate::key::FlowKey, zone: u16) -> Option<(Tuple, PacketInfo)> {
    use crate::key::{Field, FRAG_LATER, FRAG_REASSEMBLED};
    use crate::wire::ethertype;
    let frag = key.get(Field::NwFrag) as u8;
    if key.dl_type() != ethertype::IPV4 || frag & (FRAG_LATER | FRAG_REASSEMBLED) == FRAG_LATER {
        return None;
    }
    let proto = key.nw_proto();
    let (sport, dport, info) = match proto {
        ipproto::TCP | ipproto::UDP => (
            key.tp_src(),
            key.tp_dst(),
            PacketInfo {
                tcp_flags: key.get(Field::TcpFlags) as u16 & 0x1ff,
                icmp_type: 0,
            },
        ),
        ipproto::ICMP if icmp::is_echo(key.tp_src() as u8) => (
            key.get(Field::IcmpId) as u16,
            0,
            PacketInfo {
                tcp_flags: 0,
                icmp_type: key.tp_src() as u8,
            },
        ),
        ipproto::ICMP => return None,
        _ => (0, 0, PacketInfo::default()),
    };
    Some((
        Tuple {
            zone,
            proto,
            src: Ipv4Addr::from(key.nw_src()),
            dst: Ipv4Addr::from(key.nw_dst()),
            sport,
            dport,
        },
        info,
    ))
}
