//! The flow key: every header field a flow can match, packed into words.
//!
//! Design: the key is a fixed array of `u64` words so that the classifier and
//! the flow cache can mask, hash and compare it word by word without knowing
//! what the fields are. `Field` is the registry that names the bits: its
//! position (word, shift, width) drives matching, `set_field`/`load`, the
//! ovs-ofctl syntax and `trace` printing from one table.
//!
//! Field conventions follow Open vSwitch so that flows mean what operators
//! expect:
//! * `vlan_tci` carries the 802.1Q TCI with bit 0x1000 (CFI) set when the
//!   frame is tagged: `0x0000` = untagged, `0x1000|V` = tagged with VID V.
//!   An untagged frame is therefore distinct from a VLAN-0 priority tag.
//!   The tag is the frame's outer one, 802.1Q (0x8100) or 802.1ad (0x88a8)
//!   alike, and `vlan_tpid` says which (`VLAN_TPID_8021AD`, 0 otherwise and
//!   when untagged). As with Open vSwitch's default `vlan-limit` of 1, a
//!   second tag is payload: `dl_type` is its TPID.
//! * For ARP, `nw_proto` holds the opcode (low 8 bits), `nw_src`/`nw_dst`
//!   hold the sender/target protocol addresses (`arp_spa`/`arp_tpa`).
//! * For ICMP, `tp_src`/`tp_dst` hold type/code (`icmp_type`/`icmp_code`).
//!
//! Words `0..PACKET_WORDS` come from the packet; the rest (metadata,
//! registers) are pipeline state, zero when a packet arrives.

use crate::wire::ethertype;
pub use crate::wire::mac::Mac;
use std::fmt;

/// Number of 64-bit words in a key.
pub const KEY_WORDS: usize = 19;
/// Words derived from the packet (and the input port). Pipeline state
/// (metadata, registers) follows and is zero at ingress.
pub const PACKET_WORDS: usize = 13;

/// `vlan_tci` bit that says "an 802.1Q header is present".
pub const VLAN_CFI: u16 = 0x1000;
/// VLAN id bits of `vlan_tci`.
pub const VLAN_VID_MASK: u16 = 0x0fff;
/// Priority code point bits of `vlan_tci`.
pub const VLAN_PCP_MASK: u16 = 0xe000;

/// `vlan_tpid` of a frame whose outer tag is an 802.1ad service tag
/// (0x88a8); an 802.1Q tag (0x8100), or no tag, is 0.
pub const VLAN_TPID_8021AD: u64 = 1;

/// `nw_frag` bit: the packet is a fragment (first or later).
pub const FRAG_ANY: u8 = 1;
/// `nw_frag` bit: the packet is a later fragment (offset > 0).
pub const FRAG_LATER: u8 = 2;
/// `nw_frag` bit (never parsed from a packet): conntrack reassembled the
/// fragment's datagram, and the key's transport fields are the
/// datagram's (from its first fragment), as the resumed walk sees them.
pub const FRAG_REASSEMBLED: u8 = 4;

/// `ct_state` bits, as OVS defines them.
pub mod ct_state {
    pub const NEW: u8 = 0x01;
    pub const EST: u8 = 0x02;
    pub const REL: u8 = 0x04;
    pub const RPL: u8 = 0x08;
    pub const INV: u8 = 0x10;
    pub const TRK: u8 = 0x20;
    pub const SNAT: u8 = 0x40;
    pub const DNAT: u8 = 0x80;
    /// Names in the order ovs-ofctl prints them.
    pub const NAMES: [(u8, &str); 8] = [
        (NEW, "new"),
        (EST, "est"),
        (REL, "rel"),
        (RPL, "rpl"),
        (INV, "inv"),
        (TRK, "trk"),
        (SNAT, "snat"),
        (DNAT, "dnat"),
    ];
}

/// One named field of the key: where its bits live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    InPort,
    DlType,
    VlanTci,
    DlDst,
    NwProto,
    NwTos,
    DlSrc,
    NwTtl,
    NwFrag,
    NwSrc,
    NwDst,
    TpSrc,
    TpDst,
    TcpFlags,
    CtZone,
    ArpSha,
    CtState,
    /// Which TPID the outer VLAN tag has (`VLAN_TPID_8021AD` or 0), so that
    /// outputs push the tag back as it came.
    VlanTpid,
    ArpTha,
    IcmpId,
    NdTargetHi,
    NdTargetLo,
    /// An IPv6 packet's source and destination addresses (high and low
    /// 64 bits each).
    Ipv6SrcHi,
    Ipv6SrcLo,
    Ipv6DstHi,
    Ipv6DstLo,
    Metadata,
    Reg(u8),
    /// Which recirculation point a packet re-enters the pipeline at after
    /// connection tracking (0: it has not been recirculated).
    RecircId,
}

