//! A worker's packet path: a burst in, parse, cache lookup (slow path on a
//! miss), run the program, outputs out.
//!
//! `Datapath::process_burst` reads like the path itself:
//! `parse_into` → `FlowCache::lookup` (→ `upcall` → `xlate` on a miss) →
//! count the matched flows → `run_program` (rewrites in place, copies for all
//! but the last output). Nothing here allocates per packet once the cache is
//! warm: buffers come from the worker's `PacketPool`, and a packet leaves
//! either through the output sink or back into the pool.
//!
//! Ownership: one `Datapath` per worker thread; it owns its cache and
//! counters. The `Switch` snapshot is shared read-only; MAC tables and flow
//! counters are shared live state (see their modules).

use crate::cache::{CacheCounters, FlowCache};
use crate::drop::{DropCounters, DropReason};
use crate::packet::{self, PacketBuf, PacketPool};
use crate::router::neighbour::HoldOutcome;
use crate::switch::{PortId, Switch};
use crate::xlate::{self, Generated, Op, Program, XlateOptions};

/// Packets per burst, the unit of work.
pub const BURST: usize = 32;

/// Counters of one worker's datapath.
#[derive(Clone, Debug, Default)]
pub struct DatapathCounters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Slow-path translations.
    pub upcalls: u64,
    pub drops: DropCounters,
}

/// Where output packets go: the daemon batches them per port; tests collect them.
pub trait OutputSink {
    fn output(&mut self, port: PortId, pkt: PacketBuf);
}

impl<F: FnMut(PortId, PacketBuf)> OutputSink for F {
    fn output(&mut self, port: PortId, pkt: PacketBuf) {
        self(port, pkt)
    }
}

pub struct Datapath {
    pub worker: usize,
    pub cache: FlowCache,
    /// Translations of recirculated keys (after conntrack).
    pub recirc_cache: FlowCache,
    pub counters: DatapathCounters,
    /// Disable the cache (for differential tests and measurements).
    pub use_cache: bool,
    /// Last time the periodic upkeep (neighbour aging) ran.
    last_upkeep_ns: u64,
}

/// How often a worker ages router neighbour entries.
pub const UPKEEP_INTERVAL_NS: u64 = 100_000_000;
/// Connections a worker may expire per burst (one conntrack shard per call).
pub const CT_EXPIRE_PER_BURST: usize = 32;

impl Datapath {
    pub fn new(worker: usize, cache_capacity: usize) -> Datapath {
        Datapath {
            worker,
            cache: FlowCache::new(worker, cache_capacity),
            recirc_cache: FlowCache::new(worker, cache_capacity),
            counters: DatapathCounters::default(),
            use_cache: true,
            last_upkeep_ns: 0,
        }
    }

    pub fn cache_counters(&self) -> CacheCounters {
        self.cache.counters
    }

