//! The configured world (bridges, ports, flows) and its compiled snapshot.
//!
//! `SwitchConfig` is what the control plane edits. Every edit is validated
//! on a copy and compiled into a `Switch`: an immutable snapshot with one
//! classifier per table, ports resolved to `PortId`s and patch peers linked.
//! An edit that fails leaves the config untouched, so the running state never
//! holds half of a change.
//!
//! State ownership:
//! * `Switch` (snapshot): written once by the control plane, read by every
//!   worker through an `Arc`; replaced as a whole, never mutated.
//! * `Rule` (one flow plus its `RuleStats`): shared by consecutive snapshots
//!   as long as the flow is unchanged, so counters survive unrelated edits.
//!   Counter slots are per worker (each worker writes only its own slot).
//! * `MacTable`: live state per bridge, shared across snapshots and workers.

use crate::bridge::mac::{MacTable, DEFAULT_AGING_NS, DEFAULT_MAX_ENTRIES};
use crate::classifier::{Classifier, ClassifierRule};
use crate::flow::{ofp, Action, Flow, Match, PortNames};
use crate::key::Mac;
use crate::router::{Link, RouterInstance};
use crossbeam_utils::CachePadded;
use hashbrown::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A port's index in the switch (unique across bridges, stable while the
/// port exists). Distinct from its bridge-local OpenFlow port number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct PortId(pub u32);

/// Deepest nesting of `resubmit`/`goto_table` within one bridge (OVS: 64).
pub const MAX_RESUBMIT_DEPTH: usize = 64;
/// Most crossings (patch ports, router instances, veth pairs) one packet may
/// make. The longest Neutron walk (§8.8: br-ex, br-int, fip, qrouter, br-int)
/// makes 5.
pub const MAX_HOPS: usize = 16;
/// Most flows one bridge may hold.
pub const MAX_FLOWS_PER_BRIDGE: usize = 1_000_000;

/// What is behind a port.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortKind {
    /// A VM interface or NIC: packets come from and go to I/O.
    System,
    /// An internal port: a router instance attaches here.
    Internal,
    /// A patch port: output here is input on `peer` (on another bridge).
    Patch { peer: String },
}

/// How NORMAL treats VLANs on a port.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VlanMode {
    /// Carries the listed VLANs tagged (all when the list is empty); VLAN 0
    /// is the untagged native VLAN.
    Trunk { trunks: Vec<u16> },
    /// Member of one VLAN; frames enter and leave untagged.
    Access { tag: u16 },
}

