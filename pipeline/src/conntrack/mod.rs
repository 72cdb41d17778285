//! Connection tracking: connections by zone and 5-tuple, both directions
//! found by one lookup, Linux-like TCP states, UDP/ICMP pseudo-states, NAT
//! bindings with bounded port search, timeouts expired incrementally.
//!
//! Design: the table is split into `SHARDS` shards, each behind its own
//! mutex (no global lock on the packet path). A connection lives in the
//! shard of its original-direction tuple; the shard of its reply tuple
//! holds an index entry pointing back. A lookup locks one shard (original
//! direction) or two shards one after the other (reply direction, never
//! both at once). Creating a connection locks both shards in index order,
//! so two workers racing on the two directions of one new flow end up with
//! one connection. Each shard keeps a deadline queue; `expire` pops a
//! bounded number of entries per call (workers call it once per burst), so
//! there is never a stop-the-world sweep.
//!
//! Why sharded locks and not per-worker ownership: the two directions of a
//! connection may arrive on different workers (RSS hashes each direction on
//! its own), and with NAT the reply tuple differs from the reversed original
//! one, so no symmetric hash can put both on one owner. Shard locks are
//! held for a hash lookup and a few field updates (figures in the bench).
//!
//! `table` holds the connections (`ConnTable`); `tcp` is the TCP state
//! machine; `stage` is the one ct stage: what a packet's conntrack step
//! does to it (ct_state, NAT, where it resumes), run by the datapath
//! (`CtMode::Commit`) and by `trace` (`CtMode::Peek`, which changes
//! nothing) alike, so a trace's states and NAT ports are the datapath's.
//! `track` and `peek` share one classification of a packet against the
//! table; they differ only in whether the result is stored.
//!
//! Ownership: one `ConnTable` per switch (per host), shared by all workers
//! and kept across snapshot rebuilds.
//!
//! May call: `key`, `packet` (ICMP errors' quoted headers, NAT rewrites),
//! `drop`, `ids`. Nothing above it: translation and the datapath call it.

pub mod stage;
mod table;
pub mod tcp;

pub use stage::{CtMode, CtResult, CtStep, Resume};
pub use table::ConnTable;

use crate::key::{ct_state, ipproto};
use std::net::Ipv4Addr;
use tcp::TcpState;

/// Number of shards (a power of two).
pub const SHARDS: usize = 64;
/// Default connection limit (Linux `nf_conntrack_max` on a 16 GiB host).
pub const DEFAULT_MAX_CONNS: usize = 262_144;
/// Ports tried before a NAT binding gives up (`nat_port_exhausted`).
pub const NAT_MAX_ATTEMPTS: u32 = 128;

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

    fn shard(&self) -> usize {
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

/// A NAT request, as `ct(commit,nat(src=..))` or an iptables SNAT/DNAT target gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nat {
    /// Rewrite the source to an address in `addrs`, the port into `ports`
    /// (kept if possible).
    Src {
        addrs: (Ipv4Addr, Ipv4Addr),
        ports: Option<(u16, u16)>,
    },
    /// Rewrite the destination.
    Dst {
        addrs: (Ipv4Addr, Ipv4Addr),
        ports: Option<(u16, u16)>,
    },
}

/// Per-protocol timeouts in seconds (Linux defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Timeouts {
    pub tcp_syn_sent: u64,
    pub tcp_syn_recv: u64,
    pub tcp_established: u64,
    pub tcp_fin_wait: u64,
    pub tcp_close_wait: u64,
    pub tcp_last_ack: u64,
    pub tcp_time_wait: u64,
    pub tcp_close: u64,
    pub udp: u64,
    pub udp_stream: u64,
    pub icmp: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_syn_sent: 120,
            tcp_syn_recv: 60,
            tcp_established: 432_000,
            tcp_fin_wait: 120,
            tcp_close_wait: 60,
            tcp_last_ack: 30,
            tcp_time_wait: 120,
            tcp_close: 10,
            udp: 30,
            udp_stream: 120,
            icmp: 30,
        }
    }
}

