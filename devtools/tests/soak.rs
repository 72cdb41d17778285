//! A bounded soak: network1 of the spec's topology (the SNAT host) under a
//! mix of traffic for `SOAK_SECONDS` (default 12): long-lived SNAT
//! connections in both directions, SNAT connection churn far beyond the
//! conntrack limit, MAC churn far beyond the MAC table limit, while flows
//! and topologies are updated live. Asserts: every frame offered was
//! received and is accounted for; every packet of the long-lived
//! connections arrived, translated, though the table stayed full; the
//! tables stayed within their limits; resident memory stayed flat after
//! warm-up.
#![deny(unsafe_code)]

use devtools::traffic::{self, FrameSize, TrafficScenario};
use pipeline::key::{Field, FlowKey};
use pipeline::packet::synth::frame_from_key;
use pipeline::wire::ethertype;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use topology::Topology;
use vswitch::config::DaemonConfig;
use vswitch::daemon::{Daemon, Shared};
use vswitch::io::ring::RingHandle;

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

/// The soak's frames: the long-lived SNAT connections (egress on eth1,
/// replies on eth2), the churn (fresh connections), and the network's
/// answers to the snat namespace's ARP requests.
struct SoakTraffic {
    egress: Vec<Vec<u8>>,
    reply: Vec<Vec<u8>>,
    /// Fresh connections, from the LONG_LIVED-th flow on.
    churn: Vec<Vec<u8>>,
    /// The upstream router's ARP answer (on eth2) and vm3's (on eth1),
    /// with the addresses they answer for.
    upstream_arp: Vec<u8>,
    upstream_ip: u32,
    vm3_arp: Vec<u8>,
    vm3_ip: u32,
}

impl SoakTraffic {
    /// The frames, and network1 (`d`) brought to the long-lived
    /// connections' steady state: egress, the upstream and vm3 resolved,
    /// a first reply each (so they are replied, as established traffic is).
    fn warm_up(d: &Daemon, t: &Topology) -> SoakTraffic {
        let reply = traffic::generate(
            t,
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
            t,
            TrafficScenario::SnatEgress,
            LONG_LIVED,
            FrameSize::Fixed(64),
            LONG_LIVED,
        )
        .expect("egress");
        let churn = traffic::generate(
            t,
            TrafficScenario::SnatEgress,
            200_000,
            FrameSize::Fixed(64),
            200_000,
        )
        .expect("churn");
        let mut churn = churn.frames;
        churn.drain(..LONG_LIVED);
        SoakTraffic {
            egress: egress.frames,
            churn,
            upstream_arp: reply.warmup[1].1[0].clone(),
            upstream_ip: devtools::spec::external_subnet(t)
                .expect("external subnet")
                .gateway_ip
                .to_bits(),
            vm3_arp: reply.warmup[4].1[0].clone(),
            vm3_ip: t.port("vm3").expect("vm3").ip.to_bits(),
            reply: reply.frames,
        }
    }
}

/// Live updates until `stop`: a flow added and deleted on br-int, the
/// floating IP toggled, over and over; `updates` counts them.
fn start_updater(
    shared: Arc<Shared>,
    t: &Topology,
    stop: Arc<AtomicBool>,
    updates: Arc<AtomicU64>,
) -> JoinHandle<()> {
    let mut without = t.clone();
    for f in &mut without.floating_ips {
        f.port = None;
    }
    let texts = [
        toml::to_string(&without).expect("toml"),
        toml::to_string(t).expect("toml"),
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
                    dry_run: false,
                },
            };
            vswitch::control::handle(&shared, &req).expect("update applies");
            updates.fetch_add(1, Ordering::Relaxed);
            i += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

/// What left network1: the long-lived packets that arrived translated,
/// and the ARP answers owed to the requests it sent.
#[derive(Default)]
struct Tally {
    /// Long-lived egress out of eth2, long-lived replies out of eth1.
    long_got: [u64; 2],
    /// Answers wait here until their port's ring takes them (the rings
    /// run full: the worker is saturated); `true` for eth1.
    answers: VecDeque<(bool, Vec<u8>)>,
}

