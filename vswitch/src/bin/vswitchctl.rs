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
    /// The daemon's control socket (commands without --scenario/--topology
    /// talk to the running vswitchd).
    #[arg(long, global = true, default_value = vswitch::config::DEFAULT_SOCKET)]
    socket: PathBuf,
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
    /// Add or replace flows (ovs-ofctl syntax) on a running switch.
    AddFlow { bridge: String, flow: String },
    /// Add every flow of FILE (one per line, # comments) as one change.
    AddFlows { bridge: String, file: PathBuf },
    /// Delete the flows within a match (all flows without one).
    DelFlows {
        bridge: String,
        r#match: Option<String>,
    },
    /// The MAC table of a bridge.
    FdbShow { bridge: String },
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
enum ConntrackOp {
    /// Connections, optionally of one zone or touching one address.
    Dump {
        #[arg(long)]
        zone: Option<u16>,
        #[arg(long)]
        addr: Option<String>,
    },
    /// Delete connections (of one zone).
    Flush {
        #[arg(long)]
        zone: Option<u16>,
    },
}

#[derive(Subcommand)]
enum TopologyOp {
    /// Apply a whole topology file atomically.
    Load { file: PathBuf },
    /// Print the running topology.
    Show,
}

/// What to work on without a daemon: a scenario directory, or one host of
/// a topology file.
#[derive(clap::Args)]
struct Source {
    /// Scenario directory (ports.conf, flows/, packets.txt).
    #[arg(long, conflicts_with = "topology")]
    scenario: Option<PathBuf>,
    /// Topology file (TOML); needs --host.
    #[arg(long, requires = "host")]
    topology: Option<PathBuf>,
    /// Host of the topology whose switch to build.
    #[arg(long)]
    host: Option<String>,
}

impl Source {
    fn offline(&self) -> bool {
        self.scenario.is_some() || self.topology.is_some()
    }

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

/// Prints a daemon result: JSON as is with --json, else `text`.
fn out(
    cli: &Cli,
    v: serde_json::Value,
    text: impl FnOnce(&serde_json::Value) -> String,
) -> Result<String, String> {
    if cli.json {
        return serde_json::to_string_pretty(&v)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string());
    }
    Ok(text(&v))
}

fn daemon(cli: &Cli, cmd: &str, args: serde_json::Value) -> Result<serde_json::Value, String> {
    vswitch::control::call(&cli.socket, cmd, args)
}

fn run(cli: &Cli) -> Result<String, String> {
    use serde_json::json;
    match &cli.command {
        Command::Trace {
            on, bridge, packet, ..
        } if !on.offline() => {
            let packet = packet.as_deref().ok_or("give the packet to trace")?;
            let v = daemon(cli, "trace", json!({ "packet": packet, "bridge": bridge }))?;
            out(cli, v, |v| {
                v.get("text")
                    .and_then(|t| t.as_str())
                    .unwrap_or("")
                    .to_string()
            })
        }
        Command::DumpFlows { on, bridge } if !on.offline() => {
            let v = daemon(cli, "dump-flows", json!({ "bridge": bridge }))?;
            out(cli, v, |v| v.as_str().unwrap_or("").to_string())
        }
        Command::Show { on } if !on.offline() => {
            let v = daemon(cli, "show", json!({}))?;
            out(cli, v, |v| v.as_str().unwrap_or("").to_string())
        }
        Command::AddFlow { bridge, flow } => {
            let v = daemon(cli, "add-flow", json!({ "bridge": bridge, "flow": flow }))?;
            out(cli, v, |_| String::new())
        }
        Command::AddFlows { bridge, file } => {
            let text =
                std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
            let flows: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect();
            let v = daemon(
                cli,
                "add-flows",
                json!({ "bridge": bridge, "flows": flows }),
            )?;
            out(cli, v, |v| format!("{} flow(s) added\n", v["added"]))
        }
        Command::DelFlows { bridge, r#match } => {
            let v = daemon(
                cli,
                "del-flows",
                json!({ "bridge": bridge, "match": r#match }),
            )?;
            out(cli, v, |v| format!("{} flow(s) deleted\n", v["deleted"]))
        }
        Command::FdbShow { bridge } => {
            let v = daemon(cli, "fdb-show", json!({ "bridge": bridge }))?;
            out(cli, v, |v| {
                let mut s = String::from(" port  VLAN  MAC                Age\n");
                for r in v.as_array().into_iter().flatten() {
                    s.push_str(&format!(
                        "{:>5}  {:>4}  {}  {:>3}\n",
                        r["port"],
                        r["vlan"],
                        r["mac"].as_str().unwrap_or(""),
                        r["age"]
                    ));
                }
                s
            })
        }
        Command::Conntrack {
            op: ConntrackOp::Dump { zone, addr },
        } => {
            let v = daemon(cli, "conntrack-dump", json!({ "zone": zone, "addr": addr }))?;
            out(cli, v, |v| {
                let mut s = String::new();
                for c in v.as_array().into_iter().flatten() {
                    let t = |x: &serde_json::Value| {
                        format!(
                            "{}:{} -> {}:{}",
                            x["src"].as_str().unwrap_or(""),
                            x["sport"],
                            x["dst"].as_str().unwrap_or(""),
                            x["dport"]
                        )
                    };
                    s.push_str(&format!(
                        "zone={} proto={} orig=({}) reply=({}) state={} packets={}\n",
                        c["orig"]["zone"],
                        c["orig"]["proto"],
                        t(&c["orig"]),
                        t(&c["reply"]),
                        c["tcp"],
                        c["packets"]
                    ));
                }
                s
            })
        }
        Command::Conntrack {
            op: ConntrackOp::Flush { zone },
        } => {
            let v = daemon(cli, "conntrack-flush", json!({ "zone": zone }))?;
            out(cli, v, |v| {
                format!("{} connection(s) deleted\n", v["deleted"])
            })
        }
        Command::PmdStats => {
            let v = daemon(cli, "pmd-stats", json!({}))?;
            out(cli, v, |v| {
                let mut s = String::new();
                for w in v.as_array().into_iter().flatten() {
                    s.push_str(&format!(
                        "pmd {} (core {}): rx {} tx {} upcalls {} cache hits {} misses {} ns/packet {:.1} drops {}\n",
                        w["worker"], w["core"], w["rx_packets"], w["tx_packets"], w["upcalls"], w["cache_hits"], w["cache_misses"],
                        w["ns_per_packet"].as_f64().unwrap_or(0.0), w["drops"]
                    ));
                }
                s
            })
        }
        Command::Topology {
            op: TopologyOp::Load { file },
        } => {
            let text =
                std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
            let v = daemon(cli, "topology-load", json!({ "toml": text }))?;
            out(cli, v, |v| {
                format!(
                    "applied ({} connection(s) deleted)\n",
                    v["connections_deleted"]
                )
            })
        }
        Command::Topology {
            op: TopologyOp::Show,
        } => {
            let v = daemon(cli, "topology-show", json!({}))?;
            out(cli, v.clone(), |v| {
                serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
            })
        }
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
