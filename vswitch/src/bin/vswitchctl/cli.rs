//! vswitchctl's command line (clap): commands, their arguments and
//! options, with ovs-ofctl/ovs-vsctl habits.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "vswitchctl", version, about = "Inspect and control vswitch")]
pub(crate) struct Cli {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// The daemon's control socket (commands without --scenario/--topology
    /// talk to the running vswitchd).
    #[arg(long, global = true, default_value = vswitch::config::DEFAULT_SOCKET)]
    pub(crate) socket: PathBuf,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Explain a packet's walk through the bridges and router instances
    /// (like ofproto/trace).
    Trace {
        #[command(flatten)]
        on: Source,
        /// Bridge the packet enters (needed only if in_port is a number).
        #[arg(long)]
        bridge: Option<String>,
        /// The packet in ovs-ofctl match syntax, e.g.
        /// `in_port=qvo-vm1,arp,arp_spa=10.1.0.11,arp_tpa=10.1.0.1`.
        /// Without it, every packet of the scenario's packets.txt.
        packet: Option<String>,
        /// Trace this raw frame (hex bytes) instead of a match; needs --in-port.
        #[arg(long, conflicts_with = "packet", requires = "in_port")]
        frame: Option<String>,
        /// Port the raw frame arrives on (with --frame).
        #[arg(long)]
        in_port: Option<String>,
    },
    /// Print a bridge's flows in ovs-ofctl dump-flows format (those FLOW
    /// selects, e.g. `table=60` or `cookie=0x5/-1,in_port=qvo-vm1`).
    DumpFlows {
        #[command(flatten)]
        on: Source,
        bridge: String,
        flow: Option<String>,
        /// Sort by a field, ascending (`priority` when none is given).
        #[arg(long, num_args = 0..=1, default_missing_value = "priority", conflicts_with = "rsort")]
        sort: Option<String>,
        /// Sort by a field, descending (`priority` when none is given).
        #[arg(long, num_args = 0..=1, default_missing_value = "priority")]
        rsort: Option<String>,
    },
    /// Packets, bytes and flows of the flows FLOW selects (all without it).
    DumpAggregate {
        bridge: String,
        flow: Option<String>,
    },
    /// Each table in use: its flows and what they matched.
    DumpTables { bridge: String },
    /// Bridges and ports.
    Show {
        #[command(flatten)]
        on: Source,
    },
    /// Router instances: interfaces, ip rule, routes, NAT rules,
    /// neighbours, counters.
    Router {
        #[command(subcommand)]
        op: RouterOp,
    },
    /// The workers' datapath flows (as ovs-appctl dpctl/dump-flows).
    Dpctl {
        #[command(subcommand)]
        op: DpctlOp,
    },
    /// The daemon's log filter (as ovs-appctl vlog/list, vlog/set).
    Vlog {
        #[command(subcommand)]
        op: VlogOp,
    },
    /// Add an empty bridge (no flows: it drops everything until given some).
    AddBr { bridge: String },
    /// Delete a bridge with its ports and flows.
    DelBr { bridge: String },
    /// Add a port to a bridge, optionally bound to I/O.
    AddPort {
        bridge: String,
        port: String,
        /// OpenFlow port number (the lowest free one when not given).
        #[arg(long)]
        ofport: Option<u32>,
        #[command(flatten)]
        opts: PortOpts,
        #[command(flatten)]
        io: BackendOpts,
    },
    /// Delete a port (and its I/O binding).
    DelPort { port: String },
    /// Change a port's kind, VLAN or flooding, or (re)bind its I/O.
    SetPort {
        port: String,
        #[command(flatten)]
        opts: PortOpts,
        #[command(flatten)]
        io: BackendOpts,
        /// Remove the port's I/O binding.
        #[arg(long, conflicts_with = "backend")]
        unbind: bool,
    },
    /// Add or replace flows (ovs-ofctl syntax) on a running switch.
    AddFlow { bridge: String, flow: String },
    /// Add every flow of FILE (one per line, # comments) as one change.
    AddFlows { bridge: String, file: PathBuf },
    /// Replace the actions of the flows a match selects (the flow text
    /// gives match and new actions, as in ovs-ofctl mod-flows).
    ModFlows {
        bridge: String,
        flow: String,
        /// Only the flow with exactly this match and priority.
        #[arg(long)]
        strict: bool,
    },
    /// Delete the flows within a match (all flows without one).
    DelFlows {
        bridge: String,
        r#match: Option<String>,
        /// Only the flow with exactly this match and priority.
        #[arg(long)]
        strict: bool,
    },
    /// Per-port I/O counters (of one bridge, one port).
    DumpPorts {
        bridge: Option<String>,
        port: Option<String>,
    },
    /// The MAC table of a bridge.
    FdbShow { bridge: String },
    /// VM ports of the topology (the Neutron port binding).
    VmPort {
        #[command(subcommand)]
        op: VmPortOp,
    },
    /// Floating IPs of the topology.
    Fip {
        #[command(subcommand)]
        op: FipOp,
    },
    /// Write what a port receives and sends to a pcap file.
    Capture {
        port: String,
        /// The pcap file; `-` writes it to standard output as it is
        /// captured (`vswitchctl capture qvo-vm1 - | tcpdump -r -`).
        file: PathBuf,
        /// Stop after this many frames.
        count: Option<u64>,
        /// Stop after this many seconds (default 10, at most 3600).
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
    },
    /// Connection tracking.
    Conntrack {
        #[command(subcommand)]
        op: ConntrackOp,
    },
    /// Per-worker counters.
    PmdStats,
    /// The topology the daemon runs.
    Topology {
        #[command(subcommand)]
        op: TopologyOp,
    },
}

