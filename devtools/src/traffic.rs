//! Traffic for the replay benchmark: the frames of each packet walk of the
//! spec (§8) on its example topology (§0.3), as they arrive at one host's
//! port, with any number of distinct flows, 64-byte or IMIX frames.
//!
//! A scenario names the host and port the frames enter, the frames
//! themselves (flow `i` varies the UDP ports, then the external source
//! address), and the warm-up that puts the host in its steady state
//! first: the MACs that traffic would have taught, the upstream router's
//! ARP answer, the connections replies belong to.
//!
//! Every address comes from the topology, or from `spec` for the world
//! outside it (the upstream router's MAC, the external host). May call:
//! `spec`, `pipeline` (frames made from flow keys), `topology`; it writes
//! pcap files and runs nothing.
#![deny(unsafe_code)]

use crate::spec::{self, EXTERNAL_HOST, UPSTREAM_MAC};
use pipeline::key::{Field, FlowKey, Mac};
use pipeline::packet::synth::frame_from_key;
use pipeline::wire::{ethertype, ipproto};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use topology::Topology;

/// Why a scenario's traffic could not be made or written. Each error
/// names what it refused or missed; `vswitch gen-traffic` and the replay
/// benchmark print it after their own prefix.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    #[error("frame size `{0}`: 64..1518 bytes or `imix`")]
    FrameSize(String),
    #[error("no scenario `{0}` (one of {names})", names = scenario_names())]
    UnknownScenario(String),
    #[error("flows: 1..{MAX_FLOWS}, not {0}")]
    Flows(usize),
    #[error("topology: {0}")]
    Topology(#[from] MissingFromTopology),
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Pcap {
        path: PathBuf,
        #[source]
        source: pcap_file::PcapError,
    },
}

