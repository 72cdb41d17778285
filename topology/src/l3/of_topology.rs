//! A topology document's routers as the L3 agent on one host would know
//! them: what neutron-server would put in its router dicts, the ports it
//! would answer `get_ports_by_subnet` with, and the host-local numbers
//! (rfp links, FIP rule priorities) pinned or allocated the way the
//! document says.

use super::build::{fips_on_host, rfp_addr};
use super::view::{
    FipGatewayPort, HostFloatingIp, HostGateway, HostInterface, HostRouter, Neighbour, SnatPort,
};
use crate::model::{Router, RouterGateway, Topology};
use crate::placement::routers_on_host;
use crate::validate::{err, TopologyError};

/// The routers present on `host`, as its L3 agent knows them.
pub fn host_routers(t: &Topology, host: &str) -> Result<Vec<HostRouter>, TopologyError> {
    routers_on_host(t, host)
        .into_iter()
        .map(|r| host_router(t, host, r))
        .collect()
}

fn host_router(t: &Topology, host: &str, r: &Router) -> Result<HostRouter, TopologyError> {
    let gateway = r.gateway.as_ref().map(|g| gateway(t, g)).transpose()?;
    let fip_gateway = r
        .gateway
        .as_ref()
        .and_then(|g| t.fip_gateway(host, &g.network))
        .map(|fg| FipGatewayPort {
            device: fg.device.clone(),
            ip: fg.ip,
            mac: fg.mac,
        });
    let linked = fip_gateway.is_some();
    Ok(HostRouter {
        name: r.name.clone(),
        link_suffix: r
            .device_suffix
            .clone()
            .unwrap_or_else(|| r.name.to_lowercase()),
        interfaces: r
            .interfaces
            .iter()
            .map(|ri| interface(t, r, ri))
            .collect::<Result<_, _>>()?,
        gateway,
        snat_here: r.snat_host.as_deref() == Some(host),
        fip_gateway,
        rfp_address: linked.then(|| rfp_addr(t, r, host)),
        floating_ips: if linked {
            fips_on_host(t, r, host)
                .into_iter()
                .map(|(address, fixed, rule_priority)| HostFloatingIp {
                    address,
                    fixed,
                    rule_priority,
                })
                .collect()
        } else {
            Vec::new()
        },
        routes: r.routes.clone(),
    })
}

fn interface(
    t: &Topology,
    r: &Router,
    ri: &crate::model::RouterInterface,
) -> Result<HostInterface, TopologyError> {
    let sub = t.subnet(&ri.subnet).ok_or_else(|| {
        err(
            format!("router {}", r.name),
            "interfaces",
            format!("unknown subnet `{}`", ri.subnet),
        )
    })?;
    let c = sub.prefix().unwrap_or(super::build::ANY);
    Ok(HostInterface {
        device: ri.device.clone(),
        mac: ri.mac,
        cidr: sub.cidr.clone(),
        gateway_ip: sub.gateway_ip,
        neighbours: t
            .ports
            .iter()
            .filter(|p| p.network == sub.network && c.contains(u32::from(p.ip)))
            .map(|p| Neighbour {
                ip: p.ip,
                mac: p.mac,
            })
            .collect(),
        snat: match (&ri.snat_device, ri.snat_ip, ri.snat_mac) {
            (Some(device), Some(ip), Some(mac)) => Some(SnatPort {
                device: device.clone(),
                ip,
                mac,
            }),
            _ => None,
        },
    })
}

/// The gateway port and its external network's (first) subnet.
fn gateway(t: &Topology, g: &RouterGateway) -> Result<HostGateway, TopologyError> {
    let sub = t
        .subnets
        .iter()
        .find(|s| s.network == g.network)
        .ok_or_else(|| {
            err(
                format!("network {}", g.network),
                "subnet",
                "external network has no subnet",
            )
        })?;
    Ok(HostGateway {
        network: g.network.clone(),
        device: g.device.clone(),
        ip: g.ip,
        mac: g.mac,
        cidr: sub.cidr.clone(),
        gateway_ip: sub.gateway_ip,
        enable_snat: g.enable_snat,
    })
}