#[derive(Subcommand)]
pub(crate) enum ConntrackOp {
    /// Connections, optionally of one zone or touching one address.
    Dump {
        #[arg(long)]
        zone: Option<u16>,
        #[arg(long)]
        addr: Option<String>,
    },
    /// Delete connections (of one zone, touching one address).
    Flush {
        #[arg(long)]
        zone: Option<u16>,
        #[arg(long)]
        addr: Option<String>,
    },
    /// Table size and counters per reason.
    Stats,
}

#[derive(Subcommand)]
pub(crate) enum DpctlOp {
    /// Every worker's cached datapath flows: megaflow, packets, last
    /// use, actions.
    DumpFlows,
}

#[derive(Subcommand)]
pub(crate) enum VlogOp {
    /// The running log filter.
    List,
    /// Replace the log filter at runtime: a level (error, warn, info,
    /// debug, trace, off) or directives such as
    /// `info,vswitch::database=debug`.
    Set { filter: String },
}

#[derive(Subcommand)]
pub(crate) enum RouterOp {
    /// One router instance (e.g. qrouter-R1), or all.
    Show {
        name: Option<String>,
        #[command(flatten)]
        on: Source,
    },
    /// Set a router as the L3 agent on this host knows it (a JSON file,
    /// `-` for standard input), as neutron-vswitch's L3 extension does.
    Set { file: PathBuf },
    /// Remove a router the L3 agent set.
    Del {
        name: String,
        #[arg(long)]
        if_exists: bool,
    },
    /// The routers the L3 agent set, as it set them (JSON).
    List,
}

// Parsed once per run: the size difference of the variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub(crate) enum VmPortOp {
    /// Bind a new VM port (on this host unless --host).
    Add {
        name: String,
        /// Its interface on br-int (qvo…/tap…).
        #[arg(long)]
        device: String,
        #[arg(long)]
        network: String,
        #[arg(long)]
        mac: String,
        #[arg(long)]
        ip: String,
        #[arg(long)]
        host: Option<String>,
        #[arg(long)]
        ofport: Option<u32>,
        #[arg(long)]
        no_port_security: bool,
        #[command(flatten)]
        io: BackendOpts,
    },
    /// Remove a VM port.
    Del { name: String },
}

#[derive(Subcommand)]
pub(crate) enum FipOp {
    /// Associate a floating IP with a VM port (created if new; the router
    /// is the one on the port's network unless --router).
    Associate {
        address: String,
        port: String,
        #[arg(long)]
        router: Option<String>,
    },
    /// Disassociate a floating IP (its connections are deleted).
    Disassociate { address: String },
}

/// What a port is (add-port, set-port).
#[derive(clap::Args)]
pub(crate) struct PortOpts {
    /// system (I/O), internal (a router attaches) or patch (needs --peer).
    #[arg(long)]
    pub(crate) kind: Option<String>,
    /// Peer of a patch port.
    #[arg(long)]
    pub(crate) peer: Option<String>,
    /// Access port of this VLAN.
    #[arg(long, conflicts_with = "trunks")]
    pub(crate) tag: Option<u16>,
    /// Trunk of these VLANs (comma-separated; empty: all).
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    pub(crate) trunks: Option<Vec<u16>>,
    /// NORMAL does not flood to this port.
    #[arg(long)]
    pub(crate) no_flood: Option<bool>,
}

/// How a port is bound to I/O.
#[derive(clap::Args)]
pub(crate) struct BackendOpts {
    /// af-packet, tap (an internal port's device), ring, pcap (af-xdp, dpdk when built with them).
    #[arg(long)]
    pub(crate) backend: Option<String>,
    /// Interface (af-packet, af-xdp, tap; the port's name when not given).
    #[arg(long)]
    pub(crate) interface: Option<String>,
    /// Receive queues (af-packet: sockets in one fanout group).
    #[arg(long)]
    pub(crate) queues: Option<usize>,
    /// Ring depth (ring).
    #[arg(long)]
    pub(crate) depth: Option<usize>,
    /// Capture to replay as input (pcap).
    #[arg(long)]
    pub(crate) pcap_rx: Option<PathBuf>,
    /// Capture to write output to (pcap).
    #[arg(long)]
    pub(crate) pcap_tx: Option<PathBuf>,
    /// Replay the input capture forever (pcap).
    #[arg(long)]
    pub(crate) looped: bool,
}

#[derive(Subcommand)]
pub(crate) enum TopologyOp {
    /// Apply a whole topology file atomically (TOML, or JSON; `-` for
    /// standard input).
    Load {
        file: PathBuf,
        /// Only check it and print what it would change.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the running topology, as a file `topology load` takes
    /// (TOML; JSON with --json).
    Show,
}

/// What to work on without a daemon: a scenario directory, or one host of
/// a topology file.
#[derive(clap::Args)]
pub(crate) struct Source {
    /// Scenario directory (ports.conf, flows/, packets.txt).
    #[arg(long, conflicts_with = "topology")]
    pub(crate) scenario: Option<PathBuf>,
    /// Topology file (TOML); needs --host.
    #[arg(long, requires = "host")]
    pub(crate) topology: Option<PathBuf>,
    /// Host of the topology whose switch to build.
    #[arg(long)]
    pub(crate) host: Option<String>,
}