/// What a topology lacks that the spec's example has and the scenarios
/// are made of.
#[derive(Debug, thiserror::Error)]
pub enum MissingFromTopology {
    #[error("no port {0} (the spec's example topology has it)")]
    Port(&'static str),
    #[error("no router with a gateway")]
    GatewayRouter,
    #[error("router {router} has no interface on {subnet}")]
    RouterInterface {
        router: String,
        subnet: &'static str,
    },
    #[error("no subnet {0}")]
    Subnet(&'static str),
    #[error("no fg- port on {0}")]
    FipGateway(&'static str),
    #[error("no host {0}")]
    Host(&'static str),
    #[error("{0} has no floating IP")]
    FloatingIp(&'static str),
    #[error("no external subnet")]
    ExternalSubnet,
    #[error("no sg- MAC on {0}")]
    SnatMac(&'static str),
    #[error("no sg- address on {0}")]
    SnatAddress(&'static str),
}

/// Every scenario's name, for the error naming an unknown one.
fn scenario_names() -> String {
    ALL.map(|c| c.name()).join(", ")
}

/// The benchmark's scenarios, one per walk (and direction) of §8.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrafficScenario {
    /// §8.3 egress: vm1 → vm3 (net1, other host), compute1, out eth1.
    L2Egress,
    /// §8.3 ingress: vm3 → vm1 arriving on compute1's eth1.
    L2Ingress,
    /// §8.5 egress: vm1 → vm5 routed on compute1, out eth1 with the DVR MAC.
    DvrEgress,
    /// §8.5 ingress: vm5 → vm1 routed on compute2, arriving on compute1.
    DvrIngress,
    /// §8.4: vm1 → vm4 through compute1's qrouter.
    RoutedSameHost,
    /// §8.6 egress: vm3 → outside arriving on network1, SNATed out of eth2.
    SnatEgress,
    /// §8.6 replies: outside → 203.0.113.10 on network1, back to vm3.
    SnatReply,
    /// §8.7: vm1 → outside from its floating IP, out of compute1's eth2.
    FipEgress,
    /// §8.8: outside → vm1's floating IP, arriving on compute1's eth2.
    FipIngress,
}

pub const ALL: [TrafficScenario; 9] = [
    TrafficScenario::L2Egress,
    TrafficScenario::L2Ingress,
    TrafficScenario::DvrEgress,
    TrafficScenario::DvrIngress,
    TrafficScenario::RoutedSameHost,
    TrafficScenario::SnatEgress,
    TrafficScenario::SnatReply,
    TrafficScenario::FipEgress,
    TrafficScenario::FipIngress,
];

/// Frame sizes: every frame `Fixed(n)` bytes on the wire (with FCS), or
/// the simple IMIX (7 × 64, 4 × 576, 1 × 1500).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameSize {
    Fixed(usize),
    Imix,
}

impl FrameSize {
    pub fn parse(s: &str) -> Result<FrameSize, TrafficError> {
        if s.eq_ignore_ascii_case("imix") {
            return Ok(FrameSize::Imix);
        }
        match s.trim_end_matches('B').parse::<usize>() {
            Ok(n) if (64..=1518).contains(&n) => Ok(FrameSize::Fixed(n)),
            _ => Err(TrafficError::FrameSize(s.to_string())),
        }
    }

    /// Wire size (with FCS) of frame number `i`.
    pub fn of(self, i: usize) -> usize {
        match self {
            FrameSize::Fixed(n) => n,
            FrameSize::Imix => match i % 12 {
                0..=6 => 64,
                7..=10 => 576,
                _ => 1500,
            },
        }
    }

    pub fn label(self) -> String {
        match self {
            FrameSize::Fixed(n) => format!("{n}B"),
            FrameSize::Imix => "imix".into(),
        }
    }
}

/// Most distinct flows a scenario generates.
pub const MAX_FLOWS: usize = 1_000_000;

impl TrafficScenario {
    pub fn name(self) -> &'static str {
        match self {
            TrafficScenario::L2Egress => "l2-egress",
            TrafficScenario::L2Ingress => "l2-ingress",
            TrafficScenario::DvrEgress => "dvr-egress",
            TrafficScenario::DvrIngress => "dvr-ingress",
            TrafficScenario::RoutedSameHost => "routed-same-host",
            TrafficScenario::SnatEgress => "snat-egress",
            TrafficScenario::SnatReply => "snat-reply",
            TrafficScenario::FipEgress => "fip-egress",
            TrafficScenario::FipIngress => "fip-ingress",
        }
    }

    pub fn parse(s: &str) -> Result<TrafficScenario, TrafficError> {
        ALL.iter()
            .copied()
            .find(|c| c.name() == s)
            .ok_or_else(|| TrafficError::UnknownScenario(s.to_string()))
    }

    /// The spec's walk.
    pub fn walk(self) -> &'static str {
        match self {
            TrafficScenario::L2Egress | TrafficScenario::L2Ingress => "§8.3",
            TrafficScenario::DvrEgress | TrafficScenario::DvrIngress => "§8.5",
            TrafficScenario::RoutedSameHost => "§8.4",
            TrafficScenario::SnatEgress | TrafficScenario::SnatReply => "§8.6",
            TrafficScenario::FipEgress => "§8.7",
            TrafficScenario::FipIngress => "§8.8",
        }
    }

    /// The host whose dataplane the frames cross.
    pub fn host(self) -> &'static str {
        match self {
            TrafficScenario::SnatEgress | TrafficScenario::SnatReply => "network1",
            _ => "compute1",
        }
    }

    /// The port the frames arrive on.
    pub fn in_port(self) -> &'static str {
        match self {
            TrafficScenario::L2Egress
            | TrafficScenario::DvrEgress
            | TrafficScenario::RoutedSameHost
            | TrafficScenario::FipEgress => "qvo-vm1",
            TrafficScenario::L2Ingress
            | TrafficScenario::DvrIngress
            | TrafficScenario::SnatEgress => "eth1",
            TrafficScenario::SnatReply | TrafficScenario::FipIngress => "eth2",
        }
    }

    /// The port the frames must leave by.
    pub fn out_port(self) -> &'static str {
        match self {
            TrafficScenario::L2Egress | TrafficScenario::DvrEgress | TrafficScenario::SnatReply => {
                "eth1"
            }
            TrafficScenario::L2Ingress
            | TrafficScenario::DvrIngress
            | TrafficScenario::FipIngress => "qvo-vm1",
            TrafficScenario::RoutedSameHost => "qvo-vm4",
            TrafficScenario::SnatEgress | TrafficScenario::FipEgress => "eth2",
        }
    }
}

