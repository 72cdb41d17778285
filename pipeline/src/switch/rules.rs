//! A flow as installed in a bridge, and its counters.

use crate::flow::Flow;
use crossbeam_utils::CachePadded;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Per-worker packet/byte counters of one flow.
#[derive(Default)]
pub struct StatSlot {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub last_used_ns: AtomicU64,
}

/// A flow's counters: one cache-line-padded slot per worker, summed on read.
pub struct RuleStats {
    slots: Box<[CachePadded<StatSlot>]>,
}

impl RuleStats {
    pub fn new(n_workers: usize) -> RuleStats {
        RuleStats {
            slots: (0..n_workers.max(1))
                .map(|_| CachePadded::new(StatSlot::default()))
                .collect(),
        }
    }

    /// Adds one packet for `worker`. Only that worker writes its slot, so a
    /// relaxed load + store is enough (no read-modify-write across cores).
    #[inline(always)]
    pub fn hit(&self, worker: usize, bytes: u64, now_ns: u64) {
        if let Some(s) = self.slots.get(worker) {
            s.packets
                .store(s.packets.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            s.bytes
                .store(s.bytes.load(Ordering::Relaxed) + bytes, Ordering::Relaxed);
            s.last_used_ns.store(now_ns, Ordering::Relaxed);
        }
    }

    /// Adds `packets` for `worker` (a burst's worth, from the flow cache).
    #[inline]
    pub fn add(&self, worker: usize, packets: u64, bytes: u64, now_ns: u64) {
        if let Some(s) = self.slots.get(worker) {
            s.packets.store(
                s.packets.load(Ordering::Relaxed) + packets,
                Ordering::Relaxed,
            );
            s.bytes
                .store(s.bytes.load(Ordering::Relaxed) + bytes, Ordering::Relaxed);
            s.last_used_ns.store(now_ns, Ordering::Relaxed);
        }
    }

    /// (packets, bytes, last use) summed over workers.
    pub fn read(&self) -> (u64, u64, u64) {
        self.slots.iter().fold((0, 0, 0), |(p, b, t), s| {
            (
                p + s.packets.load(Ordering::Relaxed),
                b + s.bytes.load(Ordering::Relaxed),
                t.max(s.last_used_ns.load(Ordering::Relaxed)),
            )
        })
    }
}

/// A flow installed in a bridge, with its counters.
pub struct Rule {
    pub flow: Flow,
    pub stats: Arc<RuleStats>,
    pub added_ns: u64,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule").field("flow", &self.flow).finish()
    }
}
