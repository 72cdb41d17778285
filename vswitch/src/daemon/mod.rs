//! The daemon: poll-mode workers over the ports' I/O, a snapshot of the
//! switch published atomically, and the operations the control server
//! calls to change it.
//!
//! - `shared`: the state and who owns it ([`Shared`], [`World`],
//!   [`ControlState`]); every change goes through [`Shared::update`] or
//!   the binding operations there, all or nothing.
//! - `worker`: one poll-mode worker, rx → datapath → tx, burst by burst.
//! - `report`: the counters a worker publishes ([`WorkerReport`]).
//! - `backend`: opening a port's I/O backend from its configuration.
//! - `state`: the state file kept across restarts (written through
//!   [`Shared::on_change`], read back by vswitchd at start).
//!
//! This file starts and stops the threads. May call: `config`, `io`,
//! `capture`, pipeline, topology; it does not know the control protocol.
#![deny(unsafe_code)]

mod backend;
mod error;
mod report;
mod shared;
mod worker;

pub use error::{BackendError, BindError, DaemonError};
pub use report::{PortCounters, WorkerReport, MAX_COUNTED_PORT_ID};
pub mod state;
pub use shared::{BindingInfo, CacheRow, ControlState, Shared, World, MAX_QUEUES_PER_PORT};

use crate::config::DaemonConfig;
use crate::io::ring::RingHandle;
use pipeline::datapath::{Datapath, BURST};
use pipeline::packet::{PacketBuf, PacketPool};
use pipeline::switch::{PortId, Switch, SwitchConfig};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use topology::Topology;

