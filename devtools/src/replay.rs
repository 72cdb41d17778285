//! One point of the pcap-replay benchmark: a host of the spec's topology
//! in a `Daemon`, the scenario's capture replayed into its input port, and
//! the workers' own counters read over a measured interval.
//!
//! Two kinds of I/O: `memory` (the capture looped from memory by the pcap
//! backend, split over the workers' queues by flow as RSS would; every
//! other port discards and counts) and `dpdk` (DPDK's `net_pcap` with
//! `infinite_rx=1` in, `net_null` out, without hugepages). The host is
//! brought to its steady state first (`traffic::Traffic::warmup`, through
//! `Daemon::process_local`), then the input port is bound and traffic
//! starts. Figures come from the workers' reports: packets received,
//! busy nanoseconds and TSC cycles, cache hits, drops by reason; the
//! output port's transmit counter says how much arrived where the walk
//! says.
//!
//! May call: `traffic` (the capture and its warm-up), `ovs_dpdk` (the
//! `ovs-dpdk` points), and vswitch's daemon, config and control (the
//! point's host, and the live updates). The benchmark's binary
//! (`benches/replay.rs`) runs each point through `run_point_in_child`.
#![deny(unsafe_code)]

use crate::ovs_dpdk::OvsDpdkError;
use crate::traffic::{self, FrameSize, TrafficError, TrafficScenario};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use topology::{Topology, TopologyError};
use vswitch::config::DaemonConfig;
use vswitch::control::ControlError;
use vswitch::daemon::{BindError, Daemon, DaemonError};

