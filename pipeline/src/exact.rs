//! The per-worker exact-match table of composed walks: a packet of a flow
//! already seen through conntrack costs one probe, its programs and its ct
//! stage.
//!
//! What: on the megaflow path, a walk through a conntrack step takes a
//! cache lookup for its first program, a re-parse of the packet for its key
//! at the step, and, per step, another cache lookup for the walk resumed
//! after it. An entry here is keyed by the packet's whole key as it arrives
//! (the packet words: in_port and every header field) and holds the walk
//! composed: the first program, then per step the key the packet has at
//! the step, the key the stage gave it when the entry was made, and the
//! program of the resumed walk. A packet that hits runs the first program,
//! runs the one ct stage (`conntrack::stage`, through the datapath) on the
//! recorded key, so conntrack still sees every packet (states, NAT,
//! counters, timeouts stay its own), and, when the stage gives the recorded
//! resumed key, goes straight on with the recorded program. A resumed key
//! that differs (the connection became established, was replaced, or NATs
//! differently) makes the datapath re-compose the entry from that step on,
//! through the megaflow cache.
//!
//! Why it is exact: every program is a megaflow cache entry's, valid for
//! every packet of its megaflow, and the arriving key and the resumed keys
//! select those megaflows exactly. The key a packet has at a step is a
//! function of the arriving key and of the earlier steps' results (a
//! program's rewrites take their values from the program, a step's from
//! the stage); the entry checks both: the resumed key, and the source NAT
//! port the packet carries (which a router's POSTROUTING writes and the key
//! does not hold). Where the port differs, the datapath parses the packet
//! as the megaflow path would.
//!
//! Only walks with a conntrack step are kept here: a walk without one
//! already costs a single megaflow lookup.
//!
//! Validity by generation, as the megaflow caches: a new snapshot flushes;
//! an entry whose walk used a MAC table or a neighbour records the
//! generation and is dropped when it moved. Rule counters: a packet that
//! hits is counted for the megaflow cache entries its walk is made of,
//! which credit their flows once per burst.
//!
//! Bounded: `capacity` entries, evicted round-robin (a clock hand).
//! Ownership: one `ExactTable` per worker (`Datapath`), touched only by it.

use crate::bridge::mac::MacLearnRef;
use crate::cache::{EntryRef, FlowCache};
use crate::key::{FlowKey, PACKET_WORDS};
use crate::program::Program;
use crate::switch::{RuleStats, Switch};
use hashbrown::HashTable;
use std::sync::Arc;

/// How often a hit refreshes the MAC entries its walk relies on.
pub const MAC_REFRESH_NS: u64 = crate::cache::MAC_REFRESH_NS;

/// The packet words of a key: what an entry is keyed by.
pub type ExactKey = [u64; PACKET_WORDS];

/// Which of a worker's megaflow caches a part of a walk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOf {
    /// Walks of arriving packets.
    First,
    /// Walks resumed after a conntrack step.
    Resumed,
}

/// A part of a composed walk (the first program, or a resumed walk): the
/// megaflow cache entry it came from, the counters of the flows it matched
/// and the MAC entries it relies on.
pub struct Part {
    cache: CacheOf,
    entry: EntryRef,
    rules: Box<[Arc<RuleStats>]>,
    learned: Box<[MacLearnRef]>,
    uses_mac_table: bool,
}

impl Part {
    /// The part the entry in `slot` of `cache` (which is `of`) stands for.
    pub fn of(cache: &FlowCache, of: CacheOf, slot: u32) -> Option<Part> {
        let entry = cache.entry_ref(slot)?;
        let e = cache.entry_at(slot)?;
        Some(Part {
            cache: of,
            entry,
            rules: e.rules.clone(),
            learned: e.learned().into(),
            uses_mac_table: e.uses_mac_table(),
        })
    }
}

/// One conntrack step of a composed walk and the walk resumed after it.
pub struct Resumed {
    /// The packet's key at the step, as it was parsed there.
    pub at_step: FlowKey,
    /// The source NAT port the packet carried to the step
    /// (`PacketBuf::nat_sport`).
    pub nat_sport: u32,
    /// The key the stage gave the packet: where and how its walk resumed.
    pub resumed: FlowKey,
    /// The resumed walk's program.
    pub program: Arc<Program>,
}

/// A walk being composed by the datapath, from the megaflow caches: the
/// first program (none when composing an entry's walk again from a step
/// on), then its steps.
pub struct Composed {
    first: Option<Arc<Program>>,
    pub steps: Vec<Resumed>,
    pub parts: Vec<Part>,
}

impl Composed {
    /// A walk that starts with `first`, whose part is `part`.
    pub fn new(first: Arc<Program>, part: Part) -> Composed {
        Composed {
            first: Some(first),
            steps: Vec::new(),
            parts: vec![part],
        }
    }

    /// The steps of a walk composed again from one of its steps on.
    pub fn tail() -> Composed {
        Composed {
            first: None,
            steps: Vec::new(),
            parts: Vec::new(),
        }
    }
}

