//! Makes the switch hold what the database says: bridges and ports the
//! database has and the switch lacks are added (with their I/O), those it
//! added and the database dropped are removed, changed ones changed. What
//! the switch has from elsewhere (its topology, vswitchctl) is never
//! touched: a database port of the same name is reported with the
//! switch's number and left alone.
//!
//! Each change goes through `Shared::update` on its own, so one port the
//! switch refuses (a missing device, a taken number) does not hold the
//! others back; its error is what the write-back puts in the database.

use super::view::{BridgeView, DatabaseView, InterfaceType, PortView, VlanView};
use crate::config::Backend;
use crate::daemon::Shared;
use ovsdb::Uuid;
use pipeline::switch::{PortConfig, PortKind, VlanMode};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The OpenFlow number of a bridge's own port (OFPP_LOCAL).
pub const LOCAL_OFPORT: i64 = 65534;

/// A port as the database asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PortSpec {
    bridge: String,
    config: PortConfig,
    io: Option<Backend>,
    /// An `internal` interface: its kernel device is a TAP (bound by
    /// `sync_taps`, unless a router instance takes the port).
    tap: bool,
}

/// What this switch added because the database said so (owner: the
/// database thread).
#[derive(Debug, Default)]
pub struct Owned {
    bridges: BTreeSet<String>,
    /// Each bridge's fail mode and whether it has controllers, as last
    /// applied (what a change of either does to its flows).
    modes: BTreeMap<String, FailMode>,
    /// Each bridge's MAC table (entries, aging in seconds) as last set
    /// from `other_config`.
    mac_tables: BTreeMap<String, (usize, u64)>,
    /// Internal ports whose TAP device is bound.
    taps: BTreeSet<String>,
    ports: BTreeMap<String, PortSpec>,
    /// Why each port the database names is not in the switch, as last
    /// logged (a reason is logged when it comes or changes, not on every
    /// update).
    errors: BTreeMap<String, String>,
}

/// What became of each interface and bridge of the view.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Interface row → its OpenFlow number, or why it has none.
    pub interfaces: BTreeMap<Uuid, Result<i64, String>>,
    /// Interfaces to try again later (a device not there yet).
    pub retry: bool,
}

fn vlan_mode(v: &VlanView) -> VlanMode {
    match v {
        VlanView::Access(tag) => VlanMode::Access { tag: *tag },
        VlanView::Trunk(trunks) => VlanMode::Trunk {
            trunks: trunks.clone(),
        },
    }
}

/// The port the database asks for, or why the switch cannot take it.
fn spec(bridge: &BridgeView, port: &PortView) -> Result<PortSpec, String> {
    if let Some(problem) = &port.problem {
        return Err(problem.clone());
    }
    let iface = port
        .interface
        .as_ref()
        .ok_or_else(|| format!("{}: no interface", port.name))?;
    let kind = iface.kind.clone()?;
    let tap = kind == InterfaceType::Internal;
    let (kind, io) = match kind {
        InterfaceType::System => (
            PortKind::System,
            Some(Backend::AfPacket {
                interface: Some(iface.name.clone()),
            }),
        ),
        InterfaceType::Internal => (PortKind::Internal, None),
        InterfaceType::AfXdp => (
            PortKind::System,
            Some(Backend::AfXdp {
                interface: Some(iface.name.clone()),
                queue: 0,
            }),
        ),
        InterfaceType::Patch { peer } => (PortKind::Patch { peer }, None),
        InterfaceType::Dpdk { devargs } => {
            let (device, args) = match devargs.split_once(',') {
                Some((d, a)) => (d.to_string(), Some(a.to_string())),
                None => (devargs.clone(), None),
            };
            (
                PortKind::System,
                Some(Backend::Dpdk {
                    device,
                    devargs: args,
                    receive: true,
                    mbufs: None,
                }),
            )
        }
    };
    let mut config = PortConfig::new(&port.name, kind, vlan_mode(&port.vlan));
    config.ofport = iface.ofport_request;
    Ok(PortSpec {
        bridge: bridge.name.clone(),
        config,
        io,
        tap,
    })
}

