//! The daemon's replies as vswitchctl prints them (without `--json`):
//! ovs-ofctl/ovs-appctl shapes where there is one (dump-ports,
//! dpctl/dump-conntrack, dpif-netdev/pmd-stats-show), a line of counts
//! for changes, nothing for changes that have nothing to report.
#![deny(unsafe_code)]

use std::fmt::Write;
use vswitch::control::protocol::{ConnRow, ConntrackStats, FdbRow, PortRow, ShowReply, TupleRow};
use vswitch::control::Response;
use vswitch::daemon::WorkerReport;

/// The text of a reply.
pub(crate) fn of(response: &Response) -> String {
    match response {
        Response::Version(v) => format!("protocol {}, host {}\n", v.protocol, v.host),
        Response::Show(s) => show(s),
        Response::DumpFlows(d) => d.text.clone(),
        Response::DumpAggregate(a) => format!(
            "packet_count={} byte_count={} flow_count={}\n",
            a.packet_count, a.byte_count, a.flow_count
        ),
        Response::DumpTables(rows) => rows
            .iter()
            .map(|t| {
                format!(
                    "  {}: active={}, matched={}\n",
                    t.table, t.active_count, t.matched_count
                )
            })
            .collect(),
        Response::Trace(t) => t.text.clone(),
        Response::RouterShow(r) => vswitch::render::routers_text(&r.routers),
        Response::AddPort(p) => format!("{} is ofport {}\n", p.port, p.ofport),
        Response::AddFlows(a) => format!("{} flow(s) added\n", a.added),
        Response::ModFlows(m) => format!("{} flow(s) modified\n", m.modified),
        Response::DelFlows(d) => format!("{} flow(s) deleted\n", d.deleted),
        Response::DumpPorts(rows) => ports(rows),
        Response::FdbShow(rows) => fdb(rows),
        Response::ConntrackDump(conns) => conns.iter().map(|c| conntrack_line(c) + "\n").collect(),
        Response::ConntrackFlush(d) => format!("{} connection(s) deleted\n", d.deleted),
        Response::ConntrackStats(s) => conntrack_stats(s),
        Response::PmdStats(workers) => workers.iter().map(pmd_stats).collect(),
        Response::RouterList(r) => serde_json::to_value(r)
            .and_then(|v| serde_json::to_string_pretty(&v))
            .map(|s| s + "\n")
            .unwrap_or_default(),
        Response::RouterSet(c) | Response::RouterDel(c) if c.connections_deleted > 0 => {
            format!("{} connection(s) deleted\n", c.connections_deleted)
        }
        Response::DpctlDumpFlows(rows) => rows
            .iter()
            .map(|r| {
                format!(
                    "worker {}{}: {}, packets:{}, used:{}.{:03}s, actions:{}\n",
                    r.worker,
                    if r.recirc { " (recirc)" } else { "" },
                    r.megaflow,
                    r.packets,
                    r.used_ms / 1000,
                    r.used_ms % 1000,
                    r.actions
                )
            })
            .collect(),
        Response::Vlog(v) => match &v.previous {
            Some(p) => format!("log filter: {} (was {p})\n", v.filter),
            None => format!("log filter: {}\n", v.filter),
        },
        Response::TopologyShow(t) => {
            topology::file::to_toml(t).unwrap_or_else(|e| format!("# not printable as TOML: {e}\n"))
        }
        Response::TopologyLoad(c) => {
            let mut out: String = c.changes.iter().map(|x| format!("{x}\n")).collect();
            if c.dry_run {
                out += &format!("dry run: {} change(s), nothing applied\n", c.changes.len());
            } else {
                out += &format!(
                    "applied {} change(s) ({} connection(s) deleted)\n",
                    c.changes.len(),
                    c.connections_deleted
                );
            }
            out
        }
        Response::FipDisassociate(c) => {
            format!("{} connection(s) deleted\n", c.connections_deleted)
        }
        Response::Capture(c) => format!(
            "{} packet(s) captured to {} ({} dropped)\n",
            c.packets,
            c.file.display(),
            c.dropped
        ),
        Response::MatchCheck(m) => format!("{m}\n"),
        Response::AddFlow(_)
        | Response::AddBr(_)
        | Response::DelBr(_)
        | Response::DelPort(_)
        | Response::SetPort(_)
        | Response::VmPortAdd(_)
        | Response::VmPortDel(_)
        | Response::FipAssociate(_)
        | Response::RouterSet(_)
        | Response::RouterDel(_) => String::new(),
    }
}

