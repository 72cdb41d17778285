//! The qrouter instance (spec §5): the distributed router's namespace on
//! one host. Its `qr-` interfaces carry each subnet's gateway address on
//! every host; traffic leaving the cloud goes to the SNAT host's `sg-` port
//! (source routing per subnet), or, for a floating IP bound here, through
//! the rfp/fpr link to this host's fip instance.

use super::build::{
    accept_unless_via, add_extra_routes, bridge_interface, fips_on_host, host_prefix, nat_rule,
    route, subnet_prefix, RfpLink, ANY, FIP_EGRESS_TABLE,
};
use crate::model::{Cidr, Router, RouterGateway, Topology};
use crate::validate::{err, TopologyError};
use pipeline::router::{
    InstanceKind, Interface, Link, NatHook, NatRule, NatTarget, RouterInstance, Rule,
};
use std::net::Ipv4Addr;

/// Compiles router `r`'s qrouter instance on `host`.
pub(super) fn compile(
    t: &Topology,
    host: &str,
    r: &Router,
) -> Result<RouterInstance, TopologyError> {
    let mut q = RouterInstance::new(&format!("qrouter-{}", r.name), InstanceKind::Qrouter);
    add_subnet_interfaces(t, r, &mut q)?;
    if let Some(gw) = &r.gateway {
        add_snat_redirects(t, r, &mut q);
        if t.fip_gateway(host, &gw.network).is_some() {
            let link = RfpLink::new(t, r, host);
            add_rfp_interface(&link, gw, &mut q);
            add_floating_ips(&link, &fips_on_host(t, r, host), &mut q);
        }
    }
    add_extra_routes(&mut q, &r.routes);
    Ok(q)
}

/// A `qr-` interface per subnet with the gateway address, and a permanent
/// neighbour entry for every port on the subnet, on any host (spec §5.6).
fn add_subnet_interfaces(
    t: &Topology,
    r: &Router,
    q: &mut RouterInstance,
) -> Result<(), TopologyError> {
    for ri in &r.interfaces {
        let sub = t.subnet(&ri.subnet).ok_or_else(|| {
            err(
                format!("router {}", r.name),
                "interfaces",
                format!("unknown subnet `{}`", ri.subnet),
            )
        })?;
        let c = sub.prefix().unwrap_or(ANY);
        q.add_interface(bridge_interface(
            &ri.device,
            ri.mac,
            (sub.gateway_ip, c.len),
            false,
        ));
        for p in t
            .ports
            .iter()
            .filter(|p| p.network == sub.network && c.contains(u32::from(p.ip)))
        {
            q.neighbours.insert((ri.device.clone(), p.ip), p.mac);
        }
    }
    Ok(())
}

/// Per subnet: `ip rule from <qr addr>/<len> lookup <qr addr as integer>`
/// and that table's default route via the subnet's SNAT port (spec
/// §5.3/§5.4), with the SNAT port's MAC as a permanent neighbour.
fn add_snat_redirects(t: &Topology, r: &Router, q: &mut RouterInstance) {
    for ri in &r.interfaces {
        let (Some(sg_ip), Some(sg_mac)) = (ri.snat_ip, ri.snat_mac) else {
            continue;
        };
        let Some(sub) = t.subnet(&ri.subnet) else {
            continue;
        };
        let c = subnet_prefix(t, &ri.subnet);
        let idx = u32::from(sub.gateway_ip);
        q.add_rule(Rule {
            priority: idx,
            from: Some(Cidr {
                addr: idx,
                len: c.len,
            }),
            iif: None,
            to: None,
            table: idx,
        });
        q.add_route(idx, route(ANY, Some(sg_ip), &ri.device));
        q.neighbours.insert((ri.device.clone(), sg_ip), sg_mac);
    }
}

/// The `rfp-` end of the link to the fip instance of the gateway's network.
fn add_rfp_interface(link: &RfpLink, gw: &RouterGateway, q: &mut RouterInstance) {
    q.add_interface(Interface {
        name: link.rfp_dev.clone(),
        mac: link.rfp_mac,
        addrs: vec![(link.rfp, 31)],
        link: Link::Veth {
            instance: format!("fip-{}", gw.network),
            iface: link.fpr_dev.clone(),
        },
        proxy_arp: false,
    });
    q.neighbours
        .insert((link.rfp_dev.clone(), link.fpr), link.fpr_mac);
}

/// Floating IPs bound here (spec §5.3–§5.5): a rule sending each fixed address
/// to the FIP egress table, DNAT of the floating address arriving on the
/// rfp link, and SNAT of the fixed address to it; the egress table's
/// default route via the fpr end.
fn add_floating_ips(link: &RfpLink, fips: &[(Ipv4Addr, Ipv4Addr, u32)], q: &mut RouterInstance) {
    let rfp_dev = &link.rfp_dev;
    for &(fip, fixed, prio) in fips {
        q.add_rule(Rule {
            priority: prio,
            from: Some(host_prefix(fixed)),
            iif: None,
            to: None,
            table: FIP_EGRESS_TABLE,
        });
        q.nat.push(NatRule {
            dst: Some(host_prefix(fip)),
            iif: Some(rfp_dev.clone()),
            ..nat_rule(
                NatHook::Prerouting,
                NatTarget::Dnat(fixed),
                format!("-A neutron-l3-agent-PREROUTING -d {fip}/32 -i {rfp_dev} -j DNAT --to-destination {fixed}"),
            )
        });
    }
    if fips.is_empty() {
        return;
    }
    q.add_route(FIP_EGRESS_TABLE, route(ANY, Some(link.fpr), rfp_dev));
    q.nat.push(accept_unless_via(rfp_dev));
    for &(fip, fixed, _) in fips {
        q.nat.push(NatRule {
            src: Some(host_prefix(fixed)),
            ..nat_rule(
                NatHook::Postrouting,
                NatTarget::Snat(fip),
                format!("-A neutron-l3-agent-float-snat -s {fixed}/32 -j SNAT --to-source {fip}"),
            )
        });
    }
}