/// Why a point could not be measured. Each error names the setting,
/// file or host; the benchmark prints it as the point's failure.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Traffic(#[from] TrafficError),
    #[error("extra ports: at most 60000, not {0}")]
    TooManyPorts(usize),
    #[error("{0} has no VM port")]
    NoVmPort(String),
    /// The topology with the extra ports does not validate.
    #[error("{0}")]
    Topology(#[from] TopologyError),
    #[error("workers: at least 1")]
    NoWorkers,
    #[error("the capture's first pass ({frames} frames) did not come through; {got} did")]
    FirstPass { frames: usize, got: u64 },
    /// A point measured without our daemon (`testpmd`) reached the code
    /// that binds the daemon's input.
    #[error("{0} points run no vswitch daemon")]
    NoDaemon(&'static str),
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no host {0}")]
    NoHost(String),
    #[error("bench config: {0}")]
    Config(#[source] toml::de::Error),
    #[error("{0}")]
    Daemon(#[from] DaemonError),
    #[error("{0}")]
    Bind(#[from] BindError),
    /// The topology could not be written for a live update.
    #[error("{0}")]
    TopologyText(#[from] toml::ser::Error),
    /// A live topology update was refused.
    #[error("{0}")]
    Update(#[from] ControlError),
    #[error("OVS-DPDK: not installed (or not root); VSWITCH_BENCH_OVS names the binary")]
    OvsNotInstalled,
    #[error("testpmd: {0}")]
    Testpmd(#[source] crate::testpmd::TestpmdError),
    #[error("an empty capture")]
    EmptyCapture,
    #[error(transparent)]
    OvsDpdk(#[from] OvsDpdkError),

    // A point run in a child process.
    /// The point could not be written as JSON for the child.
    #[error("{0}")]
    PointJson(#[source] serde_json::Error),
    #[error("{}: {source}", exe.display())]
    Child {
        exe: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("child result: {0}")]
    ChildResult(#[source] serde_json::Error),
    /// The child failed; `stderr` is what it said.
    #[error("{scenario} {io}: {stderr}")]
    ChildFailed {
        scenario: String,
        io: &'static str,
        stderr: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Io {
    Memory,
    Dpdk,
    /// Open vSwitch with DPDK on the same capture (`ovs_dpdk`).
    #[serde(rename = "ovs-dpdk")]
    OvsDpdk,
    /// DPDK's testpmd forwarding the same capture (`testpmd`): the I/O
    /// floor.
    Testpmd,
}

impl Io {
    pub fn name(self) -> &'static str {
        match self {
            Io::Memory => "memory",
            Io::Dpdk => "dpdk",
            Io::OvsDpdk => "ovs-dpdk",
            Io::Testpmd => "testpmd",
        }
    }
}

/// What to measure.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Point {
    pub scenario: String,
    pub io: Io,
    pub flows: usize,
    /// `64`..`1518` or `imix`.
    pub size: String,
    pub workers: usize,
    /// VM ports added to the scenario's host (rule growth), 0 for none.
    pub extra_ports: usize,
    /// Measured interval.
    pub seconds: f64,
    /// Topology updates (floating IP toggles) applied while measuring.
    pub updates: usize,
    /// Connection setup: the capture's first pass is measured as it comes
    /// in (`traffic::first_pass_rate`), every packet of it a new flow, so
    /// the rate is of new connections (`seconds` bounds the wait).
    #[serde(default)]
    pub setup: bool,
}

/// What was measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Measured {
    pub point: Option<Point>,
    pub mpps: f64,
    /// Busy time per packet of a worker.
    pub ns_per_packet: f64,
    pub cycles_per_packet: f64,
    /// Wall-clock cycles per packet, receive included (per worker).
    #[serde(default)]
    pub wall_cycles_per_packet: f64,
    pub cache_hit_rate: f64,
    /// Megaflows and masks in the caches at the end (main, recirculated).
    pub cache_entries: usize,
    pub cache_masks: usize,
    pub recirc_entries: usize,
    pub recirc_masks: usize,
    pub recirc_hit_rate: f64,
    pub rx_packets: u64,
    /// Packets received per worker loop iteration, and the share of
    /// iterations that found none.
    #[serde(default)]
    pub packets_per_poll: f64,
    #[serde(default)]
    pub idle_poll_rate: f64,
    /// Frames that left by the scenario's output port, per frame received.
    pub delivered: f64,
    /// Frames that left by any port, per frame received (above
    /// `delivered` when something floods).
    #[serde(default)]
    pub outputs_per_packet: f64,
    pub drops: BTreeMap<String, u64>,
    /// OpenFlow rules installed on the host (all bridges).
    pub rules: usize,
    pub connections: usize,
    /// Of those, connections whose reply reaches another worker than the
    /// one that owns them (conntrack's `cross_worker`).
    #[serde(default)]
    pub cross_worker: u64,
    /// Resident memory after the run, and its growth from before the
    /// daemon started (the capture's frames included).
    pub rss_mb: f64,
    pub rss_growth_mb: f64,
    /// Resident memory the daemon grew by while it took the warm-up (the
    /// connections a reply scenario needs, over the idle daemon; the
    /// frames are counted before).
    #[serde(default)]
    pub warmup_growth_mb: f64,
    /// The rate of each round when the point ran several (the figures
    /// above are the median round's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rounds_mpps: Vec<f64>,
    /// Mean and worst time to apply one topology update while traffic ran.
    pub update_ms_mean: f64,
    pub update_ms_max: f64,
    pub frames_in_capture: usize,
}

/// Resident set size of this process, in MiB (`VmRSS`, the kernel's
/// count of resident pages in KiB).
pub fn rss_mb() -> f64 {
    let kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|x| x.parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    kib / 1024.0
}

/// The spec's example topology, with `extra` more VM ports on `host`'s
/// first network (its subnet widened to a /16 to hold them).
pub fn topology_with_ports(
    base: &Topology,
    host: &str,
    extra: usize,
) -> Result<Topology, ReplayError> {
    let mut t = base.clone();
    if extra == 0 {
        return Ok(t);
    }
    if extra > 60_000 {
        return Err(ReplayError::TooManyPorts(extra));
    }
    let net = t
        .ports
        .iter()
        .find(|p| p.host == host)
        .map(|p| p.network.clone())
        .ok_or_else(|| ReplayError::NoVmPort(host.to_string()))?;
    if let Some(s) = t.subnets.iter_mut().find(|s| s.network == net) {
        let base_ip = s.cidr.split('/').next().unwrap_or("10.1.0.0").to_string();
        s.cidr = format!("{base_ip}/16");
    }
    for i in 0..extra {
        let ip = std::net::Ipv4Addr::new(10, 1, 1 + (i / 250) as u8, 2 + (i % 250) as u8);
        let mac = pipeline::key::Mac::from_u64(0xfa163e_800000 + i as u64);
        t.ports.push(topology::model::Port {
            name: format!("x{i}"),
            device: format!("qvo-x{i}"),
            host: host.to_string(),
            network: net.clone(),
            mac,
            ip,
            owner: topology::model::PortOwner::Compute,
            port_security: true,
            allowed_address_pairs: Vec::new(),
            ofport: None,
        });
    }
    topology::validate(&t)?;
    Ok(t)
}

fn frames_for(
    p: &Point,
    s: TrafficScenario,
    t: &Topology,
) -> Result<traffic::Traffic, TrafficError> {
    let size = FrameSize::parse(&p.size)?;
    // Enough frames that a loop over them is not a loop over a few cache
    // lines; one frame per flow beyond that.
    let count = p.flows.max(32_768);
    traffic::generate(t, s, p.flows, size, count)
}

/// The DPDK device the capture is replayed from (`dpdk` I/O).
const DPDK_IN: &str = "net_pcap0";

/// Measures one point, in this process. `dir` holds the capture.
pub fn run_point(base: &Topology, p: &Point, dir: &Path) -> Result<Measured, ReplayError> {
    let s = TrafficScenario::parse(&p.scenario)?;
    if p.workers == 0 {
        return Err(ReplayError::NoWorkers);
    }
    let rss0 = rss_mb();
    let t = topology_with_ports(base, s.host(), p.extra_ports)?;
    let tr = frames_for(p, s, &t)?;
    std::fs::create_dir_all(dir).map_err(|source| ReplayError::File {
        path: dir.to_path_buf(),
        source,
    })?;
    let pcap = dir.join(format!("{}-{}-{}.pcap", s.name(), p.flows, p.size));
    traffic::write_pcap(&pcap, &tr.frames)?;
    let frames_in_capture = tr.frames.len();
    let queue_pcaps = queue_captures(p, s, &tr, dir, &pcap)?;

    if p.io == Io::Testpmd {
        let bin = crate::testpmd::binary().ok_or(ReplayError::Testpmd(
            crate::testpmd::TestpmdError::NotInstalled,
        ))?;
        let cores = core_affinity::get_core_ids().map_or(1, |c| c.len()).max(1);
        let mpps =
            crate::testpmd::io_floor(&bin, &pcap, frames_in_capture, 0, cores - 1, p.seconds);
        let _ = std::fs::remove_file(&pcap);
        let mpps = mpps.map_err(ReplayError::Testpmd)?;
        return Ok(Measured {
            point: Some(p.clone()),
            mpps,
            ns_per_packet: 1e3 / mpps,
            frames_in_capture,
            delivered: 1.0,
            outputs_per_packet: 1.0,
            ..Measured::default()
        });
    }
    let cfg = daemon_config(p, s, &t, dir, &queue_pcaps, frames_in_capture)?;
    let d = Daemon::start_with(&cfg, t.clone())?;
    let rss_idle = rss_mb();
    for (port, frames) in &tr.warmup {
        d.process_local(port, frames)?;
    }
    // What the warm-up left in the daemon (its frames were already made):
    // for a reply scenario, the connections it created.
    let warmup_growth_mb = rss_mb() - rss_idle;
    let backend = match p.io {
        Io::OvsDpdk => return measure_ovs(p, s, &t, d, &tr, &queue_pcaps, dir),
        Io::Testpmd => return Err(ReplayError::NoDaemon(p.io.name())),
        Io::Memory => vswitch::config::Backend::Pcap {
            rx: Some(pcap.clone()),
            tx: None,
            looped: true,
        },
        Io::Dpdk => vswitch::config::Backend::Dpdk {
            device: DPDK_IN.to_string(),
            devargs: None,
            receive: true,
            mbufs: None,
        },
    };
    // Memory I/O splits the capture over the queues by flow itself; a
    // DPDK device has a capture per queue (`queue_captures`).
    let queues = p.workers;
    d.shared.bind_port(s.in_port(), &backend, queues)?;
    if p.setup {
        return measure_setup(d, p, frames_in_capture, s.out_port(), &pcap, &queue_pcaps);
    }

    // Settle (caches filled, every flow seen once), then measure.
    std::thread::sleep(Duration::from_millis(300 + (p.flows / 2_000) as u64));
    let run = measure_interval(&d, &t, p, s.out_port())?;
    let sw = d.shared.switch();
    let rules = sw.bridges.iter().map(|b| b.n_flows()).sum();
    let connections = sw.conntrack.len();
    let cross_worker = sw.conntrack.stats().cross_worker;
    d.stop();
    let rss = rss_mb();
    let _ = std::fs::remove_file(&pcap);
    for q in &queue_pcaps {
        let _ = std::fs::remove_file(q);
    }
    Ok(Measured {
        rules,
        connections,
        cross_worker,
        warmup_growth_mb,
        rss_mb: rss,
        rss_growth_mb: rss - rss0,
        frames_in_capture,
        ..run.figures(p)
    })
}

/// The captures a DPDK input replays, one per receive queue: with one
/// worker the whole capture; with more, its frames split as a NIC's RSS
/// would split them (`vswitch::io::pcap::rss_queue`, the daemon's key), so
/// that each queue brings the connections its worker owns.
fn queue_captures(
    p: &Point,
    s: TrafficScenario,
    tr: &traffic::Traffic,
    dir: &Path,
    whole: &Path,
) -> Result<Vec<PathBuf>, ReplayError> {
    if p.workers <= 1 || !matches!(p.io, Io::Dpdk | Io::OvsDpdk) {
        return Ok(vec![whole.to_path_buf()]);
    }
    let rss = pipeline::rss::Rss::default();
    let mut split: Vec<Vec<Vec<u8>>> = vec![Vec::new(); p.workers];
    for f in &tr.frames {
        split[vswitch::io::pcap::rss_queue(f, p.workers, &rss)].push(f.clone());
    }
    let mut queues = Vec::new();
    for (q, frames) in split.iter().enumerate() {
        let path = dir.join(format!("{}-{}-{}-q{q}.pcap", s.name(), p.flows, p.size));
        traffic::write_pcap(&path, frames)?;
        queues.push(path);
    }
    // Only the parts are replayed.
    let _ = std::fs::remove_file(whole);
    Ok(queues)
}

/// The daemon of point `p`: `t`'s host of scenario `s` with `p.workers`
/// workers, every port but the input discarding (and counting) what it
/// is sent; for `dpdk` I/O, the EAL with the capture (`pcap`) on a
/// `net_pcap` device and `net_null` outputs.
fn daemon_config(
    p: &Point,
    s: TrafficScenario,
    t: &Topology,
    dir: &Path,
    pcaps: &[PathBuf],
    frames_in_capture: usize,
) -> Result<DaemonConfig, ReplayError> {
    let host = t
        .hosts
        .iter()
        .find(|h| h.name == s.host())
        .ok_or_else(|| ReplayError::NoHost(s.host().to_string()))?;
    let mut outputs: Vec<String> = host.nics.values().cloned().collect();
    outputs.extend(
        t.ports
            .iter()
            .filter(|q| q.host == host.name)
            .map(|q| q.device.clone()),
    );
    outputs.retain(|o| o != s.in_port());
    let mut text = format!(
        "host = \"{}\"\ntopology = \"unused\"\nsocket = \"{}\"\nidle_sleep_us = 0\nlog_level = \"warn\"\n",
        host.name,
        dir.join("unused.sock").display()
    );
    for w in 0..p.workers {
        let cores = core_affinity::get_core_ids().map_or(1, |c| c.len());
        // Workers from the last core down; the measuring thread sleeps.
        text.push_str(&format!(
            "[[workers]]\ncore = {}\n",
            cores.saturating_sub(1 + w) % cores.max(1)
        ));
    }
    match p.io {
        Io::Memory | Io::OvsDpdk | Io::Testpmd => {
            for o in &outputs {
                text.push_str(&format!("[[ports]]\nname = \"{o}\"\nbackend = \"null\"\n"));
            }
        }
        Io::Dpdk => {
            for (i, o) in outputs.iter().enumerate() {
                text.push_str(&format!(
                    "[[ports]]\nname = \"{o}\"\nbackend = \"dpdk\"\ndevice = \"net_null{i}\"\nreceive = false\nmbufs = 8191\n"
                ));
            }
            // The capture is held in mbufs (infinite_rx): room for all in
            // the input's pool; the outputs' pools are small.
            let (mbufs, mem_mb) =
                crate::testpmd::capture_pool(frames_in_capture, outputs.len() * 8191);
            text.push_str(&format!(
                "[dpdk]\nmbufs = {mbufs}\neal_args = [\"--no-huge\", \"--no-shconf\", \"--no-pci\", \"--no-telemetry\", \"-m\", \"{mem_mb}\", \"-l\", \"0\", \"--log-level\", \"error\", \"--vdev={}\"]\n",
                crate::ovs_dpdk::pcap_devargs(DPDK_IN, pcaps)
            ));
        }
    }
    text.push_str(&format!(
        "[limits]\nflow_cache_entries = {}\nmax_connections = {}\npacket_buffers = 8192\n",
        (2 * p.flows).clamp(65_536, 1 << 21),
        (2 * p.flows).max(262_144)
    ));
    toml::from_str(&text).map_err(ReplayError::Config)
}

/// An `ovs-dpdk` point: our switch `d`, warmed up, is the model Open
/// vSwitch runs on the same capture; the model must first forward the
/// capture's first frame as we do.
fn measure_ovs(
    p: &Point,
    s: TrafficScenario,
    t: &Topology,
    d: Daemon,
    tr: &traffic::Traffic,
    pcaps: &[PathBuf],
    dir: &Path,
) -> Result<Measured, ReplayError> {
    let bin = crate::ovs_dpdk::binary().ok_or(ReplayError::OvsNotInstalled)?;
    let m = crate::ovs_dpdk::model(
        &d.shared.switch(),
        t,
        s.host(),
        s.in_port(),
        pcaps,
        d.shared.now_ns(),
    )?;
    let mut m = m;
    let frame = tr.frames.first().ok_or(ReplayError::EmptyCapture)?;
    let ours = crate::ovs_dpdk::ours_egress(&d.shared.switch(), s.in_port(), frame)?;
    d.stop();
    // Replies need their connections: the warm-up goes into Open vSwitch
    // first, and `ofproto/trace` (which tracks nothing) cannot check the
    // model on a reply; what arrives where is still counted.
    let replies = s == TrafficScenario::SnatReply;
    if replies {
        m.preload = tr.warmup.clone();
    }
    let cores = core_affinity::get_core_ids().map_or(1, |c| c.len()).max(1);
    let r = if p.setup {
        m.in_port_last = true;
        let out = s.out_port();
        let timeout = Duration::from_secs_f64(p.seconds.max(10.0));
        crate::ovs_dpdk::Session::start(&bin, &m, &dir.join("ovs"), cores - 1).and_then(|session| {
            let r = session.measure_first_pass(out, tr.frames.len() as u64, timeout)?;
            session.check(&m.in_port, frame, &ours)?;
            Ok(r)
        })
    } else {
        crate::ovs_dpdk::measure(
            &bin,
            &m,
            s.out_port(),
            &dir.join("ovs"),
            cores - 1,
            p.seconds,
            (!replies).then_some((frame.as_slice(), ours.as_slice())),
        )
    };
    for q in pcaps {
        let _ = std::fs::remove_file(q);
    }
    let r = r?;
    Ok(Measured {
        point: Some(p.clone()),
        mpps: r.mpps,
        ns_per_packet: if r.mpps > 0.0 { 1e3 / r.mpps } else { 0.0 },
        cycles_per_packet: r.cycles_per_packet,
        rx_packets: r.rx_packets,
        delivered: r.delivered,
        outputs_per_packet: r.outputs_per_packet,
        drops: r.drops,
        rules: r.flows,
        frames_in_capture: tr.frames.len(),
        ..Measured::default()
    })
}

/// Point `p` with `setup`: the first pass of a capture of `frames` new
/// flows, sampled as it comes in from the moment the port is bound.
fn measure_setup(
    d: Daemon,
    p: &Point,
    frames: usize,
    out_port: &str,
    pcap: &Path,
    queue_pcaps: &[PathBuf],
) -> Result<Measured, ReplayError> {
    let t0 = Instant::now();
    let timeout = Duration::from_secs_f64(p.seconds.max(10.0));
    let mut samples = Vec::new();
    let mut snaps = Vec::new();
    while t0.elapsed() < timeout {
        let snap = snapshot(&d, out_port);
        samples.push((t0.elapsed().as_secs_f64(), snap.rx));
        let done = snap.rx >= frames as u64;
        snaps.push(snap);
        if done {
            break;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let sw = d.shared.switch();
    let connections = sw.conntrack.len();
    let cross_worker = sw.conntrack.stats().cross_worker;
    d.stop();
    let _ = std::fs::remove_file(pcap);
    for q in queue_pcaps {
        let _ = std::fs::remove_file(q);
    }
    let w =
        crate::traffic::first_pass_rate(&samples, frames as u64).ok_or(ReplayError::FirstPass {
            frames,
            got: samples.last().map_or(0, |s| s.1),
        })?;
    let run = Interval {
        before: snaps[w.first].clone(),
        after: snaps[w.last].clone(),
        seconds: samples[w.last].0 - samples[w.first].0,
        update_ms: Vec::new(),
    };
    Ok(Measured {
        connections,
        cross_worker,
        frames_in_capture: frames,
        ..run.figures(p)
    })
}

/// The workers' counters at both ends of the measured interval, and the
/// time each live update took.
struct Interval {
    before: Snapshot,
    after: Snapshot,
    seconds: f64,
    update_ms: Vec<f64>,
}

/// Lets traffic run `p.seconds`, applying `p.updates` topology updates
/// (the floating IPs toggled) meanwhile; counters are read at each end.
fn measure_interval(
    d: &Daemon,
    t: &Topology,
    p: &Point,
    out_port: &str,
) -> Result<Interval, ReplayError> {
    let before = snapshot(d, out_port);
    let t0 = Instant::now();
    let mut update_ms = Vec::new();
    if p.updates > 0 {
        let without = {
            let mut w = t.clone();
            for f in &mut w.floating_ips {
                f.port = None;
            }
            w
        };
        let texts = [toml::to_string(&without)?, toml::to_string(t)?];
        let gap = Duration::from_secs_f64(p.seconds / p.updates as f64);
        for i in 0..p.updates {
            let req = vswitch::control::Request::TopologyLoad {
                toml: texts[i % 2].clone(),
                dry_run: false,
            };
            let u0 = Instant::now();
            vswitch::control::handle(&d.shared, &req)?;
            update_ms.push(u0.elapsed().as_secs_f64() * 1e3);
            std::thread::sleep(gap.saturating_sub(u0.elapsed()));
        }
    } else {
        std::thread::sleep(Duration::from_secs_f64(p.seconds));
    }
    let seconds = t0.elapsed().as_secs_f64();
    let after = snapshot(d, out_port);
    Ok(Interval {
        before,
        after,
        seconds,
        update_ms,
    })
}

impl Interval {
    /// Point `p`'s figures over the interval (rules, connections and
    /// memory are the caller's).
    fn figures(&self, p: &Point) -> Measured {
        let (before, after) = (&self.before, &self.after);
        let rx = after.rx.saturating_sub(before.rx);
        let n = rx.max(1) as f64;
        let hits = after.hits.saturating_sub(before.hits) as f64;
        let lookups = hits + after.misses.saturating_sub(before.misses) as f64;
        let mut drops = BTreeMap::new();
        for (k, v) in &after.drops {
            let d = v.saturating_sub(*before.drops.get(k).unwrap_or(&0));
            if d > 0 {
                drops.insert(k.clone(), d);
            }
        }
        let update_ms = &self.update_ms;
        Measured {
            point: Some(p.clone()),
            mpps: rx as f64 / self.seconds / 1e6,
            ns_per_packet: after.busy_ns.saturating_sub(before.busy_ns) as f64 / n,
            cycles_per_packet: after.cycles.saturating_sub(before.cycles) as f64 / n,
            wall_cycles_per_packet: {
                // The interval's wall time per packet and worker in the
                // workers' time-stamp counter cycles (its rate: busy cycles
                // over busy time), receive included: OVS's pmd-stats
                // measure.
                let busy_ns = after.busy_ns.saturating_sub(before.busy_ns) as f64;
                let busy_cycles = after.cycles.saturating_sub(before.cycles) as f64;
                if busy_ns > 0.0 {
                    self.seconds * 1e9 * p.workers.max(1) as f64 / n * busy_cycles / busy_ns
                } else {
                    0.0
                }
            },
            cache_hit_rate: if lookups > 0.0 { hits / lookups } else { 0.0 },
            cache_entries: after.entries,
            cache_masks: after.masks,
            recirc_entries: after.recirc_entries,
            recirc_masks: after.recirc_masks,
            recirc_hit_rate: {
                let h = after.recirc_hits.saturating_sub(before.recirc_hits) as f64;
                let m = after.recirc_misses.saturating_sub(before.recirc_misses) as f64;
                if h + m > 0.0 {
                    h / (h + m)
                } else {
                    0.0
                }
            },
            rx_packets: rx,
            packets_per_poll: rx as f64 / after.polls.saturating_sub(before.polls).max(1) as f64,
            idle_poll_rate: after.idle_polls.saturating_sub(before.idle_polls) as f64
                / after.polls.saturating_sub(before.polls).max(1) as f64,
            delivered: after.out_tx.saturating_sub(before.out_tx) as f64 / n,
            outputs_per_packet: after.all_tx.saturating_sub(before.all_tx) as f64 / n,
            drops,
            update_ms_mean: if update_ms.is_empty() {
                0.0
            } else {
                update_ms.iter().sum::<f64>() / update_ms.len() as f64
            },
            update_ms_max: update_ms.iter().cloned().fold(0.0, f64::max),
            ..Measured::default()
        }
    }
}

#[derive(Clone, Default)]
struct Snapshot {
    rx: u64,
    busy_ns: u64,
    cycles: u64,
    hits: u64,
    misses: u64,
    drops: BTreeMap<String, u64>,
    out_tx: u64,
    all_tx: u64,
    entries: usize,
    masks: usize,
    recirc_entries: usize,
    recirc_masks: usize,
    recirc_hits: u64,
    recirc_misses: u64,
    polls: u64,
    idle_polls: u64,
}

fn snapshot(d: &Daemon, out_port: &str) -> Snapshot {
    let mut s = Snapshot::default();
    for r in &d.shared.reports {
        let r = r.lock().unwrap_or_else(|e| e.into_inner());
        s.rx += r.rx_packets;
        s.busy_ns += r.busy_ns;
        s.cycles += r.busy_cycles;
        s.hits += r.cache_hits;
        s.misses += r.cache_misses;
        s.entries += r.cache_entries;
        s.masks = s.masks.max(r.cache_masks);
        s.recirc_entries += r.recirc_entries;
        s.recirc_masks = s.recirc_masks.max(r.recirc_masks);
        s.recirc_hits += r.recirc_hits;
        s.recirc_misses += r.recirc_misses;
        s.polls += r.polls;
        s.idle_polls += r.idle_polls;
        for (k, v) in &r.drops {
            *s.drops.entry(k.to_string()).or_default() += v;
        }
    }
    for (name, _, c) in d.shared.port_counters() {
        s.all_tx += c.tx_packets;
        if name == out_port {
            s.out_tx += c.tx_packets;
        }
    }
    s
}

/// Runs `p` in a child process (`exe --point JSON`, which must call
/// `run_point` and print the result as JSON): each point gets a clean
/// address space (its memory figures its own) and, for DPDK, its own EAL.
pub fn run_point_in_child(exe: &Path, p: &Point, dir: &Path) -> Result<Measured, ReplayError> {
    let json = serde_json::to_string(p).map_err(ReplayError::PointJson)?;
    let out = std::process::Command::new(exe)
        .arg("--point")
        .arg(&json)
        .arg("--dir")
        .arg(dir)
        .output()
        .map_err(|source| ReplayError::Child {
            exe: exe.to_path_buf(),
            source,
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().rev().find(|l| l.starts_with('{'));
    match (out.status.success(), line) {
        (true, Some(l)) => serde_json::from_str(l).map_err(ReplayError::ChildResult),
        _ => Err(ReplayError::ChildFailed {
            scenario: p.scenario.clone(),
            io: p.io.name(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }),
    }
}

/// The directory benchmark results go to: `target/replay` of the workspace.
pub fn default_out_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/replay")
}
