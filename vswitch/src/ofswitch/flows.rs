//! OpenFlow 1.3 flows and the switch's own, both ways: a FLOW_MOD's match
//! and instructions become a `pipeline::flow::Flow` (the same flows
//! `vswitchctl add-flow` makes), and a bridge's flows become flow-stats
//! entries. What the switch cannot do is an error that names the field
//! or action and carries the OpenFlow error type and code to answer with;
//! nothing is dropped or guessed.
//!
//! Field correspondence (the switch's key keeps OVS's layout): vlan_vid
//! and vlan_pcp are bits of vlan_tci (OFPVID_PRESENT is its CFI bit);
//! ip_dscp is nw_tos >> 2; arp_op/arp_spa/arp_tpa share nw_proto/nw_src/
//! nw_dst, and nd_sll/nd_tll share arp_sha/arp_tha, as in OVS.

use openflow::{
    bad_action, bad_instruction, bad_match, error_type, port_no as port, Action as OfAction,
    Conntrack, CtZone as OfCtZone, Field as OfField, Instruction, Match as OfMatch, Nat,
    NiciraAction, OxmEntry, Subfield, CLASS_NXM_0, CLASS_NXM_1, CLASS_OPENFLOW_BASIC,
    CT_RECIRC_NONE,
};
use pipeline::flow::{Action, CtAction, CtZone, Flow, Match, NatKind, NatSpec};
use pipeline::key::Field;

/// Why a flow cannot be taken or given, with the error to answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{what}")]
pub struct FlowError {
    pub what: String,
    pub error_type: u16,
    pub code: u16,
}

fn bad_field(what: String) -> FlowError {
    FlowError {
        what,
        error_type: error_type::BAD_MATCH,
        code: bad_match::BAD_FIELD,
    }
}

fn bad_action_of(what: String) -> FlowError {
    FlowError {
        what,
        error_type: error_type::BAD_ACTION,
        code: bad_action::BAD_TYPE,
    }
}

const fn basic(number: u8) -> OfField {
    OfField {
        class: CLASS_OPENFLOW_BASIC,
        number,
    }
}

const fn nxm0(number: u8) -> OfField {
    OfField {
        class: CLASS_NXM_0,
        number,
    }
}

const fn nxm1(number: u8) -> OfField {
    OfField {
        class: CLASS_NXM_1,
        number,
    }
}

// OXM OPENFLOW_BASIC field numbers (OpenFlow 1.3 §7.2.3.7).
const IN_PORT: OfField = basic(0);
const METADATA: OfField = basic(2);
const ETH_DST: OfField = basic(3);
const ETH_SRC: OfField = basic(4);
const ETH_TYPE: OfField = basic(5);
const VLAN_VID: OfField = basic(6);
const VLAN_PCP: OfField = basic(7);
const IP_DSCP: OfField = basic(8);
const IP_PROTO: OfField = basic(10);
const IPV4_SRC: OfField = basic(11);
const IPV4_DST: OfField = basic(12);
const TCP_SRC: OfField = basic(13);
const TCP_DST: OfField = basic(14);
const UDP_SRC: OfField = basic(15);
const UDP_DST: OfField = basic(16);
const SCTP_SRC: OfField = basic(17);
const SCTP_DST: OfField = basic(18);
const ICMPV4_TYPE: OfField = basic(19);
const ICMPV4_CODE: OfField = basic(20);
const ARP_OP: OfField = basic(21);
const ARP_SPA: OfField = basic(22);
const ARP_TPA: OfField = basic(23);
const ARP_SHA: OfField = basic(24);
const ARP_THA: OfField = basic(25);
const IPV6_SRC: OfField = basic(26);
const IPV6_DST: OfField = basic(27);
const ICMPV6_TYPE: OfField = basic(29);
const ICMPV6_CODE: OfField = basic(30);
const ND_TARGET: OfField = basic(31);
const ND_SLL: OfField = basic(32);
const ND_TLL: OfField = basic(33);
// Nicira extension fields.
const NXM_VLAN_TCI: OfField = nxm0(4);
const NXM_IP_TOS: OfField = nxm0(5);
const NXM_IP_FRAG: OfField = nxm1(26);
const NXM_IP_TTL: OfField = nxm1(29);
const NXM_TCP_FLAGS: OfField = nxm1(34);
const NXM_CT_STATE: OfField = nxm1(105);
const NXM_CT_ZONE: OfField = nxm1(106);