    /// Processes a burst received on `in_port`. Every buffer ends up in the
    /// sink or back in `pool`; `burst` is left empty.
    pub fn process_burst(
        &mut self,
        sw: &Switch,
        in_port: PortId,
        burst: &mut Vec<PacketBuf>,
        now_ns: u64,
        pool: &mut PacketPool,
        sink: &mut impl OutputSink,
    ) {
        self.cache.sync(sw);
        self.recirc_cache.sync(sw);
        for mut pkt in burst.drain(..) {
            self.counters.rx_packets += 1;
            self.counters.rx_bytes += pkt.len() as u64;
            pkt.in_port = in_port.0;
            let key = match packet::parse_into(&mut pkt) {
                Ok(k) => k,
                Err(reason) => {
                    self.counters.drops.count(reason);
                    pool.put(pkt);
                    continue;
                }
            };
            let bytes = pkt.len() as u64;
            if !self.use_cache {
                let x = xlate::xlate(
                    sw,
                    in_port,
                    &key,
                    XlateOptions {
                        learn: true,
                        now_ns,
                    },
                    None,
                );
                self.counters.upcalls += 1;
                for r in &x.rules {
                    r.hit(self.worker, bytes, now_ns);
                }
                let mut env = RecircEnv {
                    sw,
                    cache: None,
                    depth: 0,
                };
                run_program(
                    &x.program,
                    pkt,
                    &mut self.counters,
                    pool,
                    sink,
                    now_ns,
                    &mut env,
                );
                continue;
            }
            let mac_generation = sw.mac_generation();
            let slot = match self.cache.lookup(&key, mac_generation) {
                Some(s) => s,
                None => {
                    self.counters.upcalls += 1;
                    let x = xlate::xlate(
                        sw,
                        in_port,
                        &key,
                        XlateOptions {
                            learn: true,
                            now_ns,
                        },
                        None,
                    );
                    self.cache.insert(&key, x, mac_generation, now_ns)
                }
            };
            self.cache.refresh_macs(slot, sw, now_ns);
            self.cache.account(slot, bytes, now_ns);
            let Some(entry) = self.cache.entry(slot) else {
                self.counters.drops.count(DropReason::FlowDrop);
                pool.put(pkt);
                continue;
            };
            let mut env = RecircEnv {
                sw,
                cache: Some(&mut self.recirc_cache),
                depth: 0,
            };
            run_program(
                &entry.program,
                pkt,
                &mut self.counters,
                pool,
                sink,
                now_ns,
                &mut env,
            );
        }
        self.cache.credit_rules();
        self.recirc_cache.credit_rules();
        release_held(sw, &mut self.counters, pool, sink, now_ns);
        // Upkeep, bounded per burst: expired connections of one conntrack
        // shard; now and then, aged neighbours.
        sw.conntrack.expire(now_ns, CT_EXPIRE_PER_BURST);
        if now_ns.saturating_sub(self.last_upkeep_ns) >= UPKEEP_INTERVAL_NS {
            self.last_upkeep_ns = now_ns;
            for rt in &sw.router_runtime {
                rt.expire(now_ns);
            }
        }
    }
}

