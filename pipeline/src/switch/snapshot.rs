//! `Switch`: the compiled, immutable snapshot every worker reads — bridges
//! with one classifier per table, ports by id, router instances linked to
//! their ports and veth peers, and the live state it points to (MAC tables,
//! router run-time state, the connection table).

use super::port::{PortKind, VlanMode};
use super::rules::Rule;
use crate::bridge::mac::MacTable;
use crate::classifier::Classifier;
use crate::flow::PortNames;
use crate::ids::{PortId, RouterIfaceRef};
use crate::key::Mac;
use crate::router::RouterInstance;
use hashbrown::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Deepest nesting of `resubmit`/`goto_table` within one bridge (OVS: 64).
pub const MAX_RESUBMIT_DEPTH: usize = 64;
/// Most crossings (patch ports, router instances, veth pairs) one packet may
/// make. The longest Neutron walk (§8.8: br-ex, br-int, fip, qrouter, br-int)
/// makes 5.
pub const MAX_HOPS: usize = 16;

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
    pub(super) ofports: HashMap<u32, PortId>,
    pub(super) names: Vec<(String, u32)>,
    pub(super) tables: Vec<Option<Table>>,
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

/// An immutable, compiled snapshot of the whole switch.
pub struct Switch {
    pub generation: u64,
    pub bridges: Vec<Bridge>,
    pub routers: Vec<RouterInstance>,
    /// Internal port → the router interface attached to it.
    pub(super) router_ports: HashMap<PortId, RouterIfaceRef>,
    /// Router interface → the internal port it is attached to, or its veth peer.
    pub(super) router_links: HashMap<(usize, usize), RouterLinkTarget>,
    /// Counters of the ports in `router_ports`.
    pub(super) crossings: HashMap<PortId, Arc<super::config::PortCrossing>>,
    /// Ports a capture watches.
    pub(super) watched: hashbrown::HashSet<PortId>,
    pub(super) ports: HashMap<PortId, Port>,
    pub(super) port_names: HashMap<String, PortId>,
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

    /// Whether a capture watches `port`.
    #[inline]
    pub fn watched(&self, port: PortId) -> bool {
        !self.watched.is_empty() && self.watched.contains(&port)
    }

    /// The crossing counters of an internal port a router takes.
    pub fn crossing(&self, port: PortId) -> Option<&Arc<super::config::PortCrossing>> {
        self.crossings.get(&port)
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
