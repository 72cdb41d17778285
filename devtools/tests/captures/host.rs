//! A host of the spec's topology in its steady state, whose datapath runs
//! one frame per burst (as `random_frames` and `ct_stage_agreement` drive
//! it), so that what it sent, dropped or held can be told per frame.
//!
//! The steady state is what `traffic` brings a host to before the replay
//! benchmark measures it: the warm-ups of the §8 walks that host carries
//! (every VM has spoken, so NORMAL knows its MAC; routers resolved their
//! neighbours; the SNAT connection a reply needs exists), plus vm2
//! speaking on compute1. Each of those walks' first frame must then leave by the port
//! the walk says, or the host is not what the roles assume.

use devtools::traffic::{self, FrameSize, TrafficScenario};
use pipeline::datapath::Datapath;
use pipeline::drop::DropReason;
use pipeline::packet::{PacketBuf, PacketPool};
use pipeline::switch::{PortId, Switch};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::cast::Cast;

/// The walks whose steady state each host is brought to.
fn walks(host: &str) -> &'static [TrafficScenario] {
    match host {
        "network1" => &[TrafficScenario::SnatEgress, TrafficScenario::SnatReply],
        _ => &[
            TrafficScenario::L2Egress,
            TrafficScenario::L2Ingress,
            TrafficScenario::DvrEgress,
            TrafficScenario::RoutedSameHost,
            TrafficScenario::FipEgress,
            TrafficScenario::FipIngress,
        ],
    }
}

pub struct Host {
    sw: Arc<Switch>,
    dp: Datapath,
    pool: PacketPool,
    now_ns: u64,
}

/// What one frame did.
#[derive(Default)]
pub struct Outcome {
    /// (port, frame) for every frame sent, in order.
    pub outputs: Vec<(String, Vec<u8>)>,
    /// Drop counters that went up, with by how much.
    pub drops: Vec<(DropReason, u64)>,
    /// Frames held for neighbour resolution, or taken in by reassembly
    /// (a fragment waits for its datagram in front of conntrack).
    pub held: u64,
    /// Held frames (of earlier bursts) a resolution released in this one:
    /// their outputs are among `outputs`.
    pub released: u64,
}

impl Host {
    /// `name` of the spec's topology, warmed up.
    pub fn steady(name: &str, c: &Cast) -> Host {
        let t = devtools::spec::topology().expect("the spec's topology");
        let mut cfg = topology::build_host(&t, name, 1).expect("host");
        let mut h = Host {
            sw: cfg.build().expect("switch"),
            dp: Datapath::new(0, 4096),
            pool: PacketPool::new(256, pipeline::packet::DEFAULT_MAX_FRAME),
            now_ns: 1_000_000_000,
        };
        if name == "compute1" {
            h.send("qvo-vm2", &devtools::traffic::arp_request(c.vm2, c.gw1.1));
        }
        for &walk in walks(name) {
            let tr = traffic::generate(&t, walk, 1, FrameSize::Fixed(64), 1).expect("traffic");
            for (port, frames) in &tr.warmup {
                for f in frames {
                    h.send(port, f);
                }
            }
        }
        for &walk in walks(name) {
            let tr = traffic::generate(&t, walk, 1, FrameSize::Fixed(64), 1).expect("traffic");
            let out = h.send(walk.in_port(), &tr.frames[0]);
            assert!(
                out.outputs.iter().any(|(p, _)| p == walk.out_port()),
                "{name} after its warm-up: {} leaves by {}; it went to {:?}, dropped {:?}",
                walk.name(),
                walk.out_port(),
                out.outputs.iter().map(|(p, _)| p).collect::<Vec<_>>(),
                out.drops
            );
        }
        h
    }

    /// Runs `frame` into `port` as a burst of its own.
    pub fn send(&mut self, port: &str, frame: &[u8]) -> Outcome {
        self.now_ns += 1_000_000;
        let in_port = self
            .sw
            .port_by_name(port)
            .unwrap_or_else(|| panic!("no port {port}"))
            .id;
        let mut buf = self.pool.get().expect("a free buffer");
        if let Err(reason) = buf.set_data(frame) {
            // Longer than any buffer: the port refuses it before the datapath.
            self.pool.put(buf);
            return Outcome {
                drops: vec![(reason, 1)],
                ..Outcome::default()
            };
        }
        let drops0 = self.dp.counters.drops.counts;
        let (held0, released0) = self.neighbour_counters();
        let fragments0 = self.sw.conntrack.stats().defrag.fragments;
        let mut sent: Vec<(PortId, PacketBuf)> = Vec::new();
        self.dp.process_burst(
            &self.sw,
            in_port,
            &mut vec![buf],
            self.now_ns,
            &mut self.pool,
            &mut |p: PortId, b: PacketBuf| sent.push((p, b)),
        );
        let (held, released) = self.neighbour_counters();
        let fragments = self.sw.conntrack.stats().defrag.fragments - fragments0;
        let drops = DropReason::all()
            .zip(self.dp.counters.drops.counts.iter().zip(drops0))
            .filter(|(_, (now, before))| **now > *before)
            .map(|(r, (now, before))| (r, now - before))
            .collect();
        let outputs = sent
            .into_iter()
            .map(|(p, b)| {
                let name = self
                    .sw
                    .port(p)
                    .map_or_else(|| format!("{p:?}"), |p| p.name.clone());
                let bytes = b.data().to_vec();
                self.pool.put(b);
                (name, bytes)
            })
            .collect();
        Outcome {
            outputs,
            drops,
            held: held - held0 + fragments,
            released: released - released0,
        }
    }

    fn neighbour_counters(&self) -> (u64, u64) {
        self.sw.router_runtime.iter().fold((0, 0), |(h, r), rt| {
            (
                h + rt.counters.held.load(Relaxed),
                r + rt.counters.released.load(Relaxed),
            )
        })
    }
}
