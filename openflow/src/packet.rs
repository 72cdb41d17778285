//! PACKET_IN (switch → controller) and PACKET_OUT (controller → switch).

use crate::action::Action;
use crate::error::{DecodeError, Part};
use crate::oxm::Match;
use crate::wire::{put_u16, put_u32, put_u64, put_zeros, Reader};

/// `ofp_packet_in_reason`.
pub mod packet_in_reason {
    pub const NO_MATCH: u8 = 0;
    pub const ACTION: u8 = 1;
    pub const INVALID_TTL: u8 = 2;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketIn {
    pub buffer_id: u32,
    pub total_len: u16,
    pub reason: u8,
    pub table_id: u8,
    pub cookie: u64,
    /// Pipeline fields of the packet (at least in_port).
    pub match_: Match,
    pub data: Vec<u8>,
}

impl PacketIn {
    pub(crate) fn decode(r: &mut Reader) -> Result<PacketIn, DecodeError> {
        let buffer_id = r.u32()?;
        let total_len = r.u16()?;
        let reason = r.u8()?;
        let table_id = r.u8()?;
        let cookie = r.u64()?;
        let match_ = Match::decode(r)?;
        r.skip(2)?;
        Ok(PacketIn {
            buffer_id,
            total_len,
            reason,
            table_id,
            cookie,
            match_,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.buffer_id);
        put_u16(out, self.total_len);
        out.push(self.reason);
        out.push(self.table_id);
        put_u64(out, self.cookie);
        self.match_.encode(out);
        put_zeros(out, 2);
        out.extend_from_slice(&self.data);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketOut {
    pub buffer_id: u32,
    pub in_port: u32,
    pub actions: Vec<Action>,
    pub data: Vec<u8>,
}

impl PacketOut {
    pub(crate) fn decode(r: &mut Reader) -> Result<PacketOut, DecodeError> {
        let buffer_id = r.u32()?;
        let in_port = r.u32()?;
        let actions_len = usize::from(r.u16()?);
        r.skip(6)?;
        let mut actions = Reader::new(r.bytes(actions_len)?, Part::Action);
        let actions = Action::decode_list(&mut actions)?;
        Ok(PacketOut {
            buffer_id,
            in_port,
            actions,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.buffer_id);
        put_u32(out, self.in_port);
        let at = out.len();
        put_u16(out, 0);
        put_zeros(out, 6);
        let start = out.len();
        Action::encode_list(&self.actions, out);
        let len = u16::try_from(out.len() - start).unwrap_or(u16::MAX);
        out[at..at + 2].copy_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.data);
    }
}
