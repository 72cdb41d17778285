//! What can go wrong in a lab run: finding the scenarios' cast in the
//! topology, building the namespaces, starting the daemons, probing and
//! tracing. Each error names the host, namespace, file or command;
//! `vswitch lab` prints it after `vswitch lab: `, and a scenario's probe
//! or trace error becomes that scenario's detail.
//!
//! May call: the errors of `netns`, `probe`, `shipped` and `sim`.
#![deny(unsafe_code)]

use super::netns::NetnsError;
use super::probe::ProbeError;
use crate::shipped::ShippedError;
use crate::sim::SimError;
use std::path::PathBuf;
use std::process::ExitStatus;
use topology::TopologyError;

/// Why a lab run (or `vswitch lab down`) failed.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("interrupted")]
    Interrupted,
    #[error("lab topology: {0}")]
    Topology(#[source] TopologyError),
    #[error(transparent)]
    Scenario(#[from] ScenarioError),

    // Before building.
    #[error("the kernel lab needs root (network namespaces)")]
    NeedsRoot,
    /// `--neutron`: what is missing, or which agent or server failed.
    #[error("neutron: {0}")]
    Neutron(String),
    #[error("removing the lab needs root")]
    DownNeedsRoot,
    /// Namespaces of an earlier lab are still there.
    #[error("a lab is already up ({}): `vswitch lab down` removes it", .0.join(", "))]
    AlreadyUp(Vec<String>),
    #[error(transparent)]
    Vswitchd(#[from] ShippedError),

    // Building and running.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The daemon's log file could not be shared by its stdout and stderr.
    #[error("{source}")]
    LogClone {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error("the lab topology has no external subnet")]
    NoExternalSubnet,
    #[error("starting vswitchd for {host}: {source}")]
    StartVswitchd {
        host: String,
        #[source]
        source: std::io::Error,
    },
    /// A daemon stopped before it served its socket; `log` is what it wrote.
    #[error("vswitchd for {host} exited ({status}): {log}")]
    VswitchdExited {
        host: String,
        status: ExitStatus,
        log: String,
    },
    #[error("vswitchd for {host}: no control socket after 15 s")]
    VswitchdSilent { host: String },
    #[error("no VM {0}")]
    NoVm(String),
    #[error("{0}")]
    Sim(#[from] SimError),
}

/// What the topology lacks for the lab's scenarios.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("the topology has no associated floating IP")]
    NoFloatingIp,
    #[error("the floating IP's port is not in the topology")]
    FloatingIpPort,
    /// A member of the scenarios' cast (`what`) is missing.
    #[error("the topology has no {0} for the lab's scenarios")]
    Missing(&'static str),
}

/// Why a scenario's first packet could not be traced on a host (the
/// scenario's detail says so; its outcome stands).
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The packet left a host towards one the topology does not have.
    #[error("no host named {host} or {next}")]
    UnknownHost { host: String, next: String },
    /// The host's daemon did not answer the trace request.
    #[error("{0}")]
    Control(#[from] vswitch::control::ControlError),
    /// The simulation has no such host.
    #[error("no host {0}")]
    NoSimHost(String),
    #[error("{0}")]
    Input(#[from] pipeline::xlate::trace::TraceInputError),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}
