//! Parsing a match: each field token sets bits of the `Match` and records
//! what it needs of `dl_type`/`nw_proto`; the prerequisites are checked
//! once every field is known, as OVS does.

use super::token::Tok;
use super::value::{
    ct_state_names, field_by_name, num_in, parse_flags, parse_ipv4_masked, parse_mac_masked,
    parse_num_masked, parse_port, tcp_flag_names,
};
use super::FlowSyntaxError;
use crate::flow::{Match, PortNames};
use crate::key::{ethertype, ipproto, Field, VLAN_CFI};
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
