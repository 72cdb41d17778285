//! The ovs-ofctl text syntax of flows: `add-flow` input and `dump-flows`
//! output.
//!
//! Parsing accepts what operators type (`table=0, priority=10,arp,in_port=6
//! actions=goto_table:24`, port names or numbers, `resubmit(,60)`,
//! `ct(commit,zone=NXM_NX_REG6[0..15],nat(src=10.0.0.1))`, …) and reports
//! the first bad token with its column. Printing follows `ovs-ofctl
//! dump-flows`: fields in OVS's order, protocol shorthands (`arp`, `icmp`,
//! `tcp`…) folded in, default priority omitted. Anything printed parses
//! back to the same flow (a property the tests check).

use super::*;
use crate::key::{ct_state, VLAN_CFI};
use crate::packet::wire::{ethertype, ipproto};
use std::fmt::{self, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr};

/// A syntax error: where it is, which token, what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowSyntaxError {
    /// 1-based character column of the token in the input.
    pub column: usize,
    pub token: String,
    pub message: String,
}

impl fmt::Display for FlowSyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "column {}: `{}`: {}",
            self.column, self.token, self.message
        )
    }
}

impl std::error::Error for FlowSyntaxError {}

/// A token of the input: its text and byte offset.
#[derive(Clone, Copy)]
struct Tok<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Tok<'a> {
    fn err(&self, src: &str, message: impl Into<String>) -> FlowSyntaxError {
        FlowSyntaxError {
            column: src.get(..self.at).map_or(self.at, |p| p.chars().count()) + 1,
            token: self.text.to_string(),
            message: message.into(),
        }
    }

    /// `key=value` (or `key:value`) split, or the bare key.
    fn key_value(&self) -> (&'a str, Option<&'a str>) {
        match self.text.find(['=', ':']) {
            Some(i) => (&self.text[..i], Some(&self.text[i + 1..])),
            None => (self.text, None),
        }
    }

    /// The value part of a sub-token starting `ofs` bytes in.
    fn sub(&self, ofs: usize, text: &'a str) -> Tok<'a> {
        Tok {
            text,
            at: self.at + ofs,
        }
    }
}

/// Splits on commas and whitespace outside parentheses and brackets.
fn tokenize(s: &str, base: usize) -> Vec<Tok<'_>> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start: Option<usize> = None;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            _ => {}
        }
        let sep = depth <= 0 && (c == ',' || c.is_whitespace());
        match (sep, start) {
            (true, Some(st)) => {
                out.push(Tok {
                    text: &s[st..i],
                    at: base + st,
                });
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(st) = start {
        out.push(Tok {
            text: &s[st..],
            at: base + st,
        });
    }
    out
}

/// Parses a number in decimal or `0x` hex.
fn parse_num(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

fn num_in(t: &Tok, src: &str, s: &str, max: u64, what: &str) -> Result<u64, FlowSyntaxError> {
    match parse_num(s) {
        Some(v) if v <= max => Ok(v),
        Some(_) => Err(t.err(src, format!("{what} out of range (max {max})"))),
        None => Err(t.err(src, format!("expected a number for {what}"))),
    }
}

fn parse_ipv4(s: &str) -> Option<u32> {
    s.parse::<Ipv4Addr>().ok().map(u32::from)
}

/// `A.B.C.D`, `A.B.C.D/len` or `A.B.C.D/M.M.M.M` → (value, mask).
fn parse_ipv4_masked(s: &str) -> Option<(u32, u32)> {
    let (a, m) = match s.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (s, None),
    };
    let addr = parse_ipv4(a)?;
    let mask = match m {
        None => u32::MAX,
        Some(m) => match m.parse::<u32>() {
            Ok(len) if len <= 32 => prefix_mask(len),
            Ok(_) => return None,
            Err(_) => parse_ipv4(m)?,
        },
    };
    Some((addr & mask, mask))
}

fn prefix_mask(len: u32) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len)
    }
}

fn parse_mac_masked(s: &str) -> Option<(u64, u64)> {
    let (a, m) = match s.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (s, None),
    };
    let v = a.parse::<Mac>().ok()?.to_u64();
    let m = match m {
        None => Mac::BROADCAST.to_u64(),
        Some(m) => m.parse::<Mac>().ok()?.to_u64(),
    };
    Some((v & m, m))
}

/// `V` or `V/M` numbers.
fn parse_num_masked(s: &str, full: u64) -> Option<(u64, u64)> {
    match s.split_once('/') {
        Some((v, m)) => {
            let (v, m) = (parse_num(v)?, parse_num(m)?);
            (v <= full && m <= full).then_some((v & m, m))
        }
        None => {
            let v = parse_num(s)?;
            (v <= full).then_some((v, full))
        }
    }
}

const TCP_FLAG_NAMES: [(u16, &str); 9] = [
    (0x001, "fin"),
    (0x002, "syn"),
    (0x004, "rst"),
    (0x008, "psh"),
    (0x010, "ack"),
    (0x020, "urg"),
    (0x040, "ece"),
    (0x080, "cwr"),
    (0x100, "ns"),
];

/// Flags as `+a-b` (masked), `a|b` (exact) or a number `V[/M]`.
fn parse_flags(s: &str, names: &[(u64, &str)], full: u64) -> Option<(u64, u64)> {
    if s.starts_with('+') || s.starts_with('-') {
        let (mut v, mut m) = (0u64, 0u64);
        let mut rest = s;
        while !rest.is_empty() {
            let plus = rest.starts_with('+');
            if !plus && !rest.starts_with('-') {
                return None;
            }
            rest = &rest[1..];
            let end = rest.find(['+', '-']).unwrap_or(rest.len());
            let name = &rest[..end];
            let bit = names.iter().find(|(_, n)| *n == name)?.0;
            m |= bit;
            if plus {
                v |= bit;
            }
            rest = &rest[end..];
        }
        return Some((v, m));
    }
    if let Some(n) = parse_num_masked(s, full) {
        return Some(n);
    }
    let mut v = 0;
    for name in s.split('|') {
        v |= names.iter().find(|(_, n)| *n == name)?.0;
    }
    Some((v, full))
}

fn format_flags(out: &mut String, v: u64, m: u64, names: &[(u64, &str)], full: u64) {
    if m == full {
        let set: Vec<&str> = names
            .iter()
            .filter(|(b, _)| v & b != 0)
            .map(|(_, n)| *n)
            .collect();
        let known: u64 = names.iter().map(|(b, _)| *b).fold(0, |a, b| a | b);
        if set.is_empty() || v & !known != 0 {
            let _ = write!(out, "{v:#x}");
        } else {
            out.push_str(&set.join("|"));
        }
        return;
    }
    let known: u64 = names.iter().map(|(b, _)| *b).fold(0, |a, b| a | b);
    if m & !known != 0 {
        let _ = write!(out, "{v:#x}/{m:#x}");
        return;
    }
    for (b, n) in names {
        if m & b != 0 {
            out.push(if v & b != 0 { '+' } else { '-' });
            out.push_str(n);
        }
    }
}

fn tcp_flag_names() -> Vec<(u64, &'static str)> {
    TCP_FLAG_NAMES.iter().map(|&(b, n)| (b as u64, n)).collect()
}

