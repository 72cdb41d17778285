//! DPDK ports through our own thin binding (cargo feature `dpdk`).
//!
//! `build.rs` generates the declarations of the few DPDK functions used
//! here (bindgen, allowlist) and compiles `shim.c`, which turns DPDK's
//! static-inline burst and mbuf helpers into plain functions. EAL is
//! initialised once per process ([`eal_init`]); each port gets its own
//! mbuf pool with an explicit, small mbuf count, so the whole thing runs
//! without hugepages (`--no-huge --in-memory`) on virtual devices such as
//! `net_pcap`, `net_null`, `net_ring`, `net_af_packet` or `net_memif`.
//!
//! No copy on the worker's path: a received frame stays in its mbuf,
//! which the pipeline works on in place (a `PacketBuf` lent by
//! [`DPDK_LENDER`]); a frame in an mbuf leaves by any DPDK port as that
//! mbuf. Only frames that are not in an mbuf (from another backend, a
//! flood's copies, frames the switch makes) are copied into one of the
//! output port's pool. Every receive queue is owned by one worker; the
//! transmit queue is shared behind a mutex (DPDK's tx burst is not safe on
//! one queue from two threads), taken once per burst.

#[allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code,
    clippy::all,
    clippy::undocumented_unsafe_blocks
)]
mod sys {
    include!(concat!(env!("OUT_DIR"), "/dpdk_bindings.rs"));
}

use super::queue::{RxQueue, Sent, TxQueue};
use crossbeam::utils::CachePadded;
use pipeline::packet::{Lender, PacketBuf, PacketPool};
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Frames taken from a queue per call.
const RX_BURST: usize = 32;
/// Frames batched before a transmit queue is flushed early.
const TX_BATCH: usize = 32;
/// Descriptors per queue.
const RING_DESC: u16 = 512;
/// Per-lcore mbuf cache of a pool: DPDK's largest. A worker's mbufs then
/// cycle LIFO through its cache, warm; with a cache no larger than a burst
/// every burst went through the pool's FIFO ring and each mbuf came back
/// cold (l2-egress, 1 flow, DPDK: 281 -> 181 ns/packet).
const POOL_CACHE: u32 = 512;
/// Bytes of frame one mbuf holds: DPDK's default data room. Larger
/// frames arrive chained and are dropped as too long; a frame copied in
/// for transmit must fit it.
const MBUF_DATA_ROOM: u16 = 2048;
/// mbuf buffer size: the data room after DPDK's 128-byte headroom
/// (RTE_MBUF_DEFAULT_BUF_SIZE).
const MBUF_BUF_SIZE: u16 = MBUF_DATA_ROOM + 128;
/// Default mbufs per port pool.
pub const DEFAULT_MBUFS: u32 = 4095;

static EAL: OnceLock<Result<Vec<String>, DpdkError>> = OnceLock::new();

/// What DPDK refused. Each names the device (or EAL's arguments); the
/// reason is DPDK's own text (`rte_strerror`). Clone: EAL's outcome is
/// kept for the life of the process and returned to every later caller.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DpdkError {
    #[error("EAL argument `{0}` has a NUL")]
    NulInArgument(String),
    #[error("DPDK EAL init with {args:?}: {reason}")]
    EalInit { args: Vec<String>, reason: String },
    #[error("DPDK EAL already initialised with {done:?}; cannot re-initialise with {asked:?}")]
    AlreadyInitialised {
        done: Vec<String>,
        asked: Vec<String>,
    },
    #[error("{0}: DPDK EAL is not initialised")]
    NotInitialised(String),
    #[error("{0}: at least one receive queue")]
    NoReceiveQueue(String),
    #[error("{0}: bad device name")]
    BadDeviceName(String),
    #[error("{device}: no such DPDK device (give it to EAL, e.g. --vdev={device}): {reason}")]
    NoSuchDevice { device: String, reason: String },
    #[error("{device}: {asked} receive queues asked, the device has {max}")]
    TooManyQueues {
        device: String,
        asked: u16,
        max: u16,
    },
    /// A call on the device failed; `what` names it (`configure`, `rx
    /// queue 0`, `mbuf pool of 511`, ...).
    #[error("{device}: {what}: {reason}")]
    Device {
        device: String,
        what: String,
        reason: String,
    },
}

fn device_error(device: &str, what: impl Into<String>, reason: String) -> DpdkError {
    DpdkError::Device {
        device: device.to_string(),
        what: what.into(),
        reason,
    }
}

