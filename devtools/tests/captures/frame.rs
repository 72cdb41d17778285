//! Frames as bytes, whatever they hold: where the network layer starts past
//! any 802.1Q/802.1ad tags, views of it through `pipeline::wire`, the edits
//! that put a captured frame in a role, and a one-line summary.
//!
//! Every edit patches the checksums it touches incrementally (RFC 1624, the
//! views' `update_*` setters), as a router does: a frame whose checksums
//! were right stays right, one whose checksums were wrong stays wrong by as
//! much. Frames cut short keep whatever does not fit unedited.

use pipeline::key::Mac;
use pipeline::wire::{ethernet, ethertype, icmp, ipproto, ipv4, vlan};
use pipeline::wire::{ArpPacket, EthernetFrame, IcmpPacket, Ipv4Packet, TcpPacket};
use pipeline::wire::{UdpPacket, VlanTag};
use std::net::Ipv4Addr;

/// Tag protocol identifiers: 802.1Q, 802.1ad, and the pre-standard QinQ one.
pub const TPIDS: [u16; 3] = [ethertype::VLAN, ethertype::QINQ, 0x9100];

/// Where a frame's layers are.
#[derive(Clone, Copy, Debug)]
pub struct Layers {
    /// VLAN tags (any TPID) before the network layer.
    pub tags: usize,
    /// Offset of the network layer.
    pub l3: usize,
    /// The ethertype after the tags (a TPID if the last tag is cut short).
    pub ethertype: u16,
}

/// The frame's layers; `None` if it has no whole Ethernet header.
pub fn layers(f: &[u8]) -> Option<Layers> {
    let eth = EthernetFrame::new_checked(f)?;
    let mut l = Layers {
        tags: 0,
        l3: ethernet::HEADER_LEN,
        ethertype: eth.ethertype(),
    };
    while TPIDS.contains(&l.ethertype) {
        let Some(tag) = f.get(l.l3..).and_then(VlanTag::new_checked) else {
            break;
        };
        l.ethertype = tag.inner_ethertype();
        l.l3 += vlan::HEADER_LEN;
        l.tags += 1;
    }
    Some(l)
}

/// The ethertype right after the addresses: a TPID if the frame is tagged.
pub fn outer_ethertype(f: &[u8]) -> Option<u16> {
    EthernetFrame::new_checked(f).map(|e| e.ethertype())
}

pub fn eth_src(f: &[u8]) -> Option<Mac> {
    EthernetFrame::new_checked(f).map(|e| e.src())
}

pub fn eth_dst(f: &[u8]) -> Option<Mac> {
    EthernetFrame::new_checked(f).map(|e| e.dst())
}

/// The IPv4 header past any tags, if the frame is IPv4 and it fits.
pub fn ipv4(f: &[u8]) -> Option<Ipv4Packet<&[u8]>> {
    let l = layers(f)?;
    if l.ethertype != ethertype::IPV4 {
        return None;
    }
    Ipv4Packet::new_checked(f.get(l.l3..)?)
}

/// The ARP packet past any tags, if the frame is ARP and its 28 bytes fit.
pub fn arp(f: &[u8]) -> Option<ArpPacket<&[u8]>> {
    let l = layers(f)?;
    if l.ethertype != ethertype::ARP {
        return None;
    }
    ArpPacket::new_checked(f.get(l.l3..)?)
}

/// The protocol and offset of an IPv4 frame's transport header, if it has
/// one (not a later fragment) and it starts within the frame.
fn transport_at(f: &[u8]) -> Option<(u8, usize)> {
    let l = layers(f)?;
    let ip = ipv4(f)?;
    let at = l.l3 + ip.header_len();
    (ip.fragment_offset() == 0 && ip.header_len() >= ipv4::HEADER_LEN && at <= f.len())
        .then_some((ip.protocol(), at))
}