/// Replays a program on one packet.
#[inline]
pub fn run_program(
    prog: &Program,
    mut pkt: PacketBuf,
    counters: &mut DatapathCounters,
    pool: &mut PacketPool,
    sink: &mut impl OutputSink,
    now_ns: u64,
    env: &mut RecircEnv,
) {
    let last = match prog.last_output {
        Some(l) => l,
        None if prog.has_side_ops => usize::MAX,
        None => {
            counters
                .drops
                .count(prog.drop_reason.unwrap_or(DropReason::FlowDrop));
            pool.put(pkt);
            return;
        }
    };
    for (i, op) in prog.ops.iter().enumerate() {
        match op {
            Op::Rewrite(r) => {
                if let Err(reason) = packet::apply(&mut pkt, r) {
                    counters.drops.count(reason);
                    pool.put(pkt);
                    return;
                }
            }
            Op::Output(port) if i == last => {
                counters.tx_packets += 1;
                counters.tx_bytes += pkt.len() as u64;
                sink.output(*port, pkt);
                return;
            }
            Op::Output(port) => match pool.copy_of(&pkt) {
                Some(copy) => {
                    counters.tx_packets += 1;
                    counters.tx_bytes += copy.len() as u64;
                    sink.output(*port, copy);
                }
                None => counters.drops.count(DropReason::PoolExhausted),
            },
            Op::Generate {
                packet,
                limit,
                program,
            } => {
                if limit.as_ref().is_some_and(|rt| !rt.0.icmp_allowed(now_ns)) {
                    continue;
                }
                let Some(mut g) = pool.get() else {
                    counters.drops.count(DropReason::PoolExhausted);
                    continue;
                };
                let built = match packet {
                    Generated::IcmpError(e) => e.build(&pkt, &mut g),
                    Generated::ArpRequest(a) => a.build(&mut g),
                };
                match built {
                    Ok(()) => run_program(program, g, counters, pool, sink, now_ns, env),
                    Err(reason) => {
                        counters.drops.count(reason);
                        pool.put(g);
                    }
                }
            }
            Op::Recirc {
                zone,
                commit,
                nat,
                apply_nat,
                recirc_id,
                in_port,
                pipeline,
            } => {
                let r = RecircOp {
                    zone: *zone,
                    commit: *commit,
                    nat: *nat,
                    apply_nat: *apply_nat,
                    recirc_id: *recirc_id,
                    in_port: *in_port,
                    pipeline,
                };
                if *recirc_id == 0 {
                    // `ct` without `table`: track (and NAT) in place, go on.
                    if let Err(reason) = conntrack_in_place(&mut pkt, &r, now_ns, env.sw) {
                        counters.drops.count(reason);
                        pool.put(pkt);
                        return;
                    }
                    continue;
                }
                if i + 1 == prog.ops.len() {
                    recirculate(pkt, &r, counters, pool, sink, now_ns, env);
                    return;
                }
                // More actions follow: they see the packet as it was.
                match pool.copy_of(&pkt) {
                    Some(copy) => recirculate(copy, &r, counters, pool, sink, now_ns, env),
                    None => counters.drops.count(DropReason::PoolExhausted),
                }
            }
            Op::Hold {
                runtime,
                iface,
                ip,
                arp,
                solicit,
            } => match runtime.0.hold(*iface, *ip, pkt.data(), now_ns) {
                HoldOutcome::HeldSolicit => {
                    send_arp_request(arp, solicit, counters, pool, sink, now_ns, env)
                }
                HoldOutcome::Held => {}
                HoldOutcome::Dropped(reason) => counters.drops.count(reason),
            },
            Op::NeighLearn {
                runtime,
                iface,
                ip,
                mac,
            } => {
                runtime.0.learn(*iface, *ip, *mac, now_ns);
            }
            Op::Probe {
                runtime,
                iface,
                ip,
                arp,
                solicit,
            } => {
                if runtime.0.probe(*iface, *ip, now_ns) {
                    send_arp_request(arp, solicit, counters, pool, sink, now_ns, env);
                }
            }
        }
    }
    // Not output: dropped (counted by the program's reason) or held.
    if let Some(reason) = prog.drop_reason {
        counters.drops.count(reason);
    }
    pool.put(pkt);
}

/// Builds the ARP request a neighbour entry asked for and runs its
/// program (out of the router's interface and through the bridges).
fn send_arp_request(
    arp: &crate::packet::generate::ArpRequest,
    solicit: &Program,
    counters: &mut DatapathCounters,
    pool: &mut PacketPool,
    sink: &mut impl OutputSink,
    now_ns: u64,
    env: &mut RecircEnv,
) {
    match pool.get() {
        Some(mut g) => match arp.build(&mut g) {
            Ok(()) => run_program(solicit, g, counters, pool, sink, now_ns, env),
            Err(reason) => {
                counters.drops.count(reason);
                pool.put(g);
            }
        },
        None => counters.drops.count(DropReason::PoolExhausted),
    }
}

/// Sends the packets that neighbour resolutions released (slow path: they
/// are translated one by one, not cached).
pub fn release_held(
    sw: &Switch,
    counters: &mut DatapathCounters,
    pool: &mut PacketPool,
    sink: &mut impl OutputSink,
    now_ns: u64,
) {
    for (instance, rt) in sw.router_runtime.iter().enumerate() {
        for r in rt.take_released() {
            let Some(mut pkt) = pool.get() else {
                counters.drops.count(DropReason::PoolExhausted);
                continue;
            };
            let key = match pkt
                .set_data(&r.frame)
                .and_then(|_| packet::parse_into(&mut pkt))
            {
                Ok(k) => k,
                Err(reason) => {
                    counters.drops.count(reason);
                    pool.put(pkt);
                    continue;
                }
            };
            let at = crate::switch::RouterIfaceRef {
                instance,
                iface: r.iface,
            };
            let x = xlate::xlate_router_output(
                sw,
                at,
                &key,
                XlateOptions {
                    learn: true,
                    now_ns,
                },
                None,
            );
            let mut env = RecircEnv {
                sw,
                cache: None,
                depth: 0,
            };
            run_program(&x.program, pkt, counters, pool, sink, now_ns, &mut env);
        }
    }
}

