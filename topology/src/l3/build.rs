//! What every router instance is built from: the numbers the L3 agent
//! derives, the rfp/fpr link of a router and its host, and constructors
//! of interfaces, routes and NAT rules.

use super::view::HostRouter;
use crate::model::{Cidr, ExtraRoute, Router, Topology, LINK_POOL};
use pipeline::key::Mac;
use pipeline::router::TABLE_MAIN;
use pipeline::router::{Interface, Link, NatHook, NatRule, NatTarget, Route, RouterInstance};
use std::net::Ipv4Addr;

/// The table of the qrouter's FIP egress route (`ip rule ... lookup 16`).
pub const FIP_EGRESS_TABLE: u32 = 16;
/// First priority of the FIP rule pool (32768–72767).
pub const FIP_RULE_BASE: u32 = 32768;
/// `0.0.0.0/0`: default routes, and the prefix of a subnet whose CIDR
/// does not parse.
pub(super) const ANY: Cidr = Cidr { addr: 0, len: 0 };

/// Floating IPs hosted on `host` for router `r`: (fip, fixed, rule priority).
pub fn fips_on_host(t: &Topology, r: &Router, host: &str) -> Vec<(Ipv4Addr, Ipv4Addr, u32)> {
    let mut used: Vec<u32> = t
        .floating_ips
        .iter()
        .filter_map(|f| f.rule_priority)
        .collect();
    let mut out = Vec::new();
    for f in t.floating_ips.iter().filter(|f| f.router == r.name) {
        let Some(port) = f.port.as_ref().and_then(|p| t.port(p)) else {
            continue;
        };
        if port.host != host {
            continue;
        }
        let prio = f.rule_priority.unwrap_or_else(|| {
            let p = (FIP_RULE_BASE..)
                .find(|p| !used.contains(p))
                .unwrap_or(FIP_RULE_BASE);
            used.push(p);
            p
        });
        out.push((f.address, port.ip, prio));
    }
    out
}

/// The veth pair between a router's qrouter instance (`rfp-`, the even
/// address of a /31) and the fip instance (`fpr-`, the odd one) on a host.
pub(super) struct RfpLink {
    pub(super) rfp: Ipv4Addr,
    pub(super) fpr: Ipv4Addr,
    pub(super) rfp_dev: String,
    pub(super) fpr_dev: String,
    pub(super) rfp_mac: Mac,
    pub(super) fpr_mac: Mac,
}

impl RfpLink {
    fn new(host: &str, suffix: &str, rfp: Ipv4Addr) -> RfpLink {
        let (rfp_dev, fpr_dev) = (format!("rfp-{suffix}"), format!("fpr-{suffix}"));
        RfpLink {
            rfp,
            fpr: Ipv4Addr::from(u32::from(rfp) + 1),
            rfp_mac: veth_mac(&rfp_dev, host),
            fpr_mac: veth_mac(&fpr_dev, host),
            rfp_dev,
            fpr_dev,
        }
    }

    /// The link of each router that has one (a gateway and a FIP gateway
    /// port here): the agent's address, or the lowest /31 of the pool no
    /// other router of the host holds, in router order.
    pub(super) fn allocate(host: &str, routers: &[HostRouter]) -> Vec<Option<RfpLink>> {
        let mut taken: Vec<u32> = routers
            .iter()
            .filter_map(|r| r.rfp_address.map(u32::from))
            .collect();
        routers
            .iter()
            .map(|r| {
                if r.gateway.is_none() || r.fip_gateway.is_none() {
                    return None;
                }
                let rfp = r.rfp_address.unwrap_or_else(|| {
                    let mut addr = LINK_POOL.network();
                    while taken.contains(&addr) && LINK_POOL.contains(addr + 2) {
                        addr += 2;
                    }
                    taken.push(addr);
                    Ipv4Addr::from(addr)
                });
                Some(RfpLink::new(host, &r.link_suffix, rfp))
            })
            .collect()
    }
}

