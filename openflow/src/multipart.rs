//! MULTIPART_REQUEST / MULTIPART_REPLY bodies for DESC, FLOW, AGGREGATE,
//! TABLE, PORT_STATS and PORT_DESC, and the splitting of a long reply into
//! several messages chained by OFPMPF_REPLY_MORE.
//!
//! Other multipart types (meters, groups, table features…) decode to
//! [`DecodeError::UnknownMultipartType`], answered with
//! BAD_REQUEST/BAD_MULTIPART.

use crate::error::{DecodeError, Part};
use crate::header::HEADER_LEN;
use crate::instruction::Instruction;
use crate::oxm::Match;
use crate::port::{PortDesc, PORT_LEN};
use crate::wire::{patch_len, put_u16, put_u32, put_u64, put_zeros, Reader};

/// `ofp_multipart_type` values handled here.
pub mod multipart_type {
    pub const DESC: u16 = 0;
    pub const FLOW: u16 = 1;
    pub const AGGREGATE: u16 = 2;
    pub const TABLE: u16 = 3;
    pub const PORT_STATS: u16 = 4;
    pub const TABLE_FEATURES: u16 = 12;
    pub const PORT_DESC: u16 = 13;
}

/// `OFPMPF_REQ_MORE` / `OFPMPF_REPLY_MORE`.
pub const MULTIPART_MORE: u16 = 1;

/// The largest message: the header's length field is 16 bits.
pub const MAX_MESSAGE_LEN: usize = 0xffff;

/// The body of FLOW and AGGREGATE requests (`ofp_flow_stats_request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStatsRequest {
    pub table_id: u8,
    pub out_port: u32,
    pub out_group: u32,
    pub cookie: u64,
    pub cookie_mask: u64,
    pub match_: Match,
}

