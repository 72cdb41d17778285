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
//! Receive copies each frame out of its mbuf into a `PacketBuf` and frees
//! the mbuf at once; transmit copies a frame into a fresh mbuf, batches
//! them per port and sends at `flush` (the end of a worker's burst).
//! Every receive queue is owned by one worker; the transmit queue is shared
//! behind a mutex (DPDK's tx burst is not safe on one queue from two
//! threads).

#[allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code,
    clippy::all
)]
mod sys {
    include!(concat!(env!("OUT_DIR"), "/dpdk_bindings.rs"));
}

use super::{RxQueue, TxQueue};
use pipeline::packet::{PacketBuf, PacketPool};
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Frames taken from a queue per call.
const RX_BURST: usize = 32;
/// Frames batched before a transmit queue is flushed early.
const TX_BATCH: usize = 32;
/// Descriptors per queue.
const RING_DESC: u16 = 512;
/// Per-lcore mbuf cache of a pool.
const POOL_CACHE: u32 = 32;
/// mbuf buffer size: DPDK's default (2048 bytes of data after the
/// 128-byte headroom, RTE_MBUF_DEFAULT_BUF_SIZE). Larger frames arrive
/// chained and are dropped as `rx_dropped`.
const MBUF_BUF_SIZE: u16 = 2048 + 128;
/// Default mbufs per port pool.
pub const DEFAULT_MBUFS: u32 = 4095;

