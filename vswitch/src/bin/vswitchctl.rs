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
    /// Explain a packet's walk through the bridges (like ofproto/trace).
    Trace {
        /// Scenario directory (ports.conf, flows/, packets.txt) to trace on.
        #[arg(long)]
        scenario: PathBuf,
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
        #[arg(long)]
        scenario: PathBuf,
        bridge: String,
    },
    /// Bridges and ports.
    Show {
        #[arg(long)]
        scenario: PathBuf,
    },
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
            scenario,
            bridge,
            packet,
            frame,
            in_port,
        } => {
            let off = offline::open(scenario)?;
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
        Command::DumpFlows { scenario, bridge } => {
            let off = offline::open(scenario)?;
            let text = off.dump_flows(bridge)?;
            if cli.json {
                let lines: Vec<&str> = text.lines().collect();
                return serde_json::to_string_pretty(&lines)
                    .map(|s| s + "\n")
                    .map_err(|e| e.to_string());
            }
            Ok(text)
        }
        Command::Show { scenario } => {
            let off = offline::open(scenario)?;
            Ok(off.show())
        }
    }
}