fn ct_state_names() -> Vec<(u64, &'static str)> {
    ct_state::NAMES
        .iter()
        .map(|&(b, n)| (b as u64, n))
        .collect()
}

/// Field names accepted in `set_field`, `load`, `move` and `ct(zone=)`:
/// ovs-ofctl's short names, their OXM-style aliases and the NXM names.
fn field_by_name(name: &str) -> Option<Field> {
    let f = match name {
        "in_port" | "NXM_OF_IN_PORT" => Field::InPort,
        "dl_type" | "eth_type" | "NXM_OF_ETH_TYPE" => Field::DlType,
        "vlan_tci" | "NXM_OF_VLAN_TCI" => Field::VlanTci,
        "dl_dst" | "eth_dst" | "NXM_OF_ETH_DST" => Field::DlDst,
        "dl_src" | "eth_src" | "NXM_OF_ETH_SRC" => Field::DlSrc,
        "nw_proto" | "ip_proto" | "NXM_OF_IP_PROTO" | "arp_op" | "NXM_OF_ARP_OP" => Field::NwProto,
        "nw_tos" | "NXM_OF_IP_TOS" => Field::NwTos,
        "nw_ttl" | "NXM_NX_IP_TTL" => Field::NwTtl,
        "nw_frag" | "NXM_NX_IP_FRAG" => Field::NwFrag,
        "nw_src" | "ip_src" | "NXM_OF_IP_SRC" | "arp_spa" | "NXM_OF_ARP_SPA" => Field::NwSrc,
        "nw_dst" | "ip_dst" | "NXM_OF_IP_DST" | "arp_tpa" | "NXM_OF_ARP_TPA" => Field::NwDst,
        "tp_src" | "tcp_src" | "udp_src" | "NXM_OF_TCP_SRC" | "NXM_OF_UDP_SRC" | "icmp_type"
        | "NXM_OF_ICMP_TYPE" => Field::TpSrc,
        "tp_dst" | "tcp_dst" | "udp_dst" | "NXM_OF_TCP_DST" | "NXM_OF_UDP_DST" | "icmp_code"
        | "NXM_OF_ICMP_CODE" => Field::TpDst,
        "tcp_flags" | "NXM_NX_TCP_FLAGS" => Field::TcpFlags,
        "ct_zone" | "NXM_NX_CT_ZONE" => Field::CtZone,
        "ct_state" | "NXM_NX_CT_STATE" => Field::CtState,
        "arp_sha" | "NXM_NX_ARP_SHA" => Field::ArpSha,
        "arp_tha" | "NXM_NX_ARP_THA" => Field::ArpTha,
        "icmp_id" => Field::IcmpId,
        "metadata" | "OXM_OF_METADATA" => Field::Metadata,
        _ => {
            let n = name
                .strip_prefix("reg")
                .or_else(|| name.strip_prefix("NXM_NX_REG"))?;
            let n: u8 = n.parse().ok()?;
            if n > 7 {
                return None;
            }
            Field::Reg(n)
        }
    };
    Some(f)
}

fn is_mac_field(f: Field) -> bool {
    matches!(
        f,
        Field::DlSrc | Field::DlDst | Field::ArpSha | Field::ArpTha
    )
}

fn is_ipv4_field(f: Field) -> bool {
    matches!(f, Field::NwSrc | Field::NwDst)
}

/// A value for field `f` in `set_field` syntax.
fn parse_field_value(f: Field, s: &str) -> Option<u64> {
    if is_mac_field(f) {
        return s.parse::<Mac>().ok().map(Mac::to_u64);
    }
    if is_ipv4_field(f) {
        if let Some(a) = parse_ipv4(s) {
            return Some(a as u64);
        }
    }
    parse_num(s).filter(|&v| v <= f.full_mask())
}

fn format_field_value(out: &mut String, f: Field, v: u64) {
    if is_mac_field(f) {
        let _ = write!(out, "{}", Mac::from_u64(v));
    } else if is_ipv4_field(f) {
        let _ = write!(out, "{}", Ipv4Addr::from(v as u32));
    } else if f == Field::InPort {
        let _ = write!(out, "{v}");
    } else {
        let _ = write!(out, "{v:#x}");
    }
}

/// `FIELD[]`, `FIELD[n]` or `FIELD[a..b]` → (field, ofs, nbits).
fn parse_subfield(s: &str) -> Option<(Field, u8, u8)> {
    let (name, range) = match s.find('[') {
        Some(i) => (&s[..i], Some(s[i + 1..].strip_suffix(']')?)),
        None => (s, None),
    };
    let f = field_by_name(name)?;
    let w = f.width();
    let (ofs, nbits) = match range {
        None | Some("") => (0, w),
        Some(r) => match r.split_once("..") {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if a > b || b >= w {
                    return None;
                }
                (a, b - a + 1)
            }
            None => {
                let a: u32 = r.parse().ok()?;
                if a >= w {
                    return None;
                }
                (a, 1)
            }
        },
    };
    Some((f, ofs as u8, nbits as u8))
}

/// The NXM/OXM name ovs-ofctl prints for a field inside `load`/`move`/`ct`.
fn nxm_name(f: Field) -> &'static str {
    match f {
        Field::InPort => "NXM_OF_IN_PORT",
        Field::DlType => "NXM_OF_ETH_TYPE",
        Field::VlanTci => "NXM_OF_VLAN_TCI",
        Field::DlDst => "NXM_OF_ETH_DST",
        Field::DlSrc => "NXM_OF_ETH_SRC",
        Field::NwProto => "NXM_OF_IP_PROTO",
        Field::NwTos => "NXM_OF_IP_TOS",
        Field::NwTtl => "NXM_NX_IP_TTL",
        Field::NwFrag => "NXM_NX_IP_FRAG",
        Field::NwSrc => "NXM_OF_IP_SRC",
        Field::NwDst => "NXM_OF_IP_DST",
        Field::TpSrc => "NXM_OF_TCP_SRC",
        Field::TpDst => "NXM_OF_TCP_DST",
        Field::TcpFlags => "NXM_NX_TCP_FLAGS",
        Field::CtZone => "NXM_NX_CT_ZONE",
        Field::CtState => "NXM_NX_CT_STATE",
        Field::ArpSha => "NXM_NX_ARP_SHA",
        Field::ArpTha => "NXM_NX_ARP_THA",
        Field::Metadata => "OXM_OF_METADATA",
        Field::Reg(0) => "NXM_NX_REG0",
        Field::Reg(1) => "NXM_NX_REG1",
        Field::Reg(2) => "NXM_NX_REG2",
        Field::Reg(3) => "NXM_NX_REG3",
        Field::Reg(4) => "NXM_NX_REG4",
        Field::Reg(5) => "NXM_NX_REG5",
        Field::Reg(6) => "NXM_NX_REG6",
        Field::Reg(_) => "NXM_NX_REG7",
        // Our own fields without an NXM number keep their short names.
        Field::IcmpId | Field::NdTargetHi | Field::NdTargetLo | Field::RecircId => f.name(),
    }
}

fn format_subfield(out: &mut String, f: Field, ofs: u8, nbits: u8) {
    out.push_str(nxm_name(f));
    if ofs == 0 && nbits as u32 == f.width() {
        out.push_str("[]");
    } else if nbits == 1 {
        let _ = write!(out, "[{ofs}]");
    } else {
        let _ = write!(out, "[{}..{}]", ofs, ofs as u32 + nbits as u32 - 1);
    }
}

