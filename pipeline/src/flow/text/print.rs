//! Printing as `ovs-ofctl dump-flows` does: match fields in OVS's order
//! with protocol shorthands folded in, actions in their NXM forms, and the
//! flow with or without its statistics.

use super::value::{
    ct_state_names, format_field_value, format_flags, format_port, format_subfield, tcp_flag_names,
};
use crate::flow::{
    Action, CtAction, CtZone, Flow, FlowStats, Match, NatKind, NatSpec, PortNames, DEFAULT_PRIORITY,
};
use crate::key::{Field, Mac, VLAN_CFI, VLAN_TPID_8021AD};
use crate::wire::{ethertype, ipproto};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

fn put_ip_masked(out: &mut String, name: &str, v: u64, m: u64) {
    if m == 0 {
        return;
    }
    let (v, m) = (v as u32, m as u32);
    let _ = write!(out, "{name}={}", Ipv4Addr::from(v));
    if m != u32::MAX {
        if m.leading_ones() + m.trailing_zeros() == 32 {
            let _ = write!(out, "/{}", m.leading_ones());
        } else {
            let _ = write!(out, "/{}", Ipv4Addr::from(m));
        }
    }
    out.push(',');
}

fn put_mac_masked(out: &mut String, name: &str, v: u64, m: u64) {
    if m == 0 {
        return;
    }
    let _ = write!(out, "{name}={}", Mac::from_u64(v));
    if m != Mac::BROADCAST.to_u64() {
        let _ = write!(out, "/{}", Mac::from_u64(m));
    }
    out.push(',');
}

/// `name=V` (decimal) when exact, `name=0xV/0xM` when masked.
fn put_num_masked(out: &mut String, name: &str, v: u64, m: u64, full: u64) {
    if m == 0 {
        return;
    }
    if m == full {
        let _ = write!(out, "{name}={v},");
    } else {
        let _ = write!(out, "{name}={v:#x}/{m:#x},");
    }
}

/// Like `put_num_masked` but hex even when exact (registers, metadata).
fn put_hex_masked(out: &mut String, name: &str, v: u64, m: u64, full: u64) {
    if m == 0 {
        return;
    }
    let _ = write!(out, "{name}={v:#x}");
    if m != full {
        let _ = write!(out, "/{m:#x}");
    }
    out.push(',');
}

/// Formats a match in ovs-ofctl's field order (no trailing comma).
pub fn format_match(m: &Match, ports: &dyn PortNames) -> String {
    let mut s = String::new();
    format_match_into(&mut s, m, ports);
    if s.ends_with(',') {
        s.pop();
    }
    s
}

/// Writes a match's fields in ovs-ofctl's order, each followed by a comma.
fn format_match_into(s: &mut String, m: &Match, ports: &dyn PortNames) {
    put_conntrack(s, m);
    let p = Protocol::of(m);
    if let Some(name) = p.shorthand {
        s.push_str(name);
        s.push(',');
    }
    put_registers_and_in_port(s, m, ports);
    put_vlan(s, m);
    put_vlan_tpid(s, m);
    put_ethernet(s, m, &p);
    put_network(s, m, &p);
    put_transport(s, m, &p);
}

/// The match's `dl_type` and `nw_proto` (value, mask), and the protocol
/// shorthand (`tcp`, `arp`, `ipv6`…) that prints them when they are exact.
struct Protocol {
    dl: u64,
    dlm: u64,
    proto: u64,
    pm: u64,
    shorthand: Option<&'static str>,
    /// The shorthand names `nw_proto` too (`tcp`, not `ip`).
    shorthand_has_proto: bool,
}

impl Protocol {
    fn of(m: &Match) -> Protocol {
        let (dl, dlm) = m.get(Field::DlType);
        let (proto, pm) = m.get(Field::NwProto);
        let exact_proto = (pm == 0xff).then_some(proto as u8);
        let name = match (dl as u16, exact_proto) {
            _ if dlm != 0xffff => None,
            (ethertype::IPV4, Some(ipproto::ICMP)) => Some(("icmp", true)),
            (ethertype::IPV4, Some(ipproto::TCP)) => Some(("tcp", true)),
            (ethertype::IPV4, Some(ipproto::UDP)) => Some(("udp", true)),
            (ethertype::IPV4, _) => Some(("ip", false)),
            (ethertype::IPV6, Some(ipproto::ICMPV6)) => Some(("icmp6", true)),
            (ethertype::IPV6, Some(ipproto::TCP)) => Some(("tcp6", true)),
            (ethertype::IPV6, Some(ipproto::UDP)) => Some(("udp6", true)),
            (ethertype::IPV6, _) => Some(("ipv6", false)),
            (ethertype::ARP, _) => Some(("arp", false)),
            _ => None,
        };
        Protocol {
            dl,
            dlm,
            proto,
            pm,
            shorthand: name.map(|(n, _)| n),
            shorthand_has_proto: name.is_some_and(|(_, p)| p),
        }
    }

