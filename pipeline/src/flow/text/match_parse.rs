//! Parsing a match: each field token sets bits of the `Match` and records
//! what it needs of `dl_type`/`nw_proto`; the prerequisites are checked
//! once every field is known, as OVS does.

use super::error::FlowSyntaxError;
use super::token::Tok;
use super::value::{
    ct_state_names, field_by_name, parse_flags, parse_ipv4_masked, parse_mac_masked,
    parse_num_masked, parse_port, tcp_flag_names, KeyValue,
};
use crate::flow::{Match, PortNames};
use crate::key::{Field, VLAN_CFI, VLAN_TPID_8021AD};
use crate::wire::{ethertype, ipproto, vlan};
use std::net::Ipv6Addr;

/// Fields set while parsing a match, remembered to check prerequisites.
pub(super) struct MatchBuilder<'a> {
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
    Ipv6,
    NdSolicit,
    NdAdvert,
}

impl<'a> MatchBuilder<'a> {
    pub(super) fn new() -> Self {
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
    pub(super) fn token(
        &mut self,
        t: Tok<'a>,
        src: &str,
        ports: &dyn PortNames,
    ) -> Result<bool, FlowSyntaxError> {
        let (k, v) = t.key_value();
        if let Some((dl, p)) = shorthand(k) {
            if v.is_some() {
                return Err(t.err(src, format!("`{k}` takes no value")));
            }
            self.proto(dl, p);
            return Ok(true);
        }
        if !is_match_field(k) {
            return Ok(false);
        }
        let Some(v) = v.filter(|v| !v.is_empty()) else {
            return Err(t.err(src, format!("`{k}` needs a value")));
        };
        let f = KeyValue { t, src, k, v };
        let m = &mut self.m;
        let need = if let Some(n) = ethernet_field(m, &f, ports)? {
            n
        } else if let Some(n) = network_field(m, &f)? {
            n
        } else if let Some(n) = transport_field(m, &f)? {
            n
        } else {
            pipeline_field(m, &f)?
        };
        self.used.push((t, need));
        Ok(true)
    }

    /// Checks every field's prerequisites (as OVS does) once all are known.
    pub(super) fn finish(self, src: &str) -> Result<Match, FlowSyntaxError> {
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
                Need::Ipv6 => is_ip6,
                Need::NdSolicit => {
                    is_ip6 && proto == Some(ipproto::ICMPV6) && m.get(Field::TpSrc) == (135, 0xffff)
                }
                Need::NdAdvert => {
                    is_ip6 && proto == Some(ipproto::ICMPV6) && m.get(Field::TpSrc) == (136, 0xffff)
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
                    Need::Ipv6 => "ipv6",
                    Need::NdSolicit => "icmp6 with icmp_type=135",
                    Need::NdAdvert => "icmp6 with icmp_type=136",
                };
                return Err(t.err(src, format!("prerequisite not met: needs {what}")));
            }
        }
        Ok(m)
    }
}

/// A protocol shorthand (`ip`, `tcp6`, …): the `dl_type` and `nw_proto` it sets.
fn shorthand(k: &str) -> Option<(u16, Option<u8>)> {
    match k {
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
    }
}

/// Every match field name accepted with a value (the groups below parse them).
fn is_match_field(k: &str) -> bool {
    matches!(
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
            | "vlan_tpid"
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
            | "nd_sll"
            | "nd_tll"
            | "ipv6_src"
            | "ipv6_dst"
            | "ct_state"
            | "ct_zone"
            | "metadata"
    ) || (k.starts_with("reg") && field_by_name(k).is_some())
}

