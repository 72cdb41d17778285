//! A decoded FLOW_MOD in ovs-ofctl's flow syntax, for the switch's
//! existing ovs-ofctl flow parser:
//! `table=N[,priority=P][,cookie=0x…][,timeouts][,<match>] actions=<actions>`.
//!
//! Match fields are printed the way OVS's `match_format()` prints them:
//! in its fixed order (ct fields, protocol shorthand, registers, tun_id,
//! metadata, in_port, VLAN, Ethernet, L3, L4), with OVS's names (`dl_vlan`
//! or `vlan_tci`, `dl_src`, `nw_src`/`arp_spa`/`ipv6_src`, `tp_src` or
//! `icmp_type`) and value styles (`reg5=0x5`, `ct_zone=2`,
//! `ct_state=+est-rel`, CIDR masks). OXM and NXM spellings of one field
//! print alike. Actions are in `text_action`.
//!
//! Differences from `ovs-ofctl ofp-print` of the same FLOW_MOD (the golden
//! tests normalise these): ofp-print writes `ADD`, `table:N` only when N
//! is not 0 and `cookie:0x…` after the match; this writes `table=N` always
//! and `cookie=0x…` (when not 0) right after the priority.

use std::fmt::Write;

use crate::action::port;
use crate::flow_mod::{flow_mod_flags, FlowMod, FlowModCommand};
use crate::oxm::{FieldInfo, Match, Slot};
use crate::text_action::instructions_text;
use crate::text_value::{
    c_hex, ct_state_text, eth_masked, full_mask, ipv4_masked, ipv6_masked, port_text,
    port_text_width,
};

/// OpenFlow's default priority; ovs-ofctl omits it.
pub const DEFAULT_PRIORITY: u16 = 0x8000;

/// Renders a FLOW_MOD as one ovs-ofctl flow. ADD and MODIFY carry
/// `actions=`; DELETE does not, and shows `cookie=…/mask` and `out_port`
/// when they restrict it.
pub fn flow_mod_text(fm: &FlowMod) -> String {
    let mut s = format!("table={}", fm.table_id);
    if fm.priority != DEFAULT_PRIORITY {
        let _ = write!(s, ",priority={}", fm.priority);
    }
    let deleting = matches!(
        fm.command,
        FlowModCommand::Delete | FlowModCommand::DeleteStrict
    );
    if deleting
        || matches!(
            fm.command,
            FlowModCommand::Modify | FlowModCommand::ModifyStrict
        )
    {
        if fm.cookie_mask != 0 {
            let _ = write!(s, ",cookie={:#x}/{:#x}", fm.cookie, fm.cookie_mask);
        }
    } else if fm.cookie != 0 {
        let _ = write!(s, ",cookie={:#x}", fm.cookie);
    }
    if fm.idle_timeout != 0 {
        let _ = write!(s, ",idle_timeout={}", fm.idle_timeout);
    }
    if fm.hard_timeout != 0 {
        let _ = write!(s, ",hard_timeout={}", fm.hard_timeout);
    }
    for (bit, name) in [
        (flow_mod_flags::SEND_FLOW_REM, "send_flow_rem"),
        (flow_mod_flags::CHECK_OVERLAP, "check_overlap"),
        (flow_mod_flags::RESET_COUNTS, "reset_counts"),
        (flow_mod_flags::NO_PKT_COUNTS, "no_packet_counts"),
        (flow_mod_flags::NO_BYT_COUNTS, "no_byte_counts"),
    ] {
        if fm.flags & bit != 0 {
            let _ = write!(s, ",{name}");
        }
    }
    if deleting && fm.out_port != port::ANY {
        let _ = write!(s, ",out_port={}", port_text(fm.out_port));
    }
    let m = match_text(&fm.match_);
    if !m.is_empty() {
        s.push(',');
        s.push_str(&m);
    }
    if !deleting {
        s.push_str(" actions=");
        s.push_str(&instructions_text(&fm.instructions));
    }
    s
}

/// A match entry reduced to its slot, value and mask (all ones when the
/// entry had none), over the field's width.
#[derive(Debug, Clone, Copy)]
struct SlotValue {
    slot: Slot,
    value: u128,
    mask: u128,
    info: &'static FieldInfo,
}