impl Field {
    /// All fields, in key order.
    pub const ALL: [Field; 36] = [
        Field::InPort,
        Field::DlType,
        Field::VlanTci,
        Field::DlDst,
        Field::NwProto,
        Field::NwTos,
        Field::DlSrc,
        Field::NwTtl,
        Field::NwFrag,
        Field::NwSrc,
        Field::NwDst,
        Field::TpSrc,
        Field::TpDst,
        Field::TcpFlags,
        Field::CtZone,
        Field::ArpSha,
        Field::CtState,
        Field::VlanTpid,
        Field::ArpTha,
        Field::IcmpId,
        Field::NdTargetHi,
        Field::NdTargetLo,
        Field::Ipv6SrcHi,
        Field::Ipv6SrcLo,
        Field::Ipv6DstHi,
        Field::Ipv6DstLo,
        Field::Metadata,
        Field::Reg(0),
        Field::Reg(1),
        Field::Reg(2),
        Field::Reg(3),
        Field::Reg(4),
        Field::Reg(5),
        Field::Reg(6),
        Field::Reg(7),
        Field::RecircId,
    ];

    /// (word index, bit shift, width in bits).
    #[inline(always)]
    pub const fn position(self) -> (usize, u32, u32) {
        match self {
            Field::InPort => (0, 0, 32),
            Field::DlType => (0, 32, 16),
            Field::VlanTci => (0, 48, 16),
            Field::DlDst => (1, 0, 48),
            Field::NwProto => (1, 48, 8),
            Field::NwTos => (1, 56, 8),
            Field::DlSrc => (2, 0, 48),
            Field::NwTtl => (2, 48, 8),
            Field::NwFrag => (2, 56, 8),
            Field::NwSrc => (3, 0, 32),
            Field::NwDst => (3, 32, 32),
            Field::TpSrc => (4, 0, 16),
            Field::TpDst => (4, 16, 16),
            Field::TcpFlags => (4, 32, 16),
            Field::CtZone => (4, 48, 16),
            Field::ArpSha => (5, 0, 48),
            Field::CtState => (5, 48, 8),
            Field::VlanTpid => (5, 56, 8),
            Field::ArpTha => (6, 0, 48),
            Field::IcmpId => (6, 48, 16),
            Field::NdTargetHi => (7, 0, 64),
            Field::NdTargetLo => (8, 0, 64),
            Field::Ipv6SrcHi => (9, 0, 64),
            Field::Ipv6SrcLo => (10, 0, 64),
            Field::Ipv6DstHi => (11, 0, 64),
            Field::Ipv6DstLo => (12, 0, 64),
            Field::Metadata => (13, 0, 64),
            Field::Reg(n) => (14 + (n as usize & 7) / 2, 32 * (n as u32 & 1), 32),
            Field::RecircId => (18, 0, 32),
        }
    }

    /// Width in bits.
    #[inline(always)]
    pub const fn width(self) -> u32 {
        self.position().2
    }

    /// All-ones value of this field's width.
    #[inline(always)]
    pub const fn full_mask(self) -> u64 {
        let w = self.width();
        if w == 64 {
            u64::MAX
        } else {
            (1u64 << w) - 1
        }
    }

    /// The ovs-ofctl name of the field (as used in `set_field`/`load`/matches).
    pub fn name(self) -> &'static str {
        match self {
            Field::InPort => "in_port",
            Field::DlType => "dl_type",
            Field::VlanTci => "vlan_tci",
            Field::DlDst => "dl_dst",
            Field::NwProto => "nw_proto",
            Field::NwTos => "nw_tos",
            Field::DlSrc => "dl_src",
            Field::NwTtl => "nw_ttl",
            Field::NwFrag => "nw_frag",
            Field::NwSrc => "nw_src",
            Field::NwDst => "nw_dst",
            Field::TpSrc => "tp_src",
            Field::TpDst => "tp_dst",
            Field::TcpFlags => "tcp_flags",
            Field::CtZone => "ct_zone",
            Field::ArpSha => "arp_sha",
            Field::CtState => "ct_state",
            Field::VlanTpid => "vlan_tpid",
            Field::ArpTha => "arp_tha",
            Field::IcmpId => "icmp_id",
            Field::NdTargetHi => "nd_target_hi",
            Field::NdTargetLo => "nd_target_lo",
            Field::Ipv6SrcHi => "ipv6_src_hi",
            Field::Ipv6SrcLo => "ipv6_src_lo",
            Field::Ipv6DstHi => "ipv6_dst_hi",
            Field::Ipv6DstLo => "ipv6_dst_lo",
            Field::Metadata => "metadata",
            Field::Reg(0) => "reg0",
            Field::Reg(1) => "reg1",
            Field::Reg(2) => "reg2",
            Field::Reg(3) => "reg3",
            Field::Reg(4) => "reg4",
            Field::Reg(5) => "reg5",
            Field::Reg(6) => "reg6",
            Field::Reg(_) => "reg7",
            Field::RecircId => "recirc_id",
        }
    }
}

