//! AF_XDP ports (cargo feature `af-xdp`; Linux). Copy mode with the XDP
//! program attached in generic (skb) mode, which works on any interface,
//! veth included; zero-copy needs driver support this machine lacks.
//!
//! Our XDP program is a dozen eBPF instructions, assembled here (no
//! compiler): `bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS)` —
//! frames of a queue with a socket in the XSKMAP come to us, others go on
//! to the kernel — except that a frame coming to us that is longer than a
//! UMEM frame holds (which the kernel would drop, counted with frames
//! dropped for want of a fill-ring entry) is dropped by the program and
//! counted in a one-entry array map we read through a mapping: the
//! port's `frame_too_long`. It is attached through a BPF link, so closing
//! the link detaches it even if the process dies; `Drop` closes it
//! explicitly.
//!
//! One UMEM per socket: the first half of its frames feeds the fill ring
//! (receive), the second half is the transmit pool. Receive copies frames
//! into `PacketBuf`s and gives their UMEM frames straight back; transmit
//! copies into a free UMEM frame, batches descriptors and kicks the kernel
//! at `flush`. The kernel interface structures come from the libc crate
//! where it has them; the BPF ones are laid out here after
//! `include/uapi/linux/bpf.h`.

use super::error::PortIoError;
use super::queue::{RxQueue, Sent, TxQueue};
use pipeline::packet::{PacketBuf, PacketPool};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// UMEM frames (half for receive, half for transmit) and their size.
const NUM_FRAMES: u32 = 4096;
const FRAME_SIZE: u32 = 2048;
/// The longest frame the kernel copies into a receive UMEM frame: its
/// size less the XDP headroom the kernel keeps in front
/// (XDP_PACKET_HEADROOM; our UMEM asks for no headroom of its own).
pub const RX_FRAME_MAX: u32 = FRAME_SIZE - 256;
/// Descriptors per ring (power of two).
const RING_SIZE: u32 = 2048;
const RX_FRAMES: u32 = NUM_FRAMES / 2;

// include/uapi/linux/bpf.h
const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_F_MMAPABLE: u32 = 1 << 10;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
const BPF_PSEUDO_MAP_FD: u8 = 1;
const BPF_PSEUDO_MAP_VALUE: u8 = 2;
const BPF_FUNC_REDIRECT_MAP: i32 = 51;
const XDP_DROP: i32 = 1;
const XDP_PASS: i32 = 2;
const XDP_REDIRECT: i32 = 4;
// include/uapi/linux/if_link.h
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// Entries of our XSKMAP (receive queues of one interface).
const MAX_QUEUES: u32 = 64;

fn os_err(ifname: &str, what: &str) -> PortIoError {
    PortIoError::last_os_error(ifname, what)
}

/// `union bpf_attr`, as raw words: each command fills the fields it uses.
#[repr(C, align(8))]
struct BpfAttr([u8; 128]);

impl BpfAttr {
    fn new() -> BpfAttr {
        BpfAttr([0; 128])
    }
    fn u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(&mut self, off: usize, v: u64) -> &mut Self {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
}

fn bpf(cmd: libc::c_long, attr: &mut BpfAttr) -> i64 {
    // SAFETY: attr is a live, zero-initialised bpf_attr of the size passed;
    // the kernel reads (and for some commands writes) only within it.
    unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut BpfAttr,
            std::mem::size_of::<BpfAttr>(),
        )
    }
}

fn owned(fd: i64, ifname: &str, what: &str) -> Result<OwnedFd, PortIoError> {
    if fd < 0 {
        return Err(os_err(ifname, what));
    }
    // SAFETY: fd is a new descriptor the kernel just returned to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// One eBPF instruction (`struct bpf_insn`).
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    let regs = (dst & 0xf) | ((src & 0xf) << 4);
    let mut b = [0u8; 8];
    b[0] = code;
    b[1] = regs;
    b[2..4].copy_from_slice(&off.to_ne_bytes());
    b[4..8].copy_from_slice(&imm.to_ne_bytes());
    u64::from_ne_bytes(b)
}