/// A stable locally administered MAC for a veth end (the kernel picks a
/// random one; the dataplane needs the same one on every compile).
pub(super) fn veth_mac(name: &str, host: &str) -> Mac {
    Mac::stable_local(&[name.as_bytes(), &[0], host.as_bytes()].concat())
}

/// The rfp (even) address of `router`'s link on `host`.
pub(super) fn rfp_addr(t: &Topology, r: &Router, host: &str) -> Ipv4Addr {
    if let Some(a) = r.rfp_links.get(host) {
        return *a;
    }
    // Lowest free /31 of the pool that no pinned link uses, stable per (router, host) order.
    let pinned: Vec<u32> = t
        .routers
        .iter()
        .flat_map(|x| x.rfp_links.values().map(|a| u32::from(*a)))
        .collect();
    let mut index = 0u32;
    for x in &t.routers {
        for h in &t.hosts {
            if x.rfp_links.contains_key(&h.name) {
                continue;
            }
            if x.name == r.name && h.name == host {
                let mut n = 0u32;
                let mut addr = LINK_POOL.network();
                loop {
                    if !pinned.contains(&addr) {
                        if n == index {
                            return Ipv4Addr::from(addr);
                        }
                        n += 1;
                    }
                    addr += 2;
                }
            }
            index += 1;
        }
    }
    Ipv4Addr::from(LINK_POOL.network())
}

pub(super) fn host_prefix(ip: Ipv4Addr) -> Cidr {
    Cidr {
        addr: u32::from(ip),
        len: 32,
    }
}

/// `DST [via VIA] dev DEV`.
pub(super) fn route(dst: Cidr, via: Option<Ipv4Addr>, dev: &str) -> Route {
    Route {
        dst,
        via,
        dev: dev.to_string(),
        src: None,
    }
}

/// An interface plugged into a bridge as an internal port of its name.
pub(super) fn bridge_interface(
    name: &str,
    mac: Mac,
    addr: (Ipv4Addr, u8),
    proxy_arp: bool,
) -> Interface {
    Interface {
        name: name.to_string(),
        mac,
        addrs: vec![addr],
        link: Link::Bridge,
        proxy_arp,
    }
}

/// A NAT rule in `hook` with no selectors; callers set the ones they use.
pub(super) fn nat_rule(hook: NatHook, target: NatTarget, text: String) -> NatRule {
    NatRule {
        hook,
        src: None,
        dst: None,
        iif: None,
        iif_not: false,
        oif: None,
        oif_not: false,
        not_dnat: false,
        only_dnat: false,
        not_marked_external: false,
        target,
        text,
    }
}

/// `! -i DEV ! -o DEV -m conntrack ! --ctstate DNAT -j ACCEPT`: traffic
/// that neither enters nor leaves by `dev` and was not DNATed is not NATed.
pub(super) fn accept_unless_via(dev: &str) -> NatRule {
    NatRule {
        iif: Some(dev.to_string()),
        iif_not: true,
        oif: Some(dev.to_string()),
        oif_not: true,
        not_dnat: true,
        ..nat_rule(
            NatHook::Postrouting,
            NatTarget::Accept,
            format!("-A neutron-l3-agent-POSTROUTING ! -i {dev} ! -o {dev} -m conntrack ! --ctstate DNAT -j ACCEPT"),
        )
    }
}

/// The router's extra routes, each in the main table via the interface
/// whose subnet holds its next hop (skipped when none does).
pub(super) fn add_extra_routes(inst: &mut RouterInstance, routes: &[ExtraRoute]) {
    for extra in routes {
        let Some(dst) = Cidr::parse(&extra.destination) else {
            continue;
        };
        let dev = inst
            .interfaces
            .iter()
            .find(|i| {
                i.addrs.iter().any(|(a, l)| {
                    Cidr {
                        addr: u32::from(*a),
                        len: *l,
                    }
                    .contains(u32::from(extra.nexthop))
                })
            })
            .map(|i| i.name.clone());
        if let Some(dev) = dev {
            let dst = Cidr {
                addr: dst.network(),
                len: dst.len,
            };
            inst.add_route(TABLE_MAIN, route(dst, Some(extra.nexthop), &dev));
        }
    }
}
