//! Per-host compilation of router instances: the job Neutron's L3 agent
//! does (spec §5–§7): one qrouter instance per router present on the host
//! (`qrouter`), one fip instance per external network with a router
//! gateway here (`fip`), and the snat instance on the router's SNAT host
//! (`snat`).
//!
//! Derived numbers follow the agent: SNAT-redirect rule priority and table
//! = the qr address as a 32-bit integer; FIP rules from 32768 upward; the
//! fip namespace's per-router table = the fpr address as an integer.
//! Host-local values (rfp/fpr links, FIP rule priorities) are pinned by the
//! topology or allocated here, the same way on every compile.

mod build;
mod fip;
mod qrouter;
mod snat;

pub use build::{fips_on_host, FIP_EGRESS_TABLE, FIP_RULE_BASE};

use super::model::Topology;
use super::placement::{gateway_networks, routers_on_host};
use super::validate::TopologyError;
use pipeline::router::RouterInstance;

/// Compiles every router instance of `host`: qrouters, then fip instances,
/// then snat instances.
pub fn compile_instances(t: &Topology, host: &str) -> Result<Vec<RouterInstance>, TopologyError> {
    let routers = routers_on_host(t, host);
    let mut out = Vec::new();
    for r in &routers {
        out.push(qrouter::compile(t, host, r)?);
    }
    for net in gateway_networks(&routers) {
        let Some(fg) = t.fip_gateway(host, net) else {
            continue;
        };
        out.push(fip::compile(t, host, net, fg, &routers)?);
    }
    for r in routers
        .iter()
        .filter(|r| r.snat_host.as_deref() == Some(host))
    {
        let Some(gw) = &r.gateway else { continue };
        out.push(snat::compile(t, r, gw)?);
    }
    Ok(out)
}
