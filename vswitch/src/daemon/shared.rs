//! The daemon's state and who owns it.
//!
//! - [`ControlState`] (the `SwitchConfig` and the topology it was compiled
//!   from) sits behind one mutex, the port I/O bindings ([`IoState`])
//!   behind a second; both are taken only by control operations, always
//!   in that order (state, then I/O).
//! - [`World`] is what workers read: the switch, the transmit queue of
//!   every bound port by id, the running captures. Every change builds a
//!   new one and publishes it with `ArcSwap`; workers load it once per
//!   burst, without a lock, so a change takes effect at a burst boundary.
//! - Receive queues are handed to a worker over its channel when a port is
//!   bound ([`IoCmd`]) and taken back when it is unbound.
//! - `reports` has one slot per worker: the worker writes its own (a
//!   mutex taken once per report, not per packet), control reads them.
//!
//! MAC tables, conntrack, neighbours and flow counters live in the switch
//! and survive updates. May call: `backend` (opening I/O), pipeline.
#![deny(unsafe_code)]

use super::backend::open_backend;
use super::error::BindError;
use super::report::{PortCounters, WorkerReport};
use crate::capture::Capture;
use crate::config::{Backend, DaemonConfig};
use crate::io::ring::RingHandle;
use crate::io::RxQueue;
use crate::io::TxQueue;
use arc_swap::ArcSwap;
use crossbeam::channel::Sender;
use pipeline::switch::{PortId, Switch, SwitchConfig};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use topology::{HostRouter, Topology};

/// Receive queues one port may be bound with.
pub const MAX_QUEUES_PER_PORT: usize = 64;

/// What control sends a worker: receive queues to poll, or to drop.
pub(super) enum IoCmd {
    Add(RxBinding),
    /// Drops every queue of this binding.
    Remove(u64),
    /// Lists the worker's flow caches (`dpctl dump-flows`).
    DumpCaches(crossbeam::channel::Sender<Vec<CacheRow>>),
}

/// One datapath flow in a worker's cache, as `dpctl dump-flows` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRow {
    pub worker: usize,
    /// The cache after a conntrack step's recirculation.
    pub recirc: bool,
    /// The megaflow (its port by name), ovs-ofctl's match syntax.
    pub megaflow: String,
    pub actions: String,
    pub packets: u64,
    /// Milliseconds since a packet last hit it.
    pub used_ms: u64,
}

/// A receive queue handed to a worker.
pub(super) struct RxBinding {
    pub(super) binding: u64,
    pub(super) name: String,
    /// The port's id in the switch the worker last looked at.
    pub(super) port: Option<PortId>,
    pub(super) queue: Box<dyn RxQueue>,
}

/// What control operations change.
#[derive(Clone)]
pub struct ControlState {
    pub config: SwitchConfig,
    pub topology: Topology,
    /// Routers Neutron's L3 agent handed the switch (`l3-router-set`),
    /// compiled beside the topology's.
    pub agent_routers: Vec<HostRouter>,
}

/// What workers read, published as one immutable value.
pub struct World {
    pub sw: Arc<Switch>,
    pub tx: HashMap<PortId, Arc<dyn TxQueue>>,
    /// Captures running, with the id of the port each watches.
    pub captures: Vec<(PortId, Arc<Capture>)>,
    /// Ports whose bound device is gone (their output is dropped under
    /// `device_missing` until it comes back).
    pub missing: Vec<PortId>,
}

/// A port bound to I/O.
pub(super) struct BoundPort {
    backend: Backend,
    queues: usize,
    /// Identifies the receive queues handed to workers for this binding.
    binding: u64,
    tx: Option<Arc<dyn TxQueue>>,
    ring: Option<RingHandle>,
}

/// The Linux device port `name` bound to `backend` uses, for the
/// backends on a device that can be deleted under them.
fn device_of<'a>(name: &'a str, backend: &'a Backend) -> Option<&'a str> {
    match backend {
        Backend::AfPacket { interface } => Some(interface.as_deref().unwrap_or(name)),
        Backend::AfXdp { interface, .. } => Some(interface.as_deref().unwrap_or(name)),
        _ => None,
    }
}

