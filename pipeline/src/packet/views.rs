//! Zero-copy, length-checked views of the headers the pipeline reads.
//!
//! Each view is built with one length check (`new` returns `None` when the
//! bytes are too short) and holds a fixed-size array reference, so its
//! accessors index with constants and cannot panic.

use crate::key::Mac;

#[inline(always)]
fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

#[inline(always)]
fn mac_at(b: &[u8], ofs: usize) -> Mac {
    match b
        .get(ofs..ofs + 6)
        .and_then(|s| <[u8; 6]>::try_from(s).ok())
    {
        Some(m) => Mac(m),
        None => Mac::ZERO,
    }
}

/// Ethernet II header (14 bytes).
#[derive(Clone, Copy)]
pub struct Ethernet<'a>(&'a [u8; 14]);

impl<'a> Ethernet<'a> {
    pub const LEN: usize = 14;
    #[inline(always)]
    pub fn new(b: &'a [u8]) -> Option<Self> {
        b.first_chunk::<14>().map(Ethernet)
    }
    #[inline(always)]
    pub fn dst(&self) -> Mac {
        mac_at(self.0, 0)
    }
    #[inline(always)]
    pub fn src(&self) -> Mac {
        mac_at(self.0, 6)
    }
    #[inline(always)]
    pub fn ethertype(&self) -> u16 {
        be16([self.0[12], self.0[13]])
    }
}

/// The 4 bytes after the addresses of an 802.1Q-tagged frame's tag
/// (TCI and the inner ethertype).
#[derive(Clone, Copy)]
pub struct VlanTag<'a>(&'a [u8; 4]);

impl<'a> VlanTag<'a> {
    pub const LEN: usize = 4;
    #[inline(always)]
    pub fn new(b: &'a [u8]) -> Option<Self> {
        b.first_chunk::<4>().map(VlanTag)
    }
    #[inline(always)]
    pub fn tci(&self) -> u16 {
        be16([self.0[0], self.0[1]])
    }
    #[inline(always)]
    pub fn inner_ethertype(&self) -> u16 {
        be16([self.0[2], self.0[3]])
    }
}

/// ARP for Ethernet/IPv4 (28 bytes).
#[derive(Clone, Copy)]
pub struct Arp<'a>(&'a [u8; 28]);

impl<'a> Arp<'a> {
    pub const LEN: usize = 28;
    #[inline(always)]
    pub fn new(b: &'a [u8]) -> Option<Self> {
        b.first_chunk::<28>().map(Arp)
    }
    /// Hardware type 1 (Ethernet), protocol 0x0800, lengths 6 and 4.
    pub fn is_ethernet_ipv4(&self) -> bool {
        be16([self.0[0], self.0[1]]) == 1
            && be16([self.0[2], self.0[3]]) == 0x0800
            && self.0[4] == 6
            && self.0[5] == 4
    }
    pub fn op(&self) -> u16 {
        be16([self.0[6], self.0[7]])
    }
    pub fn sha(&self) -> Mac {
        mac_at(self.0, 8)
    }
    pub fn spa(&self) -> u32 {
        u32::from_be_bytes([self.0[14], self.0[15], self.0[16], self.0[17]])
    }
    pub fn tha(&self) -> Mac {
        mac_at(self.0, 18)
    }
    pub fn tpa(&self) -> u32 {
        u32::from_be_bytes([self.0[24], self.0[25], self.0[26], self.0[27]])
    }
}

/// The fixed 20-byte part of an IPv4 header.
#[derive(Clone, Copy)]
pub struct Ipv4<'a>(&'a [u8; 20]);

impl<'a> Ipv4<'a> {
    pub const MIN_LEN: usize = 20;
    #[inline(always)]
    pub fn new(b: &'a [u8]) -> Option<Self> {
        b.first_chunk::<20>().map(Ipv4)
    }
    #[inline(always)]
    pub fn version(&self) -> u8 {
        self.0[0] >> 4
    }
    /// Header length in bytes.
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        ((self.0[0] & 0x0f) as usize) * 4
    }
    #[inline(always)]
    pub fn tos(&self) -> u8 {
        self.0[1]
    }
    #[inline(always)]
    pub fn total_len(&self) -> usize {
        be16([self.0[2], self.0[3]]) as usize
    }
    /// More-fragments flag set.
    #[inline(always)]
    pub fn more_fragments(&self) -> bool {
        self.0[6] & 0x20 != 0
    }
    /// Fragment offset in 8-byte units.
    #[inline(always)]
    pub fn fragment_offset(&self) -> u16 {
        be16([self.0[6] & 0x1f, self.0[7]])
    }
    #[inline(always)]
    pub fn ttl(&self) -> u8 {
        self.0[8]
    }
    #[inline(always)]
    pub fn protocol(&self) -> u8 {
        self.0[9]
    }
    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        be16([self.0[10], self.0[11]])
    }
    #[inline(always)]
    pub fn src(&self) -> u32 {
        u32::from_be_bytes([self.0[12], self.0[13], self.0[14], self.0[15]])
    }
    #[inline(always)]
    pub fn dst(&self) -> u32 {
        u32::from_be_bytes([self.0[16], self.0[17], self.0[18], self.0[19]])
    }
}

