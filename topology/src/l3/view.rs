//! What the L3 agent on one host knows of a router: the router dict
//! neutron-server sends it (interfaces and their subnets, SNAT ports,
//! gateway port, floating IPs bound here, the host's FIP gateway port,
//! extra routes), the ports of each subnet it asks for (its permanent
//! neighbours), and the host-local numbers it allocates (the rfp/fpr link,
//! FIP rule priorities). Router instances are compiled from this alone, so
//! a topology document (`of_topology`) and Neutron's own L3 agent (the
//! `neutron-vswitch` extension, over the control socket) give the same
//! dataplane for the same facts.

use crate::model::{Cidr, ExtraRoute, LINK_POOL};
use crate::validate::{err, TopologyError};
use pipeline::key::Mac;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// Most routers one host's L3 agent may hand the switch.
pub const MAX_HOST_ROUTERS: usize = 4096;

/// One router as present on one host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostRouter {
    /// The router's id (a name in topology documents): instances are
    /// `qrouter-<name>` and `snat-<name>`.
    pub name: String,
    /// What follows `rfp-`/`fpr-` in the link's device names (the agent:
    /// the router id's first 11 characters).
    pub link_suffix: String,
    /// `qr-` ports, one per subnet.
    pub interfaces: Vec<HostInterface>,
    #[serde(default)]
    pub gateway: Option<HostGateway>,
    /// Whether this host is the router's SNAT host (the agent: `dvr_snat`
    /// mode and `gw_port_host` is this host).
    #[serde(default)]
    pub snat_here: bool,
    /// This host's FIP agent gateway port (`fg-`) on the gateway network.
    #[serde(default)]
    pub fip_gateway: Option<FipGatewayPort>,
    /// The rfp (even) address of the router's /31 link to the fip instance,
    /// as the agent allocated it; allocated here when absent.
    #[serde(default)]
    pub rfp_address: Option<Ipv4Addr>,
    /// Floating IPs whose fixed port is on this host.
    #[serde(default)]
    pub floating_ips: Vec<HostFloatingIp>,
    #[serde(default)]
    pub routes: Vec<ExtraRoute>,
}