/// A packet's flow key, or (used as a mask) which bits of a key matter.
#[derive(Clone, Copy, Eq, Default)]
#[repr(align(32))]
pub struct FlowKey {
    pub w: [u64; KEY_WORDS],
}

/// Word-wise comparison (branch-free; the derived form calls `memcmp`).
impl PartialEq for FlowKey {
    #[inline(always)]
    fn eq(&self, other: &FlowKey) -> bool {
        let mut diff = 0u64;
        for i in 0..KEY_WORDS {
            diff |= self.w[i] ^ other.w[i];
        }
        diff == 0
    }
}

/// Hashes the packet words only: pipeline words (registers, metadata) are
/// zero whenever a key is used as a table key, and equal keys still hash
/// equally.
impl std::hash::Hash for FlowKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        for w in &self.w[..PACKET_WORDS] {
            h.write_u64(*w);
        }
    }
}

impl FlowKey {
    pub const ZERO: FlowKey = FlowKey { w: [0; KEY_WORDS] };

    /// Reads a field.
    #[inline(always)]
    pub fn get(&self, f: Field) -> u64 {
        let (word, shift, _) = f.position();
        (self.w[word] >> shift) & f.full_mask()
    }

    /// Writes a field (extra high bits of `v` are ignored).
    #[inline(always)]
    pub fn set(&mut self, f: Field, v: u64) {
        let (word, shift, _) = f.position();
        let m = f.full_mask() << shift;
        self.w[word] = (self.w[word] & !m) | ((v << shift) & m);
    }

    /// Writes the bits of `v` selected by `mask` (both field-width values).
    #[inline]
    pub fn set_masked(&mut self, f: Field, v: u64, mask: u64) {
        let cur = self.get(f);
        self.set(f, (cur & !mask) | (v & mask));
    }

    /// Adds `bits` (field-width) to field `f` of a mask: what a decision
    /// read, on top of what earlier ones did.
    #[inline]
    pub fn unwildcard(&mut self, f: Field, bits: u64) {
        let (word, shift, _) = f.position();
        self.w[word] |= (bits & f.full_mask()) << shift;
    }

    /// The key with only the bits of `mask` kept.
    #[inline(always)]
    pub fn masked(&self, mask: &FlowKey) -> FlowKey {
        let mut out = FlowKey::ZERO;
        for i in 0..KEY_WORDS {
            out.w[i] = self.w[i] & mask.w[i];
        }
        out
    }

    /// Bitwise union (for masks).
    #[inline]
    pub fn union_with(&mut self, other: &FlowKey) {
        for i in 0..KEY_WORDS {
            self.w[i] |= other.w[i];
        }
    }

    /// True if `self` (a value already masked by `mask`) equals `key` under `mask`.
    #[inline(always)]
    pub fn matches_masked(&self, key: &FlowKey, mask: &FlowKey) -> bool {
        let mut diff = 0u64;
        for i in 0..KEY_WORDS {
            diff |= (key.w[i] & mask.w[i]) ^ self.w[i];
        }
        diff == 0
    }

    /// True if every bit of `self` (a mask) is also set in `other`.
    pub fn is_subset_of(&self, other: &FlowKey) -> bool {
        (0..KEY_WORDS).all(|i| self.w[i] & !other.w[i] == 0)
    }

    pub fn is_zero(&self) -> bool {
        self.w.iter().all(|&w| w == 0)
    }

    // Typed accessors for the fields the pipeline reads most.

