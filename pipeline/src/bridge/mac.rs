//! MAC learning for NORMAL: (VLAN, MAC) → port, with aging and a size limit.
//!
//! Ownership: one `MacTable` per bridge, shared by every worker (`Arc`) and
//! kept across snapshots (it is live state, not configuration). Writers are
//! the slow path (learning) and the control plane (expiry, flush); the fast
//! path only refreshes ages of entries its cached flows rely on. The table
//! is sharded by hash, one mutex per shard, so workers learning different
//! MACs do not contend.
//!
//! Invariant: `generation` changes whenever a lookup could now give a
//! different answer (new entry, port move, expiry, eviction, flush). Cached
//! flows that used NORMAL remember the generation and are discarded when it
//! moves; refreshing an entry's age does not move it.

use crate::ids::PortId;
use crate::key::Mac;
use hashbrown::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

const SHARDS: usize = 16;
/// `last_seen_ns` of an entry that never ages.
const STATIC: u64 = u64::MAX;

/// Default aging time, as OVS (`other_config:mac-aging-time`).
pub const DEFAULT_AGING_NS: u64 = 300 * 1_000_000_000;
/// Default size limit, as OVS (`other_config:mac-table-size`).
pub const DEFAULT_MAX_ENTRIES: usize = 8192;

#[derive(Clone, Copy, Debug)]
struct MacEntry {
    port: PortId,
    last_seen_ns: u64,
}

/// A MAC entry a cached flow relies on: the fast path refreshes it so that
/// active flows keep their entries from aging out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacLearnRef {
    pub bridge: usize,
    pub vlan: u16,
    pub mac: Mac,
    pub port: PortId,
}

/// One row of `fdb-show`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FdbRow {
    pub port: PortId,
    pub vlan: u16,
    pub mac: Mac,
    pub age_secs: u64,
}

/// Counters of one MAC table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MacCounters {
    pub learned: u64,
    pub moved: u64,
    pub expired: u64,
    pub evicted: u64,
}

pub struct MacTable {
    shards: Vec<Mutex<HashMap<(u16, Mac), MacEntry>>>,
    max_per_shard: usize,
    max_entries: usize,
    aging_ns: u64,
    generation: Arc<AtomicU64>,
    learned: AtomicU64,
    moved: AtomicU64,
    expired: AtomicU64,
    evicted: AtomicU64,
}

impl MacTable {
    /// `generation` may be shared by all tables of a switch.
    pub fn new(max_entries: usize, aging_ns: u64, generation: Arc<AtomicU64>) -> MacTable {
        MacTable {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            max_per_shard: max_entries.div_ceil(SHARDS).max(1),
            max_entries,
            aging_ns,
            generation,
            learned: AtomicU64::new(0),
            moved: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        }
    }

    /// The limits it was made with: entries, and how long one lives
    /// unrefreshed.
    pub fn limits(&self) -> (usize, u64) {
        (self.max_entries, self.aging_ns)
    }