/// The transport header of an IPv4 frame (what follows the IP header, up to
/// the frame's end), with its protocol; `None` for a later fragment.
pub fn transport(f: &[u8]) -> Option<(u8, &[u8])> {
    let (proto, at) = transport_at(f)?;
    Some((proto, &f[at..]))
}

/// TCP/UDP ports, or an ICMP echo's identifier (twice), of the frame.
pub fn flow_ids(f: &[u8]) -> Option<(u8, u16, u16)> {
    let (proto, l4) = transport(f)?;
    match proto {
        ipproto::TCP | ipproto::UDP => {
            let p = pipeline::wire::L4Ports::new_checked(l4)?;
            Some((proto, p.src_port(), p.dst_port()))
        }
        ipproto::ICMP => {
            let m = IcmpPacket::new_checked(l4)?;
            icmp::is_echo(m.msg_type()).then(|| (proto, m.identifier(), m.identifier()))
        }
        _ => None,
    }
}

/// Sets the Ethernet addresses given.
pub fn set_macs(f: &mut [u8], src: Option<Mac>, dst: Option<Mac>) {
    if let Some(mut e) = EthernetFrame::new_checked(f) {
        if let Some(m) = src {
            e.set_src(m);
        }
        if let Some(m) = dst {
            e.set_dst(m);
        }
    }
}

/// Pushes an 802.1Q tag (priority 0) outside any the frame has.
pub fn push_vlan(f: &mut Vec<u8>, vid: u16) {
    if f.len() >= 12 {
        let [t0, t1] = ethertype::VLAN.to_be_bytes();
        let [v0, v1] = (vid & 0x0fff).to_be_bytes();
        f.splice(12..12, [t0, t1, v0, v1]);
    }
}

/// Sets the IPv4 addresses given, patching the header checksum and a TCP or
/// UDP checksum (whose pseudo-header holds them).
pub fn set_ipv4_addrs(f: &mut [u8], src: Option<Ipv4Addr>, dst: Option<Ipv4Addr>) {
    let Some(l) = layers(f).filter(|l| l.ethertype == ethertype::IPV4) else {
        return;
    };
    let Some(mut ip) = f.get_mut(l.l3..).and_then(Ipv4Packet::new_checked) else {
        return;
    };
    let mut changed = Vec::new();
    if let Some(a) = src {
        changed.push((ip.update_src_addr(a.into()), a.into()));
    }
    if let Some(a) = dst {
        changed.push((ip.update_dst_addr(a.into()), a.into()));
    }
    let Some((proto, at)) = transport_at(f) else {
        return;
    };
    let l4 = &mut f[at..];
    for (old, new) in changed {
        match proto {
            ipproto::TCP => {
                if let Some(mut t) = TcpPacket::new_checked(&mut *l4) {
                    t.update_pseudo_header_addr(old, new);
                }
            }
            ipproto::UDP => {
                if let Some(mut u) = UdpPacket::new_checked(&mut *l4) {
                    u.update_pseudo_header_addr(old, new);
                }
            }
            _ => {}
        }
    }
}

/// Sets a TCP/UDP destination port, or an ICMP echo's identifier, patching
/// the checksum.
pub fn set_flow_dst(f: &mut [u8], id: u16) {
    let Some((proto, at)) = transport_at(f) else {
        return;
    };
    let b = &mut f[at..];
    match proto {
        ipproto::TCP => {
            if let Some(mut t) = TcpPacket::new_checked(b) {
                t.update_dst_port(id);
            }
        }
        ipproto::UDP => {
            if let Some(mut u) = UdpPacket::new_checked(b) {
                u.update_dst_port(id);
            }
        }
        ipproto::ICMP => {
            if let Some(mut m) = IcmpPacket::new_checked(b) {
                m.update_identifier(id);
            }
        }
        _ => {}
    }
}

