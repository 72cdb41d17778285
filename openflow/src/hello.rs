//! HELLO and version negotiation (OpenFlow 1.3.5 §6.3.1).
//!
//! A HELLO may carry a version bitmap element; when both sides send one,
//! the agreed version is the highest bit set in both, otherwise it is the
//! lower of the two header versions. This switch speaks only 1.3, so
//! negotiation either yields 0x04 or the HELLO_FAILED/INCOMPATIBLE error
//! to send before closing.

use crate::error::DecodeError;
use crate::error_code::{error_type, hello_failed};
use crate::error_msg::ErrorMsg;
use crate::header::OFP13_VERSION;
use crate::wire::{pad_to_8, put_u16, put_u32, Reader};

const HELLO_ELEM_VERSIONBITMAP: u16 = 1;

/// A HELLO's elements. Unknown element types are skipped, as the
/// specification requires.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hello {
    /// The version bitmap (bit n of word w = version 32w + n), if sent.
    pub version_bitmap: Option<Vec<u32>>,
}

impl Hello {
    /// The HELLO this switch sends: a bitmap offering 1.3 only.
    pub fn ofp13() -> Hello {
        Hello {
            version_bitmap: Some(vec![1 << OFP13_VERSION]),
        }
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<Hello, DecodeError> {
        let mut hello = Hello::default();
        while r.remaining() >= 4 {
            let kind = r.u16()?;
            let len = usize::from(r.u16()?);
            if len < 4 {
                return Err(DecodeError::BadLength {
                    part: crate::error::Part::Body,
                    length: len,
                });
            }
            let mut body = r.sub(len - 4)?;
            if kind == HELLO_ELEM_VERSIONBITMAP {
                let mut words = Vec::new();
                while body.remaining() >= 4 {
                    words.push(body.u32()?);
                }
                hello.version_bitmap = Some(words);
            }
            r.skip((len.div_ceil(8) * 8 - len).min(r.remaining()))?;
        }
        Ok(hello)
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        if let Some(words) = &self.version_bitmap {
            let start = out.len();
            put_u16(out, HELLO_ELEM_VERSIONBITMAP);
            put_u16(out, (4 + 4 * words.len()) as u16);
            for w in words {
                put_u32(out, *w);
            }
            pad_to_8(out, start);
        }
    }

    fn supports(&self, version: u8) -> bool {
        match &self.version_bitmap {
            Some(words) => {
                let (w, bit) = (usize::from(version / 32), version % 32);
                words.get(w).is_some_and(|word| word & (1 << bit) != 0)
            }
            None => true,
        }
    }
}

/// Agrees on a version with a peer whose HELLO had `peer_version` in its
/// header. Returns the version (always 0x04 here) or the ERROR to send.
pub fn negotiate_version(peer_version: u8, peer: &Hello) -> Result<u8, ErrorMsg> {
    let agreed = match &peer.version_bitmap {
        Some(_) => peer.supports(OFP13_VERSION),
        None => peer_version >= OFP13_VERSION,
    };
    if agreed {
        return Ok(OFP13_VERSION);
    }
    Err(ErrorMsg {
        error_type: error_type::HELLO_FAILED,
        code: hello_failed::INCOMPATIBLE,
        data: format!(
            "this switch speaks OpenFlow 1.3 (0x04) only; peer offered {peer_version:#04x}"
        )
        .into_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates() {
        let both = Hello {
            version_bitmap: Some(vec![(1 << 1) | (1 << 4)]),
        };
        assert_eq!(negotiate_version(4, &both), Ok(4));
        let of10 = Hello {
            version_bitmap: Some(vec![1 << 1]),
        };
        assert_eq!(
            negotiate_version(4, &of10).unwrap_err().code,
            hello_failed::INCOMPATIBLE
        );
        assert_eq!(negotiate_version(6, &Hello::default()), Ok(4));
        assert!(negotiate_version(1, &Hello::default()).is_err());
    }
}