/// Ethernet and port fields: `in_port`, MACs, `dl_type`, VLAN; `None` for
/// another field.
fn ethernet_field(
    m: &mut Match,
    f: &KeyValue,
    ports: &dyn PortNames,
) -> Result<Option<Need>, FlowSyntaxError> {
    match f.k {
        "in_port" => {
            let p =
                parse_port(f.v, ports).ok_or_else(|| f.err(format!("unknown port `{}`", f.v)))?;
            m.set_exact(Field::InPort, p as u64);
        }
        "dl_src" | "eth_src" | "dl_dst" | "eth_dst" => {
            let (val, mask) = parse_mac_masked(f.v).ok_or_else(|| f.bad("MAC address"))?;
            let field = if f.k.ends_with("src") {
                Field::DlSrc
            } else {
                Field::DlDst
            };
            m.set(field, val, mask);
        }
        "dl_type" | "eth_type" => {
            m.set_exact(Field::DlType, f.num(0xffff, "ethertype")?);
        }
        "dl_vlan" => {
            let vid = f.num(0xffff, "VLAN id")?;
            if vid == 0xffff {
                m.set(Field::VlanTci, 0, 0xffff);
            } else if vid > 4095 {
                return Err(f.err("VLAN id must be 0..4095 (or 0xffff for untagged)"));
            } else {
                m.set(Field::VlanTci, VLAN_CFI as u64 | vid, 0x1fff);
            }
        }
        "dl_vlan_pcp" => {
            let pcp = f.num(7, "VLAN priority")?;
            m.set(Field::VlanTci, VLAN_CFI as u64 | (pcp << 13), 0xf000);
        }
        "vlan_tci" => {
            let (val, mask) = parse_num_masked(f.v, 0xffff).ok_or_else(|| f.bad("TCI"))?;
            m.set(Field::VlanTci, val, mask);
        }
        // Ours (OpenFlow has no TPID match): which tag the outer one is.
        "vlan_tpid" => {
            let tpid = f.num(0xffff, "TPID")? as u16;
            if !vlan::is_tpid(tpid) {
                return Err(f.err("vlan_tpid is 0x8100 or 0x88a8"));
            }
            let code = if tpid == ethertype::QINQ {
                VLAN_TPID_8021AD
            } else {
                0
            };
            m.set_exact(Field::VlanTpid, code);
        }
        _ => return Ok(None),
    }
    Ok(Some(Need::Nothing))
}

/// IPv4 and ARP fields: addresses, ARP opcode and hardware addresses,
/// protocol, TOS, TTL, fragments; `None` for another field.
fn network_field(m: &mut Match, f: &KeyValue) -> Result<Option<Need>, FlowSyntaxError> {
    let need = match f.k {
        "arp_op" => {
            m.set_exact(Field::NwProto, f.num(0xff, "ARP opcode")?);
            Need::Arp
        }
        "arp_spa" | "arp_tpa" | "nw_src" | "nw_dst" | "ip_src" | "ip_dst" => {
            let (val, mask) =
                parse_ipv4_masked(f.v).ok_or_else(|| f.bad("IPv4 address or prefix"))?;
            let field = if f.k.ends_with("spa") || f.k.ends_with("src") {
                Field::NwSrc
            } else {
                Field::NwDst
            };
            m.set(field, val as u64, mask as u64);
            if f.k.starts_with("arp") {
                Need::Arp
            } else {
                Need::IpOrArp
            }
        }
        "arp_sha" | "arp_tha" => {
            let (val, mask) = parse_mac_masked(f.v).ok_or_else(|| f.bad("MAC address"))?;
            let field = if f.k == "arp_sha" {
                Field::ArpSha
            } else {
                Field::ArpTha
            };
            m.set(field, val, mask);
            Need::Arp
        }
        "nw_proto" | "ip_proto" => {
            m.set_exact(Field::NwProto, f.num(0xff, "IP protocol")?);
            Need::IpOrIpv6
        }
        "nw_tos" => {
            let tos = f.num(0xff, "TOS")?;
            if tos & 3 != 0 {
                return Err(f.err("nw_tos is the DSCP part of the TOS byte: low 2 bits must be 0"));
            }
            m.set(Field::NwTos, tos, 0xfc);
            Need::IpOrIpv6
        }
        "nw_ttl" => {
            m.set_exact(Field::NwTtl, f.num(0xff, "TTL")?);
            Need::IpOrIpv6
        }
        "nw_frag" => {
            let (val, mask) = frag_value(f.v)
                .ok_or_else(|| f.err("nw_frag is one of no, yes, first, later, not_later"))?;
            m.set(Field::NwFrag, val as u64, mask as u64);
            Need::IpOrIpv6
        }
        _ => return Ok(None),
    };
    Ok(Some(need))
}

/// An IPv6 address with an optional prefix length or mask (`addr`,
/// `addr/64`, `addr/ffff:ffff::`): (value under the mask, mask).
fn parse_ipv6_masked(v: &str) -> Option<(u128, u128)> {
    let (a, mask) = match v.split_once('/') {
        Some((a, m)) => {
            let mask = match m.parse::<u32>() {
                Ok(0) => 0,
                Ok(n) if n <= 128 => u128::MAX << (128 - n),
                Ok(_) => return None,
                Err(_) => u128::from(m.parse::<Ipv6Addr>().ok()?),
            };
            (a, mask)
        }
        None => (v, u128::MAX),
    };
    let a = u128::from(a.parse::<Ipv6Addr>().ok()?);
    Some((a & mask, mask))
}