/// The frame seen from the other end: IPv4 addresses swapped, TCP/UDP ports
/// swapped, an echo reply made a request (checksums patched).
pub fn reverse(f: &mut [u8]) {
    let Some(ip) = ipv4(f) else { return };
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    set_ipv4_addrs(f, Some(dst.into()), Some(src.into()));
    let Some((proto, at)) = transport_at(f) else {
        return;
    };
    let b = &mut f[at..];
    match proto {
        ipproto::TCP => {
            if let Some(mut t) = TcpPacket::new_checked(b) {
                let (s, d) = (t.src_port(), t.dst_port());
                t.update_src_port(d);
                t.update_dst_port(s);
            }
        }
        ipproto::UDP => {
            if let Some(mut u) = UdpPacket::new_checked(b) {
                let (s, d) = (u.src_port(), u.dst_port());
                u.update_src_port(d);
                u.update_dst_port(s);
            }
        }
        ipproto::ICMP => {
            if let Some(mut m) = IcmpPacket::new_checked(b) {
                if m.msg_type() == icmp::types::ECHO_REPLY {
                    m.update_msg_type(icmp::types::ECHO_REQUEST);
                }
            }
        }
        _ => {}
    }
}

/// The offset of the IPv4 header an ICMP error quotes, if the frame is one
/// and the quoted header fits.
fn quoted_at(f: &[u8]) -> Option<usize> {
    let (proto, at) = transport_at(f)?;
    let m = IcmpPacket::new_checked(&f[at..]).filter(|_| proto == ipproto::ICMP)?;
    let q = at + icmp::HEADER_LEN;
    (icmp::is_error(m.msg_type()) && Ipv4Packet::new_checked(f.get(q..)?).is_some()).then_some(q)
}

/// The IPv4 header an ICMP error quotes.
pub fn quoted(f: &[u8]) -> Option<Ipv4Packet<&[u8]>> {
    Ipv4Packet::new_checked(&f[quoted_at(f)?..])
}

/// Makes an ICMP error's quoted header that of the packet the error
/// answers: from the error's destination to its source. The quoted header's
/// checksum is patched, which leaves the ICMP checksum (whose sum the
/// patch keeps) as right or wrong as it was.
pub fn quote_the_reverse(f: &mut [u8]) {
    let (Some(ip), Some(at)) = (ipv4(f), quoted_at(f)) else {
        return;
    };
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    if let Some(mut q) = Ipv4Packet::new_checked(&mut f[at..]) {
        q.update_src_addr(dst);
        q.update_dst_addr(src);
    }
}

/// Sets the ARP fields given (no checksum covers them).
pub fn set_arp(f: &mut [u8], spa: Option<Ipv4Addr>, tpa: Option<Ipv4Addr>) {
    let Some(l) = layers(f).filter(|l| l.ethertype == ethertype::ARP) else {
        return;
    };
    if let Some(mut a) = f.get_mut(l.l3..).and_then(ArpPacket::new_checked) {
        if let Some(ip) = spa {
            a.set_spa(ip.into());
        }
        if let Some(ip) = tpa {
            a.set_tpa(ip.into());
        }
    }
}

/// The network-layer bytes a forwarding switch carries unchanged: an IPv4
/// datagram up to its total length, an ARP packet's 28 bytes, otherwise
/// everything after the tags less trailing zero padding.
pub fn network_bytes(f: &[u8]) -> &[u8] {
    let Some(l) = layers(f) else { return &[] };
    let rest = f.get(l.l3..).unwrap_or_default();
    let len = match l.ethertype {
        ethertype::IPV4 => ipv4(f)
            .filter(|ip| ip.is_consistent())
            .map(|ip| ip.total_len()),
        ethertype::ARP => arp(f).map(|_| pipeline::wire::arp::HEADER_LEN),
        _ => None,
    };
    match len {
        Some(n) => rest.get(..n).unwrap_or(rest),
        None => {
            let end = rest.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
            &rest[..end]
        }
    }
}

