//! IPv4 reassembly in front of conntrack: a fragment's connection is its
//! datagram's, which only the first fragment names (ports, echo id), so
//! fragments wait here until their datagram is whole, as Linux's
//! `nf_defrag_ipv4` makes them wait before conntrack and NAT (and OVS's
//! `ipf` before `ct()`).
//!
//! Design: a datagram is keyed as Linux keys it (zone, addresses,
//! protocol, IP id). Its fragments are held as copies of their frames, in
//! offset order; the datagram is whole when they cover its payload from 0
//! to the end the last fragment gives. Then the frames come back, first
//! fragment first, with what conntrack needs of the datagram (`Datagram`):
//! the transport fields of its first fragment and whether its transport
//! checksum, summed over every fragment's payload, is right. The fragments
//! themselves go on as they came (each rewritten as NAT rewrites the
//! datagram), so none leaves bigger than the largest received, which is
//! what Linux's re-fragmentation to `frag_max_size` guarantees; OVS's ipf
//! does the same.
//!
//! Bounds (`DefragLimits`): bytes held, datagrams pending, fragments per
//! datagram, and time: a datagram not whole within the timeout is
//! discarded (`expire`, from the workers' upkeep), its fragments counted
//! `frag_timeout`. Overlaps discard the datagram (Linux since 4.19);
//! an exact duplicate is dropped alone. No ICMP "reassembly time
//! exceeded" is sent: Linux sends none for conntrack's reassembly.
//!
//! Ownership: one table per connection table, shared by the workers
//! behind one mutex (fragments are rare, and a datagram's fragments may
//! arrive on different queues).

use crate::drop::DropReason;
use crate::key::{Field, FlowKey, FRAG_REASSEMBLED};
use crate::packet::parse;
use crate::wire::checksum::{fold, sum_words};
use crate::wire::ipv4::pseudo_header_sum;
use crate::wire::{ipproto, Ipv4Packet};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Largest IPv4 datagram.
const MAX_DATAGRAM: usize = 65_535;

/// How much reassembly may hold (Linux's defaults where it has one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefragLimits {
    /// Bytes of held frames (Linux `ipfrag_high_thresh`: 4 MiB).
    pub max_bytes: usize,
    /// Datagrams waiting for fragments.
    pub max_datagrams: usize,
    /// Fragments of one datagram (a 64 KiB datagram at a 1,500-byte MTU
    /// is 45).
    pub max_fragments: usize,
    /// How long a datagram may wait for its fragments (Linux
    /// `ipfrag_time`: 30 s).
    pub timeout_ns: u64,
}

impl Default for DefragLimits {
    fn default() -> Self {
        DefragLimits {
            max_bytes: 4 << 20,
            max_datagrams: 4096,
            max_fragments: 64,
            timeout_ns: 30_000_000_000,
        }
    }
}

/// Counters and gauges of reassembly (drops are counted by the datapath
/// under their reasons).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DefragStats {
    /// Fragments taken in.
    pub fragments: u64,
    /// Datagrams made whole.
    pub reassembled: u64,
    /// Datagrams waiting now.
    pub pending: u64,
    /// Bytes of frames held now.
    pub held_bytes: u64,
}

/// A datagram made whole: its fragments' frames (first fragment first),
/// and what conntrack needs of it.
#[derive(Debug)]
pub struct Datagram {
    pub frames: Vec<Held>,
    transport: Transport,
    /// The transport checksum verifies over the whole datagram (TCP, UDP
    /// unless it carries none, ICMP; anything else verifies).
    pub l4_ok: bool,
}

/// One held fragment: its frame and the port it came in on.
#[derive(Debug)]
pub struct Held {
    pub frame: Vec<u8>,
    pub in_port: u32,
}

/// The transport fields of a datagram's first fragment.
#[derive(Clone, Copy, Debug)]
struct Transport {
    tp_src: u64,
    tp_dst: u64,
    tcp_flags: u64,
    icmp_id: u64,
}

impl Datagram {
    /// Makes `key` (one of the datagram's fragments) carry the datagram's
    /// transport fields, marked `FRAG_REASSEMBLED`.
    pub fn fill(&self, key: &mut FlowKey) {
        let t = &self.transport;
        key.set(Field::TpSrc, t.tp_src);
        key.set(Field::TpDst, t.tp_dst);
        key.set(Field::TcpFlags, t.tcp_flags);
        key.set(Field::IcmpId, t.icmp_id);
        let frag = key.get(Field::NwFrag) as u8 | FRAG_REASSEMBLED;
        key.set(Field::NwFrag, frag as u64);
    }
}

