//! Property: the flow cache changes nothing but speed.
//!
//! Random packet sequences over compute1's Appendix A bridges go through two
//! datapaths built from the same scenario, one with the megaflow cache and
//! one translating every packet. Outputs (port and bytes, in order), every
//! flow's packet/byte counters, drop counters and the learned MAC tables
//! must be identical. MAC learning is live, so a later packet's walk depends
//! on earlier ones: exactly the case where a stale cache would diverge.
#![deny(unsafe_code)]

use pipeline::datapath::Datapath;
use pipeline::key::{Field, FlowKey, Mac};
use pipeline::packet::{synth::frame_from_key, PacketBuf, PacketPool};
use pipeline::switch::{PortId, Switch};
use pipeline::wire::{ethertype, ipproto};
use proptest::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;
use vswitch::offline::scenario::load_dir;

const PORTS: [&str; 8] = [
    "qvo-vm1", "qvo-vm2", "qvo-vm4", "qr-s1", "qr-s2", "fg-c1", "eth1", "eth2",
];
const MACS: [&str; 10] = [
    "fa:16:3e:01:00:11",
    "fa:16:3e:01:00:12",
    "fa:16:3e:01:00:13",
    "fa:16:3e:02:00:14",
    "fa:16:3e:02:00:15",
    "fa:16:3e:aa:01:01",
    "fa:16:3e:aa:02:01",
    "fa:16:3f:00:00:c2",
    "ff:ff:ff:ff:ff:ff",
    "fa:16:3e:99:99:99",
];
const IPS: [u32; 6] = [
    0x0a01000b,
    0x0a01000c,
    0x0a010001,
    0x0a02000e,
    0x0a020001,
    devtools::spec::EXTERNAL_HOST.to_bits(),
];
/// Tag stacks (TPID, TCI), outermost first: 802.1Q tags of the segments
/// and local VLANs, 802.1ad (S-)tags, priority tags, double tags; the cache
/// must tell apart what translation does (a megaflow covers the TPID and
/// what follows a priority tag).
const TAGS: [&[(u16, u16)]; 12] = [
    &[],
    &[(0x8100, 101)],
    &[(0x8100, 102)],
    &[(0x8100, 1)],
    &[(0x8100, 2)],
    &[(0x88a8, 101)],
    &[(0x88a8, 0)],
    &[(0x8100, 0)],
    &[(0x8100, 0), (0x8100, 5)],
    &[(0x88a8, 101), (0x8100, 7)],
    &[(0x8100, 101), (0x88a8, 7)],
    &[(0x88a8, 102)],
];

#[derive(Clone, Debug)]
struct Pkt {
    port: usize,
    src: usize,
    dst: usize,
    tags: usize,
    kind: u8,
    spa: usize,
    tpa: usize,
    ttl: u8,
    sport: u16,
}

fn arb_pkt() -> impl Strategy<Value = Pkt> {
    (
        0..PORTS.len(),
        0..MACS.len(),
        0..MACS.len(),
        0..TAGS.len(),
        0u8..4,
        0..IPS.len(),
        0..IPS.len(),
        1u8..4,
        1000u16..1004,
    )
        .prop_map(|(port, src, dst, tags, kind, spa, tpa, ttl, sport)| Pkt {
            port,
            src,
            dst,
            tags,
            kind,
            spa,
            tpa,
            ttl,
            sport,
        })
}

fn frame(p: &Pkt) -> Vec<u8> {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlSrc, MACS[p.src].parse::<Mac>().unwrap().to_u64());
    k.set(Field::DlDst, MACS[p.dst].parse::<Mac>().unwrap().to_u64());
    k.set(Field::NwSrc, IPS[p.spa] as u64);
    k.set(Field::NwDst, IPS[p.tpa] as u64);
    match p.kind {
        0 => {
            k.set(Field::DlType, ethertype::ARP as u64);
            k.set(Field::NwProto, 1);
            k.set(Field::ArpSha, k.get(Field::DlSrc));
        }
        kind => {
            k.set(Field::DlType, ethertype::IPV4 as u64);
            k.set(Field::NwTtl, p.ttl as u64 * 20);
            let proto = [ipproto::ICMP, ipproto::UDP, ipproto::TCP][kind as usize - 1];
            k.set(Field::NwProto, proto as u64);
            if proto == ipproto::ICMP {
                k.set(Field::TpSrc, 8);
                k.set(Field::IcmpId, p.sport as u64);
            } else {
                k.set(Field::TpSrc, p.sport as u64);
                k.set(Field::TpDst, 80);
            }
        }
    }
    let untagged = frame_from_key(&k, 18);
    let mut f = untagged[..12].to_vec();
    for (tpid, tci) in TAGS[p.tags] {
        f.extend(tpid.to_be_bytes());
        f.extend(tci.to_be_bytes());
    }
    f.extend(&untagged[12..]);
    f
}