/// One line: addresses, tags, and the network and transport headers.
pub fn summary(f: &[u8]) -> String {
    let Some(l) = layers(f) else {
        return format!("{} bytes (no Ethernet header)", f.len());
    };
    let eth = EthernetFrame::new_checked(f).map(|e| (e.src(), e.dst()));
    let mut s = match eth {
        Some((src, dst)) => format!("{} bytes {src} > {dst}", f.len()),
        None => format!("{} bytes", f.len()),
    };
    let mut at = ethernet::HEADER_LEN;
    for _ in 0..l.tags {
        let tpid = u16::from_be_bytes([f[at - 2], f[at - 1]]);
        let tci = u16::from_be_bytes([f[at], f[at + 1]]);
        s += &format!(" {}:{}", tag_name(tpid), tci & 0x0fff);
        at += vlan::HEADER_LEN;
    }
    s + " " + &network_summary(f, l)
}

fn tag_name(tpid: u16) -> &'static str {
    match tpid {
        ethertype::VLAN => "802.1Q",
        ethertype::QINQ => "802.1ad",
        _ => "0x9100",
    }
}

fn network_summary(f: &[u8], l: Layers) -> String {
    match l.ethertype {
        ethertype::IPV4 => match ipv4(f) {
            Some(ip) => ipv4_summary(f, &ip),
            None => "IPv4 (header cut short)".into(),
        },
        ethertype::ARP => match arp(f) {
            Some(a) => format!(
                "ARP op {} {}/{} > {}/{}",
                a.op(),
                Ipv4Addr::from(a.spa()),
                a.sha(),
                Ipv4Addr::from(a.tpa()),
                a.tha()
            ),
            None => "ARP (cut short)".into(),
        },
        ethertype::IPV6 => "IPv6".into(),
        t => format!("ethertype {t:#06x}"),
    }
}

fn ipv4_summary(f: &[u8], ip: &Ipv4Packet<&[u8]>) -> String {
    let mut s = format!(
        "IPv4 {} > {} proto {} ttl {} len {}",
        Ipv4Addr::from(ip.src_addr()),
        Ipv4Addr::from(ip.dst_addr()),
        ip.protocol(),
        ip.ttl(),
        ip.total_len()
    );
    if ip.more_fragments() || ip.fragment_offset() != 0 {
        s += &format!(" frag +{}", ip.fragment_offset() as usize * 8);
        if ip.more_fragments() {
            s += " MF";
        }
    }
    if !ip.verify_checksum() {
        s += " (header checksum wrong)";
    }
    match transport(f) {
        Some((ipproto::TCP | ipproto::UDP, l4)) => {
            if let Some(p) = pipeline::wire::L4Ports::new_checked(l4) {
                s += &format!(" ports {} > {}", p.src_port(), p.dst_port());
            }
            if let Some(t) = TcpPacket::new_checked(l4).filter(|_| ip.protocol() == ipproto::TCP) {
                s += &format!(" flags {}", tcp_flags(t.flags()));
            }
        }
        Some((ipproto::ICMP, l4)) => {
            if let Some(m) = IcmpPacket::new_checked(l4) {
                s += &format!(" icmp {}/{}", m.msg_type(), m.code());
            }
        }
        _ => {}
    }
    s
}

/// TCP flags as tcpdump prints them (`S`, `S.`, `P.`, `F.`, `R`...).
fn tcp_flags(flags: u16) -> String {
    let mut s: String = [
        (0x02, 'S'),
        (0x01, 'F'),
        (0x08, 'P'),
        (0x04, 'R'),
        (0x20, 'U'),
    ]
    .iter()
    .filter(|(bit, _)| flags & bit != 0)
    .map(|(_, c)| *c)
    .collect();
    if flags & 0x10 != 0 {
        s.push('.');
    }
    if s.is_empty() {
        s.push_str("none");
    }
    s
}