/// Most recirculations of one packet (conntrack passes).
pub const MAX_RECIRC: u8 = 4;

/// What a recirculating packet needs: the switch, the worker's cache for
/// recirculated keys (None: translate every time, as tests and the
/// simulator do), and how deep it already is.
pub struct RecircEnv<'a> {
    pub sw: &'a Switch,
    pub cache: Option<&'a mut FlowCache>,
    pub depth: u8,
}

struct RecircOp<'a> {
    zone: u16,
    commit: bool,
    nat: Option<crate::conntrack::Nat>,
    apply_nat: bool,
    recirc_id: u32,
    in_port: u32,
    pipeline: &'a [u64],
}

/// Tracks the packet and, when asked, rewrites it to the connection's
/// translated tuple (both sides at once, as OVS's `ct(nat)` does). Returns
/// the packet's `ct_state`.
fn conntrack_in_place(
    pkt: &mut PacketBuf,
    r: &RecircOp,
    now_ns: u64,
    sw: &Switch,
) -> Result<u8, DropReason> {
    use crate::key::{ct_state, ipproto};
    let parsed = packet::parse(pkt.data(), pkt.in_port)?;
    let Some((t, info)) = crate::conntrack::tuple_of(&parsed.key, r.zone) else {
        if packet::embedded::icmp_embedded(pkt).is_some() {
            return related_error(pkt, r.zone, r.apply_nat, false, sw).map(|(st, _)| st);
        }
        return Ok(ct_state::TRK | ct_state::INV);
    };
    let v = sw.conntrack.track(t, info, r.commit, r.nat, now_ns)?;
    if r.apply_nat {
        let n = v.translated;
        let mut rw: [Option<packet::Rewrite>; 4] = [None; 4];
        if n.src != t.src {
            rw[0] = Some(packet::Rewrite::Ipv4Src(u32::from(n.src)));
        }
        if n.dst != t.dst {
            rw[1] = Some(packet::Rewrite::Ipv4Dst(u32::from(n.dst)));
        }
        if t.proto == ipproto::ICMP {
            if n.sport != t.sport {
                rw[2] = Some(packet::Rewrite::IcmpId(n.sport));
            }
        } else {
            if n.sport != t.sport {
                rw[2] = Some(packet::Rewrite::L4Src(n.sport));
            }
            if n.dport != t.dport {
                rw[3] = Some(packet::Rewrite::L4Dst(n.dport));
            }
        }
        for x in rw.iter().flatten() {
            packet::apply(pkt, x)?;
        }
    }
    Ok(v.state)
}

