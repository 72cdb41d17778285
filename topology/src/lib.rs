//! Neutron's model of a deployment and its compilation into each host's
//! dataplane: the role of Neutron's server (the model), OVS agent (bridges,
//! ports, flows) and L3 agent (router instances).
//!
//! This crate owns the model and its file format (`model`), validation
//! that rejects what Neutron would reject, naming item and field
//! (`validate`), what each host carries (`placement`), the OVS agent's
//! compilation of a host's bridges, ports and flows (`compile`), the L3
//! agent's compilation of its router instances (`l3`), and turning those
//! into a switch configuration, whole (`build_host`) or as an update of a
//! running one (`update_host`). Compilation is a pure function of the model.
//!
//! It may call pipeline's configuration types only: `pipeline::switch`
//! (switch and port configuration), `pipeline::flow` (flows and their text
//! syntax), `pipeline::router` (router instances) and `pipeline::key::Mac`.
//! It uses nothing of vswitch or devtools, and the datapath does not import
//! it.

#![deny(unsafe_code)]

pub mod compile;
pub mod file;
pub mod l3;
pub mod model;
mod placement;
pub mod validate;

pub use compile::{compile_host, BridgePlan, HostPlan};
pub use l3::HostRouter;
pub use model::Topology;
use pipeline::flow::Flow;
use pipeline::switch::{ConfigError, SwitchConfig};
use std::net::Ipv4Addr;
pub use validate::{validate, TopologyError};

/// Parses and validates a topology file (TOML, or JSON; see `file`).
pub fn load_toml(text: &str) -> Result<Topology, TopologyError> {
    file::load(text)
}

/// A switch configuration error, as a problem of `host`'s bridges.
fn config_error(host: &str) -> impl Fn(ConfigError) -> TopologyError + '_ {
    move |e| TopologyError {
        item: format!("host {host}"),
        field: "bridges".into(),
        message: e.to_string(),
    }
}

/// Builds one host's switch configuration: its bridges, ports and flows
/// (the OVS agent's part) and its router instances (the L3 agent's part).
pub fn build_host(
    t: &Topology,
    host: &str,
    n_workers: usize,
) -> Result<SwitchConfig, TopologyError> {
    let plan = compile_host(t, host)?;
    let routers = l3::compile_instances(t, host)?;
    let mut cfg = SwitchConfig::new(n_workers);
    let fail = config_error(host);
    for b in &plan.bridges {
        cfg.add_bridge(&b.name).map_err(&fail)?;
        cfg.add_local_port(&b.name).map_err(&fail)?;
    }
    for b in &plan.bridges {
        for p in &b.ports {
            cfg.add_port(&b.name, p.clone()).map_err(&fail)?;
        }
        cfg.add_flows(&b.name, b.flows.clone(), 0).map_err(&fail)?;
    }
    cfg.set_routers(routers);
    // Compile once to check that ports, peers and router links fit together.
    cfg.clone().build().map_err(&fail)?;
    Ok(cfg)
}

/// What [`update_host`] did beyond the switch configuration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostUpdate {
    /// Connections of floating IPs no longer bound here, deleted.
    pub connections_deleted: usize,
    /// Compiled flows not installed because a flow added by hand (or by a
    /// controller) holds their table, priority and match: (bridge, flow).
    pub shadowed: Vec<(String, Flow)>,
}

/// Brings an existing host configuration to what topology `new` compiles
/// to, in place and as one change: ports added/removed/reconfigured by name
/// (removed only if `old` had them: bridges and ports added by hand stay)
/// (the ones that stay keep their identity, so MAC tables, flow counters,
/// conntrack and neighbours survive), the flows `old` compiled replaced by
/// those `new` compiles (unchanged flows keep their counters; flows added
/// by hand stay, and where one holds a compiled flow's slot it stands:
/// see [`HostUpdate::shadowed`]), router instances replaced. Floating IPs that `old`
/// bound on this host and `new` does not any more lose their connections in
/// the router's zone, as Neutron's agent deletes their conntrack state; the
/// number deleted is returned. `agent` are routers Neutron's L3 agent
/// handed the switch directly, compiled beside the topology's. On error
/// `cfg` is untouched.
pub fn update_host(
    cfg: &mut SwitchConfig,
    old: &Topology,
    new: &Topology,
    host: &str,
    now_ns: u64,
    agent: &[HostRouter],
) -> Result<HostUpdate, TopologyError> {
    let plan = compile_host(new, host)?;
    let routers = instances(new, host, agent)?;
    let fail = config_error(host);
    let old_plan = compile_host(old, host).ok();
    let mut next = cfg.clone();
    let shadowed = apply_plan(&mut next, &plan, old_plan.as_ref(), now_ns).map_err(&fail)?;
    next.set_routers(routers);
    next.clone().build().map_err(&fail)?;
    let connections_deleted = flush_unbound_floating_ips(cfg, old, new, host);
    *cfg = next;
    Ok(HostUpdate {
        connections_deleted,
        shadowed,
    })
}

