//! Matches: OXM TLVs of class OPENFLOW_BASIC (0x8000) and the Nicira
//! classes NXM_0 (0x0000) and NXM_1 (0x0001) that Open vSwitch accepts in
//! OpenFlow 1.3 (registers, conntrack state, tunnel id, conjunction id).
//!
//! A field is its (class, number); [`FIELDS`] describes each one this
//! crate knows: width, whether a mask is allowed, OVS's names for it, how
//! ovs-ofctl writes its values and which flow slot it fills. A match is
//! the list of entries in wire order, so re-encoding is byte-for-byte.
//! Decoding checks lengths, masks and duplicates; prerequisites (`ip`
//! before `nw_src`…) are the switch's to check.

use crate::error::{DecodeError, Part};
use crate::wire::{pad_to_8, patch_len, put_u16, Reader};

pub const CLASS_NXM_0: u16 = 0x0000;
pub const CLASS_NXM_1: u16 = 0x0001;
pub const CLASS_OPENFLOW_BASIC: u16 = 0x8000;
pub const CLASS_EXPERIMENTER: u16 = 0xffff;

/// `OFPVID_PRESENT`: set in an OXM vlan_vid when a VLAN tag is present.
pub const OFPVID_PRESENT: u16 = 0x1000;
/// `OFPVID_NONE`: an OXM vlan_vid of 0 (unmasked) matches untagged packets.
pub const OFPVID_NONE: u16 = 0x0000;

const OFPMT_OXM: u16 = 1;

/// A match field: its OXM/NXM class and field number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Field {
    pub class: u16,
    pub number: u8,
}

const fn oxm(number: u8) -> Field {
    Field {
        class: CLASS_OPENFLOW_BASIC,
        number,
    }
}
const fn nxm0(number: u8) -> Field {
    Field {
        class: CLASS_NXM_0,
        number,
    }
}
const fn nxm1(number: u8) -> Field {
    Field {
        class: CLASS_NXM_1,
        number,
    }
}

/// How ovs-ofctl writes a field's values (`mf_field.string` in OVS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueFormat {
    Decimal,
    Hex,
    Ethernet,
    Ipv4,
    Ipv6,
    /// An OpenFlow port number (reserved ports by name).
    Port,
    CtState,
    Frag,
}

/// The slot of OVS's `struct flow` a field fills; several fields (OXM and
/// NXM spellings) can fill one slot. Used to print matches in OVS's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    InPort,
    InPhyPort,
    Metadata,
    EthDst,
    EthSrc,
    EthType,
    /// OXM vlan_vid: 13 bits, OFPVID_PRESENT at 0x1000.
    VlanVid,
    VlanPcp,
    VlanTci,
    /// OXM ip_dscp: the 6 DSCP bits, unshifted.
    IpDscp,
    /// NXM ip_tos: the TOS byte's DSCP bits in place.
    IpTos,
    IpEcn,
    IpTtl,
    IpProto,
    NwSrc,
    NwDst,
    TpSrc,
    TpDst,
    ArpOp,
    ArpSha,
    ArpTha,
    Ipv6Src,
    Ipv6Dst,
    Ipv6Label,
    NdTarget,
    NdSll,
    NdTll,
    IpFrag,
    TunId,
    Reg(u8),
    PktMark,
    ConjId,
    CtState,
    CtZone,
    CtMark,
    CtLabel,
}

/// What this crate knows about one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldInfo {
    pub field: Field,
    /// Value length on the wire, in bytes.
    pub len: u8,
    pub maskable: bool,
    /// OVS's field name (`set_field:…->NAME`).
    pub name: &'static str,
    /// The name OVS writes in subfields (`move:NAME[]->…`, `zone=NAME[0..15]`).
    pub subfield_name: &'static str,
    pub format: ValueFormat,
    pub slot: Slot,
}

const fn info(
    field: Field,
    len: u8,
    maskable: bool,
    name: &'static str,
    subfield_name: &'static str,
    format: ValueFormat,
    slot: Slot,
) -> FieldInfo {
    FieldInfo {
        field,
        len,
        maskable,
        name,
        subfield_name,
        format,
        slot,
    }
}

use Slot as S;
use ValueFormat as F;