/// Who is who in the spec's topology, as the scenarios (and tests that
/// build frames of their own) address them.
pub struct Cast {
    pub vm1: (Mac, Ipv4Addr),
    pub vm3: (Mac, Ipv4Addr),
    pub vm4: (Mac, Ipv4Addr),
    pub vm5: (Mac, Ipv4Addr),
    /// The qrouter's qr- ports on subnet1 and subnet2 (the distributed
    /// gateways): MACs and addresses.
    pub gw1: Mac,
    pub gw2: Mac,
    pub gw1_ip: Ipv4Addr,
    pub gw2_ip: Ipv4Addr,
    /// compute2's DVR MAC.
    pub dvr_c2: Mac,
    /// The snat namespace's sg- port on subnet1.
    pub sg1: (Mac, Ipv4Addr),
    /// The router's gateway port (qg-).
    pub qg: (Mac, Ipv4Addr),
    /// compute1's FIP namespace port (fg-).
    pub fg_c1: (Mac, Ipv4Addr),
    /// vm1's floating IP.
    pub fip: Ipv4Addr,
    /// The upstream router's address: the external subnet's gateway.
    pub upstream_ip: Ipv4Addr,
}

/// The cast of topology `t` (the spec's, or one shaped like it).
pub fn cast(t: &Topology) -> Result<Cast, MissingFromTopology> {
    use MissingFromTopology as Missing;
    let port = |n: &'static str| {
        t.ports
            .iter()
            .find(|p| p.name == n)
            .map(|p| (p.mac, p.ip))
            .ok_or(Missing::Port(n))
    };
    let (r, g) = t
        .routers
        .iter()
        .find_map(|r| r.gateway.as_ref().map(|g| (r, g)))
        .ok_or(Missing::GatewayRouter)?;
    let iface = |sub: &'static str| {
        r.interfaces
            .iter()
            .find(|i| i.subnet == sub)
            .ok_or_else(|| Missing::RouterInterface {
                router: r.name.clone(),
                subnet: sub,
            })
    };
    let gateway_ip = |sub: &'static str| {
        t.subnets
            .iter()
            .find(|s| s.name == sub)
            .map(|s| s.gateway_ip)
            .ok_or(Missing::Subnet(sub))
    };
    let fg = t
        .fip_gateways
        .iter()
        .find(|f| f.host == "compute1")
        .ok_or(Missing::FipGateway("compute1"))?;
    let c2 = t
        .hosts
        .iter()
        .find(|h| h.name == "compute2")
        .ok_or(Missing::Host("compute2"))?;
    let vm1 = port("vm1")?;
    let fip = t
        .floating_ips
        .iter()
        .find(|f| f.port.as_deref() == Some("vm1"))
        .ok_or(Missing::FloatingIp("vm1"))?;
    let upstream = spec::external_subnet(t).ok_or(Missing::ExternalSubnet)?;
    Ok(Cast {
        vm1,
        vm3: port("vm3")?,
        vm4: port("vm4")?,
        vm5: port("vm5")?,
        gw1: iface("subnet1")?.mac,
        gw2: iface("subnet2")?.mac,
        gw1_ip: gateway_ip("subnet1")?,
        gw2_ip: gateway_ip("subnet2")?,
        dvr_c2: c2.dvr_mac,
        sg1: (
            iface("subnet1")?
                .snat_mac
                .ok_or(Missing::SnatMac("subnet1"))?,
            iface("subnet1")?
                .snat_ip
                .ok_or(Missing::SnatAddress("subnet1"))?,
        ),
        qg: (g.mac, g.ip),
        fg_c1: (fg.mac, fg.ip),
        fip: fip.address,
        upstream_ip: upstream.gateway_ip,
    })
}

fn udp(
    dl_src: Mac,
    dl_dst: Mac,
    vlan: Option<u16>,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
) -> FlowKey {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::IPV4 as u64);
    k.set(Field::DlSrc, dl_src.to_u64());
    k.set(Field::DlDst, dl_dst.to_u64());
    if let Some(v) = vlan {
        k.set(Field::VlanTci, (v | pipeline::key::VLAN_CFI) as u64);
    }
    k.set(Field::NwProto, ipproto::UDP as u64);
    k.set(Field::NwSrc, u32::from(src) as u64);
    k.set(Field::NwDst, u32::from(dst) as u64);
    k.set(Field::NwTtl, ttl as u64);
    k
}