const ETH_TYPE_ARP: u64 = 0x0806;
const ETH_TYPE_IPV6: u64 = 0x86dd;
const VLAN_VID_MASK: u64 = 0x1fff;
const IPPROTO_TCP: u64 = 6;
const IPPROTO_UDP: u64 = 17;
const IPPROTO_SCTP: u64 = 132;

fn field_name(f: OfField) -> String {
    f.info()
        .map(|i| i.name.to_string())
        .unwrap_or_else(|| format!("class {:#06x} field {}", f.class, f.number))
}

/// The switch's field and the value's shift for one OpenFlow field (None:
/// not a field the switch's key has).
fn key_field(f: OfField) -> Option<(Field, u32)> {
    Some(match f {
        IN_PORT => (Field::InPort, 0),
        METADATA => (Field::Metadata, 0),
        ETH_DST => (Field::DlDst, 0),
        ETH_SRC => (Field::DlSrc, 0),
        ETH_TYPE => (Field::DlType, 0),
        VLAN_VID | NXM_VLAN_TCI => (Field::VlanTci, 0),
        VLAN_PCP => (Field::VlanTci, 13),
        IP_DSCP => (Field::NwTos, 2),
        NXM_IP_TOS => (Field::NwTos, 0),
        IP_PROTO | ARP_OP => (Field::NwProto, 0),
        IPV4_SRC | ARP_SPA => (Field::NwSrc, 0),
        IPV4_DST | ARP_TPA => (Field::NwDst, 0),
        TCP_SRC | UDP_SRC | SCTP_SRC | ICMPV4_TYPE | ICMPV6_TYPE => (Field::TpSrc, 0),
        TCP_DST | UDP_DST | SCTP_DST | ICMPV4_CODE | ICMPV6_CODE => (Field::TpDst, 0),
        ARP_SHA | ND_SLL => (Field::ArpSha, 0),
        ARP_THA | ND_TLL => (Field::ArpTha, 0),
        NXM_IP_FRAG => (Field::NwFrag, 0),
        NXM_IP_TTL => (Field::NwTtl, 0),
        NXM_TCP_FLAGS => (Field::TcpFlags, 0),
        NXM_CT_STATE => (Field::CtState, 0),
        NXM_CT_ZONE => (Field::CtZone, 0),
        OfField {
            class: CLASS_NXM_1,
            number: n @ 0..=7,
        } => (Field::Reg(n), 0),
        _ => return None,
    })
}

/// The bits of the switch's field an OpenFlow field covers.
fn field_bits(f: OfField, key: Field) -> u64 {
    match f {
        VLAN_VID => VLAN_VID_MASK,
        VLAN_PCP => 0x7 << 13,
        IP_DSCP => 0xfc,
        _ => key.full_mask(),
    }
}

/// An OpenFlow match as the switch's.
pub fn match_from(m: &OfMatch) -> Result<Match, FlowError> {
    let mut out = Match::ANY;
    for e in &m.entries {
        let wide = match e.field {
            ND_TARGET => Some((Field::NdTargetHi, Field::NdTargetLo)),
            IPV6_SRC => Some((Field::Ipv6SrcHi, Field::Ipv6SrcLo)),
            IPV6_DST => Some((Field::Ipv6DstHi, Field::Ipv6DstLo)),
            _ => None,
        };
        if let Some((hi, lo)) = wide {
            let mask = e.mask.unwrap_or(u128::MAX);
            let value = e.value & mask;
            out.set(hi, (value >> 64) as u64, (mask >> 64) as u64);
            out.set(lo, value as u64, mask as u64);
            continue;
        }
        let (key, shift) = key_field(e.field).ok_or_else(|| {
            bad_field(format!(
                "match field {} is not supported by vswitch",
                field_name(e.field)
            ))
        })?;
        let bits = field_bits(e.field, key);
        let value = ((e.value as u64) << shift) & bits;
        let mask = e.mask.map_or(bits, |m| ((m as u64) << shift) & bits);
        let (v0, m0) = out.get(key);
        out.set(key, (v0 & !mask) | value, m0 | mask);
    }
    Ok(out)
}

fn entry(field: OfField, value: u64, mask: u64, full: u64) -> OxmEntry {
    OxmEntry {
        field,
        value: u128::from(value),
        mask: (mask != full).then_some(u128::from(mask)),
    }
}

