//! Compiling a `SwitchConfig` into a `Switch` snapshot: ports resolved to
//! ids, patch peers and router interfaces linked, each table's classifier
//! built, flow graphs checked for loops and depth.

use super::config::{ConfigError, PortCrossing, SwitchConfig, ROUTER_ZONE_BASE};
use super::port::PortKind;
use super::rules::RuleStats;
use super::snapshot::{Bridge, Port, RouterLinkTarget, Switch, Table, MAX_RESUBMIT_DEPTH};
use crate::classifier::{Classifier, ClassifierRule};
use crate::flow::Action;
use crate::ids::{PortId, RouterIfaceRef};
use crate::router::{Link, RouterInstance};
use hashbrown::HashMap;
use std::sync::Arc;

impl SwitchConfig {
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
        let mut sw = compile(self, self.generation + 1)?;
        // Crossing counters follow the router ports by id.
        self.crossings
            .retain(|id, _| sw.router_ports.contains_key(id));
        for id in sw.router_ports.keys() {
            let n = self.n_workers;
            let c = self.crossings.entry(*id).or_insert_with(|| {
                Arc::new(PortCrossing {
                    to_router: Arc::new(RuleStats::new(n)),
                    from_router: Arc::new(RuleStats::new(n)),
                })
            });
            sw.crossings.insert(*id, c.clone());
        }
        self.generation += 1;
        Ok(Arc::new(sw))
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
        crossings: HashMap::new(),
        watched: cfg
            .watched
            .iter()
            .filter_map(|n| port_names.get(n).copied())
            .collect(),
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
