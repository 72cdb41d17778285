//! Robustness: 100,000+ random and mutated frames (fixed seed) into every
//! wire-facing port of compute1 and network1 of the spec's topology, through
//! `Datapath::process_burst` as a worker runs it.
//!
//! Asserted for every frame (bursts of one, so counters can be read per
//! frame): no panic; it is received once; a frame the parser refuses is
//! dropped exactly once under the parser's reason with nothing sent; any
//! other frame is sent somewhere, dropped under a counted reason, or held
//! by a router for neighbour resolution (the counters do not allow more:
//! NORMAL floods copies, routers answer ARP and generate ICMP, a ct copy
//! and the original can both drop). Every packet buffer returns to the
//! pool. At the end: flow caches, MAC tables and the connection table
//! within their (small) limits, and those limits were reached.
#![deny(unsafe_code)]

use devtools::spec;
use pipeline::datapath::Datapath;
use pipeline::drop::DropReason;
use pipeline::key::{Field, FlowKey};
use pipeline::packet::synth::frame_from_key;
use pipeline::packet::{PacketBuf, PacketPool};
use pipeline::switch::{PortId, PortKind, Switch};
use pipeline::wire::{ethertype, ipproto};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

const FRAMES_PER_HOST: usize = 60_000;
const CACHE_LIMIT: usize = 64;
const MAC_LIMIT: usize = 32;
const CT_LIMIT: usize = 8;
const MAX_FRAME: usize = 1600;
const POOL: usize = 64;

/// xorshift64*: small, fixed-seed, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

fn topology() -> topology::Topology {
    devtools::spec::topology().expect("valid topology")
}

fn host(name: &str) -> Arc<Switch> {
    let t = topology();
    let mut cfg = topology::build_host(&t, name, 1).expect("host");
    // Every connection stored, as Linux does, so that random traffic
    // reaches the table's limit (by default, connections no NAT rule
    // selects are not stored).
    cfg.set_store_unnated(true);
    cfg.set_mac_limits(MAC_LIMIT, 300_000_000_000);
    cfg.set_conntrack(pipeline::conntrack::ConnTable::new(
        pipeline::conntrack::Limits {
            max_conns: CT_LIMIT,
            ..Default::default()
        },
        Default::default(),
    ));
    cfg.build().expect("build")
}

/// MACs and addresses of the topology, so that some frames go deep
/// (gateways, VMs, floating IPs) and are not all table misses.
const MACS: [u64; 8] = [
    0xfa163e010011,
    0xfa163e010012,
    0xfa163e010013,
    0xfa163e020014,
    0xfa163eaa0101,
    0xfa163eaa0201,
    0xffffffffffff,
    spec::UPSTREAM_MAC.to_u64(),
];
const IPS: [u32; 10] = [
    0x0a01000b,
    0x0a01000c,
    0x0a01000d,
    0x0a02000e,
    0x0a02000f,
    0x0a010001,
    0x0a020001,
    0xcb00710a,
    0xcb007165,
    spec::EXTERNAL_HOST.to_bits(),
];

fn pick_mac(r: &mut Rng) -> u64 {
    if r.below(4) == 0 {
        r.next() & 0xffff_ffff_ffff
    } else {
        MACS[r.below(MACS.len())]
    }
}

fn pick_ip(r: &mut Rng) -> u32 {
    if r.below(4) == 0 {
        r.next() as u32
    } else {
        IPS[r.below(IPS.len())]
    }
}

