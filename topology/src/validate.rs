//! Validation: reject what Neutron would reject, naming the item and field.
//!
//! Runs over the whole topology before anything is compiled, so a bad file
//! or update is refused as a whole and nothing is half-applied. Items are
//! checked kind by kind in file order (names, hosts, networks, subnets,
//! routers, FIP gateways, ports, floating IPs) and the first problem found
//! is the one reported. MACs are unique across every port the dataplane
//! knows and IPs within a network; `Claims` remembers who took which.

use super::model::{
    Cidr, FipGateway, FloatingIp, Host, HostRole, Network, NetworkType, Physnet, Port, Router,
    RouterGateway, RouterInterface, Topology, LINK_POOL,
};
use pipeline::key::Mac;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;

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

/// Checks the whole topology; the first problem found is returned.
pub fn validate(t: &Topology) -> Result<(), TopologyError> {
    check_unique_names(t)?;
    check_hosts(t)?;
    check_networks(t)?;
    let cidrs = check_subnets(t)?;
    let mut claims = Claims::default();
    for r in &t.routers {
        check_router(t, &cidrs, &mut claims, r)?;
    }
    for g in &t.fip_gateways {
        check_fip_gateway(t, &mut claims, g)?;
    }
    for p in &t.ports {
        check_port(t, &cidrs, &mut claims, p)?;
    }
    let mut fips = BTreeSet::new();
    for f in &t.floating_ips {
        if !fips.insert(f.address) {
            return Err(err(
                format!("floating_ip {}", f.address),
                "address",
                "defined twice",
            ));
        }
        check_floating_ip(t, &cidrs, f)?;
    }
    Ok(())
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

/// Physnets, hosts, networks, subnets, routers and ports are named once.
fn check_unique_names(t: &Topology) -> Result<(), TopologyError> {
    unique("physnet", t.physnets.iter().map(|x| x.name.as_str()))?;
    unique("host", t.hosts.iter().map(|x| x.name.as_str()))?;
    unique("network", t.networks.iter().map(|x| x.name.as_str()))?;
    unique("subnet", t.subnets.iter().map(|x| x.name.as_str()))?;
    unique("router", t.routers.iter().map(|x| x.name.as_str()))?;
    unique("port", t.ports.iter().map(|x| x.name.as_str()))
}

/// Hosts: unique unicast DVR MACs, well-formed mappings, sane pinned VLANs.
fn check_hosts(t: &Topology) -> Result<(), TopologyError> {
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
        check_bridge_mappings(t, &item, h)?;
        check_local_vlans(t, &item, h)?;
    }
    Ok(())
}

/// Every mapping is `PHYSNET:BRIDGE` with a known physnet.
fn check_bridge_mappings(t: &Topology, item: &str, h: &Host) -> Result<(), TopologyError> {
    for m in &h.bridge_mappings {
        match m.split_once(':') {
            Some((p, b)) if !p.is_empty() && !b.is_empty() => {
                if !t.physnets.iter().any(|x| x.name == p) {
                    return Err(err(
                        item,
                        "bridge_mappings",
                        format!("`{m}`: unknown physnet `{p}`"),
                    ));
                }
            }
            _ => {
                return Err(err(
                    item,
                    "bridge_mappings",
                    format!("`{m}` is not PHYSNET:BRIDGE"),
                ))
            }
        }
    }
    Ok(())
}

/// Pinned local VLANs are valid VIDs, distinct, of known networks.
fn check_local_vlans(t: &Topology, item: &str, h: &Host) -> Result<(), TopologyError> {
    let mut lvids = BTreeSet::new();
    for (net, &v) in &h.local_vlans {
        if !(1..=4094).contains(&v) {
            return Err(err(
                item,
                "local_vlans",
                format!("{net} = {v} is outside 1..=4094"),
            ));
        }
        if !lvids.insert(v) {
            return Err(err(
                item,
                "local_vlans",
                format!("local VLAN {v} is pinned twice"),
            ));
        }
        if t.network(net).is_none() {
            return Err(err(item, "local_vlans", format!("unknown network `{net}`")));
        }
    }
    Ok(())
}

/// Networks: known physnet, segmentation ids in range and unique, at most
/// one flat network per physnet.
fn check_networks(t: &Topology) -> Result<(), TopologyError> {
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
            NetworkType::Vlan => check_vlan_network(&item, n, pn, &mut segs)?,
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
    Ok(())
}

/// A VLAN network's segmentation id: present, in its physnet's ranges, and
/// not another network's on the same physnet (`segs` holds those so far).
fn check_vlan_network<'a>(
    item: &str,
    n: &'a Network,
    pn: &Physnet,
    segs: &mut BTreeMap<(&'a str, u16), &'a str>,
) -> Result<(), TopologyError> {
    let Some(seg) = n.segmentation_id else {
        return Err(err(
            item,
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
            item,
            "segmentation_id",
            format!(
                "VLAN {seg} is outside the ranges of physnet {}: {:?}",
                pn.name, pn.vlan_ranges
            ),
        ));
    }
    if let Some(other) = segs.insert((&n.physnet, seg), &n.name) {
        return Err(err(
            item,
            "segmentation_id",
            format!("VLAN {seg} on {} is already network {other}", n.physnet),
        ));
    }
    Ok(())
}