/// What became of a fragment.
#[derive(Debug)]
pub enum Defragged {
    /// Held until its datagram is whole.
    Held,
    /// It completed its datagram.
    Complete(Datagram),
    /// Dropped, with `count` fragments (it and those of its datagram that
    /// were discarded with it).
    Dropped { reason: DropReason, count: u64 },
}

/// A datagram's identity (Linux's reassembly key, per zone).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct DatagramId {
    zone: u16,
    proto: u8,
    id: u16,
    src: u32,
    dst: u32,
}

/// One held fragment and the payload bytes it covers.
#[derive(Debug)]
struct Fragment {
    offset: usize,
    len: usize,
    /// Where its IPv4 header starts in the frame.
    l3_ofs: usize,
    held: Held,
}

#[derive(Debug)]
struct Pending {
    /// In offset order, none overlapping.
    frags: Vec<Fragment>,
    /// The payload's length, once the last fragment came.
    end: Option<usize>,
    /// When the first fragment came (the timeout runs from it).
    since_ns: u64,
    bytes: usize,
}

impl Pending {
    fn whole(&self) -> bool {
        self.end
            .is_some_and(|end| self.frags.iter().map(|f| f.len).sum::<usize>() == end)
            && self.frags.first().is_some_and(|f| f.offset == 0)
    }
}

#[derive(Default)]
struct Inner {
    pending: HashMap<DatagramId, Pending>,
    bytes: usize,
}

/// The reassembly table.
pub struct FragTable {
    limits: DefragLimits,
    inner: Mutex<Inner>,
    fragments: AtomicU64,
    reassembled: AtomicU64,
}

/// A fragment's header facts.
struct FragInfo {
    id: DatagramId,
    offset: usize,
    len: usize,
    more: bool,
}

fn frag_info(frame: &[u8], l3_ofs: usize, zone: u16) -> Result<FragInfo, DropReason> {
    let ip = frame
        .get(l3_ofs..)
        .and_then(Ipv4Packet::new_checked)
        .filter(|ip| ip.is_consistent())
        .ok_or(DropReason::Ipv4Malformed)?;
    let offset = ip.fragment_offset() as usize * 8;
    let len = ip.total_len() - ip.header_len();
    let more = ip.more_fragments();
    if (more && (len == 0 || len % 8 != 0)) || ip.header_len() + offset + len > MAX_DATAGRAM {
        return Err(DropReason::FragMalformed);
    }
    Ok(FragInfo {
        id: DatagramId {
            zone,
            proto: ip.protocol(),
            id: ip.ident(),
            src: ip.src_addr(),
            dst: ip.dst_addr(),
        },
        offset,
        len,
        more,
    })
}

impl FragTable {
    pub fn new(limits: DefragLimits) -> FragTable {
        FragTable {
            limits,
            inner: Mutex::new(Inner::default()),
            fragments: AtomicU64::new(0),
            reassembled: AtomicU64::new(0),
        }
    }

