//! What must hold for every frame, whatever it is, judged on the outputs of
//! that frame alone:
//!
//! * accounted: it was sent somewhere, dropped under a counted reason, or
//!   held for neighbour resolution; nothing vanishes;
//! * no tenant address (10.0.0.0/8) on the external network: nothing out of
//!   `eth2` carries one as IPv4 source or destination, in the header an ICMP
//!   error quotes, or as an ARP sender or target; an address the frame
//!   itself brought in from the external network is its own, not a leak;
//! * no VLAN or S-tag leak: nothing leaves a VM port or `eth2` tagged;
//! * no spoofed source leaving a VM port: a frame from vm1's port whose
//!   Ethernet source is not vm1's MAC, or whose IPv4 source or ARP sender is
//!   not vm1's address (DHCP discovery from 0.0.0.0 excepted, as port
//!   security allows it), reaches no port;
//! * well-formed: a frame the switch rewrote beyond its Ethernet header
//!   (routed, NATed) or generated (ICMP errors, ARP replies and requests)
//!   has a consistent IPv4 header with the right checksum, right TCP, UDP
//!   (0 allowed) and ICMP checksums when it is not a fragment, a right
//!   checksum on the header an ICMP error quotes; an ARP packet is
//!   Ethernet/IPv4, one forwarded (the input's operation and sender) is the
//!   input's byte for byte, and a reply answers the request it was made for
//!   (its target is the request's sender, its sender what the request asked
//!   for).

use super::cast::{is_tenant, Cast};
use super::frame;
use super::host::Outcome;
use super::roles::{EXTERNAL, VM1_PORT};
use pipeline::wire::arp::op;
use pipeline::wire::{ipproto, ArpPacket, IcmpPacket, TcpPacket, UdpPacket};
use std::net::Ipv4Addr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Invariant {
    Accounted,
    NoTenantAddressOutside,
    NoTagLeak,
    NoSpoofedSource,
    WellFormed,
}

impl Invariant {
    pub fn name(self) -> &'static str {
        match self {
            Invariant::Accounted => "every frame accounted",
            Invariant::NoTenantAddressOutside => "no tenant address on the external network",
            Invariant::NoTagLeak => "no VLAN or S-tag leak",
            Invariant::NoSpoofedSource => "no spoofed source leaving a VM port",
            Invariant::WellFormed => "well-formed",
        }
    }
}

/// One invariant broken by one output (or by the frame as a whole).
pub struct Finding {
    pub invariant: Invariant,
    pub detail: String,
}

/// Everything `input`, sent into `in_port`, broke.
pub fn check(c: &Cast, in_port: &str, input: &[u8], out: &Outcome) -> Vec<Finding> {
    let mut v = Vec::new();
    let mut find = |invariant, detail: String| v.push(Finding { invariant, detail });
    if out.outputs.is_empty() && out.drops.is_empty() && out.held == 0 {
        find(
            Invariant::Accounted,
            "neither sent, dropped under a reason, nor held".into(),
        );
    }
    if in_port == VM1_PORT && !out.outputs.is_empty() {
        if let Some(why) = spoofed(c, input) {
            let to: Vec<&str> = out.outputs.iter().map(|(p, _)| p.as_str()).collect();
            find(
                Invariant::NoSpoofedSource,
                format!("{why}, yet sent to {}", to.join(", ")),
            );
        }
    }
    for (port, f) in &out.outputs {
        let on = |what: String| format!("out {port}: {what}: {}", frame::summary(f));
        if port == EXTERNAL {
            let own = if in_port == EXTERNAL {
                addresses(input)
            } else {
                Vec::new()
            };
            let leaked: Vec<String> = addresses(f)
                .into_iter()
                .filter(|(_, a)| is_tenant(*a) && !own.iter().any(|(_, o)| o == a))
                .map(|(field, a)| format!("{field} {a}"))
                .collect();
            if !leaked.is_empty() {
                find(Invariant::NoTenantAddressOutside, on(leaked.join(", ")));
            }
        }
        if port.starts_with("qvo-") || port == EXTERNAL {
            if let Some(tpid) = frame::outer_ethertype(f).filter(|t| frame::TPIDS.contains(t)) {
                find(Invariant::NoTagLeak, on(format!("tagged {tpid:#06x}")));
            }
        }
        if frame::network_bytes(f) != frame::network_bytes(input) {
            for problem in malformed(input, f) {
                find(Invariant::WellFormed, on(problem));
            }
        }
    }
    v
}

/// Why a frame from vm1's port is not vm1's, if it is not.
fn spoofed(c: &Cast, f: &[u8]) -> Option<String> {
    let (mac, ip) = c.vm1;
    if let Some(src) = frame::eth_src(f).filter(|m| *m != mac) {
        return Some(format!("Ethernet source {src} is not vm1's"));
    }
    if let Some(h) = frame::ipv4(f) {
        let src = Ipv4Addr::from(h.src_addr());
        let dhcp_discovery = src.is_unspecified()
            && frame::flow_ids(f).is_some_and(|(p, s, d)| (p, s, d) == (ipproto::UDP, 68, 67));
        if src != ip && !dhcp_discovery {
            return Some(format!("IPv4 source {src} is not vm1's"));
        }
    }
    if let Some(a) = frame::arp(f) {
        let spa = Ipv4Addr::from(a.spa());
        if spa != ip {
            return Some(format!("ARP sender {spa} is not vm1's"));
        }
    }
    None
}