fn switch() -> Arc<Switch> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/scenarios/spec-compute1");
    let mut sc = load_dir(&dir, 1).expect("scenario");
    sc.fdb.clear();
    sc.build().expect("build")
}

/// Everything observable after running `pkts`.
#[derive(Debug, PartialEq)]
struct Observed {
    /// Per port, in the order the port was handed them.
    outputs: Vec<(PortId, Vec<u8>)>,
    flow_counters: Vec<(String, u8, u64, u64)>,
    drops: Vec<(&'static str, u64)>,
    fdb: Vec<String>,
    rx: u64,
    tx: u64,
}

fn run(pkts: &[Pkt], burst: usize, use_cache: bool) -> Observed {
    let sw = switch();
    let mut dp = Datapath::new(0, if use_cache { 64 } else { 1 });
    dp.use_cache = use_cache;
    let mut pool = PacketPool::new(4096, 2048);
    let mut outputs = Vec::new();
    for (i, chunk) in pkts.chunks(burst).enumerate() {
        let now = i as u64 * 1_000_000;
        // A burst comes from one port; group by port like a NIC queue would.
        for (port, name) in PORTS.iter().enumerate() {
            let mut b: Vec<PacketBuf> = Vec::new();
            for p in chunk.iter().filter(|p| p.port == port) {
                let mut buf = pool.get().expect("pool");
                buf.set_data(&frame(p)).expect("fits");
                b.push(buf);
            }
            if b.is_empty() {
                continue;
            }
            let in_port = sw.port_by_name(name).expect("port").id;
            let mut sink = |port: PortId, pkt: PacketBuf| {
                outputs.push((port, pkt.data().to_vec()));
                // The sink owns the buffer; hand it back like a TX completion would.
                drop(pkt);
            };
            dp.process_burst(&sw, in_port, &mut b, now, &mut pool, &mut sink);
        }
    }
    let mut flow_counters = Vec::new();
    for b in &sw.bridges {
        for t in b.tables() {
            for r in &t.rules {
                let (p, by, _) = r.stats.read();
                flow_counters.push((b.name.clone(), t.id, p, by));
            }
        }
    }
    let fdb = sw
        .bridges
        .iter()
        .flat_map(|b| {
            b.macs
                .rows(0)
                .into_iter()
                .map(move |r| format!("{} {:?} {} {}", b.name, r.port, r.vlan, r.mac))
        })
        .collect();
    // What each port was handed, in order: how outputs to different
    // ports interleave is not observable on the wire (a run of one
    // megaflow goes through its program op by op for the whole run, as
    // OVS's per-flow batches do, so its copies to one port come before
    // its packets to another).
    outputs.sort_by_key(|(port, _)| *port);
    Observed {
        outputs,
        flow_counters,
        drops: dp.counters.drops.nonzero(),
        fdb,
        rx: dp.counters.rx_packets,
        tx: dp.counters.tx_packets,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn cached_and_uncached_processing_agree(
        pkts in proptest::collection::vec(arb_pkt(), 1..120),
        burst in 1usize..33,
    ) {
        let cached = run(&pkts, burst, true);
        let uncached = run(&pkts, burst, false);
        prop_assert_eq!(&cached, &uncached);
    }
}

#[test]
fn the_cache_is_actually_used() {
    // Same packet many times: one upcall, the rest hits, same outputs as uncached.
    let p = Pkt {
        port: 0,
        src: 0,
        dst: 1,
        tags: 0,
        kind: 1,
        spa: 0,
        tpa: 1,
        ttl: 3,
        sport: 1000,
    };
    let pkts = vec![p; 100];
    let sw = switch();
    let mut dp = Datapath::new(0, 64);
    let mut pool = PacketPool::new(4096, 2048);
    let in_port = sw.port_by_name("qvo-vm1").expect("port").id;
    let mut n_out = 0;
    for chunk in pkts.chunks(32) {
        let mut b: Vec<PacketBuf> = chunk
            .iter()
            .map(|p| {
                let mut buf = pool.get().expect("pool");
                buf.set_data(&frame(p)).expect("fits");
                buf
            })
            .collect();
        let mut sink = |_: PortId, _: PacketBuf| n_out += 1;
        dp.process_burst(&sw, in_port, &mut b, 0, &mut pool, &mut sink);
    }
    // vm2's MAC is unknown: the first packet floods (qr-s1, vm2, br-vlan -> eth1).
    assert!(dp.counters.upcalls <= 2, "upcalls: {}", dp.counters.upcalls);
    assert!(dp.cache.counters.hits >= 98);
    assert_eq!(n_out, 300);
    assert_eq!(run(&pkts, 32, true), run(&pkts, 32, false));
}
