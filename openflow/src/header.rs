//! The 8-byte OpenFlow header, message type numbers, and framing: how a
//! byte stream splits into messages by the header's length field.

use crate::error::{DecodeError, Part};
use crate::wire::Reader;

/// The wire version of OpenFlow 1.3.
pub const OFP13_VERSION: u8 = 0x04;
pub const HEADER_LEN: usize = 8;

/// `ofp_type` values of OpenFlow 1.3.
pub mod msg_type {
    pub const HELLO: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const ECHO_REQUEST: u8 = 2;
    pub const ECHO_REPLY: u8 = 3;
    pub const EXPERIMENTER: u8 = 4;
    pub const FEATURES_REQUEST: u8 = 5;
    pub const FEATURES_REPLY: u8 = 6;
    pub const GET_CONFIG_REQUEST: u8 = 7;
    pub const GET_CONFIG_REPLY: u8 = 8;
    pub const SET_CONFIG: u8 = 9;
    pub const PACKET_IN: u8 = 10;
    pub const FLOW_REMOVED: u8 = 11;
    pub const PORT_STATUS: u8 = 12;
    pub const PACKET_OUT: u8 = 13;
    pub const FLOW_MOD: u8 = 14;
    pub const GROUP_MOD: u8 = 15;
    pub const PORT_MOD: u8 = 16;
    pub const TABLE_MOD: u8 = 17;
    pub const MULTIPART_REQUEST: u8 = 18;
    pub const MULTIPART_REPLY: u8 = 19;
    pub const BARRIER_REQUEST: u8 = 20;
    pub const BARRIER_REPLY: u8 = 21;
    pub const QUEUE_GET_CONFIG_REQUEST: u8 = 22;
    pub const QUEUE_GET_CONFIG_REPLY: u8 = 23;
    pub const ROLE_REQUEST: u8 = 24;
    pub const ROLE_REPLY: u8 = 25;
    pub const GET_ASYNC_REQUEST: u8 = 26;
    pub const GET_ASYNC_REPLY: u8 = 27;
    pub const SET_ASYNC: u8 = 28;
    pub const METER_MOD: u8 = 29;
}

/// `ofp_header`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub msg_type: u8,
    pub length: u16,
    pub xid: u32,
}

impl Header {
    /// Reads the header at the start of `buf`; checks only that the length
    /// covers the header itself.
    pub fn parse(buf: &[u8]) -> Result<Header, DecodeError> {
        let mut r = Reader::new(buf, Part::Header);
        let h = Header {
            version: r.u8()?,
            msg_type: r.u8()?,
            length: r.u16()?,
            xid: r.u32()?,
        };
        if usize::from(h.length) < HEADER_LEN {
            return Err(DecodeError::BadLength {
                part: Part::Header,
                length: h.length.into(),
            });
        }
        Ok(h)
    }

    pub(crate) fn write(out: &mut Vec<u8>, msg_type: u8, xid: u32) {
        out.extend_from_slice(&[OFP13_VERSION, msg_type, 0, 0]);
        out.extend_from_slice(&xid.to_be_bytes());
    }
}

/// What the front of a byte stream holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A whole message of this many bytes is at the front.
    Complete(usize),
    /// The front message is incomplete: at least this many more bytes are
    /// needed before trying again.
    NeedMore(usize),
}

/// Finds the first message in a stream. An error (a length below 8) means
/// the stream cannot be resynchronised and the connection should close.
pub fn next_frame(stream: &[u8]) -> Result<Frame, DecodeError> {
    if stream.len() < HEADER_LEN {
        return Ok(Frame::NeedMore(HEADER_LEN - stream.len()));
    }
    let len = usize::from(Header::parse(stream)?.length);
    if stream.len() < len {
        return Ok(Frame::NeedMore(len - stream.len()));
    }
    Ok(Frame::Complete(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_a_stream() {
        let two = [4, 0, 0, 8, 0, 0, 0, 1, 4, 2, 0, 10, 0, 0, 0, 2, 0xaa];
        assert_eq!(next_frame(&two[..3]), Ok(Frame::NeedMore(5)));
        assert_eq!(next_frame(&two), Ok(Frame::Complete(8)));
        assert_eq!(next_frame(&two[8..]), Ok(Frame::NeedMore(1)));
        assert!(next_frame(&[4, 0, 0, 7, 0, 0, 0, 0]).is_err());
    }
}