    fn dl_exact(&self) -> bool {
        self.dlm == 0xffff
    }

    fn proto_exact(&self) -> bool {
        self.pm == 0xff
    }

    fn is(&self, ethertype: u16) -> bool {
        self.dl_exact() && self.dl as u16 == ethertype
    }
}

/// `ct_state` and `ct_zone`.
fn put_conntrack(s: &mut String, m: &Match) {
    let (cs, csm) = m.get(Field::CtState);
    if csm != 0 {
        s.push_str("ct_state=");
        format_flags(s, cs, csm, &ct_state_names(), 0xff);
        s.push(',');
    }
    let (cz, czm) = m.get(Field::CtZone);
    put_num_masked(s, "ct_zone", cz, czm, 0xffff);
}

/// `reg0`..`reg7`, `metadata`, `in_port`.
fn put_registers_and_in_port(s: &mut String, m: &Match, ports: &dyn PortNames) {
    for r in 0..8u8 {
        let (v, mk) = m.get(Field::Reg(r));
        put_hex_masked(s, Field::Reg(r).name(), v, mk, 0xffff_ffff);
    }
    let (md, mdm) = m.get(Field::Metadata);
    put_hex_masked(s, "metadata", md, mdm, u64::MAX);
    let (ip, ipm) = m.get(Field::InPort);
    if ipm != 0 {
        s.push_str("in_port=");
        format_port(s, ip as u32, ports);
        s.push(',');
    }
}

/// The TCI as `dl_vlan`/`dl_vlan_pcp` when it says "tagged, with this VID
/// and/or PCP", else as `vlan_tci=V[/M]`.
fn put_vlan(s: &mut String, m: &Match) {
    let (tci, tm) = m.get(Field::VlanTci);
    let (tci, tm) = (tci as u16, tm as u16);
    if tm == 0 {
        return;
    }
    let vid_mask = tm & 0x0fff;
    let pcp_mask = tm & 0xe000;
    let cfi = tm & VLAN_CFI;
    if cfi != 0
        && tci & VLAN_CFI != 0
        && (vid_mask == 0 || vid_mask == 0x0fff)
        && (pcp_mask == 0 || pcp_mask == 0xe000)
        && (vid_mask != 0 || pcp_mask != 0)
    {
        if vid_mask != 0 {
            let _ = write!(s, "dl_vlan={},", tci & 0x0fff);
        }
        if pcp_mask != 0 {
            let _ = write!(s, "dl_vlan_pcp={},", tci >> 13);
        }
    } else if tm == 0xffff {
        let _ = write!(s, "vlan_tci=0x{tci:04x},");
    } else {
        let _ = write!(s, "vlan_tci=0x{tci:04x}/0x{tm:04x},");
    }
}

/// Our `vlan_tpid` (which TPID the outer tag has), when matched.
fn put_vlan_tpid(s: &mut String, m: &Match) {
    let (code, mask) = m.get(Field::VlanTpid);
    if mask != 0 {
        let tpid = if code == VLAN_TPID_8021AD {
            ethertype::QINQ
        } else {
            ethertype::VLAN
        };
        let _ = write!(s, "vlan_tpid=0x{tpid:04x},");
    }
}

/// `dl_src`, `dl_dst`, and `dl_type` unless the shorthand said it.
fn put_ethernet(s: &mut String, m: &Match, p: &Protocol) {
    let (v, mk) = m.get(Field::DlSrc);
    put_mac_masked(s, "dl_src", v, mk);
    let (v, mk) = m.get(Field::DlDst);
    put_mac_masked(s, "dl_dst", v, mk);
    let (dl, dlm) = (p.dl, p.dlm);
    if p.shorthand.is_none() && dlm != 0 {
        if p.dl_exact() {
            let _ = write!(s, "dl_type=0x{dl:04x},");
        } else {
            let _ = write!(s, "dl_type=0x{dl:04x}/0x{dlm:04x},");
        }
    }
}

