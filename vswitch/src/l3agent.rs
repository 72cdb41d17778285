//! The routers Neutron's L3 agent hands the switch (the `neutron-vswitch`
//! extension, over the control socket: `l3-router-set`, `l3-router-del`),
//! each as the agent on this host knows it (`topology::HostRouter`), and
//! compiled beside the topology's into router instances.
//!
//! Like a kernel's namespaces under Open vSwitch, they outlive a restart
//! of the switch: every change is written to `l3-routers.json` in the run
//! directory (`rundir`, default the control socket's) (a temporary file renamed over it, so a crash leaves
//! the old or the new list), read back when vswitchd starts, and put back
//! as soon as their ports are on the switch again (under a database, once
//! it has added them).
//!
//! May call: `daemon::Shared`, topology.
#![deny(unsafe_code)]

use crate::daemon::Shared;
use pipeline::switch::ConfigError;
use std::path::Path;
use topology::{HostRouter, TopologyError};

/// Why a change of the agent's routers was refused.
#[derive(Debug, thiserror::Error)]
pub enum L3Error {
    #[error(transparent)]
    Routers(#[from] TopologyError),
    #[error(transparent)]
    Switch(#[from] ConfigError),
}

/// Sets router `router` (added, or replacing the one of its name); the
/// number of connections deleted with floating IPs it no longer binds.
pub fn set(shared: &Shared, router: HostRouter) -> Result<usize, L3Error> {
    let host = shared.host.clone();
    let deleted = shared.update(|st| {
        let mut next = st.agent_routers.clone();
        match next.iter_mut().find(|r| r.name == router.name) {
            Some(r) => *r = router,
            None => next.push(router),
        }
        replace_routers(st, &host, next)
    })?;
    save(shared);
    Ok(deleted)
}

/// Brings `st` to the L3 agent's routers `next`; connections deleted.
fn replace_routers(
    st: &mut crate::daemon::ControlState,
    host: &str,
    next: Vec<HostRouter>,
) -> Result<usize, L3Error> {
    let n = topology::update_agent_routers(
        &mut st.config,
        &st.topology,
        host,
        &st.agent_routers,
        &next,
    )?;
    st.agent_routers = next;
    Ok(n)
}

/// Removes router `name`: `Ok(None)` if there is none of that name.
pub fn del(shared: &Shared, name: &str) -> Result<Option<usize>, L3Error> {
    let host = shared.host.clone();
    let deleted = shared.update(|st| {
        if !st.agent_routers.iter().any(|r| r.name == name) {
            return Ok(None);
        }
        let next: Vec<HostRouter> = st
            .agent_routers
            .iter()
            .filter(|r| r.name != name)
            .cloned()
            .collect();
        replace_routers(st, &host, next).map(Some)
    })?;
    if deleted.is_some() {
        save(shared);
    }
    Ok(deleted)
}

/// The routers the agent has set, in the order it first set them.
pub fn list(shared: &Shared) -> Vec<HostRouter> {
    let st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    st.agent_routers.clone()
}

/// Writes the current list (under the state lock, so the file follows the
/// last change); a failure is logged: the running switch is right.
fn save(shared: &Shared) {
    let st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = write(&shared.agent_routers_file, &st.agent_routers) {
        tracing::warn!(file = %shared.agent_routers_file.display(), error = %e, "l3: routers not saved");
    }
}

fn write(file: &Path, routers: &[HostRouter]) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(routers).map_err(std::io::Error::other)?;
    let tmp = file.with_extension("json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, file)
}

/// Reads the routers saved by the last run into the pending list; how
/// many. A file that does not parse is kept aside as `.bad` and named in
/// the error.
pub fn load_saved(shared: &Shared) -> Result<usize, String> {
    let file = &shared.agent_routers_file;
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(format!("{}: {e}", file.display())),
    };
    match serde_json::from_str::<Vec<HostRouter>>(&text) {
        Ok(routers) => {
            let n = routers.len();
            *shared
                .agent_routers_pending
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = routers;
            Ok(n)
        }
        Err(e) => {
            let _ = std::fs::rename(file, file.with_extension("json.bad"));
            Err(format!("{}: {e} (kept as .bad)", file.display()))
        }
    }
}

/// Puts back the saved routers if their ports are all on the switch now
/// (and the agent has not set routers since: what it set wins): `Some(n)`
/// when done, `None` while still waiting.
pub fn restore_pending(shared: &Shared) -> Option<usize> {
    let mut pending = shared
        .agent_routers_pending
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if pending.is_empty() {
        return Some(0);
    }
    let host = shared.host.clone();
    let restored = shared.update(|st| {
        let mut next = st.agent_routers.clone();
        for r in pending.iter() {
            if !next.iter().any(|x| x.name == r.name) {
                next.push(r.clone());
            }
        }
        topology::update_agent_routers(
            &mut st.config,
            &st.topology,
            &host,
            &st.agent_routers,
            &next,
        )?;
        let n = next.len() - st.agent_routers.len();
        st.agent_routers = next;
        Ok::<_, L3Error>(n)
    });
    match restored {
        Ok(n) => {
            pending.clear();
            drop(pending);
            save(shared);
            Some(n)
        }
        Err(e) => {
            tracing::debug!(error = %e, "l3: saved routers wait for their ports");
            None
        }
    }
}