/// A valid frame: ARP, ICMP, TCP (flags cycling through all 512
/// combinations), UDP, or another ethertype. Half of those entering a VM's
/// port come from that VM's own MAC and address (`own`), so that they get
/// past port security and go deep.
fn valid_frame(r: &mut Rng, n: usize, own: Option<(u64, u32)>) -> Vec<u8> {
    let mut k = FlowKey::ZERO;
    let own = own.filter(|_| r.below(2) == 0);
    k.set(Field::DlSrc, own.map_or_else(|| pick_mac(r), |o| o.0));
    k.set(Field::DlDst, pick_mac(r));
    match r.below(5) {
        0 => {
            k.set(Field::DlType, ethertype::ARP as u64);
            k.set(Field::NwProto, 1 + r.below(2) as u64);
            k.set(Field::NwSrc, pick_ip(r) as u64);
            k.set(Field::NwDst, pick_ip(r) as u64);
            k.set(Field::ArpSha, pick_mac(r));
            k.set(Field::ArpTha, pick_mac(r));
        }
        1..=3 => {
            k.set(Field::DlType, ethertype::IPV4 as u64);
            k.set(Field::NwSrc, own.map_or_else(|| pick_ip(r), |o| o.1) as u64);
            k.set(Field::NwDst, pick_ip(r) as u64);
            k.set(Field::NwTtl, [64, 1, 0, 255][r.below(4)]);
            let proto = [ipproto::TCP, ipproto::UDP, ipproto::ICMP][r.below(3)];
            k.set(Field::NwProto, proto as u64);
            if proto == ipproto::ICMP {
                k.set(Field::TpSrc, [8, 0, 3, 11, 5, r.byte() as u64][r.below(6)]);
                k.set(Field::TpDst, r.below(16) as u64);
                k.set(Field::IcmpId, r.below(8) as u64);
            } else {
                k.set(Field::TpSrc, [1000, 80, 53, r.next() & 0xffff][r.below(4)]);
                k.set(Field::TpDst, [80, 22, 53, r.next() & 0xffff][r.below(4)]);
                if proto == ipproto::TCP {
                    k.set(Field::TcpFlags, (n % 512) as u64);
                }
            }
        }
        _ => {
            k.set(
                Field::DlType,
                [ethertype::IPV6, 0x88cc, 0x0800, 0x1234, 0x0600][r.below(5)] as u64,
            );
        }
    }
    frame_from_key(&k, r.below(64))
}

/// One mutation of a valid frame, or a wholly random one.
fn mutated_frame(r: &mut Rng, n: usize, own: Option<(u64, u32)>) -> Vec<u8> {
    let mut f = valid_frame(r, n, own);
    let len = f.len();
    match r.below(12) {
        0 => {}
        // Truncated anywhere, down to nothing.
        1 => f.truncate(r.below(len + 1)),
        // Random byte flips.
        2 => {
            for _ in 0..1 + r.below(8) {
                let i = r.below(len);
                f[i] ^= r.byte() | 1;
            }
        }
        // Wrong IPv4 total length.
        3 => {
            if len > 18 {
                f[16] = r.byte();
                f[17] = r.byte();
            }
        }
        // VLAN stacks: 1-3 tags (802.1Q and 802.1ad), random VIDs.
        4 => {
            for _ in 0..1 + r.below(3) {
                let tpid: u16 = [0x8100, 0x88a8, 0x9100][r.below(3)];
                let tci = r.next() as u16;
                let tag = [(tpid >> 8) as u8, tpid as u8, (tci >> 8) as u8, tci as u8];
                f.splice(12..12, tag);
            }
        }
        // IPv4 options: a longer IHL, with or without the option bytes.
        5 => {
            if len > 14 {
                let ihl = 6 + r.below(10) as u8;
                f[14] = 0x40 | ihl;
                if r.below(2) == 0 {
                    let extra: Vec<u8> = (0..(ihl as usize - 5) * 4).map(|_| r.byte()).collect();
                    let at = 34.min(f.len());
                    f.splice(at..at, extra);
                }
            }
        }
        // Fragments: first, middle and last, random offsets.
        6 => {
            if len > 21 {
                let off = r.next() as u16 & 0x1fff;
                let flags = [0x2000u16, 0x0000, 0x4000, 0x2000][r.below(4)];
                let v = flags | if r.below(2) == 0 { 0 } else { off };
                f[20] = (v >> 8) as u8;
                f[21] = v as u8;
            }
        }
        // TTL 0 or 1.
        7 => {
            if len > 22 {
                f[22] = r.below(2) as u8;
            }
        }
        // Broadcast or multicast source MAC.
        8 => {
            if r.below(2) == 0 {
                f[6..12].copy_from_slice(&[0xff; 6]);
            } else {
                f[6] |= 1;
            }
        }
        // ARP with wrong hardware/protocol types and lengths.
        9 => {
            if len > 19 {
                f[12] = 0x08;
                f[13] = 0x06;
                f[14 + r.below(6)] = r.byte();
            }
        }
        // Junk appended or padded to near the largest frame.
        10 => {
            let extra = r.below(MAX_FRAME - len.min(MAX_FRAME) + 1);
            f.extend((0..extra).map(|_| r.byte()));
        }
        // Entirely random bytes.
        _ => {
            let l = r.below(MAX_FRAME + 1);
            f = (0..l).map(|_| r.byte()).collect();
        }
    }
    f.truncate(MAX_FRAME);
    f
}