/// The switch's match as OpenFlow 1.3 OXM entries (OVS's NXM fields where
/// OXM has none).
pub fn match_to(m: &Match) -> Result<OfMatch, FlowError> {
    let mut entries = Vec::new();
    let get = |f: Field| m.get(f);
    let (dl_type, _) = get(Field::DlType);
    let (nw_proto, proto_mask) = get(Field::NwProto);
    let arp = dl_type == ETH_TYPE_ARP;
    let v6 = dl_type == ETH_TYPE_IPV6;
    for key in Field::ALL {
        let (value, mask) = get(key);
        if mask == 0 {
            continue;
        }
        let full = key.full_mask();
        let of = match key {
            Field::InPort => IN_PORT,
            Field::Metadata => METADATA,
            Field::DlDst => ETH_DST,
            Field::DlSrc => ETH_SRC,
            Field::DlType => ETH_TYPE,
            Field::VlanTci => NXM_VLAN_TCI,
            Field::NwTos => NXM_IP_TOS,
            Field::NwProto if arp => ARP_OP,
            Field::NwProto => IP_PROTO,
            Field::NwSrc if arp => ARP_SPA,
            Field::NwSrc => IPV4_SRC,
            Field::NwDst if arp => ARP_TPA,
            Field::NwDst => IPV4_DST,
            Field::TpSrc | Field::TpDst => {
                let src = key == Field::TpSrc;
                match (proto_mask != 0).then_some(nw_proto) {
                    Some(IPPROTO_TCP) => {
                        if src {
                            TCP_SRC
                        } else {
                            TCP_DST
                        }
                    }
                    Some(IPPROTO_UDP) => {
                        if src {
                            UDP_SRC
                        } else {
                            UDP_DST
                        }
                    }
                    Some(IPPROTO_SCTP) => {
                        if src {
                            SCTP_SRC
                        } else {
                            SCTP_DST
                        }
                    }
                    Some(1) => {
                        if src {
                            ICMPV4_TYPE
                        } else {
                            ICMPV4_CODE
                        }
                    }
                    Some(58) => {
                        if src {
                            ICMPV6_TYPE
                        } else {
                            ICMPV6_CODE
                        }
                    }
                    _ => return Err(bad_field(format!("{} without an IP protocol", key.name()))),
                }
            }
            Field::ArpSha if v6 => ND_SLL,
            Field::ArpSha => ARP_SHA,
            Field::ArpTha if v6 => ND_TLL,
            Field::ArpTha => ARP_THA,
            Field::NwFrag => NXM_IP_FRAG,
            Field::NwTtl => NXM_IP_TTL,
            Field::TcpFlags => NXM_TCP_FLAGS,
            Field::CtState => NXM_CT_STATE,
            Field::CtZone => NXM_CT_ZONE,
            Field::Reg(n) => nxm1(n),
            Field::NdTargetHi
            | Field::NdTargetLo
            | Field::Ipv6SrcHi
            | Field::Ipv6SrcLo
            | Field::Ipv6DstHi
            | Field::Ipv6DstLo => continue,
            Field::VlanTpid | Field::IcmpId | Field::RecircId => {
                return Err(bad_field(format!(
                    "match field {} has no OpenFlow form",
                    key.name()
                )))
            }
        };
        entries.push(entry(of, value, mask, full));
    }
    for (field, hi, lo) in [
        (IPV6_SRC, Field::Ipv6SrcHi, Field::Ipv6SrcLo),
        (IPV6_DST, Field::Ipv6DstHi, Field::Ipv6DstLo),
        (ND_TARGET, Field::NdTargetHi, Field::NdTargetLo),
    ] {
        let (h, hm) = get(hi);
        let (l, lm) = get(lo);
        if hm | lm != 0 {
            let value = (u128::from(h) << 64) | u128::from(l);
            let mask = (u128::from(hm) << 64) | u128::from(lm);
            entries.push(OxmEntry {
                field,
                value,
                mask: (mask != u128::MAX).then_some(mask),
            });
        }
    }
    Ok(OfMatch::new(entries))
}

/// The switch's field a Nicira subfield names.
fn subfield_key(sf: &Subfield) -> Result<Field, FlowError> {
    let (f, _, _) = openflow::split_header(sf.header);
    match key_field(f) {
        Some((k, 0)) if field_bits(f, k) == k.full_mask() => Ok(k),
        _ => Err(bad_action_of(format!(
            "field {} is not supported by vswitch in move/load",
            field_name(f)
        ))),
    }
}