    #[inline(always)]
    pub fn in_port(&self) -> u32 {
        self.get(Field::InPort) as u32
    }
    #[inline(always)]
    pub fn dl_type(&self) -> u16 {
        self.get(Field::DlType) as u16
    }
    #[inline(always)]
    pub fn vlan_tci(&self) -> u16 {
        self.get(Field::VlanTci) as u16
    }
    /// The VLAN id if the frame is tagged.
    #[inline(always)]
    pub fn vlan_vid(&self) -> Option<u16> {
        let tci = self.vlan_tci();
        (tci & VLAN_CFI != 0).then_some(tci & VLAN_VID_MASK)
    }
    /// The TPID of the frame's (outer) tag, if it is tagged: what an output
    /// pushes back.
    #[inline(always)]
    pub fn vlan_tpid(&self) -> Option<u16> {
        (self.vlan_tci() & VLAN_CFI != 0).then_some(
            if self.get(Field::VlanTpid) == VLAN_TPID_8021AD {
                ethertype::QINQ
            } else {
                ethertype::VLAN
            },
        )
    }
    /// Sets the tag: `Some((tpid, tci))` (CFI is added), or `None` for
    /// untagged (which also clears `vlan_tpid`).
    #[inline]
    pub fn set_vlan(&mut self, tag: Option<(u16, u16)>) {
        let (tpid, tci) = match tag {
            Some((tpid, tci)) => ((tpid == ethertype::QINQ) as u64, (tci | VLAN_CFI) as u64),
            None => (0, 0),
        };
        self.set(Field::VlanTci, tci);
        self.set(Field::VlanTpid, tpid);
    }
    #[inline(always)]
    pub fn dl_src(&self) -> Mac {
        Mac::from_u64(self.get(Field::DlSrc))
    }
    #[inline(always)]
    pub fn dl_dst(&self) -> Mac {
        Mac::from_u64(self.get(Field::DlDst))
    }
    #[inline(always)]
    pub fn nw_proto(&self) -> u8 {
        self.get(Field::NwProto) as u8
    }
    #[inline(always)]
    pub fn nw_src(&self) -> u32 {
        self.get(Field::NwSrc) as u32
    }
    #[inline(always)]
    pub fn nw_dst(&self) -> u32 {
        self.get(Field::NwDst) as u32
    }
    #[inline(always)]
    pub fn nw_ttl(&self) -> u8 {
        self.get(Field::NwTtl) as u8
    }
    #[inline(always)]
    pub fn tp_src(&self) -> u16 {
        self.get(Field::TpSrc) as u16
    }
    #[inline(always)]
    pub fn tp_dst(&self) -> u16 {
        self.get(Field::TpDst) as u16
    }
    pub fn is_ipv4(&self) -> bool {
        self.dl_type() == ethertype::IPV4
    }
    pub fn is_arp(&self) -> bool {
        self.dl_type() == ethertype::ARP
    }
}

impl fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FlowKey[")?;
        for (i, w) in self.w.iter().enumerate() {
            if i > 0 {
                write!(f, " ")?;
            }
            write!(f, "{w:016x}")?;
        }
        write!(f, "]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_do_not_overlap_and_fit() {
        let mut seen = FlowKey::ZERO;
        for f in Field::ALL {
            let mut k = FlowKey::ZERO;
            k.set(f, u64::MAX);
            assert_eq!(k.get(f), f.full_mask(), "{f:?}");
            for i in 0..KEY_WORDS {
                assert_eq!(seen.w[i] & k.w[i], 0, "{f:?} overlaps");
            }
            seen.union_with(&k);
        }
    }

    #[test]
    fn packet_fields_live_in_packet_words() {
        for f in Field::ALL {
            let (word, _, _) = f.position();
            let internal = matches!(f, Field::Metadata | Field::Reg(_) | Field::RecircId);
            assert_eq!(word >= PACKET_WORDS, internal, "{f:?}");
        }
    }

    #[test]
    fn the_tag_and_its_tpid_set_and_read_together() {
        let mut k = FlowKey::ZERO;
        assert_eq!((k.vlan_vid(), k.vlan_tpid()), (None, None));
        k.set_vlan(Some((ethertype::QINQ, 0x6065)));
        assert_eq!(k.vlan_tci(), 0x7065);
        assert_eq!((k.vlan_vid(), k.vlan_tpid()), (Some(101), Some(0x88a8)));
        k.set_vlan(Some((ethertype::VLAN, 0)));
        assert_eq!((k.vlan_vid(), k.vlan_tpid()), (Some(0), Some(0x8100)));
        k.set_vlan(Some((ethertype::QINQ, 7)));
        k.set_vlan(None);
        assert_eq!((k.vlan_tci(), k.get(Field::VlanTpid)), (0, 0));
    }

    #[test]
    fn mac_text_round_trip() {
        let m: Mac = "fa:16:3e:01:00:11".parse().unwrap();
        assert_eq!(m.to_string(), "fa:16:3e:01:00:11");
        assert_eq!(Mac::from_u64(m.to_u64()), m);
        assert!("fa:16:3e:01:00".parse::<Mac>().is_err());
        assert!("fa:16:3e:01:00:11:22".parse::<Mac>().is_err());
        assert!(Mac::BROADCAST.is_multicast() && Mac::BROADCAST.is_broadcast());
    }
}