    pub fn limits(&self) -> DefragLimits {
        self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes in the fragment `frame` (its IPv4 header at `l3_ofs`) of a
    /// datagram tracked in `zone`.
    pub fn insert(
        &self,
        zone: u16,
        frame: &[u8],
        l3_ofs: usize,
        in_port: u32,
        now_ns: u64,
    ) -> Defragged {
        self.fragments.fetch_add(1, Ordering::Relaxed);
        let f = match frag_info(frame, l3_ofs, zone) {
            Ok(f) => f,
            Err(reason) => return Defragged::Dropped { reason, count: 1 },
        };
        let mut inner = self.lock();
        let inner = &mut *inner;
        if !inner.pending.contains_key(&f.id) && inner.pending.len() >= self.limits.max_datagrams {
            return Defragged::Dropped {
                reason: DropReason::FragTableFull,
                count: 1,
            };
        }
        if inner.bytes + frame.len() > self.limits.max_bytes {
            return Defragged::Dropped {
                reason: DropReason::FragTableFull,
                count: 1,
            };
        }
        let p = inner.pending.entry(f.id).or_insert_with(|| Pending {
            frags: Vec::new(),
            end: None,
            since_ns: now_ns,
            bytes: 0,
        });
        if let Err(reason) = place(p, &f, self.limits.max_fragments) {
            if reason == DropReason::FragDuplicate {
                return Defragged::Dropped { reason, count: 1 };
            }
            let discarded = inner.pending.remove(&f.id).map_or(0, |p| {
                inner.bytes -= p.bytes;
                p.frags.len() as u64
            });
            return Defragged::Dropped {
                reason,
                count: discarded + 1,
            };
        }
        let at = p.frags.partition_point(|x| x.offset < f.offset);
        p.frags.insert(
            at,
            Fragment {
                offset: f.offset,
                len: f.len,
                l3_ofs,
                held: Held {
                    frame: frame.to_vec(),
                    in_port,
                },
            },
        );
        p.bytes += frame.len();
        inner.bytes += frame.len();
        if !f.more {
            p.end = Some(f.offset + f.len);
        }
        if !p.whole() {
            return Defragged::Held;
        }
        let Some(p) = inner.pending.remove(&f.id) else {
            return Defragged::Held;
        };
        inner.bytes -= p.bytes;
        match datagram(p) {
            Some(d) => {
                self.reassembled.fetch_add(1, Ordering::Relaxed);
                Defragged::Complete(d)
            }
            None => Defragged::Dropped {
                reason: DropReason::FragMalformed,
                count: 1,
            },
        }
    }

    /// Discards the datagrams that waited longer than the timeout; the
    /// number of fragments discarded.
    pub fn expire(&self, now_ns: u64) -> u64 {
        let mut inner = self.lock();
        let timeout = self.limits.timeout_ns;
        let mut dropped = 0u64;
        let mut freed = 0usize;
        inner.pending.retain(|_, p| {
            let keep = now_ns.saturating_sub(p.since_ns) < timeout;
            if !keep {
                dropped += p.frags.len() as u64;
                freed += p.bytes;
            }
            keep
        });
        inner.bytes -= freed;
        dropped
    }

    pub fn stats(&self) -> DefragStats {
        let inner = self.lock();
        DefragStats {
            fragments: self.fragments.load(Ordering::Relaxed),
            reassembled: self.reassembled.load(Ordering::Relaxed),
            pending: inner.pending.len() as u64,
            held_bytes: inner.bytes as u64,
        }
    }
}

/// Checks that fragment `f` fits datagram `p`: not a duplicate, not
/// overlapping, consistent with the end, within the fragment bound.
fn place(p: &mut Pending, f: &FragInfo, max_fragments: usize) -> Result<(), DropReason> {
    let end = f.offset + f.len;
    if p.frags
        .iter()
        .any(|x| x.offset == f.offset && x.len == f.len)
    {
        return Err(DropReason::FragDuplicate);
    }
    if p.frags
        .iter()
        .any(|x| x.offset < end && f.offset < x.offset + x.len)
    {
        return Err(DropReason::FragOverlap);
    }
    match (f.more, p.end) {
        (false, Some(e)) if e != end => return Err(DropReason::FragMalformed),
        (false, None) if p.frags.iter().any(|x| x.offset + x.len > end) => {
            return Err(DropReason::FragMalformed)
        }
        (true, Some(e)) if end > e => return Err(DropReason::FragMalformed),
        _ => {}
    }
    if p.frags.len() >= max_fragments {
        return Err(DropReason::FragTooMany);
    }
    Ok(())
}

/// The whole datagram `p`: its first fragment's transport fields and its
/// transport checksum summed over the fragments' payloads (each starts at
/// a multiple of 8, so the per-fragment sums add up).
fn datagram(p: Pending) -> Option<Datagram> {
    let first = p.frags.first()?;
    let key = parse(&first.held.frame, first.held.in_port).ok()?.key;
    let ip = Ipv4Packet::new_checked(first.held.frame.get(first.l3_ofs..)?)?;
    let (src, dst, proto) = (ip.src_addr(), ip.dst_addr(), ip.protocol());
    let end = p.end?;
    let mut sum = match proto {
        ipproto::TCP | ipproto::UDP => pseudo_header_sum(src, dst, proto, end as u16),
        _ => 0,
    };
    for f in &p.frags {
        let ip = Ipv4Packet::new_checked(f.held.frame.get(f.l3_ofs..)?)?;
        let payload = ip.payload();
        sum = sum_words(payload.get(..f.len)?, sum);
    }
    let first_payload = ip.payload();
    let l4_ok = match proto {
        ipproto::TCP => fold(sum) == 0xffff,
        ipproto::UDP => {
            // Checksum field at bytes 6..8 of the header; 0: none.
            first_payload.get(6..8) == Some(&[0, 0]) || fold(sum) == 0xffff
        }
        ipproto::ICMP => fold(sum) == 0xffff,
        _ => true,
    };
    Some(Datagram {
        transport: Transport {
            tp_src: key.get(Field::TpSrc),
            tp_dst: key.get(Field::TpDst),
            tcp_flags: key.get(Field::TcpFlags),
            icmp_id: key.get(Field::IcmpId),
        },
        frames: p.frags.into_iter().map(|f| f.held).collect(),
        l4_ok,
    })
}
