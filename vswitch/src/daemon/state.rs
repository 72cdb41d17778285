//! The switch's state kept across restarts when no database keeps it
//! (`<rundir>/vswitchd.state.json`, after the control socket's name): the running topology (VM ports and
//! floating IPs added live included), every bridge with its ports (their
//! OpenFlow numbers as assigned) and flows (ovs-ofctl's syntax, port
//! numbers), and the ports' I/O bindings. Written after every accepted
//! change, to a temporary file renamed over the old one (a crash leaves
//! the old state or the new, never half of one), only when it changed;
//! read by vswitchd at start, where it takes the place of the
//! configuration's topology. Under an Open_vSwitch database the database
//! keeps bridges, ports and bindings and the controllers their flows: only
//! the topology (router instances' part) is kept here.
//!
//! May call: `daemon::Shared`, pipeline's flow text.
#![deny(unsafe_code)]

use super::shared::{BindingInfo, Shared};
use pipeline::flow::text::{format_flow, parse_flow};
use pipeline::flow::NoPortNames;
use pipeline::switch::{PortConfig, SwitchConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use topology::Topology;

/// The format's version; a file of another is refused.
pub const STATE_VERSION: u32 = 1;

/// Everything vswitchd puts back at start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedState {
    pub version: u32,
    pub host: String,
    pub topology: Topology,
    #[serde(default)]
    pub bridges: Vec<SavedBridge>,
    #[serde(default)]
    pub bindings: Vec<BindingInfo>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedBridge {
    pub name: String,
    pub ports: Vec<PortConfig>,
    pub flows: Vec<String>,
}

/// Why a state file was not read or not put back; names the file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

/// The state of `shared` now.
pub fn snapshot(shared: &Shared) -> SavedState {
    let st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let topology = st.topology.clone();
    if shared.l2_from_database {
        return SavedState {
            version: STATE_VERSION,
            host: shared.host.clone(),
            topology,
            bridges: Vec::new(),
            bindings: Vec::new(),
        };
    }
    let sw = shared.switch();
    let mut bridges = Vec::new();
    for name in st.config.bridge_names() {
        let ports = st
            .config
            .port_names_of(&name)
            .iter()
            .filter_map(|p| st.config.port_config(p).map(|(_, c)| c.clone()))
            .map(|mut c| {
                c.ofport = sw.port_by_name(&c.name).map(|p| p.ofport).or(c.ofport);
                c
            })
            .collect();
        let flows = sw
            .bridge(&name)
            .map(|b| {
                b.tables()
                    .flat_map(|t| t.rules.iter())
                    .map(|r| format_flow(&r.flow, None, &NoPortNames))
                    .collect()
            })
            .unwrap_or_default();
        bridges.push(SavedBridge { name, ports, flows });
    }
    drop(st);
    SavedState {
        version: STATE_VERSION,
        host: shared.host.clone(),
        topology,
        bridges,
        bindings: shared.wanted_bindings(),
    }
}

/// Reads a state file; None when there is none.
pub fn read(path: &Path) -> Result<Option<SavedState>, StateError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let invalid = |message: String| StateError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let s: SavedState = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    if s.version != STATE_VERSION {
        return Err(invalid(format!(
            "version {} (this vswitchd reads {STATE_VERSION})",
            s.version
        )));
    }
    topology::validate(&s.topology).map_err(|e| invalid(format!("topology: {e}")))?;
    Ok(Some(s))
}

/// Writes `state` to `path` atomically.
pub fn write(path: &Path, state: &SavedState) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(state).map_err(std::io::Error::other)?;
    write_text(path, &text)
}

fn write_text(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Puts `saved`'s bridges, ports and flows on the switch (which already
/// runs its topology) as one change: bridges and ports it does not have
/// are added, those it has differently set, those it lacks removed, each
/// bridge's flows replaced by the saved ones. Then binds the saved I/O
/// bindings the configuration did not already make; a binding that cannot
/// open is logged and left (the rest of the state stands). Errors name
/// `path`; on error the switch is as it was.
pub fn restore(shared: &Shared, path: &Path, saved: &SavedState) -> Result<(), StateError> {
    if shared.l2_from_database {
        return Ok(());
    }
    let now = shared.now_ns();
    shared
        .update(|st| put_back(&mut st.config, saved, now))
        .map_err(|Failed(message)| StateError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
    let bound = shared.bindings();
    for b in saved.bindings.iter().filter(|b| !bound.contains(b)) {
        if let Err(e) = shared.bind_port(&b.port, &b.backend, b.queues) {
            tracing::warn!(port = %b.port, error = %e, "state: I/O binding of the last run not opened");
        }
    }
    Ok(())
}

/// What of the saved state does not fit (the item, what is wrong).
struct Failed(String);

impl From<pipeline::switch::ConfigError> for Failed {
    fn from(e: pipeline::switch::ConfigError) -> Failed {
        Failed(e.to_string())
    }
}

/// `saved`'s bridges, ports and flows onto `cfg`.
fn put_back(cfg: &mut SwitchConfig, saved: &SavedState, now: u64) -> Result<(), Failed> {
    let fail = |what: &str, e: &dyn std::fmt::Display| Failed(format!("{what}: {e}"));
    for name in cfg.bridge_names() {
        if !saved.bridges.iter().any(|b| b.name == name) {
            cfg.del_bridge(&name).map_err(|e| fail(&name, &e))?;
        }
    }
    for b in &saved.bridges {
        if !cfg.bridge_names().contains(&b.name) {
            cfg.add_bridge(&b.name).map_err(|e| fail(&b.name, &e))?;
        }
        for p in cfg.port_names_of(&b.name) {
            if !b.ports.iter().any(|s| s.name == p) {
                cfg.del_port(&p).map_err(|e| fail(&p, &e))?;
            }
        }
    }
    for b in &saved.bridges {
        for p in &b.ports {
            cfg.put_port(&b.name, p.clone())
                .map_err(|e| fail(&p.name, &e))?;
        }
    }
    for b in &saved.bridges {
        let flows = b
            .flows
            .iter()
            .map(|l| parse_flow(l, &NoPortNames).map_err(|e| fail(&b.name, &e)))
            .collect::<Result<Vec<_>, _>>()?;
        cfg.replace_flows(&b.name, flows, now)
            .map_err(|e| fail(&b.name, &e))?;
    }
    Ok(())
}

/// Keeps `shared`'s state in `path` from now on: written now, and after
/// every accepted change when it changed.
pub fn keep(shared: &Shared, path: PathBuf) {
    let mut keeper = Keeper { path, last: None };
    shared.on_change(Box::new(move |s| keeper.save(s)));
}

/// The state file of a running daemon and what was last written to it.
struct Keeper {
    path: PathBuf,
    last: Option<String>,
}

impl Keeper {
    /// Writes `shared`'s state if it differs from what was last written.
    fn save(&mut self, shared: &Shared) {
        let path = &self.path;
        let text = match serde_json::to_string_pretty(&snapshot(shared)) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "state: not serialisable");
                return;
            }
        };
        if self.last.as_deref() == Some(text.as_str()) {
            return;
        }
        match write_text(path, &text) {
            Ok(()) => self.last = Some(text),
            Err(e) => tracing::error!(file = %path.display(), error = %e, "state: not written"),
        }
    }
}
