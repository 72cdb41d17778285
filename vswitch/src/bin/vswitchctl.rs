//! vswitchctl: inspect and control vswitch, with ovs-ofctl/ovs-vsctl habits.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use vswitch::offline;

#[derive(Parser)]
#[command(name = "vswitchctl", version, about = "Inspect and control vswitch")]
struct Cli {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    /// Print a bridge's flows in ovs-ofctl dump-flows format.
    DumpFlows {
        #[command(flatten)]
        on: Source,
        bridge: String,
    },
    /// Bridges and ports.
    Show {
        #[command(flatten)]
        on: Source,
    },
}

/// What to work on without a daemon: a scenario directory, or one host of
/// a topology file.
#[derive(clap::Args)]
struct Source {
    /// Scenario directory (ports.conf, flows/, packets.txt).
    #[arg(
        long,
        conflicts_with = "topology",
        required_unless_present = "topology"
    )]
    scenario: Option<PathBuf>,
    /// Topology file (TOML); needs --host.
    #[arg(long, requires = "host")]
    topology: Option<PathBuf>,
    /// Host of the topology whose switch to build.
    #[arg(long)]
    host: Option<String>,
}

impl Source {
    fn open(&self) -> Result<offline::Offline, String> {
        match (&self.scenario, &self.topology, &self.host) {
            (Some(dir), _, _) => offline::open(dir),
            (None, Some(file), Some(host)) => offline::open_topology(file, host),
            _ => Err("give --scenario DIR or --topology FILE --host HOST".into()),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vswitchctl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<String, String> {
    match &cli.command {
        Command::Trace {
            on,
            bridge,
            packet,
            frame,
            in_port,
        } => {
            let off = on.open()?;
            let traces = match (frame, in_port) {
                (Some(hex), Some(port)) => vec![("frame".to_string(), off.trace_hex(port, hex)?)],
                _ => off.trace(bridge.as_deref(), packet.as_deref())?,
            };
            if cli.json {
                let v: Vec<_> = traces
                    .iter()
                    .map(|(label, t)| serde_json::json!({ "label": label, "trace": t }))
                    .collect();
                return serde_json::to_string_pretty(&v)
                    .map(|s| s + "\n")
                    .map_err(|e| e.to_string());
            }
            let mut out = String::new();
            for (label, t) in traces {
                out.push_str(&format!("==== {label}\n{}\n", t.render()));
            }
            Ok(out)
        }
        Command::DumpFlows { on, bridge } => {
            let off = on.open()?;
            let text = off.dump_flows(bridge)?;
            if cli.json {
                let lines: Vec<&str> = text.lines().collect();
                return serde_json::to_string_pretty(&lines)
                    .map(|s| s + "\n")
                    .map_err(|e| e.to_string());
            }
            Ok(text)
        }
        Command::Show { on } => {
            let off = on.open()?;
            Ok(off.show())
        }
    }
}