/// A `qr-` port: the subnet's gateway address on every host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostInterface {
    pub device: String,
    pub mac: Mac,
    /// The subnet, e.g. `10.1.0.0/24`.
    pub cidr: String,
    pub gateway_ip: Ipv4Addr,
    /// Every port of the subnet, on any host (the agent's permanent ARP
    /// entries, from `get_ports_by_subnet`).
    #[serde(default)]
    pub neighbours: Vec<Neighbour>,
    /// The subnet's SNAT port (`sg-`) on the SNAT host.
    #[serde(default)]
    pub snat: Option<SnatPort>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Neighbour {
    pub ip: Ipv4Addr,
    pub mac: Mac,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnatPort {
    pub device: String,
    pub ip: Ipv4Addr,
    pub mac: Mac,
}

/// The router's external gateway port (`qg-`, plugged on the SNAT host
/// only) and its external network's subnet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostGateway {
    /// The external network (its id, or name in topology documents): the
    /// fip instance is `fip-<network>`.
    pub network: String,
    pub device: String,
    pub ip: Ipv4Addr,
    pub mac: Mac,
    /// The external subnet, e.g. `172.24.4.0/24`.
    pub cidr: String,
    pub gateway_ip: Ipv4Addr,
    #[serde(default = "default_true")]
    pub enable_snat: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FipGatewayPort {
    pub device: String,
    pub ip: Ipv4Addr,
    pub mac: Mac,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostFloatingIp {
    pub address: Ipv4Addr,
    pub fixed: Ipv4Addr,
    /// The `ip rule` priority the agent allocated (32768..=72767).
    pub rule_priority: u32,
}

impl HostInterface {
    /// The subnet prefix (`0.0.0.0/0` if it does not parse; validation
    /// refuses that).
    pub(super) fn prefix(&self) -> Cidr {
        Cidr::parse(&self.cidr).unwrap_or(Cidr { addr: 0, len: 0 })
    }
}

impl HostGateway {
    pub(super) fn prefix(&self) -> Cidr {
        Cidr::parse(&self.cidr).unwrap_or(Cidr { addr: 0, len: 0 })
    }
}

fn is_device_name(s: &str) -> bool {
    // Linux IFNAMSIZ less the terminator, as OVS and the agents name ports.
    !s.is_empty() && s.len() <= 15 && s.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
}

/// Checks one host's routers as a whole: what the compiler relies on, each
/// problem naming the router and field.
pub fn validate_host_routers(routers: &[HostRouter]) -> Result<(), TopologyError> {
    if routers.len() > MAX_HOST_ROUTERS {
        return Err(err(
            "routers",
            "count",
            format!("{} routers, at most {MAX_HOST_ROUTERS}", routers.len()),
        ));
    }
    let mut names = BTreeSet::new();
    let mut devices = BTreeSet::new();
    let mut links = BTreeSet::new();
    for r in routers {
        let item = format!("router {}", r.name);
        if r.name.is_empty() || r.name.len() > 64 || !r.name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(err(item, "name", "must be 1 to 64 printable characters"));
        }
        if !names.insert(r.name.as_str()) {
            return Err(err(item, "name", "given twice"));
        }
        if !is_device_name(&format!("rfp-{}", r.link_suffix)) {
            return Err(err(
                item,
                "link_suffix",
                "rfp-<suffix> is not a device name of at most 15 characters",
            ));
        }
        if !links.insert(r.link_suffix.as_str()) {
            return Err(err(item, "link_suffix", "another router uses it"));
        }
        let mut own = |dev: &str, field: &str| -> Result<(), TopologyError> {
            if !is_device_name(dev) {
                return Err(err(
                    format!("router {}", r.name),
                    field,
                    format!("`{dev}` is not a device name of at most 15 characters"),
                ));
            }
            if !devices.insert(dev.to_string()) {
                return Err(err(
                    format!("router {}", r.name),
                    field,
                    format!("device `{dev}` is used twice"),
                ));
            }
            Ok(())
        };
        for i in &r.interfaces {
            own(&i.device, "interfaces.device")?;
            let Some(c) = Cidr::parse(&i.cidr) else {
                return Err(err(
                    &item,
                    "interfaces.cidr",
                    format!("`{}` is not an IPv4 prefix", i.cidr),
                ));
            };
            if !c.contains(u32::from(i.gateway_ip)) {
                return Err(err(
                    &item,
                    "interfaces.gateway_ip",
                    format!("{} is not in {}", i.gateway_ip, i.cidr),
                ));
            }
            if let Some(s) = &i.snat {
                own(&s.device, "interfaces.snat.device")?;
                if !c.contains(u32::from(s.ip)) {
                    return Err(err(
                        &item,
                        "interfaces.snat.ip",
                        format!("{} is not in {}", s.ip, i.cidr),
                    ));
                }
            }
        }
        if let Some(g) = &r.gateway {
            if r.snat_here {
                own(&g.device, "gateway.device")?;
            }
            let Some(c) = Cidr::parse(&g.cidr) else {
                return Err(err(
                    &item,
                    "gateway.cidr",
                    format!("`{}` is not an IPv4 prefix", g.cidr),
                ));
            };
            if !c.contains(u32::from(g.ip)) {
                return Err(err(
                    &item,
                    "gateway.ip",
                    format!("{} is not in {}", g.ip, g.cidr),
                ));
            }
            if g.network.is_empty() || g.network.len() > 64 {
                return Err(err(&item, "gateway.network", "must be 1 to 64 characters"));
            }
        } else if r.fip_gateway.is_some() || !r.floating_ips.is_empty() {
            return Err(err(&item, "gateway", "floating IPs need a gateway"));
        }
        if let Some(a) = r.rfp_address {
            if !LINK_POOL.contains(u32::from(a)) || u32::from(a) % 2 != 0 {
                return Err(err(
                    &item,
                    "rfp_address",
                    format!("{a} is not an even address of {}", "169.254.64.0/18"),
                ));
            }
        }
        for f in &r.floating_ips {
            if !(32768..=72767).contains(&f.rule_priority) {
                return Err(err(
                    &item,
                    "floating_ips.rule_priority",
                    format!("{} is outside 32768..=72767", f.rule_priority),
                ));
            }
        }
        for e in &r.routes {
            if Cidr::parse(&e.destination).is_none() {
                return Err(err(
                    &item,
                    "routes.destination",
                    format!("`{}` is not an IPv4 prefix", e.destination),
                ));
            }
        }
    }
    // One fg- port per external network, shared by its routers.
    let mut fg: Vec<(&str, &FipGatewayPort)> = Vec::new();
    for r in routers {
        let (Some(g), Some(p)) = (&r.gateway, &r.fip_gateway) else {
            continue;
        };
        match fg.iter().find(|(n, _)| *n == g.network) {
            Some((_, q)) if *q != p => {
                return Err(err(
                    format!("router {}", r.name),
                    "fip_gateway",
                    format!(
                        "another router has a different fg- port on network {}",
                        g.network
                    ),
                ));
            }
            Some(_) => {}
            None => {
                if !devices.insert(p.device.clone()) || !is_device_name(&p.device) {
                    return Err(err(
                        format!("router {}", r.name),
                        "fip_gateway.device",
                        format!("`{}` is not a free device name", p.device),
                    ));
                }
                fg.push((&g.network, p));
            }
        }
    }
    Ok(())
}