fn slot_values(m: &Match) -> Vec<SlotValue> {
    m.entries
        .iter()
        .filter_map(|e| {
            let info = e.field.info()?;
            let mask = e.mask.unwrap_or_else(|| full_mask(info.len));
            Some(SlotValue {
                slot: info.slot,
                value: e.value,
                mask,
                info,
            })
        })
        .collect()
}

fn get(v: &[SlotValue], slot: Slot) -> Option<SlotValue> {
    v.iter().copied().find(|x| x.slot == slot && x.mask != 0)
}

const ETH_TYPE_IP: u128 = 0x0800;
const ETH_TYPE_IPV6: u128 = 0x86dd;
const ETH_TYPE_ARP: u128 = 0x0806;
const ETH_TYPE_RARP: u128 = 0x8035;

/// The match in ovs-ofctl syntax (no priority), empty for match-all.
pub fn match_text(m: &Match) -> String {
    let v = slot_values(m);
    let mut parts: Vec<String> = Vec::new();
    let hex32 = |name: &str, x: SlotValue, parts: &mut Vec<String>| {
        parts.push(if x.mask == full_mask(x.info.len) {
            format!("{name}={}", c_hex(x.value))
        } else {
            format!("{name}={}/{}", c_hex(x.value), c_hex(x.mask))
        });
    };
    if let Some(x) = get(&v, Slot::PktMark) {
        hex32("pkt_mark", x, &mut parts);
    }
    if let Some(x) = get(&v, Slot::ConjId) {
        parts.push(format!("conj_id={}", x.value));
    }
    if let Some(x) = get(&v, Slot::CtState) {
        parts.push(format!(
            "ct_state={}",
            ct_state_text(x.value as u32, x.mask as u32)
        ));
    }
    if let Some(x) = get(&v, Slot::CtZone) {
        parts.push(uint_masked("ct_zone", x.value, x.mask, 0xffff));
    }
    if let Some(x) = get(&v, Slot::CtMark) {
        hex32("ct_mark", x, &mut parts);
    }
    if let Some(x) = get(&v, Slot::CtLabel) {
        hex32("ct_label", x, &mut parts);
    }
    let dl_type = get(&v, Slot::EthType).map(|x| x.value);
    // OVS keeps an ARP opcode where it keeps the IP protocol.
    let nw_proto = get(&v, Slot::IpProto)
        .or_else(|| get(&v, Slot::ArpOp))
        .map(|x| x.value);
    let (shorthand, skip_proto) = protocol_shorthand(dl_type, nw_proto);
    if let Some(p) = shorthand {
        parts.push(p.to_string());
    }
    for n in 0..16u8 {
        if let Some(x) = get(&v, Slot::Reg(n)) {
            hex32(&format!("reg{n}"), x, &mut parts);
        }
    }
    if let Some(x) = get(&v, Slot::TunId) {
        hex32("tun_id", x, &mut parts);
    }
    if let Some(x) = get(&v, Slot::Metadata) {
        hex32("metadata", x, &mut parts);
    }
    if let Some(x) = get(&v, Slot::InPort) {
        parts.push(format!(
            "in_port={}",
            port_text_width(x.value as u32, x.info.len)
        ));
    }
    if let Some(vlan) = vlan_text(&v) {
        parts.push(vlan);
    }
    for (slot, name) in [(Slot::EthSrc, "dl_src"), (Slot::EthDst, "dl_dst")] {
        if let Some(x) = get(&v, slot) {
            parts.push(format!("{name}={}", eth_masked(x.value, x.mask)));
        }
    }
    if let (None, Some(t)) = (shorthand, dl_type) {
        parts.push(format!("dl_type=0x{t:04x}"));
    }
    l3_text(&v, dl_type, &mut parts);
    if let (false, Some(p)) = (skip_proto, nw_proto) {
        let name = if is_arp(dl_type) {
            "arp_op"
        } else {
            "nw_proto"
        };
        parts.push(format!("{name}={p}"));
    }
    if is_arp(dl_type) {
        for (slot, name) in [(Slot::ArpSha, "arp_sha"), (Slot::ArpTha, "arp_tha")] {
            if let Some(x) = get(&v, slot) {
                parts.push(format!("{name}={}", eth_masked(x.value, x.mask)));
            }
        }
    }
    ip_header_text(&v, &mut parts);
    l4_text(&v, dl_type, nw_proto, &mut parts);
    parts.join(",")
}

