//! Connection tracking: connections by zone and 5-tuple, both directions
//! found by one lookup, Linux-like TCP states, UDP/ICMP pseudo-states, NAT
//! bindings with bounded port search, timeouts expired incrementally.
//!
//! Design: the table is split into `SHARDS` shards, each behind its own
//! mutex (no global lock on the packet path). A connection lives in the
//! shard of its original-direction tuple; the shard of its reply tuple
//! holds an index entry pointing back. A lookup locks one shard (original
//! direction) or two shards one after the other (reply direction, never
//! both at once). Creating a connection locks both shards in index order,
//! so two workers racing on the two directions of one new flow end up with
//! one connection. Each shard keeps a deadline queue; `expire` pops a
//! bounded number of entries per call (workers call it once per burst), so
//! there is never a stop-the-world sweep.
//!
//! Why sharded locks and not per-worker ownership: the two directions of a
//! connection may arrive on different workers (RSS hashes each direction on
//! its own), and with NAT the reply tuple differs from the reversed original
//! one, so no symmetric hash can put both on one owner. Shard locks are
//! held for a hash lookup and a few field updates (figures in the bench).
//!
//! Ownership: one `ConnTable` per switch (per host), shared by all workers
//! and kept across snapshot rebuilds.

pub mod tcp;

use crate::drop::DropReason;
use crate::key::{ct_state, ipproto};
use crossbeam_utils::CachePadded;
use hashbrown::HashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use tcp::TcpState;

/// Number of shards (a power of two).
pub const SHARDS: usize = 64;
/// Default connection limit (Linux `nf_conntrack_max` on a 16 GiB host).
pub const DEFAULT_MAX_CONNS: usize = 262_144;
/// Ports tried before a NAT binding gives up (`nat_port_exhausted`).
pub const NAT_MAX_ATTEMPTS: u32 = 128;

/// A connection's identity in one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Tuple {
    pub zone: u16,
    pub proto: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// TCP/UDP source port; ICMP echo identifier.
    pub sport: u16,
    /// TCP/UDP destination port; 0 for ICMP.
    pub dport: u16,
}

impl Tuple {
    /// The tuple of a packet going the other way.
    pub fn reverse(&self) -> Tuple {
        if self.proto == ipproto::ICMP {
            return Tuple {
                src: self.dst,
                dst: self.src,
                ..*self
            };
        }
        Tuple {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            ..*self
        }
    }

    fn shard(&self) -> usize {
        let mut h = (u32::from(self.src) as u64) << 32 | u32::from(self.dst) as u64;
        h ^= ((self.sport as u64) << 32 | (self.dport as u64) << 16 | (self.proto as u64) << 8)
            ^ (self.zone as u64) << 48;
        h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        ((h >> 40) as usize) & (SHARDS - 1)
    }
}

/// Which way a packet goes relative to the connection's first packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dir {
    Orig,
    Reply,
}

/// A NAT request, as `ct(commit,nat(src=..))` or an iptables SNAT/DNAT target gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nat {
    /// Rewrite the source to an address in `addrs`, the port into `ports`
    /// (kept if possible).
    Src {
        addrs: (Ipv4Addr, Ipv4Addr),
        ports: Option<(u16, u16)>,
    },
    /// Rewrite the destination.
    Dst {
        addrs: (Ipv4Addr, Ipv4Addr),
        ports: Option<(u16, u16)>,
    },
}

/// Per-protocol timeouts in seconds (Linux defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Timeouts {
    pub tcp_syn_sent: u64,
    pub tcp_syn_recv: u64,
    pub tcp_established: u64,
    pub tcp_fin_wait: u64,
    pub tcp_close_wait: u64,
    pub tcp_last_ack: u64,
    pub tcp_time_wait: u64,
    pub tcp_close: u64,
    pub udp: u64,
    pub udp_stream: u64,
    pub icmp: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_syn_sent: 120,
            tcp_syn_recv: 60,
            tcp_established: 432_000,
            tcp_fin_wait: 120,
            tcp_close_wait: 60,
            tcp_last_ack: 30,
            tcp_time_wait: 120,
            tcp_close: 10,
            udp: 30,
            udp_stream: 120,
            icmp: 30,
        }
    }
}

