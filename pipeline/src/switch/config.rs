//! `SwitchConfig`: the configured world as the control plane edits it
//! (bridges, ports, flows, router instances, limits), and the checks each
//! edit can make on its own. Compiling it into a snapshot is `compile`.

use super::port::{PortConfig, VlanMode};
use super::rules::{Rule, RuleStats};
use crate::bridge::mac::{MacTable, DEFAULT_AGING_NS, DEFAULT_MAX_ENTRIES};
use crate::flow::{ofp, Action, Flow, Match, PortNames};
use crate::ids::PortId;
use crate::router::RouterInstance;
use hashbrown::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Most flows one bridge may hold.
pub const MAX_FLOWS_PER_BRIDGE: usize = 1_000_000;

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

#[derive(Clone)]
pub(super) struct BridgeState {
    pub(super) name: String,
    pub(super) ports: Vec<(PortConfig, u32, PortId)>,
    pub(super) rules: Vec<Arc<Rule>>,
    pub(super) macs: Arc<MacTable>,
}

/// First conntrack zone given to router instances (OpenFlow flows use the
/// zones below; Neutron's security groups allocate from 1 upwards).
pub const ROUTER_ZONE_BASE: u16 = 0xf000;

/// The configured world. Cheap to clone (rules and MAC tables are shared).
#[derive(Clone)]
pub struct SwitchConfig {
    pub(super) bridges: Vec<BridgeState>,
    pub(super) routers: Vec<RouterInstance>,
    pub(super) n_workers: usize,
    pub(super) next_port_id: u32,
    pub(super) generation: u64,
    pub(super) mac_generation: Arc<AtomicU64>,
    pub(super) mac_max_entries: usize,
    pub(super) mac_aging_ns: u64,
    /// The connection table (kept across builds).
    pub(super) conntrack: Arc<crate::conntrack::ConnTable>,
    /// Next conntrack zone for a new router instance.
    pub(super) next_router_zone: u16,
    /// Run-time state of each router instance, by name (kept across builds).
    pub(super) router_runtime:
        std::collections::BTreeMap<String, Arc<crate::router::neighbour::RouterRuntime>>,
    /// Counters of the internal ports a router instance takes (kept
    /// across builds while the port stays a router's).
    pub(super) crossings: HashMap<PortId, Arc<PortCrossing>>,
    /// Ports a capture watches (by name): a walk crossing one of them
    /// without an output there (a router's internal port) taps a copy.
    pub(super) watched: std::collections::BTreeSet<String>,
}

/// What crossed an internal port a router instance takes, both ways:
/// such a port has no I/O of its own (the walk goes from the bridge into
/// the router and back in one translation), so its counters are credited
/// per cached walk, as flow counters are, once per burst. Bytes are the
/// packet's as it entered the walk.
pub struct PortCrossing {
    /// From the bridge into the router (the port's transmit side).
    pub to_router: Arc<RuleStats>,
    /// From the router into the bridge (the port's receive side).
    pub from_router: Arc<RuleStats>,
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
            crossings: HashMap::new(),
            watched: std::collections::BTreeSet::new(),
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

