//! AF_PACKET ports (Linux; any interface, veth included): a TPACKET_V3
//! memory-mapped receive ring, transmit batched per burst with `sendmmsg`
//! and qdisc bypass,
//! promiscuous mode, outgoing packets ignored, optional PACKET_FANOUT so
//! several workers can share one interface.
//!
//! Order matters: the socket is created with protocol 0 (it receives
//! nothing), the ring is set up and mapped, and only then is it bound to
//! the interface with ETH_P_ALL, so no packet arrives before the ring
//! exists. All `unsafe` here is the kernel interface: each block says why
//! it holds.

use super::error::PortIoError;
use super::queue::{RxQueue, Sent, TxQueue};
use pipeline::packet::{PacketBuf, PacketPool};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// Ring geometry: 16 blocks of 256 KiB (4 MiB per socket), frames up to 2 KiB
/// slots (jumbo frames span the block, TPACKET_V3 packs variable sizes).
const BLOCK_SIZE: u32 = 1 << 18;
const BLOCK_NR: u32 = 16;
const FRAME_SIZE: u32 = 2048;
/// A partly filled block is handed to us after this many milliseconds.
const BLOCK_TIMEOUT_MS: u32 = 1;

fn os_err(what: &str, ifname: &str) -> PortIoError {
    PortIoError::last_os_error(ifname, what)
}

fn setsockopt<T>(fd: i32, level: i32, name: i32, v: &T) -> i32 {
    // SAFETY: `v` points to a live T of the size passed.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            v as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    }
}

/// The memory-mapped receive ring.
struct Ring {
    base: *mut u8,
    len: usize,
}

// SAFETY: the mapping is owned by one `AfPacketRx`, which one worker owns.
unsafe impl Send for Ring {}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: base/len are the mapping created in `open` and unmapped once.
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, self.len);
        }
    }
}

/// Counters of one AF_PACKET port.
#[derive(Default, Debug)]
pub struct AfPacketStats {
    pub rx_packets: AtomicU64,
    pub rx_too_long: AtomicU64,
    pub tx_packets: AtomicU64,
    /// Frames the socket refused (and dropped), whatever the reason.
    pub tx_errors: AtomicU64,
    /// Those of `tx_errors` refused as longer than the interface sends.
    pub tx_too_long: AtomicU64,
}

pub struct AfPacketRx {
    fd: Arc<OwnedFd>,
    ring: Ring,
    block: u32,
    /// Within the current block: packets left and offset of the next.
    left: u32,
    offset: u32,
    /// Frames longer than a buffer, not yet taken by `take_too_long`.
    too_long: u64,
    pub stats: Arc<AfPacketStats>,
}

pub struct AfPacketTx {
    fd: Arc<OwnedFd>,
    pub stats: Arc<AfPacketStats>,
    batch: std::sync::Mutex<TxBatch>,
}