impl VlanMode {
    pub fn carries(&self, vlan: u16) -> bool {
        match self {
            VlanMode::Access { tag } => *tag == vlan,
            VlanMode::Trunk { trunks } => trunks.is_empty() || trunks.contains(&vlan),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortConfig {
    pub name: String,
    /// Requested OpenFlow port number; the lowest free one when `None`.
    pub ofport: Option<u32>,
    pub kind: PortKind,
    pub vlan: VlanMode,
    /// NORMAL does not flood to this port.
    #[serde(default)]
    pub no_flood: bool,
    #[serde(default)]
    pub mac: Option<Mac>,
    /// Port security: the IPv4 sources (address, prefix length) the port
    /// may send from, its fixed IP and allowed address pairs; `None`: any.
    /// What Neutron's firewall enforces on the VM's bridge (iptables on
    /// `qbr`, or the OVS firewall's tables), outside the flows the spec
    /// lists; here the port does it on entry.
    #[serde(default)]
    pub ip_sources: Option<Vec<(u32, u8)>>,
}

impl PortConfig {
    pub fn new(name: &str, kind: PortKind, vlan: VlanMode) -> PortConfig {
        PortConfig {
            name: name.to_string(),
            ofport: None,
            kind,
            vlan,
            no_flood: false,
            mac: None,
            ip_sources: None,
        }
    }
}

/// Errors from editing or compiling the configuration. Each names the item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("bridge `{0}` already exists")]
    BridgeExists(String),
    #[error("no bridge named `{0}`")]
    NoSuchBridge(String),
    #[error("port `{0}` already exists")]
    PortExists(String),
    #[error("no port named `{0}`")]
    NoSuchPort(String),
    #[error("bridge `{bridge}`: OpenFlow port {ofport} is already used by `{port}`")]
    OfportInUse {
        bridge: String,
        ofport: u32,
        port: String,
    },
    #[error("port `{0}`: OpenFlow port number must be 1..=65280")]
    BadOfport(String),
    #[error("port `{port}`: VLAN {vlan} is outside 0..=4095")]
    BadVlan { port: String, vlan: u16 },
    #[error("patch port `{port}`: peer `{peer}` {problem}")]
    BadPatchPeer {
        port: String,
        peer: String,
        problem: String,
    },
    #[error("bridge `{bridge}` table {table}: flow `{flow}`: {problem}")]
    BadFlow {
        bridge: String,
        table: u8,
        flow: String,
        problem: String,
    },
    #[error("bridge `{bridge}`: {problem}")]
    FlowGraph { bridge: String, problem: String },
    #[error("bridge `{bridge}`: more than {limit} flows")]
    TooManyFlows { bridge: String, limit: usize },
    #[error("router instance `{instance}` interface `{iface}`: {problem}")]
    BadRouterLink {
        instance: String,
        iface: String,
        problem: String,
    },
}

/// Per-worker packet/byte counters of one flow.
#[derive(Default)]
pub struct StatSlot {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub last_used_ns: AtomicU64,
}

/// A flow's counters: one cache-line-padded slot per worker, summed on read.
pub struct RuleStats {
    slots: Box<[CachePadded<StatSlot>]>,
}

impl RuleStats {
    pub fn new(n_workers: usize) -> RuleStats {
        RuleStats {
            slots: (0..n_workers.max(1))
                .map(|_| CachePadded::new(StatSlot::default()))
                .collect(),
        }
    }

    /// Adds one packet for `worker`. Only that worker writes its slot, so a
    /// relaxed load + store is enough (no read-modify-write across cores).
    #[inline(always)]
    pub fn hit(&self, worker: usize, bytes: u64, now_ns: u64) {
        if let Some(s) = self.slots.get(worker) {
            s.packets
                .store(s.packets.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            s.bytes
                .store(s.bytes.load(Ordering::Relaxed) + bytes, Ordering::Relaxed);
            s.last_used_ns.store(now_ns, Ordering::Relaxed);
        }
    }

    /// Adds `packets` for `worker` (a burst's worth, from the flow cache).
    #[inline]
    pub fn add(&self, worker: usize, packets: u64, bytes: u64, now_ns: u64) {
        if let Some(s) = self.slots.get(worker) {
            s.packets.store(
                s.packets.load(Ordering::Relaxed) + packets,
                Ordering::Relaxed,
            );
            s.bytes
                .store(s.bytes.load(Ordering::Relaxed) + bytes, Ordering::Relaxed);
            s.last_used_ns.store(now_ns, Ordering::Relaxed);
        }
    }

    /// (packets, bytes, last use) summed over workers.
    pub fn read(&self) -> (u64, u64, u64) {
        self.slots.iter().fold((0, 0, 0), |(p, b, t), s| {
            (
                p + s.packets.load(Ordering::Relaxed),
                b + s.bytes.load(Ordering::Relaxed),
                t.max(s.last_used_ns.load(Ordering::Relaxed)),
            )
        })
    }
}

/// A flow installed in a bridge, with its counters.
pub struct Rule {
    pub flow: Flow,
    pub stats: Arc<RuleStats>,
    pub added_ns: u64,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule").field("flow", &self.flow).finish()
    }
}

#[derive(Clone)]
struct BridgeState {
    name: String,
    ports: Vec<(PortConfig, u32, PortId)>,
    rules: Vec<Arc<Rule>>,
    macs: Arc<MacTable>,
}

/// First conntrack zone given to router instances (OpenFlow flows use the
/// zones below; Neutron's security groups allocate from 1 upwards).
pub const ROUTER_ZONE_BASE: u16 = 0xf000;

/// The configured world. Cheap to clone (rules and MAC tables are shared).
#[derive(Clone)]
pub struct SwitchConfig {
    bridges: Vec<BridgeState>,
    routers: Vec<RouterInstance>,
    n_workers: usize,
    next_port_id: u32,
    generation: u64,
    mac_generation: Arc<AtomicU64>,
    mac_max_entries: usize,
    mac_aging_ns: u64,
    /// The connection table (kept across builds).
    conntrack: Arc<crate::conntrack::ConnTable>,
    /// Next conntrack zone for a new router instance.
    next_router_zone: u16,
    /// Run-time state of each router instance, by name (kept across builds).
    router_runtime:
        std::collections::BTreeMap<String, Arc<crate::router::neighbour::RouterRuntime>>,
}

impl SwitchConfig {
    pub fn new(n_workers: usize) -> SwitchConfig {
        SwitchConfig {
            bridges: Vec::new(),
            routers: Vec::new(),
            n_workers: n_workers.max(1),
            next_port_id: 0,
            generation: 0,
            mac_generation: Arc::new(AtomicU64::new(0)),
            mac_max_entries: DEFAULT_MAX_ENTRIES,
            mac_aging_ns: DEFAULT_AGING_NS,
            router_runtime: std::collections::BTreeMap::new(),
            conntrack: Arc::new(crate::conntrack::ConnTable::new(
                Default::default(),
                Default::default(),
            )),
            next_router_zone: ROUTER_ZONE_BASE,
        }
    }

    /// The shared connection table.
    pub fn conntrack(&self) -> &Arc<crate::conntrack::ConnTable> {
        &self.conntrack
    }

    /// The conntrack zone of router instance `name`, once built.
    pub fn router_zone(&self, name: &str) -> Option<u16> {
        self.router_runtime.get(name).map(|r| r.zone)
    }

    /// Replaces the connection table (limits and timeouts from the daemon's
    /// configuration); existing connections are dropped.
    pub fn set_conntrack(&mut self, table: crate::conntrack::ConnTable) {
        self.conntrack = Arc::new(table);
    }

    /// MAC table limits of every bridge: those added from now on, and
    /// those already configured, which get a fresh (empty) table with the
    /// new limits (a configuration-time setting: learned entries go).
    pub fn set_mac_limits(&mut self, max_entries: usize, aging_ns: u64) {
        self.mac_max_entries = max_entries;
        self.mac_aging_ns = aging_ns;
        for b in &mut self.bridges {
            b.macs = Arc::new(MacTable::new(
                max_entries,
                aging_ns,
                self.mac_generation.clone(),
            ));
        }
    }

    pub fn n_workers(&self) -> usize {
        self.n_workers
    }

    fn bridge_mut(&mut self, name: &str) -> Result<&mut BridgeState, ConfigError> {
        self.bridges
            .iter_mut()
            .find(|b| b.name == name)
            .ok_or_else(|| ConfigError::NoSuchBridge(name.to_string()))
    }

    fn bridge(&self, name: &str) -> Result<&BridgeState, ConfigError> {
        self.bridges
            .iter()
            .find(|b| b.name == name)
            .ok_or_else(|| ConfigError::NoSuchBridge(name.to_string()))
    }

    pub fn bridge_names(&self) -> Vec<String> {
        self.bridges.iter().map(|b| b.name.clone()).collect()
    }

    /// Replaces the router instances (the qrouter/fip/snat namespaces).
    /// Their bridge-attached interfaces must be internal ports of the same name.
    pub fn set_routers(&mut self, routers: Vec<RouterInstance>) {
        self.routers = routers;
    }

    pub fn routers(&self) -> &[RouterInstance] {
        &self.routers
    }

    /// Adds an empty bridge. Like Neutron's bridges (`fail_mode=secure`) it
    /// has no flows: every packet misses and is dropped until flows are added.
    pub fn add_bridge(&mut self, name: &str) -> Result<(), ConfigError> {
        if self.bridges.iter().any(|b| b.name == name) {
            return Err(ConfigError::BridgeExists(name.to_string()));
        }
        self.bridges.push(BridgeState {
            name: name.to_string(),
            ports: Vec::new(),
            rules: Vec::new(),
            macs: Arc::new(MacTable::new(
                self.mac_max_entries,
                self.mac_aging_ns,
                self.mac_generation.clone(),
            )),
        });
        Ok(())
    }

    pub fn del_bridge(&mut self, name: &str) -> Result<(), ConfigError> {
        let i = self
            .bridges
            .iter()
            .position(|b| b.name == name)
            .ok_or_else(|| ConfigError::NoSuchBridge(name.to_string()))?;
        self.bridges.remove(i);
        Ok(())
    }

    /// The configuration of port `name` and its bridge's name.
    pub fn port_config(&self, name: &str) -> Option<(&str, &PortConfig)> {
        let (bi, pi) = self.find_port(name)?;
        Some((
            self.bridges[bi].name.as_str(),
            &self.bridges[bi].ports[pi].0,
        ))
    }

    /// Names of the ports of `bridge`.
    pub fn port_names_of(&self, bridge: &str) -> Vec<String> {
        self.bridges
            .iter()
            .find(|b| b.name == bridge)
            .map(|b| b.ports.iter().map(|(p, _, _)| p.name.clone()).collect())
            .unwrap_or_default()
    }

    fn find_port(&self, name: &str) -> Option<(usize, usize)> {
        self.bridges.iter().enumerate().find_map(|(bi, b)| {
            b.ports
                .iter()
                .position(|(p, _, _)| p.name == name)
                .map(|pi| (bi, pi))
        })
    }

    /// Adds a port; returns its OpenFlow port number.
    pub fn add_port(&mut self, bridge: &str, port: PortConfig) -> Result<u32, ConfigError> {
        if self.find_port(&port.name).is_some() || self.bridges.iter().any(|b| b.name == port.name)
        {
            return Err(ConfigError::PortExists(port.name.clone()));
        }
        validate_port(&port)?;
        let id = PortId(self.next_port_id);
        let b = self.bridge_mut(bridge)?;
        let ofport = match port.ofport {
            Some(n) => {
                if let Some((other, _, _)) = b.ports.iter().find(|(_, o, _)| *o == n) {
                    return Err(ConfigError::OfportInUse {
                        bridge: bridge.to_string(),
                        ofport: n,
                        port: other.name.clone(),
                    });
                }
                n
            }
            None => (1..)
                .find(|n| !b.ports.iter().any(|(_, o, _)| o == n))
                .unwrap_or(1),
        };
        b.ports.push((port, ofport, id));
        b.ports.sort_by_key(|(_, o, _)| *o);
        self.next_port_id += 1;
        Ok(ofport)
    }

    pub fn del_port(&mut self, name: &str) -> Result<(), ConfigError> {
        let (bi, pi) = self
            .find_port(name)
            .ok_or_else(|| ConfigError::NoSuchPort(name.to_string()))?;
        let (_, _, id) = self.bridges[bi].ports.remove(pi);
        self.bridges[bi].macs.flush_port(id);
        Ok(())
    }

    /// Changes a port's VLAN mode, kind or flood flag (not its number).
    pub fn set_port(
        &mut self,
        name: &str,
        update: impl FnOnce(&mut PortConfig),
    ) -> Result<(), ConfigError> {
        let (bi, pi) = self
            .find_port(name)
            .ok_or_else(|| ConfigError::NoSuchPort(name.to_string()))?;
        let mut p = self.bridges[bi].ports[pi].0.clone();
        update(&mut p);
        p.name = name.to_string();
        validate_port(&p)?;
        let id = self.bridges[bi].ports[pi].2;
        self.bridges[bi].ports[pi].0 = p;
        self.bridges[bi].macs.flush_port(id);
        Ok(())
    }

    /// Adds or replaces a flow (same table, priority and match replaces, and
    /// resets its counters, as `ovs-ofctl add-flow` does).
    pub fn add_flow(&mut self, bridge: &str, flow: Flow, now_ns: u64) -> Result<(), ConfigError> {
        self.add_flows(bridge, vec![flow], now_ns)
    }

    /// Adds flows as one change: all or none.
    pub fn add_flows(
        &mut self,
        bridge: &str,
        flows: Vec<Flow>,
        now_ns: u64,
    ) -> Result<(), ConfigError> {
        let n = self.n_workers;
        let b = self.bridge_mut(bridge)?;
        for flow in &flows {
            check_flow_actions(&b.name, flow)?;
        }
        let mut rules = b.rules.clone();
        for flow in flows {
            let rule = Arc::new(Rule {
                flow,
                stats: Arc::new(RuleStats::new(n)),
                added_ns: now_ns,
            });
            match rules.iter().position(|r| same_slot(&r.flow, &rule.flow)) {
                Some(i) => rules[i] = rule,
                None => rules.push(rule),
            }
        }
        if rules.len() > MAX_FLOWS_PER_BRIDGE {
            return Err(ConfigError::TooManyFlows {
                bridge: bridge.to_string(),
                limit: MAX_FLOWS_PER_BRIDGE,
            });
        }
        b.rules = rules;
        Ok(())
    }

    /// Replaces the whole flow table of a bridge, keeping the counters of
    /// flows that are unchanged (what a topology recompilation needs).
    pub fn replace_flows(
        &mut self,
        bridge: &str,
        flows: Vec<Flow>,
        now_ns: u64,
    ) -> Result<(), ConfigError> {
        let n = self.n_workers;
        let b = self.bridge_mut(bridge)?;
        let mut next = Vec::with_capacity(flows.len());
        for flow in flows {
            check_flow_actions(&b.name, &flow)?;
            match b.rules.iter().find(|r| r.flow == flow) {
                Some(r) => next.push(r.clone()),
                None => next.push(Arc::new(Rule {
                    flow,
                    stats: Arc::new(RuleStats::new(n)),
                    added_ns: now_ns,
                })),
            }
        }
        b.rules = next;
        Ok(())
    }

    /// Deletes flows. Non-strict (`strict == false`): every flow in `table`
    /// (all tables when `None`) whose match is at least as specific as
    /// `selector`. Strict: the flow with exactly that match and priority.
    /// `cookie`/`cookie_mask` of the selector flow narrow the choice.
    /// Returns how many were removed.
    pub fn del_flows(
        &mut self,
        bridge: &str,
        selector: &FlowSelector,
    ) -> Result<usize, ConfigError> {
        let b = self.bridge_mut(bridge)?;
        let before = b.rules.len();
        b.rules.retain(|r| !selector.selects(&r.flow));
        Ok(before - b.rules.len())
    }

    /// Replaces the actions of selected flows, keeping their counters.
    pub fn mod_flows(
        &mut self,
        bridge: &str,
        selector: &FlowSelector,
        actions: Vec<Action>,
    ) -> Result<usize, ConfigError> {
        let b = self.bridge_mut(bridge)?;
        let mut next = b.rules.clone();
        let mut n = 0;
        for r in next.iter_mut() {
            if selector.selects(&r.flow) {
                let mut flow = r.flow.clone();
                flow.actions = actions.clone();
                check_flow_actions(&b.name, &flow)?;
                *r = Arc::new(Rule {
                    flow,
                    stats: r.stats.clone(),
                    added_ns: r.added_ns,
                });
                n += 1;
            }
        }
        b.rules = next;
        Ok(n)
    }

    /// Removes flows whose idle or hard timeout has passed. Returns them.
    pub fn expire_flows(&mut self, now_ns: u64) -> Vec<(String, Flow)> {
        let mut gone = Vec::new();
        for b in &mut self.bridges {
            b.rules.retain(|r| {
                let f = &r.flow;
                let (_, _, last) = r.stats.read();
                let hard = f.hard_timeout != 0
                    && now_ns.saturating_sub(r.added_ns) >= f.hard_timeout as u64 * 1_000_000_000;
                let idle = f.idle_timeout != 0
                    && now_ns.saturating_sub(last.max(r.added_ns))
                        >= f.idle_timeout as u64 * 1_000_000_000;
                if hard || idle {
                    gone.push((b.name.clone(), f.clone()));
                }
                !(hard || idle)
            });
        }
        gone
    }

    /// Compiles a snapshot. Fails (naming the item) if ports or flows are
    /// inconsistent; `self` is unchanged either way.
    pub fn build(&mut self) -> Result<Arc<Switch>, ConfigError> {
        // Router run-time state follows the instances by name.
        let names: std::collections::BTreeSet<&str> =
            self.routers.iter().map(|r| r.name.as_str()).collect();
        self.router_runtime
            .retain(|n, _| names.contains(n.as_str()));
        for r in &self.routers {
            if !self.router_runtime.contains_key(&r.name) {
                let zone = self.next_router_zone;
                self.next_router_zone = self
                    .next_router_zone
                    .checked_add(1)
                    .unwrap_or(ROUTER_ZONE_BASE);
                let rt = crate::router::neighbour::RouterRuntime::with_zone(
                    self.mac_generation.clone(),
                    zone,
                );
                self.router_runtime.insert(r.name.clone(), Arc::new(rt));
            }
        }
        let sw = compile(self, self.generation + 1)?;
        self.generation += 1;
        Ok(Arc::new(sw))
    }

    /// Port names of a bridge, for parsing flows that name ports.
    pub fn port_names(&self, bridge: &str) -> Result<ConfigPortNames, ConfigError> {
        let b = self.bridge(bridge)?;
        Ok(ConfigPortNames {
            ports: b
                .ports
                .iter()
                .map(|(p, o, _)| (p.name.clone(), *o))
                .collect(),
        })
    }
}

/// Port names of one bridge, detached from the config.
pub struct ConfigPortNames {
    ports: Vec<(String, u32)>,
}

impl PortNames for ConfigPortNames {
    fn port_number(&self, name: &str) -> Option<u32> {
        self.ports.iter().find(|(n, _)| n == name).map(|(_, o)| *o)
    }
    fn port_name(&self, number: u32) -> Option<&str> {
        self.ports
            .iter()
            .find(|(_, o)| *o == number)
            .map(|(n, _)| n.as_str())
    }
}

/// Which flows a `del-flows`/`mod-flows` applies to.
#[derive(Clone, Debug, Default)]
pub struct FlowSelector {
    pub table: Option<u8>,
    pub matches: Match,
    pub strict: bool,
    pub priority: u16,
    pub cookie: u64,
    pub cookie_mask: u64,
}

impl FlowSelector {
    pub fn selects(&self, f: &Flow) -> bool {
        if self.table.is_some_and(|t| t != f.table) {
            return false;
        }
        if (f.cookie ^ self.cookie) & self.cookie_mask != 0 {
            return false;
        }
        if self.strict {
            return f.priority == self.priority && f.matches == self.matches;
        }
        // Non-strict: the flow's match must lie within the selector's.
        self.matches.mask.is_subset_of(&f.matches.mask)
            && f.matches.value.masked(&self.matches.mask) == self.matches.value
    }
}

fn same_slot(a: &Flow, b: &Flow) -> bool {
    a.table == b.table && a.priority == b.priority && a.matches == b.matches
}

fn validate_port(p: &PortConfig) -> Result<(), ConfigError> {
    if let Some(n) = p.ofport {
        if n == 0 || n > ofp::MAX_PORT {
            return Err(ConfigError::BadOfport(p.name.clone()));
        }
    }
    let vlans: Vec<u16> = match &p.vlan {
        VlanMode::Access { tag } => vec![*tag],
        VlanMode::Trunk { trunks } => trunks.clone(),
    };
    if let Some(&v) = vlans.iter().find(|&&v| v > 4095) {
        return Err(ConfigError::BadVlan {
            port: p.name.clone(),
            vlan: v,
        });
    }
    Ok(())
}

/// Checks what can be checked on one flow alone.
fn check_flow_actions(bridge: &str, f: &Flow) -> Result<(), ConfigError> {
    let bad = |problem: String| ConfigError::BadFlow {
        bridge: bridge.to_string(),
        table: f.table,
        flow: crate::flow::text::format_flow(f, None, &crate::flow::NoPortNames),
        problem,
    };
    for (i, a) in f.actions.iter().enumerate() {
        if let Action::GotoTable(t) = a {
            if *t <= f.table {
                return Err(bad(format!(
                    "goto_table:{t} must go to a later table than {}",
                    f.table
                )));
            }
            if i + 1 != f.actions.len() {
                return Err(bad("goto_table must be the last action".to_string()));
            }
        }
    }
    Ok(())
}

/// A port as the pipeline sees it.
#[derive(Clone, Debug)]
pub struct Port {
    pub id: PortId,
    pub name: String,
    pub bridge: usize,
    pub ofport: u32,
    pub kind: PortKind,
    /// For a patch port: the peer's id.
    pub peer: Option<PortId>,
    pub vlan: VlanMode,
    pub no_flood: bool,
    pub mac: Option<Mac>,
    /// IPv4 sources the port may send from (`PortConfig::ip_sources`).
    pub ip_sources: Option<Vec<(u32, u8)>>,
}

impl Port {
    /// Whether port security lets this port send from `src` (IPv4).
    pub fn may_send_from(&self, src: u32) -> bool {
        self.ip_sources.as_ref().is_none_or(|list| {
            list.iter().any(|&(a, len)| {
                let m = if len == 0 {
                    0
                } else {
                    u32::MAX << (32 - len.min(32) as u32)
                };
                src & m == a & m
            })
        })
    }
}

/// One OpenFlow table: its rules and their compiled lookup.
pub struct Table {
    pub id: u8,
    pub rules: Vec<Arc<Rule>>,
    pub classifier: Classifier<u32>,
}

/// One bridge of a snapshot.
pub struct Bridge {
    pub name: String,
    pub index: usize,
    /// Ports by ascending OpenFlow number.
    pub ports: Vec<PortId>,
    ofports: HashMap<u32, PortId>,
    names: Vec<(String, u32)>,
    tables: Vec<Option<Table>>,
    pub macs: Arc<MacTable>,
}

impl Bridge {
    pub fn port_by_ofport(&self, ofport: u32) -> Option<PortId> {
        self.ofports.get(&ofport).copied()
    }

    pub fn table(&self, id: u8) -> Option<&Table> {
        self.tables.get(id as usize).and_then(|t| t.as_ref())
    }

    /// Tables that hold flows, ascending.
    pub fn tables(&self) -> impl Iterator<Item = &Table> {
        self.tables.iter().flatten()
    }

    pub fn n_flows(&self) -> usize {
        self.tables().map(|t| t.rules.len()).sum()
    }
}

impl PortNames for Bridge {
    fn port_number(&self, name: &str) -> Option<u32> {
        self.names.iter().find(|(n, _)| n == name).map(|(_, o)| *o)
    }
    fn port_name(&self, number: u32) -> Option<&str> {
        self.names
            .iter()
            .find(|(_, o)| *o == number)
            .map(|(n, _)| n.as_str())
    }
}

/// Where a router instance's interface sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouterIfaceRef {
    pub instance: usize,
    pub iface: usize,
}

/// An immutable, compiled snapshot of the whole switch.
pub struct Switch {
    pub generation: u64,
    pub bridges: Vec<Bridge>,
    pub routers: Vec<RouterInstance>,
    /// Internal port → the router interface attached to it.
    router_ports: HashMap<PortId, RouterIfaceRef>,
    /// Router interface → the internal port it is attached to, or its veth peer.
    router_links: HashMap<(usize, usize), RouterLinkTarget>,
    ports: HashMap<PortId, Port>,
    port_names: HashMap<String, PortId>,
    pub n_workers: usize,
    /// Shared by every MAC table and router run-time state of this switch:
    /// the learned-state generation (see `MacTable`).
    pub mac_generation: Arc<AtomicU64>,
    /// Run-time state of `routers[i]`.
    pub router_runtime: Vec<Arc<crate::router::neighbour::RouterRuntime>>,
    /// Connections of every zone (OpenFlow `ct()` and router instances).
    pub conntrack: Arc<crate::conntrack::ConnTable>,
}

/// What is on the other side of a router interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouterLinkTarget {
    Port(PortId),
    Veth(RouterIfaceRef),
}

