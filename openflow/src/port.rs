//! `ofp_port` (port descriptions in PORT_STATUS and PORT_DESC replies) and
//! the PORT_STATUS message.

use crate::error::DecodeError;
use crate::wire::{put_u32, put_zeros, Reader};

pub const PORT_LEN: usize = 64;
pub const MAX_PORT_NAME_LEN: usize = 16;

/// `ofp_port_config` bits.
pub mod port_config {
    pub const PORT_DOWN: u32 = 1 << 0;
    pub const NO_RECV: u32 = 1 << 2;
    pub const NO_FWD: u32 = 1 << 5;
    pub const NO_PACKET_IN: u32 = 1 << 6;
}

/// `ofp_port_state` bits.
pub mod port_state {
    pub const LINK_DOWN: u32 = 1 << 0;
    pub const BLOCKED: u32 = 1 << 1;
    pub const LIVE: u32 = 1 << 2;
}

/// `ofp_port_reason`.
pub mod port_reason {
    pub const ADD: u8 = 0;
    pub const DELETE: u8 = 1;
    pub const MODIFY: u8 = 2;
}

/// `ofp_port`. `name` is at most 15 bytes on the wire (NUL padded to 16);
/// longer names are cut when encoding.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortDesc {
    pub port_no: u32,
    pub hw_addr: [u8; 6],
    pub name: String,
    pub config: u32,
    pub state: u32,
    pub curr: u32,
    pub advertised: u32,
    pub supported: u32,
    pub peer: u32,
    pub curr_speed: u32,
    pub max_speed: u32,
}

impl PortDesc {
    pub(crate) fn decode(r: &mut Reader) -> Result<PortDesc, DecodeError> {
        let port_no = r.u32()?;
        r.skip(4)?;
        let hw_addr = r.array()?;
        r.skip(2)?;
        let raw: [u8; MAX_PORT_NAME_LEN] = r.array()?;
        let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
        let name = String::from_utf8_lossy(&raw[..end]).into_owned();
        Ok(PortDesc {
            port_no,
            hw_addr,
            name,
            config: r.u32()?,
            state: r.u32()?,
            curr: r.u32()?,
            advertised: r.u32()?,
            supported: r.u32()?,
            peer: r.u32()?,
            curr_speed: r.u32()?,
            max_speed: r.u32()?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.port_no);
        put_zeros(out, 4);
        out.extend_from_slice(&self.hw_addr);
        put_zeros(out, 2);
        let mut name = [0u8; MAX_PORT_NAME_LEN];
        let bytes = self.name.as_bytes();
        let n = bytes.len().min(MAX_PORT_NAME_LEN - 1);
        name[..n].copy_from_slice(&bytes[..n]);
        out.extend_from_slice(&name);
        for v in [
            self.config,
            self.state,
            self.curr,
            self.advertised,
            self.supported,
            self.peer,
            self.curr_speed,
            self.max_speed,
        ] {
            put_u32(out, v);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortStatus {
    pub reason: u8,
    pub desc: PortDesc,
}

impl PortStatus {
    pub(crate) fn decode(r: &mut Reader) -> Result<PortStatus, DecodeError> {
        let reason = r.u8()?;
        r.skip(7)?;
        Ok(PortStatus {
            reason,
            desc: PortDesc::decode(r)?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.reason);
        put_zeros(out, 7);
        self.desc.encode(out);
    }
}
