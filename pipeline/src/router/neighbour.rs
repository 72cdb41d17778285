//! A router instance's run-time state: dynamic neighbours (ARP) with their
//! pending packets, and the ICMP error rate limit.
//!
//! What: next hops that are not static (`nud permanent`) entries are
//! resolved with ARP the way Linux does it: the first packet creates an
//! INCOMPLETE entry and is held, a request is sent, up to `MAX_SOLICITS`
//! requests one `RETRANS_NS` apart; a reply makes the entry REACHABLE and
//! releases the held packets; no reply means FAILED (held packets dropped
//! and counted). A reachable entry becomes STALE after `REACHABLE_NS`: it
//! is still used (traffic never stops for a re-confirmation, as in Linux),
//! and the walks that use it send up to `MAX_SOLICITS` requests one
//! `RETRANS_NS` apart; a reply makes it REACHABLE again, silence removes
//! it (the next packet starts over as INCOMPLETE), and a stale entry no
//! walk uses within `RETRANS_NS` is removed.
//!
//! Ownership: one `RouterRuntime` per router instance, shared by every
//! worker and kept across snapshot rebuilds (like MAC tables). A mutex
//! guards it; it is taken only on the slow path (a translation that needs a
//! dynamic neighbour, an ARP reply) and by packets held for an unresolved
//! neighbour, never by packets of a cached flow to a resolved one. Cached
//! flows that used a dynamic entry depend on the switch's learned-state
//! generation, which every entry change bumps.

use crate::drop::DropReason;
use crate::key::Mac;
use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Time between ARP requests for one neighbour (Linux `retrans_time_ms`).
pub const RETRANS_NS: u64 = 1_000_000_000;
/// Requests before giving up (Linux `mcast_solicit`).
pub const MAX_SOLICITS: u32 = 3;
/// How long a resolved entry is used without re-resolving.
pub const REACHABLE_NS: u64 = 30_000_000_000;
/// Packets held per unresolved neighbour (beyond: dropped, counted).
pub const MAX_PENDING: usize = 16;
/// Dynamic entries per instance (beyond: new next hops are refused, counted).
pub const MAX_NEIGHBOURS: usize = 4096;
/// ICMP errors per second per instance, and the burst allowed.
pub const ICMP_RATE_PER_SEC: u64 = 1000;
pub const ICMP_BURST: u64 = 50;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NeighState {
    Incomplete {
        solicits: u32,
    },
    Reachable {
        mac: Mac,
    },
    /// Past its reachable time: still used while being re-confirmed.
    Stale {
        mac: Mac,
        probes: u32,
    },
    Failed,
}

struct Entry {
    state: NeighState,
    /// Last request sent (Incomplete, Stale once probed), resolution time
    /// (Reachable), the time it went stale, or failure time (Failed).
    since_ns: u64,
    pending: VecDeque<Vec<u8>>,
}

/// A packet released by a resolution: send `frame` (its destination MAC
/// already set) out of interface `iface`.
#[derive(Debug)]
pub struct Released {
    pub iface: usize,
    pub frame: Vec<u8>,
}

/// Counters, readable without the lock.
#[derive(Default, Debug)]
pub struct NeighCounters {
    pub requests_sent: AtomicU64,
    pub resolved: AtomicU64,
    pub failed: AtomicU64,
    pub held: AtomicU64,
    pub released: AtomicU64,
    pub queue_drops: AtomicU64,
    pub table_full: AtomicU64,
    pub icmp_sent: AtomicU64,
    pub icmp_rate_limited: AtomicU64,
}

struct State {
    entries: HashMap<(usize, Ipv4Addr), Entry>,
    released: Vec<Released>,
    icmp_tokens: u64,
    icmp_last_ns: u64,
}

/// Run-time state of one router instance.
pub struct RouterRuntime {
    /// The instance's conntrack zone (stable for the instance's lifetime,
    /// whatever its position in later snapshots).
    pub zone: u16,
    state: Mutex<State>,
    pub counters: NeighCounters,
    /// The switch's learned-state generation (shared with the MAC tables).
    generation: Arc<AtomicU64>,
}

