//! The values that match fields and actions take, both ways: numbers,
//! IPv4 and MAC addresses (with masks), flag sets, field and NXM names,
//! subfields, and port numbers or names.

use super::error::FlowSyntaxError;
use super::token::Tok;
use crate::flow::{ofp, PortNames};
use crate::key::{ct_state, Field, Mac};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// Parses a number in decimal or `0x` hex.
pub(super) fn parse_num(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

pub(super) fn num_in(
    t: &Tok,
    src: &str,
    s: &str,
    max: u64,
    what: &str,
) -> Result<u64, FlowSyntaxError> {
    match parse_num(s) {
        Some(v) if v <= max => Ok(v),
        Some(_) => Err(t.err(src, format!("{what} out of range (max {max})"))),
        None => Err(t.err(src, format!("expected a number for {what}"))),
    }
}

/// A `key=value` (or `key:value`) token with its value, for parsers that
/// report errors against the whole token.
pub(super) struct KeyValue<'a, 's> {
    pub(super) t: Tok<'a>,
    pub(super) src: &'s str,
    pub(super) k: &'a str,
    pub(super) v: &'a str,
}

impl KeyValue<'_, '_> {
    pub(super) fn err(&self, message: impl Into<String>) -> FlowSyntaxError {
        self.t.err(self.src, message)
    }

    /// `bad WHAT `VALUE` for `KEY``.
    pub(super) fn bad(&self, what: &str) -> FlowSyntaxError {
        self.err(format!("bad {what} `{}` for `{}`", self.v, self.k))
    }

    /// The value as a number up to `max`.
    pub(super) fn num(&self, max: u64, what: &str) -> Result<u64, FlowSyntaxError> {
        num_in(&self.t, self.src, self.v, max, what)
    }
}

pub(super) fn parse_ipv4(s: &str) -> Option<u32> {
    s.parse::<Ipv4Addr>().ok().map(u32::from)
}

/// `A.B.C.D`, `A.B.C.D/len` or `A.B.C.D/M.M.M.M` → (value, mask).
pub(super) fn parse_ipv4_masked(s: &str) -> Option<(u32, u32)> {
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

pub(super) fn parse_mac_masked(s: &str) -> Option<(u64, u64)> {
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
pub(super) fn parse_num_masked(s: &str, full: u64) -> Option<(u64, u64)> {
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
pub(super) fn parse_flags(s: &str, names: &[(u64, &str)], full: u64) -> Option<(u64, u64)> {
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

pub(super) fn format_flags(out: &mut String, v: u64, m: u64, names: &[(u64, &str)], full: u64) {
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

pub(super) fn tcp_flag_names() -> Vec<(u64, &'static str)> {
    TCP_FLAG_NAMES.iter().map(|&(b, n)| (b as u64, n)).collect()
}

pub(super) fn ct_state_names() -> Vec<(u64, &'static str)> {
    ct_state::NAMES
        .iter()
        .map(|&(b, n)| (b as u64, n))
        .collect()
}

/// Field names accepted in `set_field`, `load`, `move` and `ct(zone=)`:
/// ovs-ofctl's short names, their OXM-style aliases and the NXM names.
pub(super) fn field_by_name(name: &str) -> Option<Field> {
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
pub(super) fn parse_field_value(f: Field, s: &str) -> Option<u64> {
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

pub(super) fn format_field_value(out: &mut String, f: Field, v: u64) {
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
pub(super) fn parse_subfield(s: &str) -> Option<(Field, u8, u8)> {
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
        Field::VlanTpid
        | Field::IcmpId
        | Field::NdTargetHi
        | Field::NdTargetLo
        | Field::Ipv6SrcHi
        | Field::Ipv6SrcLo
        | Field::Ipv6DstHi
        | Field::Ipv6DstLo
        | Field::RecircId => f.name(),
    }
}

pub(super) fn format_subfield(out: &mut String, f: Field, ofs: u8, nbits: u8) {
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
pub(super) fn parse_port(s: &str, ports: &dyn PortNames) -> Option<u32> {
    let s = s.trim_matches('"');
    if let Some(n) = parse_num(s) {
        return (n <= u32::MAX as u64).then_some(n as u32);
    }
    reserved_port(s).or_else(|| ports.port_number(s))
}

pub(super) fn format_port(out: &mut String, n: u32, ports: &dyn PortNames) {
    // The bridge's own port is LOCAL, as ovs-ofctl writes it.
    if n == ofp::LOCAL {
        out.push_str("LOCAL");
    } else if let Some(name) = ports.port_name(n) {
        out.push_str(name);
    } else if let Some(r) = reserved_port_name(n) {
        out.push_str(r);
    } else {
        let _ = write!(out, "{n}");
    }
}
