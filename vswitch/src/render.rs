//! What a switch snapshot looks like to people and tools, built the same
//! way for the running daemon and for the offline commands: `dump-flows`
//! in ovs-ofctl's format, the bridges and ports of `show`, the router
//! instances of `router show`.
//!
//! Views are plain serde types: the daemon sends them over the control
//! socket, vswitchctl reads them back and prints their text (`text()`), so
//! the JSON of `--json` and the text are two forms of one value. This
//! module only reads a snapshot (pipeline's `Switch`); it changes nothing
//! and calls nothing else of the crate.
#![deny(unsafe_code)]

use pipeline::flow::text::format_flow;
use pipeline::flow::FlowStats;
use pipeline::router::neighbour::NeighState;
use pipeline::router::InstanceKind;
use pipeline::switch::{PortKind, Switch, VlanMode};
use serde::{Deserialize, Serialize};
use std::fmt::Write;
use std::net::Ipv4Addr;

/// A name the snapshot does not have.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    #[error("no bridge named `{0}`")]
    NoBridge(String),
    #[error("no router instance named `{0}` on this host")]
    NoRouter(String),
}

/// `ovs-ofctl dump-flows` output for one bridge of a snapshot, durations
/// measured at `now_ns`.
pub fn dump_flows(sw: &Switch, bridge: &str, now_ns: u64) -> Result<String, ViewError> {
    let b = sw
        .bridge(bridge)
        .ok_or_else(|| ViewError::NoBridge(bridge.to_string()))?;
    let mut out = String::new();
    for t in b.tables() {
        for r in &t.rules {
            let _ = writeln!(
                out,
                "{}",
                format_flow(&r.flow, Some(&flow_stats(r, now_ns)), b)
            );
        }
    }
    Ok(out)
}

/// A flow's counters and ages at `now_ns`, as dump-flows prints them.
pub fn flow_stats(r: &pipeline::switch::Rule, now_ns: u64) -> FlowStats {
    let (n_packets, n_bytes, last) = r.stats.read();
    FlowStats {
        n_packets,
        n_bytes,
        duration_secs: now_ns.saturating_sub(r.added_ns) as f64 / 1e9,
        idle_age_secs: (n_packets > 0).then(|| now_ns.saturating_sub(last) / 1_000_000_000),
    }
}

/// The bridges, ports and router instances of a snapshot (`show`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchView {
    pub bridges: Vec<BridgeView>,
    /// Router instance names.
    pub routers: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeView {
    pub name: String,
    /// Flows in all its tables.
    pub flows: usize,
    pub ports: Vec<PortView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortView {
    pub name: String,
    pub ofport: u32,
    pub kind: PortKind,
    pub vlan: VlanMode,
    pub no_flood: bool,
}

impl SwitchView {
    pub fn of(sw: &Switch) -> SwitchView {
        let bridges = sw
            .bridges
            .iter()
            .map(|b| BridgeView {
                name: b.name.clone(),
                flows: b.n_flows(),
                ports: b
                    .ports
                    .iter()
                    .filter_map(|id| sw.port(*id))
                    .map(|p| PortView {
                        name: p.name.clone(),
                        ofport: p.ofport,
                        kind: p.kind.clone(),
                        vlan: p.vlan.clone(),
                        no_flood: p.no_flood,
                    })
                    .collect(),
            })
            .collect();
        SwitchView {
            bridges,
            routers: sw.routers.iter().map(|r| r.name.clone()).collect(),
        }
    }

    /// `ovs-vsctl show`-like summary.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for b in &self.bridges {
            let _ = writeln!(out, "Bridge {} ({} flows)", b.name, b.flows);
            for p in &b.ports {
                let kind = match &p.kind {
                    PortKind::System => "system".to_string(),
                    PortKind::Internal => "internal".to_string(),
                    PortKind::Patch { peer } => format!("patch, peer={peer}"),
                };
                let vlan = match &p.vlan {
                    VlanMode::Access { tag } => format!("tag={tag}"),
                    VlanMode::Trunk { trunks } if trunks.is_empty() => "trunk".to_string(),
                    VlanMode::Trunk { trunks } => format!("trunks={trunks:?}"),
                };
                let _ = writeln!(
                    out,
                    "    Port {} (ofport {}, {kind}, {vlan})",
                    p.name, p.ofport
                );
            }
        }
        out
    }
}

