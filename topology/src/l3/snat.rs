//! The snat instance (spec §7): a router's central SNAT namespace on its
//! SNAT host. Its `sg-` ports receive what the qrouters redirect from each
//! subnet; its `qg-` gateway port translates it to the gateway address,
//! marks what arrives from outside, and routes out via the external
//! network's gateway.

use super::build::{
    accept_unless_via, add_extra_routes, bridge_interface, host_prefix, nat_rule, route, ANY,
};
use super::view::{HostGateway, HostRouter};
use pipeline::router::{InstanceKind, NatHook, NatRule, NatTarget, RouterInstance, TABLE_MAIN};

/// Compiles router `r`'s snat instance, whose gateway is `gw`.
pub(super) fn compile(r: &HostRouter, gw: &HostGateway) -> RouterInstance {
    let (gw_ip, ext_cidr) = (gw.gateway_ip, gw.prefix());
    let mut s = RouterInstance::new(&format!("snat-{}", r.name), InstanceKind::Snat);
    for ri in &r.interfaces {
        let Some(sg) = &ri.snat else {
            continue;
        };
        s.add_interface(bridge_interface(
            &sg.device,
            sg.mac,
            (sg.ip, ri.prefix().len),
            false,
        ));
    }
    s.add_interface(bridge_interface(
        &gw.device,
        gw.mac,
        (gw.ip, ext_cidr.len),
        false,
    ));
    s.add_route(TABLE_MAIN, route(ANY, Some(gw_ip), &gw.device));
    if !ext_cidr.contains(u32::from(gw_ip)) {
        s.add_route(TABLE_MAIN, route(host_prefix(gw_ip), None, &gw.device));
    }
    s.mark_external.push(gw.device.clone());
    add_snat_rules(gw, &mut s);
    add_extra_routes(&mut s, &r.routes);
    s
}

/// The agent's nat rules for `qg-` (spec §7.3): nothing that does not cross
/// it is translated, what leaves by it takes the gateway address (unless
/// SNAT is disabled), and DNATed connections not from outside do too.
fn add_snat_rules(gw: &HostGateway, s: &mut RouterInstance) {
    let qg = &gw.device;
    s.nat.push(accept_unless_via(qg));
    if gw.enable_snat {
        s.nat.push(NatRule {
            oif: Some(qg.clone()),
            ..nat_rule(
                NatHook::Postrouting,
                NatTarget::Snat(gw.ip),
                format!(
                    "-A neutron-l3-agent-snat -o {qg} -j SNAT --to-source {}",
                    gw.ip
                ),
            )
        });
    }
    s.nat.push(NatRule {
        only_dnat: true,
        not_marked_external: true,
        ..nat_rule(
            NatHook::Postrouting,
            NatTarget::Snat(gw.ip),
            format!("-A neutron-l3-agent-snat -m mark ! --mark 0x2/0xffff -m conntrack --ctstate DNAT -j SNAT --to-source {}", gw.ip),
        )
    });
}
