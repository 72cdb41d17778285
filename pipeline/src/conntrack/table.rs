//! `ConnTable`: the connections of every zone, sharded, with their NAT
//! bindings, deadlines and counters (the design is in the module above).
//!
//! A packet meets the table in one of two modes that share every decision:
//! `track` (the datapath: the connection is created or advanced, counters
//! move) and `peek` (a trace: the same answer, nothing stored or counted).
//! Both go through `classify` for a packet of a known connection and
//! `free_reply` for the NAT binding a new one would get.

use super::conn::{Conn, Nat, Repeat, Verdict};
use super::limits::{CtStats, Limits, Timeouts, NAT_MAX_ATTEMPTS};
use super::slab::ConnSlab;
use super::tcp::{self, TcpState};
use super::tuple::{Dir, PacketInfo, Tuple, SHARDS};
use crate::drop::DropReason;
use crate::key::ct_state;
use crate::rss::{Reta, Rss};
use crate::wire::{icmp, ipproto};
use crossbeam_utils::CachePadded;
use hashbrown::HashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

#[derive(Default)]
struct Shard {
    /// Connections whose original tuple hashes here.
    conns: ConnSlab,
    /// Reply tuples hashing here → the original tuple of their connection
    /// and its shard (kept, not hashed again per reply packet).
    replies: HashMap<Tuple, ReplyOf>,
    /// (deadline, original tuple), earliest first. A connection is queued
    /// at creation and again only when its deadline moves earlier (a state
    /// with a shorter timeout); later deadlines are found when the entry
    /// pops, and it is re-queued.
    deadlines: BinaryHeap<Reverse<(u64, Tuple)>>,
}

/// Where a reply tuple's connection lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ReplyOf {
    pub(super) orig: Tuple,
    pub(super) shard: u8,
}

/// Counters of events that only happen at the limits (relaxed atomics).
#[derive(Default, Debug)]
pub struct CtCounters {
    pub table_full: AtomicU64,
    pub zone_full: AtomicU64,
    pub nat_port_exhausted: AtomicU64,
}

/// Counters of the common events, one set per shard (each on its own
/// cache line) so that workers creating connections in different shards
/// do not bounce a shared line; summed on read.
#[derive(Default, Debug)]
struct ShardStats {
    created: AtomicU64,
    expired: AtomicU64,
    deleted: AtomicU64,
    invalid: AtomicU64,
    nat_attempts: AtomicU64,
    cross_worker: AtomicU64,
    cross_worker_packets: AtomicU64,
}

/// The connection table.
pub struct ConnTable {
    shards: Box<[CachePadded<Mutex<Shard>>]>,
    count: AtomicUsize,
    zone_counts: Mutex<HashMap<u16, usize>>,
    limits: Limits,
    pub timeouts: Timeouts,
    pub counters: CtCounters,
    stats: Box<[CachePadded<ShardStats>]>,
    /// Workers owning the shards (1: every shard is everyone's).
    owners: usize,
    /// The receive-side hash that names a tuple's owner, and the
    /// redirection table that maps it to one.
    rss: Rss,
    reta: Reta,
    /// Shards each owner has, and the owner of each shard.
    group: usize,
    shard_owner: [u8; SHARDS],
    /// Per owner, the next of its shards `expire` visits.
    expire_hands: Box<[CachePadded<AtomicUsize>]>,
    /// With a power-of-two number of owners: for each difference between
    /// the owner a reply tuple reaches and the one wanted, the smallest
    /// mask of destination port bits that moves it there (the Toeplitz
    /// hash is linear in its input, and the owner is its low bits).
    port_fix: Option<Box<[u16]>>,
    /// Reassembly of fragments before they are tracked.
    pub defrag: super::defrag::FragTable,
}

const SEC: u64 = 1_000_000_000;

/// What a packet of a known connection does to it: the packet's verdict
/// and the connection's next TCP state. Pure, so that `track` (which
/// stores it) and `peek` (which only reports it) cannot disagree.
struct Advance {
    verdict: Verdict,
    tcp: Option<TcpState>,
}

/// The packet of a known connection going `dir` with `info`; None when
/// conntrack calls it invalid (a TCP flag sequence the state machine
/// refuses).
fn classify(c: &Conn, dir: Dir, info: PacketInfo) -> Option<Advance> {
    let tcp = match c.tcp {
        Some(st) => Some(tcp::next(st, dir, info.tcp_flags)?),
        None => None,
    };
    let mut state = ct_state::TRK;
    state |= match (dir, c.seen_reply) {
        (Dir::Reply, _) => ct_state::EST | ct_state::RPL,
        (Dir::Orig, true) => ct_state::EST,
        (Dir::Orig, false) => ct_state::NEW,
    };
    if c.snat {
        state |= ct_state::SNAT;
    }
    if c.dnat {
        state |= ct_state::DNAT;
    }
    let translated = match dir {
        Dir::Orig => c.reply.reverse(),
        Dir::Reply => c.orig.reverse(),
    };
    Some(Advance {
        verdict: Verdict {
            state,
            dir: Some(dir),
            translated,
            repeat: None,
        },
        tcp,
    })
}

