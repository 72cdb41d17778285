//! The roles a captured frame plays in the spec's topology: which host and
//! port it enters, and how it is re-addressed to be in role. A frame left
//! as captured would only meet anti-spoofing and unknown MACs; re-addressed,
//! it goes where that kind of traffic goes (switched, routed, NATed) while
//! keeping everything else it carried: protocol, tags, fragment bits, TTL,
//! options, lengths, payload and checksums (patched, so wrong stays wrong).
//! An ICMP error's quote is made the header of the packet it answers (from
//! the error's destination to its source), so that every address a frame
//! carries is one of the role's.
//!
//! Addresses an outside party uses never fall in the tenant range: a
//! captured 10.0.0.0/8 address becomes a 198.51.100.0/24 one (`outside`),
//! so that a tenant address on the external network is always a leak.

use super::cast::{outside, Cast};
use super::frame;
use pipeline::key::Mac;
use pipeline::wire::ethertype;
use std::net::Ipv4Addr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// The frame as captured, from vm1's port: a spoofer.
    VmSpoofer,
    /// From vm1 (its MAC, its address), to the captured destination MAC.
    VmAsCaptured,
    /// From vm1 to vm2 (same host, same network).
    VmToVm2,
    /// From vm1 to vm3 (same network, compute2: across the trunk).
    VmToVm3,
    /// From vm1 to its gateway MAC, to the captured IPv4 destination.
    VmToGateway,
    /// From vm1 through its gateway to vm4 (§8.4, routed on compute1).
    RoutedToVm4,
    /// From vm1 through its gateway to vm5 (§8.5, routed to compute2).
    RoutedToVm5,
    /// From vm1 through its gateway to the external host (§8.7, out by its
    /// floating IP).
    FipOut,
    /// From the upstream router to vm1's floating IP (§8.8).
    FipIn,
    /// vm3's traffic to the outside as it reaches network1 from compute2's
    /// qrouter (§8.6 steps 4-6).
    SnatEgress,
    /// From the upstream router to the SNAT address (§8.6 step 10), each a
    /// reply to what vm3 sent first (`snat_mirror`).
    SnatReply,
    /// As captured, on compute1's trunk NIC.
    WireCompute1Trunk,
    /// As captured, on compute1's external NIC.
    WireCompute1External,
    /// As captured, on network1's trunk NIC.
    WireNetwork1Trunk,
    /// As captured, on network1's external NIC.
    WireNetwork1External,
}

pub const ALL: [Role; 15] = [
    Role::VmSpoofer,
    Role::VmAsCaptured,
    Role::VmToVm2,
    Role::VmToVm3,
    Role::VmToGateway,
    Role::RoutedToVm4,
    Role::RoutedToVm5,
    Role::FipOut,
    Role::FipIn,
    Role::SnatEgress,
    Role::SnatReply,
    Role::WireCompute1Trunk,
    Role::WireCompute1External,
    Role::WireNetwork1Trunk,
    Role::WireNetwork1External,
];

/// vm1's port, the NICs.
pub const VM1_PORT: &str = "qvo-vm1";
pub const TRUNK: &str = "eth1";
pub const EXTERNAL: &str = "eth2";

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::VmSpoofer => "vm-spoofer",
            Role::VmAsCaptured => "vm-as-captured",
            Role::VmToVm2 => "vm-to-vm2",
            Role::VmToVm3 => "vm-to-vm3",
            Role::VmToGateway => "vm-to-gateway",
            Role::RoutedToVm4 => "routed-to-vm4",
            Role::RoutedToVm5 => "routed-to-vm5",
            Role::FipOut => "fip-out",
            Role::FipIn => "fip-in",
            Role::SnatEgress => "snat-egress",
            Role::SnatReply => "snat-reply",
            Role::WireCompute1Trunk => "wire-compute1-eth1",
            Role::WireCompute1External => "wire-compute1-eth2",
            Role::WireNetwork1Trunk => "wire-network1-eth1",
            Role::WireNetwork1External => "wire-network1-eth2",
        }
    }

    pub fn host(self) -> &'static str {
        match self {
            Role::SnatEgress
            | Role::SnatReply
            | Role::WireNetwork1Trunk
            | Role::WireNetwork1External => "network1",
            _ => "compute1",
        }
    }

    pub fn in_port(self) -> &'static str {
        match self {
            Role::SnatEgress | Role::WireCompute1Trunk | Role::WireNetwork1Trunk => TRUNK,
            Role::FipIn
            | Role::SnatReply
            | Role::WireCompute1External
            | Role::WireNetwork1External => EXTERNAL,
            _ => VM1_PORT,
        }
    }

    /// The port this role's traffic goes to when it is forwarded at all:
    /// some frame of the captures must get there, or the role was not
    /// exercised (its re-addressing is wrong). `None`: nothing must.
    pub fn destination(self) -> Option<&'static str> {
        match self {
            Role::VmToVm2 => Some("qvo-vm2"),
            Role::VmToVm3 | Role::RoutedToVm5 | Role::SnatReply => Some(TRUNK),
            Role::VmToGateway | Role::FipOut | Role::SnatEgress => Some(EXTERNAL),
            Role::RoutedToVm4 => Some("qvo-vm4"),
            Role::FipIn => Some(VM1_PORT),
            Role::VmSpoofer
            | Role::VmAsCaptured
            | Role::WireCompute1Trunk
            | Role::WireCompute1External
            | Role::WireNetwork1Trunk
            | Role::WireNetwork1External => None,
        }
    }

    /// The captured frame, re-addressed into this role.
    pub fn input(self, c: &Cast, captured: &[u8]) -> Vec<u8> {
        let mut f = captured.to_vec();
        match self {
            Role::VmSpoofer
            | Role::WireCompute1Trunk
            | Role::WireCompute1External
            | Role::WireNetwork1Trunk
            | Role::WireNetwork1External => {}
            Role::VmAsCaptured => from_vm1(&mut f, c, None, None, None),
            Role::VmToVm2 => from_vm1(&mut f, c, Some(c.vm2.0), None, Some(c.vm2.1)),
            Role::VmToVm3 => from_vm1(&mut f, c, Some(c.vm3.0), None, Some(c.vm3.1)),
            Role::VmToGateway => from_vm1(&mut f, c, Some(c.gw1.0), None, Some(c.gw1.1)),
            Role::RoutedToVm4 => from_vm1(&mut f, c, Some(c.gw1.0), Some(c.vm4.1), Some(c.gw1.1)),
            Role::RoutedToVm5 => from_vm1(&mut f, c, Some(c.gw1.0), Some(c.vm5.1), Some(c.gw1.1)),
            Role::FipOut => from_vm1(
                &mut f,
                c,
                Some(c.gw1.0),
                Some(c.external_host),
                Some(c.gw1.1),
            ),
            Role::FipIn => from_upstream(&mut f, c, (c.fg_c1.0, c.fip)),
            Role::SnatEgress => from_compute2_for_vm3(&mut f, c),
            Role::SnatReply => from_upstream(&mut f, c, c.qg),
        }
        f
    }
}