/// Limits of the table.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_conns: usize,
    /// Per-zone limits (zones not listed: only the global one).
    pub zone_max: std::collections::HashMap<u16, usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_conns: DEFAULT_MAX_CONNS,
            zone_max: std::collections::HashMap::new(),
        }
    }
}

/// One tracked connection.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Conn {
    pub orig: Tuple,
    /// The tuple reply packets carry (differs from `orig.reverse()` under NAT).
    pub reply: Tuple,
    pub tcp: Option<TcpState>,
    pub seen_reply: bool,
    pub snat: bool,
    pub dnat: bool,
    /// Monotonic time (ns) after which the connection is gone.
    pub expires_ns: u64,
    /// The earliest deadline queued for this connection in its shard.
    #[serde(skip)]
    pub(super) queued_ns: u64,
    pub packets: [u64; 2],
}

/// What conntrack says about a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// `ct_state` bits (always with `trk`).
    pub state: u8,
    pub dir: Option<Dir>,
    /// The packet's tuple after NAT (equal to the input when no NAT applies).
    pub translated: Tuple,
}

impl Verdict {
    /// `+trk+inv`: conntrack cannot place the packet.
    pub(crate) fn invalid(t: Tuple) -> Verdict {
        Verdict {
            state: ct_state::TRK | ct_state::INV,
            dir: None,
            translated: t,
        }
    }

    /// `+trk+new` for a first packet that is not committed (`ct()` without
    /// `commit`): nothing is stored, nothing translated.
    pub(crate) fn new_uncommitted(t: Tuple) -> Verdict {
        Verdict {
            state: ct_state::TRK | ct_state::NEW,
            dir: Some(Dir::Orig),
            translated: t,
        }
    }
}

/// What a packet carries that conntrack reads besides its tuple.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketInfo {
    /// TCP flags (low 9 bits as in the header), 0 for other protocols.
    pub tcp_flags: u16,
    /// ICMP type (for echo: 8 request, 0 reply).
    pub icmp_type: u8,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CtStats {
    pub connections: u64,
    pub created: u64,
    pub expired: u64,
    pub deleted: u64,
    pub invalid: u64,
    pub table_full: u64,
    pub zone_full: u64,
    pub nat_port_exhausted: u64,
    pub nat_attempts: u64,
}

/// The tuple and tracking inputs of a parsed IPv4 packet, in `zone`; None
/// for packets conntrack does not follow (non-IPv4, later fragments, ICMP
/// other than echo).
pub fn tuple_of(key: &crate::key::FlowKey, zone: u16) -> Option<(Tuple, PacketInfo)> {
    use crate::key::{ethertype, Field, FRAG_LATER};
    if key.dl_type() != ethertype::IPV4 || key.get(Field::NwFrag) as u8 & FRAG_LATER != 0 {
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
        ipproto::ICMP if matches!(key.tp_src(), 0 | 8) => (
            key.get(Field::IcmpId) as u16,
            0,
            PacketInfo {
                tcp_flags: 0,
                icmp_type: key.tp_src() as u8,
            },
        ),
        _ => return None,
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

#[cfg(test)]
mod size_tests {
    use super::*;

    /// Memory per connection stays within the 256-byte budget: the entry
    /// (key + value) in its shard, the reply index entry, one deadline.
    #[test]
    fn memory_per_connection_is_bounded() {
        let per_conn = std::mem::size_of::<(Tuple, Conn)>()
            + std::mem::size_of::<(Tuple, Tuple)>()
            + std::mem::size_of::<std::cmp::Reverse<(u64, Tuple)>>()
            + 2; // hashbrown control bytes
                 // hashbrown keeps tables at most 7/8 full.
        let with_slack = per_conn * 8 / 7;
        assert!(with_slack <= 256, "{with_slack} bytes per connection");
        println!("conntrack: {per_conn} bytes per connection ({with_slack} with table slack)");
    }
}
