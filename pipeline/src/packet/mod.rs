//! Packets: pooled buffers, the one-pass parser, in-place rewrites.
//!
//! Design: a `PacketBuf` is a fixed allocation of `HEADROOM + max_frame`
//! bytes taken from a per-worker `PacketPool`; nothing on the fast path
//! allocates. The frame starts `HEADROOM` bytes in so that a VLAN tag can be
//! pushed by moving only the 12 address bytes. `parse` reads the headers
//! once into a `FlowKey` and a `Layout` (where each header starts); rewrites
//! use the layout and never re-parse. Every read of packet bytes goes
//! through a length-checked view (`views`), so a short or malformed frame
//! is a `DropReason`, never a panic.

pub mod embedded;
pub mod generate;
mod parse;
mod rewrite;
pub mod synth;
pub mod views;

pub use parse::{parse, parse_into, Parsed};
pub use rewrite::{apply, checksum, Rewrite};

use crate::drop::DropReason;

/// Bytes reserved in front of the frame for header pushes.
pub const HEADROOM: usize = 64;
/// Largest frame accepted by default (a 9000-byte jumbo MTU plus
/// Ethernet and one VLAN tag).
pub const DEFAULT_MAX_FRAME: usize = 9000 + 14 + 4;

/// The network-layer header a frame carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum L3 {
    #[default]
    None,
    Arp,
    Ipv4,
    Ipv6,
}

/// The transport header a frame carries (only on first fragments).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum L4 {
    #[default]
    None,
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
}

/// Where the headers of a parsed frame start (offsets from the frame start).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub vlan: bool,
    pub l3: L3,
    pub l3_ofs: u16,
    pub l4: L4,
    pub l4_ofs: u16,
}

impl Layout {
    /// Shifts the L3/L4 offsets after a header of `by` bytes was pushed (+)
    /// or popped (-) in front of them.
    fn shift(&mut self, by: i16) {
        self.l3_ofs = self.l3_ofs.wrapping_add_signed(by);
        self.l4_ofs = self.l4_ofs.wrapping_add_signed(by);
    }
}

/// One frame in a pooled buffer.
///
/// Owner: the worker that took it from its pool; it travels by value
/// through the pipeline and goes back to the pool (or to a TX queue that
/// returns it) exactly once.
pub struct PacketBuf {
    buf: Box<[u8]>,
    start: usize,
    len: usize,
    /// Headers of the frame, as of the last `parse_into` (kept up to date
    /// by `apply`).
    pub layout: Layout,
    /// The switch port the frame arrived on.
    pub in_port: u32,
    /// The source port (ICMP: echo id) its connection translates it to,
    /// `NAT_SPORT_SET | port`, set by conntrack at recirculation and
    /// applied at POSTROUTING (`Rewrite::NatSrcPort`); 0 when none. Per
    /// packet, so that one cached walk serves every connection.
    pub nat_sport: u32,
}

/// `PacketBuf::nat_sport` holds a port.
pub const NAT_SPORT_SET: u32 = 0x1_0000;

impl PacketBuf {
    /// A standalone buffer for frames up to `max_frame` bytes.
    pub fn new(max_frame: usize) -> PacketBuf {
        PacketBuf {
            buf: vec![0u8; HEADROOM + max_frame].into_boxed_slice(),
            start: HEADROOM,
            len: 0,
            layout: Layout::default(),
            in_port: 0,
            nat_sport: 0,
        }
    }