impl Switch {
    /// The router interface attached to an internal port, if any.
    #[inline]
    pub fn router_on_port(&self, port: PortId) -> Option<RouterIfaceRef> {
        self.router_ports.get(&port).copied()
    }

    /// Where frames sent out of a router interface go.
    pub fn router_link(&self, r: RouterIfaceRef) -> Option<RouterLinkTarget> {
        self.router_links.get(&(r.instance, r.iface)).copied()
    }

    pub fn router(&self, name: &str) -> Option<&RouterInstance> {
        self.routers.iter().find(|r| r.name == name)
    }

    pub fn port(&self, id: PortId) -> Option<&Port> {
        self.ports.get(&id)
    }

    pub fn port_by_name(&self, name: &str) -> Option<&Port> {
        self.port_names.get(name).and_then(|id| self.ports.get(id))
    }

    pub fn bridge(&self, name: &str) -> Option<&Bridge> {
        self.bridges.iter().find(|b| b.name == name)
    }

    /// All ports, by id.
    pub fn ports(&self) -> impl Iterator<Item = &Port> {
        let mut v: Vec<&Port> = self.ports.values().collect();
        v.sort_by_key(|p| p.id);
        v.into_iter()
    }

    #[inline]
    pub fn mac_generation(&self) -> u64 {
        self.mac_generation.load(Ordering::Acquire)
    }
}