static EAL: OnceLock<Result<Vec<String>, String>> = OnceLock::new();

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
pub fn eal_init(args: &[String]) -> Result<(), String> {
    let r = EAL.get_or_init(|| init_once(args));
    match r {
        Ok(done) if done == args => Ok(()),
        Ok(done) => Err(format!(
            "DPDK EAL already initialised with {done:?}; cannot re-initialise with {args:?}"
        )),
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

fn init_once(args: &[String]) -> Result<Vec<String>, String> {
    let mut argv_c: Vec<CString> = Vec::with_capacity(args.len() + 1);
    argv_c.push(CString::new("vswitchd").map_err(|e| e.to_string())?);
    for a in args {
        argv_c.push(CString::new(a.as_str()).map_err(|_| format!("EAL argument `{a}` has a NUL"))?);
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
        return Err(format!("DPDK EAL init with {args:?}: {}", errno_text()));
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
    /// No free mbuf, or the device did not take it at flush.
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
    fn stats(&self) -> Result<DeviceStats, String> {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: s is a valid rte_eth_stats to fill.
        let rc = unsafe { sys::rte_eth_stats_get(self.id, &mut s) };
        if rc != 0 {
            return Err(format!("{}: stats: {}", self.name, code_text(rc)));
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
/// transmit queue, an mbuf pool of `mbufs`, promiscuous, started.
pub fn open(device: &str, rx_queues: u16, mbufs: u32) -> Result<(Vec<DpdkRx>, DpdkTx), String> {
    if EAL.get().is_none_or(|r| r.is_err()) {
        return Err(format!("{device}: DPDK EAL is not initialised"));
    }
    if rx_queues == 0 {
        return Err(format!("{device}: at least one receive queue"));
    }
    let cname = CString::new(device).map_err(|_| format!("{device}: bad device name"))?;
    let mut id: u16 = 0;
    // SAFETY: cname is NUL-terminated; id is written on success.
    let rc = unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
    if rc != 0 {
        return Err(format!(
            "{device}: no such DPDK device (give it to EAL, e.g. --vdev={device}): {}",
            code_text(rc)
        ));
    }
    let mut info = sys::rte_eth_dev_info::default();
    // SAFETY: info is a valid struct to fill.
    let rc = unsafe { sys::rte_eth_dev_info_get(id, &mut info) };
    if rc != 0 {
        return Err(format!("{device}: dev_info_get: {}", code_text(rc)));
    }
    if rx_queues > info.max_rx_queues {
        return Err(format!(
            "{device}: {rx_queues} receive queues asked, the device has {}",
            info.max_rx_queues
        ));
    }
    let pool_name =
        CString::new(format!("vs_{id}_{}", std::process::id())).map_err(|e| e.to_string())?;
    // SAFETY: plain calls with valid arguments; the pool pointer is checked.
    let pool = unsafe {
        sys::rte_pktmbuf_pool_create(
            pool_name.as_ptr(),
            mbufs,
            POOL_CACHE.min(mbufs / 2),
            0,
            MBUF_BUF_SIZE,
            sys::rte_socket_id() as i32,
        )
    };
    if pool.is_null() {
        return Err(format!("{device}: mbuf pool of {mbufs}: {}", errno_text()));
    }
    let port = Arc::new(Port {
        id,
        name: device.to_string(),
        pool: Pool(pool),
        counters: DpdkCounters::default(),
    });
    let mut conf = sys::rte_eth_conf::default();
    // SAFETY: conf is a valid struct; the calls take the port id and
    // pointers to live values; each return code is checked.
    unsafe {
        sys::vs_eth_conf_default(&mut conf);
        let rc = sys::rte_eth_dev_configure(id, rx_queues, 1, &conf);
        if rc != 0 {
            return Err(format!("{device}: configure: {}", code_text(rc)));
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
                return Err(format!("{device}: rx queue {q}: {}", code_text(rc)));
            }
        }
        let rc = sys::rte_eth_tx_queue_setup(id, 0, RING_DESC, socket, std::ptr::null());
        if rc != 0 {
            return Err(format!("{device}: tx queue: {}", code_text(rc)));
        }
        let rc = sys::rte_eth_dev_start(id);
        if rc != 0 {
            return Err(format!("{device}: start: {}", code_text(rc)));
        }
        // Not every virtual device supports it (net_pcap does not care).
        let _ = sys::rte_eth_promiscuous_enable(id);
    }
    tracing::info!(port = device, id, rx_queues, mbufs, "DPDK port started");
    let rx = (0..rx_queues)
        .map(|q| DpdkRx {
            port: port.clone(),
            queue: q,
        })
        .collect();
    let tx = DpdkTx {
        port,
        batch: Mutex::new(Batch(Vec::with_capacity(TX_BATCH))),
    };
    Ok((rx, tx))
}

/// One receive queue of a DPDK port.
pub struct DpdkRx {
    port: Arc<Port>,
    queue: u16,
}

impl DpdkRx {
    pub fn counters(&self) -> &DpdkCounters {
        &self.port.counters
    }

    pub fn device_stats(&self) -> Result<DeviceStats, String> {
        self.port.stats()
    }
}

impl RxQueue for DpdkRx {
    fn rx_burst(&mut self, pool: &mut PacketPool, out: &mut Vec<PacketBuf>, max: usize) -> usize {
        let mut mbufs: [*mut sys::rte_mbuf; RX_BURST] = [std::ptr::null_mut(); RX_BURST];
        let want = max.min(RX_BURST) as u16;
        // SAFETY: mbufs has room for `want` pointers; this queue is owned by
        // this handle (one worker).
        let n = unsafe { sys::vs_rx_burst(self.port.id, self.queue, mbufs.as_mut_ptr(), want) };
        let mut taken = 0;
        for &m in mbufs.iter().take(n as usize) {
            let mut len: u16 = 0;
            // SAFETY: m is an mbuf the driver just gave us; its data stays
            // valid until we free it below.
            let data = unsafe { sys::vs_mbuf_data(m, &mut len) };
            let ok = if data.is_null() {
                false
            } else {
                // SAFETY: data points to len readable bytes (see above).
                let frame = unsafe { std::slice::from_raw_parts(data, len as usize) };
                match pool.get() {
                    Some(mut b) => {
                        if b.set_data(frame).is_ok() {
                            out.push(b);
                            taken += 1;
                            true
                        } else {
                            pool.put(b);
                            false
                        }
                    }
                    None => false,
                }
            };
            if !ok {
                self.port
                    .counters
                    .rx_dropped
                    .fetch_add(1, Ordering::Relaxed);
            }
            // SAFETY: m is ours to free, and not used after this.
            unsafe { sys::vs_mbuf_free(m) };
        }
        self.port
            .counters
            .rx
            .fetch_add(taken as u64, Ordering::Relaxed);
        taken
    }
}

/// Mbufs waiting to be sent.
struct Batch(Vec<*mut sys::rte_mbuf>);

// SAFETY: the mbufs in a batch are owned by the batch alone (allocated
// for it and handed to the driver or freed at flush), and the batch is
// only reached through the mutex.
unsafe impl Send for Batch {}

/// The transmit queue of a DPDK port (shared by the workers).
pub struct DpdkTx {
    port: Arc<Port>,
    batch: Mutex<Batch>,
}

impl DpdkTx {
    pub fn counters(&self) -> &DpdkCounters {
        &self.port.counters
    }

    pub fn device_stats(&self) -> Result<DeviceStats, String> {
        self.port.stats()
    }

    fn send_batch(&self, b: &mut Batch) {
        if b.0.is_empty() {
            return;
        }
        let n = b.0.len() as u16;
        // SAFETY: the batch holds n valid mbufs; the driver takes ownership
        // of the first `sent`, we free the rest. Only one thread is here
        // (the mutex), as DPDK requires per queue.
        let sent = unsafe { sys::vs_tx_burst(self.port.id, 0, b.0.as_mut_ptr(), n) };
        for &m in &b.0[sent as usize..] {
            // SAFETY: not taken by the driver: ours to free.
            unsafe { sys::vs_mbuf_free(m) };
        }
        let c = &self.port.counters;
        c.tx.fetch_add(sent as u64, Ordering::Relaxed);
        c.tx_dropped.fetch_add((n - sent) as u64, Ordering::Relaxed);
        b.0.clear();
    }
}

impl DpdkTx {
    /// A new mbuf holding `frame` (None when the pool is empty or the
    /// frame too long, counted).
    fn mbuf(&self, frame: &[u8]) -> Option<*mut sys::rte_mbuf> {
        let m = match u16::try_from(frame.len()) {
            // SAFETY: frame is readable for len bytes; the pool is live.
            Ok(len) => unsafe { sys::vs_mbuf_from(self.port.pool.0, frame.as_ptr(), len) },
            Err(_) => std::ptr::null_mut(),
        };
        if m.is_null() {
            self.port
                .counters
                .tx_dropped
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(m)
    }

    fn queue(&self, b: &mut Batch, m: *mut sys::rte_mbuf) {
        b.0.push(m);
        if b.0.len() >= TX_BATCH {
            self.send_batch(b);
        }
    }
}

impl TxQueue for DpdkTx {
    fn send(&self, frame: &[u8]) -> bool {
        let Some(m) = self.mbuf(frame) else {
            return false;
        };
        let mut b = self.batch.lock().unwrap_or_else(|e| e.into_inner());
        self.queue(&mut b, m);
        true
    }

    fn send_burst(&self, frames: &mut dyn Iterator<Item = &[u8]>) -> usize {
        let mut b = self.batch.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        for f in frames {
            if let Some(m) = self.mbuf(f) {
                self.queue(&mut b, m);
                n += 1;
            }
        }
        n
    }

    fn flush(&self) {
        let mut b = self.batch.lock().unwrap_or_else(|e| e.into_inner());
        self.send_batch(&mut b);
    }
}

impl Drop for DpdkTx {
    fn drop(&mut self) {
        self.flush();
    }
}
