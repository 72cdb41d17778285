//! The daemon: poll-mode workers over the ports' I/O, a snapshot of the
//! switch published atomically, and the control operations `vswitchctl`
//! calls.
//!
//! Ownership: the control state (`SwitchConfig` and topology) sits behind
//! one mutex taken only by control operations; every change builds a new
//! immutable `Switch` and publishes it with `ArcSwap`. Workers load the
//! snapshot once per burst (no lock), so a change takes effect at a burst
//! boundary; their flow caches drop stale entries by generation. MAC
//! tables, conntrack, neighbours and flow counters are shared live state
//! that survives updates. Each worker owns its receive queues, its packet
//! pool and its datapath; transmit queues are shared.

use crate::config::{Backend, DaemonConfig};
use crate::io::pcap::{PcapRx, PcapTx};
use crate::io::ring::RingHandle;
use crate::io::{RxQueue, TxQueue};
use arc_swap::ArcSwap;
use pipeline::datapath::{Datapath, BURST};
use pipeline::drop::DropReason;
use pipeline::packet::{PacketBuf, PacketPool};
use pipeline::switch::{PortId, Switch, SwitchConfig};
use pipeline::topology::Topology;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// What control operations change.
pub struct ControlState {
    pub config: SwitchConfig,
    pub topology: Topology,
}

/// One worker's counters as last published.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WorkerReport {
    pub worker: usize,
    pub core: Option<usize>,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub upcalls: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub drops: Vec<(&'static str, u64)>,
    pub busy_ns: u64,
    /// Time spent in bursts per packet received.
    pub ns_per_packet: f64,
}

pub struct Shared {
    pub host: String,
    pub state: Mutex<ControlState>,
    pub snapshot: ArcSwap<Switch>,
    tx: ArcSwap<HashMap<PortId, Arc<dyn TxQueue>>>,
    stop: AtomicBool,
    pub reports: Vec<Mutex<WorkerReport>>,
    epoch: Instant,
}

impl Shared {
    /// Monotonic time since the daemon started.
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Applies `change` to a copy of the control state, builds it and
    /// publishes it; on any error nothing changes.
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut ControlState) -> Result<T, String>,
    ) -> Result<T, String> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = ControlState {
            config: st.config.clone(),
            topology: st.topology.clone(),
        };
        let out = change(&mut next)?;
        let sw = next.config.build().map_err(|e| e.to_string())?;
        *st = next;
        self.snapshot.store(sw);
        Ok(out)
    }
}

/// A running daemon.
pub struct Daemon {
    pub shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    /// The far ends of `ring` ports, by port name.
    pub rings: HashMap<String, RingHandle>,
}

struct RxBinding {
    port: PortId,
    queue: Box<dyn RxQueue>,
}

impl Daemon {
    /// Starts the workers for `cfg` (the topology read from its file).
    pub fn start(cfg: &DaemonConfig) -> Result<Daemon, String> {
        let text = std::fs::read_to_string(&cfg.topology)
            .map_err(|e| format!("{}: {e}", cfg.topology.display()))?;
        let topology = pipeline::topology::load_toml(&text)
            .map_err(|e| format!("{}: {e}", cfg.topology.display()))?;
        Daemon::start_with(cfg, topology)
    }