fn compile(cfg: &SwitchConfig, generation: u64) -> Result<Switch, ConfigError> {
    let mut ports = HashMap::new();
    let mut port_names = HashMap::new();
    for (bi, b) in cfg.bridges.iter().enumerate() {
        for (p, ofport, id) in &b.ports {
            port_names.insert(p.name.clone(), *id);
            ports.insert(
                *id,
                Port {
                    id: *id,
                    name: p.name.clone(),
                    bridge: bi,
                    ofport: *ofport,
                    kind: p.kind.clone(),
                    peer: None,
                    vlan: p.vlan.clone(),
                    no_flood: p.no_flood,
                    mac: p.mac,
                    ip_sources: p.ip_sources.clone(),
                },
            );
        }
    }
    // Link patch peers: each must exist, be a patch port on another bridge, and point back.
    let ids: Vec<PortId> = ports.keys().copied().collect();
    for id in ids {
        let (name, bridge, peer_name) = match &ports[&id] {
            Port {
                kind: PortKind::Patch { peer },
                name,
                bridge,
                ..
            } => (name.clone(), *bridge, peer.clone()),
            _ => continue,
        };
        let bad = |problem: &str| ConfigError::BadPatchPeer {
            port: name.clone(),
            peer: peer_name.clone(),
            problem: problem.to_string(),
        };
        let peer_id = *port_names
            .get(&peer_name)
            .ok_or_else(|| bad("does not exist"))?;
        let peer = &ports[&peer_id];
        match &peer.kind {
            PortKind::Patch { peer } if *peer == name => {}
            _ => return Err(bad("is not a patch port whose peer is this port")),
        }
        if peer.bridge == bridge {
            return Err(bad("is on the same bridge"));
        }
        if let Some(p) = ports.get_mut(&id) {
            p.peer = Some(peer_id);
        }
    }

    let mut bridges = Vec::with_capacity(cfg.bridges.len());
    for (bi, b) in cfg.bridges.iter().enumerate() {
        let mut tables: Vec<Option<Table>> = (0..256).map(|_| None).collect();
        for r in &b.rules {
            let t = tables[r.flow.table as usize].get_or_insert_with(|| Table {
                id: r.flow.table,
                rules: Vec::new(),
                classifier: Classifier::default(),
            });
            t.rules.push(r.clone());
        }
        for t in tables.iter_mut().flatten() {
            t.classifier =
                Classifier::build(t.rules.iter().enumerate().map(|(i, r)| ClassifierRule {
                    matches: r.flow.matches,
                    priority: r.flow.priority,
                    value: i as u32,
                }));
        }
        check_resubmit_graph(&b.name, &tables)?;
        bridges.push(Bridge {
            name: b.name.clone(),
            index: bi,
            ports: b.ports.iter().map(|(_, _, id)| *id).collect(),
            ofports: b.ports.iter().map(|(_, o, id)| (*o, *id)).collect(),
            names: b
                .ports
                .iter()
                .map(|(p, o, _)| (p.name.clone(), *o))
                .collect(),
            tables,
            macs: b.macs.clone(),
        });
    }
    let (router_ports, router_links) = link_routers(&cfg.routers, &ports, &port_names)?;
    Ok(Switch {
        generation,
        bridges,
        routers: cfg.routers.clone(),
        router_ports,
        router_links,
        ports,
        port_names,
        n_workers: cfg.n_workers,
        mac_generation: cfg.mac_generation.clone(),
        conntrack: cfg.conntrack.clone(),
        router_runtime: cfg
            .routers
            .iter()
            .map(|r| match cfg.router_runtime.get(&r.name) {
                Some(rt) => rt.clone(),
                None => Arc::new(crate::router::neighbour::RouterRuntime::new(
                    cfg.mac_generation.clone(),
                )),
            })
            .collect(),
    })
}

