//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Design: a rewrite never re-reads the payload. It patches the stored
//! checksum with `HC' = ~(~HC + ~m + m')` for each 16-bit word `m` that
//! became `m'` (eqn. 3 of RFC 1624), which is what `update` computes; the
//! views' `update_*` setters call it. A full sum (`checksum`) is for frames
//! the pipeline builds and for the rare case the incremental form cannot
//! settle (an ICMP checksum that comes out as zero).

/// The Internet checksum of `data`, ready to store.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum_words(data, 0))
}

/// One's-complement sum of `data` as big-endian 16-bit words (an odd last
/// byte is the high half of a word), added to `acc`; not folded.
#[inline]
pub fn sum_words(data: &[u8], mut acc: u64) -> u64 {
    // Four bytes at a time: a big-endian 32-bit word is two 16-bit words,
    // and 2^16 = 1 in one's-complement arithmetic, so folding the wide sum
    // gives the 16-bit sum of the words (RFC 1071 §2). The accumulator
    // cannot overflow below 2^32 such words.
    let (quads, rest) = data.as_chunks::<4>();
    for q in quads {
        acc += u32::from_be_bytes(*q) as u64;
    }
    match rest {
        [a, b, c] => acc + u16::from_be_bytes([*a, *b]) as u64 + ((*c as u64) << 8),
        [a, b] => acc + u16::from_be_bytes([*a, *b]) as u64,
        [a] => acc + ((*a as u64) << 8),
        _ => acc,
    }
}

/// Folds a wide one's-complement sum to 16 bits.
#[inline(always)]
pub fn fold(mut s: u64) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// RFC 1624 eqn. 3: the checksum `csum` after one 16-bit word changed
/// from `old` to `new`.
///
/// A changed byte can be given as the word it sits in with the other byte
/// zero (`(ttl as u16) << 8` for a byte at an even offset): the unchanged
/// byte cancels out of the sum exactly.
#[inline(always)]
pub fn update(csum: u16, old: u16, new: u16) -> u16 {
    let s = (!csum as u64) + (!old as u64 & 0xffff) + new as u64;
    !fold(s)
}

/// `update` for a 32-bit field (two words, one after the other).
#[inline(always)]
pub fn update32(csum: u16, old: u32, new: u32) -> u16 {
    let c = update(csum, (old >> 16) as u16, (new >> 16) as u16);
    update(c, old as u16, new as u16)
}

/// `update` for several changed words at once, folded once at the end.
pub fn update_words(csum: u16, changes: &[(u16, u16)]) -> u16 {
    let mut s = !csum as u64;
    for &(old, new) in changes {
        s += (!old as u64 & 0xffff) + new as u64;
    }
    !fold(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example_sums_to_the_known_value() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum_words(&data, 0)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
        // An odd length pads with a zero byte.
        assert_eq!(checksum(&[0x12]), !0x1200);
    }

    #[test]
    fn incremental_update_equals_recompute() {
        // A real IPv4 header (Wikipedia's example, checksum 0xb861).
        let mut hdr = [
            0x45u8, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&hdr), 0, "0xb861 verifies");
        let c = u16::from_be_bytes([hdr[10], hdr[11]]);
        // A 32-bit field.
        let new = 0xac18_0005u32;
        hdr[12..16].copy_from_slice(&new.to_be_bytes());
        let c = update32(c, 0xc0a8_0001, new);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&hdr), 0);
        // One byte given alone, and as its whole word: the same result.
        let (ttl, proto) = (hdr[8], hdr[9]);
        hdr[8] = ttl - 1;
        let by_byte = update(c, (ttl as u16) << 8, ((ttl - 1) as u16) << 8);
        let by_word = update(
            c,
            u16::from_be_bytes([ttl, proto]),
            u16::from_be_bytes([ttl - 1, proto]),
        );
        assert_eq!(by_byte, by_word);
        hdr[10..12].copy_from_slice(&by_byte.to_be_bytes());
        assert_eq!(checksum(&hdr), 0);
        // Several words at once.
        let c = update_words(by_byte, &[(0x0073, 0x0080), (0x0000, 0x1234)]);
        hdr[2..4].copy_from_slice(&0x0080u16.to_be_bytes());
        hdr[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&hdr), 0);
    }
}
