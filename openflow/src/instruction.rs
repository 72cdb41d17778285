//! Flow instructions (OpenFlow 1.3 §7.2.4): goto_table, write_metadata,
//! apply/write/clear actions. METER and experimenter instructions decode
//! to an error the switch answers with BAD_INSTRUCTION/UNSUP_INST.

use crate::action::Action;
use crate::error::{DecodeError, Part};
use crate::wire::{patch_len, put_u16, put_u64, put_zeros, read_tlv, Reader};

mod instruction_type {
    pub const GOTO_TABLE: u16 = 1;
    pub const WRITE_METADATA: u16 = 2;
    pub const WRITE_ACTIONS: u16 = 3;
    pub const APPLY_ACTIONS: u16 = 4;
    pub const CLEAR_ACTIONS: u16 = 5;
    pub const METER: u16 = 6;
    pub const EXPERIMENTER: u16 = 0xffff;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    GotoTable(u8),
    WriteMetadata { metadata: u64, mask: u64 },
    WriteActions(Vec<Action>),
    ApplyActions(Vec<Action>),
    ClearActions,
}

impl Instruction {
    pub(crate) fn decode_list(r: &mut Reader) -> Result<Vec<Instruction>, DecodeError> {
        let mut out = Vec::new();
        while !r.is_empty() {
            out.push(Instruction::decode(r)?);
        }
        Ok(out)
    }

    pub(crate) fn encode_list(list: &[Instruction], out: &mut Vec<u8>) {
        for i in list {
            i.encode(out);
        }
    }

    fn decode(r: &mut Reader) -> Result<Instruction, DecodeError> {
        let (kind, len, mut body) = read_tlv(r, Part::Instruction)?;
        use instruction_type as T;
        let fixed_len = match kind {
            T::GOTO_TABLE | T::CLEAR_ACTIONS => Some(8),
            T::WRITE_METADATA => Some(24),
            _ => None,
        };
        if fixed_len.is_some_and(|want| want != len) {
            return Err(DecodeError::BadLength {
                part: Part::Instruction,
                length: len,
            });
        }
        match kind {
            T::GOTO_TABLE => Ok(Instruction::GotoTable(body.u8()?)),
            T::WRITE_METADATA => {
                body.skip(4)?;
                Ok(Instruction::WriteMetadata {
                    metadata: body.u64()?,
                    mask: body.u64()?,
                })
            }
            T::WRITE_ACTIONS | T::APPLY_ACTIONS => {
                body.skip(4)?;
                let mut actions = Reader::new(body.rest(), Part::Action);
                let actions = Action::decode_list(&mut actions)?;
                Ok(if kind == T::APPLY_ACTIONS {
                    Instruction::ApplyActions(actions)
                } else {
                    Instruction::WriteActions(actions)
                })
            }
            T::CLEAR_ACTIONS => Ok(Instruction::ClearActions),
            T::METER => Err(DecodeError::UnsupportedInstruction("meter")),
            T::EXPERIMENTER => Err(DecodeError::UnsupportedInstruction("experimenter")),
            other => Err(DecodeError::UnknownInstruction(other)),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        use instruction_type as T;
        let start = out.len();
        match self {
            Instruction::GotoTable(t) => {
                put_u16(out, T::GOTO_TABLE);
                put_u16(out, 8);
                out.push(*t);
                put_zeros(out, 3);
            }
            Instruction::WriteMetadata { metadata, mask } => {
                put_u16(out, T::WRITE_METADATA);
                put_u16(out, 24);
                put_zeros(out, 4);
                put_u64(out, *metadata);
                put_u64(out, *mask);
            }
            Instruction::WriteActions(actions) | Instruction::ApplyActions(actions) => {
                let kind = match self {
                    Instruction::ApplyActions(_) => T::APPLY_ACTIONS,
                    _ => T::WRITE_ACTIONS,
                };
                put_u16(out, kind);
                put_u16(out, 0);
                put_zeros(out, 4);
                Action::encode_list(actions, out);
                patch_len(out, start, 2);
            }
            Instruction::ClearActions => {
                put_u16(out, T::CLEAR_ACTIONS);
                put_u16(out, 8);
                put_zeros(out, 4);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_is_refused_by_name() {
        let meter = [0, 6, 0, 8, 0, 0, 0, 1];
        let r = Instruction::decode_list(&mut Reader::new(&meter, Part::Instruction));
        assert_eq!(r, Err(DecodeError::UnsupportedInstruction("meter")));
        assert_eq!(r.unwrap_err().error_type_code(), (3, 1));
    }

    #[test]
    fn goto_and_metadata_round_trip() {
        let list = vec![
            Instruction::WriteMetadata {
                metadata: 5,
                mask: u64::MAX,
            },
            Instruction::GotoTable(9),
        ];
        let mut out = Vec::new();
        Instruction::encode_list(&list, &mut out);
        assert_eq!(out.len(), 32);
        let back = Instruction::decode_list(&mut Reader::new(&out, Part::Instruction));
        assert_eq!(back, Ok(list));
    }
}
