//! The `NORMAL` action: a VLAN-aware MAC-learning switch, as OVS does it.
//!
//! * Input VLAN: an access port's tag (a frame arriving tagged with a
//!   non-zero VID is dropped); on a trunk, the frame's VID *as the OpenFlow
//!   actions left it* (0 when untagged), which must be one the trunk carries.
//!   The tag is the frame's outer one, 802.1Q or 802.1ad alike.
//! * Learning: the (VLAN, source MAC) → input port, unless the source is
//!   multicast. Only NORMAL learns: flows that output directly (br-int
//!   table 60 priority 4, br-vlan table 3 priority 2) bypass learning, which
//!   is what keeps gateway and DVR MACs from being learned on the wrong port.
//! * Forwarding: a known unicast destination goes to its learned port (never
//!   back out of the input port); unknown unicast, broadcast and multicast
//!   flood to every other port carrying the VLAN, except no-flood ports.
//!   Reserved groups (01:80:c2:00:00:0x such as STP, and the Cisco and
//!   Extreme groups Open vSwitch keeps) are not forwarded.
//! * Output: untagged on access ports, tagged with the VLAN on trunks
//!   (for VLAN 0: a priority tag if the frame came with a priority, else
//!   untagged), with the TPID and priority the frame came with. A frame that
//!   would still carry a tag on an access port (the inner tag of a
//!   double-tagged frame) is not sent there (`output_to`, which the flows'
//!   outputs take too).

use super::ctx::Ctx;
use crate::bridge::mac::MacLearnRef;
use crate::drop::DropReason;
use crate::key::{Field, Mac, VLAN_CFI, VLAN_PCP_MASK};
use crate::switch::{Bridge, Port, VlanMode};
use crate::trace::TraceEvent;
use crate::wire::{ethertype, vlan};

/// The addresses Open vSwitch's NORMAL never forwards (its
/// `eth_addr_is_reserved`): 802.1D's group 01:80:c2:00:00:00-0f (STP,
/// pause, LACP, LLDP, ...), Extreme's EDP and EAPS, and Cisco's ISL,
/// CDP/VTP/DTP/PAgP/UDLD, PVST+, UplinkFast/FlexLink and CFM groups.
fn is_reserved_multicast(m: Mac) -> bool {
    const OTHERS: [u64; 15] = [
        0x00e0_2b00_0000, // EDP
        0x00e0_2b00_0004, // EAPS
        0x00e0_2b00_0006, // EAPS
        0x0100_0c00_0000, // ISL
        0x0100_0ccc_cccc, // PAgP, UDLD, CDP, DTP, VTP
        0x0100_0ccc_cccd, // PVST+
        0x0100_0ccd_cdcd, // STP UplinkFast, FlexLink
        0x0100_0ccc_ccc0, // Cisco CFM
        0x0100_0ccc_ccc1,
        0x0100_0ccc_ccc2,
        0x0100_0ccc_ccc3,
        0x0100_0ccc_ccc4,
        0x0100_0ccc_ccc5,
        0x0100_0ccc_ccc6,
        0x0100_0ccc_ccc7,
    ];
    let v = m.to_u64();
    v & !0xf == 0x0180_c200_0000 || OTHERS.contains(&v)
}