fn total_drops(dp: &Datapath) -> u64 {
    dp.counters.drops.counts.iter().sum()
}

fn held(sw: &Switch) -> u64 {
    sw.router_runtime
        .iter()
        .map(|rt| rt.counters.held.load(Relaxed))
        .sum()
}

const PARSE_REASONS: [DropReason; 7] = [
    DropReason::EthTruncated,
    DropReason::VlanTruncated,
    DropReason::FrameTooLong,
    DropReason::ArpMalformed,
    DropReason::Ipv4Malformed,
    DropReason::Ipv6Malformed,
    DropReason::L4Truncated,
];

fn run_host(name: &str, seed: u64) {
    let sw = host(name);
    let vms = topology().ports;
    for b in &sw.bridges {
        assert!(b.macs.is_empty());
    }
    let ports: Vec<PortId> = sw
        .ports()
        .filter(|p| !matches!(p.kind, PortKind::Patch { .. }))
        .map(|p| p.id)
        .collect();
    assert!(ports.len() >= 4, "{name}: ports {ports:?}");
    let mut dp = Datapath::new(0, CACHE_LIMIT);
    let mut pool = PacketPool::new(POOL, MAX_FRAME);
    let mut r = Rng(seed);
    let mut burst: Vec<PacketBuf> = Vec::with_capacity(1);
    let mut outq: Vec<(PortId, PacketBuf)> = Vec::new();
    let mut parse_drops = 0u64;
    for n in 0..FRAMES_PER_HOST {
        let in_port = ports[n % ports.len()];
        let own = sw
            .port(in_port)
            .and_then(|p| vms.iter().find(|v| v.device == p.name))
            .map(|v| (v.mac.to_u64(), u32::from(v.ip)));
        let frame = mutated_frame(&mut r, n, own);
        let expect_parse = pipeline::packet::parse(&frame, in_port.0).err();
        let mut p = pool.get().expect("pool has a buffer");
        p.set_data(&frame).expect("frame fits the buffer");
        burst.push(p);
        let (rx0, tx0, d0, h0) = (
            dp.counters.rx_packets,
            dp.counters.tx_packets,
            total_drops(&dp),
            held(&sw),
        );
        let reason0 = expect_parse.map(|r| dp.counters.drops.get(r));
        let now_ns = 1_000_000_000 + n as u64 * 50_000;
        dp.process_burst(
            &sw,
            in_port,
            &mut burst,
            now_ns,
            &mut pool,
            &mut |port: PortId, pkt: PacketBuf| outq.push((port, pkt)),
        );
        let (drx, dtx, dd, dh) = (
            dp.counters.rx_packets - rx0,
            dp.counters.tx_packets - tx0,
            total_drops(&dp) - d0,
            held(&sw) - h0,
        );
        let ctx = || format!("{name} frame {n} on port {in_port:?}: {}", hex(&frame));
        assert_eq!(drx, 1, "{}", ctx());
        assert_eq!(dtx as usize, outq.len(), "{}", ctx());
        match expect_parse {
            Some(reason) => {
                parse_drops += 1;
                assert!(PARSE_REASONS.contains(&reason), "{reason:?}");
                assert_eq!((dtx, dd), (0, 1), "{}", ctx());
                assert_eq!(
                    dp.counters.drops.get(reason),
                    reason0.unwrap_or_default() + 1,
                    "{}",
                    ctx()
                );
            }
            None => assert!(
                dtx + dd + dh >= 1,
                "{}: neither sent, dropped nor held",
                ctx()
            ),
        }
        for (port, pkt) in outq.drain(..) {
            assert!(sw.port(port).is_some(), "{}: output to {port:?}", ctx());
            assert!(pkt.len() <= MAX_FRAME + 64, "{}", ctx());
            pool.put(pkt);
        }
        assert_eq!(pool.available(), POOL, "{}: a buffer leaked", ctx());
    }
    let c = &dp.counters;
    eprintln!(
        "{name}: rx={} tx={} upcalls={} parse drops={parse_drops} held={} cache={} recirc cache={} conns={} macs={:?}",
        c.rx_packets,
        c.tx_packets,
        c.upcalls,
        held(&sw),
        dp.cache.len(),
        dp.recirc_cache.len(),
        sw.conntrack.len(),
        sw.bridges.iter().map(|b| (b.name.as_str(), b.macs.len())).collect::<Vec<_>>()
    );
    for (reason, n) in DropReason::all().zip(c.drops.counts) {
        if n > 0 {
            eprintln!("  {:>28}: {n}", reason.as_str());
        }
    }
    assert_eq!(c.rx_packets, FRAMES_PER_HOST as u64);
    // Limits hold, and the traffic was enough to reach them.
    assert!(
        dp.cache.len() <= CACHE_LIMIT,
        "flow cache {}",
        dp.cache.len()
    );
    assert!(
        dp.recirc_cache.len() <= CACHE_LIMIT,
        "recirc cache {}",
        dp.recirc_cache.len()
    );
    assert_eq!(
        dp.cache.len(),
        CACHE_LIMIT,
        "the flow cache limit was reached"
    );
    for b in &sw.bridges {
        assert!(
            b.macs.len() <= MAC_LIMIT,
            "{}: {} MACs",
            b.name,
            b.macs.len()
        );
    }
    assert!(
        sw.bridges.iter().any(|b| b.macs.len() == MAC_LIMIT),
        "some MAC table reached its limit"
    );
    assert!(
        sw.conntrack.len() <= CT_LIMIT,
        "{} connections",
        sw.conntrack.len()
    );
    assert!(
        sw.conntrack.len() == CT_LIMIT || c.drops.get(DropReason::CtTableFull) > 0,
        "the connection limit was reached ({} connections)",
        sw.conntrack.len()
    );
    assert!(
        parse_drops > 1000,
        "the mutations reach the parser's checks"
    );
}

fn hex(f: &[u8]) -> String {
    f.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn compute1_survives_random_and_mutated_frames() {
    run_host("compute1", 0x5eed_c0de_0001);
}

#[test]
fn network1_survives_random_and_mutated_frames() {
    run_host("network1", 0x5eed_c0de_0002);
}

#[test]
fn mutations_are_deterministic() {
    let a: Vec<Vec<u8>> = {
        let mut r = Rng(7);
        (0..100).map(|n| mutated_frame(&mut r, n, None)).collect()
    };
    let mut r = Rng(7);
    let b: Vec<Vec<u8>> = (0..100).map(|n| mutated_frame(&mut r, n, None)).collect();
    assert_eq!(a, b);
}
