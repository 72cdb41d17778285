//! The daemon: poll-mode workers over the ports' I/O, a snapshot of the
//! switch published atomically, and the control operations `vswitchctl`
//! calls.
//!
//! Ownership: the control state (`SwitchConfig` and topology) sits behind
//! one mutex and the port I/O bindings behind a second one (always taken in
//! that order), both only by control operations. Every change builds a new
//! immutable [`World`] (the switch, the transmit queue of every bound port
//! by id, the running captures) and publishes it with `ArcSwap`. Workers
//! load the world once per burst (no lock), so a change takes effect at a
//! burst boundary; their flow caches drop stale entries by generation. MAC
//! tables, conntrack, neighbours and flow counters are shared live state
//! that survives updates. Each worker owns its receive queues (handed to it
//! over a channel when a port is bound, taken back when it is unbound), its
//! packet pool and its datapath; transmit queues are shared.

use crate::capture::Capture;
use crate::config::{Backend, DaemonConfig};
use crate::io::pcap::{PcapRx, PcapTx};
use crate::io::ring::RingHandle;
use crate::io::{RxQueue, TxQueue};
use arc_swap::ArcSwap;
use crossbeam::channel::{Receiver, Sender};
use pipeline::datapath::{Datapath, BURST};
use pipeline::drop::DropReason;
use pipeline::packet::{PacketBuf, PacketPool};
use pipeline::switch::{PortId, Switch, SwitchConfig};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use topology::Topology;

/// Port ids above this get no per-port counters (ids are allocated
/// incrementally and never reused; a switch that has seen this many port
/// additions keeps forwarding, it only stops counting new ports).
pub const MAX_COUNTED_PORT_ID: usize = 1 << 16;
/// Receive queues one port may be bound with.
pub const MAX_QUEUES_PER_PORT: usize = 64;

/// What control operations change.
pub struct ControlState {
    pub config: SwitchConfig,
    pub topology: Topology,
}

/// What workers read, published as one immutable value.
pub struct World {
    pub sw: Arc<Switch>,
    pub tx: HashMap<PortId, Arc<dyn TxQueue>>,
    /// Captures running, with the id of the port each watches.
    pub captures: Vec<(PortId, Arc<Capture>)>,
}

/// Packets and bytes through one port's I/O, as one worker saw them.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct PortCounters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Received while the port was not part of the switch.
    pub rx_dropped: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Refused by the backend (queue full).
    pub tx_dropped: u64,
}

impl PortCounters {
    fn add(&mut self, o: &PortCounters) {
        self.rx_packets += o.rx_packets;
        self.rx_bytes += o.rx_bytes;
        self.rx_dropped += o.rx_dropped;
        self.tx_packets += o.tx_packets;
        self.tx_bytes += o.tx_bytes;
        self.tx_dropped += o.tx_dropped;
    }
}

/// One worker's counters as last published.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WorkerReport {
    pub worker: usize,
    pub core: Option<usize>,
    pub rx_queues: usize,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub upcalls: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Megaflows and masks in the worker's cache, and in its cache of
    /// recirculated (post-conntrack) keys.
    pub cache_entries: usize,
    pub cache_masks: usize,
    pub recirc_entries: usize,
    pub recirc_masks: usize,
    pub recirc_hits: u64,
    pub recirc_misses: u64,
    pub drops: Vec<(&'static str, u64)>,
    /// Time spent processing bursts.
    pub busy_ns: u64,
    /// CPU cycles spent processing bursts (time-stamp counter; 0 where the
    /// CPU has none).
    pub busy_cycles: u64,
    /// Busy time per packet received.
    pub ns_per_packet: f64,
    /// Busy cycles per packet received.
    pub cycles_per_packet: f64,
    /// Loop iterations that found no packet.
    pub idle_polls: u64,
    #[serde(skip)]
    pub ports: Vec<(PortId, PortCounters)>,
}

/// A port bound to I/O.
struct BoundPort {
    backend: Backend,
    queues: usize,
    /// Identifies the receive queues handed to workers for this binding.
    binding: u64,
    tx: Option<Arc<dyn TxQueue>>,
    ring: Option<RingHandle>,
}

/// A port's I/O binding as `show`/`dump-ports` report it.
#[derive(Clone, Debug, Serialize)]
pub struct BindingInfo {
    pub port: String,
    pub backend: Backend,
    pub queues: usize,
}

