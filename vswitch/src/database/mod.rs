//! The Open_vSwitch database as this switch's configuration, the way
//! ovs-vswitchd takes it: a thread monitors the database (an
//! `ovsdb-server` the operator or Neutron's agents write with
//! `ovs-vsctl`), brings the switch to what it says and writes back what
//! ovs-vswitchd writes (interface numbers and errors, datapath ids,
//! supported types, `cur_cfg`). The server owns the database; this is a
//! client (the `ovsdb` crate).
//!
//! - `view`: the rows as bridges, ports and interfaces (pure).
//! - `reconcile`: the switch brought to the view, change by change.
//! - `writeback`: the database brought to what the switch holds.
//!
//! The thread reconnects (with a growing pause) when the server goes
//! away; what the switch holds stays as it was meanwhile. A device the
//! database names that is not there yet is tried again every
//! `RETRY_INTERVAL`. May call: `daemon` (the switch's state).
#![deny(unsafe_code)]

mod reconcile;
mod view;
mod writeback;

pub use reconcile::{LOCAL_OFPORT, MAX_MAC_TABLE_SIZE};
pub use writeback::OVS_VERSION;

use crate::daemon::Shared;
use crate::ofswitch::{datapath_id, BridgeControl, OpenFlowService};
use ovsdb::{Connection, ConnectionError, Message, Replica, Target};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The database this switch's configuration is in.
pub const DATABASE: &str = "Open_vSwitch";
/// How often interfaces whose device was missing are tried again.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(8);

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("ovsdb: {0}")]
    Target(#[from] ovsdb::BadTarget),
    #[error("ovsdb: starting its thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// The running database thread; stops when dropped.
pub struct DatabaseBinding {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl DatabaseBinding {
    /// Starts following the database at `target` (`unix:PATH` or
    /// `tcp:HOST:PORT`); the target's syntax is checked now, the server
    /// may come later.
    /// `openflow`, if given, learns each bridge's datapath id and
    /// controllers from the database.
    pub fn start(
        target: &str,
        shared: Arc<Shared>,
        openflow: Option<Arc<OpenFlowService>>,
    ) -> Result<DatabaseBinding, DatabaseError> {
        let target = Target::parse(target)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ovsdb".into())
            .spawn(move || follow(&target, &shared, openflow.as_deref(), &flag))
            .map_err(DatabaseError::Thread)?;
        Ok(DatabaseBinding {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for DatabaseBinding {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sessions with the server until stopped, reconnecting after failures.
fn follow(target: &Target, shared: &Shared, openflow: Option<&OpenFlowService>, stop: &AtomicBool) {
    let mut owned = reconcile::Owned::default();
    let mut backoff = Duration::from_millis(100);
    let mut logged = false;
    while !stop.load(Ordering::Acquire) && !shared.stopping() {
        match session(target, shared, openflow, stop, &mut owned, &mut logged) {
            Ok(()) => return,
            Err(e) => {
                if !logged {
                    tracing::warn!(target = %target, error = %e, "ovsdb: not connected; retrying");
                    logged = true;
                }
                let until = Instant::now() + backoff;
                while Instant::now() < until && !stop.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// One connection: monitor, then bring switch and database together
/// after every change (and every `RETRY_INTERVAL` while a device is
/// missing). Ok when asked to stop.
fn session(
    target: &Target,
    shared: &Shared,
    openflow: Option<&OpenFlowService>,
    stop: &AtomicBool,
    owned: &mut reconcile::Owned,
    logged: &mut bool,
) -> Result<(), ConnectionError> {
    let mut c = Connection::open(target)?;
    let mut replica = Replica::default();
    let initial = c.monitor(DATABASE, serde_json::json!("vswitchd"), view::monitored())?;
    apply(&mut replica, &initial);
    tracing::info!(target = %target, "ovsdb: connected");
    *logged = false;
    loop {
        let v = view::view(&replica);
        let outcome = reconcile::reconcile(shared, &v, owned);
        // The L3 agent's routers of the last run, once their ports are back.
        let routers_waiting = match crate::l3agent::restore_pending(shared) {
            Some(0) => false,
            Some(n) => {
                tracing::info!(routers = n, "l3: the L3 agent's routers put back");
                false
            }
            None => true,
        };
        if let Some(of) = openflow {
            of.set_control(
                v.bridges
                    .iter()
                    .map(|b| {
                        let control = BridgeControl {
                            datapath_id: datapath_id(&b.name, b.datapath_id_request),
                            controllers: b.controllers.iter().map(|c| c.target.clone()).collect(),
                            versions: crate::ofswitch::versions_of(&b.protocols),
                        };
                        (b.name.clone(), control)
                    })
                    .collect(),
            );
        }
        let connected = |b: &str, t: &str| openflow.is_some_and(|of| of.is_connected(b, t));
        let epoch = openflow.map(OpenFlowService::connections_epoch);
        let ops = writeback::operations(&v, &outcome, &connected);
        if !ops.is_empty() {
            c.transact(DATABASE, &ops)?;
        }
        let retry_at = (outcome.retry || routers_waiting).then(|| Instant::now() + RETRY_INTERVAL);
        let routed = reconcile::routed_ports(shared);
        loop {
            if stop.load(Ordering::Acquire) || shared.stopping() {
                return Ok(());
            }
            match c.next_notification(Duration::from_millis(100))? {
                Some(Message::Notification { method, params }) if method == "update" => {
                    if let Some(updates) = params.get(1) {
                        apply(&mut replica, updates);
                    }
                    // Take what else has come before reconciling.
                    while let Some(Message::Notification { method, params }) =
                        c.next_notification(Duration::ZERO)?
                    {
                        if let (true, Some(updates)) = (method == "update", params.get(1)) {
                            apply(&mut replica, updates);
                        }
                    }
                    break;
                }
                Some(_) => {}
                None if retry_at.is_some_and(|t| Instant::now() >= t) => break,
                // A controller connection came up or went down.
                None if openflow.map(OpenFlowService::connections_epoch) != epoch => break,
                // A router took or left an internal port (its TAP device).
                None if reconcile::routed_ports(shared) != routed => break,
                None => {}
            }
        }
    }
}

fn apply(replica: &mut Replica, updates: &serde_json::Value) {
    if let Err(e) = replica.apply(updates) {
        tracing::warn!(error = %e, "ovsdb: an update the switch could not read was ignored");
    }
}