impl FlowStatsRequest {
    fn decode(r: &mut Reader) -> Result<FlowStatsRequest, DecodeError> {
        let table_id = r.u8()?;
        r.skip(3)?;
        let out_port = r.u32()?;
        let out_group = r.u32()?;
        r.skip(4)?;
        let cookie = r.u64()?;
        let cookie_mask = r.u64()?;
        let match_ = Match::decode(r)?;
        Ok(FlowStatsRequest {
            table_id,
            out_port,
            out_group,
            cookie,
            cookie_mask,
            match_,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.table_id);
        put_zeros(out, 3);
        put_u32(out, self.out_port);
        put_u32(out, self.out_group);
        put_zeros(out, 4);
        put_u64(out, self.cookie);
        put_u64(out, self.cookie_mask);
        self.match_.encode(out);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartRequestBody {
    Desc,
    Flow(FlowStatsRequest),
    Aggregate(FlowStatsRequest),
    Table,
    PortStats {
        port_no: u32,
    },
    /// `ofp_table_features` entries as they came, undecoded: empty asks
    /// for the tables' features, anything else asks to change them.
    TableFeatures(Vec<u8>),
    PortDesc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartRequest {
    pub flags: u16,
    pub body: MultipartRequestBody,
}

/// `ofp_desc`: fixed-size NUL-padded strings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Desc {
    pub mfr_desc: String,
    pub hw_desc: String,
    pub sw_desc: String,
    pub serial_num: String,
    pub dp_desc: String,
}

const DESC_STR_LEN: usize = 256;
const SERIAL_NUM_LEN: usize = 32;

/// One `ofp_flow_stats` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStats {
    pub table_id: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub priority: u16,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub flags: u16,
    pub cookie: u64,
    pub packet_count: u64,
    pub byte_count: u64,
    pub match_: Match,
    pub instructions: Vec<Instruction>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregateStats {
    pub packet_count: u64,
    pub byte_count: u64,
    pub flow_count: u32,
}

/// `ofp_table_stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableStats {
    pub table_id: u8,
    pub active_count: u32,
    pub lookup_count: u64,
    pub matched_count: u64,
}

/// `ofp_port_stats`: `counters` are rx_packets, tx_packets, rx_bytes,
/// tx_bytes, rx_dropped, tx_dropped, rx_errors, tx_errors, rx_frame_err,
/// rx_over_err, rx_crc_err, collisions, in that (wire) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortStats {
    pub port_no: u32,
    pub counters: [u64; 12],
    pub duration_sec: u32,
    pub duration_nsec: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartReplyBody {
    Desc(Desc),
    Flow(Vec<FlowStats>),
    Aggregate(AggregateStats),
    Table(Vec<TableStats>),
    PortStats(Vec<PortStats>),
    /// `ofp_table_features` entries, undecoded (a switch that describes
    /// no table answers with none).
    TableFeatures(Vec<u8>),
    PortDesc(Vec<PortDesc>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartReply {
    pub flags: u16,
    pub body: MultipartReplyBody,
}

impl MultipartRequest {
    pub(crate) fn decode(r: &mut Reader) -> Result<MultipartRequest, DecodeError> {
        let mp_type = r.u16()?;
        let flags = r.u16()?;
        r.skip(4)?;
        use multipart_type as T;
        let body = match mp_type {
            T::DESC => MultipartRequestBody::Desc,
            T::FLOW => MultipartRequestBody::Flow(FlowStatsRequest::decode(r)?),
            T::AGGREGATE => MultipartRequestBody::Aggregate(FlowStatsRequest::decode(r)?),
            T::TABLE => MultipartRequestBody::Table,
            T::PORT_STATS => {
                let port_no = r.u32()?;
                r.skip(4)?;
                MultipartRequestBody::PortStats { port_no }
            }
            T::PORT_DESC => MultipartRequestBody::PortDesc,
            T::TABLE_FEATURES => MultipartRequestBody::TableFeatures(r.rest().to_vec()),
            other => return Err(DecodeError::UnknownMultipartType(other)),
        };
        if !r.is_empty() {
            return Err(DecodeError::BadLength {
                part: Part::Body,
                length: r.remaining(),
            });
        }
        Ok(MultipartRequest { flags, body })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        use multipart_type as T;
        let mp_type = match &self.body {
            MultipartRequestBody::Desc => T::DESC,
            MultipartRequestBody::Flow(_) => T::FLOW,
            MultipartRequestBody::Aggregate(_) => T::AGGREGATE,
            MultipartRequestBody::Table => T::TABLE,
            MultipartRequestBody::PortStats { .. } => T::PORT_STATS,
            MultipartRequestBody::TableFeatures(_) => T::TABLE_FEATURES,
            MultipartRequestBody::PortDesc => T::PORT_DESC,
        };
        put_u16(out, mp_type);
        put_u16(out, self.flags);
        put_zeros(out, 4);
        match &self.body {
            MultipartRequestBody::Flow(f) | MultipartRequestBody::Aggregate(f) => f.encode(out),
            MultipartRequestBody::PortStats { port_no } => {
                put_u32(out, *port_no);
                put_zeros(out, 4);
            }
            MultipartRequestBody::TableFeatures(raw) => out.extend_from_slice(raw),
            _ => {}
        }
    }
}

fn fixed_string(r: &mut Reader, len: usize) -> Result<String, DecodeError> {
    let raw = r.bytes(len)?;
    let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
    Ok(String::from_utf8_lossy(&raw[..end]).into_owned())
}

fn put_fixed_string(out: &mut Vec<u8>, s: &str, len: usize) {
    let n = s.len().min(len - 1);
    out.extend_from_slice(&s.as_bytes()[..n]);
    put_zeros(out, len - n);
}

impl Desc {
    fn decode(r: &mut Reader) -> Result<Desc, DecodeError> {
        Ok(Desc {
            mfr_desc: fixed_string(r, DESC_STR_LEN)?,
            hw_desc: fixed_string(r, DESC_STR_LEN)?,
            sw_desc: fixed_string(r, DESC_STR_LEN)?,
            serial_num: fixed_string(r, SERIAL_NUM_LEN)?,
            dp_desc: fixed_string(r, DESC_STR_LEN)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_fixed_string(out, &self.mfr_desc, DESC_STR_LEN);
        put_fixed_string(out, &self.hw_desc, DESC_STR_LEN);
        put_fixed_string(out, &self.sw_desc, DESC_STR_LEN);
        put_fixed_string(out, &self.serial_num, SERIAL_NUM_LEN);
        put_fixed_string(out, &self.dp_desc, DESC_STR_LEN);
    }
}

impl FlowStats {
    fn decode(r: &mut Reader) -> Result<FlowStats, DecodeError> {
        let length = usize::from(r.u16()?);
        if length < 2 {
            return Err(DecodeError::BadLength {
                part: Part::Body,
                length,
            });
        }
        let mut e = r.sub(length - 2)?;
        let table_id = e.u8()?;
        e.skip(1)?;
        let duration_sec = e.u32()?;
        let duration_nsec = e.u32()?;
        let priority = e.u16()?;
        let idle_timeout = e.u16()?;
        let hard_timeout = e.u16()?;
        let flags = e.u16()?;
        e.skip(4)?;
        let cookie = e.u64()?;
        let packet_count = e.u64()?;
        let byte_count = e.u64()?;
        let match_ = Match::decode(&mut e)?;
        let mut rest = Reader::new(e.rest(), Part::Instruction);
        let instructions = Instruction::decode_list(&mut rest)?;
        Ok(FlowStats {
            table_id,
            duration_sec,
            duration_nsec,
            priority,
            idle_timeout,
            hard_timeout,
            flags,
            cookie,
            packet_count,
            byte_count,
            match_,
            instructions,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u16(out, 0);
        out.push(self.table_id);
        out.push(0);
        put_u32(out, self.duration_sec);
        put_u32(out, self.duration_nsec);
        put_u16(out, self.priority);
        put_u16(out, self.idle_timeout);
        put_u16(out, self.hard_timeout);
        put_u16(out, self.flags);
        put_zeros(out, 4);
        put_u64(out, self.cookie);
        put_u64(out, self.packet_count);
        put_u64(out, self.byte_count);
        self.match_.encode(out);
        Instruction::encode_list(&self.instructions, out);
        patch_len(out, start, 0);
    }
}

impl TableStats {
    fn decode(r: &mut Reader) -> Result<TableStats, DecodeError> {
        let table_id = r.u8()?;
        r.skip(3)?;
        Ok(TableStats {
            table_id,
            active_count: r.u32()?,
            lookup_count: r.u64()?,
            matched_count: r.u64()?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.table_id);
        put_zeros(out, 3);
        put_u32(out, self.active_count);
        put_u64(out, self.lookup_count);
        put_u64(out, self.matched_count);
    }
}

impl PortStats {
    fn decode(r: &mut Reader) -> Result<PortStats, DecodeError> {
        let port_no = r.u32()?;
        r.skip(4)?;
        let mut counters = [0u64; 12];
        for c in counters.iter_mut() {
            *c = r.u64()?;
        }
        Ok(PortStats {
            port_no,
            counters,
            duration_sec: r.u32()?,
            duration_nsec: r.u32()?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.port_no);
        put_zeros(out, 4);
        for c in self.counters {
            put_u64(out, c);
        }
        put_u32(out, self.duration_sec);
        put_u32(out, self.duration_nsec);
    }
}

/// Decodes a list of entries that fill `r` exactly.
fn decode_all<T>(
    r: &mut Reader,
    one: fn(&mut Reader) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(one(r)?);
    }
    Ok(out)
}

impl MultipartReply {
    pub(crate) fn decode(r: &mut Reader) -> Result<MultipartReply, DecodeError> {
        let mp_type = r.u16()?;
        let flags = r.u16()?;
        r.skip(4)?;
        use multipart_type as T;
        let body = match mp_type {
            T::DESC => MultipartReplyBody::Desc(Desc::decode(r)?),
            T::FLOW => MultipartReplyBody::Flow(decode_all(r, FlowStats::decode)?),
            T::AGGREGATE => {
                let a = AggregateStats {
                    packet_count: r.u64()?,
                    byte_count: r.u64()?,
                    flow_count: r.u32()?,
                };
                r.skip(4)?;
                MultipartReplyBody::Aggregate(a)
            }
            T::TABLE => MultipartReplyBody::Table(decode_all(r, TableStats::decode)?),
            T::PORT_STATS => MultipartReplyBody::PortStats(decode_all(r, PortStats::decode)?),
            T::PORT_DESC => MultipartReplyBody::PortDesc(decode_all(r, PortDesc::decode)?),
            T::TABLE_FEATURES => MultipartReplyBody::TableFeatures(r.rest().to_vec()),
            other => return Err(DecodeError::UnknownMultipartType(other)),
        };
        if !r.is_empty() {
            return Err(DecodeError::BadLength {
                part: Part::Body,
                length: r.remaining(),
            });
        }
        Ok(MultipartReply { flags, body })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        use multipart_type as T;
        let mp_type = match &self.body {
            MultipartReplyBody::Desc(_) => T::DESC,
            MultipartReplyBody::Flow(_) => T::FLOW,
            MultipartReplyBody::Aggregate(_) => T::AGGREGATE,
            MultipartReplyBody::Table(_) => T::TABLE,
            MultipartReplyBody::PortStats(_) => T::PORT_STATS,
            MultipartReplyBody::TableFeatures(_) => T::TABLE_FEATURES,
            MultipartReplyBody::PortDesc(_) => T::PORT_DESC,
        };
        put_u16(out, mp_type);
        put_u16(out, self.flags);
        put_zeros(out, 4);
        match &self.body {
            MultipartReplyBody::Desc(d) => d.encode(out),
            MultipartReplyBody::Flow(v) => v.iter().for_each(|e| e.encode(out)),
            MultipartReplyBody::Aggregate(a) => {
                put_u64(out, a.packet_count);
                put_u64(out, a.byte_count);
                put_u32(out, a.flow_count);
                put_zeros(out, 4);
            }
            MultipartReplyBody::Table(v) => v.iter().for_each(|e| e.encode(out)),
            MultipartReplyBody::PortStats(v) => v.iter().for_each(|e| e.encode(out)),
            MultipartReplyBody::PortDesc(v) => v.iter().for_each(|e| e.encode(out)),
            MultipartReplyBody::TableFeatures(raw) => out.extend_from_slice(raw),
        }
    }

    /// Splits this reply into replies whose messages each fit in 64 KiB,
    /// all but the last flagged OFPMPF_REPLY_MORE. A reply that fits is
    /// returned as is (flags cleared of REPLY_MORE).
    pub fn split(&self) -> Vec<MultipartReply> {
        const FIXED: usize = HEADER_LEN + 8;
        let budget = MAX_MESSAGE_LEN - FIXED;
        let parts: Vec<MultipartReplyBody> = match &self.body {
            MultipartReplyBody::Flow(v) => chunk(v, budget, |e| {
                let mut b = Vec::new();
                e.encode(&mut b);
                b.len()
            })
            .into_iter()
            .map(MultipartReplyBody::Flow)
            .collect(),
            MultipartReplyBody::Table(v) => chunk(v, budget, |_| 24)
                .into_iter()
                .map(MultipartReplyBody::Table)
                .collect(),
            MultipartReplyBody::PortStats(v) => chunk(v, budget, |_| 112)
                .into_iter()
                .map(MultipartReplyBody::PortStats)
                .collect(),
            MultipartReplyBody::PortDesc(v) => chunk(v, budget, |_| PORT_LEN)
                .into_iter()
                .map(MultipartReplyBody::PortDesc)
                .collect(),
            other => vec![other.clone()],
        };
        let n = parts.len();
        parts
            .into_iter()
            .enumerate()
            .map(|(i, body)| {
                let more = if i + 1 < n { MULTIPART_MORE } else { 0 };
                MultipartReply {
                    flags: (self.flags & !MULTIPART_MORE) | more,
                    body,
                }
            })
            .collect()
    }
}

/// Groups `items` greedily so each group's total size is within `budget`
/// (an item larger than the budget gets a group of its own). Always
/// returns at least one (possibly empty) group.
fn chunk<T: Clone>(items: &[T], budget: usize, size: impl Fn(&T) -> usize) -> Vec<Vec<T>> {
    let mut groups = vec![Vec::new()];
    let mut used = 0;
    for item in items {
        let s = size(item);
        let last_len = groups.last().map_or(0, Vec::len);
        if used + s > budget && last_len > 0 {
            groups.push(Vec::new());
            used = 0;
        }
        if let Some(g) = groups.last_mut() {
            g.push(item.clone());
        }
        used += s;
    }
    groups
}

/// The properties every `ofp_table_features` entry must carry
/// (OFPTFPT_INSTRUCTIONS, NEXT_TABLES, WRITE_ACTIONS, APPLY_ACTIONS,
/// MATCH, WILDCARDS, WRITE_SETFIELD, APPLY_SETFIELD).
const REQUIRED_TABLE_PROPERTIES: [u16; 8] = [0, 2, 4, 6, 8, 10, 12, 14];

/// Length of an entry with the required properties, each empty.
pub const TABLE_FEATURES_LEN: usize = 64 + 8 * REQUIRED_TABLE_PROPERTIES.len();

/// One `ofp_table_features` entry: the table's id, name and size, every
/// metadata bit matchable and writable, and the required properties each
/// with an empty list (a switch that describes nothing else; OVS's tools
/// need one per table).
pub fn table_features_entry(table_id: u8, name: &str, max_entries: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(TABLE_FEATURES_LEN);
    put_u16(&mut out, TABLE_FEATURES_LEN as u16);
    out.push(table_id);
    put_zeros(&mut out, 5);
    put_fixed_string(&mut out, name, 32);
    put_u64(&mut out, u64::MAX);
    put_u64(&mut out, u64::MAX);
    put_u32(&mut out, 0);
    put_u32(&mut out, max_entries);
    for t in REQUIRED_TABLE_PROPERTIES {
        put_u16(&mut out, t);
        put_u16(&mut out, 4);
        put_zeros(&mut out, 4);
    }
    out
}

#[cfg(test)]
mod table_features_tests {
    use super::*;

    #[test]
    fn an_entry_has_its_id_name_size_and_the_required_properties() {
        let e = table_features_entry(7, "egress", 1000);
        assert_eq!(e.len(), TABLE_FEATURES_LEN);
        assert_eq!(&e[..3], &[0, 128, 7]);
        assert_eq!(&e[8..14], b"egress");
        assert_eq!(&e[60..64], &1000u32.to_be_bytes());
        assert_eq!(&e[64..72], &[0, 0, 0, 4, 0, 0, 0, 0]);
        assert_eq!(&e[120..124], &[0, 14, 0, 4]);
    }
}