#[derive(Default)]
struct IoState {
    ports: BTreeMap<String, BoundPort>,
    captures: Vec<(String, Arc<Capture>)>,
    next_binding: u64,
    next_worker: usize,
}

enum IoCmd {
    Add(RxBinding),
    Remove(u64),
}

struct RxBinding {
    binding: u64,
    name: String,
    /// The port's id in the switch the worker last looked at.
    port: Option<PortId>,
    queue: Box<dyn RxQueue>,
}

pub struct Shared {
    pub host: String,
    pub state: Mutex<ControlState>,
    world: ArcSwap<World>,
    io: Mutex<IoState>,
    workers: Vec<Sender<IoCmd>>,
    stop: AtomicBool,
    pub reports: Vec<Mutex<WorkerReport>>,
    epoch: Instant,
    max_frame: usize,
    fanout_group: AtomicU64,
    dpdk_mbufs: u32,
}

impl Shared {
    /// Monotonic time since the daemon started.
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// The switch workers run now.
    pub fn switch(&self) -> Arc<Switch> {
        self.world.load().sw.clone()
    }

    /// Whether the daemon is stopping.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn lock_state(&self) -> MutexGuard<'_, ControlState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_io(&self) -> MutexGuard<'_, IoState> {
        self.io.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes `sw` with the transmit queues and captures of `io`
    /// resolved against it. Callers hold both locks.
    fn publish(&self, sw: Arc<Switch>, io: &IoState) {
        let mut tx = HashMap::new();
        for (name, b) in &io.ports {
            if let (Some(t), Some(p)) = (&b.tx, sw.port_by_name(name)) {
                tx.insert(p.id, t.clone());
            }
        }
        let captures = io
            .captures
            .iter()
            .filter_map(|(name, c)| sw.port_by_name(name).map(|p| (p.id, c.clone())))
            .collect();
        self.world.store(Arc::new(World { sw, tx, captures }));
    }