/// `n` packets of connection `c` in direction `dir` at `now_ns`: counted,
/// and the deadline moved on (queued again only when it moved earlier).
fn count_packets(
    deadlines: &mut BinaryHeap<Reverse<(u64, Tuple)>>,
    c: &mut Conn,
    dir: Dir,
    n: u64,
    now_ns: u64,
    timeouts: &Timeouts,
) {
    c.packets[dir as usize] += n;
    c.expires_ns = now_ns + timeout_ns(timeouts, c);
    if c.expires_ns < c.queued_ns {
        c.queued_ns = c.expires_ns;
        deadlines.push(Reverse((c.expires_ns, c.orig)));
    }
}

/// Whether a packet with no connection cannot start one: an ICMP other
/// than echo (errors are related by their quoted packet, the rest is not
/// tracked), an echo reply with no request, a TCP segment that cannot
/// open a connection.
fn cannot_start(t: &Tuple, info: &PacketInfo) -> bool {
    match t.proto {
        ipproto::ICMP => info.icmp_type != icmp::types::ECHO_REQUEST,
        ipproto::TCP => !tcp::valid_new(info.tcp_flags),
        _ => false,
    }
}

/// The verdict on the first packet of connection `c`.
fn first_verdict(c: &Conn) -> Verdict {
    let mut state = ct_state::TRK | ct_state::NEW;
    if c.snat {
        state |= ct_state::SNAT;
    }
    if c.dnat {
        state |= ct_state::DNAT;
    }
    Verdict {
        state,
        dir: Some(Dir::Orig),
        translated: c.reply.reverse(),
        repeat: None,
    }
}

/// No NAT binding is free for a new connection: the reply tuple it needs
/// is another connection's and NAT cannot move it (or gave up).
struct NoFreeReply;

impl ConnTable {
    pub fn new(limits: Limits, timeouts: Timeouts) -> ConnTable {
        let defrag = super::defrag::FragTable::new(limits.defrag);
        ConnTable {
            shards: (0..SHARDS)
                .map(|_| CachePadded::new(Mutex::new(Shard::default())))
                .collect(),
            count: AtomicUsize::new(0),
            zone_counts: Mutex::new(HashMap::new()),
            limits,
            timeouts,
            counters: CtCounters::default(),
            stats: (0..SHARDS)
                .map(|_| CachePadded::new(ShardStats::default()))
                .collect(),
            owners: 1,
            rss: Rss::default(),
            reta: Reta::new(1),
            group: SHARDS,
            shard_owner: [0; SHARDS],
            expire_hands: vec![CachePadded::new(AtomicUsize::new(0))].into(),
            port_fix: None,
            defrag,
        }
    }

    /// The table with its shards owned by `owners` workers (at most
    /// `SHARDS`): a tuple's shard is one of the worker's its packets
    /// reach by `rss` (the key the NIC is programmed with), and a source
    /// NAT port is chosen so that the reply reaches that worker too.
    pub fn with_owners(mut self, owners: usize, rss: Rss) -> ConnTable {
        self.owners = owners.clamp(1, SHARDS);
        self.rss = rss;
        self.reta = Reta::new(self.owners);
        self.group = SHARDS / self.owners;
        self.shard_owner = std::array::from_fn(|i| (i / self.group).min(self.owners - 1) as u8);
        self.expire_hands = (0..self.owners)
            .map(|_| CachePadded::new(AtomicUsize::new(0)))
            .collect();
        self.port_fix = port_fixes(&self.rss, self.owners);
        self
    }

    /// Moves reply tuple `r`'s destination port (a source NAT's port) to
    /// the nearest one, by the fewest low bits, whose reply reaches owner
    /// `want`, when one is in `range`; else leaves it (the caller checks).
    #[inline]
    fn steer(&self, r: &mut Tuple, want: usize, range: (u16, u16)) {
        let Some(fix) = &self.port_fix else {
            return;
        };
        let diff = self.owner_of(r) ^ want;
        let port = r.dport ^ fix.get(diff).copied().unwrap_or(0);
        if (range.0..=range.1).contains(&port) {
            r.dport = port;
        }
    }

    /// The hash that names owners (its key is the NIC's).
    pub fn rss(&self) -> &Rss {
        &self.rss
    }

    /// Workers owning the shards.
    pub fn owners(&self) -> usize {
        self.owners
    }