/// Limits of the table.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_conns: usize,
    /// Per-zone limits (zones not listed: only the global one).
    pub zone_max: std::collections::HashMap<u16, usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_conns: DEFAULT_MAX_CONNS,
            zone_max: std::collections::HashMap::new(),
        }
    }
}

/// One tracked connection.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Conn {
    pub orig: Tuple,
    /// The tuple reply packets carry (differs from `orig.reverse()` under NAT).
    pub reply: Tuple,
    pub tcp: Option<TcpState>,
    pub seen_reply: bool,
    pub snat: bool,
    pub dnat: bool,
    /// Monotonic time (ns) after which the connection is gone.
    pub expires_ns: u64,
    /// The earliest deadline queued for this connection in its shard.
    #[serde(skip)]
    queued_ns: u64,
    pub packets: [u64; 2],
}

/// What conntrack says about a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// `ct_state` bits (always with `trk`).
    pub state: u8,
    pub dir: Option<Dir>,
    /// The packet's tuple after NAT (equal to the input when no NAT applies).
    pub translated: Tuple,
}

impl Verdict {
    fn invalid(t: Tuple) -> Verdict {
        Verdict {
            state: ct_state::TRK | ct_state::INV,
            dir: None,
            translated: t,
        }
    }
}

/// What a packet carries that conntrack reads besides its tuple.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketInfo {
    /// TCP flags (low 9 bits as in the header), 0 for other protocols.
    pub tcp_flags: u16,
    /// ICMP type (for echo: 8 request, 0 reply).
    pub icmp_type: u8,
}

#[derive(Default)]
struct Shard {
    /// Connections whose original tuple hashes here.
    conns: HashMap<Tuple, Conn>,
    /// Reply tuples hashing here → the original tuple of their connection.
    replies: HashMap<Tuple, Tuple>,
    /// (deadline, original tuple), earliest first. A connection is queued
    /// at creation and again only when its deadline moves earlier (a state
    /// with a shorter timeout); later deadlines are found when the entry
    /// pops, and it is re-queued.
    deadlines: BinaryHeap<Reverse<(u64, Tuple)>>,
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
}

/// A snapshot of the table's size and counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CtStats {
    pub connections: u64,
    pub created: u64,
    pub expired: u64,
    pub deleted: u64,
    pub invalid: u64,
    pub table_full: u64,
    pub zone_full: u64,
    pub nat_port_exhausted: u64,
    pub nat_attempts: u64,
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
    /// Next shard `expire` visits.
    expire_hand: AtomicUsize,
}

const SEC: u64 = 1_000_000_000;

fn is_echo(t: &Tuple, info: &PacketInfo) -> bool {
    t.proto == ipproto::ICMP && matches!(info.icmp_type, 0 | 8)
}

