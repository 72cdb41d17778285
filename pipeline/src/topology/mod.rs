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
pub mod validate;

pub use compile::{compile_host, BridgePlan, HostPlan};
pub use model::Topology;
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
) -> Result<crate::switch::SwitchConfig, TopologyError> {
    let plan = compile_host(t, host)?;
    let routers = l3::compile_instances(t, host)?;
    let mut cfg = crate::switch::SwitchConfig::new(n_workers);
    let fail = |e: crate::switch::ConfigError| TopologyError {
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
