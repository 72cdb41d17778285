//! What a worker counts and publishes: per-port I/O counters
//! ([`PortCounters`], tallied by port id in [`PortTally`]) and the
//! worker's report ([`WorkerReport`]: packets, cache, drops by reason,
//! busy time). A worker updates its tallies per burst without locking and
//! copies them into its report slot in `Shared` when idle or every few
//! hundred polls; control reads the slots (`pmd-stats`, `dump-ports`).
#![deny(unsafe_code)]

use pipeline::switch::PortId;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Port ids above this get no per-port counters (ids are allocated
/// incrementally and never reused; a switch that has seen this many port
/// additions keeps forwarding, it only stops counting new ports).
pub const MAX_COUNTED_PORT_ID: usize = 1 << 16;

/// Packets and bytes through one port's I/O, as one worker saw them.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PortCounters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Received by the port's backend but not taken in: longer than a
    /// packet buffer (`max_frame`) or than the backend's own receive
    /// buffers (counted under `frame_too_long` too).
    pub rx_dropped: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Refused by the backend: queue full, or longer than it sends
    /// (counted under `tx_queue_full` or `frame_too_long` too).
    pub tx_dropped: u64,
}

impl PortCounters {
    pub(super) fn add(&mut self, o: &PortCounters) {
        self.rx_packets += o.rx_packets;
        self.rx_bytes += o.rx_bytes;
        self.rx_dropped += o.rx_dropped;
        self.tx_packets += o.tx_packets;
        self.tx_bytes += o.tx_bytes;
        self.tx_dropped += o.tx_dropped;
    }
}

/// One worker's counters as last published (and as `pmd-stats` sends
/// them).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerReport {
    pub worker: usize,
    pub core: Option<usize>,
    pub rx_queues: usize,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub upcalls: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Megaflows and masks in the worker's cache, and in its cache of
    /// recirculated (post-conntrack) keys.
    pub cache_entries: usize,
    pub cache_masks: usize,
    pub recirc_entries: usize,
    pub recirc_masks: usize,
    pub recirc_hits: u64,
    pub recirc_misses: u64,
    /// Packets dropped, by reason (the worker's names are static; a
    /// report read back from JSON owns its own).
    pub drops: Vec<(Cow<'static, str>, u64)>,
    /// Time spent processing bursts.
    pub busy_ns: u64,
    /// CPU cycles spent processing bursts (time-stamp counter; 0 where the
    /// CPU has none).
    pub busy_cycles: u64,
    /// Busy time per packet received.
    pub ns_per_packet: f64,
    /// Busy cycles per packet received.
    pub cycles_per_packet: f64,
    /// Loop iterations that found no packet.
    pub idle_polls: u64,
    /// Loop iterations.
    #[serde(default)]
    pub polls: u64,
    #[serde(skip)]
    pub ports: Vec<(PortId, PortCounters)>,
}

/// Per-port counters of one worker, indexed by port id.
#[derive(Default)]
pub(super) struct PortTally(Vec<PortCounters>);

impl PortTally {
    /// The counters of port `p` (None past [`MAX_COUNTED_PORT_ID`]).
    #[inline]
    pub(super) fn slot(&mut self, p: PortId) -> Option<&mut PortCounters> {
        let i = p.0 as usize;
        if i >= self.0.len() {
            if i >= MAX_COUNTED_PORT_ID {
                return None;
            }
            self.0.resize(i + 1, PortCounters::default());
        }
        self.0.get_mut(i)
    }

    /// The ports with something counted, without allocating.
    pub(super) fn iter_nonzero(&self) -> impl Iterator<Item = (PortId, PortCounters)> + '_ {
        self.0
            .iter()
            .enumerate()
            .filter(|(_, c)| **c != PortCounters::default())
            .map(|(i, c)| (PortId(i as u32), *c))
    }
}