/// A running daemon.
pub struct Daemon {
    pub shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Daemon {
    /// Starts the workers for `cfg` (the topology read from its file).
    pub fn start(cfg: &DaemonConfig) -> Result<Daemon, DaemonError> {
        let topology = cfg.load_topology()?;
        Daemon::start_with(cfg, topology)
    }

    /// Starts the workers for `cfg` with an already loaded topology.
    pub fn start_with(cfg: &DaemonConfig, topology: Topology) -> Result<Daemon, DaemonError> {
        let n_workers = cfg.workers.len();
        let (config, sw) = build_switch(cfg, &topology)?;
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        for _ in 0..n_workers {
            let (s, r) = crossbeam::channel::unbounded();
            senders.push(s);
            receivers.push(r);
        }
        let shared = Arc::new(Shared::new(
            cfg,
            ControlState {
                config,
                topology,
                agent_routers: Vec::new(),
            },
            sw,
            senders,
        ));
        backend::start_dpdk(cfg)?;
        for b in &cfg.ports {
            shared
                .bind_port(&b.name, &b.backend, b.queues)
                .map_err(DaemonError::Port)?;
        }
        let mut threads = Vec::new();
        let (ready, readies) = crossbeam::channel::unbounded();
        for (w, inbox) in receivers.into_iter().enumerate() {
            threads.push(worker::spawn(w, cfg, shared.clone(), inbox, ready.clone())?);
        }
        drop(ready);
        // Started means polling: each worker's caches are built (a worker
        // that died first lets go of its sender, so this ends anyway).
        while readies.recv().is_ok() {}
        threads.push(spawn_housekeeping(shared.clone())?);
        #[cfg(target_os = "linux")]
        threads.push(spawn_link_watch(shared.clone())?);
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
    pub fn process_local(&self, port: &str, frames: &[Vec<u8>]) -> Result<usize, DaemonError> {
        let sw = self.shared.switch();
        let id = sw
            .port_by_name(port)
            .ok_or_else(|| DaemonError::NoSuchPort(port.to_string()))?
            .id;
        // A worker index no worker has: rule counters are not credited.
        let mut dp = Datapath::new(usize::MAX, 1024);
        let mut pool = PacketPool::new(4 * BURST, self.shared.max_frame);
        let mut outputs = 0;
        for chunk in frames.chunks(BURST) {
            let mut burst = Vec::with_capacity(BURST);
            for f in chunk {
                let mut b = pool.get().ok_or(DaemonError::PoolExhausted)?;
                b.set_data(f)
                    .map_err(|_| DaemonError::FrameTooLarge(f.len()))?;
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

/// This host's switch configuration compiled from `topology`, with the
/// limits of `cfg`, and the switch built from it.
fn build_switch(
    cfg: &DaemonConfig,
    topology: &Topology,
) -> Result<(SwitchConfig, Arc<Switch>), DaemonError> {
    // Under a database the switch starts empty: the database's bridges
    // and ports come as it is read, and a topology's router instances
    // when it is loaded once their ports are there.
    let mut config = if cfg.ovsdb.is_some() {
        SwitchConfig::new(cfg.workers.len())
    } else {
        topology::build_host(topology, &cfg.host, cfg.workers.len())?
    };
    config.set_mac_limits(
        cfg.limits.mac_table_entries,
        pipeline::bridge::mac::DEFAULT_AGING_NS,
    );
    config.set_conntrack(
        pipeline::conntrack::ConnTable::new(
            pipeline::conntrack::Limits {
                max_conns: cfg.limits.max_connections,
                defrag: pipeline::conntrack::defrag::DefragLimits {
                    max_bytes: cfg.limits.reassembly_bytes,
                    ..Default::default()
                },
                ..Default::default()
            },
            Default::default(),
        )
        .with_owners(cfg.workers.len(), pipeline::rss::Rss::default()),
    );
    let sw = config.build()?;
    Ok((config, sw))
}

/// What `vswitchd --check` found a configuration to give: the switch it
/// builds, without opening any port or starting any thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    pub host: String,
    pub bridges: usize,
    pub ports: usize,
    pub routers: usize,
    pub bound: usize,
}

/// Reads `cfg`'s topology and builds this host's switch from it (as
/// [`Daemon::start`] does), and checks that every configured port is a
/// port of that switch (under a database, where ports come from the
/// database, only that the configuration reads); opens nothing.
pub fn check(cfg: &DaemonConfig) -> Result<CheckReport, DaemonError> {
    let topology = cfg.load_topology()?;
    let (_, sw) = build_switch(cfg, &topology)?;
    if cfg.ovsdb.is_none() {
        for b in &cfg.ports {
            if sw.port_by_name(&b.name).is_none() {
                return Err(DaemonError::NoSuchPort(b.name.clone()));
            }
        }
    }
    Ok(CheckReport {
        host: cfg.host.clone(),
        bridges: sw.bridges.len(),
        ports: sw.bridges.iter().map(|b| b.ports.len()).sum(),
        routers: sw.routers.len(),
        bound: cfg.ports.len(),
    })
}

/// The thread that follows Linux interfaces coming and going (see
/// `io::netlink`): a bound device deleted leaves its port waiting, one of
/// that name created binds it again. Without the netlink socket (logged),
/// it looks at the devices once a second instead.
#[cfg(target_os = "linux")]
fn spawn_link_watch(shared: Arc<Shared>) -> Result<JoinHandle<()>, DaemonError> {
    use crate::io::netlink::{index_of, LinkEvent, LinkMonitor, Received};
    std::thread::Builder::new()
        .name("link-watch".into())
        .spawn(move || {
            // Every watched device looked at: gone ones left, present
            // ones waited for bound.
            let look = |s: &Shared| {
                for (dev, bound) in s.watched_devices() {
                    match (bound, index_of(&dev).is_some()) {
                        (true, false) => {
                            s.device_gone(&dev);
                        }
                        (false, true) => {
                            s.device_back(&dev);
                        }
                        _ => {}
                    }
                }
            };
            let mut monitor = match LinkMonitor::open(Duration::from_millis(200)) {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::warn!(error = %e, "link watch: no netlink socket; looking at devices once a second");
                    None
                }
            };
            look(&shared);
            while !shared.stopping() {
                let Some(m) = monitor.as_mut() else {
                    std::thread::sleep(Duration::from_secs(1));
                    look(&shared);
                    continue;
                };
                match m.receive() {
                    Ok(Received::Events(events)) => {
                        for e in events {
                            match e {
                                LinkEvent::Deleted { name, .. } => {
                                    shared.device_gone(&name);
                                }
                                LinkEvent::New { name, .. } => {
                                    shared.device_back(&name);
                                }
                            }
                        }
                    }
                    Ok(Received::Nothing) => {}
                    Ok(Received::Lost) => look(&shared),
                    Err(e) => {
                        tracing::warn!(error = %e, "link watch: netlink receive failed; looking at devices once a second");
                        monitor = None;
                    }
                }
            }
        })
        .map_err(|source| DaemonError::Thread {
            thread: "link-watch".to_string(),
            source,
        })
}

/// The thread that expires flows by their timeouts, once a second.
fn spawn_housekeeping(shared: Arc<Shared>) -> Result<JoinHandle<()>, DaemonError> {
    std::thread::Builder::new()
        .name("housekeeping".into())
        .spawn(move || {
            let mut last = Instant::now();
            while !shared.stopping() {
                std::thread::sleep(Duration::from_millis(50));
                if last.elapsed() >= Duration::from_secs(1) {
                    last = Instant::now();
                    shared.expire_flows();
                }
            }
        })
        .map_err(|source| DaemonError::Thread {
            thread: "housekeeping".to_string(),
            source,
        })
}