/// One router instance (`router show`): interfaces, `ip rule`, routes,
/// NAT rules, neighbours (static and learned) and counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterView {
    pub name: String,
    /// `qrouter`, `fip` or `snat`.
    pub kind: String,
    /// Its conntrack zone (None: no run-time state).
    pub zone: Option<u16>,
    pub conntrack: bool,
    pub interfaces: Vec<InterfaceView>,
    /// `ip rule` lines.
    pub rules: Vec<String>,
    /// `ip route` lines.
    pub routes: Vec<String>,
    /// `iptables -t nat -S` lines.
    pub nat: Vec<String>,
    pub neighbours: Vec<NeighbourView>,
    pub counters: Option<RouterCounters>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceView {
    pub name: String,
    pub mac: String,
    /// `ADDRESS/LENGTH`.
    pub addrs: Vec<String>,
    pub proxy_arp: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighbourView {
    pub dev: String,
    pub ip: Ipv4Addr,
    /// None while unresolved.
    pub mac: Option<String>,
    /// `PERMANENT` (static), `REACHABLE`, `STALE`, `INCOMPLETE`, `FAILED`.
    pub state: String,
    /// Packets held for a learned entry (absent for static ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<usize>,
}

/// A router instance's neighbour and ICMP counters. Fields are in
/// alphabetical order: the order `router show` prints them in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterCounters {
    pub arp_requests_sent: u64,
    pub hold_queue_drops: u64,
    pub icmp_errors_sent: u64,
    pub icmp_rate_limited: u64,
    pub neighbour_table_full: u64,
    pub neighbours_failed: u64,
    pub neighbours_resolved: u64,
    pub packets_held: u64,
    pub packets_released: u64,
}

