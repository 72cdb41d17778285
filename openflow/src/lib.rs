//! An OpenFlow 1.3 codec for the subset a switch needs under Neutron's
//! OVS agent: bytes in, typed messages out, and back, byte for byte.
//! No sockets, no threads, no clock.
//!
//! - [`next_frame`] cuts a byte stream into messages by header length;
//!   [`Message::decode`] / [`Message::encode`] convert one message.
//! - [`negotiate_version`] answers a peer's HELLO.
//! - Decoding never panics: every failure is a [`DecodeError`] naming what
//!   was wrong, and [`DecodeError::error_type_code`] gives the ERROR
//!   (type, code) to answer with ([`ErrorMsg::for_request`] builds it).
//! - Matches are OXM entries ([`Match`], [`OxmEntry`], [`FIELDS`]),
//!   including Nicira NXM registers and conntrack fields; actions include
//!   the Nicira extensions Neutron uses ([`NiciraAction`]).
//! - [`flow_mod_text`] renders a FLOW_MOD in ovs-ofctl's flow syntax.
//! - [`MultipartReply::split`] keeps each reply message under 64 KiB.
//!
//! Module map, one concern each: `wire` (bounded reads), `header`
//! (header, types, framing), `hello`, `error` (decode errors),
//! `error_code` (OFPET types and codes), `error_msg` (the ERROR message), `message` (the enum),
//! `config` (features, config, role), `flow_mod`, `packet`, `port`,
//! `multipart`, `oxm` (matches), `instruction`, `action`, `set_field`, `nicira`,
//! `text` (flows and matches as text), `text_action` (actions as text),
//! `text_value` (single values as text).

#![deny(unsafe_code)]

mod action;
mod config;
mod error;
mod error_code;
mod error_msg;
mod flow_mod;
mod header;
mod hello;
mod instruction;
mod message;
mod multipart;
mod nicira;
mod oxm;
mod packet;
mod port;
mod set_field;
mod text;
mod text_action;
mod text_value;
mod wire;

pub use action::{port as port_no, Action, OFPCML_NO_BUFFER};
pub use config::{capabilities, config_flags, controller_role, Role, SwitchConfig, SwitchFeatures};
pub use error::{DecodeError, Part};
pub use error_code::{
    bad_action, bad_instruction, bad_match, bad_request, error_type, flow_mod_failed, hello_failed,
    role_request_failed, switch_config_failed,
};
pub use error_msg::ErrorMsg;
pub use flow_mod::{
    flow_mod_flags, flow_removed_reason, FlowMod, FlowModCommand, FlowRemoved, GROUP_ANY,
    NO_BUFFER, TABLE_ALL,
};
pub use header::{msg_type, next_frame, Frame, Header, HEADER_LEN, OFP13_VERSION};
pub use hello::{negotiate_version, Hello};
pub use instruction::Instruction;
pub use message::Message;
pub use multipart::{
    multipart_type, table_features_entry, AggregateStats, Desc, FlowStats, FlowStatsRequest,
    MultipartReply, MultipartReplyBody, MultipartRequest, MultipartRequestBody, PortStats,
    TableStats, MAX_MESSAGE_LEN, MULTIPART_MORE, TABLE_FEATURES_LEN,
};
pub use nicira::{
    ct_flags, nat_flags, subtype as nx_subtype, Conntrack, CtAction, CtZone, Nat, NiciraAction,
    Subfield, CT_RECIRC_NONE, NX_VENDOR_ID,
};
pub use oxm::{
    field_of_header, split_header, Field, FieldInfo, Match, OxmEntry, Slot, ValueFormat,
    CLASS_NXM_0, CLASS_NXM_1, CLASS_OPENFLOW_BASIC, FIELDS, OFPVID_NONE, OFPVID_PRESENT,
};
pub use packet::{packet_in_reason, PacketIn, PacketOut};
pub use port::{port_config, port_reason, port_state, PortDesc, PortStatus};
pub use text::{flow_mod_text, match_text, DEFAULT_PRIORITY};
pub use text_action::{actions_text, instructions_text};
