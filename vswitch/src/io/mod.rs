//! Port I/O backends behind one pair of traits: a receive queue owned by
//! one worker (bursts into pooled buffers) and a transmit queue any worker
//! may send to.
//!
//! Backends here: `afpacket` (TPACKET_V3 ring, any Linux interface),
//! `tap` (the kernel device of an internal port),
//! `ring` (in-memory, for tests), `pcap` (replay a capture as input,
//! write output to a capture), `null` (discard output, counted) and, with
//! their features,
//! `afxdp` (AF_XDP in copy mode with our XDP program) and `dpdk` (our thin
//! binding: any device DPDK's EAL knows).
//!
//! `netlink` watches Linux interfaces come and go (a bound device deleted
//! and created again is bound again).
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
#[cfg(target_os = "linux")]
pub mod netlink;
pub mod null;
pub mod pcap;
pub mod ring;
#[cfg(target_os = "linux")]
pub mod tap;

mod error;
mod queue;

pub use error::PortIoError;
pub use queue::{set_thread_worker, thread_worker, RxQueue, Sent, TxQueue};
