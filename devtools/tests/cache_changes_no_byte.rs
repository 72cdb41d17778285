//! The flow cache never changes a packet's output bytes.
//!
//! Whatever a cached program writes into a packet must come from that
//! packet or from the program, never from the earlier packet whose walk
//! made the program. Two datapaths run compute1 and network1 of the spec's
//! topology from the same start, one with its megaflow caches and one
//! translating every packet; generated sequences of ARP and IPv4 frames
//! (fields a walk does not read — ARP target hardware addresses, TTLs, TOS,
//! ports, payload lengths — varied freely) must leave both with the same
//! outputs, byte for byte, in order.

mod host;

use devtools::spec;
use host::Host;
use pipeline::key::{Field, FlowKey, Mac, VLAN_CFI};
use pipeline::packet::synth::{fragments, frame_from_key};

use pipeline::wire::{arp, ethertype, ipproto};
use proptest::prelude::*;
use topology::Topology;

/// Who is who on the hosts, read from the topology.
struct Cast {
    vm1: (Mac, u32),
    vm2: (Mac, u32),
    vm4: u32,
    gw1: (Mac, u32),
    fg_c1: Mac,
    fip: u32,
}

fn cast(t: &Topology) -> Cast {
    let port = |n: &str| {
        let p = t.port(n).expect("port");
        (p.mac, u32::from(p.ip))
    };
    let r = t.routers.first().expect("router");
    let qr = r
        .interfaces
        .iter()
        .find(|i| i.subnet == "subnet1")
        .expect("qr-s1");
    let gw_ip = t.subnet("subnet1").expect("subnet1").gateway_ip;
    let fg = t.fip_gateway("compute1", "ext-net").expect("fg-c1");
    Cast {
        vm1: port("vm1"),
        vm2: port("vm2"),
        vm4: port("vm4").1,
        gw1: (qr.mac, u32::from(gw_ip)),
        fg_c1: fg.mac,
        fip: u32::from(t.floating_ips[0].address),
    }
}

/// One generated frame: where it enters and what it is.
#[derive(Clone, Debug)]
enum Frame {
    /// vm1 asks who has `tpa`, with any target hardware address.
    ArpRequest { tpa: u8, tha: u64, broadcast: bool },
    /// vm1 answers `to` (ARP reply), any target hardware address.
    ArpReply { tha: u64 },
    /// vm1 sends IPv4 to `dst`, with any TTL, TOS, ports and payload length.
    Ipv4 {
        dst: u8,
        proto: u8,
        ttl: u8,
        tos: u8,
        sport: u16,
        dport: u16,
        fill: u8,
        /// 0: whole; 1: in two fragments; 2: in two fragments, last first.
        frag: u8,
    },
    /// The upstream router sends to vm1's floating IP on compute1's eth2.
    Inbound {
        ttl: u8,
        sport: u16,
        dport: u16,
        fill: u8,
        frag: u8,
    },
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (0u8..3, any::<u64>(), any::<bool>()).prop_map(|(tpa, tha, broadcast)| {
            Frame::ArpRequest {
                tpa,
                tha: tha & 0xffff_ffff_ffff,
                broadcast,
            }
        }),
        any::<u64>().prop_map(|tha| Frame::ArpReply {
            tha: tha & 0xffff_ffff_ffff
        }),
        (
            0u8..3,
            0u8..4,
            // Few TTLs and TOSes (rewritten whole, they are in every
            // megaflow): later frames hit what earlier ones cached.
            prop_oneof![Just(1u8), Just(2u8), Just(64u8), Just(255u8)],
            prop_oneof![Just(0u8), Just(0xb8u8)],
            any::<u16>(),
            any::<u16>(),
            any::<u8>(),
            0u8..3,
        )
            .prop_map(
                |(dst, proto, ttl, tos, sport, dport, fill, frag)| Frame::Ipv4 {
                    dst,
                    proto,
                    ttl,
                    tos,
                    sport,
                    dport,
                    fill,
                    frag,
                }
            ),
        (
            prop_oneof![Just(2u8), Just(64u8)],
            any::<u16>(),
            any::<u16>(),
            any::<u8>(),
            0u8..3
        )
            .prop_map(|(ttl, sport, dport, fill, frag)| Frame::Inbound {
                ttl,
                sport,
                dport,
                fill,
                frag,
            }),
    ]
}

