//! The spec's example (neutron-dvr-dataplane.md §0.3), in one place for
//! every tool and test here: its topology (the file
//! `config/topologies/spec-example.toml`, compiled in) and the part of
//! its world that Neutron's model does not hold: the upstream router's
//! MAC and the external host behind it.
//!
//! Whatever Neutron knows (gateway addresses and MACs, DVR MACs, ports,
//! floating IPs, the upstream router's address on the external network)
//! is read from the topology, never repeated as a constant.
//!
//! May call: `topology` (to parse the file). Every module of devtools may
//! call it.
#![deny(unsafe_code)]

use pipeline::key::Mac;
use std::net::Ipv4Addr;
use topology::model::Subnet;
use topology::{Topology, TopologyError};

/// The spec's example topology, as `config/topologies/spec-example.toml`.
pub const TOPOLOGY: &str = include_str!("../../config/topologies/spec-example.toml");

/// The upstream router's MAC on the external network (§0.3).
pub const UPSTREAM_MAC: Mac = Mac::from_u64(0x0000_5e00_5301);

/// The external host behind the upstream router (§0.3).
pub const EXTERNAL_HOST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

/// The spec's example topology, parsed and validated.
pub fn topology() -> Result<Topology, TopologyError> {
    topology::load_toml(TOPOLOGY)
}

/// The subnet of `t`'s external network, whose gateway (`gateway_ip`) is
/// the upstream router.
pub fn external_subnet(t: &Topology) -> Option<&Subnet> {
    t.subnets
        .iter()
        .find(|s| t.networks.iter().any(|n| n.name == s.network && n.external))
}
