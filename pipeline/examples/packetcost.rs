//! Instruction counts of the per-packet packet code, for callgrind:
//!
//! ```text
//! cargo build --release -p pipeline --example packetcost
//! valgrind --tool=callgrind --callgrind-out-file=cg.out target/release/examples/packetcost
//! callgrind_annotate --inclusive=yes cg.out | grep packetcost::
//! ```
//!
//! Each measured step is its own `#[inline(never)]` function, so its
//! inclusive Ir divided by its call count is the cost per packet: `parse`
//! over a mix of frames (UDP, VLAN-tagged TCP, ICMP echo, ARP, IPv6 UDP),
//! and `apply` running the rewrite programs the fast path replays (routing
//! with SNAT, DNAT off a VLAN, ICMP SNAT, VLAN push, a MAC rewrite).
//! Instruction counts, unlike wall-clock time, repeat on a busy machine.

use pipeline::key::{Field, FlowKey, Mac, VLAN_CFI};
use pipeline::packet::{self, synth::frame_from_key, PacketBuf, Rewrite, NAT_SPORT_SET};
use pipeline::wire::{ethertype, ipproto};
use std::hint::black_box;

const ROUNDS: usize = 20_000;

fn base_key(proto: u8) -> FlowKey {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::IPV4 as u64);
    k.set(Field::DlSrc, 0xfa163e010011);
    k.set(Field::DlDst, 0xfa163e010012);
    k.set(Field::NwProto, proto as u64);
    k.set(Field::NwSrc, 0x0a01000b);
    k.set(Field::NwDst, 0xc6336407);
    k.set(Field::NwTtl, 64);
    k.set(Field::TpSrc, 40000);
    k.set(Field::TpDst, 80);
    k
}

fn frames() -> [Vec<u8>; 5] {
    let udp = base_key(ipproto::UDP);
    let mut tcp = base_key(ipproto::TCP);
    tcp.set(Field::VlanTci, (VLAN_CFI | 101) as u64);
    tcp.set(Field::TcpFlags, 0x10);
    let mut icmp = base_key(ipproto::ICMP);
    icmp.set(Field::TpSrc, 8);
    icmp.set(Field::TpDst, 0);
    icmp.set(Field::IcmpId, 0x1234);
    let mut arp = FlowKey::ZERO;
    arp.set(Field::DlType, ethertype::ARP as u64);
    arp.set(Field::DlSrc, 0xfa163e010011);
    arp.set(Field::DlDst, 0xffffffffffff);
    arp.set(Field::NwProto, 1);
    arp.set(Field::NwSrc, 0x0a01000b);
    arp.set(Field::NwDst, 0x0a010001);
    arp.set(Field::ArpSha, 0xfa163e010011);
    let mut v6 = FlowKey::ZERO;
    v6.set(Field::DlType, ethertype::IPV6 as u64);
    v6.set(Field::NwProto, ipproto::UDP as u64);
    v6.set(Field::TpSrc, 546);
    v6.set(Field::TpDst, 547);
    [
        frame_from_key(&udp, 18),
        frame_from_key(&tcp, 32),
        frame_from_key(&icmp, 56),
        frame_from_key(&arp, 0),
        frame_from_key(&v6, 8),
    ]
}

#[inline(always)]
fn parse(p: &mut PacketBuf) -> u64 {
    match packet::parse_into(p) {
        // The whole key is used (as the flow cache hashes it).
        Ok(k) => black_box(&k).w[0],
        Err(_) => 0,
    }
}

#[inline(always)]
fn run(p: &mut PacketBuf, prog: &[Rewrite]) -> bool {
    for r in prog {
        if packet::apply(p, r).is_err() {
            return false;
        }
    }
    true
}

// One function per frame kind and per program; each passes its own tag
// through `black_box` so that identical bodies are not merged into one
// symbol.

#[inline(never)]
fn parse_udp(p: &mut PacketBuf) -> u64 {
    black_box(1);
    parse(p)
}

#[inline(never)]
fn parse_tcp_vlan(p: &mut PacketBuf) -> u64 {
    black_box(2);
    parse(p)
}