/// The IPv4 addresses a frame carries, each with the field that holds it.
fn addresses(f: &[u8]) -> Vec<(&'static str, Ipv4Addr)> {
    let mut v = Vec::new();
    if let Some(ip) = frame::ipv4(f) {
        v.push(("source", ip.src_addr().into()));
        v.push(("destination", ip.dst_addr().into()));
        if let Some(q) = frame::quoted(f) {
            v.push(("quoted source", q.src_addr().into()));
            v.push(("quoted destination", q.dst_addr().into()));
        }
    }
    if let Some(a) = frame::arp(f) {
        v.push(("ARP sender", a.spa().into()));
        v.push(("ARP target", a.tpa().into()));
    }
    v
}

/// What is wrong with `out`, a frame the switch rewrote or made (from
/// `input`).
fn malformed(input: &[u8], out: &[u8]) -> Vec<String> {
    if frame::ipv4(out).is_some() {
        return malformed_ipv4(input, out);
    }
    if let Some(a) = frame::arp(out) {
        return malformed_arp(input, &a);
    }
    Vec::new()
}

fn malformed_ipv4(input: &[u8], out: &[u8]) -> Vec<String> {
    let Some(ip) = frame::ipv4(out) else {
        return Vec::new();
    };
    if !ip.is_consistent() {
        return vec![format!(
            "IPv4 lengths inconsistent (header {}, total {}, {} bytes after the Ethernet header)",
            ip.header_len(),
            ip.total_len(),
            ip.into_inner().len()
        )];
    }
    let mut v = Vec::new();
    if !ip.verify_checksum() {
        let input_right = frame::ipv4(input).map(|i| i.verify_checksum());
        v.push(format!("IPv4 header checksum wrong{}", as_in(input_right)));
    }
    if let Some((name, false)) = transport_checksum_right(out) {
        // A router forwards a segment whose checksum was already wrong as
        // it is (Linux neither checks nor repairs it when it routes; NAT
        // refuses it, see router_input_checks.rs): wrong only counts when
        // the switch made it so.
        let input_right = transport_checksum_right(input).map(|(_, right)| right);
        if input_right != Some(false) {
            v.push(format!("{name} checksum wrong{}", as_in(input_right)));
        }
    }
    let quote_wrong = frame::quoted(out).is_some_and(|q| {
        q.header_len() >= pipeline::wire::ipv4::HEADER_LEN
            && q.header().len() == q.header_len()
            && !q.verify_checksum()
    });
    if quote_wrong {
        v.push("quoted IPv4 header checksum wrong".into());
    }
    v
}

/// How the input's checksum stood, to tell a wrong checksum carried
/// through a rewrite from one the rewrite made.
fn as_in(input_right: Option<bool>) -> &'static str {
    match input_right {
        Some(true) => " (right in the input)",
        Some(false) => " (wrong in the input too)",
        None => "",
    }
}

/// Whether the TCP, UDP or ICMP checksum of an unfragmented, whole IPv4
/// datagram verifies (UDP's 0, "none", does).
fn transport_checksum_right(f: &[u8]) -> Option<(&'static str, bool)> {
    let ip = frame::ipv4(f).filter(|ip| ip.is_consistent())?;
    if ip.more_fragments() || ip.fragment_offset() != 0 {
        return None;
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let l4 = ip.payload();
    match ip.protocol() {
        ipproto::TCP => TcpPacket::new_checked(l4).map(|t| ("TCP", t.verify_checksum(src, dst))),
        ipproto::UDP => UdpPacket::new_checked(l4)
            .map(|u| ("UDP", u.checksum() == 0 || u.verify_checksum(src, dst))),
        ipproto::ICMP => IcmpPacket::new_checked(l4).map(|m| ("ICMP", m.verify_checksum())),
        _ => None,
    }
}

fn malformed_arp(input: &[u8], a: &ArpPacket<&[u8]>) -> Vec<String> {
    let mut v = Vec::new();
    if !a.is_ethernet_ipv4() {
        v.push("ARP not Ethernet/IPv4".into());
        return v;
    }
    let Some(asked) = frame::arp(input) else {
        return v;
    };
    if (a.op(), a.sha(), a.spa()) == (asked.op(), asked.sha(), asked.spa()) {
        v.push(format!(
            "ARP packet forwarded with its bytes changed: target {}/{} was {}/{}",
            Ipv4Addr::from(a.tpa()),
            a.tha(),
            Ipv4Addr::from(asked.tpa()),
            asked.tha()
        ));
        return v;
    }
    let Some(req) = Some(asked).filter(|r| r.op() == op::REQUEST) else {
        return v;
    };
    if a.op() == op::REPLY {
        let (spa, tpa) = (Ipv4Addr::from(a.spa()), Ipv4Addr::from(a.tpa()));
        if a.tha() != req.sha() || tpa != Ipv4Addr::from(req.spa()) {
            v.push(format!(
                "ARP reply to {tpa}/{} answers a request from {}/{}",
                a.tha(),
                Ipv4Addr::from(req.spa()),
                req.sha()
            ));
        }
        if spa != Ipv4Addr::from(req.tpa()) {
            v.push(format!(
                "ARP reply for {spa} answers a request for {}",
                Ipv4Addr::from(req.tpa())
            ));
        }
    }
    v
}