/// Every field this crate decodes.
pub static FIELDS: &[FieldInfo] = &[
    info(
        oxm(0),
        4,
        false,
        "in_port_oxm",
        "OXM_OF_IN_PORT",
        F::Port,
        S::InPort,
    ),
    info(
        oxm(1),
        4,
        false,
        "in_phy_port",
        "OXM_OF_IN_PHY_PORT",
        F::Port,
        S::InPhyPort,
    ),
    info(
        oxm(2),
        8,
        true,
        "metadata",
        "OXM_OF_METADATA",
        F::Hex,
        S::Metadata,
    ),
    info(
        oxm(3),
        6,
        true,
        "eth_dst",
        "NXM_OF_ETH_DST",
        F::Ethernet,
        S::EthDst,
    ),
    info(
        oxm(4),
        6,
        true,
        "eth_src",
        "NXM_OF_ETH_SRC",
        F::Ethernet,
        S::EthSrc,
    ),
    info(
        oxm(5),
        2,
        false,
        "eth_type",
        "NXM_OF_ETH_TYPE",
        F::Hex,
        S::EthType,
    ),
    info(
        oxm(6),
        2,
        true,
        "vlan_vid",
        "OXM_OF_VLAN_VID",
        F::Decimal,
        S::VlanVid,
    ),
    info(
        oxm(7),
        1,
        false,
        "vlan_pcp",
        "OXM_OF_VLAN_PCP",
        F::Decimal,
        S::VlanPcp,
    ),
    info(
        oxm(8),
        1,
        false,
        "ip_dscp",
        "OXM_OF_IP_DSCP",
        F::Decimal,
        S::IpDscp,
    ),
    info(
        oxm(9),
        1,
        false,
        "nw_ecn",
        "NXM_NX_IP_ECN",
        F::Decimal,
        S::IpEcn,
    ),
    info(
        oxm(10),
        1,
        false,
        "nw_proto",
        "NXM_OF_IP_PROTO",
        F::Decimal,
        S::IpProto,
    ),
    info(
        oxm(11),
        4,
        true,
        "ip_src",
        "NXM_OF_IP_SRC",
        F::Ipv4,
        S::NwSrc,
    ),
    info(
        oxm(12),
        4,
        true,
        "ip_dst",
        "NXM_OF_IP_DST",
        F::Ipv4,
        S::NwDst,
    ),
    info(
        oxm(13),
        2,
        true,
        "tcp_src",
        "NXM_OF_TCP_SRC",
        F::Decimal,
        S::TpSrc,
    ),
    info(
        oxm(14),
        2,
        true,
        "tcp_dst",
        "NXM_OF_TCP_DST",
        F::Decimal,
        S::TpDst,
    ),
    info(
        oxm(15),
        2,
        true,
        "udp_src",
        "NXM_OF_UDP_SRC",
        F::Decimal,
        S::TpSrc,
    ),
    info(
        oxm(16),
        2,
        true,
        "udp_dst",
        "NXM_OF_UDP_DST",
        F::Decimal,
        S::TpDst,
    ),
    info(
        oxm(19),
        1,
        false,
        "icmp_type",
        "NXM_OF_ICMP_TYPE",
        F::Decimal,
        S::TpSrc,
    ),
    info(
        oxm(20),
        1,
        false,
        "icmp_code",
        "NXM_OF_ICMP_CODE",
        F::Decimal,
        S::TpDst,
    ),
    info(
        oxm(21),
        2,
        false,
        "arp_op",
        "NXM_OF_ARP_OP",
        F::Decimal,
        S::ArpOp,
    ),
    info(
        oxm(22),
        4,
        true,
        "arp_spa",
        "NXM_OF_ARP_SPA",
        F::Ipv4,
        S::NwSrc,
    ),
    info(
        oxm(23),
        4,
        true,
        "arp_tpa",
        "NXM_OF_ARP_TPA",
        F::Ipv4,
        S::NwDst,
    ),
    info(
        oxm(24),
        6,
        true,
        "arp_sha",
        "NXM_NX_ARP_SHA",
        F::Ethernet,
        S::ArpSha,
    ),
    info(
        oxm(25),
        6,
        true,
        "arp_tha",
        "NXM_NX_ARP_THA",
        F::Ethernet,
        S::ArpTha,
    ),
    info(
        oxm(26),
        16,
        true,
        "ipv6_src",
        "NXM_NX_IPV6_SRC",
        F::Ipv6,
        S::Ipv6Src,
    ),
    info(
        oxm(27),
        16,
        true,
        "ipv6_dst",
        "NXM_NX_IPV6_DST",
        F::Ipv6,
        S::Ipv6Dst,
    ),
    info(
        oxm(28),
        4,
        true,
        "ipv6_label",
        "NXM_NX_IPV6_LABEL",
        F::Hex,
        S::Ipv6Label,
    ),
    info(
        oxm(29),
        1,
        false,
        "icmpv6_type",
        "NXM_NX_ICMPV6_TYPE",
        F::Decimal,
        S::TpSrc,
    ),
    info(
        oxm(30),
        1,
        false,
        "icmpv6_code",
        "NXM_NX_ICMPV6_CODE",
        F::Decimal,
        S::TpDst,
    ),
    info(
        oxm(31),
        16,
        true,
        "nd_target",
        "NXM_NX_ND_TARGET",
        F::Ipv6,
        S::NdTarget,
    ),
    info(
        oxm(32),
        6,
        true,
        "nd_sll",
        "NXM_NX_ND_SLL",
        F::Ethernet,
        S::NdSll,
    ),
    info(
        oxm(33),
        6,
        true,
        "nd_tll",
        "NXM_NX_ND_TLL",
        F::Ethernet,
        S::NdTll,
    ),
    info(
        oxm(38),
        8,
        true,
        "tun_id",
        "NXM_NX_TUN_ID",
        F::Hex,
        S::TunId,
    ),
    info(
        nxm0(0),
        2,
        false,
        "in_port",
        "NXM_OF_IN_PORT",
        F::Port,
        S::InPort,
    ),
    info(
        nxm0(1),
        6,
        true,
        "eth_dst",
        "NXM_OF_ETH_DST",
        F::Ethernet,
        S::EthDst,
    ),
    info(
        nxm0(2),
        6,
        true,
        "eth_src",
        "NXM_OF_ETH_SRC",
        F::Ethernet,
        S::EthSrc,
    ),
    info(
        nxm0(3),
        2,
        false,
        "eth_type",
        "NXM_OF_ETH_TYPE",
        F::Hex,
        S::EthType,
    ),
    info(
        nxm0(4),
        2,
        true,
        "vlan_tci",
        "NXM_OF_VLAN_TCI",
        F::Hex,
        S::VlanTci,
    ),
    info(
        nxm0(5),
        1,
        false,
        "nw_tos",
        "NXM_OF_IP_TOS",
        F::Decimal,
        S::IpTos,
    ),
    info(
        nxm0(6),
        1,
        false,
        "nw_proto",
        "NXM_OF_IP_PROTO",
        F::Decimal,
        S::IpProto,
    ),
    info(
        nxm0(7),
        4,
        true,
        "ip_src",
        "NXM_OF_IP_SRC",
        F::Ipv4,
        S::NwSrc,
    ),
    info(
        nxm0(8),
        4,
        true,
        "ip_dst",
        "NXM_OF_IP_DST",
        F::Ipv4,
        S::NwDst,
    ),
    info(
        nxm0(9),
        2,
        true,
        "tcp_src",
        "NXM_OF_TCP_SRC",
        F::Decimal,
        S::TpSrc,
    ),
    info(
        nxm0(10),
        2,
        true,
        "tcp_dst",
        "NXM_OF_TCP_DST",
        F::Decimal,
        S::TpDst,
    ),
    info(
        nxm0(11),
        2,
        true,
        "udp_src",
        "NXM_OF_UDP_SRC",
        F::Decimal,
        S::TpSrc,
    ),
    info(
        nxm0(12),
        2,
        true,
        "udp_dst",
        "NXM_OF_UDP_DST",
        F::Decimal,
        S::TpDst,
    ),
    info(
        nxm0(13),
        1,
        false,
        "icmp_type",
        "NXM_OF_ICMP_TYPE",
        F::Decimal,
        S::TpSrc,
    ),
    info(
        nxm0(14),
        1,
        false,
        "icmp_code",
        "NXM_OF_ICMP_CODE",
        F::Decimal,
        S::TpDst,
    ),
    info(
        nxm0(15),
        2,
        false,
        "arp_op",
        "NXM_OF_ARP_OP",
        F::Decimal,
        S::ArpOp,
    ),
    info(
        nxm0(16),
        4,
        true,
        "arp_spa",
        "NXM_OF_ARP_SPA",
        F::Ipv4,
        S::NwSrc,
    ),
    info(
        nxm0(17),
        4,
        true,
        "arp_tpa",
        "NXM_OF_ARP_TPA",
        F::Ipv4,
        S::NwDst,
    ),
    info(nxm1(0), 4, true, "reg0", "NXM_NX_REG0", F::Hex, S::Reg(0)),
    info(nxm1(1), 4, true, "reg1", "NXM_NX_REG1", F::Hex, S::Reg(1)),
    info(nxm1(2), 4, true, "reg2", "NXM_NX_REG2", F::Hex, S::Reg(2)),
    info(nxm1(3), 4, true, "reg3", "NXM_NX_REG3", F::Hex, S::Reg(3)),
    info(nxm1(4), 4, true, "reg4", "NXM_NX_REG4", F::Hex, S::Reg(4)),
    info(nxm1(5), 4, true, "reg5", "NXM_NX_REG5", F::Hex, S::Reg(5)),
    info(nxm1(6), 4, true, "reg6", "NXM_NX_REG6", F::Hex, S::Reg(6)),
    info(nxm1(7), 4, true, "reg7", "NXM_NX_REG7", F::Hex, S::Reg(7)),
    info(nxm1(8), 4, true, "reg8", "NXM_NX_REG8", F::Hex, S::Reg(8)),
    info(nxm1(9), 4, true, "reg9", "NXM_NX_REG9", F::Hex, S::Reg(9)),
    info(
        nxm1(10),
        4,
        true,
        "reg10",
        "NXM_NX_REG10",
        F::Hex,
        S::Reg(10),
    ),
    info(
        nxm1(11),
        4,
        true,
        "reg11",
        "NXM_NX_REG11",
        F::Hex,
        S::Reg(11),
    ),
    info(
        nxm1(12),
        4,
        true,
        "reg12",
        "NXM_NX_REG12",
        F::Hex,
        S::Reg(12),
    ),
    info(
        nxm1(13),
        4,
        true,
        "reg13",
        "NXM_NX_REG13",
        F::Hex,
        S::Reg(13),
    ),
    info(
        nxm1(14),
        4,
        true,
        "reg14",
        "NXM_NX_REG14",
        F::Hex,
        S::Reg(14),
    ),
    info(
        nxm1(15),
        4,
        true,
        "reg15",
        "NXM_NX_REG15",
        F::Hex,
        S::Reg(15),
    ),
    info(
        nxm1(16),
        8,
        true,
        "tun_id",
        "NXM_NX_TUN_ID",
        F::Hex,
        S::TunId,
    ),
    info(
        nxm1(17),
        6,
        true,
        "arp_sha",
        "NXM_NX_ARP_SHA",
        F::Ethernet,
        S::ArpSha,
    ),
    info(
        nxm1(18),
        6,
        true,
        "arp_tha",
        "NXM_NX_ARP_THA",
        F::Ethernet,
        S::ArpTha,
    ),
    info(
        nxm1(19),
        16,
        true,
        "ipv6_src",
        "NXM_NX_IPV6_SRC",
        F::Ipv6,
        S::Ipv6Src,
    ),
    info(
        nxm1(20),
        16,
        true,
        "ipv6_dst",
        "NXM_NX_IPV6_DST",
        F::Ipv6,
        S::Ipv6Dst,
    ),
    info(
        nxm1(21),
        1,
        false,
        "icmpv6_type",
        "NXM_NX_ICMPV6_TYPE",
        F::Decimal,
        S::TpSrc,
    ),
    info(
        nxm1(22),
        1,
        false,
        "icmpv6_code",
        "NXM_NX_ICMPV6_CODE",
        F::Decimal,
        S::TpDst,
    ),
    info(
        nxm1(23),
        16,
        true,
        "nd_target",
        "NXM_NX_ND_TARGET",
        F::Ipv6,
        S::NdTarget,
    ),
    info(
        nxm1(24),
        6,
        true,
        "nd_sll",
        "NXM_NX_ND_SLL",
        F::Ethernet,
        S::NdSll,
    ),
    info(
        nxm1(25),
        6,
        true,
        "nd_tll",
        "NXM_NX_ND_TLL",
        F::Ethernet,
        S::NdTll,
    ),
    info(
        nxm1(26),
        1,
        true,
        "ip_frag",
        "NXM_NX_IP_FRAG",
        F::Frag,
        S::IpFrag,
    ),
    info(
        nxm1(27),
        4,
        true,
        "ipv6_label",
        "NXM_NX_IPV6_LABEL",
        F::Hex,
        S::Ipv6Label,
    ),
    info(
        nxm1(28),
        1,
        false,
        "nw_ecn",
        "NXM_NX_IP_ECN",
        F::Decimal,
        S::IpEcn,
    ),
    info(
        nxm1(29),
        1,
        false,
        "nw_ttl",
        "NXM_NX_IP_TTL",
        F::Decimal,
        S::IpTtl,
    ),
    info(
        nxm1(33),
        4,
        true,
        "pkt_mark",
        "NXM_NX_PKT_MARK",
        F::Hex,
        S::PktMark,
    ),
    info(
        nxm1(37),
        4,
        false,
        "conj_id",
        "NXM_NX_CONJ_ID",
        F::Decimal,
        S::ConjId,
    ),
    info(
        nxm1(105),
        4,
        true,
        "ct_state",
        "NXM_NX_CT_STATE",
        F::CtState,
        S::CtState,
    ),
    info(
        nxm1(106),
        2,
        false,
        "ct_zone",
        "NXM_NX_CT_ZONE",
        F::Hex,
        S::CtZone,
    ),
    info(
        nxm1(107),
        4,
        true,
        "ct_mark",
        "NXM_NX_CT_MARK",
        F::Hex,
        S::CtMark,
    ),
    info(
        nxm1(108),
        16,
        true,
        "ct_label",
        "NXM_NX_CT_LABEL",
        F::Hex,
        S::CtLabel,
    ),
];