/// A Linux network device the AF_PACKET backend would open is there.
fn device_exists(io: &Option<Backend>) -> Result<(), String> {
    match io {
        Some(
            Backend::AfPacket {
                interface: Some(name),
            }
            | Backend::AfXdp {
                interface: Some(name),
                ..
            },
        ) if !Path::new("/sys/class/net").join(name).exists() => Err(format!(
            "could not open network device {name} (No such device)"
        )),
        _ => Ok(()),
    }
}

/// Adds one port and binds its I/O (its device was found there by the
/// caller); if the I/O cannot open, the port is taken back out.
fn add_port(shared: &Shared, name: &str, spec: &PortSpec) -> Result<(), String> {
    shared
        .update(|st| st.config.add_port(&spec.bridge, spec.config.clone()))
        .map_err(|e| e.to_string())?;
    if let Some(io) = &spec.io {
        if let Err(e) = shared.bind_port(name, io, 1) {
            let _ = shared.update(|st| st.config.del_port(name));
            return Err(e.to_string());
        }
    }
    Ok(())
}

/// The ports router instances attach to (`Link::Bridge` interfaces): an
/// internal port a router takes has no kernel device.
pub fn routed_ports(shared: &Shared) -> BTreeSet<String> {
    shared
        .switch()
        .routers
        .iter()
        .flat_map(|r| r.interfaces.iter())
        .filter(|i| matches!(i.link, pipeline::router::Link::Bridge))
        .map(|i| i.name.clone())
        .collect()
}

/// Each internal port's TAP device, as OVS's userspace datapath gives
/// one: bound while no router instance takes the port (the L3 agent's
/// qr-/sg-/qg-/fg- ports are the routers'), unbound when one does.
fn sync_taps(shared: &Shared, owned: &mut Owned) {
    let routed = routed_ports(shared);
    let internal: Vec<String> = owned
        .ports
        .iter()
        .filter(|(_, spec)| spec.tap)
        .map(|(name, _)| name.clone())
        .collect();
    for name in internal {
        let want = !routed.contains(&name);
        if want == owned.taps.contains(&name) {
            continue;
        }
        if want {
            let tap = Backend::Tap { interface: None };
            match shared.bind_port(&name, &tap, 1) {
                Ok(()) => {
                    tracing::info!(port = %name, "database: internal port's TAP device up");
                    owned.taps.insert(name);
                }
                Err(e) => {
                    tracing::warn!(port = %name, error = %e, "database: internal port's TAP device")
                }
            }
        } else {
            let _ = shared.unbind_port(&name);
            tracing::info!(port = %name, "database: internal port taken by a router: TAP device removed");
            owned.taps.remove(&name);
        }
    }
}

/// The highest OpenFlow number a port may have (OFPP_MAX).
const OFPP_MAX: i64 = 0xff00;

/// The number each interface had in the database, where it has a valid
/// one: what a restarted switch gives back (ovs-vswitchd's
/// `iface_pick_ofport`), so the flows its controllers left, kept across
/// the restart, still mean the same ports.
fn kept_numbers(view: &DatabaseView) -> BTreeMap<String, u32> {
    let mut kept = BTreeMap::new();
    for b in &view.bridges {
        for p in &b.ports {
            let Some(iface) = &p.interface else { continue };
            if let Some(n) = iface.ofport.filter(|n| (1..OFPP_MAX).contains(n)) {
                kept.insert(p.name.clone(), n as u32);
            }
        }
    }
    kept
}

