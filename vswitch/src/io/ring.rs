//! In-memory ports: bounded lock-free rings (crossbeam `ArrayQueue`) in
//! each direction. The `RingHandle` is the far end: tests inject frames and
//! collect what the switch sent.
#![deny(unsafe_code)]

use super::queue::{RxQueue, TxQueue};
use crossbeam::queue::ArrayQueue;
use pipeline::packet::{PacketBuf, PacketPool};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Both directions of one in-memory port.
pub struct Ring {
    to_switch: ArrayQueue<Vec<u8>>,
    from_switch: ArrayQueue<Vec<u8>>,
    pub rx_dropped: AtomicU64,
    pub tx_dropped: AtomicU64,
}

/// The far end of a ring port.
#[derive(Clone)]
pub struct RingHandle(pub Arc<Ring>);

impl RingHandle {
    /// A port whose rings hold `depth` frames each way.
    pub fn new(depth: usize) -> RingHandle {
        RingHandle(Arc::new(Ring {
            to_switch: ArrayQueue::new(depth.max(1)),
            from_switch: ArrayQueue::new(depth.max(1)),
            rx_dropped: AtomicU64::new(0),
            tx_dropped: AtomicU64::new(0),
        }))
    }

    /// Offers a frame to the switch; false if the ring is full.
    pub fn inject(&self, frame: Vec<u8>) -> bool {
        self.0.to_switch.push(frame).is_ok()
    }

    /// Takes every frame the switch has sent so far.
    pub fn collect(&self) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| self.0.from_switch.pop()).collect()
    }

    /// Frames waiting for the switch.
    pub fn pending(&self) -> usize {
        self.0.to_switch.len()
    }

    pub fn rx(&self) -> RingRx {
        RingRx {
            ring: self.0.clone(),
            too_long: 0,
        }
    }

    pub fn tx(&self) -> RingTx {
        RingTx(self.0.clone())
    }
}

pub struct RingRx {
    ring: Arc<Ring>,
    /// Frames longer than a buffer, not yet taken by `take_too_long`.
    too_long: u64,
}
pub struct RingTx(Arc<Ring>);

impl RxQueue for RingRx {
    fn rx_burst(&mut self, pool: &mut PacketPool, out: &mut Vec<PacketBuf>, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            let Some(mut b) = pool.get() else { break };
            let Some(frame) = self.ring.to_switch.pop() else {
                pool.put(b);
                break;
            };
            if b.set_data(&frame).is_err() {
                self.ring.rx_dropped.fetch_add(1, Ordering::Relaxed);
                self.too_long += 1;
                pool.put(b);
                continue;
            }
            out.push(b);
            n += 1;
        }
        n
    }

    fn take_too_long(&mut self) -> u64 {
        std::mem::take(&mut self.too_long)
    }
}

impl TxQueue for RingTx {
    fn send(&self, frame: &[u8]) -> bool {
        let ok = self.0.from_switch.push(frame.to_vec()).is_ok();
        if !ok {
            self.0.tx_dropped.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }
}