/// Flow `i`'s (source port, destination port, source address offset):
/// 64,512 source ports, then 16 destination ports, then further external
/// sources (for flows from outside).
fn ports_of(i: usize) -> (u16, u16, u32) {
    let sport = 1024 + (i % 64_512) as u16;
    let rest = i / 64_512;
    (sport, 53 + (rest % 16) as u16, (rest / 16) as u32)
}

/// A broadcast ARP request from `from` for `target`.
pub fn arp_request(from: (Mac, Ipv4Addr), target: Ipv4Addr) -> Vec<u8> {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::ARP as u64);
    k.set(Field::DlSrc, from.0.to_u64());
    k.set(Field::DlDst, 0xffff_ffff_ffff);
    k.set(Field::NwProto, 1);
    k.set(Field::NwSrc, u32::from(from.1) as u64);
    k.set(Field::NwDst, u32::from(target) as u64);
    k.set(Field::ArpSha, from.0.to_u64());
    frame_from_key(&k, 0)
}

/// An ARP reply from `from_mac`/`from_ip` to `to`.
pub fn arp_reply(from_mac: Mac, from_ip: Ipv4Addr, to: (Mac, Ipv4Addr)) -> Vec<u8> {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::ARP as u64);
    k.set(Field::DlSrc, from_mac.to_u64());
    k.set(Field::DlDst, to.0.to_u64());
    k.set(Field::NwProto, 2);
    k.set(Field::NwSrc, u32::from(from_ip) as u64);
    k.set(Field::NwDst, u32::from(to.1) as u64);
    k.set(Field::ArpSha, from_mac.to_u64());
    k.set(Field::ArpTha, to.0.to_u64());
    frame_from_key(&k, 0)
}

/// Frames a scenario is made of, and what must run first.
pub struct Traffic {
    pub scenario: TrafficScenario,
    pub frames: Vec<Vec<u8>>,
    /// (port, frames) to process before the measured traffic, in order.
    pub warmup: Vec<(String, Vec<Vec<u8>>)>,
}

/// The key of flow `i` of `s`.
fn key(s: TrafficScenario, c: &Cast, i: usize) -> FlowKey {
    let (sport, dport, extra) = ports_of(i);
    let ext_src = Ipv4Addr::from(u32::from(EXTERNAL_HOST) + extra);
    let mut k = match s {
        TrafficScenario::L2Egress => udp(c.vm1.0, c.vm3.0, None, c.vm1.1, c.vm3.1, 64),
        TrafficScenario::L2Ingress => udp(c.vm3.0, c.vm1.0, Some(101), c.vm3.1, c.vm1.1, 64),
        TrafficScenario::DvrEgress => udp(c.vm1.0, c.gw1, None, c.vm1.1, c.vm5.1, 64),
        // Routed on compute2: its DVR MAC as source, vm1's MAC as destination.
        TrafficScenario::DvrIngress => udp(c.dvr_c2, c.vm1.0, Some(101), c.vm5.1, c.vm1.1, 63),
        TrafficScenario::RoutedSameHost => udp(c.vm1.0, c.gw1, None, c.vm1.1, c.vm4.1, 64),
        // vm3's packet after compute2's qrouter: to sg-s1, compute2's DVR MAC.
        TrafficScenario::SnatEgress => {
            udp(c.dvr_c2, c.sg1.0, Some(101), c.vm3.1, EXTERNAL_HOST, 63)
        }
        TrafficScenario::SnatReply => {
            let mut k = udp(UPSTREAM_MAC, c.qg.0, None, EXTERNAL_HOST, c.qg.1, 62);
            k.set(Field::TpSrc, dport as u64);
            k.set(Field::TpDst, sport as u64);
            return k;
        }
        TrafficScenario::FipEgress => udp(c.vm1.0, c.gw1, None, c.vm1.1, EXTERNAL_HOST, 64),
        TrafficScenario::FipIngress => udp(UPSTREAM_MAC, c.fg_c1.0, None, ext_src, c.fip, 62),
    };
    k.set(Field::TpSrc, sport as u64);
    k.set(Field::TpDst, dport as u64);
    k
}

fn frame(k: &FlowKey, wire_size: usize) -> Vec<u8> {
    let hdr =
        14 + if k.vlan_tci() & pipeline::key::VLAN_CFI != 0 {
            4
        } else {
            0
        } + 28;
    frame_from_key(k, (wire_size - 4).saturating_sub(hdr))
}

