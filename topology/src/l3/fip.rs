//! The fip instance (spec §6): one per external network with a router
//! gateway on the host. Its `fg-` port answers ARP for the floating IPs
//! bound here (proxy ARP) and routes them over each router's fpr/rfp link;
//! what comes back from a router leaves by the external gateway.

use super::build::{bridge_interface, host_prefix, route, RfpLink, ANY};
use super::view::HostRouter;
use pipeline::router::{InstanceKind, Interface, Link, RouterInstance, Rule, TABLE_MAIN};
use std::net::Ipv4Addr;

/// Compiles the host's fip instance for external network `net`, linked to
/// each of `routers` (those with a gateway on `net`, and their links). The
/// `fg-` port and the external subnet are the routers' (all the same).
pub(super) fn compile(net: &str, routers: &[(&HostRouter, &RfpLink)]) -> RouterInstance {
    let mut f = RouterInstance::new(&format!("fip-{net}"), InstanceKind::Fip);
    let Some((gw, fg)) = routers
        .iter()
        .find_map(|(r, _)| Some((r.gateway.as_ref()?, r.fip_gateway.as_ref()?)))
    else {
        return f;
    };
    let (gw_ip, ext_cidr) = (gw.gateway_ip, gw.prefix());
    f.add_interface(bridge_interface(
        &fg.device,
        fg.mac,
        (fg.ip, ext_cidr.len),
        true,
    ));
    if !ext_cidr.contains(u32::from(gw_ip)) {
        f.add_route(TABLE_MAIN, route(host_prefix(gw_ip), None, &fg.device));
    }
    for (r, link) in routers {
        add_router_link(r, link, &fg.device, gw_ip, &mut f);
    }
    f
}

/// Router `r`'s `fpr-` end (spec §6.3): `ip rule iif fpr-… lookup <fpr as integer>`
/// whose default route leaves by `fg` via the external gateway `gw_ip`,
/// and a main-table route to each floating IP of `r` bound here via `rfp-`.
fn add_router_link(
    r: &HostRouter,
    link: &RfpLink,
    fg: &str,
    gw_ip: Ipv4Addr,
    f: &mut RouterInstance,
) {
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
    f.add_route(tbl, route(ANY, Some(gw_ip), fg));
    for fip in &r.floating_ips {
        f.add_route(
            TABLE_MAIN,
            route(host_prefix(fip.address), Some(link.rfp), &link.fpr_dev),
        );
    }
}