#[inline(never)]
fn parse_icmp(p: &mut PacketBuf) -> u64 {
    black_box(3);
    parse(p)
}

#[inline(never)]
fn parse_arp(p: &mut PacketBuf) -> u64 {
    black_box(4);
    parse(p)
}

#[inline(never)]
fn parse_ipv6_udp(p: &mut PacketBuf) -> u64 {
    black_box(5);
    parse(p)
}

#[inline(never)]
fn apply_route_snat_udp(p: &mut PacketBuf, prog: &[Rewrite]) -> bool {
    black_box(11);
    run(p, prog)
}

#[inline(never)]
fn apply_dnat_tcp_vlan(p: &mut PacketBuf, prog: &[Rewrite]) -> bool {
    black_box(12);
    run(p, prog)
}

#[inline(never)]
fn apply_snat_icmp(p: &mut PacketBuf, prog: &[Rewrite]) -> bool {
    black_box(13);
    run(p, prog)
}

#[inline(never)]
fn apply_vlan_push_arp(p: &mut PacketBuf, prog: &[Rewrite]) -> bool {
    black_box(14);
    run(p, prog)
}

#[inline(never)]
fn apply_eth_ipv6(p: &mut PacketBuf, prog: &[Rewrite]) -> bool {
    black_box(15);
    run(p, prog)
}

fn main() {
    let frames = frames();
    let gw = Mac([0xfa, 0x16, 0x3e, 0xaa, 0, 1]);
    let nh = Mac([0xfa, 0x16, 0x3e, 0xbb, 0, 2]);
    let route_snat = [
        Rewrite::EthSrc(gw),
        Rewrite::EthDst(nh),
        Rewrite::Ipv4DecTtl,
        Rewrite::Ipv4Src(0xcb00710a),
        Rewrite::NatSrcPort,
    ];
    let dnat = [
        Rewrite::VlanPop,
        Rewrite::EthSrc(gw),
        Rewrite::EthDst(nh),
        Rewrite::Ipv4DecTtl,
        Rewrite::Ipv4Dst(0x0a01000d),
        Rewrite::L4Dst(8080),
    ];
    let snat_icmp = [Rewrite::Ipv4Src(0xcb00710a), Rewrite::NatSrcPort];
    let push = [Rewrite::VlanPush {
        tpid: ethertype::VLAN,
        tci: 101,
    }];
    let eth = [Rewrite::EthSrc(gw)];
    let mut pkt = PacketBuf::new(2048);
    let mut sum = 0u64;
    let mut ok = 0usize;
    // FNV-1a over the rewritten frames of the first round: the same before
    // and after a change that must not change behaviour.
    let mut digest = 0xcbf2_9ce4_8422_2325u64;
    let mut digest_left = frames.len();
    for _ in 0..ROUNDS {
        for (i, f) in frames.iter().enumerate() {
            let _ = pkt.set_data(black_box(f));
            pkt.in_port = 6;
            pkt.nat_sport = NAT_SPORT_SET | 61000;
            let p = black_box(&mut pkt);
            let (k, done) = match i {
                0 => (
                    parse_udp(p),
                    apply_route_snat_udp(p, black_box(&route_snat)),
                ),
                1 => (parse_tcp_vlan(p), apply_dnat_tcp_vlan(p, black_box(&dnat))),
                2 => (parse_icmp(p), apply_snat_icmp(p, black_box(&snat_icmp))),
                3 => (parse_arp(p), apply_vlan_push_arp(p, black_box(&push))),
                _ => (parse_ipv6_udp(p), apply_eth_ipv6(p, black_box(&eth))),
            };
            sum = sum.wrapping_add(k);
            ok += done as usize;
            sum = sum.wrapping_add(pkt.data()[pkt.len() / 2] as u64);
            if digest_left > 0 {
                digest_left -= 1;
                for &b in pkt.data() {
                    digest = (digest ^ b as u64).wrapping_mul(0x100_0000_01b3);
                }
            }
        }
    }
    // Every program must apply: a failing rewrite would measure a drop.
    assert_eq!(ok, ROUNDS * frames.len());
    println!(
        "{ROUNDS} rounds of {} frames; output digest {digest:016x}; sum {sum:x}",
        frames.len()
    );
}