/// Opens interface `ifname`. With `fanout`, the socket joins that fanout
/// group (hash mode), so sockets of several workers share the traffic.
pub fn open(ifname: &str, fanout: Option<u16>) -> Result<(AfPacketRx, AfPacketTx), PortIoError> {
    let cname =
        CString::new(ifname).map_err(|_| PortIoError::BadInterfaceName(ifname.to_string()))?;
    // SAFETY: plain syscalls with checked return values.
    let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if ifindex == 0 {
        return Err(os_err("no such interface", ifname));
    }
    // SAFETY: socket(2); the fd is owned by OwnedFd right after.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(os_err("socket(AF_PACKET)", ifname));
    }
    // SAFETY: `raw` is a fresh, valid fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let s = fd.as_raw_fd();
    let version: libc::c_int = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
    if setsockopt(s, libc::SOL_PACKET, libc::PACKET_VERSION, &version) != 0 {
        return Err(os_err("PACKET_VERSION v3", ifname));
    }
    let req = libc::tpacket_req3 {
        tp_block_size: BLOCK_SIZE,
        tp_block_nr: BLOCK_NR,
        tp_frame_size: FRAME_SIZE,
        tp_frame_nr: BLOCK_SIZE / FRAME_SIZE * BLOCK_NR,
        tp_retire_blk_tov: BLOCK_TIMEOUT_MS,
        tp_sizeof_priv: 0,
        tp_feature_req_word: 0,
    };
    if setsockopt(s, libc::SOL_PACKET, libc::PACKET_RX_RING, &req) != 0 {
        return Err(os_err("PACKET_RX_RING", ifname));
    }
    let len = (BLOCK_SIZE * BLOCK_NR) as usize;
    // SAFETY: mapping the ring the kernel just allocated for this socket.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            s,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(os_err("mmap of the rx ring", ifname));
    }
    let ring = Ring {
        base: base as *mut u8,
        len,
    };
    let one: libc::c_int = 1;
    // Best effort: older kernels lack these; behaviour stays correct without.
    let _ = setsockopt(s, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &one);
    let _ = setsockopt(s, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &one);
    // SAFETY: sockaddr_ll is plain data; zeroed is a valid starting value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: binding with a valid sockaddr_ll of the size given.
    let r = unsafe {
        libc::bind(
            s,
            &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if r != 0 {
        return Err(os_err("bind", ifname));
    }
    let mreq = libc::packet_mreq {
        mr_ifindex: ifindex as i32,
        mr_type: libc::PACKET_MR_PROMISC as u16,
        mr_alen: 0,
        mr_address: [0; 8],
    };
    if setsockopt(s, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq) != 0 {
        return Err(os_err("promiscuous mode", ifname));
    }
    if let Some(group) = fanout {
        let arg: libc::c_int =
            (group as libc::c_int) | ((libc::PACKET_FANOUT_HASH as libc::c_int) << 16);
        if setsockopt(s, libc::SOL_PACKET, libc::PACKET_FANOUT, &arg) != 0 {
            return Err(os_err("PACKET_FANOUT", ifname));
        }
    }
    let fd = Arc::new(fd);
    let stats = Arc::new(AfPacketStats::default());
    Ok((
        AfPacketRx {
            fd: fd.clone(),
            ring,
            block: 0,
            left: 0,
            offset: 0,
            too_long: 0,
            stats: stats.clone(),
        },
        AfPacketTx {
            fd,
            stats,
            batch: std::sync::Mutex::new(TxBatch::default()),
        },
    ))
}

impl AfPacketRx {
    fn block_ptr(&self, i: u32) -> *mut u8 {
        // SAFETY: i < BLOCK_NR, so the offset stays inside the mapping.
        unsafe { self.ring.base.add((i % BLOCK_NR * BLOCK_SIZE) as usize) }
    }

    /// The block_status word of block `i` (shared with the kernel).
    fn status(&self, i: u32) -> &AtomicU32 {
        // SAFETY: block_status is the first u32 of tpacket_hdr_v1, at offset 8
        // of the 8-byte-aligned block descriptor; the kernel and we access it
        // as an atomic word.
        unsafe { &*(self.block_ptr(i).add(8) as *const AtomicU32) }
    }
}

impl RxQueue for AfPacketRx {
    fn rx_burst(&mut self, pool: &mut PacketPool, out: &mut Vec<PacketBuf>, max: usize) -> usize {
        let _ = self.fd.as_raw_fd();
        let mut n = 0;
        while n < max {
            if self.left == 0 {
                let st = self.status(self.block);
                if st.load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
                    break;
                }
                let b = self.block_ptr(self.block);
                // SAFETY: the kernel handed the block to us (TP_STATUS_USER);
                // num_pkts and offset_to_first_pkt are at offsets 12 and 16.
                let (num, first) = unsafe {
                    (
                        std::ptr::read_volatile(b.add(12) as *const u32),
                        std::ptr::read_volatile(b.add(16) as *const u32),
                    )
                };
                self.left = num;
                self.offset = first;
                if num == 0 {
                    self.release_block();
                    continue;
                }
            }
            let b = self.block_ptr(self.block);
            let off = self.offset as usize;
            if off + std::mem::size_of::<libc::tpacket3_hdr>() > BLOCK_SIZE as usize {
                // A corrupt offset: give the block back rather than read past it.
                self.release_block();
                continue;
            }
            // SAFETY: the header lies inside the block we own (checked above).
            let h: libc::tpacket3_hdr =
                unsafe { std::ptr::read_unaligned(b.add(off) as *const libc::tpacket3_hdr) };
            let start = off + h.tp_mac as usize;
            let len = h.tp_snaplen as usize;
            if start + len <= BLOCK_SIZE as usize {
                // SAFETY: [start, start+len) is inside the block (checked).
                let data = unsafe { std::slice::from_raw_parts(b.add(start), len) };
                if let Some(mut buf) = pool.get() {
                    let ok = if h.tp_status & libc::TP_STATUS_VLAN_VALID != 0 && len >= 12 {
                        // The kernel took the 802.1Q tag off: put it back.
                        let tpid = if h.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                            h.hv1.tp_vlan_tpid
                        } else {
                            0x8100
                        };
                        let mut f = Vec::with_capacity(len + 4);
                        f.extend_from_slice(&data[..12]);
                        f.extend_from_slice(&tpid.to_be_bytes());
                        f.extend_from_slice(&(h.hv1.tp_vlan_tci as u16).to_be_bytes());
                        f.extend_from_slice(&data[12..]);
                        buf.set_data(&f).is_ok()
                    } else {
                        buf.set_data(data).is_ok()
                    };
                    if ok {
                        out.push(buf);
                        n += 1;
                        self.stats.rx_packets.fetch_add(1, Ordering::Relaxed);
                    } else {
                        self.stats.rx_too_long.fetch_add(1, Ordering::Relaxed);
                        self.too_long += 1;
                        pool.put(buf);
                    }
                } else {
                    break; // no buffer: leave the packet in the ring
                }
            }
            self.left -= 1;
            self.offset = self.offset.wrapping_add(h.tp_next_offset);
            if self.left == 0 {
                self.release_block();
            }
        }
        n
    }

    fn take_too_long(&mut self) -> u64 {
        std::mem::take(&mut self.too_long)
    }
}

