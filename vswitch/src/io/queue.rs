//! The pair of traits every backend implements: a receive queue owned by
//! one worker, a transmit queue any worker may send to.

use pipeline::packet::{PacketBuf, PacketPool};
use std::cell::Cell;

thread_local! {
    /// The worker this thread is (0 for any other thread).
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Says which worker the calling thread is: a backend with a transmit
/// queue per worker sends on that worker's (`thread_worker`).
pub fn set_thread_worker(w: usize) {
    WORKER.with(|c| c.set(w));
}

/// The worker the calling thread is (0 unless it said otherwise).
pub fn thread_worker() -> usize {
    WORKER.with(|c| c.get())
}

/// The receive side of a port queue. Owner: one worker.
pub trait RxQueue: Send {
    /// Receives up to `max` frames into buffers from `pool`, appended to
    /// `out`; returns how many. Frames that do not fit a buffer are
    /// dropped and counted by the backend.
    fn rx_burst(&mut self, pool: &mut PacketPool, out: &mut Vec<PacketBuf>, max: usize) -> usize;
    /// Frames dropped since the last call for being longer than a buffer
    /// of the pool (or than the backend's own receive buffers, where it
    /// has its own). The worker asks when it publishes its report, not per
    /// burst, and counts them under `frame_too_long` and in the port's
    /// `rx_dropped`.
    fn take_too_long(&mut self) -> u64 {
        0
    }
}

/// The transmit side of a port. Shared by all workers.
pub trait TxQueue: Send + Sync {
    /// Sends one frame; false if the queue is full (the caller counts a
    /// `tx_queue_full` drop).
    fn send(&self, frame: &[u8]) -> bool;
    /// Sends a burst of frames for this port, in order; returns how many
    /// were taken. Backends with shared state take their lock once per
    /// burst here (the workers' path), not once per frame.
    fn send_burst(&self, frames: &mut dyn Iterator<Item = &[u8]>) -> usize {
        frames.map(|f| self.send(f) as usize).sum()
    }
    /// Sends `bufs` (this port's frames of a burst, in order) and empties
    /// it: each buffer is sent or given back (to `pool`, or to the backend
    /// that lent it). A backend that can send a buffer as it is (DPDK: a
    /// frame still in an mbuf) does so without copying; the default copies
    /// through `send_burst`. A backend with a limit on frame length says
    /// how many it refused for it (`Sent::too_long`).
    fn send_bufs(&self, bufs: &mut Vec<PacketBuf>, pool: &mut PacketPool) -> Sent {
        let frames = self.send_burst(&mut bufs.iter().map(|b| b.data()));
        let bytes = bufs.iter().take(frames).map(|b| b.len() as u64).sum();
        for b in bufs.drain(..) {
            pool.put(b);
        }
        Sent {
            frames: frames as u64,
            bytes,
            too_long: 0,
        }
    }
    /// Pushes out anything batched (end of a burst).
    fn flush(&self) {}
}

/// What one `send_bufs` sent, and of what it did not, how many frames
/// were longer than the backend sends (the caller counts those as
/// `frame_too_long`, the rest of what was not sent as `tx_queue_full`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    pub frames: u64,
    pub bytes: u64,
    pub too_long: u64,
}
