//! Per-host compilation of the bridges: the job Neutron's OVS agent does.
//!
//! A pure function from the topology to one host's bridges, ports and
//! flows (spec §1.2, §2–§4). Flows are produced as ovs-ofctl text, the way
//! the agent's ofctl driver programs them, and parsed with the same parser
//! that reads operator input; the text is what an operator would compare
//! against `dump-flows`.
//!
//! Port numbering follows the agent's plug order, which reproduces the
//! spec's Appendix A: the int-/phy- patch pairs (in `bridge_mappings`
//! order), then router ports (`qr-` per interface, `fg-`, and on the SNAT
//! host `sg-`/`qg-`), then VM and DHCP ports in topology order. Local VLANs
//! are allocated lowest-free in the order networks first appear on the host
//! (pinned values win).

use super::model::{Cidr, Host, NetworkType, PortOwner, Topology};
use super::validate::{err, TopologyError};
use pipeline::flow::text::parse_flow;
use pipeline::flow::{Flow, NoPortNames};
use pipeline::key::Mac;
use pipeline::switch::{PortConfig, PortKind, VlanMode};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

pub use super::placement::routers_on_host;
use super::placement::subnet_of_port;

/// One bridge of a host: its ports and flows.
#[derive(Clone, Debug, PartialEq)]
pub struct BridgePlan {
    pub name: String,
    pub ports: Vec<PortConfig>,
    pub flows: Vec<Flow>,
}

/// Everything the agents program on one host's bridges.
#[derive(Clone, Debug, PartialEq)]
pub struct HostPlan {
    pub host: String,
    pub bridges: Vec<BridgePlan>,
    /// network → local VLAN.
    pub local_vlans: BTreeMap<String, u16>,
}

impl HostPlan {
    pub fn bridge(&self, name: &str) -> Option<&BridgePlan> {
        self.bridges.iter().find(|b| b.name == name)
    }

    /// The OpenFlow port number of a device on its bridge.
    pub fn ofport(&self, device: &str) -> Option<u32> {
        self.bridges
            .iter()
            .flat_map(|b| &b.ports)
            .find(|p| p.name == device)
            .and_then(|p| p.ofport)
    }
}

/// A port on br-int and what the agent knows about it.
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

