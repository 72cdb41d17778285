//! A bounded soak: network1 of the spec's topology (the SNAT host) under a
//! mix of traffic for `SOAK_SECONDS` (default 12): long-lived SNAT
//! connections in both directions, SNAT connection churn far beyond the
//! conntrack limit, MAC churn far beyond the MAC table limit, while flows
//! and topologies are updated live. Asserts: every frame offered was
//! received and is accounted for; every packet of the long-lived
//! connections arrived, translated, though the table stayed full; the
//! tables stayed within their limits; resident memory stayed flat after
//! warm-up.

use devtools::traffic::{self, FrameSize, TrafficScenario};
use pipeline::key::{Field, FlowKey};
use pipeline::packet::synth::frame_from_key;
use pipeline::wire::ethertype;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vswitch::config::DaemonConfig;
use vswitch::daemon::Daemon;

const LONG_LIVED: usize = 50;
const MAX_CONNS: usize = 4096;
const MAC_LIMIT: usize = 1024;

fn rss_mb() -> f64 {
    devtools::replay::rss_mb()
}

fn config(dir: &std::path::Path) -> DaemonConfig {
    let text = format!(
        "host = \"network1\"\ntopology = \"unused\"\nsocket = \"{}\"\nlog_level = \"warn\"\nidle_sleep_us = 20\n\
         [[ports]]\nname = \"eth1\"\nbackend = \"ring\"\ndepth = 65536\n\
         [[ports]]\nname = \"eth2\"\nbackend = \"ring\"\ndepth = 65536\n\
         [limits]\nmax_connections = {MAX_CONNS}\nmac_table_entries = {MAC_LIMIT}\nflow_cache_entries = 8192\n",
        dir.join("unused.sock").display()
    );
    toml::from_str(&text).expect("config")
}

/// A frame on the trunk from a MAC nobody knows, in net1's VLAN.
fn mac_churn(i: u64) -> Vec<u8> {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::IPV4 as u64);
    k.set(Field::DlSrc, 0x02_5a_00_00_00_00 | (i & 0xff_ffff));
    k.set(Field::DlDst, 0xff_ff_ff_ff_ff_ff);
    k.set(Field::VlanTci, (101 | pipeline::key::VLAN_CFI) as u64);
    k.set(Field::NwProto, 17);
    k.set(Field::NwSrc, 0x0a01_0000 | (i & 0xffff));
    k.set(Field::NwDst, 0x0a01_00ff);
    k.set(Field::NwTtl, 64);
    k.set(Field::TpSrc, 9);
    k.set(Field::TpDst, 9);
    frame_from_key(&k, 18)
}

