//! The ports the OVS agent plugs on a host (spec §1.2): br-int's in plug
//! order with their OpenFlow numbers and local VLANs, and each physical
//! bridge's NIC and patch port.

use super::host_view::HostView;
use crate::model::{Cidr, Host, PortOwner, Router, Topology};
use crate::placement::gateway_networks;
use crate::validate::{err, TopologyError};
use pipeline::switch::{PortConfig, PortKind, VlanMode};
use std::collections::BTreeMap;

/// A port on br-int and what the agent knows about it.
pub(super) struct IntPort {
    device: String,
    network: Option<String>,
    kind: IntPortKind,
}

enum IntPortKind {
    Patch {
        bridge: String,
    },
    /// qr-/sg-/qg-/fg-: router-owned (`network:` device owner).
    Router,
    Vm {
        port: usize,
    },
}

fn router_port(device: &str, network: Option<String>) -> IntPort {
    IntPort {
        device: device.to_string(),
        network,
        kind: IntPortKind::Router,
    }
}

/// br-int's ports in the agent's plug order: patch ports, `qr-`, `fg-`,
/// the SNAT host's `sg-`/`qg-`, then VM and DHCP ports.
pub(super) fn plug_order(
    t: &Topology,
    host: &Host,
    routers: &[&Router],
) -> Result<Vec<IntPort>, TopologyError> {
    let mut int_ports: Vec<IntPort> = Vec::new();
    for (_, bridge) in host.mappings() {
        int_ports.push(IntPort {
            device: format!("int-{bridge}"),
            network: None,
            kind: IntPortKind::Patch {
                bridge: bridge.to_string(),
            },
        });
    }
    let net_of_subnet = |s: &str| t.subnet(s).map(|x| x.network.clone());
    for r in routers {
        for ri in &r.interfaces {
            int_ports.push(router_port(&ri.device, net_of_subnet(&ri.subnet)));
        }
    }
    for net in gateway_networks(routers) {
        let fg = t.fip_gateway(&host.name, net).ok_or_else(|| {
            err(
                format!("host {}", host.name),
                "fip_gateway",
                format!("needs a fip_gateway on {net} (a router here has a gateway on it)"),
            )
        })?;
        int_ports.push(router_port(&fg.device, Some(fg.network.clone())));
    }
    for r in routers
        .iter()
        .filter(|r| r.snat_host.as_deref() == Some(host.name.as_str()))
    {
        for ri in &r.interfaces {
            if let Some(dev) = &ri.snat_device {
                int_ports.push(router_port(dev, net_of_subnet(&ri.subnet)));
            }
        }
        if let Some(gw) = &r.gateway {
            int_ports.push(router_port(&gw.device, Some(gw.network.clone())));
        }
    }
    for (i, p) in t
        .ports
        .iter()
        .enumerate()
        .filter(|(_, p)| p.host == host.name)
    {
        int_ports.push(IntPort {
            device: p.device.clone(),
            network: Some(p.network.clone()),
            kind: IntPortKind::Vm { port: i },
        });
    }
    Ok(int_ports)
}

/// OpenFlow numbers: pinned ones first, the rest lowest-free in plug order.
pub(super) fn number(
    t: &Topology,
    host_name: &str,
    int_ports: &[IntPort],
) -> BTreeMap<String, u32> {
    let pinned: BTreeMap<&str, u32> = t
        .ports
        .iter()
        .filter(|p| p.host == host_name)
        .filter_map(|p| p.ofport.map(|o| (p.device.as_str(), o)))
        .collect();
    let mut used: Vec<u32> = pinned.values().copied().collect();
    let mut ofports: BTreeMap<String, u32> = BTreeMap::new();
    for p in int_ports {
        let n = match pinned.get(p.device.as_str()) {
            Some(&n) => n,
            None => {
                let n = (1..).find(|n| !used.contains(n)).unwrap_or(1);
                used.push(n);
                n
            }
        };
        ofports.insert(p.device.clone(), n);
    }
    ofports
}

/// Local VLANs of the networks with a port here: pinned ones first, the
/// rest lowest-free (skipping every pinned value) in order of first
/// appearance.
pub(super) fn local_vlans(host: &Host, int_ports: &[IntPort]) -> BTreeMap<String, u16> {
    let mut lvids: BTreeMap<String, u16> = BTreeMap::new();
    for (net, &v) in &host.local_vlans {
        if int_ports.iter().any(|p| p.network.as_deref() == Some(net)) {
            lvids.insert(net.clone(), v);
        }
    }
    for p in int_ports {
        if let Some(net) = &p.network {
            if !lvids.contains_key(net) {
                let taken: Vec<u16> = lvids.values().copied().collect();
                let v = (1..4095)
                    .find(|v| !taken.contains(v) && !host.local_vlans.values().any(|x| x == v))
                    .unwrap_or(4094);
                lvids.insert(net.clone(), v);
            }
        }
    }
    lvids
}

/// br-int's port configurations: patch ports trunk, the others are access
/// ports of their network's local VLAN (4095, the dead VLAN, without one);
/// VM ports carry their port-security sources.
pub(super) fn int_bridge_ports(cx: &HostView, int_ports: &[IntPort]) -> Vec<PortConfig> {
    let access = |net: &Option<String>| match net.as_ref().and_then(|n| cx.lvids.get(n)) {
        Some(&tag) => VlanMode::Access { tag },
        None => VlanMode::Access { tag: 4095 },
    };
    let mut ports = Vec::new();
    for p in int_ports {
        let (kind, vlan) = match &p.kind {
            IntPortKind::Patch { bridge } => (
                PortKind::Patch {
                    peer: format!("phy-{bridge}"),
                },
                VlanMode::Trunk { trunks: vec![] },
            ),
            IntPortKind::Router => (PortKind::Internal, access(&p.network)),
            IntPortKind::Vm { .. } => (PortKind::System, access(&p.network)),
        };
        let mut pc = PortConfig::new(&p.device, kind, vlan);
        pc.ofport = cx.ofports.get(&p.device).copied();
        if let IntPortKind::Vm { port } = p.kind {
            pc.ip_sources = ip_sources(&cx.t.ports[port]);
        }
        ports.push(pc);
    }
    ports
}

/// A VM port's allowed IPv4 sources under port security: its fixed IP and
/// its allowed address pairs (None: port security off, or a pair opens
/// every address).
fn ip_sources(vm: &crate::model::Port) -> Option<Vec<(u32, u8)>> {
    if vm.owner != PortOwner::Compute || !vm.port_security {
        return None;
    }
    let mut v = vec![(u32::from(vm.ip), 32)];
    for a in &vm.allowed_address_pairs {
        let c = Cidr::parse(&a.ip)?;
        if c.len == 0 {
            return None;
        }
        v.push((c.addr, c.len));
    }
    Some(v)
}

/// A physical bridge's ports: the operator's NIC (1; `<bridge>-nic` when
/// the host names none) and the patch to br-int (2, plugged after it).
pub(super) fn phys_bridge_ports(host: &Host, bridge: &str) -> Vec<PortConfig> {
    let nic = host
        .nics
        .get(bridge)
        .cloned()
        .unwrap_or_else(|| format!("{bridge}-nic"));
    let mut nic_port = PortConfig::new(&nic, PortKind::System, VlanMode::Trunk { trunks: vec![] });
    nic_port.ofport = Some(1);
    let mut patch = PortConfig::new(
        &format!("phy-{bridge}"),
        PortKind::Patch {
            peer: format!("int-{bridge}"),
        },
        VlanMode::Trunk { trunks: vec![] },
    );
    patch.ofport = Some(2);
    vec![nic_port, patch]
}