/// Reserved port keywords (case-insensitive, as ovs-ofctl accepts them).
fn reserved_port(s: &str) -> Option<u32> {
    Some(match s.to_ascii_uppercase().as_str() {
        "IN_PORT" => ofp::IN_PORT,
        "TABLE" => ofp::TABLE,
        "NORMAL" => ofp::NORMAL,
        "FLOOD" => ofp::FLOOD,
        "ALL" => ofp::ALL,
        "CONTROLLER" => ofp::CONTROLLER,
        "LOCAL" => ofp::LOCAL,
        "NONE" => ofp::NONE,
        _ => return None,
    })
}

fn reserved_port_name(n: u32) -> Option<&'static str> {
    Some(match n {
        ofp::IN_PORT => "IN_PORT",
        ofp::TABLE => "TABLE",
        ofp::NORMAL => "NORMAL",
        ofp::FLOOD => "FLOOD",
        ofp::ALL => "ALL",
        ofp::CONTROLLER => "CONTROLLER",
        ofp::LOCAL => "LOCAL",
        ofp::NONE => "NONE",
        _ => return None,
    })
}

/// A port by number, reserved name or bridge port name.
fn parse_port(s: &str, ports: &dyn PortNames) -> Option<u32> {
    let s = s.trim_matches('"');
    if let Some(n) = parse_num(s) {
        return (n <= u32::MAX as u64).then_some(n as u32);
    }
    reserved_port(s).or_else(|| ports.port_number(s))
}

fn format_port(out: &mut String, n: u32, ports: &dyn PortNames) {
    if let Some(name) = ports.port_name(n) {
        out.push_str(name);
    } else if let Some(r) = reserved_port_name(n) {
        out.push_str(r);
    } else {
        let _ = write!(out, "{n}");
    }
}

/// Fields set while parsing a match, remembered to check prerequisites.
struct MatchBuilder<'a> {
    m: Match,
    used: Vec<(Tok<'a>, Need)>,
}

/// What a match field requires of `dl_type` / `nw_proto`.
#[derive(Clone, Copy, PartialEq)]
enum Need {
    Nothing,
    IpOrArp,
    IpOrIpv6,
    Arp,
    L4Ports,
    Tcp,
    Icmp,
    Nd,
}

impl<'a> MatchBuilder<'a> {
    fn new() -> Self {
        MatchBuilder {
            m: Match::ANY,
            used: Vec::new(),
        }
    }

    fn proto(&mut self, dl_type: u16, nw_proto: Option<u8>) {
        self.m.set_exact(Field::DlType, dl_type as u64);
        if let Some(p) = nw_proto {
            self.m.set_exact(Field::NwProto, p as u64);
        }
    }

