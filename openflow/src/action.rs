//! Action lists: the OpenFlow 1.3 actions a Neutron switch meets, with the
//! Nicira experimenter actions (see `nicira`) as one variant.
//!
//! Each action is decoded from its own length-delimited slice, so a bad
//! length in one action cannot shift the next. Actions OVS itself refuses
//! or Neutron never sends (MPLS, PBB, unknown types) decode to typed
//! errors that map to OFPET_BAD_ACTION codes.

use crate::error::{DecodeError, Part};
use crate::nicira::{NiciraAction, NX_VENDOR_ID};
use crate::oxm::OxmEntry;
use crate::set_field;
use crate::wire::{put_u16, put_u32, put_zeros, read_tlv, Reader};

/// `ofp_port_no` reserved values (32-bit, OpenFlow 1.1+).
pub mod port {
    pub const MAX: u32 = 0xffff_ff00;
    pub const IN_PORT: u32 = 0xffff_fff8;
    pub const TABLE: u32 = 0xffff_fff9;
    pub const NORMAL: u32 = 0xffff_fffa;
    pub const FLOOD: u32 = 0xffff_fffb;
    pub const ALL: u32 = 0xffff_fffc;
    pub const CONTROLLER: u32 = 0xffff_fffd;
    pub const LOCAL: u32 = 0xffff_fffe;
    pub const ANY: u32 = 0xffff_ffff;
}

/// `ofp_controller_max_len`: send the whole packet, do not buffer.
pub const OFPCML_NO_BUFFER: u16 = 0xffff;

mod action_type {
    pub const OUTPUT: u16 = 0;
    pub const COPY_TTL_OUT: u16 = 11;
    pub const COPY_TTL_IN: u16 = 12;
    pub const SET_MPLS_TTL: u16 = 15;
    pub const DEC_MPLS_TTL: u16 = 16;
    pub const PUSH_VLAN: u16 = 17;
    pub const POP_VLAN: u16 = 18;
    pub const PUSH_MPLS: u16 = 19;
    pub const POP_MPLS: u16 = 20;
    pub const SET_QUEUE: u16 = 21;
    pub const GROUP: u16 = 22;
    pub const SET_NW_TTL: u16 = 23;
    pub const DEC_NW_TTL: u16 = 24;
    pub const SET_FIELD: u16 = crate::set_field::OFPAT_SET_FIELD;
    pub const PUSH_PBB: u16 = 26;
    pub const POP_PBB: u16 = 27;
    pub const EXPERIMENTER: u16 = 0xffff;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// To a port number or a reserved port (`port::*`); `max_len` is the
    /// byte count sent to the controller when `port` is CONTROLLER.
    Output {
        port: u32,
        max_len: u16,
    },
    CopyTtlOut,
    CopyTtlIn,
    PushVlan {
        ethertype: u16,
    },
    PopVlan,
    SetQueue {
        queue_id: u32,
    },
    Group {
        group_id: u32,
    },
    SetNwTtl {
        ttl: u8,
    },
    DecNwTtl,
    /// Any field of the match table, including NXM registers. OpenFlow 1.3
    /// set_field has no mask (OVS refuses one too): `mask` is always `None`
    /// when decoded.
    SetField(OxmEntry),
    Nicira(NiciraAction),
}

impl Action {
    /// Decodes a whole action list.
    pub(crate) fn decode_list(r: &mut Reader) -> Result<Vec<Action>, DecodeError> {
        let mut actions = Vec::new();
        while !r.is_empty() {
            actions.push(Action::decode(r)?);
        }
        Ok(actions)
    }

    pub(crate) fn encode_list(actions: &[Action], out: &mut Vec<u8>) {
        for a in actions {
            a.encode(out);
        }
    }