/// An ICMP error about a tracked connection: `+rel` (`+rpl` when it travels
/// in the reply direction), its quoted packet and outer destination
/// translated back through the connection's NAT. The outer source, when it
/// must change too, is returned instead of applied if `defer_src` (a router
/// applies it at POSTROUTING). Errors about no known connection are `+inv`.
fn related_error(
    pkt: &mut PacketBuf,
    zone: u16,
    apply_nat: bool,
    defer_src: bool,
    sw: &Switch,
) -> Result<(u8, Option<u32>), DropReason> {
    use crate::key::ct_state;
    let e = packet::embedded::icmp_embedded(pkt).ok_or(DropReason::CtInvalid)?;
    let Some((m, dir)) = sw.conntrack.related_of(zone, &e) else {
        return Ok((ct_state::TRK | ct_state::INV, None));
    };
    let mut state = ct_state::TRK | ct_state::REL;
    if dir == crate::conntrack::Dir::Reply {
        state |= ct_state::RPL;
    }
    if !apply_nat {
        return Ok((state, None));
    }
    let outer = packet::parse(pkt.data(), pkt.in_port)?.key;
    let mapped = packet::embedded::Embedded {
        proto: e.proto,
        src: u32::from(m.src),
        dst: u32::from(m.dst),
        sport: m.sport,
        dport: m.dport,
    };
    if mapped != e {
        packet::embedded::rewrite_embedded(pkt, &mapped)?;
    }
    // The error goes back to whoever sent the quoted packet.
    if outer.nw_dst() != mapped.src {
        packet::apply(pkt, &packet::Rewrite::Ipv4Dst(mapped.src))?;
    }
    // An error sent by the quoted packet's destination speaks for it.
    let mut deferred = None;
    if outer.nw_src() == e.dst && mapped.dst != e.dst {
        if defer_src {
            deferred = Some(mapped.dst);
        } else {
            packet::apply(pkt, &packet::Rewrite::Ipv4Src(mapped.dst))?;
        }
    }
    Ok((state, deferred))
}

/// Conntrack (and NAT) on the packet, then its walk from the recirculation
/// point, found in the cache or translated.
fn recirculate(
    mut pkt: PacketBuf,
    r: &RecircOp,
    counters: &mut DatapathCounters,
    pool: &mut PacketPool,
    sink: &mut impl OutputSink,
    now_ns: u64,
    env: &mut RecircEnv,
) {
    use crate::key::{ipproto, Field, PACKET_WORDS};
    if env.depth >= MAX_RECIRC {
        counters.drops.count(DropReason::ResubmitDepth);
        pool.put(pkt);
        return;
    }
    let sw = env.sw;
    let key = if r.recirc_id & xlate::RECIRC_ROUTER == 0 {
        // OpenFlow `ct(table=T)`: NAT (if asked) applies whole, now.
        let state = match conntrack_in_place(&mut pkt, r, now_ns, sw) {
            Ok(x) => x,
            Err(reason) => {
                counters.drops.count(reason);
                pool.put(pkt);
                return;
            }
        };
        let mut key = match packet::parse_into(&mut pkt) {
            Ok(k) => k,
            Err(reason) => {
                counters.drops.count(reason);
                pool.put(pkt);
                return;
            }
        };
        for (i, w) in r.pipeline.iter().enumerate() {
            if let Some(slot) = key.w.get_mut(PACKET_WORDS + i) {
                *slot = *w;
            }
        }
        key.set(Field::InPort, r.in_port as u64);
        key.set(Field::CtState, state as u64);
        key.set(Field::CtZone, r.zone as u64);
        key.set(Field::RecircId, r.recirc_id as u64);
        key
    } else {
        let Ok(parsed) = packet::parse(pkt.data(), pkt.in_port) else {
            counters.drops.count(DropReason::CtInvalid);
            pool.put(pkt);
            return;
        };
        let Some((t, info)) = crate::conntrack::tuple_of(&parsed.key, r.zone) else {
            // An ICMP error: related to a connection by its quoted packet.
            let (state, deferred) = match related_error(&mut pkt, r.zone, r.apply_nat, true, sw) {
                Ok(x) => x,
                Err(reason) => {
                    counters.drops.count(reason);
                    pool.put(pkt);
                    return;
                }
            };
            let mut key = match packet::parse_into(&mut pkt) {
                Ok(k) => k,
                Err(reason) => {
                    counters.drops.count(reason);
                    pool.put(pkt);
                    return;
                }
            };
            for (i, w) in r.pipeline.iter().enumerate() {
                if let Some(slot) = key.w.get_mut(PACKET_WORDS + i) {
                    *slot = *w;
                }
            }
            if let Some(addr) = deferred {
                key.set(xlate::SNAT_ADDR_REG, addr as u64);
                key.set(
                    xlate::SNAT_PORT_REG,
                    xlate::SNAT_PENDING | xlate::SNAT_ADDR_ONLY,
                );
            }
            key.set(Field::CtState, state as u64);
            key.set(Field::CtZone, r.zone as u64);
            key.set(Field::RecircId, r.recirc_id as u64);
            return continue_recirculated(pkt, key, counters, pool, sink, now_ns, env);
        };
        let v = match sw.conntrack.track(t, info, r.commit, r.nat, now_ns) {
            Ok(v) => v,
            Err(reason) => {
                counters.drops.count(reason);
                pool.put(pkt);
                return;
            }
        };
        let mut base = parsed.key;
        for (i, w) in r.pipeline.iter().enumerate() {
            if let Some(slot) = base.w.get_mut(PACKET_WORDS + i) {
                *slot = *w;
            }
        }
        let key = xlate::after_ct_key(&base, &t, &v, r.recirc_id);
        if key.get(xlate::SNAT_PORT_REG) & xlate::SNAT_PENDING != 0 {
            pkt.nat_sport = packet::NAT_SPORT_SET | v.translated.sport as u32;
        }
        // The destination side of NAT happens now; the source side at output.
        let mut rewrites: [Option<packet::Rewrite>; 3] = [None; 3];
        if key.nw_dst() != base.nw_dst() {
            rewrites[0] = Some(packet::Rewrite::Ipv4Dst(key.nw_dst()));
        }
        if t.proto != ipproto::ICMP && key.tp_dst() != base.tp_dst() {
            rewrites[1] = Some(packet::Rewrite::L4Dst(key.tp_dst()));
        }
        if t.proto == ipproto::ICMP && key.get(Field::IcmpId) != base.get(Field::IcmpId) {
            rewrites[2] = Some(packet::Rewrite::IcmpId(key.get(Field::IcmpId) as u16));
        }
        for rw in rewrites.iter().flatten() {
            if let Err(reason) = packet::apply(&mut pkt, rw) {
                counters.drops.count(reason);
                pool.put(pkt);
                return;
            }
        }
        key
    };
    continue_recirculated(pkt, key, counters, pool, sink, now_ns, env);
}

