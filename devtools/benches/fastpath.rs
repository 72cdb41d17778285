//! Fast-path micro-benchmarks on compute1's Appendix A flows.
//!
//! * `classifier/*`: one table lookup (tuple space search) for a VM packet.
//! * `fastpath/*`: `Datapath::process_burst` on bursts of 32 copies of one
//!   flow with a warm cache: parse, cache lookup, flow counters, rewrites,
//!   output. Each iteration first copies the frame into the 32 buffers (as
//!   a NIC's receive would), then processes the burst.
//! * `bare/*`: the reference loop the design measures against: parse, one
//!   hash lookup, VLAN push, MAC rewrite, on the same buffers.
//!
//! Throughput is in packets (elements): criterion's time / 32 = ns/packet.
#![deny(unsafe_code)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use pipeline::datapath::{Datapath, BURST};
use pipeline::key::{Field, FlowKey, Mac};
use pipeline::packet::{self, synth::frame_from_key, PacketBuf, PacketPool, Rewrite};
use pipeline::switch::{PortId, Switch};
use pipeline::wire::{ethertype, ipproto};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use vswitch::offline::scenario::load_dir;

fn switch() -> Arc<Switch> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/scenarios/spec-compute1");
    let mut sc = load_dir(&dir, 1).expect("scenario");
    sc.build().expect("build")
}

fn udp_key(src: &str, dst: &str, nw_src: u32, nw_dst: u32) -> FlowKey {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlSrc, src.parse::<Mac>().expect("mac").to_u64());
    k.set(Field::DlDst, dst.parse::<Mac>().expect("mac").to_u64());
    k.set(Field::DlType, ethertype::IPV4 as u64);
    k.set(Field::NwProto, ipproto::UDP as u64);
    k.set(Field::NwSrc, nw_src as u64);
    k.set(Field::NwDst, nw_dst as u64);
    k.set(Field::NwTtl, 64);
    k.set(Field::TpSrc, 1024);
    k.set(Field::TpDst, 5001);
    k
}

/// (name, input port, frame): one flow per scenario of the spec's walks.
fn flows() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    // 64-byte frames: 14 Ethernet + 20 IPv4 + 8 UDP + 18 payload + 4 FCS-less pad.
    let pay = 22;
    vec![
        // §8.2: br-int 0 -> 25 -> 60 NORMAL -> vm2.
        (
            "same_host_vm1_to_vm2",
            "qvo-vm1",
            frame_from_key(
                &udp_key(
                    "fa:16:3e:01:00:11",
                    "fa:16:3e:01:00:12",
                    0x0a01000b,
                    0x0a01000c,
                ),
                pay,
            ),
        ),
        // §8.3 egress: br-int NORMAL -> patch -> br-vlan 0/1/2, VLAN push 101 -> eth1.
        (
            "other_host_vm1_to_vm3",
            "qvo-vm1",
            frame_from_key(
                &udp_key(
                    "fa:16:3e:01:00:11",
                    "fa:16:3e:01:00:13",
                    0x0a01000b,
                    0x0a01000d,
                ),
                pay,
            ),
        ),
        // §8.5 egress: routed frame from qr-s2, source rewritten to the DVR MAC, VLAN 102.
        (
            "routed_egress_dvr_mac",
            "qr-s2",
            frame_from_key(
                &udp_key(
                    "fa:16:3e:aa:02:01",
                    "fa:16:3e:02:00:15",
                    0x0a01000b,
                    0x0a02000f,
                ),
                pay,
            ),
        ),
    ]
}

fn bench_classifier(c: &mut Criterion) {
    let sw = switch();
    let br_int = sw.bridge("br-int").expect("br-int");
    let mut g = c.benchmark_group("classifier");
    g.throughput(Throughput::Elements(1));
    let mut key = udp_key(
        "fa:16:3e:01:00:11",
        "fa:16:3e:01:00:12",
        0x0a01000b,
        0x0a01000c,
    );
    key.set(Field::InPort, 6);
    for table in [0u8, 60] {
        let t = br_int.table(table).expect("table");
        g.bench_function(
            format!(
                "br-int_table{table}_{}rules_{}masks",
                t.rules.len(),
                t.classifier.n_subtables()
            ),
            |b| {
                b.iter(|| {
                    let mut wc = FlowKey::ZERO;
                    black_box(
                        t.classifier
                            .lookup(black_box(&key), &mut wc)
                            .map(|(v, _)| *v),
                    )
                })
            },
        );
    }
    g.finish();
}

fn bench_fastpath(c: &mut Criterion) {
    let sw = switch();
    let mut g = c.benchmark_group("fastpath");
    g.throughput(Throughput::Elements(BURST as u64));
    for (name, port, frame) in flows() {
        let in_port = sw.port_by_name(port).expect("port").id;
        let mut dp = Datapath::new(0, 4096);
        let mut pool = PacketPool::new(4 * BURST, 2048);
        let mut burst: Vec<PacketBuf> = Vec::with_capacity(BURST);
        let mut outq: Vec<PacketBuf> = Vec::with_capacity(4 * BURST);
        g.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..BURST {
                    // As the backends do: into the burst, then filled in
                    // place (no copy of a just-written PacketBuf).
                    burst.push(pool.get().expect("pool"));
                    if let Some(p) = burst.last_mut() {
                        let _ = p.set_data(&frame);
                    }
                }
                let mut sink = |_: PortId, p: PacketBuf| outq.push(p);
                dp.process_burst(&sw, in_port, &mut burst, 0, &mut pool, &mut sink);
                for p in outq.drain(..) {
                    pool.put(p);
                }
            })
        });
        let c = dp.cache_counters();
        eprintln!(
            "  {name}: upcalls={} cache hits={} misses={} tx={} drops={:?}",
            dp.counters.upcalls,
            c.hits,
            c.misses,
            dp.counters.tx_packets,
            dp.counters.drops.nonzero()
        );
    }
    g.finish();
}