impl Field {
    pub fn info(self) -> Option<&'static FieldInfo> {
        FIELDS.iter().find(|i| i.field == self)
    }

    /// The field OVS calls `name` in set_field (the OXM spelling first).
    pub fn by_name(name: &str) -> Option<Field> {
        FIELDS.iter().find(|i| i.name == name).map(|i| i.field)
    }

    /// The 32-bit OXM/NXM header of this field without a mask.
    pub fn header(self) -> Option<u32> {
        let len = self.info()?.len;
        Some(header(self, false, len))
    }
}

fn header(field: Field, hasmask: bool, len: u8) -> u32 {
    (u32::from(field.class) << 16)
        | (u32::from(field.number) << 9)
        | (u32::from(hasmask) << 8)
        | u32::from(len)
}

/// Splits a 32-bit OXM/NXM header into (field, hasmask, payload length).
pub fn split_header(h: u32) -> (Field, bool, u8) {
    let field = Field {
        class: (h >> 16) as u16,
        number: ((h >> 9) & 0x7f) as u8,
    };
    (field, h & 0x100 != 0, (h & 0xff) as u8)
}

/// Looks up the field an NXM header (as used by NXAST_REG_MOVE/LOAD and
/// NXAST_CT's zone source) names.
pub fn field_of_header(h: u32) -> Result<&'static FieldInfo, DecodeError> {
    let (field, _, _) = split_header(h);
    field.info().ok_or(DecodeError::UnknownField {
        class: field.class,
        field: field.number,
    })
}