impl AfPacketRx {
    fn release_block(&mut self) {
        self.status(self.block)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.block = (self.block + 1) % BLOCK_NR;
        self.left = 0;
    }
}

/// Frames sent with one `sendmmsg` call.
const TX_BATCH: usize = 32;

/// Frames waiting for `flush`: copied back to back into one buffer.
#[derive(Default)]
struct TxBatch {
    data: Vec<u8>,
    /// (offset, length) of each frame in `data`.
    frames: Vec<(usize, usize)>,
}

/// Frames the kernel refused as longer than the interface sends
/// (EMSGSIZE: over its MTU and link-layer header), and their bytes.
#[derive(Clone, Copy, Debug, Default)]
struct TooLong {
    frames: u64,
    bytes: u64,
}

impl TooLong {
    fn add(&mut self, o: TooLong) {
        self.frames += o.frames;
        self.bytes += o.bytes;
    }
}

impl AfPacketTx {
    /// Sends every queued frame with `sendmmsg` (several calls if the
    /// kernel takes fewer); what the socket refuses is counted in
    /// `tx_errors` and dropped, and returned when it was too long.
    fn send_batch(&self, b: &mut TxBatch) -> TooLong {
        let mut too_long = TooLong::default();
        let n = b.frames.len();
        if n == 0 {
            return too_long;
        }
        let mut iov: [libc::iovec; TX_BATCH] = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; TX_BATCH];
        // SAFETY: mmsghdr is plain data; all-zero is a valid value.
        let mut msgs: [libc::mmsghdr; TX_BATCH] = unsafe { std::mem::zeroed() };
        for (i, &(off, len)) in b.frames.iter().enumerate() {
            iov[i] = libc::iovec {
                iov_base: b.data[off..].as_mut_ptr() as *mut libc::c_void,
                iov_len: len,
            };
            msgs[i].msg_hdr.msg_iov = &mut iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        let mut done = 0usize;
        while done < n {
            // SAFETY: msgs[done..n] point to iovecs over live frames in
            // `b.data`, which is not touched until the call returns.
            let r = unsafe {
                libc::sendmmsg(
                    self.fd.as_raw_fd(),
                    msgs[done..].as_mut_ptr(),
                    (n - done) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if r <= 0 {
                // The first unsent frame failed (e.g. a full socket buffer
                // or a frame longer than the MTU): drop it, go on.
                let errno = std::io::Error::last_os_error().raw_os_error();
                self.stats.tx_errors.fetch_add(1, Ordering::Relaxed);
                if errno == Some(libc::EMSGSIZE) {
                    self.stats.tx_too_long.fetch_add(1, Ordering::Relaxed);
                    too_long.add(TooLong {
                        frames: 1,
                        bytes: b.frames[done].1 as u64,
                    });
                }
                done += 1;
                continue;
            }
            self.stats.tx_packets.fetch_add(r as u64, Ordering::Relaxed);
            done += r as usize;
        }
        b.data.clear();
        b.frames.clear();
        too_long
    }
}

impl AfPacketTx {
    /// Appends `frame` to the batch, sending it when full (what that
    /// send refused as too long is returned).
    fn queue(&self, b: &mut TxBatch, frame: &[u8]) -> TooLong {
        let off = b.data.len();
        b.data.extend_from_slice(frame);
        b.frames.push((off, frame.len()));
        if b.frames.len() >= TX_BATCH {
            return self.send_batch(b);
        }
        TooLong::default()
    }
}

impl TxQueue for AfPacketTx {
    /// Queues a copy of `frame`; it leaves at `flush` (or when a batch of
    /// 32 is full). Failures are counted in `stats.tx_errors`.
    fn send(&self, frame: &[u8]) -> bool {
        let mut b = self.batch.lock().unwrap_or_else(|e| e.into_inner());
        self.queue(&mut b, frame);
        true
    }

    fn send_burst(&self, frames: &mut dyn Iterator<Item = &[u8]>) -> usize {
        let mut b = self.batch.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        for f in frames {
            self.queue(&mut b, f);
            n += 1;
        }
        n
    }

    /// Queues copies of the frames and sends them at once (the worker
    /// flushes after each port's burst anyway), so that what the kernel
    /// refuses as too long is known here and reported. Other refusals
    /// are counted in `stats.tx_errors` only, as for `send`.
    fn send_bufs(&self, bufs: &mut Vec<PacketBuf>, pool: &mut PacketPool) -> Sent {
        let mut b = self.batch.lock().unwrap_or_else(|e| e.into_inner());
        let (mut frames, mut bytes) = (0u64, 0u64);
        let mut too_long = TooLong::default();
        for buf in bufs.drain(..) {
            frames += 1;
            bytes += buf.len() as u64;
            too_long.add(self.queue(&mut b, buf.data()));
            pool.put(buf);
        }
        too_long.add(self.send_batch(&mut b));
        Sent {
            frames: frames - too_long.frames,
            bytes: bytes - too_long.bytes,
            too_long: too_long.frames,
        }
    }

    fn flush(&self) {
        let mut b = self.batch.lock().unwrap_or_else(|e| e.into_inner());
        self.send_batch(&mut b);
    }
}

impl Drop for AfPacketTx {
    fn drop(&mut self) {
        self.flush();
    }
}