/// A composed walk, as stored.
pub struct ExactEntry {
    key: ExactKey,
    hash: u64,
    pub first: Arc<Program>,
    pub steps: Vec<Resumed>,
    /// The first program's part, then one per step.
    parts: Vec<Part>,
    /// MAC-table generation the walk was valid for (None: it used none).
    mac_generation: Option<u64>,
    last_refresh_ns: u64,
    pub hits: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExactCounters {
    pub hits: u64,
    pub misses: u64,
    pub inserts: u64,
    pub evictions: u64,
    /// Entries dropped because the MAC tables or neighbours changed.
    pub stale: u64,
    /// Entries composed again from a step whose result changed.
    pub recomposed: u64,
    /// Whole-table flushes (a new snapshot).
    pub flushes: u64,
}

pub struct ExactTable {
    worker: usize,
    generation: u64,
    index: HashTable<u32>,
    slots: Vec<Option<ExactEntry>>,
    free: Vec<u32>,
    hand: usize,
    capacity: usize,
    pub counters: ExactCounters,
}

/// The hash of a key's packet words (multiply-rotate per word, then an
/// xor-shift finaliser for hashbrown's control bytes).
#[inline(always)]
fn hash_exact(k: &ExactKey) -> u64 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    for &w in k {
        h = (h ^ w).wrapping_mul(0xff51_afd7_ed55_8ccd).rotate_left(29);
    }
    h ^ (h >> 32)
}

#[inline(always)]
fn exact_key(key: &FlowKey) -> ExactKey {
    let mut k: ExactKey = [0; PACKET_WORDS];
    k.copy_from_slice(&key.w[..PACKET_WORDS]);
    k
}

impl ExactTable {
    pub fn new(worker: usize, capacity: usize) -> ExactTable {
        ExactTable {
            worker,
            generation: 0,
            index: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            hand: 0,
            capacity: capacity.max(1),
            counters: ExactCounters::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn flush(&mut self) {
        self.index.clear();
        self.slots.clear();
        self.free.clear();
        self.hand = 0;
        self.counters.flushes += 1;
    }

    /// Drops everything if `sw` is a different snapshot than the entries
    /// were made for.
    #[inline]
    pub fn sync(&mut self, sw: &Switch) {
        if self.generation != sw.generation {
            if !self.slots.is_empty() {
                self.flush();
            }
            self.generation = sw.generation;
        }
    }

    /// The entry for a packet arriving with `key`, if one is valid under
    /// `mac_generation`.
    #[inline]
    pub fn lookup(&mut self, key: &FlowKey, mac_generation: u64) -> Option<u32> {
        let k = exact_key(key);
        let hash = hash_exact(&k);
        let slots = &self.slots;
        let found = self
            .index
            .find(hash, |&s| {
                slots
                    .get(s as usize)
                    .and_then(|o| o.as_ref())
                    .is_some_and(|e| e.key == k)
            })
            .copied();
        let Some(s) = found else {
            self.counters.misses += 1;
            return None;
        };
        let stale = self.slots[s as usize]
            .as_ref()
            .is_some_and(|e| e.mac_generation.is_some_and(|g| g != mac_generation));
        if stale {
            self.remove(s);
            self.counters.stale += 1;
            self.counters.misses += 1;
            return None;
        }
        self.counters.hits += 1;
        Some(s)
    }

    #[inline(always)]
    pub fn entry(&self, slot: u32) -> Option<&ExactEntry> {
        self.slots.get(slot as usize).and_then(|s| s.as_ref())
    }

    /// Every entry, for listings and checks.
    pub fn entries(&self) -> impl Iterator<Item = &ExactEntry> {
        self.slots.iter().flatten()
    }

    /// Stores the walk composed for packets arriving with `key`, made while
    /// the MAC tables were at `mac_generation`. Returns its slot (None:
    /// `c` is a tail, not a whole walk).
    pub fn insert(
        &mut self,
        key: &FlowKey,
        c: Composed,
        mac_generation: u64,
        now_ns: u64,
    ) -> Option<u32> {
        let first = c.first?;
        let k = exact_key(key);
        let hash = hash_exact(&k);
        // A key already present (an entry re-made after it went stale in
        // between) is replaced.
        let slots = &self.slots;
        if let Some(&old) = self.index.find(hash, |&s| {
            slots
                .get(s as usize)
                .and_then(|o| o.as_ref())
                .is_some_and(|e| e.key == k)
        }) {
            self.remove(old);
        }
        if self.len() >= self.capacity {
            self.evict_one();
        }
        let uses_mac = c.parts.iter().any(|p| p.uses_mac_table);
        let entry = ExactEntry {
            key: k,
            hash,
            first,
            steps: c.steps,
            parts: c.parts,
            mac_generation: uses_mac.then_some(mac_generation),
            last_refresh_ns: now_ns,
            hits: 0,
        };
        let s = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(entry);
                s
            }
            None => {
                self.slots.push(Some(entry));
                (self.slots.len() - 1) as u32
            }
        };
        let slots = &self.slots;
        self.index.insert_unique(hash, s, |&o| {
            slots
                .get(o as usize)
                .and_then(|x| x.as_ref())
                .map_or(0, |x| x.hash)
        });
        self.counters.inserts += 1;
        Some(s)
    }

