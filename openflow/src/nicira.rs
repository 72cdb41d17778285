//! Nicira (Open vSwitch) experimenter actions, experimenter id 0x00002320:
//! the ones Neutron's OVS agent and its OVS firewall emit.
//!
//! Decoded fully: resubmit (1, 14), reg_move (6), reg_load (7), note (8),
//! conjunction (34), ct (35) with its nested actions, nat (36) and
//! ct_clear (43). Every other known subtype decodes to an error naming it
//! (BAD_ACTION/BAD_EXP_TYPE), among them learn (16), used by Neutron only
//! on br-tun, controller2 (37), which Neutron does not use, and dec_ttl
//! (18), which OVS accepts only in OpenFlow 1.0 (1.3 has OFPAT_DEC_NW_TTL).

use crate::error::{DecodeError, Part};
use crate::oxm::{field_of_header, OxmEntry};
use crate::set_field;
use crate::wire::{pad_to_8, patch_len, put_u16, put_u32, put_u64, put_zeros, read_tlv, Reader};

pub const NX_VENDOR_ID: u32 = 0x0000_2320;

/// `nx_action_subtype` numbers this crate decodes.
pub mod subtype {
    pub const RESUBMIT: u16 = 1;
    pub const REG_MOVE: u16 = 6;
    pub const REG_LOAD: u16 = 7;
    pub const NOTE: u16 = 8;
    pub const RESUBMIT_TABLE: u16 = 14;
    pub const LEARN: u16 = 16;
    pub const CONJUNCTION: u16 = 34;
    pub const CT: u16 = 35;
    pub const NAT: u16 = 36;
    pub const CONTROLLER2: u16 = 37;
    pub const CT_CLEAR: u16 = 43;
}

/// Names of the Nicira subtypes refused, for error messages.
fn unsupported_name(subtype: u16) -> Option<&'static str> {
    Some(match subtype {
        2 => "set_tunnel",
        4 => "set_queue",
        5 => "pop_queue",
        9 => "set_tunnel64",
        10 => "multipath",
        12 => "bundle",
        13 => "bundle_load",
        15 => "output_reg",
        16 => "learn",
        17 => "exit",
        18 => "dec_ttl",
        19 => "fin_timeout",
        20 => "controller",
        21 => "dec_ttl_cnt_ids",
        22 => "write_metadata",
        23 => "push_mpls",
        24 => "pop_mpls",
        25 => "set_mpls_ttl",
        26 => "dec_mpls_ttl",
        27 => "stack_push",
        28 => "stack_pop",
        29 => "sample",
        30 => "set_mpls_label",
        31 => "set_mpls_tc",
        32 => "output_reg2",
        33 => "reg_load2",
        37 => "controller2",
        38 => "sample2",
        39 => "output_trunc",
        40 => "group",
        41 => "sample3",
        42 => "clone",
        44 => "resubmit_table_ct",
        45 => "learn2",
        46 => "encap",
        47 => "decap",
        48 => "dec_nsh_ttl",
        49 => "check_pkt_larger",
        50 => "delete_field",
        _ => return None,
    })
}

/// `NX_CT_F_*` flags of the ct action.
pub mod ct_flags {
    pub const COMMIT: u16 = 1 << 0;
    pub const FORCE: u16 = 1 << 1;
}

/// `NX_NAT_F_*` flags of the nat action.
pub mod nat_flags {
    pub const SRC: u16 = 1 << 0;
    pub const DST: u16 = 1 << 1;
    pub const PERSISTENT: u16 = 1 << 2;
    pub const PROTO_HASH: u16 = 1 << 3;
    pub const PROTO_RANDOM: u16 = 1 << 4;
}

/// `NX_CT_RECIRC_NONE`: ct without `table=`.
pub const CT_RECIRC_NONE: u8 = 0xff;

/// A bit range of a field named by its NXM header (`NXM_NX_REG6[0..15]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subfield {
    pub header: u32,
    pub ofs: u16,
    pub n_bits: u16,
}

/// Where ct takes its zone from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtZone {
    Immediate(u16),
    Field(Subfield),
}

/// NXAST_CT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conntrack {
    pub flags: u16,
    pub zone: CtZone,
    /// The table to recirculate to, or [`CT_RECIRC_NONE`].
    pub recirc_table: u8,
    pub alg: u16,
    /// Nested actions (`nat(…)`, `exec(…)`), in wire order.
    pub actions: Vec<CtAction>,
}