/// The fixed 40-byte IPv6 header.
#[derive(Clone, Copy)]
pub struct Ipv6<'a>(&'a [u8; 40]);

impl<'a> Ipv6<'a> {
    pub const LEN: usize = 40;
    pub fn new(b: &'a [u8]) -> Option<Self> {
        b.first_chunk::<40>().map(Ipv6)
    }
    pub fn version(&self) -> u8 {
        self.0[0] >> 4
    }
    pub fn traffic_class(&self) -> u8 {
        (self.0[0] << 4) | (self.0[1] >> 4)
    }
    pub fn payload_len(&self) -> usize {
        be16([self.0[4], self.0[5]]) as usize
    }
    pub fn next_header(&self) -> u8 {
        self.0[6]
    }
    pub fn hop_limit(&self) -> u8 {
        self.0[7]
    }
}

/// The first 4 bytes of TCP or UDP: the ports.
#[derive(Clone, Copy)]
pub struct Ports<'a>(&'a [u8; 4]);

impl<'a> Ports<'a> {
    #[inline(always)]
    pub fn new(b: &'a [u8]) -> Option<Self> {
        b.first_chunk::<4>().map(Ports)
    }
    #[inline(always)]
    pub fn src(&self) -> u16 {
        be16([self.0[0], self.0[1]])
    }
    #[inline(always)]
    pub fn dst(&self) -> u16 {
        be16([self.0[2], self.0[3]])
    }
}

/// The fixed 20-byte part of a TCP header.
#[derive(Clone, Copy)]
pub struct Tcp<'a>(&'a [u8; 20]);

impl<'a> Tcp<'a> {
    pub const MIN_LEN: usize = 20;
    #[inline(always)]
    pub fn new(b: &'a [u8]) -> Option<Self> {
        b.first_chunk::<20>().map(Tcp)
    }
    #[inline(always)]
    pub fn ports(&self) -> (u16, u16) {
        (be16([self.0[0], self.0[1]]), be16([self.0[2], self.0[3]]))
    }
    /// The 12 flag bits (NS..FIN), as OVS's `tcp_flags`.
    #[inline(always)]
    pub fn flags(&self) -> u16 {
        be16([self.0[12], self.0[13]]) & 0x0fff
    }
}

/// UDP header (8 bytes).
#[derive(Clone, Copy)]
pub struct Udp<'a>(&'a [u8; 8]);

impl<'a> Udp<'a> {
    pub const LEN: usize = 8;
    #[inline(always)]
    pub fn new(b: &'a [u8]) -> Option<Self> {
        b.first_chunk::<8>().map(Udp)
    }
    #[inline(always)]
    pub fn ports(&self) -> (u16, u16) {
        (be16([self.0[0], self.0[1]]), be16([self.0[2], self.0[3]]))
    }
}

/// ICMP / ICMPv6 header: type, code, checksum, and the 4-byte rest
/// (identifier and sequence for echo).
#[derive(Clone, Copy)]
pub struct Icmp<'a>(&'a [u8; 8]);

impl<'a> Icmp<'a> {
    pub const LEN: usize = 8;
    #[inline(always)]
    pub fn new(b: &'a [u8]) -> Option<Self> {
        b.first_chunk::<8>().map(Icmp)
    }
    #[inline(always)]
    pub fn icmp_type(&self) -> u8 {
        self.0[0]
    }
    #[inline(always)]
    pub fn code(&self) -> u8 {
        self.0[1]
    }
    #[inline(always)]
    pub fn identifier(&self) -> u16 {
        be16([self.0[4], self.0[5]])
    }
    pub fn sequence(&self) -> u16 {
        be16([self.0[6], self.0[7]])
    }
}

/// ICMP types whose identifier field names a "connection".
pub fn icmp_is_echo(t: u8) -> bool {
    matches!(t, 0 | 8)
}
