//! The pcap-replay benchmark: every scenario of the spec's §8 replayed
//! through a vswitchd host of the spec's topology, in memory and through
//! DPDK (net_pcap in, net_null out, no hugepages; with `--features dpdk`),
//! plus how throughput and memory grow with distinct flows, installed
//! rules, live connections and workers, and the time to apply a topology
//! update while traffic runs.
//!
//!     cargo bench -p vswitch --features dpdk --bench replay
//!     cargo bench -p vswitch --bench replay -- --quick      # a smaller run
//!
//! With `--io dpdk`, as root, Open vSwitch with DPDK and DPDK's own testpmd
//! (the I/O floor) run on each scenario's capture right after ours, on the
//! same core; the tables compare rates and the wall-clock cost per packet
//! above the floor.
//!
//! Prints a progress line per point and a table at the end; writes
//! `target/replay/results.json` and SVG plots beside it. Each point runs
//! in a child process of this binary (`--point JSON`): its own address
//! space for the memory figures, its own DPDK EAL.

#![deny(unsafe_code)]

use devtools::replay::{self, Io, Measured, Point, ReplayError};
use devtools::traffic::{self, TrafficError};
use plotters::drawing::DrawingAreaErrorKind;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What is wrong with the command line.
#[derive(Debug, thiserror::Error)]
enum ArgsError {
    #[error("{0}: needs a value")]
    NoValue(String),
    #[error("--seconds: a number")]
    Seconds,
    #[error("--rounds: a whole number from 1")]
    Rounds,
    #[error("--io dpdk: build with --features dpdk")]
    DpdkNotBuilt,
    #[error("--io: memory or dpdk, not {0}")]
    Io(String),
    #[error(transparent)]
    Scenario(#[from] TrafficError),
    #[error("unknown argument {0} (try --help)")]
    Unknown(String),
}

/// Why a child (`--point`) measured nothing; it prints this on stderr,
/// where its parent reads it.
#[derive(Debug, thiserror::Error)]
enum ChildError {
    #[error("--point: {0}")]
    Point(#[source] serde_json::Error),
    #[error("lab topology: {0}")]
    Topology(#[source] topology::TopologyError),
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// The measurement could not be written as JSON.
    #[error("{0}")]
    Result(#[source] serde_json::Error),
}

/// Why a plot was not drawn.
#[derive(Debug, thiserror::Error)]
#[error("{0:?}")]
struct PlotError(#[from] DrawingAreaErrorKind<std::io::Error>);

/// Open vSwitch 3.1 with DPDK 22.11 on this machine kind, one PMD, 64-byte
/// frames, net_pcap -> net_null, the same Neutron flows (the fast-path
/// issue's figures): (scenario, flows) -> Mpps.
const OVS_DPDK: [(&str, usize, f64); 12] = [
    ("l2-egress", 1, 14.03),
    ("l2-egress", 65_536, 8.47),
    ("l2-ingress", 1, 14.21),
    ("l2-ingress", 65_536, 7.50),
    ("dvr-egress", 1, 12.60),
    ("dvr-egress", 65_536, 6.64),
    ("dvr-ingress", 1, 12.66),
    ("dvr-ingress", 65_536, 7.77),
    ("routed-same-host", 1, 13.71),
    ("routed-same-host", 65_536, 8.46),
    ("snat-egress", 1, 5.90),
    ("snat-egress", 65_536, 2.12),
];

struct Args {
    quick: bool,
    seconds: f64,
    ios: Vec<Io>,
    scenarios: Vec<String>,
    out: PathBuf,
    sweeps: bool,
    /// Also run Open vSwitch with DPDK on the same captures.
    ovs: bool,
    /// Rounds of the side-by-side points (`Group::rounds`).
    rounds: usize,
}

fn parse_args() -> Result<Args, ArgsError> {
    let mut a = Args {
        quick: false,
        seconds: 1.0,
        ios: if cfg!(feature = "dpdk") {
            vec![Io::Memory, Io::Dpdk]
        } else {
            vec![Io::Memory]
        },
        scenarios: traffic::ALL.iter().map(|s| s.name().to_string()).collect(),
        out: replay::default_out_dir(),
        sweeps: true,
        ovs: true,
        rounds: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        let mut val = || it.next().ok_or_else(|| ArgsError::NoValue(x.clone()));
        match x.as_str() {
            "--bench" => {}
            "--quick" => {
                a.quick = true;
                a.seconds = 0.3;
                a.rounds = 1;
            }
            "--rounds" => {
                a.rounds = val()?
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or(ArgsError::Rounds)?
            }
            "--seconds" => a.seconds = val()?.parse().map_err(|_| ArgsError::Seconds)?,
            "--io" => {
                a.ios = val()?
                    .split(',')
                    .map(|s| match s {
                        "memory" => Ok(Io::Memory),
                        "dpdk" if cfg!(feature = "dpdk") => Ok(Io::Dpdk),
                        "dpdk" => Err(ArgsError::DpdkNotBuilt),
                        o => Err(ArgsError::Io(o.to_string())),
                    })
                    .collect::<Result<_, _>>()?
            }
            "--scenarios" => {
                let v = val()?;
                for s in v.split(',') {
                    traffic::TrafficScenario::parse(s)?;
                }
                a.scenarios = v.split(',').map(String::from).collect();
            }
            "--out" => a.out = PathBuf::from(val()?),
            "--no-sweeps" => a.sweeps = false,
            "--no-ovs" => a.ovs = false,
            "--help" | "-h" => {
                println!(
                    "replay [--quick] [--seconds S] [--rounds N] [--io memory,dpdk] [--scenarios a,b] [--no-sweeps] [--no-ovs] [--out DIR]\n\
                     With --io dpdk, Open vSwitch with DPDK runs beside on the same captures when\n\
                     installed ({}; VSWITCH_BENCH_OVS overrides) and run as root; --no-ovs skips it.\n\
                     scenarios: {}",
                    devtools::ovs_dpdk::DEFAULT_BINARY,
                    traffic::ALL.map(|s| s.name()).join(", ")
                );
                std::process::exit(0);
            }
            o => return Err(ArgsError::Unknown(o.to_string())),
        }
    }
    Ok(a)
}

fn point(scenario: &str, io: Io, flows: usize, workers: usize, a: &Args) -> Point {
    Point {
        scenario: scenario.to_string(),
        io,
        flows,
        size: "64".into(),
        workers,
        extra_ports: 0,
        seconds: a.seconds,
        updates: 0,
        setup: false,
    }
}

/// A labelled group of points (one table section, one plot).
struct Group {
    name: &'static str,
    points: Vec<Point>,
    /// Rounds of the group's side-by-side points (DPDK, OVS-DPDK,
    /// testpmd): each round runs them all once, in order, so the systems'
    /// runs interleave over time; each point reports its median round.
    rounds: usize,
}

fn plan(a: &Args) -> Vec<Group> {
    let cores = core_affinity::get_core_ids().map_or(1, |c| c.len()).max(1);
    let big = if a.quick { 4_096 } else { 65_536 };
    let mut groups = vec![Group {
        name: "scenarios",
        rounds: a.rounds,
        points: a
            .scenarios
            .iter()
            .flat_map(|s| {
                a.ios
                    .iter()
                    .flat_map(move |&io| [1, big].map(|f| (s.clone(), io, f)))
            })
            .flat_map(|(s, io, f)| {
                let ours = point(&s, io, f, 1, a);
                // Open vSwitch on the same capture, right after our DPDK run,
                // then DPDK's testpmd (the I/O floor).
                let ovs = (a.ovs
                    && io == Io::Dpdk
                    && devtools::ovs_dpdk::SCENARIOS.contains(&s.as_str()))
                .then(|| point(&s, Io::OvsDpdk, f, 1, a));
                let floor = (a.ovs && io == Io::Dpdk && devtools::testpmd::binary().is_some())
                    .then(|| point(&s, Io::Testpmd, f, 1, a));
                std::iter::once(ours).chain(ovs).chain(floor)
            })
            .collect(),
    }];
    if !a.sweeps {
        return groups;
    }
    let flows: &[usize] = if a.quick {
        &[1, 100, 10_000]
    } else {
        &[1, 100, 10_000, 65_536, 1_000_000]
    };
    groups.push(Group {
        name: "flows",
        rounds: 1,
        points: ["l2-egress", "dvr-egress", "snat-egress"]
            .iter()
            .flat_map(|s| flows.iter().map(|&f| point(s, Io::Memory, f, 1, a)))
            .collect(),
    });
    let ports: &[usize] = if a.quick {
        &[10, 1_000]
    } else {
        &[10, 100, 1_000, 10_000]
    };
    groups.push(Group {
        name: "rules",
        rounds: 1,
        points: ports
            .iter()
            .map(|&n| Point {
                extra_ports: n,
                ..point("l2-egress", Io::Memory, big, 1, a)
            })
            .collect(),
    });
    let conns: &[usize] = if a.quick {
        &[1_000, 10_000]
    } else {
        &[1_000, 10_000, 100_000, 1_000_000]
    };
    groups.push(Group {
        name: "connections",
        rounds: 1,
        points: conns
            .iter()
            .map(|&n| point("snat-reply", Io::Memory, n, 1, a))
            .collect(),
    });
    // Workers: memory I/O, and on DPDK both systems side by side (a
    // capture per receive queue, split by flow; one PMD per queue).
    let mut workers: Vec<Point> = ["l2-egress", "snat-egress"]
        .iter()
        .flat_map(|s| (1..=cores).map(|w| point(s, Io::Memory, big, w, a)))
        .collect();
    if a.ios.contains(&Io::Dpdk) && cores > 1 {
        for s in ["l2-egress", "snat-egress"] {
            for w in [1, cores] {
                workers.push(point(s, Io::Dpdk, big, w, a));
                if a.ovs {
                    workers.push(point(s, Io::OvsDpdk, big, w, a));
                }
            }
        }
    }
    groups.push(Group {
        name: "workers",
        rounds: 1,
        points: workers,
    });
    // Connection setup: the first pass of a capture of new SNAT flows
    // (100,000: Open vSwitch holds the capture in its mbuf pool).
    let new_flows = if a.quick { 50_000 } else { 100_000 };
    let mut setup = vec![Point {
        setup: true,
        ..point("snat-egress", Io::Memory, new_flows, 1, a)
    }];
    if a.ios.contains(&Io::Dpdk) {
        setup.push(Point {
            setup: true,
            ..point("snat-egress", Io::Dpdk, new_flows, 1, a)
        });
        if a.ovs {
            setup.push(Point {
                setup: true,
                ..point("snat-egress", Io::OvsDpdk, new_flows, 1, a)
            });
        }
    }
    groups.push(Group {
        name: "setup",
        rounds: 1,
        points: setup,
    });
    groups.push(Group {
        name: "updates",
        rounds: 1,
        points: vec![Point {
            updates: if a.quick { 4 } else { 20 },
            seconds: a.seconds.max(1.0),
            ..point("l2-egress", Io::Memory, big, 1, a)
        }],
    });
    groups
}

fn child(json: &str, dir: &Path) -> Result<(), ChildError> {
    let p: Point = serde_json::from_str(json).map_err(ChildError::Point)?;
    let t = devtools::spec::topology().map_err(ChildError::Topology)?;
    let m = replay::run_point(&t, &p, dir)?;
    println!("{}", serde_json::to_string(&m).map_err(ChildError::Result)?);
    Ok(())
}

fn ovs(scenario: &str, flows: usize) -> Option<f64> {
    OVS_DPDK
        .iter()
        .find(|(s, f, _)| *s == scenario && *f == flows)
        .map(|x| x.2)
}

fn row(m: &Measured) -> String {
    let p = m.point.as_ref().expect("point");
    let drops: Vec<String> = m.drops.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut extra = if p.extra_ports > 0 {
        format!(" +{} ports", p.extra_ports)
    } else {
        String::new()
    };
    // A reply scenario's warm-up is what creates its connections.
    if p.scenario == "snat-reply" && m.connections >= 100_000 {
        extra += &format!(
            "  conns +{:.1} MiB over idle ({:.0} B each)",
            m.warmup_growth_mb,
            m.warmup_growth_mb * 1048576.0 / m.connections as f64
        );
    }
    if p.workers > 1 && m.connections > 0 {
        extra += &format!("  cross-worker conns {}", m.cross_worker);
    }
    format!(
        "{:<17} {:<6} {:>8} {:>2}w {:>6.2} Mpps {:>7.1} ns {:>7.0} cyc  hit {:>5.1}%  out {:>5.1}%  rules {:>6}  conns {:>8}  rss {:>7.1} MiB{extra}  {}",
        p.scenario,
        p.io.name(),
        p.flows,
        p.workers,
        m.mpps,
        m.ns_per_packet,
        m.cycles_per_packet,
        m.cache_hit_rate * 100.0,
        m.delivered * 100.0,
        m.rules,
        m.connections,
        m.rss_mb,
        if drops.is_empty() {
            String::new()
        } else {
            format!("drops: {}", drops.join(" "))
        }
    )
}

/// Results by group name (`scenarios`, `flows`, …), in run order.
type Results = BTreeMap<&'static str, Vec<Measured>>;

fn main() {
    let raw: Vec<String> = std::env::args().collect();
    if let Some(i) = raw.iter().position(|a| a == "--point") {
        run_child(&raw, i);
        return;
    }
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("replay: {e}");
            std::process::exit(2);
        }
    };
    if a.ovs && a.ios.contains(&Io::Dpdk) && devtools::ovs_dpdk::binary().is_none() {
        eprintln!(
            "Open vSwitch with DPDK is not installed ({}) or this is not root: no side-by-side run",
            devtools::ovs_dpdk::DEFAULT_BINARY
        );
    }
    let groups = plan(&a);
    let total: usize = groups.iter().map(points_to_run).sum();
    let started = std::time::Instant::now();
    let results = run_points(&groups, &a.out.join("work"));
    println!(
        "\nvswitch pcap-replay benchmark ({} points in {:.0} s; {})",
        total,
        started.elapsed().as_secs_f64(),
        machine()
    );
    for (name, ms) in &results {
        println!("\n== {name} ==");
        for m in ms {
            println!("{}", row(m));
        }
    }
    if let Some(ms) = results.get("scenarios") {
        print_measured_ovs(ms);
        print_against_reference(ms, a.quick);
    }
    if let Some(ms) = results.get("workers") {
        print_workers(ms);
    }
    if let Some(ms) = results.get("setup") {
        print_setup(ms);
    }
    if let Some(u) = results.get("updates").and_then(|v| v.first()) {
        println!(
            "\ntopology update while traffic runs: {:.2} ms mean, {:.2} ms worst; {:.2} Mpps meanwhile, {:.2}% delivered",
            u.update_ms_mean,
            u.update_ms_max,
            u.mpps,
            u.delivered * 100.0
        );
    }
    write_results(&a.out, &results);
}

/// The child's side (`--point JSON [--dir DIR]`, `raw[i]` the `--point`):
/// measures the point and prints it as JSON, or its error and exit 1.
fn run_child(raw: &[String], i: usize) {
    let dir = raw
        .iter()
        .position(|a| a == "--dir")
        .and_then(|j| raw.get(j + 1))
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    if let Err(e) = child(raw.get(i + 1).map_or("", |s| s.as_str()), &dir) {
        eprintln!("{e}");
        std::process::exit(1);
    }
}

/// Point runs a group takes: its side-by-side points once per round.
fn points_to_run(g: &Group) -> usize {
    let side = g
        .points
        .iter()
        .filter(|p| matches!(p.io, Io::Dpdk | Io::OvsDpdk | Io::Testpmd))
        .count();
    g.points.len() + side * (g.rounds - 1)
}

/// The round of a point with the median rate (the lower middle of an
/// even count), carrying every round's rate.
fn median_round(mut ms: Vec<Measured>) -> Option<Measured> {
    if ms.is_empty() {
        return None;
    }
    let all: Vec<f64> = ms.iter().map(|m| m.mpps).collect();
    ms.sort_by(|a, b| a.mpps.total_cmp(&b.mpps));
    let mut m = ms.swap_remove((ms.len() - 1) / 2);
    if all.len() > 1 {
        m.rounds_mpps = all;
    }
    Some(m)
}

/// Runs every point of `groups` in a child of this executable, `work`
/// its scratch directory (removed at the end), with a progress line per
/// point on stderr.
fn run_points(groups: &[Group], work: &Path) -> Results {
    let exe = std::env::current_exe().expect("current exe");
    let total: usize = groups.iter().map(points_to_run).sum();
    let mut results = Results::new();
    let mut done = 0;
    // A discarded first point: the first child of a run measures low
    // (cold page cache and CPU); every reported point then runs warm.
    if let Some(p) = groups.first().and_then(|g| g.points.first()) {
        let warm = Point {
            seconds: 0.5,
            ..p.clone()
        };
        let _ = replay::run_point_in_child(&exe, &warm, work);
    }
    for g in groups {
        let mut rounds: Vec<Vec<Measured>> = vec![Vec::new(); g.points.len()];
        for round in 0..g.rounds {
            for (i, p) in g.points.iter().enumerate() {
                let side_by_side = matches!(p.io, Io::Dpdk | Io::OvsDpdk | Io::Testpmd);
                if round > 0 && !side_by_side {
                    continue;
                }
                done += 1;
                let tag = if g.rounds > 1 && side_by_side {
                    format!("{} r{}", g.name, round + 1)
                } else {
                    g.name.to_string()
                };
                eprint!(
                    "\r[{done}/{total}] {:<14} {:<17} {:<6} {:>7} flows {}w ...{:>30}",
                    tag,
                    p.scenario,
                    p.io.name(),
                    p.flows,
                    p.workers,
                    ""
                );
                match replay::run_point_in_child(&exe, p, work) {
                    Ok(m) => {
                        eprint!("\r[{done}/{total}] {:<14} {}\n", tag, row(&m));
                        rounds[i].push(m);
                    }
                    Err(e) => eprintln!("\r[{done}/{total}] {:<14} failed: {e}", tag),
                }
            }
        }
        for ms in rounds {
            if let Some(m) = median_round(ms) {
                results.entry(g.name).or_default().push(m);
            }
        }
    }
    let _ = std::fs::remove_dir_all(work);
    results
}

/// Our DPDK points beside Open vSwitch's on the same capture, where this
/// run measured both: the rates (floor: at least Open vSwitch's), and the
/// wall-clock nanoseconds per packet (receive included) of each above
/// testpmd's on the same capture, where it ran (goal: at most half of
/// Open vSwitch's).
fn print_measured_ovs(ms: &[Measured]) {
    let find = |io: Io, scenario: &str, flows: usize, workers: usize| {
        ms.iter().find(|m| {
            m.point.as_ref().is_some_and(|p| {
                p.io == io && p.scenario == scenario && p.flows == flows && p.workers == workers
            })
        })
    };
    let measured_ovs: Vec<&Measured> = ms
        .iter()
        .filter(|m| m.point.as_ref().is_some_and(|p| p.io == Io::OvsDpdk))
        .collect();
    if !measured_ovs.is_empty() {
        println!("\n== vswitch dpdk vs Open vSwitch + DPDK, measured in this run (same pcap, same core; the median of the rounds, which interleave the systems; floor 1.0x) ==");
    }
    for o in &measured_ovs {
        let op = o.point.as_ref().expect("point");
        let Some(m) = find(Io::Dpdk, &op.scenario, op.flows, op.workers) else {
            continue;
        };
        println!(
            "{:<17} {:>6} flows{}: vswitch {:>6.2} Mpps, OVS-DPDK {:>6.2} Mpps = {:.2}x (floor: {}); wall ns/packet {:.1} vs {:.1}, cycles/packet {:.0} vs {:.0} (vswitch busy: {:.1} ns, {:.0} cycles)",
            op.scenario,
            op.flows,
            if op.workers > 1 {
                format!(", {} workers", op.workers)
            } else {
                String::new()
            },
            m.mpps,
            o.mpps,
            m.mpps / o.mpps.max(1e-9),
            if m.mpps >= o.mpps { "met" } else { "not met" },
            1e3 / m.mpps.max(1e-9),
            1e3 / o.mpps.max(1e-9),
            m.wall_cycles_per_packet,
            o.cycles_per_packet,
            m.ns_per_packet,
            m.cycles_per_packet,
        );
        if !m.rounds_mpps.is_empty() {
            let show = |v: &[f64]| {
                v.iter()
                    .map(|x| format!("{x:.2}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            println!(
                "{:<24} rounds (median taken): vswitch {}; OVS-DPDK {}",
                "",
                show(&m.rounds_mpps),
                show(&o.rounds_mpps)
            );
        }
    }
    let floors: Vec<&Measured> = ms
        .iter()
        .filter(|m| m.point.as_ref().is_some_and(|p| p.io == Io::Testpmd))
        .collect();
    if floors.is_empty() {
        return;
    }
    println!("\n== switching cost above the I/O floor (DPDK testpmd io-forward, same capture and core), wall ns/packet; goal: vswitch at most half of OVS ==");
    for f in floors {
        let fp = f.point.as_ref().expect("point");
        let floor_ns = 1e3 / f.mpps.max(1e-9);
        let cost = |m: Option<&Measured>| m.map(|m| 1e3 / m.mpps.max(1e-9) - floor_ns);
        let ours = cost(find(Io::Dpdk, &fp.scenario, fp.flows, 1));
        let theirs = cost(find(Io::OvsDpdk, &fp.scenario, fp.flows, 1));
        let show = |c: Option<f64>| c.map_or("-".to_string(), |c| format!("{c:.1}"));
        println!(
            "{:<17} {:>6} flows: floor {:>6.2} Mpps ({floor_ns:.1} ns); above it: vswitch {}, OVS-DPDK {}{}",
            fp.scenario,
            fp.flows,
            f.mpps,
            show(ours),
            show(theirs),
            match (ours, theirs) {
                (Some(a), Some(b)) => format!(
                    " = {:.2} of OVS's (goal 0.5: {})",
                    a / b.max(1e-9),
                    if a <= 0.5 * b { "met" } else { "not met" }
                ),
                _ => String::new(),
            }
        );
    }
}

/// Workers on DPDK, both systems: how each scales from one worker (one
/// PMD) and the ratio at each count.
fn print_workers(ms: &[Measured]) {
    let get = |io: Io, scenario: &str, workers: usize| {
        ms.iter()
            .find(|m| {
                m.point
                    .as_ref()
                    .is_some_and(|p| p.io == io && p.scenario == scenario && p.workers == workers)
            })
            .map(|m| m.mpps)
    };
    let many: Vec<&Point> = ms
        .iter()
        .filter_map(|m| m.point.as_ref())
        .filter(|p| p.io == Io::Dpdk && p.workers > 1)
        .collect();
    if many.is_empty() {
        return;
    }
    println!("\n== workers on DPDK, vswitch and Open vSwitch side by side (a capture per receive queue, split by flow; one PMD per queue) ==");
    let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".to_string(),
    };
    for p in many {
        let w = p.workers;
        let (v1, vn) = (get(Io::Dpdk, &p.scenario, 1), get(Io::Dpdk, &p.scenario, w));
        let (o1, on) = (
            get(Io::OvsDpdk, &p.scenario, 1),
            get(Io::OvsDpdk, &p.scenario, w),
        );
        println!(
            "{:<17} {:>6} flows: vswitch {} -> {} Mpps with {w} workers ({}); OVS-DPDK {} -> {} ({}); vswitch / OVS at {w}: {}",
            p.scenario,
            p.flows,
            fmt(v1),
            fmt(vn),
            ratio(vn, v1),
            fmt(o1),
            fmt(on),
            ratio(on, o1),
            ratio(vn, on),
        );
    }
}

/// New SNAT connections per second per worker, each system's.
fn print_setup(ms: &[Measured]) {
    println!("\n== connection setup: new SNAT connections per second, one worker (the first pass of a capture of new flows, 20-80 %) ==");
    let rate = |io: Io| {
        ms.iter()
            .find(|m| m.point.as_ref().is_some_and(|p| p.io == io))
            .map(|m| m.mpps)
    };
    for m in ms {
        let p = m.point.as_ref().expect("point");
        println!(
            "{:<9} {:>8} new flows: {:>5.2} M connections/s, {:.1}% delivered",
            p.io.name(),
            p.flows,
            m.mpps,
            m.delivered * 100.0
        );
    }
    if let (Some(v), Some(o)) = (rate(Io::Dpdk), rate(Io::OvsDpdk)) {
        println!("vswitch dpdk / OVS-DPDK: {:.2}x", v / o.max(1e-9));
    }
}

/// Our points against the figures for Open vSwitch (`quick`: the
/// many-flows points stand for its 65,536 flows).
fn print_against_reference(ms: &[Measured], quick: bool) {
    println!("\n== against the issue's reference figures for Open vSwitch 3.1 + DPDK 22.11 (one PMD, 64 B; floor 1.0x) ==");
    for m in ms {
        let p = m.point.as_ref().expect("point");
        if matches!(p.io, Io::OvsDpdk | Io::Testpmd) {
            continue;
        }
        let big = if quick { 4_096 } else { 65_536 };
        let f = if p.flows == big { 65_536 } else { p.flows };
        if let Some(o) = ovs(&p.scenario, f) {
            println!(
                "{:<17} {:<6} {:>6} flows: {:>6.2} Mpps vs {o:>5.2} = {:.2}x (floor 1.0x: {})",
                p.scenario,
                p.io.name(),
                p.flows,
                m.mpps,
                m.mpps / o,
                if m.mpps >= o { "met" } else { "not met" }
            );
        }
    }
}

/// Writes `results.json` and a plot per group into `out`.
fn write_results(out: &Path, results: &Results) {
    std::fs::create_dir_all(out).expect("out dir");
    let json = serde_json::json!({
        "machine": machine(),
        "ovs_dpdk_reference": OVS_DPDK.iter().map(|(s, f, m)| serde_json::json!({"scenario": s, "flows": f, "mpps": m})).collect::<Vec<_>>(),
        "results": results,
    });
    let jpath = out.join("results.json");
    std::fs::write(&jpath, serde_json::to_string_pretty(&json).expect("json")).expect("write");
    println!("\nwrote {}", jpath.display());
    for (name, f) in [
        (
            "scenarios",
            plot_scenarios as fn(&[Measured], &Path) -> Result<(), PlotError>,
        ),
        ("flows", plot_flows),
        ("workers", plot_workers),
        ("rules", plot_rules),
        ("connections", plot_connections),
    ] {
        if let Some(ms) = results.get(name) {
            let path = out.join(format!("{name}.svg"));
            match f(ms, &path) {
                Ok(()) => println!("wrote {}", path.display()),
                Err(e) => eprintln!("plot {name}: {e}"),
            }
        }
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = core_affinity::get_core_ids().map_or(1, |c| c.len());
    format!("{cpu}, {cores} cores")
}

/// Mpps per scenario: bars for each (io, flows), OVS-DPDK beside: as
/// measured in this run when it ran (`ovs-dpdk` points), else the issue's
/// reference figures.
fn plot_scenarios(ms: &[Measured], path: &Path) -> Result<(), PlotError> {
    let scen: Vec<String> = {
        let mut v: Vec<String> = Vec::new();
        for m in ms {
            let s = &m.point.as_ref().expect("p").scenario;
            if !v.contains(s) {
                v.push(s.clone());
            }
        }
        v
    };
    let mut series: Vec<(String, Vec<(usize, f64)>)> = Vec::new();
    for m in ms {
        let p = m.point.as_ref().expect("p");
        let label = format!("{} {} flows", p.io.name(), p.flows);
        let x = scen.iter().position(|s| *s == p.scenario).unwrap_or(0);
        match series.iter_mut().find(|(l, _)| *l == label) {
            Some((_, v)) => v.push((x, m.mpps)),
            None => series.push((label, vec![(x, m.mpps)])),
        }
    }
    let measured_ovs = ms
        .iter()
        .any(|m| m.point.as_ref().is_some_and(|p| p.io == Io::OvsDpdk));
    let reference: &[(&str, usize, f64)] = if measured_ovs { &[] } else { &OVS_DPDK };
    let ovs: Vec<(usize, f64, usize)> = reference
        .iter()
        .filter_map(|(s, f, v)| scen.iter().position(|x| x == s).map(|i| (i, *v, *f)))
        .collect();
    let ymax = ms.iter().map(|m| m.mpps).fold(14.0, f64::max) * 1.1;
    let root = SVGBackend::new(path, (1200, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut c = ChartBuilder::on(&root)
        .caption(
            "vswitch: Mpps per scenario, one worker, 64 B",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(60)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..scen.len() as f64, 0f64..ymax)?;
    let names = scen.clone();
    c.configure_mesh()
        .x_labels(scen.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = (*x - 0.5).round();
            if (x - 0.5 - i).abs() < 0.01 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("Mpps")
        .draw()?;
    let n = series.len().max(1) as f64;
    let w = 0.8 / (n + 1.0);
    for (si, (label, pts)) in series.iter().enumerate() {
        let color = Palette99::pick(si).to_rgba();
        c.draw_series(pts.iter().map(|&(x, y)| {
            let x0 = x as f64 + 0.1 + si as f64 * w;
            Rectangle::new([(x0, 0.0), (x0 + w * 0.9, y)], color.filled())
        }))?
        .label(label.clone())
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    if !ovs.is_empty() {
        c.draw_series(ovs.iter().map(|&(x, y, f)| {
            let x0 = x as f64 + 0.1 + n * w;
            let shade = if f == 1 {
                BLACK.mix(0.6)
            } else {
                BLACK.mix(0.3)
            };
            Rectangle::new([(x0, 0.0), (x0 + w * 0.9, y)], shade.filled())
        }))?
        .label("Open vSwitch + DPDK, the issue's figures (1 / 65,536 flows)")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], BLACK.mix(0.5).filled()));
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(root.present()?)
}

/// Lines of Mpps against a log-scale x taken from each point.
fn plot_lines(
    ms: &[Measured],
    path: &Path,
    title: &str,
    xdesc: &str,
    x_of: impl Fn(&Point) -> f64,
    log_x: bool,
) -> Result<(), PlotError> {
    let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for m in ms {
        let p = m.point.as_ref().expect("p");
        series
            .entry(p.scenario.clone())
            .or_default()
            .push((x_of(p), m.mpps));
    }
    let xmax = ms
        .iter()
        .map(|m| x_of(m.point.as_ref().expect("p")))
        .fold(1.0, f64::max);
    let ymax = ms.iter().map(|m| m.mpps).fold(1.0, f64::max) * 1.15;
    let root = SVGBackend::new(path, (900, 550)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut b = ChartBuilder::on(&root);
    b.caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(50);
    if log_x {
        let mut c = b.build_cartesian_2d((0.8f64..xmax * 1.5).log_scale(), 0f64..ymax)?;
        c.configure_mesh().x_desc(xdesc).y_desc("Mpps").draw()?;
        draw_lines(&mut c, &series)?;
    } else {
        let mut c = b.build_cartesian_2d(0.5f64..xmax + 0.5, 0f64..ymax)?;
        c.configure_mesh()
            .x_desc(xdesc)
            .y_desc("Mpps")
            .x_labels(xmax as usize + 1)
            .draw()?;
        draw_lines(&mut c, &series)?;
    }
    Ok(root.present()?)
}

fn draw_lines<'a, 'b, X>(
    c: &mut ChartContext<
        'a,
        SVGBackend<'b>,
        Cartesian2d<X, plotters::coord::types::RangedCoordf64>,
    >,
    series: &BTreeMap<String, Vec<(f64, f64)>>,
) -> Result<(), PlotError>
where
    X: plotters::coord::ranged1d::Ranged<ValueType = f64>,
    'b: 'a,
{
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        c.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color));
        c.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn plot_flows(ms: &[Measured], path: &Path) -> Result<(), PlotError> {
    plot_lines(
        ms,
        path,
        "Mpps vs distinct flows (1 worker, 64 B)",
        "flows",
        |p| p.flows as f64,
        true,
    )
}

fn plot_workers(ms: &[Measured], path: &Path) -> Result<(), PlotError> {
    plot_lines(
        ms,
        path,
        "Mpps vs workers (64 B)",
        "workers",
        |p| p.workers as f64,
        false,
    )
}

fn plot_rules(ms: &[Measured], path: &Path) -> Result<(), PlotError> {
    plot_lines(
        ms,
        path,
        "l2-egress Mpps vs VM ports on the host",
        "VM ports added",
        |p| p.extra_ports as f64,
        true,
    )
}

fn plot_connections(ms: &[Measured], path: &Path) -> Result<(), PlotError> {
    plot_lines(
        ms,
        path,
        "snat-reply Mpps vs live connections",
        "connections",
        |p| p.flows as f64,
        true,
    )
}