/// An action nested in ct: OVS allows only nat and the setting of
/// conntrack fields (set_field, load, move to ct_mark / ct_label) there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CtAction {
    SetField(OxmEntry),
    Nicira(NiciraAction),
}

impl CtAction {
    fn decode_list(r: &mut Reader) -> Result<Vec<CtAction>, DecodeError> {
        let mut out = Vec::new();
        while !r.is_empty() {
            let (kind, _, mut body) = read_tlv(r, Part::Action)?;
            out.push(match kind {
                set_field::OFPAT_SET_FIELD => CtAction::SetField(set_field::decode(&mut body)?),
                0xffff => {
                    let experimenter = body.u32()?;
                    if experimenter != NX_VENDOR_ID {
                        return Err(DecodeError::UnknownExperimenter(experimenter));
                    }
                    CtAction::Nicira(NiciraAction::decode(&mut body)?)
                }
                _ => {
                    return Err(DecodeError::UnsupportedAction(
                        "non-conntrack action inside ct",
                    ))
                }
            });
        }
        Ok(out)
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            CtAction::SetField(e) => set_field::encode(e, out),
            CtAction::Nicira(nx) => nx.encode(out),
        }
    }
}

/// NXAST_NAT. Each range part is present or not, as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Nat {
    pub flags: u16,
    pub ipv4_min: Option<[u8; 4]>,
    pub ipv4_max: Option<[u8; 4]>,
    pub ipv6_min: Option<[u8; 16]>,
    pub ipv6_max: Option<[u8; 16]>,
    pub proto_min: Option<u16>,
    pub proto_max: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NiciraAction {
    /// NXAST_RESUBMIT (`table: None`) or NXAST_RESUBMIT_TABLE; `in_port` is
    /// a 16-bit OpenFlow 1.0 port (0xfff8 = IN_PORT), table 255 = this one.
    Resubmit {
        in_port: u16,
        table: Option<u8>,
    },
    RegMove {
        src: Subfield,
        dst: Subfield,
    },
    RegLoad {
        dst: Subfield,
        value: u64,
    },
    Note(Vec<u8>),
    /// `clause` is 0-based on the wire (ovs-ofctl prints clause + 1).
    Conjunction {
        id: u32,
        clause: u8,
        n_clauses: u8,
    },
    Ct(Conntrack),
    Nat(Nat),
    CtClear,
}

/// Bits of `nx_action_nat.range_present`.
mod nat_range {
    pub const IPV4_MIN: u16 = 1 << 0;
    pub const IPV4_MAX: u16 = 1 << 1;
    pub const IPV6_MIN: u16 = 1 << 2;
    pub const IPV6_MAX: u16 = 1 << 3;
    pub const PROTO_MIN: u16 = 1 << 4;
    pub const PROTO_MAX: u16 = 1 << 5;
}

/// Reads an `ofs_nbits` pair (offset << 6 | n_bits - 1).
fn ofs_nbits(v: u16) -> (u16, u16) {
    (v >> 6, (v & 0x3f) + 1)
}

fn put_ofs_nbits(out: &mut Vec<u8>, sf: &Subfield) {
    put_u16(out, (sf.ofs << 6) | (sf.n_bits.saturating_sub(1) & 0x3f));
}

fn known_header(h: u32) -> Result<u32, DecodeError> {
    field_of_header(h).map(|_| h)
}