    /// Applies `change` to a copy of the control state, builds it and
    /// publishes it; on any error nothing changes.
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut ControlState) -> Result<T, String>,
    ) -> Result<T, String> {
        let mut st = self.lock_state();
        let mut next = ControlState {
            config: st.config.clone(),
            topology: st.topology.clone(),
        };
        let out = change(&mut next)?;
        let sw = next.config.build().map_err(|e| e.to_string())?;
        let io = self.lock_io();
        *st = next;
        self.publish(sw, &io);
        Ok(out)
    }

    /// Binds port `name` of the switch to I/O: opens the backend with
    /// `queues` receive queues (spread over the workers) and publishes its
    /// transmit side. The port must exist; an existing binding is replaced
    /// only after the new one opened.
    pub fn bind_port(&self, name: &str, backend: &Backend, queues: usize) -> Result<(), String> {
        if queues == 0 || queues > MAX_QUEUES_PER_PORT {
            return Err(format!(
                "{name}: queues must be 1..={MAX_QUEUES_PER_PORT}, not {queues}"
            ));
        }
        let st = self.lock_state();
        let sw = self.world.load().sw.clone();
        let port = sw
            .port_by_name(name)
            .ok_or_else(|| format!("no port named `{name}` on host {}", self.host))?;
        if port.kind != pipeline::switch::PortKind::System {
            return Err(format!(
                "{name}: only system ports carry I/O (this one is {:?})",
                port.kind
            ));
        }
        let opened = open_backend(name, backend, queues, &self.fanout_group, self.dpdk_mbufs)?;
        let mut io = self.lock_io();
        io.next_binding += 1;
        let binding = io.next_binding;
        if let Some(old) = io.ports.remove(name) {
            self.retire(old.binding);
        }
        for q in opened.rx {
            let w = io.next_worker % self.workers.len().max(1);
            io.next_worker += 1;
            if let Some(s) = self.workers.get(w) {
                let _ = s.send(IoCmd::Add(RxBinding {
                    binding,
                    name: name.to_string(),
                    port: None,
                    queue: q,
                }));
            }
        }
        io.ports.insert(
            name.to_string(),
            BoundPort {
                backend: backend.clone(),
                queues,
                binding,
                tx: opened.tx,
                ring: opened.ring,
            },
        );
        self.publish(sw, &io);
        drop(st);
        tracing::info!(port = name, queues, "port bound to I/O");
        Ok(())
    }

    /// Removes port `name`'s I/O binding (its receive queues are closed by
    /// the workers at their next burst boundary).
    pub fn unbind_port(&self, name: &str) -> Result<(), String> {
        let _st = self.lock_state();
        let mut io = self.lock_io();
        let old = io
            .ports
            .remove(name)
            .ok_or_else(|| format!("port `{name}` has no I/O binding"))?;
        self.retire(old.binding);
        let sw = self.world.load().sw.clone();
        self.publish(sw, &io);
        Ok(())
    }

    fn retire(&self, binding: u64) {
        for s in &self.workers {
            let _ = s.send(IoCmd::Remove(binding));
        }
    }

    /// The I/O bindings.
    pub fn bindings(&self) -> Vec<BindingInfo> {
        self.lock_io()
            .ports
            .iter()
            .map(|(n, b)| BindingInfo {
                port: n.clone(),
                backend: b.backend.clone(),
                queues: b.queues,
            })
            .collect()
    }

    /// The far end of a `ring` port.
    pub fn ring(&self, name: &str) -> Option<RingHandle> {
        self.lock_io().ports.get(name).and_then(|b| b.ring.clone())
    }

    /// Starts copying what port `name` receives and sends into `capture`.
    pub fn add_capture(&self, name: &str, capture: Arc<Capture>) -> Result<(), String> {
        let _st = self.lock_state();
        let sw = self.world.load().sw.clone();
        if sw.port_by_name(name).is_none() {
            return Err(format!("no port named `{name}` on host {}", self.host));
        }
        let mut io = self.lock_io();
        if io.captures.len() >= crate::capture::MAX_CAPTURES {
            return Err(format!(
                "{} captures are running already (the limit)",
                io.captures.len()
            ));
        }
        io.captures.push((name.to_string(), capture));
        self.publish(sw, &io);
        Ok(())
    }

    /// Stops feeding `capture`.
    pub fn remove_capture(&self, capture: &Arc<Capture>) {
        let _st = self.lock_state();
        let mut io = self.lock_io();
        io.captures.retain(|(_, c)| !Arc::ptr_eq(c, capture));
        let sw = self.world.load().sw.clone();
        self.publish(sw, &io);
    }

    /// Per-port I/O counters summed over the workers, by port name, for
    /// the ports of the running switch.
    pub fn port_counters(&self) -> Vec<(String, u32, PortCounters)> {
        let sw = self.switch();
        let mut sum: HashMap<PortId, PortCounters> = HashMap::new();
        for r in &self.reports {
            let r = r.lock().unwrap_or_else(|e| e.into_inner());
            for (id, c) in &r.ports {
                sum.entry(*id).or_default().add(c);
            }
        }
        sw.ports()
            .map(|p| {
                (
                    p.name.clone(),
                    p.ofport,
                    sum.get(&p.id).copied().unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Removes flows whose idle or hard timeout passed (called once a
    /// second by the housekeeping thread); publishes only when one did.
    fn expire_flows(&self) {
        let now = self.now_ns();
        let mut st = self.lock_state();
        let mut next = st.config.clone();
        if next.expire_flows(now).is_empty() {
            return;
        }
        match next.build() {
            Ok(sw) => {
                let io = self.lock_io();
                st.config = next;
                self.publish(sw, &io);
            }
            Err(e) => tracing::warn!("flow expiry: {e}"),
        }
    }
}

/// What opening a backend gives.
struct Opened {
    rx: Vec<Box<dyn RxQueue>>,
    tx: Option<Arc<dyn TxQueue>>,
    ring: Option<RingHandle>,
}

fn open_backend(
    name: &str,
    backend: &Backend,
    queues: usize,
    fanout_group: &AtomicU64,
    dpdk_mbufs: u32,
) -> Result<Opened, String> {
    match backend {
        #[cfg(feature = "dpdk")]
        Backend::Dpdk {
            device,
            receive,
            mbufs,
            ..
        } => {
            let q = u16::try_from(queues).map_err(|_| format!("ports: {name}: too many queues"))?;
            let (rx, tx) = crate::io::dpdk::open(device, q, mbufs.unwrap_or(dpdk_mbufs))
                .map_err(|e| format!("ports: {name}: {e}"))?;
            Ok(Opened {
                rx: rx
                    .into_iter()
                    .filter(|_| *receive)
                    .map(|r| Box::new(r) as Box<dyn RxQueue>)
                    .collect(),
                tx: Some(Arc::new(tx)),
                ring: None,
            })
        }
        #[cfg(not(feature = "dpdk"))]
        Backend::Dpdk { .. } => {
            let _ = dpdk_mbufs;
            Err(format!(
                "ports: {name}: backend dpdk: vswitchd was built without the dpdk feature"
            ))
        }
        #[cfg(target_os = "linux")]
        Backend::AfPacket { interface } => {
            let ifname = interface.as_deref().unwrap_or(name);
            // Several queues share the interface through one fanout group
            // (the kernel hashes flows over the sockets).
            let group = (queues > 1).then(|| {
                let pid = std::process::id() as u64;
                ((pid.wrapping_mul(31) + fanout_group.fetch_add(1, Ordering::Relaxed)) & 0xffff)
                    as u16
            });
            let mut rx: Vec<Box<dyn RxQueue>> = Vec::new();
            let mut tx: Option<Arc<dyn TxQueue>> = None;
            for _ in 0..queues {
                let (r, t) = crate::io::afpacket::open(ifname, group)
                    .map_err(|e| format!("ports: {name}: {e}"))?;
                rx.push(Box::new(r));
                if tx.is_none() {
                    tx = Some(Arc::new(t));
                }
            }
            Ok(Opened { rx, tx, ring: None })
        }
        #[cfg(not(target_os = "linux"))]
        Backend::AfPacket { .. } => Err(format!("ports: {name}: AF_PACKET needs Linux")),
        #[cfg(all(target_os = "linux", feature = "af-xdp"))]
        Backend::AfXdp { interface, queue } => {
            // One socket, one queue: each socket attaches its own XDP
            // program (an interface takes one), so several queues would
            // need a shared program (not yet).
            if queues != 1 {
                return Err(format!(
                    "ports: {name}: an af-xdp port has one queue (choose it with `queue`)"
                ));
            }
            let ifname = interface.as_deref().unwrap_or(name);
            let (r, t) = crate::io::afxdp::open(ifname, *queue)
                .map_err(|e| format!("ports: {name}: {e}"))?;
            Ok(Opened {
                rx: vec![Box::new(r)],
                tx: Some(Arc::new(t)),
                ring: None,
            })
        }
        #[cfg(not(all(target_os = "linux", feature = "af-xdp")))]
        Backend::AfXdp { .. } => Err(format!(
            "ports: {name}: backend af-xdp: vswitchd was built without the af-xdp feature"
        )),
        Backend::Ring { depth } => {
            if queues != 1 {
                return Err(format!("ports: {name}: a ring port has one queue"));
            }
            let h = RingHandle::new(*depth);
            Ok(Opened {
                rx: vec![Box::new(h.rx())],
                tx: Some(Arc::new(h.tx())),
                ring: Some(h),
            })
        }
        Backend::Null => {
            if queues != 1 {
                return Err(format!("ports: {name}: a null port has one queue"));
            }
            Ok(Opened {
                rx: Vec::new(),
                tx: Some(Arc::new(crate::io::null::NullTx::default())),
                ring: None,
            })
        }
        Backend::Pcap { rx, tx, looped } => {
            let mut out = Opened {
                rx: Vec::new(),
                tx: None,
                ring: None,
            };
            if let Some(r) = rx {
                // Several queues split the capture by flow, as RSS would.
                for q in PcapRx::open_queues(r, *looped, queues)
                    .map_err(|e| format!("ports: {name}: {e}"))?
                {
                    out.rx.push(Box::new(q));
                }
            } else if queues != 1 {
                return Err(format!("ports: {name}: queues without rx"));
            }
            if let Some(t) = tx {
                out.tx = Some(Arc::new(
                    PcapTx::create(t).map_err(|e| format!("ports: {name}: {e}"))?,
                ));
            }
            Ok(out)
        }
    }
}

/// Initialises DPDK's EAL when a port uses it: the configured EAL
/// arguments and a `--vdev` for every DPDK port with devargs.
fn start_dpdk(cfg: &DaemonConfig) -> Result<(), String> {
    let vdevs: Vec<String> = cfg
        .ports
        .iter()
        .filter_map(|p| match &p.backend {
            Backend::Dpdk {
                device, devargs, ..
            } => Some(match devargs {
                Some(a) => format!("--vdev={device},{a}"),
                None if device.starts_with("net_") => format!("--vdev={device}"),
                None => return None,
            }),
            _ => None,
        })
        .collect();
    if !cfg
        .ports
        .iter()
        .any(|p| matches!(p.backend, Backend::Dpdk { .. }))
    {
        return Ok(());
    }
    #[cfg(feature = "dpdk")]
    {
        let mut args = cfg.dpdk.eal_args.clone();
        args.extend(vdevs);
        crate::io::dpdk::eal_init(&args).map_err(|e| format!("dpdk: {e}"))
    }
    #[cfg(not(feature = "dpdk"))]
    {
        let _ = vdevs;
        Err("ports: backend dpdk: vswitchd was built without the dpdk feature".into())
    }
}

/// A running daemon.
pub struct Daemon {
    pub shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Daemon {
    /// Starts the workers for `cfg` (the topology read from its file).
    pub fn start(cfg: &DaemonConfig) -> Result<Daemon, String> {
        let topology = cfg.load_topology()?;
        Daemon::start_with(cfg, topology)
    }

    /// Starts the workers for `cfg` with an already loaded topology.
    pub fn start_with(cfg: &DaemonConfig, topology: Topology) -> Result<Daemon, String> {
        let n_workers = cfg.workers.len();
        let mut config =
            topology::build_host(&topology, &cfg.host, n_workers).map_err(|e| e.to_string())?;
        config.set_mac_limits(
            cfg.limits.mac_table_entries,
            pipeline::bridge::mac::DEFAULT_AGING_NS,
        );
        config.set_conntrack(pipeline::conntrack::ConnTable::new(
            pipeline::conntrack::Limits {
                max_conns: cfg.limits.max_connections,
                ..Default::default()
            },
            Default::default(),
        ));
        let sw = config.build().map_err(|e| e.to_string())?;
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        for _ in 0..n_workers {
            let (s, r) = crossbeam::channel::unbounded();
            senders.push(s);
            receivers.push(r);
        }
        let shared = Arc::new(Shared {
            host: cfg.host.clone(),
            state: Mutex::new(ControlState { config, topology }),
            world: ArcSwap::new(Arc::new(World {
                sw,
                tx: HashMap::new(),
                captures: Vec::new(),
            })),
            io: Mutex::new(IoState::default()),
            workers: senders,
            stop: AtomicBool::new(false),
            reports: (0..n_workers)
                .map(|w| {
                    Mutex::new(WorkerReport {
                        worker: w,
                        core: cfg.workers[w].core,
                        ..Default::default()
                    })
                })
                .collect(),
            epoch: Instant::now(),
            max_frame: cfg.limits.max_frame,
            fanout_group: AtomicU64::new(0),
            dpdk_mbufs: cfg.dpdk.mbufs,
        });
        start_dpdk(cfg)?;
        for b in &cfg.ports {
            shared
                .bind_port(&b.name, &b.backend, b.queues)
                .map_err(|e| {
                    if e.starts_with("ports:") {
                        e
                    } else {
                        format!("ports: {e}")
                    }
                })?;
        }
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let mut threads = Vec::new();
        for (w, cmds) in receivers.into_iter().enumerate() {
            let shared = shared.clone();
            let core = cfg.workers[w].core;
            let core_id = core.and_then(|c| cores.iter().find(|id| id.id == c).copied());
            if core.is_some() && core_id.is_none() {
                tracing::warn!(worker = w, core, "no such core; the worker is not pinned");
            }
            let limits = cfg.limits.clone();
            let idle_sleep = Duration::from_micros(cfg.idle_sleep_us);
            let t = std::thread::Builder::new()
                .name(format!("pmd{w}"))
                .spawn(move || {
                    if let Some(id) = core_id {
                        core_affinity::set_for_current(id);
                    }
                    worker(w, shared, cmds, limits, idle_sleep)
                })
                .map_err(|e| format!("worker {w}: {e}"))?;
            threads.push(t);
        }
        let hk = shared.clone();
        threads.push(
            std::thread::Builder::new()
                .name("housekeeping".into())
                .spawn(move || {
                    let mut last = Instant::now();
                    while !hk.stopping() {
                        std::thread::sleep(Duration::from_millis(50));
                        if last.elapsed() >= Duration::from_secs(1) {
                            last = Instant::now();
                            hk.expire_flows();
                        }
                    }
                })
                .map_err(|e| format!("housekeeping: {e}"))?,
        );
        tracing::info!(host = %cfg.host, workers = n_workers, "vswitchd started");
        Ok(Daemon { shared, threads })
    }

    /// The far end of a `ring` port.
    pub fn ring(&self, name: &str) -> Option<RingHandle> {
        self.shared.ring(name)
    }

    /// Runs `frames` through the switch as if port `port` had received
    /// them, on the calling thread, and discards what they output: the
    /// shared state they touch (MAC tables, connections, neighbours) is
    /// the workers'. Returns how many frames were output. For putting a
    /// host in its steady state before measured traffic starts.
    pub fn process_local(&self, port: &str, frames: &[Vec<u8>]) -> Result<usize, String> {
        let sw = self.shared.switch();
        let id = sw
            .port_by_name(port)
            .ok_or_else(|| format!("no port named `{port}`"))?
            .id;
        // A worker index no worker has: rule counters are not credited.
        let mut dp = Datapath::new(usize::MAX, 1024);
        let mut pool = PacketPool::new(4 * BURST, self.shared.max_frame);
        let mut outputs = 0;
        for chunk in frames.chunks(BURST) {
            let mut burst = Vec::with_capacity(BURST);
            for f in chunk {
                let mut b = pool.get().ok_or("packet pool exhausted")?;
                b.set_data(f)
                    .map_err(|_| format!("a {}-byte frame does not fit", f.len()))?;
                burst.push(b);
            }
            let mut out = Vec::new();
            let mut sink = |_: PortId, b: PacketBuf| out.push(b);
            dp.process_burst(
                &sw,
                id,
                &mut burst,
                self.shared.now_ns(),
                &mut pool,
                &mut sink,
            );
            outputs += out.len();
            for b in out {
                pool.put(b);
            }
        }
        Ok(outputs)
    }

    /// Stops the workers and waits for them.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // Closes every backend (rings unmapped, sockets closed).
        let mut io = self.shared.lock_io();
        io.ports.clear();
        io.captures.clear();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Reads the CPU's time-stamp counter (0 where there is none).
#[inline]
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

/// Per-port counters of one worker, indexed by port id.
#[derive(Default)]
struct PortTally(Vec<PortCounters>);

impl PortTally {
    #[inline]
    fn slot(&mut self, p: PortId) -> Option<&mut PortCounters> {
        let i = p.0 as usize;
        if i >= self.0.len() {
            if i >= MAX_COUNTED_PORT_ID {
                return None;
            }
            self.0.resize(i + 1, PortCounters::default());
        }
        self.0.get_mut(i)
    }

    fn nonzero(&self) -> Vec<(PortId, PortCounters)> {
        self.0
            .iter()
            .enumerate()
            .filter(|(_, c)| **c != PortCounters::default())
            .map(|(i, c)| (PortId(i as u32), *c))
            .collect()
    }
}

/// One poll-mode worker.
fn worker(
    w: usize,
    shared: Arc<Shared>,
    cmds: Receiver<IoCmd>,
    limits: crate::config::LimitsConfig,
    idle_sleep: Duration,
) {
    #[cfg(feature = "dpdk")]
    let _lcore = crate::io::dpdk::LcoreRegistration::for_this_thread();
    let mut dp = Datapath::new(w, limits.flow_cache_entries);
    let mut pool = PacketPool::new(limits.packet_buffers.max(4 * BURST), shared.max_frame);
    let mut queues: Vec<RxBinding> = Vec::new();
    let mut burst: Vec<PacketBuf> = Vec::with_capacity(BURST);
    let mut out: Vec<(PortId, PacketBuf)> = Vec::with_capacity(4 * BURST);
    let mut out_ports: Vec<PortId> = Vec::with_capacity(16);
    let mut staged: Vec<PacketBuf> = Vec::with_capacity(4 * BURST);
    let mut ports = PortTally::default();
    let mut busy_ns = 0u64;
    let mut busy_cycles = 0u64;
    let mut idle_polls = 0u64;
    let mut iterations = 0u64;
    let mut seen: Option<Arc<World>> = None;
    while !shared.stop.load(Ordering::Acquire) {
        while let Ok(c) = cmds.try_recv() {
            match c {
                IoCmd::Add(b) => queues.push(b),
                IoCmd::Remove(id) => queues.retain(|q| q.binding != id),
            }
            seen = None;
        }
        let world = shared.world.load_full();
        if !seen.as_ref().is_some_and(|s| Arc::ptr_eq(s, &world)) {
            // A new world: port ids may have changed.
            for q in queues.iter_mut() {
                q.port = world.sw.port_by_name(&q.name).map(|p| p.id);
            }
            seen = Some(world.clone());
        }
        let mut got = 0;
        for q in queues.iter_mut() {
            let n = q.queue.rx_burst(&mut pool, &mut burst, BURST);
            if n == 0 {
                continue;
            }
            got += n;
            let t0 = Instant::now();
            let c0 = cycles();
            let Some(port) = q.port else {
                // Bound, but not (any more) a port of the switch.
                dp.counters.rx_packets += n as u64;
                for b in burst.drain(..) {
                    dp.counters.drops.count(DropReason::PortNotBound);
                    pool.put(b);
                }
                continue;
            };
            if let Some(c) = ports.slot(port) {
                c.rx_packets += n as u64;
                c.rx_bytes += burst.iter().map(|b| b.len() as u64).sum::<u64>();
            }
            for (p, cap) in &world.captures {
                if *p == port {
                    for b in &burst {
                        cap.offer(b.data(), shared.now_ns());
                    }
                }
            }
            let now = shared.now_ns();
            let mut sink = |p: PortId, b: PacketBuf| out.push((p, b));
            dp.process_burst(&world.sw, port, &mut burst, now, &mut pool, &mut sink);
            // Output: one burst per port, packets in the order they came,
            // one backend call (and lock) per port, which takes the
            // buffers (a DPDK port sends a frame still in its mbuf as it
            // is); then flush those ports.
            out_ports.clear();
            for (p, _) in &out {
                if !out_ports.contains(p) {
                    out_ports.push(*p);
                }
            }
            for &p in &out_ports {
                if out_ports.len() == 1 {
                    staged.extend(out.drain(..).map(|(_, b)| b));
                } else {
                    staged.extend(out.extract_if(.., |(q, _)| *q == p).map(|(_, b)| b));
                }
                let offered = staged.len() as u64;
                let Some(t) = world.tx.get(&p) else {
                    // A port without I/O (not bound in the config).
                    dp.counters.drops.count_n(DropReason::PortNotBound, offered);
                    for b in staged.drain(..) {
                        pool.put(b);
                    }
                    continue;
                };
                // A capture sees what is handed to the port.
                for (cp, cap) in &world.captures {
                    if *cp == p {
                        for b in &staged {
                            cap.offer(b.data(), shared.now_ns());
                        }
                    }
                }
                let sent = t.send_bufs(&mut staged, &mut pool);
                t.flush();
                let refused = offered.saturating_sub(sent.frames);
                if refused > 0 {
                    dp.counters.drops.count_n(DropReason::TxQueueFull, refused);
                }
                if let Some(c) = ports.slot(p) {
                    c.tx_packets += sent.frames;
                    c.tx_bytes += sent.bytes;
                    c.tx_dropped += refused;
                }
            }
            busy_cycles += cycles().wrapping_sub(c0);
            busy_ns += t0.elapsed().as_nanos() as u64;
        }
        iterations += 1;
        if got == 0 {
            idle_polls += 1;
        }
        if got == 0 || iterations.is_multiple_of(256) {
            let c = dp.cache_counters();
            let rx = dp.counters.rx_packets;
            let per = |x: u64| if rx > 0 { x as f64 / rx as f64 } else { 0.0 };
            if let Some(slot) = shared.reports.get(w) {
                let mut r = slot.lock().unwrap_or_else(|e| e.into_inner());
                r.rx_queues = queues.len();
                r.rx_packets = rx;
                r.tx_packets = dp.counters.tx_packets;
                r.upcalls = dp.counters.upcalls;
                r.cache_hits = c.hits;
                r.cache_misses = c.misses;
                r.cache_entries = dp.cache.len();
                r.cache_masks = dp.cache.n_masks();
                r.recirc_entries = dp.recirc_cache.len();
                r.recirc_masks = dp.recirc_cache.n_masks();
                r.recirc_hits = dp.recirc_cache.counters.hits;
                r.recirc_misses = dp.recirc_cache.counters.misses;
                r.drops = dp.counters.drops.nonzero();
                r.busy_ns = busy_ns;
                r.busy_cycles = busy_cycles;
                r.ns_per_packet = per(busy_ns);
                r.cycles_per_packet = per(busy_cycles);
                r.idle_polls = idle_polls;
                r.ports = ports.nonzero();
            }
        }
        if got == 0 && !idle_sleep.is_zero() {
            std::thread::sleep(idle_sleep);
        }
    }
}