    /// Parses one match token; `Ok(false)` if the key is not a match field.
    fn token(
        &mut self,
        t: Tok<'a>,
        src: &str,
        ports: &dyn PortNames,
    ) -> Result<bool, FlowSyntaxError> {
        let (k, v) = t.key_value();
        let shorthand = match k {
            "ip" | "ipv4" => Some((ethertype::IPV4, None)),
            "arp" => Some((ethertype::ARP, None)),
            "icmp" => Some((ethertype::IPV4, Some(ipproto::ICMP))),
            "tcp" => Some((ethertype::IPV4, Some(ipproto::TCP))),
            "udp" => Some((ethertype::IPV4, Some(ipproto::UDP))),
            "ipv6" => Some((ethertype::IPV6, None)),
            "icmp6" => Some((ethertype::IPV6, Some(ipproto::ICMPV6))),
            "tcp6" => Some((ethertype::IPV6, Some(ipproto::TCP))),
            "udp6" => Some((ethertype::IPV6, Some(ipproto::UDP))),
            _ => None,
        };
        if let Some((dl, p)) = shorthand {
            if v.is_some() {
                return Err(t.err(src, format!("`{k}` takes no value")));
            }
            self.proto(dl, p);
            return Ok(true);
        }
        let known = matches!(
            k,
            "in_port"
                | "dl_src"
                | "dl_dst"
                | "eth_src"
                | "eth_dst"
                | "dl_type"
                | "eth_type"
                | "dl_vlan"
                | "dl_vlan_pcp"
                | "vlan_tci"
                | "arp_op"
                | "arp_spa"
                | "arp_tpa"
                | "arp_sha"
                | "arp_tha"
                | "nw_src"
                | "nw_dst"
                | "ip_src"
                | "ip_dst"
                | "nw_proto"
                | "ip_proto"
                | "nw_tos"
                | "nw_ttl"
                | "nw_frag"
                | "tp_src"
                | "tp_dst"
                | "tcp_src"
                | "tcp_dst"
                | "udp_src"
                | "udp_dst"
                | "tcp_flags"
                | "icmp_type"
                | "icmp_code"
                | "icmpv4_type"
                | "icmpv4_code"
                | "icmpv6_type"
                | "icmpv6_code"
                | "nd_target"
                | "ct_state"
                | "ct_zone"
                | "metadata"
        ) || (k.starts_with("reg") && field_by_name(k).is_some());
        if !known {
            return Ok(false);
        }
        let Some(v) = v.filter(|v| !v.is_empty()) else {
            return Err(t.err(src, format!("`{k}` needs a value")));
        };
        let bad = |what: &str| t.err(src, format!("bad {what} `{v}` for `{k}`"));
        let m = &mut self.m;
        let need = match k {
            "in_port" => {
                let p = parse_port(v, ports)
                    .ok_or_else(|| t.err(src, format!("unknown port `{v}`")))?;
                m.set_exact(Field::InPort, p as u64);
                Need::Nothing
            }
            "dl_src" | "eth_src" | "dl_dst" | "eth_dst" => {
                let (val, mask) = parse_mac_masked(v).ok_or_else(|| bad("MAC address"))?;
                let f = if k.ends_with("src") {
                    Field::DlSrc
                } else {
                    Field::DlDst
                };
                m.set(f, val, mask);
                Need::Nothing
            }
            "dl_type" | "eth_type" => {
                m.set_exact(Field::DlType, num_in(&t, src, v, 0xffff, "ethertype")?);
                Need::Nothing
            }
            "dl_vlan" => {
                let vid = num_in(&t, src, v, 0xffff, "VLAN id")?;
                if vid == 0xffff {
                    m.set(Field::VlanTci, 0, 0xffff);
                } else if vid > 4095 {
                    return Err(t.err(src, "VLAN id must be 0..4095 (or 0xffff for untagged)"));
                } else {
                    m.set(Field::VlanTci, VLAN_CFI as u64 | vid, 0x1fff);
                }
                Need::Nothing
            }
            "dl_vlan_pcp" => {
                let pcp = num_in(&t, src, v, 7, "VLAN priority")?;
                m.set(Field::VlanTci, VLAN_CFI as u64 | (pcp << 13), 0xf000);
                Need::Nothing
            }
            "vlan_tci" => {
                let (val, mask) = parse_num_masked(v, 0xffff).ok_or_else(|| bad("TCI"))?;
                m.set(Field::VlanTci, val, mask);
                Need::Nothing
            }
            "arp_op" => {
                m.set_exact(Field::NwProto, num_in(&t, src, v, 0xff, "ARP opcode")?);
                Need::Arp
            }
            "arp_spa" | "arp_tpa" | "nw_src" | "nw_dst" | "ip_src" | "ip_dst" => {
                let (val, mask) =
                    parse_ipv4_masked(v).ok_or_else(|| bad("IPv4 address or prefix"))?;
                let f = if k.ends_with("spa") || k.ends_with("src") {
                    Field::NwSrc
                } else {
                    Field::NwDst
                };
                m.set(f, val as u64, mask as u64);
                if k.starts_with("arp") {
                    Need::Arp
                } else {
                    Need::IpOrArp
                }
            }
            "arp_sha" | "arp_tha" => {
                let (val, mask) = parse_mac_masked(v).ok_or_else(|| bad("MAC address"))?;
                m.set(
                    if k == "arp_sha" {
                        Field::ArpSha
                    } else {
                        Field::ArpTha
                    },
                    val,
                    mask,
                );
                Need::Arp
            }
            "nw_proto" | "ip_proto" => {
                m.set_exact(Field::NwProto, num_in(&t, src, v, 0xff, "IP protocol")?);
                Need::IpOrIpv6
            }
            "nw_tos" => {
                let tos = num_in(&t, src, v, 0xff, "TOS")?;
                if tos & 3 != 0 {
                    return Err(t.err(
                        src,
                        "nw_tos is the DSCP part of the TOS byte: low 2 bits must be 0",
                    ));
                }
                m.set(Field::NwTos, tos, 0xfc);
                Need::IpOrIpv6
            }
            "nw_ttl" => {
                m.set_exact(Field::NwTtl, num_in(&t, src, v, 0xff, "TTL")?);
                Need::IpOrIpv6
            }
            "nw_frag" => {
                let (val, mask) = match v {
                    "no" => (0, crate::key::FRAG_ANY),
                    "yes" => (crate::key::FRAG_ANY, crate::key::FRAG_ANY),
                    "first" => (
                        crate::key::FRAG_ANY,
                        crate::key::FRAG_ANY | crate::key::FRAG_LATER,
                    ),
                    "later" => (
                        crate::key::FRAG_ANY | crate::key::FRAG_LATER,
                        crate::key::FRAG_ANY | crate::key::FRAG_LATER,
                    ),
                    "not_later" => (0, crate::key::FRAG_LATER),
                    _ => {
                        return Err(t.err(src, "nw_frag is one of no, yes, first, later, not_later"))
                    }
                };
                m.set(Field::NwFrag, val as u64, mask as u64);
                Need::IpOrIpv6
            }
            "tp_src" | "tcp_src" | "udp_src" | "tp_dst" | "tcp_dst" | "udp_dst" => {
                let (val, mask) = parse_num_masked(v, 0xffff).ok_or_else(|| bad("port"))?;
                m.set(
                    if k.ends_with("src") {
                        Field::TpSrc
                    } else {
                        Field::TpDst
                    },
                    val,
                    mask,
                );
                Need::L4Ports
            }
            "tcp_flags" => {
                let (val, mask) =
                    parse_flags(v, &tcp_flag_names(), 0x0fff).ok_or_else(|| bad("TCP flags"))?;
                m.set(Field::TcpFlags, val, mask);
                Need::Tcp
            }
            "icmp_type" | "icmpv4_type" | "icmpv6_type" => {
                m.set_exact(Field::TpSrc, num_in(&t, src, v, 0xff, "ICMP type")?);
                Need::Icmp
            }
            "icmp_code" | "icmpv4_code" | "icmpv6_code" => {
                m.set_exact(Field::TpDst, num_in(&t, src, v, 0xff, "ICMP code")?);
                Need::Icmp
            }
            "nd_target" => {
                let a: Ipv6Addr = v.parse().map_err(|_| bad("IPv6 address"))?;
                let a = u128::from(a);
                m.set_exact(Field::NdTargetHi, (a >> 64) as u64);
                m.set_exact(Field::NdTargetLo, a as u64);
                Need::Nd
            }
            "ct_state" => {
                let (val, mask) =
                    parse_flags(v, &ct_state_names(), 0xff).ok_or_else(|| bad("ct_state flags"))?;
                m.set(Field::CtState, val, mask);
                Need::Nothing
            }
            "ct_zone" => {
                let (val, mask) = parse_num_masked(v, 0xffff).ok_or_else(|| bad("zone"))?;
                m.set(Field::CtZone, val, mask);
                Need::Nothing
            }
            "metadata" => {
                let (val, mask) = parse_num_masked(v, u64::MAX).ok_or_else(|| bad("value"))?;
                m.set(Field::Metadata, val, mask);
                Need::Nothing
            }
            _ => {
                let f = field_by_name(k).ok_or_else(|| t.err(src, "unknown field"))?;
                let (val, mask) = parse_num_masked(v, 0xffff_ffff).ok_or_else(|| bad("value"))?;
                m.set(f, val, mask);
                Need::Nothing
            }
        };
        self.used.push((t, need));
        Ok(true)
    }

    /// Checks every field's prerequisites (as OVS does) once all are known.
    fn finish(self, src: &str) -> Result<Match, FlowSyntaxError> {
        let m = self.m;
        let (dl, dl_mask) = m.get(Field::DlType);
        let dl = if dl_mask == 0xffff {
            Some(dl as u16)
        } else {
            None
        };
        let (proto, proto_mask) = m.get(Field::NwProto);
        let proto = if proto_mask == 0xff {
            Some(proto as u8)
        } else {
            None
        };
        let is_ip = dl == Some(ethertype::IPV4);
        let is_ip6 = dl == Some(ethertype::IPV6);
        for (t, need) in &self.used {
            let ok = match need {
                Need::Nothing => true,
                Need::IpOrArp => is_ip || dl == Some(ethertype::ARP),
                Need::IpOrIpv6 => is_ip || is_ip6,
                Need::Arp => dl == Some(ethertype::ARP),
                Need::L4Ports => {
                    (is_ip || is_ip6) && matches!(proto, Some(ipproto::TCP) | Some(ipproto::UDP))
                }
                Need::Tcp => (is_ip || is_ip6) && proto == Some(ipproto::TCP),
                Need::Icmp => {
                    (is_ip && proto == Some(ipproto::ICMP))
                        || (is_ip6 && proto == Some(ipproto::ICMPV6))
                }
                Need::Nd => {
                    is_ip6
                        && proto == Some(ipproto::ICMPV6)
                        && matches!(m.get(Field::TpSrc), (135 | 136, 0xffff))
                }
            };
            if !ok {
                let what = match need {
                    Need::Nothing => "",
                    Need::IpOrArp => "ip or arp",
                    Need::IpOrIpv6 => "ip or ipv6",
                    Need::Arp => "arp",
                    Need::L4Ports => "tcp or udp (e.g. `tcp,tp_dst=80`)",
                    Need::Tcp => "tcp",
                    Need::Icmp => "icmp or icmp6",
                    Need::Nd => "icmp6 with icmp_type=135 or 136",
                };
                return Err(t.err(src, format!("prerequisite not met: needs {what}")));
            }
        }
        Ok(m)
    }
}