/// `ovs-vsctl show`-like summary, then each port's I/O binding.
fn show(s: &ShowReply) -> String {
    let mut text = s.switch.text();
    for b in &s.io {
        let backend = serde_json::to_string(&b.backend).unwrap_or_default();
        let plural = if b.queues == 1 { "" } else { "s" };
        let _ = writeln!(
            text,
            "I/O {}: {backend} ({} queue{plural})",
            b.port, b.queues
        );
    }
    text
}

/// `ovs-ofctl dump-ports`-like counters.
fn ports(rows: &[PortRow]) -> String {
    let mut s = format!("{} ports\n", rows.len());
    for r in rows {
        let c = &r.counters;
        let _ = writeln!(
            s,
            "  port {} {:<16} rx pkts={}, bytes={}, drop={}\n                       tx pkts={}, bytes={}, drop={}{}",
            r.ofport,
            format!("\"{}\":", r.port),
            c.rx_packets,
            c.rx_bytes,
            c.rx_dropped,
            c.tx_packets,
            c.tx_bytes,
            c.tx_dropped,
            if r.io { "" } else { "  (no I/O)" }
        );
    }
    s
}

/// The MAC table, one entry a line.
fn fdb(rows: &[FdbRow]) -> String {
    let mut s = String::from(" port  VLAN  MAC                Age\n");
    for r in rows {
        let port = r.port.map_or("null".to_string(), |p| p.to_string());
        let _ = writeln!(s, "{port}  {}  {}  {}", r.vlan, r.mac, r.age);
    }
    s
}

/// One connection as `ovs-appctl dpctl/dump-conntrack` prints it, plus
/// the packet counts and the NAT done.
fn conntrack_line(c: &ConnRow) -> String {
    let name = match c.orig.proto {
        1 => "icmp".to_string(),
        6 => "tcp".to_string(),
        17 => "udp".to_string(),
        n => format!("proto{n}"),
    };
    let tuple = |x: &TupleRow, echo_type: u8| {
        if c.orig.proto == 1 {
            format!(
                "src={},dst={},id={},type={echo_type},code=0",
                x.src, x.dst, x.sport
            )
        } else {
            format!(
                "src={},dst={},sport={},dport={}",
                x.src, x.dst, x.sport, x.dport
            )
        }
    };
    let mut line = format!(
        "{name},orig=({}),reply=({}),zone={}",
        tuple(&c.orig, 8),
        tuple(&c.reply, 0),
        c.orig.zone
    );
    if let Some(st) = &c.tcp {
        let _ = write!(line, ",protoinfo=(state={st})");
    }
    let mut flags = Vec::new();
    if c.snat {
        flags.push("snat");
    }
    if c.dnat {
        flags.push("dnat");
    }
    if !c.seen_reply {
        flags.push("unreplied");
    }
    let _ = write!(line, " packets={}/{}", c.packets[0], c.packets[1]);
    if !flags.is_empty() {
        let _ = write!(line, " [{}]", flags.join(","));
    }
    line
}

fn conntrack_stats(s: &ConntrackStats) -> String {
    s.named()
        .iter()
        .map(|(name, n)| format!("{name}: {n}\n"))
        .collect()
}

/// One worker, as `ovs-appctl dpif-netdev/pmd-stats-show` would.
fn pmd_stats(w: &WorkerReport) -> String {
    let core = w.core.map_or("null".to_string(), |c| c.to_string());
    let drops: Vec<String> = w
        .drops
        .iter()
        .map(|(reason, n)| format!("{reason}={n}"))
        .collect();
    format!(
        "pmd {} (core {core}, {} rx queues):\n  rx packets: {}\n  tx packets: {}\n  upcalls: {}\n  cache hits: {}\n  cache misses: {}\n  idle polls: {}\n  busy ns/packet: {:.1}\n  busy cycles/packet: {:.1}\n  drops: {}\n",
        w.worker,
        w.rx_queues,
        w.rx_packets,
        w.tx_packets,
        w.upcalls,
        w.cache_hits,
        w.cache_misses,
        w.idle_polls,
        w.ns_per_packet,
        w.cycles_per_packet,
        drops.join(" ")
    )
}