#[test]
fn network1_under_churn_and_live_updates_keeps_its_connections_and_its_memory() {
    let secs: f64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12.0);
    let dir = std::env::temp_dir().join(format!("vswitch-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let t = devtools::spec::topology().expect("topology");
    let d = Daemon::start_with(&config(&dir), t.clone()).expect("daemon");
    let eth1 = d.ring("eth1").expect("eth1");
    let eth2 = d.ring("eth2").expect("eth2");

    // The long-lived connections: egress, the upstream and vm3 resolved,
    // a first reply each (so they are replied, as established traffic is).
    let reply = traffic::generate(
        &t,
        TrafficScenario::SnatReply,
        LONG_LIVED,
        FrameSize::Fixed(64),
        LONG_LIVED,
    )
    .expect("replies");
    for (port, frames) in &reply.warmup {
        d.process_local(port, frames).expect("warm-up");
    }
    d.process_local("eth2", &reply.frames).expect("replies");
    let egress = traffic::generate(
        &t,
        TrafficScenario::SnatEgress,
        LONG_LIVED,
        FrameSize::Fixed(64),
        LONG_LIVED,
    )
    .expect("egress");
    // Churn: fresh connections from the LONG_LIVED-th flow on.
    let churn = traffic::generate(
        &t,
        TrafficScenario::SnatEgress,
        200_000,
        FrameSize::Fixed(64),
        200_000,
    )
    .expect("churn");
    let churn = &churn.frames[LONG_LIVED..];

    // Live updates: a flow added and deleted on br-int, the floating IP
    // toggled, over and over.
    let stop = Arc::new(AtomicBool::new(false));
    let updates = Arc::new(AtomicU64::new(0));
    let updater = {
        let shared = d.shared.clone();
        let stop = stop.clone();
        let updates = updates.clone();
        let mut without = t.clone();
        for f in &mut without.floating_ips {
            f.port = None;
        }
        let texts = [
            toml::to_string(&without).expect("toml"),
            toml::to_string(&t).expect("toml"),
        ];
        std::thread::spawn(move || {
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let req = match i % 3 {
                    0 => vswitch::control::Request::AddFlow {
                        bridge: "br-int".into(),
                        flow: "table=0,priority=1,dl_src=02:00:00:00:99:99 actions=drop".into(),
                    },
                    1 => vswitch::control::Request::DelFlows {
                        bridge: "br-int".into(),
                        matching: Some("table=0,dl_src=02:00:00:00:99:99".into()),
                        strict: false,
                    },
                    _ => vswitch::control::Request::TopologyLoad {
                        toml: texts[(i / 3) % 2].clone(),
                    },
                };
                vswitch::control::handle(&shared, &req).expect("update applies");
                updates.fetch_add(1, Ordering::Relaxed);
                i += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    let start = Instant::now();
    let mut offered = 0u64;
    let mut long_sent = [0u64; 2];
    let mut long_got = [0u64; 2];
    let mut rss_warm = None;
    let (mut ci, mut mi) = (0usize, 0u64);
    // The network answers the snat namespace's ARP requests, as the
    // upstream router and vm3's kernel would (entries go stale every
    // 30 s and are re-confirmed while in use).
    let upstream_arp = reply.warmup[1].1[0].clone();
    let vm3_arp = reply.warmup[4].1[0].clone();
    let upstream_ip = devtools::spec::external_subnet(&t)
        .expect("external subnet")
        .gateway_ip
        .to_bits();
    let vm3_ip = t.port("vm3").expect("vm3").ip.to_bits();
    let mut arp_answered = 0u64;
    // Answers wait here until their port's ring takes them (the rings run
    // full: the worker is saturated).
    let mut answers: std::collections::VecDeque<(bool, Vec<u8>)> = Default::default();
    let count = |frames: Vec<Vec<u8>>,
                 got: &mut [u64; 2],
                 answers: &mut std::collections::VecDeque<(bool, Vec<u8>)>| {
        for f in frames {
            let Ok(p) = pipeline::packet::parse(&f, 0) else {
                continue;
            };
            let k = p.key;
            if k.dl_type() == ethertype::ARP && k.nw_proto() == 1 {
                if k.nw_dst() == upstream_ip {
                    answers.push_back((false, upstream_arp.clone()));
                } else if k.nw_dst() == vm3_ip {
                    answers.push_back((true, vm3_arp.clone()));
                }
                continue;
            }
            let long = |port: u16| (1024..1024 + LONG_LIVED as u64).contains(&(port as u64));
            // Egress of a long-lived flow leaves eth2 translated.
            if k.nw_src() == u32::from_be_bytes([203, 0, 113, 10])
                && long(k.tp_src() as u16)
                && k.tp_dst() == 53
            {
                got[0] += 1;
            }
            // Its reply leaves eth1 for vm3, translated back.
            if k.nw_dst() == u32::from_be_bytes([10, 1, 0, 13])
                && k.tp_src() == 53
                && long(k.tp_dst() as u16)
            {
                got[1] += 1;
            }
        }
    };
    while start.elapsed().as_secs_f64() < secs {
        while let Some((on_eth1, frame)) = answers.pop_front() {
            let port = if on_eth1 { &eth1 } else { &eth2 };
            if !port.inject(frame.clone()) {
                answers.push_front((on_eth1, frame));
                break;
            }
            arp_answered += 1;
        }
        // One round: the long-lived flows both ways, 64 new connections,
        // 64 new MACs.
        for f in &egress.frames {
            if eth1.inject(f.clone()) {
                offered += 1;
                long_sent[0] += 1;
            }
        }
        for f in &reply.frames {
            if eth2.inject(f.clone()) {
                offered += 1;
                long_sent[1] += 1;
            }
        }
        for _ in 0..64 {
            if eth1.inject(churn[ci % churn.len()].clone()) {
                offered += 1;
            }
            ci += 1;
            if eth1.inject(mac_churn(mi)) {
                offered += 1;
            }
            mi += 1;
        }
        std::thread::sleep(Duration::from_millis(2));
        count(eth1.collect(), &mut long_got, &mut answers);
        count(eth2.collect(), &mut long_got, &mut answers);
        if rss_warm.is_none() && start.elapsed().as_secs_f64() > secs / 4.0 {
            rss_warm = Some(rss_mb());
        }
    }
    stop.store(true, Ordering::Relaxed);
    updater.join().expect("updater");
    // Drain.
    let t0 = Instant::now();
    while (eth1.pending() > 0 || eth2.pending() > 0) && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    count(eth1.collect(), &mut long_got, &mut answers);
    count(eth2.collect(), &mut long_got, &mut answers);
    let rss_end = rss_mb();

    let r = d.shared.reports[0].lock().expect("report").clone();
    let sw = d.shared.switch();
    let ct = sw.conntrack.stats();
    let macs: Vec<usize> = sw.bridges.iter().map(|b| b.macs.len()).collect();
    let applied = updates.load(Ordering::Relaxed);
    eprintln!(
        "soak {secs} s: offered {offered}, received {}, long-lived {long_sent:?} sent / {long_got:?} arrived, \
         {ci} churned connections, {mi} churned MACs, {applied} live updates, {arp_answered} ARP requests answered, conntrack {ct:?}, \
         MAC tables {macs:?}, drops {:?}, RSS {:.1} MiB after warm-up, {rss_end:.1} MiB at the end",
        r.rx_packets,
        r.drops,
        rss_warm.unwrap_or(0.0)
    );
    d.stop();
    let _ = std::fs::remove_dir_all(&dir);

    // Every frame offered was received (nothing lost on the way in).
    assert_eq!(r.rx_packets, offered + arp_answered);
    // The long-lived connections kept working through the pressure.
    assert_eq!(long_got, long_sent, "long-lived packets sent vs arrived");
    assert!(long_sent[1] >= 1000, "too short a soak: {long_sent:?}");
    // The churn hit the limits, and they held.
    assert!(ct.table_full > 0, "{ct:?}");
    assert!(sw.conntrack.len() <= MAX_CONNS);
    assert!(macs.iter().all(|&m| m <= MAC_LIMIT), "{macs:?}");
    assert!(macs.iter().any(|&m| m == MAC_LIMIT), "{macs:?}");
    assert!(applied >= 10, "{applied} updates");
    // Drops are only the counted reasons the churn explains: new
    // connections refused by the full table, and the MAC churn's
    // broadcasts reaching the snat namespace's sg- port (not its address).
    for (reason, _) in &r.drops {
        assert!(
            ["ct_table_full", "not_for_us"].contains(&reason.as_ref()),
            "unexpected drop reason {reason}: {:?}",
            r.drops
        );
    }
    // Flat memory after warm-up.
    let growth = rss_end - rss_warm.unwrap_or(rss_end);
    assert!(
        growth < 24.0,
        "resident memory grew {growth:.1} MiB after warm-up"
    );
}