    /// Replaces the entry's walk from step `from` on with `c`'s steps
    /// (composed again after that step gave another result); the first
    /// program and earlier steps stay.
    pub fn recompose(&mut self, slot: u32, from: usize, c: Composed, mac_generation: u64) {
        let Some(e) = self.slots.get_mut(slot as usize).and_then(|s| s.as_mut()) else {
            return;
        };
        e.steps.truncate(from);
        e.parts.truncate(from + 1);
        if c.parts.iter().any(|p| p.uses_mac_table) && e.mac_generation.is_none() {
            e.mac_generation = Some(mac_generation);
        }
        e.steps.extend(c.steps);
        e.parts.extend(c.parts);
        self.counters.recomposed += 1;
    }

    /// Counts one packet of `bytes` for the walk in `slot`: for each of
    /// its parts' megaflow entries (`first` and `resumed` are the worker's
    /// megaflow caches), whose flows' counters see it once per burst; a
    /// part whose entry has left its cache credits its flows at once.
    #[inline]
    pub fn account(
        &mut self,
        slot: u32,
        bytes: u64,
        now_ns: u64,
        first: &mut FlowCache,
        mut resumed: Option<&mut FlowCache>,
    ) {
        let worker = self.worker;
        let Some(Some(e)) = self.slots.get_mut(slot as usize) else {
            return;
        };
        e.hits += 1;
        for p in &e.parts {
            let counted = match p.cache {
                CacheOf::First => first.account_ref(p.entry, 1, bytes, now_ns),
                CacheOf::Resumed => resumed
                    .as_deref_mut()
                    .is_some_and(|c| c.account_ref(p.entry, 1, bytes, now_ns)),
            };
            if !counted {
                for r in p.rules.iter() {
                    r.add(worker, 1, bytes, now_ns);
                }
            }
        }
    }

    /// Refreshes, at most once per `MAC_REFRESH_NS`, the MAC entries the
    /// walk relies on, so that an active flow's destinations do not age out.
    #[inline]
    pub fn refresh_macs(&mut self, slot: u32, sw: &Switch, now_ns: u64) {
        let Some(Some(e)) = self.slots.get_mut(slot as usize) else {
            return;
        };
        if now_ns.saturating_sub(e.last_refresh_ns) < MAC_REFRESH_NS {
            return;
        }
        e.last_refresh_ns = now_ns;
        for l in e.parts.iter().flat_map(|p| p.learned.iter()) {
            if let Some(b) = sw.bridges.get(l.bridge) {
                b.macs.refresh(l.vlan, l.mac, l.port, now_ns);
            }
        }
    }

    fn remove(&mut self, s: u32) {
        let Some(e) = self.slots.get_mut(s as usize).and_then(|o| o.take()) else {
            return;
        };
        if let Ok(found) = self.index.find_entry(e.hash, |&o| o == s) {
            found.remove();
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

    fn composed() -> Composed {
        Composed::new(
            Arc::new(Program::default()),
            Part {
                cache: CacheOf::First,
                entry: EntryRef { slot: 0, serial: 0 },
                rules: Box::new([]),
                learned: Box::new([]),
                uses_mac_table: true,
            },
        )
    }

    fn key(port: u64) -> FlowKey {
        let mut k = FlowKey::default();
        k.set(Field::InPort, port);
        k
    }

    #[test]
    fn bounded_with_evictions_counted() {
        let mut t = ExactTable::new(0, 4);
        for p in 0..10 {
            t.insert(&key(p), composed(), 0, 0);
        }
        assert_eq!(t.len(), 4);
        assert_eq!(t.counters.evictions, 6);
        assert_eq!(t.counters.inserts, 10);
        // The newest entries are the ones kept.
        assert!(t.lookup(&key(9), 0).is_some());
        assert!(t.lookup(&key(0), 0).is_none());
    }

    #[test]
    fn only_the_exact_key_hits_and_a_moved_mac_generation_makes_it_stale() {
        let mut t = ExactTable::new(0, 16);
        t.insert(&key(1), composed(), 7, 0);
        assert!(t.lookup(&key(2), 7).is_none());
        assert!(t.lookup(&key(1), 7).is_some());
        assert!(t.lookup(&key(1), 8).is_none());
        assert_eq!(t.counters.stale, 1);
        assert!(t.is_empty());
    }

    #[test]
    fn inserting_a_present_key_replaces_it() {
        let mut t = ExactTable::new(0, 16);
        t.insert(&key(1), composed(), 0, 0);
        t.insert(&key(1), composed(), 0, 0);
        assert_eq!(t.len(), 1);
    }
}