    /// The frame bytes.
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        self.buf
            .get(self.start..self.start + self.len)
            .unwrap_or(&[])
    }

    /// The frame bytes, writable.
    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let end = self.start + self.len;
        self.buf.get_mut(self.start..end).unwrap_or(&mut [])
    }

    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Largest frame this buffer holds (without using headroom).
    pub fn max_frame(&self) -> usize {
        self.buf.len() - HEADROOM
    }

    /// Bytes free in front of the frame.
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Replaces the contents with `frame` (as a NIC receive would).
    #[inline]
    pub fn set_data(&mut self, frame: &[u8]) -> Result<(), DropReason> {
        if frame.len() > self.max_frame() {
            return Err(DropReason::FrameTooLong);
        }
        self.start = HEADROOM;
        self.len = frame.len();
        self.buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        self.layout = Layout::default();
        self.nat_sport = 0;
        Ok(())
    }

    /// Sets the frame length in place (for receivers that write into
    /// `raw_frame_mut` directly).
    pub fn set_len(&mut self, len: usize) -> Result<(), DropReason> {
        if len > self.max_frame() {
            return Err(DropReason::FrameTooLong);
        }
        self.start = HEADROOM;
        self.len = len;
        self.layout = Layout::default();
        self.nat_sport = 0;
        Ok(())
    }

    /// The whole area a receiver may write a frame into (`max_frame` bytes
    /// after the headroom); follow with `set_len`.
    pub fn raw_frame_mut(&mut self) -> &mut [u8] {
        &mut self.buf[HEADROOM..]
    }

    /// Grows the frame by `n` bytes at the front (for a header push).
    fn push_front(&mut self, n: usize) -> Result<(), DropReason> {
        if self.start < n {
            return Err(DropReason::NoHeadroom);
        }
        self.start -= n;
        self.len += n;
        Ok(())
    }

    /// Shrinks the frame by `n` bytes at the front.
    fn pull_front(&mut self, n: usize) -> Result<(), DropReason> {
        if self.len < n {
            return Err(DropReason::RewriteNoHeader);
        }
        self.start += n;
        self.len -= n;
        Ok(())
    }
}

impl std::fmt::Debug for PacketBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketBuf")
            .field("len", &self.len)
            .field("in_port", &self.in_port)
            .finish()
    }
}

/// A bounded free list of equally sized buffers.
///
/// Owner: one worker (no sharing, no locks). All buffers are allocated up
/// front; `get` fails when the pool is empty, and that failure is counted
/// by the caller as `PoolExhausted`.
pub struct PacketPool {
    free: Vec<PacketBuf>,
    capacity: usize,
    max_frame: usize,
    /// `get` calls that found the pool empty.
    pub exhausted: u64,
}

impl PacketPool {
    /// A pool of `count` buffers, each for frames up to `max_frame` bytes.
    pub fn new(count: usize, max_frame: usize) -> PacketPool {
        let free = (0..count).map(|_| PacketBuf::new(max_frame)).collect();
        PacketPool {
            free,
            capacity: count,
            max_frame,
            exhausted: 0,
        }
    }

    /// A buffer, if one is free.
    #[inline]
    pub fn get(&mut self) -> Option<PacketBuf> {
        let b = self.free.pop();
        if b.is_none() {
            self.exhausted += 1;
        }
        b
    }

    /// Returns a buffer. Buffers beyond the pool's capacity (or of another
    /// size) are freed instead, so the pool never grows.
    #[inline]
    pub fn put(&mut self, mut pkt: PacketBuf) {
        if self.free.len() < self.capacity && pkt.max_frame() == self.max_frame {
            pkt.start = HEADROOM;
            pkt.len = 0;
            self.free.push(pkt);
        }
    }

    /// A copy of `pkt` (bytes, layout, input port) in a pooled buffer.
    #[inline]
    pub fn copy_of(&mut self, pkt: &PacketBuf) -> Option<PacketBuf> {
        let mut c = self.get()?;
        if c.set_data(pkt.data()).is_err() {
            self.put(c);
            return None;
        }
        c.layout = pkt.layout;
        c.in_port = pkt.in_port;
        c.nat_sport = pkt.nat_sport;
        Some(c)
    }

    /// Buffers currently free.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn max_frame(&self) -> usize {
        self.max_frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_is_bounded_and_reuses_buffers() {
        let mut pool = PacketPool::new(2, 128);
        let a = pool.get().unwrap();
        let b = pool.get().unwrap();
        assert!(pool.get().is_none());
        assert_eq!(pool.exhausted, 1);
        pool.put(a);
        pool.put(b);
        pool.put(PacketBuf::new(128)); // beyond capacity: freed
        assert_eq!(pool.available(), 2);
        pool.put(PacketBuf::new(64));
        assert_eq!(pool.available(), 2);
    }

    #[test]
    fn set_data_rejects_oversized_frames() {
        let mut p = PacketBuf::new(64);
        assert_eq!(p.set_data(&[0u8; 65]), Err(DropReason::FrameTooLong));
        assert!(p.set_data(&[7u8; 64]).is_ok());
        assert_eq!(p.data(), &[7u8; 64][..]);
        let mut jumbo = PacketBuf::new(DEFAULT_MAX_FRAME);
        assert!(jumbo.set_data(&vec![0u8; 9018]).is_ok());
    }
}
