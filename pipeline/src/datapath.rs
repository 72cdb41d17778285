//! A worker's packet path: a burst in, parse, cache lookup (slow path on a
//! miss), run the program, outputs out.
//!
//! `Datapath::forward_burst` reads like the path itself, in two stages per
//! burst: every packet `parse_into` where it lies, then each run of
//! packets that fall in one megaflow (`FlowCache::lookup` for the first,
//! `run_end` for the rest; `xlate` on a miss) goes through its program
//! as a group, one op at a time for all of them (`Burst::run_members`; a
//! run of rewrites is one step, each member through all of it; a program
//! whose ops touch more than their packet, one packet at a time). Rewrites are made in place; copies go out for all but the last
//! output; conntrack steps run through `conntrack::stage`, a lazy step's
//! guard (`Op::CtGuard`) letting a packet of no stored connection go on in
//! place; a final ct step is taken by the group's members in order
//! (`recirculate_members`: a member repeating the previous one's key after
//! a steady verdict takes its result without a lookup) and the resumed
//! walks that touch only their packet run as groups too. A packet is moved
//! only when its burst is done: those whose walk ends in an output stay in
//! the burst with their ports (`burst_ports`), the worker hands a burst
//! bound for one port to it as it is, and `process_burst` gives them to
//! the sink. Per port and per flow, packets leave in the order they came.
//! Nothing here allocates per packet once the cache is warm: buffers come
//! from the worker's `PacketPool`, and a packet leaves through the output
//! sink or the burst, or goes back to the pool counted under its
//! `DropReason` (`Burst::discard`, `Burst::drop`).
//!
//! Ownership: one `Datapath` per worker thread; it owns its caches and
//! counters. The `Switch` snapshot is shared read-only; MAC tables, router
//! run-time state, flow counters and the connection table are shared live
//! state (see their modules).
//!
//! May call: `packet`, `cache`, `xlate` (upcalls), `program`, `conntrack`
//! (the ct stage), `router::neighbour` (held packets), `switch`, `drop`.

use crate::cache::{CacheCounters, FlowCache};
use crate::conntrack::defrag::{Datagram, Defragged};
use crate::conntrack::stage::{self, CtGuard, CtMode, CtResult, CtStep};
use crate::drop::{DropCounters, DropReason};
use crate::ids::{PortId, RouterIfaceRef};
use crate::key::FlowKey;
use crate::packet::generate::ArpRequest;
use crate::packet::{self, PacketBuf, PacketPool};
use crate::program::{Generated, Op, Program, RuntimeRef};
use crate::router::neighbour::HoldOutcome;
use crate::switch::Switch;
use crate::xlate::{self, XlateOptions};
use std::sync::Arc;

/// Packets per burst, the unit of work.
pub const BURST: usize = 32;
/// How often a worker ages router neighbour entries.
pub const UPKEEP_INTERVAL_NS: u64 = 100_000_000;
/// Connections a worker may expire per burst (one conntrack shard per call).
pub const CT_EXPIRE_PER_BURST: usize = 32;
/// Most conntrack steps one packet may resume from (nested recirculations).
pub const MAX_RECIRC: u8 = 4;

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
    /// Translations of resumed keys (after a conntrack step).
    pub recirc_cache: FlowCache,
    pub counters: DatapathCounters,
    /// Disable the caches (for differential tests and measurements).
    pub use_cache: bool,
    /// The keys of the packets of a burst being processed (kept, not
    /// zeroed per burst).
    keys: Box<[FlowKey; BURST]>,
    /// The keys of a group's members at a conntrack step (the same).
    ct_keys: Box<[FlowKey; BURST]>,
    /// What became of each packet of the burst being processed.
    fates: Vec<Fate>,
    /// The output port of each packet `forward_burst` left in its burst.
    burst_ports: Vec<PortId>,
    /// Last time the periodic upkeep (neighbour aging) ran.
    last_upkeep_ns: u64,
}

impl Datapath {
    pub fn new(worker: usize, cache_capacity: usize) -> Datapath {
        Datapath {
            worker,
            cache: FlowCache::new(worker, cache_capacity),
            recirc_cache: FlowCache::new(worker, cache_capacity),
            counters: DatapathCounters::default(),
            use_cache: true,
            keys: Box::new([FlowKey::ZERO; BURST]),
            ct_keys: Box::new([FlowKey::ZERO; BURST]),
            fates: Vec::with_capacity(BURST),
            burst_ports: Vec::with_capacity(BURST),
            last_upkeep_ns: 0,
        }
    }

    pub fn cache_counters(&self) -> CacheCounters {
        self.cache.counters
    }

