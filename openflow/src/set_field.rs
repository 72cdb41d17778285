//! The OFPAT_SET_FIELD action's wire form (an OXM TLV padded to 8 bytes),
//! shared by action lists and the actions nested in a ct action.

use crate::error::{DecodeError, Part};
use crate::oxm::OxmEntry;
use crate::wire::{pad_to_8, patch_len, put_u16, Reader};

pub(crate) const OFPAT_SET_FIELD: u16 = 25;

/// Decodes the body after the (type, length) header. OpenFlow 1.3
/// set_field has no mask (OVS refuses one too).
pub(crate) fn decode(body: &mut Reader) -> Result<OxmEntry, DecodeError> {
    let entry = OxmEntry::decode(body).map_err(|e| match e {
        DecodeError::UnknownField { class, field } => DecodeError::BadSetType { class, field },
        DecodeError::BadFieldLength { name, length } => DecodeError::BadSetLength { name, length },
        DecodeError::MaskNotAllowed(name) => DecodeError::BadSetArgument(name),
        other => other,
    })?;
    if entry.mask.is_some() {
        let name = entry.field.info().map_or("?", |i| i.name);
        return Err(DecodeError::BadSetArgument(name));
    }
    if body.remaining() >= 8 || body.rest().iter().any(|b| *b != 0) {
        return Err(DecodeError::BadLength {
            part: Part::Action,
            length: 0,
        });
    }
    Ok(entry)
}

/// Writes the whole action.
pub(crate) fn encode(entry: &OxmEntry, out: &mut Vec<u8>) {
    let start = out.len();
    put_u16(out, OFPAT_SET_FIELD);
    put_u16(out, 0);
    entry.encode(out);
    pad_to_8(out, start);
    patch_len(out, start, 2);
}