    /// The worker whose receive queue a packet with tuple `t` reaches.
    #[inline]
    pub fn owner_of(&self, t: &Tuple) -> usize {
        if self.owners <= 1 {
            return 0;
        }
        let ports = matches!(t.proto, ipproto::TCP | ipproto::UDP).then_some((t.sport, t.dport));
        self.reta
            .queue(self.rss.hash(u32::from(t.src), u32::from(t.dst), ports))
    }

    /// The shard of `t`: one of its owner's.
    #[inline]
    fn shard_of(&self, t: &Tuple) -> usize {
        if self.owners <= 1 {
            return t.shard();
        }
        // The tuple's own shard hash scaled into the owner's group
        // (multiply and shift: no division per packet).
        self.owner_of(t) * self.group + (t.shard() * self.group) / SHARDS
    }

    /// The owner of shard `i`.
    #[inline]
    fn owner_of_shard(&self, i: usize) -> usize {
        self.shard_owner[i & (SHARDS - 1)] as usize
    }

    fn shard(&self, i: usize) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[i & (SHARDS - 1)]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The counters of the shard of `t`.
    fn stats_of(&self, t: &Tuple) -> &ShardStats {
        &self.stats[self.shard_of(t)]
    }

    /// Counts a packet of `t` conntrack calls invalid; its verdict.
    pub fn count_invalid(&self, t: &Tuple) -> Verdict {
        self.stats_of(t).invalid.fetch_add(1, Ordering::Relaxed);
        Verdict::invalid(*t)
    }

    /// Size and counters, summed over the shards.
    pub fn stats(&self) -> CtStats {
        let mut s = CtStats {
            connections: self.len() as u64,
            table_full: self.counters.table_full.load(Ordering::Relaxed),
            zone_full: self.counters.zone_full.load(Ordering::Relaxed),
            nat_port_exhausted: self.counters.nat_port_exhausted.load(Ordering::Relaxed),
            defrag: self.defrag.stats(),
            ..Default::default()
        };
        for x in self.stats.iter() {
            s.created += x.created.load(Ordering::Relaxed);
            s.expired += x.expired.load(Ordering::Relaxed);
            s.deleted += x.deleted.load(Ordering::Relaxed);
            s.invalid += x.invalid.load(Ordering::Relaxed);
            s.nat_attempts += x.nat_attempts.load(Ordering::Relaxed);
            s.cross_worker += x.cross_worker.load(Ordering::Relaxed);
            s.cross_worker_packets += x.cross_worker_packets.load(Ordering::Relaxed);
        }
        s
    }

    /// Live connections.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tracks a packet with tuple `t`. With `commit`, a new connection is
    /// created (applying `nat`); without, a new connection is reported
    /// `+new` but not stored (as OVS's `ct()` without `commit`).
    pub fn track(
        &self,
        t: Tuple,
        info: PacketInfo,
        commit: bool,
        nat: Option<Nat>,
        now_ns: u64,
    ) -> Result<Verdict, DropReason> {
        if t.proto == ipproto::ICMP && !icmp::is_echo(info.icmp_type) {
            return Ok(self.count_invalid(&t));
        }
        if let Some(v) = self.update_existing(&t, info, now_ns) {
            return Ok(v);
        }
        if cannot_start(&t, &info) {
            return Ok(self.count_invalid(&t));
        }
        if !commit {
            return Ok(Verdict::new_uncommitted(t));
        }
        self.create(t, info, nat, now_ns)
    }

    /// Whether a connection with `t` as its original or reply tuple is
    /// stored (expired or not).
    pub fn is_stored(&self, t: &Tuple) -> bool {
        self.find(t).is_some()
    }

    /// Tracks a packet of a lazy step (`CtStep::lazy`): a packet of a
    /// stored connection advances it, as `track`; any other goes on as
    /// `+trk+new`, nothing stored or counted.
    pub fn track_lazy(&self, t: Tuple, info: PacketInfo, now_ns: u64) -> Verdict {
        if t.proto == ipproto::ICMP && !icmp::is_echo(info.icmp_type) {
            return self.count_invalid(&t);
        }
        self.update_existing(&t, info, now_ns)
            .unwrap_or(Verdict::new_uncommitted(t))
    }

    /// What `track_lazy` would say at `now_ns`, changing nothing.
    pub fn peek_lazy(&self, t: Tuple, info: PacketInfo, now_ns: u64) -> Verdict {
        if t.proto == ipproto::ICMP && !icmp::is_echo(info.icmp_type) {
            return Verdict::invalid(t);
        }
        self.known(&t, info, now_ns)
            .unwrap_or(Verdict::new_uncommitted(t))
    }

    /// What a packet of a stored, live connection is (None: no such
    /// connection), changing nothing.
    fn known(&self, t: &Tuple, info: PacketInfo, now_ns: u64) -> Option<Verdict> {
        let (orig, dir) = self.find(t)?;
        let s = self.shard(self.shard_of(&orig));
        let c = s.conns.get(&orig).filter(|c| c.expires_ns > now_ns)?;
        Some(classify(c, dir, info).map_or(Verdict::invalid(*t), |a| a.verdict))
    }

