//! Conntrack: established-connection lookup (+ NAT translation), and the
//! rate of new connections, on one thread and with two threads contending.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use pipeline::conntrack::{ConnTable, Limits, Nat, PacketInfo, Timeouts, Tuple};
use pipeline::key::{Field, FlowKey};
use pipeline::packet::{apply, synth::frame_from_key, PacketBuf, Rewrite};
use pipeline::wire::{ethertype, ipproto};
use std::net::Ipv4Addr;
use std::sync::Arc;

const UDP: PacketInfo = PacketInfo {
    tcp_flags: 0,
    icmp_type: 0,
};

fn tuple(i: u32) -> Tuple {
    Tuple {
        zone: 1,
        proto: ipproto::UDP,
        src: Ipv4Addr::from(0x0a00_0000 | i),
        dst: Ipv4Addr::new(198, 51, 100, 1),
        sport: 1024 + (i % 50000) as u16,
        dport: 53,
    }
}

fn bench_established(c: &mut Criterion) {
    let ct = ConnTable::new(Limits::default(), Timeouts::default());
    let ext = Ipv4Addr::new(203, 0, 113, 10);
    let nat = Nat::Src {
        addrs: (ext, ext),
        ports: None,
    };
    const N: u32 = 10_000;
    for i in 0..N {
        ct.track(tuple(i), UDP, true, Some(nat), 0).expect("room");
    }
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::IPV4 as u64);
    k.set(Field::NwProto, ipproto::UDP as u64);
    k.set(Field::NwSrc, 0x0a00_0001);
    k.set(Field::NwDst, 0xc633_6401);
    k.set(Field::TpSrc, 1025);
    k.set(Field::TpDst, 53);
    let frame = frame_from_key(&k, 18);
    let mut pkt = PacketBuf::new(2048);
    let mut g = c.benchmark_group("conntrack");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u32;
    g.bench_function("established_lookup_snat_rewrite", |b| {
        b.iter(|| {
            i = (i + 1) % N;
            let v = ct
                .track(black_box(tuple(i)), UDP, true, Some(nat), 1)
                .expect("tracked");
            let _ = pkt.set_data(&frame);
            let _ = pipeline::packet::parse_into(&mut pkt);
            let _ = apply(&mut pkt, &Rewrite::Ipv4Src(u32::from(v.translated.src)));
            let _ = apply(&mut pkt, &Rewrite::L4Src(v.translated.sport));
            black_box(&pkt);
        })
    });
    g.finish();
    let mut g = c.benchmark_group("conntrack_setup");
    const PER_ITER: u32 = 20_000;
    g.throughput(Throughput::Elements(PER_ITER as u64));
    g.sample_size(10);
    g.bench_function("new_connections_1_thread_snat", |b| {
        b.iter(|| {
            let ct = ConnTable::new(Limits::default(), Timeouts::default());
            for i in 0..PER_ITER {
                let _ = ct.track(tuple(i), UDP, true, Some(nat), 0);
            }
            black_box(ct.len())
        })
    });
    g.finish();
}

fn bench_contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("conntrack_contended");
    const PER_THREAD: u32 = 20_000;
    g.throughput(Throughput::Elements(2 * PER_THREAD as u64));
    g.sample_size(10);
    for threads in [1u32, 2] {
        g.bench_function(format!("new_connections_{threads}_threads"), |b| {
            b.iter(|| {
                let ct = Arc::new(ConnTable::new(Limits::default(), Timeouts::default()));
                let hs: Vec<_> = (0..threads)
                    .map(|k| {
                        let ct = ct.clone();
                        std::thread::spawn(move || {
                            for i in 0..2 * PER_THREAD / threads {
                                let _ = ct.track(tuple(k * 2 * PER_THREAD + i), UDP, true, None, 0);
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    let _ = h.join();
                }
                black_box(ct.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_established, bench_contended);
criterion_main!(benches);
