//! A tracked connection, the NAT asked for a new one, and what conntrack
//! says about a packet.

use super::tcp::TcpState;
use super::tuple::{Dir, Tuple};
use crate::key::ct_state;
use std::net::Ipv4Addr;

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
    /// Set when another packet with the same tuple and packet info would
    /// get this verdict and move nothing but the connection's counters
    /// and deadline (`ConnTable::repeat` moves them for a run of such).
    pub repeat: Option<Repeat>,
}

/// The connection (and direction) a steady verdict was given for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repeat {
    pub(crate) orig: Tuple,
    pub(crate) dir: Dir,
}

impl Verdict {
    /// `+trk+inv`: conntrack cannot place the packet.
    pub(crate) fn invalid(t: Tuple) -> Verdict {
        Verdict {
            state: ct_state::TRK | ct_state::INV,
            dir: None,
            translated: t,
            repeat: None,
        }
    }

    /// `+trk+new` for a first packet that is not committed (`ct()` without
    /// `commit`): nothing is stored, nothing translated.
    pub(crate) fn new_uncommitted(t: Tuple) -> Verdict {
        Verdict {
            state: ct_state::TRK | ct_state::NEW,
            dir: Some(Dir::Orig),
            translated: t,
            repeat: None,
        }
    }
}