/// One match entry. `value` and `mask` hold the field's bytes as a
/// big-endian number (every field here is at most 16 bytes); `mask` is
/// `None` for an exact match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OxmEntry {
    pub field: Field,
    pub value: u128,
    pub mask: Option<u128>,
}

impl OxmEntry {
    pub fn exact(field: Field, value: u128) -> OxmEntry {
        OxmEntry {
            field,
            value,
            mask: None,
        }
    }

    /// Reads one TLV, checking its class, number, length and mask.
    pub(crate) fn decode(r: &mut Reader) -> Result<OxmEntry, DecodeError> {
        let (field, hasmask, len) = split_header(r.u32()?);
        if field.class == CLASS_EXPERIMENTER {
            return Err(DecodeError::UnknownField {
                class: field.class,
                field: field.number,
            });
        }
        let info = field.info().ok_or(DecodeError::UnknownField {
            class: field.class,
            field: field.number,
        })?;
        let want = if hasmask { 2 * info.len } else { info.len };
        if len != want {
            return Err(DecodeError::BadFieldLength {
                name: info.name,
                length: len,
            });
        }
        if hasmask && !info.maskable {
            return Err(DecodeError::MaskNotAllowed(info.name));
        }
        let n = usize::from(info.len);
        let value = be_number(r.bytes(n)?);
        let mask = if hasmask {
            Some(be_number(r.bytes(n)?))
        } else {
            None
        };
        Ok(OxmEntry { field, value, mask })
    }

