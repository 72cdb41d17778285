//! The fip instance (spec §6): one per external network with a router
//! gateway on the host. Its `fg-` port answers ARP for the floating IPs
//! bound here (proxy ARP) and routes them over each router's fpr/rfp link;
//! what comes back from a router leaves by the external gateway.

use super::build::{
    bridge_interface, external_gateway, fips_on_host, host_prefix, route, RfpLink, ANY,
};
use crate::model::{FipGateway, Router, Topology};
use crate::validate::TopologyError;
use pipeline::router::{InstanceKind, Interface, Link, RouterInstance, Rule, TABLE_MAIN};
use std::net::Ipv4Addr;

/// Compiles `host`'s fip instance for external network `net`, whose `fg-`
/// port is `fg`, linked to each of `routers` with a gateway on `net`.
pub(super) fn compile(
    t: &Topology,
    host: &str,
    net: &str,
    fg: &FipGateway,
    routers: &[&Router],
) -> Result<RouterInstance, TopologyError> {
    let (gw_ip, ext_cidr) = external_gateway(t, net)?;
    let mut f = RouterInstance::new(&format!("fip-{net}"), InstanceKind::Fip);
    f.add_interface(bridge_interface(
        &fg.device,
        fg.mac,
        (fg.ip, ext_cidr.len),
        true,
    ));
    if !ext_cidr.contains(u32::from(gw_ip)) {
        f.add_route(TABLE_MAIN, route(host_prefix(gw_ip), None, &fg.device));
    }
    for r in routers
        .iter()
        .filter(|r| r.gateway.as_ref().is_some_and(|g| g.network == net))
    {
        add_router_link(t, host, r, fg, gw_ip, &mut f);
    }
    Ok(f)
}

/// Router `r`'s `fpr-` end (spec §6.3): `ip rule iif fpr-… lookup <fpr as integer>`
/// whose default route leaves by `fg` via the external gateway `gw_ip`,
/// and a main-table route to each floating IP of `r` bound here via `rfp-`.
fn add_router_link(
    t: &Topology,
    host: &str,
    r: &Router,
    fg: &FipGateway,
    gw_ip: Ipv4Addr,
    f: &mut RouterInstance,
) {
    let link = RfpLink::new(t, r, host);
    f.add_interface(Interface {
        name: link.fpr_dev.clone(),
        mac: link.fpr_mac,
        addrs: vec![(link.fpr, 31)],
        link: Link::Veth {
            instance: format!("qrouter-{}", r.name),
            iface: link.rfp_dev.clone(),
        },
        proxy_arp: false,
    });
    f.neighbours
        .insert((link.fpr_dev.clone(), link.rfp), link.rfp_mac);
    let tbl = u32::from(link.fpr);
    f.add_rule(Rule {
        priority: tbl,
        from: None,
        iif: Some(link.fpr_dev.clone()),
        to: None,
        table: tbl,
    });
    f.add_route(tbl, route(ANY, Some(gw_ip), &fg.device));
    for (fip, _, _) in fips_on_host(t, r, host) {
        f.add_route(
            TABLE_MAIN,
            route(host_prefix(fip), Some(link.rfp), &link.fpr_dev),
        );
    }
}
