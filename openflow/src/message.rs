//! The OpenFlow 1.3 messages this switch sends and receives, as one enum,
//! with `decode` (exactly one message's bytes → header and message) and
//! `encode` (message and xid → bytes).
//!
//! HELLO is accepted at any version (negotiation needs the peer's); every
//! other message must be version 0x04. Fixed-size messages must have
//! exactly their size. GET_ASYNC_REPLY and SET_ASYNC are kept raw.

use crate::config::{Role, SwitchConfig, SwitchFeatures};
use crate::error::{DecodeError, Part};
use crate::error_msg::ErrorMsg;
use crate::flow_mod::{FlowMod, FlowRemoved};
use crate::header::{msg_type as T, Header, HEADER_LEN, OFP13_VERSION};
use crate::hello::Hello;
use crate::multipart::{MultipartReply, MultipartRequest};
use crate::packet::{PacketIn, PacketOut};
use crate::port::PortStatus;
use crate::wire::{patch_len, put_u32, Reader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Hello(Hello),
    Error(ErrorMsg),
    EchoRequest(Vec<u8>),
    EchoReply(Vec<u8>),
    /// `experimenter` and `exp_type`, then the payload untouched.
    Experimenter {
        experimenter: u32,
        exp_type: u32,
        data: Vec<u8>,
    },
    FeaturesRequest,
    FeaturesReply(SwitchFeatures),
    GetConfigRequest,
    GetConfigReply(SwitchConfig),
    SetConfig(SwitchConfig),
    PacketIn(PacketIn),
    FlowRemoved(FlowRemoved),
    PortStatus(PortStatus),
    PacketOut(PacketOut),
    FlowMod(FlowMod),
    MultipartRequest(MultipartRequest),
    MultipartReply(MultipartReply),
    BarrierRequest,
    BarrierReply,
    RoleRequest(Role),
    RoleReply(Role),
    GetAsyncRequest,
    GetAsyncReply(Vec<u8>),
    SetAsync(Vec<u8>),
}

impl Message {
    /// The `ofp_type` of this message.
    pub fn msg_type(&self) -> u8 {
        match self {
            Message::Hello(_) => T::HELLO,
            Message::Error(_) => T::ERROR,
            Message::EchoRequest(_) => T::ECHO_REQUEST,
            Message::EchoReply(_) => T::ECHO_REPLY,
            Message::Experimenter { .. } => T::EXPERIMENTER,
            Message::FeaturesRequest => T::FEATURES_REQUEST,
            Message::FeaturesReply(_) => T::FEATURES_REPLY,
            Message::GetConfigRequest => T::GET_CONFIG_REQUEST,
            Message::GetConfigReply(_) => T::GET_CONFIG_REPLY,
            Message::SetConfig(_) => T::SET_CONFIG,
            Message::PacketIn(_) => T::PACKET_IN,
            Message::FlowRemoved(_) => T::FLOW_REMOVED,
            Message::PortStatus(_) => T::PORT_STATUS,
            Message::PacketOut(_) => T::PACKET_OUT,
            Message::FlowMod(_) => T::FLOW_MOD,
            Message::MultipartRequest(_) => T::MULTIPART_REQUEST,
            Message::MultipartReply(_) => T::MULTIPART_REPLY,
            Message::BarrierRequest => T::BARRIER_REQUEST,
            Message::BarrierReply => T::BARRIER_REPLY,
            Message::RoleRequest(_) => T::ROLE_REQUEST,
            Message::RoleReply(_) => T::ROLE_REPLY,
            Message::GetAsyncRequest => T::GET_ASYNC_REQUEST,
            Message::GetAsyncReply(_) => T::GET_ASYNC_REPLY,
            Message::SetAsync(_) => T::SET_ASYNC,
        }
    }

    /// Decodes exactly one message: `buf` must be as long as its header
    /// says (use [`crate::next_frame`] to cut a stream).
    pub fn decode(buf: &[u8]) -> Result<(Header, Message), DecodeError> {
        let header = Header::parse(buf)?;
        if usize::from(header.length) != buf.len() {
            return Err(DecodeError::LengthMismatch {
                header: header.length.into(),
                actual: buf.len(),
            });
        }
        if header.version != OFP13_VERSION && header.msg_type != T::HELLO {
            return Err(DecodeError::BadVersion(header.version));
        }
        let mut r = Reader::new(&buf[HEADER_LEN..], Part::Body);
        let msg = decode_body(header.msg_type, &mut r)?;
        if !r.is_empty() {
            return Err(DecodeError::BadLength {
                part: Part::Body,
                length: buf.len(),
            });
        }
        Ok((header, msg))
    }