/// What to do with a packet whose next hop is not resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldOutcome {
    /// Held; an ARP request is due now.
    HeldSolicit,
    /// Held; a request is already outstanding.
    Held,
    /// Not held.
    Dropped(DropReason),
}

/// One row of `router show`'s neighbour list.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NeighRow {
    pub iface: usize,
    pub ip: Ipv4Addr,
    pub state: NeighState,
    pub pending: usize,
}

impl RouterRuntime {
    pub fn new(generation: Arc<AtomicU64>) -> RouterRuntime {
        RouterRuntime::with_zone(generation, 0)
    }

    pub fn with_zone(generation: Arc<AtomicU64>, zone: u16) -> RouterRuntime {
        RouterRuntime {
            zone,
            state: Mutex::new(State {
                entries: HashMap::new(),
                released: Vec::new(),
                icmp_tokens: ICMP_BURST,
                icmp_last_ns: 0,
            }),
            counters: NeighCounters::default(),
            generation,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The resolved MAC of `ip` on interface `iface`, and whether the
    /// entry is stale (to be re-confirmed: see `probe`).
    pub fn lookup(&self, iface: usize, ip: Ipv4Addr, now_ns: u64) -> Option<(Mac, bool)> {
        let st = self.lock();
        match st.entries.get(&(iface, ip)) {
            Some(Entry {
                state: NeighState::Reachable { mac },
                since_ns,
                ..
            }) => Some((*mac, now_ns.saturating_sub(*since_ns) >= REACHABLE_NS)),
            Some(Entry {
                state: NeighState::Stale { mac, .. },
                ..
            }) => Some((*mac, true)),
            _ => None,
        }
    }

    /// A packet is being sent to stale neighbour `ip`: whether a request
    /// to re-confirm it is due now (the first one at once, then one per
    /// `RETRANS_NS`, at most `MAX_SOLICITS`).
    pub fn probe(&self, iface: usize, ip: Ipv4Addr, now_ns: u64) -> bool {
        let mut st = self.lock();
        let Some(e) = st.entries.get_mut(&(iface, ip)) else {
            return false;
        };
        let probes = match e.state {
            NeighState::Stale { probes, .. } => probes,
            NeighState::Reachable { mac } if now_ns.saturating_sub(e.since_ns) >= REACHABLE_NS => {
                e.state = NeighState::Stale { mac, probes: 0 };
                0
            }
            _ => return false,
        };
        let due = probes == 0 || now_ns.saturating_sub(e.since_ns) >= RETRANS_NS;
        if !due || probes >= MAX_SOLICITS {
            return false;
        }
        if let NeighState::Stale { probes, .. } = &mut e.state {
            *probes += 1;
        }
        e.since_ns = now_ns;
        self.counters.requests_sent.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Holds `frame` (a routed packet whose destination MAC is still to be
    /// filled in) until `ip` on `iface` resolves, and says whether a request
    /// is due.
    pub fn hold(&self, iface: usize, ip: Ipv4Addr, frame: &[u8], now_ns: u64) -> HoldOutcome {
        let mut st = self.lock();
        let n = st.entries.len();
        let e = match st.entries.get_mut(&(iface, ip)) {
            Some(e) => e,
            None => {
                if n >= MAX_NEIGHBOURS {
                    self.counters.table_full.fetch_add(1, Ordering::Relaxed);
                    return HoldOutcome::Dropped(DropReason::NeighbourQueueFull);
                }
                st.entries.entry((iface, ip)).or_insert(Entry {
                    state: NeighState::Incomplete { solicits: 0 },
                    since_ns: now_ns,
                    pending: VecDeque::new(),
                })
            }
        };
        let mut solicit = false;
        match e.state {
            NeighState::Incomplete { solicits } => {
                let due = solicits == 0 || now_ns.saturating_sub(e.since_ns) >= RETRANS_NS;
                if due && solicits < MAX_SOLICITS {
                    e.state = NeighState::Incomplete {
                        solicits: solicits + 1,
                    };
                    e.since_ns = now_ns;
                    solicit = true;
                } else if due {
                    // No answer to MAX_SOLICITS requests: FAILED.
                    let dropped = e.pending.len() as u64;
                    e.pending.clear();
                    e.state = NeighState::Failed;
                    e.since_ns = now_ns;
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                    self.counters
                        .queue_drops
                        .fetch_add(dropped + 1, Ordering::Relaxed);
                    return HoldOutcome::Dropped(DropReason::NeighbourFailed);
                }
            }
            NeighState::Failed => {
                if now_ns.saturating_sub(e.since_ns) < RETRANS_NS {
                    self.counters.queue_drops.fetch_add(1, Ordering::Relaxed);
                    return HoldOutcome::Dropped(DropReason::NeighbourFailed);
                }
                // Try again.
                e.state = NeighState::Incomplete { solicits: 1 };
                e.since_ns = now_ns;
                solicit = true;
            }
            NeighState::Reachable { .. } | NeighState::Stale { .. } => {
                // Gone between lookup and hold: re-resolve.
                e.state = NeighState::Incomplete { solicits: 1 };
                e.since_ns = now_ns;
                solicit = true;
            }
        }
        if e.pending.len() >= MAX_PENDING {
            self.counters.queue_drops.fetch_add(1, Ordering::Relaxed);
            return if solicit {
                // The packet is lost but the request still goes out.
                HoldOutcome::HeldSolicit
            } else {
                HoldOutcome::Dropped(DropReason::NeighbourQueueFull)
            };
        }
        e.pending.push_back(frame.to_vec());
        self.counters.held.fetch_add(1, Ordering::Relaxed);
        if solicit {
            self.counters.requests_sent.fetch_add(1, Ordering::Relaxed);
            HoldOutcome::HeldSolicit
        } else {
            HoldOutcome::Held
        }
    }

    /// An ARP packet from `ip` is-at `mac` arrived on `iface`: the entry (if
    /// we were resolving it, or already had it) becomes reachable and its
    /// held packets are released with `mac` as destination. Returns whether
    /// anything changed. Unsolicited ARP for unknown neighbours does not
    /// create entries (Linux `arp_accept=0`).
    pub fn learn(&self, iface: usize, ip: Ipv4Addr, mac: Mac, now_ns: u64) -> bool {
        let mut st = self.lock();
        let State {
            entries, released, ..
        } = &mut *st;
        let Some(e) = entries.get_mut(&(iface, ip)) else {
            return false;
        };
        let changed = e.state != NeighState::Reachable { mac };
        e.state = NeighState::Reachable { mac };
        e.since_ns = now_ns;
        let n = e.pending.len() as u64;
        for mut frame in e.pending.drain(..) {
            if let Some(d) = frame.get_mut(0..6) {
                d.copy_from_slice(&mac.0);
            }
            released.push(Released { iface, frame });
        }
        drop(st);
        if changed {
            self.counters.resolved.fetch_add(1, Ordering::Relaxed);
            self.bump();
        }
        self.counters.released.fetch_add(n, Ordering::Relaxed);
        changed || n > 0
    }

    /// Packets released since the last call.
    pub fn take_released(&self) -> Vec<Released> {
        std::mem::take(&mut self.lock().released)
    }

    /// Ages the table: reachable entries older than `REACHABLE_NS` become
    /// stale; stale ones no walk probed within `RETRANS_NS`, or whose last
    /// probe went unanswered for `RETRANS_NS`, are removed; failed ones go
    /// after their hold-down. A stale entry with a probe due bumps the
    /// generation, so that the walks using it translate again and send it.
    /// Returns how many entries were removed.
    pub fn expire(&self, now_ns: u64) -> usize {
        let mut st = self.lock();
        let before = st.entries.len();
        let mut changed = false;
        st.entries.retain(|_, e| {
            let age = now_ns.saturating_sub(e.since_ns);
            match e.state {
                NeighState::Reachable { mac } => {
                    if age >= REACHABLE_NS {
                        e.state = NeighState::Stale { mac, probes: 0 };
                        e.since_ns = now_ns;
                        changed = true;
                    }
                    true
                }
                NeighState::Stale { probes, .. } => {
                    if age < RETRANS_NS {
                        true
                    } else if probes == 0 || probes >= MAX_SOLICITS {
                        // Unused, or never confirmed again.
                        false
                    } else {
                        changed = true;
                        true
                    }
                }
                NeighState::Failed => age < RETRANS_NS,
                NeighState::Incomplete { .. } => true,
            }
        });
        let n = before - st.entries.len();
        drop(st);
        if n > 0 || changed {
            self.bump();
        }
        n
    }

    /// Takes one ICMP error token (Linux `icmp_ratelimit`-like bucket).
    pub fn icmp_allowed(&self, now_ns: u64) -> bool {
        let mut st = self.lock();
        let elapsed = now_ns.saturating_sub(st.icmp_last_ns);
        let refill = elapsed.saturating_mul(ICMP_RATE_PER_SEC) / 1_000_000_000;
        if refill > 0 {
            st.icmp_tokens = (st.icmp_tokens + refill).min(ICMP_BURST);
            st.icmp_last_ns = now_ns;
        }
        if st.icmp_tokens == 0 {
            self.counters
                .icmp_rate_limited
                .fetch_add(1, Ordering::Relaxed);
            return false;
        }
        st.icmp_tokens -= 1;
        self.counters.icmp_sent.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// The dynamic neighbour table, for `router show`.
    pub fn rows(&self) -> Vec<NeighRow> {
        let st = self.lock();
        let mut v: Vec<NeighRow> = st
            .entries
            .iter()
            .map(|(&(iface, ip), e)| NeighRow {
                iface,
                ip,
                state: e.state.clone(),
                pending: e.pending.len(),
            })
            .collect();
        v.sort_by_key(|r| (r.iface, r.ip));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> RouterRuntime {
        RouterRuntime::new(Arc::new(AtomicU64::new(0)))
    }

    #[test]
    fn hold_solicit_then_resolve_releases_in_order() {
        let r = rt();
        let ip = Ipv4Addr::new(10, 0, 0, 9);
        assert_eq!(r.hold(1, ip, &[0; 14], 0), HoldOutcome::HeldSolicit);
        assert_eq!(r.hold(1, ip, &[1; 14], 10), HoldOutcome::Held);
        assert_eq!(r.lookup(1, ip, 20), None);
        let mac = Mac([2, 0, 0, 0, 0, 9]);
        assert!(r.learn(1, ip, mac, 30));
        let rel = r.take_released();
        assert_eq!(rel.len(), 2);
        assert_eq!(&rel[0].frame[0..6], &mac.0);
        assert_eq!(rel[1].frame[6], 1);
        assert_eq!(r.lookup(1, ip, 40), Some((mac, false)));
        // Aged: stale, still used (re-confirmed by the walks using it).
        assert_eq!(r.lookup(1, ip, 40 + REACHABLE_NS), Some((mac, true)));
        assert_eq!(r.expire(40 + REACHABLE_NS), 0);
        // Unused while stale: gone.
        assert_eq!(r.expire(40 + REACHABLE_NS + RETRANS_NS), 1);
    }

    #[test]
    fn retries_are_spaced_and_bounded_then_fail() {
        let r = rt();
        let ip = Ipv4Addr::new(10, 0, 0, 9);
        let mut t = 0;
        assert_eq!(r.hold(0, ip, &[0; 14], t), HoldOutcome::HeldSolicit);
        t += RETRANS_NS / 2;
        assert_eq!(r.hold(0, ip, &[0; 14], t), HoldOutcome::Held);
        for _ in 1..MAX_SOLICITS {
            t += RETRANS_NS;
            assert_eq!(r.hold(0, ip, &[0; 14], t), HoldOutcome::HeldSolicit);
        }
        t += RETRANS_NS;
        assert_eq!(
            r.hold(0, ip, &[0; 14], t),
            HoldOutcome::Dropped(DropReason::NeighbourFailed)
        );
        assert_eq!(
            r.counters.requests_sent.load(Ordering::Relaxed),
            MAX_SOLICITS as u64
        );
        assert!(r.take_released().is_empty());
    }

    #[test]
    fn a_stale_entry_is_used_while_probed_and_confirmed_or_removed() {
        let r = rt();
        let ip = Ipv4Addr::new(203, 0, 113, 1);
        let mac = Mac([2, 0, 0, 0, 0, 1]);
        let sec = 1_000_000_000;
        assert_eq!(r.hold(0, ip, &[0; 60], 0), HoldOutcome::HeldSolicit);
        assert!(r.learn(0, ip, mac, 0));
        assert_eq!(r.lookup(0, ip, sec), Some((mac, false)));
        // Past its reachable time: stale, still used, probed at once and
        // then once a second, three times.
        r.expire(REACHABLE_NS);
        assert_eq!(r.lookup(0, ip, REACHABLE_NS), Some((mac, true)));
        let t = REACHABLE_NS + 1;
        assert!(r.probe(0, ip, t));
        assert!(!r.probe(0, ip, t + sec / 2), "paced");
        assert!(r.probe(0, ip, t + sec));
        assert!(r.probe(0, ip, t + 2 * sec));
        assert!(!r.probe(0, ip, t + 3 * sec), "at most MAX_SOLICITS");
        assert_eq!(
            r.expire(t + 2 * sec + sec / 2),
            0,
            "the last probe has its time"
        );
        // A reply confirms it.
        assert!(r.learn(0, ip, mac, t + 2 * sec + sec / 2));
        assert_eq!(r.lookup(0, ip, t + 3 * sec), Some((mac, false)));
        // Silence removes it: the next packet starts over.
        let t2 = t + 3 * sec + REACHABLE_NS;
        r.expire(t2);
        for i in 0..MAX_SOLICITS as u64 {
            assert!(r.probe(0, ip, t2 + i * sec));
        }
        assert_eq!(r.expire(t2 + 3 * sec), 1);
        assert_eq!(r.lookup(0, ip, t2 + 3 * sec), None);
        // A stale entry nobody uses goes too.
        assert_eq!(
            r.hold(0, ip, &[0; 60], t2 + 4 * sec),
            HoldOutcome::HeldSolicit
        );
        r.learn(0, ip, mac, t2 + 4 * sec);
        let t3 = t2 + 4 * sec + REACHABLE_NS;
        r.expire(t3);
        assert_eq!(r.expire(t3 + sec), 1);
    }

    #[test]
    fn pending_queue_is_bounded() {
        let r = rt();
        let ip = Ipv4Addr::new(10, 0, 0, 9);
        for i in 0..MAX_PENDING + 5 {
            let out = r.hold(0, ip, &[0; 14], i as u64);
            if i >= MAX_PENDING {
                assert_eq!(out, HoldOutcome::Dropped(DropReason::NeighbourQueueFull));
            }
        }
        assert_eq!(r.counters.queue_drops.load(Ordering::Relaxed), 5);
        r.learn(0, ip, Mac([1; 6]), 100);
        assert_eq!(r.take_released().len(), MAX_PENDING);
    }

    #[test]
    fn unsolicited_replies_create_nothing_and_icmp_is_rate_limited() {
        let r = rt();
        assert!(!r.learn(0, Ipv4Addr::new(1, 2, 3, 4), Mac([1; 6]), 0));
        assert!(r.rows().is_empty());
        let sent = (0..200).filter(|_| r.icmp_allowed(1)).count();
        assert_eq!(sent as u64, ICMP_BURST);
        assert!(r.icmp_allowed(1 + 1_000_000_000));
    }
}