/// The frame's port and bytes (a fragmented datagram: its fragments, in
/// the order sent).
fn build(c: &Cast, f: &Frame) -> (&'static str, Vec<Vec<u8>>) {
    let mut k = FlowKey::ZERO;
    let mut payload = 18;
    let mut fill = 0u8;
    let mut split = 0u8;
    let port = match *f {
        Frame::ArpRequest {
            tpa,
            tha,
            broadcast,
        } => {
            k.set(Field::DlType, ethertype::ARP as u64);
            k.set(Field::DlSrc, c.vm1.0.to_u64());
            k.set(
                Field::DlDst,
                if broadcast {
                    Mac::BROADCAST.to_u64()
                } else {
                    c.gw1.0.to_u64()
                },
            );
            k.set(Field::NwProto, arp::op::REQUEST as u64);
            k.set(Field::ArpSha, c.vm1.0.to_u64());
            k.set(Field::NwSrc, c.vm1.1 as u64);
            k.set(Field::NwDst, [c.gw1.1, c.vm2.1, c.vm4][tpa as usize] as u64);
            k.set(Field::ArpTha, tha);
            "qvo-vm1"
        }
        Frame::ArpReply { tha } => {
            k.set(Field::DlType, ethertype::ARP as u64);
            k.set(Field::DlSrc, c.vm1.0.to_u64());
            k.set(Field::DlDst, c.gw1.0.to_u64());
            k.set(Field::NwProto, arp::op::REPLY as u64);
            k.set(Field::ArpSha, c.vm1.0.to_u64());
            k.set(Field::NwSrc, c.vm1.1 as u64);
            k.set(Field::NwDst, c.gw1.1 as u64);
            k.set(Field::ArpTha, tha);
            "qvo-vm1"
        }
        Frame::Ipv4 {
            dst,
            proto,
            ttl,
            tos,
            sport,
            dport,
            fill: b,
            frag,
        } => {
            let external = u32::from(spec::EXTERNAL_HOST);
            let (to_mac, to_ip) =
                [(c.vm2.0, c.vm2.1), (c.gw1.0, c.vm4), (c.gw1.0, external)][dst as usize];
            k.set(Field::DlType, ethertype::IPV4 as u64);
            k.set(Field::DlSrc, c.vm1.0.to_u64());
            k.set(Field::DlDst, to_mac.to_u64());
            k.set(Field::NwSrc, c.vm1.1 as u64);
            k.set(Field::NwDst, to_ip as u64);
            k.set(Field::NwTtl, ttl as u64);
            k.set(Field::NwTos, (tos & 0xfc) as u64);
            let p = [ipproto::UDP, ipproto::TCP, ipproto::ICMP, GRE][proto as usize];
            k.set(Field::NwProto, p as u64);
            if p == ipproto::ICMP {
                k.set(Field::TpSrc, 8);
                k.set(Field::IcmpId, sport as u64);
            } else if p != GRE {
                k.set(Field::TpSrc, sport as u64);
                k.set(Field::TpDst, dport as u64);
                if p == ipproto::TCP {
                    k.set(Field::TcpFlags, 0x002);
                }
            }
            fill = b;
            split = frag;
            "qvo-vm1"
        }
        Frame::Inbound {
            ttl,
            sport,
            dport,
            fill: b,
            frag,
        } => {
            k.set(Field::DlType, ethertype::IPV4 as u64);
            k.set(Field::DlSrc, spec::UPSTREAM_MAC.to_u64());
            k.set(Field::DlDst, c.fg_c1.to_u64());
            k.set(Field::NwSrc, u32::from(spec::EXTERNAL_HOST) as u64);
            k.set(Field::NwDst, c.fip as u64);
            k.set(Field::NwTtl, ttl as u64);
            k.set(Field::NwProto, ipproto::UDP as u64);
            k.set(Field::TpSrc, sport as u64);
            k.set(Field::TpDst, dport as u64);
            fill = b;
            split = frag;
            "eth2"
        }
    };
    debug_assert_eq!(k.vlan_tci() & VLAN_CFI, 0);
    if split != 0 {
        payload += 1480;
    }
    let whole = frame_from_key(&k, payload + fill as usize % 7);
    let mut frames = match split {
        0 => vec![whole],
        _ => fragments(&whole, 1480),
    };
    if split == 2 {
        frames.reverse();
    }
    (port, frames)
}

const GRE: u8 = 47;

/// What a run leaves: every output, in order, as (port name, bytes).
fn run(c: &Cast, host: &str, frames: &[Frame], use_cache: bool) -> Vec<(String, Vec<u8>)> {
    let mut h = Host::on(host);
    h.dp.use_cache = use_cache;
    let mut outputs = Vec::new();
    for f in frames {
        let (port, frames) = build(c, f);
        if h.sw.port_by_name(port).is_none() {
            continue;
        }
        for bytes in frames {
            outputs.extend(h.send(port, &[bytes]).0);
        }
    }
    outputs
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn cached_and_uncached_runs_send_the_same_bytes(
        frames in proptest::collection::vec(arb_frame(), 1..60),
    ) {
        let t = spec::topology().expect("topology");
        let c = cast(&t);
        for host in ["compute1", "network1"] {
            let cached = run(&c, host, &frames, true);
            let uncached = run(&c, host, &frames, false);
            prop_assert_eq!(cached, uncached, "{}", host);
        }
    }
}

/// The case the issue reports: three ARP requests for the gateway from
/// vm1, the second with `tha` fa:16:3e:01:00:12; the copy of the third
/// that vm2 receives carries the third's own `tha`.
#[test]
fn a_flooded_arp_request_keeps_its_own_target_hardware_address() {
    let t = spec::topology().expect("topology");
    let c = cast(&t);
    let tha = [0, c.vm2.0.to_u64(), 0x0000_0000_0007];
    let frames: Vec<Frame> = tha
        .iter()
        .map(|&tha| Frame::ArpRequest {
            tpa: 0,
            tha,
            broadcast: true,
        })
        .collect();
    let outputs = run(&c, "compute1", &frames, true);
    let to_vm2: Vec<&Vec<u8>> = outputs
        .iter()
        .filter(|(p, _)| p == "qvo-vm2")
        .map(|(_, b)| b)
        .collect();
    assert_eq!(to_vm2.len(), 3, "vm2 gets a copy of each request");
    for (copy, want) in to_vm2.iter().zip(tha) {
        let a = pipeline::wire::ArpPacket::new_checked(&copy[14..]).expect("arp");
        assert_eq!(a.tha(), Mac::from_u64(want), "{copy:02x?}");
    }
}
