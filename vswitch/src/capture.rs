//! `vswitchctl capture PORT FILE [COUNT]`: a pcap of what a port receives
//! and sends while the switch runs.
//!
//! Workers offer frames to a bounded queue without blocking (a full queue
//! drops the copy and counts it, never the packet); a writer thread puts
//! them in the file. A capture stops at its packet count, at its deadline
//! or when asked.
//!
//! Owner: the control request that started it holds the writer; workers
//! hold the capture (through the world) only to offer frames. Calls
//! nothing else of the crate.
#![deny(unsafe_code)]

use crossbeam::channel::{Receiver, Sender, TrySendError};
use pcap_file::pcap::{PcapPacket, PcapWriter};
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Captures that may run at once.
pub const MAX_CAPTURES: usize = 8;
/// Frames waiting for the writer, per capture.
pub const QUEUE_DEPTH: usize = 4096;
/// Longest capture.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);

/// Why a capture could not start; names the file.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{}: {source}", path.display())]
    File {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Pcap {
        path: std::path::PathBuf,
        #[source]
        source: pcap_file::PcapError,
    },
    /// The writer thread could not be started.
    #[error("{0}")]
    Thread(#[source] std::io::Error),
}

/// A frame and its time (ns since the daemon started).
type Frame = (u64, Vec<u8>);

pub struct Capture {
    queue: Sender<Frame>,
    /// Packets still to take (u64::MAX: no limit).
    limit: u64,
    offered: AtomicU64,
    dropped: AtomicU64,
    written: Arc<AtomicU64>,
}

/// What a finished capture did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CaptureReport {
    pub written: u64,
    /// Copies lost because the writer fell behind.
    pub dropped: u64,
}

impl Capture {
    /// Creates `path` and starts the writer. `limit`: packets to keep;
    /// `clock`: the wall-clock time (since the Unix epoch) at the daemon's
    /// time 0, so that the file's timestamps are wall-clock times.
    pub fn start(
        path: &Path,
        limit: Option<u64>,
        clock: Duration,
    ) -> Result<(Arc<Capture>, CaptureWriter), CaptureError> {
        let f = File::create(path).map_err(|source| CaptureError::File {
            path: path.to_path_buf(),
            source,
        })?;
        let mut w = PcapWriter::new(f).map_err(|source| CaptureError::Pcap {
            path: path.to_path_buf(),
            source,
        })?;
        let (tx, rx): (Sender<Frame>, Receiver<Frame>) = crossbeam::channel::bounded(QUEUE_DEPTH);
        let written = Arc::new(AtomicU64::new(0));
        let counter = written.clone();
        let thread = std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || {
                for (ts, frame) in rx {
                    let p = PcapPacket::new(
                        clock.saturating_add(Duration::from_nanos(ts)),
                        frame.len() as u32,
                        &frame,
                    );
                    if w.write_packet(&p).is_err() {
                        return;
                    }
                    counter.fetch_add(1, Ordering::Release);
                }
            })
            .map_err(CaptureError::Thread)?;
        Ok((
            Arc::new(Capture {
                queue: tx,
                limit: limit.unwrap_or(u64::MAX),
                offered: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                written,
            }),
            CaptureWriter {
                thread: Some(thread),
            },
        ))
    }

    /// Called by workers for every frame of the port (`now_ns`: the
    /// daemon's clock). Never blocks.
    #[inline]
    pub fn offer(&self, frame: &[u8], now_ns: u64) {
        if self.offered.load(Ordering::Relaxed) >= self.limit {
            return;
        }
        if self.offered.fetch_add(1, Ordering::AcqRel) >= self.limit {
            return;
        }
        match self.queue.try_send((now_ns, frame.to_vec())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Whether the packet count has been reached.
    pub fn full(&self) -> bool {
        self.offered.load(Ordering::Acquire) >= self.limit
    }

    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Acquire)
    }
}

/// The writer thread; `finish` waits for it to write what is queued.
pub struct CaptureWriter {
    thread: Option<JoinHandle<()>>,
}

impl CaptureWriter {
    /// Closes the capture (`cap` must no longer be fed by workers) and
    /// waits until everything queued is in the file.
    pub fn finish(mut self, cap: Arc<Capture>) -> CaptureReport {
        let written = cap.written.clone();
        let dropped = cap.dropped();
        // The last sender goes once the workers' world no longer holds it.
        drop(cap);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        if let Some(t) = self.thread.take() {
            while !t.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
        CaptureReport {
            written: written.load(Ordering::Acquire),
            dropped,
        }
    }
}