/// A binding whose device is gone.
pub(super) struct MissingBinding {
    backend: Backend,
    queues: usize,
    /// The device's name.
    interface: String,
}

/// A port's I/O binding as `show`/`dump-ports` report it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingInfo {
    pub port: String,
    pub backend: Backend,
    pub queues: usize,
}

/// The ports bound to I/O and the captures running, by port name.
#[derive(Default)]
pub(super) struct IoState {
    pub(super) ports: BTreeMap<String, BoundPort>,
    pub(super) captures: Vec<(String, Arc<Capture>)>,
    /// Bindings whose device is gone, by port name: bound again, as they
    /// were, when a device of that name comes back.
    pub(super) missing: BTreeMap<String, MissingBinding>,
    next_binding: u64,
    next_worker: usize,
}

/// What the daemon's threads share (see the module notes for who writes
/// what).
pub struct Shared {
    /// This host's name in the topology.
    pub host: String,
    /// The switch's bridges, ports and flows are the Open_vSwitch
    /// database's and its controllers' (`ovsdb` configured): a topology
    /// brings only the router instances (the L3 agent's part).
    pub l2_from_database: bool,
    pub state: Mutex<ControlState>,
    /// Where the L3 agent's routers are kept across restarts
    /// (`l3-routers.json` in the run directory).
    pub agent_routers_file: std::path::PathBuf,
    /// Saved L3 agent routers not put back yet (their ports are not all
    /// on the switch yet).
    pub agent_routers_pending: Mutex<Vec<HostRouter>>,
    pub(super) world: ArcSwap<World>,
    /// Moves on after every `world` store: a worker loads the world again
    /// only when it moved (one load of a line that rarely changes, not the
    /// swap's bookkeeping per burst).
    pub(super) world_epoch: AtomicU64,
    io: Mutex<IoState>,
    /// Each worker's inbox of receive queues.
    workers: Vec<Sender<IoCmd>>,
    /// Moves on after commands are sent to the inboxes: a worker looks in
    /// its inbox only when it moved.
    pub(super) io_epoch: AtomicU64,
    pub(super) stop: AtomicBool,
    /// One per worker, written by it.
    pub reports: Vec<Mutex<WorkerReport>>,
    epoch: Instant,
    pub(super) max_frame: usize,
    fanout_group: AtomicU64,
    dpdk_mbufs: u32,
    /// Called after every accepted change (the state file's keeper).
    change_hook: Mutex<Option<ChangeHook>>,
}

/// What [`Shared::on_change`] calls.
pub type ChangeHook = Box<dyn FnMut(&Shared) + Send>;

impl Shared {
    /// The state of a daemon that runs `sw` (compiled from `control`)
    /// with one worker per inbox in `workers` and nothing bound yet.
    pub(super) fn new(
        cfg: &DaemonConfig,
        control: ControlState,
        sw: Arc<Switch>,
        workers: Vec<Sender<IoCmd>>,
    ) -> Shared {
        Shared {
            host: cfg.host.clone(),
            l2_from_database: cfg.ovsdb.is_some(),
            state: Mutex::new(control),
            agent_routers_file: cfg.run_dir().join("l3-routers.json"),
            agent_routers_pending: Mutex::new(Vec::new()),
            world: ArcSwap::new(Arc::new(World {
                sw,
                tx: HashMap::new(),
                captures: Vec::new(),
                missing: Vec::new(),
            })),
            world_epoch: AtomicU64::new(0),
            io_epoch: AtomicU64::new(0),
            io: Mutex::new(IoState::default()),
            reports: (0..workers.len())
                .map(|w| {
                    Mutex::new(WorkerReport {
                        worker: w,
                        core: cfg.workers.get(w).and_then(|c| c.core),
                        ..Default::default()
                    })
                })
                .collect(),
            workers,
            stop: AtomicBool::new(false),
            epoch: Instant::now(),
            max_frame: cfg.limits.max_frame,
            fanout_group: AtomicU64::new(0),
            dpdk_mbufs: cfg.dpdk.mbufs,
            change_hook: Mutex::new(None),
        }
    }