fn errno_text() -> String {
    // SAFETY: vs_errno reads DPDK's per-thread errno; rte_strerror returns
    // a pointer to a static or thread-local NUL-terminated string.
    unsafe {
        let e = sys::vs_errno();
        let p = sys::rte_strerror(e);
        if p.is_null() {
            format!("error {e}")
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

fn code_text(rc: i32) -> String {
    // SAFETY: as in errno_text.
    unsafe {
        let p = sys::rte_strerror(rc.abs());
        if p.is_null() {
            format!("error {rc}")
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

/// Initialises DPDK's EAL with `args` (as on a DPDK command line, without
/// the program name). Once per process: a second call with the same
/// arguments is a no-op, with different ones an error naming both. The
/// calling thread's CPU affinity is restored afterwards (EAL pins its
/// main thread to the main lcore; vswitchd pins its own workers).
pub fn eal_init(args: &[String]) -> Result<(), DpdkError> {
    let r = EAL.get_or_init(|| init_once(args));
    match r {
        Ok(done) if done == args => Ok(()),
        Ok(done) => Err(DpdkError::AlreadyInitialised {
            done: done.clone(),
            asked: args.to_vec(),
        }),
        Err(e) => Err(e.clone()),
    }
}

/// Releases EAL's resources at exit (after every port is closed). Does
/// nothing when EAL was never initialised.
pub fn eal_cleanup() {
    if EAL.get().is_some_and(|r| r.is_ok()) {
        // SAFETY: EAL was initialised; callers close their ports first.
        unsafe {
            sys::rte_eal_cleanup();
        }
    }
}

fn init_once(args: &[String]) -> Result<Vec<String>, DpdkError> {
    let mut argv_c: Vec<CString> = Vec::with_capacity(args.len() + 1);
    argv_c.push(c"vswitchd".to_owned());
    for a in args {
        argv_c.push(CString::new(a.as_str()).map_err(|_| DpdkError::NulInArgument(a.clone()))?);
    }
    // EAL may permute argv: give it its own array of pointers.
    let mut argv: Vec<*mut libc::c_char> = argv_c.iter().map(|c| c.as_ptr() as *mut _).collect();
    let saved = affinity();
    // SAFETY: argv points to NUL-terminated strings that outlive the call
    // (EAL keeps no pointer to them after rte_eal_init returns in 22.11
    // except for the program name, which we leak below).
    let rc = unsafe { sys::rte_eal_init(argv.len() as i32, argv.as_mut_ptr()) };
    if let Some(set) = saved {
        restore_affinity(&set);
    }
    if rc < 0 {
        return Err(DpdkError::EalInit {
            args: args.to_vec(),
            reason: errno_text(),
        });
    }
    // Keep the strings alive for the life of the process.
    std::mem::forget(argv_c);
    Ok(args.to_vec())
}

fn affinity() -> Option<libc::cpu_set_t> {
    // SAFETY: sched_getaffinity writes into a zeroed cpu_set_t of the size given.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        (libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0)
            .then_some(set)
    }
}

fn restore_affinity(set: &libc::cpu_set_t) {
    // SAFETY: set is a valid cpu_set_t of the size given.
    unsafe {
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set);
    }
}

/// Counters of one port.
#[derive(Debug, Default)]
pub struct DpdkCounters {
    pub rx: AtomicU64,
    /// Received but not taken in: chained mbufs, too large, no buffer.
    pub rx_dropped: AtomicU64,
    pub tx: AtomicU64,
    /// No free mbuf, longer than an mbuf holds (to copy), or the device
    /// did not take it at flush.
    pub tx_dropped: AtomicU64,
}

/// The device's own statistics (`rte_eth_stats_get`).
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct DeviceStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

/// An mbuf pool. Freed after its port is closed.
struct Pool(*mut sys::rte_mempool);

// SAFETY: a DPDK mempool is designed for use from many threads (its
// ring is multi-producer/multi-consumer); we only pass the pointer to
// DPDK functions.
unsafe impl Send for Pool {}
// SAFETY: as above.
unsafe impl Sync for Pool {}

/// A started port; stopped and closed when the last queue handle goes.
struct Port {
    id: u16,
    name: String,
    pool: Pool,
    counters: DpdkCounters,
}

impl Drop for Port {
    fn drop(&mut self) {
        // SAFETY: the port was started by us; no queue handle is left.
        unsafe {
            sys::rte_eth_dev_stop(self.id);
            sys::rte_eth_dev_close(self.id);
            sys::rte_mempool_free(self.pool.0);
        }
        tracing::info!(port = %self.name, "DPDK port stopped and closed");
    }
}

impl Port {
    fn stats(&self) -> Result<DeviceStats, DpdkError> {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: s is a valid rte_eth_stats to fill.
        let rc = unsafe { sys::rte_eth_stats_get(self.id, &mut s) };
        if rc != 0 {
            return Err(device_error(&self.name, "stats", code_text(rc)));
        }
        Ok(DeviceStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }
}

/// Opens the DPDK device `device` (a name EAL knows, e.g. `net_null0`
/// from `--vdev=net_null0`) with `rx_queues` receive queues and one
/// transmit queue, an mbuf pool of `mbufs`, promiscuous, started. With
/// several receive queues the device hashes flows over them with
/// `rss_key` (RSS, the default redirection table), as conntrack's owners
/// assume (`pipeline::rss`). `tx_queues` transmit queues (as many as the
/// device has, at most): worker w sends on queue w modulo their number, so
/// workers do not share one.
pub fn open(
    device: &str,
    rx_queues: u16,
    tx_queues: u16,
    mbufs: u32,
    rss_key: &[u8; pipeline::rss::KEY_LEN],
) -> Result<(Vec<DpdkRx>, DpdkTx), DpdkError> {
    if EAL.get().is_none_or(|r| r.is_err()) {
        return Err(DpdkError::NotInitialised(device.to_string()));
    }
    if rx_queues == 0 {
        return Err(DpdkError::NoReceiveQueue(device.to_string()));
    }
    let cname = CString::new(device).map_err(|_| DpdkError::BadDeviceName(device.to_string()))?;
    let mut id: u16 = 0;
    // SAFETY: cname is NUL-terminated; id is written on success.
    let rc = unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
    if rc != 0 {
        return Err(DpdkError::NoSuchDevice {
            device: device.to_string(),
            reason: code_text(rc),
        });
    }
    let mut info = sys::rte_eth_dev_info::default();
    // SAFETY: info is a valid struct to fill.
    let rc = unsafe { sys::rte_eth_dev_info_get(id, &mut info) };
    if rc != 0 {
        return Err(device_error(device, "dev_info_get", code_text(rc)));
    }
    if rx_queues > info.max_rx_queues {
        return Err(DpdkError::TooManyQueues {
            device: device.to_string(),
            asked: rx_queues,
            max: info.max_rx_queues,
        });
    }
    let pool_name = CString::new(format!("vs_{id}_{}", std::process::id()))
        .map_err(|e| device_error(device, "mbuf pool name", e.to_string()))?;
    // SAFETY: plain calls with valid arguments; the pool pointer is checked.
    let pool = unsafe {
        sys::rte_pktmbuf_pool_create(
            pool_name.as_ptr(),
            mbufs,
            POOL_CACHE.min(mbufs * 2 / 3),
            0,
            MBUF_BUF_SIZE,
            sys::rte_socket_id() as i32,
        )
    };
    if pool.is_null() {
        return Err(device_error(
            device,
            format!("mbuf pool of {mbufs}"),
            errno_text(),
        ));
    }
    let port = Arc::new(Port {
        id,
        name: device.to_string(),
        pool: Pool(pool),
        counters: DpdkCounters::default(),
    });
    let mut conf = sys::rte_eth_conf::default();
    let mut key_buf = [0u8; 64];
    // SAFETY: conf is a valid struct; the calls take the port id and
    // pointers to live values; each return code is checked.
    unsafe {
        sys::vs_eth_conf_default(&mut conf);
        let hashed = sys::vs_eth_conf_rss(
            &mut conf,
            &info,
            rx_queues,
            rss_key.as_ptr(),
            rss_key.len() as u8,
            key_buf.as_mut_ptr(),
        );
        if rx_queues > 1 && hashed == 0 {
            tracing::warn!(
                port = device,
                rx_queues,
                "the device does not hash flows over its queues (no RSS): \
                 connections may cross workers"
            );
        }
        let rc = sys::rte_eth_dev_configure(id, rx_queues, tx_queues, &conf);
        if rc != 0 {
            return Err(device_error(device, "configure", code_text(rc)));
        }
        let socket = sys::rte_eth_dev_socket_id(id);
        let socket = if socket < 0 { 0 } else { socket as u32 };
        for q in 0..rx_queues {
            let rc = sys::rte_eth_rx_queue_setup(
                id,
                q,
                RING_DESC,
                socket,
                std::ptr::null(),
                port.pool.0,
            );
            if rc != 0 {
                return Err(device_error(device, format!("rx queue {q}"), code_text(rc)));
            }
        }
        for q in 0..tx_queues {
            let rc = sys::rte_eth_tx_queue_setup(id, q, RING_DESC, socket, std::ptr::null());
            if rc != 0 {
                return Err(device_error(device, format!("tx queue {q}"), code_text(rc)));
            }
        }
        let rc = sys::rte_eth_dev_start(id);
        if rc != 0 {
            return Err(device_error(device, "start", code_text(rc)));
        }
        // Not every virtual device supports it (net_pcap does not care).
        let _ = sys::rte_eth_promiscuous_enable(id);
    }
    tracing::info!(port = device, id, rx_queues, mbufs, "DPDK port started");
    let rx = (0..rx_queues)
        .map(|q| DpdkRx {
            port: port.clone(),
            queue: q,
            too_long: 0,
        })
        .collect();
    let tx = DpdkTx {
        port,
        queues: (0..tx_queues)
            .map(|_| CachePadded::new(Mutex::new(())))
            .collect(),
    };
    Ok((rx, tx))
}

/// One receive queue of a DPDK port.
pub struct DpdkRx {
    port: Arc<Port>,
    queue: u16,
    /// Frames dropped as too long (chained, or over the pool's
    /// `max_frame`), not yet taken by `take_too_long`.
    too_long: u64,
}

impl DpdkRx {
    pub fn counters(&self) -> &DpdkCounters {
        &self.port.counters
    }

    pub fn device_stats(&self) -> Result<DeviceStats, DpdkError> {
        self.port.stats()
    }
}

/// Gives a received mbuf back to its pool.
unsafe fn release_mbuf(handle: usize) {
    // SAFETY: `handle` is an mbuf lent by `rx_burst`, released once.
    unsafe { sys::vs_mbuf_free(handle as *mut sys::rte_mbuf) }
}

/// The lender of every frame a DPDK port receives.
pub static DPDK_LENDER: Lender = Lender {
    id: 0x4450_444b,
    release: release_mbuf,
};

impl RxQueue for DpdkRx {
    /// One call into the shim per burst: each frame stays in its mbuf and
    /// reaches the pipeline as a lent `PacketBuf` (no copy). Chained
    /// mbufs (frames longer than one mbuf's 2,048 bytes) and frames larger
    /// than the switch's `max_frame` are dropped, counted as `rx_dropped`
    /// and as too long (`take_too_long`).
    fn rx_burst(&mut self, pool: &mut PacketPool, out: &mut Vec<PacketBuf>, max: usize) -> usize {
        let want = max.min(RX_BURST);
        if want == 0 {
            return 0;
        }
        let mut frames = [sys::vs_rx_frame::default(); RX_BURST];
        let mut chained: u16 = 0;
        // SAFETY: frames has room for `want`; this queue is owned by this
        // handle (one worker).
        let n = unsafe {
            sys::vs_rx_burst_frames(
                self.port.id,
                self.queue,
                frames.as_mut_ptr(),
                want as u16,
                &mut chained,
            )
        } as usize;
        let mut dropped = chained as u64;
        self.too_long += chained as u64;
        let mut taken = 0;
        // Each buffer is written where it will lie in `out` (built on the
        // stack and copied in, a just-written struct would stall the copy
        // on store forwarding).
        out.reserve(n);
        let first = out.len();
        for f in &frames[..n.min(RX_BURST)] {
            let (start, len, cap) = (f.data_off as usize, f.data_len as usize, f.buf_len as usize);
            match std::ptr::NonNull::new(f.buf) {
                Some(base) if start + len <= cap && len <= pool.max_frame() => {
                    let Some(slot) = out.spare_capacity_mut().get_mut(taken) else {
                        // SAFETY: as below; not lent, so freed here, once.
                        unsafe { sys::vs_mbuf_free(f.mbuf) };
                        dropped += 1;
                        continue;
                    };
                    // SAFETY: the mbuf is ours from rx_burst until released;
                    // its buffer is buf_len bytes at buf_addr, the frame
                    // data_len bytes from data_off (checked above).
                    slot.write(unsafe {
                        PacketBuf::lent(base, cap, start, len, &DPDK_LENDER, f.mbuf as usize)
                    });
                    taken += 1;
                }
                _ => {
                    // SAFETY: as above; not lent, so freed here, once.
                    unsafe { sys::vs_mbuf_free(f.mbuf) };
                    dropped += 1;
                    self.too_long += (len > pool.max_frame()) as u64;
                }
            }
        }
        // SAFETY: the first `taken` spare slots were written above, each
        // once, and `reserve(n)` made room for them.
        unsafe { out.set_len(first + taken) };
        let c = &self.port.counters;
        if dropped > 0 {
            c.rx_dropped.fetch_add(dropped, Ordering::Relaxed);
        }
        c.rx.fetch_add(taken as u64, Ordering::Relaxed);
        taken
    }

    fn take_too_long(&mut self) -> u64 {
        std::mem::take(&mut self.too_long)
    }
}

/// A worker thread registered with EAL as a non-EAL lcore, for as long as
/// this lives. A registered thread has an lcore id, so the mempools'
/// per-lcore caches serve its mbuf allocations and frees (LIFO,
/// cache-warm) instead of each one going through the pool's shared ring.
pub struct LcoreRegistration(bool);

impl LcoreRegistration {
    /// Registers the calling thread if EAL runs (nothing otherwise).
    pub fn for_this_thread() -> LcoreRegistration {
        if !EAL.get().is_some_and(|r| r.is_ok()) {
            return LcoreRegistration(false);
        }
        // SAFETY: EAL is initialised; registering the calling thread has no
        // other precondition (it fails cleanly when no lcore id is free).
        let rc = unsafe { sys::rte_thread_register() };
        if rc != 0 {
            tracing::warn!("DPDK: a worker thread could not be registered as an lcore");
        }
        LcoreRegistration(rc == 0)
    }
}

impl Drop for LcoreRegistration {
    fn drop(&mut self) {
        if self.0 {
            // SAFETY: undoes the registration of this same thread.
            unsafe { sys::rte_thread_unregister() };
        }
    }
}

/// The transmit queue of a DPDK port (shared by the workers). DPDK's
/// `tx_burst` is not safe from two threads on one queue: the mutex
/// serialises the workers, taken once per burst.
pub struct DpdkTx {
    port: Arc<Port>,
    /// A lock per transmit queue (queue w's is taken by worker w, and by
    /// any other thread sending on it: control's packets go on queue 0).
    queues: Box<[CachePadded<Mutex<()>>]>,
}

impl DpdkTx {
    pub fn counters(&self) -> &DpdkCounters {
        &self.port.counters
    }

    pub fn device_stats(&self) -> Result<DeviceStats, DpdkError> {
        self.port.stats()
    }
}

/// Up to `TX_BATCH` frames of a `send_bufs` on their way to the shim: an
/// mbuf each, or the bytes of a buffer of ours (kept alive in `copied`
/// until the shim has copied them; empty, and never allocated, when every
/// frame is an mbuf).
struct TxChunk {
    n: usize,
    mbufs: [*mut sys::rte_mbuf; TX_BATCH],
    frames: [*const u8; TX_BATCH],
    offs: [u16; TX_BATCH],
    lens: [u16; TX_BATCH],
    copied: Vec<PacketBuf>,
}

impl Default for TxChunk {
    fn default() -> TxChunk {
        TxChunk {
            n: 0,
            mbufs: [std::ptr::null_mut(); TX_BATCH],
            frames: [std::ptr::null(); TX_BATCH],
            offs: [0; TX_BATCH],
            lens: [0; TX_BATCH],
            copied: Vec::new(),
        }
    }
}

impl TxChunk {
    /// Sends the chunk on `queue` (the caller holds its lock), gives the
    /// copied buffers back to `pool` and empties it.
    fn send(&mut self, tx: &DpdkTx, queue: u16, pool: &mut PacketPool, total: &mut Sent) {
        let n = self.n;
        let s = tx.send_frames(
            queue,
            &mut self.mbufs[..n],
            &self.frames[..n],
            &self.offs[..n],
            &self.lens[..n],
        );
        total.frames += s.frames;
        total.bytes += s.bytes;
        for b in self.copied.drain(..) {
            pool.put(b);
        }
        self.n = 0;
    }
}

impl DpdkTx {
    /// The calling worker's transmit queue, locked.
    fn lock_queue(&self) -> (u16, std::sync::MutexGuard<'_, ()>) {
        let q = super::queue::thread_worker() % self.queues.len().max(1);
        let guard = self.queues[q].lock().unwrap_or_else(|e| e.into_inner());
        (q as u16, guard)
    }

    /// Sends one chunk (at most `TX_BATCH`) of `send_bufs` on `queue`;
    /// the caller holds its lock and keeps the copied frames' buffers
    /// alive.
    fn send_frames(
        &self,
        queue: u16,
        mbufs: &mut [*mut sys::rte_mbuf],
        frames: &[*const u8],
        offs: &[u16],
        lens: &[u16],
    ) -> Sent {
        let (mut bytes, mut no_mbuf) = (0u64, 0u16);
        // SAFETY: mbufs[i] is null or an mbuf we own (given up to the shim
        // here) whose frame is lens[i] bytes at offs[i] inside its buffer;
        // frames[i] (for null mbufs) points to lens[i] bytes alive for the
        // call; the queue is ours under the lock.
        let sent = unsafe {
            sys::vs_tx_burst_frames(
                self.port.id,
                queue,
                self.port.pool.0,
                mbufs.as_mut_ptr(),
                frames.as_ptr(),
                offs.as_ptr(),
                lens.as_ptr(),
                lens.len() as u16,
                &mut bytes,
                &mut no_mbuf,
            )
        } as u64;
        let c = &self.port.counters;
        c.tx.fetch_add(sent, Ordering::Relaxed);
        c.tx_dropped
            .fetch_add(lens.len() as u64 - sent, Ordering::Relaxed);
        Sent {
            frames: sent,
            bytes,
            too_long: 0,
        }
    }
}

impl TxQueue for DpdkTx {
    /// Frames still in an mbuf (from any DPDK port) leave as that mbuf;
    /// the rest are copied into mbufs of this port's pool, and one longer
    /// than an mbuf holds is refused as too long.
    fn send_bufs(&self, bufs: &mut Vec<PacketBuf>, pool: &mut PacketPool) -> Sent {
        let (queue, _q) = self.lock_queue();
        let mut total = Sent::default();
        let mut c = TxChunk::default();
        for b in bufs.drain(..) {
            let len = b.len();
            let n = c.n;
            match b.into_lent(DPDK_LENDER.id) {
                Ok((handle, start, _)) => {
                    c.mbufs[n] = handle as *mut sys::rte_mbuf;
                    c.frames[n] = std::ptr::null();
                    // start + len <= buf_len, a u16, for a lent mbuf.
                    c.offs[n] = start as u16;
                }
                Err(b) if len > MBUF_DATA_ROOM as usize => {
                    self.port
                        .counters
                        .tx_dropped
                        .fetch_add(1, Ordering::Relaxed);
                    total.too_long += 1;
                    pool.put(b);
                    continue;
                }
                Err(b) => {
                    c.mbufs[n] = std::ptr::null_mut();
                    c.frames[n] = b.data().as_ptr();
                    c.offs[n] = 0;
                    c.copied.push(b);
                }
            }
            c.lens[n] = len as u16;
            c.n += 1;
            if c.n == TX_BATCH {
                c.send(self, queue, pool, &mut total);
            }
        }
        if c.n > 0 {
            c.send(self, queue, pool, &mut total);
        }
        total
    }

    fn send(&self, frame: &[u8]) -> bool {
        self.send_burst(&mut std::iter::once(frame)) == 1
    }

    fn send_burst(&self, frames: &mut dyn Iterator<Item = &[u8]>) -> usize {
        let (queue, _q) = self.lock_queue();
        // Every frame copied into an mbuf of this port's pool (no mbufs given).
        let mut mbufs = [std::ptr::null_mut::<sys::rte_mbuf>(); TX_BATCH];
        let offs = [0u16; TX_BATCH];
        let mut ptrs: [*const u8; TX_BATCH] = [std::ptr::null(); TX_BATCH];
        let mut lens = [0u16; TX_BATCH];
        let (mut n, mut sent) = (0usize, 0u64);
        for f in frames {
            if f.len() > MBUF_DATA_ROOM as usize {
                self.port
                    .counters
                    .tx_dropped
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            ptrs[n] = f.as_ptr();
            lens[n] = f.len() as u16;
            n += 1;
            if n == TX_BATCH {
                sent += self
                    .send_frames(queue, &mut mbufs[..n], &ptrs[..n], &offs[..n], &lens[..n])
                    .frames;
                n = 0;
            }
        }
        if n > 0 {
            sent += self
                .send_frames(queue, &mut mbufs[..n], &ptrs[..n], &offs[..n], &lens[..n])
                .frames;
        }
        sent as usize
    }
}