/// `count` frames of scenario `s` over `flows` distinct flows (flow `i %
/// flows` for frame `i`), sizes per `size`.
pub fn generate(
    t: &Topology,
    s: TrafficScenario,
    flows: usize,
    size: FrameSize,
    count: usize,
) -> Result<Traffic, TrafficError> {
    if flows == 0 || flows > MAX_FLOWS {
        return Err(TrafficError::Flows(flows));
    }
    let c = cast(t)?;
    let frames = (0..count)
        .map(|i| frame(&key(s, &c, i % flows), size.of(i)))
        .collect();
    let upstream_arp = |to| arp_reply(UPSTREAM_MAC, c.upstream_ip, to);
    let one = |k: FlowKey| vec![frame(&k, 64)];
    // vm1 ARPs for its gateway, sends its first packet outward, and the
    // upstream router answers the FIP namespace's ARP.
    let fip_egress_warmup = vec![
        ("qvo-vm1".to_string(), vec![arp_request(c.vm1, c.gw1_ip)]),
        (
            "qvo-vm1".to_string(),
            one(key(TrafficScenario::FipEgress, &c, 0)),
        ),
        ("eth2".to_string(), vec![upstream_arp(c.fg_c1)]),
    ];
    let warmup = match s {
        // The destination VM has spoken (its MAC is learned), as it would
        // have in a running cloud.
        TrafficScenario::L2Egress => vec![(
            "eth1".to_string(),
            one(udp(c.vm3.0, c.vm1.0, Some(101), c.vm3.1, c.vm1.1, 64)),
        )],
        TrafficScenario::L2Ingress | TrafficScenario::DvrIngress => vec![(
            "qvo-vm1".to_string(),
            one(udp(c.vm1.0, c.vm3.0, None, c.vm1.1, c.vm3.1, 64)),
        )],
        // vm1 has spoken, and so has the FIP namespace's fg- port (vm1's
        // first packet outward, which ARPs for the upstream router), so the
        // bridges know the fg- MAC as they would in a running cloud.
        TrafficScenario::FipIngress => {
            let mut w = vec![(
                "qvo-vm1".to_string(),
                one(udp(c.vm1.0, c.vm3.0, None, c.vm1.1, c.vm3.1, 64)),
            )];
            w.extend(fip_egress_warmup);
            w
        }
        // vm1 has ARPed for its gateway (the qrouter's answer leaves by
        // qr-s1, so br-int knows the gateway MAC there), and the
        // destination VM has spoken: vm5 (on compute2) to vm4, arriving on
        // the trunk; vm4 (local) ARPing for its own gateway.
        TrafficScenario::DvrEgress => vec![
            ("qvo-vm1".to_string(), vec![arp_request(c.vm1, c.gw1_ip)]),
            (
                "eth1".to_string(),
                one(udp(c.vm5.0, c.vm4.0, Some(102), c.vm5.1, c.vm4.1, 64)),
            ),
        ],
        TrafficScenario::RoutedSameHost => vec![
            ("qvo-vm1".to_string(), vec![arp_request(c.vm1, c.gw1_ip)]),
            ("qvo-vm4".to_string(), vec![arp_request(c.vm4, c.gw2_ip)]),
        ],
        // A first packet makes the snat namespace ARP for the upstream
        // router; its answer resolves it.
        TrafficScenario::SnatEgress => vec![
            ("eth1".to_string(), one(key(s, &c, 0))),
            ("eth2".to_string(), vec![upstream_arp(c.qg)]),
        ],
        // Replies belong to connections: the egress of every flow first;
        // the first reply makes the snat namespace ARP for vm3, whose
        // answer comes from compute2 across the trunk.
        TrafficScenario::SnatReply => {
            let egress: Vec<Vec<u8>> = (0..flows)
                .map(|i| frame(&key(TrafficScenario::SnatEgress, &c, i), 64))
                .collect();
            let mut vm3_arp = arp_reply(c.vm3.0, c.vm3.1, c.sg1);
            vm3_arp.splice(12..12, [0x81, 0x00, 0x00, 101]);
            vec![
                ("eth1".to_string(), egress[..1].to_vec()),
                ("eth2".to_string(), vec![upstream_arp(c.qg)]),
                ("eth1".to_string(), egress),
                ("eth2".to_string(), one(key(s, &c, 0))),
                ("eth1".to_string(), vec![vm3_arp]),
            ]
        }
        TrafficScenario::FipEgress => fip_egress_warmup,
    };
    Ok(Traffic {
        scenario: s,
        frames,
        warmup,
    })
}

