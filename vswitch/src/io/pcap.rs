//! pcap files as ports: replay a capture as the port's input (once or
//! looped), write what the switch sends to a capture. Uses the pcap-file
//! crate for the format.
#![deny(unsafe_code)]

use super::error::PortIoError;
use super::queue::{RxQueue, Sent, TxQueue};
use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};
use pipeline::packet::{PacketBuf, PacketPool};
use std::fs::File;
use std::path::Path;

use std::sync::Mutex;
use std::time::Duration;

/// Replays the frames of a capture (loaded into memory at open).
pub struct PcapRx {
    frames: Vec<Vec<u8>>,
    next: usize,
    looped: bool,
    /// Frames longer than a buffer, not yet taken by `take_too_long`.
    too_long: u64,
}

fn file_error(path: &Path, source: std::io::Error) -> PortIoError {
    PortIoError::File {
        path: path.to_path_buf(),
        source,
    }
}

fn pcap_error(path: &Path, source: pcap_file::PcapError) -> PortIoError {
    PortIoError::Pcap {
        path: path.to_path_buf(),
        source,
    }
}

/// Every frame of a capture file, as captured: a record cut by the
/// capture's snaplen (`tcpdump -s 96`) is its captured bytes, a record
/// longer than the snaplen the file's header gives is taken whole. Each
/// kind is told in one warning naming the file; timestamps are not read.
pub fn read_frames(path: &Path) -> Result<Vec<Vec<u8>>, PortIoError> {
    let f = File::open(path).map_err(|source| file_error(path, source))?;
    let mut r = PcapReader::new(f).map_err(|source| pcap_error(path, source))?;
    let snaplen = r.header().snaplen;
    let (mut cut, mut over_snaplen) = (0usize, 0usize);
    let mut frames = Vec::new();
    while let Some(p) = r.next_raw_packet() {
        let p = p.map_err(|source| pcap_error(path, source))?;
        cut += (p.incl_len < p.orig_len) as usize;
        over_snaplen += (p.incl_len > snaplen) as usize;
        frames.push(p.data.into_owned());
    }
    let records = frames.len();
    if cut > 0 {
        tracing::warn!(
            "{}: {cut} of {records} records cut short by the capture's snaplen ({snaplen}); \
             replayed as captured",
            path.display()
        );
    }
    if over_snaplen > 0 {
        tracing::warn!(
            "{}: {over_snaplen} of {records} records longer than the file's snaplen \
             ({snaplen}); replayed whole",
            path.display()
        );
    }
    Ok(frames)
}

/// The receive queue a frame goes to among `n`, as a NIC's RSS would
/// choose it with `rss`'s key and the default redirection table: by the
/// Toeplitz hash of its IPv4 addresses and, for TCP and UDP (not a
/// fragment), its ports; anything else to queue 0.
pub fn rss_queue(frame: &[u8], n: usize, rss: &pipeline::rss::Rss) -> usize {
    use pipeline::wire::ipproto;
    if n <= 1 {
        return 0;
    }
    match pipeline::packet::parse(frame, 0) {
        Ok(p) if p.key.is_ipv4() => {
            let k = &p.key;
            let ported = matches!(k.nw_proto(), ipproto::TCP | ipproto::UDP)
                && k.get(pipeline::key::Field::NwFrag) == 0;
            let ports = ported.then(|| (k.tp_src(), k.tp_dst()));
            rss.queue(k.nw_src(), k.nw_dst(), ports, n)
        }
        _ => 0,
    }
}

impl PcapRx {
    pub fn open(path: &Path, looped: bool) -> Result<PcapRx, PortIoError> {
        Ok(PcapRx {
            frames: read_frames(path)?,
            next: 0,
            looped,
            too_long: 0,
        })
    }

    /// `n` queues replaying the capture's flows between them (`rss_queue`).
    pub fn open_queues(
        path: &Path,
        looped: bool,
        n: usize,
        rss: &pipeline::rss::Rss,
    ) -> Result<Vec<PcapRx>, PortIoError> {
        let mut queues: Vec<PcapRx> = (0..n.max(1))
            .map(|_| PcapRx {
                frames: Vec::new(),
                next: 0,
                looped,
                too_long: 0,
            })
            .collect();
        for f in read_frames(path)? {
            let q = rss_queue(&f, queues.len(), rss);
            queues[q].frames.push(f);
        }
        Ok(queues)
    }

    /// Frames in the capture.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

impl RxQueue for PcapRx {
    fn rx_burst(&mut self, pool: &mut PacketPool, out: &mut Vec<PacketBuf>, max: usize) -> usize {
        let mut n = 0;
        while n < max && !self.frames.is_empty() {
            if self.next >= self.frames.len() {
                if !self.looped {
                    break;
                }
                self.next = 0;
            }
            let Some(b) = pool.get() else { break };
            let frame = &self.frames[self.next];
            self.next += 1;
            // Into the burst first, then filled in place: moving a buffer
            // just written stalls on store forwarding (~10 ns a frame).
            out.push(b);
            if out.last_mut().is_some_and(|b| b.set_data(frame).is_err()) {
                if let Some(b) = out.pop() {
                    pool.put(b);
                }
                self.too_long += 1;
                continue;
            }
            n += 1;
        }
        n
    }

    fn take_too_long(&mut self) -> u64 {
        std::mem::take(&mut self.too_long)
    }
}

/// Appends what the switch sends to a capture file (unbuffered: each frame
/// is in the file once `send` returns).
pub struct PcapTx {
    w: Mutex<PcapWriter<File>>,
    start: std::time::Instant,
}

impl PcapTx {
    pub fn create(path: &Path) -> Result<PcapTx, PortIoError> {
        let f = File::create(path).map_err(|source| file_error(path, source))?;
        let w = PcapWriter::new(f).map_err(|source| pcap_error(path, source))?;
        Ok(PcapTx {
            w: Mutex::new(w),
            start: std::time::Instant::now(),
        })
    }
}

impl PcapTx {
    /// Appends `frame`; refused when longer than the file's snaplen (the
    /// record would contradict its header) or when the write fails.
    fn write(&self, w: &mut PcapWriter<File>, frame: &[u8]) -> Result<(), Refused> {
        if frame.len() > w.snaplen() as usize {
            return Err(Refused::TooLong);
        }
        let ts: Duration = self.start.elapsed();
        let pkt = PcapPacket::new(ts, frame.len() as u32, frame);
        w.write_packet(&pkt)
            .map(|_| ())
            .map_err(|_| Refused::Failed)
    }
}

/// Why `PcapTx::write` did not take a frame.
enum Refused {
    TooLong,
    Failed,
}

impl TxQueue for PcapTx {
    fn send(&self, frame: &[u8]) -> bool {
        let mut w = self.w.lock().unwrap_or_else(|e| e.into_inner());
        self.write(&mut w, frame).is_ok()
    }

    /// Writes the burst under one lock, saying how many were too long.
    fn send_bufs(&self, bufs: &mut Vec<PacketBuf>, pool: &mut PacketPool) -> Sent {
        let mut w = self.w.lock().unwrap_or_else(|e| e.into_inner());
        let mut sent = Sent::default();
        for b in bufs.drain(..) {
            match self.write(&mut w, b.data()) {
                Ok(()) => {
                    sent.frames += 1;
                    sent.bytes += b.len() as u64;
                }
                Err(Refused::TooLong) => sent.too_long += 1,
                Err(Refused::Failed) => {}
            }
            pool.put(b);
        }
        sent
    }
}
