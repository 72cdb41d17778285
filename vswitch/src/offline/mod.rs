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
use pipeline::trace::Trace;
use pipeline::xlate::trace::{trace_frame, trace_text, trace_text_with, TraceInputError};
use scenario::{load_dir, ScenarioDir, ScenarioError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a switch could not be built from files, or a trace could not
/// run on it. Each names the directory, file, host or packet line.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error("{}: {source}", dir.display())]
    Scenario {
        dir: PathBuf,
        #[source]
        source: ScenarioError,
    },
    #[error("{}: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", file.display())]
    Topology {
        file: PathBuf,
        #[source]
        source: topology::TopologyError,
    },
    #[error("{}: host {host}: {source}", file.display())]
    Build {
        file: PathBuf,
        host: String,
        #[source]
        source: Box<pipeline::switch::ConfigError>,
    },
    #[error(transparent)]
    Trace(#[from] TraceInputError),
    /// A line of the scenario's packets.txt could not be traced.
    #[error("{label}: {source}")]
    PacketLine {
        label: String,
        #[source]
        source: TraceInputError,
    },
    #[error("give a packet to trace (a topology has no packets.txt)")]
    NoPackets,
    #[error(transparent)]
    Hex(#[from] HexError),
    #[error(transparent)]
    View(#[from] crate::render::ViewError),
}

/// Why hex text is not a frame.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    #[error("frame hex has an odd number of digits ({0})")]
    OddDigits(usize),
    #[error("frame hex: `{text}` at digit {digit} is not hex")]
    NotHex { text: String, digit: usize },
}

/// A loaded scenario (or host topology) and its compiled switch (static
/// MAC entries installed).
pub struct Offline {
    /// The scenario's labelled packets (none for a topology).
    pub scenario: Option<ScenarioDir>,
    pub switch: Arc<Switch>,
}

/// Loads the scenario directory `dir` and builds its switch.
pub fn open(dir: &Path) -> Result<Offline, OfflineError> {
    let in_dir = |source| OfflineError::Scenario {
        dir: dir.to_path_buf(),
        source,
    };
    let mut scenario = load_dir(dir, 1).map_err(in_dir)?;
    let switch = scenario.build().map_err(in_dir)?;
    Ok(Offline {
        scenario: Some(scenario),
        switch,
    })
}

/// Compiles `host` of the topology file `file` (bridges, flows, routers).
pub fn open_topology(file: &Path, host: &str) -> Result<Offline, OfflineError> {
    let text = std::fs::read_to_string(file).map_err(|source| OfflineError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    let in_file = |source| OfflineError::Topology {
        file: file.to_path_buf(),
        source,
    };
    let t = topology::load_toml(&text).map_err(in_file)?;
    let mut cfg = topology::build_host(&t, host, 1).map_err(in_file)?;
    let switch = cfg.build().map_err(|source| OfflineError::Build {
        file: file.to_path_buf(),
        host: host.to_string(),
        source: Box::new(source),
    })?;
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
    ) -> Result<Vec<(String, Trace)>, OfflineError> {
        match packet {
            Some(p) => {
                let t = trace_text(&self.switch, bridge, p, 0)?;
                Ok(vec![("packet".to_string(), t)])
            }
            None => self
                .scenario
                .as_ref()
                .ok_or(OfflineError::NoPackets)?
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
                    .map_err(|source| OfflineError::PacketLine {
                        label: p.label.clone(),
                        source,
                    })
                })
                .collect(),
        }
    }

    /// Traces a raw frame (hex bytes, spaces and colons allowed) arriving
    /// on the named port.
    pub fn trace_hex(&self, in_port: &str, hex: &str) -> Result<Trace, OfflineError> {
        let frame = parse_hex(hex)?;
        Ok(trace_frame(&self.switch, in_port, &frame, 0)?)
    }

    /// `ovs-ofctl dump-flows` output for one bridge.
    pub fn dump_flows(&self, bridge: &str) -> Result<String, OfflineError> {
        Ok(crate::render::dump_flows(&self.switch, bridge, 0)?)
    }

    /// `ovs-vsctl show`-like summary.
    pub fn show(&self) -> String {
        crate::render::SwitchView::of(&self.switch).text()
    }
}

/// Bytes from hex text (`0a1b…`, `0a 1b`, `0a:1b`).
pub fn parse_hex(hex: &str) -> Result<Vec<u8>, HexError> {
    let digits: String = hex
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    let digits = digits.strip_prefix("0x").unwrap_or(&digits);
    if !digits.len().is_multiple_of(2) {
        return Err(HexError::OddDigits(digits.len()));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&digits[i..i + 2], 16).map_err(|_| HexError::NotHex {
                text: digits[i..i + 2].to_string(),
                digit: i + 1,
            })
        })
        .collect()
}
