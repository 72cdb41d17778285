//! Validation: reject what Neutron would reject, naming the item and field.
//!
//! Runs over the whole topology before anything is compiled, so a bad file
//! or update is refused as a whole and nothing is half-applied.

use super::model::{Cidr, HostRole, NetworkType, Topology};
use pipeline::key::Mac;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A problem with one item of the topology.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopologyError {
    /// e.g. `network net1`.
    pub item: String,
    pub field: String,
    pub message: String,
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, field `{}`: {}", self.item, self.field, self.message)
    }
}

impl std::error::Error for TopologyError {}

pub(crate) fn err(
    item: impl Into<String>,
    field: &str,
    message: impl Into<String>,
) -> TopologyError {
    TopologyError {
        item: item.into(),
        field: field.to_string(),
        message: message.into(),
    }
}

fn unique<'a>(kind: &str, names: impl Iterator<Item = &'a str>) -> Result<(), TopologyError> {
    let mut seen = BTreeSet::new();
    for n in names {
        if !seen.insert(n) {
            return Err(err(format!("{kind} {n}"), "name", "defined twice"));
        }
    }
    Ok(())
}

pub fn validate(t: &Topology) -> Result<(), TopologyError> {
    unique("physnet", t.physnets.iter().map(|x| x.name.as_str()))?;
    unique("host", t.hosts.iter().map(|x| x.name.as_str()))?;
    unique("network", t.networks.iter().map(|x| x.name.as_str()))?;
    unique("subnet", t.subnets.iter().map(|x| x.name.as_str()))?;
    unique("router", t.routers.iter().map(|x| x.name.as_str()))?;
    unique("port", t.ports.iter().map(|x| x.name.as_str()))?;

    // Hosts: unique unicast DVR MACs, well-formed mappings, sane pinned VLANs.
    let mut dvr_macs: BTreeMap<Mac, &str> = BTreeMap::new();
    for h in &t.hosts {
        let item = format!("host {}", h.name);
        if h.dvr_mac.is_multicast() || h.dvr_mac == Mac::ZERO {
            return Err(err(
                &item,
                "dvr_mac",
                format!("{} is not a unicast MAC", h.dvr_mac),
            ));
        }
        if let Some(other) = dvr_macs.insert(h.dvr_mac, &h.name) {
            return Err(err(
                &item,
                "dvr_mac",
                format!("{} is already the DVR MAC of host {other}", h.dvr_mac),
            ));
        }
        for m in &h.bridge_mappings {
            match m.split_once(':') {
                Some((p, b)) if !p.is_empty() && !b.is_empty() => {
                    if !t.physnets.iter().any(|x| x.name == p) {
                        return Err(err(
                            &item,
                            "bridge_mappings",
                            format!("`{m}`: unknown physnet `{p}`"),
                        ));
                    }
                }
                _ => {
                    return Err(err(
                        &item,
                        "bridge_mappings",
                        format!("`{m}` is not PHYSNET:BRIDGE"),
                    ))
                }
            }
        }
        let mut lvids = BTreeSet::new();
        for (net, &v) in &h.local_vlans {
            if !(1..=4094).contains(&v) {
                return Err(err(
                    &item,
                    "local_vlans",
                    format!("{net} = {v} is outside 1..=4094"),
                ));
            }
            if !lvids.insert(v) {
                return Err(err(
                    &item,
                    "local_vlans",
                    format!("local VLAN {v} is pinned twice"),
                ));
            }
            if !t.networks.iter().any(|n| &n.name == net) {
                return Err(err(
                    &item,
                    "local_vlans",
                    format!("unknown network `{net}`"),
                ));
            }
        }
    }

    // Networks: known physnet, segmentation ids in range and unique.
    let mut segs: BTreeMap<(&str, u16), &str> = BTreeMap::new();
    let mut flats: BTreeMap<&str, &str> = BTreeMap::new();
    for n in &t.networks {
        let item = format!("network {}", n.name);
        let Some(pn) = t.physnets.iter().find(|p| p.name == n.physnet) else {
            return Err(err(
                &item,
                "physnet",
                format!("unknown physnet `{}`", n.physnet),
            ));
        };
        match n.network_type {
            NetworkType::Vlan => {
                let Some(seg) = n.segmentation_id else {
                    return Err(err(
                        &item,
                        "segmentation_id",
                        "a VLAN network needs a segmentation id",
                    ));
                };
                if !pn
                    .vlan_ranges
                    .iter()
                    .any(|&(lo, hi)| (lo..=hi).contains(&seg))
                {
                    return Err(err(
                        &item,
                        "segmentation_id",
                        format!(
                            "VLAN {seg} is outside the ranges of physnet {}: {:?}",
                            pn.name, pn.vlan_ranges
                        ),
                    ));
                }
                if let Some(other) = segs.insert((&n.physnet, seg), &n.name) {
                    return Err(err(
                        &item,
                        "segmentation_id",
                        format!("VLAN {seg} on {} is already network {other}", n.physnet),
                    ));
                }
            }
            NetworkType::Flat => {
                if n.segmentation_id.is_some() {
                    return Err(err(
                        &item,
                        "segmentation_id",
                        "a flat network has no segmentation id",
                    ));
                }
                if let Some(other) = flats.insert(&n.physnet, &n.name) {
                    return Err(err(
                        &item,
                        "physnet",
                        format!("physnet {} already carries flat network {other}", n.physnet),
                    ));
                }
            }
        }
    }

    // Subnets: known network, valid CIDR, gateway inside, no overlap within a network.
    let mut cidrs: Vec<(Cidr, &str, &str)> = Vec::new();
    for s in &t.subnets {
        let item = format!("subnet {}", s.name);
        if !t.networks.iter().any(|n| n.name == s.network) {
            return Err(err(
                &item,
                "network",
                format!("unknown network `{}`", s.network),
            ));
        }
        let c = Cidr::parse(&s.cidr)
            .ok_or_else(|| err(&item, "cidr", format!("`{}` is not an IPv4 CIDR", s.cidr)))?;
        if c.addr != c.network() {
            return Err(err(
                &item,
                "cidr",
                format!("`{}` has host bits set", s.cidr),
            ));
        }
        if !c.contains(u32::from(s.gateway_ip)) {
            return Err(err(
                &item,
                "gateway_ip",
                format!("{} is not in {}", s.gateway_ip, s.cidr),
            ));
        }
        if let Some((_, other, _)) = cidrs
            .iter()
            .find(|(o, _, net)| *net == s.network && o.overlaps(c))
        {
            return Err(err(
                &item,
                "cidr",
                format!("{} overlaps subnet {other} of the same network", s.cidr),
            ));
        }
        cidrs.push((c, &s.name, &s.network));
    }
    let subnet_cidr = |name: &str| {
        cidrs
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(c, _, _)| *c)
    };

    // MACs must be unique across every port the dataplane knows.
    let mut macs: BTreeMap<Mac, String> = BTreeMap::new();
    let mut claim_mac = |mac: Mac, owner: String, field: &str| -> Result<(), TopologyError> {
        if let Some(other) = macs.get(&mac) {
            return Err(err(
                &owner,
                field,
                format!("MAC {mac} is already used by {other}"),
            ));
        }
        macs.insert(mac, owner);
        Ok(())
    };
    // IPs must be unique within a network.
    let mut ips: BTreeMap<(String, u32), String> = BTreeMap::new();
    let mut claim_ip =
        |net: &str, ip: u32, owner: String, field: &str| -> Result<(), TopologyError> {
            if let Some(other) = ips.get(&(net.to_string(), ip)) {
                return Err(err(
                    &owner,
                    field,
                    format!(
                        "{} is already used by {other}",
                        std::net::Ipv4Addr::from(ip)
                    ),
                ));
            }
            ips.insert((net.to_string(), ip), owner);
            Ok(())
        };

    for r in &t.routers {
        let item = format!("router {}", r.name);
        let mut attached: Vec<(Cidr, &str)> = Vec::new();
        for (i, ri) in r.interfaces.iter().enumerate() {
            let field = format!("interfaces[{i}]");
            let Some(c) = subnet_cidr(&ri.subnet) else {
                return Err(err(
                    &item,
                    &field,
                    format!("unknown subnet `{}`", ri.subnet),
                ));
            };
            if let Some((_, other)) = attached.iter().find(|(o, _)| o.overlaps(c)) {
                return Err(err(
                    &item,
                    &field,
                    format!(
                        "subnet {} overlaps subnet {other} on the same router",
                        ri.subnet
                    ),
                ));
            }
            attached.push((c, &ri.subnet));
            let sub = t
                .subnets
                .iter()
                .find(|s| s.name == ri.subnet)
                .map(|s| (s.network.clone(), s.gateway_ip));
            let Some((net, gw)) = sub else { continue };
            claim_mac(ri.mac, format!("{item} interface {}", ri.device), &field)?;
            claim_ip(
                &net,
                u32::from(gw),
                format!("{item} interface {}", ri.device),
                &field,
            )?;
            let snat = [
                ri.snat_device.is_some(),
                ri.snat_ip.is_some(),
                ri.snat_mac.is_some(),
            ];
            if snat.iter().any(|&b| b) && !snat.iter().all(|&b| b) {
                return Err(err(
                    &item,
                    &field,
                    "snat_device, snat_ip and snat_mac go together",
                ));
            }
            if let (Some(dev), Some(ip), Some(mac)) = (&ri.snat_device, ri.snat_ip, ri.snat_mac) {
                if !c.contains(u32::from(ip)) {
                    return Err(err(
                        &item,
                        &field,
                        format!("snat_ip {ip} is not in subnet {}", ri.subnet),
                    ));
                }
                claim_mac(mac, format!("{item} snat port {dev}"), &field)?;
                claim_ip(
                    &net,
                    u32::from(ip),
                    format!("{item} snat port {dev}"),
                    &field,
                )?;
            }
        }
        if let Some(gw) = &r.gateway {
            let Some(net) = t.networks.iter().find(|n| n.name == gw.network) else {
                return Err(err(
                    &item,
                    "gateway",
                    format!("unknown network `{}`", gw.network),
                ));
            };
            if !net.external {
                return Err(err(
                    &item,
                    "gateway",
                    format!("network {} is not external", gw.network),
                ));
            }
            let Some(host) = r
                .snat_host
                .as_ref()
                .and_then(|h| t.hosts.iter().find(|x| &x.name == h))
            else {
                return Err(err(
                    &item,
                    "snat_host",
                    "a router with a gateway needs an existing snat_host",
                ));
            };
            if host.role != HostRole::Network {
                return Err(err(
                    &item,
                    "snat_host",
                    format!("host {} is not a network node (dvr_snat)", host.name),
                ));
            }
            if r.interfaces.iter().any(|ri| ri.snat_device.is_none()) {
                return Err(err(
                    &item,
                    "interfaces",
                    "every interface needs a SNAT port when the router has a gateway",
                ));
            }
            claim_mac(gw.mac, format!("{item} gateway {}", gw.device), "gateway")?;
            claim_ip(
                &gw.network,
                u32::from(gw.ip),
                format!("{item} gateway {}", gw.device),
                "gateway",
            )?;
        }
        for (host, ip) in &r.rfp_links {
            let ip = u32::from(*ip);
            if !t.hosts.iter().any(|h| &h.name == host) {
                return Err(err(&item, "rfp_links", format!("unknown host `{host}`")));
            }
            if ip & 1 != 0
                || !(Cidr {
                    addr: 0xa9fe_4000,
                    len: 18,
                })
                .contains(ip)
            {
                return Err(err(
                    &item,
                    "rfp_links",
                    format!("{host}: the rfp address must be even and in 169.254.64.0/18"),
                ));
            }
        }
        for (i, route) in r.routes.iter().enumerate() {
            if Cidr::parse(&route.destination).is_none() {
                return Err(err(
                    &item,
                    &format!("routes[{i}]"),
                    format!("`{}` is not a CIDR", route.destination),
                ));
            }
        }
    }

    for g in &t.fip_gateways {
        let item = format!("fip_gateway {}", g.device);
        if !t.hosts.iter().any(|h| h.name == g.host) {
            return Err(err(&item, "host", format!("unknown host `{}`", g.host)));
        }
        match t.networks.iter().find(|n| n.name == g.network) {
            Some(n) if n.external => {}
            Some(_) => {
                return Err(err(
                    &item,
                    "network",
                    format!("network {} is not external", g.network),
                ))
            }
            None => {
                return Err(err(
                    &item,
                    "network",
                    format!("unknown network `{}`", g.network),
                ))
            }
        }
        claim_mac(g.mac, item.clone(), "mac")?;
        claim_ip(&g.network, u32::from(g.ip), item.clone(), "ip")?;
    }

    for p in &t.ports {
        let item = format!("port {}", p.name);
        if !t.hosts.iter().any(|h| h.name == p.host) {
            return Err(err(&item, "host", format!("unknown host `{}`", p.host)));
        }
        if !t.networks.iter().any(|n| n.name == p.network) {
            return Err(err(
                &item,
                "network",
                format!("unknown network `{}`", p.network),
            ));
        }
        let ip = u32::from(p.ip);
        let in_subnet = t.subnets.iter().any(|s| {
            s.network == p.network && subnet_cidr(&s.name).is_some_and(|c| c.contains(ip))
        });
        if !in_subnet {
            return Err(err(
                &item,
                "ip",
                format!("{} is in no subnet of network {}", p.ip, p.network),
            ));
        }
        if p.mac.is_multicast() {
            return Err(err(&item, "mac", format!("{} is not a unicast MAC", p.mac)));
        }
        claim_mac(p.mac, item.clone(), "mac")?;
        claim_ip(&p.network, ip, item.clone(), "ip")?;
        for (i, a) in p.allowed_address_pairs.iter().enumerate() {
            if Cidr::parse(&a.ip).is_none() {
                return Err(err(
                    &item,
                    &format!("allowed_address_pairs[{i}]"),
                    format!("`{}` is not an address or CIDR", a.ip),
                ));
            }
        }
    }

    let mut fips = BTreeSet::new();
    for f in &t.floating_ips {
        let item = format!("floating_ip {}", f.address);
        if !fips.insert(f.address) {
            return Err(err(&item, "address", "defined twice"));
        }
        let Some(r) = t.routers.iter().find(|r| r.name == f.router) else {
            return Err(err(
                &item,
                "router",
                format!("unknown router `{}`", f.router),
            ));
        };
        let Some(gw) = &r.gateway else {
            return Err(err(
                &item,
                "router",
                format!("router {} has no external gateway", r.name),
            ));
        };
        let ext_ok = t
            .subnets
            .iter()
            .filter(|s| s.network == gw.network)
            .any(|s| subnet_cidr(&s.name).is_some_and(|c| c.contains(u32::from(f.address))));
        if !ext_ok {
            return Err(err(
                &item,
                "address",
                format!("not in a subnet of external network {}", gw.network),
            ));
        }
        if let Some(prio) = f.rule_priority {
            if !(32768..=72767).contains(&prio) {
                return Err(err(
                    &item,
                    "rule_priority",
                    format!("{prio} is outside 32768..=72767"),
                ));
            }
        }
        if let Some(pname) = &f.port {
            let Some(p) = t.ports.iter().find(|p| &p.name == pname) else {
                return Err(err(&item, "port", format!("unknown port `{pname}`")));
            };
            let on_router = r.interfaces.iter().any(|ri| {
                subnet_cidr(&ri.subnet).is_some_and(|c| c.contains(u32::from(p.ip)))
                    && t.subnets
                        .iter()
                        .any(|s| s.name == ri.subnet && s.network == p.network)
            });
            if !on_router {
                return Err(err(
                    &item,
                    "port",
                    format!("port {pname} is not on a subnet of router {}", r.name),
                ));
            }
        }
    }
    Ok(())
}