    /// Encodes with version 0x04 and `xid`.
    pub fn encode(&self, xid: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        Header::write(&mut out, self.msg_type(), xid);
        self.encode_body(&mut out);
        patch_len(&mut out, 0, 2);
        out
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            Message::Hello(h) => h.encode(out),
            Message::Error(e) => e.encode(out),
            Message::EchoRequest(d)
            | Message::EchoReply(d)
            | Message::GetAsyncReply(d)
            | Message::SetAsync(d) => out.extend_from_slice(d),
            Message::Experimenter {
                experimenter,
                exp_type,
                data,
            } => {
                put_u32(out, *experimenter);
                put_u32(out, *exp_type);
                out.extend_from_slice(data);
            }
            Message::FeaturesRequest
            | Message::GetConfigRequest
            | Message::BarrierRequest
            | Message::BarrierReply
            | Message::GetAsyncRequest => {}
            Message::FeaturesReply(f) => f.encode(out),
            Message::GetConfigReply(c) | Message::SetConfig(c) => c.encode(out),
            Message::PacketIn(p) => p.encode(out),
            Message::FlowRemoved(f) => f.encode(out),
            Message::PortStatus(p) => p.encode(out),
            Message::PacketOut(p) => p.encode(out),
            Message::FlowMod(f) => f.encode(out),
            Message::MultipartRequest(m) => m.encode(out),
            Message::MultipartReply(m) => m.encode(out),
            Message::RoleRequest(r) | Message::RoleReply(r) => r.encode(out),
        }
    }
}

fn decode_body(msg_type: u8, r: &mut Reader) -> Result<Message, DecodeError> {
    Ok(match msg_type {
        T::HELLO => Message::Hello(Hello::decode(r)?),
        T::ERROR => Message::Error(ErrorMsg::decode(r)?),
        T::ECHO_REQUEST => Message::EchoRequest(r.rest().to_vec()),
        T::ECHO_REPLY => Message::EchoReply(r.rest().to_vec()),
        T::EXPERIMENTER => Message::Experimenter {
            experimenter: r.u32()?,
            exp_type: r.u32()?,
            data: r.rest().to_vec(),
        },
        T::FEATURES_REQUEST => Message::FeaturesRequest,
        T::FEATURES_REPLY => Message::FeaturesReply(SwitchFeatures::decode(r)?),
        T::GET_CONFIG_REQUEST => Message::GetConfigRequest,
        T::GET_CONFIG_REPLY => Message::GetConfigReply(SwitchConfig::decode(r)?),
        T::SET_CONFIG => Message::SetConfig(SwitchConfig::decode(r)?),
        T::PACKET_IN => Message::PacketIn(PacketIn::decode(r)?),
        T::FLOW_REMOVED => Message::FlowRemoved(FlowRemoved::decode(r)?),
        T::PORT_STATUS => Message::PortStatus(PortStatus::decode(r)?),
        T::PACKET_OUT => Message::PacketOut(PacketOut::decode(r)?),
        T::FLOW_MOD => Message::FlowMod(FlowMod::decode(r)?),
        T::MULTIPART_REQUEST => Message::MultipartRequest(MultipartRequest::decode(r)?),
        T::MULTIPART_REPLY => Message::MultipartReply(MultipartReply::decode(r)?),
        T::BARRIER_REQUEST => Message::BarrierRequest,
        T::BARRIER_REPLY => Message::BarrierReply,
        T::ROLE_REQUEST => Message::RoleRequest(Role::decode(r)?),
        T::ROLE_REPLY => Message::RoleReply(Role::decode(r)?),
        T::GET_ASYNC_REQUEST => Message::GetAsyncRequest,
        T::GET_ASYNC_REPLY => Message::GetAsyncReply(r.rest().to_vec()),
        T::SET_ASYNC => Message::SetAsync(r.rest().to_vec()),
        other => return Err(DecodeError::UnknownMessageType(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_type_names_itself() {
        let err = Message::decode(&[4, 15, 0, 8, 0, 0, 0, 1]).unwrap_err();
        assert_eq!(err, DecodeError::UnknownMessageType(15));
        assert_eq!(err.error_type_code(), (1, 1));
    }

    #[test]
    fn fixed_messages_must_be_exact() {
        let long_barrier = [4, 20, 0, 9, 0, 0, 0, 1, 0];
        assert!(matches!(
            Message::decode(&long_barrier),
            Err(DecodeError::BadLength { .. })
        ));
        assert_eq!(
            Message::decode(&[4, 20, 0, 8, 0, 0, 0, 7]).unwrap().1,
            Message::BarrierRequest
        );
        assert_eq!(
            Message::decode(&[1, 20, 0, 8, 0, 0, 0, 7]),
            Err(DecodeError::BadVersion(1))
        );
    }
}