pub(super) fn normal<'a>(ctx: &mut Ctx<'a>, bridge: &'a Bridge) {
    for f in [Field::InPort, Field::VlanTci, Field::DlSrc, Field::DlDst] {
        ctx.wc.set(f, f.full_mask());
    }
    let Some(in_port) = bridge
        .port_by_ofport(ctx.key.in_port())
        .and_then(|id| ctx.sw.port(id))
    else {
        ctx.drop(DropReason::NoSuchPort);
        return;
    };
    let (src, dst) = (ctx.key.dl_src(), ctx.key.dl_dst());
    if is_reserved_multicast(dst) {
        ctx.drop(DropReason::NormalReservedMulticast);
        return;
    }
    let vlan = match &in_port.vlan {
        VlanMode::Access { tag } => match ctx.key.vlan_vid() {
            Some(vid) if vid != 0 => {
                ctx.event(|_| TraceEvent::Normal {
                    vlan: *tag,
                    decision: format!(
                        "dropping VLAN {vid} tagged packet received on access port {}",
                        in_port.name
                    ),
                });
                ctx.drop(DropReason::NormalTaggedOnAccess);
                return;
            }
            _ => *tag,
        },
        VlanMode::Trunk { .. } => {
            let vid = ctx.key.vlan_vid().unwrap_or(0);
            if !in_port.vlan.carries(vid) {
                ctx.event(|_| TraceEvent::Normal {
                    vlan: vid,
                    decision: format!(
                        "dropping VLAN {vid} packet received on port {}, which does not carry it",
                        in_port.name
                    ),
                });
                ctx.drop(DropReason::NormalVlanNotAllowed);
                return;
            }
            vid
        }
    };
    let now = ctx.opts.now_ns;
    ctx.uses_mac_table = true;
    if !src.is_multicast() {
        if ctx.opts.learn {
            bridge.macs.learn(vlan, src, in_port.id, now);
        }
        ctx.learned.push(MacLearnRef {
            bridge: bridge.index,
            vlan,
            mac: src,
            port: in_port.id,
        });
        ctx.event(|_| TraceEvent::Normal {
            vlan,
            decision: format!("learned {src} on port {} in VLAN {vlan}", in_port.name),
        });
    }
    let learned = if dst.is_multicast() {
        None
    } else {
        bridge.macs.lookup(vlan, dst, now)
    };
    match learned.and_then(|id| ctx.sw.port(id)) {
        Some(out) if out.id == in_port.id => {
            ctx.event(|_| TraceEvent::Normal {
                vlan,
                decision: format!("learned port {} is the input port: dropping", out.name),
            });
            ctx.drop(DropReason::NormalLearnedOnInPort);
        }
        Some(out) => {
            ctx.event(|_| TraceEvent::Normal {
                vlan,
                decision: format!("forwarding to learned port {}", out.name),
            });
            output_in_vlan(ctx, out, vlan);
        }
        None => {
            let targets: Vec<&'a Port> = bridge
                .ports
                .iter()
                .filter_map(|id| ctx.sw.port(*id))
                .filter(|p| p.id != in_port.id && !p.no_flood && p.vlan.carries(vlan))
                .collect();
            ctx.event(|_| TraceEvent::Normal {
                vlan,
                decision: if dst.is_multicast() {
                    format!(
                        "multicast/broadcast destination: flooding to {} port(s) of VLAN {vlan}",
                        targets.len()
                    )
                } else {
                    format!(
                        "no learned MAC for destination: flooding to {} port(s) of VLAN {vlan}",
                        targets.len()
                    )
                },
            });
            if targets.is_empty() {
                ctx.drop(DropReason::NormalNoPorts);
            }
            for p in targets {
                output_in_vlan(ctx, p, vlan);
            }
        }
    }
}

/// Outputs with the VLAN encoding `port` expects, then restores the key.
/// A trunk gets the tag with the TPID the frame came with (802.1Q when it
/// came untagged), as Open vSwitch keeps it.
fn output_in_vlan<'a>(ctx: &mut Ctx<'a>, port: &'a Port, vlan: u16) {
    let saved = (ctx.key.vlan_tci(), ctx.key.get(Field::VlanTpid));
    // The frame's priority goes along: in VLAN 0 a trunk keeps a
    // priority tag (PCP not 0) as Open vSwitch does, and sends the frame
    // untagged only when there is neither VLAN nor priority to carry.
    let pcp = saved.0 & VLAN_PCP_MASK;
    let tag = match port.vlan {
        VlanMode::Access { .. } => None,
        VlanMode::Trunk { .. } if vlan == 0 && pcp == 0 => None,
        VlanMode::Trunk { .. } => {
            Some((ctx.key.vlan_tpid().unwrap_or(ethertype::VLAN), pcp | vlan))
        }
    };
    ctx.key.set_vlan(tag);
    output_to(ctx, port);
    ctx.key.set(Field::VlanTci, saved.0 as u64);
    ctx.key.set(Field::VlanTpid, saved.1);
}

/// Outputs to a port of the bridge, as NORMAL and flows (`output`, `FLOOD`,
/// `IN_PORT`) do: a frame still carrying a tag never leaves an access port
/// (a VM's, a router's). That is the inner tag of a double-tagged frame once
/// NORMAL or `strip_vlan` popped the outer one, which Open vSwitch delivers
/// (its default `vlan-limit` of 1 leaves the inner tag in the payload) and
/// through which a VM would receive another VLAN's traffic.
pub(super) fn output_to<'a>(ctx: &mut Ctx<'a>, port: &'a Port) {
    if let VlanMode::Access { .. } = port.vlan {
        ctx.wc.unwildcard(Field::VlanTci, VLAN_CFI as u64);
        ctx.wc.set(Field::DlType, Field::DlType.full_mask());
        let inner = ctx.key.dl_type();
        if ctx.key.vlan_vid().is_some() || vlan::is_tpid(inner) {
            ctx.event(|c| TraceEvent::Note {
                text: format!(
                    "frame would leave access port {} still tagged ({:#06x}): not sent there",
                    port.name,
                    c.key.vlan_tpid().unwrap_or(inner)
                ),
            });
            ctx.drop(DropReason::TaggedOutOfAccessPort);
            return;
        }
    }
    ctx.output_port(port)
}
