//! Connections no NAT rule selects are not stored (`CtStep::lazy`), and no
//! packet can tell: the same traffic through a host that stores every
//! connection, as Linux does (`RouterInstance::store_unnated`), leaves by
//! the same ports with the same bytes, in the same order, and is dropped
//! for the same reasons.
//!
//! Generated sequences on compute1 (its qrouter holds vm1's floating IP)
//! and network1 (the snat namespace) mix, in both directions and with TCP
//! flags, echo requests and replies: east-west flows between vm1 and vm4
//! (routed, not NATed); vm4 to vm1's floating IP (routed to the SNAT node:
//! the qrouter DNATs only what comes in from `rfp-`); vm1 to and from the
//! external host through its floating IP; a packet from the external side
//! with vm4's address as its source (no `rp_filter` in Neutron's
//! namespaces) to the floating IP, DNATed to vm1, whose answer to vm4 is
//! an east-west packet in the reply direction of a NATed connection; and
//! on network1 vm3's traffic SNATed out and its replies, and traffic
//! routed between the snat namespace's own subnets.
//!
//! What the two do not share is deliberate and not generated here: an
//! east-west flow vm1:p → vm4:q, then a packet from the external side with
//! source vm4:q to fip:p. Linux would refuse that DNAT (its reply tuple is
//! the stored east-west connection's) and drop the packet; here it is
//! DNATed, and vm1's later packets of the flow are its replies. The ports
//! of the generated external-side packets are kept apart from the
//! east-west ones.

mod host;

use devtools::spec;
use host::Host;
use pipeline::key::{Field, FlowKey, Mac, VLAN_CFI};
use pipeline::packet::synth::frame_from_key;

use pipeline::wire::{ethertype, ipproto};
use proptest::prelude::*;
use std::net::Ipv4Addr;
use topology::Topology;

/// Who is who (`devtools::traffic::cast`), addresses as numbers for the
/// frame builder.
struct Cast {
    vm1: (Mac, u32),
    vm3: (Mac, u32),
    vm4: (Mac, u32),
    vm5: u32,
    gw1: Mac,
    gw2: Mac,
    fip: u32,
    fg_c1: (Mac, u32),
    sg1: (Mac, u32),
    qg: (Mac, u32),
    dvr_c2: Mac,
    upstream_ip: u32,
}

fn cast(t: &Topology) -> Cast {
    let c = devtools::traffic::cast(t).expect("the spec's cast");
    let n = |(mac, ip): (Mac, Ipv4Addr)| (mac, u32::from(ip));
    Cast {
        vm1: n(c.vm1),
        vm3: n(c.vm3),
        vm4: n(c.vm4),
        vm5: u32::from(c.vm5.1),
        gw1: c.gw1,
        gw2: c.gw2,
        fip: u32::from(c.fip),
        fg_c1: n(c.fg_c1),
        sg1: n(c.sg1),
        qg: n(c.qg),
        dvr_c2: c.dvr_c2,
        upstream_ip: u32::from(c.upstream_ip),
    }
}

/// What a packet carries: a protocol, its TCP flags.
#[derive(Clone, Copy, Debug)]
enum Proto {
    Udp,
    Tcp(u16),
    /// An echo request (or, from the answering side, its reply).
    Echo,
}