    /// Processes a burst received on `in_port`. Every buffer ends up in the
    /// sink or back in `pool`; `burst` is left empty. (`forward_burst`,
    /// then what it left in the burst handed to the sink in order.)
    pub fn process_burst(
        &mut self,
        sw: &Switch,
        in_port: PortId,
        burst: &mut Vec<PacketBuf>,
        now_ns: u64,
        pool: &mut PacketPool,
        sink: &mut impl OutputSink,
    ) {
        self.forward_burst(sw, in_port, burst, now_ns, pool, sink);
        for (pkt, port) in burst.drain(..).zip(self.burst_ports.drain(..)) {
            sink.output(port, pkt);
        }
    }

    /// Processes a burst received on `in_port`, leaving in `burst` the
    /// packets whose walk ends in an output, in order, their ports in
    /// `burst_ports()`; everything else (copies for the other outputs of
    /// a walk, packets a router originates or releases) goes to the sink,
    /// and what is dropped or held goes back to `pool`.
    ///
    /// A packet is rewritten where it lies in the burst and moved only
    /// when its burst is done (by then its writes have long retired: a
    /// copy of a struct just written in narrow pieces stalls on store
    /// forwarding), and a burst whose packets all leave by one port can
    /// be handed to that port as it is.
    pub fn forward_burst(
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
        let use_cache = self.use_cache;
        let mut b = Burst {
            sw,
            worker: self.worker,
            counters: &mut self.counters,
            pool,
            sink,
            now_ns,
            recirc: use_cache.then_some(&mut self.recirc_cache),
            ct_keys: Some(&mut self.ct_keys),
            depth: 0,
        };
        // Two stages per BURST packets: every packet parsed in place (its
        // in_port and layout written into the buffer where it lies), then
        // each looked up and run in place.
        let keys = &mut self.keys;
        let fates = &mut self.fates;
        fates.clear();
        for chunk in burst.chunks_mut(BURST) {
            let mut parsed: [Result<(), DropReason>; BURST] = [Ok(()); BURST];
            for (i, pkt) in chunk.iter_mut().enumerate() {
                b.counters.rx_packets += 1;
                b.counters.rx_bytes += pkt.len() as u64;
                pkt.in_port = in_port.0;
                parsed[i] = packet::parse_into(pkt).map(|k| keys[i] = k);
            }
            // A run of packets of one megaflow is looked up once and
            // run as a group.
            let mut i = 0;
            while i < chunk.len() {
                match parsed[i] {
                    Err(reason) => {
                        let fate = b.discard(reason);
                        fates.push(fate);
                        i += 1;
                    }
                    Ok(()) if use_cache => {
                        let run = Run {
                            keys: &keys[..chunk.len()],
                            parsed: &parsed[..chunk.len()],
                            first: i,
                        };
                        i = b.lookup_and_run_group(&mut self.cache, run, chunk, fates);
                    }
                    Ok(()) => {
                        let fate = b.translate_and_run(&keys[i], &mut chunk[i]);
                        fates.push(fate);
                        i += 1;
                    }
                }
            }
        }
        // What was not output leaves the burst (to the pool); the rest
        // stay, in order, with their ports.
        let ports = &mut self.burst_ports;
        ports.clear();
        ports.extend(fates.iter().filter_map(|f| match f {
            Fate::Output(p) => Some(*p),
            Fate::Discard => None,
        }));
        if ports.len() != burst.len() {
            let mut i = 0;
            for pkt in burst.extract_if(.., |_| {
                i += 1;
                matches!(fates[i - 1], Fate::Discard)
            }) {
                b.pool.put(pkt);
            }
        }
        b.release_held();
        self.cache.credit_rules();
        self.recirc_cache.credit_rules();
        self.upkeep(sw, now_ns);
    }

    /// The output port of each packet the last `forward_burst` left in
    /// its burst, in order.
    pub fn burst_ports(&self) -> &[PortId] {
        &self.burst_ports
    }

    /// Runs `program` — a walk translated outside this datapath (the
    /// simulator's traced walks) — on `pkt` as a burst would, resumed walks
    /// translated every time (not cached); then sends what neighbour
    /// resolutions released.
    pub fn run(
        &mut self,
        sw: &Switch,
        program: &Program,
        pkt: PacketBuf,
        now_ns: u64,
        pool: &mut PacketPool,
        sink: &mut impl OutputSink,
    ) {
        let mut b = Burst {
            sw,
            worker: self.worker,
            counters: &mut self.counters,
            pool,
            sink,
            now_ns,
            recirc: None,
            ct_keys: Some(&mut self.ct_keys),
            depth: 0,
        };
        b.run_and_settle(program, pkt);
        b.release_held();
    }