/// Each subnet's CIDR as checked, with its name and network.
struct SubnetCidrs<'a>(Vec<(Cidr, &'a str, &'a str)>);

impl SubnetCidrs<'_> {
    fn of(&self, subnet: &str) -> Option<Cidr> {
        self.0
            .iter()
            .find(|(_, n, _)| *n == subnet)
            .map(|(c, _, _)| *c)
    }
}

/// Subnets: known network, valid CIDR, gateway inside, no overlap within a
/// network. Returns the parsed CIDRs for the checks that follow.
fn check_subnets(t: &Topology) -> Result<SubnetCidrs<'_>, TopologyError> {
    let mut cidrs: Vec<(Cidr, &str, &str)> = Vec::new();
    for s in &t.subnets {
        let item = format!("subnet {}", s.name);
        if t.network(&s.network).is_none() {
            return Err(err(
                &item,
                "network",
                format!("unknown network `{}`", s.network),
            ));
        }
        let c = s
            .prefix()
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
    Ok(SubnetCidrs(cidrs))
}

/// MACs (unique across every port the dataplane knows) and IPs (unique
/// within a network) taken so far, each with the item that took it.
#[derive(Default)]
struct Claims {
    macs: BTreeMap<Mac, String>,
    ips: BTreeMap<(String, u32), String>,
}

impl Claims {
    fn mac(&mut self, mac: Mac, owner: String, field: &str) -> Result<(), TopologyError> {
        if let Some(other) = self.macs.get(&mac) {
            return Err(err(
                &owner,
                field,
                format!("MAC {mac} is already used by {other}"),
            ));
        }
        self.macs.insert(mac, owner);
        Ok(())
    }

    fn ip(&mut self, net: &str, ip: u32, owner: String, field: &str) -> Result<(), TopologyError> {
        if let Some(other) = self.ips.get(&(net.to_string(), ip)) {
            return Err(err(
                &owner,
                field,
                format!("{} is already used by {other}", Ipv4Addr::from(ip)),
            ));
        }
        self.ips.insert((net.to_string(), ip), owner);
        Ok(())
    }
}