/// One generated frame of compute1 (`C1`) or network1 (`N1`).
#[derive(Clone, Debug)]
enum Frame {
    /// C1: vm1:(1000+i) → vm4:80, or its reverse from vm4.
    EastWest { back: bool, i: u16, proto: Proto },
    /// C1: vm4:(2000+i) → fip:80 (routed to the SNAT node), or vm1:80's
    /// packet to vm4:(2000+i).
    Hairpin { back: bool, i: u16, proto: Proto },
    /// C1: on eth2, from vm4's address :(7000+i) to fip:22 (DNATed to
    /// vm1:22), then vm1's answer, east-west to vm4 (always in that order:
    /// the other is the divergence described above).
    SpoofedIn { i: u16, proto: Proto },
    /// C1: vm1:(3000+i) → the external host's port 53 (SNATed to the
    /// floating IP), or the answer to the floating IP on eth2.
    Out { back: bool, i: u16, proto: Proto },
    /// C1: the external host's (4000+i) → fip:22 on eth2 (DNATed), or
    /// vm1's answer.
    In { back: bool, i: u16, proto: Proto },
    /// N1: vm3:(5000+i) → the external host, through sg-s1 (SNATed), or
    /// the answer to the gateway address on eth2.
    Snat { back: bool, i: u16, proto: Proto },
    /// N1: vm3:(6000+i) → vm5:80 through sg-s1 (routed between the snat
    /// namespace's subnets, not NATed).
    SgBetween { i: u16, proto: Proto },
}

impl Frame {
    fn host(&self) -> &'static str {
        match self {
            Frame::Snat { .. } | Frame::SgBetween { .. } => "network1",
            _ => "compute1",
        }
    }
}

fn arb_proto() -> impl Strategy<Value = Proto> {
    prop_oneof![
        Just(Proto::Udp),
        Just(Proto::Echo),
        prop_oneof![
            Just(0x002u16),
            Just(0x012),
            Just(0x010),
            Just(0x011),
            Just(0x004)
        ]
        .prop_map(Proto::Tcp),
    ]
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    let flow = || (any::<bool>(), 0u16..3, arb_proto());
    prop_oneof![
        flow().prop_map(|(back, i, proto)| Frame::EastWest { back, i, proto }),
        flow().prop_map(|(back, i, proto)| Frame::Hairpin { back, i, proto }),
        flow().prop_map(|(back, i, proto)| Frame::Out { back, i, proto }),
        flow().prop_map(|(back, i, proto)| Frame::In { back, i, proto }),
        (0u16..3, arb_proto()).prop_map(|(i, proto)| Frame::SpoofedIn { i, proto }),
        flow().prop_map(|(back, i, proto)| Frame::Snat { back, i, proto }),
        (0u16..3, arb_proto()).prop_map(|(i, proto)| Frame::SgBetween { i, proto }),
    ]
}

/// A frame from `from` (MAC, address, port) to `to`, one way of a flow;
/// `answer`: the echo is a reply.
#[allow(clippy::too_many_arguments)]
fn ipv4(
    dl: (Mac, Mac),
    vlan: Option<u16>,
    src: (u32, u16),
    dst: (u32, u16),
    proto: Proto,
    answer: bool,
) -> Vec<u8> {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::IPV4 as u64);
    k.set(Field::DlSrc, dl.0.to_u64());
    k.set(Field::DlDst, dl.1.to_u64());
    if let Some(v) = vlan {
        k.set(Field::VlanTci, (v | VLAN_CFI) as u64);
    }
    k.set(Field::NwSrc, src.0 as u64);
    k.set(Field::NwDst, dst.0 as u64);
    k.set(Field::NwTtl, 64);
    match proto {
        Proto::Udp | Proto::Tcp(_) => {
            let p = match proto {
                Proto::Tcp(_) => ipproto::TCP,
                _ => ipproto::UDP,
            };
            k.set(Field::NwProto, p as u64);
            k.set(Field::TpSrc, src.1 as u64);
            k.set(Field::TpDst, dst.1 as u64);
            if let Proto::Tcp(flags) = proto {
                k.set(Field::TcpFlags, flags as u64);
            }
        }
        Proto::Echo => {
            k.set(Field::NwProto, ipproto::ICMP as u64);
            k.set(Field::TpSrc, if answer { 0 } else { 8 });
            // The echo id is the initiator's port.
            let id = if answer { dst.1 } else { src.1 };
            k.set(Field::IcmpId, id as u64);
        }
    }
    frame_from_key(&k, 12)
}