/// The walk of a packet after conntrack, from the cache or translated.
fn continue_recirculated(
    pkt: PacketBuf,
    key: crate::key::FlowKey,
    counters: &mut DatapathCounters,
    pool: &mut PacketPool,
    sink: &mut impl OutputSink,
    now_ns: u64,
    env: &mut RecircEnv,
) {
    let sw = env.sw;
    let in_port = PortId(pkt.in_port);
    let bytes = pkt.len() as u64;
    env.depth += 1;
    let program = match env.cache.as_deref_mut() {
        Some(cache) => {
            let generation = sw.mac_generation();
            let slot = match cache.lookup(&key, generation) {
                Some(s) => s,
                None => {
                    let x = xlate::xlate(
                        sw,
                        in_port,
                        &key,
                        XlateOptions {
                            learn: true,
                            now_ns,
                        },
                        None,
                    );
                    cache.insert(&key, x, generation, now_ns)
                }
            };
            cache.refresh_macs(slot, sw, now_ns);
            cache.account(slot, bytes, now_ns);
            cache.entry(slot).map(|e| e.program.clone())
        }
        None => {
            let x = xlate::xlate(
                sw,
                in_port,
                &key,
                XlateOptions {
                    learn: true,
                    now_ns,
                },
                None,
            );
            for rule in &x.rules {
                rule.hit(0, bytes, now_ns);
            }
            Some(std::sync::Arc::new(x.program))
        }
    };
    match program {
        Some(p) => run_program(&p, pkt, counters, pool, sink, now_ns, env),
        None => {
            counters.drops.count(DropReason::FlowDrop);
            pool.put(pkt);
        }
    }
    env.depth -= 1;
}
