//! Pooled frame buffers: `PacketBuf` (a frame with headroom, in memory of
//! ours or lent by an I/O backend) and the per-worker `PacketPool`.

use super::layout::Layout;
use crate::drop::DropReason;
use crate::wire;

/// Bytes reserved in front of the frame for header pushes.
pub const HEADROOM: usize = 64;
/// Largest frame accepted by default (a 9000-byte jumbo MTU plus
/// Ethernet and one VLAN tag).
pub const DEFAULT_MAX_FRAME: usize = 9000 + wire::ethernet::HEADER_LEN + wire::vlan::HEADER_LEN;

/// An I/O backend that lends its own buffers to the pipeline (DPDK: a
/// frame stays in the mbuf it was received in). A lent buffer goes back
/// to its lender with `release`, from whichever thread drops it.
pub struct Lender {
    /// Tells the lender's own buffers apart (a transmit path that can send
    /// them without copying checks it).
    pub id: u32,
    /// Gives the buffer behind `handle` back. Called once per lent
    /// buffer, from any thread.
    pub release: unsafe fn(handle: usize),
}

enum Storage {
    /// `cap` bytes from `PacketBuf::new` (a boxed slice, freed on drop).
    Heap,
    /// Lent by an I/O backend, given back on drop.
    Lent {
        lender: &'static Lender,
        handle: usize,
    },
}

/// One frame in a pooled buffer.
///
/// Owner: the worker that took it from its pool (or received it from a
/// backend that lends its buffers); it travels by value through the
/// pipeline and goes back to the pool, to a TX queue, or to its lender
/// exactly once.
///
/// The storage is `cap` bytes at `base`, owned by this value; the frame
/// is `start..start + len` of it, and `start + len <= cap` always holds
/// (every method that moves either keeps it).
pub struct PacketBuf {
    base: std::ptr::NonNull<u8>,
    cap: usize,
    start: usize,
    len: usize,
    storage: Storage,
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

// SAFETY: a PacketBuf owns its storage exclusively (a heap allocation, or
// a lent buffer nobody else touches until it is released); lenders'
// `release` may be called from any thread (`Lender`'s contract).
unsafe impl Send for PacketBuf {}
// SAFETY: shared references only read the bytes.
unsafe impl Sync for PacketBuf {}

/// `PacketBuf::nat_sport` holds a port.
pub const NAT_SPORT_SET: u32 = 0x1_0000;

impl PacketBuf {
    /// A standalone buffer for frames up to `max_frame` bytes.
    pub fn new(max_frame: usize) -> PacketBuf {
        let cap = HEADROOM + max_frame;
        let raw = Box::into_raw(vec![0u8; cap].into_boxed_slice());
        PacketBuf {
            // SAFETY: Box::into_raw never returns null.
            base: unsafe { std::ptr::NonNull::new_unchecked(raw as *mut u8) },
            cap,
            start: HEADROOM,
            len: 0,
            storage: Storage::Heap,
            layout: Layout::default(),
            in_port: 0,
            nat_sport: 0,
        }
    }

    /// A frame received into a backend's own buffer: `cap` bytes at
    /// `base`, the frame `len` bytes from `start`.
    ///
    /// # Safety
    /// `base..base + cap` must be valid for reads and writes, and used by
    /// nobody else, until `lender.release(handle)` is called (which the
    /// returned value does exactly once, unless `into_lent` hands the
    /// buffer back first); `start + len <= cap`.
    pub unsafe fn lent(
        base: std::ptr::NonNull<u8>,
        cap: usize,
        start: usize,
        len: usize,
        lender: &'static Lender,
        handle: usize,
    ) -> PacketBuf {
        debug_assert!(start + len <= cap);
        PacketBuf {
            base,
            cap,
            start,
            len,
            storage: Storage::Lent { lender, handle },
            layout: Layout::default(),
            in_port: 0,
            nat_sport: 0,
        }
    }

    /// The lender and handle of a lent buffer.
    pub fn lender(&self) -> Option<(&'static Lender, usize)> {
        match self.storage {
            Storage::Heap => None,
            Storage::Lent { lender, handle } => Some((lender, handle)),
        }
    }

    /// Gives a buffer lent by `lender_id` back to the caller without
    /// releasing it: `(handle, start, len)` of the frame as it is now (the
    /// caller now owns the handle). Any other buffer comes back as `Err`.
    pub fn into_lent(self, lender_id: u32) -> Result<(usize, usize, usize), PacketBuf> {
        match self.storage {
            Storage::Lent { lender, handle } if lender.id == lender_id => {
                let r = (handle, self.start, self.len);
                std::mem::forget(self);
                Ok(r)
            }
            _ => Err(self),
        }
    }

    /// The whole storage.
    #[inline(always)]
    fn storage_mut(&mut self) -> &mut [u8] {
        // SAFETY: `base..base + cap` is ours (the type's invariant).
        unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr(), self.cap) }
    }

    /// The frame bytes.
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        // SAFETY: start + len <= cap, and the storage is ours.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(self.start), self.len) }
    }

    /// The frame bytes, writable.
    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr().add(self.start), self.len) }
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
        self.cap.saturating_sub(HEADROOM)
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
        self.storage_mut()[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        self.start = HEADROOM;
        self.len = frame.len();
        self.layout = Layout::default();
        self.nat_sport = 0;
        Ok(())
    }

    /// Makes this buffer a copy of `other`'s frame (with its layout, port
    /// and NAT port). A frame that grew into the headroom (a pushed VLAN
    /// tag on a full-size frame) takes as much headroom in the copy.
    pub fn copy_frame_of(&mut self, other: &PacketBuf) -> Result<(), DropReason> {
        let len = other.len;
        let start = if len <= self.max_frame() {
            HEADROOM
        } else if len <= self.cap {
            self.cap - len
        } else {
            return Err(DropReason::FrameTooLong);
        };
        self.storage_mut()[start..start + len].copy_from_slice(other.data());
        self.start = start;
        self.len = len;
        self.layout = other.layout;
        self.in_port = other.in_port;
        self.nat_sport = other.nat_sport;
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
        let h = HEADROOM.min(self.cap);
        &mut self.storage_mut()[h..]
    }

    /// Grows the frame by `n` bytes at the front (for a header push).
    pub(super) fn push_front(&mut self, n: usize) -> Result<(), DropReason> {
        if self.start < n {
            return Err(DropReason::NoHeadroom);
        }
        self.start -= n;
        self.len += n;
        Ok(())
    }

    /// Shrinks the frame by `n` bytes at the front.
    pub(super) fn pull_front(&mut self, n: usize) -> Result<(), DropReason> {
        if self.len < n {
            return Err(DropReason::RewriteNoHeader);
        }
        self.start += n;
        self.len -= n;
        Ok(())
    }
}