impl RouterCounters {
    fn named(&self) -> [(&'static str, u64); 9] {
        [
            ("arp_requests_sent", self.arp_requests_sent),
            ("hold_queue_drops", self.hold_queue_drops),
            ("icmp_errors_sent", self.icmp_errors_sent),
            ("icmp_rate_limited", self.icmp_rate_limited),
            ("neighbour_table_full", self.neighbour_table_full),
            ("neighbours_failed", self.neighbours_failed),
            ("neighbours_resolved", self.neighbours_resolved),
            ("packets_held", self.packets_held),
            ("packets_released", self.packets_released),
        ]
    }
}

/// The router instances of a snapshot: the one named `name`, or all.
pub fn routers(sw: &Switch, name: Option<&str>) -> Result<Vec<RouterView>, ViewError> {
    let out: Vec<RouterView> = sw
        .routers
        .iter()
        .enumerate()
        .filter(|(_, r)| name.is_none_or(|n| n == r.name))
        .map(|(i, r)| router_view(sw, i, r))
        .collect();
    match name {
        Some(n) if out.is_empty() => Err(ViewError::NoRouter(n.to_string())),
        _ => Ok(out),
    }
}

fn router_view(sw: &Switch, i: usize, r: &pipeline::router::RouterInstance) -> RouterView {
    use std::sync::atomic::Ordering::Relaxed;
    let rt = sw.router_runtime.get(i);
    let mut neighbours: Vec<NeighbourView> = r
        .neighbours
        .iter()
        .map(|((dev, ip), mac)| NeighbourView {
            dev: dev.clone(),
            ip: *ip,
            mac: Some(mac.to_string()),
            state: "PERMANENT".to_string(),
            pending: None,
        })
        .collect();
    for row in rt.map(|rt| rt.rows()).unwrap_or_default() {
        let (state, mac) = match &row.state {
            NeighState::Reachable { mac } => ("REACHABLE", Some(mac.to_string())),
            NeighState::Stale { mac, .. } => ("STALE", Some(mac.to_string())),
            NeighState::Incomplete { .. } => ("INCOMPLETE", None),
            NeighState::Failed => ("FAILED", None),
        };
        neighbours.push(NeighbourView {
            dev: r
                .interfaces
                .get(row.iface)
                .map_or("?", |x| x.name.as_str())
                .to_string(),
            ip: row.ip,
            mac,
            state: state.to_string(),
            pending: Some(row.pending),
        });
    }
    let counters = rt.map(|rt| {
        let c = &rt.counters;
        RouterCounters {
            arp_requests_sent: c.requests_sent.load(Relaxed),
            neighbours_resolved: c.resolved.load(Relaxed),
            neighbours_failed: c.failed.load(Relaxed),
            packets_held: c.held.load(Relaxed),
            packets_released: c.released.load(Relaxed),
            hold_queue_drops: c.queue_drops.load(Relaxed),
            neighbour_table_full: c.table_full.load(Relaxed),
            icmp_errors_sent: c.icmp_sent.load(Relaxed),
            icmp_rate_limited: c.icmp_rate_limited.load(Relaxed),
        }
    });
    RouterView {
        name: r.name.clone(),
        kind: match r.kind {
            InstanceKind::Qrouter => "qrouter",
            InstanceKind::Fip => "fip",
            InstanceKind::Snat => "snat",
        }
        .to_string(),
        zone: rt.map(|rt| rt.zone),
        conntrack: r.conntrack,
        interfaces: r
            .interfaces
            .iter()
            .map(|x| InterfaceView {
                name: x.name.clone(),
                mac: x.mac.to_string(),
                addrs: x.addrs.iter().map(|(a, l)| format!("{a}/{l}")).collect(),
                proxy_arp: x.proxy_arp,
            })
            .collect(),
        rules: r.rules_text().lines().map(str::to_string).collect(),
        routes: r.routes_text().lines().map(str::to_string).collect(),
        nat: r.nat.iter().map(|n| n.text.clone()).collect(),
        neighbours,
        counters,
    }
}

/// Text for `router show`.
pub fn routers_text(routers: &[RouterView]) -> String {
    let mut s = String::new();
    for r in routers {
        r.write_text(&mut s);
    }
    s
}

impl RouterView {
    fn write_text(&self, s: &mut String) {
        let conntrack = match (self.conntrack, self.zone) {
            (true, Some(z)) => format!(", conntrack zone {z}"),
            _ => ", no conntrack".to_string(),
        };
        let _ = writeln!(s, "{} ({}{conntrack})", self.name, self.kind);
        s.push_str("  interfaces:\n");
        for i in &self.interfaces {
            let proxy_arp = if i.proxy_arp { " proxy_arp" } else { "" };
            let _ = writeln!(
                s,
                "    {} {} {}{proxy_arp}",
                i.name,
                i.mac,
                i.addrs.join(" ")
            );
        }
        s.push_str("  ip rule:\n");
        for l in &self.rules {
            let _ = writeln!(s, "    {}", l.replace('\t', " "));
        }
        s.push_str("  ip route:\n");
        for l in &self.routes {
            let _ = writeln!(s, "    {l}");
        }
        if !self.nat.is_empty() {
            s.push_str("  iptables -t nat:\n");
            for l in &self.nat {
                let _ = writeln!(s, "    {l}");
            }
        }
        s.push_str("  ip neigh:\n");
        for n in &self.neighbours {
            let mac = n
                .mac
                .as_ref()
                .map(|m| format!(" lladdr {m}"))
                .unwrap_or_default();
            let pending = match n.pending {
                Some(p) if p > 0 => format!(" ({p} held)"),
                _ => String::new(),
            };
            let _ = writeln!(s, "    {} dev {}{mac} {}{pending}", n.ip, n.dev, n.state);
        }
        if let Some(c) = &self.counters {
            let line: Vec<String> = c.named().iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(s, "  counters: {}", line.join(" "));
        }
    }
}
