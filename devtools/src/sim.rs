//! Multi-host simulation: several hosts, each a full compiled switch (bridges
//! and router instances), joined by a physical VLAN-trunk switch and an
//! external flat segment; VM endpoints and an upstream router that speak ARP
//! and ICMP. Deterministic: time is a counter, frames are processed in FIFO
//! order, every step is recorded.
//!
//! This is the test harness for the spec's packet walks (§8): a walk is a
//! list of per-host traces (the same `xlate` the datapath runs) plus the
//! frames seen on the wire.
//!
//! Owns the simulated hosts, endpoints and physical segments, and their
//! records (`steps`, `wire`). May call: `pipeline` (each host's switch
//! and datapath) and `topology` (hosts compiled as the agents do);
//! nothing else of devtools.
#![deny(unsafe_code)]

use pipeline::datapath::Datapath;
use pipeline::key::{Field, FlowKey, Mac, VLAN_CFI};
use pipeline::packet::{parse, synth::frame_from_key, PacketBuf, PacketPool};
use pipeline::switch::{ConfigError, PortId, Switch};
use pipeline::trace::{key_summary, Trace};
use pipeline::wire::{ethertype, ipproto};
use pipeline::xlate::{xlate, XlateOptions};
use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::Arc;
use topology::{build_host, Topology, TopologyError};

const TCP_SYN: u16 = 0x002;
const TCP_ACK: u16 = 0x010;

/// Most frames one `run` may move before it stops (a loop guard).
const MAX_STEPS: usize = 10_000;

/// A segment of the physical network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// The tenant VLAN trunk (every host's `eth1`).
    Fabric,
    /// The external flat network (every host's `eth2`, the upstream router).
    External,
}

/// Where a frame is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Place {
    /// Entering host `host` on port `port`.
    HostPort { host: String, port: String },
    /// On a wire segment, sent from `from` (a host name or an endpoint).
    Wire { segment: Segment, from: String },
    /// Delivered to an endpoint.
    Endpoint(String),
}

/// One frame seen somewhere, summarised.
#[derive(Clone, Debug, PartialEq)]
pub struct WireFrame {
    pub segment: Segment,
    pub from: String,
    pub key: FlowKey,
}

impl WireFrame {
    pub fn vlan(&self) -> Option<u16> {
        self.key.vlan_vid()
    }
}

/// A host's part of a walk.
#[derive(Clone, Debug)]
pub struct HostStep {
    pub host: String,
    pub trace: Trace,
}

/// An endpoint: a VM on a host port, or a station on the external segment.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub name: String,
    pub mac: Mac,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    /// Further addresses it answers ICMP echo for (hosts behind a router).
    pub extra_ips: Vec<Ipv4Addr>,
    attach: Attach,
    arp: BTreeMap<Ipv4Addr, Mac>,
    pending: Vec<(Ipv4Addr, FlowKey)>,
    /// Frames delivered to this endpoint.
    pub received: Vec<FlowKey>,
    /// The same frames, as bytes.
    pub received_frames: Vec<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Attach {
    HostPort { host: String, port: String },
    Segment(Segment),
}

struct SimHost {
    name: String,
    config: pipeline::switch::SwitchConfig,
    switch: Arc<Switch>,
    /// Uplink NIC per segment.
    nics: BTreeMap<Segment, String>,
}

/// A learning switch on one segment: (VLAN, MAC) → attachment.
#[derive(Default)]
struct PhysicalSwitch {
    fdb: BTreeMap<(Option<u16>, Mac), String>,
    /// (VLAN, MAC) → every attachment it was learned on (to detect flapping).
    seen_on: BTreeMap<(Option<u16>, Mac), Vec<String>>,
}

pub struct Sim {
    topology: Topology,
    hosts: Vec<SimHost>,
    pub endpoints: Vec<Endpoint>,
    fabric: PhysicalSwitch,
    external: PhysicalSwitch,
    queue: VecDeque<(Place, Vec<u8>)>,
    pool: PacketPool,
    /// The datapath every host's packets run through (uncached: each
    /// walk is translated with a trace, then run).
    pub datapath: Datapath,
    now_ns: u64,
    /// Every host traversal, in order.
    pub steps: Vec<HostStep>,
    /// Every frame on a physical segment, in order.
    pub wire: Vec<WireFrame>,
}