/// The program, in `struct xdp_md` terms (`data` at 0, `data_end` at 4,
/// `rx_queue_index` at 16):
///
/// ```text
/// act = bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
/// if (act == XDP_REDIRECT && data + RX_FRAME_MAX + 1 <= data_end) {
///     __sync_fetch_and_add(&too_long, 1);   // the array map's one value
///     return XDP_DROP;
/// }
/// return act;
/// ```
///
/// Only frames on their way to our socket are counted (the redirect
/// asked for is not done when the program returns XDP_DROP).
fn program(xsks_fd: i32, too_long_fd: i32) -> [u64; 17] {
    let too_long = (RX_FRAME_MAX + 1) as i32;
    [
        insn(0xbf, 6, 1, 0, 0),                              // mov r6, r1 (ctx)
        insn(0x61, 2, 1, 16, 0),                             // ldxw r2, [r1 + 16]
        insn(0x18, 1, BPF_PSEUDO_MAP_FD, 0, xsks_fd),        // lddw r1, xsks
        insn(0, 0, 0, 0, 0),                                 //   (second half)
        insn(0xb7, 3, 0, 0, XDP_PASS),                       // mov r3, XDP_PASS
        insn(0x85, 0, 0, 0, BPF_FUNC_REDIRECT_MAP),          // call bpf_redirect_map
        insn(0x55, 0, 0, 9, XDP_REDIRECT),                   // jne r0, XDP_REDIRECT, exit
        insn(0x61, 2, 6, 0, 0),                              // ldxw r2, [r6 + 0] (data)
        insn(0x61, 3, 6, 4, 0),                              // ldxw r3, [r6 + 4] (data_end)
        insn(0x07, 2, 0, 0, too_long),                       // add r2, RX_FRAME_MAX + 1
        insn(0x2d, 2, 3, 5, 0),                              // jgt r2, r3, exit (it fits)
        insn(0x18, 1, BPF_PSEUDO_MAP_VALUE, 0, too_long_fd), // lddw r1, &too_long
        insn(0, 0, 0, 0, 0),                                 //   (value offset 0)
        insn(0xb7, 2, 0, 0, 1),                              // mov r2, 1
        insn(0xdb, 1, 2, 0, 0),                              // lock *(u64 *)(r1 + 0) += r2
        insn(0xb7, 0, 0, 0, XDP_DROP),                       // mov r0, XDP_DROP
        insn(0x95, 0, 0, 0, 0),                              // exit
    ]
}

/// Our XSKMAP, the too-long counter (its map and a mapping of its one
/// value), the program and the link attaching it to the interface.
struct XdpAttach {
    map: OwnedFd,
    _too_long_map: OwnedFd,
    too_long: Mapping,
    _prog: OwnedFd,
    link: Option<OwnedFd>,
    ifname: String,
}

impl XdpAttach {
    fn new(ifname: &str, ifindex: u32) -> Result<XdpAttach, PortIoError> {
        let mut a = BpfAttr::new();
        a.u32(0, BPF_MAP_TYPE_XSKMAP)
            .u32(4, 4)
            .u32(8, 4)
            .u32(12, MAX_QUEUES);
        let map = owned(
            bpf(BPF_MAP_CREATE, &mut a),
            ifname,
            "BPF_MAP_CREATE (xskmap)",
        )?;
        // One u64, mappable: the program adds to it, we read it.
        let mut a = BpfAttr::new();
        a.u32(0, BPF_MAP_TYPE_ARRAY)
            .u32(4, 4)
            .u32(8, 8)
            .u32(12, 1)
            .u32(16, BPF_F_MMAPABLE);
        let too_long_map = owned(
            bpf(BPF_MAP_CREATE, &mut a),
            ifname,
            "BPF_MAP_CREATE (too-long counter)",
        )?;
        // SAFETY: a page is the smallest mapping; `sysconf` has no
        // preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(8) as usize;
        let too_long = Mapping::ring(
            too_long_map.as_raw_fd(),
            page,
            0,
            ifname,
            "mmap (too-long counter)",
        )?;
        let insns = program(map.as_raw_fd(), too_long_map.as_raw_fd());
        let license = c"Dual MIT/Apache-2.0";
        let mut log = vec![0u8; 4096];
        let mut a = BpfAttr::new();
        a.u32(0, BPF_PROG_TYPE_XDP)
            .u32(4, insns.len() as u32)
            .u64(8, insns.as_ptr() as u64)
            .u64(16, license.as_ptr() as u64)
            .u32(24, 1)
            .u32(28, log.len() as u32)
            .u64(32, log.as_mut_ptr() as u64)
            .u32(68, BPF_XDP);
        let name = b"vswitch_xsk";
        a.0[48..48 + name.len()].copy_from_slice(name);
        let fd = bpf(BPF_PROG_LOAD, &mut a);
        if fd < 0 {
            let source = std::io::Error::last_os_error();
            let end = log.iter().position(|&c| c == 0).unwrap_or(log.len());
            return Err(PortIoError::XdpProgram {
                interface: ifname.to_string(),
                source,
                log: String::from_utf8_lossy(&log[..end]).trim().to_string(),
            });
        }
        let prog = owned(fd, ifname, "BPF_PROG_LOAD")?;
        let mut a = BpfAttr::new();
        a.u32(0, prog.as_raw_fd() as u32)
            .u32(4, ifindex)
            .u32(8, BPF_XDP)
            .u32(12, XDP_FLAGS_SKB_MODE);
        let link = owned(
            bpf(BPF_LINK_CREATE, &mut a),
            ifname,
            "BPF_LINK_CREATE (xdp)",
        )?;
        Ok(XdpAttach {
            map,
            _too_long_map: too_long_map,
            too_long,
            _prog: prog,
            link: Some(link),
            ifname: ifname.to_string(),
        })
    }