/// Bits `ofs..ofs+nbits` of the switch's field `key`, named by its NXM
/// header as move/load and ct's zone need.
fn subfield(key: Field, ofs: u8, nbits: u8) -> Result<Subfield, FlowError> {
    Ok(Subfield {
        header: of_header(key)?,
        ofs: u16::from(ofs),
        n_bits: u16::from(nbits),
    })
}

fn of_header(key: Field) -> Result<u32, FlowError> {
    let f = match key {
        Field::Reg(n) => nxm1(n),
        Field::InPort => nxm0(0),
        Field::DlDst => nxm0(1),
        Field::DlSrc => nxm0(2),
        Field::DlType => nxm0(3),
        Field::VlanTci => NXM_VLAN_TCI,
        Field::NwSrc => nxm0(7),
        Field::NwDst => nxm0(8),
        Field::ArpSha => nxm1(17),
        Field::ArpTha => nxm1(18),
        Field::Metadata => METADATA,
        Field::CtZone => NXM_CT_ZONE,
        other => {
            return Err(bad_action_of(format!(
                "field {} has no NXM form in move/load",
                other.name()
            )))
        }
    };
    f.header()
        .ok_or_else(|| bad_action_of(format!("field {} has no header", field_name(f))))
}

fn nat_from(n: &Nat, flags: u16) -> NatSpec {
    use openflow::nat_flags as F;
    let kind = if n.flags & F::SRC != 0 {
        Some(NatKind::Src)
    } else if n.flags & F::DST != 0 {
        Some(NatKind::Dst)
    } else {
        None
    };
    let _ = flags;
    let addr = n.ipv4_min.map(|lo| {
        let lo = u32::from_be_bytes(lo);
        (lo, n.ipv4_max.map_or(lo, u32::from_be_bytes))
    });
    let ports = n.proto_min.map(|lo| (lo, n.proto_max.unwrap_or(lo)));
    NatSpec {
        kind,
        addr,
        ports,
        random: n.flags & F::PROTO_RANDOM != 0,
        persistent: n.flags & F::PERSISTENT != 0,
        hash: n.flags & F::PROTO_HASH != 0,
    }
}

fn nat_to(n: &NatSpec) -> Nat {
    use openflow::nat_flags as F;
    let mut flags = match n.kind {
        Some(NatKind::Src) => F::SRC,
        Some(NatKind::Dst) => F::DST,
        None => 0,
    };
    if n.random {
        flags |= F::PROTO_RANDOM;
    }
    if n.persistent {
        flags |= F::PERSISTENT;
    }
    if n.hash {
        flags |= F::PROTO_HASH;
    }
    Nat {
        flags,
        ipv4_min: n.addr.map(|(lo, _)| lo.to_be_bytes()),
        ipv4_max: n
            .addr
            .filter(|(lo, hi)| lo != hi)
            .map(|(_, hi)| hi.to_be_bytes()),
        ipv6_min: None,
        ipv6_max: None,
        proto_min: n.ports.map(|(lo, _)| lo),
        proto_max: n.ports.filter(|(lo, hi)| lo != hi).map(|(_, hi)| hi),
    }
}

fn ct_from(c: &Conntrack) -> Result<CtAction, FlowError> {
    use openflow::ct_flags as F;
    let zone = match c.zone {
        OfCtZone::Immediate(0) => None,
        OfCtZone::Immediate(z) => Some(CtZone::Value(z)),
        OfCtZone::Field(sf) => Some(CtZone::Field {
            field: subfield_key(&sf)?,
            ofs: sf.ofs as u8,
            nbits: sf.n_bits as u8,
        }),
    };
    let mut nat = None;
    for a in &c.actions {
        match a {
            openflow::CtAction::Nicira(NiciraAction::Nat(n)) => nat = Some(nat_from(n, c.flags)),
            other => {
                return Err(bad_action_of(format!(
                    "ct(...) nested action {other:?} is not supported by vswitch"
                )))
            }
        }
    }
    if c.alg != 0 {
        return Err(bad_action_of(
            "ct(alg=...) is not supported by vswitch".into(),
        ));
    }
    Ok(CtAction {
        commit: c.flags & F::COMMIT != 0,
        zone,
        table: (c.recirc_table != CT_RECIRC_NONE).then_some(c.recirc_table),
        nat,
    })
}