/// Brings an existing host configuration's router instances (the L3
/// agent's part) to what topology `new` compiles to, as one change, and
/// leaves its bridges, ports and flows alone: for a switch whose L2 side
/// another owner configures (Neutron's OVS agent, through OVSDB and
/// OpenFlow). The instances' ports must be on the switch already. Floating
/// IPs `old` bound here and `new` does not lose their connections, as in
/// `update_host`; the number deleted is returned. `agent` as in
/// `update_host`. On error `cfg` is untouched.
pub fn update_routers(
    cfg: &mut SwitchConfig,
    old: &Topology,
    new: &Topology,
    host: &str,
    agent: &[HostRouter],
) -> Result<usize, TopologyError> {
    let routers = instances(new, host, agent)?;
    let fail = config_error(host);
    let mut next = cfg.clone();
    next.set_routers(routers);
    next.clone().build().map_err(&fail)?;
    let deleted = flush_unbound_floating_ips(cfg, old, new, host);
    *cfg = next;
    Ok(deleted)
}

/// Replaces the routers Neutron's L3 agent handed the switch (`old`) by
/// `new`, beside topology `t`'s, as one change. Floating IPs a router of
/// `old` bound and the same router in `new` does not (or no router of
/// that name) lose their connections in the router's zone, as the agent
/// deletes their conntrack state; the number deleted is returned. On
/// error `cfg` is untouched.
pub fn update_agent_routers(
    cfg: &mut SwitchConfig,
    t: &Topology,
    host: &str,
    old: &[HostRouter],
    new: &[HostRouter],
) -> Result<usize, TopologyError> {
    let routers = instances(t, host, new)?;
    let mut next = cfg.clone();
    next.set_routers(routers);
    next.clone().build().map_err(config_error(host))?;
    let mut deleted = 0;
    for r in old {
        let kept = new.iter().find(|n| n.name == r.name);
        for f in &r.floating_ips {
            if kept.is_some_and(|n| n.floating_ips.iter().any(|g| g.address == f.address)) {
                continue;
            }
            let zone = cfg.router_zone(&format!("qrouter-{}", r.name));
            deleted += cfg.conntrack().flush_addr(zone, f.address);
        }
    }
    *cfg = next;
    Ok(deleted)
}

/// The router instances of `host`: topology `t`'s routers there, then
/// `agent`'s; one name may not come from both.
fn instances(
    t: &Topology,
    host: &str,
    agent: &[HostRouter],
) -> Result<Vec<pipeline::router::RouterInstance>, TopologyError> {
    let mut all = l3::host_routers(t, host)?;
    all.extend(agent.iter().cloned());
    l3::compile_host_routers(host, &all)
}

/// Brings `next`'s bridges, ports and flows to `plan`. Bridges and ports
/// are removed only if `old_plan` (what the old topology put on this host)
/// had them; ports that stay keep their identity.
fn apply_plan(
    next: &mut SwitchConfig,
    plan: &HostPlan,
    old_plan: Option<&HostPlan>,
    now_ns: u64,
) -> Result<Vec<(String, Flow)>, ConfigError> {
    let mut shadowed = Vec::new();
    let managed_bridge = |name: &str| old_plan.is_some_and(|p| p.bridge(name).is_some());
    let managed_port = |bridge: &str, port: &str| {
        old_plan
            .and_then(|p| p.bridge(bridge))
            .is_some_and(|b| b.ports.iter().any(|p| p.name == port))
    };
    for name in next.bridge_names() {
        if plan.bridge(&name).is_none() && managed_bridge(&name) {
            next.del_bridge(&name)?;
        }
    }
    for b in &plan.bridges {
        if !next.bridge_names().contains(&b.name) {
            next.add_bridge(&b.name)?;
            next.add_local_port(&b.name)?;
        }
        for name in next.port_names_of(&b.name) {
            if !b.ports.iter().any(|p| p.name == name) && managed_port(&b.name, &name) {
                next.del_port(&name)?;
            }
        }
    }
    for b in &plan.bridges {
        for p in &b.ports {
            next.put_port(&b.name, p.clone())?;
        }
        let old = old_plan
            .and_then(|p| p.bridge(&b.name))
            .map_or(&[][..], |o| &o.flows[..]);
        for f in next.replace_owned_flows(&b.name, old, b.flows.clone(), now_ns)? {
            shadowed.push((b.name.clone(), f));
        }
    }
    Ok(shadowed)
}

/// Deletes, from `cfg`'s connection table, the connections of floating IPs
/// that `old` bound on `host` and `new` does not; returns how many.
fn flush_unbound_floating_ips(
    cfg: &SwitchConfig,
    old: &Topology,
    new: &Topology,
    host: &str,
) -> usize {
    let bound_here = |t: &Topology| -> Vec<(Ipv4Addr, String)> {
        t.floating_ips
            .iter()
            .filter_map(|f| {
                let port = t.port(f.port.as_ref()?)?;
                (port.host == host).then(|| (f.address, format!("qrouter-{}", f.router)))
            })
            .collect()
    };
    let now_bound = bound_here(new);
    let mut deleted = 0;
    for (addr, qrouter) in bound_here(old) {
        if !now_bound.iter().any(|(a, _)| *a == addr) {
            let zone = cfg.router_zone(&qrouter);
            deleted += cfg.conntrack().flush_addr(zone, addr);
        }
    }
    deleted
}
