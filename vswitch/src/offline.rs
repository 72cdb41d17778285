//! vswitchctl commands that run without a daemon, on a snapshot built from
//! files: a scenario directory (bridges, ports and flows as OVS would have
//! them) or a topology file compiled for one host (bridges, flows and router
//! instances, as Neutron's agents would set them up). The same pipeline
//! code the daemon runs.

use pipeline::flow::text::format_flow;
use pipeline::flow::FlowStats;
use pipeline::scenario::{load_dir, Scenario};
use pipeline::switch::{PortKind, Switch, VlanMode};
use pipeline::trace::{trace_frame, trace_text, Trace};
use std::fmt::Write;
use std::path::Path;
use std::sync::Arc;

/// A loaded scenario (or host topology) and its compiled switch (static
/// MAC entries installed).
pub struct Offline {
    /// The scenario's labelled packets (none for a topology).
    pub scenario: Option<Scenario>,
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
    let t = pipeline::topology::load_toml(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut cfg = pipeline::topology::build_host(&t, host, 1)
        .map_err(|e| format!("{}: {e}", file.display()))?;
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
                    trace_text(&self.switch, Some(&p.bridge), &p.flow, 0)
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
    if digits.len() % 2 != 0 {
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
