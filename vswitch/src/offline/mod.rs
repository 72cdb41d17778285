//! vswitchctl commands that run without a daemon, on a snapshot built from
//! files: a scenario directory (bridges, ports and flows as OVS would have
//! them) or a topology file compiled for one host (bridges, flows and router
//! instances, as Neutron's agents would set them up). The same pipeline
//! code the daemon runs.

use pipeline::flow::text::format_flow;
use pipeline::flow::FlowStats;
pub mod scenario;

use pipeline::switch::{PortKind, Switch, VlanMode};
use pipeline::trace::Trace;
use pipeline::xlate::trace::{trace_frame, trace_text, trace_text_with};
use scenario::{load_dir, ScenarioDir};
use serde_json::{json, Value};
use std::fmt::Write;
use std::path::Path;
use std::sync::Arc;

/// A loaded scenario (or host topology) and its compiled switch (static
/// MAC entries installed).
pub struct Offline {
    /// The scenario's labelled packets (none for a topology).
    pub scenario: Option<ScenarioDir>,
    pub switch: Arc<Switch>,
}

pub fn open(dir: &Path) -> Result<Offline, String> {
    let mut scenario = load_dir(dir, 1).map_err(|e| format!("{}: {e}", dir.display()))?;
    let switch = scenario
        .build()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(Offline {
        scenario: Some(scenario),
        switch,
    })
}

/// Compiles `host` of the topology file `file` (bridges, flows, routers).
pub fn open_topology(file: &Path, host: &str) -> Result<Offline, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let t = topology::load_toml(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut cfg =
        topology::build_host(&t, host, 1).map_err(|e| format!("{}: {e}", file.display()))?;
    let switch = cfg
        .build()
        .map_err(|e| format!("{}: host {host}: {e}", file.display()))?;
    Ok(Offline {
        scenario: None,
        switch,
    })
}

impl Offline {
    /// Traces one packet, or every line of packets.txt when `packet` is None.
    pub fn trace(
        &self,
        bridge: Option<&str>,
        packet: Option<&str>,
    ) -> Result<Vec<(String, Trace)>, String> {
        match packet {
            Some(p) => {
                let t = trace_text(&self.switch, bridge, p, 0).map_err(|e| e.to_string())?;
                Ok(vec![("packet".to_string(), t)])
            }
            None => self
                .scenario
                .as_ref()
                .ok_or("give a packet to trace (a topology has no packets.txt)")?
                .packets
                .iter()
                .map(|p| {
                    trace_text_with(
                        &self.switch,
                        Some(&p.bridge),
                        &p.flow,
                        0,
                        &p.trace_options(),
                    )
                    .map(|t| (p.label.clone(), t))
                    .map_err(|e| format!("{}: {e}", p.label))
                })
                .collect(),
        }
    }

    /// Traces a raw frame (hex bytes, spaces and colons allowed) arriving
    /// on the named port.
    pub fn trace_hex(&self, in_port: &str, hex: &str) -> Result<Trace, String> {
        let frame = parse_hex(hex)?;
        trace_frame(&self.switch, in_port, &frame, 0).map_err(|e| e.to_string())
    }

    /// `ovs-ofctl dump-flows` output for one bridge.
    pub fn dump_flows(&self, bridge: &str) -> Result<String, String> {
        dump_flows(&self.switch, bridge, 0)
    }

    /// `ovs-vsctl show`-like summary.
    pub fn show(&self) -> String {
        show(&self.switch)
    }
}

/// `ovs-ofctl dump-flows` output for one bridge of a snapshot, durations
/// measured at `now_ns`.
pub fn dump_flows(sw: &Switch, bridge: &str, now_ns: u64) -> Result<String, String> {
    let b = sw
        .bridge(bridge)
        .ok_or_else(|| format!("no bridge named `{bridge}`"))?;
    let mut out = String::new();
    for t in b.tables() {
        for r in &t.rules {
            let (n_packets, n_bytes, last) = r.stats.read();
            let stats = FlowStats {
                n_packets,
                n_bytes,
                duration_secs: now_ns.saturating_sub(r.added_ns) as f64 / 1e9,
                idle_age_secs: (n_packets > 0).then(|| now_ns.saturating_sub(last) / 1_000_000_000),
            };
            let _ = writeln!(out, "{}", format_flow(&r.flow, Some(&stats), b));
        }
    }
    Ok(out)
}