    /// What `track` would say at `now_ns`, changing nothing (for `trace`):
    /// the same classification, and for a new connection the NAT binding
    /// `track` would choose now.
    pub fn peek(
        &self,
        t: Tuple,
        info: PacketInfo,
        commit: bool,
        nat: Option<Nat>,
        now_ns: u64,
    ) -> Result<Verdict, DropReason> {
        if t.proto == ipproto::ICMP && !icmp::is_echo(info.icmp_type) {
            return Ok(Verdict::invalid(t));
        }
        if let Some(v) = self.known(&t, info, now_ns) {
            return Ok(v);
        }
        if cannot_start(&t, &info) {
            return Ok(Verdict::invalid(t));
        }
        if !commit {
            return Ok(Verdict::new_uncommitted(t));
        }
        self.check_limits(&t, false)?;
        match self.free_reply(&t, nat, 0) {
            Ok((_, reply)) => Ok(first_verdict(&self.new_conn(t, reply, info, nat, now_ns))),
            Err(NoFreeReply) if nat.is_some() => Err(DropReason::NatPortExhausted),
            Err(NoFreeReply) => Ok(Verdict::invalid(t)),
        }
    }

    /// The original tuple of the connection `t` belongs to, and the
    /// direction `t` goes.
    fn find(&self, t: &Tuple) -> Option<(Tuple, Dir)> {
        let s = self.shard(self.shard_of(t));
        if s.conns.contains_key(t) {
            return Some((*t, Dir::Orig));
        }
        s.replies.get(t).map(|r| (r.orig, Dir::Reply))
    }

