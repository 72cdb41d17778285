//! Bridge and port commands: add-br, del-br, add-port, del-port,
//! set-port (with their I/O bindings, all or nothing), dump-ports and
//! fdb-show.
#![deny(unsafe_code)]

use crate::config::Backend;
use crate::control::error::ControlError;
use crate::control::protocol::{
    BridgeReply, FdbRow, PortAdded, PortKindArg, PortReply, PortRow, Response,
};
use crate::daemon::Shared;
use pipeline::switch::{PortConfig, PortKind, VlanMode};

/// What `add-port`/`set-port` say a port is.
pub(super) struct PortSettings<'a> {
    pub(super) kind: Option<PortKindArg>,
    pub(super) peer: Option<&'a str>,
    pub(super) tag: Option<u16>,
    pub(super) trunks: Option<&'a [u16]>,
    pub(super) no_flood: Option<bool>,
}

impl PortSettings<'_> {
    fn changes_anything(&self) -> bool {
        self.kind.is_some()
            || self.peer.is_some()
            || self.tag.is_some()
            || self.trunks.is_some()
            || self.no_flood.is_some()
    }

    /// Refuses what cannot be applied: a patch port without a peer.
    fn check(&self) -> Result<(), ControlError> {
        match (self.kind, self.peer) {
            (Some(PortKindArg::Patch), None) => Err(ControlError::PatchWithoutPeer),
            _ => Ok(()),
        }
    }

    /// Applies the settings over `p` (after [`check`](Self::check)): a
    /// `peer` alone re-points an existing patch port; `trunks` wins over
    /// `tag`.
    fn apply(&self, p: &mut PortConfig) {
        match (self.kind, self.peer) {
            (None, _) => {}
            (Some(PortKindArg::System), _) => p.kind = PortKind::System,
            (Some(PortKindArg::Internal), _) => p.kind = PortKind::Internal,
            (Some(PortKindArg::Patch), peer) => {
                p.kind = PortKind::Patch {
                    peer: peer.unwrap_or_default().to_string(),
                }
            }
        }
        if let (Some(peer), PortKind::Patch { .. }) = (self.peer, &p.kind) {
            p.kind = PortKind::Patch {
                peer: peer.to_string(),
            };
        }
        if let Some(tag) = self.tag {
            p.vlan = VlanMode::Access { tag };
        }
        if let Some(trunks) = self.trunks {
            p.vlan = VlanMode::Trunk {
                trunks: trunks.to_vec(),
            };
        }
        if let Some(n) = self.no_flood {
            p.no_flood = n;
        }
    }
}

pub(super) fn add_bridge(shared: &Shared, bridge: &str) -> Result<Response, ControlError> {
    shared.update(|st| {
        st.config.add_bridge(bridge)?;
        st.config.add_local_port(bridge)
    })?;
    Ok(Response::AddBr(BridgeReply {
        bridge: bridge.to_string(),
    }))
}

/// Deletes `bridge`, then unbinds the I/O of the ports it had.
pub(super) fn del_bridge(shared: &Shared, bridge: &str) -> Result<Response, ControlError> {
    let ports = shared.update(|st| -> Result<_, ControlError> {
        let ports = st.config.port_names_of(bridge);
        st.config.del_bridge(bridge)?;
        Ok(ports)
    })?;
    for p in ports {
        let _ = shared.unbind_port(&p);
    }
    Ok(Response::DelBr(BridgeReply {
        bridge: bridge.to_string(),
    }))
}

/// Adds port `name` to `bridge`, then binds its I/O if asked; if the I/O
/// cannot open, the port is taken back out.
pub(super) fn add_port(
    shared: &Shared,
    bridge: &str,
    name: &str,
    ofport: Option<u32>,
    settings: &PortSettings,
    io: Option<(&Backend, usize)>,
) -> Result<Response, ControlError> {
    settings.check()?;
    let mut p = PortConfig::new(name, PortKind::System, VlanMode::Trunk { trunks: vec![] });
    settings.apply(&mut p);
    p.ofport = ofport;
    let tap_on_internal =
        p.kind == PortKind::Internal && matches!(io, Some((Backend::Tap { .. }, _)));
    if io.is_some() && p.kind != PortKind::System && !tap_on_internal {
        return Err(ControlError::OnlySystemPortsCarryIo(name.to_string()));
    }
    let ofport = shared.update(|st| st.config.add_port(bridge, p))?;
    if let Some((backend, queues)) = io {
        if let Err(e) = shared.bind_port(name, backend, queues) {
            let _ = shared.update(|st| st.config.del_port(name));
            return Err(e.into());
        }
    }
    Ok(Response::AddPort(PortAdded {
        port: name.to_string(),
        ofport,
    }))
}