    /// Monotonic time since the daemon started.
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// The daemon's clock at `t` (an instant already read: one clock read
    /// fewer).
    pub fn ns_at(&self, t: std::time::Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_nanos() as u64
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

    pub(super) fn lock_io(&self) -> MutexGuard<'_, IoState> {
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
        let missing = io
            .missing
            .keys()
            .filter_map(|n| sw.port_by_name(n).map(|p| p.id))
            .collect();
        self.world.store(Arc::new(World {
            sw,
            tx,
            captures,
            missing,
        }));
        self.world_epoch.fetch_add(1, Ordering::Release);
    }

    /// Applies `change` to a copy of the control state, builds it and
    /// publishes it; on any error (of `change`, or building the switch)
    /// nothing changes.
    pub fn update<T, E: From<pipeline::switch::ConfigError>>(
        &self,
        change: impl FnOnce(&mut ControlState) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut st = self.lock_state();
        let mut next = st.clone();
        let out = change(&mut next)?;
        let sw = next.config.build()?;
        let io = self.lock_io();
        *st = next;
        self.publish(sw, &io);
        drop(io);
        drop(st);
        self.save_state();
        Ok(out)
    }

    /// Calls `hook` after every accepted change from now on (and once
    /// now), with no lock of the switch held: how the state file is kept
    /// (`daemon::state::keep`).
    pub fn on_change(&self, hook: ChangeHook) {
        *self.change_hook.lock().unwrap_or_else(|e| e.into_inner()) = Some(hook);
        self.save_state();
    }