/// Errors building or driving a simulation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("{0}")]
    Topology(#[from] TopologyError),
    /// A host's compiled configuration did not build into a switch.
    #[error("{0}")]
    Build(#[from] ConfigError),
    #[error("no endpoint named `{0}`")]
    NoSuchEndpoint(String),
    #[error("no host {0}")]
    NoSuchHost(String),
    #[error("{host}: no port {port}")]
    NoSuchPort { host: String, port: String },
    /// Frames kept moving: `run` stopped after this many.
    #[error("no quiescence after {0} frames (a loop?)")]
    NoQuiescence(usize),
    #[error("packet pool exhausted")]
    PoolExhausted,
}

fn in_subnet(a: Ipv4Addr, b: Ipv4Addr, prefix: u8) -> bool {
    let m = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix as u32)
    };
    u32::from(a) & m == u32::from(b) & m
}

impl Sim {
    /// Builds every host of `t`, and an endpoint for every VM port.
    pub fn new(t: &Topology) -> Result<Sim, SimError> {
        let mut hosts = Vec::new();
        for h in &t.hosts {
            let mut cfg = build_host(t, &h.name, 1)?;
            let switch = cfg.build()?;
            let mut nics = BTreeMap::new();
            for (physnet, bridge) in h.mappings() {
                let external = t
                    .networks
                    .iter()
                    .any(|n| n.physnet == physnet && n.external);
                if let Some(nic) = h.nics.get(bridge) {
                    nics.insert(
                        if external {
                            Segment::External
                        } else {
                            Segment::Fabric
                        },
                        nic.clone(),
                    );
                }
            }
            hosts.push(SimHost {
                name: h.name.clone(),
                config: cfg,
                switch,
                nics,
            });
        }
        let mut endpoints = Vec::new();
        for p in &t.ports {
            let sub = t.subnets.iter().find(|s| {
                s.network == p.network
                    && topology::model::Cidr::parse(&s.cidr)
                        .is_some_and(|c| c.contains(u32::from(p.ip)))
            });
            let (prefix, gateway) = match sub {
                Some(s) => (
                    topology::model::Cidr::parse(&s.cidr).map_or(24, |c| c.len),
                    Some(s.gateway_ip),
                ),
                None => (24, None),
            };
            endpoints.push(Endpoint {
                name: p.name.clone(),
                mac: p.mac,
                ip: p.ip,
                prefix,
                gateway,
                extra_ips: Vec::new(),
                attach: Attach::HostPort {
                    host: p.host.clone(),
                    port: p.device.clone(),
                },
                arp: BTreeMap::new(),
                pending: Vec::new(),
                received: Vec::new(),
                received_frames: Vec::new(),
            });
        }
        Ok(Sim {
            topology: t.clone(),
            hosts,
            endpoints,
            fabric: PhysicalSwitch::default(),
            external: PhysicalSwitch::default(),
            queue: VecDeque::new(),
            pool: PacketPool::new(1024, 2048),
            datapath: Datapath::new(0, 1),
            now_ns: 0,
            steps: Vec::new(),
            wire: Vec::new(),
        })
    }

    /// Applies a changed topology to every host at run time (as the agents
    /// would): bridges, flows and router instances are updated in place, MAC
    /// tables, neighbours and connections survive, except the connections
    /// of floating IPs no longer bound to a host. Returns how many
    /// connections were deleted. Endpoints are not added or removed.
    pub fn apply_topology(&mut self, t: &Topology) -> Result<usize, SimError> {
        topology::validate(t)?;
        let mut deleted = 0;
        for h in &mut self.hosts {
            deleted +=
                topology::update_host(&mut h.config, &self.topology, t, &h.name, self.now_ns, &[])?
                    .connections_deleted;
            h.switch = h.config.build()?;
        }
        self.topology = t.clone();
        Ok(deleted)
    }

    /// Adds a station on the external segment (e.g. the upstream router).
    pub fn add_external_station(
        &mut self,
        name: &str,
        mac: Mac,
        ip: Ipv4Addr,
        prefix: u8,
        extra_ips: Vec<Ipv4Addr>,
    ) {
        self.endpoints.push(Endpoint {
            name: name.to_string(),
            mac,
            ip,
            prefix,
            gateway: None,
            extra_ips,
            attach: Attach::Segment(Segment::External),
            arp: BTreeMap::new(),
            pending: Vec::new(),
            received: Vec::new(),
            received_frames: Vec::new(),
        });
    }

