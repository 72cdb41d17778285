//! One host of the spec's topology driven frame by frame: the host a
//! traffic scenario crosses, warmed up as `traffic` leaves it, its
//! datapath fed bursts on named ports and its outputs collected by port
//! name; and what the tests ask of the frames that come out.
#![allow(dead_code)]

use devtools::spec;
use devtools::traffic::{self, FrameSize, TrafficScenario};
use pipeline::datapath::Datapath;
use pipeline::drop::DropReason;
use pipeline::key::{Field, FlowKey};
use pipeline::packet::parse;
use pipeline::packet::{PacketBuf, PacketPool, DEFAULT_MAX_FRAME};
use pipeline::switch::{PortId, Switch};
use pipeline::wire::{ipproto, Ipv4Packet};
use std::net::Ipv4Addr;
use std::sync::Arc;

pub struct Host {
    pub sw: Arc<Switch>,
    pub dp: Datapath,
    pool: PacketPool,
    now_ns: u64,
}

impl Host {
    /// The host `s` runs on, warmed up for `s`.
    pub fn for_scenario(s: TrafficScenario) -> (Host, Vec<Vec<u8>>) {
        let (h, mut frames) = Host::for_scenarios(&[s]);
        (h, frames.remove(0))
    }

    /// The host `s` runs on, warmed up for `flows` flows of `s`; a frame
    /// of each flow.
    pub fn for_flows(s: TrafficScenario, flows: usize) -> (Host, Vec<Vec<u8>>) {
        let t = spec::topology().expect("topology");
        let mut h = Host::on(s.host());
        let traffic =
            traffic::generate(&t, s, flows, FrameSize::Fixed(64), flows).expect("traffic");
        for (port, warm) in &traffic.warmup {
            h.send(port, warm);
        }
        (h, traffic.frames)
    }

    /// The host the scenarios run on (one host), warmed up for each in
    /// turn; each one's frames.
    pub fn for_scenarios(ss: &[TrafficScenario]) -> (Host, Vec<Vec<Vec<u8>>>) {
        let t = spec::topology().expect("topology");
        let mut h = Host::on(ss[0].host());
        let mut frames = Vec::new();
        for s in ss {
            assert_eq!(s.host(), ss[0].host(), "one host");
            let traffic = traffic::generate(&t, *s, 1, FrameSize::Fixed(64), 1).expect("traffic");
            for (port, warm) in &traffic.warmup {
                h.send(port, warm);
            }
            frames.push(traffic.frames);
        }
        (h, frames)
    }

    /// Host `name` of the spec's topology, as built (no warm-up).
    pub fn on(name: &str) -> Host {
        Host::on_with(name, |_| {})
    }

    /// Host `name` of the spec's topology, its switch configuration
    /// changed by `adjust` before it is built (no warm-up).
    pub fn on_with(name: &str, adjust: impl FnOnce(&mut pipeline::switch::SwitchConfig)) -> Host {
        let t = spec::topology().expect("topology");
        let mut cfg = topology::build_host(&t, name, 1).expect("host");
        adjust(&mut cfg);
        Host {
            sw: cfg.build().expect("switch"),
            dp: Datapath::new(0, 1024),
            pool: PacketPool::new(256, DEFAULT_MAX_FRAME),
            now_ns: 1_000_000_000,
        }
    }

    /// The trace of `frame` in on `port`, at the time the next `send`
    /// runs, on the live state.
    pub fn trace(&self, port: &str, frame: &[u8]) -> pipeline::trace::Trace {
        let in_port = self.sw.port_by_name(port).expect("port").id;
        let key = parse(frame, in_port.0).expect("frame parses").key;
        pipeline::xlate::trace::trace_key(&self.sw, in_port, &key, port, self.now_ns + 1_000_000)
    }

    /// Runs frames in on `port`; the (port name, frame) of every output.
    pub fn send(&mut self, port: &str, frames: &[Vec<u8>]) -> Outputs {
        self.now_ns += 1_000_000;
        let in_port = self.sw.port_by_name(port).expect("port").id;
        let mut burst: Vec<PacketBuf> = frames
            .iter()
            .map(|f| {
                let mut b = self.pool.get().expect("buffer");
                b.set_data(f).expect("fits");
                b
            })
            .collect();
        let mut out = Vec::new();
        let sw = self.sw.clone();
        let mut sink = |p: PortId, b: PacketBuf| {
            out.push((sw.port(p).expect("port").name.clone(), b.data().to_vec()));
        };
        self.dp.process_burst(
            &self.sw,
            in_port,
            &mut burst,
            self.now_ns,
            &mut self.pool,
            &mut sink,
        );
        Outputs(out)
    }