/// `new` with the numbers they ask for: their `ofport_request`, else the
/// number the database kept for them unless another port of the bridge
/// (already there, or new before it) holds it.
fn with_kept_numbers(
    shared: &Shared,
    new: &[(&String, &PortSpec)],
    kept: &BTreeMap<String, u32>,
) -> Vec<PortSpec> {
    let sw = shared.switch();
    let mut taken: BTreeSet<(String, u32)> = sw
        .ports()
        .filter_map(|p| Some((sw.bridges.get(p.bridge)?.name.clone(), p.ofport)))
        .collect();
    for (_, spec) in new {
        if let Some(n) = spec.config.ofport {
            taken.insert((spec.bridge.clone(), n));
        }
    }
    new.iter()
        .map(|&(name, spec)| {
            let mut s = spec.clone();
            if s.config.ofport.is_none() {
                if let Some(&n) = kept.get(name) {
                    if taken.insert((s.bridge.clone(), n)) {
                        s.config.ofport = Some(n);
                    }
                }
            }
            s
        })
        .collect()
}

/// Adds `new`: all in one change when they can be (the two ends of a
/// patch pair need each other), else one by one, each with its error.
/// Owned as asked for: a number kept from the database is not part of
/// what the database asks, so it does not make the port differ next time.
fn add_ports(
    shared: &Shared,
    new: &[(&String, &PortSpec)],
    kept: &BTreeMap<String, u32>,
    owned: &mut Owned,
    errors: &mut BTreeMap<String, String>,
    out: &mut Outcome,
) {
    let numbered = with_kept_numbers(shared, new, kept);
    let mut alone = Vec::new();
    let mut together = Vec::new();
    for (&(name, spec), numbered) in new.iter().zip(&numbered) {
        match device_exists(&spec.io) {
            Err(e) => {
                out.retry = true;
                errors.insert(name.clone(), e);
            }
            Ok(()) if spec.io.is_none() => together.push((name, spec, numbered)),
            Ok(()) => alone.push((name, spec, numbered)),
        }
    }
    let all_at_once = together.len() > 1
        && shared
            .update(|st| {
                for (_, _, numbered) in &together {
                    st.config
                        .add_port(&numbered.bridge, numbered.config.clone())?;
                }
                Ok::<(), pipeline::switch::ConfigError>(())
            })
            .is_ok();
    if all_at_once {
        for (name, spec, _) in together.drain(..) {
            tracing::info!(port = %name, bridge = %spec.bridge, "database: port added");
            owned.ports.insert(name.clone(), spec.clone());
        }
    }
    for (name, spec, numbered) in together.into_iter().chain(alone) {
        match add_port(shared, name, numbered) {
            Ok(()) => {
                tracing::info!(port = %name, bridge = %spec.bridge, "database: port added");
                owned.ports.insert(name.clone(), spec.clone());
            }
            Err(e) => {
                errors.insert(name.clone(), e);
            }
        }
    }
}

/// Removes `names` (all in one change: a patch pair goes together; one
/// by one if that is refused) and their I/O.
fn del_ports(shared: &Shared, names: &[String]) {
    if names.is_empty() {
        return;
    }
    let together = shared.update(|st| {
        for n in names {
            st.config.del_port(n)?;
        }
        Ok::<(), pipeline::switch::ConfigError>(())
    });
    if together.is_err() {
        for n in names {
            if let Err(e) = shared.update(|st| st.config.del_port(n)) {
                tracing::warn!(port = %n, error = %e, "database: removing a port");
            }
        }
    }
    for n in names {
        let _ = shared.unbind_port(n);
    }
}

