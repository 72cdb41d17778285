//! Per-host compilation of router instances: the job Neutron's L3 agent
//! does (spec §5–§7): one qrouter instance per router present on the host,
//! one fip instance per external network with a router gateway here, and the
//! snat instance on the router's SNAT host.
//!
//! Derived numbers follow the agent: SNAT-redirect rule priority and table
//! = the qr address as a 32-bit integer; FIP rules from 32768 upward; the
//! fip namespace's per-router table = the fpr address as an integer.

use super::compile::routers_on_host;
use super::model::{Cidr, Router, Topology};
use super::validate::{err, TopologyError};
use pipeline::key::Mac;
use pipeline::router::{
    InstanceKind, Interface, Link, NatHook, NatRule, NatTarget, Route, RouterInstance, Rule,
    TABLE_MAIN,
};
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

fn suffix(r: &Router) -> String {
    r.device_suffix
        .clone()
        .unwrap_or_else(|| r.name.to_lowercase())
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

fn cidr_of(t: &Topology, subnet: &str) -> Option<Cidr> {
    t.subnets
        .iter()
        .find(|s| s.name == subnet)
        .and_then(|s| Cidr::parse(&s.cidr))
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
        let Some(port) = f
            .port
            .as_ref()
            .and_then(|p| t.ports.iter().find(|x| &x.name == p))
        else {
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

/// Compiles every router instance of `host`.
pub fn compile_instances(t: &Topology, host: &str) -> Result<Vec<RouterInstance>, TopologyError> {
    let mut out = Vec::new();
    let routers = routers_on_host(t, host);
    let fg_of = |net: &str| {
        t.fip_gateways
            .iter()
            .find(|g| g.host == host && g.network == net)
    };
    let ext_gw = |net: &str| {
        t.subnets
            .iter()
            .find(|s| s.network == net)
            .map(|s| (s.gateway_ip, Cidr::parse(&s.cidr)))
    };

    for r in &routers {
        let sfx = suffix(r);
        let mut q = RouterInstance::new(&format!("qrouter-{}", r.name), InstanceKind::Qrouter);
        for ri in &r.interfaces {
            let sub = t
                .subnets
                .iter()
                .find(|s| s.name == ri.subnet)
                .ok_or_else(|| {
                    err(
                        format!("router {}", r.name),
                        "interfaces",
                        format!("unknown subnet `{}`", ri.subnet),
                    )
                })?;
            let c = Cidr::parse(&sub.cidr).unwrap_or(Cidr { addr: 0, len: 0 });
            q.add_interface(Interface {
                name: ri.device.clone(),
                mac: ri.mac,
                addrs: vec![(sub.gateway_ip, c.len)],
                link: Link::Bridge,
                proxy_arp: false,
            });
            // Static neighbours: every non-router port on the subnet (all hosts).
            for p in t
                .ports
                .iter()
                .filter(|p| p.network == sub.network && c.contains(u32::from(p.ip)))
            {
                q.neighbours.insert((ri.device.clone(), p.ip), p.mac);
            }
        }
        let fips = fips_on_host(t, r, host);
        if let Some(gw) = &r.gateway {
            // SNAT redirect per subnet (spec §5.3/§5.4).
            for ri in &r.interfaces {
                let (Some(sg_ip), Some(sg_mac)) = (ri.snat_ip, ri.snat_mac) else {
                    continue;
                };
                let Some(sub) = t.subnets.iter().find(|s| s.name == ri.subnet) else {
                    continue;
                };
                let c = cidr_of(t, &ri.subnet).unwrap_or(Cidr { addr: 0, len: 0 });
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
                q.add_route(
                    idx,
                    Route {
                        dst: Cidr { addr: 0, len: 0 },
                        via: Some(sg_ip),
                        dev: ri.device.clone(),
                        src: None,
                    },
                );
                q.neighbours.insert((ri.device.clone(), sg_ip), sg_mac);
            }
            // rfp link to the fip instance, if this host has one for the gateway network.
            if fg_of(&gw.network).is_some() {
                let rfp = rfp_addr(t, r, host);
                let fpr = Ipv4Addr::from(u32::from(rfp) + 1);
                let (rfp_dev, fpr_dev) = (format!("rfp-{sfx}"), format!("fpr-{sfx}"));
                q.add_interface(Interface {
                    name: rfp_dev.clone(),
                    mac: veth_mac(&rfp_dev, host),
                    addrs: vec![(rfp, 31)],
                    link: Link::Veth {
                        instance: format!("fip-{}", gw.network),
                        iface: fpr_dev.clone(),
                    },
                    proxy_arp: false,
                });
                q.neighbours
                    .insert((rfp_dev.clone(), fpr), veth_mac(&fpr_dev, host));
                for &(fip, fixed, prio) in &fips {
                    q.add_rule(Rule {
                        priority: prio,
                        from: Some(Cidr {
                            addr: u32::from(fixed),
                            len: 32,
                        }),
                        iif: None,
                        to: None,
                        table: FIP_EGRESS_TABLE,
                    });
                    q.nat.push(NatRule {
                        hook: NatHook::Prerouting,
                        src: None,
                        dst: Some(Cidr { addr: u32::from(fip), len: 32 }),
                        iif: Some(rfp_dev.clone()),
                        iif_not: false,
                        oif: None,
                        oif_not: false,
                        not_dnat: false,
                        only_dnat: false,
                        not_marked_external: false,
                        target: NatTarget::Dnat(fixed),
                        text: format!("-A neutron-l3-agent-PREROUTING -d {fip}/32 -i {rfp_dev} -j DNAT --to-destination {fixed}"),
                    });
                }
                if !fips.is_empty() {
                    q.add_route(
                        FIP_EGRESS_TABLE,
                        Route {
                            dst: Cidr { addr: 0, len: 0 },
                            via: Some(fpr),
                            dev: rfp_dev.clone(),
                            src: None,
                        },
                    );
                    q.nat.push(NatRule {
                        hook: NatHook::Postrouting,
                        src: None,
                        dst: None,
                        iif: Some(rfp_dev.clone()),
                        iif_not: true,
                        oif: Some(rfp_dev.clone()),
                        oif_not: true,
                        not_dnat: true,
                        only_dnat: false,
                        not_marked_external: false,
                        target: NatTarget::Accept,
                        text: format!(
                            "-A neutron-l3-agent-POSTROUTING ! -i {rfp_dev} ! -o {rfp_dev} -m conntrack ! --ctstate DNAT -j ACCEPT"
                        ),
                    });
                    for &(fip, fixed, _) in &fips {
                        q.nat.push(NatRule {
                            hook: NatHook::Postrouting,
                            src: Some(Cidr { addr: u32::from(fixed), len: 32 }),
                            dst: None,
                            iif: None,
                            iif_not: false,
                            oif: None,
                            oif_not: false,
                            not_dnat: false,
                            only_dnat: false,
                            not_marked_external: false,
                            target: NatTarget::Snat(fip),
                            text: format!("-A neutron-l3-agent-float-snat -s {fixed}/32 -j SNAT --to-source {fip}"),
                        });
                    }
                }
            }
        }
        for route in &r.routes {
            let Some(dst) = Cidr::parse(&route.destination) else {
                continue;
            };
            let dev = q
                .interfaces
                .iter()
                .find(|i| {
                    i.addrs.iter().any(|(a, l)| {
                        Cidr {
                            addr: u32::from(*a),
                            len: *l,
                        }
                        .contains(u32::from(route.nexthop))
                    })
                })
                .map(|i| i.name.clone());
            if let Some(dev) = dev {
                q.add_route(
                    TABLE_MAIN,
                    Route {
                        dst: Cidr {
                            addr: dst.network(),
                            len: dst.len,
                        },
                        via: Some(route.nexthop),
                        dev,
                        src: None,
                    },
                );
            }
        }
        out.push(q);
    }

    // fip instances: one per external network with a router gateway here.
    let mut nets: Vec<&str> = Vec::new();
    for r in &routers {
        if let Some(gw) = &r.gateway {
            if !nets.contains(&gw.network.as_str()) {
                nets.push(&gw.network);
            }
        }
    }
    for net in nets {
        let Some(fg) = fg_of(net) else { continue };
        let (gw_ip, ext_cidr) = ext_gw(net).ok_or_else(|| {
            err(
                format!("network {net}"),
                "subnet",
                "external network has no subnet",
            )
        })?;
        let ext_cidr = ext_cidr.unwrap_or(Cidr { addr: 0, len: 0 });
        let mut f = RouterInstance::new(&format!("fip-{net}"), InstanceKind::Fip);
        f.add_interface(Interface {
            name: fg.device.clone(),
            mac: fg.mac,
            addrs: vec![(fg.ip, ext_cidr.len)],
            link: Link::Bridge,
            proxy_arp: true,
        });
        if !ext_cidr.contains(u32::from(gw_ip)) {
            f.add_route(
                TABLE_MAIN,
                Route {
                    dst: Cidr {
                        addr: u32::from(gw_ip),
                        len: 32,
                    },
                    via: None,
                    dev: fg.device.clone(),
                    src: None,
                },
            );
        }
        for r in routers
            .iter()
            .filter(|r| r.gateway.as_ref().is_some_and(|g| g.network == net))
        {
            let sfx = suffix(r);
            let rfp = rfp_addr(t, r, host);
            let fpr = Ipv4Addr::from(u32::from(rfp) + 1);
            let (rfp_dev, fpr_dev) = (format!("rfp-{sfx}"), format!("fpr-{sfx}"));
            f.add_interface(Interface {
                name: fpr_dev.clone(),
                mac: veth_mac(&fpr_dev, host),
                addrs: vec![(fpr, 31)],
                link: Link::Veth {
                    instance: format!("qrouter-{}", r.name),
                    iface: rfp_dev.clone(),
                },
                proxy_arp: false,
            });
            f.neighbours
                .insert((fpr_dev.clone(), rfp), veth_mac(&rfp_dev, host));
            let tbl = u32::from(fpr);
            f.add_rule(Rule {
                priority: tbl,
                from: None,
                iif: Some(fpr_dev.clone()),
                to: None,
                table: tbl,
            });
            f.add_route(
                tbl,
                Route {
                    dst: Cidr { addr: 0, len: 0 },
                    via: Some(gw_ip),
                    dev: fg.device.clone(),
                    src: None,
                },
            );
            for (fip, _, _) in fips_on_host(t, r, host) {
                f.add_route(
                    TABLE_MAIN,
                    Route {
                        dst: Cidr {
                            addr: u32::from(fip),
                            len: 32,
                        },
                        via: Some(rfp),
                        dev: fpr_dev.clone(),
                        src: None,
                    },
                );
            }
        }
        out.push(f);
    }

    // snat instances on the SNAT host.
    for r in routers
        .iter()
        .filter(|r| r.snat_host.as_deref() == Some(host))
    {
        let Some(gw) = &r.gateway else { continue };
        let (gw_ip, ext_cidr) = ext_gw(&gw.network).ok_or_else(|| {
            err(
                format!("network {}", gw.network),
                "subnet",
                "external network has no subnet",
            )
        })?;
        let ext_cidr = ext_cidr.unwrap_or(Cidr { addr: 0, len: 0 });
        let mut s = RouterInstance::new(&format!("snat-{}", r.name), InstanceKind::Snat);
        for ri in &r.interfaces {
            let (Some(dev), Some(ip), Some(mac)) = (&ri.snat_device, ri.snat_ip, ri.snat_mac)
            else {
                continue;
            };
            let c = cidr_of(t, &ri.subnet).unwrap_or(Cidr { addr: 0, len: 0 });
            s.add_interface(Interface {
                name: dev.clone(),
                mac,
                addrs: vec![(ip, c.len)],
                link: Link::Bridge,
                proxy_arp: false,
            });
        }
        s.add_interface(Interface {
            name: gw.device.clone(),
            mac: gw.mac,
            addrs: vec![(gw.ip, ext_cidr.len)],
            link: Link::Bridge,
            proxy_arp: false,
        });
        s.add_route(
            TABLE_MAIN,
            Route {
                dst: Cidr { addr: 0, len: 0 },
                via: Some(gw_ip),
                dev: gw.device.clone(),
                src: None,
            },
        );
        if !ext_cidr.contains(u32::from(gw_ip)) {
            s.add_route(
                TABLE_MAIN,
                Route {
                    dst: Cidr {
                        addr: u32::from(gw_ip),
                        len: 32,
                    },
                    via: None,
                    dev: gw.device.clone(),
                    src: None,
                },
            );
        }
        let qg = gw.device.clone();
        s.mark_external.push(qg.clone());
        let rule = |target: NatTarget, oif: Option<String>, text: String| NatRule {
            hook: NatHook::Postrouting,
            src: None,
            dst: None,
            iif: None,
            iif_not: false,
            oif,
            oif_not: false,
            not_dnat: false,
            only_dnat: false,
            not_marked_external: false,
            target,
            text,
        };
        s.nat.push(NatRule {
            iif: Some(qg.clone()),
            iif_not: true,
            oif_not: true,
            not_dnat: true,
            ..rule(
                NatTarget::Accept,
                Some(qg.clone()),
                format!("-A neutron-l3-agent-POSTROUTING ! -i {qg} ! -o {qg} -m conntrack ! --ctstate DNAT -j ACCEPT"),
            )
        });
        if gw.enable_snat {
            s.nat.push(rule(
                NatTarget::Snat(gw.ip),
                Some(qg.clone()),
                format!(
                    "-A neutron-l3-agent-snat -o {qg} -j SNAT --to-source {}",
                    gw.ip
                ),
            ));
        }
        s.nat.push(NatRule {
            only_dnat: true,
            not_marked_external: true,
            ..rule(
                NatTarget::Snat(gw.ip),
                None,
                format!("-A neutron-l3-agent-snat -m mark ! --mark 0x2/0xffff -m conntrack --ctstate DNAT -j SNAT --to-source {}", gw.ip),
            )
        });
        for route in &r.routes {
            let Some(dst) = Cidr::parse(&route.destination) else {
                continue;
            };
            let dev = s
                .interfaces
                .iter()
                .find(|i| {
                    i.addrs.iter().any(|(a, l)| {
                        Cidr {
                            addr: u32::from(*a),
                            len: *l,
                        }
                        .contains(u32::from(route.nexthop))
                    })
                })
                .map(|i| i.name.clone());
            if let Some(dev) = dev {
                s.add_route(
                    TABLE_MAIN,
                    Route {
                        dst: Cidr {
                            addr: dst.network(),
                            len: dst.len,
                        },
                        via: Some(route.nexthop),
                        dev,
                        src: None,
                    },
                );
            }
        }
        out.push(s);
    }
    Ok(out)
}
