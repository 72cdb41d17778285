//! Connection tracking and NAT bindings: states as `ct_state` defines them,
//! NAT round trips, port exhaustion, limits, incremental expiry, random
//! operation sequences, and several threads hammering both directions.

use pipeline::conntrack::tcp::{ACK, FIN, RST, SYN};
use pipeline::conntrack::{ConnTable, Dir, Limits, Nat, PacketInfo, Timeouts, Tuple};
use pipeline::drop::DropReason;
use pipeline::key::ct_state as cs;
use pipeline::wire::ipproto;
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

const SEC: u64 = 1_000_000_000;

fn t(proto: u8, src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Tuple {
    Tuple {
        zone: 0,
        proto,
        src: Ipv4Addr::from(src),
        dst: Ipv4Addr::from(dst),
        sport,
        dport,
    }
}

fn tcp(flags: u16) -> PacketInfo {
    PacketInfo {
        tcp_flags: flags,
        icmp_type: 0,
    }
}

fn table() -> ConnTable {
    ConnTable::new(Limits::default(), Timeouts::default())
}

const UDP: PacketInfo = PacketInfo {
    tcp_flags: 0,
    icmp_type: 0,
};

#[test]
fn states_follow_ct_state_bits() {
    let ct = table();
    let a = t(ipproto::UDP, [10, 1, 0, 11], 5000, [10, 2, 0, 14], 53);
    let v = ct.track(a, UDP, false, None, 0).unwrap();
    assert_eq!(v.state, cs::TRK | cs::NEW);
    assert!(ct.is_empty(), "not committed");
    let v = ct.track(a, UDP, true, None, 0).unwrap();
    assert_eq!(v.state, cs::TRK | cs::NEW);
    let v = ct.track(a, UDP, true, None, 1).unwrap();
    assert_eq!(v.state, cs::TRK | cs::NEW, "orig direction, no reply yet");
    let v = ct.track(a.reverse(), UDP, false, None, 2).unwrap();
    assert_eq!(
        (v.state, v.dir),
        (cs::TRK | cs::EST | cs::RPL, Some(Dir::Reply))
    );
    let v = ct.track(a, UDP, false, None, 3).unwrap();
    assert_eq!(v.state, cs::TRK | cs::EST);
    assert_eq!(ct.len(), 1);
}

#[test]
fn tcp_session_handshake_data_fin_and_invalid_packets() {
    let ct = table();
    let a = t(ipproto::TCP, [10, 1, 0, 11], 40000, [10, 2, 0, 14], 22);
    assert_eq!(
        ct.track(a, tcp(ACK | RST), true, None, 0).unwrap().state,
        cs::TRK | cs::INV,
        "RST cannot open"
    );
    assert_eq!(
        ct.track(a, tcp(SYN), true, None, 0).unwrap().state,
        cs::TRK | cs::NEW
    );
    assert_eq!(
        ct.track(a, tcp(SYN), true, None, 1).unwrap().state,
        cs::TRK | cs::NEW,
        "retransmitted SYN"
    );
    assert_eq!(
        ct.track(a.reverse(), tcp(SYN | ACK), true, None, 2)
            .unwrap()
            .state,
        cs::TRK | cs::EST | cs::RPL
    );
    assert_eq!(
        ct.track(a, tcp(ACK), true, None, 3).unwrap().state,
        cs::TRK | cs::EST
    );
    for i in 0..5 {
        ct.track(a, tcp(ACK), true, None, 4 + i).unwrap();
        ct.track(a.reverse(), tcp(ACK), true, None, 4 + i).unwrap();
    }
    ct.track(a, tcp(FIN | ACK), true, None, 10).unwrap();
    ct.track(a.reverse(), tcp(FIN | ACK), true, None, 11)
        .unwrap();
    ct.track(a, tcp(ACK), true, None, 12).unwrap();
    let c = &ct.dump(None, None)[0];
    assert_eq!(format!("{:?}", c.tcp), "Some(TimeWait)");
    // TIME_WAIT lasts 120 s.
    assert_eq!(c.expires_ns, 12 + 120 * SEC);
    // A SYN/ACK out of the blue is invalid, as is an ACK answering nothing in SYN_SENT.
    let b = t(ipproto::TCP, [10, 1, 0, 11], 40001, [10, 2, 0, 14], 22);
    assert_eq!(
        ct.track(b, tcp(SYN | ACK), true, None, 0).unwrap().state,
        cs::TRK | cs::INV
    );
    ct.track(b, tcp(SYN), true, None, 0).unwrap();
    assert_eq!(
        ct.track(b.reverse(), tcp(ACK), true, None, 1)
            .unwrap()
            .state,
        cs::TRK | cs::INV
    );
}

#[test]
fn snat_keeps_the_port_and_replies_translate_back() {
    let ct = table();
    let ext = Ipv4Addr::new(203, 0, 113, 10);
    let nat = Nat::Src {
        addrs: (ext, ext),
        ports: None,
    };
    let a = t(ipproto::TCP, [10, 1, 0, 13], 40000, [198, 51, 100, 1], 80);
    let v = ct.track(a, tcp(SYN), true, Some(nat), 0).unwrap();
    assert_eq!(v.state, cs::TRK | cs::NEW | cs::SNAT);
    assert_eq!(
        (v.translated.src, v.translated.sport),
        (ext, 40000),
        "port kept when free"
    );
    // Another inside host with the same source port gets another port.
    let b = t(ipproto::TCP, [10, 1, 0, 14], 40000, [198, 51, 100, 1], 80);
    let w = ct.track(b, tcp(SYN), true, Some(nat), 0).unwrap();
    assert_eq!(w.translated.src, ext);
    assert_ne!(w.translated.sport, 40000);
    // The server's reply to the external tuple is found and translated back.
    let r = ct
        .track(w.translated.reverse(), tcp(SYN | ACK), true, None, 1)
        .unwrap();
    assert_eq!(r.dir, Some(Dir::Reply));
    assert_eq!(r.translated, b.reverse());
    assert!(r.state & cs::SNAT != 0);
}

#[test]
fn dnat_for_a_floating_ip_and_icmp_echo_by_identifier() {
    let ct = table();
    let fixed = Ipv4Addr::new(10, 1, 0, 11);
    let nat = Nat::Dst {
        addrs: (fixed, fixed),
        ports: None,
    };
    let ping = PacketInfo {
        tcp_flags: 0,
        icmp_type: 8,
    };
    let pong = PacketInfo {
        tcp_flags: 0,
        icmp_type: 0,
    };
    let a = t(ipproto::ICMP, [198, 51, 100, 1], 77, [203, 0, 113, 101], 0);
    let v = ct.track(a, ping, true, Some(nat), 0).unwrap();
    assert_eq!(v.translated.dst, fixed);
    assert_eq!(v.state, cs::TRK | cs::NEW | cs::DNAT);
    let r = ct
        .track(v.translated.reverse(), pong, true, None, 1)
        .unwrap();
    assert_eq!(
        r.translated.src,
        Ipv4Addr::new(203, 0, 113, 101),
        "reply leaves from the floating IP"
    );
    // An echo reply nobody asked for is invalid.
    let stray = t(ipproto::ICMP, [198, 51, 100, 1], 99, [203, 0, 113, 101], 0);
    assert_eq!(
        ct.track(stray, pong, true, None, 2).unwrap().state,
        cs::TRK | cs::INV
    );
}

#[test]
fn nat_port_search_is_bounded_and_exhaustion_is_counted() {
    let ct = table();
    let ext = Ipv4Addr::new(203, 0, 113, 10);
    let nat = Nat::Src {
        addrs: (ext, ext),
        ports: Some((2000, 2003)),
    };
    let mut ok = 0;
    let mut exhausted = 0;
    for i in 0..10u8 {
        let a = t(
            ipproto::UDP,
            [10, 1, 0, 20 + i],
            5000,
            [198, 51, 100, 1],
            53,
        );
        match ct.track(a, UDP, true, Some(nat), 0) {
            Ok(v) => {
                assert!((2000..=2003).contains(&v.translated.sport));
                ok += 1;
            }
            Err(DropReason::NatPortExhausted) => exhausted += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!((ok, exhausted), (4, 6));
    assert_eq!(
        ct.counters
            .nat_port_exhausted
            .load(std::sync::atomic::Ordering::Relaxed),
        6
    );
    assert!(ct.stats().nat_attempts <= 10 * 128);
    assert_eq!(ct.stats().nat_port_exhausted, 6);
}

#[test]
fn limits_refuse_new_connections_but_established_ones_keep_flowing() {
    let mut zones = HashMap::new();
    zones.insert(7u16, 1usize);
    let ct = ConnTable::new(
        Limits {
            max_conns: 3,
            zone_max: zones,
            ..Default::default()
        },
        Timeouts::default(),
    );
    let flows: Vec<Tuple> = (0..3u8)
        .map(|i| t(ipproto::UDP, [10, 0, 0, i], 1000, [10, 0, 1, 1], 53))
        .collect();
    for f in &flows {
        ct.track(*f, UDP, true, None, 0).unwrap();
    }
    let extra = t(ipproto::UDP, [10, 0, 0, 9], 1000, [10, 0, 1, 1], 53);
    assert_eq!(
        ct.track(extra, UDP, true, None, 0),
        Err(DropReason::CtTableFull)
    );
    for f in &flows {
        assert!(ct.track(f.reverse(), UDP, true, None, 1).unwrap().state & cs::EST != 0);
    }
    // Zone 7 allows one.
    let ct = ConnTable::new(
        Limits {
            max_conns: 100,
            zone_max: [(7u16, 1usize)].into(),
            ..Default::default()
        },
        Timeouts::default(),
    );
    let z = |i: u8| Tuple {
        zone: 7,
        ..t(ipproto::UDP, [10, 0, 0, i], 1000, [10, 0, 1, 1], 53)
    };
    ct.track(z(1), UDP, true, None, 0).unwrap();
    assert_eq!(
        ct.track(z(2), UDP, true, None, 0),
        Err(DropReason::CtTableFull)
    );
    ct.track(
        t(ipproto::UDP, [10, 0, 0, 2], 1000, [10, 0, 1, 1], 53),
        UDP,
        true,
        None,
        0,
    )
    .unwrap();
}

#[test]
fn expiry_is_incremental_and_follows_protocol_timeouts() {
    let ct = table();
    for i in 0..200u16 {
        ct.track(
            t(ipproto::UDP, [10, 0, 0, 1], 1000 + i, [10, 0, 1, 1], 53),
            UDP,
            true,
            None,
            0,
        )
        .unwrap();
    }
    let a = t(ipproto::UDP, [10, 9, 9, 9], 1, [10, 0, 1, 1], 53);
    ct.track(a, UDP, true, None, 0).unwrap();
    ct.track(a.reverse(), UDP, true, None, 10 * SEC).unwrap(); // replied: 120 s stream timeout
                                                               // Nothing is due before 30 s.
    let removed: usize = (0..64).map(|_| ct.expire(0, 29 * SEC, 16)).sum();
    assert_eq!(removed, 0);
    // Each call looks at one shard and at most `budget` entries.
    assert!(ct.expire(0, 31 * SEC, 2) <= 2);
    let mut total = 0;
    for _ in 0..64 * 20 {
        total += ct.expire(0, 31 * SEC, 16);
    }
    assert!(total >= 190, "{total}");
    assert_eq!(ct.len(), 1, "the replied flow lives on");
    // Lookups never return expired connections even before `expire` runs.
    assert_eq!(
        ct.track(a, UDP, false, None, 200 * SEC).unwrap().state,
        cs::TRK | cs::NEW
    );
}

#[derive(Clone, Debug)]
enum CtOp {
    Track {
        flow: u8,
        reverse: bool,
        flags: u16,
        commit: bool,
        nat: u8,
    },
    Expire {
        advance: u64,
    },
    Flush,
}

fn arb_op() -> impl Strategy<Value = CtOp> {
    prop_oneof![
        8 => (0u8..12, any::<bool>(), prop_oneof![Just(SYN), Just(SYN | ACK), Just(ACK), Just(FIN | ACK), Just(RST), Just(0u16), any::<u16>()], any::<bool>(), 0u8..3)
            .prop_map(|(flow, reverse, flags, commit, nat)| CtOp::Track { flow, reverse, flags, commit, nat }),
        1 => (0u64..200).prop_map(|advance| CtOp::Expire { advance }),
        1 => Just(CtOp::Flush),
    ]
}

fn flow(i: u8) -> Tuple {
    let proto = [ipproto::TCP, ipproto::UDP, ipproto::ICMP][(i % 3) as usize];
    let dport = if proto == ipproto::ICMP { 0 } else { 80 };
    t(
        proto,
        [10, 0, 0, i / 3],
        1000 + (i / 3) as u16,
        [198, 51, 100, 1],
        dport,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn nat_round_trips_restore_the_original_and_external_tuples_are_unique(
        srcs in proptest::collection::vec((0u8..8, 1000u16..1004), 1..40),
    ) {
        let ct = table();
        let ext = Ipv4Addr::new(203, 0, 113, 10);
        let nat = Nat::Src { addrs: (ext, ext), ports: Some((1000, 1063)) };
        for (h, port) in srcs {
            let a = t(ipproto::UDP, [10, 1, 0, h], port, [198, 51, 100, 1], 53);
            let v = ct.track(a, UDP, true, Some(nat), 0).expect("64 ports suffice");
            let back = ct.track(v.translated.reverse(), UDP, true, None, 1).unwrap();
            prop_assert_eq!(back.translated, a.reverse(), "the reply is translated back to the inside host");
        }
        let conns = ct.dump(None, None);
        let ext_tuples: HashSet<Tuple> = conns.iter().map(|c| c.reply).collect();
        prop_assert_eq!(ext_tuples.len(), conns.len(), "no two connections share an external tuple");
    }

    #[test]
    fn random_sequences_keep_the_table_consistent(ops in proptest::collection::vec(arb_op(), 1..200)) {
        let ct = table();
        let ext = Ipv4Addr::new(203, 0, 113, 10);
        let mut now = 0u64;
        for op in ops {
            match op {
                CtOp::Track { flow: f, reverse, flags, commit, nat } => {
                    let mut tu = flow(f);
                    if reverse { tu = tu.reverse(); }
                    let info = PacketInfo { tcp_flags: flags & 0x1ff, icmp_type: if reverse { 0 } else { 8 } };
                    let nat = match nat { 1 => Some(Nat::Src { addrs: (ext, ext), ports: None }), 2 => Some(Nat::Dst { addrs: (ext, ext), ports: None }), _ => None };
                    let _ = ct.track(tu, info, commit, nat, now);
                }
                CtOp::Expire { advance } => { now += advance * SEC; for _ in 0..70 { ct.expire(0, now, 8); } }
                CtOp::Flush => { ct.flush(None); }
            }
            now += 1;
            let conns = ct.dump(None, None);
            prop_assert_eq!(conns.len(), ct.len());
            for c in &conns {
                // Both directions find the same connection.
                let (o, d) = ct.related(&c.orig).expect("orig indexed");
                prop_assert_eq!((&o, d), (c, Dir::Orig));
                let (r, d) = ct.related(&c.reply).expect("reply indexed");
                prop_assert_eq!((&r, d), (c, Dir::Reply));
            }
        }
    }
}

#[test]
fn threads_hammering_both_directions_lose_and_duplicate_nothing() {
    let ct = Arc::new(table());
    const FLOWS: u16 = 500;
    const ROUNDS: u64 = 20;
    const THREADS: usize = 4;
    let handles: Vec<_> = (0..THREADS)
        .map(|k| {
            let ct = ct.clone();
            std::thread::spawn(move || {
                let mut sent = 0u64;
                for round in 0..ROUNDS {
                    for i in 0..FLOWS {
                        let a = t(
                            ipproto::UDP,
                            [10, 0, (i >> 8) as u8, i as u8],
                            2000,
                            [10, 9, 0, 1],
                            53,
                        );
                        // Even threads send the original direction, odd ones the reply.
                        let tu = if k % 2 == 0 { a } else { a.reverse() };
                        ct.track(tu, UDP, true, None, round).expect("room");
                        sent += 1;
                    }
                }
                sent
            })
        })
        .collect();
    let sent: u64 = handles.into_iter().map(|h| h.join().expect("thread")).sum();
    let conns = ct.dump(None, None);
    assert_eq!(
        conns.len(),
        FLOWS as usize,
        "one connection per flow, whichever side came first"
    );
    let counted: u64 = conns.iter().map(|c| c.packets[0] + c.packets[1]).sum();
    assert_eq!(counted, sent, "every packet accounted to its connection");
    assert!(conns.iter().all(|c| c.seen_reply));
}

/// The connections of a table as the control plane lists them, deadlines
/// aside, in a stable order.
fn listing(ct: &ConnTable) -> Vec<String> {
    let mut v: Vec<String> = ct
        .dump(None, None)
        .iter()
        .map(|c| {
            format!(
                "{:?} {:?} {:?} reply={} snat={} dnat={} packets={:?}",
                c.orig, c.reply, c.tcp, c.seen_reply, c.snat, c.dnat, c.packets
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_steady_verdict_repeated_moves_the_connection_as_tracking_each_packet_would() {
    let ext = Ipv4Addr::new(203, 0, 113, 10);
    let nat = Some(Nat::Src {
        addrs: (ext, ext),
        ports: None,
    });
    let udp = t(ipproto::UDP, [10, 1, 0, 13], 4000, [198, 51, 100, 7], 53);
    let web = t(ipproto::TCP, [10, 1, 0, 13], 4001, [198, 51, 100, 7], 80);
    let (each, runs) = (table(), table());
    for ct in [&each, &runs] {
        let syn = ct.track(web, tcp(SYN), true, nat, SEC).expect("syn");
        assert_eq!(syn.repeat, None, "a first packet changes what follows");
        let back = ct.track(syn.translated.reverse(), tcp(SYN | ACK), true, nat, SEC);
        assert_eq!(back.expect("syn-ack").repeat, None, "the state moves");
        let first = ct.track(udp, UDP, true, nat, SEC).expect("udp");
        assert_eq!(first.repeat, None, "created: the next one finds it");
    }
    // Established TCP data and UDP datagrams, five of each: tracked one by
    // one in `each`, tracked once then repeated four times in `runs`.
    for (tuple, info) in [(web, tcp(ACK)), (udp, UDP)] {
        // The first ACK establishes the connection: not steady.
        for ct in [&each, &runs] {
            let v = ct.track(tuple, info, true, nat, 2 * SEC).expect("first");
            assert_eq!(v.repeat.is_some(), info.tcp_flags == 0, "{tuple:?}");
        }
        let mut last = None;
        for _ in 0..5 {
            last = Some(each.track(tuple, info, true, nat, 2 * SEC).expect("each"));
        }
        let v = runs.track(tuple, info, true, nat, 2 * SEC).expect("runs");
        assert_eq!(Some(v), last, "the verdict repeats");
        let r = v.repeat.expect("a steady verdict");
        runs.repeat(&r, 4, 2 * SEC);
    }
    assert_eq!(listing(&each), listing(&runs));
    // A FIN changes the state: not steady.
    let fin = each
        .track(web, tcp(FIN | ACK), true, nat, 3 * SEC)
        .expect("fin");
    assert_eq!(fin.repeat, None);
    // Both expire at the same time (the deadline moved too).
    assert_eq!(
        each.expire(0, 3 * SEC + 31 * SEC, usize::MAX),
        runs.expire(0, 3 * SEC + 31 * SEC, usize::MAX)
    );
}

/// A table whose shards `n` workers own, with the default (symmetric) key.
fn owned(n: usize) -> ConnTable {
    table().with_owners(n, pipeline::rss::Rss::default())
}

/// With several workers, a source NAT port is chosen so that the reply
/// reaches the worker that owns the connection: no connection crosses
/// workers, every reply finds its connection, and the ports stay in the
/// rule's range and unique.
#[test]
fn snat_ports_steer_replies_to_the_owning_worker() {
    for workers in [2usize, 3, 4] {
        let ct = owned(workers);
        let ext = Ipv4Addr::new(203, 0, 113, 10);
        let nat = Nat::Src {
            addrs: (ext, ext),
            ports: None,
        };
        let mut taken = HashSet::new();
        for i in 0..2000u16 {
            let proto = if i % 2 == 0 {
                ipproto::TCP
            } else {
                ipproto::UDP
            };
            let info = if proto == ipproto::TCP { tcp(SYN) } else { UDP };
            let a = t(
                proto,
                [10, 1, (i >> 8) as u8, i as u8],
                40000 + i % 7,
                [198, 51, 100, 1],
                80,
            );
            let v = ct.track(a, info, true, Some(nat), 0).unwrap();
            let reply = v.translated.reverse();
            assert_eq!(
                ct.owner_of(&reply),
                ct.owner_of(&a),
                "{workers} workers: the reply of {a:?} ({reply:?}) reaches its owner"
            );
            assert!(
                taken.insert((proto, reply.dport)),
                "port {} given twice",
                reply.dport
            );
            assert!(reply.dport >= 1024);
            let info = if proto == ipproto::TCP {
                tcp(SYN | ACK)
            } else {
                UDP
            };
            let r = ct.track(reply, info, false, None, 1).unwrap();
            assert_eq!((r.dir, r.translated), (Some(Dir::Reply), a.reverse()));
        }
        let s = ct.stats();
        assert_eq!(
            (s.connections, s.cross_worker, s.cross_worker_packets),
            (2000, 0, 0)
        );
    }
}

/// What cannot be steered still works and is counted: a destination NAT's
/// reply comes from the inside address, whose hash the table cannot
/// choose; its connection is found from the other worker, and the
/// crossing is counted per connection and per packet. (With the symmetric
/// key a 1:1 address translation crosses or not by its address pair
/// alone, so the pairs vary.)
#[test]
fn unsteerable_replies_cross_workers_counted() {
    let ct = owned(2);
    let (mut crossing, mut replies) = (0, 0);
    for k in 0..64u8 {
        let fixed = Ipv4Addr::new(10, 1, 0, 11 + k);
        let nat = Nat::Dst {
            addrs: (fixed, fixed),
            ports: None,
        };
        let a = t(
            ipproto::UDP,
            [198, 51, 100, 1],
            3000,
            [203, 0, 113, 100 + k],
            53,
        );
        let v = ct.track(a, UDP, true, Some(nat), 0).unwrap();
        let reply = v.translated.reverse();
        let crosses = ct.owner_of(&reply) != ct.owner_of(&a);
        crossing += crosses as u64;
        for n in 0..3 {
            let r = ct.track(reply, UDP, false, None, 1 + n).unwrap();
            assert_eq!(r.translated, a.reverse());
            replies += crosses as u64;
        }
    }
    assert!(crossing > 0 && crossing < 64, "{crossing} of 64 cross");
    let s = ct.stats();
    assert_eq!(
        (s.cross_worker, s.cross_worker_packets),
        (crossing, replies)
    );
}

/// Without NAT, the symmetric key keeps both directions on one worker.
#[test]
fn connections_without_nat_stay_on_one_worker() {
    let ct = owned(2);
    for i in 0..500u16 {
        let a = t(ipproto::TCP, [10, 1, 0, 11], 30000 + i, [10, 2, 0, 14], 22);
        assert_eq!(ct.owner_of(&a), ct.owner_of(&a.reverse()));
        ct.track(a, tcp(SYN), true, None, 0).unwrap();
        ct.track(a.reverse(), tcp(SYN | ACK), true, None, 0)
            .unwrap();
    }
    assert_eq!(ct.stats().cross_worker_packets, 0);
}

/// Each worker expires its own shards: between them, every expired
/// connection goes, and one worker alone leaves the other's.
#[test]
fn each_worker_expires_the_shards_it_owns() {
    let ct = owned(2);
    let mut mine = 0;
    for i in 0..400u16 {
        let a = t(ipproto::UDP, [10, 1, 0, 11], 20000 + i, [192, 0, 2, 1], 53);
        mine += (ct.owner_of(&a) == 0) as usize;
        ct.track(a, UDP, true, None, 0).unwrap();
    }
    let later = 31 * SEC;
    let by_0: usize = (0..64).map(|_| ct.expire(0, later, usize::MAX)).sum();
    assert_eq!(by_0, mine, "worker 0 expires what it owns");
    let by_1: usize = (0..64).map(|_| ct.expire(1, later, usize::MAX)).sum();
    assert_eq!(by_1, 400 - mine);
    assert!(ct.is_empty());
}

/// Steering costs no port space: one inside host sending from every port
/// to one server through one external address (the whole range in use)
/// gets every connection, each steered to its owner, with two and four
/// workers as with one.
#[test]
fn steering_fills_the_whole_port_range() {
    for workers in [1usize, 2, 4] {
        let ct = table().with_owners(workers, pipeline::rss::Rss::default());
        let ext = Ipv4Addr::new(203, 0, 113, 10);
        let nat = Nat::Src {
            addrs: (ext, ext),
            ports: None,
        };
        for sport in 1024..=u16::MAX {
            let a = t(ipproto::UDP, [10, 1, 0, 13], sport, [198, 51, 100, 1], 53);
            let v = ct
                .track(a, UDP, true, Some(nat), 0)
                .unwrap_or_else(|e| panic!("{workers} workers, port {sport}: {e:?}"));
            assert_eq!(ct.owner_of(&v.translated.reverse()), ct.owner_of(&a));
        }
        let s = ct.stats();
        assert_eq!(
            (s.connections, s.cross_worker),
            (64_512, 0),
            "{workers} workers"
        );
    }
}
