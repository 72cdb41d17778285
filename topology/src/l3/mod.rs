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

mod fip;
mod qrouter;
mod snat;

use super::model::{Cidr, ExtraRoute, Router, Topology};
use super::placement::{gateway_networks, routers_on_host};
use super::validate::{err, TopologyError};
use pipeline::key::Mac;
use pipeline::router::TABLE_MAIN;
use pipeline::router::{Interface, Link, NatHook, NatRule, NatTarget, Route, RouterInstance};
use std::net::Ipv4Addr;

/// The table of the qrouter's FIP egress route (`ip rule ... lookup 16`).
pub const FIP_EGRESS_TABLE: u32 = 16;
/// First priority of the FIP rule pool (32768–72767).
pub const FIP_RULE_BASE: u32 = 32768;
/// The rfp/fpr link-local pool (169.254.64.0/18).
pub(crate) const LINK_POOL: Cidr = Cidr {
    addr: 0xa9fe_4000,
    len: 18,
};
/// `0.0.0.0/0`: default routes, and the prefix of a subnet whose CIDR
/// does not parse.
const ANY: Cidr = Cidr { addr: 0, len: 0 };

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
struct RfpLink {
    rfp: Ipv4Addr,
    fpr: Ipv4Addr,
    rfp_dev: String,
    fpr_dev: String,
    rfp_mac: Mac,
    fpr_mac: Mac,
}

impl RfpLink {
    fn new(t: &Topology, r: &Router, host: &str) -> RfpLink {
        let sfx = r
            .device_suffix
            .clone()
            .unwrap_or_else(|| r.name.to_lowercase());
        let rfp = rfp_addr(t, r, host);
        let (rfp_dev, fpr_dev) = (format!("rfp-{sfx}"), format!("fpr-{sfx}"));
        RfpLink {
            rfp,
            fpr: Ipv4Addr::from(u32::from(rfp) + 1),
            rfp_mac: veth_mac(&rfp_dev, host),
            fpr_mac: veth_mac(&fpr_dev, host),
            rfp_dev,
            fpr_dev,
        }
    }
}

/// A stable locally administered MAC for a veth end (the kernel picks a
/// random one; the dataplane needs the same one on every compile).
fn veth_mac(name: &str, host: &str) -> Mac {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes().chain([0]).chain(host.bytes()) {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut m = Mac::from_u64(h & 0xffff_ffff_ffff).0;
    m[0] = (m[0] & 0xfc) | 0x02;
    Mac(m)
}

/// The rfp (even) address of `router`'s link on `host`.
fn rfp_addr(t: &Topology, r: &Router, host: &str) -> Ipv4Addr {
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

/// The prefix of subnet `subnet` (`ANY` if unknown or unparsable).
fn subnet_prefix(t: &Topology, subnet: &str) -> Cidr {
    t.subnet(subnet).and_then(|s| s.prefix()).unwrap_or(ANY)
}

/// An external network's gateway address and prefix (its first subnet's).
fn external_gateway(t: &Topology, net: &str) -> Result<(Ipv4Addr, Cidr), TopologyError> {
    let sub = t.subnets.iter().find(|s| s.network == net).ok_or_else(|| {
        err(
            format!("network {net}"),
            "subnet",
            "external network has no subnet",
        )
    })?;
    Ok((sub.gateway_ip, sub.prefix().unwrap_or(ANY)))
}

fn host_prefix(ip: Ipv4Addr) -> Cidr {
    Cidr {
        addr: u32::from(ip),
        len: 32,
    }
}

/// `DST [via VIA] dev DEV`.
fn route(dst: Cidr, via: Option<Ipv4Addr>, dev: &str) -> Route {
    Route {
        dst,
        via,
        dev: dev.to_string(),
        src: None,
    }
}

/// An interface plugged into a bridge as an internal port of its name.
fn bridge_interface(name: &str, mac: Mac, addr: (Ipv4Addr, u8), proxy_arp: bool) -> Interface {
    Interface {
        name: name.to_string(),
        mac,
        addrs: vec![addr],
        link: Link::Bridge,
        proxy_arp,
    }
}

/// A NAT rule in `hook` with no selectors; callers set the ones they use.
fn nat_rule(hook: NatHook, target: NatTarget, text: String) -> NatRule {
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
fn accept_unless_via(dev: &str) -> NatRule {
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
fn add_extra_routes(inst: &mut RouterInstance, routes: &[ExtraRoute]) {
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
