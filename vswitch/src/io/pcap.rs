//! pcap files as ports: replay a capture as the port's input (once or
//! looped), write what the switch sends to a capture. Uses the pcap-file
//! crate for the format.

use super::{RxQueue, TxQueue};
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
}

impl PcapRx {
    pub fn open(path: &Path, looped: bool) -> Result<PcapRx, String> {
        let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut r = PcapReader::new(f).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut frames = Vec::new();
        while let Some(p) = r.next_packet() {
            let p = p.map_err(|e| format!("{}: {e}", path.display()))?;
            frames.push(p.data.into_owned());
        }
        Ok(PcapRx {
            frames,
            next: 0,
            looped,
        })
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
            let Some(mut b) = pool.get() else { break };
            let frame = &self.frames[self.next];
            self.next += 1;
            if b.set_data(frame).is_err() {
                pool.put(b);
                continue;
            }
            out.push(b);
            n += 1;
        }
        n
    }
}

/// Appends what the switch sends to a capture file (unbuffered: each frame
/// is in the file once `send` returns).
pub struct PcapTx {
    w: Mutex<PcapWriter<File>>,
    start: std::time::Instant,
}

impl PcapTx {
    pub fn create(path: &Path) -> Result<PcapTx, String> {
        let f = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let w = PcapWriter::new(f).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(PcapTx {
            w: Mutex::new(w),
            start: std::time::Instant::now(),
        })
    }
}

impl TxQueue for PcapTx {
    fn send(&self, frame: &[u8]) -> bool {
        let ts: Duration = self.start.elapsed();
        let pkt = PcapPacket::new(ts, frame.len() as u32, frame);
        let mut w = self.w.lock().unwrap_or_else(|e| e.into_inner());
        w.write_packet(&pkt).is_ok()
    }
}
