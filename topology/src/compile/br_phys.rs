//! A physical bridge's flows (spec §3 br-vlan, §4 br-ex: one layout,
//! parameterised by the physnet it carries). Table 0 sends what comes from
//! br-int to table 1 and what comes from the wire to table 3; table 1
//! keeps the distributed gateways' ARP and MACs off the wire and rewrites
//! routed frames' source to this host's DVR MAC; table 2 translates local
//! VLANs to segmentation ids; table 3 hands other hosts' routed frames to
//! br-int without learning their DVR MACs.

use super::flow_text::FlowText;
use super::host_view::HostView;
use crate::model::NetworkType;

/// The patch port to br-int: the NIC is 1, the patch 2 (the agent adds the
/// patch after the operator's NIC).
const PHY: u32 = 2;

/// Writes `bridge`'s flows, which carries `physnet`.
pub(super) fn add_flows(cx: &HostView, physnet: &str, bridge: &str, out: &mut FlowText) {
    out.add(
        bridge,
        &format!("table=0,priority=2,in_port={PHY} actions=goto_table:1"),
    );
    out.add(bridge, "table=0,priority=1 actions=goto_table:3");
    out.add(bridge, "table=0,priority=0 actions=NORMAL");
    add_gateway_isolation(cx, physnet, bridge, out);
    out.add(bridge, "table=1,priority=0 actions=goto_table:2");
    add_vlan_translation(cx, physnet, bridge, out);
    out.add(
        bridge,
        &format!("table=2,priority=2,in_port={PHY} actions=drop"),
    );
    for h in cx.other_hosts() {
        out.add(
            bridge,
            &format!(
                "table=3,priority=2,dl_src={} actions=output:{PHY}",
                h.dvr_mac
            ),
        );
    }
    out.add(bridge, "table=3,priority=1 actions=NORMAL");
}

/// Table 1, per router interface on a VLAN network of `physnet` (spec
/// §3.3): ARP for the gateway address and frames to the gateway MAC stay
/// local; frames from it leave with this host's DVR MAC.
fn add_gateway_isolation(cx: &HostView, physnet: &str, bridge: &str, out: &mut FlowText) {
    for (_, ri, sub) in cx.router_subnets() {
        let Some(n) =
            cx.t.network(&sub.network)
                .filter(|n| n.physnet == physnet && n.network_type == NetworkType::Vlan)
        else {
            continue;
        };
        let Some(&lvid) = cx.lvids.get(&n.name) else {
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
            &format!(
                "table=1,priority=1,dl_vlan={lvid},dl_src={} actions=mod_dl_src:{},goto_table:2",
                ri.mac, cx.host.dvr_mac
            ),
        );
    }
}

/// Local VLAN → wire (spec §3.4, §4): the segmentation id for a VLAN
/// network (table 2), untagged for a flat one (table 0).
fn add_vlan_translation(cx: &HostView, physnet: &str, bridge: &str, out: &mut FlowText) {
    for (n, lvid) in cx.local_networks_on(physnet) {
        match (n.network_type.clone(), n.segmentation_id) {
            (NetworkType::Vlan, Some(seg)) => out.add(
                bridge,
                &format!(
                    "table=2,priority=4,in_port={PHY},dl_vlan={lvid} actions=mod_vlan_vid:{seg},NORMAL"
                ),
            ),
            _ => out.add(
                bridge,
                &format!(
                    "table=0,priority=4,in_port={PHY},dl_vlan={lvid} actions=strip_vlan,NORMAL"
                ),
            ),
        }
    }
}