    /// Tells the change hook, if any, that the state changed.
    pub fn save_state(&self) {
        let mut h = self.change_hook.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hook) = h.as_mut() {
            hook(self);
        }
    }

    /// What [`Shared::update`] with `change` would give, the switch built
    /// too, without changing or publishing anything.
    pub fn dry_run<T, E: From<pipeline::switch::ConfigError>>(
        &self,
        change: impl FnOnce(&mut ControlState) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut next = self.lock_state().clone();
        let out = change(&mut next)?;
        next.config.build()?;
        Ok(out)
    }

    /// Binds port `name` of the switch to I/O: opens the backend with
    /// `queues` receive queues (queue i to worker i; a single queue to the
    /// next worker round robin) and publishes its
    /// transmit side. The port must exist; an existing binding is replaced
    /// only after the new one opened.
    pub fn bind_port(&self, name: &str, backend: &Backend, queues: usize) -> Result<(), BindError> {
        if queues == 0 || queues > MAX_QUEUES_PER_PORT {
            return Err(BindError::QueueCount {
                max: MAX_QUEUES_PER_PORT,
                port: name.to_string(),
                queues,
            });
        }
        let st = self.lock_state();
        let sw = self.world.load().sw.clone();
        let port = sw
            .port_by_name(name)
            .ok_or_else(|| self.no_such_port(name))?;
        // System ports carry a NIC's or a device's I/O; an internal port
        // only its own TAP device.
        let tap_on_internal = port.kind == pipeline::switch::PortKind::Internal
            && matches!(backend, Backend::Tap { .. });
        if port.kind != pipeline::switch::PortKind::System && !tap_on_internal {
            return Err(BindError::NotSystem {
                port: name.to_string(),
                kind: port.kind.clone(),
            });
        }
        let opened = open_backend(
            name,
            backend,
            queues,
            &self.fanout_group,
            self.dpdk_mbufs,
            sw.conntrack.rss(),
            self.workers.len(),
        )
        .map_err(|source| BindError::Open {
            port: name.to_string(),
            source,
        })?;
        let mut io = self.lock_io();
        io.missing.remove(name);
        io.next_binding += 1;
        let binding = io.next_binding;
        if let Some(old) = io.ports.remove(name) {
            self.retire(old.binding);
        }
        let n_workers = self.workers.len().max(1);
        for (i, q) in opened.rx.into_iter().enumerate() {
            // Queue i of a multi-queue port goes to worker i, as conntrack's
            // shard owners assume (RSS sends a flow to the same queue index
            // on every port); single queues spread round robin.
            let w = if queues > 1 {
                i % n_workers
            } else {
                io.next_worker % n_workers
            };
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
        self.io_epoch.fetch_add(1, Ordering::Release);
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
        drop(io);
        drop(st);
        tracing::info!(port = name, queues, "port bound to I/O");
        self.save_state();
        Ok(())
    }

    /// Removes port `name`'s I/O binding (its receive queues are closed by
    /// the workers at their next burst boundary).
    pub fn unbind_port(&self, name: &str) -> Result<(), BindError> {
        {
            let _st = self.lock_state();
            let mut io = self.lock_io();
            let was_missing = io.missing.remove(name).is_some();
            let Some(old) = io.ports.remove(name) else {
                if was_missing {
                    let sw = self.world.load().sw.clone();
                    self.publish(sw, &io);
                    drop(io);
                    drop(_st);
                    self.save_state();
                    return Ok(());
                }
                return Err(BindError::NotBound(name.to_string()));
            };
            self.retire(old.binding);
            let sw = self.world.load().sw.clone();
            self.publish(sw, &io);
        }
        self.save_state();
        Ok(())
    }

    /// Device `interface` is gone: the ports bound to it (AF_PACKET,
    /// AF_XDP) lose their I/O and wait for it (their output dropped under
    /// `device_missing`), logged. How many ports.
    pub fn device_gone(&self, interface: &str) -> usize {
        let st = self.lock_state();
        let mut io = self.lock_io();
        let gone: Vec<String> = io
            .ports
            .iter()
            .filter(|(n, b)| device_of(n, &b.backend) == Some(interface))
            .map(|(n, _)| n.clone())
            .collect();
        for name in &gone {
            if let Some(old) = io.ports.remove(name) {
                self.retire(old.binding);
                tracing::warn!(
                    port = %name,
                    device = interface,
                    "port's device is gone: its frames are dropped (device_missing) until it comes back"
                );
                io.missing.insert(
                    name.clone(),
                    MissingBinding {
                        backend: old.backend,
                        queues: old.queues,
                        interface: interface.to_string(),
                    },
                );
            }
        }
        if !gone.is_empty() {
            let sw = self.world.load().sw.clone();
            self.publish(sw, &io);
        }
        drop(io);
        drop(st);
        gone.len()
    }

    /// A device named `interface` exists (again): the ports waiting for it
    /// are bound to it as they were, logged. How many were.
    pub fn device_back(&self, interface: &str) -> usize {
        let waiting: Vec<(String, Backend, usize)> = self
            .lock_io()
            .missing
            .iter()
            .filter(|(_, m)| m.interface == interface)
            .map(|(n, m)| (n.clone(), m.backend.clone(), m.queues))
            .collect();
        let mut n = 0;
        for (name, backend, queues) in waiting {
            match self.bind_port(&name, &backend, queues) {
                Ok(()) => {
                    n += 1;
                    tracing::info!(port = %name, device = interface, "port's device is back: bound again");
                }
                Err(e) => {
                    tracing::warn!(port = %name, device = interface, error = %e, "port's device is back but does not open yet")
                }
            }
        }
        n
    }

    /// The devices bound ports use (AF_PACKET, AF_XDP) and those ports
    /// wait for: (interface, bound now).
    pub fn watched_devices(&self) -> Vec<(String, bool)> {
        let io = self.lock_io();
        let mut v: Vec<(String, bool)> = io
            .ports
            .iter()
            .filter_map(|(n, b)| device_of(n, &b.backend).map(|d| (d.to_string(), true)))
            .collect();
        v.extend(io.missing.values().map(|m| (m.interface.clone(), false)));
        v
    }

    fn retire(&self, binding: u64) {
        for s in &self.workers {
            let _ = s.send(IoCmd::Remove(binding));
        }
        self.io_epoch.fetch_add(1, Ordering::Release);
    }

    /// The I/O bindings, with those waiting for their device: what the
    /// state file keeps.
    pub fn wanted_bindings(&self) -> Vec<BindingInfo> {
        let mut v = self.bindings();
        v.extend(self.lock_io().missing.iter().map(|(n, m)| BindingInfo {
            port: n.clone(),
            backend: m.backend.clone(),
            queues: m.queues,
        }));
        v.sort_by(|a, b| a.port.cmp(&b.port));
        v
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
    pub fn add_capture(&self, name: &str, capture: Arc<Capture>) -> Result<(), BindError> {
        let _st = self.lock_state();
        let sw = self.world.load().sw.clone();
        if sw.port_by_name(name).is_none() {
            return Err(self.no_such_port(name));
        }
        let mut io = self.lock_io();
        if io.captures.len() >= crate::capture::MAX_CAPTURES {
            return Err(BindError::TooManyCaptures {
                running: io.captures.len(),
            });
        }
        io.captures.push((name.to_string(), capture));
        self.publish(sw, &io);
        drop(io);
        drop(_st);
        self.watch(name);
        Ok(())
    }

    /// Makes walks tap copies for port `name`'s captures where they cross
    /// it without an output (a router's internal port), or stop when no
    /// capture watches it any more; a switch rebuilt (flow caches
    /// renewed) only when that changes.
    fn watch(&self, name: &str) {
        let on = self.lock_io().captures.iter().any(|(n, _)| n == name);
        if self.lock_state().config.is_watched(name) == on {
            return;
        }
        let watched = self.update(|st| {
            st.config.set_watched(name, on);
            Ok::<_, pipeline::switch::ConfigError>(())
        });
        if let Err(e) = watched {
            tracing::warn!(port = name, error = %e, "capture: switch not rebuilt");
        }
    }

    fn no_such_port(&self, name: &str) -> BindError {
        BindError::NoSuchPort {
            port: name.to_string(),
            host: self.host.clone(),
        }
    }

    /// Stops feeding `capture`.
    pub fn remove_capture(&self, capture: &Arc<Capture>) {
        let _st = self.lock_state();
        let mut io = self.lock_io();
        let name = io
            .captures
            .iter()
            .find(|(_, c)| Arc::ptr_eq(c, capture))
            .map(|(n, _)| n.clone());
        io.captures.retain(|(_, c)| !Arc::ptr_eq(c, capture));
        let sw = self.world.load().sw.clone();
        self.publish(sw, &io);
        drop(io);
        drop(_st);
        if let Some(n) = name {
            self.watch(&n);
        }
    }

    /// Every worker's datapath flows (`dpctl dump-flows`): each worker
    /// answers at its next poll; one that does not within `wait` is left
    /// out (named in the log).
    pub fn dump_caches(&self, wait: Duration) -> Vec<CacheRow> {
        let mut replies = Vec::new();
        for (w, s) in self.workers.iter().enumerate() {
            let (tx, rx) = crossbeam::channel::bounded(1);
            if s.send(IoCmd::DumpCaches(tx)).is_ok() {
                replies.push((w, rx));
            }
        }
        self.io_epoch.fetch_add(1, Ordering::Release);
        let deadline = Instant::now() + wait;
        let mut rows = Vec::new();
        for (w, rx) in replies {
            match rx.recv_deadline(deadline) {
                Ok(r) => rows.extend(r),
                Err(_) => tracing::warn!(worker = w, "dpctl: worker did not answer in time"),
            }
        }
        rows
    }

    /// Packets the workers dropped under `reason` (as last published).
    pub fn drops(&self, reason: &str) -> u64 {
        self.reports
            .iter()
            .map(|r| {
                let r = r.lock().unwrap_or_else(|e| e.into_inner());
                r.drops
                    .iter()
                    .filter(|(n, _)| n == reason)
                    .map(|(_, c)| *c)
                    .sum::<u64>()
            })
            .sum()
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
                let mut c = sum.get(&p.id).copied().unwrap_or_default();
                // An internal port a router takes: what crossed it.
                if let Some(x) = sw.crossing(p.id) {
                    let (tp, tb, _) = x.to_router.read();
                    let (rp, rb, _) = x.from_router.read();
                    c.tx_packets += tp;
                    c.tx_bytes += tb;
                    c.rx_packets += rp;
                    c.rx_bytes += rb;
                }
                (p.name.clone(), p.ofport, c)
            })
            .collect()
    }

    /// Removes flows whose idle or hard timeout passed (called once a
    /// second by the housekeeping thread); publishes only when one did.
    pub(super) fn expire_flows(&self) {
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