    /// Frames the program dropped as longer than a UMEM frame, since it
    /// was attached.
    fn too_long(&self) -> u64 {
        // SAFETY: the mapping is the array map's value area (page
        // aligned, at least a page), whose first u64 the program only
        // adds to atomically; it lives as long as `self`.
        let v = unsafe { &*(self.too_long.base as *const AtomicU64) };
        v.load(Ordering::Relaxed)
    }

    /// Puts socket `fd` at `queue` in the XSKMAP.
    fn insert(&self, queue: u32, fd: i32) -> Result<(), PortIoError> {
        let key = queue;
        let value = fd as u32;
        let mut a = BpfAttr::new();
        a.u32(0, self.map.as_raw_fd() as u32)
            .u64(8, &key as *const u32 as u64)
            .u64(16, &value as *const u32 as u64);
        if bpf(BPF_MAP_UPDATE_ELEM, &mut a) != 0 {
            return Err(os_err(&self.ifname, "BPF_MAP_UPDATE_ELEM (xskmap)"));
        }
        Ok(())
    }
}

impl Drop for XdpAttach {
    fn drop(&mut self) {
        // Closing the link detaches the program from the interface.
        self.link.take();
    }
}

/// A mapping (the UMEM, a ring, the too-long counter), unmapped on drop.
struct Mapping {
    base: *mut u8,
    len: usize,
}

impl Mapping {
    fn anonymous(len: usize, ifname: &str) -> Result<Mapping, PortIoError> {
        // SAFETY: a fresh private anonymous mapping; checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(os_err(ifname, "mmap (umem)"));
        }
        Ok(Mapping {
            base: p as *mut u8,
            len,
        })
    }

    fn ring(
        fd: i32,
        len: usize,
        pgoff: u64,
        ifname: &str,
        what: &str,
    ) -> Result<Mapping, PortIoError> {
        // SAFETY: mapping the socket's ring at the offset the kernel defines; checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(os_err(ifname, what));
        }
        Ok(Mapping {
            base: p as *mut u8,
            len,
        })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: base/len are a mapping we created and unmap once.
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, self.len);
        }
    }
}

/// One single-producer/single-consumer ring shared with the kernel.
struct Ring {
    /// Keeps the ring mapped while the pointers below are used.
    _map: Mapping,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    desc: *mut u8,
    mask: u32,
}

impl Ring {
    fn new(map: Mapping, off: &libc::xdp_ring_offset) -> Ring {
        let at = |o: u64| {
            // SAFETY: pointer arithmetic only, within the mapping: the
            // offsets come from XDP_MMAP_OFFSETS for this very mapping.
            unsafe { map.base.add(o as usize) }
        };
        Ring {
            producer: at(off.producer) as *const AtomicU32,
            consumer: at(off.consumer) as *const AtomicU32,
            flags: at(off.flags) as *const AtomicU32,
            desc: at(off.desc),
            mask: RING_SIZE - 1,
            _map: map,
        }
    }
    fn producer(&self) -> &AtomicU32 {
        // SAFETY: a u32 the kernel shares with us inside the live mapping.
        unsafe { &*self.producer }
    }
    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as above.
        unsafe { &*self.consumer }
    }
    fn needs_wakeup(&self) -> bool {
        // SAFETY: as above.
        unsafe { &*self.flags }.load(Ordering::Acquire) & libc::XDP_RING_NEED_WAKEUP != 0
    }
    /// Address slot `i` of a fill/completion ring.
    fn addr(&self, i: u32) -> *mut u64 {
        // SAFETY: within the ring's descriptor array (masked index).
        unsafe { (self.desc as *mut u64).add((i & self.mask) as usize) }
    }
    /// Descriptor slot `i` of an rx/tx ring.
    fn xdesc(&self, i: u32) -> *mut libc::xdp_desc {
        // SAFETY: as above.
        unsafe { (self.desc as *mut libc::xdp_desc).add((i & self.mask) as usize) }
    }
}

