//! Port I/O backends behind one pair of traits: a receive queue owned by
//! one worker (bursts into pooled buffers) and a transmit queue any worker
//! may send to.
//!
//! Backends here: `afpacket` (TPACKET_V3 ring, any Linux interface),
//! `ring` (in-memory, for tests), `pcap` (replay a capture as input,
//! write output to a capture), `null` (discard output, counted) and, with
//! their features,
//! `afxdp` (AF_XDP in copy mode with our XDP program) and `dpdk` (our thin
//! binding: any device DPDK's EAL knows).
//!
//! `unsafe` is confined to the kernel and DPDK backends; the others deny
//! it. Backends call nothing of the crate but pipeline's packet buffers;
//! `daemon::backend` opens them from the configuration.

#[cfg(target_os = "linux")]
pub mod afpacket;
#[cfg(all(target_os = "linux", feature = "af-xdp"))]
pub mod afxdp;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod null;
pub mod pcap;
pub mod ring;

use pipeline::packet::{PacketBuf, PacketPool};
use std::path::PathBuf;

/// Why a port's backend could not open. Each names the interface, device
/// or file.
#[derive(Debug, thiserror::Error)]
pub enum PortIoError {
    #[error("{0}: bad interface name")]
    BadInterfaceName(String),
    /// A system call about the interface failed; `what` names it.
    #[error("{interface}: {what}: {source}")]
    Os {
        interface: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{interface}: queue {queue}: at most {max} queues")]
    QueueOutOfRange {
        interface: String,
        queue: u32,
        max: u32,
    },
    /// The kernel refused our XDP program; its verifier said `log`.
    #[error("{interface}: BPF_PROG_LOAD: {source}: {log}")]
    XdpProgram {
        interface: String,
        #[source]
        source: std::io::Error,
        log: String,
    },
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Pcap {
        path: PathBuf,
        #[source]
        source: pcap_file::PcapError,
    },
    #[cfg(feature = "dpdk")]
    #[error(transparent)]
    Dpdk(#[from] dpdk::DpdkError),
}

impl PortIoError {
    /// The error of the system call `what` on `interface`, just made.
    pub fn last_os_error(interface: &str, what: &str) -> PortIoError {
        PortIoError::Os {
            interface: interface.to_string(),
            what: what.to_string(),
            source: std::io::Error::last_os_error(),
        }
    }
}

/// The receive side of a port queue. Owner: one worker.
pub trait RxQueue: Send {
    /// Receives up to `max` frames into buffers from `pool`, appended to
    /// `out`; returns how many. Frames that do not fit a buffer are
    /// dropped and counted by the backend.
    fn rx_burst(&mut self, pool: &mut PacketPool, out: &mut Vec<PacketBuf>, max: usize) -> usize;
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
    /// through `send_burst`.
    fn send_bufs(&self, bufs: &mut Vec<PacketBuf>, pool: &mut PacketPool) -> Sent {
        let frames = self.send_burst(&mut bufs.iter().map(|b| b.data()));
        let bytes = bufs.iter().take(frames).map(|b| b.len() as u64).sum();
        for b in bufs.drain(..) {
            pool.put(b);
        }
        Sent {
            frames: frames as u64,
            bytes,
        }
    }
    /// Pushes out anything batched (end of a burst).
    fn flush(&self) {}
}

/// What one `send_bufs` sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    pub frames: u64,
    pub bytes: u64,
}