/// Parses a match (`in_port=qvo-vm1,arp,arp_spa=10.1.0.11`), as used by
/// `trace` and flow selectors.
pub fn parse_match(s: &str, ports: &dyn PortNames) -> Result<Match, FlowSyntaxError> {
    let mut b = MatchBuilder::new();
    for t in tokenize(s, 0) {
        if !b.token(t, s, ports)? {
            return Err(t.err(s, "unknown match field"));
        }
    }
    b.finish(s)
}

/// Finds `actions=` at a token boundary.
fn find_actions(s: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find("actions=") {
        let at = from + i;
        let boundary = at == 0 || s[..at].ends_with([',', ' ', '\t']);
        if boundary {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Parses a flow as `ovs-ofctl add-flow` does (`dump-flows` output too:
/// its statistics fields are accepted and ignored).
pub fn parse_flow(s: &str, ports: &dyn PortNames) -> Result<Flow, FlowSyntaxError> {
    let at = find_actions(s).ok_or_else(|| FlowSyntaxError {
        column: s.chars().count() + 1,
        token: String::new(),
        message: "missing `actions=`".into(),
    })?;
    let mut flow = Flow::default();
    let mut b = MatchBuilder::new();
    for t in tokenize(&s[..at], 0) {
        let (k, v) = t.key_value();
        let val = || {
            v.filter(|v| !v.is_empty())
                .ok_or_else(|| t.err(s, format!("`{k}` needs a value")))
        };
        match k {
            "table" => flow.table = num_in(&t, s, val()?, 254, "table")? as u8,
            "priority" => flow.priority = num_in(&t, s, val()?, 0xffff, "priority")? as u16,
            "cookie" => {
                let (c, m) =
                    parse_num_masked(val()?, u64::MAX).ok_or_else(|| t.err(s, "bad cookie"))?;
                flow.cookie = c;
                flow.cookie_mask = if val()?.contains('/') { m } else { 0 };
            }
            "idle_timeout" => {
                flow.idle_timeout = num_in(&t, s, val()?, 0xffff, "idle_timeout")? as u16
            }
            "hard_timeout" => {
                flow.hard_timeout = num_in(&t, s, val()?, 0xffff, "hard_timeout")? as u16
            }
            // dump-flows statistics: informational, not part of the flow.
            "duration" | "n_packets" | "n_bytes" | "idle_age" | "hard_age" => {}
            _ => {
                if !b.token(t, s, ports)? {
                    return Err(t.err(s, "unknown match field"));
                }
            }
        }
    }
    flow.matches = b.finish(s)?;
    let acts = &s[at + "actions=".len()..];
    flow.actions = parse_actions_at(acts, at + "actions=".len(), s, ports)?;
    Ok(flow)
}

/// Parses an action list (`strip_vlan,output:6`, `drop`).
pub fn parse_actions(s: &str, ports: &dyn PortNames) -> Result<Vec<Action>, FlowSyntaxError> {
    parse_actions_at(s, 0, s, ports)
}

fn parse_actions_at(
    acts: &str,
    base: usize,
    src: &str,
    ports: &dyn PortNames,
) -> Result<Vec<Action>, FlowSyntaxError> {
    let toks = tokenize(acts, base);
    let mut out = Vec::with_capacity(toks.len());
    if toks.is_empty() {
        return Ok(out); // `actions=` alone: drop
    }
    for (i, t) in toks.iter().enumerate() {
        if t.text.eq_ignore_ascii_case("drop") {
            if toks.len() != 1 {
                return Err(t.err(src, "`drop` must be the only action"));
            }
            return Ok(Vec::new());
        }
        let a = parse_action(t, src, ports)?;
        if matches!(a, Action::GotoTable(_)) && i + 1 != toks.len() {
            return Err(t.err(src, "`goto_table` must be the last action"));
        }
        out.push(a);
    }
    Ok(out)
}

fn parse_action(t: &Tok, src: &str, ports: &dyn PortNames) -> Result<Action, FlowSyntaxError> {
    let text = t.text;
    // Keyword actions (case-insensitive like ovs-ofctl).
    match text.to_ascii_uppercase().as_str() {
        "NORMAL" => return Ok(Action::Normal),
        "FLOOD" | "ALL" => return Ok(Action::Flood),
        "IN_PORT" => return Ok(Action::InPort),
        "LOCAL" => return Ok(Action::Local),
        "STRIP_VLAN" | "POP_VLAN" => return Ok(Action::StripVlan),
        "DEC_TTL" => return Ok(Action::DecTtl),
        _ => {}
    }
    if let Some(inner) = text
        .strip_prefix("resubmit(")
        .and_then(|r| r.strip_suffix(')'))
    {
        let (p, tb) = inner.split_once(',').unwrap_or((inner, ""));
        let port = if p.is_empty() {
            None
        } else {
            Some(parse_port(p, ports).ok_or_else(|| t.err(src, format!("unknown port `{p}`")))?)
        };
        let table = if tb.is_empty() {
            None
        } else {
            Some(num_in(t, src, tb, 254, "table")? as u8)
        };
        if port.is_none() && table.is_none() {
            return Err(t.err(src, "resubmit needs a port or a table"));
        }
        return Ok(Action::Resubmit { port, table });
    }
    if let Some(inner) = text.strip_prefix("ct(").and_then(|r| r.strip_suffix(')')) {
        return parse_ct(t, inner, src).map(Action::Ct);
    }
    if text == "ct" {
        return Ok(Action::Ct(CtAction::default()));
    }
    let (k, v) = match text.find(':') {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => {
            // A bare port number or name means output to it (OpenFlow 1.0 style).
            if let Some(p) = parse_port(text, ports).filter(|&p| p <= ofp::MAX_PORT) {
                return Ok(Action::Output(p));
            }
            return Err(t.err(src, "unknown action"));
        }
    };
    let bad = |what: &str| t.err(src, format!("bad {what} `{v}` for `{k}`"));
    let a = match k {
        "output" => {
            let p =
                parse_port(v, ports).ok_or_else(|| t.err(src, format!("unknown port `{v}`")))?;
            match p {
                ofp::NORMAL => Action::Normal,
                ofp::FLOOD | ofp::ALL => Action::Flood,
                ofp::IN_PORT => Action::InPort,
                ofp::LOCAL => Action::Local,
                p if p <= ofp::MAX_PORT => Action::Output(p),
                _ => return Err(t.err(src, "cannot output to that reserved port")),
            }
        }
        "resubmit" => Action::Resubmit {
            port: Some(parse_port(v, ports).ok_or_else(|| bad("port"))?),
            table: None,
        },
        "goto_table" => Action::GotoTable(num_in(t, src, v, 254, "table")? as u8),
        "mod_vlan_vid" => Action::ModVlanVid(num_in(t, src, v, 4095, "VLAN id")? as u16),
        "mod_vlan_pcp" => Action::ModVlanPcp(num_in(t, src, v, 7, "VLAN priority")? as u8),
        "push_vlan" => {
            let tpid = num_in(t, src, v, 0xffff, "ethertype")? as u16;
            if tpid != ethertype::VLAN && tpid != ethertype::QINQ {
                return Err(t.err(src, "push_vlan takes 0x8100 or 0x88a8"));
            }
            Action::PushVlan(tpid)
        }
        "mod_dl_src" => Action::ModDlSrc(v.parse().map_err(|_| bad("MAC address"))?),
        "mod_dl_dst" => Action::ModDlDst(v.parse().map_err(|_| bad("MAC address"))?),
        "mod_nw_src" => Action::ModNwSrc(parse_ipv4(v).ok_or_else(|| bad("IPv4 address"))?),
        "mod_nw_dst" => Action::ModNwDst(parse_ipv4(v).ok_or_else(|| bad("IPv4 address"))?),
        "mod_nw_tos" => {
            let tos = num_in(t, src, v, 0xff, "TOS")?;
            if tos & 3 != 0 {
                return Err(t.err(src, "mod_nw_tos sets DSCP: low 2 bits must be 0"));
            }
            Action::ModNwTos(tos as u8)
        }
        "mod_tp_src" => Action::ModTpSrc(num_in(t, src, v, 0xffff, "port")? as u16),
        "mod_tp_dst" => Action::ModTpDst(num_in(t, src, v, 0xffff, "port")? as u16),
        "set_field" => {
            let (val, field) = v
                .split_once("->")
                .ok_or_else(|| t.err(src, "set_field needs VALUE->FIELD"))?;
            if field == "vlan_vid" {
                // OpenFlow 1.3's vlan_vid: 0x1000|VID.
                let vid = parse_num(val)
                    .filter(|&x| x <= 0x1fff)
                    .ok_or_else(|| bad("vlan_vid"))?;
                return Ok(Action::SetField {
                    field: Field::VlanTci,
                    value: vid,
                    mask: 0x1fff,
                });
            }
            let f = field_by_name(field)
                .ok_or_else(|| t.err(src, format!("unknown field `{field}`")))?;
            let (vs, ms) = match val.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (val, None),
            };
            let value = parse_field_value(f, vs).ok_or_else(|| bad("value"))?;
            let mask = match ms {
                Some(ms) => parse_field_value(f, ms).ok_or_else(|| bad("mask"))?,
                None => f.full_mask(),
            };
            Action::SetField {
                field: f,
                value: value & mask,
                mask,
            }
        }
        "load" => {
            let (val, dst) = v
                .split_once("->")
                .ok_or_else(|| t.err(src, "load needs VALUE->FIELD[bits]"))?;
            let (field, ofs, nbits) =
                parse_subfield(dst).ok_or_else(|| t.err(src, format!("bad field `{dst}`")))?;
            let value = parse_num(val).ok_or_else(|| bad("value"))?;
            if nbits < 64 && value >> nbits != 0 {
                return Err(t.err(src, format!("value does not fit in {nbits} bits")));
            }
            Action::Load {
                field,
                ofs,
                nbits,
                value,
            }
        }
        "move" => {
            let (a, b) = v
                .split_once("->")
                .ok_or_else(|| t.err(src, "move needs SRC[bits]->DST[bits]"))?;
            let (src_f, src_ofs, n1) =
                parse_subfield(a).ok_or_else(|| t.err(src, format!("bad field `{a}`")))?;
            let (dst_f, dst_ofs, n2) =
                parse_subfield(b).ok_or_else(|| t.err(src, format!("bad field `{b}`")))?;
            if n1 != n2 {
                return Err(t.err(src, "move: source and destination widths differ"));
            }
            Action::Move {
                src: src_f,
                src_ofs,
                dst: dst_f,
                dst_ofs,
                nbits: n1,
            }
        }
        _ => return Err(t.err(src, "unknown action")),
    };
    Ok(a)
}

fn parse_ct(t: &Tok, inner: &str, src: &str) -> Result<CtAction, FlowSyntaxError> {
    let mut ct = CtAction::default();
    let base = t.text.len() - inner.len() - 1;
    for p in tokenize(inner, 0) {
        let pt = t.sub(base + p.at, p.text);
        let (k, v) = match p.text.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (p.text, None),
        };
        match (k, v) {
            ("commit", None) => ct.commit = true,
            ("table", Some(v)) => ct.table = Some(num_in(&pt, src, v, 254, "table")? as u8),
            ("zone", Some(v)) => {
                ct.zone = Some(if let Some(z) = parse_num(v) {
                    if z > 0xffff {
                        return Err(pt.err(src, "zone out of range (max 65535)"));
                    }
                    CtZone::Value(z as u16)
                } else {
                    let (field, ofs, nbits) = parse_subfield(v).ok_or_else(|| {
                        pt.err(src, "zone is a number or a field like reg6[0..15]")
                    })?;
                    if nbits > 16 {
                        return Err(pt.err(src, "zone field is at most 16 bits"));
                    }
                    CtZone::Field { field, ofs, nbits }
                })
            }
            _ if p.text == "nat" => ct.nat = Some(NatSpec::bare()),
            _ if p.text.starts_with("nat(") && p.text.ends_with(')') => {
                ct.nat = Some(parse_nat(&pt, &p.text[4..p.text.len() - 1], src)?)
            }
            _ => return Err(pt.err(src, "unknown ct argument (commit, table=, zone=, nat)")),
        }
    }
    Ok(ct)
}

impl NatSpec {
    /// `nat` with no arguments.
    pub fn bare() -> NatSpec {
        NatSpec {
            kind: None,
            addr: None,
            ports: None,
            random: false,
            persistent: false,
            hash: false,
        }
    }
}

fn parse_nat(t: &Tok, inner: &str, src: &str) -> Result<NatSpec, FlowSyntaxError> {
    let mut n = NatSpec::bare();
    for part in inner.split(',').filter(|p| !p.is_empty()) {
        match part {
            "random" => n.random = true,
            "persistent" => n.persistent = true,
            "hash" => n.hash = true,
            "src" => n.kind = Some(NatKind::Src),
            "dst" => n.kind = Some(NatKind::Dst),
            _ => {
                let (kind, range) = if let Some(r) = part.strip_prefix("src=") {
                    (NatKind::Src, r)
                } else if let Some(r) = part.strip_prefix("dst=") {
                    (NatKind::Dst, r)
                } else {
                    return Err(t.err(src, format!("unknown nat argument `{part}`")));
                };
                n.kind = Some(kind);
                let (addrs, ports) = match range.split_once(':') {
                    Some((a, p)) => (a, Some(p)),
                    None => (range, None),
                };
                let (a1, a2) = addrs.split_once('-').unwrap_or((addrs, addrs));
                let lo =
                    parse_ipv4(a1).ok_or_else(|| t.err(src, format!("bad NAT address `{a1}`")))?;
                let hi =
                    parse_ipv4(a2).ok_or_else(|| t.err(src, format!("bad NAT address `{a2}`")))?;
                if lo > hi {
                    return Err(t.err(src, "NAT address range is reversed"));
                }
                n.addr = Some((lo, hi));
                if let Some(p) = ports {
                    let (p1, p2) = p.split_once('-').unwrap_or((p, p));
                    let lo = num_in(t, src, p1, 0xffff, "NAT port")? as u16;
                    let hi = num_in(t, src, p2, 0xffff, "NAT port")? as u16;
                    if lo > hi {
                        return Err(t.err(src, "NAT port range is reversed"));
                    }
                    n.ports = Some((lo, hi));
                }
            }
        }
    }
    if n.kind.is_none() && (n.addr.is_some() || n.random || n.persistent || n.hash) {
        return Err(t.err(src, "nat options need src or dst"));
    }
    Ok(n)
}

// ---------------------------------------------------------------- printing

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

fn format_match_into(s: &mut String, m: &Match, ports: &dyn PortNames) {
    let g = |f: Field| m.get(f);
    let (cs, csm) = g(Field::CtState);
    if csm != 0 {
        s.push_str("ct_state=");
        format_flags(s, cs, csm, &ct_state_names(), 0xff);
        s.push(',');
    }
    let (cz, czm) = g(Field::CtZone);
    put_num_masked(s, "ct_zone", cz, czm, 0xffff);

    let (dl, dlm) = g(Field::DlType);
    let dl_exact = dlm == 0xffff;
    let (proto, pm) = g(Field::NwProto);
    let proto_exact = pm == 0xff;
    let mut skip_type = false;
    let mut skip_proto = false;
    if dl_exact {
        skip_type = true;
        let name = match (dl as u16, proto_exact.then_some(proto as u8)) {
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
        match name {
            Some((n, sp)) => {
                s.push_str(n);
                s.push(',');
                skip_proto = sp;
            }
            None => skip_type = false,
        }
    }
    for r in 0..8u8 {
        let (v, mk) = g(Field::Reg(r));
        put_hex_masked(s, Field::Reg(r).name(), v, mk, 0xffff_ffff);
    }
    let (md, mdm) = g(Field::Metadata);
    put_hex_masked(s, "metadata", md, mdm, u64::MAX);
    let (ip, ipm) = g(Field::InPort);
    if ipm != 0 {
        s.push_str("in_port=");
        format_port(s, ip as u32, ports);
        s.push(',');
    }
    let (tci, tm) = g(Field::VlanTci);
    let (tci, tm) = (tci as u16, tm as u16);
    if tm != 0 {
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
    let (v, mk) = g(Field::DlSrc);
    put_mac_masked(s, "dl_src", v, mk);
    let (v, mk) = g(Field::DlDst);
    put_mac_masked(s, "dl_dst", v, mk);
    if !skip_type && dlm != 0 {
        if dl_exact {
            let _ = write!(s, "dl_type=0x{dl:04x},");
        } else {
            let _ = write!(s, "dl_type=0x{dl:04x}/0x{dlm:04x},");
        }
    }
    let is_arp = dl_exact && dl as u16 == ethertype::ARP;
    let is_ip6 = dl_exact && dl as u16 == ethertype::IPV6;
    let (src, srcm) = g(Field::NwSrc);
    let (dst, dstm) = g(Field::NwDst);
    if is_arp {
        put_ip_masked(s, "arp_spa", src, srcm);
        put_ip_masked(s, "arp_tpa", dst, dstm);
    } else if !is_ip6 {
        put_ip_masked(s, "nw_src", src, srcm);
        put_ip_masked(s, "nw_dst", dst, dstm);
    }
    if !skip_proto && pm != 0 {
        let name = if is_arp { "arp_op" } else { "nw_proto" };
        put_num_masked(s, name, proto, pm, 0xff);
    }
    if is_arp {
        let (v, mk) = g(Field::ArpSha);
        put_mac_masked(s, "arp_sha", v, mk);
        let (v, mk) = g(Field::ArpTha);
        put_mac_masked(s, "arp_tha", v, mk);
    }
    let (tos, tosm) = g(Field::NwTos);
    if tosm & 0xfc != 0 {
        let _ = write!(s, "nw_tos={},", tos & 0xfc);
    }
    let (ttl, ttlm) = g(Field::NwTtl);
    put_num_masked(s, "nw_ttl", ttl, ttlm, 0xff);
    let (fr, frm) = g(Field::NwFrag);
    let (fr, frm) = (fr as u8, frm as u8);
    use crate::key::{FRAG_ANY, FRAG_LATER};
    let frag = match (frm & (FRAG_ANY | FRAG_LATER), fr) {
        (0, _) => None,
        (3, 0) => Some("no"),
        (3, 1) => Some("first"),
        (3, 3) => Some("later"),
        (FRAG_ANY, 0) => Some("no"),
        (FRAG_ANY, _) => Some("yes"),
        (FRAG_LATER, 0) => Some("not_later"),
        (FRAG_LATER, _) => Some("later"),
        _ => None,
    };
    if let Some(f) = frag {
        let _ = write!(s, "nw_frag={f},");
    }
    let (ts, tsm) = g(Field::TpSrc);
    let (td, tdm) = g(Field::TpDst);
    let icmp = proto_exact
        && ((dl_exact && dl as u16 == ethertype::IPV4 && proto as u8 == ipproto::ICMP)
            || (is_ip6 && proto as u8 == ipproto::ICMPV6));
    if icmp {
        put_num_masked(s, "icmp_type", ts, tsm, 0xffff);
        put_num_masked(s, "icmp_code", td, tdm, 0xffff);
        let (hi, him) = g(Field::NdTargetHi);
        let (lo, lom) = g(Field::NdTargetLo);
        if him != 0 || lom != 0 {
            let a = ((hi as u128) << 64) | lo as u128;
            let _ = write!(s, "nd_target={},", Ipv6Addr::from(a));
        }
    } else {
        put_num_masked(s, "tp_src", ts, tsm, 0xffff);
        put_num_masked(s, "tp_dst", td, tdm, 0xffff);
    }
    let (tf, tfm) = g(Field::TcpFlags);
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

#[cfg(test)]
mod tests {
    use super::*;

    struct Names;
    impl PortNames for Names {
        fn port_number(&self, name: &str) -> Option<u32> {
            match name {
                "qvo-vm1" => Some(6),
                "int-br-vlan" => Some(1),
                _ => None,
            }
        }
        fn port_name(&self, n: u32) -> Option<&str> {
            match n {
                6 => Some("qvo-vm1"),
                1 => Some("int-br-vlan"),
                _ => None,
            }
        }
    }

    fn rt(s: &str) -> String {
        let f = parse_flow(s, &NoPortNames).unwrap_or_else(|e| panic!("{s}: {e}"));
        let out = format_flow(&f, None, &NoPortNames);
        let again = parse_flow(&out, &NoPortNames).unwrap_or_else(|e| panic!("{out}: {e}"));
        assert_eq!(f, again, "{s} -> {out}");
        out
    }

    #[test]
    fn appendix_a_lines_print_as_ovs_does() {
        for l in [
            "table=0, priority=65535,vlan_tci=0x0fff/0x1fff actions=drop",
            "table=0, priority=10,arp,in_port=6 actions=goto_table:24",
            "table=0, priority=10,icmp6,in_port=6,icmp_type=136 actions=goto_table:24",
            "table=0, priority=3,in_port=2,vlan_tci=0x0000/0x1fff actions=push_vlan:0x8100,mod_vlan_vid:3,goto_table:60",
            "table=24, priority=2,icmp6,in_port=6,icmp_type=136,nd_target=fe80::f816:3eff:fe01:11 actions=goto_table:60",
            "table=1, priority=3,arp,dl_vlan=1,arp_tpa=10.1.0.1 actions=drop",
            "table=2, priority=4,dl_vlan=101,dl_dst=fa:16:3e:01:00:11 actions=mod_dl_src:fa:16:3e:aa:01:01,goto_table:60",
            "table=60, priority=4,dl_vlan=101,dl_dst=fa:16:3e:01:00:11 actions=strip_vlan,output:6",
            "table=0, priority=4,in_port=2,dl_vlan=3 actions=strip_vlan,NORMAL",
            "table=24, priority=2,arp,in_port=6,arp_spa=10.1.0.11 actions=goto_table:25",
        ] {
            assert_eq!(rt(l), l);
        }
        assert_eq!(
            rt("table=0,  priority=9,in_port=6 actions=goto_table:25"),
            "table=0, priority=9,in_port=6 actions=goto_table:25"
        );
    }

    #[test]
    fn names_shorthands_and_ordering() {
        let f = parse_flow(
            "priority=5,in_port=qvo-vm1,tcp,tp_dst=80,nw_src=10.0.0.0/8 actions=output:int-br-vlan",
            &Names,
        )
        .unwrap();
        assert_eq!(f.matches.value.in_port(), 6);
        assert_eq!(f.actions, vec![Action::Output(1)]);
        assert_eq!(
            format_flow(&f, None, &Names),
            "table=0, priority=5,tcp,in_port=qvo-vm1,nw_src=10.0.0.0/8,tp_dst=80 actions=output:int-br-vlan"
        );
        assert_eq!(
            format_flow(&f, None, &NoPortNames),
            "table=0, priority=5,tcp,in_port=6,nw_src=10.0.0.0/8,tp_dst=80 actions=output:1"
        );
        assert_eq!(rt("table=3, actions=NORMAL"), "table=3, actions=NORMAL");
        assert_eq!(
            rt("dl_vlan=0xffff actions=drop"),
            "table=0, vlan_tci=0x0000 actions=drop"
        );
        assert_eq!(
            rt("dl_vlan=5,dl_vlan_pcp=3 actions=drop"),
            "table=0, dl_vlan=5,dl_vlan_pcp=3 actions=drop"
        );
    }

    #[test]
    fn every_action_round_trips() {
        for l in [
            "table=0, actions=resubmit(,60),resubmit(6,24),resubmit:6,IN_PORT,LOCAL,FLOOD",
            "table=0, actions=mod_vlan_vid:4,mod_vlan_pcp:2,mod_dl_dst:fa:16:3e:00:00:01,mod_nw_src:1.2.3.4,mod_nw_dst:5.6.7.8,mod_nw_tos:184,mod_tp_src:1,mod_tp_dst:2,dec_ttl",
            "table=0, actions=set_field:fa:16:3e:00:00:01->dl_src,set_field:0x5->reg0,set_field:10.0.0.1->nw_dst,load:0x1->NXM_NX_REG6[0..15],load:0x1->NXM_NX_REG1[],move:NXM_NX_REG0[]->NXM_NX_REG1[],load:0x1->OXM_OF_METADATA[3]",
            "table=0, actions=ct(commit,table=5,zone=NXM_NX_REG6[0..15],nat(src=10.0.0.1-10.0.0.5:1024-65535,random))",
            "table=0, actions=ct(table=5,zone=1,nat)",
            "table=0, actions=ct(commit,zone=2,nat(dst=192.168.0.5))",
            "table=0, actions=ct()",
            "table=0, ct_state=+new+trk,ct_zone=5 actions=NORMAL",
            "table=0, priority=1,tcp,tcp_flags=syn|ack actions=drop",
            "table=0, ct_state=new|trk actions=NORMAL",
            "table=0, reg6=0x5,metadata=0x1/0xff actions=NORMAL",
            "table=0, tcp,tp_src=0x400/0xfc00,tcp_flags=+syn-ack actions=NORMAL",
            "table=0, udp,nw_tos=184,nw_ttl=64,nw_frag=no,tp_dst=53 actions=NORMAL",
            "table=0, icmp,icmp_type=8,icmp_code=0 actions=NORMAL",
            "table=0, arp,arp_spa=10.0.0.0/24,arp_op=1,arp_sha=fa:16:3e:00:00:01,arp_tha=00:00:00:00:00:00 actions=NORMAL",
            "table=0, dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=NORMAL",
            "table=0, dl_type=0x88cc actions=drop",
            "cookie=0x1234, table=0, idle_timeout=10, hard_timeout=20, priority=1 actions=NORMAL",
            "cookie=0x4/0x6, table=0, actions=drop",
        ] {
            assert_eq!(rt(l), l);
        }
        let f = parse_flow("actions=set_field:0x1065->vlan_vid", &NoPortNames).unwrap();
        assert_eq!(
            f.actions,
            vec![Action::SetField {
                field: Field::VlanTci,
                value: 0x1065,
                mask: 0x1fff
            }]
        );
        let f = parse_flow(
            "actions=load:0x5->reg0[0..15],ct(zone=reg6[0..15])",
            &NoPortNames,
        )
        .unwrap();
        assert_eq!(
            format_actions(&f.actions, &NoPortNames),
            "load:0x5->NXM_NX_REG0[0..15],ct(zone=NXM_NX_REG6[0..15])"
        );
    }

    #[test]
    fn dump_flows_output_parses_back() {
        let f = parse_flow(
            "table=0, priority=10,arp,in_port=6 actions=goto_table:24",
            &NoPortNames,
        )
        .unwrap();
        let st = FlowStats {
            n_packets: 3,
            n_bytes: 180,
            duration_secs: 1.5,
            idle_age_secs: Some(1),
        };
        let line = format_flow(&f, Some(&st), &NoPortNames);
        assert_eq!(line, " cookie=0x0, duration=1.500s, table=0, n_packets=3, n_bytes=180, idle_age=1, priority=10,arp,in_port=6 actions=goto_table:24");
        assert_eq!(parse_flow(&line, &NoPortNames).unwrap(), f);
    }

    #[test]
    fn errors_name_the_token_and_column() {
        let e = parse_flow(
            "table=0,priority=10,arp,in_prot=6 actions=NORMAL",
            &NoPortNames,
        )
        .unwrap_err();
        assert_eq!((e.column, e.token.as_str()), (25, "in_prot=6"));
        let e = parse_flow("priority=1,tp_dst=80 actions=NORMAL", &NoPortNames).unwrap_err();
        assert_eq!(e.token, "tp_dst=80");
        assert!(e.message.contains("prerequisite"), "{e}");
        let e = parse_flow("priority=1 actions=output:6,bogus", &NoPortNames).unwrap_err();
        assert_eq!((e.column, e.token.as_str()), (29, "bogus"));
        let e = parse_flow("dl_vlan=5000 actions=drop", &NoPortNames).unwrap_err();
        assert_eq!(e.token, "dl_vlan=5000");
        let e = parse_flow("in_port=6", &NoPortNames).unwrap_err();
        assert!(e.message.contains("actions"));
        let e = parse_flow("actions=goto_table:2,NORMAL", &NoPortNames).unwrap_err();
        assert_eq!(e.token, "goto_table:2");
        let e = parse_flow("actions=ct(commit,zone=70000)", &NoPortNames).unwrap_err();
        assert!(e.message.contains("zone"), "{e}");
        let e = parse_flow("nw_src=10.0.0.300 actions=drop", &NoPortNames).unwrap_err();
        assert_eq!(e.token, "nw_src=10.0.0.300");
    }
}
