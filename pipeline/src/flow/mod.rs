//! Flows: the match-action model and its ovs-ofctl text syntax.
//!
//! A `Flow` is what an operator writes with `ovs-ofctl add-flow`: a table, a
//! priority, a `Match` (value + mask over the `FlowKey`) and a list of
//! `Action`s. Prerequisites (e.g. `tp_dst` needs `tcp`) are folded into the
//! match when it is parsed, so a `Match` is always self-contained.
//!
//! Port numbers are bridge-local OpenFlow port numbers; names are resolved
//! through `PortNames` when parsing and printing.

pub mod text;

use crate::key::{Field, FlowKey, Mac};

/// OpenFlow reserved port numbers (OpenFlow 1.0 numbering, as ovs-ofctl prints).
pub mod ofp {
    pub const IN_PORT: u32 = 0xfff8;
    pub const TABLE: u32 = 0xfff9;
    pub const NORMAL: u32 = 0xfffa;
    pub const FLOOD: u32 = 0xfffb;
    pub const ALL: u32 = 0xfffc;
    pub const CONTROLLER: u32 = 0xfffd;
    pub const LOCAL: u32 = 0xfffe;
    pub const NONE: u32 = 0xffff;
    /// Highest port number usable by a real port.
    pub const MAX_PORT: u32 = 0xff00;
}

/// Default priority of a flow with no `priority=` (OpenFlow's 0x8000).
pub const DEFAULT_PRIORITY: u16 = 0x8000;

/// Resolves port names to numbers and back, for one bridge.
pub trait PortNames {
    fn port_number(&self, name: &str) -> Option<u32>;
    fn port_name(&self, number: u32) -> Option<&str>;
}

/// No names: ports are numbers only.
pub struct NoPortNames;

impl PortNames for NoPortNames {
    fn port_number(&self, _: &str) -> Option<u32> {
        None
    }
    fn port_name(&self, _: u32) -> Option<&str> {
        None
    }
}

/// A match: the bits of `mask` in a packet's key must equal `value`.
/// Invariant: `value == value.masked(&mask)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Match {
    pub value: FlowKey,
    pub mask: FlowKey,
}

impl Match {
    /// Matches every packet.
    pub const ANY: Match = Match {
        value: FlowKey::ZERO,
        mask: FlowKey::ZERO,
    };

    /// Requires `field & mask == value & mask` (values are field-width).
    pub fn set(&mut self, field: Field, value: u64, mask: u64) {
        let mask = mask & field.full_mask();
        let mut m = self.mask;
        m.set(field, self.mask.get(field) | mask);
        self.mask = m;
        let v = (self.value.get(field) & !mask) | (value & mask);
        self.value.set(field, v);
    }

    /// Requires the whole field to equal `value`.
    pub fn set_exact(&mut self, field: Field, value: u64) {
        self.set(field, value, field.full_mask());
    }

    /// The (value, mask) pair of one field.
    pub fn get(&self, field: Field) -> (u64, u64) {
        (self.value.get(field), self.mask.get(field))
    }

    #[inline(always)]
    pub fn matches(&self, key: &FlowKey) -> bool {
        self.value.matches_masked(key, &self.mask)
    }
}

/// Source/destination selector of a NAT action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NatKind {
    Src,
    Dst,
}

/// `nat(src=A[-B][:P[-Q]],random|persistent|hash)` as in ovs-ofctl.
/// `kind == None` is a bare `nat`: apply the connection's existing NAT.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NatSpec {
    pub kind: Option<NatKind>,
    /// Address range, inclusive (host order).
    pub addr: Option<(u32, u32)>,
    /// Port range, inclusive.
    pub ports: Option<(u16, u16)>,
    pub random: bool,
    pub persistent: bool,
    pub hash: bool,
}

/// Where a `ct` zone comes from: a constant or a register slice.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CtZone {
    Value(u16),
    Field { field: Field, ofs: u8, nbits: u8 },
}

/// `ct(commit,zone=Z,table=T,nat(...))`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct CtAction {
    pub commit: bool,
    pub zone: Option<CtZone>,
    pub table: Option<u8>,
    pub nat: Option<NatSpec>,
}

/// One action of a flow, in ovs-ofctl terms.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// `output:P` (a real port number).
    Output(u32),
    /// `NORMAL`: L2 learning switch.
    Normal,
    /// `FLOOD`: every port but the input port (no VLAN awareness, like OVS).
    Flood,
    /// `IN_PORT`: back out of the input port.
    InPort,
    /// `LOCAL`: the bridge's local port.
    Local,
    /// `resubmit(P,T)` / `resubmit:P` / `resubmit(,T)`: look up table T (or
    /// the current table) as if the packet came in on P (or its real port),
    /// then continue with the next action.
    Resubmit {
        port: Option<u32>,
        table: Option<u8>,
    },
    /// `goto_table:T` (must be last; equivalent to a final resubmit).
    GotoTable(u8),
    /// `mod_vlan_vid:V`: set the VID, pushing a tag if there is none.
    ModVlanVid(u16),
    /// `mod_vlan_pcp:P`.
    ModVlanPcp(u8),
    /// `strip_vlan` / `pop_vlan`.
    StripVlan,
    /// `push_vlan:ETHERTYPE` (a tag with VID 0 until `mod_vlan_vid`).
    PushVlan(u16),
    ModDlSrc(Mac),
    ModDlDst(Mac),
    ModNwSrc(u32),
    ModNwDst(u32),
    ModNwTos(u8),
    ModTpSrc(u16),
    ModTpDst(u16),
    DecTtl,
    /// `set_field:V[/M]->F` (value and mask are field-width).
    SetField {
        field: Field,
        value: u64,
        mask: u64,
    },
    /// `load:V->F[ofs..ofs+nbits-1]` (NXM form).
    Load {
        field: Field,
        ofs: u8,
        nbits: u8,
        value: u64,
    },
    /// `move:SRC[a..b]->DST[c..d]`.
    Move {
        src: Field,
        src_ofs: u8,
        dst: Field,
        dst_ofs: u8,
        nbits: u8,
    },
    Ct(CtAction),
}

/// A flow as written by an operator: `table=T,priority=P,<match> actions=<actions>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    pub table: u8,
    pub priority: u16,
    pub cookie: u64,
    /// Only meaningful in `del-flows`/`mod-flows` selectors (`cookie=V/M`).
    pub cookie_mask: u64,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub matches: Match,
    /// Empty means drop.
    pub actions: Vec<Action>,
}

impl Default for Flow {
    fn default() -> Self {
        Flow {
            table: 0,
            priority: DEFAULT_PRIORITY,
            cookie: 0,
            cookie_mask: 0,
            idle_timeout: 0,
            hard_timeout: 0,
            matches: Match::ANY,
            actions: Vec::new(),
        }
    }
}

/// Counters shown by `dump-flows`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FlowStats {
    pub n_packets: u64,
    pub n_bytes: u64,
    /// Seconds since the flow was added.
    pub duration_secs: f64,
    /// Seconds since the flow last matched a packet, if it ever did.
    pub idle_age_secs: Option<u64>,
}

/// A mask of `nbits` bits starting at bit `ofs` (a field's subrange, as
/// `load`, `move` and `ct(zone=REG[a..b])` name it).
pub fn bit_range(ofs: u8, nbits: u8) -> u64 {
    let bits = if nbits >= 64 {
        u64::MAX
    } else {
        (1u64 << nbits) - 1
    };
    bits.checked_shl(ofs as u32).unwrap_or(0)
}