    fn decode(r: &mut Reader) -> Result<Action, DecodeError> {
        let (kind, len, mut body) = read_tlv(r, Part::Action)?;
        use action_type as T;
        let fixed_len = match kind {
            T::OUTPUT => Some(16),
            T::COPY_TTL_OUT | T::COPY_TTL_IN | T::PUSH_VLAN | T::POP_VLAN | T::SET_QUEUE => Some(8),
            T::GROUP | T::SET_NW_TTL | T::DEC_NW_TTL => Some(8),
            _ => None,
        };
        if fixed_len.is_some_and(|want| want != len) {
            return Err(DecodeError::BadLength {
                part: Part::Action,
                length: len,
            });
        }
        match kind {
            T::OUTPUT => Ok(Action::Output {
                port: body.u32()?,
                max_len: body.u16()?,
            }),
            T::COPY_TTL_OUT => Ok(Action::CopyTtlOut),
            T::COPY_TTL_IN => Ok(Action::CopyTtlIn),
            T::PUSH_VLAN => Ok(Action::PushVlan {
                ethertype: body.u16()?,
            }),
            T::POP_VLAN => Ok(Action::PopVlan),
            T::SET_QUEUE => Ok(Action::SetQueue {
                queue_id: body.u32()?,
            }),
            T::GROUP => Ok(Action::Group {
                group_id: body.u32()?,
            }),
            T::SET_NW_TTL => Ok(Action::SetNwTtl { ttl: body.u8()? }),
            T::DEC_NW_TTL => Ok(Action::DecNwTtl),
            T::SET_FIELD => Ok(Action::SetField(set_field::decode(&mut body)?)),
            T::SET_MPLS_TTL => Err(DecodeError::UnsupportedAction("set_mpls_ttl")),
            T::DEC_MPLS_TTL => Err(DecodeError::UnsupportedAction("dec_mpls_ttl")),
            T::PUSH_MPLS => Err(DecodeError::UnsupportedAction("push_mpls")),
            T::POP_MPLS => Err(DecodeError::UnsupportedAction("pop_mpls")),
            T::PUSH_PBB => Err(DecodeError::UnsupportedAction("push_pbb")),
            T::POP_PBB => Err(DecodeError::UnsupportedAction("pop_pbb")),
            T::EXPERIMENTER => {
                let experimenter = body.u32()?;
                if experimenter != NX_VENDOR_ID {
                    return Err(DecodeError::UnknownExperimenter(experimenter));
                }
                Ok(Action::Nicira(NiciraAction::decode(&mut body)?))
            }
            other => Err(DecodeError::UnknownAction(other)),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        use action_type as T;
        let simple = |out: &mut Vec<u8>, kind: u16| {
            put_u16(out, kind);
            put_u16(out, 8);
            put_zeros(out, 4);
        };
        match self {
            Action::Output { port, max_len } => {
                put_u16(out, T::OUTPUT);
                put_u16(out, 16);
                put_u32(out, *port);
                put_u16(out, *max_len);
                put_zeros(out, 6);
            }
            Action::CopyTtlOut => simple(out, T::COPY_TTL_OUT),
            Action::CopyTtlIn => simple(out, T::COPY_TTL_IN),
            Action::PushVlan { ethertype } => {
                put_u16(out, T::PUSH_VLAN);
                put_u16(out, 8);
                put_u16(out, *ethertype);
                put_zeros(out, 2);
            }
            Action::PopVlan => simple(out, T::POP_VLAN),
            Action::SetQueue { queue_id } => {
                put_u16(out, T::SET_QUEUE);
                put_u16(out, 8);
                put_u32(out, *queue_id);
            }
            Action::Group { group_id } => {
                put_u16(out, T::GROUP);
                put_u16(out, 8);
                put_u32(out, *group_id);
            }
            Action::SetNwTtl { ttl } => {
                put_u16(out, T::SET_NW_TTL);
                put_u16(out, 8);
                out.push(*ttl);
                put_zeros(out, 3);
            }
            Action::DecNwTtl => simple(out, T::DEC_NW_TTL),
            Action::SetField(entry) => set_field::encode(entry, out),
            Action::Nicira(nx) => nx.encode(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Result<Vec<Action>, DecodeError> {
        Action::decode_list(&mut Reader::new(bytes, Part::Action))
    }

    #[test]
    fn output_and_pop_vlan_round_trip() {
        let bytes = [
            0, 18, 0, 8, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 7, 0xff, 0xe5, 0, 0, 0, 0, 0, 0,
        ];
        let actions = decode(&bytes).unwrap();
        assert_eq!(
            actions,
            vec![
                Action::PopVlan,
                Action::Output {
                    port: 7,
                    max_len: 0xffe5
                }
            ]
        );
        let mut out = Vec::new();
        Action::encode_list(&actions, &mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn refuses_bad_lengths_and_unknown_types() {
        assert_eq!(
            decode(&[0, 18, 0, 7, 0, 0, 0, 0]),
            Err(DecodeError::BadLength {
                part: Part::Action,
                length: 7
            })
        );
        assert_eq!(
            decode(&[0, 0, 0, 8, 0, 0, 0, 1]),
            Err(DecodeError::BadLength {
                part: Part::Action,
                length: 8
            })
        );
        assert_eq!(
            decode(&[0, 99, 0, 8, 0, 0, 0, 0]),
            Err(DecodeError::UnknownAction(99))
        );
        assert_eq!(
            decode(&[0, 19, 0, 8, 0x88, 0x47, 0, 0]),
            Err(DecodeError::UnsupportedAction("push_mpls"))
        );
        assert_eq!(
            decode(&[0xff, 0xff, 0, 16, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::UnknownExperimenter(1))
        );
        let unknown_set_field = [0, 25, 0, 16, 0x80, 0, 80, 4, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(
            decode(&unknown_set_field),
            Err(DecodeError::BadSetType {
                class: 0x8000,
                field: 40
            })
        );
        let masked_reg = [0, 25, 0, 16, 0, 1, 1, 8, 0, 0, 0, 1, 0, 0, 0, 1];
        assert_eq!(
            decode(&masked_reg),
            Err(DecodeError::BadSetArgument("reg0"))
        );
    }
}