impl NiciraAction {
    /// Decodes the body after the experimenter id: subtype and payload.
    pub(crate) fn decode(body: &mut Reader) -> Result<NiciraAction, DecodeError> {
        let kind = body.u16()?;
        use subtype as T;
        let a = match kind {
            T::RESUBMIT => NiciraAction::Resubmit {
                in_port: body.u16()?,
                table: None,
            },
            T::RESUBMIT_TABLE => NiciraAction::Resubmit {
                in_port: body.u16()?,
                table: Some(body.u8()?),
            },
            T::REG_MOVE => {
                let n_bits = body.u16()?;
                if n_bits == 0 {
                    return Err(DecodeError::BadArgument("reg_move of 0 bits"));
                }
                let (src_ofs, dst_ofs) = (body.u16()?, body.u16()?);
                let src = known_header(body.u32()?)?;
                let dst = known_header(body.u32()?)?;
                NiciraAction::RegMove {
                    src: Subfield {
                        header: src,
                        ofs: src_ofs,
                        n_bits,
                    },
                    dst: Subfield {
                        header: dst,
                        ofs: dst_ofs,
                        n_bits,
                    },
                }
            }
            T::REG_LOAD => {
                let (ofs, n_bits) = ofs_nbits(body.u16()?);
                let header = known_header(body.u32()?)?;
                let value = body.u64()?;
                NiciraAction::RegLoad {
                    dst: Subfield {
                        header,
                        ofs,
                        n_bits,
                    },
                    value,
                }
            }
            T::NOTE => NiciraAction::Note(body.rest().to_vec()),
            T::CONJUNCTION => {
                let (clause, n_clauses) = (body.u8()?, body.u8()?);
                NiciraAction::Conjunction {
                    id: body.u32()?,
                    clause,
                    n_clauses,
                }
            }
            T::CT => NiciraAction::Ct(decode_ct(body)?),
            T::NAT => NiciraAction::Nat(decode_nat(body)?),
            T::CT_CLEAR => NiciraAction::CtClear,
            other => {
                return Err(match unsupported_name(other) {
                    Some(name) => DecodeError::UnsupportedNiciraAction {
                        name,
                        subtype: other,
                    },
                    None => DecodeError::UnknownNiciraSubtype(other),
                })
            }
        };
        if !matches!(
            a,
            NiciraAction::Note(_) | NiciraAction::Ct(_) | NiciraAction::Nat(_)
        ) && body.rest().iter().any(|b| *b != 0)
        {
            return Err(DecodeError::BadArgument("nonzero padding"));
        }
        Ok(a)
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u16(out, 0xffff);
        put_u16(out, 0);
        put_u32(out, NX_VENDOR_ID);
        use subtype as T;
        match self {
            NiciraAction::Resubmit {
                in_port,
                table: None,
            } => {
                put_u16(out, T::RESUBMIT);
                put_u16(out, *in_port);
            }
            NiciraAction::Resubmit {
                in_port,
                table: Some(t),
            } => {
                put_u16(out, T::RESUBMIT_TABLE);
                put_u16(out, *in_port);
                out.push(*t);
            }
            NiciraAction::RegMove { src, dst } => {
                put_u16(out, T::REG_MOVE);
                put_u16(out, src.n_bits);
                put_u16(out, src.ofs);
                put_u16(out, dst.ofs);
                put_u32(out, src.header);
                put_u32(out, dst.header);
            }
            NiciraAction::RegLoad { dst, value } => {
                put_u16(out, T::REG_LOAD);
                put_ofs_nbits(out, dst);
                put_u32(out, dst.header);
                put_u64(out, *value);
            }
            NiciraAction::Note(data) => {
                put_u16(out, T::NOTE);
                out.extend_from_slice(data);
            }
            NiciraAction::Conjunction {
                id,
                clause,
                n_clauses,
            } => {
                put_u16(out, T::CONJUNCTION);
                out.extend_from_slice(&[*clause, *n_clauses]);
                put_u32(out, *id);
            }
            NiciraAction::Ct(ct) => encode_ct(ct, out),
            NiciraAction::Nat(nat) => encode_nat(nat, out),
            NiciraAction::CtClear => put_u16(out, T::CT_CLEAR),
        }
        if out.len() - start < 16 {
            put_zeros(out, 16 - (out.len() - start));
        }
        pad_to_8(out, start);
        patch_len(out, start, 2);
    }
}

fn decode_ct(body: &mut Reader) -> Result<Conntrack, DecodeError> {
    let flags = body.u16()?;
    let zone_src = body.u32()?;
    let zone_word = body.u16()?;
    let recirc_table = body.u8()?;
    body.skip(3)?;
    let alg = body.u16()?;
    let zone = if zone_src == 0 {
        CtZone::Immediate(zone_word)
    } else {
        let (ofs, n_bits) = ofs_nbits(zone_word);
        CtZone::Field(Subfield {
            header: known_header(zone_src)?,
            ofs,
            n_bits,
        })
    };
    let mut nested = Reader::new(body.rest(), Part::Action);
    let actions = CtAction::decode_list(&mut nested)?;
    Ok(Conntrack {
        flags,
        zone,
        recirc_table,
        alg,
        actions,
    })
}