fn ct_to(c: &CtAction) -> Result<Conntrack, FlowError> {
    use openflow::ct_flags as F;
    let zone = match &c.zone {
        None => OfCtZone::Immediate(0),
        Some(CtZone::Value(z)) => OfCtZone::Immediate(*z),
        Some(CtZone::Field { field, ofs, nbits }) => {
            OfCtZone::Field(subfield(*field, *ofs, *nbits)?)
        }
    };
    Ok(Conntrack {
        flags: if c.commit { F::COMMIT } else { 0 },
        zone,
        recirc_table: c.table.unwrap_or(CT_RECIRC_NONE),
        alg: 0,
        actions: c
            .nat
            .iter()
            .map(|n| openflow::CtAction::Nicira(NiciraAction::Nat(nat_to(n))))
            .collect(),
    })
}

/// One OpenFlow action as the switch's (`ip_proto`: the flow's, for
/// set_field of ports).
fn action_from(a: &OfAction) -> Result<Action, FlowError> {
    Ok(match a {
        OfAction::Output { port: p, .. } => match *p {
            port::NORMAL => Action::Normal,
            port::FLOOD | port::ALL => Action::Flood,
            port::IN_PORT => Action::InPort,
            port::LOCAL => Action::Local,
            p if p <= port::MAX => Action::Output(p),
            p => {
                return Err(FlowError {
                    what: format!("output to reserved port {p:#x} is not supported by vswitch"),
                    error_type: error_type::BAD_ACTION,
                    code: bad_action::BAD_OUT_PORT,
                })
            }
        },
        OfAction::PushVlan { ethertype } => Action::PushVlan(*ethertype),
        OfAction::PopVlan => Action::StripVlan,
        OfAction::DecNwTtl => Action::DecTtl,
        OfAction::SetField(e) => set_field_from(e)?,
        OfAction::Nicira(n) => match n {
            NiciraAction::Resubmit { in_port, table } => Action::Resubmit {
                port: (*in_port != 0xfff8).then_some(u32::from(*in_port)),
                table: table.filter(|t| *t != 255),
            },
            NiciraAction::RegMove { src, dst } => Action::Move {
                src: subfield_key(src)?,
                src_ofs: src.ofs as u8,
                dst: subfield_key(dst)?,
                dst_ofs: dst.ofs as u8,
                nbits: src.n_bits as u8,
            },
            NiciraAction::RegLoad { dst, value } => Action::Load {
                field: subfield_key(dst)?,
                ofs: dst.ofs as u8,
                nbits: dst.n_bits as u8,
                value: *value,
            },
            NiciraAction::Ct(c) => Action::Ct(ct_from(c)?),
            other => {
                return Err(bad_action_of(format!(
                    "action {other:?} is not supported by vswitch"
                )))
            }
        },
        other => {
            return Err(bad_action_of(format!(
                "action {other:?} is not supported by vswitch"
            )))
        }
    })
}

fn set_field_from(e: &OxmEntry) -> Result<Action, FlowError> {
    let unsupported = || FlowError {
        what: format!(
            "set_field of {} is not supported by vswitch",
            field_name(e.field)
        ),
        error_type: error_type::BAD_ACTION,
        code: bad_action::BAD_SET_TYPE,
    };
    let v = e.value as u64;
    Ok(match e.field {
        ETH_SRC => Action::ModDlSrc(pipeline::key::Mac::from_u64(v)),
        ETH_DST => Action::ModDlDst(pipeline::key::Mac::from_u64(v)),
        VLAN_VID => Action::ModVlanVid((v & 0xfff) as u16),
        VLAN_PCP => Action::ModVlanPcp(v as u8),
        IPV4_SRC => Action::ModNwSrc(v as u32),
        IPV4_DST => Action::ModNwDst(v as u32),
        IP_DSCP => Action::ModNwTos((v as u8) << 2),
        TCP_SRC | UDP_SRC => Action::ModTpSrc(v as u16),
        TCP_DST | UDP_DST => Action::ModTpDst(v as u16),
        f => {
            let (key, shift) = key_field(f).ok_or_else(unsupported)?;
            if shift != 0 {
                return Err(unsupported());
            }
            let mask = e.mask.map_or(key.full_mask(), |m| m as u64);
            Action::SetField {
                field: key,
                value: v,
                mask,
            }
        }
    })
}

