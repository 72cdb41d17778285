//! Receive-side scaling: the Toeplitz hash a NIC computes over a packet's
//! IPv4 addresses and ports, and the receive queue (the worker) it picks.
//!
//! Why it lives in the dataplane: conntrack gives each worker the
//! connections its receive queue brings, and chooses source-NAT ports so
//! that a connection's replies hash back to the same queue. That only
//! holds when the NIC and this module agree, so the daemon programs its
//! DPDK ports with `Rss::key` and the default redirection table (entry
//! `i` → queue `i % n`), and its software backends (pcap, memory) split
//! their frames with `Rss::queue` too.
//!
//! The default key is the symmetric one (0x6d5a repeated): a flow's two
//! directions hash alike, so a connection without NAT is owned by one
//! worker in both directions. The hash is the one of Microsoft's RSS
//! specification (input: source address, destination address, source
//! port, destination port, in network order; ports only for TCP and UDP,
//! as a NIC's `IPV4_TCP`/`IPV4_UDP` hash types and `IPV4` for the rest).
//!
//! Design: the key is expanded once into a table per input byte (12 × 256
//! words), so a hash is 12 loads and XORs. Ownership: built once per
//! connection table; read-only after.

/// Bytes in an RSS key (the size NICs take for IPv4/IPv6 hashing).
pub const KEY_LEN: usize = 40;

/// The symmetric key: both directions of a flow hash to the same value.
pub const SYMMETRIC_KEY: [u8; KEY_LEN] = [
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
];

/// Entries of the redirection table the queue is read from (a NIC's is
/// 128 or larger; with `n` a power of two the choice is the same for any).
pub const RETA_SIZE: u32 = 128;

/// Bytes hashed: two IPv4 addresses and two ports.
const INPUT: usize = 12;

/// A key, expanded for hashing.
pub struct Rss {
    key: [u8; KEY_LEN],
    /// `table[i][b]`: the hash contribution of byte value `b` at input
    /// position `i`.
    table: Box<[[u32; 256]; INPUT]>,
}

impl Default for Rss {
    fn default() -> Self {
        Rss::new(SYMMETRIC_KEY)
    }
}

impl std::fmt::Debug for Rss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rss").field("key", &self.key).finish()
    }
}

impl Rss {
    pub fn new(key: [u8; KEY_LEN]) -> Rss {
        let mut table = Box::new([[0u32; 256]; INPUT]);
        for (i, row) in table.iter_mut().enumerate() {
            for bit in 0..8 {
                // The 32-bit window of the key starting at input bit
                // 8i + bit.
                let start = i * 8 + bit;
                let window = key_window(&key, start);
                for (b, slot) in row.iter_mut().enumerate() {
                    if b & (0x80 >> bit) != 0 {
                        *slot ^= window;
                    }
                }
            }
        }
        Rss { key, table }
    }

    /// The key the NIC must be programmed with.
    pub fn key(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    /// The Toeplitz hash of an IPv4 packet (addresses and, when `ports`,
    /// its transport ports).
    #[inline]
    pub fn hash(&self, src: u32, dst: u32, ports: Option<(u16, u16)>) -> u32 {
        let t = &self.table;
        let [a0, a1, a2, a3] = src.to_be_bytes();
        let [b0, b1, b2, b3] = dst.to_be_bytes();
        let mut h = t[0][a0 as usize]
            ^ t[1][a1 as usize]
            ^ t[2][a2 as usize]
            ^ t[3][a3 as usize]
            ^ t[4][b0 as usize]
            ^ t[5][b1 as usize]
            ^ t[6][b2 as usize]
            ^ t[7][b3 as usize];
        if let Some((sp, dp)) = ports {
            let [s0, s1] = sp.to_be_bytes();
            let [d0, d1] = dp.to_be_bytes();
            h ^= t[8][s0 as usize] ^ t[9][s1 as usize] ^ t[10][d0 as usize] ^ t[11][d1 as usize];
        }
        h
    }

    /// The queue among `n` a hash selects through the default redirection
    /// table.
    #[inline]
    pub fn queue_of_hash(hash: u32, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        ((hash % RETA_SIZE) as usize) % n
    }

    /// The queue among `n` an IPv4 packet goes to.
    #[inline]
    pub fn queue(&self, src: u32, dst: u32, ports: Option<(u16, u16)>, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        Rss::queue_of_hash(self.hash(src, dst, ports), n)
    }
}

/// A redirection table: the queue of each of the `RETA_SIZE` low values
/// of a hash, as `Rss::queue_of_hash` picks it (filled once: a lookup
/// instead of a division per packet).
#[derive(Clone, Debug)]
pub struct Reta {
    queues: [u8; RETA_SIZE as usize],
}

impl Reta {
    /// The default table over `n` queues (at most 256).
    pub fn new(n: usize) -> Reta {
        Reta {
            queues: std::array::from_fn(|i| Rss::queue_of_hash(i as u32, n) as u8),
        }
    }