/// Addresses (`arp_spa`/`arp_tpa` for ARP, `nw_src`/`nw_dst` but not for
/// IPv6), `nw_proto`/`arp_op` unless the shorthand said it, ARP hardware
/// addresses, `nw_tos`, `nw_ttl`, `nw_frag`.
fn put_network(s: &mut String, m: &Match, p: &Protocol) {
    let is_arp = p.is(ethertype::ARP);
    let (src, srcm) = m.get(Field::NwSrc);
    let (dst, dstm) = m.get(Field::NwDst);
    if is_arp {
        put_ip_masked(s, "arp_spa", src, srcm);
        put_ip_masked(s, "arp_tpa", dst, dstm);
    } else if p.is(ethertype::IPV6) {
        put_ipv6_masked(s, "ipv6_src", m, Field::Ipv6SrcHi, Field::Ipv6SrcLo);
        put_ipv6_masked(s, "ipv6_dst", m, Field::Ipv6DstHi, Field::Ipv6DstLo);
    } else {
        put_ip_masked(s, "nw_src", src, srcm);
        put_ip_masked(s, "nw_dst", dst, dstm);
    }
    if !p.shorthand_has_proto && p.pm != 0 {
        let name = if is_arp { "arp_op" } else { "nw_proto" };
        put_num_masked(s, name, p.proto, p.pm, 0xff);
    }
    if is_arp {
        let (v, mk) = m.get(Field::ArpSha);
        put_mac_masked(s, "arp_sha", v, mk);
        let (v, mk) = m.get(Field::ArpTha);
        put_mac_masked(s, "arp_tha", v, mk);
    }
    let (tos, tosm) = m.get(Field::NwTos);
    if tosm & 0xfc != 0 {
        let _ = write!(s, "nw_tos={},", tos & 0xfc);
    }
    let (ttl, ttlm) = m.get(Field::NwTtl);
    put_num_masked(s, "nw_ttl", ttl, ttlm, 0xff);
    let (fr, frm) = m.get(Field::NwFrag);
    if let Some(f) = frag_name(fr as u8, frm as u8) {
        let _ = write!(s, "nw_frag={f},");
    }
}

/// `name=addr[/prefix|/mask],` of a 128-bit field, if it is matched.
fn put_ipv6_masked(s: &mut String, name: &str, m: &Match, hi: Field, lo: Field) {
    let (h, hm) = m.get(hi);
    let (l, lm) = m.get(lo);
    let (v, mask) = (
        ((h as u128) << 64) | l as u128,
        ((hm as u128) << 64) | lm as u128,
    );
    if mask == 0 {
        return;
    }
    let _ = write!(s, "{name}={}", Ipv6Addr::from(v));
    if mask != u128::MAX {
        if mask.leading_ones() + mask.trailing_zeros() == 128 {
            let _ = write!(s, "/{}", mask.leading_ones());
        } else {
            let _ = write!(s, "/{}", Ipv6Addr::from(mask));
        }
    }
    s.push(',');
}

/// The `nw_frag=` name of fragment bits `fr` under mask `frm`, if any.
fn frag_name(fr: u8, frm: u8) -> Option<&'static str> {
    use crate::key::{FRAG_ANY, FRAG_LATER};
    match (frm & (FRAG_ANY | FRAG_LATER), fr) {
        (0, _) => None,
        (3, 0) => Some("no"),
        (3, 1) => Some("first"),
        (3, 3) => Some("later"),
        (FRAG_ANY, 0) => Some("no"),
        (FRAG_ANY, _) => Some("yes"),
        (FRAG_LATER, 0) => Some("not_later"),
        (FRAG_LATER, _) => Some("later"),
        _ => None,
    }
}

