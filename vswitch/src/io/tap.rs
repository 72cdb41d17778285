//! TAP ports (Linux): the kernel network device of an `internal` port, as
//! Open vSwitch's userspace datapath makes one. What the switch sends to
//! the port the kernel receives on the device; what the kernel sends out
//! of the device the switch receives from the port. The device is
//! created (down, as OVS leaves it) when the port is bound and goes when
//! its descriptor closes.
//!
//! One descriptor, non-blocking: a receive burst reads until the kernel
//! has nothing (one `read` when idle); a send is one `write`. A device
//! that is down refuses writes (EIO): those frames are dropped and
//! counted as `tx_down`, not as a full queue. All `unsafe` here is the
//! kernel interface: each block says why it holds.

use super::error::PortIoError;
use super::queue::{RxQueue, TxQueue};
use pipeline::packet::{PacketBuf, PacketPool};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// `TUNSETIFF` (`_IOW('T', 202, int)`).
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

/// Counters of one TAP port.
#[derive(Default, Debug)]
pub struct TapStats {
    pub rx_packets: AtomicU64,
    pub tx_packets: AtomicU64,
    /// Frames dropped because the device was down.
    pub tx_down: AtomicU64,
    /// Frames the device refused otherwise.
    pub tx_errors: AtomicU64,
}

pub struct TapRx {
    fd: Arc<OwnedFd>,
    stats: Arc<TapStats>,
}

pub struct TapTx {
    fd: Arc<OwnedFd>,
    pub stats: Arc<TapStats>,
}

/// Creates (or attaches to) TAP device `name` without packet information
/// headers.
pub fn open(name: &str) -> Result<(TapRx, TapTx), PortIoError> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return Err(PortIoError::BadInterfaceName(name.to_string()));
    }
    // SAFETY: a constant NUL-terminated path; the returned descriptor is
    // checked and then owned.
    let fd = unsafe {
        libc::open(
            c"/dev/net/tun".as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(PortIoError::last_os_error(name, "open /dev/net/tun"));
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // struct ifreq: the name, then the flags (a short) in the union.
    let mut req = [0u8; 40];
    req[..name.len()].copy_from_slice(name.as_bytes());
    let flags = (libc::IFF_TAP | libc::IFF_NO_PI) as i16;
    req[16..18].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: TUNSETIFF reads and writes a struct ifreq (40 bytes) at the
    // pointer, which is ours for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF as _, req.as_mut_ptr()) };
    if r < 0 {
        return Err(PortIoError::last_os_error(name, "TUNSETIFF"));
    }
    let fd = Arc::new(fd);
    let stats = Arc::new(TapStats::default());
    Ok((
        TapRx {
            fd: fd.clone(),
            stats: stats.clone(),
        },
        TapTx { fd, stats },
    ))
}

impl RxQueue for TapRx {
    fn rx_burst(&mut self, pool: &mut PacketPool, out: &mut Vec<PacketBuf>, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            let Some(mut buf) = pool.get() else { break };
            let room = buf.max_frame();
            if buf.set_len(room).is_err() {
                pool.put(buf);
                break;
            }
            let data = buf.data_mut();
            // SAFETY: `data` is `room` writable bytes of the buffer we own.
            let got = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    data.as_mut_ptr() as *mut libc::c_void,
                    data.len(),
                )
            };
            if got <= 0 || buf.set_len(got as usize).is_err() {
                // EAGAIN: nothing more now (an error: the same, this burst).
                pool.put(buf);
                break;
            }
            out.push(buf);
            n += 1;
        }
        self.stats.rx_packets.fetch_add(n as u64, Ordering::Relaxed);
        n
    }
}

impl TxQueue for TapTx {
    fn send(&self, frame: &[u8]) -> bool {
        // SAFETY: `frame` is readable for its length for the call.
        let r = unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
            )
        };
        if r >= 0 {
            self.stats.tx_packets.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN) => false,
            Some(libc::EIO) => {
                self.stats.tx_down.fetch_add(1, Ordering::Relaxed);
                true
            }
            _ => {
                self.stats.tx_errors.fetch_add(1, Ordering::Relaxed);
                true
            }
        }
    }
}