type RouterMaps = (
    HashMap<PortId, RouterIfaceRef>,
    HashMap<(usize, usize), RouterLinkTarget>,
);

/// Attaches router interfaces to internal ports and veth peers to each other.
fn link_routers(
    routers: &[RouterInstance],
    ports: &HashMap<PortId, Port>,
    port_names: &HashMap<String, PortId>,
) -> Result<RouterMaps, ConfigError> {
    let mut on_port = HashMap::new();
    let mut links = HashMap::new();
    for (ii, inst) in routers.iter().enumerate() {
        for (fi, iface) in inst.interfaces.iter().enumerate() {
            let bad = |problem: String| ConfigError::BadRouterLink {
                instance: inst.name.clone(),
                iface: iface.name.clone(),
                problem,
            };
            let here = RouterIfaceRef {
                instance: ii,
                iface: fi,
            };
            match &iface.link {
                Link::Bridge => {
                    let id = *port_names
                        .get(&iface.name)
                        .ok_or_else(|| bad("no internal port of that name".into()))?;
                    if ports.get(&id).map(|p| &p.kind) != Some(&PortKind::Internal) {
                        return Err(bad("the port of that name is not an internal port".into()));
                    }
                    if on_port.insert(id, here).is_some() {
                        return Err(bad(
                            "another router interface is attached to that port".into()
                        ));
                    }
                    links.insert((ii, fi), RouterLinkTarget::Port(id));
                }
                Link::Veth {
                    instance,
                    iface: peer,
                } => {
                    let pi = routers
                        .iter()
                        .position(|r| &r.name == instance)
                        .ok_or_else(|| {
                            bad(format!("veth peer instance `{instance}` does not exist"))
                        })?;
                    let pf = routers[pi]
                        .interfaces
                        .iter()
                        .position(|f| &f.name == peer)
                        .ok_or_else(|| {
                            bad(format!("veth peer `{instance}`/`{peer}` does not exist"))
                        })?;
                    match &routers[pi].interfaces[pf].link {
                        Link::Veth {
                            instance: back,
                            iface: back_if,
                        } if *back == inst.name && *back_if == iface.name => {}
                        _ => {
                            return Err(bad(format!(
                                "veth peer `{instance}`/`{peer}` does not point back"
                            )))
                        }
                    }
                    links.insert(
                        (ii, fi),
                        RouterLinkTarget::Veth(RouterIfaceRef {
                            instance: pi,
                            iface: pf,
                        }),
                    );
                }
            }
        }
    }
    Ok((on_port, links))
}