    /// Lets `ns` pass before the next burst (timeouts, upkeep).
    pub fn wait(&mut self, ns: u64) {
        self.now_ns += ns;
    }

    pub fn drops(&self, r: DropReason) -> u64 {
        self.dp.counters.drops.get(r)
    }
}

/// The (port name, frame) of every output of a burst; shown in failure
/// messages as port, length and IPv4 addresses, not bytes.
#[derive(Default)]
pub struct Outputs(pub Vec<(String, Vec<u8>)>);

impl IntoIterator for Outputs {
    type Item = (String, Vec<u8>);
    type IntoIter = std::vec::IntoIter<(String, Vec<u8>)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Outputs {
    type Item = &'a (String, Vec<u8>);
    type IntoIter = std::slice::Iter<'a, (String, Vec<u8>)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl Extend<(String, Vec<u8>)> for Outputs {
    fn extend<I: IntoIterator<Item = (String, Vec<u8>)>>(&mut self, iter: I) {
        self.0.extend(iter)
    }
}

impl std::ops::Deref for Outputs {
    type Target = Vec<(String, Vec<u8>)>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::fmt::Debug for Outputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows: Vec<String> = self
            .0
            .iter()
            .map(|(p, b)| match ipv4_addrs(b) {
                Some((s, d)) if b.len() > 14 && (b[12..14] == [8, 0] || b[16..18] == [8, 0]) => {
                    format!("{p}: {} bytes {s} -> {d}", b.len())
                }
                _ => format!("{p}: {} bytes", b.len()),
            })
            .collect();
        f.debug_list().entries(rows).finish()
    }
}

/// The IPv4 header of an Ethernet frame (after any 802.1Q tag).
pub fn l3_offset(frame: &[u8]) -> usize {
    if frame[12..14] == [0x81, 0x00] {
        18
    } else {
        14
    }
}

pub fn ipv4_addrs(frame: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let ip = Ipv4Packet::new_checked(&frame[l3_offset(frame)..])?;
    Some((Ipv4Addr::from(ip.src_addr()), Ipv4Addr::from(ip.dst_addr())))
}

pub fn tenant(a: Ipv4Addr) -> bool {
    a.octets()[0] == 10
}

/// `frame` with its IPv4 source and destination replaced (checksums kept right).
pub fn readdress(frame: &[u8], src: Option<Ipv4Addr>, dst: Option<Ipv4Addr>) -> Vec<u8> {
    let mut k: FlowKey = parse(frame, 0).expect("frame").key;
    if let Some(s) = src {
        k.set(Field::NwSrc, u32::from(s) as u64);
    }
    if let Some(d) = dst {
        k.set(Field::NwDst, u32::from(d) as u64);
    }
    let payload = frame
        .len()
        .saturating_sub(14 + 4 * (k.vlan_vid().is_some() as usize) + 28);
    pipeline::packet::synth::frame_from_key(&k, payload)
}

/// An ICMP error about `quoted` (an IPv4 header and 8 bytes of its
/// payload), from `outer`'s source to its destination.
pub fn icmp_error_frame(outer: &FlowKey, icmp_type: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
    let mut k = *outer;
    k.set(Field::NwProto, ipproto::ICMP as u64);
    k.set(Field::TpSrc, icmp_type as u64);
    k.set(Field::TpDst, code as u64);
    let mut f = pipeline::packet::synth::frame_from_key(&k, quoted.len());
    let o = l3_offset(&f);
    let icmp_at = o + 20;
    f[icmp_at + 8..icmp_at + 8 + quoted.len()].copy_from_slice(quoted);
    let end = icmp_at + 8 + quoted.len();
    f[icmp_at + 2..icmp_at + 4].copy_from_slice(&[0, 0]);
    let sum = pipeline::wire::checksum::checksum(&f[icmp_at..end]);
    f[icmp_at + 2..icmp_at + 4].copy_from_slice(&sum.to_be_bytes());
    f
}

/// The IPv4 header and first 8 payload bytes of `frame`.
pub fn quote_of(frame: &[u8]) -> Vec<u8> {
    let o = l3_offset(frame);
    frame[o..o + 28].to_vec()
}

/// The (source, destination) of the packet an ICMP error quotes.
pub fn quoted_addrs(frame: &[u8]) -> (Ipv4Addr, Ipv4Addr) {
    let inner = l3_offset(frame) + 20 + 8;
    ipv4_addrs_at(frame, inner)
}

pub fn ipv4_addrs_at(frame: &[u8], at: usize) -> (Ipv4Addr, Ipv4Addr) {
    let b = |i: usize| Ipv4Addr::new(frame[i], frame[i + 1], frame[i + 2], frame[i + 3]);
    (b(at + 12), b(at + 16))
}