/// Counters of one AF_XDP port.
#[derive(Debug, Default)]
pub struct AfXdpStats {
    pub rx_packets: AtomicU64,
    /// Frames not taken: too large or no packet buffer free.
    pub rx_dropped: AtomicU64,
    pub tx_packets: AtomicU64,
    /// No free UMEM frame or no room in the transmit ring.
    pub tx_ring_full: AtomicU64,
    /// Longer than a UMEM frame.
    pub tx_too_long: AtomicU64,
}

/// What receive and transmit share: the socket, its UMEM, the XDP attach.
struct Socket {
    fd: OwnedFd,
    umem: Mapping,
    // Dropped after the socket's rings (field order): the program goes
    // last.
    xdp: XdpAttach,
    stats: AfXdpStats,
}

// SAFETY: the raw pointers inside point into mappings owned by this
// struct; receive (fill + rx rings) and transmit (tx + completion rings)
// touch disjoint rings and disjoint UMEM halves, and each side is owned by
// one thread at a time (the rx queue by its worker, the tx side behind a
// mutex).
unsafe impl Send for Socket {}
// SAFETY: as above; shared access is only to atomics and the fd.
unsafe impl Sync for Socket {}

pub struct AfXdpRx {
    sock: Arc<Socket>,
    fill: Ring,
    rx: Ring,
    /// Frames that reached us longer than a packet buffer, not yet taken
    /// by `take_too_long`.
    too_long: u64,
    /// The program's too-long count when `take_too_long` last read it.
    program_too_long: u64,
}

// SAFETY: the rings point into mappings owned by this value; one worker owns it.
unsafe impl Send for AfXdpRx {}

struct TxState {
    tx: Ring,
    comp: Ring,
    free: Vec<u64>,
    /// Descriptors produced since the last kick.
    pending: u32,
}

// SAFETY: the rings point into mappings owned by this value; reached only
// through the mutex.
unsafe impl Send for TxState {}

pub struct AfXdpTx {
    sock: Arc<Socket>,
    state: Mutex<TxState>,
}

impl AfXdpRx {
    pub fn stats(&self) -> &AfXdpStats {
        &self.sock.stats
    }
}

impl AfXdpTx {
    pub fn stats(&self) -> &AfXdpStats {
        &self.sock.stats
    }
}

fn setsockopt_u32(fd: i32, name: i32, v: u32, ifname: &str, what: &str) -> Result<(), PortIoError> {
    // SAFETY: v is a live u32 of the size passed.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            name,
            &v as *const u32 as *const libc::c_void,
            4,
        )
    };
    if r != 0 {
        return Err(os_err(ifname, what));
    }
    Ok(())
}

