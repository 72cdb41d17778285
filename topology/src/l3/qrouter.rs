//! The qrouter instance (spec §5): the distributed router's namespace on
//! one host. Its `qr-` interfaces carry each subnet's gateway address on
//! every host; traffic leaving the cloud goes to the SNAT host's `sg-` port
//! (source routing per subnet), or, for a floating IP bound here, through
//! the rfp/fpr link to this host's fip instance.

use super::build::{
    accept_unless_via, add_extra_routes, bridge_interface, host_prefix, nat_rule, route, RfpLink,
    ANY, FIP_EGRESS_TABLE,
};
use super::view::{HostFloatingIp, HostGateway, HostRouter};
use crate::model::Cidr;
use pipeline::router::{
    InstanceKind, Interface, Link, NatHook, NatRule, NatTarget, RouterInstance, Rule,
};

/// Compiles router `r`'s qrouter instance; `link` is its rfp/fpr link to
/// this host's fip instance, if it has one.
pub(super) fn compile(r: &HostRouter, link: Option<&RfpLink>) -> RouterInstance {
    let mut q = RouterInstance::new(&format!("qrouter-{}", r.name), InstanceKind::Qrouter);
    add_subnet_interfaces(r, &mut q);
    if let Some(gw) = &r.gateway {
        add_snat_redirects(r, &mut q);
        if let Some(link) = link {
            add_rfp_interface(link, gw, &mut q);
            add_floating_ips(link, &r.floating_ips, &mut q);
        }
    }
    add_extra_routes(&mut q, &r.routes);
    q
}

/// A `qr-` interface per subnet with the gateway address, and a permanent
/// neighbour entry for every port on the subnet, on any host (spec §5.6).
fn add_subnet_interfaces(r: &HostRouter, q: &mut RouterInstance) {
    for ri in &r.interfaces {
        let c = ri.prefix();
        q.add_interface(bridge_interface(
            &ri.device,
            ri.mac,
            (ri.gateway_ip, c.len),
            false,
        ));
        for n in &ri.neighbours {
            q.neighbours.insert((ri.device.clone(), n.ip), n.mac);
        }
    }
}

/// Per subnet: `ip rule from <qr addr>/<len> lookup <qr addr as integer>`
/// and that table's default route via the subnet's SNAT port (spec
/// §5.3/§5.4), with the SNAT port's MAC as a permanent neighbour.
fn add_snat_redirects(r: &HostRouter, q: &mut RouterInstance) {
    for ri in &r.interfaces {
        let Some(sg) = &ri.snat else {
            continue;
        };
        let idx = u32::from(ri.gateway_ip);
        q.add_rule(Rule {
            priority: idx,
            from: Some(Cidr {
                addr: idx,
                len: ri.prefix().len,
            }),
            iif: None,
            to: None,
            table: idx,
        });
        q.add_route(idx, route(ANY, Some(sg.ip), &ri.device));
        q.neighbours.insert((ri.device.clone(), sg.ip), sg.mac);
    }
}

/// The `rfp-` end of the link to the fip instance of the gateway's network.
fn add_rfp_interface(link: &RfpLink, gw: &HostGateway, q: &mut RouterInstance) {
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
fn add_floating_ips(link: &RfpLink, fips: &[HostFloatingIp], q: &mut RouterInstance) {
    let rfp_dev = &link.rfp_dev;
    for f in fips {
        let (fip, fixed, prio) = (f.address, f.fixed, f.rule_priority);
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
    for f in fips {
        let (fip, fixed) = (f.address, f.fixed);
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