/// Brings the switch to `view`; returns each interface's number or error.
pub fn reconcile(shared: &Shared, view: &DatabaseView, owned: &mut Owned) -> Outcome {
    let mut out = Outcome::default();
    let mut wanted: BTreeMap<String, Result<PortSpec, String>> = BTreeMap::new();
    for b in &view.bridges {
        for p in &b.ports {
            // The bridge's own port is the switch's LOCAL port.
            if p.name != b.name {
                wanted.insert(p.name.clone(), spec(b, p));
            }
        }
    }
    unpair_lone_patches(&mut wanted);
    // A VLAN change, or a patch port finding or losing its peer, is made
    // in place (the port keeps its number and I/O): all in one change, as
    // the two ends of a patch pair must flip together.
    let in_place: Vec<(String, PortSpec)> = owned
        .ports
        .iter()
        .filter_map(|(name, have)| {
            let Some(Ok(want)) = wanted.get(name) else {
                return None;
            };
            let mut same = have.clone();
            same.config.vlan = want.config.vlan.clone();
            same.config.kind = want.config.kind.clone();
            let patchy = |k: &PortKind| matches!(k, PortKind::Patch { .. } | PortKind::Internal);
            let kind_ok = have.config.kind == want.config.kind
                || (patchy(&have.config.kind) && patchy(&want.config.kind) && have.io.is_none());
            (same == *want && have != want && kind_ok).then(|| (name.clone(), want.clone()))
        })
        .collect();
    if !in_place.is_empty() {
        let changed = shared.update(|st| {
            for (name, want) in &in_place {
                let (vlan, kind) = (want.config.vlan.clone(), want.config.kind.clone());
                st.config.set_port(name, |p| {
                    p.vlan = vlan;
                    p.kind = kind;
                })?;
            }
            Ok::<(), pipeline::switch::ConfigError>(())
        });
        match changed {
            Ok(()) => {
                for (name, want) in in_place {
                    tracing::info!(port = %name, vlan = ?want.config.vlan, kind = ?want.config.kind, "database: port changed");
                    owned.ports.insert(name, want);
                }
            }
            Err(e) => tracing::warn!(error = %e, "database: port changes refused"),
        }
    }
    // Gone from the database, or changed otherwise: out first (a changed
    // port comes back below with its new settings).
    let stale: Vec<String> = owned
        .ports
        .iter()
        .filter(|(name, have)| !matches!(wanted.get(*name), Some(Ok(w)) if w == *have))
        .map(|(name, _)| name.clone())
        .collect();
    del_ports(shared, &stale);
    for name in stale {
        owned.ports.remove(&name);
        owned.taps.remove(&name);
        tracing::info!(port = %name, "database: port removed");
    }
    // Bridges after their ports are out (a bridge goes with its ports),
    // before new ports come in.
    sync_bridges(shared, view, owned);
    sync_fail_modes(shared, view, owned);
    sync_mac_tables(shared, view, owned);
    let mut errors: BTreeMap<String, String> = BTreeMap::new();
    let mut new: Vec<(&String, &PortSpec)> = Vec::new();
    for (name, want) in &wanted {
        match want {
            Err(e) => {
                errors.insert(name.clone(), e.clone());
            }
            // Owned, or the switch has it from its topology or an operator.
            Ok(_) if owned.ports.contains_key(name) => {}
            Ok(_) if shared.switch().port_by_name(name).is_some() => {}
            Ok(w) => new.push((name, w)),
        }
    }
    add_ports(
        shared,
        &new,
        &kept_numbers(view),
        owned,
        &mut errors,
        &mut out,
    );
    sync_taps(shared, owned);
    for (name, e) in &errors {
        if owned.errors.get(name) != Some(e) {
            tracing::warn!(port = %name, error = %e, "database: port not in the switch");
        }
    }
    for name in owned.errors.keys() {
        if !errors.contains_key(name) && wanted.contains_key(name) {
            tracing::info!(port = %name, "database: port now in the switch");
        }
    }
    owned.errors = errors.clone();
    let sw = shared.switch();
    for b in &view.bridges {
        for p in &b.ports {
            let Some(iface) = &p.interface else {
                continue;
            };
            let result = if p.name == b.name {
                Ok(LOCAL_OFPORT)
            } else if let Some(e) = errors.get(&p.name) {
                Err(e.clone())
            } else {
                sw.port_by_name(&p.name)
                    .map(|port| i64::from(port.ofport))
                    .ok_or_else(|| format!("{}: not in the switch", p.name))
            };
            out.interfaces.insert(iface.uuid.clone(), result);
        }
    }
    out
}