/// `icmp_type`/`icmp_code` (and `nd_target`) for ICMP, else
/// `tp_src`/`tp_dst`; then `tcp_flags`.
fn put_transport(s: &mut String, m: &Match, p: &Protocol) {
    let (ts, tsm) = m.get(Field::TpSrc);
    let (td, tdm) = m.get(Field::TpDst);
    let icmp = p.proto_exact()
        && ((p.is(ethertype::IPV4) && p.proto as u8 == ipproto::ICMP)
            || (p.is(ethertype::IPV6) && p.proto as u8 == ipproto::ICMPV6));
    if icmp {
        put_num_masked(s, "icmp_type", ts, tsm, 0xffff);
        put_num_masked(s, "icmp_code", td, tdm, 0xffff);
        let (hi, him) = m.get(Field::NdTargetHi);
        let (lo, lom) = m.get(Field::NdTargetLo);
        if him != 0 || lom != 0 {
            let a = ((hi as u128) << 64) | lo as u128;
            let _ = write!(s, "nd_target={},", Ipv6Addr::from(a));
        }
        if p.is(ethertype::IPV6) {
            let (v, mk) = m.get(Field::ArpSha);
            put_mac_masked(s, "nd_sll", v, mk);
            let (v, mk) = m.get(Field::ArpTha);
            put_mac_masked(s, "nd_tll", v, mk);
        }
    } else {
        put_num_masked(s, "tp_src", ts, tsm, 0xffff);
        put_num_masked(s, "tp_dst", td, tdm, 0xffff);
    }
    let (tf, tfm) = m.get(Field::TcpFlags);
    if tfm != 0 {
        s.push_str("tcp_flags=");
        format_flags(s, tf, tfm, &tcp_flag_names(), 0x0fff);
        s.push(',');
    }
}

/// Formats an action list as dump-flows does (`drop` when empty).
pub fn format_actions(actions: &[Action], ports: &dyn PortNames) -> String {
    if actions.is_empty() {
        return "drop".into();
    }
    let mut s = String::new();
    for (i, a) in actions.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        format_action(&mut s, a, ports);
    }
    s
}

fn format_action(s: &mut String, a: &Action, ports: &dyn PortNames) {
    match a {
        Action::Output(p) => {
            s.push_str("output:");
            format_port(s, *p, ports);
        }
        Action::Normal => s.push_str("NORMAL"),
        Action::Flood => s.push_str("FLOOD"),
        Action::InPort => s.push_str("IN_PORT"),
        Action::Local => s.push_str("LOCAL"),
        Action::Resubmit { port, table } => match (port, table) {
            (Some(p), None) => {
                s.push_str("resubmit:");
                format_port(s, *p, ports);
            }
            _ => {
                s.push_str("resubmit(");
                if let Some(p) = port {
                    format_port(s, *p, ports);
                }
                s.push(',');
                if let Some(t) = table {
                    let _ = write!(s, "{t}");
                }
                s.push(')');
            }
        },
        Action::GotoTable(t) => {
            let _ = write!(s, "goto_table:{t}");
        }
        Action::ModVlanVid(v) => {
            let _ = write!(s, "mod_vlan_vid:{v}");
        }
        Action::ModVlanPcp(p) => {
            let _ = write!(s, "mod_vlan_pcp:{p}");
        }
        Action::StripVlan => s.push_str("strip_vlan"),
        Action::PushVlan(t) => {
            let _ = write!(s, "push_vlan:0x{t:04x}");
        }
        Action::ModDlSrc(m) => {
            let _ = write!(s, "mod_dl_src:{m}");
        }
        Action::ModDlDst(m) => {
            let _ = write!(s, "mod_dl_dst:{m}");
        }
        Action::ModNwSrc(a) => {
            let _ = write!(s, "mod_nw_src:{}", Ipv4Addr::from(*a));
        }
        Action::ModNwDst(a) => {
            let _ = write!(s, "mod_nw_dst:{}", Ipv4Addr::from(*a));
        }
        Action::ModNwTos(t) => {
            let _ = write!(s, "mod_nw_tos:{t}");
        }
        Action::ModTpSrc(p) => {
            let _ = write!(s, "mod_tp_src:{p}");
        }
        Action::ModTpDst(p) => {
            let _ = write!(s, "mod_tp_dst:{p}");
        }
        Action::DecTtl => s.push_str("dec_ttl"),
        Action::SetField { field, value, mask } => {
            s.push_str("set_field:");
            format_field_value(s, *field, *value);
            if *mask != field.full_mask() {
                s.push('/');
                format_field_value(s, *field, *mask);
            }
            let _ = write!(s, "->{}", field.name());
        }
        Action::Load {
            field,
            ofs,
            nbits,
            value,
        } => {
            let _ = write!(s, "load:{value:#x}->");
            format_subfield(s, *field, *ofs, *nbits);
        }
        Action::Move {
            src,
            src_ofs,
            dst,
            dst_ofs,
            nbits,
        } => {
            s.push_str("move:");
            format_subfield(s, *src, *src_ofs, *nbits);
            s.push_str("->");
            format_subfield(s, *dst, *dst_ofs, *nbits);
        }
        Action::Ct(ct) => format_ct(s, ct),
    }
}