/// Writes frames as a pcap file.
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) -> Result<(), TrafficError> {
    use pcap_file::pcap::{PcapPacket, PcapWriter};
    let pcap_error = |source| TrafficError::Pcap {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::create(path).map_err(|source| TrafficError::File {
        path: path.to_path_buf(),
        source,
    })?;
    let mut w = PcapWriter::new(std::io::BufWriter::new(f)).map_err(pcap_error)?;
    for (i, fr) in frames.iter().enumerate() {
        let ts = std::time::Duration::from_micros(i as u64);
        w.write_packet(&PcapPacket::new(ts, fr.len() as u32, fr))
            .map_err(pcap_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Topology {
        spec::topology().expect("spec topology")
    }

    #[test]
    fn flows_are_distinct_and_sizes_as_asked() {
        let t = spec();
        let tr = generate(
            &t,
            TrafficScenario::L2Egress,
            100_000,
            FrameSize::Fixed(64),
            100_000,
        )
        .expect("gen");
        let keys: std::collections::HashSet<_> = tr
            .frames
            .iter()
            .map(|f| {
                let p = pipeline::packet::parse(f, 0).expect("parses");
                (p.key.tp_src(), p.key.tp_dst())
            })
            .collect();
        assert_eq!(keys.len(), 100_000);
        assert!(tr.frames.iter().all(|f| f.len() == 60));
        let imix = generate(&t, TrafficScenario::L2Ingress, 1, FrameSize::Imix, 12).expect("gen");
        let sizes: Vec<usize> = imix.frames.iter().map(|f| f.len() + 4).collect();
        assert_eq!(
            sizes,
            [64, 64, 64, 64, 64, 64, 64, 576, 576, 576, 576, 1500]
        );
    }

    #[test]
    fn a_million_flows_are_a_million_port_pairs() {
        let pairs: std::collections::HashSet<(u16, u16)> = (0..MAX_FLOWS)
            .map(|i| {
                let (s, d, _) = ports_of(i);
                (s, d)
            })
            .collect();
        assert_eq!(pairs.len(), MAX_FLOWS);
        assert!(generate(
            &spec(),
            TrafficScenario::FipIngress,
            MAX_FLOWS + 1,
            FrameSize::Imix,
            1
        )
        .is_err());
    }
}

/// The stretch of a capture's first pass a rate is read over.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PassWindow {
    /// Sample indices at its ends.
    pub first: usize,
    pub last: usize,
    /// Packets received over it, and their rate.
    pub packets: u64,
    pub mpps: f64,
}

/// The rate through the middle of a capture's first pass of `frames`
/// frames, from samples of (seconds, frames received so far): from the
/// first sample at or past 20 % of it to the first at or past 80 %, so
/// that neither the start (ports coming up) nor the loop back to
/// known flows counts. None when the samples do not span that window.
pub fn first_pass_rate(samples: &[(f64, u64)], frames: u64) -> Option<PassWindow> {
    let at = |share: u64| samples.iter().position(|s| s.1 * 100 >= frames * share);
    let (first, last) = (at(20)?, at(80)?);
    let (t0, n0) = samples[first];
    let (t1, n1) = samples[last];
    if last <= first || t1 <= t0 {
        return None;
    }
    Some(PassWindow {
        first,
        last,
        packets: n1 - n0,
        mpps: (n1 - n0) as f64 / (t1 - t0) / 1e6,
    })
}

#[cfg(test)]
mod pass_tests {
    use super::*;

    #[test]
    fn first_pass_rate_reads_the_middle_of_the_pass() {
        // 1,000 frames: a slow start, 100 frames per ms through the middle.
        let s = [
            (0.0, 0),
            (0.010, 50),
            (0.011, 150),
            (0.012, 250),
            (0.017, 750),
            (0.018, 850),
            (0.019, 950),
        ];
        let w = first_pass_rate(&s, 1000).expect("window");
        assert_eq!((w.first, w.last, w.packets), (3, 5, 600));
        assert!((w.mpps - 0.1).abs() < 1e-9, "{}", w.mpps);
        assert_eq!(
            first_pass_rate(&s[..4], 1000),
            None,
            "the pass did not reach 80 %"
        );
    }
}