pub(super) fn del_port(shared: &Shared, name: &str) -> Result<Response, ControlError> {
    shared.update(|st| st.config.del_port(name))?;
    let _ = shared.unbind_port(name);
    Ok(Response::DelPort(PortReply {
        port: name.to_string(),
    }))
}

/// Applies `settings` to port `name`, then unbinds its I/O or binds the
/// new one; if the new I/O cannot open, the port's settings are put back.
pub(super) fn set_port(
    shared: &Shared,
    name: &str,
    settings: &PortSettings,
    unbind: bool,
    io: Option<(&Backend, usize)>,
) -> Result<Response, ControlError> {
    let before = shared
        .state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .config
        .port_config(name)
        .map(|(_, c)| c.clone());
    let changes_port = settings.changes_anything();
    if changes_port {
        shared.update(|st| -> Result<(), ControlError> {
            if st.config.port_config(name).is_some() {
                settings.check()?;
            }
            st.config.set_port(name, |p| settings.apply(p))?;
            Ok(())
        })?;
    } else if shared.switch().port_by_name(name).is_none() {
        return Err(ControlError::NoPort(name.to_string()));
    }
    if unbind {
        shared.unbind_port(name)?;
    } else if let Some((backend, queues)) = io {
        if let Err(e) = shared.bind_port(name, backend, queues) {
            if let (true, Some(old)) = (changes_port, before) {
                let _ = shared.update(|st| st.config.set_port(name, |p| *p = old));
            }
            return Err(e.into());
        }
    }
    Ok(Response::SetPort(PortReply {
        port: name.to_string(),
    }))
}

/// Per-port I/O counters of the running switch, of one bridge or one
/// port if given.
pub(super) fn dump_ports(
    shared: &Shared,
    bridge: Option<&str>,
    port: Option<&str>,
) -> Result<Response, ControlError> {
    let sw = shared.switch();
    if let Some(b) = bridge {
        if sw.bridge(b).is_none() {
            return Err(ControlError::NoBridge(b.to_string()));
        }
    }
    let bound: Vec<String> = shared.bindings().into_iter().map(|b| b.port).collect();
    let bridge_of = |name: &str| {
        sw.port_by_name(name)
            .and_then(|p| sw.bridges.get(p.bridge))
            .map(|b| b.name.clone())
    };
    let rows: Vec<PortRow> = shared
        .port_counters()
        .into_iter()
        .filter(|(name, _, _)| {
            bridge.is_none_or(|b| Some(b) == bridge_of(name).as_deref())
                && port.is_none_or(|x| x == name)
        })
        .map(|(name, ofport, counters)| PortRow {
            bridge: bridge_of(&name),
            io: bound.contains(&name),
            port: name,
            ofport,
            counters,
        })
        .collect();
    if let Some(p) = port {
        if rows.is_empty() {
            return Err(ControlError::NoPort(p.to_string()));
        }
    }
    Ok(Response::DumpPorts(rows))
}

/// The MAC table of `bridge`.
pub(super) fn fdb_show(shared: &Shared, bridge: &str) -> Result<Response, ControlError> {
    let sw = shared.switch();
    let b = sw
        .bridge(bridge)
        .ok_or_else(|| ControlError::NoBridge(bridge.to_string()))?;
    let rows = b
        .macs
        .rows(shared.now_ns())
        .into_iter()
        .map(|r| FdbRow {
            port: sw.port(r.port).map(|p| p.ofport),
            vlan: r.vlan,
            mac: r.mac.to_string(),
            age: r.age_secs,
        })
        .collect();
    Ok(Response::FdbShow(rows))
}