/// A router: its interfaces, gateway, pinned rfp links and extra routes.
fn check_router(
    t: &Topology,
    cidrs: &SubnetCidrs,
    claims: &mut Claims,
    r: &Router,
) -> Result<(), TopologyError> {
    let item = format!("router {}", r.name);
    let mut attached: Vec<(Cidr, &str)> = Vec::new();
    for (i, ri) in r.interfaces.iter().enumerate() {
        let field = format!("interfaces[{i}]");
        let Some(c) = cidrs.of(&ri.subnet) else {
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
        check_interface_ports(t, claims, &item, &field, ri, c)?;
    }
    if let Some(gw) = &r.gateway {
        check_router_gateway(t, claims, &item, r, gw)?;
    }
    check_rfp_links(t, &item, r)?;
    for (i, route) in r.routes.iter().enumerate() {
        if Cidr::parse(&route.destination).is_none() {
            return Err(err(
                &item,
                &format!("routes[{i}]"),
                format!("`{}` is not a CIDR", route.destination),
            ));
        }
    }
    Ok(())
}

/// A router interface's `qr-` port and its optional `sg-` port on subnet
/// `c`: addresses claimed, the SNAT port whole and inside the subnet.
fn check_interface_ports(
    t: &Topology,
    claims: &mut Claims,
    item: &str,
    field: &str,
    ri: &RouterInterface,
    c: Cidr,
) -> Result<(), TopologyError> {
    let Some(sub) = t.subnet(&ri.subnet) else {
        return Ok(());
    };
    let qr = format!("{item} interface {}", ri.device);
    claims.mac(ri.mac, qr.clone(), field)?;
    claims.ip(&sub.network, u32::from(sub.gateway_ip), qr, field)?;
    let snat = [
        ri.snat_device.is_some(),
        ri.snat_ip.is_some(),
        ri.snat_mac.is_some(),
    ];
    if snat.iter().any(|&b| b) && !snat.iter().all(|&b| b) {
        return Err(err(
            item,
            field,
            "snat_device, snat_ip and snat_mac go together",
        ));
    }
    if let (Some(dev), Some(ip), Some(mac)) = (&ri.snat_device, ri.snat_ip, ri.snat_mac) {
        if !c.contains(u32::from(ip)) {
            return Err(err(
                item,
                field,
                format!("snat_ip {ip} is not in subnet {}", ri.subnet),
            ));
        }
        let sg = format!("{item} snat port {dev}");
        claims.mac(mac, sg.clone(), field)?;
        claims.ip(&sub.network, u32::from(ip), sg, field)?;
    }
    Ok(())
}

/// A router's external gateway: on an external network, with a network
/// node as SNAT host and a SNAT port on every interface; addresses claimed.
fn check_router_gateway(
    t: &Topology,
    claims: &mut Claims,
    item: &str,
    r: &Router,
    gw: &RouterGateway,
) -> Result<(), TopologyError> {
    let Some(net) = t.network(&gw.network) else {
        return Err(err(
            item,
            "gateway",
            format!("unknown network `{}`", gw.network),
        ));
    };
    if !net.external {
        return Err(err(
            item,
            "gateway",
            format!("network {} is not external", gw.network),
        ));
    }
    let Some(host) = r.snat_host.as_ref().and_then(|h| t.host(h)) else {
        return Err(err(
            item,
            "snat_host",
            "a router with a gateway needs an existing snat_host",
        ));
    };
    if host.role != HostRole::Network {
        return Err(err(
            item,
            "snat_host",
            format!("host {} is not a network node (dvr_snat)", host.name),
        ));
    }
    if r.interfaces.iter().any(|ri| ri.snat_device.is_none()) {
        return Err(err(
            item,
            "interfaces",
            "every interface needs a SNAT port when the router has a gateway",
        ));
    }
    let qg = format!("{item} gateway {}", gw.device);
    claims.mac(gw.mac, qg.clone(), "gateway")?;
    claims.ip(&gw.network, u32::from(gw.ip), qg, "gateway")
}

/// Pinned rfp addresses: known hosts, even addresses of the link pool.
fn check_rfp_links(t: &Topology, item: &str, r: &Router) -> Result<(), TopologyError> {
    for (host, ip) in &r.rfp_links {
        let ip = u32::from(*ip);
        if t.host(host).is_none() {
            return Err(err(item, "rfp_links", format!("unknown host `{host}`")));
        }
        if ip & 1 != 0 || !LINK_POOL.contains(ip) {
            return Err(err(
                item,
                "rfp_links",
                format!("{host}: the rfp address must be even and in 169.254.64.0/18"),
            ));
        }
    }
    Ok(())
}

/// A FIP agent gateway port: known host, external network, addresses claimed.
fn check_fip_gateway(
    t: &Topology,
    claims: &mut Claims,
    g: &FipGateway,
) -> Result<(), TopologyError> {
    let item = format!("fip_gateway {}", g.device);
    if t.host(&g.host).is_none() {
        return Err(err(&item, "host", format!("unknown host `{}`", g.host)));
    }
    match t.network(&g.network) {
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
    claims.mac(g.mac, item.clone(), "mac")?;
    claims.ip(&g.network, u32::from(g.ip), item, "ip")
}

/// A VM or DHCP port: known host and network, an address in one of the
/// network's subnets, a unicast MAC, addresses claimed, valid address pairs.
fn check_port(
    t: &Topology,
    cidrs: &SubnetCidrs,
    claims: &mut Claims,
    p: &Port,
) -> Result<(), TopologyError> {
    let item = format!("port {}", p.name);
    if t.host(&p.host).is_none() {
        return Err(err(&item, "host", format!("unknown host `{}`", p.host)));
    }
    if t.network(&p.network).is_none() {
        return Err(err(
            &item,
            "network",
            format!("unknown network `{}`", p.network),
        ));
    }
    let ip = u32::from(p.ip);
    let in_subnet = t
        .subnets
        .iter()
        .any(|s| s.network == p.network && cidrs.of(&s.name).is_some_and(|c| c.contains(ip)));
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
    claims.mac(p.mac, item.clone(), "mac")?;
    claims.ip(&p.network, ip, item.clone(), "ip")?;
    for (i, a) in p.allowed_address_pairs.iter().enumerate() {
        if Cidr::parse(&a.ip).is_none() {
            return Err(err(
                &item,
                &format!("allowed_address_pairs[{i}]"),
                format!("`{}` is not an address or CIDR", a.ip),
            ));
        }
    }
    Ok(())
}

/// A floating IP: a router with a gateway, an address on its external
/// network, a rule priority in the agent's pool, a port on the router.
fn check_floating_ip(
    t: &Topology,
    cidrs: &SubnetCidrs,
    f: &FloatingIp,
) -> Result<(), TopologyError> {
    let item = format!("floating_ip {}", f.address);
    let Some(r) = t.router(&f.router) else {
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
        .any(|s| {
            cidrs
                .of(&s.name)
                .is_some_and(|c| c.contains(u32::from(f.address)))
        });
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
    let Some(pname) = &f.port else {
        return Ok(());
    };
    let Some(p) = t.port(pname) else {
        return Err(err(&item, "port", format!("unknown port `{pname}`")));
    };
    let on_router = r.interfaces.iter().any(|ri| {
        cidrs
            .of(&ri.subnet)
            .is_some_and(|c| c.contains(u32::from(p.ip)))
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
    Ok(())
}