/// A FLOW_MOD's instructions as the switch's actions.
pub fn actions_from(instructions: &[Instruction]) -> Result<Vec<Action>, FlowError> {
    let mut out = Vec::new();
    let mut goto = None;
    for i in instructions {
        match i {
            Instruction::ApplyActions(list) => {
                for a in list {
                    out.push(action_from(a)?);
                }
            }
            Instruction::GotoTable(t) => goto = Some(*t),
            // Nothing is ever written to the action set: clearing it is
            // a no-op.
            Instruction::ClearActions => {}
            other => {
                return Err(FlowError {
                    what: format!("instruction {other:?} is not supported by vswitch"),
                    error_type: error_type::BAD_INSTRUCTION,
                    code: bad_instruction::UNSUP_INST,
                })
            }
        }
    }
    if let Some(t) = goto {
        out.push(Action::GotoTable(t));
    }
    Ok(out)
}

/// The switch's actions as OpenFlow instructions.
pub fn actions_to(actions: &[Action], m: &Match) -> Result<Vec<Instruction>, FlowError> {
    let (nw_proto, _) = m.get(Field::NwProto);
    let mut apply = Vec::new();
    let mut goto = None;
    let out = |p: u32| OfAction::Output {
        port: p,
        max_len: 0,
    };
    let set = |f: OfField, v: u64| OfAction::SetField(OxmEntry::exact(f, u128::from(v)));
    for a in actions {
        apply.push(match a {
            Action::Output(p) => out(*p),
            Action::Normal => out(port::NORMAL),
            Action::Flood => out(port::FLOOD),
            Action::InPort => out(port::IN_PORT),
            Action::Local => out(port::LOCAL),
            Action::Resubmit { port: p, table } => OfAction::Nicira(NiciraAction::Resubmit {
                in_port: p.map_or(0xfff8, |p| p as u16),
                table: Some(table.unwrap_or(255)),
            }),
            Action::GotoTable(t) => {
                goto = Some(*t);
                continue;
            }
            Action::ModVlanVid(v) => set(VLAN_VID, u64::from(*v) | 0x1000),
            Action::ModVlanPcp(p) => set(VLAN_PCP, u64::from(*p)),
            Action::StripVlan => OfAction::PopVlan,
            Action::PushVlan(t) => OfAction::PushVlan { ethertype: *t },
            Action::ModDlSrc(mac) => set(ETH_SRC, mac.to_u64()),
            Action::ModDlDst(mac) => set(ETH_DST, mac.to_u64()),
            Action::ModNwSrc(a) => set(IPV4_SRC, u64::from(*a)),
            Action::ModNwDst(a) => set(IPV4_DST, u64::from(*a)),
            Action::ModNwTos(t) => set(IP_DSCP, u64::from(*t >> 2)),
            Action::ModTpSrc(p) => set(
                if nw_proto == IPPROTO_UDP {
                    UDP_SRC
                } else {
                    TCP_SRC
                },
                u64::from(*p),
            ),
            Action::ModTpDst(p) => set(
                if nw_proto == IPPROTO_UDP {
                    UDP_DST
                } else {
                    TCP_DST
                },
                u64::from(*p),
            ),
            Action::DecTtl => OfAction::DecNwTtl,
            Action::SetField { field, value, mask } if *mask == field.full_mask() => {
                OfAction::Nicira(NiciraAction::RegLoad {
                    dst: subfield(*field, 0, field.width() as u8)?,
                    value: *value,
                })
            }
            Action::SetField { field, .. } => {
                return Err(bad_action_of(format!(
                    "a masked set_field of {} has no OpenFlow 1.3 form",
                    field.name()
                )))
            }
            Action::Load {
                field,
                ofs,
                nbits,
                value,
            } => OfAction::Nicira(NiciraAction::RegLoad {
                dst: subfield(*field, *ofs, *nbits)?,
                value: *value,
            }),
            Action::Move {
                src,
                src_ofs,
                dst,
                dst_ofs,
                nbits,
            } => OfAction::Nicira(NiciraAction::RegMove {
                src: subfield(*src, *src_ofs, *nbits)?,
                dst: subfield(*dst, *dst_ofs, *nbits)?,
            }),
            Action::Ct(c) => OfAction::Nicira(NiciraAction::Ct(ct_to(c)?)),
        });
    }
    let mut instructions = Vec::new();
    if !apply.is_empty() {
        instructions.push(Instruction::ApplyActions(apply));
    }
    if let Some(t) = goto {
        instructions.push(Instruction::GotoTable(t));
    }
    Ok(instructions)
}

