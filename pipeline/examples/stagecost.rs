//! Per-stage cost of the bare loop (rough, for profiling; criterion has the real figures).
use pipeline::key::{Field, FlowKey, Mac};
use pipeline::packet::{self, synth::frame_from_key, PacketBuf, PacketPool, Rewrite};
use pipeline::wire::ethertype;
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::IPV4 as u64);
    k.set(Field::DlSrc, 0xfa163e010011);
    k.set(Field::DlDst, 0xfa163e010012);
    k.set(Field::NwProto, 17);
    k.set(Field::NwSrc, 0x0a01000b);
    k.set(Field::NwDst, 0x0a01000c);
    k.set(Field::TpSrc, 1000);
    k.set(Field::TpDst, 2000);
    let frame = frame_from_key(&k, 18);
    let mut pool = PacketPool::new(64, 2048);
    let mut burst: Vec<PacketBuf> = Vec::with_capacity(32);
    let key = packet::parse(&frame, 6).unwrap().key;
    let mut table: hashbrown::HashMap<FlowKey, (u16, Mac)> = hashbrown::HashMap::new();
    table.insert(key, (101, Mac([1; 6])));
    const N: usize = 2_000_000;
    let t = Instant::now();
    for _ in 0..N {
        let s = etherparse::SlicedPacket::from_ethernet(black_box(&frame)).unwrap();
        black_box(&s);
    }
    println!(
        "etherparse SlicedPacket: {:.1} ns/pkt",
        t.elapsed().as_nanos() as f64 / N as f64
    );
    let t = Instant::now();
    for _ in 0..N {
        black_box(packet::parse(black_box(&frame), 6).unwrap());
    }
    println!(
        "our parse alone: {:.1} ns/pkt",
        t.elapsed().as_nanos() as f64 / N as f64
    );
    for stage in 0..5 {
        let t = Instant::now();
        let mut sum = 0u64;
        for _ in 0..N / 32 {
            for _ in 0..32 {
                let mut p = pool.get().unwrap();
                let _ = p.set_data(&frame);
                burst.push(p);
            }
            for p in burst.iter_mut() {
                p.in_port = 6;
                if stage >= 1 {
                    let Ok(k) = packet::parse_into(p) else {
                        continue;
                    };
                    sum += k.w[0];
                    if stage >= 2 {
                        if let Some(&(vid, mac)) = table.get(&k) {
                            if stage >= 3 {
                                let _ = packet::apply(
                                    p,
                                    &Rewrite::VlanPush {
                                        tpid: ethertype::VLAN,
                                        tci: vid,
                                    },
                                );
                            }
                            if stage >= 4 {
                                let _ = packet::apply(p, &Rewrite::EthSrc(mac));
                            }
                        }
                    }
                }
            }
            for p in burst.drain(..) {
                pool.put(black_box(p));
            }
        }
        black_box(sum);
        println!(
            "stage {stage}: {:.1} ns/pkt",
            t.elapsed().as_nanos() as f64 / N as f64
        );
    }
}