/// The frames' ports and bytes, in order.
fn build(c: &Cast, f: &Frame) -> Vec<(&'static str, Vec<u8>)> {
    let ext = u32::from(spec::EXTERNAL_HOST);
    let up = spec::UPSTREAM_MAC;
    if let Frame::SpoofedIn { i, proto } = *f {
        let client = (c.vm4.1, 7000 + i);
        return vec![
            (
                "eth2",
                ipv4((up, c.fg_c1.0), None, client, (c.fip, 22), proto, false),
            ),
            (
                "qvo-vm1",
                ipv4((c.vm1.0, c.gw1), None, (c.vm1.1, 22), client, proto, true),
            ),
        ];
    }
    vec![match *f {
        Frame::EastWest { back, i, proto } => {
            let a = (c.vm1.1, 1000 + i);
            let b = (c.vm4.1, 80);
            if back {
                ("qvo-vm4", ipv4((c.vm4.0, c.gw2), None, b, a, proto, true))
            } else {
                ("qvo-vm1", ipv4((c.vm1.0, c.gw1), None, a, b, proto, false))
            }
        }
        Frame::Hairpin { back, i, proto } => {
            let client = (c.vm4.1, 2000 + i);
            if back {
                let server = (c.vm1.1, 80);
                let f = ipv4((c.vm1.0, c.gw1), None, server, client, proto, true);
                ("qvo-vm1", f)
            } else {
                let f = ipv4((c.vm4.0, c.gw2), None, client, (c.fip, 80), proto, false);
                ("qvo-vm4", f)
            }
        }
        Frame::Out { back, i, proto } => {
            if back {
                let f = ipv4(
                    (up, c.fg_c1.0),
                    None,
                    (ext, 53),
                    (c.fip, 3000 + i),
                    proto,
                    true,
                );
                ("eth2", f)
            } else {
                let f = ipv4(
                    (c.vm1.0, c.gw1),
                    None,
                    (c.vm1.1, 3000 + i),
                    (ext, 53),
                    proto,
                    false,
                );
                ("qvo-vm1", f)
            }
        }
        Frame::In { back, i, proto } => {
            if back {
                let f = ipv4(
                    (c.vm1.0, c.gw1),
                    None,
                    (c.vm1.1, 22),
                    (ext, 4000 + i),
                    proto,
                    true,
                );
                ("qvo-vm1", f)
            } else {
                let f = ipv4(
                    (up, c.fg_c1.0),
                    None,
                    (ext, 4000 + i),
                    (c.fip, 22),
                    proto,
                    false,
                );
                ("eth2", f)
            }
        }
        Frame::Snat { back, i, proto } => {
            if back {
                let f = ipv4(
                    (up, c.qg.0),
                    None,
                    (ext, 53),
                    (c.qg.1, 5000 + i),
                    proto,
                    true,
                );
                ("eth2", f)
            } else {
                let dl = (c.dvr_c2, c.sg1.0);
                let f = ipv4(dl, Some(101), (c.vm3.1, 5000 + i), (ext, 53), proto, false);
                ("eth1", f)
            }
        }
        Frame::SgBetween { i, proto } => {
            let dl = (c.dvr_c2, c.sg1.0);
            let f = ipv4(
                dl,
                Some(101),
                (c.vm3.1, 6000 + i),
                (c.vm5, 80),
                proto,
                false,
            );
            ("eth1", f)
        }
        Frame::SpoofedIn { .. } => unreachable!("built above"),
    }]
}

/// ARP answers that resolve the upstream router for compute1's fip
/// namespace and network1's snat namespace, and vm3 for the latter.
fn warm_up(c: &Cast, host: &str) -> Vec<(&'static str, Vec<u8>)> {
    // An ARP reply, tagged with `vlan` when given.
    let arp = |from: (Mac, u32), to: (Mac, u32), vlan: Option<u16>| {
        let mut f = devtools::traffic::arp_reply(from.0, from.1.into(), (to.0, to.1.into()));
        if let Some(v) = vlan {
            f.splice(12..12, [0x81, 0x00, (v >> 8) as u8, v as u8]);
        }
        f
    };
    let upstream = (spec::UPSTREAM_MAC, c.upstream_ip);
    match host {
        "compute1" => {
            let mut w = build(
                c,
                &Frame::Out {
                    back: false,
                    i: 0,
                    proto: Proto::Udp,
                },
            );
            w.push(("eth2", arp(upstream, c.fg_c1, None)));
            w
        }
        _ => {
            let mut w = build(
                c,
                &Frame::Snat {
                    back: false,
                    i: 0,
                    proto: Proto::Udp,
                },
            );
            w.push(("eth2", arp(upstream, c.qg, None)));
            w.push(("eth1", arp(c.vm3, c.sg1, Some(101))));
            w
        }
    }
}

