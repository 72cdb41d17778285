//! The switch's OpenFlow 1.3 side, as ovs-vswitchd's: each bridge listens
//! on `<rundir>/<bridge>.mgmt` (so `ovs-ofctl -O OpenFlow13 dump-flows
//! br-int` works with `OVS_RUNDIR=<rundir>`) and connects out to the
//! controllers its database row names (Neutron's OVS agent listens on
//! `tcp:127.0.0.1:6633`), reconnecting with a growing pause.
//!
//! - `session`: one OpenFlow connection, whatever its transport: version
//!   negotiation, then requests answered in order.
//! - `control`: a bridge's datapath id and controllers.
//! - `flows`: flow mods into the bridge's flow table and flow statistics
//!   out of it.
//! - `saved`: a bridge's flows kept across a restart of the switch.
//!
//! Owner: a thread that keeps the listeners and connectors matched to the
//! bridges (`sync`, every `SYNC_INTERVAL`); a thread per connection.
//! Sessions change the switch only through `Shared::update`.
#![deny(unsafe_code)]

mod control;
mod flows;
mod saved;
mod session;

pub use control::{datapath_id, versions_of, BridgeControl};
use ovsdb::{Stream, Target};

use crate::daemon::Shared;
use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Management sessions a bridge serves at once; more are refused (closed
/// at once, logged).
pub const MAX_SESSIONS_PER_BRIDGE: usize = 64;

/// How often listeners and connectors are matched to the bridges.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// The bridges' OpenFlow side; stops its threads when dropped.
pub struct OpenFlowService {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

struct Inner {
    shared: Arc<Shared>,
    rundir: PathBuf,
    stop: AtomicBool,
    /// Set by the database (owner: its thread); bridges it does not name
    /// get a datapath id from their name and no controller.
    control: Mutex<BTreeMap<String, BridgeControl>>,
    /// Bridges whose flows a session changed since they were last saved
    /// (written by sessions, taken by the sync thread).
    changed: Mutex<std::collections::BTreeSet<String>>,
    /// (bridge, target) of the controller connections up now (written by
    /// the connector threads).
    connected: Mutex<std::collections::BTreeSet<(String, String)>>,
    /// Moves on when a controller connection comes up or goes down.
    connections_epoch: std::sync::atomic::AtomicU64,
}

impl Inner {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire) || self.shared.stopping()
    }

    fn set_connected(&self, bridge: &str, target: &str, up: bool) {
        let key = (bridge.to_string(), target.to_string());
        let mut c = self.connected.lock().unwrap_or_else(|e| e.into_inner());
        let changed = if up { c.insert(key) } else { c.remove(&key) };
        if changed {
            self.connections_epoch.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn flows_changed(&self, bridge: &str) {
        self.changed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(bridge.to_string());
    }

    /// Saves the flows of the bridges sessions changed.
    fn save_changed(&self) {
        let changed = std::mem::take(&mut *self.changed.lock().unwrap_or_else(|e| e.into_inner()));
        for b in changed {
            if let Err(e) = saved::save(&self.shared, &self.rundir, &b) {
                tracing::warn!(bridge = %b, error = %e, "openflow: saving the bridge's flows");
            }
        }
    }

    fn control_of(&self, bridge: &str) -> BridgeControl {
        self.control
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(bridge)
            .cloned()
            .unwrap_or_else(|| BridgeControl {
                datapath_id: datapath_id(bridge, None),
                controllers: Vec::new(),
                versions: control::ALL_VERSIONS,
            })
    }
}

impl OpenFlowService {
    /// Serves every bridge of the switch, management sockets in `rundir`.
    pub fn start(shared: Arc<Shared>, rundir: &Path) -> std::io::Result<OpenFlowService> {
        std::fs::create_dir_all(rundir)?;
        let inner = Arc::new(Inner {
            shared,
            rundir: rundir.to_path_buf(),
            stop: AtomicBool::new(false),
            control: Mutex::new(BTreeMap::new()),
            changed: Mutex::new(Default::default()),
            connected: Mutex::new(Default::default()),
            connections_epoch: std::sync::atomic::AtomicU64::new(0),
        });
        let i = inner.clone();
        let thread = std::thread::Builder::new()
            .name("openflow".into())
            .spawn(move || keep_in_sync(&i))?;
        Ok(OpenFlowService {
            inner,
            thread: Some(thread),
        })
    }

    /// The database's datapath ids and controllers, by bridge.
    pub fn set_control(&self, control: BTreeMap<String, BridgeControl>) {
        *self.inner.control.lock().unwrap_or_else(|e| e.into_inner()) = control;
    }

    /// Whether `bridge`'s connection to controller `target` is up.
    pub fn is_connected(&self, bridge: &str, target: &str) -> bool {
        self.inner
            .connected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&(bridge.to_string(), target.to_string()))
    }

    /// Moves on whenever a controller connection comes up or goes down.
    pub fn connections_epoch(&self) -> u64 {
        self.inner.connections_epoch.load(Ordering::Acquire)
    }

    /// Where `bridge`'s management socket is.
    pub fn management_socket(&self, bridge: &str) -> PathBuf {
        self.inner.rundir.join(format!("{bridge}.mgmt"))
    }
}

impl Drop for OpenFlowService {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A bridge's listener or a controller connector, running.
struct Running {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Running {
    fn halt(self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.thread.join();
    }
}

/// Starts and stops listeners and connectors as bridges and controllers
/// come and go.
fn keep_in_sync(inner: &Arc<Inner>) {
    let mut listeners: BTreeMap<String, Running> = BTreeMap::new();
    let mut connectors: BTreeMap<(String, String), Running> = BTreeMap::new();
    let mut refused: std::collections::BTreeSet<(String, String)> = Default::default();
    while !inner.stopping() {
        let sw = inner.shared.switch();
        let bridges: Vec<String> = sw.bridges.iter().map(|b| b.name.clone()).collect();
        drop(sw);
        let gone: Vec<String> = listeners
            .keys()
            .filter(|b| !bridges.contains(b))
            .cloned()
            .collect();
        for b in gone {
            if let Some(r) = listeners.remove(&b) {
                r.halt();
            }
            saved::forget(&inner.rundir, &b);
        }
        let mut wanted = Vec::new();
        for b in &bridges {
            if !listeners.contains_key(b) {
                // Before any controller connects: the flows it left.
                match saved::restore(&inner.shared, &inner.rundir, b) {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(bridge = %b, flows = n, "openflow: flows kept across the restart put back")
                    }
                    Err(e) => {
                        tracing::warn!(bridge = %b, error = %e, "openflow: saved flows not put back")
                    }
                }
                match listen(inner, b) {
                    Ok(r) => {
                        listeners.insert(b.clone(), r);
                    }
                    Err(e) => {
                        tracing::warn!(bridge = %b, error = %e, "openflow: management socket")
                    }
                }
            }
            for target in inner.control_of(b).controllers {
                wanted.push((b.clone(), target));
            }
        }
        wanted.sort();
        wanted.dedup();
        let stale: Vec<(String, String)> = connectors
            .keys()
            .filter(|k| !wanted.contains(k))
            .cloned()
            .collect();
        for k in stale {
            if let Some(r) = connectors.remove(&k) {
                r.halt();
            }
        }
        refused.retain(|k| wanted.contains(k));
        for k in wanted {
            if refused.contains(&k) {
                continue;
            }
            if let std::collections::btree_map::Entry::Vacant(slot) = connectors.entry(k) {
                let (b, t) = slot.key().clone();
                match connect_out(inner, &b, &t) {
                    Ok(r) => {
                        slot.insert(r);
                    }
                    Err(e) => {
                        // Said once; tried again only if the row changes.
                        tracing::warn!(bridge = %b, target = %t, error = %e, "openflow: controller refused");
                        refused.insert((b, t));
                    }
                }
            }
        }
        inner.save_changed();
        std::thread::sleep(SYNC_INTERVAL);
    }
    inner.save_changed();
    for (_, r) in listeners {
        r.halt();
    }
    for (_, r) in connectors {
        r.halt();
    }
}

/// Listens on the bridge's management socket; a session per client.
fn listen(inner: &Arc<Inner>, bridge: &str) -> std::io::Result<Running> {
    let path = inner.rundir.join(format!("{bridge}.mgmt"));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    // Flows are the switch: only its owner may connect (as the control
    // socket; the directory was checked when that was made).
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (flag, i, b) = (stop.clone(), inner.clone(), bridge.to_string());
    let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut refused = 0u64;
    let thread = std::thread::Builder::new()
        .name(format!("of-{bridge}"))
        .spawn(move || {
            while !flag.load(Ordering::Acquire) && !i.stopping() {
                match listener.accept() {
                    Ok((s, _)) => {
                        if active.load(Ordering::Acquire) >= MAX_SESSIONS_PER_BRIDGE {
                            refused += 1;
                            tracing::warn!(bridge = %b, limit = MAX_SESSIONS_PER_BRIDGE, refused, "openflow: management session refused: too many");
                            drop(s);
                            continue;
                        }
                        let _ = s.set_nonblocking(false);
                        active.fetch_add(1, Ordering::AcqRel);
                        let (i2, b2, f2, a2) = (i.clone(), b.clone(), flag.clone(), active.clone());
                        let spawned = std::thread::Builder::new()
                            .name(format!("of-{b}-client"))
                            .spawn(move || {
                                let stop = || f2.load(Ordering::Acquire) || i2.stopping();
                                let changed = || i2.flows_changed(&b2);
                                if let Err(e) = session::run(&i2.shared, &b2, &i2.control_of(&b2), Stream::Unix(s), &stop, &changed) {
                                    tracing::debug!(bridge = %b2, error = %e, "openflow: management session ended");
                                }
                                a2.fetch_sub(1, Ordering::AcqRel);
                            });
                        if let Err(e) = spawned {
                            active.fetch_sub(1, Ordering::AcqRel);
                            tracing::warn!(bridge = %b, error = %e, "openflow: no thread for a management session");
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Err(e) => {
                        tracing::warn!(bridge = %b, error = %e, "openflow: accept");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
            let _ = std::fs::remove_file(&path);
        })?;
    Ok(Running { stop, thread })
}

/// Connects to a controller, again and again, until stopped. A target
/// OVS's syntax does not allow is refused (and logged) by the caller.
fn connect_out(inner: &Arc<Inner>, bridge: &str, target: &str) -> std::io::Result<Running> {
    let parsed = Target::parse(target)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let stop = Arc::new(AtomicBool::new(false));
    let (flag, i, b, t) = (
        stop.clone(),
        inner.clone(),
        bridge.to_string(),
        target.to_string(),
    );
    let thread = std::thread::Builder::new()
        .name(format!("of-{bridge}-ctl"))
        .spawn(move || {
            let mut backoff = Duration::from_millis(100);
            let stop = || flag.load(Ordering::Acquire) || i.stopping();
            while !stop() {
                match parsed.connect() {
                    Ok(s) => {
                        tracing::info!(bridge = %b, target = %t, "openflow: connected to controller");
                        backoff = Duration::from_millis(100);
                        let changed = || i.flows_changed(&b);
                        i.set_connected(&b, &t, true);
                        if let Err(e) = session::run(&i.shared, &b, &i.control_of(&b), s, &stop, &changed) {
                            tracing::info!(bridge = %b, target = %t, error = %e, "openflow: controller connection ended");
                        }
                        i.set_connected(&b, &t, false);
                    }
                    Err(e) => tracing::debug!(bridge = %b, target = %t, error = %e, "openflow: controller not reachable"),
                }
                let until = Instant::now() + backoff;
                while Instant::now() < until && !stop() {
                    std::thread::sleep(Duration::from_millis(20));
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        })?;
    Ok(Running { stop, thread })
}