/// The bridges, ports and router instances of a snapshot, for `show --json`.
pub fn show_value(sw: &Switch) -> Value {
    let bridges: Vec<Value> = sw
        .bridges
        .iter()
        .map(|b| {
            let ports: Vec<Value> = b
                .ports
                .iter()
                .filter_map(|id| sw.port(*id))
                .map(|p| {
                    json!({
                        "name": p.name,
                        "ofport": p.ofport,
                        "kind": p.kind,
                        "vlan": p.vlan,
                        "no_flood": p.no_flood,
                    })
                })
                .collect();
            json!({ "name": b.name, "flows": b.n_flows(), "ports": ports })
        })
        .collect();
    let routers: Vec<&str> = sw.routers.iter().map(|r| r.name.as_str()).collect();
    json!({ "bridges": bridges, "routers": routers })
}

/// `ovs-vsctl show`-like summary of a snapshot.
pub fn show(sw: &Switch) -> String {
    let mut out = String::new();
    for b in &sw.bridges {
        let _ = writeln!(out, "Bridge {} ({} flows)", b.name, b.n_flows());
        for id in &b.ports {
            let Some(p) = sw.port(*id) else {
                continue;
            };
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

/// Bytes from hex text (`0a1b…`, `0a 1b`, `0a:1b`).
pub fn parse_hex(hex: &str) -> Result<Vec<u8>, String> {
    let digits: String = hex
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    let digits = digits.strip_prefix("0x").unwrap_or(&digits);
    if !digits.len().is_multiple_of(2) {
        return Err(format!(
            "frame hex has an odd number of digits ({})",
            digits.len()
        ));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&digits[i..i + 2], 16).map_err(|_| {
                format!(
                    "frame hex: `{}` at digit {} is not hex",
                    &digits[i..i + 2],
                    i + 1
                )
            })
        })
        .collect()
}

/// The router instances of a snapshot (one, or all when `name` is None):
/// interfaces, `ip rule`, routes, NAT rules, neighbours (static and
/// learned) and counters, for `router show`.
pub fn routers_value(sw: &Switch, name: Option<&str>) -> Result<Value, String> {
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = Vec::new();
    for (i, r) in sw.routers.iter().enumerate() {
        if name.is_some_and(|n| n != r.name) {
            continue;
        }
        let rt = sw.router_runtime.get(i);
        let mut neigh: Vec<Value> = r
            .neighbours
            .iter()
            .map(|((dev, ip), mac)| {
                json!({ "dev": dev, "ip": ip.to_string(), "mac": mac.to_string(), "state": "PERMANENT" })
            })
            .collect();
        if let Some(rt) = rt {
            for row in rt.rows() {
                let dev = r
                    .interfaces
                    .get(row.iface)
                    .map(|x| x.name.as_str())
                    .unwrap_or("?");
                let (state, mac) = match &row.state {
                    pipeline::router::neighbour::NeighState::Reachable { mac } => {
                        ("REACHABLE".to_string(), Some(mac.to_string()))
                    }
                    pipeline::router::neighbour::NeighState::Stale { mac, .. } => {
                        ("STALE".to_string(), Some(mac.to_string()))
                    }
                    pipeline::router::neighbour::NeighState::Incomplete { .. } => {
                        ("INCOMPLETE".to_string(), None)
                    }
                    pipeline::router::neighbour::NeighState::Failed => ("FAILED".to_string(), None),
                };
                neigh.push(json!({ "dev": dev, "ip": row.ip.to_string(), "mac": mac, "state": state, "pending": row.pending }));
            }
        }
        let counters = rt.map(|rt| {
            let c = &rt.counters;
            json!({
                "arp_requests_sent": c.requests_sent.load(Relaxed),
                "neighbours_resolved": c.resolved.load(Relaxed),
                "neighbours_failed": c.failed.load(Relaxed),
                "packets_held": c.held.load(Relaxed),
                "packets_released": c.released.load(Relaxed),
                "hold_queue_drops": c.queue_drops.load(Relaxed),
                "neighbour_table_full": c.table_full.load(Relaxed),
                "icmp_errors_sent": c.icmp_sent.load(Relaxed),
                "icmp_rate_limited": c.icmp_rate_limited.load(Relaxed),
            })
        });
        let interfaces: Vec<Value> = r
            .interfaces
            .iter()
            .map(|x| {
                let addrs: Vec<String> = x.addrs.iter().map(|(a, l)| format!("{a}/{l}")).collect();
                json!({ "name": x.name, "mac": x.mac.to_string(), "addrs": addrs, "proxy_arp": x.proxy_arp })
            })
            .collect();
        out.push(json!({
            "name": r.name,
            "kind": r.kind,
            "zone": rt.map(|rt| rt.zone),
            "conntrack": r.conntrack,
            "interfaces": interfaces,
            "rules": r.rules_text().lines().collect::<Vec<_>>(),
            "routes": r.routes_text().lines().collect::<Vec<_>>(),
            "nat": r.nat.iter().map(|n| n.text.as_str()).collect::<Vec<_>>(),
            "neighbours": neigh,
            "counters": counters,
        }));
    }
    if let Some(n) = name {
        if out.is_empty() {
            return Err(format!("no router instance named `{n}` on this host"));
        }
    }
    Ok(Value::from(out))
}

/// Text for `router show`, from [`routers_value`].
pub fn routers_text(v: &Value) -> String {
    let mut s = String::new();
    let strs = |x: &Value| -> Vec<String> {
        x.as_array()
            .into_iter()
            .flatten()
            .map(|l| l.as_str().unwrap_or("").to_string())
            .collect()
    };
    for r in v.as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "{} ({}{})",
            r["name"].as_str().unwrap_or(""),
            r["kind"].as_str().unwrap_or(""),
            match (r["conntrack"].as_bool(), r["zone"].as_u64()) {
                (Some(true), Some(z)) => format!(", conntrack zone {z}"),
                _ => ", no conntrack".to_string(),
            }
        );
        s.push_str("  interfaces:\n");
        for i in r["interfaces"].as_array().into_iter().flatten() {
            let _ = writeln!(
                s,
                "    {} {} {}{}",
                i["name"].as_str().unwrap_or(""),
                i["mac"].as_str().unwrap_or(""),
                strs(&i["addrs"]).join(" "),
                if i["proxy_arp"].as_bool() == Some(true) {
                    " proxy_arp"
                } else {
                    ""
                }
            );
        }
        s.push_str("  ip rule:\n");
        for l in strs(&r["rules"]) {
            let _ = writeln!(s, "    {}", l.replace('\t', " "));
        }
        s.push_str("  ip route:\n");
        for l in strs(&r["routes"]) {
            let _ = writeln!(s, "    {l}");
        }
        let nat = strs(&r["nat"]);
        if !nat.is_empty() {
            s.push_str("  iptables -t nat:\n");
            for l in nat {
                let _ = writeln!(s, "    {l}");
            }
        }
        s.push_str("  ip neigh:\n");
        for n in r["neighbours"].as_array().into_iter().flatten() {
            let mac = n["mac"]
                .as_str()
                .map(|m| format!(" lladdr {m}"))
                .unwrap_or_default();
            let pending = match n["pending"].as_u64() {
                Some(p) if p > 0 => format!(" ({p} held)"),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "    {} dev {}{mac} {}{pending}",
                n["ip"].as_str().unwrap_or(""),
                n["dev"].as_str().unwrap_or(""),
                n["state"].as_str().unwrap_or("")
            );
        }
        if let Some(c) = r["counters"].as_object() {
            let line: Vec<String> = c.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(s, "  counters: {}", line.join(" "));
        }
    }
    s
}