    #[inline]
    pub fn queue(&self, hash: u32) -> usize {
        self.queues[(hash % RETA_SIZE) as usize] as usize
    }
}

/// The 32 key bits starting at bit `start` (bits past the key are 0).
fn key_window(key: &[u8; KEY_LEN], start: usize) -> u32 {
    let mut w = 0u32;
    for i in 0..32 {
        let bit = start + i;
        let set = key
            .get(bit / 8)
            .is_some_and(|byte| byte & (0x80 >> (bit % 8)) != 0);
        w = w << 1 | set as u32;
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// The key of Microsoft's RSS specification, with which its
    /// verification suite's hashes are computed.
    const MS_KEY: [u8; KEY_LEN] = [
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f,
        0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
        0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
    ];

    fn ip(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    /// The specification's IPv4 verification vectors: (destination,
    /// source, IPv4-only hash, IPv4-with-TCP hash).
    #[test]
    fn matches_the_specification_vectors() {
        let rss = Rss::new(MS_KEY);
        let vectors = [
            (
                "161.142.100.80",
                1766,
                "66.9.149.187",
                2794,
                0x323e8fc2,
                0x51ccc178,
            ),
            (
                "65.69.140.83",
                4739,
                "199.92.111.2",
                14230,
                0xd718262a,
                0xc626b0ea,
            ),
            (
                "12.22.207.184",
                38024,
                "24.19.198.95",
                12898,
                0xd2d0a5de,
                0x5c2b394a,
            ),
            (
                "209.142.163.6",
                2217,
                "38.27.205.30",
                48228,
                0x82989176,
                0xafc7327f,
            ),
            (
                "202.188.127.2",
                1303,
                "153.39.163.191",
                44251,
                0x5d1809c5,
                0x10e828a2,
            ),
        ];
        for (dst, dport, src, sport, l3, l4) in vectors {
            assert_eq!(rss.hash(ip(src), ip(dst), None), l3, "{src} -> {dst}");
            assert_eq!(
                rss.hash(ip(src), ip(dst), Some((sport, dport))),
                l4,
                "{src}:{sport} -> {dst}:{dport}"
            );
        }
    }

    /// With the symmetric key both directions of a flow hash alike.
    #[test]
    fn symmetric_key_hashes_both_directions_alike() {
        let rss = Rss::default();
        for i in 0..1000u32 {
            let (a, b) = (0x0a00_0000 | (i * 7919), 0xc633_6400 ^ (i * 104_729));
            let (p, q) = ((i * 31) as u16, (i * 17 + 1) as u16);
            assert_eq!(rss.hash(a, b, Some((p, q))), rss.hash(b, a, Some((q, p))));
            assert_eq!(rss.hash(a, b, None), rss.hash(b, a, None));
        }
    }

    /// Queues spread flows over every queue, and one queue takes all.
    #[test]
    fn queues_cover_every_queue() {
        let rss = Rss::default();
        let mut seen = [0usize; 4];
        for p in 0..4096u16 {
            seen[rss.queue(ip("10.1.0.5"), ip("198.51.100.7"), Some((p, 80)), 4)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 600), "{seen:?}");
        assert_eq!(rss.queue(1, 2, Some((3, 4)), 1), 0);
    }
}
