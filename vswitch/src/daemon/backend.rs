//! Opening a port's I/O backend from its configuration ([`Backend`]):
//! its receive queues (handed to workers), its transmit queue (in the
//! world) and, for `ring` ports, the far end tests hold. Also starts
//! DPDK's EAL when a configured port needs it. Errors say what is wrong;
//! the caller names the port (`BindError::Open`).
//!
//! May call: `io` (the backends), `config`.
#![deny(unsafe_code)]

use super::error::{BackendError, DaemonError};
use crate::config::{Backend, DaemonConfig};
use crate::io::pcap::{PcapRx, PcapTx};
use crate::io::ring::RingHandle;
use crate::io::{RxQueue, TxQueue};
use std::sync::atomic::AtomicU64;
#[cfg(target_os = "linux")]
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What opening a backend gives.
pub(super) struct Opened {
    pub(super) rx: Vec<Box<dyn RxQueue>>,
    pub(super) tx: Option<Arc<dyn TxQueue>>,
    pub(super) ring: Option<RingHandle>,
}

/// Opens port `name`'s backend with `queues` receive queues.
/// `fanout_group` numbers AF_PACKET fanout groups; `dpdk_mbufs` is the
/// default mbuf pool size of a DPDK port; `rss` is the hash several
/// queues split flows by (programmed into a DPDK device, applied to a
/// capture), the one conntrack's shard owners follow; a DPDK port gets a
/// transmit queue per worker of `workers`.
pub(super) fn open_backend(
    name: &str,
    backend: &Backend,
    queues: usize,
    fanout_group: &AtomicU64,
    dpdk_mbufs: u32,
    rss: &pipeline::rss::Rss,
    workers: usize,
) -> Result<Opened, BackendError> {
    match backend {
        #[cfg(feature = "dpdk")]
        Backend::Dpdk {
            device,
            receive,
            mbufs,
            ..
        } => {
            let q = u16::try_from(queues).map_err(|_| BackendError::TooManyQueues)?;
            let txq = u16::try_from(workers.max(1)).map_err(|_| BackendError::TooManyQueues)?;
            let (rx, tx) =
                crate::io::dpdk::open(device, q, txq, mbufs.unwrap_or(dpdk_mbufs), rss.key())
                    .map_err(crate::io::PortIoError::from)?;
            Ok(Opened {
                rx: rx
                    .into_iter()
                    .filter(|_| *receive)
                    .map(|r| Box::new(r) as Box<dyn RxQueue>)
                    .collect(),
                tx: Some(Arc::new(tx)),
                ring: None,
            })
        }
        #[cfg(not(feature = "dpdk"))]
        Backend::Dpdk { .. } => {
            let _ = (dpdk_mbufs, rss, workers);
            Err(BackendError::NotBuilt("dpdk"))
        }
        #[cfg(target_os = "linux")]
        Backend::AfPacket { interface } => {
            let ifname = interface.as_deref().unwrap_or(name);
            // Several queues share the interface through one fanout group
            // (the kernel hashes flows over the sockets).
            let group = (queues > 1).then(|| {
                let pid = std::process::id() as u64;
                ((pid.wrapping_mul(31) + fanout_group.fetch_add(1, Ordering::Relaxed)) & 0xffff)
                    as u16
            });
            let mut rx: Vec<Box<dyn RxQueue>> = Vec::new();
            let mut tx: Option<Arc<dyn TxQueue>> = None;
            for _ in 0..queues {
                let (r, t) = crate::io::afpacket::open(ifname, group)?;
                rx.push(Box::new(r));
                if tx.is_none() {
                    tx = Some(Arc::new(t));
                }
            }
            Ok(Opened { rx, tx, ring: None })
        }
        #[cfg(not(target_os = "linux"))]
        Backend::AfPacket { .. } => Err(BackendError::NeedsLinux),
        #[cfg(all(target_os = "linux", feature = "af-xdp"))]
        Backend::AfXdp { interface, queue } => {
            // One socket, one queue: each socket attaches its own XDP
            // program (an interface takes one), so several queues would
            // need a shared program (not yet).
            if queues != 1 {
                return Err(BackendError::AfXdpOneQueue);
            }
            let ifname = interface.as_deref().unwrap_or(name);
            let (r, t) = crate::io::afxdp::open(ifname, *queue)?;
            Ok(Opened {
                rx: vec![Box::new(r)],
                tx: Some(Arc::new(t)),
                ring: None,
            })
        }
        #[cfg(not(all(target_os = "linux", feature = "af-xdp")))]
        Backend::AfXdp { .. } => Err(BackendError::NotBuilt("af-xdp")),
        #[cfg(target_os = "linux")]
        Backend::Tap { interface } => {
            if queues != 1 {
                return Err(BackendError::OneQueue("tap"));
            }
            let (r, t) = crate::io::tap::open(interface.as_deref().unwrap_or(name))?;
            Ok(Opened {
                rx: vec![Box::new(r)],
                tx: Some(Arc::new(t)),
                ring: None,
            })
        }
        #[cfg(not(target_os = "linux"))]
        Backend::Tap { .. } => Err(BackendError::NeedsLinux),
        Backend::Ring { depth } => {
            if queues != 1 {
                return Err(BackendError::OneQueue("ring"));
            }
            let h = RingHandle::new(*depth);
            Ok(Opened {
                rx: vec![Box::new(h.rx())],
                tx: Some(Arc::new(h.tx())),
                ring: Some(h),
            })
        }
        Backend::Null => {
            if queues != 1 {
                return Err(BackendError::OneQueue("null"));
            }
            Ok(Opened {
                rx: Vec::new(),
                tx: Some(Arc::new(crate::io::null::NullTx::default())),
                ring: None,
            })
        }
        Backend::Pcap { rx, tx, looped } => {
            let mut out = Opened {
                rx: Vec::new(),
                tx: None,
                ring: None,
            };
            if let Some(r) = rx {
                // Several queues split the capture by flow, as RSS would.
                for q in PcapRx::open_queues(r, *looped, queues, rss)? {
                    out.rx.push(Box::new(q));
                }
            } else if queues != 1 {
                return Err(BackendError::QueuesWithoutRx);
            }
            if let Some(t) = tx {
                out.tx = Some(Arc::new(PcapTx::create(t)?));
            }
            Ok(out)
        }
    }
}

/// Initialises DPDK's EAL when a port uses it: the configured EAL
/// arguments and a `--vdev` for every DPDK port with devargs.
pub(super) fn start_dpdk(cfg: &DaemonConfig) -> Result<(), DaemonError> {
    let vdevs: Vec<String> = cfg
        .ports
        .iter()
        .filter_map(|p| match &p.backend {
            Backend::Dpdk {
                device, devargs, ..
            } => Some(match devargs {
                Some(a) => format!("--vdev={device},{a}"),
                None if device.starts_with("net_") => format!("--vdev={device}"),
                None => return None,
            }),
            _ => None,
        })
        .collect();
    if !cfg
        .ports
        .iter()
        .any(|p| matches!(p.backend, Backend::Dpdk { .. }))
    {
        return Ok(());
    }
    #[cfg(feature = "dpdk")]
    {
        let mut args = cfg.dpdk.eal_args.clone();
        args.extend(vdevs);
        crate::io::dpdk::eal_init(&args).map_err(DaemonError::Dpdk)
    }
    #[cfg(not(feature = "dpdk"))]
    {
        let _ = vdevs;
        Err(DaemonError::DpdkNotBuilt)
    }
}