/// A patch port works only with its peer: a patch port on another
/// bridge that names it back. Until it has one it is a dead port (an
/// internal port with nothing attached: it has its number, and what is
/// sent to it goes nowhere), as OVS keeps a patch port whose peer is
/// missing; it becomes a patch port, in place, when the peer comes.
fn unpair_lone_patches(wanted: &mut BTreeMap<String, Result<PortSpec, String>>) {
    let lone: Vec<String> = wanted
        .iter()
        .filter_map(|(name, w)| {
            let w = w.as_ref().ok()?;
            let PortKind::Patch { peer } = &w.config.kind else {
                return None;
            };
            let paired = matches!(
                wanted.get(peer),
                Some(Ok(p)) if p.bridge != w.bridge
                    && matches!(&p.config.kind, PortKind::Patch { peer: back } if back == name)
            );
            (!paired).then(|| name.clone())
        })
        .collect();
    for name in lone {
        if let Some(Ok(w)) = wanted.get_mut(&name) {
            w.config.kind = PortKind::Internal;
        }
    }
}

/// What decides a bridge's flows besides its controllers' (OVS's
/// connection manager, ofproto/connmgr.c): in `standalone` fail mode (the
/// default) a bridge without controllers is a learning switch (one flow,
/// `priority=0 actions=NORMAL`); `secure` passes nothing a controller did
/// not ask for. Changing the fail mode of a bridge without controllers, or
/// giving a bridge its first controller (or taking its last), flushes its
/// flows and puts back that one if it applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FailMode {
    standalone: bool,
    has_controllers: bool,
}

impl FailMode {
    fn of(b: &BridgeView) -> FailMode {
        FailMode {
            standalone: b.fail_mode.as_deref() != Some("secure"),
            has_controllers: !b.controllers.is_empty(),
        }
    }

    /// Whether going from `self` to `next` flushes the flows.
    fn flushes_into(self, next: FailMode) -> bool {
        (self.standalone != next.standalone && !next.has_controllers)
            || self.has_controllers != next.has_controllers
    }

    fn learning_switch(self) -> bool {
        self.standalone && !self.has_controllers
    }
}

/// `priority=0 actions=NORMAL`, cookie 0: a standalone bridge's flow.
fn normal_flow() -> pipeline::flow::Flow {
    pipeline::flow::text::parse_flow("priority=0,actions=NORMAL", &pipeline::flow::NoPortNames)
        .expect("a valid flow")
}

/// Flushes `bridge`'s flows (all tables) and, for a learning switch, puts
/// the NORMAL flow in.
fn flush_flows(shared: &Shared, bridge: &str, mode: FailMode) {
    let all = pipeline::switch::FlowSelector {
        table: None,
        matches: Default::default(),
        strict: false,
        priority: 0,
        cookie: 0,
        cookie_mask: 0,
    };
    let now = shared.now_ns();
    let done = shared.update(|st| {
        st.config.del_flows_where(bridge, &all, |_| true)?;
        if mode.learning_switch() {
            st.config.add_flows(bridge, vec![normal_flow()], now)?;
        }
        Ok::<(), pipeline::switch::ConfigError>(())
    });
    if let Err(e) = done {
        tracing::warn!(bridge = %bridge, error = %e, "database: flows not flushed");
    }
}

/// Most learned MACs one bridge may hold, whatever `mac-table-size` says.
pub const MAX_MAC_TABLE_SIZE: usize = 1 << 20;