/// Rejects a flow graph in which resubmit/goto chains could loop or nest
/// deeper than `MAX_RESUBMIT_DEPTH`, naming a flow on the offending path.
/// (Crossings between bridges and routers are bounded at run time by `MAX_HOPS`.)
fn check_resubmit_graph(bridge: &str, tables: &[Option<Table>]) -> Result<(), ConfigError> {
    // Edges: table -> (target table, flow that makes the edge).
    let edges = |t: &Table| -> Vec<(u8, String)> {
        let mut out = Vec::new();
        for r in &t.rules {
            for a in &r.flow.actions {
                let target = match a {
                    Action::GotoTable(n) => Some(*n),
                    Action::Resubmit { table, .. } => Some(table.unwrap_or(t.id)),
                    _ => None,
                };
                if let Some(n) = target {
                    out.push((
                        n,
                        crate::flow::text::format_flow(&r.flow, None, &crate::flow::NoPortNames),
                    ));
                }
            }
        }
        out
    };
    // Longest path (in resubmits) from each table, by DFS with colours.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done(usize),
    }
    let mut marks = vec![Mark::New; 256];
    fn visit(
        t: usize,
        tables: &[Option<Table>],
        marks: &mut Vec<Mark>,
        edges: &dyn Fn(&Table) -> Vec<(u8, String)>,
        bridge: &str,
    ) -> Result<usize, ConfigError> {
        match marks[t] {
            Mark::Done(d) => return Ok(d),
            Mark::Active => {
                return Err(ConfigError::FlowGraph {
                    bridge: bridge.to_string(),
                    problem: format!("resubmit loop through table {t}"),
                })
            }
            Mark::New => {}
        }
        let Some(table) = tables[t].as_ref() else {
            marks[t] = Mark::Done(0);
            return Ok(0);
        };
        marks[t] = Mark::Active;
        let mut depth = 0;
        for (next, flow) in edges(table) {
            if marks[next as usize] == Mark::Active {
                return Err(ConfigError::FlowGraph {
                    bridge: bridge.to_string(),
                    problem: format!(
                        "resubmit loop: table {t} flow `{flow}` leads back to table {next}"
                    ),
                });
            }
            let d = 1 + visit(next as usize, tables, marks, edges, bridge)?;
            if d > MAX_RESUBMIT_DEPTH {
                return Err(ConfigError::FlowGraph {
                    bridge: bridge.to_string(),
                    problem: format!(
                        "resubmit chain from table {t} via `{flow}` can nest {d} deep (limit {MAX_RESUBMIT_DEPTH})"
                    ),
                });
            }
            depth = depth.max(d);
        }
        marks[t] = Mark::Done(depth);
        Ok(depth)
    }
    for t in 0..256 {
        if tables[t].is_some() {
            visit(t, tables, &mut marks, &edges, bridge)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Field;

    fn flow(table: u8, priority: u16, actions: Vec<Action>) -> Flow {
        Flow {
            table,
            priority,
            actions,
            ..Flow::default()
        }
    }

    fn two_bridges() -> SwitchConfig {
        let mut c = SwitchConfig::new(1);
        c.add_bridge("br-a").unwrap();
        c.add_bridge("br-b").unwrap();
        c.add_port(
            "br-a",
            PortConfig::new(
                "a-b",
                PortKind::Patch { peer: "b-a".into() },
                VlanMode::Trunk { trunks: vec![] },
            ),
        )
        .unwrap();
        c.add_port(
            "br-b",
            PortConfig::new(
                "b-a",
                PortKind::Patch { peer: "a-b".into() },
                VlanMode::Trunk { trunks: vec![] },
            ),
        )
        .unwrap();
        c
    }

    #[test]
    fn resubmit_loops_are_rejected_when_built() {
        let mut c = two_bridges();
        c.add_flow(
            "br-a",
            flow(
                0,
                1,
                vec![Action::Resubmit {
                    port: None,
                    table: Some(5),
                }],
            ),
            0,
        )
        .unwrap();
        c.add_flow(
            "br-a",
            flow(
                5,
                1,
                vec![Action::Resubmit {
                    port: None,
                    table: Some(0),
                }],
            ),
            0,
        )
        .unwrap();
        let before = c.generation;
        let err = c.build().err().expect("loop rejected");
        assert!(
            matches!(&err, ConfigError::FlowGraph { bridge, problem } if bridge == "br-a" && problem.contains("loop")),
            "{err}"
        );
        assert_eq!(
            c.generation, before,
            "failed build does not advance the generation"
        );
    }

    #[test]
    fn resubmit_chains_deeper_than_the_bound_are_rejected() {
        let mut c = two_bridges();
        for t in 0..=(MAX_RESUBMIT_DEPTH as u8) {
            c.add_flow(
                "br-a",
                flow(
                    t,
                    1,
                    vec![Action::Resubmit {
                        port: None,
                        table: Some(t + 1),
                    }],
                ),
                0,
            )
            .unwrap();
        }
        let err = c.build().err().expect("too deep");
        assert!(err.to_string().contains("nest"), "{err}");
        // One table shorter is fine.
        let mut c = two_bridges();
        for t in 0..(MAX_RESUBMIT_DEPTH as u8 - 1) {
            c.add_flow(
                "br-a",
                flow(
                    t,
                    1,
                    vec![Action::Resubmit {
                        port: None,
                        table: Some(t + 1),
                    }],
                ),
                0,
            )
            .unwrap();
        }
        c.build().expect("within the bound");
    }

    #[test]
    fn goto_table_must_go_forward_and_be_last() {
        let mut c = two_bridges();
        let e = c
            .add_flow("br-a", flow(3, 1, vec![Action::GotoTable(3)]), 0)
            .unwrap_err();
        assert!(e.to_string().contains("later table"), "{e}");
        let e = c
            .add_flow(
                "br-a",
                flow(0, 1, vec![Action::GotoTable(3), Action::Normal]),
                0,
            )
            .unwrap_err();
        assert!(e.to_string().contains("last"), "{e}");
    }

    #[test]
    fn patch_peers_must_point_back() {
        let mut c = SwitchConfig::new(1);
        c.add_bridge("br-a").unwrap();
        c.add_bridge("br-b").unwrap();
        c.add_port(
            "br-a",
            PortConfig::new(
                "a-b",
                PortKind::Patch {
                    peer: "nope".into(),
                },
                VlanMode::Trunk { trunks: vec![] },
            ),
        )
        .unwrap();
        let e = c.build().err().expect("bad peer");
        assert!(
            matches!(&e, ConfigError::BadPatchPeer { port, .. } if port == "a-b"),
            "{e}"
        );
    }

    #[test]
    fn add_flow_replaces_same_match_and_priority_and_resets_counters() {
        let mut c = two_bridges();
        let mut m = Match::ANY;
        m.set_exact(Field::InPort, 1);
        let f1 = Flow {
            matches: m,
            priority: 5,
            actions: vec![Action::Normal],
            ..Flow::default()
        };
        c.add_flow("br-a", f1.clone(), 0).unwrap();
        let sw = c.build().unwrap();
        let rule = sw.bridge("br-a").unwrap().table(0).unwrap().rules[0].clone();
        rule.stats.hit(0, 100, 1);
        // mod-flows keeps counters.
        let sel = FlowSelector {
            table: Some(0),
            matches: m,
            strict: true,
            priority: 5,
            ..FlowSelector::default()
        };
        assert_eq!(c.mod_flows("br-a", &sel, vec![Action::Flood]).unwrap(), 1);
        let sw = c.build().unwrap();
        let r = &sw.bridge("br-a").unwrap().table(0).unwrap().rules[0];
        assert_eq!(r.flow.actions, vec![Action::Flood]);
        assert_eq!(r.stats.read().0, 1);
        // add-flow with the same match and priority replaces and resets.
        c.add_flow("br-a", f1, 0).unwrap();
        let sw = c.build().unwrap();
        let t = sw.bridge("br-a").unwrap().table(0).unwrap();
        assert_eq!(t.rules.len(), 1);
        assert_eq!(t.rules[0].stats.read().0, 0);
    }

    #[test]
    fn non_strict_delete_takes_flows_within_the_selector() {
        let mut c = two_bridges();
        let mut m1 = Match::ANY;
        m1.set_exact(Field::InPort, 1);
        let mut m2 = m1;
        m2.set_exact(Field::DlType, 0x0806);
        let mut m3 = Match::ANY;
        m3.set_exact(Field::InPort, 2);
        for (m, p) in [(m1, 1), (m2, 2), (m3, 3)] {
            c.add_flow(
                "br-a",
                Flow {
                    matches: m,
                    priority: p,
                    ..Flow::default()
                },
                0,
            )
            .unwrap();
        }
        let sel = FlowSelector {
            matches: m1,
            ..FlowSelector::default()
        };
        assert_eq!(
            c.del_flows("br-a", &sel).unwrap(),
            2,
            "in_port=1 and in_port=1,arp"
        );
        let sw = c.build().unwrap();
        assert_eq!(sw.bridge("br-a").unwrap().n_flows(), 1);
    }

    #[test]
    fn flows_expire_on_hard_and_idle_timeouts() {
        let mut c = two_bridges();
        let s = 1_000_000_000;
        c.add_flow(
            "br-a",
            Flow {
                priority: 1,
                hard_timeout: 10,
                ..Flow::default()
            },
            0,
        )
        .unwrap();
        c.add_flow(
            "br-a",
            Flow {
                priority: 2,
                idle_timeout: 5,
                ..Flow::default()
            },
            0,
        )
        .unwrap();
        let sw = c.build().unwrap();
        let idle = sw
            .bridge("br-a")
            .unwrap()
            .table(0)
            .unwrap()
            .rules
            .iter()
            .find(|r| r.flow.priority == 2)
            .unwrap()
            .clone();
        idle.stats.hit(0, 60, 4 * s);
        assert!(
            c.expire_flows(8 * s).is_empty(),
            "idle flow was used at 4 s"
        );
        let gone = c.expire_flows(10 * s);
        assert_eq!(gone.len(), 2);
    }

    #[test]
    fn bad_ports_are_rejected_by_name() {
        let mut c = two_bridges();
        let e = c
            .add_port(
                "br-a",
                PortConfig::new("a-b", PortKind::System, VlanMode::Access { tag: 1 }),
            )
            .unwrap_err();
        assert_eq!(e, ConfigError::PortExists("a-b".into()));
        let e = c
            .add_port(
                "br-a",
                PortConfig::new("x", PortKind::System, VlanMode::Access { tag: 5000 }),
            )
            .unwrap_err();
        assert!(matches!(e, ConfigError::BadVlan { vlan: 5000, .. }));
        let mut p = PortConfig::new("y", PortKind::System, VlanMode::Access { tag: 1 });
        p.ofport = Some(1);
        let e = c.add_port("br-a", p).unwrap_err();
        assert!(
            matches!(e, ConfigError::OfportInUse { ofport: 1, .. }),
            "{e}"
        );
        assert!(c
            .add_port(
                "br-zz",
                PortConfig::new("z", PortKind::System, VlanMode::Access { tag: 1 })
            )
            .is_err());
    }
}
