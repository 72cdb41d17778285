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
        field: e.span().map(|s| format!("bytes {}..{}", s.start, s.end)).unwrap_or_default(),
        message: e.message().to_string(),
    })?;
    validate(&t)?;
    Ok(t)
}