/// Each bridge's MAC table as `other_config:mac-table-size` and
/// `mac-aging-time` set it (ovs-vswitchd's defaults, 8192 and 300 s, for
/// what is unset, once either is set; the daemon's own limits while
/// neither is), capped at `MAX_MAC_TABLE_SIZE`; a change starts an empty
/// table.
fn sync_mac_tables(shared: &Shared, view: &DatabaseView, owned: &mut Owned) {
    owned.mac_tables.retain(|b, _| owned.bridges.contains(b));
    for b in view
        .bridges
        .iter()
        .filter(|b| owned.bridges.contains(&b.name))
    {
        if b.mac_table_size.is_none() && b.mac_aging_time.is_none() {
            continue;
        }
        let size = b.mac_table_size.unwrap_or(8192).min(MAX_MAC_TABLE_SIZE);
        let aging = b.mac_aging_time.unwrap_or(300).min(u64::from(u32::MAX));
        if owned.mac_tables.get(&b.name) == Some(&(size, aging)) {
            continue;
        }
        let set = shared.update(|st| {
            st.config
                .set_bridge_mac_table(&b.name, size, aging * 1_000_000_000)
        });
        match set {
            Ok(()) => {
                tracing::info!(bridge = %b.name, entries = size, aging_s = aging, "database: MAC table");
                owned.mac_tables.insert(b.name.clone(), (size, aging));
            }
            Err(e) => tracing::warn!(bridge = %b.name, error = %e, "database: MAC table"),
        }
    }
}

/// Each bridge's flows as its fail mode and controllers want them: a new
/// bridge that is a learning switch gets the NORMAL flow; a change that
/// flushes (see `FailMode`) flushes.
fn sync_fail_modes(shared: &Shared, view: &DatabaseView, owned: &mut Owned) {
    owned.modes.retain(|b, _| owned.bridges.contains(b));
    for b in view
        .bridges
        .iter()
        .filter(|b| owned.bridges.contains(&b.name))
    {
        let want = FailMode::of(b);
        match owned.modes.insert(b.name.clone(), want) {
            None if want.learning_switch() => {
                let now = shared.now_ns();
                let added =
                    shared.update(|st| st.config.add_flows(&b.name, vec![normal_flow()], now));
                if let Err(e) = added {
                    tracing::warn!(bridge = %b.name, error = %e, "database: standalone flow");
                }
            }
            Some(had) if had.flushes_into(want) => {
                tracing::info!(bridge = %b.name, standalone = want.standalone, controllers = want.has_controllers, "database: fail mode or controllers changed: flows flushed");
                flush_flows(shared, &b.name, want);
            }
            _ => {}
        }
    }
}

fn sync_bridges(shared: &Shared, view: &DatabaseView, owned: &mut Owned) {
    let named: BTreeSet<&str> = view.bridges.iter().map(|b| b.name.as_str()).collect();
    let gone: Vec<String> = owned
        .bridges
        .iter()
        .filter(|b| !named.contains(b.as_str()))
        .cloned()
        .collect();
    for b in gone {
        let ports = shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .config
            .port_names_of(&b);
        match shared.update(|st| st.config.del_bridge(&b)) {
            Ok(()) => tracing::info!(bridge = %b, "database: bridge removed"),
            Err(e) => tracing::warn!(bridge = %b, error = %e, "database: removing a bridge"),
        }
        for p in ports {
            let _ = shared.unbind_port(&p);
            owned.ports.remove(&p);
            owned.taps.remove(&p);
        }
        owned.bridges.remove(&b);
    }
    let have = shared
        .state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .config
        .bridge_names();
    for b in &view.bridges {
        if have.contains(&b.name) {
            continue;
        }
        match shared.update(|st| st.config.add_bridge(&b.name)) {
            Ok(()) => {
                tracing::info!(bridge = %b.name, datapath_type = %b.datapath_type, "database: bridge added");
                owned.bridges.insert(b.name.clone());
            }
            Err(e) => tracing::warn!(bridge = %b.name, error = %e, "database: bridge refused"),
        }
    }
}