struct IntPort {
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

/// EUI-64 link-local address of a MAC (for the ICMPv6 NA anti-spoof flows).
fn link_local(mac: Mac) -> Ipv4OrV6 {
    let b = mac.0;
    let groups = [
        0xfe80u16,
        0,
        0,
        0,
        (((b[0] ^ 0x02) as u16) << 8) | b[1] as u16,
        ((b[2] as u16) << 8) | 0xff,
        0xfe00 | b[3] as u16,
        ((b[4] as u16) << 8) | b[5] as u16,
    ];
    Ipv4OrV6(std::net::Ipv6Addr::new(
        groups[0], groups[1], groups[2], groups[3], groups[4], groups[5], groups[6], groups[7],
    ))
}

struct Ipv4OrV6(std::net::Ipv6Addr);

impl std::fmt::Display for Ipv4OrV6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Compiles `host`'s bridges. The topology must have passed `validate`.
pub fn compile_host(t: &Topology, host_name: &str) -> Result<HostPlan, TopologyError> {
    let host = t
        .hosts
        .iter()
        .find(|h| h.name == host_name)
        .ok_or_else(|| err(format!("host {host_name}"), "name", "no such host"))?;
    let routers = routers_on_host(t, host_name);
    let is_snat_host = |r: &super::model::Router| r.snat_host.as_deref() == Some(host_name);

    // br-int ports in plug order.
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
    let net_of_subnet = |s: &str| {
        t.subnets
            .iter()
            .find(|x| x.name == s)
            .map(|x| x.network.clone())
    };
    for r in &routers {
        for ri in &r.interfaces {
            int_ports.push(IntPort {
                device: ri.device.clone(),
                network: net_of_subnet(&ri.subnet),
                kind: IntPortKind::Router,
            });
        }
    }
    let mut fip_nets: Vec<&str> = Vec::new();
    for r in &routers {
        if let Some(gw) = &r.gateway {
            if !fip_nets.contains(&gw.network.as_str()) {
                fip_nets.push(&gw.network);
            }
        }
    }
    for net in &fip_nets {
        let fg = t
            .fip_gateways
            .iter()
            .find(|g| g.host == host_name && g.network == *net)
            .ok_or_else(|| {
                err(
                    format!("host {host_name}"),
                    "fip_gateway",
                    format!("needs a fip_gateway on {net} (a router here has a gateway on it)"),
                )
            })?;
        int_ports.push(IntPort {
            device: fg.device.clone(),
            network: Some(fg.network.clone()),
            kind: IntPortKind::Router,
        });
    }
    for r in routers.iter().filter(|r| is_snat_host(r)) {
        for ri in &r.interfaces {
            if let Some(dev) = &ri.snat_device {
                int_ports.push(IntPort {
                    device: dev.clone(),
                    network: net_of_subnet(&ri.subnet),
                    kind: IntPortKind::Router,
                });
            }
        }
        if let Some(gw) = &r.gateway {
            int_ports.push(IntPort {
                device: gw.device.clone(),
                network: Some(gw.network.clone()),
                kind: IntPortKind::Router,
            });
        }
    }
    for (i, p) in t
        .ports
        .iter()
        .enumerate()
        .filter(|(_, p)| p.host == host_name)
    {
        int_ports.push(IntPort {
            device: p.device.clone(),
            network: Some(p.network.clone()),
            kind: IntPortKind::Vm { port: i },
        });
    }

    // OpenFlow numbers: pinned ones first, the rest lowest-free in plug order.
    let pinned: BTreeMap<&str, u32> = t
        .ports
        .iter()
        .filter(|p| p.host == host_name)
        .filter_map(|p| p.ofport.map(|o| (p.device.as_str(), o)))
        .collect();
    let mut used: Vec<u32> = pinned.values().copied().collect();
    let mut ofports: BTreeMap<String, u32> = BTreeMap::new();
    for p in &int_ports {
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

    // Local VLANs in order of first appearance.
    let mut lvids: BTreeMap<String, u16> = BTreeMap::new();
    for (net, &v) in &host.local_vlans {
        if int_ports.iter().any(|p| p.network.as_deref() == Some(net)) {
            lvids.insert(net.clone(), v);
        }
    }
    for p in &int_ports {
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

    let mut out = FlowText::default();
    let other_hosts: Vec<&Host> = t.hosts.iter().filter(|h| h.name != host_name).collect();
    let network = |name: &str| t.networks.iter().find(|n| n.name == name);

    // ---- br-int (spec §2)
    let int_of = |dev: &str| ofports.get(dev).copied().unwrap_or(0);
    out.add(
        "br-int",
        "table=0,priority=65535,vlan_tci=0x0fff/0x1fff actions=drop",
    );
    for p in &int_ports {
        let IntPortKind::Vm { port } = p.kind else {
            continue;
        };
        let vm = &t.ports[port];
        if vm.owner != PortOwner::Compute || !vm.port_security {
            continue;
        }
        let ofp = int_of(&vm.device);
        let open = vm
            .allowed_address_pairs
            .iter()
            .any(|a| Cidr::parse(&a.ip).is_some_and(|c| c.len == 0));
        if !open {
            out.add(
                "br-int",
                &format!("table=0,priority=10,arp,in_port={ofp} actions=goto_table:24"),
            );
            out.add(
                "br-int",
                &format!(
                    "table=0,priority=10,icmp6,in_port={ofp},icmp_type=136 actions=goto_table:24"
                ),
            );
        }
        out.add(
            "br-int",
            &format!("table=0,priority=9,in_port={ofp} actions=goto_table:25"),
        );
        let mut allowed_macs = vec![vm.mac];
        for a in &vm.allowed_address_pairs {
            if let Some(m) = a.mac {
                if !allowed_macs.contains(&m) {
                    allowed_macs.push(m);
                }
            }
        }
        if !open {
            let mut addrs = vec![vm.ip.to_string()];
            for a in &vm.allowed_address_pairs {
                if let Some(c) = Cidr::parse(&a.ip) {
                    let s = if c.len == 32 {
                        Ipv4Addr::from(c.addr).to_string()
                    } else {
                        c.to_string()
                    };
                    if !addrs.contains(&s) {
                        addrs.push(s);
                    }
                }
            }
            for a in &addrs {
                out.add(
                    "br-int",
                    &format!(
                        "table=24,priority=2,arp,in_port={ofp},arp_spa={a} actions=goto_table:25"
                    ),
                );
            }
            for m in &allowed_macs {
                out.add(
                    "br-int",
                    &format!("table=24,priority=2,icmp6,in_port={ofp},icmp_type=136,nd_target={} actions=goto_table:60", link_local(*m)),
                );
            }
        }
        for m in &allowed_macs {
            out.add(
                "br-int",
                &format!("table=25,priority=2,in_port={ofp},dl_src={m} actions=goto_table:60"),
            );
        }
    }
    for (_, bridge) in host.mappings() {
        let ofp = int_of(&format!("int-{bridge}"));
        for h in &other_hosts {
            out.add(
                "br-int",
                &format!(
                    "table=0,priority=4,in_port={ofp},dl_src={} actions=goto_table:2",
                    h.dvr_mac
                ),
            );
        }
    }
    for (physnet, bridge) in host.mappings() {
        let ofp = int_of(&format!("int-{bridge}"));
        for (net, &lvid) in &lvids {
            let Some(n) = network(net).filter(|n| n.physnet == physnet) else {
                continue;
            };
            match (n.network_type.clone(), n.segmentation_id) {
                (NetworkType::Vlan, Some(seg)) => out.add(
                    "br-int",
                    &format!("table=0,priority=3,in_port={ofp},dl_vlan={seg} actions=mod_vlan_vid:{lvid},goto_table:60"),
                ),
                _ => out.add(
                    "br-int",
                    &format!(
                        "table=0,priority=3,in_port={ofp},vlan_tci=0x0000/0x1fff actions=push_vlan:0x8100,mod_vlan_vid:{lvid},goto_table:60"
                    ),
                ),
            }
        }
    }
    for (_, bridge) in host.mappings() {
        out.add(
            "br-int",
            &format!(
                "table=0,priority=2,in_port={} actions=drop",
                int_of(&format!("int-{bridge}"))
            ),
        );
    }
    out.add("br-int", "table=0,priority=0 actions=goto_table:60");
    out.add("br-int", "table=1,priority=1 actions=drop");
    // DVR delivery (table 2 / 60): local DVR-serviced ports on subnets of routers here.
    for r in &routers {
        for ri in &r.interfaces {
            let Some(sub) = t.subnets.iter().find(|s| s.name == ri.subnet) else {
                continue;
            };
            let Some(seg) = network(&sub.network).and_then(|n| n.segmentation_id) else {
                continue;
            };
            let mut targets: Vec<(Mac, u32)> = t
                .ports
                .iter()
                .filter(|p| p.host == host_name && subnet_of_port(t, &sub.name, p.ip, &p.network))
                .map(|p| (p.mac, int_of(&p.device)))
                .collect();
            if is_snat_host(r) {
                if let (Some(dev), Some(mac)) = (&ri.snat_device, ri.snat_mac) {
                    targets.insert(0, (mac, int_of(dev)));
                }
            }
            for (mac, ofp) in targets {
                out.add("br-int", &format!("table=2,priority=4,dl_vlan={seg},dl_dst={mac} actions=mod_dl_src:{},goto_table:60", ri.mac));
                out.add("br-int", &format!("table=60,priority=4,dl_vlan={seg},dl_dst={mac} actions=strip_vlan,output:{ofp}"));
            }
        }
    }
    out.add("br-int", "table=2,priority=1 actions=drop");
    out.add("br-int", "table=23,priority=0 actions=drop");
    out.add("br-int", "table=24,priority=0 actions=drop");
    out.add("br-int", "table=60,priority=3 actions=NORMAL");

    // ---- physical bridges (spec §3, §4)
    for (physnet, bridge) in host.mappings() {
        let phy = 2u32; // NIC is 1, patch is 2 (the agent adds the patch after the operator's NIC)
        out.add(
            bridge,
            &format!("table=0,priority=2,in_port={phy} actions=goto_table:1"),
        );
        out.add(bridge, "table=0,priority=1 actions=goto_table:3");
        out.add(bridge, "table=0,priority=0 actions=NORMAL");
        for r in &routers {
            for ri in &r.interfaces {
                let Some(sub) = t.subnets.iter().find(|s| s.name == ri.subnet) else {
                    continue;
                };
                let Some(n) = network(&sub.network)
                    .filter(|n| n.physnet == physnet && n.network_type == NetworkType::Vlan)
                else {
                    continue;
                };
                let Some(&lvid) = lvids.get(&n.name) else {
                    continue;
                };
                out.add(
                    bridge,
                    &format!(
                        "table=1,priority=3,arp,dl_vlan={lvid},arp_tpa={} actions=drop",
                        sub.gateway_ip
                    ),
                );
                out.add(
                    bridge,
                    &format!(
                        "table=1,priority=2,dl_vlan={lvid},dl_dst={} actions=drop",
                        ri.mac
                    ),
                );
                out.add(
                    bridge,
                    &format!("table=1,priority=1,dl_vlan={lvid},dl_src={} actions=mod_dl_src:{},goto_table:2", ri.mac, host.dvr_mac),
                );
            }
        }
        out.add(bridge, "table=1,priority=0 actions=goto_table:2");
        for (net, &lvid) in &lvids {
            let Some(n) = network(net).filter(|n| n.physnet == physnet) else {
                continue;
            };
            match (n.network_type.clone(), n.segmentation_id) {
                (NetworkType::Vlan, Some(seg)) => {
                    out.add(bridge, &format!("table=2,priority=4,in_port={phy},dl_vlan={lvid} actions=mod_vlan_vid:{seg},NORMAL"))
                }
                _ => out.add(bridge, &format!("table=0,priority=4,in_port={phy},dl_vlan={lvid} actions=strip_vlan,NORMAL")),
            }
        }
        out.add(
            bridge,
            &format!("table=2,priority=2,in_port={phy} actions=drop"),
        );
        for h in &other_hosts {
            out.add(
                bridge,
                &format!(
                    "table=3,priority=2,dl_src={} actions=output:{phy}",
                    h.dvr_mac
                ),
            );
        }
        out.add(bridge, "table=3,priority=1 actions=NORMAL");
    }

    // ---- assemble
    let mut bridges = Vec::new();
    let mut int = BridgePlan {
        name: "br-int".into(),
        ports: Vec::new(),
        flows: Vec::new(),
    };
    for p in &int_ports {
        let (kind, vlan) = match &p.kind {
            IntPortKind::Patch { bridge } => (
                PortKind::Patch {
                    peer: format!("phy-{bridge}"),
                },
                VlanMode::Trunk { trunks: vec![] },
            ),
            IntPortKind::Router => (PortKind::Internal, access(&lvids, &p.network)),
            IntPortKind::Vm { .. } => (PortKind::System, access(&lvids, &p.network)),
        };
        let mut pc = PortConfig::new(&p.device, kind, vlan);
        pc.ofport = ofports.get(&p.device).copied();
        if let IntPortKind::Vm { port } = p.kind {
            pc.ip_sources = ip_sources(&t.ports[port]);
        }
        int.ports.push(pc);
    }
    int.flows = out.take("br-int")?;
    bridges.push(int);
    for (_, bridge) in host.mappings() {
        let mut b = BridgePlan {
            name: bridge.to_string(),
            ports: Vec::new(),
            flows: Vec::new(),
        };
        let nic = host
            .nics
            .get(bridge)
            .cloned()
            .unwrap_or_else(|| format!("{bridge}-nic"));
        let mut nic_port =
            PortConfig::new(&nic, PortKind::System, VlanMode::Trunk { trunks: vec![] });
        nic_port.ofport = Some(1);
        let mut patch = PortConfig::new(
            &format!("phy-{bridge}"),
            PortKind::Patch {
                peer: format!("int-{bridge}"),
            },
            VlanMode::Trunk { trunks: vec![] },
        );
        patch.ofport = Some(2);
        b.ports = vec![nic_port, patch];
        b.flows = out.take(bridge)?;
        bridges.push(b);
    }
    Ok(HostPlan {
        host: host_name.to_string(),
        bridges,
        local_vlans: lvids,
    })
}

fn access(lvids: &BTreeMap<String, u16>, net: &Option<String>) -> VlanMode {
    match net.as_ref().and_then(|n| lvids.get(n)) {
        Some(&tag) => VlanMode::Access { tag },
        None => VlanMode::Access { tag: 4095 },
    }
}

/// Flow text per bridge, parsed on `take`.
#[derive(Default)]
struct FlowText {
    lines: Vec<(String, String)>,
}

impl FlowText {
    fn add(&mut self, bridge: &str, line: &str) {
        self.lines.push((bridge.to_string(), line.to_string()));
    }

    fn take(&mut self, bridge: &str) -> Result<Vec<Flow>, TopologyError> {
        let mut flows = Vec::new();
        for (_, line) in self.lines.iter().filter(|(b, _)| b == bridge) {
            let f = parse_flow(line, &NoPortNames).map_err(|e| {
                err(
                    format!("bridge {bridge}"),
                    "flows",
                    format!("generated flow `{line}` does not parse: {e}"),
                )
            })?;
            // The same match and priority twice: the later install wins (spec §10.3).
            flows.retain(|x: &Flow| {
                !(x.table == f.table && x.priority == f.priority && x.matches == f.matches)
            });
            flows.push(f);
        }
        Ok(flows)
    }
}