/// `nw_frag=`'s names as (value, mask) over the fragment bits.
fn frag_value(v: &str) -> Option<(u8, u8)> {
    use crate::key::{FRAG_ANY, FRAG_LATER};
    Some(match v {
        "no" => (0, FRAG_ANY),
        "yes" => (FRAG_ANY, FRAG_ANY),
        "first" => (FRAG_ANY, FRAG_ANY | FRAG_LATER),
        "later" => (FRAG_ANY | FRAG_LATER, FRAG_ANY | FRAG_LATER),
        "not_later" => (0, FRAG_LATER),
        _ => return None,
    })
}

/// TCP/UDP ports, TCP flags, ICMP type and code, ND target; `None` for
/// another field.
fn transport_field(m: &mut Match, f: &KeyValue) -> Result<Option<Need>, FlowSyntaxError> {
    let need = match f.k {
        "tp_src" | "tcp_src" | "udp_src" | "tp_dst" | "tcp_dst" | "udp_dst" => {
            let (val, mask) = parse_num_masked(f.v, 0xffff).ok_or_else(|| f.bad("port"))?;
            let field = if f.k.ends_with("src") {
                Field::TpSrc
            } else {
                Field::TpDst
            };
            m.set(field, val, mask);
            Need::L4Ports
        }
        "tcp_flags" => {
            let (val, mask) =
                parse_flags(f.v, &tcp_flag_names(), 0x0fff).ok_or_else(|| f.bad("TCP flags"))?;
            m.set(Field::TcpFlags, val, mask);
            Need::Tcp
        }
        "icmp_type" | "icmpv4_type" | "icmpv6_type" => {
            m.set_exact(Field::TpSrc, f.num(0xff, "ICMP type")?);
            Need::Icmp
        }
        "icmp_code" | "icmpv4_code" | "icmpv6_code" => {
            m.set_exact(Field::TpDst, f.num(0xff, "ICMP code")?);
            Need::Icmp
        }
        "ipv6_src" | "ipv6_dst" => {
            let (a, mask) = parse_ipv6_masked(f.v).ok_or_else(|| f.bad("IPv6 address"))?;
            let (hi, lo) = if f.k == "ipv6_src" {
                (Field::Ipv6SrcHi, Field::Ipv6SrcLo)
            } else {
                (Field::Ipv6DstHi, Field::Ipv6DstLo)
            };
            m.set(hi, (a >> 64) as u64, (mask >> 64) as u64);
            m.set(lo, a as u64, mask as u64);
            Need::Ipv6
        }
        "nd_sll" | "nd_tll" => {
            let (val, mask) = parse_mac_masked(f.v).ok_or_else(|| f.bad("MAC address"))?;
            if f.k == "nd_sll" {
                m.set(Field::ArpSha, val, mask);
                Need::NdSolicit
            } else {
                m.set(Field::ArpTha, val, mask);
                Need::NdAdvert
            }
        }
        "nd_target" => {
            let a: Ipv6Addr = f.v.parse().map_err(|_| f.bad("IPv6 address"))?;
            let a = u128::from(a);
            m.set_exact(Field::NdTargetHi, (a >> 64) as u64);
            m.set_exact(Field::NdTargetLo, a as u64);
            Need::Nd
        }
        _ => return Ok(None),
    };
    Ok(Some(need))
}

/// Pipeline fields: connection tracking state and zone, metadata,
/// registers.
fn pipeline_field(m: &mut Match, f: &KeyValue) -> Result<Need, FlowSyntaxError> {
    match f.k {
        "ct_state" => {
            let (val, mask) =
                parse_flags(f.v, &ct_state_names(), 0xff).ok_or_else(|| f.bad("ct_state flags"))?;
            m.set(Field::CtState, val, mask);
        }
        "ct_zone" => {
            let (val, mask) = parse_num_masked(f.v, 0xffff).ok_or_else(|| f.bad("zone"))?;
            m.set(Field::CtZone, val, mask);
        }
        "metadata" => {
            let (val, mask) = parse_num_masked(f.v, u64::MAX).ok_or_else(|| f.bad("value"))?;
            m.set(Field::Metadata, val, mask);
        }
        _ => {
            let field = field_by_name(f.k).ok_or_else(|| f.err("unknown field"))?;
            let (val, mask) = parse_num_masked(f.v, 0xffff_ffff).ok_or_else(|| f.bad("value"))?;
            m.set(field, val, mask);
        }
    }
    Ok(Need::Nothing)
}
