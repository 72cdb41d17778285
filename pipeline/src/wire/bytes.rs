//! Big-endian reads and writes at a field's offset: the one place that
//! turns header bytes into numbers and back.
//!
//! Design: none of these panics. A read past the end gives zero and a
//! write past the end does nothing; the views call them only for fields
//! inside the length they checked at construction, so with the offsets
//! constant and the check in sight the compiler reduces each to a plain
//! load or store.

use super::mac::Mac;
use core::ops::Range;

/// The first `N` bytes of `b` as an array, or zeros if `b` is shorter.
///
/// A view's getters read their fields from `fixed::<HEADER_LEN>(buffer)`:
/// `new_checked` made sure the bytes are there, and reads from an array of
/// known length compile to plain (and combinable) loads.
#[inline(always)]
pub fn fixed<const N: usize>(b: &[u8]) -> &[u8; N] {
    match b.first_chunk::<N>() {
        Some(h) => h,
        None => &[0; N],
    }
}

/// The `N` bytes at `at`, if the buffer holds them.
#[inline(always)]
fn chunk<const N: usize>(b: &[u8], at: usize) -> Option<&[u8; N]> {
    b.get(at..).and_then(|s| s.first_chunk::<N>())
}

#[inline(always)]
fn chunk_mut<const N: usize>(b: &mut [u8], at: usize) -> Option<&mut [u8; N]> {
    b.get_mut(at..).and_then(|s| s.first_chunk_mut::<N>())
}

#[inline(always)]
pub fn read_u8(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

#[inline(always)]
pub fn write_u8(b: &mut [u8], at: usize, v: u8) {
    if let Some(x) = b.get_mut(at) {
        *x = v;
    }
}

#[inline(always)]
pub fn read_u16(b: &[u8], field: Range<usize>) -> u16 {
    chunk::<2>(b, field.start).map_or(0, |c| u16::from_be_bytes(*c))
}

#[inline(always)]
pub fn write_u16(b: &mut [u8], field: Range<usize>, v: u16) {
    if let Some(c) = chunk_mut::<2>(b, field.start) {
        *c = v.to_be_bytes();
    }
}

#[inline(always)]
pub fn read_u32(b: &[u8], field: Range<usize>) -> u32 {
    chunk::<4>(b, field.start).map_or(0, |c| u32::from_be_bytes(*c))
}

#[inline(always)]
pub fn write_u32(b: &mut [u8], field: Range<usize>, v: u32) {
    if let Some(c) = chunk_mut::<4>(b, field.start) {
        *c = v.to_be_bytes();
    }
}

/// `N` bytes as they are (addresses).
#[inline(always)]
pub fn read_bytes<const N: usize>(b: &[u8], field: Range<usize>) -> [u8; N] {
    chunk::<N>(b, field.start).copied().unwrap_or([0; N])
}

#[inline(always)]
pub fn write_bytes<const N: usize>(b: &mut [u8], field: Range<usize>, v: [u8; N]) {
    if let Some(c) = chunk_mut::<N>(b, field.start) {
        *c = v;
    }
}

#[inline(always)]
pub fn read_mac(b: &[u8], field: Range<usize>) -> Mac {
    Mac(read_bytes(b, field))
}

#[inline(always)]
pub fn write_mac(b: &mut [u8], field: Range<usize>, m: Mac) {
    write_bytes(b, field, m.0)
}

/// The bytes of `range`, or none if the buffer is shorter.
#[inline(always)]
pub fn slice(b: &[u8], range: Range<usize>) -> &[u8] {
    b.get(range).unwrap_or(&[])
}

#[inline(always)]
pub fn slice_mut(b: &mut [u8], range: Range<usize>) -> &mut [u8] {
    b.get_mut(range).unwrap_or(&mut [])
}

/// The bytes from `at` to the end (where a header starts), or none.
#[inline(always)]
pub fn rest_mut(b: &mut [u8], at: usize) -> &mut [u8] {
    b.get_mut(at..).unwrap_or(&mut [])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_are_big_endian_and_never_panic() {
        let mut b = [0u8; 6];
        write_u16(&mut b, 0..2, 0x1234);
        write_u32(&mut b, 2..6, 0xdead_beef);
        assert_eq!(b, [0x12, 0x34, 0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(read_u16(&b, 0..2), 0x1234);
        assert_eq!(read_u32(&b, 2..6), 0xdead_beef);
        assert_eq!(read_mac(&b, 0..6), Mac(b));
        // Out of range: zero, no write, no panic.
        assert_eq!(read_u16(&b, 5..7), 0);
        assert_eq!(read_u32(&b, usize::MAX..usize::MAX), 0);
        assert_eq!(read_u8(&b, 6), 0);
        write_u32(&mut b, 4..8, 0);
        write_u8(&mut b, 9, 1);
        assert_eq!(b, [0x12, 0x34, 0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(slice(&b, 4..9), &[] as &[u8]);
        assert_eq!(fixed::<2>(&b), &[0x12, 0x34]);
        assert_eq!(fixed::<7>(&b), &[0; 7]);
        assert_eq!(slice_mut(&mut b, 7..9), &mut [] as &mut [u8]);
        assert_eq!(rest_mut(&mut b, 4), &mut [0xbe, 0xef]);
        assert_eq!(rest_mut(&mut b, 7), &mut [] as &mut [u8]);
    }
}
