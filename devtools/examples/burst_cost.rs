//! The cost of one scenario's packets through a worker's datapath, with no
//! I/O: the host of the scenario (spec topology), its warm-up, then
//! `--bursts` bursts of 32 of its frames through `Datapath::process_burst`.
//!
//! Wall-clock ns/packet varies with what else the machine runs; under
//! callgrind the instruction count per packet does not, which makes this
//! the before/after figure for a hot-path change on a shared machine:
//!
//!     cargo build --release -p devtools --example burst_cost
//!     valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!         target/release/examples/burst_cost snat-egress --flows 64 --bursts 2000
//!     callgrind_annotate /tmp/cg.out | head     # Ir; divide by the packets
//!
//! `--connections N` first fills the connection table with N connections
//! of other hosts (a compute node's is never empty); `--owners N` gives
//! its shards to N workers (the packets still run on one). `--programs`
//! prints, after the run, each cached megaflow's program as the fast path
//! runs it (after the compiler's peepholes) and its hits.
//!
//! It prints the packets it ran, so Ir/packet is the total over that
//! (warm-up and setup included, a few percent at 2,000 bursts).

#![deny(unsafe_code)]

use devtools::traffic::{self, FrameSize, TrafficError, TrafficScenario};
use pipeline::datapath::{Datapath, BURST};
use pipeline::drop::DropReason;
use pipeline::packet::{PacketBuf, PacketPool, DEFAULT_MAX_FRAME};
use pipeline::switch::{ConfigError, PortId};
use std::process::ExitCode;
use std::time::Instant;
use topology::TopologyError;

/// Why the run did not happen.
#[derive(Debug, thiserror::Error)]
enum BurstCostError {
    /// An option without its number: `usage` says what it takes.
    #[error("{usage}")]
    Usage { usage: &'static str },
    #[error(transparent)]
    Traffic(#[from] TrafficError),
    #[error("lab topology: {0}")]
    Topology(#[source] TopologyError),
    /// The scenario's host does not compile.
    #[error("{0}")]
    Compile(#[source] TopologyError),
    #[error("{0}")]
    Build(#[from] ConfigError),
    /// The host has no port of this name.
    #[error("{0}")]
    NoPort(String),
    #[error("packet pool empty")]
    PoolEmpty,
    #[error("{0}")]
    Frame(DropReason),
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("burst_cost: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `n` connections of other hosts in the table (`--connections`), as a
/// compute node's table is never empty: lookups that find nothing then
/// cost what they cost in production.
fn prefill(ct: &pipeline::conntrack::ConnTable, n: usize) {
    use pipeline::conntrack::{PacketInfo, Tuple};
    for i in 0..n as u32 {
        let t = Tuple {
            zone: 60_000,
            proto: pipeline::wire::ipproto::UDP,
            src: std::net::Ipv4Addr::from(0x0a63_0000 | (i >> 16)),
            dst: std::net::Ipv4Addr::new(192, 0, 2, 1),
            sport: i as u16,
            dport: 53,
        };
        let _ = ct.track(t, PacketInfo::default(), true, None, 1);
    }
}

/// Runs the bursts the command line asks for and prints the cost.
fn run() -> Result<(), BurstCostError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut scenario = TrafficScenario::L2Egress;
    let mut flows = 1usize;
    let mut bursts = 20_000usize;
    let mut connections = 0usize;
    let mut owners = 1usize;
    let mut programs = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--programs" => programs = true,
            "--flows" => {
                flows = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or(BurstCostError::Usage { usage: "--flows N" })?
            }
            "--bursts" => {
                bursts = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or(BurstCostError::Usage {
                        usage: "--bursts N",
                    })?
            }
            "--connections" => {
                connections =
                    it.next()
                        .and_then(|v| v.parse().ok())
                        .ok_or(BurstCostError::Usage {
                            usage: "--connections N",
                        })?
            }
            "--owners" => {
                owners = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or(BurstCostError::Usage {
                        usage: "--owners N",
                    })?
            }
            name => scenario = TrafficScenario::parse(name)?,
        }
    }
    let t = devtools::spec::topology().map_err(BurstCostError::Topology)?;
    let count = flows.max(BURST);
    let traffic = traffic::generate(&t, scenario, flows, FrameSize::Fixed(64), count)?;
    let mut cfg = topology::build_host(&t, scenario.host(), owners.max(1))
        .map_err(BurstCostError::Compile)?;
    if owners > 1 {
        cfg.set_conntrack(
            pipeline::conntrack::ConnTable::new(Default::default(), Default::default())
                .with_owners(owners, pipeline::rss::Rss::default()),
        );
    }
    let sw = cfg.build()?;
    prefill(&sw.conntrack, connections);
    let mut dp = Datapath::new(0, 65_536);
    let mut pool = PacketPool::new(4 * BURST, DEFAULT_MAX_FRAME);
    let mut burst: Vec<PacketBuf> = Vec::with_capacity(BURST);
    let mut out: Vec<PacketBuf> = Vec::with_capacity(4 * BURST);
    let mut now = 1_000_000_000u64;
    let mut run = |port: &str, frames: &[Vec<u8>], now: u64| {
        let in_port = sw
            .port_by_name(port)
            .map(|p| p.id)
            .ok_or_else(|| BurstCostError::NoPort(port.to_string()))?;
        for chunk in frames.chunks(BURST) {
            for f in chunk {
                let mut b = pool.get().ok_or(BurstCostError::PoolEmpty)?;
                b.set_data(f).map_err(BurstCostError::Frame)?;
                burst.push(b);
            }
            let mut sink = |_: PortId, b: PacketBuf| out.push(b);
            dp.process_burst(&sw, in_port, &mut burst, now, &mut pool, &mut sink);
            for b in out.drain(..) {
                pool.put(b);
            }
        }
        Ok::<(), BurstCostError>(())
    };
    for (port, frames) in &traffic.warmup {
        run(port, frames, now)?;
    }
    // The measured bursts, made once.
    let frames = &traffic.frames;
    let chunks: Vec<Vec<Vec<u8>>> = (0..frames.len().div_ceil(BURST).max(1))
        .map(|c| {
            (0..BURST)
                .map(|j| frames[(c * BURST + j) % frames.len()].clone())
                .collect()
        })
        .collect();
    let start = Instant::now();
    let mut packets = 0u64;
    for i in 0..bursts {
        now += 1_000;
        run(scenario.in_port(), &chunks[i % chunks.len()], now)?;
        packets += BURST as u64;
    }
    if programs {
        let cached = dp.cache.entries().map(|e| ("", e));
        for (resumed, (_, _, e)) in cached.chain(dp.recirc_cache.entries().map(|e| ("resumed ", e)))
        {
            println!("{resumed}megaflow, {} hits: {:?}", e.hits, e.program.ops);
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / packets as f64;
    println!(
        "{}: {packets} packets, {flows} flow(s), {ns:.1} ns/packet (wall, includes copying the frames in), {} + {} megaflows",
        scenario.name(),
        dp.cache.len(),
        dp.recirc_cache.len()
    );
    Ok(())
}