    /// Bridge `bridge`'s own MAC table limits (Open_vSwitch's
    /// `other_config:mac-table-size` and `mac-aging-time`): a fresh, empty
    /// table with them (a configuration-time setting: learned entries go).
    pub fn set_bridge_mac_table(
        &mut self,
        bridge: &str,
        max_entries: usize,
        aging_ns: u64,
    ) -> Result<(), ConfigError> {
        let generation = self.mac_generation.clone();
        let b = self.bridge_mut(bridge)?;
        b.macs = Arc::new(MacTable::new(
            max_entries.max(1),
            aging_ns.max(1),
            generation,
        ));
        Ok(())
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

    /// Whether every router instance stores the connections no NAT rule
    /// selects, as Linux does (`RouterInstance::store_unnated`; off by
    /// default: they are looked up, not stored).
    pub fn set_store_unnated(&mut self, on: bool) {
        for r in &mut self.routers {
            r.store_unnated = on;
        }
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
    /// Gives `bridge` its own (LOCAL) port, as Open vSwitch gives every
    /// bridge one: an internal port of the bridge's name, number 65534.
    /// It has no I/O unless bound, so NORMAL does not flood to it (where
    /// Open vSwitch floods to its kernel device).
    pub fn add_local_port(&mut self, bridge: &str) -> Result<(), ConfigError> {
        let mut p = PortConfig::new(
            bridge,
            super::port::PortKind::Internal,
            VlanMode::Trunk { trunks: vec![] },
        );
        p.no_flood = true;
        self.add_port(bridge, p).map(|_| ())
    }

    /// Adds a port. A port named after its bridge is the bridge's own
    /// (LOCAL) port, as in Open vSwitch: its OpenFlow number is
    /// `OFPP_LOCAL` (65534), what `in_port=LOCAL` and `output:LOCAL` name.
    pub fn add_port(&mut self, bridge: &str, mut port: PortConfig) -> Result<u32, ConfigError> {
        let local = port.name == bridge;
        if self.find_port(&port.name).is_some()
            || (!local && self.bridges.iter().any(|b| b.name == port.name))
        {
            return Err(ConfigError::PortExists(port.name.clone()));
        }
        if local {
            if port.ofport.is_some_and(|n| n != ofp::LOCAL) {
                return Err(ConfigError::BadOfport(port.name.clone()));
            }
            port.ofport = Some(ofp::LOCAL);
        } else if port.ofport == Some(ofp::LOCAL) {
            return Err(ConfigError::BadOfport(port.name.clone()));
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

    /// Whether port `name` is watched (see `set_watched`).
    pub fn is_watched(&self, name: &str) -> bool {
        self.watched.contains(name)
    }

    /// Whether walks tap copies for the captures of port `name` where
    /// they cross it without an output (a router's internal port).
    pub fn set_watched(&mut self, name: &str, on: bool) {
        if on {
            self.watched.insert(name.to_string());
        } else {
            self.watched.remove(name);
        }
    }

    /// Makes `port` a port of `bridge` as given: one of that name already
    /// there with the same requested number is changed in place (it keeps
    /// its identity: MAC entries, counters, I/O), one elsewhere or with
    /// another number is removed and added again, a new one is added.
    pub fn put_port(&mut self, bridge: &str, port: PortConfig) -> Result<(), ConfigError> {
        let here = self
            .port_config(&port.name)
            .map(|(br, c)| (br == bridge && c.ofport == port.ofport, *c == port));
        match here {
            Some((true, true)) => Ok(()),
            Some((true, false)) => {
                let name = port.name.clone();
                self.set_port(&name, |c| *c = port)
            }
            Some((false, _)) => {
                self.del_port(&port.name)?;
                self.add_port(bridge, port).map(|_| ())
            }
            None => self.add_port(bridge, port).map(|_| ()),
        }
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

    /// Replaces the flows a compilation put on a bridge (`old`, as it
    /// compiled them) by what it compiles now (`new`), keeping every other
    /// flow (an operator's or a controller's): what a topology
    /// recompilation does, as Neutron's agent replaces only its own flows.
    /// Unchanged flows keep their counters. A new flow whose table,
    /// priority and match an other owner's flow holds does not replace it
    /// (the operator's override stands); those flows are returned, for the
    /// caller to report. All or nothing.
    pub fn replace_owned_flows(
        &mut self,
        bridge: &str,
        old: &[Flow],
        new: Vec<Flow>,
        now_ns: u64,
    ) -> Result<Vec<Flow>, ConfigError> {
        let n = self.n_workers;
        let b = self.bridge_mut(bridge)?;
        let (owned, others): (Vec<_>, Vec<_>) =
            b.rules.iter().cloned().partition(|r| old.contains(&r.flow));
        let mut next = Vec::with_capacity(new.len() + others.len());
        let mut shadowed = Vec::new();
        for flow in new {
            check_flow_actions(&b.name, &flow)?;
            if others.iter().any(|r| same_slot(&r.flow, &flow)) {
                shadowed.push(flow);
                continue;
            }
            match owned.iter().find(|r| r.flow == flow) {
                Some(r) => next.push(r.clone()),
                None => next.push(Arc::new(Rule {
                    flow,
                    stats: Arc::new(RuleStats::new(n)),
                    added_ns: now_ns,
                })),
            }
        }
        next.extend(others);
        if next.len() > MAX_FLOWS_PER_BRIDGE {
            return Err(ConfigError::TooManyFlows {
                bridge: bridge.to_string(),
                limit: MAX_FLOWS_PER_BRIDGE,
            });
        }
        b.rules = next;
        Ok(shadowed)
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

    /// Deletes the flows `selector` selects that `also` accepts too (an
    /// OpenFlow delete narrowed by out_port). Returns how many were removed.
    pub fn del_flows_where(
        &mut self,
        bridge: &str,
        selector: &FlowSelector,
        also: impl Fn(&Flow) -> bool,
    ) -> Result<usize, ConfigError> {
        let b = self.bridge_mut(bridge)?;
        let before = b.rules.len();
        b.rules
            .retain(|r| !(selector.selects(&r.flow) && also(&r.flow)));
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
        if n == 0 || (n > ofp::MAX_PORT && n != ofp::LOCAL) {
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
