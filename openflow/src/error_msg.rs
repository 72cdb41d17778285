//! The ERROR message: type, code and data (the failed request's first
//! bytes, or text for HELLO_FAILED).

use crate::error::DecodeError;
use crate::wire::{put_u16, Reader};

/// An ERROR message. `data` is, by convention, at least the first 64
/// bytes of the request that failed (or ASCII text for HELLO_FAILED).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMsg {
    pub error_type: u16,
    pub code: u16,
    pub data: Vec<u8>,
}

impl ErrorMsg {
    /// The reply to a request that failed with `err`: its type and code
    /// from [`DecodeError::error_type_code`], and the request's first 64
    /// bytes as data.
    pub fn for_request(err: &DecodeError, request: &[u8]) -> ErrorMsg {
        let (error_type, code) = err.error_type_code();
        let data = request[..request.len().min(64)].to_vec();
        ErrorMsg {
            error_type,
            code,
            data,
        }
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<ErrorMsg, DecodeError> {
        let error_type = r.u16()?;
        let code = r.u16()?;
        Ok(ErrorMsg {
            error_type,
            code,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u16(out, self.error_type);
        put_u16(out, self.code);
        out.extend_from_slice(&self.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Part;

    #[test]
    fn reply_carries_code_and_the_first_64_bytes() {
        let request: Vec<u8> = (0..100).collect();
        let err = DecodeError::Truncated {
            part: Part::Match,
            need: 8,
            have: 3,
        };
        let reply = ErrorMsg::for_request(&err, &request);
        assert_eq!((reply.error_type, reply.code), (4, 1));
        assert_eq!(reply.data, request[..64]);
        let mut out = Vec::new();
        reply.encode(&mut out);
        assert_eq!(&out[..4], &[0, 4, 0, 1]);
        let back = ErrorMsg::decode(&mut Reader::new(&out, Part::Body)).unwrap();
        assert_eq!(back, reply);
    }
}
