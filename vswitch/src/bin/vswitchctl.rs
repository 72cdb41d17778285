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
    /// Router instances: interfaces, ip rule, routes, NAT rules,
    /// neighbours, counters.
    Router {
        #[command(subcommand)]
        op: RouterOp,
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
enum ConntrackOp {
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
enum RouterOp {
    /// One router instance (e.g. qrouter-R1), or all.
    Show {
        name: Option<String>,
        #[command(flatten)]
        on: Source,
    },
}

// Parsed once per run: the size difference of the variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum VmPortOp {
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
enum FipOp {
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
struct PortOpts {
    /// system (I/O), internal (a router attaches) or patch (needs --peer).
    #[arg(long)]
    kind: Option<String>,
    /// Peer of a patch port.
    #[arg(long)]
    peer: Option<String>,
    /// Access port of this VLAN.
    #[arg(long, conflicts_with = "trunks")]
    tag: Option<u16>,
    /// Trunk of these VLANs (comma-separated; empty: all).
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    trunks: Option<Vec<u16>>,
    /// NORMAL does not flood to this port.
    #[arg(long)]
    no_flood: Option<bool>,
}

impl PortOpts {
    fn json(&self, v: &mut serde_json::Value) {
        v["kind"] = serde_json::json!(self.kind);
        v["peer"] = serde_json::json!(self.peer);
        v["tag"] = serde_json::json!(self.tag);
        v["trunks"] = serde_json::json!(self.trunks);
        v["no_flood"] = serde_json::json!(self.no_flood);
    }
}

/// How a port is bound to I/O.
#[derive(clap::Args)]
struct BackendOpts {
    /// af-packet, ring, pcap (af-xdp, dpdk when built with them).
    #[arg(long)]
    backend: Option<String>,
    /// Interface (af-packet, af-xdp; the port's name when not given).
    #[arg(long)]
    interface: Option<String>,
    /// Receive queues (af-packet: sockets in one fanout group).
    #[arg(long)]
    queues: Option<usize>,
    /// Ring depth (ring).
    #[arg(long)]
    depth: Option<usize>,
    /// Capture to replay as input (pcap).
    #[arg(long)]
    pcap_rx: Option<PathBuf>,
    /// Capture to write output to (pcap).
    #[arg(long)]
    pcap_tx: Option<PathBuf>,
    /// Replay the input capture forever (pcap).
    #[arg(long)]
    looped: bool,
}

impl BackendOpts {
    fn json(&self, v: &mut serde_json::Value) -> Result<(), String> {
        let Some(kind) = &self.backend else {
            return Ok(());
        };
        let abs = |p: &PathBuf| -> Result<String, String> {
            std::path::absolute(p)
                .map(|p| p.display().to_string())
                .map_err(|e| format!("{}: {e}", p.display()))
        };
        let mut b = serde_json::json!({ "backend": kind });
        if let Some(i) = &self.interface {
            b["interface"] = serde_json::json!(i);
        }
        if let Some(d) = self.depth {
            b["depth"] = serde_json::json!(d);
        }
        if let Some(r) = &self.pcap_rx {
            b["rx"] = serde_json::json!(abs(r)?);
        }
        if let Some(t) = &self.pcap_tx {
            b["tx"] = serde_json::json!(abs(t)?);
        }
        if self.looped {
            b["looped"] = serde_json::json!(true);
        }
        v["backend"] = b;
        v["queues"] = serde_json::json!(self.queues);
        Ok(())
    }
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
            (Some(dir), _, _) => offline::open(dir).map_err(|e| e.to_string()),
            (None, Some(file), Some(host)) => {
                offline::open_topology(file, host).map_err(|e| e.to_string())
            }
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
            out(cli, v, |v| v["text"].as_str().unwrap_or("").to_string())
        }
        Command::Router {
            op: RouterOp::Show { name, on },
        } => {
            if on.offline() {
                let off = on.open()?;
                let routers = vswitch::render::routers(&off.switch, name.as_deref())
                    .map_err(|e| e.to_string())?;
                let v = serde_json::to_value(&routers).map_err(|e| e.to_string())?;
                return out(cli, v, |_| vswitch::render::routers_text(&routers));
            }
            let v = daemon(cli, "router-show", json!({ "router": name }))?;
            out(cli, v["routers"].clone(), |_| {
                v["text"].as_str().unwrap_or("").to_string()
            })
        }
        Command::AddBr { bridge } => {
            let v = daemon(cli, "add-br", json!({ "bridge": bridge }))?;
            out(cli, v, |_| String::new())
        }
        Command::DelBr { bridge } => {
            let v = daemon(cli, "del-br", json!({ "bridge": bridge }))?;
            out(cli, v, |_| String::new())
        }
        Command::AddPort {
            bridge,
            port,
            ofport,
            opts,
            io,
        } => {
            let mut a = json!({ "bridge": bridge, "port": port, "ofport": ofport });
            opts.json(&mut a);
            io.json(&mut a)?;
            let v = daemon(cli, "add-port", a)?;
            out(cli, v, |v| format!("{} is ofport {}\n", port, v["ofport"]))
        }
        Command::DelPort { port } => {
            let v = daemon(cli, "del-port", json!({ "port": port }))?;
            out(cli, v, |_| String::new())
        }
        Command::SetPort {
            port,
            opts,
            io,
            unbind,
        } => {
            let mut a = json!({ "port": port, "unbind": unbind });
            opts.json(&mut a);
            io.json(&mut a)?;
            let v = daemon(cli, "set-port", a)?;
            out(cli, v, |_| String::new())
        }
        Command::ModFlows {
            bridge,
            flow,
            strict,
        } => {
            let v = daemon(
                cli,
                "mod-flows",
                json!({ "bridge": bridge, "flow": flow, "strict": strict }),
            )?;
            out(cli, v, |v| format!("{} flow(s) modified\n", v["modified"]))
        }
        Command::DumpPorts { bridge, port } => {
            let v = daemon(cli, "dump-ports", json!({ "bridge": bridge, "port": port }))?;
            out(cli, v, |v| {
                let rows = v.as_array().cloned().unwrap_or_default();
                let mut s = format!("{} ports\n", rows.len());
                for r in rows {
                    let c = &r["counters"];
                    s.push_str(&format!(
                        "  port {:>3} {:<16} rx pkts={}, bytes={}, drop={}\n                       tx pkts={}, bytes={}, drop={}{}\n",
                        r["ofport"],
                        format!("\"{}\":", r["port"].as_str().unwrap_or("")),
                        c["rx_packets"],
                        c["rx_bytes"],
                        c["rx_dropped"],
                        c["tx_packets"],
                        c["tx_bytes"],
                        c["tx_dropped"],
                        if r["io"].as_bool() == Some(true) { "" } else { "  (no I/O)" }
                    ));
                }
                s
            })
        }
        Command::VmPort {
            op:
                VmPortOp::Add {
                    name,
                    device,
                    network,
                    mac,
                    ip,
                    host,
                    ofport,
                    no_port_security,
                    io,
                },
        } => {
            let mut a = json!({
                "name": name, "device": device, "network": network, "mac": mac, "ip": ip,
                "host": host, "ofport": ofport, "no_port_security": no_port_security,
            });
            io.json(&mut a)?;
            let v = daemon(cli, "vm-port-add", a)?;
            out(cli, v, |_| String::new())
        }
        Command::VmPort {
            op: VmPortOp::Del { name },
        } => {
            let v = daemon(cli, "vm-port-del", json!({ "name": name }))?;
            out(cli, v, |_| String::new())
        }
        Command::Fip {
            op:
                FipOp::Associate {
                    address,
                    port,
                    router,
                },
        } => {
            let v = daemon(
                cli,
                "fip-associate",
                json!({ "address": address, "port": port, "router": router }),
            )?;
            out(cli, v, |_| String::new())
        }
        Command::Fip {
            op: FipOp::Disassociate { address },
        } => {
            let v = daemon(cli, "fip-disassociate", json!({ "address": address }))?;
            out(cli, v, |v| {
                format!("{} connection(s) deleted\n", v["connections_deleted"])
            })
        }
        Command::Capture {
            port,
            file,
            count,
            duration,
        } => {
            if !(duration.is_finite() && *duration > 0.0 && *duration <= 3600.0) {
                return Err(format!("--duration {duration}: give 0 < seconds <= 3600"));
            }
            let file = std::path::absolute(file).map_err(|e| format!("{}: {e}", file.display()))?;
            let v = daemon(
                cli,
                "capture",
                json!({ "port": port, "file": file, "count": count, "duration_ms": (duration * 1000.0) as u64 }),
            )?;
            out(cli, v, |v| {
                format!(
                    "{} packet(s) captured to {} ({} dropped)\n",
                    v["packets"],
                    v["file"].as_str().unwrap_or(""),
                    v["dropped"]
                )
            })
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
        Command::DelFlows {
            bridge,
            r#match,
            strict,
        } => {
            let v = daemon(
                cli,
                "del-flows",
                json!({ "bridge": bridge, "match": r#match, "strict": strict }),
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
                    s.push_str(&conntrack_line(c));
                    s.push('\n');
                }
                s
            })
        }
        Command::Conntrack {
            op: ConntrackOp::Flush { zone, addr },
        } => {
            let v = daemon(
                cli,
                "conntrack-flush",
                json!({ "zone": zone, "addr": addr }),
            )?;
            out(cli, v, |v| {
                format!("{} connection(s) deleted\n", v["deleted"])
            })
        }
        Command::Conntrack {
            op: ConntrackOp::Stats,
        } => {
            let v = daemon(cli, "conntrack-stats", json!({}))?;
            out(cli, v, |v| {
                let mut s = String::new();
                for (k, x) in v.as_object().into_iter().flatten() {
                    s.push_str(&format!("{k}: {x}\n"));
                }
                s
            })
        }
        Command::PmdStats => {
            let v = daemon(cli, "pmd-stats", json!({}))?;
            out(cli, v, |v| {
                let mut s = String::new();
                for w in v.as_array().into_iter().flatten() {
                    s.push_str(&format!(
                        "pmd {} (core {}, {} rx queues):\n  rx packets: {}\n  tx packets: {}\n  upcalls: {}\n  cache hits: {}\n  cache misses: {}\n  idle polls: {}\n  busy ns/packet: {:.1}\n  busy cycles/packet: {:.1}\n  drops: {}\n",
                        w["worker"], w["core"], w["rx_queues"], w["rx_packets"], w["tx_packets"], w["upcalls"], w["cache_hits"], w["cache_misses"], w["idle_polls"],
                        w["ns_per_packet"].as_f64().unwrap_or(0.0), w["cycles_per_packet"].as_f64().unwrap_or(0.0),
                        w["drops"].as_array().map(|d| d.iter().map(|x| format!("{}={}", x[0].as_str().unwrap_or(""), x[1])).collect::<Vec<_>>().join(" ")).unwrap_or_default()
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
                (Some(hex), Some(port)) => vec![(
                    "frame".to_string(),
                    off.trace_hex(port, hex).map_err(|e| e.to_string())?,
                )],
                _ => off
                    .trace(bridge.as_deref(), packet.as_deref())
                    .map_err(|e| e.to_string())?,
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
            let text = off.dump_flows(bridge).map_err(|e| e.to_string())?;
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
            let view = vswitch::render::SwitchView::of(&off.switch);
            let v = serde_json::to_value(&view).map_err(|e| e.to_string())?;
            out(cli, v, |_| view.text())
        }
    }
}

/// One connection as `ovs-appctl dpctl/dump-conntrack` prints it, plus
/// the packet counts and the NAT done.
fn conntrack_line(c: &serde_json::Value) -> String {
    let proto = c["orig"]["proto"].as_u64().unwrap_or(0);
    let name = match proto {
        1 => "icmp".to_string(),
        6 => "tcp".to_string(),
        17 => "udp".to_string(),
        n => format!("proto{n}"),
    };
    let tuple = |x: &serde_json::Value, echo_type: u8| {
        let (src, dst) = (
            x["src"].as_str().unwrap_or(""),
            x["dst"].as_str().unwrap_or(""),
        );
        if proto == 1 {
            format!(
                "src={src},dst={dst},id={},type={echo_type},code=0",
                x["sport"]
            )
        } else {
            format!(
                "src={src},dst={dst},sport={},dport={}",
                x["sport"], x["dport"]
            )
        }
    };
    let mut line = format!(
        "{name},orig=({}),reply=({}),zone={}",
        tuple(&c["orig"], 8),
        tuple(&c["reply"], 0),
        c["orig"]["zone"]
    );
    if let Some(st) = c["tcp"].as_str() {
        // The daemon names TCP states as conntrack does (TIME_WAIT, ...).
        line.push_str(&format!(",protoinfo=(state={st})"));
    }
    let mut flags = Vec::new();
    if c["snat"].as_bool() == Some(true) {
        flags.push("snat");
    }
    if c["dnat"].as_bool() == Some(true) {
        flags.push("dnat");
    }
    if c["seen_reply"].as_bool() != Some(true) {
        flags.push("unreplied");
    }
    let p = &c["packets"];
    line.push_str(&format!(" packets={}/{}", p[0], p[1]));
    if !flags.is_empty() {
        line.push_str(&format!(" [{}]", flags.join(",")));
    }
    line
}
