//! The per-worker flow cache: megaflows from a packet's key to the program
//! its walk compiled to.
//!
//! What: after the slow path translates a key, the result is stored under
//! the key masked by the bits the walk depended on (`Xlation::wc`). Any later
//! packet equal under that mask replays the program without walking tables.
//!
//! Design: entries are grouped by mask (tuple space, like the classifier);
//! a lookup probes each mask's hash table. Capacity and the number of masks
//! are bounded; when full, entries are evicted round-robin (a clock hand).
//! Validity is by generation, never by a background revalidator:
//! * the snapshot generation: a worker that sees a new snapshot flushes;
//! * the MAC-table generation: entries whose walk used NORMAL record the
//!   generation read before translating and are dropped when it moved.
//!
//! Ownership: one `FlowCache` per worker, touched only by that worker.

use crate::bridge::mac::MacLearnRef;
use crate::classifier::hash_masked;
use crate::key::{FlowKey, KEY_WORDS};
use crate::program::Program;
use crate::switch::{RuleStats, Switch};
use crate::xlate::Xlation;
use hashbrown::HashTable;
use std::sync::Arc;

/// Default number of entries per worker (OVS: 200k datapath flows overall).
pub const DEFAULT_CAPACITY: usize = 65536;
/// Most distinct masks kept; past this the cache is flushed.
pub const MAX_MASKS: usize = 256;
/// How often a hit refreshes the MAC entries its flow relies on.
pub const MAC_REFRESH_NS: u64 = 1_000_000_000;

/// A cached walk.
pub struct CacheEntry {
    /// Shared so a recirculating packet can keep it while the cache changes.
    pub program: Arc<Program>,
    /// Counters of the flows the walk matched.
    pub rules: Box<[Arc<RuleStats>]>,
    learned: Box<[MacLearnRef]>,
    /// MAC-table generation the walk was valid for (None: did not use NORMAL).
    mac_generation: Option<u64>,
    last_refresh_ns: u64,
    pub hits: u64,
    /// Packets/bytes hit since the rule counters were last credited
    /// (credited once per burst, and before the entry goes away).
    pending_packets: u64,
    pending_bytes: u64,
    last_hit_ns: u64,
}

impl CacheEntry {
    /// When a packet last hit it (the datapath's clock).
    pub fn last_hit_ns(&self) -> u64 {
        self.last_hit_ns
    }

    /// Adds the pending packets to the counters of every rule of the walk.
    fn credit(&mut self, worker: usize) {
        if self.pending_packets != 0 {
            for r in self.rules.iter() {
                r.add(
                    worker,
                    self.pending_packets,
                    self.pending_bytes,
                    self.last_hit_ns,
                );
            }
            self.pending_packets = 0;
            self.pending_bytes = 0;
        }
    }
}

struct Slot {
    masked: FlowKey,
    mask: u16,
    hash: u64,
    entry: CacheEntry,
}

struct MaskTable {
    mask: FlowKey,
    words: Vec<u8>,
    slots: HashTable<u32>,
}

impl MaskTable {
    /// `key` falls in `slot`'s megaflow (the slot is one of this mask's):
    /// every word compared, without a branch (a loop over the mask's own
    /// words costs a data-dependent exit per word).
    #[inline(always)]
    fn holds(&self, key: &FlowKey, slot: &Slot) -> bool {
        let mut diff = 0u64;
        for i in 0..KEY_WORDS {
            diff |= (key.w[i] & self.mask.w[i]) ^ slot.masked.w[i];
        }
        diff == 0
    }
}

