//! A port that discards what the switch sends and counts it: the output
//! side of a replay benchmark, where transmitting must cost nothing but
//! the switch's own work.
#![deny(unsafe_code)]

use super::queue::TxQueue;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters only. Shared by the workers; each burst adds once.
#[derive(Default)]
pub struct NullTx {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
}

impl TxQueue for NullTx {
    fn send(&self, frame: &[u8]) -> bool {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(frame.len() as u64, Ordering::Relaxed);
        true
    }

    fn send_burst(&self, frames: &mut dyn Iterator<Item = &[u8]>) -> usize {
        let (mut n, mut bytes) = (0usize, 0u64);
        for f in frames {
            n += 1;
            bytes += f.len() as u64;
        }
        self.packets.fetch_add(n as u64, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        n
    }
}
