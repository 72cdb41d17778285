//! The Neutron-style model and its compilation into each host's dataplane:
//! the role of Neutron's server (the model), OVS agent (bridges, ports,
//! flows) and L3 agent (router instances).
//!
//! `model` is what Neutron knows; `validate` rejects what Neutron would
//! reject, naming item and field; `compile` is a pure function from the
//! model to one host's bridges and flows.

pub mod compile;
pub mod l3;
pub mod model;
mod placement;
pub mod validate;

pub use compile::{compile_host, BridgePlan, HostPlan};
pub use model::Topology;
use std::net::Ipv4Addr;
pub use validate::{validate, TopologyError};

/// Parses and validates a topology file.
pub fn load_toml(text: &str) -> Result<Topology, TopologyError> {
    let t: Topology = toml::from_str(text).map_err(|e| TopologyError {
        item: "topology file".into(),
        field: e
            .span()
            .map(|s| format!("bytes {}..{}", s.start, s.end))
            .unwrap_or_default(),
        message: e.message().to_string(),
    })?;
    validate(&t)?;
    Ok(t)
}

/// Builds one host's switch configuration: its bridges, ports and flows
/// (the OVS agent's part) and its router instances (the L3 agent's part).
pub fn build_host(
    t: &Topology,
    host: &str,
    n_workers: usize,
) -> Result<pipeline::switch::SwitchConfig, TopologyError> {
    let plan = compile_host(t, host)?;
    let routers = l3::compile_instances(t, host)?;
    let mut cfg = pipeline::switch::SwitchConfig::new(n_workers);
    let fail = |e: pipeline::switch::ConfigError| TopologyError {
        item: format!("host {host}"),
        field: "bridges".into(),
        message: e.to_string(),
    };
    for b in &plan.bridges {
        cfg.add_bridge(&b.name).map_err(fail)?;
    }
    for b in &plan.bridges {
        for p in &b.ports {
            cfg.add_port(&b.name, p.clone()).map_err(fail)?;
        }
        cfg.add_flows(&b.name, b.flows.clone(), 0).map_err(fail)?;
    }
    cfg.set_routers(routers);
    // Compile once to check that ports, peers and router links fit together.
    cfg.clone().build().map_err(fail)?;
    Ok(cfg)
}

/// Brings an existing host configuration to what topology `new` compiles
/// to, in place and as one change: ports added/removed/reconfigured by name
/// (removed only if `old` had them: bridges and ports added by hand stay)
/// (the ones that stay keep their identity, so MAC tables, flow counters,
/// conntrack and neighbours survive), flow tables replaced (unchanged flows
/// keep their counters), router instances replaced. Floating IPs that `old`
/// bound on this host and `new` does not any more lose their connections in
/// the router's zone, as Neutron's agent deletes their conntrack state; the
/// number deleted is returned. On error `cfg` is untouched.
pub fn update_host(
    cfg: &mut pipeline::switch::SwitchConfig,
    old: &Topology,
    new: &Topology,
    host: &str,
    now_ns: u64,
) -> Result<usize, TopologyError> {
    let plan = compile_host(new, host)?;
    let routers = l3::compile_instances(new, host)?;
    let fail = |e: pipeline::switch::ConfigError| TopologyError {
        item: format!("host {host}"),
        field: "bridges".into(),
        message: e.to_string(),
    };
    // What the old topology put on this host: only that is removed when
    // the new one lacks it (bridges and ports added by hand stay).
    let old_plan = compile_host(old, host).ok();
    let managed_bridge = |name: &str| old_plan.as_ref().is_some_and(|p| p.bridge(name).is_some());
    let managed_port = |bridge: &str, port: &str| {
        old_plan
            .as_ref()
            .and_then(|p| p.bridge(bridge))
            .is_some_and(|b| b.ports.iter().any(|p| p.name == port))
    };
    let mut next = cfg.clone();
    for name in next.bridge_names() {
        if plan.bridge(&name).is_none() && managed_bridge(&name) {
            next.del_bridge(&name).map_err(fail)?;
        }
    }
    for b in &plan.bridges {
        if !next.bridge_names().contains(&b.name) {
            next.add_bridge(&b.name).map_err(fail)?;
        }
        for name in next.port_names_of(&b.name) {
            if !b.ports.iter().any(|p| p.name == name) && managed_port(&b.name, &name) {
                next.del_port(&name).map_err(fail)?;
            }
        }
    }
    for b in &plan.bridges {
        for p in &b.ports {
            match next
                .port_config(&p.name)
                .map(|(br, c)| (br.to_string(), c.clone()))
            {
                Some((br, c)) if br == b.name && c.ofport == p.ofport => {
                    if c != *p {
                        let want = p.clone();
                        next.set_port(&p.name, |c| *c = want).map_err(fail)?;
                    }
                }
                Some(_) => {
                    next.del_port(&p.name).map_err(fail)?;
                    next.add_port(&b.name, p.clone()).map_err(fail)?;
                }
                None => {
                    next.add_port(&b.name, p.clone()).map_err(fail)?;
                }
            }
        }
        next.replace_flows(&b.name, b.flows.clone(), now_ns)
            .map_err(fail)?;
    }
    next.set_routers(routers);
    next.clone().build().map_err(fail)?;
    // Floating IPs unbound from this host: delete their connections.
    let bound_here = |t: &Topology| -> Vec<(Ipv4Addr, String)> {
        t.floating_ips
            .iter()
            .filter_map(|f| {
                let port = t.ports.iter().find(|p| Some(&p.name) == f.port.as_ref())?;
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
    *cfg = next;
    Ok(deleted)
}