    /// Upkeep, bounded per burst: expired connections of one conntrack
    /// shard; now and then, aged neighbours.
    fn upkeep(&mut self, sw: &Switch, now_ns: u64) {
        sw.conntrack
            .expire(self.worker, now_ns, CT_EXPIRE_PER_BURST);
        if now_ns.saturating_sub(self.last_upkeep_ns) >= UPKEEP_INTERVAL_NS {
            self.last_upkeep_ns = now_ns;
            let timed_out = sw.conntrack.defrag.expire(now_ns);
            self.counters
                .drops
                .count_n(DropReason::FragTimeout, timed_out);
            for rt in &sw.router_runtime {
                rt.expire(now_ns);
            }
        }
    }
}

/// What became of a packet once its walk ran.
#[derive(Clone, Copy, Debug)]
enum Fate {
    /// Leaves by this port (counted as transmitted).
    Output(PortId),
    /// Goes back to the pool: dropped (already counted under its reason),
    /// held (a copy waits for a neighbour) or consumed by a conntrack
    /// step that holds fragments.
    Discard,
}

/// Makes a packet what its conntrack step's result says (NAT rewrites;
/// a router's source NAT port travels with it to POSTROUTING).
#[inline]
fn apply_ct(pkt: &mut PacketBuf, r: &CtResult) -> Result<(), DropReason> {
    r.apply(pkt)?;
    if let Some(port) = r.nat_sport {
        pkt.nat_sport = packet::NAT_SPORT_SET | port as u32;
    }
    Ok(())
}

/// A steady conntrack result and the packets that repeated it since.
struct Repeated {
    /// The member whose key the run repeats.
    first: usize,
    key_out: FlowKey,
    result: CtResult,
    count: u64,
}

/// Resumed members waiting to run their (pure) walk as a group.
struct Waiting {
    slot: u32,
    program: Option<Arc<Program>>,
    members: [u8; BURST],
    len: usize,
}

impl Default for Waiting {
    fn default() -> Waiting {
        Waiting {
            slot: 0,
            program: None,
            members: [0; BURST],
            len: 0,
        }
    }
}

/// The parsed packets of a chunk of a burst, from the one to look up.
#[derive(Clone, Copy)]
struct Run<'k> {
    keys: &'k [FlowKey],
    parsed: &'k [Result<(), DropReason>],
    first: usize,
}

/// What a burst's packets share on their way: the snapshot, the worker's
/// counters, pool and output sink, the clock, the cache of resumed walks,
/// and how deep the current packet's resumptions go.
struct Burst<'a, S: OutputSink> {
    sw: &'a Switch,
    worker: usize,
    counters: &'a mut DatapathCounters,
    pool: &'a mut PacketPool,
    sink: &'a mut S,
    now_ns: u64,
    /// Translations of resumed keys (None: translate every time).
    recirc: Option<&'a mut FlowCache>,
    /// Room for a group's keys at a conntrack step (taken while in use:
    /// a nested step makes its own).
    ct_keys: Option<&'a mut [FlowKey; BURST]>,
    depth: u8,
}