    /// Writes the TLV; fields unknown to this crate cannot be built from
    /// the wire, so every entry here has a known length.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let len = self.field.info().map_or(0, |i| i.len);
        let total = if self.mask.is_some() { 2 * len } else { len };
        out.extend_from_slice(&header(self.field, self.mask.is_some(), total).to_be_bytes());
        put_be_number(out, self.value, len);
        if let Some(m) = self.mask {
            put_be_number(out, m, len);
        }
    }
}

pub(crate) fn be_number(bytes: &[u8]) -> u128 {
    bytes
        .iter()
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b))
}

pub(crate) fn put_be_number(out: &mut Vec<u8>, v: u128, len: u8) {
    let bytes = v.to_be_bytes();
    out.extend_from_slice(&bytes[16 - usize::from(len).min(16)..]);
}

/// An `ofp_match` of type OXM: the entries in wire order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Match {
    pub entries: Vec<OxmEntry>,
}

impl Match {
    pub fn new(entries: Vec<OxmEntry>) -> Match {
        Match { entries }
    }

    pub fn get(&self, field: Field) -> Option<&OxmEntry> {
        self.entries.iter().find(|e| e.field == field)
    }

    /// Reads an `ofp_match` and the padding after it.
    pub(crate) fn decode(r: &mut Reader) -> Result<Match, DecodeError> {
        let match_type = r.u16()?;
        let length = usize::from(r.u16()?);
        if match_type != OFPMT_OXM {
            return Err(DecodeError::BadMatchType(match_type));
        }
        if length < 4 {
            return Err(DecodeError::BadLength {
                part: Part::Match,
                length,
            });
        }
        let mut body = Reader::new(r.bytes(length - 4)?, Part::Match);
        r.skip((8 - length % 8) % 8)?;
        let mut entries: Vec<OxmEntry> = Vec::new();
        while !body.is_empty() {
            let entry = OxmEntry::decode(&mut body)?;
            if entries.iter().any(|e| e.field == entry.field) {
                let name = entry.field.info().map_or("?", |i| i.name);
                return Err(DecodeError::DuplicateField(name));
            }
            entries.push(entry);
        }
        Ok(Match { entries })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u16(out, OFPMT_OXM);
        put_u16(out, 0);
        for e in &self.entries {
            e.encode(out);
        }
        patch_len(out, start, 2);
        pad_to_8(out, start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Result<Match, DecodeError> {
        Match::decode(&mut Reader::new(bytes, Part::Match))
    }

    #[test]
    fn decodes_in_port_and_masked_vlan() {
        // in_port=1, vlan_vid=0x1000/0x1000
        let bytes = [
            0, 1, 0, 20, 0x80, 0, 0, 4, 0, 0, 0, 1, 0x80, 0, 0x0d, 4, 0x10, 0, 0x10, 0, 0, 0, 0, 0,
        ];
        let m = decode(&bytes).unwrap();
        assert_eq!(m.entries[0], OxmEntry::exact(oxm(0), 1));
        assert_eq!(
            m.entries[1],
            OxmEntry {
                field: oxm(6),
                value: 0x1000,
                mask: Some(0x1000)
            }
        );
        let mut out = Vec::new();
        m.encode(&mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn refuses_duplicates_masks_and_unknown_fields() {
        let dup = [
            0, 1, 0, 20, 0x80, 0, 0, 4, 0, 0, 0, 1, 0x80, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 0,
        ];
        assert_eq!(
            decode(&dup),
            Err(DecodeError::DuplicateField("in_port_oxm"))
        );
        let masked_in_port = [0, 1, 0, 12, 0x80, 0, 1, 8, 0, 0, 0, 1, 0, 0, 0, 1];
        assert_eq!(
            decode(&masked_in_port),
            Err(DecodeError::MaskNotAllowed("in_port_oxm"))
        );
        let mpls = [0, 1, 0, 12, 0x80, 0, 34 << 1, 4, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(
            decode(&mpls),
            Err(DecodeError::UnknownField {
                class: 0x8000,
                field: 34
            })
        );
        let short = [0, 1, 0, 12, 0x80, 0, 0, 3, 0, 0, 1, 0, 0, 0, 0, 0];
        assert!(matches!(
            decode(&short),
            Err(DecodeError::BadFieldLength { .. })
        ));
    }

    #[test]
    fn field_table_has_no_duplicates() {
        for (i, a) in FIELDS.iter().enumerate() {
            assert!(FIELDS[i + 1..].iter().all(|b| b.field != a.field), "{a:?}");
            assert!(a.len >= 1 && a.len <= 16);
        }
    }
}