impl Slot {
    /// The walk relied on MAC tables that have changed since.
    #[inline(always)]
    fn is_stale(&self, mac_generation: u64) -> bool {
        self.entry
            .mac_generation
            .is_some_and(|g| g != mac_generation)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheCounters {
    pub hits: u64,
    pub misses: u64,
    pub inserts: u64,
    pub evictions: u64,
    /// Entries dropped because the MAC tables changed under them.
    pub stale: u64,
    /// Whole-cache flushes (new snapshot, too many masks).
    pub flushes: u64,
}

pub struct FlowCache {
    /// The worker owning this cache (its slot in rule counters).
    worker: usize,
    generation: u64,
    /// Slots with pending counter updates (each listed once).
    dirty: Vec<u32>,
    masks: Vec<MaskTable>,
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    hand: usize,
    capacity: usize,
    /// The slot the last lookup found (`u32::MAX`: none): packets of a
    /// burst tend to come in runs of one flow, and a run then costs one
    /// hash probe (a key that falls in a valid entry's megaflow has that
    /// entry's walk, whichever lookup finds it).
    last: u32,
    pub counters: CacheCounters,
}

impl FlowCache {
    pub fn new(worker: usize, capacity: usize) -> FlowCache {
        let capacity = capacity.max(1);
        FlowCache {
            worker,
            dirty: Vec::new(),
            generation: 0,
            masks: Vec::new(),
            slots: Vec::with_capacity(capacity),
            free: Vec::new(),
            hand: 0,
            capacity,
            last: u32::MAX,
            counters: CacheCounters::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn n_masks(&self) -> usize {
        self.masks.len()
    }

    pub fn flush(&mut self) {
        self.credit_rules();
        self.masks.clear();
        self.slots.clear();
        self.free.clear();
        self.hand = 0;
        self.counters.flushes += 1;
    }

    /// Drops everything if `sw` is a different snapshot than the entries were made for.
    #[inline]
    pub fn sync(&mut self, sw: &Switch) {
        if self.generation != sw.generation {
            if !self.slots.is_empty() {
                self.flush();
            }
            self.generation = sw.generation;
        }
    }

    /// Finds the entry for `key`, if any is valid under `mac_generation`.
    #[inline]
    pub fn lookup(&mut self, key: &FlowKey, mac_generation: u64) -> Option<u32> {
        if self.hit_again(self.last, key, mac_generation) {
            return Some(self.last);
        }
        for mi in 0..self.masks.len() {
            let mt = &self.masks[mi];
            let hash = hash_masked(key, &mt.mask, &mt.words);
            let slots = &self.slots;
            let found = mt.slots.find(hash, |&s| {
                slots
                    .get(s as usize)
                    .and_then(|o| o.as_ref())
                    .is_some_and(|slot| mt.holds(key, slot))
            });
            if let Some(&s) = found {
                let stale = self.slots[s as usize]
                    .as_ref()
                    .is_some_and(|slot| slot.is_stale(mac_generation));
                if stale {
                    self.remove(s);
                    self.counters.stale += 1;
                    continue;
                }
                self.counters.hits += 1;
                self.last = s;
                return Some(s);
            }
        }
        self.counters.misses += 1;
        None
    }

    /// Whether `key` falls in the megaflow of the valid entry in `slot`
    /// (the one a lookup just found, or the last one: the next packet of a
    /// run of one flow); counted as a hit when it does.
    #[inline]
    pub fn hit_again(&mut self, slot: u32, key: &FlowKey, mac_generation: u64) -> bool {
        self.run_end(slot, std::slice::from_ref(key), |_| true, 0, mac_generation) == 1
    }

    /// The end of the run of keys from `from` on that fall in the
    /// megaflow of the valid entry in `slot` (`keys.len()` when all do);
    /// `ok(i)`: key `i` is a packet's (it parsed). The entry and its mask
    /// are found once for the run, not per key; the members are counted as
    /// hits.
    #[inline]
    pub fn run_end(
        &mut self,
        slot: u32,
        keys: &[FlowKey],
        ok: impl Fn(usize) -> bool,
        from: usize,
        mac_generation: u64,
    ) -> usize {
        let Some(s) = self.slots.get(slot as usize).and_then(|o| o.as_ref()) else {
            return from;
        };
        let Some(mt) = self.masks.get(s.mask as usize) else {
            return from;
        };
        if s.is_stale(mac_generation) {
            return from;
        }
        let mut end = from;
        while end < keys.len() && ok(end) && mt.holds(&keys[end], s) {
            end += 1;
        }
        self.counters.hits += (end - from) as u64;
        end
    }

    /// Every entry with its megaflow (the masked key and the mask), for
    /// listings and checks; looking changes nothing (no hit, no expiry).
    pub fn entries(&self) -> impl Iterator<Item = (&FlowKey, &FlowKey, &CacheEntry)> {
        self.slots.iter().flatten().map(|s| {
            let mask = &self.masks[s.mask as usize].mask;
            (&s.masked, mask, &s.entry)
        })
    }

    /// The entry in `slot` (from `lookup` or `insert`).
    #[inline(always)]
    pub fn entry(&mut self, slot: u32) -> Option<&mut CacheEntry> {
        self.slots
            .get_mut(slot as usize)
            .and_then(|s| s.as_mut())
            .map(|s| &mut s.entry)
    }

    /// Refreshes, at most once per `MAC_REFRESH_NS`, the MAC entries the
    /// flow relies on, so that an active flow's destinations do not age out.
    #[inline]
    pub fn refresh_macs(&mut self, slot: u32, sw: &Switch, now_ns: u64) {
        if let Some(e) = self.entry(slot) {
            if !e.learned.is_empty() && now_ns.saturating_sub(e.last_refresh_ns) >= MAC_REFRESH_NS {
                e.last_refresh_ns = now_ns;
                for l in e.learned.iter() {
                    if let Some(b) = sw.bridges.get(l.bridge) {
                        b.macs.refresh(l.vlan, l.mac, l.port, now_ns);
                    }
                }
            }
        }
    }

    /// Stores a translation of `key` made while the MAC tables were at
    /// `mac_generation` (read before translating). Returns its slot.
    pub fn insert(&mut self, key: &FlowKey, x: Xlation, mac_generation: u64, now_ns: u64) -> u32 {
        let mask = x.wc;
        let mi = match self.masks.iter().position(|m| m.mask == mask) {
            Some(i) => i,
            None => {
                if self.masks.len() >= MAX_MASKS {
                    self.flush();
                }
                self.masks.push(MaskTable {
                    mask,
                    words: (0..KEY_WORDS)
                        .filter(|&i| mask.w[i] != 0)
                        .map(|i| i as u8)
                        .collect(),
                    slots: HashTable::new(),
                });
                self.masks.len() - 1
            }
        };
        if self.len() >= self.capacity {
            self.evict_one();
        }
        let masked = key.masked(&mask);
        let hash = hash_masked(&masked, &mask, &self.masks[mi].words);
        let entry = CacheEntry {
            program: Arc::new(x.program),
            rules: x.rules.into_boxed_slice(),
            learned: x.learned.into_boxed_slice(),
            mac_generation: x.uses_mac_table.then_some(mac_generation),
            last_refresh_ns: now_ns,
            hits: 0,
            pending_packets: 0,
            pending_bytes: 0,
            last_hit_ns: now_ns,
        };
        let slot = Slot {
            masked,
            mask: mi as u16,
            hash,
            entry,
        };
        let s = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(slot);
                s
            }
            None => {
                self.slots.push(Some(slot));
                (self.slots.len() - 1) as u32
            }
        };
        let slots = &self.slots;
        self.masks[mi].slots.insert_unique(hash, s, |&o| {
            slots
                .get(o as usize)
                .and_then(|x| x.as_ref())
                .map_or(0, |x| x.hash)
        });
        self.counters.inserts += 1;
        s
    }

    /// Counts one packet of `bytes` for the entry in `slot`; the flows'
    /// counters see it at the next `credit_rules`.
    #[inline(always)]
    pub fn account(&mut self, slot: u32, bytes: u64, now_ns: u64) {
        if let Some(Some(s)) = self.slots.get_mut(slot as usize) {
            let e = &mut s.entry;
            if e.pending_packets == 0 {
                self.dirty.push(slot);
            }
            e.pending_packets += 1;
            e.pending_bytes += bytes;
            e.last_hit_ns = now_ns;
            e.hits += 1;
        }
    }

    /// `n` more packets (`bytes` in all) of the entry in `slot` (each
    /// found by `hit_again`): counted as `n` `account` calls would.
    pub fn account_run(&mut self, slot: u32, n: u64, bytes: u64, now_ns: u64) {
        if n == 0 {
            return;
        }
        if let Some(Some(s)) = self.slots.get_mut(slot as usize) {
            let e = &mut s.entry;
            if e.pending_packets == 0 {
                self.dirty.push(slot);
            }
            e.pending_packets += n;
            e.pending_bytes += bytes;
            e.last_hit_ns = now_ns;
            e.hits += n;
        }
    }

    /// Credits every pending packet to the counters of the flows that
    /// matched it (the datapath calls this at the end of each burst).
    pub fn credit_rules(&mut self) {
        let worker = self.worker;
        for s in self.dirty.drain(..) {
            if let Some(Some(slot)) = self.slots.get_mut(s as usize) {
                slot.entry.credit(worker);
            }
        }
    }

    fn remove(&mut self, s: u32) {
        let worker = self.worker;
        let Some(mut slot) = self.slots.get_mut(s as usize).and_then(|o| o.take()) else {
            return;
        };
        slot.entry.credit(worker);
        if let Some(mt) = self.masks.get_mut(slot.mask as usize) {
            if let Ok(e) = mt.slots.find_entry(slot.hash, |&o| o == s) {
                e.remove();
            }
        }
        self.free.push(s);
    }

    fn evict_one(&mut self) {
        let n = self.slots.len();
        for _ in 0..n {
            let s = self.hand % n;
            self.hand = (self.hand + 1) % n;
            if self.slots[s].is_some() {
                self.remove(s as u32);
                self.counters.evictions += 1;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Field;
    use crate::program::Program;

    /// A walk that depends on `nw_dst` alone (and, with `macs`, on the MAC
    /// tables).
    fn xlation(macs: bool) -> Xlation {
        let mut wc = FlowKey::ZERO;
        wc.set(Field::NwDst, Field::NwDst.full_mask());
        Xlation {
            program: Program::default(),
            wc,
            rules: Vec::new(),
            learned: Vec::new(),
            uses_mac_table: macs,
        }
    }

    fn to(dst: u64) -> FlowKey {
        let mut k = FlowKey::ZERO;
        k.set(Field::NwDst, dst);
        k
    }

    #[test]
    fn a_run_of_one_flow_reuses_the_last_entry_but_never_past_its_megaflow_or_generation() {
        let mut c = FlowCache::new(0, 16);
        let a = c.insert(&to(1), xlation(true), 7, 0);
        let b = c.insert(&to(2), xlation(false), 7, 0);
        assert_eq!(c.lookup(&to(1), 7), Some(a));
        // Another source port, the same megaflow: the remembered entry.
        let mut same = to(1);
        same.set(Field::TpSrc, 99);
        assert_eq!(c.lookup(&same, 7), Some(a));
        // Outside the remembered megaflow: the other entry.
        assert_eq!(c.lookup(&to(2), 7), Some(b));
        assert_eq!(c.lookup(&to(1), 7), Some(a));
        // The MAC tables moved: the remembered entry is stale, not served.
        assert_eq!(c.lookup(&to(1), 8), None);
        assert_eq!(c.counters.stale, 1);
        assert_eq!(c.lookup(&to(3), 8), None);
        assert_eq!(c.counters.hits, 4);
    }
}