impl<S: OutputSink> Burst<'_, S> {
    /// The one way a packet is dropped: counted under `reason`, its buffer
    /// back in the pool.
    fn drop(&mut self, pkt: PacketBuf, reason: DropReason) {
        self.counters.drops.count(reason);
        self.pool.put(pkt);
    }

    /// A packet still in place dropped: counted under `reason`; its
    /// buffer goes back to the pool when its fate is settled.
    fn discard(&mut self, reason: DropReason) -> Fate {
        self.counters.drops.count(reason);
        Fate::Discard
    }

    /// Carries out a packet's fate: out to the sink, or back to the pool.
    fn settle(&mut self, pkt: PacketBuf, fate: Fate) {
        match fate {
            Fate::Output(port) => self.sink.output(port, pkt),
            Fate::Discard => self.pool.put(pkt),
        }
    }

    /// Runs `prog` on a packet of no burst (a copy, or one the router
    /// made or released) and settles its fate at once.
    fn run_and_settle(&mut self, prog: &Program, mut pkt: PacketBuf) {
        let fate = self.run(prog, &mut pkt);
        self.settle(pkt, fate);
    }

    fn translate_opts(&self) -> XlateOptions {
        XlateOptions {
            learn: true,
            now_ns: self.now_ns,
        }
    }

    /// The walk of packet `run.first` from `cache` (translated and
    /// cached on a miss), and the packets after it that fall in the same
    /// megaflow, run as a group; pushes their fates and returns the index
    /// of the first packet after the group.
    fn lookup_and_run_group(
        &mut self,
        cache: &mut FlowCache,
        run: Run<'_>,
        pkts: &mut [PacketBuf],
        fates: &mut Vec<Fate>,
    ) -> usize {
        let i = run.first;
        let slot = self.cache_slot(cache, &run.keys[i], &pkts[i]);
        let Some(groupable) = cache.entry(slot).map(|e| e.program.groupable) else {
            fates.push(self.discard(DropReason::FlowDrop));
            return i + 1;
        };
        let mut end = i + 1;
        if groupable {
            let mac_generation = self.sw.mac_generation();
            // The run is counted once, at its end.
            let parsed = run.parsed;
            end = cache.run_end(
                slot,
                &run.keys[..pkts.len()],
                |k| parsed[k].is_ok(),
                end,
                mac_generation,
            );
            let bytes: u64 = pkts[i + 1..end].iter().map(|p| p.len() as u64).sum();
            cache.account_run(slot, (end - i - 1) as u64, bytes, self.now_ns);
        }
        match cache.entry(slot) {
            Some(entry) => self.run_group(&entry.program, &mut pkts[i..end], fates),
            None => {
                for _ in i..end {
                    fates.push(self.discard(DropReason::FlowDrop));
                }
            }
        }
        end
    }

    /// The slot of the packet's walk in `cache`, translated and inserted
    /// on a miss; the packet is counted for it.
    fn cache_slot(&mut self, cache: &mut FlowCache, key: &FlowKey, pkt: &PacketBuf) -> u32 {
        let mac_generation = self.sw.mac_generation();
        let slot = match cache.lookup(key, mac_generation) {
            Some(s) => s,
            None => {
                self.counters.upcalls += 1;
                let x = xlate::xlate(
                    self.sw,
                    PortId(pkt.in_port),
                    key,
                    self.translate_opts(),
                    None,
                );
                cache.insert(key, x, mac_generation, self.now_ns)
            }
        };
        cache.refresh_macs(slot, self.sw, self.now_ns);
        cache.account(slot, pkt.len() as u64, self.now_ns);
        slot
    }

    /// The packet's walk translated now (no cache), its flows credited
    /// at once, then run.
    fn translate_and_run(&mut self, key: &FlowKey, pkt: &mut PacketBuf) -> Fate {
        self.counters.upcalls += 1;
        let x = xlate::xlate(
            self.sw,
            PortId(pkt.in_port),
            key,
            self.translate_opts(),
            None,
        );
        let bytes = pkt.len() as u64;
        for r in &x.rules {
            r.hit(self.worker, bytes, self.now_ns);
        }
        self.run(&x.program, pkt)
    }

    /// Replays a program on one packet, rewriting it in place; returns
    /// what becomes of it.
    fn run(&mut self, prog: &Program, pkt: &mut PacketBuf) -> Fate {
        let Some(last) = self.last_of(prog) else {
            return self.unfinished(prog);
        };
        for (i, op) in prog.ops.iter().enumerate() {
            if let Some(fate) = self.step(prog, i, op, last, pkt) {
                return fate;
            }
        }
        self.unfinished(prog)
    }

    /// Replays a program on a run of packets of its megaflow, one op at a
    /// time for all of them (`Program::groupable`; others one packet at a
    /// time); pushes their fates in order.
    fn run_group(&mut self, prog: &Program, pkts: &mut [PacketBuf], fates: &mut Vec<Fate>) {
        let n = pkts.len();
        if n == 1 || !prog.groupable || n > BURST {
            for pkt in pkts.iter_mut() {
                let fate = self.run(prog, pkt);
                fates.push(fate);
            }
            return;
        }
        let mut done: [Option<Fate>; BURST] = [None; BURST];
        let members: [u8; BURST] = std::array::from_fn(|i| i as u8);
        self.run_members(prog, pkts, &members[..n], &mut done);
        fates.extend(done[..n].iter().map(|d| d.unwrap_or(Fate::Discard)));
    }

    /// Replays a groupable program op by op on `pkts[m]` for each member
    /// `m` (packets of its megaflow), its final conntrack step taken by
    /// all of them together (`recirculate_members`); every member's fate
    /// ends up in `done[m]`.
    fn run_members(
        &mut self,
        prog: &Program,
        pkts: &mut [PacketBuf],
        members: &[u8],
        done: &mut [Option<Fate>; BURST],
    ) {
        if members.len() > 1 && !prog.groupable {
            for &m in members {
                let m = m as usize;
                done[m] = Some(self.run(prog, &mut pkts[m]));
            }
            return;
        }
        if let Some(last) = self.last_of(prog) {
            let ops = &prog.ops[..];
            let mut i = 0;
            while i < ops.len() {
                match &ops[i] {
                    Op::Ct(step) if i + 1 == ops.len() && !step.continues() => {
                        self.recirculate_members(step, pkts, members, done);
                    }
                    Op::CtGuard(g) => self.guard_members(g, pkts, members, done),
                    Op::Rewrite(_) => {
                        // The run of rewrites from here, each member through
                        // all of it: no dispatch per op and packet.
                        let run = ops[i..]
                            .iter()
                            .position(|o| !matches!(o, Op::Rewrite(_)))
                            .map_or(ops.len(), |n| i + n);
                        self.rewrite_members(&ops[i..run], pkts, members, done);
                        i = run;
                        continue;
                    }
                    Op::Output(port) if i == last => {
                        for &m in members {
                            let m = m as usize;
                            if done[m].is_none() {
                                self.counters.tx_packets += 1;
                                self.counters.tx_bytes += pkts[m].len() as u64;
                                done[m] = Some(Fate::Output(*port));
                            }
                        }
                    }
                    op => {
                        for &m in members {
                            let m = m as usize;
                            if done[m].is_none() {
                                done[m] = self.step(prog, i, op, last, &mut pkts[m]);
                            }
                        }
                    }
                }
                i += 1;
            }
        }
        for &m in members {
            let m = m as usize;
            if done[m].is_none() {
                done[m] = Some(self.unfinished(prog));
            }
        }
    }

    /// `run` (rewrite ops only) on each member not yet done; a rewrite
    /// that fails drops its packet.
    #[inline(always)]
    fn rewrite_members(
        &mut self,
        run: &[Op],
        pkts: &mut [PacketBuf],
        members: &[u8],
        done: &mut [Option<Fate>; BURST],
    ) {
        for &m in members {
            let m = m as usize;
            if done[m].is_some() {
                continue;
            }
            for op in run {
                if let Op::Rewrite(r) = op {
                    if let Err(reason) = packet::apply_inline(&mut pkts[m], r) {
                        done[m] = Some(self.discard(reason));
                        break;
                    }
                }
            }
        }
    }

    /// A lazy step's guard for the members not yet done: a member whose
    /// connection is stored takes the step; the table is asked once per
    /// run of members with the same ports (the rest of the guard's tuple
    /// is the megaflow's), not once per packet.
    fn guard_members(
        &mut self,
        g: &CtGuard,
        pkts: &mut [PacketBuf],
        members: &[u8],
        done: &mut [Option<Fate>; BURST],
    ) {
        if self.sw.conntrack.is_empty() {
            return;
        }
        let mut last: Option<((u16, u16), bool)> = None;
        for &m in members {
            let m = m as usize;
            if done[m].is_some() {
                continue;
            }
            let stored = match g.ports_of(&pkts[m]) {
                None => true,
                Some(ports) => match last {
                    Some((p, stored)) if p == ports => stored,
                    _ => {
                        let stored = g.stored_with(&self.sw.conntrack, ports);
                        last = Some((ports, stored));
                        stored
                    }
                },
            };
            if stored {
                done[m] = Some(self.recirculate(&mut pkts[m], &g.step, None));
            }
        }
    }

    /// The conntrack step for the members not yet done, one after the
    /// other, then their walks from where they resume; a resumed walk that
    /// touches only its packet (`Program::pure`) waits to run with the
    /// members after it that resume into the same megaflow.
    ///
    /// A member whose key equals the previous member's, after a steady
    /// verdict (`CtResult::repeat`), takes that member's result without a
    /// table lookup; the connection's counters and deadline are moved for
    /// the whole run at once (`ConnTable::repeat`).
    fn recirculate_members(
        &mut self,
        step: &CtStep,
        pkts: &mut [PacketBuf],
        members: &[u8],
        done: &mut [Option<Fate>; BURST],
    ) {
        if self.depth >= MAX_RECIRC {
            for &m in members {
                if done[m as usize].is_none() {
                    done[m as usize] = Some(self.discard(DropReason::ResubmitDepth));
                }
            }
            return;
        }
        match self.ct_keys.take() {
            Some(keys) => {
                self.recirculate_with(&mut *keys, step, pkts, members, done);
                self.ct_keys = Some(keys);
            }
            None => {
                let mut keys = [FlowKey::ZERO; BURST];
                self.recirculate_with(&mut keys, step, pkts, members, done);
            }
        }
    }

    /// `recirculate_members` with `keys` to hold the members' keys.
    fn recirculate_with(
        &mut self,
        keys: &mut [FlowKey; BURST],
        step: &CtStep,
        pkts: &mut [PacketBuf],
        members: &[u8],
        done: &mut [Option<Fate>; BURST],
    ) {
        // Every member's key first: a run of equal keys is seen coming.
        for &m in members {
            let m = m as usize;
            if done[m].is_none() {
                match packet::parse(pkts[m].data(), pkts[m].in_port) {
                    Ok(p) => keys[m] = p.key,
                    Err(reason) => done[m] = Some(self.discard(reason)),
                }
            }
        }
        // No two members in a row with one key (a connection each): each
        // takes its step and its walk at once, as alone.
        let mut live = members
            .iter()
            .map(|&m| m as usize)
            .filter(|&m| done[m].is_none());
        let mut any_run = false;
        if let Some(mut before) = live.next() {
            for m in live {
                if keys[m] == keys[before] {
                    any_run = true;
                    break;
                }
                before = m;
            }
        }
        if !any_run {
            for &m in members {
                let m = m as usize;
                if done[m].is_none() {
                    done[m] = Some(self.recirculate_parsed(&mut pkts[m], step, keys[m], None));
                }
            }
            return;
        }
        self.depth += 1;
        let mut prev: Option<Repeated> = None;
        let mut waiting = Waiting::default();
        for (pos, &m) in members.iter().enumerate() {
            let m = m as usize;
            if done[m].is_some() {
                continue;
            }
            let pkt = &mut pkts[m];
            let repeated = prev
                .as_mut()
                .filter(|p| keys[p.first] == keys[m] && packet::verify::l4_ok(pkt));
            let key = match repeated {
                Some(p) => {
                    if let Err(reason) = apply_ct(pkt, &p.result) {
                        done[m] = Some(self.discard(reason));
                        continue;
                    }
                    p.count += 1;
                    p.key_out
                }
                None => {
                    self.repeat_done(prev.take());
                    let mut key = keys[m];
                    match self.ct(pkt, step, &mut key, None) {
                        Ok(result) => {
                            // A run starts when the next member has this key.
                            let next_same = members[pos + 1..]
                                .iter()
                                .map(|&n| n as usize)
                                .find(|&n| done[n].is_none())
                                .is_some_and(|n| keys[n] == keys[m]);
                            if next_same && result.repeat.is_some() {
                                prev = Some(Repeated {
                                    first: m,
                                    key_out: key,
                                    result,
                                    count: 0,
                                });
                            }
                            key
                        }
                        Err(reason) => {
                            done[m] = Some(self.discard(reason));
                            continue;
                        }
                    }
                }
            };
            self.resume(&key, m, pkts, &mut waiting, done);
        }
        self.run_waiting(&mut waiting, pkts, done);
        self.repeat_done(prev.take());
        self.depth -= 1;
    }

    /// Moves the connection of a run of repeated verdicts by its count.
    fn repeat_done(&mut self, prev: Option<Repeated>) {
        if let Some(r) = prev
            .as_ref()
            .and_then(|p| p.result.repeat.map(|x| (x, p.count)))
        {
            self.sw.conntrack.repeat(&r.0, r.1, self.now_ns);
        }
    }

    /// Member `m`'s walk from `key` (after its conntrack step): joins the
    /// waiting run when it resumes into the same megaflow; otherwise the
    /// waiting run goes first, then `m` waits (a pure walk) or runs.
    fn resume(
        &mut self,
        key: &FlowKey,
        m: usize,
        pkts: &mut [PacketBuf],
        waiting: &mut Waiting,
        done: &mut [Option<Fate>; BURST],
    ) {
        let Some(cache) = self.recirc.take() else {
            done[m] = Some(self.translate_and_run(key, &mut pkts[m]));
            return;
        };
        if let Some(prog) = &waiting.program {
            if prog.pure && cache.hit_again(waiting.slot, key, self.sw.mac_generation()) {
                cache.account(waiting.slot, pkts[m].len() as u64, self.now_ns);
                self.recirc = Some(cache);
                waiting.members[waiting.len] = m as u8;
                waiting.len += 1;
                return;
            }
        }
        let slot = self.cache_slot(cache, key, &pkts[m]);
        let program = cache.entry(slot).map(|e| Arc::clone(&e.program));
        self.recirc = Some(cache);
        self.run_waiting(waiting, pkts, done);
        match program {
            None => done[m] = Some(self.discard(DropReason::FlowDrop)),
            Some(p) if p.pure => {
                waiting.slot = slot;
                waiting.program = Some(p);
                waiting.members[0] = m as u8;
                waiting.len = 1;
            }
            Some(p) => done[m] = Some(self.run(&p, &mut pkts[m])),
        }
    }

    /// Runs the waiting run of resumed members (if any) as a group.
    fn run_waiting(
        &mut self,
        waiting: &mut Waiting,
        pkts: &mut [PacketBuf],
        done: &mut [Option<Fate>; BURST],
    ) {
        if let Some(prog) = waiting.program.take() {
            let members = waiting.members;
            self.run_members(&prog, pkts, &members[..waiting.len], done);
            waiting.len = 0;
        }
    }

    /// The index of the program's last output (`usize::MAX`: none, but
    /// its side ops run); None: the program only drops.
    #[inline(always)]
    fn last_of(&self, prog: &Program) -> Option<usize> {
        match prog.last_output {
            Some(l) => Some(l),
            None if prog.has_side_ops => Some(usize::MAX),
            None => None,
        }
    }

    /// The fate of a packet that went through its program without being
    /// output: dropped (counted by the program's reason) or held.
    #[inline(always)]
    fn unfinished(&mut self, prog: &Program) -> Fate {
        match prog.drop_reason {
            Some(reason) => self.discard(reason),
            None => Fate::Discard,
        }
    }

    /// Op `i` of `prog` on one packet; Some when it decided the packet's
    /// fate (the ops after it are not run).
    #[inline(always)]
    fn step(
        &mut self,
        prog: &Program,
        i: usize,
        op: &Op,
        last: usize,
        pkt: &mut PacketBuf,
    ) -> Option<Fate> {
        match op {
            Op::Rewrite(r) => {
                if let Err(reason) = packet::apply(pkt, r) {
                    return Some(self.discard(reason));
                }
            }
            Op::Output(port) if i == last => {
                self.counters.tx_packets += 1;
                self.counters.tx_bytes += pkt.len() as u64;
                return Some(Fate::Output(*port));
            }
            Op::Output(port) | Op::Tap(port) => match self.pool.copy_of(pkt) {
                Ok(copy) => self.output(*port, copy),
                Err(reason) => self.counters.drops.count(reason),
            },
            Op::Generate {
                packet,
                limit,
                program,
            } => self.generate(packet, limit.as_ref(), program, pkt),
            Op::VerifyIpv4Header => {
                if !packet::verify::ipv4_header_ok(pkt) {
                    return Some(self.discard(DropReason::Ipv4BadChecksum));
                }
            }
            Op::Ct(step) if step.continues() => {
                let mut key = match packet::parse(pkt.data(), pkt.in_port) {
                    Ok(p) => p.key,
                    Err(reason) => return Some(self.discard(reason)),
                };
                if let Err(reason) = self.ct(pkt, step, &mut key, None) {
                    return Some(self.discard(reason));
                }
            }
            Op::Ct(step) if i + 1 == prog.ops.len() => {
                return Some(self.recirculate(pkt, step, None))
            }
            // More ops follow: they see the packet as it was.
            Op::Ct(step) => match self.pool.copy_of(pkt) {
                Ok(mut copy) => {
                    let fate = self.recirculate(&mut copy, step, None);
                    self.settle(copy, fate);
                }
                Err(reason) => self.counters.drops.count(reason),
            },
            Op::CtGuard(g) => {
                if g.stored(&self.sw.conntrack, pkt) {
                    return Some(self.recirculate(pkt, &g.step, None));
                }
            }
            Op::Defrag(step) => self.defrag(pkt, step),
            Op::Hold {
                runtime,
                iface,
                ip,
                arp,
                solicit,
            } => match runtime.0.hold(*iface, *ip, pkt.data(), self.now_ns) {
                HoldOutcome::HeldSolicit => self.send_arp_request(arp, solicit),
                HoldOutcome::Held => {}
                HoldOutcome::Dropped(reason) => self.counters.drops.count(reason),
            },
            Op::NeighLearn {
                runtime,
                iface,
                ip,
                mac,
            } => {
                runtime.0.learn(*iface, *ip, *mac, self.now_ns);
            }
            Op::Probe {
                runtime,
                iface,
                ip,
                arp,
                solicit,
            } => {
                if runtime.0.probe(*iface, *ip, self.now_ns) {
                    self.send_arp_request(arp, solicit);
                }
            }
        }
        None
    }

    fn output(&mut self, port: PortId, pkt: PacketBuf) {
        self.counters.tx_packets += 1;
        self.counters.tx_bytes += pkt.len() as u64;
        self.sink.output(port, pkt);
    }

    /// Builds the packet a router originates about `pkt` (an ICMP error,
    /// while the instance's rate limit allows) and runs its program.
    fn generate(
        &mut self,
        packet: &Generated,
        limit: Option<&RuntimeRef>,
        program: &Program,
        pkt: &PacketBuf,
    ) {
        if limit.is_some_and(|rt| !rt.0.icmp_allowed(self.now_ns)) {
            return;
        }
        let Some(mut g) = self.pool.get() else {
            self.counters.drops.count(DropReason::PoolExhausted);
            return;
        };
        let built = match packet {
            Generated::IcmpError(e) => e.build(pkt, &mut g),
            Generated::ArpRequest(a) => a.build(&mut g),
        };
        match built {
            Ok(()) => self.run_and_settle(program, g),
            Err(reason) => self.drop(g, reason),
        }
    }

    /// Builds the ARP request a neighbour entry asked for and runs its
    /// program (out of the router's interface and through the bridges).
    fn send_arp_request(&mut self, arp: &ArpRequest, solicit: &Program) {
        let Some(mut g) = self.pool.get() else {
            self.counters.drops.count(DropReason::PoolExhausted);
            return;
        };
        match arp.build(&mut g) {
            Ok(()) => self.run_and_settle(solicit, g),
            Err(reason) => self.drop(g, reason),
        }
    }

    /// Runs a conntrack step on the packet (the one ct stage, as `trace`
    /// runs it): the packet is translated in place and `key` becomes the
    /// key its walk resumes with; a router's source NAT port travels with
    /// the packet to POSTROUTING. A fragment of a reassembled `datagram`
    /// is tracked as the datagram: its transport fields, its checksum.
    fn ct(
        &mut self,
        pkt: &mut PacketBuf,
        step: &CtStep,
        key: &mut FlowKey,
        datagram: Option<&Datagram>,
    ) -> Result<CtResult, DropReason> {
        if let Some(d) = datagram {
            d.fill(key);
        }
        let r = stage::run(
            &self.sw.conntrack,
            CtMode::Commit,
            step,
            key,
            || packet::embedded::icmp_embedded(pkt),
            || datagram.map_or_else(|| packet::verify::l4_ok(pkt), |d| d.l4_ok),
            self.now_ns,
        )?;
        apply_ct(pkt, &r)?;
        Ok(r)
    }

    /// A fragment's conntrack step: a copy is held until its datagram is
    /// whole; then each of the datagram's fragments takes the step.
    fn defrag(&mut self, pkt: &PacketBuf, step: &CtStep) {
        let held = self.sw.conntrack.defrag.insert(
            step.zone,
            pkt.data(),
            pkt.layout.l3_ofs as usize,
            pkt.in_port,
            self.now_ns,
        );
        let datagram = match held {
            Defragged::Held => return,
            Defragged::Dropped { reason, count } => {
                return self.counters.drops.count_n(reason, count)
            }
            Defragged::Complete(d) => d,
        };
        for h in &datagram.frames {
            let Some(mut frag) = self.pool.get() else {
                self.counters.drops.count(DropReason::PoolExhausted);
                continue;
            };
            if let Err(reason) = frag
                .set_data(&h.frame)
                .and_then(|_| packet::parse_into(&mut frag))
            {
                self.drop(frag, reason);
                continue;
            }
            frag.in_port = h.in_port;
            let fate = self.recirculate(&mut frag, step, Some(&datagram));
            self.settle(frag, fate);
        }
    }

    /// The conntrack step, then the packet's walk from where it resumes,
    /// found in the recirculation cache or translated.
    fn recirculate(
        &mut self,
        pkt: &mut PacketBuf,
        step: &CtStep,
        datagram: Option<&Datagram>,
    ) -> Fate {
        if self.depth >= MAX_RECIRC {
            return self.discard(DropReason::ResubmitDepth);
        }
        match packet::parse(pkt.data(), pkt.in_port) {
            Ok(p) => self.recirculate_parsed(pkt, step, p.key, datagram),
            Err(reason) => self.discard(reason),
        }
    }

    /// `recirculate` for a packet already parsed into `key`.
    fn recirculate_parsed(
        &mut self,
        pkt: &mut PacketBuf,
        step: &CtStep,
        mut key: FlowKey,
        datagram: Option<&Datagram>,
    ) -> Fate {
        if self.depth >= MAX_RECIRC {
            return self.discard(DropReason::ResubmitDepth);
        }
        if let Err(reason) = self.ct(pkt, step, &mut key, datagram) {
            return self.discard(reason);
        }
        self.depth += 1;
        let fate = match self.recirc.take() {
            Some(cache) => {
                // The walk may recirculate again: the cache is back in
                // place before it runs, and the entry's program is shared.
                let slot = self.cache_slot(cache, &key, pkt);
                let program = cache.entry(slot).map(|e| Arc::clone(&e.program));
                self.recirc = Some(cache);
                match program {
                    Some(p) => self.run(&p, pkt),
                    None => self.discard(DropReason::FlowDrop),
                }
            }
            None => self.translate_and_run(&key, pkt),
        };
        self.depth -= 1;
        fate
    }

    /// Sends the packets that neighbour resolutions released (slow path:
    /// they are translated one by one, not cached).
    fn release_held(&mut self) {
        let sw = self.sw;
        for (instance, rt) in sw.router_runtime.iter().enumerate() {
            for r in rt.take_released() {
                let Some(mut pkt) = self.pool.get() else {
                    self.counters.drops.count(DropReason::PoolExhausted);
                    continue;
                };
                let key = match pkt
                    .set_data(&r.frame)
                    .and_then(|_| packet::parse_into(&mut pkt))
                {
                    Ok(k) => k,
                    Err(reason) => {
                        self.drop(pkt, reason);
                        continue;
                    }
                };
                let at = RouterIfaceRef {
                    instance,
                    iface: r.iface,
                };
                let x = xlate::xlate_router_output(sw, at, &key, self.translate_opts(), None);
                self.run_and_settle(&x.program, pkt);
            }
        }
    }
}