    pub fn switch(&self, host: &str) -> Option<&Arc<Switch>> {
        self.hosts
            .iter()
            .find(|h| h.name == host)
            .map(|h| &h.switch)
    }

    /// The frames endpoint `name` received (since the last `clear_records`).
    pub fn endpoint_frames(&self, name: &str) -> Vec<Vec<u8>> {
        self.endpoint(name)
            .map(|e| e.received_frames.clone())
            .unwrap_or_default()
    }

    pub fn endpoint(&self, name: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.name == name)
    }

    fn endpoint_index(&self, name: &str) -> Result<usize, SimError> {
        self.endpoints
            .iter()
            .position(|e| e.name == name)
            .ok_or_else(|| SimError::NoSuchEndpoint(name.to_string()))
    }

    /// Clears the recorded steps, wire frames and endpoints' received frames
    /// (learned MACs and ARP caches stay): the start of a new walk.
    pub fn clear_records(&mut self) {
        self.steps.clear();
        self.wire.clear();
        for e in &mut self.endpoints {
            e.received.clear();
            e.received_frames.clear();
        }
    }

    /// Endpoint `from` sends an ICMP echo request to `to` (ARPing first if
    /// the next hop is not in its cache), then the network runs until quiet.
    pub fn ping(&mut self, from: &str, to: Ipv4Addr, id: u16) -> Result<(), SimError> {
        let i = self.endpoint_index(from)?;
        let e = &self.endpoints[i];
        let mut k = FlowKey::ZERO;
        k.set(Field::DlType, ethertype::IPV4 as u64);
        k.set(Field::DlSrc, e.mac.to_u64());
        k.set(Field::NwSrc, u32::from(e.ip) as u64);
        k.set(Field::NwDst, u32::from(to) as u64);
        k.set(Field::NwProto, ipproto::ICMP as u64);
        k.set(Field::NwTtl, 64);
        k.set(Field::TpSrc, 8);
        k.set(Field::IcmpId, id as u64);
        self.endpoint_send_ip(i, k);
        self.run()
    }

    /// Endpoint `from` puts the frame `key` describes on its link as is (no
    /// ARP, addresses as given: for spoofing and isolation tests), then the
    /// network runs.
    pub fn send_frame(&mut self, from: &str, key: &FlowKey) -> Result<(), SimError> {
        let i = self.endpoint_index(from)?;
        self.endpoint_emit(i, frame_from_key(key, 0));
        self.run()
    }

    /// Endpoint `from` sends an ARP request for `target`, then the network runs.
    pub fn arp(&mut self, from: &str, target: Ipv4Addr) -> Result<(), SimError> {
        let i = self.endpoint_index(from)?;
        self.endpoint_arp_request(i, target);
        self.run()
    }

    /// Sends an IP packet from endpoint `i`, resolving the next hop.
    fn endpoint_send_ip(&mut self, i: usize, mut k: FlowKey) {
        let e = &self.endpoints[i];
        let dst = Ipv4Addr::from(k.nw_dst());
        let next_hop = if in_subnet(dst, e.ip, e.prefix) {
            dst
        } else {
            e.gateway.unwrap_or(dst)
        };
        match e.arp.get(&next_hop) {
            Some(mac) => {
                k.set(Field::DlDst, mac.to_u64());
                let frame = frame_from_key(&k, 0);
                self.endpoint_emit(i, frame);
            }
            None => {
                self.endpoints[i].pending.push((next_hop, k));
                self.endpoint_arp_request(i, next_hop);
            }
        }
    }

    fn endpoint_arp_request(&mut self, i: usize, target: Ipv4Addr) {
        let e = &self.endpoints[i];
        let mut k = FlowKey::ZERO;
        k.set(Field::DlType, ethertype::ARP as u64);
        k.set(Field::DlSrc, e.mac.to_u64());
        k.set(Field::DlDst, Mac::BROADCAST.to_u64());
        k.set(Field::NwProto, 1);
        k.set(Field::NwSrc, u32::from(e.ip) as u64);
        k.set(Field::NwDst, u32::from(target) as u64);
        k.set(Field::ArpSha, e.mac.to_u64());
        let frame = frame_from_key(&k, 0);
        self.endpoint_emit(i, frame);
    }

    fn endpoint_emit(&mut self, i: usize, frame: Vec<u8>) {
        let e = &self.endpoints[i];
        let place = match &e.attach {
            Attach::HostPort { host, port } => Place::HostPort {
                host: host.clone(),
                port: port.clone(),
            },
            Attach::Segment(s) => Place::Wire {
                segment: *s,
                from: e.name.clone(),
            },
        };
        self.queue.push_back((place, frame));
    }

    /// An endpoint receives a frame: answers ARP and ICMP echo, learns ARP replies.
    fn endpoint_receive(&mut self, i: usize, frame: &[u8]) {
        let Ok(parsed) = parse(frame, 0) else { return };
        let k = parsed.key;
        let me = self.endpoints[i].clone();
        if k.dl_dst() != me.mac && !k.dl_dst().is_multicast() {
            return; // a flooded unicast for someone else
        }
        self.endpoints[i].received.push(k);
        self.endpoints[i].received_frames.push(frame.to_vec());
        if k.is_arp() {
            let spa = Ipv4Addr::from(k.nw_src());
            let tpa = Ipv4Addr::from(k.nw_dst());
            let sha = Mac::from_u64(k.get(Field::ArpSha));
            let op = k.get(Field::NwProto);
            if op == 1 && (tpa == me.ip) {
                let mut r = FlowKey::ZERO;
                r.set(Field::DlType, ethertype::ARP as u64);
                r.set(Field::DlSrc, me.mac.to_u64());
                r.set(Field::DlDst, sha.to_u64());
                r.set(Field::NwProto, 2);
                r.set(Field::NwSrc, u32::from(me.ip) as u64);
                r.set(Field::NwDst, u32::from(spa) as u64);
                r.set(Field::ArpSha, me.mac.to_u64());
                r.set(Field::ArpTha, sha.to_u64());
                self.endpoints[i].arp.insert(spa, sha);
                let f = frame_from_key(&r, 0);
                self.endpoint_emit(i, f);
            } else if op == 2 && tpa == me.ip {
                self.endpoints[i].arp.insert(spa, sha);
                let ready: Vec<FlowKey> = {
                    let e = &mut self.endpoints[i];
                    let (go, stay): (Vec<_>, Vec<_>) =
                        e.pending.drain(..).partition(|(nh, _)| *nh == spa);
                    e.pending = stay;
                    go.into_iter().map(|(_, k)| k).collect()
                };
                for k in ready {
                    self.endpoint_send_ip(i, k);
                }
            }
            return;
        }
        let dst = Ipv4Addr::from(k.nw_dst());
        let mine = dst == me.ip || me.extra_ips.contains(&dst);
        if k.is_ipv4() && mine && k.nw_proto() == ipproto::UDP {
            // No UDP listener: ICMP port unreachable, quoting the datagram,
            // back to the previous hop (as a host's kernel would).
            let mut orig = PacketBuf::new(2048);
            let mut out = PacketBuf::new(2048);
            let err = pipeline::packet::generate::IcmpError {
                icmp_type: 3,
                code: 3,
                src: dst,
                dst: Ipv4Addr::from(k.nw_src()),
                eth_src: me.mac,
                eth_dst: k.dl_src(),
            };
            if orig.set_data(frame).is_ok()
                && pipeline::packet::parse_into(&mut orig).is_ok()
                && err.build(&orig, &mut out).is_ok()
            {
                let bytes = out.data().to_vec();
                self.endpoint_emit(i, bytes);
            }
            return;
        }
        if k.is_ipv4() && mine && k.nw_proto() == ipproto::ICMP && k.get(Field::TpSrc) == 8 {
            let mut r = FlowKey::ZERO;
            r.set(Field::DlType, ethertype::IPV4 as u64);
            r.set(Field::DlSrc, me.mac.to_u64());
            r.set(Field::NwSrc, u32::from(dst) as u64);
            r.set(Field::NwDst, k.nw_src() as u64);
            r.set(Field::NwProto, ipproto::ICMP as u64);
            r.set(Field::NwTtl, 64);
            r.set(Field::TpSrc, 0);
            r.set(Field::IcmpId, k.get(Field::IcmpId));
            // Reply to where the request came from at L2 (as a host with a
            // default route through that neighbour would).
            self.endpoints[i]
                .arp
                .entry(Ipv4Addr::from(k.nw_src()))
                .or_insert(k.dl_src());
            let src = Ipv4Addr::from(k.nw_src());
            let e = &self.endpoints[i];
            let nh = if in_subnet(src, e.ip, e.prefix) {
                src
            } else {
                e.gateway.unwrap_or(src)
            };
            self.endpoints[i]
                .arp
                .entry(nh)
                .or_insert_with(|| k.dl_src());
            self.endpoint_send_ip(i, r);
            return;
        }
        if k.is_ipv4() && mine && k.nw_proto() == ipproto::TCP {
            // A minimal TCP: SYN is answered with SYN/ACK, SYN/ACK with ACK
            // (every port listens).
            let flags = k.get(Field::TcpFlags) as u16;
            let answer = match (flags & TCP_SYN != 0, flags & TCP_ACK != 0) {
                (true, false) => TCP_SYN | TCP_ACK,
                (true, true) => TCP_ACK,
                _ => return,
            };
            let mut r = FlowKey::ZERO;
            r.set(Field::DlType, ethertype::IPV4 as u64);
            r.set(Field::DlSrc, me.mac.to_u64());
            r.set(Field::NwSrc, u32::from(dst) as u64);
            r.set(Field::NwDst, k.nw_src() as u64);
            r.set(Field::NwProto, ipproto::TCP as u64);
            r.set(Field::NwTtl, 64);
            r.set(Field::TpSrc, k.tp_dst() as u64);
            r.set(Field::TpDst, k.tp_src() as u64);
            r.set(Field::TcpFlags, answer as u64);
            self.endpoints[i]
                .arp
                .entry(Ipv4Addr::from(k.nw_src()))
                .or_insert(k.dl_src());
            self.endpoint_send_ip(i, r);
        }
    }

    /// Endpoint `from` opens a TCP connection to `to`:`port` (SYN, then
    /// the network runs: the peer answers SYN/ACK, `from` completes with
    /// ACK). Success shows as a SYN/ACK in `from`'s received frames.
    pub fn tcp_connect(
        &mut self,
        from: &str,
        to: Ipv4Addr,
        sport: u16,
        port: u16,
    ) -> Result<(), SimError> {
        let i = self.endpoint_index(from)?;
        let e = &self.endpoints[i];
        let mut k = FlowKey::ZERO;
        k.set(Field::DlType, ethertype::IPV4 as u64);
        k.set(Field::DlSrc, e.mac.to_u64());
        k.set(Field::NwSrc, u32::from(e.ip) as u64);
        k.set(Field::NwDst, u32::from(to) as u64);
        k.set(Field::NwProto, ipproto::TCP as u64);
        k.set(Field::NwTtl, 64);
        k.set(Field::TpSrc, sport as u64);
        k.set(Field::TpDst, port as u64);
        k.set(Field::TcpFlags, TCP_SYN as u64);
        self.endpoint_send_ip(i, k);
        self.run()
    }

    /// Moves frames until nothing is left to move.
    pub fn run(&mut self) -> Result<(), SimError> {
        let mut steps = 0;
        while let Some((place, frame)) = self.queue.pop_front() {
            steps += 1;
            if steps > MAX_STEPS {
                return Err(SimError::NoQuiescence(MAX_STEPS));
            }
            self.now_ns += 1_000;
            match place {
                Place::HostPort { host, port } => self.host_input(&host, &port, frame)?,
                Place::Wire { segment, from } => self.wire_input(segment, &from, frame),
                Place::Endpoint(name) => {
                    let i = self.endpoint_index(&name)?;
                    self.endpoint_receive(i, &frame);
                }
            }
        }
        Ok(())
    }

    fn host_input(&mut self, host: &str, port: &str, frame: Vec<u8>) -> Result<(), SimError> {
        let h = self
            .hosts
            .iter()
            .find(|h| h.name == host)
            .ok_or_else(|| SimError::NoSuchHost(host.to_string()))?;
        let sw = h.switch.clone();
        let in_port = sw
            .port_by_name(port)
            .ok_or_else(|| SimError::NoSuchPort {
                host: host.to_string(),
                port: port.to_string(),
            })?
            .id;
        let Ok(parsed) = parse(&frame, in_port.0) else {
            return Ok(());
        };
        let mut trace = Trace::new(&format!(
            "{host} in_port={port},{}",
            key_summary(&parsed.key)
        ));
        let x = xlate(
            &sw,
            in_port,
            &parsed.key,
            XlateOptions {
                learn: true,
                now_ns: self.now_ns,
            },
            Some(&mut trace),
        );
        self.steps.push(HostStep {
            host: host.to_string(),
            trace,
        });
        let Some(mut pkt) = self.pool.get() else {
            return Err(SimError::PoolExhausted);
        };
        if pkt.set_data(&frame).is_err() {
            self.pool.put(pkt);
            return Ok(());
        }
        pkt.in_port = in_port.0;
        let _ = pipeline::packet::parse_into(&mut pkt);
        let mut outs: Vec<(PortId, Vec<u8>)> = Vec::new();
        let mut sink = |p: PortId, b: PacketBuf| outs.push((p, b.data().to_vec()));
        self.datapath
            .run(&sw, &x.program, pkt, self.now_ns, &mut self.pool, &mut sink);
        for (p, bytes) in outs {
            let Some(port) = sw.port(p) else { continue };
            let nic_segment = h_nic_segment(&self.hosts, host, &port.name);
            match nic_segment {
                Some(seg) => self.queue.push_back((
                    Place::Wire {
                        segment: seg,
                        from: host.to_string(),
                    },
                    bytes,
                )),
                None => {
                    let target = self.endpoints.iter().find(|e| {
                        e.attach
                            == Attach::HostPort {
                                host: host.to_string(),
                                port: port.name.clone(),
                            }
                    });
                    if let Some(e) = target {
                        self.queue
                            .push_back((Place::Endpoint(e.name.clone()), bytes));
                    }
                }
            }
        }
        Ok(())
    }

    /// A frame on a physical segment: learned and forwarded by its switch.
    fn wire_input(&mut self, segment: Segment, from: &str, frame: Vec<u8>) {
        let Ok(parsed) = parse(&frame, 0) else { return };
        let k = parsed.key;
        self.wire.push(WireFrame {
            segment,
            from: from.to_string(),
            key: k,
        });
        let vlan = k.vlan_vid();
        let sw = match segment {
            Segment::Fabric => &mut self.fabric,
            Segment::External => &mut self.external,
        };
        let src = k.dl_src();
        if !src.is_multicast() {
            sw.fdb.insert((vlan, src), from.to_string());
            let seen = sw.seen_on.entry((vlan, src)).or_default();
            if !seen.iter().any(|s| s == from) {
                seen.push(from.to_string());
            }
        }
        // Attachments of this segment: hosts' NICs and stations.
        let mut attachments: Vec<(String, Place)> = Vec::new();
        for h in &self.hosts {
            if let Some(nic) = h.nics.get(&segment) {
                attachments.push((
                    h.name.clone(),
                    Place::HostPort {
                        host: h.name.clone(),
                        port: nic.clone(),
                    },
                ));
            }
        }
        for e in &self.endpoints {
            if e.attach == Attach::Segment(segment) {
                attachments.push((e.name.clone(), Place::Endpoint(e.name.clone())));
            }
        }
        let learned = if k.dl_dst().is_multicast() {
            None
        } else {
            sw.fdb.get(&(vlan, k.dl_dst())).cloned()
        };
        for (name, place) in attachments {
            if name == from {
                continue;
            }
            if learned.as_ref().is_some_and(|l| *l != name) {
                continue;
            }
            self.queue.push_back((place, frame.clone()));
        }
    }

    /// Attachments on which `mac` was seen as a source, per VLAN.
    pub fn fabric_sources(&self, mac: Mac) -> Vec<(Option<u16>, Vec<String>)> {
        self.fabric
            .seen_on
            .iter()
            .filter(|((_, m), _)| *m == mac)
            .map(|((v, _), s)| (*v, s.clone()))
            .collect()
    }

    /// The per-host traces of the last walk, rendered.
    pub fn render_steps(&self) -> String {
        let mut s = String::new();
        for st in &self.steps {
            s.push_str(&format!(
                "######## host {}\n{}\n",
                st.host,
                st.trace.render()
            ));
        }
        s
    }
}

fn h_nic_segment(hosts: &[SimHost], host: &str, port: &str) -> Option<Segment> {
    hosts
        .iter()
        .find(|h| h.name == host)?
        .nics
        .iter()
        .find(|(_, n)| *n == port)
        .map(|(s, _)| *s)
}

/// A frame's VLAN tag as the spec writes it, for assertions.
pub fn tci_of(k: &FlowKey) -> Option<u16> {
    (k.vlan_tci() & VLAN_CFI != 0).then_some(k.vlan_tci() & 0x0fff)
}
