//! br-int's flows (spec §2): anti-spoofing for VM ports (tables 0, 24,
//! 25), DVR-MAC dispatch and VLAN translation on the patch ports (table
//! 0), direct delivery of routed frames to local ports (tables 2, 60),
//! and each table's default.

use super::flow_text::FlowText;
use super::host_view::HostView;
use crate::model::{Cidr, NetworkType, Port, PortOwner};
use crate::placement::subnet_of_port;
use pipeline::key::Mac;
use std::net::{Ipv4Addr, Ipv6Addr};

const BR_INT: &str = "br-int";

/// Writes all of br-int's flows, in the order the agent installs them.
pub(super) fn add_flows(cx: &HostView, out: &mut FlowText) {
    out.add(
        BR_INT,
        "table=0,priority=65535,vlan_tci=0x0fff/0x1fff actions=drop",
    );
    for vm in cx.t.ports.iter().filter(|p| p.host == cx.host.name) {
        if vm.owner == PortOwner::Compute && vm.port_security {
            add_anti_spoofing(cx, vm, out);
        }
    }
    add_dvr_mac_dispatch(cx, out);
    add_vlan_translation(cx, out);
    for (_, bridge) in cx.host.mappings() {
        let ofp = cx.ofport(&format!("int-{bridge}"));
        out.add(
            BR_INT,
            &format!("table=0,priority=2,in_port={ofp} actions=drop"),
        );
    }
    out.add(BR_INT, "table=0,priority=0 actions=goto_table:60");
    out.add(BR_INT, "table=1,priority=1 actions=drop");
    add_dvr_delivery(cx, out);
    out.add(BR_INT, "table=2,priority=1 actions=drop");
    out.add(BR_INT, "table=23,priority=0 actions=drop");
    out.add(BR_INT, "table=24,priority=0 actions=drop");
    out.add(BR_INT, "table=60,priority=3 actions=NORMAL");
}

/// A VM port's ARP/NA checks (table 24, unless an address pair opens every
/// address) and source MAC checks (table 25) (spec §2.2, §2.6, §2.7).
fn add_anti_spoofing(cx: &HostView, vm: &Port, out: &mut FlowText) {
    let ofp = cx.ofport(&vm.device);
    let open = vm
        .allowed_address_pairs
        .iter()
        .any(|a| Cidr::parse(&a.ip).is_some_and(|c| c.len == 0));
    if !open {
        out.add(
            BR_INT,
            &format!("table=0,priority=10,arp,in_port={ofp} actions=goto_table:24"),
        );
        out.add(
            BR_INT,
            &format!("table=0,priority=10,icmp6,in_port={ofp},icmp_type=136 actions=goto_table:24"),
        );
    }
    out.add(
        BR_INT,
        &format!("table=0,priority=9,in_port={ofp} actions=goto_table:25"),
    );
    let macs = allowed_macs(vm);
    if !open {
        for a in arp_sources(vm) {
            out.add(
                BR_INT,
                &format!("table=24,priority=2,arp,in_port={ofp},arp_spa={a} actions=goto_table:25"),
            );
        }
        for m in &macs {
            out.add(
                BR_INT,
                &format!("table=24,priority=2,icmp6,in_port={ofp},icmp_type=136,nd_target={} actions=goto_table:60", link_local(*m)),
            );
        }
    }
    for m in &macs {
        out.add(
            BR_INT,
            &format!("table=25,priority=2,in_port={ofp},dl_src={m} actions=goto_table:60"),
        );
    }
}

/// The port's MAC, then its address pairs' MACs, each once.
fn allowed_macs(vm: &Port) -> Vec<Mac> {
    let mut macs = vec![vm.mac];
    for a in &vm.allowed_address_pairs {
        if let Some(m) = a.mac {
            if !macs.contains(&m) {
                macs.push(m);
            }
        }
    }
    macs
}

/// The ARP sender addresses the port may use, as `arp_spa` values: its
/// fixed IP, then its address pairs (a /32 as a bare address), each once.
fn arp_sources(vm: &Port) -> Vec<String> {
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
    addrs
}

/// EUI-64 link-local address of a MAC (for the ICMPv6 NA anti-spoof flows).
fn link_local(mac: Mac) -> Ipv6Addr {
    let b = mac.0;
    Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        (((b[0] ^ 0x02) as u16) << 8) | b[1] as u16,
        ((b[2] as u16) << 8) | 0xff,
        0xfe00 | b[3] as u16,
        ((b[4] as u16) << 8) | b[5] as u16,
    )
}

/// Frames from another host's DVR MAC on a patch port are routed frames:
/// table 2 restores their gateway MAC (spec §2.2).
fn add_dvr_mac_dispatch(cx: &HostView, out: &mut FlowText) {
    for (_, bridge) in cx.host.mappings() {
        let ofp = cx.ofport(&format!("int-{bridge}"));
        for h in cx.other_hosts() {
            out.add(
                BR_INT,
                &format!(
                    "table=0,priority=4,in_port={ofp},dl_src={} actions=goto_table:2",
                    h.dvr_mac
                ),
            );
        }
    }
}

/// Frames from a physical bridge get their network's local VLAN: the
/// segmentation id rewritten, or a tag pushed for a flat network (spec §2.2).
fn add_vlan_translation(cx: &HostView, out: &mut FlowText) {
    for (physnet, bridge) in cx.host.mappings() {
        let ofp = cx.ofport(&format!("int-{bridge}"));
        for (n, lvid) in cx.local_networks_on(physnet) {
            match (n.network_type.clone(), n.segmentation_id) {
                (NetworkType::Vlan, Some(seg)) => out.add(
                    BR_INT,
                    &format!("table=0,priority=3,in_port={ofp},dl_vlan={seg} actions=mod_vlan_vid:{lvid},goto_table:60"),
                ),
                _ => out.add(
                    BR_INT,
                    &format!(
                        "table=0,priority=3,in_port={ofp},vlan_tci=0x0000/0x1fff actions=push_vlan:0x8100,mod_vlan_vid:{lvid},goto_table:60"
                    ),
                ),
            }
        }
    }
}

/// DVR delivery (tables 2 and 60, spec §2.4, §2.8): a routed frame for a
/// local DVR-serviced port on a VLAN subnet of a router here (and, on the
/// SNAT host, for the subnet's SNAT port) gets the gateway MAC as source
/// and goes straight to the port, untagged.
fn add_dvr_delivery(cx: &HostView, out: &mut FlowText) {
    for (r, ri, sub) in cx.router_subnets() {
        let Some(seg) = cx.t.network(&sub.network).and_then(|n| n.segmentation_id) else {
            continue;
        };
        let mut targets: Vec<(Mac, u32)> = cx
            .t
            .ports
            .iter()
            .filter(|p| p.host == cx.host.name && subnet_of_port(cx.t, &sub.name, p.ip, &p.network))
            .map(|p| (p.mac, cx.ofport(&p.device)))
            .collect();
        if cx.is_snat_host(r) {
            if let (Some(dev), Some(mac)) = (&ri.snat_device, ri.snat_mac) {
                targets.insert(0, (mac, cx.ofport(dev)));
            }
        }
        for (mac, ofp) in targets {
            out.add(BR_INT, &format!("table=2,priority=4,dl_vlan={seg},dl_dst={mac} actions=mod_dl_src:{},goto_table:60", ri.mac));
            out.add(BR_INT, &format!("table=60,priority=4,dl_vlan={seg},dl_dst={mac} actions=strip_vlan,output:{ofp}"));
        }
    }
}
