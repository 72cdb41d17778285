//! A switch built from files, without a daemon, for vswitchctl's offline
//! commands (`--scenario`, `--topology --host`) and for devtools: a
//! scenario directory (bridges, ports and flows as OVS would have them,
//! loaded by `scenario`) or a topology file compiled for one host
//! (bridges, flows and router instances, as Neutron's agents would set
//! them up). The same pipeline code the daemon runs; what the switch looks
//! like is `render`'s job, shared with the daemon.
//!
//! May call: pipeline, topology, `render`.
#![deny(unsafe_code)]

pub mod scenario;

use pipeline::switch::Switch;
use pipeline::trace::{trace_frame, trace_text, trace_text_with, Trace};
use scenario::{load_dir, ScenarioDir};
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
        crate::render::dump_flows(&self.switch, bridge, 0).map_err(|e| e.to_string())
    }

    /// `ovs-vsctl show`-like summary.
    pub fn show(&self) -> String {
        crate::render::SwitchView::of(&self.switch).text()
    }
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
