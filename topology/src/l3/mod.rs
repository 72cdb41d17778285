//! Per-host compilation of router instances: the job Neutron's L3 agent
//! does (spec §5–§7): one qrouter instance per router present on the host
//! (`qrouter`), one fip instance per external network with a router
//! gateway here (`fip`), and the snat instance on the router's SNAT host
//! (`snat`).
//!
//! Instances are compiled from what the L3 agent on the host knows
//! (`view`), whoever supplies it: a topology document (`of_topology`) or
//! Neutron's L3 agent itself through the control socket.
//!
//! Derived numbers follow the agent: SNAT-redirect rule priority and table
//! = the qr address as a 32-bit integer; FIP rules from 32768 upward; the
//! fip namespace's per-router table = the fpr address as an integer.
//! Host-local values (rfp/fpr links, FIP rule priorities) are the agent's
//! (pinned in the view) or allocated here, the same way on every compile.

mod build;
mod fip;
mod of_topology;
mod qrouter;
mod snat;
pub mod view;

pub use build::{fips_on_host, FIP_EGRESS_TABLE, FIP_RULE_BASE};
pub use of_topology::host_routers;
pub use view::{validate_host_routers, HostRouter};

use super::model::Topology;
use super::validate::TopologyError;
use build::RfpLink;
use pipeline::router::RouterInstance;

/// Compiles every router instance of `host` in topology `t`.
pub fn compile_instances(t: &Topology, host: &str) -> Result<Vec<RouterInstance>, TopologyError> {
    compile_host_routers(host, &host_routers(t, host)?)
}

/// Compiles the instances of `routers`, all present on `host`: qrouters,
/// then fip instances (one per external network with a FIP gateway port,
/// in order of first appearance), then snat instances.
pub fn compile_host_routers(
    host: &str,
    routers: &[HostRouter],
) -> Result<Vec<RouterInstance>, TopologyError> {
    validate_host_routers(routers)?;
    let links = RfpLink::allocate(host, routers);
    let mut out = Vec::new();
    for (r, link) in routers.iter().zip(&links) {
        out.push(qrouter::compile(r, link.as_ref()));
    }
    let mut networks: Vec<&str> = Vec::new();
    for r in routers {
        if let (Some(g), Some(_)) = (&r.gateway, &r.fip_gateway) {
            if !networks.contains(&g.network.as_str()) {
                networks.push(&g.network);
            }
        }
    }
    for net in networks {
        let linked: Vec<(&HostRouter, &RfpLink)> = routers
            .iter()
            .zip(&links)
            .filter(|(r, _)| r.gateway.as_ref().is_some_and(|g| g.network == net))
            .filter_map(|(r, l)| Some((r, l.as_ref()?)))
            .collect();
        out.push(fip::compile(net, &linked));
    }
    for r in routers.iter().filter(|r| r.snat_here) {
        if let Some(gw) = &r.gateway {
            out.push(snat::compile(r, gw));
        }
    }
    Ok(out)
}
