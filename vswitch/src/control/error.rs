//! What can go wrong with a control request, on either end: decoding it,
//! carrying it out, or (for vswitchctl) reaching the daemon and reading
//! its answer. Each error names the item (bridge, port, flow line,
//! address, file); the server sends its text as the response's `error`,
//! vswitchctl prints it after `vswitchctl: `.
#![deny(unsafe_code)]

use crate::capture::CaptureError;
use crate::daemon::BindError;
use crate::render::ViewError;
use pipeline::flow::text::FlowSyntaxError;
use pipeline::switch::ConfigError;
use pipeline::xlate::trace::TraceInputError;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use topology::TopologyError;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    // The request line.
    #[error("malformed request: {0}")]
    Malformed(#[source] serde_json::Error),
    #[error("protocol version {got} not supported (this daemon speaks {speaks})")]
    Version { got: u32, speaks: u32 },
    #[error("unknown command `{0}`")]
    UnknownCommand(String),
    #[error("{cmd}: arguments must be an object")]
    ArgumentsNotObject { cmd: String },
    /// An argument missing, unknown or of the wrong type, in serde's words
    /// (see `protocol::argument_problem`).
    #[error("{cmd}: {problem}")]
    BadArguments { cmd: String, problem: String },
    #[error("request longer than {limit} bytes")]
    TooLong { limit: usize },
    #[error("too many clients")]
    TooManyClients,
    /// The result could not be put in JSON.
    #[error("{0}")]
    Encode(#[source] serde_json::Error),

    // Names the switch does not have.
    #[error("no bridge named `{0}`")]
    NoBridge(String),
    #[error("no port named `{0}`")]
    NoPort(String),
    #[error("no port named `{port}` on host {host}")]
    NoPortOnHost { port: String, host: String },
    #[error(transparent)]
    View(#[from] ViewError),

    // Flows and ports.
    /// Line `line` (from 1) of an `add-flows` request.
    #[error("flow {line}: {source}")]
    FlowLine {
        line: usize,
        #[source]
        source: FlowSyntaxError,
    },
    #[error(transparent)]
    FlowSyntax(#[from] FlowSyntaxError),
    #[error("--sort `{0}`: not `priority` nor a match field")]
    UnknownSortField(String),
    #[error("mod-flows needs `actions=`")]
    ModFlowsWithoutActions,
    #[error(transparent)]
    Switch(#[from] ConfigError),
    #[error("kind `{0}`: not system, internal or patch")]
    UnknownPortKind(String),
    #[error("a patch port needs `peer`")]
    PatchWithoutPeer,
    #[error("{0}: only system ports carry I/O (and internal ports a tap)")]
    OnlySystemPortsCarryIo(String),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    Trace(#[from] TraceInputError),
    #[error("trace: frame: {0}")]
    TraceFrame(#[source] crate::offline::HexError),
    #[error("trace: give the packet (a match), or a frame and its in_port")]
    TraceWhat,

    // The topology: VM ports and floating IPs.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error("port `{0}` already exists")]
    TopologyPortExists(String),
    #[error(transparent)]
    AgentRouters(#[from] crate::l3agent::L3Error),
    #[error("no router `{0}` from the L3 agent")]
    NoAgentRouter(String),
    #[error("no port named `{0}` in the topology")]
    NoTopologyPort(String),
    #[error("{port}: I/O can be bound only to a port of this host ({host})")]
    IoOnOtherHost { port: String, host: String },
    #[error("port `{0}` has a floating IP: disassociate it first")]
    PortHasFloatingIp(String),
    #[error("floating IP {address} is associated with `{port}`: disassociate it first")]
    FloatingIpInUse { address: Ipv4Addr, port: String },
    #[error("no floating IP {0} in the topology")]
    NoFloatingIp(Ipv4Addr),
    #[error("floating IP {0} is not associated")]
    FloatingIpNotAssociated(Ipv4Addr),
    #[error("no router has an interface on network `{network}` of port `{port}`")]
    NoRouterOnNetwork { network: String, port: String },
    #[error("several routers serve network `{0}`: give --router")]
    SeveralRoutersOnNetwork(String),

    #[error(transparent)]
    Log(#[from] crate::logging::LogFilterError),

    // Captures.
    #[error("{}: give an absolute path", .0.display())]
    RelativePath(PathBuf),
    #[error("count must be at least 1")]
    ZeroCount,
    #[error(transparent)]
    Capture(#[from] CaptureError),

    // Arguments as vswitchctl reads them from its command line.
    #[error("argument `{argument}`: `{text}` is not an IPv4 address")]
    NotAnAddress {
        argument: &'static str,
        text: String,
    },
    #[error("mac `{0}`: not a MAC address")]
    NotAMac(String),
    #[error("backend: {0}")]
    Backend(#[source] serde_json::Error),

    // The client's side of the socket.
    #[error("{}: {source} (is vswitchd running?)", path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("bad response: {0}")]
    BadResponse(#[source] serde_json::Error),
    /// The daemon's answer to a request it refused.
    #[error("{0}")]
    Refused(String),
}