/// Opens an AF_XDP socket on `ifname`, receive queue `queue`, in copy
/// mode, with our XDP program attached (generic mode).
pub fn open(ifname: &str, queue: u32) -> Result<(AfXdpRx, AfXdpTx), PortIoError> {
    if queue >= MAX_QUEUES {
        return Err(PortIoError::QueueOutOfRange {
            interface: ifname.to_string(),
            queue,
            max: MAX_QUEUES,
        });
    }
    let cname =
        CString::new(ifname).map_err(|_| PortIoError::BadInterfaceName(ifname.to_string()))?;
    // SAFETY: cname is NUL-terminated.
    let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if ifindex == 0 {
        return Err(os_err(ifname, "no such interface"));
    }
    // SAFETY: plain socket creation, checked.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    let fd = owned(fd as i64, ifname, "socket(AF_XDP)")?;
    let s = fd.as_raw_fd();
    let umem = Mapping::anonymous((NUM_FRAMES * FRAME_SIZE) as usize, ifname)?;
    register_umem(s, &umem, ifname)?;
    let [rx, tx, fill, comp] = map_rings(s, ifname)?;
    // The first half of the UMEM waits in the fill ring for packets.
    for i in 0..RX_FRAMES {
        // SAFETY: slot i of the fill ring (we are its only producer).
        unsafe { *fill.addr(i) = (i * FRAME_SIZE) as u64 };
    }
    fill.producer().store(RX_FRAMES, Ordering::Release);
    let xdp = XdpAttach::new(ifname, ifindex)?;
    bind_queue(s, ifindex, queue, ifname)?;
    xdp.insert(queue, s)?;
    let sock = Arc::new(Socket {
        fd,
        umem,
        xdp,
        stats: AfXdpStats::default(),
    });
    let free = (RX_FRAMES..NUM_FRAMES)
        .map(|i| (i * FRAME_SIZE) as u64)
        .collect();
    Ok((
        AfXdpRx {
            sock: sock.clone(),
            fill,
            rx,
            too_long: 0,
            program_too_long: 0,
        },
        AfXdpTx {
            sock,
            state: Mutex::new(TxState {
                tx,
                comp,
                free,
                pending: 0,
            }),
        },
    ))
}

/// Registers `umem` as socket `s`'s packet memory and sizes its fill,
/// completion, rx and tx rings.
fn register_umem(s: i32, umem: &Mapping, ifname: &str) -> Result<(), PortIoError> {
    let reg = libc::xdp_umem_reg {
        addr: umem.base as u64,
        len: umem.len as u64,
        chunk_size: FRAME_SIZE,
        headroom: 0,
        flags: 0,
        tx_metadata_len: 0,
    };
    // SAFETY: reg is a live xdp_umem_reg of the size passed.
    let r = unsafe {
        libc::setsockopt(
            s,
            libc::SOL_XDP,
            libc::XDP_UMEM_REG,
            &reg as *const libc::xdp_umem_reg as *const libc::c_void,
            std::mem::size_of::<libc::xdp_umem_reg>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(os_err(ifname, "XDP_UMEM_REG"));
    }
    setsockopt_u32(
        s,
        libc::XDP_UMEM_FILL_RING,
        RING_SIZE,
        ifname,
        "XDP_UMEM_FILL_RING",
    )?;
    setsockopt_u32(
        s,
        libc::XDP_UMEM_COMPLETION_RING,
        RING_SIZE,
        ifname,
        "XDP_UMEM_COMPLETION_RING",
    )?;
    setsockopt_u32(s, libc::XDP_RX_RING, RING_SIZE, ifname, "XDP_RX_RING")?;
    setsockopt_u32(s, libc::XDP_TX_RING, RING_SIZE, ifname, "XDP_TX_RING")
}

/// Maps socket `s`'s four rings at the offsets the kernel gives: rx, tx,
/// fill, completion.
fn map_rings(s: i32, ifname: &str) -> Result<[Ring; 4], PortIoError> {
    // SAFETY: zeroed plain-data struct, filled by getsockopt below.
    let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
    // SAFETY: off is a live struct of `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            s,
            libc::SOL_XDP,
            libc::XDP_MMAP_OFFSETS,
            &mut off as *mut libc::xdp_mmap_offsets as *mut libc::c_void,
            &mut len,
        )
    };
    if r != 0 {
        return Err(os_err(ifname, "XDP_MMAP_OFFSETS"));
    }
    let desc = std::mem::size_of::<libc::xdp_desc>();
    let rx_len = off.rx.desc as usize + RING_SIZE as usize * desc;
    let tx_len = off.tx.desc as usize + RING_SIZE as usize * desc;
    let fr_len = off.fr.desc as usize + RING_SIZE as usize * 8;
    let cr_len = off.cr.desc as usize + RING_SIZE as usize * 8;
    let rx = Ring::new(
        Mapping::ring(
            s,
            rx_len,
            libc::XDP_PGOFF_RX_RING as u64,
            ifname,
            "mmap rx ring",
        )?,
        &off.rx,
    );
    let tx = Ring::new(
        Mapping::ring(
            s,
            tx_len,
            libc::XDP_PGOFF_TX_RING as u32 as u64,
            ifname,
            "mmap tx ring",
        )?,
        &off.tx,
    );
    let fill = Ring::new(
        Mapping::ring(
            s,
            fr_len,
            libc::XDP_UMEM_PGOFF_FILL_RING,
            ifname,
            "mmap fill ring",
        )?,
        &off.fr,
    );
    let comp = Ring::new(
        Mapping::ring(
            s,
            cr_len,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING,
            ifname,
            "mmap completion ring",
        )?,
        &off.cr,
    );
    Ok([rx, tx, fill, comp])
}