fn encode_ct(ct: &Conntrack, out: &mut Vec<u8>) {
    put_u16(out, subtype::CT);
    put_u16(out, ct.flags);
    match ct.zone {
        CtZone::Immediate(z) => {
            put_u32(out, 0);
            put_u16(out, z);
        }
        CtZone::Field(sf) => {
            put_u32(out, sf.header);
            put_ofs_nbits(out, &sf);
        }
    }
    out.push(ct.recirc_table);
    put_zeros(out, 3);
    put_u16(out, ct.alg);
    for a in &ct.actions {
        a.encode(out);
    }
}

fn decode_nat(body: &mut Reader) -> Result<Nat, DecodeError> {
    body.skip(2)?;
    let flags = body.u16()?;
    let present = body.u16()?;
    use nat_range as R;
    if present & !0x3f != 0 {
        return Err(DecodeError::BadArgument("nat range_present"));
    }
    let mut nat = Nat {
        flags,
        ..Nat::default()
    };
    if present & R::IPV4_MIN != 0 {
        nat.ipv4_min = Some(body.array()?);
    }
    if present & R::IPV4_MAX != 0 {
        nat.ipv4_max = Some(body.array()?);
    }
    if present & R::IPV6_MIN != 0 {
        nat.ipv6_min = Some(body.array()?);
    }
    if present & R::IPV6_MAX != 0 {
        nat.ipv6_max = Some(body.array()?);
    }
    if present & R::PROTO_MIN != 0 {
        nat.proto_min = Some(body.u16()?);
    }
    if present & R::PROTO_MAX != 0 {
        nat.proto_max = Some(body.u16()?);
    }
    if body.rest().iter().any(|b| *b != 0) {
        return Err(DecodeError::BadArgument("nat padding"));
    }
    Ok(nat)
}

fn encode_nat(nat: &Nat, out: &mut Vec<u8>) {
    use nat_range as R;
    let present = [
        (nat.ipv4_min.is_some(), R::IPV4_MIN),
        (nat.ipv4_max.is_some(), R::IPV4_MAX),
        (nat.ipv6_min.is_some(), R::IPV6_MIN),
        (nat.ipv6_max.is_some(), R::IPV6_MAX),
        (nat.proto_min.is_some(), R::PROTO_MIN),
        (nat.proto_max.is_some(), R::PROTO_MAX),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .fold(0, |acc, (_, bit)| acc | bit);
    put_u16(out, subtype::NAT);
    put_zeros(out, 2);
    put_u16(out, nat.flags);
    put_u16(out, present);
    for a in [nat.ipv4_min, nat.ipv4_max].iter().flatten() {
        out.extend_from_slice(a);
    }
    for a in [nat.ipv6_min, nat.ipv6_max].iter().flatten() {
        out.extend_from_slice(a);
    }
    for p in [nat.proto_min, nat.proto_max].iter().flatten() {
        put_u16(out, *p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Result<Vec<CtAction>, DecodeError> {
        CtAction::decode_list(&mut Reader::new(bytes, Part::Action))
    }

    #[test]
    fn resubmit_table_round_trips() {
        let bytes = [
            0xff, 0xff, 0, 16, 0, 0, 0x23, 0x20, 0, 14, 0xff, 0xf8, 71, 0, 0, 0,
        ];
        let a = decode(&bytes).unwrap();
        assert_eq!(
            a,
            vec![CtAction::Nicira(NiciraAction::Resubmit {
                in_port: 0xfff8,
                table: Some(71)
            })]
        );
        let mut out = Vec::new();
        a.iter().for_each(|x| x.encode(&mut out));
        assert_eq!(out, bytes);
    }

    #[test]
    fn learn_and_unknown_subtypes_are_named() {
        let learn = [0xff, 0xff, 0, 16, 0, 0, 0x23, 0x20, 0, 16, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            decode(&learn),
            Err(DecodeError::UnsupportedNiciraAction {
                name: "learn",
                subtype: 16
            })
        );
        let unknown = [
            0xff, 0xff, 0, 16, 0, 0, 0x23, 0x20, 0, 200, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(
            decode(&unknown),
            Err(DecodeError::UnknownNiciraSubtype(200))
        );
    }

    #[test]
    fn reg_move_needs_known_fields() {
        let bad = [
            0xff, 0xff, 0, 24, 0, 0, 0x23, 0x20, 0, 6, 0, 32, 0, 0, 0, 0, 0, 5, 0x7e, 4, 0, 1, 0, 4,
        ];
        assert_eq!(
            decode(&bad),
            Err(DecodeError::UnknownField {
                class: 5,
                field: 63
            })
        );
    }
}