fn is_arp(dl_type: Option<u128>) -> bool {
    matches!(dl_type, Some(ETH_TYPE_ARP | ETH_TYPE_RARP))
}

/// `ip`, `tcp`, `arp`, `icmp6`…: the shorthand OVS prints for dl_type
/// (and nw_proto), and whether nw_proto is then implied.
fn protocol_shorthand(
    dl_type: Option<u128>,
    nw_proto: Option<u128>,
) -> (Option<&'static str>, bool) {
    match (dl_type, nw_proto) {
        (Some(ETH_TYPE_IP), Some(1)) => (Some("icmp"), true),
        (Some(ETH_TYPE_IP), Some(6)) => (Some("tcp"), true),
        (Some(ETH_TYPE_IP), Some(17)) => (Some("udp"), true),
        (Some(ETH_TYPE_IP), Some(132)) => (Some("sctp"), true),
        (Some(ETH_TYPE_IP), _) => (Some("ip"), false),
        (Some(ETH_TYPE_IPV6), Some(58)) => (Some("icmp6"), true),
        (Some(ETH_TYPE_IPV6), Some(6)) => (Some("tcp6"), true),
        (Some(ETH_TYPE_IPV6), Some(17)) => (Some("udp6"), true),
        (Some(ETH_TYPE_IPV6), Some(132)) => (Some("sctp6"), true),
        (Some(ETH_TYPE_IPV6), _) => (Some("ipv6"), false),
        (Some(ETH_TYPE_ARP), _) => (Some("arp"), false),
        (Some(ETH_TYPE_RARP), _) => (Some("rarp"), false),
        (Some(0x8847), _) => (Some("mpls"), false),
        (Some(0x8848), _) => (Some("mplsm"), false),
        _ => (None, false),
    }
}

/// The 802.1Q TCI (value, mask) the VLAN fields describe, as OVS keeps
/// it: OXM vlan_vid's OFPVID_PRESENT becomes the CFI bit, vlan_pcp sets
/// CFI and the PCP bits.
fn vlan_tci(v: &[SlotValue]) -> Option<(u16, u16)> {
    if let Some(x) = get(v, Slot::VlanTci) {
        return Some((x.value as u16, x.mask as u16));
    }
    let vid = get(v, Slot::VlanVid);
    let pcp = get(v, Slot::VlanPcp);
    if vid.is_none() && pcp.is_none() {
        return None;
    }
    let (mut tci, mut mask) = (0u16, 0u16);
    if let Some(x) = vid {
        tci |= (x.value as u16) & 0x1fff;
        mask |= (x.mask as u16) & 0x1fff;
    }
    if let Some(x) = pcp {
        tci |= (((x.value as u16) & 7) << 13) | 0x1000;
        mask |= 0xe000 | 0x1000;
    }
    Some((tci & mask, mask))
}

fn vlan_text(v: &[SlotValue]) -> Option<String> {
    let (tci, mask) = vlan_tci(v)?;
    if mask == 0 {
        return None;
    }
    let vid_mask = mask & 0x0fff;
    let pcp_mask = mask & 0xe000;
    let cfi = mask & 0x1000 != 0 && tci & 0x1000 != 0;
    if cfi
        && (vid_mask == 0 || vid_mask == 0x0fff)
        && (pcp_mask == 0 || pcp_mask == 0xe000)
        && (vid_mask != 0 || pcp_mask != 0)
    {
        let mut out = Vec::new();
        if vid_mask != 0 {
            out.push(format!("dl_vlan={}", tci & 0x0fff));
        }
        if pcp_mask != 0 {
            out.push(format!("dl_vlan_pcp={}", tci >> 13));
        }
        return Some(out.join(","));
    }
    if mask == 0xffff {
        Some(format!("vlan_tci=0x{tci:04x}"))
    } else {
        Some(format!("vlan_tci=0x{tci:04x}/0x{mask:04x}"))
    }
}