impl ConnTable {
    pub fn new(limits: Limits, timeouts: Timeouts) -> ConnTable {
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
            expire_hand: AtomicUsize::new(0),
        }
    }

    fn shard(&self, i: usize) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[i & (SHARDS - 1)]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The counters of the shard of `t`.
    fn stats_of(&self, t: &Tuple) -> &ShardStats {
        &self.stats[t.shard() & (SHARDS - 1)]
    }

    /// Size and counters, summed over the shards.
    pub fn stats(&self) -> CtStats {
        let mut s = CtStats {
            connections: self.len() as u64,
            table_full: self.counters.table_full.load(Ordering::Relaxed),
            zone_full: self.counters.zone_full.load(Ordering::Relaxed),
            nat_port_exhausted: self.counters.nat_port_exhausted.load(Ordering::Relaxed),
            ..Default::default()
        };
        for x in self.stats.iter() {
            s.created += x.created.load(Ordering::Relaxed);
            s.expired += x.expired.load(Ordering::Relaxed);
            s.deleted += x.deleted.load(Ordering::Relaxed);
            s.invalid += x.invalid.load(Ordering::Relaxed);
            s.nat_attempts += x.nat_attempts.load(Ordering::Relaxed);
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

    fn timeout_ns(&self, c: &Conn) -> u64 {
        ConnTableTimeouts(self.timeouts).timeout_ns(c)
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
        if t.proto == ipproto::ICMP && !is_echo(&t, &info) {
            // ICMP errors are related (looked up by their embedded header
            // with `related`), other ICMP is not tracked: invalid here.
            self.stats_of(&t).invalid.fetch_add(1, Ordering::Relaxed);
            return Ok(Verdict::invalid(t));
        }
        if let Some(v) = self.update_existing(&t, info, now_ns) {
            return Ok(v);
        }
        // A new connection.
        if t.proto == ipproto::TCP && !tcp::valid_new(info.tcp_flags) {
            self.stats_of(&t).invalid.fetch_add(1, Ordering::Relaxed);
            return Ok(Verdict::invalid(t));
        }
        if t.proto == ipproto::ICMP && info.icmp_type != 8 {
            // An echo reply with no request: invalid.
            self.stats_of(&t).invalid.fetch_add(1, Ordering::Relaxed);
            return Ok(Verdict::invalid(t));
        }
        if !commit {
            let translated = t;
            return Ok(Verdict {
                state: ct_state::TRK | ct_state::NEW,
                dir: Some(Dir::Orig),
                translated,
            });
        }
        self.create(t, info, nat, now_ns)
    }

    /// Finds `t` as an original or reply tuple and advances the connection.
    fn update_existing(&self, t: &Tuple, info: PacketInfo, now_ns: u64) -> Option<Verdict> {
        let mut s = self.shard(t.shard());
        let (orig, dir) = if s.conns.contains_key(t) {
            (*t, Dir::Orig)
        } else {
            let orig = *s.replies.get(t)?;
            if orig.shard() != t.shard() {
                drop(s);
                s = self.shard(orig.shard());
            }
            (orig, Dir::Reply)
        };
        let timeouts = self.timeouts;
        let shard = &mut *s;
        let c = shard.conns.get_mut(&orig)?;
        if c.expires_ns <= now_ns {
            drop(s);
            self.remove(&orig, now_ns, true);
            return None;
        }
        let mut state = ct_state::TRK;
        if let Some(st) = c.tcp {
            match tcp::next(st, dir, info.tcp_flags) {
                Some(n) => c.tcp = Some(n),
                None => {
                    self.stats_of(t).invalid.fetch_add(1, Ordering::Relaxed);
                    return Some(Verdict::invalid(*t));
                }
            }
        }
        if dir == Dir::Reply {
            c.seen_reply = true;
            state |= ct_state::EST | ct_state::RPL;
        } else if c.seen_reply {
            state |= ct_state::EST;
        } else {
            state |= ct_state::NEW;
        }
        if c.snat {
            state |= ct_state::SNAT;
        }
        if c.dnat {
            state |= ct_state::DNAT;
        }
        c.packets[dir as usize] += 1;
        let translated = match dir {
            Dir::Orig => c.reply.reverse(),
            Dir::Reply => c.orig.reverse(),
        };
        c.expires_ns = now_ns + ConnTableTimeouts(timeouts).timeout_ns(c);
        if c.expires_ns < c.queued_ns {
            c.queued_ns = c.expires_ns;
            let d = c.expires_ns;
            shard.deadlines.push(Reverse((d, orig)));
        }
        Some(Verdict {
            state,
            dir: Some(dir),
            translated,
        })
    }

    fn create(
        &self,
        t: Tuple,
        info: PacketInfo,
        nat: Option<Nat>,
        now_ns: u64,
    ) -> Result<Verdict, DropReason> {
        if self.count.load(Ordering::Relaxed) >= self.limits.max_conns {
            self.counters.table_full.fetch_add(1, Ordering::Relaxed);
            return Err(DropReason::CtTableFull);
        }
        if let Some(&max) = self.limits.zone_max.get(&t.zone) {
            let zc = self.zone_counts.lock().unwrap_or_else(|e| e.into_inner());
            if zc.get(&t.zone).copied().unwrap_or(0) >= max {
                self.counters.zone_full.fetch_add(1, Ordering::Relaxed);
                return Err(DropReason::CtTableFull);
            }
        }
        let mut attempt = 0u32;
        loop {
            let reply = match self.nat_reply(&t, nat, attempt) {
                Some(r) => r,
                None => {
                    self.counters
                        .nat_port_exhausted
                        .fetch_add(1, Ordering::Relaxed);
                    return Err(DropReason::NatPortExhausted);
                }
            };
            self.stats_of(&t)
                .nat_attempts
                .fetch_add(1, Ordering::Relaxed);
            let (a, b) = (t.shard(), reply.shard());
            // Both shards, in index order (one lock if they coincide).
            let (lo, hi) = (a.min(b), a.max(b));
            let mut g_lo = self.shard(lo);
            let mut g_hi = if hi != lo { Some(self.shard(hi)) } else { None };
            let (sa, sb): (&mut Shard, &mut Shard) = match g_hi.as_deref_mut() {
                None => {
                    // Same shard: handle through one reference below.
                    let s = &mut *g_lo;
                    if s.conns.contains_key(&t) || s.replies.contains_key(&t) {
                        drop(g_lo);
                        return Ok(self
                            .update_existing(&t, info, now_ns)
                            .unwrap_or(Verdict::invalid(t)));
                    }
                    if s.replies.contains_key(&reply) || s.conns.contains_key(&reply) {
                        drop(g_lo);
                        attempt += 1;
                        if nat.is_none() || attempt >= NAT_MAX_ATTEMPTS {
                            return self.collision(t, info, nat, now_ns);
                        }
                        continue;
                    }
                    let conn = self.new_conn(t, reply, info, nat, now_ns);
                    let v = self.first_verdict(&conn);
                    s.deadlines.push(Reverse((conn.expires_ns, t)));
                    s.replies.insert(reply, t);
                    s.conns.insert(t, conn);
                    drop(g_lo);
                    self.count_new(&t);
                    return Ok(v);
                }
                Some(h) => {
                    if a == lo {
                        (&mut *g_lo, h)
                    } else {
                        (h, &mut *g_lo)
                    }
                }
            };
            // sa: shard of t, sb: shard of reply.
            if sa.conns.contains_key(&t) || sa.replies.contains_key(&t) {
                drop(g_hi);
                drop(g_lo);
                return Ok(self
                    .update_existing(&t, info, now_ns)
                    .unwrap_or(Verdict::invalid(t)));
            }
            if sb.replies.contains_key(&reply) || sb.conns.contains_key(&reply) {
                drop(g_hi);
                drop(g_lo);
                attempt += 1;
                if nat.is_none() || attempt >= NAT_MAX_ATTEMPTS {
                    return self.collision(t, info, nat, now_ns);
                }
                continue;
            }
            let conn = self.new_conn(t, reply, info, nat, now_ns);
            let v = self.first_verdict(&conn);
            sa.deadlines.push(Reverse((conn.expires_ns, t)));
            sb.replies.insert(reply, t);
            sa.conns.insert(t, conn);
            drop(g_hi);
            drop(g_lo);
            self.count_new(&t);
            return Ok(v);
        }
    }

    /// The reply tuple is taken by another connection and NAT cannot move
    /// it: the packet belongs to nothing we can create.
    fn collision(
        &self,
        t: Tuple,
        _info: PacketInfo,
        nat: Option<Nat>,
        _now: u64,
    ) -> Result<Verdict, DropReason> {
        if nat.is_some() {
            self.counters
                .nat_port_exhausted
                .fetch_add(1, Ordering::Relaxed);
            return Err(DropReason::NatPortExhausted);
        }
        self.stats_of(&t).invalid.fetch_add(1, Ordering::Relaxed);
        Ok(Verdict::invalid(t))
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
        c.expires_ns = now_ns + self.timeout_ns(&c);
        c.queued_ns = c.expires_ns;
        c
    }

    fn first_verdict(&self, c: &Conn) -> Verdict {
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
        }
    }

    /// The reply tuple for `t` under `nat`, for the `attempt`-th port
    /// choice (attempt 0 keeps the original port when it is in range).
    fn nat_reply(&self, t: &Tuple, nat: Option<Nat>, attempt: u32) -> Option<Tuple> {
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
        let port = if !has_ports {
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
            let span = (phi - plo) as u32 + 1;
            if attempt == 0 && (plo..=phi).contains(&orig_port) {
                orig_port
            } else {
                if attempt >= span.min(NAT_MAX_ATTEMPTS) && attempt > 0 {
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
            let mut s = self.shard(orig.shard());
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
            let mut s = self.shard(conn.reply.shard());
            if s.replies.get(&conn.reply) == Some(orig) {
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

    /// Expires up to `budget` connections from the next shard (round robin).
    /// Returns how many were removed.
    pub fn expire(&self, now_ns: u64, budget: usize) -> usize {
        let i = self.expire_hand.fetch_add(1, Ordering::Relaxed) & (SHARDS - 1);
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
        let (orig, dir) = {
            let s = self.shard(embedded.shard());
            if s.conns.contains_key(embedded) {
                (*embedded, Dir::Orig)
            } else {
                (*s.replies.get(embedded)?, Dir::Reply)
            }
        };
        let s = self.shard(orig.shard());
        s.conns.get(&orig).map(|c| (c.clone(), dir))
    }
}

/// Timeouts as a standalone calculator (used while a shard is borrowed).
struct ConnTableTimeouts(Timeouts);

impl ConnTableTimeouts {
    fn timeout_ns(&self, c: &Conn) -> u64 {
        let t = &self.0;
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
            _ => t.udp,
        };
        s.saturating_mul(SEC)
    }
}

impl ConnTable {
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

/// The tuple and tracking inputs of a parsed IPv4 packet, in `zone`; None
/// for packets conntrack does not follow (non-IPv4, later fragments, ICMP
/// other than echo).
pub fn tuple_of(key: &crate::key::FlowKey, zone: u16) -> Option<(Tuple, PacketInfo)> {
    use crate::key::{ethertype, Field, FRAG_LATER};
    if key.dl_type() != ethertype::IPV4 || key.get(Field::NwFrag) as u8 & FRAG_LATER != 0 {
        return None;
    }
    let proto = key.nw_proto();
    let (sport, dport, info) = match proto {
        ipproto::TCP | ipproto::UDP => (
            key.tp_src(),
            key.tp_dst(),
            PacketInfo {
                tcp_flags: key.get(Field::TcpFlags) as u16 & 0x1ff,
                icmp_type: 0,
            },
        ),
        ipproto::ICMP if matches!(key.tp_src(), 0 | 8) => (
            key.get(Field::IcmpId) as u16,
            0,
            PacketInfo {
                tcp_flags: 0,
                icmp_type: key.tp_src() as u8,
            },
        ),
        _ => return None,
    };
    Some((
        Tuple {
            zone,
            proto,
            src: Ipv4Addr::from(key.nw_src()),
            dst: Ipv4Addr::from(key.nw_dst()),
            sport,
            dport,
        },
        info,
    ))
}

impl ConnTable {
    /// What `track` would say, without changing anything (for `trace`).
    pub fn peek(&self, t: Tuple, info: PacketInfo, nat: Option<Nat>) -> Verdict {
        let found = {
            let s = self.shard(t.shard());
            if let Some(c) = s.conns.get(&t) {
                Some((c.clone(), Dir::Orig))
            } else {
                s.replies
                    .get(&t)
                    .copied()
                    .map(|o| (o, Dir::Reply))
                    .and_then(|(o, d)| {
                        drop(s);
                        self.shard(o.shard()).conns.get(&o).map(|c| (c.clone(), d))
                    })
            }
        };
        match found {
            Some((c, dir)) => {
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
                Verdict {
                    state,
                    dir: Some(dir),
                    translated,
                }
            }
            None => {
                if t.proto == ipproto::TCP && !tcp::valid_new(info.tcp_flags) {
                    return Verdict::invalid(t);
                }
                let translated = self.nat_reply(&t, nat, 0).map_or(t, |r| r.reverse());
                let mut state = ct_state::TRK | ct_state::NEW;
                match nat {
                    Some(Nat::Src { .. }) => state |= ct_state::SNAT,
                    Some(Nat::Dst { .. }) => state |= ct_state::DNAT,
                    None => {}
                }
                Verdict {
                    state,
                    dir: Some(Dir::Orig),
                    translated,
                }
            }
        }
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    /// Memory per connection stays within the 256-byte budget: the entry
    /// (key + value) in its shard, the reply index entry, one deadline.
    #[test]
    fn memory_per_connection_is_bounded() {
        let per_conn = std::mem::size_of::<(Tuple, Conn)>()
            + std::mem::size_of::<(Tuple, Tuple)>()
            + std::mem::size_of::<Reverse<(u64, Tuple)>>()
            + 2; // hashbrown control bytes
                 // hashbrown keeps tables at most 7/8 full.
        let with_slack = per_conn * 8 / 7;
        assert!(with_slack <= 256, "{with_slack} bytes per connection");
        println!("conntrack: {per_conn} bytes per connection ({with_slack} with table slack)");
    }
}