impl Drop for PacketBuf {
    fn drop(&mut self) {
        match self.storage {
            Storage::Heap => {
                let raw = std::ptr::slice_from_raw_parts_mut(self.base.as_ptr(), self.cap);
                // SAFETY: made by Box::into_raw of a boxed slice of `cap`
                // bytes in `new`, and dropped only here.
                drop(unsafe { Box::from_raw(raw) });
            }
            Storage::Lent { lender, handle } => {
                // SAFETY: the lender's contract (`lent`): released once.
                unsafe { (lender.release)(handle) }
            }
        }
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
        // A lent buffer goes back to its lender (on drop).
        if matches!(pkt.storage, Storage::Heap)
            && self.free.len() < self.capacity
            && pkt.max_frame() == self.max_frame
        {
            pkt.start = HEADROOM;
            pkt.len = 0;
            self.free.push(pkt);
        }
    }

    /// A copy of `pkt` (bytes, layout, input port) in a pooled buffer.
    #[inline]
    pub fn copy_of(&mut self, pkt: &PacketBuf) -> Result<PacketBuf, DropReason> {
        let mut c = self.get().ok_or(DropReason::PoolExhausted)?;
        match c.copy_frame_of(pkt) {
            Ok(()) => Ok(c),
            Err(reason) => {
                self.put(c);
                Err(reason)
            }
        }
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

    static RELEASED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    unsafe fn count_release(handle: usize) {
        // SAFETY: the test's storage is a leaked boxed slice of 256 bytes at
        // `handle`, released once: free it like a lender would.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(handle as *mut u8, 256)) });
        RELEASED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    static TEST_LENDER: Lender = Lender {
        id: 7,
        release: count_release,
    };

    unsafe fn free_only(handle: usize) {
        // SAFETY: as in `count_release`.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(handle as *mut u8, 256)) });
    }

    /// For tests that do not count releases (tests run in parallel).
    static OTHER_LENDER: Lender = Lender {
        id: 9,
        release: free_only,
    };

    fn lent_frame(bytes: &[u8]) -> PacketBuf {
        lent_by(bytes, &TEST_LENDER)
    }

    fn lent_by(bytes: &[u8], lender: &'static Lender) -> PacketBuf {
        let raw = Box::into_raw(vec![0u8; 256].into_boxed_slice()) as *mut u8;
        // SAFETY: 256 fresh bytes, released by count_release exactly once.
        let mut b = unsafe {
            PacketBuf::lent(
                std::ptr::NonNull::new(raw).unwrap(),
                256,
                128,
                bytes.len(),
                lender,
                raw as usize,
            )
        };
        b.data_mut().copy_from_slice(bytes);
        b
    }

    #[test]
    fn lent_buffers_go_back_to_their_lender_once() {
        use std::sync::atomic::Ordering::SeqCst;
        let before = RELEASED.load(SeqCst);
        // Dropped: released.
        let b = lent_frame(&[1, 2, 3]);
        assert_eq!(b.data(), &[1, 2, 3]);
        assert_eq!(b.headroom(), 128);
        drop(b);
        assert_eq!(RELEASED.load(SeqCst), before + 1);
        // Put into a pool: released, never pooled.
        let mut pool = PacketPool::new(1, 128);
        let _taken = pool.get().unwrap();
        pool.put(lent_frame(&[4]));
        assert_eq!(pool.available(), 0);
        assert_eq!(RELEASED.load(SeqCst), before + 2);
        // A copy is a pooled buffer of ours; the original is still lent.
        let mut pool = PacketPool::new(1, 128);
        let orig = lent_frame(&[5, 6]);
        let copy = pool.copy_of(&orig).unwrap();
        assert!(copy.lender().is_none());
        assert_eq!(copy.data(), &[5, 6]);
        // Handed back by id: not released; another id does not take it.
        let orig = orig.into_lent(8).unwrap_err();
        let (handle, start, len) = orig.into_lent(7).ok().unwrap();
        assert_eq!((start, len), (128, 2));
        assert_eq!(RELEASED.load(SeqCst), before + 2);
        // SAFETY: the handle is ours again: release it as the lender would.
        unsafe { count_release(handle) };
    }

    #[test]
    fn pushes_and_pulls_stay_inside_a_lent_buffer() {
        let mut b = lent_by(&[9; 20], &OTHER_LENDER);
        assert!(b.push_front(128).is_ok());
        assert_eq!(b.push_front(1), Err(DropReason::NoHeadroom));
        assert_eq!(b.len(), 148);
        assert!(b.pull_front(148).is_ok());
        assert_eq!(b.pull_front(1), Err(DropReason::RewriteNoHeader));
        assert_eq!(b.data(), &[] as &[u8]);
    }
}