    fn shard(&self, vlan: u16, mac: Mac) -> MutexGuard<'_, HashMap<(u16, Mac), MacEntry>> {
        let h = (mac.to_u64() ^ ((vlan as u64) << 48)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let idx = (h >> 60) as usize % SHARDS;
        // A poisoned shard only means another thread panicked while holding
        // it; the map itself is still consistent, so keep using it.
        self.shards[idx].lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Learns `mac` on `port` in `vlan`. Returns true if forwarding changed.
    pub fn learn(&self, vlan: u16, mac: Mac, port: PortId, now_ns: u64) -> bool {
        let mut shard = self.shard(vlan, mac);
        if let Some(e) = shard.get_mut(&(vlan, mac)) {
            if e.last_seen_ns == STATIC {
                return false;
            }
            e.last_seen_ns = now_ns;
            if e.port == port {
                return false;
            }
            e.port = port;
            drop(shard);
            self.moved.fetch_add(1, Ordering::Relaxed);
            self.bump();
            return true;
        }
        if shard.len() >= self.max_per_shard {
            // Evict the least recently seen entry of this shard.
            if let Some(oldest) = shard
                .iter()
                .min_by_key(|(_, e)| e.last_seen_ns)
                .map(|(k, _)| *k)
            {
                shard.remove(&oldest);
                self.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
        shard.insert(
            (vlan, mac),
            MacEntry {
                port,
                last_seen_ns: now_ns,
            },
        );
        drop(shard);
        self.learned.fetch_add(1, Ordering::Relaxed);
        self.bump();
        true
    }

    /// Adds an entry that never ages (`ovs-appctl fdb/add`).
    pub fn add_static(&self, vlan: u16, mac: Mac, port: PortId) {
        self.shard(vlan, mac).insert(
            (vlan, mac),
            MacEntry {
                port,
                last_seen_ns: STATIC,
            },
        );
        self.bump();
    }

    /// Refreshes the age of an entry if it still points at `port`.
    pub fn refresh(&self, vlan: u16, mac: Mac, port: PortId, now_ns: u64) {
        let mut shard = self.shard(vlan, mac);
        match shard.get_mut(&(vlan, mac)) {
            Some(e) if e.port == port || e.last_seen_ns == STATIC => {
                if e.last_seen_ns != STATIC {
                    e.last_seen_ns = now_ns;
                }
            }
            _ => {
                drop(shard);
                self.learn(vlan, mac, port, now_ns);
            }
        }
    }

    /// The port `mac` was learned on in `vlan`, if the entry has not aged out.
    pub fn lookup(&self, vlan: u16, mac: Mac, now_ns: u64) -> Option<PortId> {
        let shard = self.shard(vlan, mac);
        let e = shard.get(&(vlan, mac))?;
        (now_ns.saturating_sub(e.last_seen_ns) < self.aging_ns).then_some(e.port)
    }

    /// Removes aged entries. Returns how many.
    pub fn expire(&self, now_ns: u64) -> usize {
        let mut n = 0;
        for s in &self.shards {
            let mut shard = s.lock().unwrap_or_else(|e| e.into_inner());
            let before = shard.len();
            shard.retain(|_, e| now_ns.saturating_sub(e.last_seen_ns) < self.aging_ns);
            n += before - shard.len();
        }
        if n > 0 {
            self.expired.fetch_add(n as u64, Ordering::Relaxed);
            self.bump();
        }
        n
    }

    /// Forgets everything learned on `port` (port deleted or reconfigured).
    pub fn flush_port(&self, port: PortId) {
        for s in &self.shards {
            s.lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|_, e| e.port != port);
        }
        self.bump();
    }

    pub fn flush(&self) {
        for s in &self.shards {
            s.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
        self.bump();
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries sorted by (port, vlan, mac), as `fdb-show` prints them.
    pub fn rows(&self, now_ns: u64) -> Vec<FdbRow> {
        let mut rows = Vec::new();
        for s in &self.shards {
            let shard = s.lock().unwrap_or_else(|e| e.into_inner());
            rows.extend(shard.iter().map(|(&(vlan, mac), e)| FdbRow {
                port: e.port,
                vlan,
                mac,
                age_secs: if e.last_seen_ns == STATIC {
                    0
                } else {
                    now_ns.saturating_sub(e.last_seen_ns) / 1_000_000_000
                },
            }));
        }
        rows.sort_by_key(|r| (r.port, r.vlan, r.mac));
        rows
    }

    pub fn counters(&self) -> MacCounters {
        MacCounters {
            learned: self.learned.load(Ordering::Relaxed),
            moved: self.moved.load(Ordering::Relaxed),
            expired: self.expired.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(max: usize) -> MacTable {
        MacTable::new(max, 10, Arc::new(AtomicU64::new(0)))
    }

    #[test]
    fn learn_lookup_move_and_age() {
        let t = table(100);
        let m = Mac([2, 0, 0, 0, 0, 1]);
        let g0 = t.generation();
        assert!(t.learn(1, m, PortId(3), 0));
        assert!(t.generation() > g0);
        assert_eq!(t.lookup(1, m, 5), Some(PortId(3)));
        assert_eq!(t.lookup(2, m, 5), None, "per-VLAN");
        let g1 = t.generation();
        assert!(!t.learn(1, m, PortId(3), 6), "same port: no change");
        assert_eq!(t.generation(), g1);
        assert!(t.learn(1, m, PortId(4), 7));
        assert_eq!(t.lookup(1, m, 8), Some(PortId(4)));
        assert_eq!(t.lookup(1, m, 17), None, "aged out");
        assert_eq!(t.expire(17), 1);
        assert!(t.is_empty());
        assert_eq!(t.counters().moved, 1);
    }

    #[test]
    fn size_limit_evicts_oldest() {
        let t = MacTable::new(16, u64::MAX, Arc::new(AtomicU64::new(0)));
        for i in 0..1000u64 {
            t.learn(1, Mac::from_u64(0x020000000000 | i), PortId(1), i);
        }
        assert!(t.len() <= 16);
        assert_eq!(t.counters().evicted, 1000 - t.len() as u64);
        // The newest survives.
        assert_eq!(
            t.lookup(1, Mac::from_u64(0x020000000000 | 999), 1000),
            Some(PortId(1))
        );
    }
}