fn l3_text(v: &[SlotValue], dl_type: Option<u128>, parts: &mut Vec<String>) {
    if dl_type == Some(ETH_TYPE_IPV6) {
        for (slot, name) in [(Slot::Ipv6Src, "ipv6_src"), (Slot::Ipv6Dst, "ipv6_dst")] {
            if let Some(x) = get(v, slot) {
                parts.push(format!("{name}={}", ipv6_masked(x.value, x.mask)));
            }
        }
        if let Some(x) = get(v, Slot::Ipv6Label) {
            if x.mask == 0xffff_ffff {
                parts.push(format!("ipv6_label=0x{:05x}", x.value));
            } else {
                parts.push(format!("ipv6_label=0x{:05x}/0x{:05x}", x.value, x.mask));
            }
        }
        return;
    }
    let (src, dst) = if is_arp(dl_type) {
        ("arp_spa", "arp_tpa")
    } else {
        ("nw_src", "nw_dst")
    };
    for (slot, name) in [(Slot::NwSrc, src), (Slot::NwDst, dst)] {
        if let Some(x) = get(v, slot) {
            parts.push(format!(
                "{name}={}",
                ipv4_masked(x.value as u32, x.mask as u32)
            ));
        }
    }
}

fn ip_header_text(v: &[SlotValue], parts: &mut Vec<String>) {
    let tos = get(v, Slot::IpDscp)
        .map(|x| (x.value << 2) & 0xfc)
        .or_else(|| get(v, Slot::IpTos).map(|x| x.value & 0xfc));
    if let Some(t) = tos {
        parts.push(format!("nw_tos={t}"));
    }
    if let Some(x) = get(v, Slot::IpEcn) {
        parts.push(format!("nw_ecn={}", x.value & 3));
    }
    if let Some(x) = get(v, Slot::IpTtl) {
        parts.push(format!("nw_ttl={}", x.value));
    }
    if let Some(x) = get(v, Slot::IpFrag) {
        let (f, m) = (x.value & 3, x.mask & 3);
        let word = match m {
            3 => match f {
                0 => "no",
                1 => "first",
                3 => "later",
                _ => "<error>",
            },
            1 => ["no", "yes"][(f & 1) as usize],
            2 => ["not_later", "later"][((f >> 1) & 1) as usize],
            _ => "",
        };
        if !word.is_empty() {
            parts.push(format!("nw_frag={word}"));
        }
    }
}

fn l4_text(
    v: &[SlotValue],
    dl_type: Option<u128>,
    nw_proto: Option<u128>,
    parts: &mut Vec<String>,
) {
    let icmp4 = dl_type == Some(ETH_TYPE_IP) && nw_proto == Some(1);
    let icmp6 = dl_type == Some(ETH_TYPE_IPV6) && nw_proto == Some(58);
    let (src, dst) = if icmp4 || icmp6 {
        ("icmp_type", "icmp_code")
    } else {
        ("tp_src", "tp_dst")
    };
    for (slot, name) in [(Slot::TpSrc, src), (Slot::TpDst, dst)] {
        if let Some(x) = get(v, slot) {
            // A 1-byte ICMP type/code fills the whole 16-bit tp_src in OVS.
            let mask = if x.info.len == 1 { 0xffff } else { x.mask };
            parts.push(uint_masked(name, x.value, mask, 0xffff));
        }
    }
    if icmp6 {
        if let Some(x) = get(v, Slot::NdTarget) {
            parts.push(format!("nd_target={}", ipv6_masked(x.value, x.mask)));
        }
        for (slot, name) in [(Slot::NdSll, "nd_sll"), (Slot::NdTll, "nd_tll")] {
            if let Some(x) = get(v, slot) {
                parts.push(format!("{name}={}", eth_masked(x.value, x.mask)));
            }
        }
    }
}

/// `name=N` when the mask is full, else `name=0x…/0x…` (OVS's
/// `format_be16_masked`).
fn uint_masked(name: &str, value: u128, mask: u128, full: u128) -> String {
    if mask == full {
        format!("{name}={value}")
    } else {
        format!("{name}={value:#x}/{mask:#x}")
    }
}