/// What a run leaves: every output, in order, as (port name, bytes), and
/// the drops by reason.
type Observed = (Vec<(String, Vec<u8>)>, Vec<(&'static str, u64)>);

fn run(c: &Cast, host: &str, frames: &[Frame], store_unnated: bool) -> (Observed, usize) {
    run_sent(c, host, &packets(c, host, frames), store_unnated, 1)
}

/// The packets of `frames` that `host` receives, in order.
fn packets(c: &Cast, host: &str, frames: &[Frame]) -> Vec<(&'static str, Vec<u8>)> {
    frames
        .iter()
        .filter(|f| f.host() == host)
        .flat_map(|f| build(c, f))
        .collect()
}

/// `host` after its warm-up takes `traffic`, a port's consecutive packets
/// in one burst of at most `burst` (1: a packet at a time); what left it
/// and why it dropped, and the connections it stores.
fn run_sent(
    c: &Cast,
    host: &str,
    traffic: &[(&str, Vec<u8>)],
    store_unnated: bool,
    burst: usize,
) -> (Observed, usize) {
    let mut h = Host::on_with(host, |cfg| cfg.set_store_unnated(store_unnated));
    let mut outputs = Vec::new();
    for (port, bytes) in warm_up(c, host) {
        outputs.extend(h.send(port, &[bytes]).0);
    }
    for run in traffic.chunk_by(|a, b| a.0 == b.0) {
        for chunk in run.chunks(burst) {
            let frames: Vec<Vec<u8>> = chunk.iter().map(|(_, b)| b.clone()).collect();
            outputs.extend(h.send(chunk[0].0, &frames).0);
        }
    }
    let drops = h.dp.counters.drops.nonzero();
    ((outputs, drops), h.sw.conntrack.len())
}

/// Every packet of `frames` twice in a row, through a host that stores
/// only what NAT needs with a port's consecutive packets in one burst
/// (runs of one megaflow and of one flow: the guard asks the table once
/// per run), or through one that stores everything, a packet at a time.
/// What leaves is compared port by port, in order (a burst's copies to
/// one port may leave after its other packets' outputs to another).
fn run_doubled(c: &Cast, host: &str, frames: &[Frame], in_bursts: bool) -> Observed {
    let traffic: Vec<(&str, Vec<u8>)> = packets(c, host, frames)
        .into_iter()
        .flat_map(|(p, b)| [(p, b.clone()), (p, b)])
        .collect();
    let burst = if in_bursts { 32 } else { 1 };
    let ((mut outputs, drops), _) = run_sent(c, host, &traffic, !in_bursts, burst);
    outputs.sort_by(|a, b| a.0.cmp(&b.0));
    (outputs, drops)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn storing_only_what_nat_needs_changes_no_packet_in_bursts_either(
        frames in proptest::collection::vec(arb_frame(), 1..40),
    ) {
        let t = spec::topology().expect("topology");
        let c = cast(&t);
        for host in ["compute1", "network1"] {
            let bursts = run_doubled(&c, host, &frames, true);
            let all = run_doubled(&c, host, &frames, false);
            prop_assert_eq!(bursts, all, "{}", host);
        }
    }

    #[test]
    fn storing_only_what_nat_needs_changes_no_packet(
        frames in proptest::collection::vec(arb_frame(), 1..80),
    ) {
        let t = spec::topology().expect("topology");
        let c = cast(&t);
        for host in ["compute1", "network1"] {
            let (lazy, _) = run(&c, host, &frames, false);
            let (all, _) = run(&c, host, &frames, true);
            prop_assert_eq!(lazy, all, "{}", host);
        }
    }
}

/// The figures the property rests on: east-west traffic leaves the same
/// with no connection stored, where Linux's way stores one per flow; the
/// answer to a DNATed connection, east-west, is still translated.
#[test]
fn east_west_flows_are_routed_without_being_stored_and_replies_of_nat_still_translate() {
    let t = spec::topology().expect("topology");
    let c = cast(&t);
    let flows: Vec<Frame> = (0..3)
        .flat_map(|i| {
            [false, true].map(|back| Frame::EastWest {
                back,
                i,
                proto: Proto::Udp,
            })
        })
        .collect();
    let ((lazy, _), lazy_conns) = run(&c, "compute1", &flows, false);
    let ((all, _), all_conns) = run(&c, "compute1", &flows, true);
    assert_eq!(lazy, all);
    // The warm-up's one SNATed flow is all the table holds; Linux's way
    // adds the three east-west flows.
    assert_eq!(lazy_conns, 1);
    assert_eq!(all_conns, 4);
    let routed = |out: &[(String, Vec<u8>)], port: &str| {
        out.iter()
            .filter(|(p, b)| p == port && b[12..14] == [8, 0])
            .count()
    };
    assert_eq!(routed(&lazy, "qvo-vm4"), 3, "{lazy:?}");
    assert_eq!(routed(&lazy, "qvo-vm1"), 3, "{lazy:?}");
    let spoofed = [Frame::SpoofedIn {
        i: 0,
        proto: Proto::Udp,
    }];
    let ((out, _), conns) = run(&c, "compute1", &spoofed, false);
    assert_eq!(conns, 2, "the DNATed connection is stored");
    let to_vm4 = out
        .iter()
        .find(|(p, b)| p == "qvo-vm4" && b[12..14] == [8, 0])
        .expect("vm1's answer reaches vm4");
    let src = Ipv4Addr::new(to_vm4.1[26], to_vm4.1[27], to_vm4.1[28], to_vm4.1[29]);
    assert_eq!(u32::from(src), c.fip, "from the floating IP it was sent to");
}

/// One burst from vm1 holds, in one megaflow, packets of an east-west
/// flow (no connection stored: the guard lets them on) and then answers
/// to a DNATed connection (stored: they take the step and reach vm4 from
/// the floating IP): the guard's answer is per flow, not per run, and the
/// burst's packets leave as they would one at a time.
#[test]
fn a_run_mixing_stored_and_unstored_connections_asks_per_flow() {
    let t = spec::topology().expect("topology");
    let c = cast(&t);
    let proto = Proto::Udp;
    let east_west = build(
        &c,
        &Frame::EastWest {
            back: false,
            i: 0,
            proto,
        },
    );
    let spoofed = build(&c, &Frame::SpoofedIn { i: 0, proto });
    let (ew, answer) = (east_west[0].1.clone(), spoofed[1].1.clone());
    let traffic = [
        spoofed[0].clone(),
        ("qvo-vm1", ew.clone()),
        ("qvo-vm1", ew),
        ("qvo-vm1", answer.clone()),
        ("qvo-vm1", answer),
    ];
    // Packets of different flows may leave one port in another order
    // (those that take the step finish their walk first); what leaves is
    // the same.
    let send = |burst: usize| {
        let ((mut outputs, _), _) = run_sent(&c, "compute1", &traffic, false, burst);
        outputs.sort();
        outputs
    };
    let (together, apart) = (send(32), send(1));
    assert_eq!(together, apart);
    let fip = c.fip.to_be_bytes();
    let from_fip = together
        .iter()
        .filter(|(p, b)| p == "qvo-vm4" && b.get(26..30) == Some(&fip[..]))
        .count();
    assert_eq!(from_fip, 2, "both answers reach vm4 from the floating IP");
}