    /// Starts the workers for `cfg` with an already loaded topology.
    pub fn start_with(cfg: &DaemonConfig, topology: Topology) -> Result<Daemon, String> {
        let n_workers = cfg.workers.len();
        let mut config = pipeline::topology::build_host(&topology, &cfg.host, n_workers)
            .map_err(|e| e.to_string())?;
        config.set_conntrack(pipeline::conntrack::ConnTable::new(
            pipeline::conntrack::Limits {
                max_conns: cfg.limits.max_connections,
                ..Default::default()
            },
            Default::default(),
        ));
        let sw = config.build().map_err(|e| e.to_string())?;
        let mut rings = HashMap::new();
        let mut tx: HashMap<PortId, Arc<dyn TxQueue>> = HashMap::new();
        let mut rx: Vec<RxBinding> = Vec::new();
        for b in &cfg.ports {
            let port = sw
                .port_by_name(&b.name)
                .ok_or_else(|| format!("ports: `{}` is not a port of host {}", b.name, cfg.host))?
                .id;
            match &b.backend {
                #[cfg(target_os = "linux")]
                Backend::AfPacket { interface } => {
                    let ifname = interface.as_deref().unwrap_or(&b.name);
                    let (r, t) = crate::io::afpacket::open(ifname, None)
                        .map_err(|e| format!("ports: {}: {e}", b.name))?;
                    rx.push(RxBinding {
                        port,
                        queue: Box::new(r),
                    });
                    tx.insert(port, Arc::new(t));
                }
                #[cfg(not(target_os = "linux"))]
                Backend::AfPacket { .. } => {
                    return Err(format!("ports: {}: AF_PACKET needs Linux", b.name))
                }
                Backend::Ring { depth } => {
                    let h = RingHandle::new(*depth);
                    rx.push(RxBinding {
                        port,
                        queue: Box::new(h.rx()),
                    });
                    tx.insert(port, Arc::new(h.tx()));
                    rings.insert(b.name.clone(), h);
                }
                Backend::Pcap {
                    rx: r,
                    tx: t,
                    looped,
                } => {
                    if let Some(r) = r {
                        rx.push(RxBinding {
                            port,
                            queue: Box::new(PcapRx::open(r, *looped)?),
                        });
                    }
                    if let Some(t) = t {
                        tx.insert(port, Arc::new(PcapTx::create(t)?));
                    }
                }
            }
        }
        let shared = Arc::new(Shared {
            host: cfg.host.clone(),
            state: Mutex::new(ControlState { config, topology }),
            snapshot: ArcSwap::new(sw),
            tx: ArcSwap::new(Arc::new(tx)),
            stop: AtomicBool::new(false),
            reports: (0..n_workers)
                .map(|_| Mutex::new(WorkerReport::default()))
                .collect(),
            epoch: Instant::now(),
        });
        // Receive queues round-robin over the workers.
        let mut per_worker: Vec<Vec<RxBinding>> = (0..n_workers).map(|_| Vec::new()).collect();
        for (i, b) in rx.into_iter().enumerate() {
            per_worker[i % n_workers].push(b);
        }
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let mut threads = Vec::new();
        for (w, queues) in per_worker.into_iter().enumerate() {
            let shared = shared.clone();
            let core = cfg.workers[w].core;
            let core_id = core.and_then(|c| cores.iter().find(|id| id.id == c).copied());
            let limits = cfg.limits.clone();
            let idle_sleep = std::time::Duration::from_micros(cfg.idle_sleep_us);
            let t = std::thread::Builder::new()
                .name(format!("pmd{w}"))
                .spawn(move || {
                    if let Some(id) = core_id {
                        core_affinity::set_for_current(id);
                    }
                    worker(w, core, shared, queues, limits, idle_sleep)
                })
                .map_err(|e| format!("worker {w}: {e}"))?;
            threads.push(t);
        }
        tracing::info!(host = %cfg.host, workers = n_workers, "vswitchd started");
        Ok(Daemon {
            shared,
            threads,
            rings,
        })
    }

    /// Stops the workers and waits for them.
    pub fn stop(mut self) {
        self.shared.stop.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One poll-mode worker.
fn worker(
    w: usize,
    core: Option<usize>,
    shared: Arc<Shared>,
    mut queues: Vec<RxBinding>,
    limits: crate::config::LimitsConfig,
    idle_sleep: std::time::Duration,
) {
    let mut dp = Datapath::new(w, limits.flow_cache_entries);
    let mut pool = PacketPool::new(limits.packet_buffers.max(4 * BURST), limits.max_frame);
    let mut burst: Vec<PacketBuf> = Vec::with_capacity(BURST);
    let mut out: Vec<(PortId, PacketBuf)> = Vec::with_capacity(4 * BURST);
    let mut busy_ns = 0u64;
    let mut iterations = 0u64;
    while !shared.stop.load(Ordering::Acquire) {
        let sw = shared.snapshot.load();
        let tx = shared.tx.load();
        let mut got = 0;
        for q in queues.iter_mut() {
            let n = q.queue.rx_burst(&mut pool, &mut burst, BURST);
            if n == 0 {
                continue;
            }
            got += n;
            let t0 = Instant::now();
            let now = shared.now_ns();
            let mut sink = |p: PortId, b: PacketBuf| out.push((p, b));
            dp.process_burst(&sw, q.port, &mut burst, now, &mut pool, &mut sink);
            for (p, b) in out.drain(..) {
                match tx.get(&p) {
                    Some(t) => {
                        if !t.send(b.data()) {
                            dp.counters.drops.count(DropReason::TxQueueFull);
                        }
                    }
                    // A port without I/O (not bound in the config).
                    None => dp.counters.drops.count(DropReason::NoSuchPort),
                }
                pool.put(b);
            }
            for t in tx.values() {
                t.flush();
            }
            busy_ns += t0.elapsed().as_nanos() as u64;
        }
        iterations += 1;
        if got == 0 || iterations % 256 == 0 {
            let c = dp.cache_counters();
            let rx = dp.counters.rx_packets;
            let r = WorkerReport {
                worker: w,
                core,
                rx_packets: rx,
                tx_packets: dp.counters.tx_packets,
                upcalls: dp.counters.upcalls,
                cache_hits: c.hits,
                cache_misses: c.misses,
                drops: dp.counters.drops.nonzero(),
                busy_ns,
                ns_per_packet: if rx > 0 {
                    busy_ns as f64 / rx as f64
                } else {
                    0.0
                },
            };
            if let Some(slot) = shared.reports.get(w) {
                *slot.lock().unwrap_or_else(|e| e.into_inner()) = r;
            }
        }
        if got == 0 && !idle_sleep.is_zero() {
            std::thread::sleep(idle_sleep);
        }
    }
}
