//! What is present on a host, as both agents decide it: the routers
//! instantiated there and the external networks their gateways use. The OVS
//! agent plugs their ports and programs their flows (`compile`); the L3
//! agent builds their namespaces (`l3`).

use super::model::{Router, Topology};
use std::net::Ipv4Addr;

/// Routers instantiated on `host`: those with a DVR-serviced port on one of
/// their subnets here, and those whose SNAT host this is.
pub fn routers_on_host<'a>(t: &'a Topology, host: &str) -> Vec<&'a Router> {
    t.routers
        .iter()
        .filter(|r| {
            r.snat_host.as_deref() == Some(host)
                || t.ports.iter().filter(|p| p.host == host).any(|p| {
                    r.interfaces
                        .iter()
                        .any(|ri| subnet_of_port(t, &ri.subnet, p.ip, &p.network))
                })
        })
        .collect()
}

/// Whether a port with address `ip` on `network` is on subnet `subnet`.
pub(crate) fn subnet_of_port(t: &Topology, subnet: &str, ip: Ipv4Addr, network: &str) -> bool {
    t.subnets.iter().any(|s| {
        s.name == subnet
            && s.network == network
            && s.prefix().is_some_and(|c| c.contains(u32::from(ip)))
    })
}

/// The external networks of `routers`' gateways, in order of first
/// appearance: each gets a `fg-` port and a fip instance on the host.
pub(crate) fn gateway_networks<'a>(routers: &[&'a Router]) -> Vec<&'a str> {
    let mut nets: Vec<&str> = Vec::new();
    for r in routers {
        if let Some(gw) = &r.gateway {
            if !nets.contains(&gw.network.as_str()) {
                nets.push(&gw.network);
            }
        }
    }
    nets
}