fn format_ct(s: &mut String, ct: &CtAction) {
    s.push_str("ct(");
    let start = s.len();
    if ct.commit {
        s.push_str("commit,");
    }
    if let Some(t) = ct.table {
        let _ = write!(s, "table={t},");
    }
    match &ct.zone {
        Some(CtZone::Value(z)) => {
            let _ = write!(s, "zone={z},");
        }
        Some(CtZone::Field { field, ofs, nbits }) => {
            s.push_str("zone=");
            format_subfield(s, *field, *ofs, *nbits);
            s.push(',');
        }
        None => {}
    }
    if let Some(n) = &ct.nat {
        format_nat(s, n);
        s.push(',');
    }
    if s.len() > start && s.ends_with(',') {
        s.pop();
    }
    s.push(')');
}

fn format_nat(s: &mut String, n: &NatSpec) {
    s.push_str("nat");
    let Some(kind) = n.kind else { return };
    s.push('(');
    s.push_str(match kind {
        NatKind::Src => "src",
        NatKind::Dst => "dst",
    });
    if let Some((lo, hi)) = n.addr {
        let _ = write!(s, "={}", Ipv4Addr::from(lo));
        if hi != lo {
            let _ = write!(s, "-{}", Ipv4Addr::from(hi));
        }
        if let Some((plo, phi)) = n.ports {
            let _ = write!(s, ":{plo}");
            if phi != plo {
                let _ = write!(s, "-{phi}");
            }
        }
    }
    for (on, name) in [
        (n.persistent, "persistent"),
        (n.hash, "hash"),
        (n.random, "random"),
    ] {
        if on {
            s.push(',');
            s.push_str(name);
        }
    }
    s.push(')');
}

/// Formats a flow as `dump-flows` prints it: with statistics when given
/// (` cookie=0x0, duration=1.5s, table=0, n_packets=3, n_bytes=180, …`),
/// else the add-flow form (`table=0, priority=10,arp,in_port=6 actions=…`).
pub fn format_flow(flow: &Flow, stats: Option<&FlowStats>, ports: &dyn PortNames) -> String {
    let mut s = String::new();
    match stats {
        Some(st) => {
            let _ = write!(
                s,
                " cookie={:#x}, duration={:.3}s, table={}, n_packets={}, n_bytes={}, ",
                flow.cookie, st.duration_secs, flow.table, st.n_packets, st.n_bytes
            );
            if flow.idle_timeout != 0 {
                let _ = write!(s, "idle_timeout={}, ", flow.idle_timeout);
            }
            if flow.hard_timeout != 0 {
                let _ = write!(s, "hard_timeout={}, ", flow.hard_timeout);
            }
            if let Some(age) = st.idle_age_secs {
                let _ = write!(s, "idle_age={age}, ");
            }
        }
        None => {
            if flow.cookie_mask != 0 {
                // A selector (del-flows/mod-flows).
                let _ = write!(s, "cookie={:#x}/{:#x}, ", flow.cookie, flow.cookie_mask);
            } else if flow.cookie != 0 {
                let _ = write!(s, "cookie={:#x}, ", flow.cookie);
            }
            let _ = write!(s, "table={}, ", flow.table);
            if flow.idle_timeout != 0 {
                let _ = write!(s, "idle_timeout={}, ", flow.idle_timeout);
            }
            if flow.hard_timeout != 0 {
                let _ = write!(s, "hard_timeout={}, ", flow.hard_timeout);
            }
        }
    }
    if flow.priority != DEFAULT_PRIORITY {
        let _ = write!(s, "priority={},", flow.priority);
    }
    format_match_into(&mut s, &flow.matches, ports);
    if s.ends_with(',') {
        s.pop();
        s.push(' ');
    }
    s.push_str("actions=");
    s.push_str(&format_actions(&flow.actions, ports));
    s
}