fn bench_bare(c: &mut Criterion) {
    let (_, _, frame) = flows().swap_remove(0);
    let mut table: hashbrown::HashMap<FlowKey, (u16, Mac)> = hashbrown::HashMap::new();
    let key = packet::parse(&frame, 6).expect("parse").key;
    table.insert(key, (101, "fa:16:3f:00:00:c1".parse().expect("mac")));
    let mut pool = PacketPool::new(2 * BURST, 2048);
    let mut burst: Vec<PacketBuf> = Vec::with_capacity(BURST);
    let mut g = c.benchmark_group("bare");
    g.throughput(Throughput::Elements(BURST as u64));
    g.bench_function("parse_lookup_vlanpush_macrewrite", |b| {
        b.iter_batched_ref(
            || (),
            |_| {
                for _ in 0..BURST {
                    let mut p = pool.get().expect("pool");
                    let _ = p.set_data(&frame);
                    burst.push(p);
                }
                for p in burst.iter_mut() {
                    p.in_port = 6;
                    let Ok(k) = packet::parse_into(p) else {
                        continue;
                    };
                    if let Some(&(vid, mac)) = table.get(&k) {
                        let _ = packet::apply(
                            p,
                            &Rewrite::VlanPush {
                                tpid: ethertype::VLAN,
                                tci: vid,
                            },
                        );
                        let _ = packet::apply(p, &Rewrite::EthSrc(mac));
                    }
                }
                for p in burst.drain(..) {
                    pool.put(black_box(p));
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// §8.4 through the userspace qrouter of compute1 (from the topology file):
/// conntrack in the router's zone, recirculation, routing, back to br-int.
fn bench_routed(c: &mut Criterion) {
    let t = devtools::spec::topology().expect("valid");
    let sw = topology::build_host(&t, "compute1", 1)
        .expect("host")
        .build()
        .expect("build");
    // vm1 -> vm4 (10.2.0.14) via the gateway MAC of subnet 1.
    let frame = frame_from_key(
        &udp_key(
            "fa:16:3e:01:00:11",
            "fa:16:3e:aa:01:01",
            0x0a01000b,
            0x0a02000e,
        ),
        22,
    );
    let in_port = sw.port_by_name("qvo-vm1").expect("port").id;
    let mut dp = Datapath::new(0, 4096);
    let mut pool = PacketPool::new(4 * BURST, 2048);
    let mut burst: Vec<PacketBuf> = Vec::with_capacity(BURST);
    let mut outq: Vec<PacketBuf> = Vec::with_capacity(4 * BURST);
    // vm4 has spoken (ARP for its gateway): br-int knows its port, so the
    // routed packets are delivered, not flooded.
    let mut arp = FlowKey::ZERO;
    arp.set(Field::DlType, ethertype::ARP as u64);
    arp.set(Field::DlSrc, 0xfa163e020014);
    arp.set(Field::DlDst, Mac::BROADCAST.to_u64());
    arp.set(Field::NwProto, 1);
    arp.set(Field::NwSrc, 0x0a02000e);
    arp.set(Field::NwDst, 0x0a020001);
    arp.set(Field::ArpSha, 0xfa163e020014);
    let mut warm = vec![pool.get().expect("pool")];
    let _ = warm[0].set_data(&frame_from_key(&arp, 0));
    let vm4 = sw.port_by_name("qvo-vm4").expect("port").id;
    dp.process_burst(
        &sw,
        vm4,
        &mut warm,
        0,
        &mut pool,
        &mut |_: PortId, p: PacketBuf| drop(p),
    );
    let mut g = c.benchmark_group("fastpath_router");
    g.throughput(Throughput::Elements(BURST as u64));
    g.bench_function("vm1_to_vm4_via_qrouter_conntrack", |b| {
        b.iter(|| {
            for _ in 0..BURST {
                let mut p = pool.get().expect("pool");
                let _ = p.set_data(&frame);
                burst.push(p);
            }
            let mut sink = |_: PortId, p: PacketBuf| outq.push(p);
            dp.process_burst(&sw, in_port, &mut burst, 0, &mut pool, &mut sink);
            for p in outq.drain(..) {
                pool.put(p);
            }
        })
    });
    eprintln!(
        "  via qrouter: upcalls={} cache hits={} recirc hits={} tx={} drops={:?}",
        dp.counters.upcalls,
        dp.cache.counters.hits,
        dp.recirc_cache.counters.hits,
        dp.counters.tx_packets,
        dp.counters.drops.nonzero()
    );
    g.finish();
}

criterion_group!(
    benches,
    bench_classifier,
    bench_fastpath,
    bench_bare,
    bench_routed
);
criterion_main!(benches);