impl Tally {
    /// Counts `frames` that left a port. The network answers the snat
    /// namespace's ARP requests, as the upstream router and vm3's kernel
    /// would (entries go stale every 30 s and are re-confirmed while in
    /// use).
    fn count(&mut self, frames: Vec<Vec<u8>>, tr: &SoakTraffic) {
        for f in frames {
            let Ok(p) = pipeline::packet::parse(&f, 0) else {
                continue;
            };
            let k = p.key;
            if k.dl_type() == ethertype::ARP && k.nw_proto() == 1 {
                if k.nw_dst() == tr.upstream_ip {
                    self.answers.push_back((false, tr.upstream_arp.clone()));
                } else if k.nw_dst() == tr.vm3_ip {
                    self.answers.push_back((true, tr.vm3_arp.clone()));
                }
                continue;
            }
            let long = |port: u16| (1024..1024 + LONG_LIVED as u64).contains(&(port as u64));
            // Egress of a long-lived flow leaves eth2 translated.
            if k.nw_src() == u32::from_be_bytes([203, 0, 113, 10])
                && long(k.tp_src())
                && k.tp_dst() == 53
            {
                self.long_got[0] += 1;
            }
            // Its reply leaves eth1 for vm3, translated back.
            if k.nw_dst() == u32::from_be_bytes([10, 1, 0, 13])
                && k.tp_src() == 53
                && long(k.tp_dst())
            {
                self.long_got[1] += 1;
            }
        }
    }
}

/// What the soak offered network1.
#[derive(Default)]
struct Offered {
    /// Frames the rings took.
    frames: u64,
    /// Long-lived egress and replies among them.
    long_sent: [u64; 2],
    arp_answered: u64,
    churned_connections: usize,
    churned_macs: u64,
    /// Resident memory once warm (a quarter of the way in).
    rss_warm: Option<f64>,
}

/// Offers traffic in rounds for `secs` seconds: the ARP answers owed,
/// the long-lived flows both ways, 64 new connections and 64 new MACs;
/// counts what left after each round.
fn run_rounds(
    eth1: &RingHandle,
    eth2: &RingHandle,
    tr: &SoakTraffic,
    secs: f64,
    tally: &mut Tally,
) -> Offered {
    let start = Instant::now();
    let mut o = Offered::default();
    while start.elapsed().as_secs_f64() < secs {
        while let Some((on_eth1, frame)) = tally.answers.pop_front() {
            let port = if on_eth1 { eth1 } else { eth2 };
            if !port.inject(frame.clone()) {
                tally.answers.push_front((on_eth1, frame));
                break;
            }
            o.arp_answered += 1;
        }
        for f in &tr.egress {
            if eth1.inject(f.clone()) {
                o.frames += 1;
                o.long_sent[0] += 1;
            }
        }
        for f in &tr.reply {
            if eth2.inject(f.clone()) {
                o.frames += 1;
                o.long_sent[1] += 1;
            }
        }
        for _ in 0..64 {
            let churn = &tr.churn[o.churned_connections % tr.churn.len()];
            if eth1.inject(churn.clone()) {
                o.frames += 1;
            }
            o.churned_connections += 1;
            if eth1.inject(mac_churn(o.churned_macs)) {
                o.frames += 1;
            }
            o.churned_macs += 1;
        }
        std::thread::sleep(Duration::from_millis(2));
        tally.count(eth1.collect(), tr);
        tally.count(eth2.collect(), tr);
        if o.rss_warm.is_none() && start.elapsed().as_secs_f64() > secs / 4.0 {
            o.rss_warm = Some(rss_mb());
        }
    }
    o
}

/// Waits (up to 10 s) for the rings to empty, then counts what left.
fn drain(eth1: &RingHandle, eth2: &RingHandle, tr: &SoakTraffic, tally: &mut Tally) {
    let t0 = Instant::now();
    while (eth1.pending() > 0 || eth2.pending() > 0) && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    tally.count(eth1.collect(), tr);
    tally.count(eth2.collect(), tr);
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
    let tr = SoakTraffic::warm_up(&d, &t);

    let stop = Arc::new(AtomicBool::new(false));
    let updates = Arc::new(AtomicU64::new(0));
    let updater = start_updater(d.shared.clone(), &t, stop.clone(), updates.clone());
    let mut tally = Tally::default();
    let o = run_rounds(&eth1, &eth2, &tr, secs, &mut tally);
    stop.store(true, Ordering::Relaxed);
    updater.join().expect("updater");
    drain(&eth1, &eth2, &tr, &mut tally);
    let rss_end = rss_mb();

    let r = d.shared.reports[0].lock().expect("report").clone();
    let sw = d.shared.switch();
    let ct = sw.conntrack.stats();
    let macs: Vec<usize> = sw.bridges.iter().map(|b| b.macs.len()).collect();
    let applied = updates.load(Ordering::Relaxed);
    let (offered, long_sent, long_got) = (o.frames, o.long_sent, tally.long_got);
    let (ci, mi, arp_answered) = (o.churned_connections, o.churned_macs, o.arp_answered);
    let rss_warm = o.rss_warm;
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
    assert!(macs.contains(&MAC_LIMIT), "{macs:?}");
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