/// From vm1: its MAC and address as the source; `dst_mac` (but for a
/// broadcast ARP) and `dst_ip` when given (otherwise the captured ones,
/// outside the tenant range); an ARP packet asks for `arp_target` when
/// given.
fn from_vm1(
    f: &mut [u8],
    c: &Cast,
    dst_mac: Option<Mac>,
    dst_ip: Option<Ipv4Addr>,
    arp_target: Option<Ipv4Addr>,
) {
    let dst_mac = dst_mac.filter(|_| !broadcast_arp(f));
    frame::set_macs(f, Some(c.vm1.0), dst_mac);
    addresses(f, Some(c.vm1.1), dst_ip, arp_target);
}

/// From the upstream router to `to`: the MAC of a router port on the
/// external network (which answers ARP for the address) as the destination
/// (but for a broadcast ARP), the address as the IPv4 destination and ARP
/// target; sources as captured, outside the tenant range.
fn from_upstream(f: &mut [u8], c: &Cast, to: (Mac, Ipv4Addr)) {
    let dst_mac = Some(to.0).filter(|_| !broadcast_arp(f));
    frame::set_macs(f, Some(c.upstream.0), dst_mac);
    addresses(f, None, Some(to.1), Some(to.1));
}

/// vm3's frame as it reaches network1 on net1's VLAN: routed by compute2
/// (its DVR MAC to sg-s1's MAC) from vm3's address to the captured
/// destination (outside the tenant range); ARP comes from vm3 itself and
/// asks for sg-s1.
fn from_compute2_for_vm3(f: &mut Vec<u8>, c: &Cast) {
    let is_arp = frame::layers(f).is_some_and(|l| l.ethertype == ethertype::ARP);
    let src = if is_arp { c.vm3.0 } else { c.dvr_c2 };
    let dst_mac = Some(c.sg1.0).filter(|_| !broadcast_arp(f));
    frame::set_macs(f, Some(src), dst_mac);
    addresses(f, Some(c.vm3.1), None, Some(c.sg1.1));
    frame::push_vlan(f, c.net1_vlan);
}

/// An ARP packet sent to a group address (a request, as hosts broadcast
/// them): it keeps its destination MAC, so that it is flooded where ARP
/// requests are (§8.1, §8.8) and only its target is the role's.
fn broadcast_arp(f: &[u8]) -> bool {
    frame::arp(f).is_some() && frame::eth_dst(f).is_some_and(|m| m.is_multicast())
}

/// The first frame of the connection a SNAT reply belongs to: the captured
/// frame reversed (addresses, ports, an echo reply made a request) and sent
/// by vm3 as `SnatEgress` sends it, so that the captured frame, from the
/// upstream router to the SNAT address, is its reply.
pub fn snat_mirror(c: &Cast, captured: &[u8]) -> Vec<u8> {
    let mut f = captured.to_vec();
    frame::reverse(&mut f);
    from_compute2_for_vm3(&mut f, c);
    f
}

/// Sets the IPv4 source (when given) and destination (when given, else the
/// captured one outside the tenant range; the source likewise when not
/// given), an ICMP error's quote to match, or the ARP sender (the same
/// source) and target.
fn addresses(
    f: &mut [u8],
    src: Option<Ipv4Addr>,
    dst: Option<Ipv4Addr>,
    arp_target: Option<Ipv4Addr>,
) {
    if let Some(ip) = frame::ipv4(f) {
        let (s, d) = (ip.src_addr().into(), ip.dst_addr().into());
        let src = src.unwrap_or_else(|| outside(s));
        let dst = dst.unwrap_or_else(|| outside(d));
        frame::set_ipv4_addrs(f, Some(src), Some(dst));
        frame::quote_the_reverse(f);
    } else if let Some(arp) = frame::arp(f) {
        let spa = src.unwrap_or_else(|| outside(arp.spa().into()));
        let tpa = arp_target.unwrap_or_else(|| outside(arp.tpa().into()));
        frame::set_arp(f, Some(spa), Some(tpa));
    }
}
