//! Why a message failed to decode, and which OpenFlow error (type, code) a
//! switch answers it with.
//!
//! Each variant names the offending thing (message type, field class and
//! number, action type, experimenter subtype) so a log line says what the
//! controller sent; [`DecodeError::error_type_code`] maps it onto the
//! OFPET_*/code pair of the ERROR reply.

use crate::error_code::{
    bad_action, bad_instruction, bad_match, bad_request, error_type, flow_mod_failed,
};

/// The structure a length or truncation problem was found in; it decides
/// which error type a BAD_LEN is reported under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Header,
    Body,
    Match,
    Instruction,
    Action,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{part:?} truncated: need {need} bytes, have {have}")]
    Truncated {
        part: Part,
        need: usize,
        have: usize,
    },
    #[error("{part:?} has a bad length {length}")]
    BadLength { part: Part, length: usize },
    #[error("message length {header} in header, {actual} bytes given")]
    LengthMismatch { header: usize, actual: usize },
    #[error("unsupported OpenFlow version {0:#04x}")]
    BadVersion(u8),
    #[error("unknown message type {0}")]
    UnknownMessageType(u8),
    #[error("unknown multipart type {0}")]
    UnknownMultipartType(u16),
    #[error("unknown flow_mod command {0}")]
    BadCommand(u8),
    #[error("match type {0} is not OXM (1)")]
    BadMatchType(u16),
    #[error("unknown match field class {class:#06x} field {field}")]
    UnknownField { class: u16, field: u8 },
    #[error("match field {name} has length {length}")]
    BadFieldLength { name: &'static str, length: u8 },
    #[error("match field {0} appears twice")]
    DuplicateField(&'static str),
    #[error("match field {0} cannot be masked")]
    MaskNotAllowed(&'static str),
    #[error("unknown instruction type {0}")]
    UnknownInstruction(u16),
    #[error("unsupported instruction {0}")]
    UnsupportedInstruction(&'static str),
    #[error("unknown action type {0}")]
    UnknownAction(u16),
    #[error("unsupported action {0}")]
    UnsupportedAction(&'static str),
    #[error("unknown action experimenter {0:#010x}")]
    UnknownExperimenter(u32),
    #[error("unknown Nicira action subtype {0}")]
    UnknownNiciraSubtype(u16),
    #[error("unsupported Nicira action {name} (subtype {subtype})")]
    UnsupportedNiciraAction { name: &'static str, subtype: u16 },
    #[error("{0}: bad argument")]
    BadArgument(&'static str),
    #[error("set_field on unknown field class {class:#06x} field {field}")]
    BadSetType { class: u16, field: u8 },
    #[error("set_field on {name} with length {length}")]
    BadSetLength { name: &'static str, length: u8 },
    #[error("set_field on {0}: bad value or mask")]
    BadSetArgument(&'static str),
}

impl DecodeError {
    /// The (OFPET_*, code) of the ERROR message that answers this failure.
    pub fn error_type_code(&self) -> (u16, u16) {
        use DecodeError as E;
        match self {
            E::Truncated { part, .. } | E::BadLength { part, .. } => bad_len(*part),
            E::LengthMismatch { .. } => (error_type::BAD_REQUEST, bad_request::BAD_LEN),
            E::BadVersion(_) => (error_type::BAD_REQUEST, bad_request::BAD_VERSION),
            E::UnknownMessageType(_) => (error_type::BAD_REQUEST, bad_request::BAD_TYPE),
            E::UnknownMultipartType(_) => (error_type::BAD_REQUEST, bad_request::BAD_MULTIPART),
            E::BadCommand(_) => (error_type::FLOW_MOD_FAILED, flow_mod_failed::BAD_COMMAND),
            E::BadMatchType(_) => (error_type::BAD_MATCH, bad_match::BAD_TYPE),
            E::UnknownField { .. } => (error_type::BAD_MATCH, bad_match::BAD_FIELD),
            E::BadFieldLength { .. } => (error_type::BAD_MATCH, bad_match::BAD_LEN),
            E::DuplicateField(_) => (error_type::BAD_MATCH, bad_match::DUP_FIELD),
            E::MaskNotAllowed(_) => (error_type::BAD_MATCH, bad_match::BAD_MASK),
            E::UnknownInstruction(_) => {
                (error_type::BAD_INSTRUCTION, bad_instruction::UNKNOWN_INST)
            }
            E::UnsupportedInstruction(_) => {
                (error_type::BAD_INSTRUCTION, bad_instruction::UNSUP_INST)
            }
            E::UnknownAction(_) | E::UnsupportedAction(_) => {
                (error_type::BAD_ACTION, bad_action::BAD_TYPE)
            }
            E::UnknownExperimenter(_) => (error_type::BAD_ACTION, bad_action::BAD_EXPERIMENTER),
            E::UnknownNiciraSubtype(_) | E::UnsupportedNiciraAction { .. } => {
                (error_type::BAD_ACTION, bad_action::BAD_EXP_TYPE)
            }
            E::BadArgument(_) => (error_type::BAD_ACTION, bad_action::BAD_ARGUMENT),
            E::BadSetType { .. } => (error_type::BAD_ACTION, bad_action::BAD_SET_TYPE),
            E::BadSetLength { .. } => (error_type::BAD_ACTION, bad_action::BAD_SET_LEN),
            E::BadSetArgument(_) => (error_type::BAD_ACTION, bad_action::BAD_SET_ARGUMENT),
        }
    }
}

fn bad_len(part: Part) -> (u16, u16) {
    match part {
        Part::Header | Part::Body => (error_type::BAD_REQUEST, bad_request::BAD_LEN),
        Part::Match => (error_type::BAD_MATCH, bad_match::BAD_LEN),
        Part::Instruction => (error_type::BAD_INSTRUCTION, bad_instruction::BAD_LEN),
        Part::Action => (error_type::BAD_ACTION, bad_action::BAD_LEN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers are the OpenFlow 1.3.5 specification's, written out so
    /// a wrong constant fails here.
    #[test]
    fn errors_map_to_spec_type_and_code() {
        let cases = [
            (DecodeError::BadVersion(1), (1, 0)),
            (DecodeError::UnknownMessageType(40), (1, 1)),
            (DecodeError::UnknownMultipartType(11), (1, 2)),
            (
                DecodeError::Truncated {
                    part: Part::Body,
                    need: 8,
                    have: 2,
                },
                (1, 6),
            ),
            (DecodeError::UnknownAction(99), (2, 0)),
            (
                DecodeError::BadLength {
                    part: Part::Action,
                    length: 7,
                },
                (2, 1),
            ),
            (DecodeError::UnknownExperimenter(7), (2, 2)),
            (DecodeError::UnknownNiciraSubtype(99), (2, 3)),
            (
                DecodeError::BadSetType {
                    class: 0x8000,
                    field: 40,
                },
                (2, 13),
            ),
            (
                DecodeError::BadSetLength {
                    name: "reg0",
                    length: 3,
                },
                (2, 14),
            ),
            (DecodeError::BadSetArgument("reg0"), (2, 15)),
            (DecodeError::UnknownInstruction(9), (3, 0)),
            (DecodeError::UnsupportedInstruction("meter"), (3, 1)),
            (
                DecodeError::BadLength {
                    part: Part::Instruction,
                    length: 4,
                },
                (3, 7),
            ),
            (DecodeError::BadMatchType(0), (4, 0)),
            (
                DecodeError::Truncated {
                    part: Part::Match,
                    need: 4,
                    have: 1,
                },
                (4, 1),
            ),
            (
                DecodeError::UnknownField {
                    class: 0x8000,
                    field: 40,
                },
                (4, 6),
            ),
            (DecodeError::MaskNotAllowed("in_port"), (4, 8)),
            (DecodeError::DuplicateField("in_port"), (4, 10)),
            (DecodeError::BadCommand(9), (5, 6)),
        ];
        for (err, want) in cases {
            assert_eq!(err.error_type_code(), want, "{err}");
        }
    }
}
