//! Connection tracking commands: conntrack-dump, conntrack-flush,
//! conntrack-stats, as the protocol's rows (pipeline's connection types
//! are not read back by clients).
#![deny(unsafe_code)]

use crate::control::protocol::{ConnRow, ConntrackStats, Deleted, Response, TupleRow};
use crate::daemon::Shared;
use pipeline::conntrack::tcp::TcpState;
use pipeline::conntrack::{Conn, CtStats, Tuple};
use std::net::Ipv4Addr;

/// The connections, of `zone` and touching `addr` if given.
pub(super) fn dump(shared: &Shared, zone: Option<u16>, addr: Option<Ipv4Addr>) -> Response {
    let conns = shared.switch().conntrack.dump(zone, addr);
    Response::ConntrackDump(conns.iter().map(conn_row).collect())
}

/// Deletes the connections of `zone` (touching `addr` if given).
pub(super) fn flush(shared: &Shared, zone: Option<u16>, addr: Option<Ipv4Addr>) -> Response {
    let ct = &shared.switch().conntrack;
    let deleted = match addr {
        Some(ip) => ct.flush_addr(zone, ip),
        None => ct.flush(zone),
    };
    Response::ConntrackFlush(Deleted { deleted })
}

pub(super) fn stats(shared: &Shared) -> Response {
    Response::ConntrackStats(stats_of(&shared.switch().conntrack.stats()))
}

fn stats_of(s: &CtStats) -> ConntrackStats {
    ConntrackStats {
        connections: s.connections,
        created: s.created,
        cross_worker: s.cross_worker,
        cross_worker_packets: s.cross_worker_packets,
        defrag_fragments: s.defrag.fragments,
        defrag_held_bytes: s.defrag.held_bytes,
        defrag_pending: s.defrag.pending,
        defrag_reassembled: s.defrag.reassembled,
        deleted: s.deleted,
        expired: s.expired,
        invalid: s.invalid,
        nat_attempts: s.nat_attempts,
        nat_port_exhausted: s.nat_port_exhausted,
        table_full: s.table_full,
        zone_full: s.zone_full,
    }
}

fn conn_row(c: &Conn) -> ConnRow {
    ConnRow {
        orig: tuple_row(&c.orig),
        reply: tuple_row(&c.reply),
        tcp: c.tcp.map(|s| tcp_state_name(s).to_string()),
        seen_reply: c.seen_reply,
        snat: c.snat,
        dnat: c.dnat,
        expires_ns: c.expires_ns,
        packets: c.packets,
    }
}

fn tuple_row(t: &Tuple) -> TupleRow {
    TupleRow {
        zone: t.zone,
        proto: t.proto,
        src: t.src,
        dst: t.dst,
        sport: t.sport,
        dport: t.dport,
    }
}

/// A TCP state as Linux conntrack names it.
fn tcp_state_name(s: TcpState) -> &'static str {
    match s {
        TcpState::SynSent => "SYN_SENT",
        TcpState::SynRecv => "SYN_RECV",
        TcpState::Established => "ESTABLISHED",
        TcpState::FinWait => "FIN_WAIT",
        TcpState::CloseWait => "CLOSE_WAIT",
        TcpState::LastAck => "LAST_ACK",
        TcpState::TimeWait => "TIME_WAIT",
        TcpState::Close => "CLOSE",
    }
}
