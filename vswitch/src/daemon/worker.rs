//! One poll-mode worker: it owns its receive queues, its packet pool and
//! its datapath, and loops
//!
//! ```text
//! take_io_commands → current_world → for each queue: rx_burst →
//!   forward: count_rx → capture → Datapath::forward_burst → transmit:
//!     the burst to its one port as it is (send_staged), or
//!     for each output port: stage_port → send_staged (capture, send, flush)
//! → count_rx_too_long, publish_report (on going idle, or every 256 polls)
//! → idle sleep
//! ```
//!
//! The fast path takes no lock and makes no allocation: buffers come from
//! the worker's pool, the staging vectors are reused, and the world is
//! loaded without a lock once per poll. Transmit queues are shared (a
//! backend may lock once per burst inside `send_bufs`). Captures get a
//! copy of each frame (their own bounded queue, never blocking).
//!
//! May call: `shared` (the world, the report slots), `io`, pipeline's
//! datapath.

use super::error::DaemonError;
use super::report::PortTally;
use super::shared::{CacheRow, IoCmd, RxBinding, Shared, World};
use crate::config::{DaemonConfig, LimitsConfig};
use crossbeam::channel::Receiver;
use pipeline::datapath::{Datapath, BURST};
use pipeline::drop::DropReason;
use pipeline::packet::{PacketBuf, PacketPool};
use pipeline::switch::PortId;
use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Starts worker `w` on its own thread (pinned to its configured core if
/// the machine has it), polling what arrives in `inbox`; it says on
/// `ready` (then lets go of it) once its datapath and caches are built.
pub(super) fn spawn(
    w: usize,
    cfg: &DaemonConfig,
    shared: Arc<Shared>,
    inbox: Receiver<IoCmd>,
    ready: crossbeam::channel::Sender<()>,
) -> Result<JoinHandle<()>, DaemonError> {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let core = cfg.workers.get(w).and_then(|c| c.core);
    let core_id = core.and_then(|c| cores.iter().find(|id| id.id == c).copied());
    if core.is_some() && core_id.is_none() {
        tracing::warn!(worker = w, core, "no such core; the worker is not pinned");
    }
    let limits = cfg.limits.clone();
    let idle_sleep = Duration::from_micros(cfg.idle_sleep_us);
    std::thread::Builder::new()
        .name(format!("pmd{w}"))
        .spawn(move || {
            if let Some(id) = core_id {
                core_affinity::set_for_current(id);
            }
            #[cfg(feature = "dpdk")]
            let _lcore = crate::io::dpdk::LcoreRegistration::for_this_thread();
            crate::io::set_thread_worker(w);
            let worker = Worker::new(w, shared, inbox, &limits, idle_sleep);
            let _ = ready.send(());
            drop(ready);
            worker.run();
        })
        .map_err(|source| DaemonError::Thread {
            thread: format!("worker {w}"),
            source,
        })
}

/// A worker's loop state.
struct Worker {
    index: usize,
    shared: Arc<Shared>,
    inbox: Receiver<IoCmd>,
    idle_sleep: Duration,
    queues: Vec<RxBinding>,
    /// The world the queues' port ids were resolved against.
    seen: Option<Arc<World>>,
    /// The `world_epoch` and `io_epoch` last acted on.
    world_epoch: u64,
    io_epoch: u64,
    path: BurstPath,
    iterations: u64,
    idle_polls: u64,
    /// The last poll received nothing.
    was_idle: bool,
}

/// What one burst goes through from rx to tx, with the buffers it reuses
/// and the counters it keeps.
struct BurstPath {
    dp: Datapath,
    pool: PacketPool,
    /// The received burst; after the datapath, the packets it output
    /// (their ports in `dp.burst_ports()`).
    burst: Vec<PacketBuf>,
    /// What else the datapath output (copies, packets a router made),
    /// with the port each goes to.
    out: Vec<(PortId, PacketBuf)>,
    /// The ports of `out`, in the order they first appear.
    out_ports: Vec<PortId>,
    /// One port's share of `out`, handed to its transmit queue.
    staged: Vec<PacketBuf>,
    ports: PortTally,
    busy_ns: u64,
    busy_cycles: u64,
}

impl Worker {
    fn new(
        index: usize,
        shared: Arc<Shared>,
        inbox: Receiver<IoCmd>,
        limits: &LimitsConfig,
        idle_sleep: Duration,
    ) -> Worker {
        let pool = PacketPool::new(limits.packet_buffers.max(4 * BURST), shared.max_frame);
        Worker {
            index,
            shared,
            inbox,
            idle_sleep,
            queues: Vec::new(),
            seen: None,
            world_epoch: 0,
            io_epoch: 0,
            path: BurstPath {
                dp: Datapath::new(index, limits.flow_cache_entries),
                pool,
                burst: Vec::with_capacity(BURST),
                out: Vec::with_capacity(4 * BURST),
                out_ports: Vec::with_capacity(16),
                staged: Vec::with_capacity(4 * BURST),
                ports: PortTally::default(),
                busy_ns: 0,
                busy_cycles: 0,
            },
            iterations: 0,
            idle_polls: 0,
            was_idle: false,
        }
    }

    fn run(mut self) {
        while !self.shared.stop.load(Ordering::Acquire) {
            self.take_io_commands();
            let world = self.current_world();
            let got = self.poll(&world);
            self.seen = Some(world);
            self.iterations += 1;
            // The report is brought up to date on the first empty poll
            // after traffic, and every 256 polls (not on every empty poll:
            // a queue that comes up empty between bursts would otherwise
            // publish between every two).
            let went_idle = got == 0 && !self.was_idle;
            self.was_idle = got == 0;
            if got == 0 {
                self.idle_polls += 1;
            }
            if went_idle || self.iterations.is_multiple_of(256) {
                self.count_rx_too_long();
                self.publish_report();
            }
            if got == 0 && !self.idle_sleep.is_zero() {
                std::thread::sleep(self.idle_sleep);
            }
        }
    }

    /// Adds and drops receive queues as control asked (looked for only
    /// when control says it sent something).
    fn take_io_commands(&mut self) {
        let epoch = self.shared.io_epoch.load(Ordering::Acquire);
        if epoch == self.io_epoch {
            return;
        }
        self.io_epoch = epoch;
        while let Ok(c) = self.inbox.try_recv() {
            match c {
                IoCmd::Add(b) => self.queues.push(b),
                IoCmd::Remove(id) => {
                    for q in self.queues.iter_mut().filter(|q| q.binding == id) {
                        self.path.count_too_long(q);
                    }
                    self.queues.retain(|q| q.binding != id);
                }
                IoCmd::DumpCaches(reply) => {
                    let _ = reply.send(self.cache_rows());
                    continue;
                }
            }
            self.seen = None;
        }
    }

    /// This worker's datapath flows, both caches.
    fn cache_rows(&self) -> Vec<CacheRow> {
        use pipeline::xlate::trace::{datapath_actions_text, megaflow_text};
        let sw = self.shared.switch();
        let now = self.shared.now_ns();
        let dp = &self.path.dp;
        let mut rows = Vec::new();
        for (recirc, cache) in [(false, &dp.cache), (true, &dp.recirc_cache)] {
            for (masked, mask, e) in cache.entries() {
                let in_port = PortId(masked.get(pipeline::key::Field::InPort) as u32);
                rows.push(CacheRow {
                    worker: self.index,
                    recirc,
                    megaflow: megaflow_text(&sw, in_port, masked, mask),
                    actions: datapath_actions_text(&sw, &e.program),
                    packets: e.hits,
                    used_ms: now.saturating_sub(e.last_hit_ns()) / 1_000_000,
                });
            }
        }
        rows
    }

    /// The published world, taken out of `seen` for the burst (the caller
    /// puts it back): loaded again only when control published another
    /// (`world_epoch` moved); then, or when the queues changed, each
    /// queue's port id is looked up again.
    fn current_world(&mut self) -> Arc<World> {
        let epoch = self.shared.world_epoch.load(Ordering::Acquire);
        if epoch == self.world_epoch {
            if let Some(world) = self.seen.take() {
                return world;
            }
        }
        self.world_epoch = epoch;
        let world = self.shared.world.load_full();
        for q in self.queues.iter_mut() {
            q.port = world.sw.port_by_name(&q.name).map(|p| p.id);
        }
        world
    }

    /// One burst from each receive queue, forwarded; returns the packets
    /// received.
    fn poll(&mut self, world: &World) -> usize {
        let mut got = 0;
        for q in self.queues.iter_mut() {
            let path = &mut self.path;
            let n = q.queue.rx_burst(&mut path.pool, &mut path.burst, BURST);
            if n == 0 {
                continue;
            }
            got += n;
            match q.port {
                Some(port) => path.forward(world, port, n, &self.shared),
                None => path.drop_unbound(n),
            }
        }
        got
    }

    /// Takes from each receive queue what its backend dropped as too long
    /// since the last report (asked here, not per burst: the receive path
    /// only counts).
    fn count_rx_too_long(&mut self) {
        for q in self.queues.iter_mut() {
            self.path.count_too_long(q);
        }
    }

    /// Copies the worker's counters into its report slot.
    fn publish_report(&self) {
        let Some(slot) = self.shared.reports.get(self.index) else {
            return;
        };
        let p = &self.path;
        let c = p.dp.cache_counters();
        let rx = p.dp.counters.rx_packets;
        let per = |x: u64| if rx > 0 { x as f64 / rx as f64 } else { 0.0 };
        let mut r = slot.lock().unwrap_or_else(|e| e.into_inner());
        r.rx_queues = self.queues.len();
        r.rx_packets = rx;
        r.tx_packets = p.dp.counters.tx_packets;
        r.upcalls = p.dp.counters.upcalls;
        r.cache_hits = c.hits;
        r.cache_misses = c.misses;
        r.cache_entries = p.dp.cache.len();
        r.cache_masks = p.dp.cache.n_masks();
        r.recirc_entries = p.dp.recirc_cache.len();
        r.recirc_masks = p.dp.recirc_cache.n_masks();
        r.recirc_hits = p.dp.recirc_cache.counters.hits;
        r.recirc_misses = p.dp.recirc_cache.counters.misses;
        // The report's vectors are refilled in place (no allocation).
        r.drops.clear();
        r.drops.extend(
            p.dp.counters
                .drops
                .iter_nonzero()
                .map(|(reason, n)| (Cow::Borrowed(reason), n)),
        );
        r.busy_ns = p.busy_ns;
        r.busy_cycles = p.busy_cycles;
        r.ns_per_packet = per(p.busy_ns);
        r.cycles_per_packet = per(p.busy_cycles);
        r.idle_polls = self.idle_polls;
        r.polls = self.iterations;
        r.ports.clear();
        r.ports.extend(p.ports.iter_nonzero());
    }
}

impl BurstPath {
    /// The burst received on a queue whose port is not (any more) part of
    /// the switch: counted and dropped.
    fn drop_unbound(&mut self, n: usize) {
        self.dp.counters.rx_packets += n as u64;
        for b in self.burst.drain(..) {
            self.dp.counters.drops.count(DropReason::PortNotBound);
            self.pool.put(b);
        }
    }

    /// What queue `q`'s backend dropped as too long since it was last
    /// asked: counted under `frame_too_long` and in its port's
    /// `rx_dropped`.
    fn count_too_long(&mut self, q: &mut RxBinding) {
        let n = q.queue.take_too_long();
        if n == 0 {
            return;
        }
        self.dp.counters.drops.count_n(DropReason::FrameTooLong, n);
        if let Some(c) = q.port.and_then(|p| self.ports.slot(p)) {
            c.rx_dropped += n;
        }
    }

    /// The burst (`n` packets) received on `port`: counted, captured, run
    /// through the datapath and transmitted; its time goes to the busy
    /// counters.
    fn forward(&mut self, world: &World, port: PortId, n: usize, shared: &Shared) {
        let t0 = Instant::now();
        let c0 = cycles();
        if let Some(c) = self.ports.slot(port) {
            c.rx_packets += n as u64;
            c.rx_bytes += self.burst.iter().map(|b| b.len() as u64).sum::<u64>();
        }
        offer_to_captures(world, port, &self.burst, shared);
        let now = shared.ns_at(t0);
        let out = &mut self.out;
        let mut sink = |p: PortId, b: PacketBuf| out.push((p, b));
        self.dp.forward_burst(
            &world.sw,
            port,
            &mut self.burst,
            now,
            &mut self.pool,
            &mut sink,
        );
        self.transmit(world, shared);
        self.busy_cycles += cycles().wrapping_sub(c0);
        self.busy_ns += t0.elapsed().as_nanos() as u64;
    }

    /// Sends what the datapath output: one burst per port, one backend
    /// call (and lock) per port, which takes the buffers (a DPDK port
    /// sends a frame still in its mbuf as it is); then flushes those
    /// ports. A burst whose packets all go to one port, with nothing
    /// else, is handed over as it is; otherwise each port gets its
    /// packets in the order they came (the walks' extra outputs first).
    fn transmit(&mut self, world: &World, shared: &Shared) {
        let ports = self.dp.burst_ports();
        if let Some(&first) = ports.first() {
            if self.out.is_empty() && ports.iter().all(|p| *p == first) {
                std::mem::swap(&mut self.staged, &mut self.burst);
                self.send_staged(world, first, shared);
                std::mem::swap(&mut self.staged, &mut self.burst);
                return;
            }
        }
        self.out
            .extend(ports.iter().copied().zip(self.burst.drain(..)));
        self.out_ports.clear();
        for (p, _) in &self.out {
            if !self.out_ports.contains(p) {
                self.out_ports.push(*p);
            }
        }
        for i in 0..self.out_ports.len() {
            let port = self.out_ports[i];
            self.stage_port(port);
            self.send_staged(world, port, shared);
        }
    }

    /// Moves `port`'s packets from `out` to `staged`, in order.
    fn stage_port(&mut self, port: PortId) {
        if self.out_ports.len() == 1 {
            self.staged.extend(self.out.drain(..).map(|(_, b)| b));
        } else {
            self.staged
                .extend(self.out.extract_if(.., |(q, _)| *q == port).map(|(_, b)| b));
        }
    }

    /// Hands `staged` to `port`'s transmit queue (dropped under
    /// `port_not_bound` when the port has no I/O) and counts what it took;
    /// what it refused is dropped under `frame_too_long` (longer than the
    /// backend sends) or `tx_queue_full`.
    fn send_staged(&mut self, world: &World, port: PortId, shared: &Shared) {
        let offered = self.staged.len() as u64;
        let Some(t) = world.tx.get(&port) else {
            // A router's internal port has no I/O: what reaches it here
            // is a tap's copy, for its captures only.
            if world.sw.crossing(port).is_some() {
                offer_to_captures(world, port, &self.staged, shared);
                for b in self.staged.drain(..) {
                    self.pool.put(b);
                }
                return;
            }
            let reason = if world.missing.contains(&port) {
                if let Some(c) = self.ports.slot(port) {
                    c.tx_dropped += offered;
                }
                DropReason::DeviceMissing
            } else {
                DropReason::PortNotBound
            };
            self.dp.counters.drops.count_n(reason, offered);
            for b in self.staged.drain(..) {
                self.pool.put(b);
            }
            return;
        };
        // A capture sees what is handed to the port.
        offer_to_captures(world, port, &self.staged, shared);
        let sent = t.send_bufs(&mut self.staged, &mut self.pool);
        t.flush();
        let refused = offered.saturating_sub(sent.frames);
        if refused > 0 {
            let too_long = sent.too_long.min(refused);
            let drops = &mut self.dp.counters.drops;
            drops.count_n(DropReason::FrameTooLong, too_long);
            drops.count_n(DropReason::TxQueueFull, refused - too_long);
        }
        if let Some(c) = self.ports.slot(port) {
            c.tx_packets += sent.frames;
            c.tx_bytes += sent.bytes;
            c.tx_dropped += refused;
        }
    }
}

/// Offers `frames` to the captures watching `port`.
#[inline]
fn offer_to_captures(world: &World, port: PortId, frames: &[PacketBuf], shared: &Shared) {
    for (p, cap) in &world.captures {
        if *p == port {
            for b in frames {
                cap.offer(b.data(), shared.now_ns());
            }
        }
    }
}

/// Reads the CPU's time-stamp counter (0 where there is none). The one
/// `unsafe` of the daemon.
#[inline]
#[allow(unsafe_code)]
fn cycles() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC has no preconditions on x86_64.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        0
    }
}