/// A FLOW_MOD's flow (table, priority, cookie, timeouts, match, actions).
pub fn flow_from(fm: &openflow::FlowMod) -> Result<Flow, FlowError> {
    Ok(Flow {
        table: fm.table_id,
        priority: fm.priority,
        cookie: fm.cookie,
        cookie_mask: fm.cookie_mask,
        idle_timeout: fm.idle_timeout,
        hard_timeout: fm.hard_timeout,
        matches: match_from(&fm.match_)?,
        actions: actions_from(&fm.instructions)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use openflow::{FlowMod, FlowModCommand, GROUP_ANY, NO_BUFFER};

    /// A flow through OpenFlow and back: its match and actions encoded as
    /// a FLOW_MOD travels (bytes included), then decoded.
    fn round_trip(f: &Flow) -> Result<Flow, FlowError> {
        let fm = FlowMod {
            cookie: f.cookie,
            cookie_mask: 0,
            table_id: f.table,
            command: FlowModCommand::Add,
            idle_timeout: f.idle_timeout,
            hard_timeout: f.hard_timeout,
            priority: f.priority,
            buffer_id: NO_BUFFER,
            out_port: port::ANY,
            out_group: GROUP_ANY,
            flags: 0,
            match_: match_to(&f.matches)?,
            instructions: actions_to(&f.actions, &f.matches)?,
        };
        let bytes = openflow::Message::FlowMod(fm).encode(7);
        let (_, back) = openflow::Message::decode(&bytes).expect("our encoding decodes");
        let openflow::Message::FlowMod(fm) = back else {
            panic!("not a flow mod");
        };
        flow_from(&fm)
    }

    /// Every flow the spec's hosts compile to (Neutron's tables with
    /// registers, conntrack and NAT) goes through OpenFlow unchanged, or
    /// is refused by name; none is changed on the way.
    #[test]
    fn the_spec_hosts_flows_survive_openflow_or_are_refused_by_name() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/topologies/spec-example.toml"
        );
        let t =
            topology::load_toml(&std::fs::read_to_string(path).expect("topology")).expect("valid");
        let mut checked = 0;
        let mut refused = Vec::new();
        for host in ["compute1", "compute2", "network1"] {
            let sw = topology::build_host(&t, host, 1)
                .expect("compiles")
                .build()
                .expect("builds");
            for b in &sw.bridges {
                for table in b.tables() {
                    for r in &table.rules {
                        match round_trip(&r.flow) {
                            Ok(back) => {
                                assert_eq!(back, r.flow, "{host} {}", b.name);
                                checked += 1;
                            }
                            Err(e) => refused.push(e.what),
                        }
                    }
                }
            }
        }
        assert!(checked > 100, "{checked} flows checked");
        // What has no OpenFlow form is said so, naming the field.
        for why in &refused {
            assert!(
                why.contains("vlan_tpid") || why.contains("recirc_id"),
                "{why}"
            );
        }
    }

    #[test]
    fn unsupported_fields_and_actions_name_themselves_with_openflows_codes() {
        let tun = openflow::Match::new(vec![OxmEntry::exact(basic(38), 5)]);
        let e = match_from(&tun).expect_err("tun_id");
        assert!(
            e.what.contains("tunnel_id") || e.what.contains("tun_id"),
            "{}",
            e.what
        );
        assert_eq!(
            (e.error_type, e.code),
            (error_type::BAD_MATCH, bad_match::BAD_FIELD)
        );
        let group = [Instruction::ApplyActions(vec![OfAction::Group {
            group_id: 1,
        }])];
        let e = actions_from(&group).expect_err("group");
        assert_eq!(
            (e.error_type, e.code),
            (error_type::BAD_ACTION, bad_action::BAD_TYPE)
        );
        let meter = [Instruction::WriteMetadata {
            metadata: 1,
            mask: 1,
        }];
        let e = actions_from(&meter).expect_err("write_metadata");
        assert_eq!(
            (e.error_type, e.code),
            (error_type::BAD_INSTRUCTION, bad_instruction::UNSUP_INST)
        );
    }
}