    /// Finds `t` as an original or reply tuple and advances the connection.
    fn update_existing(&self, t: &Tuple, info: PacketInfo, now_ns: u64) -> Option<Verdict> {
        let t_shard = self.shard_of(t);
        let mut s = self.shard(t_shard);
        // One probe for a packet in the original direction (the common
        // case): the connection is found by the hash that tested for it.
        let (orig, dir, slot) = match s.conns.slot_hashed(s.conns.hash(t), t) {
            Some(slot) => (*t, Dir::Orig, Some(slot)),
            None => {
                let ReplyOf { orig, shard } = *s.replies.get(t)?;
                let o_shard = shard as usize;
                if o_shard != t_shard {
                    drop(s);
                    if self.owner_of_shard(o_shard) != self.owner_of_shard(t_shard) {
                        // The reply came to another worker's queue.
                        self.stats[o_shard]
                            .cross_worker_packets
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    s = self.shard(o_shard);
                }
                (orig, Dir::Reply, None)
            }
        };
        let timeouts = self.timeouts;
        let shard = &mut *s;
        let c = match slot {
            Some(slot) => shard.conns.at_mut(slot),
            None => shard.conns.get_mut(&orig),
        };
        let c = c?;
        if c.expires_ns <= now_ns {
            drop(s);
            self.remove(&orig, now_ns, true);
            return None;
        }
        let Some(advance) = classify(c, dir, info) else {
            return Some(self.count_invalid(t));
        };
        // The same packet again would find the connection as this one
        // leaves it: the same verdict, only counters and deadline move.
        let steady = advance.tcp == c.tcp && (dir == Dir::Orig || c.seen_reply);
        c.tcp = advance.tcp;
        if dir == Dir::Reply {
            c.seen_reply = true;
        }
        count_packets(&mut shard.deadlines, c, dir, 1, now_ns, &timeouts);
        let mut verdict = advance.verdict;
        if steady {
            verdict.repeat = Some(Repeat { orig, dir });
        }
        Some(verdict)
    }

    /// `n` more packets like the one whose verdict carried `r` (the same
    /// tuple and packet info, at the same time): the connection's counters
    /// and deadline move as `n` more `track` calls would have moved them.
    pub fn repeat(&self, r: &Repeat, n: u64, now_ns: u64) {
        if n == 0 {
            return;
        }
        let timeouts = self.timeouts;
        let mut s = self.shard(self.shard_of(&r.orig));
        let shard = &mut *s;
        let Some(c) = shard.conns.get_mut(&r.orig) else {
            return;
        };
        count_packets(&mut shard.deadlines, c, r.dir, n, now_ns, &timeouts);
    }

    /// Refuses a new connection in `t`'s zone when the table or the zone
    /// is at its limit (counted when `count`).
    fn check_limits(&self, t: &Tuple, count: bool) -> Result<(), DropReason> {
        if self.count.load(Ordering::Relaxed) >= self.limits.max_conns {
            if count {
                self.counters.table_full.fetch_add(1, Ordering::Relaxed);
            }
            return Err(DropReason::CtTableFull);
        }
        if let Some(&max) = self.limits.zone_max.get(&t.zone) {
            let zc = self.zone_counts.lock().unwrap_or_else(|e| e.into_inner());
            if zc.get(&t.zone).copied().unwrap_or(0) >= max {
                if count {
                    self.counters.zone_full.fetch_add(1, Ordering::Relaxed);
                }
                return Err(DropReason::CtTableFull);
            }
        }
        Ok(())
    }

    /// Whether `reply` is already some connection's reply or original tuple.
    fn is_taken(&self, reply: &Tuple) -> bool {
        let s = self.shard(self.shard_of(reply));
        s.replies.contains_key(reply) || s.conns.contains_key(reply)
    }

    /// The worker a new connection `t`'s source NAT port is chosen for:
    /// its owner, when there are several and the reply's port steers the
    /// reply's hash (TCP and UDP; an ICMP echo's id is not hashed).
    fn steered_owner(&self, t: &Tuple, nat: Option<Nat>) -> Option<usize> {
        let steerable = self.owners > 1
            && matches!(nat, Some(Nat::Src { .. }))
            && matches!(t.proto, ipproto::TCP | ipproto::UDP);
        steerable.then(|| self.owner_of(t))
    }

    /// Port choices a new connection may try: `NAT_MAX_ATTEMPTS` of those
    /// its reply may take (about one in `owners` when steered).
    fn attempt_limit(&self, t: &Tuple, nat: Option<Nat>) -> u32 {
        match self.steered_owner(t, nat) {
            Some(_) => NAT_MAX_ATTEMPTS * self.owners as u32,
            None => NAT_MAX_ATTEMPTS,
        }
    }

    /// The reply tuple a new connection `t` gets under `nat`: the first
    /// free choice from attempt `from` on (attempt 0 keeps the original
    /// port when it can), with the attempt that gave it. With several
    /// owners, a source NAT port whose reply reaches `t`'s owner comes
    /// first; any free one after (its replies cross workers, counted).
    fn free_reply(
        &self,
        t: &Tuple,
        nat: Option<Nat>,
        from: u32,
    ) -> Result<(u32, Tuple), NoFreeReply> {
        let limit = self.attempt_limit(t, nat);
        let want = self.steered_owner(t, nat);
        let passes = if want.is_some() { 2 } else { 1 };
        for pass in 0..passes {
            let want = want.filter(|_| pass == 0);
            let mut attempt = from;
            while let Some(reply) = self.nat_reply(t, nat, attempt, limit, want) {
                let reaches = want.is_none_or(|w| self.owner_of(&reply) == w);
                if reaches && !self.is_taken(&reply) {
                    return Ok((attempt, reply));
                }
                attempt += 1;
                if nat.is_none() || attempt >= limit {
                    break;
                }
            }
        }
        Err(NoFreeReply)
    }

    fn create(
        &self,
        t: Tuple,
        info: PacketInfo,
        nat: Option<Nat>,
        now_ns: u64,
    ) -> Result<Verdict, DropReason> {
        self.check_limits(&t, true)?;
        let mut from = 0u32;
        loop {
            let (attempt, reply) = match self.free_reply(&t, nat, from) {
                Ok(x) => x,
                // The reply tuple may be taken by `t`'s own connection,
                // just created by another worker from the other direction.
                Err(NoFreeReply) => match self.update_existing(&t, info, now_ns) {
                    Some(v) => return Ok(v),
                    None => return self.collision(t, nat),
                },
            };
            self.stats_of(&t)
                .nat_attempts
                .fetch_add((attempt - from + 1) as u64, Ordering::Relaxed);
            // Both shards, in index order (one lock if they coincide); the
            // choice is checked again under them, since another worker may
            // have taken it (or created `t` itself) meanwhile.
            let (a, b) = (self.shard_of(&t), self.shard_of(&reply));
            let (lo, hi) = (a.min(b), a.max(b));
            let mut g_lo = self.shard(lo);
            let mut g_hi = (hi != lo).then(|| self.shard(hi));
            let (sa, sb): (&mut Shard, Option<&mut Shard>) = match g_hi.as_deref_mut() {
                None => (&mut *g_lo, None),
                Some(h) if a == lo => (&mut *g_lo, Some(h)),
                Some(h) => (h, Some(&mut *g_lo)),
            };
            if sa.conns.contains_key(&t) || sa.replies.contains_key(&t) {
                drop(g_hi);
                drop(g_lo);
                return Ok(self
                    .update_existing(&t, info, now_ns)
                    .unwrap_or(Verdict::invalid(t)));
            }
            let sb_taken = match &sb {
                Some(sb) => sb.replies.contains_key(&reply) || sb.conns.contains_key(&reply),
                None => sa.replies.contains_key(&reply) || sa.conns.contains_key(&reply),
            };
            if sb_taken {
                drop(g_hi);
                drop(g_lo);
                from = attempt + 1;
                if nat.is_none() || from >= self.attempt_limit(&t, nat) {
                    return self.collision(t, nat);
                }
                continue;
            }
            let conn = self.new_conn(t, reply, info, nat, now_ns);
            let v = first_verdict(&conn);
            sa.deadlines.push(Reverse((conn.expires_ns, t)));
            let of = ReplyOf {
                orig: t,
                shard: a as u8,
            };
            match sb {
                Some(sb) => sb.replies.insert(reply, of),
                None => sa.replies.insert(reply, of),
            };
            sa.conns.insert(conn);
            drop(g_hi);
            drop(g_lo);
            self.count_new(&t);
            if self.owner_of_shard(a) != self.owner_of_shard(b) {
                self.stats[a].cross_worker.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(v);
        }
    }

    /// The reply tuple is taken by another connection and NAT cannot move
    /// it: the packet belongs to nothing we can create.
    fn collision(&self, t: Tuple, nat: Option<Nat>) -> Result<Verdict, DropReason> {
        if nat.is_some() {
            self.counters
                .nat_port_exhausted
                .fetch_add(1, Ordering::Relaxed);
            return Err(DropReason::NatPortExhausted);
        }
        Ok(self.count_invalid(&t))
    }

    fn count_new(&self, t: &Tuple) {
        let zone = t.zone;
        self.count.fetch_add(1, Ordering::Relaxed);
        self.stats_of(t).created.fetch_add(1, Ordering::Relaxed);
        if self.limits.zone_max.contains_key(&zone) {
            *self
                .zone_counts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(zone)
                .or_insert(0) += 1;
        }
    }

    fn new_conn(
        &self,
        t: Tuple,
        reply: Tuple,
        info: PacketInfo,
        nat: Option<Nat>,
        now_ns: u64,
    ) -> Conn {
        let mut c = Conn {
            orig: t,
            reply,
            tcp: (t.proto == ipproto::TCP).then(|| tcp::initial(info.tcp_flags)),
            seen_reply: false,
            snat: matches!(nat, Some(Nat::Src { .. })),
            dnat: matches!(nat, Some(Nat::Dst { .. })),
            expires_ns: 0,
            queued_ns: 0,
            packets: [1, 0],
        };
        c.expires_ns = now_ns + timeout_ns(&self.timeouts, &c);
        c.queued_ns = c.expires_ns;
        c
    }

    /// The reply tuple for `t` under `nat`, for the `attempt`-th port
    /// choice (attempt 0 keeps the original port when it is in range).
    fn nat_reply(
        &self,
        t: &Tuple,
        nat: Option<Nat>,
        attempt: u32,
        limit: u32,
        want: Option<usize>,
    ) -> Option<Tuple> {
        let Some(nat) = nat else {
            return Some(t.reverse());
        };
        let (addrs, ports, src) = match nat {
            Nat::Src { addrs, ports } => (addrs, ports, true),
            Nat::Dst { addrs, ports } => (addrs, ports, false),
        };
        let (lo, hi) = (u32::from(addrs.0), u32::from(addrs.1));
        if lo > hi {
            return None;
        }
        // The address: a hash of the original addresses (like Linux), stable per flow.
        let n_addr = (hi - lo) as u64 + 1;
        let h = (u32::from(t.src) as u64)
            .wrapping_mul(0x9e37_79b9)
            .wrapping_add(u32::from(t.dst) as u64);
        let addr = Ipv4Addr::from(lo + (h % n_addr) as u32);
        let orig_port = if src { t.sport } else { t.dport };
        let has_ports = matches!(t.proto, ipproto::TCP | ipproto::UDP | ipproto::ICMP);
        let mut range = (orig_port, orig_port);
        let port = if !has_ports {
            if attempt > 0 {
                // Nothing to move: the one reply tuple is taken.
                return None;
            }
            orig_port
        } else {
            let (plo, phi) = match ports {
                Some(p) => p,
                // Linux keeps the port when it can, else picks from the
                // same class (privileged ranges); we use 1024-65535.
                None if orig_port < 1024 && attempt == 0 => (orig_port, orig_port),
                None => (1024, 65535),
            };
            if plo > phi {
                return None;
            }
            range = (plo, phi);
            let span = (phi - plo) as u32 + 1;
            if attempt == 0 && (plo..=phi).contains(&orig_port) {
                orig_port
            } else {
                if attempt >= span.min(limit) && attempt > 0 {
                    return None;
                }
                let start = (h as u32 ^ (t.sport as u32) << 16 ^ t.dport as u32)
                    .wrapping_mul(2_654_435_761)
                    % span;
                plo + ((start + attempt) % span) as u16
            }
        };
        let mut r = t.reverse();
        if src {
            r.dst = addr;
            if t.proto == ipproto::ICMP {
                r.sport = port;
            } else {
                r.dport = port;
                if let Some(w) = want {
                    self.steer(&mut r, w, range);
                }
            }
        } else {
            r.src = addr;
            if t.proto != ipproto::ICMP {
                r.sport = port;
            }
        }
        Some(r)
    }

    /// Removes the connection with original tuple `orig`.
    fn remove(&self, orig: &Tuple, now_ns: u64, expired: bool) -> bool {
        let conn = {
            let mut s = self.shard(self.shard_of(orig));
            match s.conns.get(orig) {
                Some(c) if !expired || c.expires_ns <= now_ns => {}
                _ => return false,
            }
            match s.conns.remove(orig) {
                Some(c) => c,
                None => return false,
            }
        };
        {
            let mut s = self.shard(self.shard_of(&conn.reply));
            if s.replies.get(&conn.reply).map(|r| &r.orig) == Some(orig) {
                s.replies.remove(&conn.reply);
            }
        }
        self.count.fetch_sub(1, Ordering::Relaxed);
        if self.limits.zone_max.contains_key(&orig.zone) {
            if let Some(n) = self
                .zone_counts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(&orig.zone)
            {
                *n = n.saturating_sub(1);
            }
        }
        if expired {
            self.stats_of(orig).expired.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats_of(orig).deleted.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// Expires up to `budget` connections from the next of `worker`'s
    /// shards (round robin over those it owns; with one owner, over all).
    /// Returns how many were removed.
    pub fn expire(&self, worker: usize, now_ns: u64, budget: usize) -> usize {
        let owner = worker % self.owners;
        let hand = self.expire_hands[owner].fetch_add(1, Ordering::Relaxed);
        let i = owner * self.group + hand % self.group;
        let mut due = Vec::new();
        {
            let mut s = self.shard(i);
            let shard = &mut *s;
            let mut looked = 0;
            while looked < budget {
                let Some(&Reverse((deadline, t))) = shard.deadlines.peek() else {
                    break;
                };
                if deadline > now_ns {
                    break;
                }
                shard.deadlines.pop();
                looked += 1;
                let Some(c) = shard.conns.get_mut(&t) else {
                    continue;
                };
                if c.expires_ns <= now_ns {
                    due.push(t);
                } else if c.queued_ns <= now_ns {
                    // Traffic moved the deadline: queue it where it is now.
                    c.queued_ns = c.expires_ns;
                    let d = c.expires_ns;
                    shard.deadlines.push(Reverse((d, t)));
                }
            }
        }
        due.iter().filter(|t| self.remove(t, now_ns, true)).count()
    }

    /// Deletes every connection (of `zone`, if given). Returns how many.
    pub fn flush(&self, zone: Option<u16>) -> usize {
        let mut victims = Vec::new();
        for i in 0..SHARDS {
            let s = self.shard(i);
            victims.extend(
                s.conns
                    .keys()
                    .filter(|t| zone.is_none_or(|z| t.zone == z))
                    .copied(),
            );
        }
        victims.iter().filter(|t| self.remove(t, 0, false)).count()
    }

    /// Deletes the connections (of `zone`, if given) with `addr` on either
    /// side of either direction, as `conntrack -D -d/-s/-q/-r addr` would.
    /// Returns how many.
    pub fn flush_addr(&self, zone: Option<u16>, addr: Ipv4Addr) -> usize {
        let victims: Vec<Tuple> = self
            .dump(zone, Some(addr))
            .into_iter()
            .map(|c| c.orig)
            .collect();
        victims.iter().filter(|t| self.remove(t, 0, false)).count()
    }

    /// A copy of the connections (of `zone`, touching `addr`, if given).
    pub fn dump(&self, zone: Option<u16>, addr: Option<Ipv4Addr>) -> Vec<Conn> {
        let mut v = Vec::new();
        for i in 0..SHARDS {
            let s = self.shard(i);
            v.extend(
                s.conns
                    .values()
                    .filter(|c| zone.is_none_or(|z| c.orig.zone == z))
                    .filter(|c| {
                        addr.is_none_or(|a| {
                            [c.orig.src, c.orig.dst, c.reply.src, c.reply.dst].contains(&a)
                        })
                    })
                    .cloned(),
            );
        }
        v.sort_by_key(|c| c.orig);
        v
    }

    /// The connection an ICMP error belongs to: `embedded` is the tuple of
    /// the packet quoted in the error (as it was sent). Returns the
    /// connection and the direction of the quoted packet.
    pub fn related(&self, embedded: &Tuple) -> Option<(Conn, Dir)> {
        let (orig, dir) = self.find(embedded)?;
        let s = self.shard(self.shard_of(&orig));
        s.conns.get(&orig).map(|c| (c.clone(), dir))
    }

    /// An ICMP error quoting `e` (a packet that went through zone `zone`):
    /// the connection it belongs to gives the quoted packet's tuple on the
    /// other side of any NAT, and the direction the error travels.
    pub fn related_of(
        &self,
        zone: u16,
        e: &crate::packet::embedded::Embedded,
    ) -> Option<(Tuple, Dir)> {
        let quoted = Tuple {
            zone,
            proto: e.proto,
            src: Ipv4Addr::from(e.src),
            dst: Ipv4Addr::from(e.dst),
            sport: e.sport,
            dport: e.dport,
        };
        let (conn, dir) = self.related(&quoted.reverse())?;
        Some((
            if dir == Dir::Reply {
                conn.orig
            } else {
                conn.reply
            },
            dir,
        ))
    }
}

/// For `owners` a power of two (more than one), the port masks of
/// `ConnTable::port_fix`: entry `d` flips the owner a reply reaches by
/// `d`. None when the key leaves some difference unreachable by the
/// lowest 16 port bits (a degenerate key; ports are then only filtered).
fn port_fixes(rss: &Rss, owners: usize) -> Option<Box<[u16]>> {
    if owners < 2 || !owners.is_power_of_two() {
        return None;
    }
    let mut fix: Vec<Option<u16>> = vec![None; owners];
    for m in 0..=u16::MAX {
        // The hash is linear: a mask's effect does not depend on the rest
        // of the tuple.
        let d = rss.hash(0, 0, Some((0, m))) as usize & (owners - 1);
        if fix[d].is_none() {
            fix[d] = Some(m);
        }
        if fix.iter().all(Option::is_some) {
            break;
        }
    }
    fix.into_iter()
        .collect::<Option<Vec<u16>>>()
        .map(Vec::into_boxed_slice)
}

/// How long connection `c` lives after its last packet, by protocol and
/// state (Linux's defaults unless configured).
fn timeout_ns(t: &Timeouts, c: &Conn) -> u64 {
    let s = match (c.orig.proto, c.tcp) {
        (ipproto::TCP, Some(st)) => match st {
            TcpState::SynSent => t.tcp_syn_sent,
            TcpState::SynRecv => t.tcp_syn_recv,
            TcpState::Established => t.tcp_established,
            TcpState::FinWait => t.tcp_fin_wait,
            TcpState::CloseWait => t.tcp_close_wait,
            TcpState::LastAck => t.tcp_last_ack,
            TcpState::TimeWait => t.tcp_time_wait,
            TcpState::Close => t.tcp_close,
        },
        (ipproto::UDP, _) if c.seen_reply => t.udp_stream,
        (ipproto::UDP, _) => t.udp,
        (ipproto::ICMP, _) => t.icmp,
        _ => t.generic,
    };
    s.saturating_mul(SEC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(sport: u16) -> Tuple {
        Tuple {
            zone: 1,
            proto: ipproto::UDP,
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(192, 0, 2, 1),
            sport,
            dport: 53,
        }
    }

    /// `peek` says what `track` then does, and changes nothing: for a new
    /// SNAT connection (its port), for the reply, and for a port collision
    /// that moves the binding.
    #[test]
    fn peek_agrees_with_track_and_stores_nothing() {
        let ct = ConnTable::new(Limits::default(), Timeouts::default());
        let nat = Some(Nat::Src {
            addrs: (
                Ipv4Addr::new(203, 0, 113, 10),
                Ipv4Addr::new(203, 0, 113, 10),
            ),
            ports: None,
        });
        let info = PacketInfo::default();
        let a = udp(5000);
        let peeked = ct.peek(a, info, true, nat, 1).unwrap();
        assert_eq!(ct.len(), 0, "peek stores nothing");
        assert_eq!(ct.stats(), CtStats::default(), "nor counts");
        let tracked = ct.track(a, info, true, nat, 1).unwrap();
        assert_eq!(peeked, tracked);
        // Another source whose port is taken on the external address.
        let mut b = udp(5000);
        b.src = Ipv4Addr::new(10, 0, 0, 2);
        let peeked = ct.peek(b, info, true, nat, 2).unwrap();
        let tracked = ct.track(b, info, true, nat, 2).unwrap();
        assert_eq!(peeked, tracked);
        assert_ne!(
            tracked.translated.sport, 5000,
            "the second binding moves its port"
        );
        // The reply of the first.
        let reply = tracked_reply(&ct, &a);
        assert_eq!(
            ct.peek(reply, info, false, None, 3).unwrap(),
            ct.track(reply, info, false, None, 3).unwrap()
        );
    }

    fn tracked_reply(ct: &ConnTable, orig: &Tuple) -> Tuple {
        ct.dump(None, None)
            .into_iter()
            .find(|c| c.orig == *orig)
            .map(|c| c.reply)
            .expect("connection")
    }
}