/// Binds socket `s` to receive queue `queue` of interface `ifindex`, in
/// copy mode. A socket closed a moment ago may still hold the queue (the
/// kernel releases it in the background): EBUSY is retried for up to 2 s.
fn bind_queue(s: i32, ifindex: u32, queue: u32, ifname: &str) -> Result<(), PortIoError> {
    let sa = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: libc::XDP_COPY | libc::XDP_USE_NEED_WAKEUP,
        sxdp_ifindex: ifindex,
        sxdp_queue_id: queue,
        sxdp_shared_umem_fd: 0,
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        // SAFETY: sa is a live sockaddr_xdp of the size passed.
        let r = unsafe {
            libc::bind(
                s,
                &sa as *const libc::sockaddr_xdp as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let busy = std::io::Error::last_os_error().raw_os_error() == Some(libc::EBUSY);
        if !busy || std::time::Instant::now() >= deadline {
            return Err(os_err(ifname, &format!("bind (queue {queue}, copy mode)")));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

impl Socket {
    /// Bytes `addr..addr+len` of the UMEM, if they lie within it.
    fn frame(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let start = addr as usize;
        let end = start.checked_add(len)?;
        if end > self.umem.len {
            return None;
        }
        // SAFETY: in bounds of the UMEM mapping; the kernel finished
        // writing this frame before publishing its descriptor.
        Some(unsafe { std::slice::from_raw_parts(self.umem.base.add(start), len) })
    }

    fn kick(&self) {
        // SAFETY: a zero-length send on our socket asks the kernel to
        // process the tx ring (copy mode); errors like EAGAIN are retried
        // at the next flush.
        unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            );
        }
    }
}

impl RxQueue for AfXdpRx {
    fn rx_burst(&mut self, pool: &mut PacketPool, out: &mut Vec<PacketBuf>, max: usize) -> usize {
        let cons = self.rx.consumer().load(Ordering::Relaxed);
        let prod = self.rx.producer().load(Ordering::Acquire);
        let avail = prod.wrapping_sub(cons).min(max as u32);
        if avail == 0 {
            if self.fill.needs_wakeup() {
                // SAFETY: a non-blocking zero-length receive wakes the
                // kernel's receive processing; nothing is read.
                unsafe {
                    libc::recvfrom(
                        self.sock.fd.as_raw_fd(),
                        std::ptr::null_mut(),
                        0,
                        libc::MSG_DONTWAIT,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                    );
                }
            }
            return 0;
        }
        let fill_prod = self.fill.producer().load(Ordering::Relaxed);
        let mut n = 0;
        for i in 0..avail {
            // SAFETY: descriptor cons+i was published by the kernel (below prod).
            let d = unsafe { *self.rx.xdesc(cons.wrapping_add(i)) };
            let taken = match (self.sock.frame(d.addr, d.len as usize), pool.get()) {
                (Some(frame), Some(mut b)) => {
                    if b.set_data(frame).is_ok() {
                        out.push(b);
                        true
                    } else {
                        self.too_long += 1;
                        pool.put(b);
                        false
                    }
                }
                (_, b) => {
                    if let Some(b) = b {
                        pool.put(b);
                    }
                    false
                }
            };
            if taken {
                n += 1;
            } else {
                self.sock.stats.rx_dropped.fetch_add(1, Ordering::Relaxed);
            }
            // The frame goes straight back to the fill ring (the ring has
            // room: it holds every receive frame at most once).
            let base = d.addr - d.addr % FRAME_SIZE as u64;
            // SAFETY: fill slot fill_prod+i is ours to write (we produce).
            unsafe { *self.fill.addr(fill_prod.wrapping_add(i)) = base };
        }
        self.rx
            .consumer()
            .store(cons.wrapping_add(avail), Ordering::Release);
        self.fill
            .producer()
            .store(fill_prod.wrapping_add(avail), Ordering::Release);
        self.sock
            .stats
            .rx_packets
            .fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// Those longer than a packet buffer, and those our XDP program
    /// dropped as longer than a UMEM frame.
    fn take_too_long(&mut self) -> u64 {
        let program = self.sock.xdp.too_long();
        let new = program.wrapping_sub(self.program_too_long);
        self.program_too_long = program;
        std::mem::take(&mut self.too_long) + new
    }
}

impl TxState {
    /// Takes completed transmit frames back into the free list.
    fn reclaim(&mut self) {
        let cons = self.comp.consumer().load(Ordering::Relaxed);
        let prod = self.comp.producer().load(Ordering::Acquire);
        let n = prod.wrapping_sub(cons);
        for i in 0..n {
            // SAFETY: slot published by the kernel (below prod).
            let a = unsafe { *self.comp.addr(cons.wrapping_add(i)) };
            self.free.push(a);
        }
        self.comp
            .consumer()
            .store(cons.wrapping_add(n), Ordering::Release);
    }
}

/// Why `push` did not take a frame.
enum Refused {
    TooLong,
    RingFull,
}

impl AfXdpTx {
    /// Copies `frame` into a free UMEM frame and produces its descriptor;
    /// refused (and counted) when it is longer than a UMEM frame or no
    /// frame or ring slot is free.
    fn push(&self, st: &mut TxState, frame: &[u8]) -> Result<(), Refused> {
        if frame.len() > FRAME_SIZE as usize {
            self.sock.stats.tx_too_long.fetch_add(1, Ordering::Relaxed);
            return Err(Refused::TooLong);
        }
        if st.free.is_empty() {
            st.reclaim();
        }
        let prod = st.tx.producer().load(Ordering::Relaxed);
        let cons = st.tx.consumer().load(Ordering::Acquire);
        let Some(addr) = st.free.pop() else {
            self.sock.stats.tx_ring_full.fetch_add(1, Ordering::Relaxed);
            return Err(Refused::RingFull);
        };
        if prod.wrapping_sub(cons) >= RING_SIZE {
            st.free.push(addr);
            self.sock.stats.tx_ring_full.fetch_add(1, Ordering::Relaxed);
            return Err(Refused::RingFull);
        }
        // SAFETY: addr is a free transmit frame of FRAME_SIZE bytes inside
        // the UMEM (second half), not in flight; the copy fits.
        unsafe {
            std::ptr::copy_nonoverlapping(
                frame.as_ptr(),
                self.sock.umem.base.add(addr as usize),
                frame.len(),
            );
            *st.tx.xdesc(prod) = libc::xdp_desc {
                addr,
                len: frame.len() as u32,
                options: 0,
            };
        }
        st.tx
            .producer()
            .store(prod.wrapping_add(1), Ordering::Release);
        st.pending += 1;
        self.sock.stats.tx_packets.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl TxQueue for AfXdpTx {
    fn send(&self, frame: &[u8]) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.push(&mut st, frame).is_ok()
    }

    fn send_burst(&self, frames: &mut dyn Iterator<Item = &[u8]>) -> usize {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        frames.filter(|f| self.push(&mut st, f).is_ok()).count()
    }

    /// As `send_burst`, saying how many were too long.
    fn send_bufs(&self, bufs: &mut Vec<PacketBuf>, pool: &mut PacketPool) -> Sent {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut sent = Sent::default();
        for b in bufs.drain(..) {
            match self.push(&mut st, b.data()) {
                Ok(()) => {
                    sent.frames += 1;
                    sent.bytes += b.len() as u64;
                }
                Err(Refused::TooLong) => sent.too_long += 1,
                Err(Refused::RingFull) => {}
            }
            pool.put(b);
        }
        sent
    }

    /// Kicks the kernel until it has taken every descriptor (in copy mode
    /// each kick sends a bounded batch, synchronously) or stops making
    /// progress; what is left goes at the next flush.
    fn flush(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let prod = st.tx.producer().load(Ordering::Relaxed);
        let mut cons = st.tx.consumer().load(Ordering::Acquire);
        if st.pending > 0 || cons != prod {
            st.pending = 0;
            for _ in 0..RING_SIZE / 16 {
                self.sock.kick();
                let now = st.tx.consumer().load(Ordering::Acquire);
                if now == prod || now == cons {
                    break;
                }
                cons = now;
            }
        }
        st.reclaim();
    }
}
