//! Bounds-checked big-endian reading and writing of OpenFlow structures.
//!
//! Every decoder reads through a [`Reader`], whose accessors return
//! [`DecodeError::Truncated`] instead of panicking, so no input can make a
//! decoder index out of bounds. Writers append to a `Vec<u8>`; structures
//! whose length sits in their own header are written with a placeholder
//! patched by [`patch_len`].

use crate::error::{DecodeError, Part};

/// A cursor over a byte slice that never reads past its end.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    part: Part,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], part: Part) -> Self {
        Reader { buf, pos: 0, part }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let have = self.remaining();
        if n > have {
            return Err(DecodeError::Truncated {
                part: self.part,
                need: n,
                have,
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// The rest of the buffer.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    pub(crate) fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        self.bytes(n).map(|_| ())
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Splits off the next `n` bytes as a reader of their own.
    pub(crate) fn sub(&mut self, n: usize) -> Result<Reader<'a>, DecodeError> {
        let part = self.part;
        Ok(Reader::new(self.bytes(n)?, part))
    }
}

/// Reads the (type, length) header of an 8-byte aligned TLV (an action
/// or instruction) and returns the type, the length and a reader over the
/// rest of it.
pub(crate) fn read_tlv<'a>(
    r: &mut Reader<'a>,
    part: Part,
) -> Result<(u16, usize, Reader<'a>), DecodeError> {
    let kind = r.u16()?;
    let len = usize::from(r.u16()?);
    if len < 8 || len % 8 != 0 {
        return Err(DecodeError::BadLength { part, length: len });
    }
    Ok((kind, len, Reader::new(r.bytes(len - 4)?, part)))
}

pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_zeros(out: &mut Vec<u8>, n: usize) {
    out.resize(out.len() + n, 0);
}

/// Pads `out` with zeros so that the structure started at `start` is a
/// multiple of 8 bytes long.
pub(crate) fn pad_to_8(out: &mut Vec<u8>, start: usize) {
    let len = out.len() - start;
    put_zeros(out, (8 - len % 8) % 8);
}

/// Writes the length of the structure started at `start` as a big-endian
/// u16 at `start + at` (structures here are far below 64 KiB; longer ones
/// are a caller bug and saturate).
pub(crate) fn patch_len(out: &mut [u8], start: usize, at: usize) {
    let len = u16::try_from(out.len() - start).unwrap_or(u16::MAX);
    out[start + at..start + at + 2].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded() {
        let mut r = Reader::new(&[1, 2, 3], Part::Body);
        assert_eq!(r.u16().unwrap(), 0x0102);
        assert_eq!(
            r.u16(),
            Err(DecodeError::Truncated {
                part: Part::Body,
                need: 2,
                have: 1
            })
        );
        assert_eq!(r.u8().unwrap(), 3);
        assert!(r.is_empty());
    }

    #[test]
    fn pads_to_eight() {
        let mut v = vec![9u8; 3];
        pad_to_8(&mut v, 1);
        assert_eq!(v.len(), 9);
        pad_to_8(&mut v, 1);
        assert_eq!(v.len(), 9);
    }
}
